//! What several test files share: the inputs every table-driven test runs over.
#![allow(dead_code)]

use clarifai_status::{Code, StatusCode};

/// Numbers the table does not know, edges of `i32` included.
pub(crate) const UNKNOWN_NUMBERS: [i32; 7] = [1, -1, 12345, 77777, i32::MIN, i32::MAX, 99999];

/// Every code of the table, then the unknown numbers.
pub(crate) fn codes() -> impl Iterator<Item = Code> {
    StatusCode::all()
        .map(Code::from)
        .chain(UNKNOWN_NUMBERS.into_iter().map(Code::new))
}

/// The 17 gRPC codes, in number order.
pub(crate) fn grpc_codes() -> impl Iterator<Item = tonic::Code> {
    (0..=16).map(tonic::Code::from_i32)
}

pub(crate) mod peer;

#[cfg(feature = "server")]
pub(crate) mod hostile;

#[cfg(all(feature = "server", feature = "retry", feature = "telemetry"))]
pub(crate) mod telemetry;
