//! A V2 server from Rust: Clarifai's generated `V2` trait, compiled by `clarifai_status_build`
//! with default stubs, implemented for one method only. Pins what every other method answers,
//! behind each of the crate's server layers, to a generated V2 client on 127.0.0.1:
//!
//! | layers | an unimplemented method answers |
//! |---|---|
//! | none | gRPC `UNIMPLEMENTED`, no Clarifai code |
//! | `StatusLayer` | gRPC `UNIMPLEMENTED` carrying `NOT_IMPLEMENTED` (10040) |
//! | `ErrorToInBodyLayer` outside `StatusLayer` | gRPC OK, in-body 10040 |

use clarifai_status::grpc::ClarifaiStatusExt as _;
use clarifai_status::pb;
use clarifai_status::response::HasStatus;
use clarifai_status::server::{error_to_in_body::ErrorToInBodyLayer, status::StatusLayer};
use clarifai_status::StatusCode;
use clarifai_v2::clarifai::api::v2_client::V2Client;
use clarifai_v2::clarifai::api::v2_server::{V2Server, V2};
use clarifai_v2::clarifai::api::{GetModelRequest, ListAppsRequest, Model, SingleModelResponse};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Channel, Server};

/// Serves `GetModel` only.
struct OnlyGetModel;

#[tonic::async_trait]
impl V2 for OnlyGetModel {
    async fn get_model(
        &self,
        request: tonic::Request<GetModelRequest>,
    ) -> Result<tonic::Response<SingleModelResponse>, tonic::Status> {
        Ok(tonic::Response::new(SingleModelResponse {
            status: Some(pb::Status {
                code: StatusCode::Success as i32,
                ..Default::default()
            }),
            model: Some(Model {
                id: request.into_inner().model_id,
                ..Default::default()
            }),
            ..Default::default()
        }))
    }
}

#[derive(Clone, Copy)]
enum Layers {
    None,
    Status,
    ErrorToInBody,
}

/// Serves `OnlyGetModel` behind `layers` on a free port; a client connected to it.
async fn serve(layers: Layers) -> V2Client<Channel> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = TcpListenerStream::new(listener);
    let service = V2Server::new(OnlyGetModel);
    match layers {
        Layers::None => {
            let router = Server::builder().add_service(service);
            tokio::spawn(router.serve_with_incoming(incoming));
        }
        Layers::Status => {
            let router = Server::builder()
                .layer(StatusLayer::new())
                .add_service(service);
            tokio::spawn(router.serve_with_incoming(incoming));
        }
        Layers::ErrorToInBody => {
            let router = Server::builder()
                .layer(ErrorToInBodyLayer::new().only_services(["clarifai.api.V2"]))
                .layer(StatusLayer::new())
                .add_service(service);
            tokio::spawn(router.serve_with_incoming(incoming));
        }
    }
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    V2Client::new(channel)
}

#[tokio::test]
async fn the_implemented_method_answers_behind_every_layer() {
    for layers in [Layers::None, Layers::Status, Layers::ErrorToInBody] {
        let mut client = serve(layers).await;
        let request = GetModelRequest {
            model_id: "m1".into(),
            ..Default::default()
        };
        let response = client.get_model(request).await.unwrap().into_inner();
        assert_eq!(response.status_code(), Some(StatusCode::Success.into()));
        assert_eq!(response.model.unwrap().id, "m1");
    }
}

#[tokio::test]
async fn an_unimplemented_method_without_layers_is_plain_unimplemented() {
    let mut client = serve(Layers::None).await;
    let error = client
        .list_apps(ListAppsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::Unimplemented);
    assert_eq!(error.carried_clarifai_code(), None);
}

#[tokio::test]
async fn an_unimplemented_method_behind_status_layer_carries_10040() {
    let mut client = serve(Layers::Status).await;
    let error = client
        .list_apps(ListAppsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::Unimplemented);
    assert_eq!(
        error.carried_clarifai_code(),
        Some(StatusCode::NotImplemented.into())
    );
}

#[tokio::test]
async fn an_unimplemented_method_behind_errors_in_body_answers_10040_in_body() {
    let mut client = serve(Layers::ErrorToInBody).await;
    let response = client
        .list_apps(ListAppsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        response.status_code(),
        Some(StatusCode::NotImplemented.into())
    );
    assert!(response.apps.is_empty());
}
