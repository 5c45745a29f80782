//! What a peer may write in a header, and what the documentation says a number in text means:
//! shared by `tests/peer_input.rs` and `tests/pushback.rs`, whose expectations must not call the
//! crate's readers (nor `str::parse`).

use http::HeaderValue;
use proptest::prelude::*;

/// Decimal digits with an optional leading `+` (or `-` when `signed`), after trimming `space`,
/// as a number within `T`; `None` for anything else. Digit by digit, without `str::parse`.
pub(crate) fn decimal<T: TryFrom<i128>>(
    bytes: &[u8],
    space: fn(char) -> bool,
    signed: bool,
) -> Option<T> {
    let text = std::str::from_utf8(bytes).ok()?.trim_matches(space);
    let (negative, digits) = match text.as_bytes().first()? {
        b'+' => (false, &text[1..]),
        b'-' if signed => (true, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = digits.trim_start_matches('0');
    if digits.len() > 30 {
        return None; // far outside every type used here
    }
    let magnitude = digits
        .bytes()
        .fold(0i128, |n, b| n * 10 + i128::from(b - b'0'));
    T::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// Every byte `http::HeaderValue::from_bytes` accepts, as `http` itself says.
pub(crate) fn header_bytes() -> Vec<u8> {
    (0..=255u8)
        .filter(|b| HeaderValue::from_bytes(&[*b]).is_ok())
        .collect()
}

/// Numbers as a peer might write them: in and out of range, signed, spaced, huge, fractional.
pub(crate) fn numberish() -> impl Strategy<Value = String> {
    let number = prop_oneof![
        any::<i32>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<i128>().prop_map(|n| n.to_string()),
        "[0-9]{1,60}",
        any::<f64>().prop_map(|f| f.to_string()),
        (10000..70000i32).prop_map(|n| n.to_string()),
    ];
    let sign = prop::sample::select(vec!["", "", "+", "-", "--", "+-", "0x"]);
    (" {0,2}", sign, number, "[ \t]{0,2}")
        .prop_map(|(pre, sign, number, post)| format!("{pre}{sign}{number}{post}"))
}

/// A header's bytes: arbitrary accepted bytes, or something that looks like a number.
pub(crate) fn numeric_header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(prop::sample::select(header_bytes()), 0..48),
        numberish().prop_map(String::into_bytes),
    ]
}
