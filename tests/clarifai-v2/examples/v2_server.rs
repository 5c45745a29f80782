//! A Clarifai V2 server from Rust: `PostModelOutputs`, `GetModel` and `ListApps` of Clarifai's
//! generated `V2` trait, behind `ApiKeyAuth`, `ErrorToInBodyLayer` and `StatusLayer`, stacked as
//! `clarifai_status::server`'s docs say. Clarifai's own clients (the Python SDK, the
//! `clarifai-grpc` stubs) call it as they call Clarifai.
//!
//! ```text
//! CLARIFAI_V2_DESCRIPTORS=$PWD/target/clarifai-v2.fds CARGO_TARGET_DIR=$PWD/target \
//!   cargo run --manifest-path tests/clarifai-v2/Cargo.toml --example v2_server -- 127.0.0.1:50051
//! ```
//!
//! The address defaults to `127.0.0.1:50051` (`127.0.0.1:0` picks a free port); the accepted API
//! keys are `V2_SERVER_KEYS` (comma-separated), `s3cret` by default. It prints `listening on
//! ADDR`, then `call METHOD` for every call it receives, before any check (so the calls an
//! SDK makes can be counted from the outside; keys are never printed).
//!
//! What it answers, by the model id of `PostModelOutputs`:
//! - `busy-twice`: the first two calls fail with `MODEL_BUSY_PLEASE_RETRY` (a handler's
//!   `Err(tonic::Status::from(StatusCode::ModelBusyPleaseRetry))`), in-body behind the layers, so
//!   the SDK retries them; then SUCCESS;
//! - `throttled-once`: the first call fails with a plain `Err(tonic::Status::resource_exhausted(..))`,
//!   which `ErrorToInBodyLayer` answers in-body as `CONN_THROTTLED` (11005), which the SDK retries;
//! - any other: SUCCESS, one output.
//!
//! `GetModel` answers SUCCESS with the model asked for; `ListApps` two apps. Every other V2
//! method answers `UNIMPLEMENTED`: the default stubs `clarifai_status_build` turns on, stamped
//! `NOT_IMPLEMENTED` (10040) by `StatusLayer` and answered in-body by `ErrorToInBodyLayer`. A bad
//! key is answered in-body by `ApiKeyAuth`: `CONN_KEY_NOT_FOUND` (11009) for a key it does not
//! know.
//!
//! The types a user writes down: the service is `V2Server<MyV2>` (wrapped by
//! `V2Server::with_interceptor(MyV2, ApiKeyAuth<StaticKeys>)` into an
//! `InterceptedService<V2Server<MyV2>, ApiKeyAuth<StaticKeys>>`), the layers
//! `ErrorToInBodyLayer` then `StatusLayer`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use clarifai_status::pb;
use clarifai_status::server::{
    error_to_in_body::ErrorToInBodyLayer, status::StatusLayer, ApiKeyAuth, StaticKeys,
};
use clarifai_status::StatusCode;
use clarifai_v2::clarifai::api::v2_server::{V2Server, V2};
use clarifai_v2::clarifai::api::{
    App, GetModelRequest, ListAppsRequest, Model, MultiAppResponse, MultiOutputResponse, Output,
    PostModelOutputsRequest, SingleModelResponse,
};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

/// The service: three methods, the calls per model id.
#[derive(Debug, Default)]
struct MyV2 {
    calls: Mutex<HashMap<String, u32>>,
}

fn success() -> Option<pb::Status> {
    Some(pb::Status {
        code: StatusCode::Success as i32,
        description: "Ok".into(),
        ..Default::default()
    })
}

#[tonic::async_trait]
impl V2 for MyV2 {
    async fn post_model_outputs(
        &self,
        request: tonic::Request<PostModelOutputsRequest>,
    ) -> Result<tonic::Response<MultiOutputResponse>, tonic::Status> {
        let model_id = request.into_inner().model_id;
        let call = {
            let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
            let count = calls.entry(model_id.clone()).or_default();
            *count += 1;
            *count
        };
        match model_id.as_str() {
            // A Clarifai code, carried by the error: in-body 21354 behind `ErrorToInBodyLayer`.
            "busy-twice" if call <= 2 => {
                return Err(tonic::Status::from(StatusCode::ModelBusyPleaseRetry));
            }
            // A plain gRPC error: `ErrorToInBodyLayer` falls back to CONN_THROTTLED (11005).
            "throttled-once" if call <= 1 => {
                return Err(tonic::Status::resource_exhausted("too many predictions"));
            }
            _ => {}
        }
        Ok(tonic::Response::new(MultiOutputResponse {
            status: success(),
            outputs: vec![Output {
                id: format!("output-{call}"),
                status: success(),
                ..Default::default()
            }],
            ..Default::default()
        }))
    }

    async fn get_model(
        &self,
        request: tonic::Request<GetModelRequest>,
    ) -> Result<tonic::Response<SingleModelResponse>, tonic::Status> {
        let model_id = request.into_inner().model_id;
        Ok(tonic::Response::new(SingleModelResponse {
            status: success(),
            model: Some(Model {
                id: model_id,
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn list_apps(
        &self,
        request: tonic::Request<ListAppsRequest>,
    ) -> Result<tonic::Response<MultiAppResponse>, tonic::Status> {
        let app = |id: &str| App {
            id: id.into(),
            ..Default::default()
        };
        // One page (pages count from 1; 0 is the first too): clients page until an empty one.
        let apps = if request.get_ref().page <= 1 {
            vec![app("main"), app("staging")]
        } else {
            Vec::new()
        };
        Ok(tonic::Response::new(MultiAppResponse {
            status: success(),
            apps,
        }))
    }
}

/// Prints `call METHOD` for every request, before anything else sees it.
fn print_call(request: http::Request<tonic::body::Body>) -> http::Request<tonic::body::Body> {
    let method = request.uri().path().rsplit('/').next().unwrap_or_default();
    println!("call {method}");
    request
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:50051".into())
        .parse()?;
    let keys = std::env::var("V2_SERVER_KEYS").unwrap_or_else(|_| "s3cret".into());
    let auth = ApiKeyAuth::new(StaticKeys::new(keys.split(',').map(str::to_owned)));

    let listener = TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);

    tonic::transport::Server::builder()
        .layer(tower::util::MapRequestLayer::new(print_call))
        // Outside `StatusLayer`: errors are logged with their code, then answered in-body.
        .layer(ErrorToInBodyLayer::new().only_services(["clarifai.api.V2"]))
        .layer(StatusLayer::new())
        .add_service(V2Server::with_interceptor(MyV2::default(), auth))
        .serve_with_incoming(TcpListenerStream::new(listener))
        .await?;
    Ok(())
}
