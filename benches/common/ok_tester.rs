//! The loopback benches' handler, shared with `examples/telemetry_cost.rs` (by `#[path]`): the
//! smallest real `StatusTester`, answering every call with SUCCESS in-body.

use clarifai_status::{pb, StatusCode};
use clarifai_status_testing::pb::status_tester_server::StatusTester;
use clarifai_status_testing::pb::{RaiseRequest, RaiseResponse};

/// Answers every call with `RaiseResponse { status: SUCCESS, req_id, attempt: 1 }` (no request
/// id when `req_id` is empty).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct OkTester {
    pub(crate) req_id: &'static str,
}

#[tonic::async_trait]
impl StatusTester for OkTester {
    async fn raise(
        &self,
        _request: tonic::Request<RaiseRequest>,
    ) -> Result<tonic::Response<RaiseResponse>, tonic::Status> {
        Ok(tonic::Response::new(RaiseResponse {
            status: Some(pb::Status {
                code: StatusCode::Success as i32,
                req_id: self.req_id.into(),
                ..Default::default()
            }),
            attempt: 1,
        }))
    }
}
