//! The HTTP response readers: `rest::{read_code_or_fallback, read_status_or_fallback, read_retry_after}` on any status,
//! headers and body a peer may send.
#![no_main]

use clarifai_status::rest;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    status: u16,
    code_header: Option<&'a [u8]>,
    retry_after: Option<&'a [u8]>,
    body: &'a [u8],
}

fuzz_target!(|input: Input<'_>| {
    let status = http::StatusCode::from_u16(100 + input.status % 900)
        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut headers = http::HeaderMap::new();
    for (key, value) in [
        (clarifai_status::CODE_HEADER, input.code_header),
        ("retry-after", input.retry_after),
    ] {
        if let Some(Ok(value)) = value.map(http::HeaderValue::from_bytes) {
            headers.insert(key, value);
        }
    }
    let code = rest::read_code_or_fallback(status, &headers, input.body);
    let read = rest::read_status_or_fallback(status, &headers, input.body);
    assert_eq!(read.code, code.number());
    let _ = rest::read_retry_after(&headers);
});
