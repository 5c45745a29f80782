//! Reading what an attempt ended with from each signal Clarifai sends.

use std::fmt;
use std::time::Duration;

use http::{HeaderMap, HeaderName};

use crate::grpc::{self, ClarifaiStatusExt as _, Pushback};
use crate::mapping::{grpc_code_from_http, grpc_code_name};
use crate::response::HasStatus;
use crate::{rest, Code, Outcome};

static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

/// The code an attempt failed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// A Clarifai code: carried on a gRPC error (the wire contract) or in a response body.
    Clarifai(Code),
    /// A plain gRPC code (no Clarifai code carried), or one concluded from an HTTP status.
    Grpc(tonic::Code),
    /// The policy's per-attempt timeout cut the attempt (read as `DEADLINE_EXCEEDED`).
    AttemptTimeout,
}

/// Clarifai codes that say the request was refused before it took effect: throttles, and a
/// model that is busy, loading or deploying. Retrying these is safe for every method.
const REFUSED: [i32; 7] = [
    11003, // CONN_EXCEED_HOURLY_LIMIT
    11005, // CONN_THROTTLED
    21351, // MODEL_DEPLOYING
    21352, // MODEL_QUEUED_FOR_DEPLOYMENT
    21354, // MODEL_BUSY_PLEASE_RETRY
    21355, // MODEL_LOADING
    40030, // RPC_REQUEST_QUEUE_FULL
];

impl Signal {
    /// Whether the failed attempt may have taken effect on the server: every failure but a
    /// Clarifai code in [`REFUSED`].
    pub(crate) fn effect_unknown(self) -> bool {
        match self {
            Signal::Clarifai(code) => !REFUSED.contains(&code.number()),
            Signal::Grpc(_) | Signal::AttemptTimeout => true,
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Signal::Clarifai(code) => fmt::Display::fmt(code, f),
            Signal::Grpc(code) => f.write_str(grpc_code_name(*code)),
            Signal::AttemptTimeout => f.write_str("attempt timeout"),
        }
    }
}

/// A failed attempt: its code and what the server said about retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) signal: Signal,
    pub(crate) pushback: Option<Pushback>,
}

/// A failed attempt, described for [`Policy::next_delay`](super::Policy::next_delay): what it
/// failed with, what the server said about retrying, and the method it called.
///
/// [`RetryLayer`](super::RetryLayer) and [`call`](super::call) build these themselves from what
/// they read; this type is for driving a [`Policy`](super::Policy) by hand (a simulation, a
/// client of another transport).
///
/// # Examples
///
/// ```
/// use clarifai_status::grpc::Pushback;
/// use clarifai_status::retry::AttemptFailure;
/// use clarifai_status::StatusCode;
/// use std::time::Duration;
///
/// let busy = AttemptFailure::clarifai(StatusCode::ModelBusyPleaseRetry)
///     .pushback(Pushback::After(Duration::from_secs(2)))
///     .method("/clarifai.api.V2/PostModelOutputs");
/// assert!(!busy.effect_unknown()); // refused before it took effect
/// assert!(AttemptFailure::grpc(tonic::Code::Unavailable).effect_unknown());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptFailure {
    pub(crate) failure: Failure,
    pub(crate) method: Option<Box<str>>,
}

impl AttemptFailure {
    /// An attempt that failed with a Clarifai code (carried on a gRPC error, or in the body of
    /// an OK response).
    ///
    /// # Examples
    ///
    /// ```
    /// let throttled = clarifai_status::retry::AttemptFailure::clarifai(clarifai_status::StatusCode::ConnThrottled);
    /// # let _ = throttled;
    /// ```
    pub fn clarifai(code: impl Into<Code>) -> AttemptFailure {
        AttemptFailure::of(Signal::Clarifai(code.into()))
    }

    /// An attempt that failed with a plain gRPC code (no Clarifai code carried); a lost
    /// connection reads as `UNAVAILABLE`.
    ///
    /// # Examples
    ///
    /// ```
    /// let lost = clarifai_status::retry::AttemptFailure::grpc(tonic::Code::Unavailable);
    /// # let _ = lost;
    /// ```
    pub fn grpc(code: tonic::Code) -> AttemptFailure {
        AttemptFailure::of(Signal::Grpc(code))
    }

    /// An attempt cut by the policy's [per-attempt timeout](super::Policy::attempt_timeout):
    /// retryable (whatever the plain gRPC codes the policy retries), with an unknown effect.
    ///
    /// # Examples
    ///
    /// ```
    /// let hung = clarifai_status::retry::AttemptFailure::attempt_timeout();
    /// assert!(hung.effect_unknown());
    /// ```
    pub fn attempt_timeout() -> AttemptFailure {
        AttemptFailure::of(Signal::AttemptTimeout)
    }

    /// The failure of a `tonic::Status`, read as [`call`](super::call) reads it: a carried
    /// Clarifai code, else the gRPC code, and the pushback in its details or metadata.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::retry::AttemptFailure;
    ///
    /// let failure = AttemptFailure::from_status(&tonic::Status::unavailable("down"));
    /// assert_eq!(failure, AttemptFailure::grpc(tonic::Code::Unavailable));
    /// ```
    pub fn from_status(status: &tonic::Status) -> AttemptFailure {
        AttemptFailure {
            failure: from_status(status),
            method: None,
        }
    }

    /// Sets the server's word on retrying (replacing the drawn backoff, or saying not to retry).
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::grpc::Pushback;
    /// use clarifai_status::retry::AttemptFailure;
    ///
    /// let stop = AttemptFailure::grpc(tonic::Code::Unavailable).pushback(Pushback::DoNotRetry);
    /// # let _ = stop;
    /// ```
    pub fn pushback(mut self, pushback: Pushback) -> AttemptFailure {
        self.failure.pushback = Some(pushback);
        self
    }

    /// Sets the method path the attempt called (`/clarifai.api.V2/PostModelOutputs`), for the
    /// policy's [per-method rule](super::Policy::idempotent_methods).
    ///
    /// # Examples
    ///
    /// ```
    /// let failure = clarifai_status::retry::AttemptFailure::grpc(tonic::Code::Unavailable)
    ///     .method("/clarifai.api.V2/GetModel");
    /// # let _ = failure;
    /// ```
    pub fn method(mut self, path: impl Into<String>) -> AttemptFailure {
        self.method = Some(path.into().into_boxed_str());
        self
    }

    /// Whether the attempt may have taken effect on the server: every failure except the
    /// Clarifai codes that mean the request was refused first (`CONN_THROTTLED`,
    /// `CONN_EXCEED_HOURLY_LIMIT`, `MODEL_BUSY_PLEASE_RETRY`, `MODEL_LOADING`,
    /// `MODEL_DEPLOYING`, `MODEL_QUEUED_FOR_DEPLOYMENT`, `RPC_REQUEST_QUEUE_FULL`).
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::retry::AttemptFailure;
    /// use clarifai_status::StatusCode;
    ///
    /// assert!(!AttemptFailure::clarifai(StatusCode::ConnThrottled).effect_unknown());
    /// assert!(AttemptFailure::clarifai(StatusCode::RpcServerUnavailable).effect_unknown());
    /// ```
    pub fn effect_unknown(&self) -> bool {
        self.failure.signal.effect_unknown()
    }

    fn of(signal: Signal) -> AttemptFailure {
        AttemptFailure {
            failure: Failure {
                signal,
                pushback: None,
            },
            method: None,
        }
    }
}

/// A response's headers, as a tower layer sees them. `None`: the call is committed (gRFC A6):
/// `grpc-status: 0` in Trailers-Only headers, or HTTP 200 with the status still to come in the
/// trailers, where a layer can no longer act on it.
///
/// A carried Clarifai code counts only when it is a failure ([`grpc::error_code`]): an error
/// (a `grpc-status` other than 0, or a bare HTTP error) claiming SUCCESS, an in-progress code or
/// 0 is read by its gRPC code.
pub(crate) fn from_headers(status: http::StatusCode, headers: &HeaderMap) -> Option<Failure> {
    // The success path, without parsing a header name.
    if status == http::StatusCode::OK && !headers.contains_key(&GRPC_STATUS) {
        return None;
    }
    let signal = match grpc::read_grpc_code(headers) {
        Some(tonic::Code::Ok) => return None,
        Some(code) => grpc::read_code(headers).map_or(Signal::Grpc(code), Signal::Clarifai),
        None if status == http::StatusCode::OK => return None,
        // A proxy's bare HTTP error: read it as a gRPC client would.
        None => grpc::read_code(headers)
            .and_then(grpc::error_code)
            .map_or(Signal::Grpc(grpc_code_from_http(status)), Signal::Clarifai),
    };
    Some(Failure {
        signal,
        pushback: pushback(headers, None),
    })
}

/// An attempt cut by the policy's per-attempt timeout.
pub(crate) fn timed_out() -> Failure {
    Failure {
        signal: Signal::AttemptTimeout,
        pushback: None,
    }
}

/// A gRPC error, as a typed client sees it.
pub(crate) fn from_status(status: &tonic::Status) -> Failure {
    let signal = status
        .carried_clarifai_code()
        .map_or(Signal::Grpc(status.code()), Signal::Clarifai);
    Failure {
        signal,
        pushback: pushback(status.metadata().as_ref(), status.clarifai_retry_delay()),
    }
}

/// An OK response whose message carries a status: a failure when that status is one.
pub(crate) fn from_response<R: HasStatus>(response: &tonic::Response<R>) -> Option<Failure> {
    let code = response.get_ref().status_code()?;
    match code.outcome() {
        Outcome::Success | Outcome::InProgress => None,
        Outcome::Failure => Some(Failure {
            signal: Signal::Clarifai(code),
            pushback: pushback(response.metadata().as_ref(), None),
        }),
    }
}

/// The server's word on retrying: a "do not retry" pushback wins; else `RetryInfo` (decoded
/// already, or in the details header), `grpc-retry-pushback-ms`, then HTTP `Retry-After`.
fn pushback(headers: &HeaderMap, retry_info: Option<Duration>) -> Option<Pushback> {
    if grpc::pushback(headers) == Some(Pushback::DoNotRetry) {
        return Some(Pushback::DoNotRetry);
    }
    retry_info
        .or_else(|| grpc::read_retry_delay(headers))
        .or_else(|| rest::read_retry_after(headers))
        .map(Pushback::After)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::ErrorBuilder;
    use crate::StatusCode;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (http::HeaderName::from_static(k), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn trailers_only_ok_and_plain_200_commit() {
        let ok = http::StatusCode::OK;
        assert_eq!(from_headers(ok, &headers(&[("grpc-status", "0")])), None);
        assert_eq!(from_headers(ok, &headers(&[])), None);
    }

    #[test]
    fn carried_code_wins_over_grpc_code() {
        let h = headers(&[("grpc-status", "14"), ("clarifai-status-code", "11008")]);
        let failure = from_headers(http::StatusCode::OK, &h).unwrap();
        assert_eq!(failure.signal, Signal::Clarifai(Code::new(11008)));
    }

    #[test]
    fn bare_http_error_maps_like_grpc() {
        let failure = from_headers(http::StatusCode::BAD_GATEWAY, &headers(&[])).unwrap();
        assert_eq!(failure.signal, Signal::Grpc(tonic::Code::Unavailable));
        let h = headers(&[("retry-after", "2")]);
        let failure = from_headers(http::StatusCode::SERVICE_UNAVAILABLE, &h).unwrap();
        assert_eq!(
            failure.pushback,
            Some(Pushback::After(Duration::from_secs(2)))
        );
    }

    #[test]
    fn an_error_claiming_success_carries_no_code() {
        for claimed in ["10000", "0", "21101"] {
            let h = headers(&[("clarifai-status-code", claimed)]);
            let failure = from_headers(http::StatusCode::SERVICE_UNAVAILABLE, &h).unwrap();
            assert_eq!(failure.signal, Signal::Grpc(tonic::Code::Unavailable), "{claimed}");
            let h = headers(&[("grpc-status", "14"), ("clarifai-status-code", claimed)]);
            let failure = from_headers(http::StatusCode::OK, &h).unwrap();
            assert_eq!(failure.signal, Signal::Grpc(tonic::Code::Unavailable), "{claimed}");
        }
    }

    #[test]
    fn unparseable_grpc_status_on_200_is_unknown_not_a_commit() {
        let h = headers(&[("grpc-status", "fourteen")]);
        let failure = from_headers(http::StatusCode::OK, &h).unwrap();
        assert_eq!(failure.signal, Signal::Grpc(tonic::Code::Unknown));
    }

    #[test]
    fn negative_pushback_means_do_not_retry() {
        let h = headers(&[("grpc-status", "14"), ("grpc-retry-pushback-ms", "-1")]);
        let failure = from_headers(http::StatusCode::OK, &h).unwrap();
        assert_eq!(failure.pushback, Some(Pushback::DoNotRetry));
    }

    #[test]
    fn status_carries_code_and_retry_info() {
        let status = ErrorBuilder::new(StatusCode::ConnThrottled)
            .retry_after(Duration::from_millis(40))
            .build();
        let failure = from_status(&status);
        assert_eq!(
            failure.signal,
            Signal::Clarifai(StatusCode::ConnThrottled.into())
        );
        assert_eq!(
            failure.pushback,
            Some(Pushback::After(Duration::from_millis(40)))
        );
        assert_eq!(
            from_status(&tonic::Status::unavailable("x")).signal,
            Signal::Grpc(tonic::Code::Unavailable)
        );
    }
}
