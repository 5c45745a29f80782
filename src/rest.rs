//! Clarifai codes over HTTP: responses in Clarifai's REST shape, and reading them back.
//!
//! A Clarifai status as an HTTP response ([`response`]):
//! - the code's mapped HTTP status ([`Code::http_status`]);
//! - header `clarifai-status-code: <decimal>`;
//! - `content-type: application/json` and the body `{"status": {"code": 11008, "description":
//!   "...", ...}}`, with the public fields of [`pb::Status`] that are set, under their proto
//!   names (`req_id`, `percent_completed`, ...), as Clarifai's REST API answers. The private
//!   fields (`stack_trace`, `internal_details`, `redirect_info`) are never written; so a `MOVED`
//!   response carries no `Location` taken from `redirect_info`.
//!
//! Reading a response back ([`read_code`], [`read_status`]): the `clarifai-status-code` header,
//! then the JSON `status.code` (a number, a decimal string or a name), then
//! [`fallback_from_http`] of the HTTP status. Malformed
//! headers and bodies never panic: the next source is tried.
//!
//! Everything here is plain `http` types, so it works with any `http`-based framework (axum,
//! hyper, warp, actix via conversion) without making one a dependency. The JSON bodies
//! ([`response`], [`code_response`], [`to_json`], [`parse_json`], [`read_code`],
//! [`read_status`]) need the `json` feature (serde_json); the `Retry-After` helpers and
//! [`CODE_HEADER`] are in every build.
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
//! let back = rest::read_status(parts.status, &parts.headers, body.as_bytes());
//! assert_eq!(back.code, 11008);
//! assert_eq!(back.req_id, "req-1");
//! assert_eq!(back.description, "Invalid API key or Invalid API key/application pair");
//! # }
//! ```

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

/// The header that carries the decimal Clarifai code.
pub const CODE_HEADER: &str = crate::grpc::CODE_HEADER;

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
/// Parses a JSON body in Clarifai's REST shape into its status; `None` when the body is not JSON,
/// has no `status` object, or its `code` is neither a number in `i32` nor a string read by the
/// crate's [spelling rules](crate::Code#codes-in-text) (a decimal `i32` or a known name,
/// surrounding spaces ignored). Unknown fields are ignored; fields of the wrong type are left
/// empty.
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
    let value: Value = serde_json::from_slice(body).ok()?;
    let fields = value.get("status")?.as_object()?;
    let code = json_code(fields.get("code")?)?;
    let mut status = pb::Status {
        code: code.number(),
        description: fields
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        ..Default::default()
    };
    // The public fields the proto declares, by field name; texts as strings, numbers as numbers.
    for (name, _, kind) in pb::Status::default().public_fields() {
        let text = match (fields.get(name), kind) {
            (Some(Value::String(text)), PublicValue::Text(_)) => text.clone(),
            (Some(Value::Number(n)), PublicValue::Number(_)) => n.to_string(),
            _ => continue,
        };
        status.set_public_field(name, &text);
    }
    Some(status)
}

#[cfg(feature = "json")]
fn json_code(value: &Value) -> Option<Code> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .map(Code::new),
        // The crate's spelling rules, as every text path: crate::Code#codes-in-text.
        Value::String(s) => crate::code::read_text(s),
        _ => None,
    }
}

#[cfg(feature = "json")]
/// The Clarifai code of an HTTP response: `clarifai-status-code`, else the JSON `status.code`,
/// else [`fallback_from_http`] of the HTTP status.
///
/// # Examples
///
/// ```
/// use clarifai_status::{rest, StatusCode};
///
/// let headers = http::HeaderMap::new();
/// let code = rest::read_code(http::StatusCode::UNAUTHORIZED, &headers, br#"{"status":{"code":11008}}"#);
/// assert_eq!(code, StatusCode::ConnKeyInvalid);
/// let code = rest::read_code(http::StatusCode::SERVICE_UNAVAILABLE, &headers, b"upstream down");
/// assert_eq!(code, StatusCode::RpcServerUnavailable);
/// ```
pub fn read_code(status: http::StatusCode, headers: &HeaderMap, body: &[u8]) -> Code {
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
/// [`read_code`] code and no description.
pub fn read_status(status: http::StatusCode, headers: &HeaderMap, body: &[u8]) -> pb::Status {
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
