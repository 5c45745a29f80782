//! The `StatusTester` gRPC service, and the decision it shares with the HTTP endpoint.

use std::sync::Arc;
use std::time::Duration;

use crate::pb::status_tester_server::{StatusTester, StatusTesterServer};
use crate::pb::{RaiseRequest, RaiseResponse};
use clarifai_status::grpc::ErrorBuilder;
use clarifai_status::{pb, Code, Outcome, StatusCode};

use super::counters::{CallCount, Counters};
use super::scenario::{roll, Scenario, Scenarios};

/// The `clarifai.status.testing.v1.StatusTester` service: answers each `Raise` call with the
/// status it asks for.
///
/// Clones share their per-key counters, so a [`Tester`] serving both gRPC and HTTP counts calls
/// to both under the same keys. See the [module docs](super) for the exact answers.
///
/// # Examples
///
/// ```
/// use clarifai_status_testing::pb::status_tester_server::StatusTester;
/// use clarifai_status_testing::pb::RaiseRequest;
/// use clarifai_status_testing::Tester;
/// use clarifai_status::{pb, StatusCode};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let tester = Tester::new();
/// let request = RaiseRequest {
///     status: Some(pb::Status { code: StatusCode::ConnKeyInvalid as i32, ..Default::default() }),
///     ..Default::default()
/// };
/// let error = tester.raise(tonic::Request::new(request)).await.unwrap_err();
/// assert_eq!(error.code(), tonic::Code::Unauthenticated);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct Tester {
    counters: Arc<Counters>,
    scenarios: Arc<Scenarios>,
}

impl Default for Tester {
    fn default() -> Tester {
        Tester::new()
    }
}

/// What a call is answered with, before it is put on a wire.
#[derive(Debug)]
pub(crate) struct Decision {
    /// The status to answer with, private fields stripped.
    pub(crate) status: pb::Status,
    /// Calls seen with the key, this one included.
    pub(crate) attempt: u32,
    /// Whether `status` is a failure.
    pub(crate) failure: bool,
}

impl Tester {
    /// A tester with fresh counters, holding at most [`MAX_KEYS`](super::MAX_KEYS) keys.
    ///
    /// # Examples
    ///
    /// ```
    /// let tester = clarifai_status_testing::Tester::new();
    /// let server = tester.into_server();
    /// # drop(server);
    /// ```
    pub fn new() -> Tester {
        Tester {
            counters: Arc::new(Counters::new(super::MAX_KEYS)),
            scenarios: Arc::new(Scenarios::default()),
        }
    }

    /// This tester with `scenarios` as the fault-injection plan of its V2 and REST stand-ins;
    /// the counters stay shared with the clones made before.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status_testing::{Scenarios, Tester};
    ///
    /// let plan = Scenarios::from_json(r#"{"rules": [{"code": 21354}]}"#).unwrap();
    /// let tester = Tester::new().with_scenarios(plan);
    /// # drop(tester);
    /// ```
    pub fn with_scenarios(mut self, scenarios: Scenarios) -> Tester {
        self.scenarios = Arc::new(scenarios);
        self
    }

    /// Every call counter held, oldest first: the calls seen per scenario text and method, over
    /// gRPC and HTTP. The same list `GET /v2/_tester/calls` answers.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status_testing::pb::status_tester_server::StatusTester;
    /// use clarifai_status_testing::pb::RaiseRequest;
    /// use clarifai_status::pb;
    /// use clarifai_status_testing::Tester;
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let tester = Tester::new();
    /// let request = RaiseRequest { status: Some(pb::Status { code: 10000, ..Default::default() }), key: "k".into(), ..Default::default() };
    /// tester.raise(tonic::Request::new(request)).await.unwrap();
    /// let calls = tester.calls();
    /// assert_eq!((calls[0].key.as_str(), calls[0].method.as_str(), calls[0].count), ("k", "Raise", 1));
    /// # });
    /// ```
    pub fn calls(&self) -> Vec<CallCount> {
        self.counters.snapshot()
    }

    /// The stand-in for Clarifai's `clarifai.api.V2` service, counting in this tester's counters.
    ///
    /// # Examples
    ///
    /// ```
    /// use tonic::server::NamedService;
    /// use clarifai_status_testing::{Tester, V2StandIn};
    ///
    /// let v2 = Tester::new().v2();
    /// assert_eq!(<V2StandIn as NamedService>::NAME, "clarifai.api.V2");
    /// ```
    pub fn v2(&self) -> super::V2StandIn {
        super::V2StandIn::new(self.clone())
    }

    /// This tester as a tonic service, to serve alone or add to a router.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use clarifai_status_testing::Tester;
    ///
    /// # async fn run() -> Result<(), tonic::transport::Error> {
    /// tonic::transport::Server::builder()
    ///     .serve("127.0.0.1:50051".parse().unwrap(), Tester::new().into_server())
    ///     .await
    /// # }
    /// ```
    pub fn into_server(self) -> StatusTesterServer<Tester> {
        StatusTesterServer::new(self)
    }

    /// Counts the call under `key` and decides the status it is answered with.
    ///
    /// `Err` says why the request is malformed; it is answered with [`bad_request`] and not
    /// counted.
    pub(crate) fn decide(
        &self,
        status: pb::Status,
        fail_times: u32,
        key: &str,
    ) -> Result<Decision, String> {
        let mut status = status;
        status.strip_private();
        let attempt = self
            .counters
            .hit(key, RAISE_METHOD)
            .map_err(|e| e.to_string())?;
        if fail_times > 0 && attempt > fail_times {
            status = table_status(StatusCode::Success.into());
        }
        let failure = Code::new(status.code).outcome() == Outcome::Failure;
        Ok(Decision {
            status,
            attempt,
            failure,
        })
    }
}

/// The metadata (or HTTP header) that carries a call's scenario pairs.
pub(crate) const RAISE_HEADER: &str = "x-clarifai-status-raise";

/// A call's own scenario text: the `x-clarifai-status-raise` header, else the pairs of an
/// `authorization: Key raise;<pairs>` API key (`Key raise` alone: no pairs). `Ok(None)` when the
/// call carries neither (any other key is not the tester's business); `Err` when the header is
/// there but not visible ASCII.
pub(crate) fn scenario_text(headers: &http::HeaderMap) -> Result<Option<&str>, String> {
    if let Some(value) = headers.get(RAISE_HEADER) {
        return value
            .to_str()
            .map(Some)
            .map_err(|_| format!("`{RAISE_HEADER}` is not visible ASCII"));
    }
    let key = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("key"))
        .map(|(_, key)| key.trim());
    Ok(match key {
        Some("raise") => Some(""),
        Some(key) => key.strip_prefix("raise;"),
        None => None,
    })
}

/// The method name `Raise` calls count under, over gRPC and HTTP alike.
const RAISE_METHOD: &str = "Raise";

/// How a call to a stand-in (the V2 service or the REST side) is answered.
#[derive(Debug)]
pub(crate) struct StandInAnswer {
    /// The status to answer with: the table's, for the decided code.
    pub(crate) status: pb::Status,
    /// Whether to answer the failure as a gRPC error rather than in the body (`in_body=false`).
    pub(crate) as_error: bool,
    /// The pushback to send with a failure, if the scenario asks for one.
    pub(crate) retry_after: Option<Duration>,
    /// How long to wait before answering.
    pub(crate) delay: Duration,
    /// SUCCESS messages sent before the answer.
    pub(crate) successes_first: u32,
}

impl Tester {
    /// Decides and counts a stand-in call.
    ///
    /// `pairs` is the call's own scenario text (`Ok(None)` without one; `Err` when the text
    /// could not be read), `method` the counter's method (`PostModelOutputs`, `GET /v2/...`),
    /// and `grpc_method` the method `methods` filters by (`None` over REST, where it does not
    /// apply).
    pub(crate) fn stand_in(
        &self,
        pairs: Result<Option<&str>, String>,
        method: &str,
        grpc_method: Option<&str>,
    ) -> StandInAnswer {
        match self.try_stand_in(pairs, method, grpc_method) {
            Ok(answer) => answer,
            Err(details) => StandInAnswer {
                status: invalid_request(details),
                as_error: false,
                retry_after: None,
                delay: Duration::ZERO,
                successes_first: 0,
            },
        }
    }

    fn try_stand_in(
        &self,
        pairs: Result<Option<&str>, String>,
        method: &str,
        grpc_method: Option<&str>,
    ) -> Result<StandInAnswer, String> {
        let own;
        let (key, scenario): (std::borrow::Cow<'_, str>, Option<&Scenario>) = match pairs? {
            Some(text) => {
                own = Scenario::parse_pairs(text)?;
                let applies = grpc_method.is_none_or(|m| own.matches(m));
                (text.into(), applies.then_some(&own))
            }
            None => match self.scenarios.find(grpc_method) {
                Some((i, rule)) => (format!("rules[{i}]").into(), Some(rule)),
                None => ("".into(), None),
            },
        };
        let count = self.counters.hit(&key, method).map_err(|e| e.to_string())?;
        let fails = scenario.filter(|s| {
            (s.fail_times == 0 || count <= s.fail_times)
                && roll(self.scenarios.seed, &key, method, count) < s.percent
        });
        Ok(match fails {
            Some(s) => StandInAnswer {
                status: table_status(s.code),
                as_error: !s.in_body && s.code.outcome() == Outcome::Failure,
                retry_after: (s.retry_after_ms > 0)
                    .then(|| Duration::from_millis(u64::from(s.retry_after_ms))),
                delay: s.delay(),
                successes_first: s.successes_first,
            },
            None => StandInAnswer {
                status: table_status(StatusCode::Success.into()),
                as_error: false,
                retry_after: None,
                delay: Duration::ZERO,
                successes_first: 0,
            },
        })
    }
}

/// A status with `code` and the table's description, nothing else.
pub(crate) fn table_status(code: Code) -> pb::Status {
    pb::Status {
        code: code.number(),
        description: code.description().to_owned(),
        ..Default::default()
    }
}

/// `code` with the table's description and `details`.
fn with_details(code: StatusCode, details: String) -> pb::Status {
    pb::Status {
        details,
        ..table_status(code.into())
    }
}

/// The status a malformed scenario is answered with: `CONN_INVALID_REQUEST` (11102, gRPC
/// `INVALID_ARGUMENT`, HTTP 400), its table description, and `details` saying what was rejected.
pub(crate) fn invalid_request(details: String) -> pb::Status {
    with_details(StatusCode::ConnInvalidRequest, details)
}

/// The status a malformed request to the tester is answered with: `CONN_BAD_REQUEST_FORMAT`
/// (gRPC `INVALID_ARGUMENT`, HTTP 400), its table description, and `details` saying what was
/// rejected.
pub(crate) fn bad_request(details: String) -> pb::Status {
    with_details(StatusCode::ConnBadRequestFormat, details)
}

/// The status a request over the server's size limits is answered with:
/// `RPC_MAX_MESSAGE_SIZE_EXCEEDED` (40033: gRPC `RESOURCE_EXHAUSTED`, HTTP 413, not retryable),
/// its table description, and `details` saying which limit.
pub(crate) fn request_too_large(details: String) -> pb::Status {
    with_details(StatusCode::RpcMaxMessageSizeExceeded, details)
}

/// The status a connection over the server's cap is answered with: `RPC_REQUEST_QUEUE_FULL`
/// (40030: gRPC `UNAVAILABLE`, HTTP 503, retryable), its table description, and `details`
/// saying which limit.
pub(crate) fn server_busy(details: String) -> pb::Status {
    with_details(StatusCode::RpcRequestQueueFull, details)
}

#[tonic::async_trait]
impl StatusTester for Tester {
    async fn raise(
        &self,
        request: tonic::Request<RaiseRequest>,
    ) -> Result<tonic::Response<RaiseResponse>, tonic::Status> {
        let request = request.into_inner();
        let Some(status) = request.status else {
            return Err(tonic::Status::from(&bad_request(
                "`status` is required".to_owned(),
            )));
        };
        let decision = self
            .decide(status, request.fail_times, &request.key)
            .map_err(|details| tonic::Status::from(&bad_request(details)))?;
        if decision.failure && !request.in_body {
            return Err(match request.retry_after_ms {
                0 => tonic::Status::from(&decision.status),
                ms => with_pushback(&decision.status, Duration::from_millis(u64::from(ms))),
            });
        }
        Ok(tonic::Response::new(RaiseResponse {
            status: Some(decision.status),
            attempt: decision.attempt,
        }))
    }
}

/// The error for a failure with a retry delay: the status's public fields, plus the pushback.
fn with_pushback(status: &pb::Status, delay: Duration) -> tonic::Status {
    ErrorBuilder::from_status(status).retry_after(delay).build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn headers(pairs: &[(&'static str, &[u8])]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, http::HeaderValue::from_bytes(value).unwrap());
        }
        map
    }

    #[test]
    fn scenario_text_reads_the_header_first_then_the_key() {
        let both = headers(&[
            (RAISE_HEADER, b"code=1"),
            ("authorization", b"Key raise;code=2"),
        ]);
        assert_eq!(scenario_text(&both), Ok(Some("code=1")));
        for (key, want) in [
            (&b"Key raise;code=2"[..], Some("code=2")),
            (b"key  raise;code=2 ", Some("code=2")),
            (b"Key raise", Some("")),
            (b"Key raised", None),
            (b"Key 0123abcd", None),
            (b"Bearer raise;code=2", None),
        ] {
            assert_eq!(scenario_text(&headers(&[("authorization", key)])), Ok(want));
        }
        let opaque = headers(&[(RAISE_HEADER, b"code=\xff")]);
        assert_eq!(
            scenario_text(&opaque),
            Err("`x-clarifai-status-raise` is not visible ASCII".to_owned())
        );
    }

    proptest! {
        #[test]
        fn any_header_bytes_are_read_without_panic(
            raise in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
            key in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
        ) {
            let mut map = http::HeaderMap::new();
            for (name, value) in [(RAISE_HEADER, raise), ("authorization", key)] {
                if let Some(value) = value.and_then(|v| http::HeaderValue::from_bytes(&v).ok()) {
                    map.insert(name, value);
                }
            }
            let tester = Tester::new();
            let answer = tester.stand_in(scenario_text(&map), "M", Some("M"));
            prop_assert!(tester.calls().len() <= 1);
            prop_assert!(answer.delay <= Duration::from_millis(u64::from(crate::MAX_DELAY_MS)));
        }
    }
}
