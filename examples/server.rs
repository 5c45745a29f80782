//! A gRPC server that speaks Clarifai statuses: API-key authentication in Clarifai's convention,
//! handlers answering with Clarifai codes, and the layer that gives every error a code.
//!
//! ```sh
//! cargo run --all-features --example server -- 127.0.0.1:50051
//! cargo run --all-features --example client -- http://127.0.0.1:50051
//! ```
//!
//! The service is the crate's test service (`StatusTester`), implemented here as a real handler
//! would be: it validates its input, fails with Clarifai codes, and lets a plain `tonic::Status`
//! through for the layer to stamp.

use clarifai_status::grpc::ErrorBuilder;
use clarifai_status::server::{status::StatusLayer, ApiKeyAuth, StaticKeys};
use clarifai_status::{Code, StatusCode};
use clarifai_status_testing::pb::status_tester_server::{StatusTester, StatusTesterServer};
use clarifai_status_testing::pb::{RaiseRequest, RaiseResponse};

/// The API key the example accepts (`authorization: Key demo-key`).
const API_KEY: &str = "demo-key";

#[derive(Debug, Default)]
struct Handler;

#[tonic::async_trait]
impl StatusTester for Handler {
    async fn raise(
        &self,
        request: tonic::Request<RaiseRequest>,
    ) -> Result<tonic::Response<RaiseResponse>, tonic::Status> {
        let request = request.into_inner();
        // A handler's own validation, answered with a Clarifai code.
        let Some(status) = request.status else {
            return Err(ErrorBuilder::new(StatusCode::InputInvalidArgument)
                .message("`status` is required")
                .build());
        };
        if request.key == "plain" {
            // A plain tonic error: the layer adds the fallback Clarifai code on the way out.
            return Err(tonic::Status::unavailable("backend restarting"));
        }
        // `Outcome` is non-exhaustive: ask about failure, and answer everything else in the body.
        if Code::new(status.code).is_failure() {
            // The conversion never reads the private fields.
            return Err(tonic::Status::from(&status));
        }
        let mut status = status;
        status.strip_private();
        Ok(tonic::Response::new(RaiseResponse {
            status: Some(status),
            attempt: 1,
        }))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:50051".to_owned())
        .parse()?;
    let auth = ApiKeyAuth::new(StaticKeys::new([API_KEY]));
    println!("listening on {addr} (authorization: Key {API_KEY})");
    tonic::transport::Server::builder()
        .layer(StatusLayer::new())
        .add_service(StatusTesterServer::with_interceptor(Handler, auth))
        .serve_with_shutdown(addr, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
