//! Clarifai codes over HTTP: the response every code becomes, and reading responses back (the
//! header, then the JSON `status.code`, then the HTTP status). The spelling of a code in the
//! header or a JSON string is `tests/spelling.rs`'s; `Retry-After` is `tests/pushback.rs`'s.
// Reads and writes Clarifai's REST JSON bodies.
#![cfg(feature = "json")]

use clarifai_status::{mapping, pb, rest, Code, StatusCode};
use http::HeaderMap;
use serde_json::{json, Value};

mod common;
use common::codes;

fn bare(code: Code) -> pb::Status {
    pb::Status {
        code: code.number(),
        ..Default::default()
    }
}

/// A status with every public field set to something distinct (no private field).
fn full(code: Code) -> pb::Status {
    let n = code.number();
    pb::Status {
        code: n,
        description: format!("description of {n}: ünïcödé \"quoted\""),
        details: format!("details of {n}"),
        percent_completed: 42,
        time_remaining: 3600,
        req_id: format!("req-{n}"),
        developer_notes: format!("notes for {n}"),
        http_status_code: 418,
        ..Default::default()
    }
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).expect("the body is JSON")
}

fn header(headers: &HeaderMap, name: &str) -> Option<Vec<u8>> {
    headers.get(name).map(|v| v.as_bytes().to_vec())
}

fn with_code_header(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(clarifai_status::CODE_HEADER, value.parse().unwrap());
    headers
}

/// HTTP statuses whose fallbacks differ from one another, to tell the sources apart.
const HTTP_STATUSES: [u16; 9] = [200, 202, 307, 400, 401, 404, 429, 500, 503];

fn http_status(n: u16) -> http::StatusCode {
    http::StatusCode::from_u16(n).unwrap()
}

#[test]
fn every_code_becomes_a_response_per_the_contract() {
    for code in codes() {
        let n = code.number();
        let response = rest::response(&bare(code));
        assert_eq!(response.status(), code.http_status(), "HTTP status of {n}");
        let headers = response.headers();
        assert_eq!(
            header(headers, "clarifai-status-code"),
            Some(n.to_string().into_bytes())
        );
        assert_eq!(
            header(headers, "content-type"),
            Some(b"application/json".to_vec())
        );
        let want = json!({"status": {"code": n, "description": code.description()}});
        assert_eq!(json_of(response.body()), want, "body of {n}");
        assert_eq!(json_of(&rest::to_json(&bare(code))), want);

        let by_code = rest::code_response(code);
        assert_eq!(by_code.status(), response.status());
        assert_eq!(by_code.headers(), response.headers());
        assert_eq!(by_code.body(), response.body());
    }
    for code in StatusCode::all() {
        assert_eq!(
            rest::code_response(code).body(),
            rest::response(&bare(code.into())).body()
        );
    }
}

#[test]
fn public_fields_are_written_under_their_proto_names() {
    for code in codes() {
        let status = full(code);
        let want = json!({"status": {
            "code": status.code,
            "description": status.description,
            "details": status.details,
            "percent_completed": 42,
            "time_remaining": 3600,
            "req_id": status.req_id,
            "developer_notes": status.developer_notes,
            "http_status_code": 418,
        }});
        assert_eq!(json_of(&rest::to_json(&status)), want);
        assert_eq!(json_of(rest::response(&status).body()), want);
    }
}

#[test]
fn every_response_reads_back_its_code_and_status() {
    for code in codes() {
        let (parts, body) = rest::response(&full(code)).into_parts();
        let body = body.as_bytes();
        assert_eq!(
            rest::read_code_or_fallback(parts.status, &parts.headers, body),
            code
        );
        assert_eq!(
            rest::read_status_or_fallback(parts.status, &parts.headers, body),
            full(code)
        );
        assert_eq!(rest::parse_json(body), Some(full(code)));

        // A bare status reads back with the table's description, which the body carries.
        let (parts, body) = rest::response(&bare(code)).into_parts();
        let back = rest::read_status_or_fallback(parts.status, &parts.headers, body.as_bytes());
        let want = pb::Status {
            description: code.description().to_owned(),
            ..bare(code)
        };
        assert_eq!(back, want);
    }
}

#[test]
fn json_code_of_the_wrong_type_falls_back_to_the_http_status() {
    let bad_codes = [
        Value::Null,
        json!(true),
        json!(1.5),
        json!(11008.0),
        json!(11008.5),
        json!(1e300),
        json!(i64::from(i32::MAX) + 1),
        json!(i64::from(i32::MIN) - 1),
        json!(u64::MAX),
        json!([11008]),
        json!({"code": 11008}),
        // A string that breaks the spelling rules: the rest of them are `tests/spelling.rs`'s.
        json!("conn_key_invalid"),
    ];
    let empty = HeaderMap::new();
    for bad in bad_codes {
        let body = json!({"status": {"code": bad, "req_id": "r"}}).to_string();
        assert_eq!(rest::parse_json(body.as_bytes()), None, "{bad}");
        for http in HTTP_STATUSES {
            let want = mapping::fallback_from_http(http_status(http));
            assert_eq!(
                rest::read_code_or_fallback(http_status(http), &empty, body.as_bytes()),
                want
            );
            let status = rest::read_status_or_fallback(http_status(http), &empty, body.as_bytes());
            assert_eq!(status, bare(want.into()), "{bad} with {http}");
        }
    }
}

#[test]
fn bodies_without_a_status_code_fall_back_to_the_http_status() {
    let bodies: [&[u8]; 10] = [
        b"",
        b"<html>502 Bad Gateway</html>",
        b"null",
        b"[]",
        b"{}",
        br#"{"status": null}"#,
        br#"{"status": 11008}"#,
        br#"{"status": [{"code": 11008}]}"#,
        br#"{"status": {"description": "no code"}}"#,
        br#"{"code": 11008}"#,
    ];
    let empty = HeaderMap::new();
    for body in bodies {
        assert_eq!(rest::parse_json(body), None);
        for http in HTTP_STATUSES {
            let want = mapping::fallback_from_http(http_status(http));
            assert_eq!(
                rest::read_code_or_fallback(http_status(http), &empty, body),
                want
            );
            assert_eq!(
                rest::read_status_or_fallback(http_status(http), &empty, body),
                bare(want.into())
            );
        }
    }
}

#[test]
fn fields_of_the_wrong_type_are_left_empty() {
    let body = json!({"status": {
        "code": 11008,
        "description": 5,
        "details": ["x"],
        "percent_completed": "42",
        "time_remaining": -1,
        "req_id": null,
        "developer_notes": {"a": 1},
        "http_status_code": u64::from(u32::MAX) + 1,
        "unknown_field": "ignored",
    }})
    .to_string();
    assert_eq!(
        rest::parse_json(body.as_bytes()),
        Some(bare(StatusCode::ConnKeyInvalid.into()))
    );
}

#[test]
fn header_wins_over_json_and_json_over_http_status() {
    let all: Vec<Code> = codes().collect();
    for (i, a) in all.iter().enumerate() {
        let b = all[(i + 1) % all.len()];
        let body = rest::to_json(&full(b));
        for http in HTTP_STATUSES {
            let http = http_status(http);
            let headers = with_code_header(&a.number().to_string());
            assert_eq!(
                rest::read_code_or_fallback(http, &headers, body.as_bytes()),
                *a
            );
            let status = rest::read_status_or_fallback(http, &headers, body.as_bytes());
            let want = pb::Status {
                code: a.number(),
                ..full(b)
            };
            assert_eq!(status, want, "header {a:?} over JSON {b:?}");

            let empty = HeaderMap::new();
            assert_eq!(
                rest::read_code_or_fallback(http, &empty, body.as_bytes()),
                b
            );
            assert_eq!(
                rest::read_status_or_fallback(http, &empty, body.as_bytes()),
                full(b)
            );

            let fallback = mapping::fallback_from_http(http);
            assert_eq!(
                rest::read_code_or_fallback(http, &empty, b"not json"),
                fallback
            );
            let status = rest::read_status_or_fallback(http, &headers, b"not json");
            assert_eq!(status, bare(*a), "header over HTTP status");
        }
    }
}

#[test]
fn garbage_header_falls_back_to_json() {
    let garbage = [
        "",
        "abc",
        "11008x",
        "1.5",
        "0x10",
        "99999999999",
        "-2147483649",
        "--1",
    ];
    for code in codes() {
        let body = rest::to_json(&full(code));
        for value in garbage {
            let headers = with_code_header(value);
            let http = http::StatusCode::INTERNAL_SERVER_ERROR;
            assert_eq!(
                rest::read_code_or_fallback(http, &headers, body.as_bytes()),
                code,
                "{value:?}"
            );
            assert_eq!(
                rest::read_status_or_fallback(http, &headers, body.as_bytes()),
                full(code)
            );
        }
    }
}

#[test]
fn every_http_status_alone_reads_as_its_fallback() {
    let empty = HeaderMap::new();
    for n in 100..=999 {
        let http = http_status(n);
        let want = mapping::fallback_from_http(http);
        assert_eq!(rest::read_code_or_fallback(http, &empty, b""), want);
        assert_eq!(
            rest::read_status_or_fallback(http, &empty, b""),
            bare(want.into())
        );
    }
}
