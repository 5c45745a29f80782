//! Numbers: every code survives every numeric conversion (`i32`, `Code`, `StatusCode`), an
//! unknown number is kept by `Code` and refused by `StatusCode`, `Code`'s facts agree with
//! `StatusCode`'s, and no number reaches a panic. Codes as text are `tests/spelling.rs`'s.

use clarifai_status::{Code, Outcome, StatusCode};
use proptest::prelude::*;

mod common;
use common::UNKNOWN_NUMBERS;

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
    for n in UNKNOWN_NUMBERS.into_iter().chain([3, 9999, 10003]) {
        assert_eq!(StatusCode::from_number(n), None, "{n} is unknown");
        assert_eq!(StatusCode::try_from(n), Err(prost::UnknownEnumValue(n)));
        let wire = Code::from(n);
        assert_eq!(wire.number(), n);
        let err = StatusCode::try_from(wire).unwrap_err();
        assert_eq!(err.number(), n);
        assert_eq!(err.to_string(), format!("unknown status code {n}"));
        let _: &dyn std::error::Error = &err;
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
