//! The status test server's own protocol, package `clarifai.status.testing.v1`: the
//! `StatusTester` service (client and server), [`RaiseRequest`] and [`RaiseResponse`].
//!
//! Its messages carry the core crate's [`clarifai_status::pb::Status`].
//!
//! # Examples
//!
//! ```
//! use clarifai_status::{pb::Status, StatusCode};
//! use clarifai_status_testing::pb::RaiseRequest;
//!
//! let request = RaiseRequest { status: Some(Status::new(StatusCode::ModelBusyPleaseRetry)), ..Default::default() };
//! assert_eq!(request.status.unwrap().code, 21354);
//! ```

// Modules nest as the proto packages do: prost refers across packages by relative paths, so the
// core crate's `clarifai.api.status` sits where the generated code looks for it. The file is the
// generator's output (`codegen/`), shipped in `src/generated`.
#[allow(missing_docs, clippy::all, clippy::pedantic, unreachable_pub)]
mod generated {
    pub(crate) mod clarifai {
        pub(crate) mod api {
            pub(crate) mod status {
                pub(crate) use clarifai_status::pb::Status;
            }
        }
        pub(crate) mod status {
            pub(crate) mod testing {
                pub(crate) mod v1 {
                    include!("generated/clarifai.status.testing.v1.rs");
                }
            }
        }
    }
}

pub use generated::clarifai::status::testing::v1::*;
