//! Clarifai codes on `tonic::Status`: the wire contract, both ways.
//!
//! # The wire contract
//!
//! A Clarifai code carried by a `tonic::Status`:
//! - [`code()`](tonic::Status::code) is the code's mapped gRPC code;
//! - [`message()`](tonic::Status::message) is the status description given by the caller, else
//!   the table's description, cut if long (see [Size](#size-the-code-always-arrives));
//! - the details (`grpc-status-details-bin`, a `google.rpc.Status` with the same code and message)
//!   hold exactly one `google.rpc.ErrorInfo`: `reason` is the code's printed name (`UNKNOWN_CODE`
//!   for a number not in the table), `domain` is `api.clarifai.com`, `metadata` has `code` = the
//!   decimal number, `reqId` when the status has a request id, and the other public fields of a
//!   [`pb::Status`] that are set (`details`, `percentCompleted`, `timeRemaining`,
//!   `developerNotes`, `httpStatusCode`); plus a `google.rpc.RetryInfo` when a retry delay is
//!   known;
//! - ASCII metadata `clarifai-status-code: <decimal>`, so proxies and middleware read the code
//!   without decoding details; and `grpc-retry-pushback-ms` when a retry delay is known.
//!
//! ## Size: the code always arrives
//!
//! The message travels twice (percent-encoded in `grpc-message`, raw in the details) and the
//! public fields once more, all in the trailers. gRPC's HTTP/2 protocol document suggests clients
//! limit trailers to 8 KiB, and grpc-java (`maxInboundMetadataSize`, 8 KiB) and C-core/grpcio
//! (`grpc.max_metadata_size`, 8 KiB soft, 16 KiB hard) do: past it they drop the trailers and
//! report `RESOURCE_EXHAUSTED` or `INTERNAL`, losing the code (grpc-go accepts 16 MiB). So
//! whatever the size of a status's text, the contract keeps what it sends small:
//! - the message is cut so that `grpc-message`, as percent-encoded on the wire, is at most
//!   [`MAX_MESSAGE_BYTES`];
//! - each `ErrorInfo` metadata value (`details`, `developerNotes`, `reqId`) is cut to at most
//!   [`MAX_FIELD_BYTES`];
//!
//! cuts fall on a UTF-8 character boundary and end with `... [truncated from N bytes]`, so a
//! reader sees that text is missing. In all, an error's metadata stays within
//! [`MAX_ERROR_METADATA_BYTES`] (counted as HTTP/2 counts a header list: name, value and 32 per
//! entry), leaving room in the 8 KiB for `grpc-status`, `content-type` and a few headers of the
//! service's own. This holds for every path here that builds a coded `tonic::Status`
//! ([`ErrorBuilder::build`] and the `From` impls) and for [`StatusLayer`] when it
//! stamps a plain error.
//!
//! The private fields of a [`pb::Status`] (`stack_trace`, `internal_details`, `redirect_info`) are
//! never read by any conversion here.
//!
//! Reading back ([`ClarifaiStatusExt::clarifai_code`], [`read_code`]): the `clarifai-status-code` header
//! first, then the Clarifai `ErrorInfo`, then [`fallback_from_grpc`].
//! A malformed header, bad base64, garbage detail bytes, a non-numeric or out-of-range value never
//! panic: the next source is tried. Three rules keep what is read the truth:
//! - `grpc-status` is read as tonic reads it, an unparseable value as `UNKNOWN`
//!   ([`read_grpc_code`]), by every reader and layer of the crate;
//! - a gRPC error carries only a failure code: one that claims SUCCESS or an in-progress code
//!   carries none ([`read_code`]);
//! - a status tonic made from the client's own transport error carried no code from a server,
//!   and reads as [`LOCAL_FAILURE`], not as its gRPC code's fallback.
//!
//! # Examples
//!
//! ```
//! use clarifai_status::grpc::{ErrorBuilder, ClarifaiStatusExt};
//! use clarifai_status::{Code, StatusCode};
//! use std::time::Duration;
//!
//! let status: tonic::Status = ErrorBuilder::new(StatusCode::ConnThrottled)
//!     .req_id("req-42")
//!     .retry_after(Duration::from_millis(250))
//!     .build();
//! assert_eq!(status.code(), tonic::Code::ResourceExhausted);
//! assert_eq!(status.message(), "Throttler and billing stuff; making too many requests");
//! assert_eq!(status.metadata().get("clarifai-status-code").unwrap(), "11005");
//!
//! assert_eq!(status.clarifai_code(), StatusCode::ConnThrottled);
//! assert_eq!(status.clarifai_retry_delay(), Some(Duration::from_millis(250)));
//! assert_eq!(status.to_clarifai_status().req_id, "req-42");
//!
//! // A plain gRPC error falls back by its gRPC code.
//! assert_eq!(tonic::Status::unavailable("down").clarifai_code(), StatusCode::RpcServerUnavailable);
//! ```
// `StatusLayer` exists with `server`; without it the link goes to the features table.
#![cfg_attr(
    feature = "server",
    doc = "[`StatusLayer`]: crate::server::status::StatusLayer"
)]
#![cfg_attr(not(feature = "server"), doc = "[`StatusLayer`]: crate#features")]

use std::time::Duration;

use base64::Engine as _;
use http::{HeaderMap, HeaderName};
use tonic::metadata::{MetadataMap, MetadataValue};

use crate::mapping::fallback_from_grpc;
use crate::pb;
use crate::{Code, CODE_HEADER};

pub(crate) mod details;

/// gRFC A6's server pushback header: milliseconds to wait, or negative for "do not retry".
pub const PUSHBACK_HEADER: &str = "grpc-retry-pushback-ms";
/// The `ErrorInfo.domain` of Clarifai errors.
pub const DOMAIN: &str = details::DOMAIN;

/// The most bytes of `grpc-message`, percent-encoded as sent, in an error built here; a longer
/// message is cut (see [Size](self#size-the-code-always-arrives)).
///
/// # Examples
///
/// ```
/// use clarifai_status::grpc::{ErrorBuilder, MAX_MESSAGE_BYTES};
///
/// let error = ErrorBuilder::new(11008).message("x".repeat(10_000)).build();
/// assert!(error.message().len() <= MAX_MESSAGE_BYTES);
/// assert!(error.message().ends_with("[truncated from 10000 bytes]"));
/// assert_eq!(error.code(), tonic::Code::Unauthenticated);
/// ```
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// The most bytes of each `ErrorInfo` metadata value (`details`, `developerNotes`, `reqId`) in an
/// error built here; a longer value is cut (see [Size](self#size-the-code-always-arrives)).
///
/// # Examples
///
/// ```
/// use clarifai_status::grpc::{ErrorBuilder, ClarifaiStatusExt, MAX_FIELD_BYTES};
/// use clarifai_status::pb;
///
/// let status = pb::Status { code: 21200, details: "é".repeat(100_000), ..Default::default() };
/// let details = tonic::Status::from(&status).to_clarifai_status().details;
/// assert!(details.len() <= MAX_FIELD_BYTES);
/// assert!(details.starts_with('é') && details.ends_with("[truncated from 200000 bytes]"));
/// ```
pub const MAX_FIELD_BYTES: usize = 768;

/// The most bytes an error built here puts in the trailers (`grpc-message`,
/// `grpc-status-details-bin`, `clarifai-status-code`, `grpc-retry-pushback-ms`), counted as
/// HTTP/2's `SETTINGS_MAX_HEADER_LIST_SIZE` counts (name + value + 32 per entry): well inside the
/// 8 KiB that grpc-java and grpcio accept by default, whatever the size of the status's text.
///
/// # Examples
///
/// ```
/// assert!(clarifai_status::grpc::MAX_ERROR_METADATA_BYTES < 8 * 1024);
/// ```
pub const MAX_ERROR_METADATA_BYTES: usize = 6 * 1024;

/// Bytes `c` takes in `grpc-message` once percent-encoded as tonic encodes it: controls, space,
/// the few punctuation marks below and every non-ASCII byte become `%XX`.
fn message_cost(c: char) -> usize {
    match c {
        ' ' | '"' | '#' | '%' | '<' | '>' | '`' | '?' | '{' | '}' => 3,
        c if c.is_ascii_graphic() => 1,
        c => 3 * c.len_utf8(),
    }
}

/// `text` cut so that its cost (the sum of `cost` over its chars) is at most `max`, ending with a
/// note of the original length when cut. Borrowed when it fits.
#[inline]
pub(crate) fn cap_text(
    text: &str,
    max: usize,
    cost: impl Fn(char) -> usize,
) -> std::borrow::Cow<'_, str> {
    // Cheap exit, inlined into every caller: every char costs at most 3 bytes per UTF-8 byte.
    if text.len() * 3 <= max {
        return std::borrow::Cow::Borrowed(text);
    }
    cap_long_text(text, max, cost)
}

/// [`cap_text`] past its cheap exit: counts the cost, and cuts if it must.
#[inline(never)]
fn cap_long_text(
    text: &str,
    max: usize,
    cost: impl Fn(char) -> usize,
) -> std::borrow::Cow<'_, str> {
    if text.chars().map(&cost).sum::<usize>() <= max {
        return std::borrow::Cow::Borrowed(text);
    }
    let note = format!("... [truncated from {} bytes]", text.len());
    let budget = max.saturating_sub(note.chars().map(&cost).sum());
    let mut used = 0;
    let mut end = 0;
    for (i, c) in text.char_indices() {
        let c_cost = cost(c);
        if used + c_cost > budget {
            break;
        }
        used += c_cost;
        end = i + c.len_utf8();
    }
    let mut out = String::with_capacity(end + note.len());
    out.push_str(&text[..end]);
    out.push_str(&note);
    std::borrow::Cow::Owned(out)
}

/// A message capped to [`MAX_MESSAGE_BYTES`] as percent-encoded in `grpc-message`.
pub(crate) fn cap_message(message: &str) -> std::borrow::Cow<'_, str> {
    cap_text(message, MAX_MESSAGE_BYTES, message_cost)
}

/// An `ErrorInfo` metadata value capped to [`MAX_FIELD_BYTES`].
#[inline]
fn cap_field(value: &str) -> std::borrow::Cow<'_, str> {
    cap_text(value, MAX_FIELD_BYTES, char::len_utf8)
}

// Pre-built names: a `&str` key is validated and lower-cased on every lookup.
pub(crate) const CODE_NAME: HeaderName = HeaderName::from_static(CODE_HEADER);
pub(crate) const PUSHBACK_NAME: HeaderName = HeaderName::from_static(PUSHBACK_HEADER);
pub(crate) const DETAILS_NAME: HeaderName = HeaderName::from_static("grpc-status-details-bin");
pub(crate) const GRPC_STATUS_NAME: HeaderName = HeaderName::from_static("grpc-status");
#[cfg(any(feature = "server", feature = "retry"))]
pub(crate) const GRPC_MESSAGE_NAME: HeaderName = HeaderName::from_static("grpc-message");

/// Builds a `tonic::Status` carrying a Clarifai code per the [wire contract](self).
///
/// `From<StatusCode>`, `From<Code>` and `From<pb::Status>` for `tonic::Status` use it with no
/// options; use the builder for a message, request id or retry delay, or to add a retry delay to
/// a whole [`pb::Status`] ([`ErrorBuilder::from_status`]).
///
/// # Examples
///
/// ```
/// use clarifai_status::grpc::ErrorBuilder;
/// use clarifai_status::StatusCode;
///
/// let status = ErrorBuilder::new(StatusCode::ModelDoesNotExist).message("no model `m1`").build();
/// assert_eq!(status.code(), tonic::Code::NotFound);
/// assert_eq!(status.message(), "no model `m1`");
/// ```
#[derive(Debug, Clone)]
pub struct ErrorBuilder {
    /// The public fields to send; private ones are never copied in.
    status: pb::Status,
    retry_after: Option<Duration>,
}

impl ErrorBuilder {
    /// Starts an error with this code (a [`StatusCode`](crate::StatusCode) or any [`Code`]).
    pub fn new(code: impl Into<Code>) -> ErrorBuilder {
        ErrorBuilder {
            status: pb::Status {
                code: code.into().number(),
                ..Default::default()
            },
            retry_after: None,
        }
    }

    /// Starts an error from a Clarifai status: its code, description (else the table's) and its
    /// other public fields. The private fields are not read.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::grpc::{ErrorBuilder, ClarifaiStatusExt};
    /// use clarifai_status::pb;
    /// use std::time::Duration;
    ///
    /// let status = pb::Status { code: 11005, details: "per-key limit".into(), internal_details: "x".into(), ..Default::default() };
    /// let error = ErrorBuilder::from_status(&status).retry_after(Duration::from_secs(1)).build();
    /// assert_eq!(error.to_clarifai_status().details, "per-key limit");
    /// assert_eq!(error.clarifai_retry_delay(), Some(Duration::from_secs(1)));
    /// ```
    pub fn from_status(status: &pb::Status) -> ErrorBuilder {
        ErrorBuilder {
            status: status.public_copy(),
            retry_after: None,
        }
    }

    /// Sets the message (default: the table's description of the code).
    pub fn message(mut self, message: impl Into<String>) -> ErrorBuilder {
        self.status.description = message.into();
        self
    }

    /// Sets the request id, sent as `reqId` in the `ErrorInfo` metadata.
    pub fn req_id(mut self, req_id: impl Into<String>) -> ErrorBuilder {
        self.status.req_id = req_id.into();
        self
    }

    /// Sets the delay after which a retry may succeed: sent as a `RetryInfo` detail and as
    /// `grpc-retry-pushback-ms` (in milliseconds, at most `i32::MAX`).
    pub fn retry_after(mut self, delay: Duration) -> ErrorBuilder {
        self.retry_after = Some(delay);
        self
    }

    /// Builds the `tonic::Status`.
    pub fn build(self) -> tonic::Status {
        let mut status = self.status;
        let code = Code::new(status.code);
        let description = std::mem::take(&mut status.description);
        let message = if description.is_empty() {
            code.description().to_owned()
        } else {
            match cap_message(&description) {
                std::borrow::Cow::Borrowed(_) => description,
                std::borrow::Cow::Owned(capped) => capped,
            }
        };
        // Every public field the proto declares that is set, under its JSON name; text capped.
        let retry_after = self.retry_after;
        status.with_error_info_metadata(cap_field, |entries| {
            to_tonic(code, message, entries, retry_after)
        })
    }
}

#[inline]
fn to_tonic(
    code: Code,
    message: String,
    metadata: &[(&str, &[u8])],
    retry_after: Option<Duration>,
) -> tonic::Status {
    let grpc = code.grpc_code();
    let details = details::encode(grpc as i32, &message, code, metadata, retry_after);
    let mut map = MetadataMap::with_capacity(if retry_after.is_some() { 2 } else { 1 });
    map.insert(CODE_HEADER, MetadataValue::from(code.number()));
    if let Some(delay) = retry_after {
        // Clamped to i32: clients parse the pushback as a 32-bit int (gRFC A6), and an
        // unparseable one means "do not retry".
        let ms = i32::try_from(delay.as_millis()).unwrap_or(i32::MAX);
        map.insert(PUSHBACK_HEADER, MetadataValue::from(ms));
    }
    tonic::Status::with_details_and_metadata(grpc, message, details, map)
}

impl From<ErrorBuilder> for tonic::Status {
    /// [`ErrorBuilder::build`].
    fn from(builder: ErrorBuilder) -> tonic::Status {
        builder.build()
    }
}

impl From<crate::StatusCode> for tonic::Status {
    /// A `tonic::Status` per the [wire contract](self), with the table's description as message.
    fn from(code: crate::StatusCode) -> tonic::Status {
        ErrorBuilder::new(code).build()
    }
}

impl From<Code> for tonic::Status {
    /// A `tonic::Status` per the [wire contract](self), with the table's description as message.
    fn from(code: Code) -> tonic::Status {
        ErrorBuilder::new(code).build()
    }
}

impl From<&pb::Status> for tonic::Status {
    /// A `tonic::Status` per the [wire contract](self): the status's description (else the
    /// table's), its request id and its other public fields. Private fields are never read.
    fn from(status: &pb::Status) -> tonic::Status {
        ErrorBuilder::from_status(status).build()
    }
}

impl From<pb::Status> for tonic::Status {
    /// As `From<&pb::Status>`.
    fn from(status: pb::Status) -> tonic::Status {
        tonic::Status::from(&status)
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for tonic::Status {}
}

/// Reads Clarifai codes and retry delays off a `tonic::Status`. Sealed: implemented only for
/// `tonic::Status`, so methods can be added without breaking anyone.
///
/// # Examples
///
/// ```
/// use clarifai_status::grpc::ClarifaiStatusExt;
/// use clarifai_status::StatusCode;
///
/// let status = tonic::Status::from(StatusCode::ModelBusyPleaseRetry);
/// assert_eq!(status.clarifai_code(), StatusCode::ModelBusyPleaseRetry);
/// assert_eq!(status.carried_clarifai_code().map(|c| c.number()), Some(21354));
/// assert_eq!(tonic::Status::internal("x").carried_clarifai_code(), None);
/// ```
///
/// Named apart from tonic-types' `StatusExt` (the richer error model's reader), so both import
/// by name into one scope:
///
/// ```
/// use clarifai_status::grpc::ClarifaiStatusExt;
/// use tonic_types::StatusExt;
///
/// let status = tonic::Status::from(clarifai_status::StatusCode::ConnThrottled);
/// assert_eq!(status.clarifai_code().number(), 11005);
/// assert_eq!(status.get_details_error_info().unwrap().reason, "CONN_THROTTLED");
/// ```
pub trait ClarifaiStatusExt: sealed::Sealed {
    /// The Clarifai code this error carries: the `clarifai-status-code` metadata, else the
    /// Clarifai `ErrorInfo` in the details, else [`fallback_from_grpc`] of the gRPC code.
    fn clarifai_code(&self) -> Code;

    /// The Clarifai code carried by the header or the details; `None` for a plain gRPC error.
    fn carried_clarifai_code(&self) -> Option<Code>;

    /// The delay the server asked for: the `RetryInfo` detail, else `grpc-retry-pushback-ms` (a
    /// non-negative number of milliseconds).
    fn clarifai_retry_delay(&self) -> Option<Duration>;

    /// The Clarifai status this error carries: code (as [`clarifai_code`](Self::clarifai_code)),
    /// description (the message) and the public fields sent in the `ErrorInfo` metadata.
    fn to_clarifai_status(&self) -> pb::Status;
}

impl ClarifaiStatusExt for tonic::Status {
    fn clarifai_code(&self) -> Code {
        self.carried_clarifai_code()
            .unwrap_or_else(|| uncarried_code(self))
    }

    fn carried_clarifai_code(&self) -> Option<Code> {
        let carried = parse_code_header(
            self.metadata()
                .get(CODE_HEADER)
                .map(|v| v.as_encoded_bytes()),
        )
        .or_else(|| details::decode(self.details()).code)?;
        if self.code() == tonic::Code::Ok {
            Some(carried)
        } else {
            error_code(carried)
        }
    }

    fn clarifai_retry_delay(&self) -> Option<Duration> {
        details::decode(self.details()).retry_after.or_else(|| {
            match parse_pushback(
                self.metadata()
                    .get(PUSHBACK_HEADER)
                    .map(|v| v.as_encoded_bytes()),
            ) {
                Some(Pushback::After(d)) => Some(d),
                _ => None,
            }
        })
    }

    fn to_clarifai_status(&self) -> pb::Status {
        let decoded = details::decode(self.details());
        let code = self.clarifai_code();
        let mut status = pb::Status {
            code: code.number(),
            description: self.message().to_owned(),
            ..Default::default()
        };
        // The ErrorInfo metadata under the public fields' JSON names; others (`code`), and values
        // that are not their field's type, are left out.
        for (key, value) in &decoded.metadata {
            status.set_public_field(key, value);
        }
        status
    }
}

/// The code read for a `tonic::Status` that carries none: [`LOCAL_FAILURE`] when tonic made it
/// from the client's own transport error (it has an [`Error::source`](std::error::Error::source);
/// a status decoded from a server's `grpc-status` never has one), else [`fallback_from_grpc`].
fn uncarried_code(status: &tonic::Status) -> Code {
    if std::error::Error::source(status).is_some() {
        LOCAL_FAILURE.into()
    } else {
        fallback_from_grpc(status.code()).into()
    }
}

/// The code [`ClarifaiStatusExt::clarifai_code`] reads for a failure the client's own stack
/// produced, with no Clarifai code from any server: `CONN_UNCATEGORIZED` (99001).
///
/// tonic turns the client's transport errors into a `tonic::Status` whose
/// [`source`](std::error::Error::source) is the error (an `h2` reset or GOAWAY, including h2's
/// own refusal of an over-size header list it received or was asked to send; a `hyper` error; a
/// failed connect; tonic's own `timeout`): no server sent a code then, so reading the gRPC code's
/// fallback (`RESOURCE_EXHAUSTED` as `CONN_THROTTLED`, say) would claim a server's meaning.
/// `CONN_UNCATEGORIZED` says what is known: the connection failed, uncategorized.
///
/// What tonic's codec makes on the client without a source (its decode limit, `OUT_OF_RANGE`
/// "decoded message length too large"; a truncated message, `INTERNAL`) cannot be told apart
/// from a server's bare gRPC error through tonic's public API, and reads by its gRPC code's
/// fallback. The retry classifiers never read this code: they decide on the gRPC code of a status
/// that carries none.
///
/// # Examples
///
/// ```
/// use clarifai_status::grpc::{ClarifaiStatusExt, LOCAL_FAILURE};
/// use clarifai_status::StatusCode;
///
/// // A transport error, as tonic's channel reports it: the status has a source.
/// let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
/// let local = tonic::Status::from_error(Box::new(io));
/// assert_eq!(local.clarifai_code(), LOCAL_FAILURE);
/// assert_eq!(LOCAL_FAILURE, StatusCode::ConnUncategorized);
///
/// // The same gRPC code from a server reads by the fallback.
/// assert_eq!(tonic::Status::unknown("x").clarifai_code(), StatusCode::Failure);
/// ```
pub const LOCAL_FAILURE: crate::StatusCode = crate::StatusCode::ConnUncategorized;

/// A code carried by a gRPC error (not `OK`), if it is one an error can carry: a failure
/// (`ZERO` and unknown numbers included, as [`Outcome::Failure`](crate::Outcome) says). SUCCESS
/// and the in-progress codes are not taken: an error that claims one carries no code.
#[inline]
pub(crate) fn error_code(code: Code) -> Option<Code> {
    code.is_failure().then_some(code)
}

/// Parses a `clarifai-status-code` value by the crate's [spelling rules](Code#codes-in-text).
pub(crate) fn parse_code_header(value: Option<&[u8]>) -> Option<Code> {
    crate::code::read_text(std::str::from_utf8(value?).ok()?)
}

/// What a server said about retrying, in `grpc-retry-pushback-ms` (gRFC A6).
///
/// # Examples
///
/// ```
/// use clarifai_status::grpc::{read_pushback, Pushback};
/// use std::time::Duration;
///
/// let mut headers = http::HeaderMap::new();
/// assert_eq!(read_pushback(&headers), None);
/// headers.insert("grpc-retry-pushback-ms", "150".parse().unwrap());
/// assert_eq!(read_pushback(&headers), Some(Pushback::After(Duration::from_millis(150))));
/// headers.insert("grpc-retry-pushback-ms", "-1".parse().unwrap());
/// assert_eq!(read_pushback(&headers), Some(Pushback::DoNotRetry));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushback {
    /// Retry no sooner than this.
    After(Duration),
    /// Do not retry: the value was negative or unparseable.
    DoNotRetry,
}

fn parse_pushback(value: Option<&[u8]>) -> Option<Pushback> {
    let value = value?;
    let parsed = std::str::from_utf8(value)
        .ok()
        .and_then(|t| t.trim().parse::<i64>().ok());
    Some(match parsed {
        Some(ms) if ms >= 0 => Pushback::After(Duration::from_millis(ms as u64)),
        _ => Pushback::DoNotRetry,
    })
}

/// Reads `grpc-retry-pushback-ms` from response headers or trailers; `None` when absent.
pub fn read_pushback(headers: &HeaderMap) -> Option<Pushback> {
    parse_pushback(headers.get(&PUSHBACK_NAME).map(|v| v.as_bytes()))
}

/// Reads the Clarifai code carried in raw gRPC headers or trailers (as tower layers see them):
/// `clarifai-status-code`, else the Clarifai `ErrorInfo` in `grpc-status-details-bin` (base64,
/// padded or not). `None` when neither carries one. Never panics on malformed values.
///
/// On headers that hold a gRPC error (a `grpc-status` other than `0`, as [`read_grpc_code`]
/// reads it), only a failure code counts as carried: an error that claims SUCCESS or an
/// in-progress code carries no code, and `None` is returned.
///
/// # Examples
///
/// ```
/// use clarifai_status::grpc::read_code;
/// use clarifai_status::Code;
///
/// let mut headers = http::HeaderMap::new();
/// headers.insert("grpc-status-details-bin", "!!not base64!!".parse().unwrap());
/// assert_eq!(read_code(&headers), None);
/// headers.insert("clarifai-status-code", "11008".parse().unwrap());
/// assert_eq!(read_code(&headers), Some(Code::new(11008)));
/// ```
pub fn read_code(headers: &HeaderMap) -> Option<Code> {
    let carried =
        parse_code_header(headers.get(&CODE_NAME).map(|v| v.as_bytes())).or_else(|| {
            let raw = headers.get(&DETAILS_NAME)?;
            let bytes = decode_base64(raw.as_bytes())?;
            details::decode(&bytes).code
        })?;
    match read_grpc_code(headers) {
        Some(code) if code != tonic::Code::Ok => error_code(carried),
        _ => Some(carried),
    }
}

/// Reads the gRPC code in raw headers or trailers (`grpc-status`); `None` when absent.
///
/// This is the one reading of `grpc-status` in the crate, every layer's: a value that is not a
/// gRPC code (`abc`, `99`, ` 14`, empty) is `UNKNOWN`, as tonic's client reads it
/// ([`tonic::Code::from_bytes`]) and as gRPC's HTTP/2 protocol says of an unparseable status. The
/// crate's layers write such a value back as `2`, so every client reads the same code.
///
/// # Examples
///
/// ```
/// use clarifai_status::grpc::read_grpc_code;
///
/// let mut headers = http::HeaderMap::new();
/// assert_eq!(read_grpc_code(&headers), None);
/// headers.insert("grpc-status", "14".parse().unwrap());
/// assert_eq!(read_grpc_code(&headers), Some(tonic::Code::Unavailable));
/// headers.insert("grpc-status", "fourteen".parse().unwrap());
/// assert_eq!(read_grpc_code(&headers), Some(tonic::Code::Unknown));
/// ```
pub fn read_grpc_code(headers: &HeaderMap) -> Option<tonic::Code> {
    headers
        .get(&GRPC_STATUS_NAME)
        .map(|value| tonic::Code::from_bytes(value.as_bytes()))
}

/// Makes gRPC status headers from a peer safe for every reader, tonic's included: each rule
/// replaces or removes a value that some client would panic on or read as another code.
///
/// - `grpc-status` that is not a gRPC code (read as `UNKNOWN`, see [`read_grpc_code`]) becomes
///   `2`.
/// - `grpc-status-details-bin` that is not base64 (padded or not) is removed: tonic's client
///   panics on it (`Status::from_header_map`'s `expect`), and no reader can use it.
/// - `grpc-message` whose percent-decoding is not UTF-8 (tonic's client then drops the gRPC code
///   for `UNKNOWN`) is written again from its lossy decoding.
///
/// Returns whether anything was changed. Costs one lookup per header when they are absent.
#[cfg(any(feature = "server", feature = "retry"))]
pub(crate) fn sanitize(headers: &mut HeaderMap) -> bool {
    let mut changed = false;
    if let Some(value) = headers.get(&GRPC_STATUS_NAME) {
        if tonic::Code::from_bytes(value.as_bytes()) == tonic::Code::Unknown && value != "2" {
            headers.insert(GRPC_STATUS_NAME, http::HeaderValue::from_static("2"));
            changed = true;
        }
    }
    if let Some(value) = headers.get(&DETAILS_NAME) {
        if decode_base64(value.as_bytes()).is_none() {
            headers.remove(&DETAILS_NAME);
            changed = true;
        }
    }
    if let Some(value) = headers.get(&GRPC_MESSAGE_NAME) {
        let decoded = percent_encoding::percent_decode(value.as_bytes());
        if decoded.clone().decode_utf8().is_err() {
            let text = decoded.decode_utf8_lossy();
            let encoded = percent_encoding::utf8_percent_encode(&text, MESSAGE_SET).to_string();
            match http::HeaderValue::from_str(&encoded) {
                Ok(value) => {
                    headers.insert(GRPC_MESSAGE_NAME, value);
                }
                Err(_) => {
                    headers.remove(&GRPC_MESSAGE_NAME);
                }
            }
            changed = true;
        }
    }
    changed
}

/// What tonic percent-encodes in `grpc-message` (gRPC's HTTP/2 protocol: everything outside
/// printable ASCII, and `%`), defined once for every writer of the header here.
#[cfg(any(feature = "server", feature = "retry"))]
pub(crate) const MESSAGE_SET: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'?')
    .add(b'{')
    .add(b'}');

/// Reads the retry delay a `RetryInfo` in `grpc-status-details-bin` asks for, else the pushback
/// header's; `None` when there is neither (or the pushback says not to retry: see [`read_pushback`]).
pub fn read_retry_delay(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(&DETAILS_NAME)
        .and_then(|raw| decode_base64(raw.as_bytes()))
        .and_then(|bytes| details::decode(&bytes).retry_after)
        .or(match read_pushback(headers) {
            Some(Pushback::After(d)) => Some(d),
            _ => None,
        })
}

/// Standard base64 with or without padding (gRPC peers send both); `None` for anything else.
pub(crate) fn decode_base64(raw: &[u8]) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const ENGINE: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    ENGINE.decode(raw).ok()
}
