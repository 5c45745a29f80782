//! Per-method safety and per-attempt timeouts, with real tonic calls on 127.0.0.1: the layer under
//! a tonic `Channel` and `call_method` around a typed call, against the crate's V2 stand-in (and
//! a half-dead server that accepts connections and never answers).
#![cfg(feature = "retry")]

use std::net::SocketAddr;
use std::time::Duration;

use clarifai_status::retry::{self, Backoff, Policy, RetryLayer};
use clarifai_status::{pb, StatusCode};
use clarifai_status_testing::{TestServer, Tester};
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tower::ServiceBuilder;

/// Any request message: the stand-in does not read requests.
#[derive(Clone, PartialEq, prost::Message)]
struct AnyRequest {
    #[prost(string, tag = "1")]
    id: String,
}

/// A status-only V2 response.
#[derive(Clone, PartialEq, prost::Message)]
struct AnyResponse {
    #[prost(message, optional, tag = "1")]
    status: Option<pb::Status>,
}

impl clarifai_status::response::HasStatus for AnyResponse {
    fn status(&self) -> Option<&pb::Status> {
        self.status.as_ref()
    }
}

type Codec = tonic_prost::ProstCodec<AnyRequest, AnyResponse>;

const RAISE: &str = "x-clarifai-status-raise";
/// A plain-`UNAVAILABLE`-like failure whose effect is unknown: a gRPC error `UNAVAILABLE`
/// carrying `RPC_SERVER_UNAVAILABLE`, twice, then success.
const UNKNOWN_TWICE: &str = "code=RPC_SERVER_UNAVAILABLE;in_body=false;fail_times=2";

struct Running {
    grpc: SocketAddr,
    tester: Tester,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn start() -> Running {
        let server = TestServer::new();
        let tester = server.tester().clone();
        let bound = server.bind("127.0.0.1:0".parse().unwrap(), None).unwrap();
        let grpc = bound.grpc_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(bound.serve_with_shutdown(async {
            stopped.await.ok();
        }));
        Running {
            grpc,
            tester,
            stop,
            task,
        }
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.grpc))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    /// How many calls of `method` with scenario `key` the server answered.
    fn count(&self, key: &str, method: &str) -> u32 {
        self.tester
            .calls()
            .into_iter()
            .find(|c| c.key == key && c.method == method)
            .map_or(0, |c| c.count)
    }

    async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("server stops within 10 s")
            .unwrap()
            .unwrap();
    }
}

fn fast() -> Policy {
    Policy::new().backoff(Backoff::new(
        Duration::from_millis(1),
        Duration::from_millis(5),
    ))
}

fn request(scenario: &str) -> tonic::Request<AnyRequest> {
    let mut request = tonic::Request::new(AnyRequest::default());
    request
        .metadata_mut()
        .insert(RAISE, scenario.parse().unwrap());
    request
}

fn path(method: &str) -> http::uri::PathAndQuery {
    format!("/clarifai.api.V2/{method}").parse().unwrap()
}

/// One unary call through `RetryLayer` over a real channel: the in-body code, or the error.
async fn through_layer(
    server: &Running,
    policy: Policy,
    method: &str,
    scenario: &str,
) -> Result<i32, tonic::Status> {
    let channel = ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .service(server.channel().await);
    let mut client = tonic::client::Grpc::new(channel);
    client.ready().await.unwrap();
    let response = client
        .unary(request(scenario), path(method), Codec::default())
        .await?;
    Ok(response.into_inner().status.map_or(0, |s| s.code))
}

/// One typed call through `call_method` (or `call` when `method` is `None`).
async fn through_call(
    server: &Running,
    policy: &Policy,
    method: Option<&str>,
    scenario: &str,
) -> Result<i32, tonic::Status> {
    let client = tonic::client::Grpc::new(server.channel().await);
    let path_text = format!("/clarifai.api.V2/{}", method.unwrap_or("PostInputs"));
    let make = || {
        let mut client = client.clone();
        let (request, path) = (request(scenario), path_text.parse().unwrap());
        async move {
            client.ready().await.unwrap();
            client.unary(request, path, Codec::default()).await
        }
    };
    let response = match method {
        Some(_) => retry::call_method(policy, &path_text, make).await?,
        None => retry::call(policy, make).await?,
    };
    Ok(response.into_inner().status.map_or(0, |s| s.code))
}

#[tokio::test]
async fn by_default_the_layer_retries_unknown_effect_failures_on_every_method() {
    let server = Running::start().await;
    let code = through_layer(&server, fast(), "PostInputs", UNKNOWN_TWICE).await;
    assert_eq!(code.unwrap(), StatusCode::Success as i32);
    assert_eq!(server.count(UNKNOWN_TWICE, "PostInputs"), 3);
    server.stop().await;
}

#[tokio::test]
async fn the_layer_retries_unknown_effect_failures_only_on_idempotent_methods() {
    let server = Running::start().await;
    let policy = || fast().idempotent_methods(["/clarifai.api.V2/Get*", "/clarifai.api.V2/List*"]);

    let read = through_layer(&server, policy(), "GetModel", UNKNOWN_TWICE).await;
    assert_eq!(read.unwrap(), StatusCode::Success as i32);
    assert_eq!(server.count(UNKNOWN_TWICE, "GetModel"), 3);

    let write = through_layer(&server, policy(), "PostInputs", UNKNOWN_TWICE).await;
    assert_eq!(write.unwrap_err().code(), tonic::Code::Unavailable);
    assert_eq!(server.count(UNKNOWN_TWICE, "PostInputs"), 1);
    server.stop().await;
}

#[tokio::test]
async fn refusals_stay_retryable_on_every_method() {
    let server = Running::start().await;
    let policy = fast().idempotent_methods(["/clarifai.api.V2/Get*"]);
    // A throttle sent as a gRPC error (RESOURCE_EXHAUSTED carrying CONN_THROTTLED), twice.
    let throttled = "code=CONN_THROTTLED;in_body=false;fail_times=2";
    let code = through_layer(&server, policy, "PostInputs", throttled).await;
    assert_eq!(code.unwrap(), StatusCode::Success as i32);
    assert_eq!(server.count(throttled, "PostInputs"), 3);
    server.stop().await;
}

#[tokio::test]
async fn call_method_applies_the_per_method_rule_and_call_treats_an_unnamed_method_as_unsafe() {
    let server = Running::start().await;
    let policy = fast().idempotent_methods(["/clarifai.api.V2/GetModel"]);

    let read = through_call(&server, &policy, Some("GetModel"), UNKNOWN_TWICE).await;
    assert_eq!(read.unwrap(), StatusCode::Success as i32);
    assert_eq!(server.count(UNKNOWN_TWICE, "GetModel"), 3);

    let write = through_call(&server, &policy, Some("PostInputs"), UNKNOWN_TWICE).await;
    assert_eq!(write.unwrap_err().code(), tonic::Code::Unavailable);
    assert_eq!(server.count(UNKNOWN_TWICE, "PostInputs"), 1);

    // `call` knows no method: under a list, unknown-effect failures are not retried...
    let other = "code=RPC_SERVER_UNAVAILABLE;in_body=false;fail_times=2;id=unnamed";
    let unnamed = through_call(&server, &policy, None, other).await;
    assert_eq!(unnamed.unwrap_err().code(), tonic::Code::Unavailable);
    assert_eq!(server.count(other, "PostInputs"), 1);
    // ...but refusals in the body are.
    let busy = "code=MODEL_BUSY_PLEASE_RETRY;fail_times=2";
    let code = through_call(&server, &policy, None, busy).await;
    assert_eq!(code.unwrap(), StatusCode::Success as i32);
    assert_eq!(server.count(busy, "PostInputs"), 3);
    server.stop().await;
}

/// A hung attempt: the first answer is delayed 3 s and would be a non-retryable
/// `CONN_KEY_INVALID`; the next call would succeed at once.
const HUNG_ONCE: &str = "code=CONN_KEY_INVALID;fail_times=1;delay_ms=3000";

#[tokio::test]
async fn call_cuts_a_hung_attempt_at_the_attempt_timeout_and_retries() {
    let server = Running::start().await;
    let policy = fast().attempt_timeout(Duration::from_millis(200));
    let code = through_call(&server, &policy, Some("PostModelOutputs"), HUNG_ONCE).await;
    assert_eq!(code.unwrap(), StatusCode::Success as i32);
    assert_eq!(server.count(HUNG_ONCE, "PostModelOutputs"), 2);
    server.stop().await;
}

#[tokio::test]
async fn without_an_attempt_timeout_a_hung_attempt_holds_the_call() {
    let server = Running::start().await;
    let key = "code=CONN_KEY_INVALID;fail_times=1;delay_ms=300";
    let code = through_call(&server, &fast(), Some("PostModelOutputs"), key).await;
    assert_eq!(code.unwrap(), StatusCode::ConnKeyInvalid as i32);
    assert_eq!(server.count(key, "PostModelOutputs"), 1);
    server.stop().await;
}

#[tokio::test]
async fn a_timed_out_attempt_is_not_retried_on_a_method_outside_the_list() {
    let server = Running::start().await;
    let policy = fast()
        .attempt_timeout(Duration::from_millis(200))
        .idempotent_methods(["/clarifai.api.V2/Get*"]);
    let key = "code=CONN_KEY_INVALID;fail_times=1;delay_ms=3000;id=post";
    let result = through_call(&server, &policy, Some("PostInputs"), key).await;
    assert_eq!(result.unwrap_err().code(), tonic::Code::DeadlineExceeded);
    assert_eq!(server.count(key, "PostInputs"), 1);
    server.stop().await;
}

/// A half-dead server: accepts TCP connections and never says a word, so no HTTP/2 handshake
/// completes and an attempt hangs until something cuts it.
async fn half_dead() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut open = Vec::new();
        // Bounded: at most 16 connections are held; the task is aborted by the test.
        while open.len() < 16 {
            match listener.accept().await {
                Ok((socket, _)) => open.push(socket),
                Err(_) => break,
            }
        }
        std::future::pending::<()>().await;
    });
    (addr, task)
}

#[tokio::test]
async fn the_layer_cuts_each_hung_attempt_and_gives_up_with_deadline_exceeded() {
    let (addr, server) = half_dead().await;
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    let policy = fast()
        .max_attempts(3)
        .attempt_timeout(Duration::from_millis(100));
    let channel = ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .service(channel);
    let mut client = tonic::client::Grpc::new(channel);
    // A liveness bound only: without the attempt timeout the call never ends.
    let result = tokio::time::timeout(Duration::from_secs(20), async {
        client.ready().await.unwrap();
        client
            .unary(
                tonic::Request::new(AnyRequest::default()),
                path("GetModel"),
                Codec::default(),
            )
            .await
    })
    .await
    .expect("the attempt timeout ends the call");
    assert_eq!(result.unwrap_err().code(), tonic::Code::DeadlineExceeded);
    server.abort();
}
