//! Code spelling: the home of every test of a code written as text. One set of rules, the same on
//! every path that writes or reads one: `Display`, `FromStr`, `StatusCode::from_name`, serde
//! strings, the `clarifai-status-code` header (gRPC metadata, HTTP headers and raw trailers) and
//! a string `status.code` in REST JSON; and `Outcome`'s text.
//!
//! The rules, as documented on `Code` ("Codes in text"): surrounding ASCII whitespace (space,
//! tab, CR, LF, form feed) is ignored; a number is decimal ASCII digits with an optional `+` or
//! `-`, within `i32`; a name is a printed name or alias exactly as the table spells it (upper
//! case). Every input below goes through every path (`assert_read_alike`): literal cases with
//! answers written from the rules, every name and number of the table, and arbitrary strings
//! against an oracle written from the rules.
// Reads and writes Clarifai's REST JSON bodies.
#![cfg(feature = "json")]

use std::collections::HashMap;
use std::sync::LazyLock;

use clarifai_status::grpc::{self, ClarifaiStatusExt};
use clarifai_status::mapping::fallback_from_http;
use clarifai_status::{pb, rest, Code, Outcome, StatusCode};
use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use tonic::metadata::MetadataMap;

mod common;
use common::UNKNOWN_NUMBERS;

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
    (" 11008\t", Some(11008)),
    ("\x0c11008\n", Some(11008)),
    (" 77777 ", Some(77777)),
    (" CONN_KEY_INVALID\t", Some(11008)),
    ("\tTASK_FAILED", Some(54005)),
    ("\r\nTASK_FAILED\t", Some(54005)),
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
    ("CONN_KEY_INVALID\u{a0}", None),
    ("\x0bTASK_FAILED", None),
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
    ("11008x", None),
    ("99999999999", None),
    ("a11008", None),
    ("NO_SUCH_CODE", None),
    ("UNKNOWN_CODE", None),
    ("11008 CONN_KEY_INVALID", None),
];

/// Reads `input` on every path and asserts each gives `want` (`None`: rejected).
fn assert_read_alike(input: &str, want: Option<Code>) {
    let known = want.and_then(Code::known);

    // FromStr.
    assert_eq!(input.parse::<Code>().ok(), want, "Code {input:?}");
    assert_eq!(
        input.parse::<StatusCode>().ok(),
        known,
        "StatusCode {input:?}"
    );
    if let Err(err) = input.parse::<Code>() {
        assert!(
            input.starts_with(err.input()),
            "{input:?}: the error keeps the input"
        );
        assert!(
            err.input().len() <= 64,
            "{input:?}: the error cuts a long input"
        );
    }

    // Serde strings.
    #[cfg(feature = "serde")]
    {
        let json = serde_json::to_string(input).unwrap();
        assert_eq!(
            serde_json::from_str::<Code>(&json).ok(),
            want,
            "serde Code {json}"
        );
        let strict = serde_json::from_str::<StatusCode>(&json).ok();
        assert_eq!(strict, known, "serde StatusCode {json}");
    }

    // The code header. CR, LF, form feed, DEL and the like cannot be in a header value at all.
    if let Ok(value) = HeaderValue::from_bytes(input.as_bytes()) {
        let mut headers = HeaderMap::new();
        headers.insert("clarifai-status-code", value);
        assert_eq!(grpc::read_code(&headers), want, "trailers {input:?}");

        let status = tonic::Status::with_metadata(
            tonic::Code::Internal,
            "peer",
            MetadataMap::from_headers(headers.clone()),
        );
        // On an error, only a failure code is carried (grpc::read_code's rule).
        let on_error = want.filter(|c| c.is_failure());
        assert_eq!(status.carried_clarifai_code(), on_error, "tonic {input:?}");

        let http = http::StatusCode::BAD_GATEWAY;
        let read = want.unwrap_or_else(|| fallback_from_http(http).into());
        let code = rest::read_code_or_fallback(http, &headers, b"");
        assert_eq!(code, read, "HTTP {input:?}");
        let status = rest::read_status_or_fallback(http, &headers, b"");
        assert_eq!(status.code, read.number(), "HTTP {input:?}");
    } else {
        let control = |b: u8| (b < b' ' && b != b'\t') || b == 0x7f;
        assert!(input.bytes().any(control), "{input:?}");
    }

    // A string `status.code` in REST JSON: read with the rest of the status, or the whole status
    // falls back to the HTTP status's.
    let body = serde_json::json!({ "status": { "code": input, "req_id": "r" } }).to_string();
    let parsed = rest::parse_json(body.as_bytes());
    assert_eq!(parsed.map(|s| s.code), want.map(Code::number), "{body}");
    let http = http::StatusCode::NOT_FOUND;
    let empty = HeaderMap::new();
    let read = want.unwrap_or_else(|| fallback_from_http(http).into());
    let code = rest::read_code_or_fallback(http, &empty, body.as_bytes());
    assert_eq!(code, read, "{body}");
    let status = rest::read_status_or_fallback(http, &empty, body.as_bytes());
    let want_status = pb::Status {
        code: read.number(),
        req_id: if want.is_some() {
            "r".into()
        } else {
            String::new()
        },
        ..Default::default()
    };
    assert_eq!(status, want_status, "{body}");
}

#[test]
fn literal_cases_read_as_the_rules_say_on_every_path() {
    for &(input, number) in CASES {
        assert_read_alike(input, number.map(Code::new));
        if number.is_none() {
            let err = input.parse::<Code>().unwrap_err();
            assert_eq!(err.input(), input, "the error keeps the input as given");
        }
    }
}

#[test]
fn every_name_and_number_of_the_table_reads_on_every_path() {
    for code in StatusCode::all() {
        let wire = Code::from(code);
        let n = code.number();
        for name in std::iter::once(code.name()).chain(code.aliases().iter().copied()) {
            for input in [
                name.to_owned(),
                format!(" \t{name}\r\n"),
                format!("\x0c{name} "),
            ] {
                assert_read_alike(&input, Some(wire));
            }
            // Only in the table's own case, and only ASCII whitespace around it.
            for input in [name.to_ascii_lowercase(), format!("{name}\u{a0}")] {
                assert_read_alike(&input, None);
            }
            assert_eq!(StatusCode::from_name(name), Some(code), "{name}");
        }
        for input in [n.to_string(), format!("+{n}"), format!("\t{n} ")] {
            assert_read_alike(&input, Some(wire));
        }
    }
}

#[test]
fn display_writes_the_printed_name_and_aliases_read_as_it() {
    for code in StatusCode::all() {
        let wire = Code::from(code);
        assert_eq!(code.to_string(), code.name());
        assert_eq!(wire.to_string(), code.name());
        assert_eq!(wire.name(), code.name());
        for alias in code.aliases() {
            assert_ne!(*alias, code.name());
            let parsed = alias.parse::<Code>().unwrap();
            assert_eq!(
                (parsed.name(), parsed.to_string().as_str()),
                (code.name(), code.name())
            );
            assert_eq!(StatusCode::from_name(alias).unwrap().name(), code.name());
        }
    }
}

#[test]
fn unknown_numbers_are_written_as_numbers_and_read_back_only_as_code() {
    for n in UNKNOWN_NUMBERS.into_iter().chain([3, 9999, 10003]) {
        let wire = Code::new(n);
        assert_eq!(wire.to_string(), n.to_string());
        assert_read_alike(&wire.to_string(), Some(wire));
        assert!(StatusCode::from_name(&n.to_string()).is_none());
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

/// Every name (printed and alias) of every code, with its number: data, not a reader.
static KNOWN_NAMES: LazyLock<HashMap<&'static str, i32>> = LazyLock::new(|| {
    let mut names = HashMap::new();
    for code in StatusCode::all() {
        for name in std::iter::once(code.name()).chain(code.aliases().iter().copied()) {
            assert_eq!(names.insert(name, code.number()), None, "{name} twice");
        }
    }
    names
});

/// What the rules say `s` reads as: surrounding ASCII whitespace trimmed, then a name exactly as
/// the table spells it, or a decimal `i32` with an optional sign (std's `i32` parser is exactly
/// that).
fn by_the_rules(s: &str) -> Option<Code> {
    let text = s.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n' | '\x0c'));
    KNOWN_NAMES
        .get(text)
        .or(text.parse::<i32>().ok().as_ref())
        .copied()
        .map(Code::new)
}

/// Strings of every kind: any Unicode, name-like, near-miss names, other case, lossy bytes,
/// numbers, and names and numbers padded with whitespace, ASCII and not.
fn strings() -> impl Strategy<Value = String> {
    let names: Vec<&str> = KNOWN_NAMES.keys().copied().collect();
    prop_oneof![
        proptest::sample::select(names.clone()).prop_map(str::to_owned),
        proptest::sample::select(names.clone()).prop_map(str::to_lowercase),
        any::<String>(),
        "[A-Z0-9_]{0,80}",
        "[a-zA-Z_]{0,40}",
        "[-+]?[0-9]{1,12}",
        any::<i32>().prop_map(|n| n.to_string()),
        proptest::collection::vec(any::<u8>(), 0..80)
            .prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
        (
            proptest::sample::select(names.clone()),
            any::<prop::sample::Index>(),
            any::<char>()
        )
            .prop_map(|(name, at, c)| {
                let mut s: Vec<char> = name.chars().collect();
                let i = at.index(s.len() + 1);
                s.insert(i, c);
                s.into_iter().collect()
            }),
        (
            "[ \t\r\n\x0b\x0c\u{a0}\u{3000}]{0,3}",
            prop_oneof![
                proptest::sample::select(names).prop_map(str::to_owned),
                "[-+]?[0-9]{1,12}",
            ],
            "[ \t\r\n\x0b\x0c\u{a0}\u{3000}]{0,3}",
        )
            .prop_map(|(before, text, after)| format!("{before}{text}{after}")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn any_string_reads_as_the_rules_say_on_every_path(s in strings()) {
        let by_name = StatusCode::from_name(&s);
        prop_assert_eq!(by_name.map(StatusCode::number), KNOWN_NAMES.get(s.as_str()).copied());
        let _ = StatusCode::name_is_deprecated(&s);
        assert_read_alike(&s, by_the_rules(&s));
    }

    #[test]
    fn any_number_is_written_as_its_name_or_decimal_and_read_back(n in any::<i32>()) {
        let wire = Code::new(n);
        let written = wire.to_string();
        match wire.known() {
            Some(code) => prop_assert_eq!(&written, code.name()),
            None => prop_assert_eq!(&written, &n.to_string()),
        }
        prop_assert_eq!(written.parse::<Code>(), Ok(wire));
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
