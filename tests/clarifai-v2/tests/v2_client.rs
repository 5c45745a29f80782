//! A Rust client of Clarifai's V2 service, generated from clarifai-grpc's descriptors by
//! `clarifai_status_build`, against the crate's test server standing in for Clarifai's API on
//! 127.0.0.1. Each test starts its own server and reads its call counts.
//!
//! The client is built the recommended way: a channel under `RetryLayer`, which retries gRPC
//! errors of any call, and `retry::call` around the calls whose in-body statuses matter. Under
//! `retry::call` the layer sends each attempt once, so a call makes at most `CALL_ATTEMPTS`
//! attempts on the wire, not `LAYER_ATTEMPTS` * `CALL_ATTEMPTS`.

use std::time::Duration;

use clarifai_status::grpc::ClarifaiStatusExt as _;
use clarifai_status::response::{into_result, HasStatus};
use clarifai_status::retry::{self, Backoff, Policy, Retry, RetryLayer};
use clarifai_status::{Code, StatusCode};
use clarifai_status_testing::{TestServer, Tester};
use clarifai_v2::clarifai::api::v2_client::V2Client;
use clarifai_v2::clarifai::api::{
    ListAppsRequest, MultiAppResponse, MultiOutputResponse, PostModelOutputsRequest,
};
use tonic::transport::Channel;
use tower::ServiceBuilder;

type Client = V2Client<Retry<Channel>>;

const LAYER_ATTEMPTS: u32 = 3;
const CALL_ATTEMPTS: u32 = 4;

fn backoff() -> Backoff {
    Backoff::new(Duration::from_millis(1), Duration::from_millis(5))
}

/// Starts a test server on a free port (it stops with the test's runtime) and connects a V2
/// client to it through `RetryLayer`.
async fn start() -> (Client, Tester) {
    let server = TestServer::new();
    let tester = server.tester().clone();
    let bound = server.bind("127.0.0.1:0".parse().unwrap(), None).unwrap();
    let url = format!("http://{}", bound.grpc_addr());
    tokio::spawn(bound.serve_with_shutdown(std::future::pending()));
    let channel = Channel::from_shared(url).unwrap().connect().await.unwrap();
    let layer = RetryLayer::new(
        Policy::new()
            .max_attempts(LAYER_ATTEMPTS)
            .backoff(backoff()),
    );
    let client = V2Client::new(ServiceBuilder::new().layer(layer).service(channel));
    (client, tester)
}

/// The policy of `retry::call`: in-body statuses and gRPC errors of the calls it makes.
fn call_policy() -> Policy {
    Policy::new().max_attempts(CALL_ATTEMPTS).backoff(backoff())
}

/// A request carrying a scenario for the test server (`x-clarifai-status-raise`).
fn raising<T>(message: T, scenario: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("x-clarifai-status-raise", scenario.parse().unwrap());
    request
}

/// A request whose API key carries a scenario (`authorization: Key raise;<pairs>`), as the
/// official SDK can send one.
fn keyed<T>(message: T, scenario: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Key raise;{scenario}").parse().unwrap(),
    );
    request
}

/// The calls the server counted for `key` (scenario text) and `method`.
fn calls(tester: &Tester, key: &str, method: &str) -> u32 {
    tester
        .calls()
        .iter()
        .filter(|c| c.key == key && c.method == method)
        .map(|c| c.count)
        .sum()
}

fn code_of(response: &impl HasStatus) -> Option<Code> {
    response.status_code()
}

/// `PostModelOutputs` through `retry::call`, with `make` building each attempt's request.
async fn predict(
    client: &Client,
    make: impl Fn() -> tonic::Request<PostModelOutputsRequest>,
) -> Result<tonic::Response<MultiOutputResponse>, tonic::Status> {
    retry::call(&call_policy(), || {
        let (mut client, request) = (client.clone(), make());
        // Not boxed here: `retry::call` boxes each attempt, so the generated call's large future
        // (about 84 KB in a debug build) does not sit on the test thread's 2 MiB stack.
        async move { client.post_model_outputs(request).await }
    })
    .await
}

fn predict_request() -> PostModelOutputsRequest {
    PostModelOutputsRequest {
        model_id: "general-image-recognition".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn busy_model_twice_then_answered_takes_three_calls_and_succeeds() {
    let (client, tester) = start().await;
    let scenario = "code=MODEL_BUSY_PLEASE_RETRY;fail_times=2;id=busy-twice";

    let response = predict(&client, || raising(predict_request(), scenario))
        .await
        .unwrap();

    assert_eq!(
        code_of(response.get_ref()),
        Some(StatusCode::Success.into())
    );
    assert!(into_result(response).is_ok());
    assert_eq!(calls(&tester, scenario, "PostModelOutputs"), 3);
}

#[tokio::test]
async fn bad_key_in_body_is_unauthenticated_with_code_11008_after_one_call() {
    let (client, tester) = start().await;
    let scenario = "code=11008;id=bad-key";

    // In-body, as Clarifai answers: an OK response; `into_result` makes it the gRPC error.
    let response = predict(&client, || keyed(predict_request(), scenario))
        .await
        .unwrap();
    assert_eq!(code_of(response.get_ref()), Some(Code::new(11008)));
    let error = into_result(response).unwrap_err();

    assert_eq!(error.code(), tonic::Code::Unauthenticated);
    assert_eq!(error.clarifai_code(), Code::new(11008));
    assert_eq!(calls(&tester, scenario, "PostModelOutputs"), 1);
}

#[tokio::test]
async fn bad_key_as_grpc_error_is_unauthenticated_with_code_11008_after_one_call() {
    let (client, tester) = start().await;
    let scenario = "code=CONN_KEY_INVALID;in_body=false;id=bad-key-error";

    let error = predict(&client, || keyed(predict_request(), scenario))
        .await
        .unwrap_err();

    assert_eq!(error.code(), tonic::Code::Unauthenticated);
    assert_eq!(error.clarifai_code(), Code::new(11008));
    assert_eq!(calls(&tester, scenario, "PostModelOutputs"), 1);
}

#[tokio::test]
async fn busy_model_as_grpc_error_under_call_makes_the_call_policys_attempts_not_their_product() {
    let (client, tester) = start().await;
    let scenario = "code=MODEL_BUSY_PLEASE_RETRY;in_body=false;id=busy-error";

    let error = predict(&client, || raising(predict_request(), scenario))
        .await
        .unwrap_err();

    assert_eq!(error.clarifai_code(), StatusCode::ModelBusyPleaseRetry);
    assert_eq!(calls(&tester, scenario, "PostModelOutputs"), CALL_ATTEMPTS);
}

#[tokio::test]
async fn busy_model_as_grpc_error_without_call_is_retried_by_the_layer() {
    let (mut client, tester) = start().await;
    let scenario = "code=MODEL_BUSY_PLEASE_RETRY;in_body=false;id=busy-layer";

    let error = client
        .post_model_outputs(raising(predict_request(), scenario))
        .await
        .unwrap_err();

    assert_eq!(error.clarifai_code(), StatusCode::ModelBusyPleaseRetry);
    assert_eq!(calls(&tester, scenario, "PostModelOutputs"), LAYER_ATTEMPTS);
}

#[tokio::test]
async fn busy_model_in_body_forever_stops_at_the_call_policys_attempts() {
    let (client, tester) = start().await;
    let scenario = "code=MODEL_BUSY_PLEASE_RETRY;id=busy-forever";

    let response = predict(&client, || raising(predict_request(), scenario))
        .await
        .unwrap();

    assert_eq!(
        code_of(response.get_ref()),
        Some(StatusCode::ModelBusyPleaseRetry.into())
    );
    assert_eq!(calls(&tester, scenario, "PostModelOutputs"), CALL_ATTEMPTS);
}

#[tokio::test]
async fn server_streaming_generate_yields_one_message_with_the_status_then_ends() {
    let (mut client, tester) = start().await;
    let scenario = "code=MODEL_LOADING;methods=GenerateModelOutputs;id=stream";

    let mut stream = client
        .generate_model_outputs(raising(predict_request(), scenario))
        .await
        .unwrap()
        .into_inner();
    let first: MultiOutputResponse = stream.message().await.unwrap().expect("one message");
    let end = stream.message().await.unwrap();

    assert_eq!(code_of(&first), Some(StatusCode::ModelLoading.into()));
    assert!(end.is_none(), "the stream ends after one message: {end:?}");
    assert_eq!(calls(&tester, scenario, "GenerateModelOutputs"), 1);
}

#[tokio::test]
async fn list_apps_is_answered_success() {
    let (client, tester) = start().await;

    let response: tonic::Response<MultiAppResponse> = retry::call(&call_policy(), || {
        let mut client = client.clone();
        async move { client.list_apps(ListAppsRequest::default()).await }
    })
    .await
    .unwrap();

    assert_eq!(
        code_of(response.get_ref()),
        Some(StatusCode::Success.into())
    );
    assert!(into_result(response).unwrap().get_ref().apps.is_empty());
    assert_eq!(calls(&tester, "", "ListApps"), 1);
}
