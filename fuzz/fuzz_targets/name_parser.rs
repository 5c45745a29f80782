//! The name parsers: `StatusCode::from_name`, `FromStr` for `StatusCode` and `Code`, and
//! `StatusCode::name_is_deprecated`, on any text (strict and lossy UTF-8).
#![no_main]

use clarifai_status::{Code, StatusCode};
use libfuzzer_sys::fuzz_target;

fn parse_all(text: &str) {
    let by_name = StatusCode::from_name(text);
    if let Some(code) = by_name {
        // A name found is one of the code's names, and every parser agrees on it.
        assert!(code.name() == text || code.aliases().contains(&text));
        assert_eq!(text.parse::<StatusCode>().ok(), Some(code));
        assert_eq!(text.parse::<Code>().ok(), Some(Code::from(code)));
    } else {
        let _ = text.parse::<StatusCode>();
        let _ = text.parse::<Code>();
    }
    assert_eq!(
        StatusCode::name_is_deprecated(text).is_some(),
        by_name.is_some()
    );
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        parse_all(text);
    }
    parse_all(&String::from_utf8_lossy(data));
});
