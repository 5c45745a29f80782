//! The `grpc-timeout` request header: `<1 to 8 digits><unit>`, unit one of `H M S m u n`.
//!
//! Source: gRPC over HTTP/2 (`doc/PROTOCOL-HTTP2.md`, "Timeout").

use std::time::Duration;

use http::{HeaderName, HeaderValue};

/// The request header that carries a call's timeout.
pub(crate) static HEADER: HeaderName = HeaderName::from_static("grpc-timeout");

/// The most digits a `grpc-timeout` value may have.
const MAX_DIGITS: usize = 8;
const MAX_VALUE: u128 = 99_999_999;

/// Parses a `grpc-timeout` value; `None` for anything malformed (too many digits, no digits, an
/// unknown unit, non-ASCII).
pub(crate) fn parse(value: &[u8]) -> Option<Duration> {
    let (&unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > MAX_DIGITS || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Encodes a timeout in the finest unit that fits in eight digits, rounding down.
pub(crate) fn encode(timeout: Duration) -> HeaderValue {
    let nanos = timeout.as_nanos();
    let (value, unit) = [
        (1, 'n'),
        (1_000, 'u'),
        (1_000_000, 'm'),
        (1_000_000_000, 'S'),
        (60_000_000_000, 'M'),
        (3_600_000_000_000, 'H'),
    ]
    .into_iter()
    .map(|(per, unit)| (nanos / per, unit))
    .find(|(value, _)| *value <= MAX_VALUE)
    .unwrap_or((MAX_VALUE, 'H'));
    HeaderValue::from_str(&format!("{value}{unit}")).unwrap_or(HeaderValue::from_static("0n"))
}

/// A bound the client set itself ran out: the policy's deadline, a per-attempt timeout, the
/// poller's deadline. The `tonic::Status` it makes ([`expired`]) is `DEADLINE_EXCEEDED` with this
/// as its [`source`](std::error::Error::source), as tonic makes the statuses of its own transport
/// errors: no server sent it, and [`clarifai_code`](crate::grpc::ClarifaiStatusExt::clarifai_code)
/// reads it as [`LOCAL_FAILURE`](crate::grpc::LOCAL_FAILURE).
#[derive(Debug)]
struct Expired {
    status: tonic::Status,
}

impl std::fmt::Display for Expired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "client-side bound: {}", self.status.message())
    }
}

impl std::error::Error for Expired {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.status)
    }
}

/// The status of a call cut by one of the client's own bounds: `DEADLINE_EXCEEDED` with
/// `message`, made by [`tonic::Status::from_error`] from an error whose source is that status, so
/// it has a source and carries no code.
pub(crate) fn expired(message: &'static str) -> tonic::Status {
    tonic::Status::from_error(Box::new(Expired {
        status: tonic::Status::deadline_exceeded(message),
    }))
}

/// Whether `at` has come, within the timer wheel's 1 ms resolution.
pub(crate) fn reached(at: tokio::time::Instant) -> bool {
    tokio::time::Instant::now() + Duration::from_millis(1) >= at
}

/// The sooner of two optional instants.
pub(crate) fn earliest(
    a: Option<tokio::time::Instant>,
    b: Option<tokio::time::Instant>,
) -> Option<tokio::time::Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        let cases: [(&[u8], Duration); 6] = [
            (b"1H", Duration::from_secs(3600)),
            (b"2M", Duration::from_secs(120)),
            (b"3S", Duration::from_secs(3)),
            (b"250m", Duration::from_millis(250)),
            (b"99999999u", Duration::from_micros(99_999_999)),
            (b"7n", Duration::from_nanos(7)),
        ];
        for (raw, want) in cases {
            assert_eq!(parse(raw), Some(want), "{raw:?}");
        }
    }

    #[test]
    fn rejects_malformed_values() {
        for raw in [
            &b""[..],
            b"m",
            b"123456789m",
            b"12x",
            b"-1S",
            b"1.5S",
            b" 1S",
            "١S".as_bytes(),
        ] {
            assert_eq!(parse(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn expired_is_a_local_deadline_exceeded() {
        use crate::grpc::ClarifaiStatusExt as _;
        let status = expired("deadline");
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
        assert_eq!(status.message(), "deadline");
        assert!(std::error::Error::source(&status).is_some());
        assert_eq!(status.carried_clarifai_code(), None);
        assert_eq!(status.clarifai_code(), crate::grpc::LOCAL_FAILURE);
        // Through a `BoxError`, as tonic's client reads a service's error.
        let again = tonic::Status::from_error(Box::new(status));
        assert_eq!(again.clarifai_code(), crate::grpc::LOCAL_FAILURE);
    }

    #[test]
    fn encode_round_trips_within_a_unit() {
        for timeout in [
            Duration::from_nanos(5),
            Duration::from_millis(1500),
            Duration::from_secs(30),
            Duration::from_secs(86_400 * 365),
        ] {
            let encoded = encode(timeout);
            let back = parse(encoded.as_bytes()).unwrap();
            assert!(back <= timeout, "{encoded:?}");
            assert!(timeout - back < Duration::from_secs(3600), "{encoded:?}");
        }
        assert_eq!(encode(Duration::from_millis(1500)), "1500000u");
    }
}
