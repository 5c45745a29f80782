//! Every code survives every conversion, and no number or string reaches a panic.

use std::collections::HashMap;
use std::sync::LazyLock;

use clarifai_status::{Code, Outcome, StatusCode};
use proptest::prelude::*;

/// Every name (printed and alias) of every code, with its number.
static KNOWN_NAMES: LazyLock<HashMap<&'static str, i32>> = LazyLock::new(|| {
    let mut names = HashMap::new();
    for code in StatusCode::all() {
        for name in std::iter::once(code.name()).chain(code.aliases().iter().copied()) {
            assert_eq!(names.insert(name, code.number()), None, "{name} twice");
        }
    }
    names
});

#[test]
fn every_number_round_trips_through_every_conversion() {
    for code in StatusCode::all() {
        let n = code.number();
        assert_eq!(StatusCode::from_number(n), Some(code));
        assert_eq!(StatusCode::try_from(n), Ok(code));
        assert_eq!(i32::from(code), n);
        let wire = Code::from(n);
        assert_eq!(wire.known(), Some(code));
        assert_eq!(i32::from(wire), n);
        assert_eq!(Code::from(code), wire);
        assert_eq!(StatusCode::try_from(wire), Ok(code));
    }
}

#[test]
fn every_name_round_trips_and_aliases_print_the_printed_name() {
    for code in StatusCode::all() {
        assert_eq!(StatusCode::from_name(code.name()), Some(code));
        for alias in code.aliases() {
            let parsed = StatusCode::from_name(alias).unwrap();
            assert_eq!(parsed, code, "{alias}");
            assert_eq!(parsed.name(), code.name());
            assert_eq!(alias.parse::<Code>().unwrap().name(), code.name());
        }
    }
}

#[test]
fn display_then_from_str_round_trips_every_code() {
    for code in StatusCode::all() {
        let printed = code.to_string();
        assert_eq!(printed, code.name());
        assert_eq!(printed.parse::<StatusCode>(), Ok(code));
        assert_eq!(code.number().to_string().parse::<StatusCode>(), Ok(code));

        let wire = Code::from(code);
        assert_eq!(wire.to_string(), code.name());
        assert_eq!(wire.to_string().parse::<Code>(), Ok(wire));
    }
}

#[test]
fn code_facts_agree_with_status_code_facts_for_every_known_number() {
    for code in StatusCode::all() {
        let wire = Code::from(code);
        assert_eq!(wire.name(), code.name());
        assert_eq!(wire.aliases(), code.aliases());
        assert_eq!(wire.description(), code.description());
        assert_eq!(wire.category(), code.category());
        assert_eq!(wire.is_deprecated(), code.is_deprecated());
        assert_eq!(wire.outcome(), code.outcome());
        assert_eq!(wire.is_retryable(), code.is_retryable());
        assert_eq!(wire.grpc_code(), code.grpc_code());
        assert_eq!(wire.http_status(), code.http_status());
    }
}

#[test]
fn unknown_numbers_are_kept_by_code_and_rejected_by_status_code() {
    for n in [1, -1, 3, 9999, 10003, 12345, 99999, i32::MIN, i32::MAX] {
        assert_eq!(StatusCode::from_number(n), None, "{n} is unknown");
        assert_eq!(StatusCode::try_from(n), Err(prost::UnknownEnumValue(n)));
        let wire = Code::from(n);
        assert_eq!(wire.number(), n);
        let err = StatusCode::try_from(wire).unwrap_err();
        assert_eq!(err.number(), n);
        assert_eq!(err.to_string(), format!("unknown status code {n}"));
        let _: &dyn std::error::Error = &err;
        assert_eq!(wire.to_string(), n.to_string());
        assert_eq!(wire.to_string().parse::<Code>(), Ok(wire));
        assert!(n.to_string().parse::<StatusCode>().is_err());
    }
}

/// Numbers near the table's (where a bug in the index would show) and anywhere in `i32`.
fn numbers() -> impl Strategy<Value = i32> {
    let known: Vec<i32> = StatusCode::all().map(StatusCode::number).collect();
    prop_oneof![
        any::<i32>(),
        0..70_000,
        (proptest::sample::select(known), -2..=2).prop_map(|(n, d)| n.saturating_add(d)),
    ]
}

/// Strings of every kind: any Unicode, name-like, near-miss names, lossy bytes, numbers.
fn strings() -> impl Strategy<Value = String> {
    let names: Vec<&str> = KNOWN_NAMES.keys().copied().collect();
    prop_oneof![
        proptest::sample::select(names.clone()).prop_map(str::to_owned),
        any::<String>(),
        "[A-Z0-9_]{0,80}",
        "[a-zA-Z_]{0,40}",
        "[-+]?[0-9]{1,12}",
        proptest::collection::vec(any::<u8>(), 0..80)
            .prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
        (
            proptest::sample::select(names),
            any::<prop::sample::Index>(),
            any::<char>()
        )
            .prop_map(|(name, at, c)| {
                let mut s: Vec<char> = name.chars().collect();
                let i = at.index(s.len() + 1);
                s.insert(i, c);
                s.into_iter().collect()
            }),
        // Names and numbers padded with whitespace, ASCII and not.
        (
            "[ \t\r\n\x0b\x0c\u{a0}]{0,3}",
            prop_oneof![
                proptest::sample::select(KNOWN_NAMES.keys().copied().collect::<Vec<_>>())
                    .prop_map(str::to_owned),
                "[-+]?[0-9]{1,12}",
            ],
            "[ \t\r\n\x0b\x0c\u{a0}]{0,3}",
        )
            .prop_map(|(before, text, after)| format!("{before}{text}{after}")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn any_number_is_preserved_and_its_facts_never_panic(n in numbers()) {
        let strict = StatusCode::from_number(n);
        prop_assert_eq!(strict, StatusCode::try_from(n).ok());
        let wire = Code::new(n);
        prop_assert_eq!(wire.number(), n);
        prop_assert_eq!(i32::from(wire), n);
        prop_assert_eq!(wire.known(), strict);
        prop_assert_eq!(wire.is_known(), strict.is_some());
        prop_assert_eq!(wire.to_string().parse::<Code>(), Ok(wire));
        let _ = (wire.aliases(), wire.category(), wire.is_deprecated(), format!("{wire:?}"));
        match strict {
            Some(code) => {
                prop_assert_eq!(code.number(), n);
                prop_assert_eq!(wire.name(), code.name());
                prop_assert_eq!(wire.outcome(), code.outcome());
                prop_assert_eq!(wire.grpc_code(), code.grpc_code());
                prop_assert_eq!(wire.http_status(), code.http_status());
                prop_assert_eq!(wire.is_retryable(), code.is_retryable());
            }
            None => {
                prop_assert_eq!(wire.name(), Code::UNKNOWN_NAME);
                prop_assert_eq!(wire.name(), "UNKNOWN_CODE");
                prop_assert_eq!(wire.description(), Code::UNKNOWN_DESCRIPTION);
                prop_assert_eq!(wire.outcome(), Outcome::Failure);
                prop_assert_eq!(wire.grpc_code(), tonic::Code::Unknown);
                prop_assert_eq!(wire.http_status(), http::StatusCode::INTERNAL_SERVER_ERROR);
                prop_assert!(!wire.is_retryable());
                prop_assert!(wire.aliases().is_empty());
                prop_assert!(!wire.is_deprecated());
            }
        }
    }

    #[test]
    fn any_string_parses_only_as_a_known_name_or_number(s in strings()) {
        let by_name = StatusCode::from_name(&s);
        prop_assert_eq!(by_name.map(StatusCode::number), KNOWN_NAMES.get(s.as_str()).copied());
        let _ = StatusCode::name_is_deprecated(&s);

        // The spelling rules (`Code`, "Codes in text"): surrounding ASCII whitespace (space,
        // tab, CR, LF, form feed) is ignored; then a name exactly as the table spells it, or a
        // decimal `i32` with an optional sign.
        let text = s.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n' | '\x0c'));
        let by_name = KNOWN_NAMES.get(text).map(|n| StatusCode::from_number(*n).unwrap());
        let as_i32 = text.parse::<i32>().ok();
        let expected = by_name.or_else(|| as_i32.and_then(StatusCode::from_number));
        prop_assert_eq!(s.parse::<StatusCode>().ok(), expected);

        let expected = by_name.map(Code::from).or_else(|| as_i32.map(Code::new));
        match s.parse::<Code>() {
            Ok(code) => prop_assert_eq!(Some(code), expected),
            Err(e) => {
                prop_assert_eq!(expected, None);
                prop_assert!(s.starts_with(e.input()));
                prop_assert!(e.input().len() <= 64);
            }
        }
    }
}

#[test]
fn outcome_helpers_agree_with_the_outcome_for_every_number() {
    let unknown = [3, -1, 12345, i32::MIN, i32::MAX].map(Code::new);
    let codes = StatusCode::all().map(Code::from).chain(unknown);
    for code in codes {
        let flags = (code.is_success(), code.is_in_progress(), code.is_failure());
        let want = match code.outcome() {
            Outcome::Success => (true, false, false),
            Outcome::InProgress => (false, true, false),
            Outcome::Failure => (false, false, true),
            other => unreachable!("new outcome {other:?}: give it a helper"),
        };
        assert_eq!(flags, want, "{code:?}");
        if let Some(known) = code.known() {
            let known_flags = (
                known.is_success(),
                known.is_in_progress(),
                known.is_failure(),
            );
            assert_eq!(known_flags, want, "{known:?}");
        }
    }
    // Literal anchors, from the table's documented outcomes.
    assert!(StatusCode::Success.is_success());
    assert!(StatusCode::ModelTraining.is_in_progress());
    assert!(StatusCode::ConnKeyInvalid.is_failure());
    assert!(StatusCode::Zero.is_failure());
    assert!(Code::new(12345).is_failure());
}
