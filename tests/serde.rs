//! `Serialize`/`Deserialize` for codes: a number out; a number, a name or a numeric string in.
//! This file owns serde's side (numbers, values of other types, compact formats, the errors);
//! which strings read as which code is `tests/spelling.rs`'s, which puts every input through
//! serde too.
#![cfg(feature = "serde")]

use clarifai_status::{Code, StatusCode};
use proptest::prelude::*;
use serde::de::value::Error as ValueError;
use serde::de::{Deserialize, Deserializer, Error as _, Visitor};
use serde_json::{json, Value};

#[test]
fn every_code_serializes_as_its_number() {
    for code in StatusCode::all() {
        let n = code.number();
        assert_eq!(serde_json::to_value(code).unwrap(), json!(n));
        assert_eq!(serde_json::to_string(&code).unwrap(), n.to_string());
        assert_eq!(serde_json::to_value(Code::from(code)).unwrap(), json!(n));
    }
    assert_eq!(serde_json::to_string(&Code::new(-12345)).unwrap(), "-12345");
}

#[test]
fn every_code_deserializes_from_its_number() {
    for code in StatusCode::all() {
        let n = code.number();
        assert_eq!(
            serde_json::from_value::<StatusCode>(json!(n)).unwrap(),
            code
        );
        assert_eq!(serde_json::from_value::<Code>(json!(n)).unwrap(), code);
        assert_eq!(
            serde_json::from_str::<StatusCode>(&n.to_string()).unwrap(),
            code
        );
        assert_eq!(serde_json::from_str::<Code>(&n.to_string()).unwrap(), code);
    }
}

#[test]
fn codes_round_trip_inside_a_message() {
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Status {
        code: StatusCode,
        wire: Code,
    }
    let status = Status {
        code: StatusCode::ConnThrottled,
        wire: Code::new(99_999),
    };
    let text = serde_json::to_string(&status).unwrap();
    assert_eq!(text, r#"{"code":11005,"wire":99999}"#);
    assert_eq!(serde_json::from_str::<Status>(&text).unwrap(), status);
}

#[test]
fn unknown_numbers_are_an_error_naming_them_for_status_code_and_kept_by_code() {
    for n in [
        1_i64,
        -1,
        3,
        12345,
        i64::from(i32::MIN),
        i64::from(i32::MAX),
    ] {
        let err = serde_json::from_value::<StatusCode>(json!(n)).unwrap_err();
        assert!(err.to_string().contains(&n.to_string()), "{err}");
        let err = serde_json::from_value::<StatusCode>(json!(n.to_string())).unwrap_err();
        assert!(err.to_string().contains(&n.to_string()), "{err}");

        let kept = serde_json::from_value::<Code>(json!(n)).unwrap();
        assert_eq!(i64::from(kept.number()), n);
        let kept = serde_json::from_value::<Code>(json!(n.to_string())).unwrap();
        assert_eq!(i64::from(kept.number()), n);
    }
}

#[test]
fn numbers_outside_i32_are_an_error_naming_them() {
    for text in [
        "2147483648",
        "-2147483649",
        "18446744073709551615",
        "-9223372036854775808",
    ] {
        let err = serde_json::from_str::<StatusCode>(text).unwrap_err();
        assert!(err.to_string().contains(text), "{err}");
        let err = serde_json::from_str::<Code>(text).unwrap_err();
        assert!(err.to_string().contains(text), "{err}");
    }
}

#[test]
fn unknown_names_are_an_error_naming_them() {
    for name in [
        "NO_SUCH_CODE",
        "conn_key_invalid",
        "",
        " ",
        "SUCCESS_",
        "11 008",
        "\u{a0}SUCCESS",
    ] {
        let err = serde_json::from_value::<StatusCode>(json!(name)).unwrap_err();
        assert!(err.to_string().contains(&format!("{name:?}")), "{err}");
        let err = serde_json::from_value::<Code>(json!(name)).unwrap_err();
        assert!(err.to_string().contains(&format!("{name:?}")), "{err}");
    }
}

#[test]
fn a_long_unknown_name_is_cut_in_the_error() {
    let name = "X".repeat(10_000);
    let err = serde_json::from_value::<Code>(json!(name)).unwrap_err();
    assert!(err.to_string().contains(&"X".repeat(64)));
    assert!(err.to_string().len() < 200, "{err}");
}

#[test]
fn values_that_are_not_numbers_or_strings_are_errors() {
    let garbage = [
        json!(null),
        json!(true),
        json!(false),
        json!(11008.0),
        json!(11008.5),
        json!(-1e300),
        json!([]),
        json!([11008]),
        json!({}),
        json!({ "code": 11008 }),
    ];
    for value in garbage {
        assert!(
            serde_json::from_value::<StatusCode>(value.clone()).is_err(),
            "{value}"
        );
        assert!(
            serde_json::from_value::<Code>(value.clone()).is_err(),
            "{value}"
        );
        assert!(
            serde_json::from_str::<StatusCode>(&value.to_string()).is_err(),
            "{value}"
        );
        assert!(
            serde_json::from_str::<Code>(&value.to_string()).is_err(),
            "{value}"
        );
    }
}

/// A compact, non-self-describing format's deserializer holding one `i32`: `deserialize_any`
/// fails, as in bincode or postcard.
struct Compact(i32);

impl<'de> Deserializer<'de> for Compact {
    type Error = ValueError;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, ValueError> {
        Err(ValueError::custom("deserialize_any is not supported"))
    }

    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        visitor.visit_i32(self.0)
    }

    fn is_human_readable(&self) -> bool {
        false
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier
        ignored_any
    }
}

#[test]
fn compact_formats_read_the_number_back() {
    assert_eq!(
        StatusCode::deserialize(Compact(11008)).unwrap(),
        StatusCode::ConnKeyInvalid
    );
    assert!(StatusCode::deserialize(Compact(12345)).is_err());
    assert_eq!(Code::deserialize(Compact(12345)).unwrap().number(), 12345);
}

/// JSON-ish text: numbers of every size, strings (names, near-names, numbers, any Unicode) and
/// other values, plus raw arbitrary text.
fn json_texts() -> impl Strategy<Value = String> {
    let names: Vec<&str> = StatusCode::all()
        .flat_map(|c| std::iter::once(c.name()).chain(c.aliases().iter().copied()))
        .collect();
    let scalar = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i32>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| json!(f).to_string()),
        "-?[0-9]{1,40}(\\.[0-9]{0,5})?([eE][-+]?[0-9]{1,4})?",
        proptest::sample::select(names).prop_map(|n| json!(n).to_string()),
        any::<String>().prop_map(|s| json!(s).to_string()),
        "[A-Z_0-9]{0,70}".prop_map(|s| json!(s).to_string()),
        any::<i64>().prop_map(|n| json!(n.to_string()).to_string()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("{}".to_owned()),
    ];
    prop_oneof![
        scalar.clone(),
        proptest::collection::vec(scalar, 0..4).prop_map(|v| format!("[{}]", v.join(","))),
        any::<String>(),
        "[\"0-9a-zA-Z_\\[\\]{}:,. -]{0,40}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn any_json_text_deserializes_to_what_from_str_says_or_errors(text in json_texts()) {
        let strict = serde_json::from_str::<StatusCode>(&text);
        let wire = serde_json::from_str::<Code>(&text);
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Number(n)) => {
                let n = n.as_i64().and_then(|n| i32::try_from(n).ok());
                prop_assert_eq!(strict.ok(), n.and_then(StatusCode::from_number));
                prop_assert_eq!(wire.ok(), n.map(Code::new));
            }
            Ok(Value::String(s)) => {
                prop_assert_eq!(strict.ok(), s.parse::<StatusCode>().ok());
                prop_assert_eq!(wire.ok(), s.parse::<Code>().ok());
            }
            _ => {
                prop_assert!(strict.is_err());
                prop_assert!(wire.is_err());
            }
        }
    }
}
