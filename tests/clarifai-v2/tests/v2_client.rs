//! A Rust client of Clarifai's V2 service, generated from clarifai-grpc's descriptors by
//! `clarifai_status_build`, against the crate's test server standing in for Clarifai's API on
//! 127.0.0.1. Each test starts its own server and reads its call counts.
//!
//! The client is built the recommended way: a channel under `RetryLayer`, which retries gRPC
//! errors and Clarifai's in-body answers (an OK response whose `status` is a retryable failure,
//! read from its first message) of every call the layer can replay, on its own. `retry::call` is
//! needed only for responses that are not Clarifai-shaped; stacked on the layer with each
//! attempt's request marked `SendOnce`, the layer under it sends each attempt once and reads
//! nothing, so a call makes at most `CALL_ATTEMPTS` attempts on the wire, not `LAYER_ATTEMPTS` *
//! `CALL_ATTEMPTS`.
//!
//! The client's type, as a user writes it down: `V2Client<Retry<Channel>>`, or with the API key
//! interceptor, `V2Client<InterceptedService<Retry<Channel>, AddApiKey>>`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clarifai_status::client::AddApiKey;
use clarifai_status::grpc::ClarifaiStatusExt as _;
use clarifai_status::response::{into_result, HasStatus};
use clarifai_status::retry::{self, Backoff, Budget, Policy, Retry, RetryLayer, SendOnce};
use clarifai_status::{Code, StatusCode};
use clarifai_status_testing::{TestServer, Tester};
use clarifai_v2::clarifai::api::v2_client::V2Client;
use clarifai_v2::clarifai::api::{
    ListAppsRequest, MultiAppResponse, MultiOutputResponse, PostModelOutputsRequest,
};
use tonic::service::interceptor::InterceptedService;
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
    start_with(
        Policy::new()
            .max_attempts(LAYER_ATTEMPTS)
            .backoff(backoff()),
    )
    .await
}

/// Starts a test server and connects a V2 client through `RetryLayer` with `policy`.
async fn start_with(policy: Policy) -> (Client, Tester) {
    let (channel, tester) = serve().await;
    let layer = RetryLayer::new(policy);
    let client = V2Client::new(ServiceBuilder::new().layer(layer).service(channel));
    (client, tester)
}

/// Starts a test server on a free port; a channel to it.
async fn serve() -> (Channel, Tester) {
    let server = TestServer::new();
    let tester = server.tester().clone();
    let bound = server.bind("127.0.0.1:0".parse().unwrap(), None).unwrap();
    let url = format!("http://{}", bound.grpc_addr());
    tokio::spawn(bound.serve_with_shutdown(std::future::pending()));
    let channel = Channel::from_shared(url).unwrap().connect().await.unwrap();
    (channel, tester)
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
        let (mut client, mut request) = (client.clone(), make());
        request.extensions_mut().insert(SendOnce);
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
    // MODEL_DOES_NOT_EXIST: not retryable, so the layer passes the first message on at once.
    let scenario = "code=21200;methods=GenerateModelOutputs;id=stream";

    let mut stream = client
        .generate_model_outputs(raising(predict_request(), scenario))
        .await
        .unwrap()
        .into_inner();
    let first: MultiOutputResponse = stream.message().await.unwrap().expect("one message");
    let end = stream.message().await.unwrap();

    assert_eq!(code_of(&first), Some(Code::new(21200)));
    assert!(end.is_none(), "the stream ends after one message: {end:?}");
    assert_eq!(calls(&tester, scenario, "GenerateModelOutputs"), 1);
}

// Issue 22: `RetryLayer` alone retries Clarifai's in-body answers.

#[tokio::test]
async fn layer_alone_retries_a_busy_model_in_body_twice_then_answered_in_three_calls() {
    let (mut client, tester) = start().await;
    let scenario = "code=MODEL_BUSY_PLEASE_RETRY;fail_times=2;id=layer-busy-twice";

    // No `retry::call`: a plain generated call.
    let response = client
        .post_model_outputs(raising(predict_request(), scenario))
        .await
        .unwrap();

    assert_eq!(
        code_of(response.get_ref()),
        Some(StatusCode::Success.into())
    );
    assert_eq!(calls(&tester, scenario, "PostModelOutputs"), 3);
}

#[tokio::test]
async fn layer_alone_answers_a_non_retryable_in_body_code_after_one_call() {
    let (mut client, tester) = start().await;
    let scenario = "code=CONN_KEY_INVALID;id=layer-bad-key";

    let response = client
        .post_model_outputs(keyed(predict_request(), scenario))
        .await
        .unwrap();

    assert_eq!(code_of(response.get_ref()), Some(Code::new(11008)));
    assert_eq!(calls(&tester, scenario, "PostModelOutputs"), 1);
}

#[tokio::test]
async fn layer_alone_stops_a_busy_model_in_body_forever_at_its_attempts() {
    let (mut client, tester) = start().await;
    let scenario = "code=MODEL_BUSY_PLEASE_RETRY;id=layer-busy-forever";

    let response = client
        .post_model_outputs(raising(predict_request(), scenario))
        .await
        .unwrap();

    // The last answer, as it came.
    assert_eq!(
        code_of(response.get_ref()),
        Some(StatusCode::ModelBusyPleaseRetry.into())
    );
    assert_eq!(calls(&tester, scenario, "PostModelOutputs"), LAYER_ATTEMPTS);
}

/// Over the socket the clock is real: a lower bound only (the wait happened); the backoff is at
/// most 5 ms, so a wait of 300 ms is the pushback's. The exact wait is checked in virtual time
/// by the crate's `tests/retry_in_body.rs`.
#[tokio::test]
async fn layer_alone_honours_the_pushback_of_an_in_body_answer() {
    let (mut client, tester) = start().await;
    let scenario = "code=MODEL_BUSY_PLEASE_RETRY;fail_times=1;retry_after_ms=300;id=layer-pushback";

    let start = Instant::now();
    let response = client
        .post_model_outputs(raising(predict_request(), scenario))
        .await
        .unwrap();

    assert!(start.elapsed() >= Duration::from_millis(300));
    assert_eq!(
        code_of(response.get_ref()),
        Some(StatusCode::Success.into())
    );
    assert_eq!(calls(&tester, scenario, "PostModelOutputs"), 2);
}

#[tokio::test]
async fn layer_retries_a_stream_whose_first_message_is_busy_before_the_caller_sees_it() {
    let (mut client, tester) = start().await;
    let scenario = "code=MODEL_LOADING;fail_times=1;methods=GenerateModelOutputs;id=stream-busy";

    let mut stream = client
        .generate_model_outputs(raising(predict_request(), scenario))
        .await
        .unwrap()
        .into_inner();
    let first: MultiOutputResponse = stream.message().await.unwrap().expect("one message");

    assert_eq!(code_of(&first), Some(StatusCode::Success.into()));
    assert!(stream.message().await.unwrap().is_none());
    assert_eq!(calls(&tester, scenario, "GenerateModelOutputs"), 2);
}

#[tokio::test]
async fn layer_never_replays_a_stream_that_fails_after_its_first_message() {
    let (mut client, tester) = start().await;
    let scenario = "code=RPC_SERVER_UNAVAILABLE;in_body=false;successes_first=1;\
                    methods=GenerateModelOutputs;id=stream-fails-late";

    let mut stream = client
        .generate_model_outputs(raising(predict_request(), scenario))
        .await
        .unwrap()
        .into_inner();
    let first: MultiOutputResponse = stream.message().await.unwrap().expect("one message");
    let error = stream.message().await.unwrap_err();

    assert_eq!(code_of(&first), Some(StatusCode::Success.into()));
    assert_eq!(error.code(), tonic::Code::Unavailable);
    assert_eq!(error.clarifai_code(), StatusCode::RpcServerUnavailable);
    assert_eq!(calls(&tester, scenario, "GenerateModelOutputs"), 1);
}

#[tokio::test]
async fn in_body_answers_and_grpc_errors_draw_on_one_budget() {
    // 10 tokens, no retry at 5 or fewer: a busy model in-body forever costs 5 (4 retries), then
    // a gRPC error finds the budget spent.
    let budget = Arc::new(Budget::new(10, 0.1).unwrap());
    let policy = Policy::new()
        .max_attempts(10)
        .backoff(backoff())
        .budget(budget.clone());
    let (mut client, tester) = start_with(policy).await;

    let busy = "code=MODEL_BUSY_PLEASE_RETRY;id=budget-in-body";
    client
        .post_model_outputs(raising(predict_request(), busy))
        .await
        .unwrap();
    assert_eq!(calls(&tester, busy, "PostModelOutputs"), 5);
    assert_eq!(budget.tokens(), 5.0);

    let down = "code=RPC_SERVER_UNAVAILABLE;in_body=false;id=budget-error";
    let error = client
        .post_model_outputs(raising(predict_request(), down))
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::Unavailable);
    assert_eq!(calls(&tester, down, "PostModelOutputs"), 1);
    assert_eq!(budget.tokens(), 4.0);
}

#[tokio::test]
async fn a_bidi_client_that_sends_after_the_headers_is_never_held_by_the_read() {
    let (mut client, tester) = start().await;
    // A delayed answer: the server sends its headers at once, then waits for a request message.
    let scenario = "code=MODEL_BUSY_PLEASE_RETRY;delay_ms=1;methods=StreamModelOutputs;id=bidi";
    let (send, receive) = tokio::sync::mpsc::channel::<PostModelOutputsRequest>(1);
    let requests = tokio_stream::wrappers::ReceiverStream::new(receive);

    // The hang guard, not a measure of speed: a read waiting on the stream would never end.
    let guard = Duration::from_secs(60);
    let response = tokio::time::timeout(
        guard,
        client.stream_model_outputs(raising(requests, scenario)),
    )
    .await
    .expect("the response headers reach the caller before any request is sent")
    .unwrap();
    send.send(predict_request()).await.unwrap();
    let mut stream = response.into_inner();
    let first = tokio::time::timeout(guard, stream.message())
        .await
        .expect("the answer comes once a request is sent")
        .unwrap()
        .expect("one message");

    // A live stream is sent once: the busy answer reaches the caller.
    assert_eq!(
        code_of(&first),
        Some(StatusCode::ModelBusyPleaseRetry.into())
    );
    assert_eq!(calls(&tester, scenario, "StreamModelOutputs"), 1);
}

#[tokio::test]
async fn the_client_type_with_the_api_key_is_the_one_the_docs_name() {
    let (channel, tester) = serve().await;
    let channel = ServiceBuilder::new()
        .layer(RetryLayer::new(Policy::new().backoff(backoff())))
        .service(channel);
    let key = AddApiKey::new("raise;code=MODEL_BUSY_PLEASE_RETRY;fail_times=1;id=typed").unwrap();
    let mut client: V2Client<InterceptedService<Retry<Channel>, AddApiKey>> =
        V2Client::with_interceptor(channel, key);

    let response = client.post_model_outputs(predict_request()).await.unwrap();

    assert_eq!(
        code_of(response.get_ref()),
        Some(StatusCode::Success.into())
    );
    let scenario = "code=MODEL_BUSY_PLEASE_RETRY;fail_times=1;id=typed";
    assert_eq!(calls(&tester, scenario, "PostModelOutputs"), 2);
}

#[tokio::test]
async fn list_apps_is_answered_success() {
    let (client, tester) = start().await;

    let response: tonic::Response<MultiAppResponse> = retry::call(&call_policy(), || {
        let mut client = client.clone();
        let request = SendOnce::request(ListAppsRequest::default());
        async move { client.list_apps(request).await }
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
