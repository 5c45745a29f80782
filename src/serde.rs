//! `Serialize` and `Deserialize` for [`StatusCode`], [`Code`] and [`Outcome`] (feature `serde`).
//!
//! A code serializes as its number, as Clarifai's JSON carries it. Human-readable formats read a
//! number or a string, since Clarifai's docs show `code` both ways: any integer type, or a string
//! read by the crate's [spelling rules](crate::Code#codes-in-text) (a name, printed or alias, as
//! the table spells it, or a decimal number; surrounding spaces ignored). Compact formats read
//! the `i32` that serializing wrote.
//!
//! An [`Outcome`] serializes as its name (`success`, `in_progress`, `failure`) and reads one by
//! the same rules (exactly that name, surrounding spaces ignored).
//!
//! [`StatusCode`] rejects what the table does not know; [`Code`] keeps any `i32` and rejects only
//! unknown names. Errors name the rejected value (a long string is cut to its first 64 bytes).
//!
//! # Examples
//!
//! ```
//! use clarifai_status::{Code, StatusCode};
//!
//! assert_eq!(serde_json::to_string(&StatusCode::ConnKeyInvalid).unwrap(), "11008");
//!
//! let by_number: StatusCode = serde_json::from_str("11008").unwrap();
//! let by_name: StatusCode = serde_json::from_str(r#""CONN_KEY_INVALID""#).unwrap();
//! assert_eq!(by_number, by_name);
//!
//! assert!(serde_json::from_str::<StatusCode>("12345").is_err());
//! assert_eq!(serde_json::from_str::<Code>("12345").unwrap().number(), 12345);
//!
//! use clarifai_status::Outcome;
//! assert_eq!(serde_json::to_string(&Outcome::InProgress).unwrap(), r#""in_progress""#);
//! ```

use std::fmt;
use std::marker::PhantomData;

use ::serde::de::{self, Deserialize, Deserializer, Unexpected, Visitor};
use ::serde::ser::{Serialize, Serializer};

use crate::{Code, Outcome, ParseCodeError, StatusCode};

/// What each code type accepts; the visitor is shared.
trait Decode: Sized {
    const EXPECTING: &'static str;

    fn from_number(number: i32) -> Option<Self>;

    fn from_text(text: &str) -> Result<Self, ParseCodeError>;
}

impl Decode for StatusCode {
    const EXPECTING: &'static str = "a Clarifai status code in the table (a number or a name)";

    fn from_number(number: i32) -> Option<Self> {
        StatusCode::from_number(number)
    }

    fn from_text(text: &str) -> Result<Self, ParseCodeError> {
        text.parse()
    }
}

impl Decode for Code {
    const EXPECTING: &'static str = "a Clarifai status code (an i32 or a known name)";

    fn from_number(number: i32) -> Option<Self> {
        Some(Code::new(number))
    }

    fn from_text(text: &str) -> Result<Self, ParseCodeError> {
        text.parse()
    }
}

struct CodeVisitor<T>(PhantomData<T>);

impl<T: Decode> CodeVisitor<T> {
    fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<T, D::Error> {
        let visitor = CodeVisitor(PhantomData);
        if deserializer.is_human_readable() {
            deserializer.deserialize_any(visitor)
        } else {
            // Not self-describing in general (bincode, postcard): ask for what `serialize` wrote.
            deserializer.deserialize_i32(visitor)
        }
    }
}

impl<T: Decode> Visitor<'_> for CodeVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        i32::try_from(v)
            .ok()
            .and_then(T::from_number)
            .ok_or_else(|| E::invalid_value(Unexpected::Signed(v), &self))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        i32::try_from(v)
            .ok()
            .and_then(T::from_number)
            .ok_or_else(|| E::invalid_value(Unexpected::Unsigned(v), &self))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<T, E> {
        match i64::try_from(v) {
            Ok(v) => self.visit_i64(v),
            // `Unexpected` has no 128-bit variant.
            Err(_) => Err(E::custom(format_args!(
                "invalid value: integer `{v}`, expected {}",
                T::EXPECTING
            ))),
        }
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<T, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(E::custom(format_args!(
                "invalid value: integer `{v}`, expected {}",
                T::EXPECTING
            ))),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        T::from_text(v).map_err(|e| E::invalid_value(Unexpected::Str(e.input()), &self))
    }
}

impl Serialize for StatusCode {
    /// Serializes the number, e.g. `11008`.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::StatusCode;
    ///
    /// assert_eq!(serde_json::to_string(&StatusCode::Success).unwrap(), "10000");
    /// ```
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i32(self.number())
    }
}

impl<'de> Deserialize<'de> for StatusCode {
    /// Reads a number (any integer type) or a string: a name the table knows, printed or alias,
    /// or a decimal number, by the [spelling rules](crate::Code#codes-in-text). Compact formats read the `i32` that serializing wrote.
    ///
    /// # Errors
    ///
    /// A number or name the table does not know, a number outside `i32`, or any other value
    /// (float, bool, null, object, ...).
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::StatusCode;
    ///
    /// let codes: Vec<StatusCode> = serde_json::from_str(r#"[30000, "INPUT_SUCCESS", "30000"]"#).unwrap();
    /// assert!(codes.iter().all(|c| c.number() == 30000));
    ///
    /// let err = serde_json::from_str::<StatusCode>(r#""NO_SUCH_CODE""#).unwrap_err();
    /// assert!(err.to_string().contains("NO_SUCH_CODE"));
    /// ```
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        CodeVisitor::deserialize(deserializer)
    }
}

impl Serialize for Code {
    /// Serializes the number, known to the table or not.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::Code;
    ///
    /// assert_eq!(serde_json::to_string(&Code::new(12345)).unwrap(), "12345");
    /// ```
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i32(self.number())
    }
}

impl<'de> Deserialize<'de> for Code {
    /// Reads a number (any integer type within `i32`, kept as is, known or not) or a string: a
    /// known name, printed or alias, or a decimal `i32`, by the
    /// [spelling rules](crate::Code#codes-in-text). Compact formats read the `i32` that
    /// serializing wrote.
    ///
    /// # Errors
    ///
    /// An unknown name, a number outside `i32`, or any other value (float, bool, null, ...).
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::Code;
    ///
    /// let unknown: Code = serde_json::from_str("12345").unwrap();
    /// assert_eq!(unknown.number(), 12345);
    /// assert_eq!(unknown.known(), None);
    ///
    /// let named: Code = serde_json::from_str(r#""TASK_FAILED""#).unwrap();
    /// assert_eq!(named.number(), 54005);
    ///
    /// assert!(serde_json::from_str::<Code>(r#""NO_SUCH_CODE""#).is_err());
    /// assert!(serde_json::from_str::<Code>("4294967296").is_err());
    /// ```
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        CodeVisitor::deserialize(deserializer)
    }
}

impl Serialize for Outcome {
    /// Serializes the name: `success`, `in_progress` or `failure`.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::Outcome;
    ///
    /// assert_eq!(serde_json::to_string(&Outcome::Failure).unwrap(), r#""failure""#);
    /// ```
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

struct OutcomeVisitor;

impl Visitor<'_> for OutcomeVisitor {
    type Value = Outcome;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an outcome: `success`, `in_progress` or `failure`")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Outcome, E> {
        v.parse().map_err(|e: crate::ParseOutcomeError| {
            E::invalid_value(Unexpected::Str(e.input()), &self)
        })
    }
}

impl<'de> Deserialize<'de> for Outcome {
    /// Reads a name (`success`, `in_progress`, `failure`) by the crate's
    /// [spelling rules](crate::Code#codes-in-text): the name as written, surrounding spaces
    /// ignored.
    ///
    /// # Errors
    ///
    /// Any other string, or any value that is not a string.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::Outcome;
    ///
    /// assert_eq!(serde_json::from_str::<Outcome>(r#"" in_progress ""#).unwrap(), Outcome::InProgress);
    /// assert!(serde_json::from_str::<Outcome>(r#""done""#).is_err());
    /// assert!(serde_json::from_str::<Outcome>(r#""SUCCESS""#).is_err());
    /// assert!(serde_json::from_str::<Outcome>("1").is_err());
    /// ```
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(OutcomeVisitor)
    }
}
