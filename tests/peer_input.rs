//! Whatever a peer sends (header values, detail bytes, JSON bodies, numbers out of range) is read
//! without panicking, and yields the documented result: a source that does not parse is skipped
//! and the next one is tried, down to the fallback. This file owns that order of sources under
//! arbitrary input; the spelling of a code as text is `tests/spelling.rs`'s, and the reading of a
//! retry delay (`grpc-retry-pushback-ms`, `Retry-After`) is `tests/pushback.rs`'s.
//!
//! The expectations are independent of the crate's readers: the helpers below (`code_text`,
//! `json_code`, `body_code`, `details_say`, and `decimal` in `tests/common/peer.rs`) are written
//! from the documented contract (the spelling rules on `Code`, "Codes in text"; the wire contract
//! in `grpc`), digit by digit and name by name, calling neither the crate's text readers nor
//! `str::parse`, so a bug in `src/code.rs`, `src/rest.rs` or `src/grpc/` cannot also be the
//! expectation.
// Reads and writes Clarifai's REST JSON bodies.
#![cfg(feature = "json")]

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use base64::Engine as _;
use clarifai_status::grpc::{self, ClarifaiStatusExt};
use clarifai_status::mapping::{fallback_from_grpc, fallback_from_http};
use clarifai_status::pb::rpc;
use clarifai_status::{rest, Code, StatusCode};
use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use prost::Message as _;
use serde_json::Value;
use tonic::metadata::MetadataMap;

mod common;
use common::peer::{decimal, header_bytes, numberish};

const DOMAIN: &str = "api.clarifai.com";
const ERROR_INFO_URL: &str = "type.googleapis.com/google.rpc.ErrorInfo";
const RETRY_INFO_URL: &str = "type.googleapis.com/google.rpc.RetryInfo";

// ---- What the documentation says a value means ----

/// The whitespace the spelling rules ignore around a code: ASCII space, tab, CR, LF, form feed
/// (not vertical tab, not Unicode spaces).
fn code_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n' | '\x0c')
}

/// Every name of the table (printed and alias) with its number: data, not a reader.
static NAME_NUMBERS: LazyLock<HashMap<&'static str, i32>> = LazyLock::new(|| {
    StatusCode::all()
        .flat_map(|c| {
            std::iter::once(c.name())
                .chain(c.aliases().iter().copied())
                .map(move |name| (name, c.number()))
        })
        .collect()
});

/// A name exactly as the table spells it.
fn exact_name(text: &str) -> Option<Code> {
    NAME_NUMBERS.get(text).copied().map(Code::new)
}

/// A code written as text, by the spelling rules: surrounding ASCII whitespace ignored, then a
/// name exactly as the table spells it, or a decimal `i32` with an optional sign.
fn code_text(text: &[u8]) -> Option<Code> {
    let trimmed = std::str::from_utf8(text).ok()?.trim_matches(code_space);
    exact_name(trimmed).or_else(|| decimal::<i32>(text, code_space, true).map(Code::new))
}

/// The Clarifai code of a JSON `status.code`: an integer within `i32` (no fraction, no
/// exponent), or a string by the spelling rules.
fn json_code(value: &Value) -> Option<Code> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .map(Code::new),
        Value::String(s) => code_text(s.as_bytes()),
        _ => None,
    }
}

/// The code a body carries, reading it the way any JSON reader would.
fn body_code(body: &[u8]) -> Option<Code> {
    let value: Value = serde_json::from_slice(body).ok()?;
    json_code(value.get("status")?.as_object()?.get("code")?)
}

/// What details bytes say: the first Clarifai `ErrorInfo` (domain `api.clarifai.com`) whose `code`
/// metadata is an `i32` or whose reason is a known name; the first valid `RetryInfo` delay.
fn details_say(details: &[u8]) -> (Option<Code>, Option<Duration>) {
    let Ok(status) = rpc::Status::decode(details) else {
        return (None, None);
    };
    let mut code = None;
    let mut delay = None;
    for any in &status.details {
        if any.type_url == ERROR_INFO_URL && code.is_none() {
            if let Ok(info) = rpc::ErrorInfo::decode(any.value.as_slice()) {
                if info.domain == DOMAIN {
                    // Written by a machine: the number as is (no spaces), the reason exact.
                    code = info
                        .metadata
                        .get("code")
                        .and_then(|v| decimal::<i32>(v.as_bytes(), |_| false, true))
                        .map(Code::new)
                        .or_else(|| exact_name(&info.reason));
                }
            }
        } else if any.type_url == RETRY_INFO_URL && delay.is_none() {
            delay = rpc::RetryInfo::decode(any.value.as_slice())
                .ok()
                .and_then(|r| r.retry_delay)
                .and_then(|d| {
                    let secs = u64::try_from(d.seconds).ok()?;
                    let nanos = u32::try_from(d.nanos).ok().filter(|n| *n < 1_000_000_000)?;
                    Some(Duration::new(secs, nanos))
                });
        }
    }
    (code, delay)
}

// ---- Strategies ----

/// Any header value: arbitrary accepted bytes, something that looks like a number, or a name,
/// padded with what a header may hold (spaces, tabs, non-ASCII bytes).
fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(prop::sample::select(header_bytes()), 0..48),
        numberish().prop_map(String::into_bytes),
        (
            "[ \t\u{a0}]{0,2}",
            prop::sample::select(names()),
            "[ \t\u{a0}]{0,2}"
        )
            .prop_map(|(before, name, after)| format!("{before}{name}{after}").into_bytes()),
    ]
}

fn header_map(name: &'static str, value: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let value = HeaderValue::from_bytes(value).expect("the strategy yields valid header values");
    headers.insert(name, value);
    headers
}

fn grpc_code() -> impl Strategy<Value = tonic::Code> {
    (0..17i32).prop_map(tonic::Code::from_i32)
}

fn http_status() -> impl Strategy<Value = http::StatusCode> {
    (100..=999u16).prop_map(|n| http::StatusCode::from_u16(n).expect("100..=999 is valid"))
}

/// Every name of the table, printed and alias.
fn names() -> Vec<&'static str> {
    StatusCode::all()
        .flat_map(|c| std::iter::once(c.name()).chain(c.aliases().iter().copied()))
        .collect()
}

/// Whitespace a peer might put around a code: the rules' (ASCII), and others.
fn padding() -> impl Strategy<Value = String> {
    "[ \t\r\n\x0b\x0c\u{a0}\u{3000}]{0,3}"
}

/// A string a peer might put where a code goes.
fn code_string() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(names()).prop_map(str::to_owned),
        prop::sample::select(names()).prop_map(|n| n.to_lowercase()),
        (padding(), prop::sample::select(names()), padding())
            .prop_map(|(before, name, after)| format!("{before}{name}{after}")),
        numberish(),
        ".{0,24}",
    ]
}

/// An `ErrorInfo` that is Clarifai's or nearly so.
fn error_info() -> impl Strategy<Value = rpc::ErrorInfo> {
    let domain = prop_oneof![Just(DOMAIN.to_owned()), ".{0,20}"];
    let code = prop::option::of(code_string());
    (
        code_string(),
        domain,
        code,
        prop::collection::btree_map(".{0,8}", ".{0,8}", 0..3),
    )
        .prop_map(|(reason, domain, code, mut metadata)| {
            metadata.remove("code");
            if let Some(code) = code {
                metadata.insert("code".to_owned(), code);
            }
            rpc::ErrorInfo {
                reason,
                domain,
                metadata,
            }
        })
}

fn retry_info() -> impl Strategy<Value = rpc::RetryInfo> {
    let duration = (
        any::<i64>(),
        any::<i32>(),
        0..100_000i64,
        0..1_000_000_000i32,
    )
        .prop_flat_map(|(s, n, small_s, valid_n)| {
            prop::sample::select(vec![(s, n), (small_s, valid_n), (small_s, n), (s, valid_n)])
        });
    prop::option::of(duration).prop_map(|d| rpc::RetryInfo {
        retry_delay: d.map(|(seconds, nanos)| prost_types::Duration { seconds, nanos }),
    })
}

/// A detail: a Clarifai-like `ErrorInfo`, a `RetryInfo`, or anything under any type URL.
fn any_detail() -> impl Strategy<Value = prost_types::Any> {
    let url = prop_oneof![
        Just(ERROR_INFO_URL.to_owned()),
        Just(RETRY_INFO_URL.to_owned()),
        ".{0,40}",
    ];
    prop_oneof![
        error_info().prop_map(|i| prost_types::Any {
            type_url: ERROR_INFO_URL.to_owned(),
            value: i.encode_to_vec(),
        }),
        retry_info().prop_map(|r| prost_types::Any {
            type_url: RETRY_INFO_URL.to_owned(),
            value: r.encode_to_vec(),
        }),
        (url, any::<Vec<u8>>()).prop_map(|(type_url, value)| prost_types::Any { type_url, value }),
    ]
}

/// Details bytes: arbitrary, or a `google.rpc.Status` of arbitrary details.
fn details_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any::<Vec<u8>>(),
        (
            any::<i32>(),
            ".{0,20}",
            prop::collection::vec(any_detail(), 0..4)
        )
            .prop_map(|(code, message, details)| rpc::Status {
                code,
                message,
                details,
            }
            .encode_to_vec()),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i32>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        code_string().prop_map(Value::from),
    ];
    let key = prop_oneof![
        Just("status".to_owned()),
        Just("code".to_owned()),
        Just("description".to_owned()),
        Just("req_id".to_owned()),
        Just("percent_completed".to_owned()),
        ".{0,8}",
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A body in Clarifai's shape whose `status.code` (and every other field) is anything.
fn status_body() -> impl Strategy<Value = Vec<u8>> {
    let fields = prop::collection::btree_map(
        prop::sample::select(vec![
            "description",
            "details",
            "percent_completed",
            "time_remaining",
            "req_id",
            "developer_notes",
            "http_status_code",
            "stack_trace",
        ]),
        json_value(),
        0..5,
    );
    let code = prop_oneof![
        json_value(),
        code_string().prop_map(Value::from),
        any::<i32>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
    ];
    (code, fields).prop_map(|(code, fields)| {
        let mut status: serde_json::Map<String, Value> =
            fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        status.insert("code".to_owned(), code);
        serde_json::json!({ "status": status })
            .to_string()
            .into_bytes()
    })
}

// ---- Properties ----

proptest! {
    #[test]
    fn code_header_is_read_or_skipped_for_the_next_source(
        value in header_value(),
        grpc_code in grpc_code(),
        http in http_status(),
        carried in prop::option::of(any::<i32>()),
    ) {
        let header = code_text(&value);
        let mut headers = header_map("clarifai-status-code", &value);
        prop_assert_eq!(grpc::read_code(&headers), header);

        let details = carried.map(|n| tonic::Status::from(Code::new(n)).details().to_vec());
        let status = tonic::Status::with_details_and_metadata(
            grpc_code,
            "peer",
            details.clone().unwrap_or_default().into(),
            MetadataMap::from_headers(headers.clone()),
        );
        // An error carries only a failure code (grpc::read_code's rule).
        let on_status = header
            .or(carried.map(Code::new))
            .filter(|c| grpc_code == tonic::Code::Ok || c.is_failure());
        let want = on_status.unwrap_or_else(|| fallback_from_grpc(grpc_code).into());
        prop_assert_eq!(status.clarifai_code(), want);
        prop_assert_eq!(status.carried_clarifai_code(), on_status);
        prop_assert_eq!(status.to_clarifai_status().code, want.number());

        // The same header on an HTTP response, over a body that may carry a code.
        let body = carried.map(|n| format!(r#"{{"status":{{"code":{n}}}}}"#)).unwrap_or_default();
        let want = header
            .or(carried.map(Code::new))
            .unwrap_or_else(|| fallback_from_http(http).into());
        prop_assert_eq!(rest::read_code_or_fallback(http, &headers, body.as_bytes()), want);
        prop_assert_eq!(rest::read_status_or_fallback(http, &headers, body.as_bytes()).code, want.number());

        // And on raw gRPC trailers, over base64 details.
        if let Some(details) = details {
            let encoded = base64::engine::general_purpose::STANDARD.encode(details);
            headers.insert("grpc-status-details-bin", HeaderValue::from_str(&encoded).unwrap());
            prop_assert_eq!(grpc::read_code(&headers), header.or(carried.map(Code::new)));
        }
    }

    #[test]
    fn grpc_status_header_is_a_code_in_range_or_unknown(value in header_value()) {
        let headers = header_map("grpc-status", &value);
        // gRPC's protocol writes the status as a plain decimal; anything else is UNKNOWN, as
        // tonic's client reads it.
        let canonical = (0..=16).find(|n: &i32| n.to_string().as_bytes() == &value[..]);
        let want = canonical.map_or(tonic::Code::Unknown, tonic::Code::from_i32);
        prop_assert_eq!(grpc::read_grpc_code(&headers), Some(want));
    }

    #[test]
    fn details_header_that_is_not_clarifai_base64_carries_no_code(
        value in header_value(),
        grpc_code in grpc_code(),
    ) {
        let mut headers = header_map("grpc-status-details-bin", &value);
        // Arbitrary text is at best base64 of garbage: it never forms a Clarifai ErrorInfo.
        prop_assert_eq!(grpc::read_code(&headers), None);
        prop_assert_eq!(grpc::read_retry_delay(&headers), None);
        headers.insert("grpc-status", HeaderValue::from(grpc_code as i32));
        prop_assert_eq!(grpc::read_grpc_code(&headers), Some(grpc_code));
        headers.insert("clarifai-status-code", HeaderValue::from_static("11008"));
        prop_assert_eq!(grpc::read_code(&headers), Some(Code::new(11008)));
    }

    #[test]
    fn base64_of_arbitrary_details_reads_what_the_details_say(
        details in details_bytes(),
        padded in any::<bool>(),
    ) {
        let engine = if padded {
            base64::engine::general_purpose::STANDARD
        } else {
            base64::engine::general_purpose::STANDARD_NO_PAD
        };
        let headers = header_map("grpc-status-details-bin", engine.encode(&details).as_bytes());
        let (code, delay) = details_say(&details);
        prop_assert_eq!(grpc::read_code(&headers), code);
        prop_assert_eq!(grpc::read_retry_delay(&headers), delay);
    }

    #[test]
    fn base64_of_garbage_carries_no_code(garbage in any::<Vec<u8>>()) {
        let encoded = base64::engine::general_purpose::STANDARD.encode(&garbage);
        let headers = header_map("grpc-status-details-bin", encoded.as_bytes());
        prop_assert_eq!(grpc::read_code(&headers), None);
    }

    #[test]
    fn arbitrary_details_read_what_they_say_else_the_grpc_fallback(
        details in details_bytes(),
        grpc_code in grpc_code(),
    ) {
        let status = tonic::Status::with_details(grpc_code, "peer", details.clone().into());
        let (code, delay) = details_say(&details);
        let code = code.filter(|c| grpc_code == tonic::Code::Ok || c.is_failure());
        let want = code.unwrap_or_else(|| fallback_from_grpc(grpc_code).into());
        prop_assert_eq!(status.clarifai_code(), want);
        prop_assert_eq!(status.carried_clarifai_code(), code);
        prop_assert_eq!(status.clarifai_retry_delay(), delay);
        let back = status.to_clarifai_status();
        prop_assert_eq!(back.code, want.number());
        prop_assert_eq!(back.description, "peer");
        prop_assert!(back.stack_trace.is_empty() && back.internal_details.is_empty());
    }

    #[test]
    fn arbitrary_bytes_as_details_fall_back_to_the_grpc_code(
        details in any::<Vec<u8>>(),
        grpc_code in grpc_code(),
    ) {
        let status = tonic::Status::with_details(grpc_code, "peer", details.into());
        prop_assert_eq!(status.clarifai_code(), fallback_from_grpc(grpc_code));
        prop_assert_eq!(status.carried_clarifai_code(), None);
        prop_assert_eq!(status.clarifai_retry_delay(), None);
        prop_assert_eq!(status.to_clarifai_status().code, fallback_from_grpc(grpc_code).number());
    }

    #[test]
    fn arbitrary_bytes_as_body_read_as_json_or_fall_back(
        body in any::<Vec<u8>>(),
        http in http_status(),
    ) {
        let empty = HeaderMap::new();
        let want = body_code(&body);
        prop_assert_eq!(rest::parse_json(&body).map(|s| s.code), want.map(Code::number));
        let want = want.unwrap_or_else(|| fallback_from_http(http).into());
        prop_assert_eq!(rest::read_code_or_fallback(http, &empty, &body), want);
        prop_assert_eq!(rest::read_status_or_fallback(http, &empty, &body).code, want.number());
    }

    #[test]
    fn arbitrary_json_reads_its_status_code_or_falls_back(
        value in json_value(),
        http in http_status(),
    ) {
        let body = value.to_string();
        let empty = HeaderMap::new();
        let want = body_code(body.as_bytes());
        prop_assert_eq!(rest::parse_json(body.as_bytes()).map(|s| s.code), want.map(Code::number));
        let want = want.unwrap_or_else(|| fallback_from_http(http).into());
        prop_assert_eq!(rest::read_code_or_fallback(http, &empty, body.as_bytes()), want);
    }

    #[test]
    fn status_code_of_any_json_value_is_read_or_falls_back(
        body in status_body(),
        http in http_status(),
    ) {
        let empty = HeaderMap::new();
        let want = body_code(&body);
        let parsed = rest::parse_json(&body);
        prop_assert_eq!(parsed.as_ref().map(|s| s.code), want.map(Code::number));
        if let Some(parsed) = parsed {
            prop_assert!(parsed.stack_trace.is_empty());
        }
        let want = want.unwrap_or_else(|| fallback_from_http(http).into());
        prop_assert_eq!(rest::read_code_or_fallback(http, &empty, &body), want);
        prop_assert_eq!(rest::read_status_or_fallback(http, &empty, &body).code, want.number());
    }

    #[test]
    fn json_code_of_the_wrong_type_falls_back_to_the_http_status(
        code in json_value().prop_filter("not a number or string", |v| !v.is_number() && !v.is_string()),
        fraction in (any::<i32>(), 1..1000u32).prop_map(|(n, f)| format!("{n}.{f:03}")),
        http in http_status(),
    ) {
        let empty = HeaderMap::new();
        let want = fallback_from_http(http);
        let bodies = [
            serde_json::json!({"status": {"code": code, "req_id": "r"}}).to_string(),
            format!(r#"{{"status": {{"code": {fraction}}}}}"#),
        ];
        for body in bodies {
            prop_assert_eq!(rest::parse_json(body.as_bytes()), None);
            prop_assert_eq!(rest::read_code_or_fallback(http, &empty, body.as_bytes()), want);
            prop_assert_eq!(rest::read_status_or_fallback(http, &empty, body.as_bytes()).code, want.number());
        }
    }

}

#[test]
fn deeply_nested_json_falls_back_without_overflowing_the_stack() {
    let depth = 100_000;
    let body = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let http = http::StatusCode::BAD_GATEWAY;
    assert_eq!(rest::parse_json(body.as_bytes()), None);
    assert_eq!(
        rest::read_code_or_fallback(http, &HeaderMap::new(), body.as_bytes()),
        fallback_from_http(http)
    );
    let body = format!(
        r#"{{"status": {{"code": {}1{}}}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    assert_eq!(
        rest::read_code_or_fallback(http, &HeaderMap::new(), body.as_bytes()),
        fallback_from_http(http)
    );
}
