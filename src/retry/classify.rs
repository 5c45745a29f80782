//! Reading what an attempt ended with from each signal Clarifai sends.

use std::fmt;
use std::time::Duration;

use http::{HeaderMap, HeaderName};

use crate::grpc::{self, Pushback, StatusExt as _};
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
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Signal::Clarifai(code) => fmt::Display::fmt(code, f),
            Signal::Grpc(code) => f.write_str(grpc_code_name(*code)),
        }
    }
}

/// A failed attempt: its code and what the server said about retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) signal: Signal,
    pub(crate) pushback: Option<Pushback>,
}

/// A response's headers, as a tower layer sees them. `None`: the call is committed (gRFC A6):
/// `grpc-status: 0` in Trailers-Only headers, or HTTP 200 with the status still to come in the
/// trailers, where a layer can no longer act on it.
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
            .map_or(Signal::Grpc(grpc_code_from_http(status)), Signal::Clarifai),
    };
    Some(Failure {
        signal,
        pushback: pushback(headers, None),
    })
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
