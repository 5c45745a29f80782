//! The generated protobuf messages.
//!
//! [`Status`], [`RedirectInfo`] and [`BaseResponse`] are field-for-field wire-compatible with
//! Clarifai's own `clarifai.api.status` messages: bytes encoded by Clarifai's libraries decode here
//! and re-encode unchanged. [`rpc`] holds the subset of `google.rpc` that gRPC's richer error model
//! uses (`Status`, `ErrorInfo`, `RetryInfo`).
//!
//! # Examples
//!
//! ```
//! use clarifai_status::pb::{BaseResponse, Status};
//! use clarifai_status::StatusCode;
//! use prost::Message;
//!
//! let response = BaseResponse {
//!     status: Some(Status { code: StatusCode::ConnKeyInvalid as i32, ..Default::default() }),
//! };
//! let bytes = response.encode_to_vec();
//! assert_eq!(BaseResponse::decode(bytes.as_slice()).unwrap(), response);
//! ```

// Modules nest as the proto packages do: prost refers across packages by relative paths.
#[allow(missing_docs, clippy::all, clippy::pedantic, unreachable_pub)]
mod generated {
    pub(crate) mod clarifai {
        pub(crate) mod api {
            pub(crate) mod status {
                use crate::table::{NameEntry, NameTable, Row};
                include!(concat!(env!("OUT_DIR"), "/clarifai.api.status.rs"));
                include!(concat!(env!("OUT_DIR"), "/status_table.rs"));
            }
        }
        #[cfg(feature = "testing")]
        pub(crate) mod status {
            pub(crate) mod testing {
                pub(crate) mod v1 {
                    include!(concat!(env!("OUT_DIR"), "/clarifai.status.testing.v1.rs"));
                }
            }
        }
    }
    pub(crate) mod google {
        pub(crate) mod rpc {
            include!(concat!(env!("OUT_DIR"), "/google.rpc.rs"));
        }
    }
}

pub use generated::clarifai::api::status::{BaseResponse, RedirectInfo, Status, StatusCode};
pub(crate) use generated::clarifai::api::status::{
    RowIndex, ALL, NUMBER_ROW, ROWS, ROW_DESCRIPTION, ROW_GRPC, ROW_HTTP, ROW_NAME, ROW_OUTCOME,
    ROW_RETRYABLE,
};
pub(crate) use generated::clarifai::api::status::{NAME_MAX_LEN, NAME_SEED, NAME_TABLE};

/// The subset of `google.rpc` used by gRPC's richer error model.
pub mod rpc {
    pub use super::generated::google::rpc::{ErrorInfo, RetryInfo, Status};
}

/// The status test server's protocol, package `clarifai.status.testing.v1`.
#[cfg(feature = "testing")]
pub mod testing {
    pub use super::generated::clarifai::status::testing::v1::*;
}
