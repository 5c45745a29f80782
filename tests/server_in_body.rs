//! `InBodyToErrorLayer` over a real tonic server and client on 127.0.0.1: Clarifai-style failures inside
//! OK responses reach the client as gRPC errors per the wire contract; everything else passes.
#![cfg(feature = "server")]

use clarifai_status::grpc::ClarifaiStatusExt;
use clarifai_status::pb::Status;
use clarifai_status::server::{in_body_to_error::InBodyToErrorLayer, status::StatusLayer};
use clarifai_status::{Code, Outcome, StatusCode};
use clarifai_status_testing::pb::status_tester_client::StatusTesterClient;
use clarifai_status_testing::pb::RaiseRequest;
use clarifai_status_testing::Tester;
use tonic::transport::{Channel, Server};
use tonic_types::StatusExt as _;

async fn serve(layer: InBodyToErrorLayer) -> StatusTesterClient<Channel> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(
        Server::builder()
            .layer(StatusLayer::new())
            .layer(layer)
            .add_service(Tester::new().into_server())
            .serve_with_incoming(incoming),
    );
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    StatusTesterClient::new(channel)
}

fn in_body(status: Status) -> RaiseRequest {
    RaiseRequest {
        status: Some(status),
        in_body: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn in_body_failures_become_grpc_errors_and_the_rest_passes() {
    let mut client = serve(InBodyToErrorLayer::new()).await;
    let unknown = [Code::new(12345)];
    let codes = StatusCode::all().map(Code::from).chain(unknown);
    for code in codes {
        let status = Status {
            code: code.number(),
            req_id: "req-9".into(),
            details: "what happened".into(),
            internal_details: "PRIVATE-MARKER".into(),
            ..Default::default()
        };
        let answer = client.raise(in_body(status)).await;
        match (code.outcome(), answer) {
            (Outcome::Failure, Err(error)) => {
                assert_eq!(error.code(), code.grpc_code(), "{code:?}");
                assert_eq!(error.message(), code.description());
                assert_eq!(error.clarifai_code(), code);
                let info = error.get_details_error_info().expect("ErrorInfo");
                assert_eq!(info.reason, code.name());
                assert_eq!(
                    info.metadata.get("reqId").map(String::as_str),
                    Some("req-9")
                );
                let back = error.to_clarifai_status();
                assert_eq!(back.details, "what happened");
                assert!(!format!("{error:?}").contains("PRIVATE-MARKER"));
            }
            (Outcome::Success | Outcome::InProgress, Ok(response)) => {
                let status = response.into_inner().status.unwrap();
                assert_eq!(status.code, code.number());
            }
            (outcome, answer) => panic!("{code:?} ({outcome}) answered {answer:?}"),
        }
    }
}

#[tokio::test]
async fn a_first_message_over_the_limit_passes_unread() {
    let mut client = serve(InBodyToErrorLayer::new().message_limit(8)).await;
    let status = Status {
        code: StatusCode::ConnKeyInvalid as i32,
        details: "long enough to pass the limit".into(),
        ..Default::default()
    };
    let response = client.raise(in_body(status)).await.unwrap();
    assert_eq!(response.into_inner().status.unwrap().code, 11008);
}

#[tokio::test]
async fn grpc_errors_pass_untouched() {
    let mut client = serve(InBodyToErrorLayer::new()).await;
    let request = RaiseRequest {
        status: Some(Status {
            code: StatusCode::ModelBusyPleaseRetry as i32,
            ..Default::default()
        }),
        retry_after_ms: 250,
        ..Default::default()
    };
    let error = client.raise(request).await.unwrap_err();
    assert_eq!(error.clarifai_code(), StatusCode::ModelBusyPleaseRetry);
    assert_eq!(
        error.clarifai_retry_delay(),
        Some(std::time::Duration::from_millis(250))
    );
}
