//! Clarifai codes over HTTP: responses in Clarifai's REST shape, and reading them back.
//!
//! A Clarifai status as an HTTP response ([`response`]):
//! - the code's mapped HTTP status ([`Code::http_status`](crate::Code::http_status));
//! - header `clarifai-status-code: <decimal>`;
//! - `content-type: application/json` and the body `{"status": {"code": 11008, "description":
//!   "...", ...}}`, with the public fields of [`Status`](crate::pb::Status) that are set, under
//!   their proto names (`req_id`, `percent_completed`, ...), as Clarifai's REST API answers. The private
//!   fields (`stack_trace`, `internal_details`, `redirect_info`) are never written; so a `MOVED`
//!   response carries no `Location` taken from `redirect_info`.
//!
//! Reading a response back ([`read_code_or_fallback`], [`read_status_or_fallback`]): the `clarifai-status-code` header,
//! then the JSON `status.code` (a number, a decimal string or a name), then
//! [`mapping::fallback_from_http`](crate::mapping::fallback_from_http) of the HTTP status.
//! Malformed headers and bodies never panic: the next source is tried.
//!
//! Everything here is plain `http` types, so it works with any `http`-based framework (axum,
//! hyper, warp, actix via conversion) without making one a dependency. The JSON bodies
//! ([`response`], [`code_response`], [`to_json`], [`parse_json`], [`read_code_or_fallback`],
//! [`read_status_or_fallback`]) need the `json` feature (serde_json); the `Retry-After` helpers and
//! [`CODE_HEADER`](crate::CODE_HEADER) are in every build.
//!
//! # Examples
//!
//! ```
//! # #[cfg(feature = "json")] {
//! use clarifai_status::{pb, rest, StatusCode};
//!
//! let status = pb::Status {
//!     code: StatusCode::ConnKeyInvalid as i32,
//!     req_id: "req-1".into(),
//!     internal_details: "key table lookup failed".into(), // private: never sent
//!     ..Default::default()
//! };
//! let response = rest::response(&status);
//! assert_eq!(response.status(), http::StatusCode::UNAUTHORIZED);
//! assert_eq!(response.headers()["clarifai-status-code"], "11008");
//! assert!(!response.body().contains("key table"));
//!
//! let (parts, body) = response.into_parts();
//! let back = rest::read_status_or_fallback(parts.status, &parts.headers, body.as_bytes());
//! assert_eq!(back.code, 11008);
//! assert_eq!(back.req_id, "req-1");
//! assert_eq!(back.description, "Invalid API key or Invalid API key/application pair");
//! # }
//! ```
// Without `json` the JSON items do not exist: their links go to the features table.
#![cfg_attr(not(feature = "json"), doc = "[`response`]: crate#features")]
#![cfg_attr(not(feature = "json"), doc = "[`code_response`]: crate#features")]
#![cfg_attr(not(feature = "json"), doc = "[`to_json`]: crate#features")]
#![cfg_attr(not(feature = "json"), doc = "[`parse_json`]: crate#features")]
#![cfg_attr(
    not(feature = "json"),
    doc = "[`read_code_or_fallback`]: crate#features"
)]
#![cfg_attr(
    not(feature = "json"),
    doc = "[`read_status_or_fallback`]: crate#features"
)]

use std::time::Duration;

#[cfg(feature = "json")]
use http::header::CONTENT_TYPE;
use http::header::{HeaderValue, RETRY_AFTER};
use http::HeaderMap;
#[cfg(feature = "json")]
use serde_json::{Map, Value};

#[cfg(feature = "json")]
use crate::mapping::fallback_from_http;
#[cfg(feature = "json")]
use crate::pb::PublicValue;
#[cfg(feature = "json")]
use crate::{pb, Code};

#[cfg(feature = "json")]
/// The JSON body for a status: `{"status": {...}}` with `code`, `description` (the status's, else
/// the table's) and the other public fields that are set. Never a private field.
///
/// # Examples
///
/// ```
/// use clarifai_status::{pb, rest};
///
/// let body = rest::to_json(&pb::Status { code: 10000, ..Default::default() });
/// assert_eq!(body, r#"{"status":{"code":10000,"description":"Ok"}}"#);
/// ```
pub fn to_json(status: &pb::Status) -> String {
    let code = Code::new(status.code);
    let mut fields = Map::new();
    fields.insert("code".into(), Value::from(status.code));
    let description = if status.description.is_empty() {
        code.description()
    } else {
        &status.description
    };
    fields.insert("description".into(), Value::from(description));
    // Every public field the proto declares, set ones only, under its field name (Clarifai's
    // REST API answers in snake_case).
    status.for_each_set_public_field(|name, _, value| {
        let value = match value {
            PublicValue::Text(text) => Value::from(text),
            PublicValue::Number(n) => Value::from(n),
        };
        fields.insert(name.into(), value);
    });
    let mut body = Map::new();
    body.insert("status".into(), Value::Object(fields));
    Value::Object(body).to_string()
}

#[cfg(feature = "json")]
/// A complete HTTP response for a status: mapped HTTP status, `clarifai-status-code`,
/// `content-type: application/json` and the [`to_json`] body.
///
/// # Examples
///
/// ```
/// use clarifai_status::{pb, rest, StatusCode};
///
/// let response = rest::response(&pb::Status { code: StatusCode::MixedStatus as i32, ..Default::default() });
/// assert_eq!(response.status().as_u16(), 207);
/// ```
pub fn response(status: &pb::Status) -> http::Response<String> {
    let code = Code::new(status.code);
    let mut response = http::Response::new(to_json(status));
    *response.status_mut() = code.http_status();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(crate::grpc::CODE_NAME, HeaderValue::from(code.number()));
    response
}

#[cfg(feature = "json")]
/// The response for a bare code (its table description as `description`), as [`response`].
///
/// # Examples
///
/// ```
/// use clarifai_status::{rest, StatusCode};
///
/// let response = rest::code_response(StatusCode::ConnThrottled);
/// assert_eq!(response.status(), http::StatusCode::TOO_MANY_REQUESTS);
/// ```
pub fn code_response(code: impl Into<Code>) -> http::Response<String> {
    response(&pb::Status {
        code: code.into().number(),
        ..Default::default()
    })
}

/// Sets `Retry-After` on a response, in whole seconds rounded up (HTTP has no finer unit).
///
/// # Examples
///
/// ```
/// use clarifai_status::{rest, StatusCode};
/// use std::time::Duration;
///
/// let mut response = rest::code_response(StatusCode::ConnThrottled);
/// rest::set_retry_after(&mut response, Duration::from_millis(1500));
/// assert_eq!(response.headers()["retry-after"], "2");
/// ```
pub fn set_retry_after<B>(response: &mut http::Response<B>, delay: Duration) {
    let secs = delay
        .as_secs()
        .saturating_add(u64::from(delay.subsec_nanos() > 0));
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(secs));
}

/// Reads `Retry-After` as a number of seconds; `None` when absent or not a number (an HTTP date
/// is not read: Clarifai does not send one).
///
/// # Examples
///
/// ```
/// let mut headers = http::HeaderMap::new();
/// headers.insert("retry-after", "3".parse().unwrap());
/// assert_eq!(clarifai_status::rest::read_retry_after(&headers), Some(std::time::Duration::from_secs(3)));
/// ```
pub fn read_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(feature = "json")]
/// The most bytes of a body the JSON readers ([`parse_json`], [`read_code_or_fallback`], [`read_status_or_fallback`])
/// look at: 1 MiB. The status must end within them.
///
/// Reading is bounded by this and by what the status holds, never by the document: the readers
/// walk the JSON without building it, keep only the `status` object's known fields, and stop at
/// the end of the `status` object. Clarifai's REST API writes `status` first (it is field 1 of
/// every response message, and its JSON keeps field order), so a response of any size with
/// megabytes of outputs is read in the time of its first few hundred bytes. A body whose status
/// does not end within the first `MAX_JSON_BYTES` is read as having none (the header, then the
/// HTTP status, decide). Nesting deeper than serde_json's limit (128) is read as not JSON.
///
/// # Examples
///
/// ```
/// use clarifai_status::rest::{parse_json, MAX_JSON_BYTES};
///
/// // The status first, then far more than the limit: read.
/// let mut body = br#"{"status":{"code":21354},"outputs":["#.to_vec();
/// body.resize(MAX_JSON_BYTES * 2, b' ');
/// assert_eq!(parse_json(&body).map(|s| s.code), Some(21354));
///
/// // The status only past the limit: not read.
/// let mut late = br#"{"outputs":""#.to_vec();
/// late.resize(MAX_JSON_BYTES, b'x');
/// late.extend_from_slice(br#"","status":{"code":21354}}"#);
/// assert_eq!(parse_json(&late), None);
/// ```
pub const MAX_JSON_BYTES: usize = 1 << 20;

#[cfg(feature = "json")]
/// Parses a JSON body in Clarifai's REST shape into its status; `None` when the body is not JSON,
/// has no `status` object, or its `code` is neither a number in `i32` nor a string read by the
/// crate's [spelling rules](crate::Code#codes-in-text) (a decimal `i32` or a known name,
/// surrounding spaces ignored). Unknown fields are ignored; fields of the wrong type are left
/// empty. At most [`MAX_JSON_BYTES`] are read, and nothing after the `status` object (see there:
/// the document is walked, never built).
///
/// # Examples
///
/// ```
/// use clarifai_status::rest::parse_json;
///
/// let status = parse_json(br#"{"status": {"code": "CONN_THROTTLED", "req_id": "r"}}"#).unwrap();
/// assert_eq!((status.code, status.req_id.as_str()), (11005, "r"));
/// assert!(parse_json(b"<html>").is_none());
/// ```
pub fn parse_json(body: &[u8]) -> Option<pb::Status> {
    json::parse(&body[..body.len().min(MAX_JSON_BYTES)])
}

/// The bounded walk behind [`parse_json`]: serde's visitors over serde_json's reader, so that
/// only the `status` object's known fields are kept (everything else is skipped with
/// `IgnoredAny`, which allocates nothing), and the walk stops when the `status` object ends.
#[cfg(feature = "json")]
mod json {
    use std::fmt;

    use serde::de::{self, DeserializeSeed, Deserializer as _, IgnoredAny, MapAccess, Visitor};

    use crate::pb::{self, PublicValue};
    use crate::Code;

    pub(super) fn parse(body: &[u8]) -> Option<pb::Status> {
        let mut found = None;
        let mut reader = serde_json::Deserializer::from_slice(body);
        // The walk ends with an error on purpose once the status is read (nothing after it is
        // looked at), or with a real error: either way `found` says what was read.
        let _ = reader.deserialize_map(Envelope { found: &mut found });
        found
    }

    /// The error that stops the walk once the status is read.
    const DONE: &str = "status read";

    /// The top-level object: `status` read, every other key skipped.
    struct Envelope<'a> {
        found: &'a mut Option<pb::Status>,
    }

    impl<'de> Visitor<'de> for Envelope<'_> {
        type Value = ();

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<Key>()? {
                match key {
                    Key::Named(name) if name == "status" => {
                        *self.found = map.next_value_seed(StatusObject)?;
                        return Err(de::Error::custom(DONE));
                    }
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(())
        }
    }

    /// The `status` object: its code, description and the public fields the proto declares.
    struct StatusObject;

    impl<'de> DeserializeSeed<'de> for StatusObject {
        type Value = Option<pb::Status>;

        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for StatusObject {
        type Value = Option<pb::Status>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a status object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut code = None;
            let mut status = pb::Status::default();
            let defaults = pb::Status::default();
            let public = defaults.public_fields();
            while let Some(key) = map.next_key::<Key>()? {
                let Key::Named(name) = key else {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                };
                let kind = public
                    .iter()
                    .find(|(field, _, _)| *field == name)
                    .map(|(_, _, kind)| *kind);
                if name != "code" && name != "description" && kind.is_none() {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
                let value = map.next_value::<Scalar>()?;
                match (name.as_str(), value, kind) {
                    ("code", value, _) => code = value.code(),
                    ("description", Scalar::Text(text), _) => status.description = text,
                    (name, Scalar::Text(text), Some(PublicValue::Text(_))) => {
                        status.set_public_field(name, &text);
                    }
                    (name, Scalar::Int(n), Some(PublicValue::Number(_))) => {
                        status.set_public_field(name, &n.to_string());
                    }
                    _ => {}
                }
            }
            Ok(code.map(|code| {
                status.code = code.number();
                status
            }))
        }

        // Anything but an object is a status with no code.
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    }

    /// An object key; only short keys can name a field, so longer ones are not kept.
    enum Key {
        Named(String),
        Other,
    }

    impl<'de> de::Deserialize<'de> for Key {
        fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
            struct KeyVisitor;
            impl Visitor<'_> for KeyVisitor {
                type Value = Key;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a key")
                }
                fn visit_str<E>(self, key: &str) -> Result<Key, E> {
                    Ok(if key.len() <= 64 {
                        Key::Named(key.to_owned())
                    } else {
                        Key::Other
                    })
                }
            }
            d.deserialize_str(KeyVisitor)
        }
    }

    /// A field's value: text, a whole number, or anything else (skipped, never built).
    enum Scalar {
        Text(String),
        Int(i128),
        Other,
    }

    impl Scalar {
        /// The code a `code` value names: a whole number in `i32`, or text by the crate's
        /// spelling rules.
        fn code(self) -> Option<Code> {
            match self {
                Scalar::Int(n) => i32::try_from(n).ok().map(Code::new),
                Scalar::Text(text) => crate::code::read_text(&text),
                Scalar::Other => None,
            }
        }
    }

    impl<'de> de::Deserialize<'de> for Scalar {
        fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Scalar, D::Error> {
            struct ScalarVisitor;
            impl<'de> Visitor<'de> for ScalarVisitor {
                type Value = Scalar;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a value")
                }
                fn visit_str<E>(self, text: &str) -> Result<Scalar, E> {
                    Ok(Scalar::Text(text.to_owned()))
                }
                fn visit_string<E>(self, text: String) -> Result<Scalar, E> {
                    Ok(Scalar::Text(text))
                }
                fn visit_i64<E>(self, n: i64) -> Result<Scalar, E> {
                    Ok(Scalar::Int(n.into()))
                }
                fn visit_u64<E>(self, n: u64) -> Result<Scalar, E> {
                    Ok(Scalar::Int(n.into()))
                }
                fn visit_f64<E>(self, _: f64) -> Result<Scalar, E> {
                    Ok(Scalar::Other)
                }
                fn visit_bool<E>(self, _: bool) -> Result<Scalar, E> {
                    Ok(Scalar::Other)
                }
                fn visit_unit<E>(self) -> Result<Scalar, E> {
                    Ok(Scalar::Other)
                }
                fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
                    while seq.next_element::<IgnoredAny>()?.is_some() {}
                    Ok(Scalar::Other)
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
                    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                    Ok(Scalar::Other)
                }
            }
            d.deserialize_any(ScalarVisitor)
        }
    }
}

#[cfg(feature = "json")]
/// The Clarifai code of an HTTP response: `clarifai-status-code`, else the JSON `status.code`,
/// else [`fallback_from_http`] of the HTTP status. The body is read only when the header has no
/// code, and then within [`MAX_JSON_BYTES`] without building the document.
///
/// # Examples
///
/// ```
/// use clarifai_status::{rest, StatusCode};
///
/// let headers = http::HeaderMap::new();
/// let code = rest::read_code_or_fallback(http::StatusCode::UNAUTHORIZED, &headers, br#"{"status":{"code":11008}}"#);
/// assert_eq!(code, StatusCode::ConnKeyInvalid);
/// let code = rest::read_code_or_fallback(http::StatusCode::SERVICE_UNAVAILABLE, &headers, b"upstream down");
/// assert_eq!(code, StatusCode::RpcServerUnavailable);
/// ```
pub fn read_code_or_fallback(status: http::StatusCode, headers: &HeaderMap, body: &[u8]) -> Code {
    crate::grpc::parse_code_header(
        headers
            .get(&crate::grpc::CODE_NAME)
            .map(HeaderValue::as_bytes),
    )
    .or_else(|| parse_json(body).map(|s| Code::new(s.code)))
    .unwrap_or_else(|| fallback_from_http(status).into())
}

#[cfg(feature = "json")]
/// The Clarifai status of an HTTP response: the JSON body's status if it has one, with its code
/// replaced by the `clarifai-status-code` header when that is set; else a status with the
/// [`read_code_or_fallback`] code and no description. The body is parsed once, bounded as [`parse_json`].
pub fn read_status_or_fallback(
    status: http::StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> pb::Status {
    let header = crate::grpc::parse_code_header(
        headers
            .get(&crate::grpc::CODE_NAME)
            .map(HeaderValue::as_bytes),
    );
    let mut parsed = parse_json(body).unwrap_or_else(|| pb::Status {
        code: Code::from(fallback_from_http(status)).number(),
        ..Default::default()
    });
    if let Some(code) = header {
        parsed.code = code.number();
    }
    parsed
}
