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

/// A response as the layer receives it: its status headers [sanitized](grpc::sanitize) (so no
/// reader after the layer, tonic's client included, panics on them or reads another code), then
/// read by [`from_headers`].
pub(crate) fn inspect(response: &mut http::Response<tonic::body::Body>) -> Option<Failure> {
    // The success path: one lookup, no change. tonic reads status headers (and panics on their
    // details) only when `grpc-status` is there.
    if response.status() == http::StatusCode::OK && !response.headers().contains_key(&GRPC_STATUS) {
        return None;
    }
    grpc::sanitize(response.headers_mut());
    from_headers(response.status(), response.headers())
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
        Some(code) => grpc::read_code(headers)
            .and_then(decisive)
            .map_or(Signal::Grpc(code), Signal::Clarifai),
        None if status == http::StatusCode::OK => return None,
        // A proxy's bare HTTP error: read it as a gRPC client would.
        None => grpc::read_code(headers)
            .and_then(grpc::error_code)
            .and_then(decisive)
            .map_or(Signal::Grpc(grpc_code_from_http(status)), Signal::Clarifai),
    };
    Some(Failure {
        signal,
        pushback: pushback(headers, None),
    })
}

/// A carried code the policy decides on: any but `ZERO`, proto3's unset, which says nothing about
/// retrying (the attempt is then decided by its gRPC code).
fn decisive(code: Code) -> Option<Code> {
    (code.number() != 0).then_some(code)
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
        .and_then(decisive)
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

/// The first message of an OK response, its status code read by the layer's peek: a failure when
/// that code is one, read as [`from_response`] reads a decoded response (the pushback from the
/// response headers, where the server's `ErrorToInBodyLayer` keeps it).
pub(crate) fn in_body(code: i32, headers: &HeaderMap) -> Option<Failure> {
    let code = Code::new(code);
    match code.outcome() {
        Outcome::Success | Outcome::InProgress => None,
        Outcome::Failure => Some(Failure {
            signal: Signal::Clarifai(code),
            pushback: pushback(headers, None),
        }),
    }
}

/// The server's word on retrying: a "do not retry" pushback wins; else `RetryInfo` (decoded
/// already, or in the details header), `grpc-retry-pushback-ms`, then HTTP `Retry-After`.
fn pushback(headers: &HeaderMap, retry_info: Option<Duration>) -> Option<Pushback> {
    if grpc::read_pushback(headers) == Some(Pushback::DoNotRetry) {
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
            assert_eq!(
                failure.signal,
                Signal::Grpc(tonic::Code::Unavailable),
                "{claimed}"
            );
            let h = headers(&[("grpc-status", "14"), ("clarifai-status-code", claimed)]);
            let failure = from_headers(http::StatusCode::OK, &h).unwrap();
            assert_eq!(
                failure.signal,
                Signal::Grpc(tonic::Code::Unavailable),
                "{claimed}"
            );
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

    mod properties {
        use super::*;
        use proptest::prelude::*;

        const NAMES: [&str; 7] = [
            "grpc-status",
            "grpc-message",
            "grpc-status-details-bin",
            "clarifai-status-code",
            "grpc-retry-pushback-ms",
            "retry-after",
            "content-type",
        ];

        /// A header value as a peer may send it: any bytes HTTP allows, or one of the values
        /// that matter to the readers.
        fn value() -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![
                proptest::collection::vec(
                    prop_oneof![Just(b'\t'), 0x20u8..0x7f, 0x80u8..=0xff],
                    0..24
                ),
                prop_oneof![
                    Just("0"),
                    Just("2"),
                    Just("14"),
                    Just("10000"),
                    Just("21101"),
                    Just("11005"),
                    Just("!!!"),
                    Just("%FF%FE"),
                    Just("-1"),
                    Just("9223372036854775807"),
                    Just("18446744073709551615"),
                    Just("CAgSAA"),
                    Just("CA4="),
                ]
                .prop_map(|v| v.as_bytes().to_vec()),
            ]
        }

        fn header_map() -> impl Strategy<Value = HeaderMap> {
            proptest::collection::vec((0..NAMES.len(), value()), 0..8).prop_map(|pairs| {
                let mut headers = HeaderMap::new();
                for (name, value) in pairs {
                    if let Ok(value) = http::HeaderValue::from_bytes(&value) {
                        headers.append(HeaderName::from_static(NAMES[name]), value);
                    }
                }
                headers
            })
        }

        fn http_status() -> impl Strategy<Value = http::StatusCode> {
            prop_oneof![Just(200u16), Just(429), Just(502), Just(503), 100u16..600]
                .prop_map(|n| http::StatusCode::from_u16(n).unwrap_or(http::StatusCode::OK))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Any headers: no panic, never a success or in-progress code read from an error,
            /// and after sanitizing, tonic's own reading does not panic and the layer reads the
            /// same.
            #[test]
            fn any_headers_are_read_safely(status in http_status(), headers in header_map()) {
                let read = from_headers(status, &headers);
                if let Some(Failure { signal: Signal::Clarifai(code), .. }) = read {
                    prop_assert!(grpc::error_code(code).is_some(), "{code} read from an error");
                }
                let mut sanitized = headers.clone();
                grpc::sanitize(&mut sanitized);
                let _ = tonic::Status::from_header_map(&sanitized);
                prop_assert_eq!(from_headers(status, &sanitized), read);

                let mut response = http::Response::new(tonic::body::Body::empty());
                *response.status_mut() = status;
                *response.headers_mut() = headers;
                prop_assert_eq!(inspect(&mut response), read);
                let _ = tonic::Status::from_header_map(response.headers());
            }
        }
    }
}
