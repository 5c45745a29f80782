//! The generated protobuf messages.
//!
//! [`Status`], [`RedirectInfo`] and [`BaseResponse`] are field-for-field wire-compatible with
//! Clarifai's own `clarifai.api.status` messages: bytes encoded by Clarifai's libraries decode here
//! and re-encode unchanged. [`rpc`] holds the subset of `google.rpc` that gRPC's richer error model
//! uses (`Status`, `ErrorInfo`, `RetryInfo`).
//!
//! Build an in-body status with [`Status::new`] (the table's description filled in), and read
//! its code with [`Status::clarifai_code`], which keeps any number. The field `code` is an
//! `int32` where Clarifai declares a `StatusCode`: the same bytes on the wire, and no prost
//! getter that would turn a number the table does not know into [`StatusCode::Zero`].
//!
//! # Examples
//!
//! ```
//! use clarifai_status::pb::{BaseResponse, Status};
//! use clarifai_status::{Code, StatusCode};
//! use prost::Message;
//!
//! let response = BaseResponse { status: Some(Status::new(StatusCode::ConnKeyInvalid)) };
//! let bytes = response.encode_to_vec();
//! assert_eq!(BaseResponse::decode(bytes.as_slice()).unwrap(), response);
//!
//! let newer = Status { code: 77777, ..Default::default() };
//! assert_eq!(newer.clarifai_code(), Code::new(77777));
//! ```

use crate::proto::clarifai::api::status as generated;
use crate::{Code, StatusCode};

pub use generated::{BaseResponse, RedirectInfo, Status};

// What the proto says about `Status`'s fields: the private ones, and the public ones the wire
// contract carries (generated, beside the messages).
include!("generated/status_fields.rs");

impl Status {
    /// An in-body status for this code, its description the table's; every other field empty.
    ///
    /// What a Clarifai-style handler puts in `response.status`. A number the table does not know
    /// is kept, with [`Code::UNKNOWN_DESCRIPTION`]. Set more fields with struct update syntax.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::pb::{BaseResponse, Status};
    /// use clarifai_status::{Code, StatusCode};
    ///
    /// let status = Status::new(StatusCode::ModelBusyPleaseRetry);
    /// assert_eq!(status.code, 21354);
    /// assert_eq!(status.description, StatusCode::ModelBusyPleaseRetry.description());
    ///
    /// let response = BaseResponse {
    ///     status: Some(Status { req_id: "req-7".into(), ..Status::new(StatusCode::Success) }),
    /// };
    /// # assert_eq!(response.status.unwrap().description, "Ok");
    ///
    /// assert_eq!(Status::new(77777).clarifai_code(), Code::new(77777));
    /// assert_eq!(Status::from(StatusCode::ConnKeyInvalid), Status::new(11008));
    /// ```
    pub fn new(code: impl Into<Code>) -> Status {
        let code = code.into();
        Status {
            code: code.number(),
            description: code.description().to_owned(),
            ..Default::default()
        }
    }

    /// The status's code as a [`Code`]: any number, kept exactly, known to the table or not (a
    /// newer Clarifai's code, say 77777). The raw number is the public field `code`.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::pb::Status;
    /// use clarifai_status::{Code, Outcome, StatusCode};
    ///
    /// let status = Status { code: 77777, ..Default::default() };
    /// assert_eq!(status.clarifai_code(), Code::new(77777));
    /// assert_eq!(status.clarifai_code().outcome(), Outcome::Failure);
    ///
    /// assert_eq!(Status::new(StatusCode::ModelDoesNotExist).clarifai_code(), StatusCode::ModelDoesNotExist);
    /// ```
    pub fn clarifai_code(&self) -> Code {
        Code::new(self.code)
    }
}

impl From<StatusCode> for Status {
    /// [`Status::new`]: the code and the table's description.
    fn from(code: StatusCode) -> Status {
        Status::new(code)
    }
}

impl From<Code> for Status {
    /// [`Status::new`]: the number, kept, and the table's description.
    fn from(code: Code) -> Status {
        Status::new(code)
    }
}

/// The subset of `google.rpc` used by gRPC's richer error model.
pub mod rpc {
    pub use crate::proto::google::rpc::{ErrorInfo, RetryInfo, Status};
}
