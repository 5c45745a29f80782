//! Mappings for what has no Clarifai code: gRPC codes and HTTP statuses on their own.
//!
//! Each direction is one function, citing the table it follows:
//!
//! | from | to | function | source |
//! |---|---|---|---|
//! | `tonic::Code` | `http::StatusCode` | [`http_status_from_grpc`] | googleapis `google/rpc/code.proto` (grpc-gateway, Envoy and Connect agree) |
//! | `http::StatusCode` | `tonic::Code` | [`grpc_code_from_http`] | grpc `doc/http-grpc-status-mapping.md` (responses without `grpc-status`) |
//! | `tonic::Code` | [`StatusCode`] | [`fallback_from_grpc`] | this crate: when a peer sent only a gRPC code |
//! | `http::StatusCode` | [`StatusCode`] | [`fallback_from_http`] | this crate: when a peer sent only an HTTP status |
//!
//! The Clarifai code's own mappings are declared per code in the proto and read through
//! [`StatusCode::grpc_code`] and [`StatusCode::http_status`]; see the [table](crate::table).
//!
//! # Examples
//!
//! ```
//! use clarifai_status::mapping;
//! use clarifai_status::StatusCode;
//!
//! assert_eq!(mapping::http_status_from_grpc(tonic::Code::FailedPrecondition), http::StatusCode::BAD_REQUEST);
//! // Not the inverse of the table above, by design:
//! assert_eq!(mapping::grpc_code_from_http(http::StatusCode::BAD_REQUEST), tonic::Code::Internal);
//! assert_eq!(mapping::fallback_from_grpc(tonic::Code::Unavailable), StatusCode::RpcServerUnavailable);
//! assert_eq!(mapping::grpc_code_name(tonic::Code::Unauthenticated), "UNAUTHENTICATED");
//! ```

use http::StatusCode as Http;
use tonic::Code as Grpc;

use crate::StatusCode;

/// The HTTP status for a gRPC code, per the canonical table, declared in `meta.proto`.
///
/// Source: googleapis `google/rpc/code.proto`; grpc-gateway's `HTTPStatusFromCode`, Envoy and
/// Connect use the same table.
///
/// # Examples
///
/// ```
/// use clarifai_status::mapping::http_status_from_grpc;
///
/// assert_eq!(http_status_from_grpc(tonic::Code::Cancelled).as_u16(), 499);
/// ```
pub fn http_status_from_grpc(code: Grpc) -> Http {
    // The table is `meta.proto`'s `canonical_http`, one per gRPC code, with its comments.
    crate::table::GRPC_HTTP
        .get(code as usize)
        .copied()
        .unwrap_or(Http::INTERNAL_SERVER_ERROR)
}

/// The gRPC code for an HTTP response that carries no `grpc-status`, per grpc's own table.
///
/// Source: grpc `doc/http-grpc-status-mapping.md`. It is not the inverse of
/// [`http_status_from_grpc`]: it describes what a gRPC client concludes from a bare HTTP error
/// (a proxy's 404 means the method is not served there, hence `UNIMPLEMENTED`).
///
/// # Examples
///
/// ```
/// use clarifai_status::mapping::grpc_code_from_http;
///
/// assert_eq!(grpc_code_from_http(http::StatusCode::NOT_FOUND), tonic::Code::Unimplemented);
/// assert_eq!(grpc_code_from_http(http::StatusCode::IM_A_TEAPOT), tonic::Code::Unknown);
/// ```
pub fn grpc_code_from_http(status: Http) -> Grpc {
    match status.as_u16() {
        400 => Grpc::Internal,
        401 => Grpc::Unauthenticated,
        403 => Grpc::PermissionDenied,
        404 => Grpc::Unimplemented,
        429 | 502 | 503 | 504 => Grpc::Unavailable,
        _ => Grpc::Unknown,
    }
}

/// The canonical upper-case name of a gRPC code (`UNAUTHENTICATED`, `NOT_FOUND`, ...).
///
/// # Examples
///
/// ```
/// assert_eq!(clarifai_status::mapping::grpc_code_name(tonic::Code::Ok), "OK");
/// ```
pub fn grpc_code_name(code: Grpc) -> &'static str {
    // `meta.proto`'s `GrpcCode` names, by number.
    crate::table::GRPC_NAME
        .get(code as usize)
        .copied()
        .unwrap_or("UNKNOWN")
}

/// The Clarifai code for a peer that sent only a gRPC code (no `clarifai-status-code` header, no
/// Clarifai `ErrorInfo`).
///
/// Each gRPC code maps to the most general Clarifai code that maps back to it, so
/// `fallback_from_grpc(c).grpc_code() == c` for every code but `DATA_LOSS` and
/// `FAILED_PRECONDITION`, which no general Clarifai code means: those become `FAILURE` (gRPC
/// `UNKNOWN`) rather than a specific code that would claim more than the peer said.
///
/// # Examples
///
/// ```
/// use clarifai_status::{mapping::fallback_from_grpc, StatusCode};
///
/// assert_eq!(fallback_from_grpc(tonic::Code::Ok), StatusCode::Success);
/// assert_eq!(fallback_from_grpc(tonic::Code::ResourceExhausted), StatusCode::ConnThrottled);
/// assert_eq!(fallback_from_grpc(tonic::Code::DataLoss), StatusCode::Failure);
/// ```
pub fn fallback_from_grpc(code: Grpc) -> StatusCode {
    match code {
        Grpc::Ok => StatusCode::Success,
        Grpc::Cancelled => StatusCode::RpcCanceled,
        Grpc::Unknown => StatusCode::Failure,
        Grpc::InvalidArgument => StatusCode::BadRequest,
        Grpc::DeadlineExceeded => StatusCode::RpcRequestTimeout,
        Grpc::NotFound => StatusCode::ConnDoesNotExist,
        Grpc::AlreadyExists => StatusCode::DatabaseDuplicateKey,
        Grpc::PermissionDenied => StatusCode::ConnInsufficientScopes,
        // Throttling is what a bare RESOURCE_EXHAUSTED almost always means; it stays retryable.
        Grpc::ResourceExhausted => StatusCode::ConnThrottled,
        Grpc::FailedPrecondition => StatusCode::Failure,
        // Concurrency conflicts are what ABORTED means; retrying them is the gRPC convention.
        Grpc::Aborted => StatusCode::DatabaseDeadlockDetected,
        Grpc::OutOfRange => StatusCode::ConnInvalidRange,
        Grpc::Unimplemented => StatusCode::NotImplemented,
        Grpc::Internal => StatusCode::ServerError,
        Grpc::Unavailable => StatusCode::RpcServerUnavailable,
        Grpc::DataLoss => StatusCode::Failure,
        Grpc::Unauthenticated => StatusCode::ConnCredentialsInvalid,
    }
}

/// The Clarifai code for a peer that sent only an HTTP status (no `clarifai-status-code` header,
/// no JSON `status.code`).
///
/// Read as a REST API's answer, by HTTP's own meaning (not grpc's table for bare responses):
/// 2xx is `SUCCESS` (202 `ACCEPTED`, 207 `MIXED_STATUS`); 301, 302, 307 and 308 are `MOVED`; the
/// common 4xx and 5xx map to the matching general code; any other 4xx is `BAD_REQUEST`, any
/// other 5xx `SERVER_ERROR`; anything else (1xx, other 3xx) `FAILURE`.
///
/// # Examples
///
/// ```
/// use clarifai_status::{mapping::fallback_from_http, StatusCode};
///
/// assert_eq!(fallback_from_http(http::StatusCode::NOT_FOUND), StatusCode::ConnDoesNotExist);
/// assert_eq!(fallback_from_http(http::StatusCode::TOO_MANY_REQUESTS), StatusCode::ConnThrottled);
/// assert_eq!(fallback_from_http(http::StatusCode::IM_A_TEAPOT), StatusCode::Teapot);
/// assert_eq!(fallback_from_http(http::StatusCode::BAD_GATEWAY), StatusCode::ExternalConnectionError);
/// ```
pub fn fallback_from_http(status: Http) -> StatusCode {
    match status.as_u16() {
        202 => StatusCode::Accepted,
        207 => StatusCode::MixedStatus,
        200..=299 => StatusCode::Success,
        301 | 302 | 307 | 308 => StatusCode::Moved,
        401 => StatusCode::ConnCredentialsInvalid,
        402 => StatusCode::BillingMissingTokens,
        403 => StatusCode::ConnInsufficientScopes,
        404 => StatusCode::ConnDoesNotExist,
        405 => StatusCode::ConnMethodNotAllowed,
        408 => StatusCode::RpcRequestTimeout,
        409 => StatusCode::DatabaseDuplicateKey,
        413 => StatusCode::RpcMaxMessageSizeExceeded,
        416 => StatusCode::ConnInvalidRange,
        418 => StatusCode::Teapot,
        429 => StatusCode::ConnThrottled,
        499 => StatusCode::RequestCanceledByUser,
        400..=499 => StatusCode::BadRequest,
        501 => StatusCode::NotImplemented,
        502 => StatusCode::ExternalConnectionError,
        503 => StatusCode::RpcServerUnavailable,
        504 => StatusCode::RpcRequestTimeout,
        500..=599 => StatusCode::ServerError,
        _ => StatusCode::Failure,
    }
}
