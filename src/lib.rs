//! Clarifai API status codes as first-class Rust, for gRPC services and clients that speak
//! Clarifai's API.
//!
//! Clarifai reports every outcome as a numeric status code (10000 `SUCCESS`, 11008
//! `CONN_KEY_INVALID`, 21354 `MODEL_BUSY_PLEASE_RETRY`, ...), usually inside an OK gRPC
//! response. This crate holds the whole table, maps it losslessly to `tonic` and `http`, and puts
//! it to work in interceptors, server middleware and retries.
//!
//! # Where things are
//!
//! | module | what |
//! |---|---|
//! | crate root | [`StatusCode`] (the generated enum), [`Code`] (any number from the wire), [`Outcome`] |
//! | [`table`] | the generated table: every code's facts, and the mapping table itself |
//! | [`pb`] | the protobuf messages: [`pb::Status`], [`pb::BaseResponse`], `google.rpc` details |
//! | [`mapping`] | gRPC code ↔ HTTP status, and fallbacks into the table from either |
//! | [`grpc`] | Clarifai codes on `tonic::Status`: the wire contract, both ways |
//! | [`rest`] | Clarifai codes on HTTP responses (Clarifai's REST JSON), both ways |
//! | [`response`] | responses that carry a status, and turning their failures into gRPC errors |
//! | [`client`] | the client side of the convention: an interceptor sending `authorization: Key <key>` |
//! | `server` | interceptors (API-key auth, any closure) and a layer stamping every error |
//! | `retry` | status-aware retry: a tower layer for channels, a call helper, a poller |
//! | `telemetry` | Clarifai codes in metrics and spans, per method; a `TraceLayer` classifier |
//!
//! Beside it, in the same repository:
//!
//! | crate | what |
//! |---|---|
//! | `clarifai-status-build` | for dependents' `build.rs` (a build-dependency): Clarifai's protos compiled against [`pb`], with [`response::HasStatus`] |
//! | `clarifai-status-testing` | the status test server and V2 stand-in, and the `clarifai-status` tool (`clarifai-status serve`); for dev-dependencies and load tests |
//!
//! # Which type is which
//!
//! Codes:
//!
//! | type | what it is for | converting |
//! |---|---|---|
//! | [`StatusCode`] | a code the table knows: a Rust enum of Clarifai's numbers (10000, 11008, ...), with every fact of the table | from [`Code`]: [`Code::known`] or `StatusCode::try_from(code)`; from an `i32`: [`StatusCode::from_number`]; from text: `parse` |
//! | [`Code`] | any number from the wire, known or not, kept as is; what readers return | from a [`StatusCode`] or an `i32`: `Code::from`; to `i32`: [`Code::number`]; from text: `parse` |
//! | [`tonic::Code`] | gRPC's own 17 codes (`NOT_FOUND`, `UNAVAILABLE`, ...), the coarse class on the wire | from a code: [`StatusCode::grpc_code`], [`Code::grpc_code`]; back (a fallback): [`mapping::fallback_from_grpc`] |
//! | [`http::StatusCode`] | an HTTP status (401, 503, ...), for REST | from a code: [`StatusCode::http_status`], [`Code::http_status`]; back (a fallback): [`mapping::fallback_from_http`] |
//!
//! Statuses (a code with its message and details):
//!
//! | type | what it is for | converting |
//! |---|---|---|
//! | [`pb::Status`] | Clarifai's status message (`clarifai.api.status.Status`): code, description, details, `req_id`, ...; inside every Clarifai response, usually an OK one | from a code: [`pb::Status::new`]; its code: [`pb::Status::clarifai_code`]; to a gRPC error: `tonic::Status::from(&status)`; from one: [`grpc::ClarifaiStatusExt::to_clarifai_status`] |
//! | [`pb::rpc::Status`] | `google.rpc.Status`, the rich-error message carried in `grpc-status-details-bin`; this crate puts an `ErrorInfo` (and a `RetryInfo`) with the Clarifai code in it | built and read for you by the [`grpc`] conversions; decode `tonic::Status::details()` with `prost` to read it yourself |
//! | [`tonic::Status`] | a gRPC error as tonic returns it: a [`tonic::Code`], a message, metadata and details | from a code or a [`pb::Status`]: `tonic::Status::from`, or [`grpc::ErrorBuilder`]; its Clarifai code: [`grpc::ClarifaiStatusExt::clarifai_code`] |
//!
//! The table itself is `proto/clarifai/api/status/status_code.proto`: each code declares its
//! description, category, outcome, retryability, gRPC code and HTTP status beside its number, and
//! the generator (`codegen/` in the repository, run by maintainers) writes everything else from
//! it into `src/generated/`, which ships with the crate.
//!
//! # Features
//!
//! The default build is the table and the conversions: `prost`, `prost-types`, `tonic` without
//! transport, `http`. It runs no code generator: the generated code ships in the crate.
//!
//! | feature | adds |
//! |---|---|
//! | `json` | Clarifai's REST JSON bodies in [`rest`] (serde_json) |
//! | `serde` | `Serialize`/`Deserialize` for [`StatusCode`] and [`Code`] (a number out, a number or a name in) and [`Outcome`] (its name) |
//! | `server` | the `server` module (tower layer, interceptors) |
//! | `retry` | the `retry` module (tokio timers) |
//! | `telemetry` | the `telemetry` module: Clarifai codes in OpenTelemetry 0.33 metrics (bound instruments; see the module docs for the SDK feature it turns on) and `tracing` spans, recorded by the server layers and the retries, and a tower-http `TraceLayer` classifier |
//!
//! # Examples
//!
//! ```
//! use clarifai_status::grpc::ClarifaiStatusExt;
//! use clarifai_status::{Code, Outcome, StatusCode};
//!
//! let code: StatusCode = "MODEL_BUSY_PLEASE_RETRY".parse().unwrap();
//! assert_eq!((code.number(), code.outcome(), code.is_retryable()), (21354, Outcome::Failure, true));
//!
//! // Across gRPC, losslessly, even for numbers the table does not know.
//! let status = tonic::Status::from(Code::new(77777));
//! assert_eq!(status.code(), tonic::Code::Unknown);
//! assert_eq!(status.clarifai_code().number(), 77777);
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod client;
mod code;
mod error;
pub mod grpc;
pub mod mapping;
mod outcome;
pub mod pb;
// The in-body read of a response's first message: `RetryLayer`'s, and `StatusLayer`'s recording.
#[cfg(any(feature = "retry", all(feature = "server", feature = "telemetry")))]
mod peek;
mod proto;
pub mod response;
pub mod rest;
#[cfg(feature = "retry")]
pub mod retry;
#[cfg(feature = "serde")]
mod serde;
#[cfg(feature = "server")]
pub mod server;
pub mod table;
#[cfg(feature = "telemetry")]
pub mod telemetry;

pub use code::Code;
pub use error::{ParseCodeError, ParseOutcomeError, UnknownCode};
pub use outcome::Outcome;
pub use proto::clarifai::api::status::StatusCode;

/// The header (gRPC metadata, and HTTP over REST) that carries the decimal Clarifai code:
/// `clarifai-status-code: 11008`. The [`grpc`] and [`rest`] conversions write and read it.
///
/// # Examples
///
/// ```
/// let status = tonic::Status::from(clarifai_status::StatusCode::ConnKeyInvalid);
/// assert_eq!(status.metadata().get(clarifai_status::CODE_HEADER).unwrap(), "11008");
/// ```
pub const CODE_HEADER: &str = "clarifai-status-code";

// The README's examples run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
