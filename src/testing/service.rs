//! The `StatusTester` gRPC service, and the decision it shares with the HTTP endpoint.

use std::sync::Arc;
use std::time::Duration;

use crate::grpc::ErrorBuilder;
use crate::pb::testing::status_tester_server::{StatusTester, StatusTesterServer};
use crate::pb::testing::{RaiseRequest, RaiseResponse};
use crate::{pb, Code, Outcome, StatusCode};

use super::counters::Counters;

/// The `clarifai.status.testing.v1.StatusTester` service: answers each `Raise` call with the
/// status it asks for.
///
/// Clones share their per-key counters, so a [`Tester`] serving both gRPC and HTTP counts calls
/// to both under the same keys. See the [module docs](super) for the exact answers.
///
/// # Examples
///
/// ```
/// use clarifai_status::pb::testing::status_tester_server::StatusTester;
/// use clarifai_status::pb::testing::RaiseRequest;
/// use clarifai_status::testing::Tester;
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
    /// let tester = clarifai_status::testing::Tester::new();
    /// let server = tester.into_server();
    /// # drop(server);
    /// ```
    pub fn new() -> Tester {
        Tester {
            counters: Arc::new(Counters::new(super::MAX_KEYS)),
        }
    }

    /// This tester as a tonic service, to serve alone or add to a router.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use clarifai_status::testing::Tester;
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
        let attempt = self.counters.hit(key).map_err(|e| e.to_string())?;
        if fail_times > 0 && attempt > fail_times {
            status = pb::Status {
                code: StatusCode::Success as i32,
                description: StatusCode::Success.description().to_owned(),
                ..Default::default()
            };
        }
        let failure = Code::new(status.code).outcome() == Outcome::Failure;
        Ok(Decision {
            status,
            attempt,
            failure,
        })
    }
}

/// The status a malformed request to the tester is answered with: `CONN_BAD_REQUEST_FORMAT`
/// (gRPC `INVALID_ARGUMENT`, HTTP 400), its table description, and `details` saying what was
/// rejected.
pub(crate) fn bad_request(details: String) -> pb::Status {
    let code = StatusCode::ConnBadRequestFormat;
    pb::Status {
        code: code as i32,
        description: code.description().to_owned(),
        details,
        ..Default::default()
    }
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
