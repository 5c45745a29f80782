//! One set of spelling rules for a code written as text, the same on every path that reads one:
//! `FromStr`, serde strings, the `clarifai-status-code` header (gRPC metadata, HTTP headers and
//! raw trailers) and a string `status.code` in REST JSON.
//!
//! The rules, as documented on `Code` ("Codes in text"): surrounding ASCII whitespace (space,
//! tab, CR, LF, form feed) is ignored; a number is decimal ASCII digits with an optional `+` or
//! `-`, within `i32`; a name is a printed name or alias exactly as the table spells it (upper
//! case). The expectations below are literals, written from those rules; every path reads the
//! same table of inputs.
// Reads and writes Clarifai's REST JSON bodies.
#![cfg(feature = "json")]

use clarifai_status::grpc::{self, ClarifaiStatusExt};
use clarifai_status::mapping::fallback_from_http;
use clarifai_status::{rest, Code, Outcome, StatusCode};
use http::{HeaderMap, HeaderValue};
use tonic::metadata::MetadataMap;

/// Inputs and the number each must read as (`None`: rejected). A number is kept by `Code` even
/// when the table does not know it.
const CASES: &[(&str, Option<i32>)] = &[
    // Numbers.
    ("11008", Some(11008)),
    ("+11008", Some(11008)),
    ("011008", Some(11008)),
    ("0", Some(0)),
    ("-1", Some(-1)),
    ("77777", Some(77777)),
    ("2147483647", Some(i32::MAX)),
    ("-2147483648", Some(i32::MIN)),
    ("2147483648", None),
    ("-2147483649", None),
    ("99999999999999999999999999", None),
    // Surrounding ASCII whitespace, around numbers and names.
    (" 11008", Some(11008)),
    ("11008 ", Some(11008)),
    ("\t11008\t", Some(11008)),
    ("  +11008 \t ", Some(11008)),
    ("\r\n11008\r\n", Some(11008)),
    ("\x0c11008", Some(11008)),
    (" CONN_KEY_INVALID ", Some(11008)),
    ("\tCONN_KEY_INVALID\t", Some(11008)),
    ("\nTASK_FAILED\r", Some(54005)),
    ("\x0cINPUT_SUCCESS \t\r\n", Some(30000)),
    // Names: printed and alias, as the table spells them.
    ("CONN_KEY_INVALID", Some(11008)),
    ("TASK_FAILED", Some(54005)),
    ("TASK_ADD_ANNOTATIONS_FAILURE", Some(54005)),
    ("INPUT_SUCCESS", Some(30000)),
    ("INPUT_DOWNLOAD_SUCCESS", Some(30000)),
    ("ZERO", Some(0)),
    ("MODEL_BUSY_PLEASE_RETRY", Some(21354)),
    // Rejected: other case, whitespace inside, other whitespace, other number forms, unknown
    // names.
    ("conn_key_invalid", None),
    ("Conn_Key_Invalid", None),
    (" task_failed ", None),
    ("zero", None),
    ("", None),
    ("   ", None),
    ("11 008", None),
    ("CONN KEY INVALID", None),
    ("CONN_KEY_INVALID_", None),
    ("_CONN_KEY_INVALID", None),
    ("CONN-KEY-INVALID", None),
    ("\x0b11008", None),
    ("\u{a0}11008", None),
    ("11008\u{3000}", None),
    ("\u{a0}CONN_KEY_INVALID", None),
    ("CONN_KEY_\u{131}NVALID", None),
    ("0x2B00", None),
    ("1e4", None),
    ("11008.0", None),
    ("11_008", None),
    ("+-1", None),
    ("--1", None),
    ("+", None),
    ("-", None),
    ("11008a", None),
    ("a11008", None),
    ("NO_SUCH_CODE", None),
    ("UNKNOWN_CODE", None),
    ("11008 CONN_KEY_INVALID", None),
];

/// Every case as `(input, as Code, as StatusCode)`.
fn cases() -> impl Iterator<Item = (&'static str, Option<Code>, Option<StatusCode>)> {
    CASES.iter().map(|&(input, number)| {
        let code = number.map(Code::new);
        (input, code, code.and_then(Code::known))
    })
}

#[test]
fn the_table_has_known_and_unknown_numbers_and_every_kind_of_spelling() {
    // The table exercises what it claims to: numbers the table knows, numbers it does not, and
    // rejected inputs.
    let known = cases().filter(|(_, _, s)| s.is_some()).count();
    let unknown = cases()
        .filter(|(_, c, s)| c.is_some() && s.is_none())
        .count();
    let rejected = cases().filter(|(_, c, _)| c.is_none()).count();
    assert!(known >= 20 && unknown >= 4 && rejected >= 25);
}

#[test]
fn from_str_follows_the_spelling_rules() {
    for (input, code, status_code) in cases() {
        assert_eq!(input.parse::<Code>().ok(), code, "Code {input:?}");
        assert_eq!(
            input.parse::<StatusCode>().ok(),
            status_code,
            "StatusCode {input:?}"
        );
        if code.is_none() {
            let err = input.parse::<Code>().unwrap_err();
            assert_eq!(err.input(), input, "the error keeps the input as given");
        }
    }
}

#[cfg(feature = "serde")]
#[test]
fn serde_strings_follow_the_spelling_rules() {
    for (input, code, status_code) in cases() {
        let json = serde_json::to_string(input).unwrap();
        assert_eq!(
            serde_json::from_str::<Code>(&json).ok(),
            code,
            "Code {json}"
        );
        assert_eq!(
            serde_json::from_str::<StatusCode>(&json).ok(),
            status_code,
            "StatusCode {json}"
        );
    }
}

#[test]
fn code_headers_follow_the_spelling_rules() {
    let mut tested = 0;
    for (input, code, _) in cases() {
        // CR, LF, form feed and the like cannot be in a header value at all.
        let Ok(value) = HeaderValue::from_bytes(input.as_bytes()) else {
            assert!(input.bytes().any(|b| b < b' ' && b != b'\t'), "{input:?}");
            continue;
        };
        tested += 1;
        let mut headers = HeaderMap::new();
        headers.insert("clarifai-status-code", value);
        assert_eq!(grpc::read_code(&headers), code, "trailers {input:?}");

        let status = tonic::Status::with_metadata(
            tonic::Code::Internal,
            "peer",
            MetadataMap::from_headers(headers.clone()),
        );
        // On an error, only a failure code is carried (grpc::read_code's rule).
        let on_error = code.filter(|c| c.is_failure());
        assert_eq!(status.carried_clarifai_code(), on_error, "tonic {input:?}");

        let http = http::StatusCode::BAD_GATEWAY;
        let want = code.unwrap_or_else(|| fallback_from_http(http).into());
        assert_eq!(
            rest::read_code_or_fallback(http, &headers, b""),
            want,
            "HTTP {input:?}"
        );
        assert_eq!(
            rest::read_status_or_fallback(http, &headers, b"").code,
            want.number()
        );
    }
    assert!(tested >= CASES.len() - 5);
}

#[test]
fn json_code_strings_follow_the_spelling_rules() {
    for (input, code, _) in cases() {
        let body = serde_json::json!({ "status": { "code": input, "req_id": "r" } }).to_string();
        let parsed = rest::parse_json(body.as_bytes());
        assert_eq!(parsed.map(|s| s.code), code.map(Code::number), "{body}");
        let http = http::StatusCode::NOT_FOUND;
        let want = code.unwrap_or_else(|| fallback_from_http(http).into());
        assert_eq!(
            rest::read_code_or_fallback(http, &HeaderMap::new(), body.as_bytes()),
            want,
            "{body}"
        );
    }
}

#[test]
fn from_name_is_the_exact_lookup() {
    assert_eq!(
        StatusCode::from_name("CONN_KEY_INVALID"),
        Some(StatusCode::ConnKeyInvalid)
    );
    assert_eq!(
        StatusCode::from_name("TASK_FAILED"),
        Some(StatusCode::TaskAddAnnotationsFailure)
    );
    for input in [" CONN_KEY_INVALID", "CONN_KEY_INVALID\t", "11008"] {
        assert_eq!(StatusCode::from_name(input), None, "{input:?}");
        assert!(input.parse::<StatusCode>().is_ok(), "{input:?}");
    }
    assert_eq!(StatusCode::from_name("conn_key_invalid"), None);
}

#[test]
fn every_name_parses_padded_and_only_in_its_own_case() {
    for code in StatusCode::all() {
        for name in std::iter::once(code.name()).chain(code.aliases().iter().copied()) {
            for input in [
                name.to_owned(),
                format!(" \t{name}\r\n"),
                format!("\x0c{name} "),
            ] {
                assert_eq!(input.parse::<StatusCode>(), Ok(code), "{input:?}");
                assert_eq!(input.parse::<Code>(), Ok(Code::from(code)), "{input:?}");
            }
            for input in [name.to_ascii_lowercase(), format!("{name}\u{a0}")] {
                assert!(input.parse::<Code>().is_err(), "{input:?}");
            }
        }
    }
}

/// Outcomes follow the same rules for case and spaces: the name as `Display` writes it.
const OUTCOMES: &[(&str, Option<Outcome>)] = &[
    ("success", Some(Outcome::Success)),
    ("in_progress", Some(Outcome::InProgress)),
    ("failure", Some(Outcome::Failure)),
    (" failure\t", Some(Outcome::Failure)),
    ("\r\nin_progress\x0c", Some(Outcome::InProgress)),
    ("SUCCESS", None),
    ("In_Progress", None),
    ("\x0bsuccess", None),
    ("in progress", None),
    ("in-progress", None),
    ("inprogress", None),
    ("succeeded", None),
    ("\u{a0}success", None),
    ("", None),
    ("0", None),
];

#[test]
fn outcome_text_follows_the_spelling_rules() {
    for &(input, want) in OUTCOMES {
        assert_eq!(input.parse::<Outcome>().ok(), want, "{input:?}");
        #[cfg(feature = "serde")]
        {
            let json = serde_json::to_string(input).unwrap();
            assert_eq!(serde_json::from_str::<Outcome>(&json).ok(), want, "{json}");
        }
    }
    let err = "done".parse::<Outcome>().unwrap_err();
    assert_eq!(err.to_string(), "unknown outcome `done`");
    for (outcome, name) in [
        (Outcome::Success, "success"),
        (Outcome::InProgress, "in_progress"),
        (Outcome::Failure, "failure"),
    ] {
        assert_eq!(outcome.to_string(), name);
        assert_eq!(name.parse::<Outcome>(), Ok(outcome));
        #[cfg(feature = "serde")]
        {
            assert_eq!(
                serde_json::to_string(&outcome).unwrap(),
                format!("\"{name}\"")
            );
        }
    }
}
