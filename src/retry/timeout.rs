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
