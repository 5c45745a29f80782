//! Responses that carry a Clarifai status, and turning their failures into gRPC errors.
//!
//! Clarifai's API answers failures inside OK responses (`response.status.code`). [`HasStatus`]
//! names "a message that carries a `Status`"; [`into_result`] turns a failure status into a
//! `tonic::Status` per the [wire contract](crate::grpc) and lets success and in-progress through.
//!
//! # Examples
//!
//! ```
//! use clarifai_status::pb::{BaseResponse, Status};
//! use clarifai_status::response::into_result;
//! use clarifai_status::StatusCode;
//!
//! let ok = BaseResponse { status: Some(Status { code: StatusCode::Success as i32, ..Default::default() }) };
//! assert!(into_result(ok).is_ok());
//!
//! let failed = BaseResponse { status: Some(Status { code: StatusCode::ModelDoesNotExist as i32, ..Default::default() }) };
//! let err = into_result(failed).unwrap_err();
//! assert_eq!(err.code(), tonic::Code::NotFound);
//! ```

use crate::{pb, Code, Outcome};

/// A message that carries a Clarifai [`pb::Status`] (every Clarifai API response does, as field
/// `status = 1`).
///
/// Implement it for your own prost messages with [`impl_has_status!`](crate::impl_has_status).
///
/// # Examples
///
/// ```
/// use clarifai_status::response::HasStatus;
/// use clarifai_status::pb::{BaseResponse, Status};
///
/// let response = BaseResponse { status: Some(Status { code: 10000, ..Default::default() }) };
/// assert_eq!(response.status().map(|s| s.code), Some(10000));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not implement `HasStatus`: no Clarifai status the crate can read",
    label = "not a message carrying `clarifai_status::pb::Status`",
    note = "for your own prost message with `status: Option<clarifai_status::pb::Status>`: `clarifai_status::impl_has_status!({Self});`",
    note = "for Clarifai's protos: compile them with `extern_path(\".clarifai.api.status\", \"::clarifai_status::pb\")` so that `status` is the crate's `pb::Status`, not a copy generated in your crate, or with the `clarifai-status-build` crate, which also implements `HasStatus` for every response"
)]
pub trait HasStatus {
    /// The status, if the message has one set.
    fn status(&self) -> Option<&pb::Status>;

    /// The status's code, if the message has a status: any number, preserved.
    fn status_code(&self) -> Option<Code> {
        self.status().map(|s| Code::new(s.code))
    }
}

impl HasStatus for pb::BaseResponse {
    fn status(&self) -> Option<&pb::Status> {
        self.status.as_ref()
    }
}

impl HasStatus for pb::Status {
    fn status(&self) -> Option<&pb::Status> {
        Some(self)
    }
}

impl<T: HasStatus> HasStatus for tonic::Response<T> {
    fn status(&self) -> Option<&pb::Status> {
        self.get_ref().status()
    }
}

/// Implements [`HasStatus`] for prost messages with a `status: Option<pb::Status>` field.
///
/// # Examples
///
/// ```
/// use clarifai_status::{impl_has_status, pb, response::HasStatus};
///
/// #[derive(Clone, PartialEq, prost::Message)]
/// pub struct PredictResponse {
///     #[prost(message, optional, tag = "1")]
///     pub status: Option<pb::Status>,
/// }
/// impl_has_status!(PredictResponse);
///
/// let response = PredictResponse { status: None };
/// assert!(response.status().is_none());
/// ```
#[macro_export]
macro_rules! impl_has_status {
    ($($ty:ty),+ $(,)?) => {
        $(
            impl $crate::response::HasStatus for $ty {
                fn status(&self) -> ::core::option::Option<&$crate::pb::Status> {
                    self.status.as_ref()
                }
            }
        )+
    };
}

/// Turns a response whose status is a failure into a gRPC error per the wire contract; lets
/// success and in-progress statuses, and responses without a status, through unchanged.
///
/// A status with code 0 (`ZERO`, unset) or a number not in the table is a failure.
///
/// # Errors
///
/// The `tonic::Status` built from the response's status (its description, request id and other
/// public fields; never its private fields).
pub fn into_result<R: HasStatus>(response: R) -> Result<R, tonic::Status> {
    match failure(&response) {
        Some(error) => Err(error),
        None => Ok(response),
    }
}

/// The gRPC error a response's failure status becomes, or `None` if it is not a failure.
pub(crate) fn failure<R: HasStatus + ?Sized>(response: &R) -> Option<tonic::Status> {
    let status = response.status()?;
    match Code::new(status.code).outcome() {
        Outcome::Failure => Some(tonic::Status::from(status)),
        Outcome::Success | Outcome::InProgress => None,
    }
}
