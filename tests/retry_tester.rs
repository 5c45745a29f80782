//! Retry against the real status test server over a tonic channel on 127.0.0.1: the layer
//! (gRPC errors and in-body statuses), the typed helper, pushback and deadlines.
#![cfg(feature = "retry")]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clarifai_status::grpc::ClarifaiStatusExt as _;
use clarifai_status::response::HasStatus;
use clarifai_status::retry::{self, Backoff, Policy, Retry, RetryLayer, SendOnce};
use clarifai_status::{pb, Code, StatusCode};
use clarifai_status_testing::pb::status_tester_client::StatusTesterClient;
use clarifai_status_testing::pb::{RaiseRequest, RaiseResponse};
use clarifai_status_testing::TestServer;
use tonic::transport::Channel;
use tower::ServiceBuilder;

/// Starts a test server on a free port; it stops when the test's runtime does.
async fn start() -> Channel {
    let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let bound = TestServer::new().bind(local, None).unwrap();
    let url = format!("http://{}", bound.grpc_addr());
    tokio::spawn(bound.serve_with_shutdown(std::future::pending()));
    Channel::from_shared(url).unwrap().connect().await.unwrap()
}

fn fast() -> Policy {
    Policy::new().backoff(Backoff::new(
        Duration::from_millis(1),
        Duration::from_millis(5),
    ))
}

fn layered(channel: Channel, policy: Policy) -> StatusTesterClient<Retry<Channel>> {
    StatusTesterClient::new(
        ServiceBuilder::new()
            .layer(RetryLayer::new(policy))
            .service(channel),
    )
}

fn raise(code: impl Into<Code>, in_body: bool, fail_times: u32, key: &str) -> RaiseRequest {
    RaiseRequest {
        status: Some(pb::Status {
            code: code.into().number(),
            ..Default::default()
        }),
        in_body,
        fail_times,
        key: key.into(),
        retry_after_ms: 0,
    }
}

fn code(response: &RaiseResponse) -> i32 {
    response.status.as_ref().unwrap().code
}

/// `RaiseResponse` does not implement `HasStatus` (see the report); a local newtype does.
#[derive(Debug)]
struct Raised(RaiseResponse);

impl HasStatus for Raised {
    fn status(&self) -> Option<&pb::Status> {
        self.0.status.as_ref()
    }
}

/// One `Raise` call for `retry::call`, its response wrapped as `Raised`.
fn raise_with(
    client: &StatusTesterClient<Channel>,
    request: &RaiseRequest,
) -> impl std::future::Future<Output = Result<tonic::Response<Raised>, tonic::Status>> {
    let (mut client, request) = (client.clone(), request.clone());
    async move { Ok(client.raise(request).await?.map(Raised)) }
}

/// The number of calls the server has seen with `key`, read by one more call that succeeds.
async fn calls_seen(channel: &Channel, key: &str) -> u32 {
    let mut client = StatusTesterClient::new(channel.clone());
    let response = client
        .raise(raise(StatusCode::Success, false, 0, key))
        .await
        .unwrap();
    response.into_inner().attempt - 1
}

#[tokio::test]
async fn layer_retries_a_retryable_error_until_it_succeeds() {
    let channel = start().await;
    let mut client = layered(channel, fast());
    let request = raise(
        StatusCode::ModelBusyPleaseRetry,
        false,
        2,
        "layer-fail-twice",
    );
    let response = client.raise(request).await.unwrap().into_inner();
    assert_eq!(response.attempt, 3);
    assert_eq!(code(&response), StatusCode::Success as i32);
}

#[tokio::test]
async fn typed_helper_retries_an_in_body_status_until_it_succeeds() {
    let channel = start().await;
    let client = StatusTesterClient::new(channel);
    let request = raise(
        StatusCode::ModelBusyPleaseRetry,
        true,
        2,
        "helper-fail-twice",
    );
    let response = retry::call(&fast(), || raise_with(&client, &request))
        .await
        .unwrap()
        .into_inner()
        .0;
    assert_eq!(response.attempt, 3);
    assert_eq!(code(&response), StatusCode::Success as i32);
}

#[tokio::test]
async fn layer_retries_an_in_body_status_on_its_own() {
    // The layer reads the status of the first message (`RaiseResponse.status` is field 1, as in
    // every Clarifai response) and retries it as the typed helper does.
    let channel = start().await;
    let mut client = layered(channel, fast());
    let request = raise(StatusCode::ModelBusyPleaseRetry, true, 2, "layer-in-body");
    let response = client.raise(request).await.unwrap().into_inner();
    assert_eq!(response.attempt, 3);
    assert_eq!(code(&response), StatusCode::Success as i32);
}

#[tokio::test]
async fn layer_with_in_body_off_commits_an_ok_response() {
    let channel = start().await;
    let mut client = StatusTesterClient::new(
        ServiceBuilder::new()
            .layer(RetryLayer::new(fast()).in_body(false))
            .service(channel),
    );
    let request = raise(
        StatusCode::ModelBusyPleaseRetry,
        true,
        2,
        "layer-in-body-off",
    );
    let response = client.raise(request).await.unwrap().into_inner();
    assert_eq!(response.attempt, 1);
    assert_eq!(code(&response), StatusCode::ModelBusyPleaseRetry as i32);
}

#[tokio::test]
async fn non_retryable_code_is_tried_once_through_the_layer() {
    let channel = start().await;
    let mut client = layered(channel.clone(), fast());
    let error = client
        .raise(raise(StatusCode::ConnKeyInvalid, false, 1, "layer-denied"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::Unauthenticated);
    assert_eq!(error.clarifai_code(), StatusCode::ConnKeyInvalid);
    assert_eq!(calls_seen(&channel, "layer-denied").await, 1);
}

#[tokio::test]
async fn non_retryable_code_is_tried_once_through_the_helper() {
    let channel = start().await;
    let client = StatusTesterClient::new(channel.clone());
    let in_body = raise(StatusCode::ConnKeyInvalid, true, 1, "helper-denied-body");
    let response = retry::call(&fast(), || raise_with(&client, &in_body))
        .await
        .unwrap()
        .into_inner()
        .0;
    assert_eq!((response.attempt, code(&response)), (1, 11008));

    let as_error = raise(StatusCode::ConnKeyInvalid, false, 1, "helper-denied-error");
    let error = retry::call(&fast(), || raise_with(&client, &as_error))
        .await
        .unwrap_err();
    assert_eq!(error.clarifai_code(), StatusCode::ConnKeyInvalid);
    assert_eq!(calls_seen(&channel, "helper-denied-error").await, 1);
}

/// Over the socket the clock is real: lower bounds only (the wait happened); the exact wait is
/// checked in virtual time by `pushback_is_honoured_for_exactly_its_delay`.
#[tokio::test]
async fn pushback_is_honoured() {
    let channel = start().await;
    let mut request = raise(StatusCode::ConnThrottled, false, 1, "layer-pushback");
    request.retry_after_ms = 150;
    let mut client = layered(channel.clone(), fast());
    let start = Instant::now();
    let response = client.raise(request).await.unwrap().into_inner();
    assert!(
        start.elapsed() >= Duration::from_millis(150),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(response.attempt, 2);

    let mut request = raise(StatusCode::ConnThrottled, false, 1, "helper-pushback");
    request.retry_after_ms = 150;
    let plain = StatusTesterClient::new(channel);
    let start = Instant::now();
    let response = retry::call(&fast(), || raise_with(&plain, &request))
        .await
        .unwrap()
        .into_inner()
        .0;
    assert!(
        start.elapsed() >= Duration::from_millis(150),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(response.attempt, 2);
}

/// `pushback_is_honoured` against the same tester in process, under the paused clock: the
/// tester answers at once, so virtual time is exactly the pushback. (Over a socket the clock
/// cannot be paused: tokio would advance it while waiting on I/O.)
#[tokio::test(start_paused = true)]
async fn pushback_is_honoured_for_exactly_its_delay() {
    let tester = TestServer::new().tester().clone();
    let mut request = raise(StatusCode::ConnThrottled, false, 1, "layer-pushback");
    request.retry_after_ms = 150;
    let mut client = StatusTesterClient::new(Retry::new(tester.clone().into_server(), fast()));
    let start = tokio::time::Instant::now();
    let response = client.raise(request).await.unwrap().into_inner();
    assert_eq!(start.elapsed(), Duration::from_millis(150));
    assert_eq!(response.attempt, 2);

    let mut request = raise(StatusCode::ConnThrottled, false, 1, "helper-pushback");
    request.retry_after_ms = 150;
    let plain = StatusTesterClient::new(tester.into_server());
    let start = tokio::time::Instant::now();
    let response = retry::call(&fast(), || {
        let (mut client, request) = (plain.clone(), request.clone());
        async move { Ok(client.raise(request).await?.map(Raised)) }
    })
    .await
    .unwrap()
    .into_inner()
    .0;
    assert_eq!(start.elapsed(), Duration::from_millis(150));
    assert_eq!(response.attempt, 2);
}

/// Over the socket, counts and codes only: no retry is made (one call, the throttle returned).
/// That it is returned without waiting is checked in virtual time, in process, by
/// `pushback_beyond_the_deadline_takes_no_time`.
#[tokio::test]
async fn pushback_beyond_the_deadline_stops_at_once() {
    let channel = start().await;
    let mut request = raise(StatusCode::ConnThrottled, false, 1, "layer-pushback-far");
    request.retry_after_ms = 3000;
    let policy = fast().deadline(Duration::from_millis(500));
    let mut client = layered(channel.clone(), policy.clone());
    let error = client.raise(request).await.unwrap_err();
    assert_eq!(error.clarifai_code(), StatusCode::ConnThrottled);
    assert_eq!(error.clarifai_retry_delay(), Some(Duration::from_secs(3)));
    assert_eq!(calls_seen(&channel, "layer-pushback-far").await, 1);

    let mut request = raise(StatusCode::ConnThrottled, false, 1, "helper-pushback-far");
    request.retry_after_ms = 3000;
    let plain = StatusTesterClient::new(channel.clone());
    let error = retry::call(&policy, || raise_with(&plain, &request))
        .await
        .unwrap_err();
    assert_eq!(error.clarifai_code(), StatusCode::ConnThrottled);
    assert_eq!(calls_seen(&channel, "helper-pushback-far").await, 1);
}

/// `pushback_beyond_the_deadline_stops_at_once` against the same tester in process, under the
/// paused clock: stopping at once takes no virtual time at all; a sleep would show.
#[tokio::test(start_paused = true)]
async fn pushback_beyond_the_deadline_takes_no_time() {
    let tester = TestServer::new().tester().clone();
    let count = |key: &str| {
        tester
            .calls()
            .into_iter()
            .find(|c| c.key == key)
            .map_or(0, |c| c.count)
    };
    let mut request = raise(StatusCode::ConnThrottled, false, 1, "layer-pushback-far");
    request.retry_after_ms = 3000;
    let policy = fast().deadline(Duration::from_millis(500));
    let mut client =
        StatusTesterClient::new(Retry::new(tester.clone().into_server(), policy.clone()));
    let start = tokio::time::Instant::now();
    let error = client.raise(request).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(error.clarifai_code(), StatusCode::ConnThrottled);
    assert_eq!(error.clarifai_retry_delay(), Some(Duration::from_secs(3)));
    assert_eq!(count("layer-pushback-far"), 1);

    let mut request = raise(StatusCode::ConnThrottled, false, 1, "helper-pushback-far");
    request.retry_after_ms = 3000;
    let plain = StatusTesterClient::new(tester.clone().into_server());
    let start = tokio::time::Instant::now();
    let error = retry::call(&policy, || {
        let (mut client, request) = (plain.clone(), request.clone());
        async move { Ok(client.raise(request).await?.map(Raised)) }
    })
    .await
    .unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(error.clarifai_code(), StatusCode::ConnThrottled);
    assert_eq!(count("helper-pushback-far"), 1);
}

/// Over the socket, counts and codes only (one call, the throttle returned); that it is returned
/// without waiting is checked in process by `a_call_timeout_shorter_than_the_pushback_takes_no_time`.
#[tokio::test]
async fn a_call_timeout_shorter_than_the_pushback_stops_at_once() {
    // tonic sends `Request::set_timeout` as `grpc-timeout`; the layer makes it the deadline.
    let channel = start().await;
    let mut request =
        tonic::Request::new(raise(StatusCode::ConnThrottled, false, 1, "timeout-short"));
    request.get_mut().retry_after_ms = 1000;
    request.set_timeout(Duration::from_millis(200));
    let mut client = layered(channel.clone(), fast());
    let error = client.raise(request).await.unwrap_err();
    assert_eq!(error.clarifai_code(), StatusCode::ConnThrottled);
    assert_eq!(calls_seen(&channel, "timeout-short").await, 1);
}

/// `a_call_timeout_shorter_than_the_pushback_stops_at_once` against the same tester in process,
/// under the paused clock: the layer reads the `grpc-timeout` tonic sends and stops at once, in
/// no virtual time.
#[tokio::test(start_paused = true)]
async fn a_call_timeout_shorter_than_the_pushback_takes_no_time() {
    let tester = TestServer::new().tester().clone();
    let mut request =
        tonic::Request::new(raise(StatusCode::ConnThrottled, false, 1, "timeout-short"));
    request.get_mut().retry_after_ms = 1000;
    request.set_timeout(Duration::from_millis(200));
    let mut client = StatusTesterClient::new(Retry::new(tester.clone().into_server(), fast()));
    let start = tokio::time::Instant::now();
    let error = client.raise(request).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(error.clarifai_code(), StatusCode::ConnThrottled);
    let calls = tester.calls();
    let seen = calls.iter().find(|c| c.key == "timeout-short").unwrap();
    assert_eq!(seen.count, 1);
}

#[tokio::test]
async fn stops_at_max_attempts_against_a_failing_server() {
    let channel = start().await;
    let mut client = layered(channel.clone(), fast().max_attempts(3));
    let error = client
        .raise(raise(
            StatusCode::RpcServerUnavailable,
            false,
            10,
            "layer-max",
        ))
        .await
        .unwrap_err();
    assert_eq!(error.clarifai_code(), StatusCode::RpcServerUnavailable);
    assert_eq!(calls_seen(&channel, "layer-max").await, 3);
}

/// `retry::call` over a client whose channel has `RetryLayer`, each attempt marked `SendOnce`:
/// the layer sends each once, so a failure that never ends is tried `max_attempts` times, not
/// squared.
#[tokio::test]
async fn call_over_the_layer_makes_at_most_max_attempts() {
    let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = TestServer::new();
    let tester = server.tester().clone();
    let bound = server.bind(local, None).unwrap();
    let url = format!("http://{}", bound.grpc_addr());
    tokio::spawn(bound.serve_with_shutdown(std::future::pending()));
    let channel = Channel::from_shared(url).unwrap().connect().await.unwrap();
    let attempts = |key: &str| {
        tester
            .calls()
            .into_iter()
            .find(|c| c.key == key)
            .map_or(0, |c| c.count)
    };

    let policy = fast().max_attempts(4);
    let client = layered(channel, policy.clone());
    let busy = raise(StatusCode::ModelBusyPleaseRetry, false, 0, "stacked");
    let error = retry::call(&policy, || {
        let (mut client, request) = (client.clone(), SendOnce::request(busy.clone()));
        async move { client.raise(request).await }
    })
    .await
    .unwrap_err();
    assert_eq!(error.clarifai_code(), StatusCode::ModelBusyPleaseRetry);
    assert_eq!(attempts("stacked"), 4, "4 attempts, not 16");

    // The same layer retries on its own when no `call` is around it.
    let mut alone = client.clone();
    let busy = raise(StatusCode::ModelBusyPleaseRetry, false, 0, "alone");
    alone.raise(busy).await.unwrap_err();
    assert_eq!(attempts("alone"), 4);

    // In-body failures are `call`'s: twice busy, then answered, three calls on the wire.
    let busy = raise(StatusCode::ModelBusyPleaseRetry, true, 2, "in-body");
    let response = retry::call(&policy, || {
        let (mut client, request) = (client.clone(), SendOnce::request(busy.clone()));
        async move { client.raise(request).await }
    })
    .await
    .unwrap();
    assert_eq!(code(response.get_ref()), StatusCode::Success as i32);
    assert_eq!(attempts("in-body"), 3);
}
