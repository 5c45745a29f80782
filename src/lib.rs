//! Clarifai API status codes as first-class Rust.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod code;
mod error;
#[cfg(feature = "serde")]
mod serde;
pub mod grpc;
pub mod mapping;
pub mod pb;
pub mod response;
pub mod rest;
#[cfg(feature = "server")]
pub mod server;
pub mod table;

pub use code::Code;
pub use error::ParseCodeError;
pub use pb::StatusCode;
pub use table::Outcome;
