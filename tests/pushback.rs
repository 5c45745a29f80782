//! Pushback reading: the home of every test of how the retry delay a server asked for is read.
//! gRPC: `grpc-retry-pushback-ms` (`grpc::read_pushback`), and a `RetryInfo` detail before it
//! (`grpc::read_retry_delay` on headers, `ClarifaiStatusExt::clarifai_retry_delay` on a
//! `tonic::Status`). HTTP: `Retry-After` in whole seconds (`rest::read_retry_after`, and
//! `rest::set_retry_after`, which writes what it reads).
//!
//! What a server sends for each code (both the `RetryInfo` and the pushback header) is the wire
//! contract's, in `tests/grpc_contract.rs`; what the retry layer does with a delay, the
//! `tests/retry_*.rs` files'.

use std::time::Duration;

use clarifai_status::grpc::{self, ClarifaiStatusExt, ErrorBuilder, Pushback};
use clarifai_status::{rest, StatusCode};
use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use tonic::metadata::MetadataMap;

mod common;
use common::peer::{decimal, numeric_header_value};

fn header_map(name: &'static str, value: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let value = HeaderValue::from_bytes(value).expect("a valid header value");
    headers.insert(name, value);
    headers
}

/// A plain error (no details) whose metadata are `headers`.
fn plain_error(headers: HeaderMap) -> tonic::Status {
    tonic::Status::with_metadata(
        tonic::Code::Unavailable,
        "busy",
        MetadataMap::from_headers(headers),
    )
}

/// The whitespace `grpc-retry-pushback-ms` and `Retry-After` ignore around their number:
/// Unicode's, as their docs say ("surrounding spaces").
fn any_space(c: char) -> bool {
    c.is_whitespace()
}

/// `HeaderValue::to_str` succeeds only on visible ASCII (and tab).
fn visible_ascii(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|b| *b == b'\t' || (0x20..0x7f).contains(b))
}

// ---- grpc-retry-pushback-ms ----

#[test]
fn pushback_is_milliseconds_or_do_not_retry_on_every_reader() {
    let ms = Duration::from_millis;
    let cases = [
        ("250", Pushback::After(ms(250))),
        ("0", Pushback::After(Duration::ZERO)),
        ("+150", Pushback::After(ms(150))),
        (" 150\t", Pushback::After(ms(150))),
        ("86400000", Pushback::After(ms(86_400_000))),
        ("-1", Pushback::DoNotRetry),
        ("-250", Pushback::DoNotRetry),
        ("", Pushback::DoNotRetry),
        ("abc", Pushback::DoNotRetry),
        ("1.5", Pushback::DoNotRetry),
        ("1e3", Pushback::DoNotRetry),
        ("99999999999999999999999999", Pushback::DoNotRetry),
    ];
    for (value, want) in cases {
        let headers = header_map("grpc-retry-pushback-ms", value.as_bytes());
        assert_eq!(grpc::read_pushback(&headers), Some(want), "{value:?}");
        let delay = match want {
            Pushback::After(delay) => Some(delay),
            Pushback::DoNotRetry => None,
        };
        assert_eq!(grpc::read_retry_delay(&headers), delay, "{value:?}");
        assert_eq!(plain_error(headers).clarifai_retry_delay(), delay);
    }
    let none = HeaderMap::new();
    assert_eq!(grpc::read_pushback(&none), None);
    assert_eq!(grpc::read_retry_delay(&none), None);
    assert_eq!(plain_error(none).clarifai_retry_delay(), None);
}

#[test]
fn retry_info_is_read_before_the_pushback() {
    let asked = Duration::from_millis(1500);
    for pushback in ["250", "0"] {
        let mut error = ErrorBuilder::new(StatusCode::ModelBusyPleaseRetry)
            .retry_after(asked)
            .build();
        error
            .metadata_mut()
            .insert("grpc-retry-pushback-ms", pushback.parse().unwrap());
        assert_eq!(error.clarifai_retry_delay(), Some(asked), "{pushback}");

        let headers = error.into_http::<()>().headers().clone();
        assert_eq!(
            grpc::read_pushback(&headers),
            Some(Pushback::After(Duration::from_millis(
                pushback.parse().unwrap()
            )))
        );
        assert_eq!(grpc::read_retry_delay(&headers), Some(asked), "{pushback}");
    }
}

// ---- Retry-After ----

#[test]
fn retry_after_is_set_in_whole_seconds_rounded_up_and_read_back() {
    let cases = [
        (Duration::ZERO, 0),
        (Duration::from_nanos(1), 1),
        (Duration::from_millis(999), 1),
        (Duration::from_secs(1), 1),
        (Duration::from_millis(1500), 2),
        (Duration::from_secs(3600), 3600),
        (Duration::from_secs(u64::MAX), u64::MAX),
    ];
    for (delay, secs) in cases {
        let mut response = http::Response::new(());
        rest::set_retry_after(&mut response, delay);
        let value = response
            .headers()
            .get("retry-after")
            .map(HeaderValue::as_bytes);
        assert_eq!(value, Some(secs.to_string().as_bytes()), "{delay:?}");
        let read = rest::read_retry_after(response.headers());
        assert_eq!(read, Some(Duration::from_secs(secs)));
    }
}

#[test]
fn set_retry_after_saturates_a_delay_beyond_u64_seconds() {
    // u64::MAX seconds plus a fraction rounds up past u64: it must saturate, not overflow (a
    // panic in debug builds, and `Retry-After: 0`, "retry now", in release builds).
    let mut response = http::Response::new(());
    rest::set_retry_after(&mut response, Duration::MAX);
    let value = response
        .headers()
        .get("retry-after")
        .map(HeaderValue::as_bytes);
    assert_eq!(value, Some(u64::MAX.to_string().as_bytes()));
}

#[test]
fn retry_after_that_is_not_a_number_of_seconds_is_not_read() {
    let mut headers = HeaderMap::new();
    assert_eq!(rest::read_retry_after(&headers), None);
    for value in [
        "",
        "abc",
        "-1",
        "1.5",
        "Wed, 21 Oct 2015 07:28:00 GMT",
        "18446744073709551616",
    ] {
        headers.insert("retry-after", value.parse().unwrap());
        assert_eq!(rest::read_retry_after(&headers), None, "{value:?}");
    }
    headers.insert("retry-after", " 7 ".parse().unwrap());
    assert_eq!(
        rest::read_retry_after(&headers),
        Some(Duration::from_secs(7))
    );
}

// ---- Any value a peer may send, against the documented meaning ----

proptest! {
    #[test]
    fn pushback_header_is_a_delay_or_do_not_retry(value in numeric_header_value()) {
        let headers = header_map("grpc-retry-pushback-ms", &value);
        let want = match decimal::<i64>(&value, any_space, true) {
            Some(ms) if ms >= 0 => Pushback::After(Duration::from_millis(ms.unsigned_abs())),
            _ => Pushback::DoNotRetry,
        };
        prop_assert_eq!(grpc::read_pushback(&headers), Some(want));
        let delay = match want {
            Pushback::After(delay) => Some(delay),
            Pushback::DoNotRetry => None,
        };
        prop_assert_eq!(grpc::read_retry_delay(&headers), delay);
        prop_assert_eq!(plain_error(headers).clarifai_retry_delay(), delay);
    }

    #[test]
    fn retry_after_header_is_whole_seconds_or_none(value in numeric_header_value()) {
        let headers = header_map("retry-after", &value);
        let want = if visible_ascii(&value) {
            decimal::<u64>(&value, any_space, false).map(Duration::from_secs)
        } else {
            None
        };
        prop_assert_eq!(rest::read_retry_after(&headers), want);
    }
}
