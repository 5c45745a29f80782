//! `ErrorToInBodyLayer` over a real tonic server and client on 127.0.0.1: gRPC errors reach the
//! client as gRPC OK with a status-only message, Clarifai's way (unary and after a stream);
//! successes and other services pass unchanged; arbitrary error headers never panic.
#![cfg(feature = "server")]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use clarifai_status::grpc::ErrorBuilder;
use clarifai_status::mapping::fallback_from_grpc;
use clarifai_status::pb::{BaseResponse, RedirectInfo, Status};
use clarifai_status::server::{error_to_in_body::ErrorToInBodyLayer, status::StatusLayer};
use clarifai_status::{Code, Outcome, StatusCode};
use clarifai_status_testing::pb::status_tester_client::StatusTesterClient;
use clarifai_status_testing::pb::status_tester_server::{StatusTester, StatusTesterServer};
use clarifai_status_testing::pb::{RaiseRequest, RaiseResponse};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use prost::Message;
use tokio::net::TcpListener;
use tonic::codegen::{http, BoxFuture, Service};
use tonic::server::NamedService;
use tonic::transport::{Channel, Server};
use tower::{Layer, ServiceExt};

const TESTER: &str = "clarifai.status.testing.v1.StatusTester";

/// Answers `Raise` as a Rust service would, with `Err(tonic::Status)` for a failure:
/// - key "plain": `tonic::Status::not_found("no such model")`, no Clarifai code;
/// - otherwise the requested status per the wire contract (private fields and all, as a careless
///   handler would pass them), with `retry_after_ms` as its retry delay.
///
/// With `fail_times` N, the first N calls with the same key fail and later ones succeed.
/// Success and in-progress answer the status with `attempt` (the call's number with this key, at
/// least 1), a field a status-only message lacks, so an untouched success is told apart from one
/// the layer built.
#[derive(Debug, Default)]
struct Handler {
    calls: Mutex<HashMap<String, u32>>,
}

#[tonic::async_trait]
impl StatusTester for Handler {
    async fn raise(
        &self,
        request: tonic::Request<RaiseRequest>,
    ) -> Result<tonic::Response<RaiseResponse>, tonic::Status> {
        let request = request.into_inner();
        let attempt = {
            let mut calls = self.calls.lock().unwrap();
            let count = calls.entry(request.key.clone()).or_default();
            *count += 1;
            *count
        };
        let mut status = request.status.unwrap_or_default();
        if request.fail_times > 0 && attempt > request.fail_times {
            status = Status {
                code: StatusCode::Success as i32,
                ..Default::default()
            };
        }
        if Code::new(status.code).outcome() != Outcome::Failure {
            return Ok(tonic::Response::new(RaiseResponse {
                status: Some(status),
                attempt,
            }));
        }
        if request.key == "plain" {
            return Err(tonic::Status::not_found("no such model"));
        }
        let mut error = ErrorBuilder::from_status(&status);
        if request.retry_after_ms > 0 {
            error = error.retry_after(Duration::from_millis(request.retry_after_ms.into()));
        }
        Err(error.build())
    }
}

/// A server-streaming method (`/test.Streamer/Stream`): two SUCCESS messages, then the error the
/// request's status asks for (a plain `UNAVAILABLE` when its `req_id` is "plain").
#[derive(Debug, Clone, Default)]
struct Streamer;

impl NamedService for Streamer {
    const NAME: &'static str = "test.Streamer";
}

type MessageStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<BaseResponse, tonic::Status>> + Send>>;

struct StreamMethod;

impl tonic::server::ServerStreamingService<Status> for StreamMethod {
    type Response = BaseResponse;
    type ResponseStream = MessageStream;
    type Future = BoxFuture<tonic::Response<MessageStream>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<Status>) -> Self::Future {
        let status = request.into_inner();
        let error = if status.req_id == "plain" {
            tonic::Status::unavailable("stream broke")
        } else {
            ErrorBuilder::from_status(&status)
                .retry_after(Duration::from_millis(250))
                .build()
        };
        let message = |n: u32| BaseResponse {
            status: Some(Status {
                code: StatusCode::Success as i32,
                percent_completed: n,
                ..Default::default()
            }),
        };
        let items: MessageStream = Box::pin(tokio_stream::iter(vec![
            Ok(message(1)),
            Ok(message(2)),
            Err(error),
        ]));
        Box::pin(async move { Ok(tonic::Response::new(items)) })
    }
}

impl<B> Service<http::Request<B>> for Streamer
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(
                tonic_prost::ProstCodec::<BaseResponse, Status>::default(),
            );
            Ok(grpc.server_streaming(StreamMethod, request).await)
        })
    }
}

async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// How the server under test stacks its layers.
#[derive(Clone, Copy)]
enum Stack {
    /// `ErrorToInBodyLayer` outside `StatusLayer`, as the docs advise.
    Advised,
    /// `ErrorToInBodyLayer` inside `StatusLayer`.
    Reversed,
    /// `ErrorToInBodyLayer` alone.
    Alone,
}

/// Serves `Handler` and `Streamer` behind `layer`, stacked as `stack` says.
async fn serve(layer: ErrorToInBodyLayer, stack: Stack) -> Channel {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tokio::spawn(async move {
        let builder = Server::builder();
        match stack {
            Stack::Advised => {
                builder
                    .layer(layer)
                    .layer(StatusLayer::new())
                    .add_service(StatusTesterServer::new(Handler::default()))
                    .add_service(Streamer)
                    .serve_with_incoming(incoming)
                    .await
            }
            Stack::Reversed => {
                builder
                    .layer(StatusLayer::new())
                    .layer(layer)
                    .add_service(StatusTesterServer::new(Handler::default()))
                    .add_service(Streamer)
                    .serve_with_incoming(incoming)
                    .await
            }
            Stack::Alone => {
                builder
                    .layer(layer)
                    .add_service(StatusTesterServer::new(Handler::default()))
                    .add_service(Streamer)
                    .serve_with_incoming(incoming)
                    .await
            }
        }
    });
    channel(addr).await
}

async fn client(stack: Stack) -> StatusTesterClient<Channel> {
    StatusTesterClient::new(serve(ErrorToInBodyLayer::new(), stack).await)
}

fn raise(status: Status, key: &str) -> RaiseRequest {
    RaiseRequest {
        status: Some(status),
        key: key.into(),
        ..Default::default()
    }
}

fn code_only(code: impl Into<Code>) -> Status {
    Status {
        code: code.into().number(),
        ..Default::default()
    }
}

/// None of the headers that make a response an error, nor `clarifai-status-code`.
fn assert_no_error_headers(metadata: &tonic::metadata::MetadataMap) {
    for name in [
        "grpc-message",
        "grpc-status-details-bin",
        "clarifai-status-code",
    ] {
        assert!(metadata.get(name).is_none(), "{name} in {metadata:?}");
    }
}

#[tokio::test]
async fn unary_error_answers_ok_with_its_public_fields_in_body_and_no_private_ones() {
    let mut client = client(Stack::Advised).await;
    let sent = Status {
        code: StatusCode::ConnThrottled as i32,
        description: "slow down".into(),
        details: "per-key limit".into(),
        req_id: "req-42".into(),
        percent_completed: 30,
        time_remaining: 9,
        developer_notes: "see the quota page".into(),
        http_status_code: 429,
        stack_trace: vec!["PRIVATE frame".into()],
        internal_details: "PRIVATE details".into(),
        redirect_info: Some(RedirectInfo {
            url: "https://private.example".into(),
            ..Default::default()
        }),
    };
    let response = client.raise(raise(sent.clone(), "")).await.unwrap();
    assert_no_error_headers(response.metadata());
    let answer = response.into_inner();
    assert_eq!(answer.attempt, 0, "a status-only message");
    let expected = Status {
        stack_trace: Vec::new(),
        internal_details: String::new(),
        redirect_info: None,
        ..sent
    };
    assert_eq!(answer.status, Some(expected));
}

#[tokio::test]
async fn plain_not_found_answers_its_fallback_code_in_body() {
    let mut client = client(Stack::Advised).await;
    let failure = code_only(StatusCode::ModelDoesNotExist);
    let answer = client.raise(raise(failure, "plain")).await.unwrap();
    let status = answer.into_inner().status.unwrap();
    let fallback = fallback_from_grpc(tonic::Code::NotFound);
    assert_eq!(status.code, fallback as i32);
    assert_eq!(status.code, StatusCode::ConnDoesNotExist as i32);
    assert_eq!(status.description, "no such model");
}

#[tokio::test]
async fn every_failure_code_and_an_unknown_one_arrive_in_body_unchanged() {
    let mut client = client(Stack::Advised).await;
    let failures = StatusCode::all()
        .map(Code::from)
        .filter(|code| code.outcome() == Outcome::Failure);
    for code in failures.chain([Code::new(77777)]) {
        let status = Status {
            req_id: "req-1".into(),
            ..code_only(code)
        };
        let answer = client.raise(raise(status, "")).await;
        let status = answer.unwrap().into_inner().status.unwrap();
        assert_eq!(status.code, code.number(), "{code:?}");
        assert_eq!(status.description, code.description(), "{code:?}");
        assert_eq!(status.req_id, "req-1", "{code:?}");
    }
}

#[tokio::test]
async fn unknown_code_77777_is_kept_in_body() {
    let mut client = client(Stack::Alone).await;
    let answer = client.raise(raise(code_only(Code::new(77777)), "")).await;
    let status = answer.unwrap().into_inner().status.unwrap();
    assert_eq!(status.code, 77777);
    assert_eq!(status.description, Code::new(77777).description());
}

#[tokio::test]
async fn success_and_in_progress_pass_untouched() {
    let mut client = client(Stack::Advised).await;
    for code in [StatusCode::Success, StatusCode::ModelTraining] {
        let status = Status {
            details: "as sent".into(),
            ..code_only(code)
        };
        let answer = client
            .raise(raise(status.clone(), code.name()))
            .await
            .unwrap();
        let answer = answer.into_inner();
        assert_eq!(answer.attempt, 1, "the handler's own message");
        assert_eq!(answer.status, Some(status));
    }
}

#[tokio::test]
async fn pushback_is_kept_as_grpc_retry_pushback_ms_on_the_ok_answer() {
    let mut client = client(Stack::Advised).await;
    let request = RaiseRequest {
        retry_after_ms: 250,
        ..raise(code_only(StatusCode::ModelBusyPleaseRetry), "")
    };
    let response = client.raise(request).await.unwrap();
    assert_eq!(
        response.metadata().get("grpc-retry-pushback-ms").unwrap(),
        "250"
    );
    assert_no_error_headers(response.metadata());
    assert_eq!(response.into_inner().status.unwrap().code, 21354);
}

#[cfg(feature = "retry")]
#[tokio::test]
async fn retry_call_retries_the_in_body_answer_after_the_kept_pushback() {
    use clarifai_status::retry::{self, Backoff, Policy};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    let client = client(Stack::Advised).await;
    // A backoff far below the pushback: the waits measure the pushback.
    let policy = Policy::new().no_budget().backoff(Backoff::new(
        Duration::from_millis(1),
        Duration::from_millis(1),
    ));
    let request = RaiseRequest {
        fail_times: 2,
        retry_after_ms: 200,
        ..raise(code_only(StatusCode::ModelBusyPleaseRetry), "retried")
    };
    let in_body_failures = Arc::new(AtomicU32::new(0));
    let started = Instant::now();
    let response = retry::call(&policy, || {
        let (mut client, request) = (client.clone(), request.clone());
        let in_body_failures = in_body_failures.clone();
        async move {
            let answer = client.raise(request).await?;
            if answer.get_ref().status.as_ref().unwrap().code != StatusCode::Success as i32 {
                in_body_failures.fetch_add(1, Ordering::Relaxed);
            }
            Ok(answer)
        }
    })
    .await
    .unwrap();
    let answer = response.into_inner();
    assert_eq!(answer.status.unwrap().code, StatusCode::Success as i32);
    assert_eq!(answer.attempt, 3);
    assert_eq!(in_body_failures.load(Ordering::Relaxed), 2);
    // Over the socket the clock is real: a lower bound only (the waits happened); the exact
    // waits are checked in virtual time by `retry_call_waits_exactly_the_kept_pushback`.
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
}

/// `retry_call_retries_the_in_body_answer_after_the_kept_pushback` against the same stack
/// (`ErrorToInBodyLayer` outside `StatusLayer`) in process, under the paused clock: the handler
/// answers at once, so virtual time is exactly the two kept 200 ms pushbacks. (Over a socket
/// the clock cannot be paused: tokio would advance it while waiting on I/O.)
#[cfg(feature = "retry")]
#[tokio::test(start_paused = true)]
async fn retry_call_waits_exactly_the_kept_pushback() {
    use clarifai_status::retry::{self, Backoff, Policy};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    let stack = ErrorToInBodyLayer::new()
        .layer(StatusLayer::new().layer(StatusTesterServer::new(Handler::default())));
    let client = StatusTesterClient::new(stack);
    // A backoff far below the pushback: the waits measure the pushback.
    let policy = Policy::new().no_budget().backoff(Backoff::new(
        Duration::from_millis(1),
        Duration::from_millis(1),
    ));
    let request = RaiseRequest {
        fail_times: 2,
        retry_after_ms: 200,
        ..raise(code_only(StatusCode::ModelBusyPleaseRetry), "retried")
    };
    let in_body_failures = Arc::new(AtomicU32::new(0));
    let started = tokio::time::Instant::now();
    let response = retry::call(&policy, || {
        let (mut client, request) = (client.clone(), request.clone());
        let in_body_failures = in_body_failures.clone();
        async move {
            let answer = client.raise(request).await?;
            if answer.get_ref().status.as_ref().unwrap().code != StatusCode::Success as i32 {
                in_body_failures.fetch_add(1, Ordering::Relaxed);
            }
            Ok(answer)
        }
    })
    .await
    .unwrap();
    assert_eq!(started.elapsed(), Duration::from_millis(400));
    let answer = response.into_inner();
    assert_eq!(answer.status.unwrap().code, StatusCode::Success as i32);
    assert_eq!(answer.attempt, 3);
    assert_eq!(in_body_failures.load(Ordering::Relaxed), 2);
}

/// Calls `/test.Streamer/Stream` and reads the whole stream: its messages, then its end.
async fn stream(
    channel: Channel,
    request: Status,
) -> (Vec<BaseResponse>, tonic::metadata::MetadataMap) {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static("/test.Streamer/Stream");
    let codec = tonic_prost::ProstCodec::<Status, BaseResponse>::default();
    let mut stream = grpc
        .server_streaming(tonic::Request::new(request), path, codec)
        .await
        .unwrap()
        .into_inner();
    let mut messages = Vec::new();
    while let Some(message) = stream.message().await.expect("no gRPC error") {
        messages.push(message);
    }
    let trailers = stream.trailers().await.unwrap().unwrap_or_default();
    (messages, trailers)
}

#[tokio::test]
async fn stream_that_fails_after_two_messages_answers_three_then_ok() {
    let channel = serve(ErrorToInBodyLayer::new(), Stack::Advised).await;
    let failure = Status {
        req_id: "req-s".into(),
        internal_details: "PRIVATE".into(),
        ..code_only(StatusCode::ModelBusyPleaseRetry)
    };
    let (messages, trailers) = stream(channel, failure).await;
    let statuses: Vec<Status> = messages.into_iter().map(|m| m.status.unwrap()).collect();
    assert_eq!(statuses.len(), 3);
    assert_eq!(statuses[0].percent_completed, 1);
    assert_eq!(statuses[1].percent_completed, 2);
    let last = &statuses[2];
    assert_eq!(last.code, 21354);
    assert_eq!(last.req_id, "req-s");
    assert_eq!(
        last.description,
        StatusCode::ModelBusyPleaseRetry.description()
    );
    assert_eq!(last.internal_details, "");
    assert_no_error_headers(&trailers);
    assert_eq!(trailers.get("grpc-retry-pushback-ms").unwrap(), "250");
}

#[tokio::test]
async fn plain_stream_error_answers_its_fallback_code_as_the_last_message() {
    let channel = serve(ErrorToInBodyLayer::new(), Stack::Alone).await;
    let (messages, _) = stream(
        channel,
        Status {
            req_id: "plain".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(messages.len(), 3);
    let last = messages[2].status.as_ref().unwrap();
    assert_eq!(
        last.code,
        fallback_from_grpc(tonic::Code::Unavailable) as i32
    );
    assert_eq!(last.description, "stream broke");
}

#[tokio::test]
async fn order_relative_to_status_layer_does_not_change_the_answer() {
    let mut answers = Vec::new();
    for stack in [Stack::Advised, Stack::Reversed, Stack::Alone] {
        let mut client = client(stack).await;
        let plain = client.raise(raise(code_only(21200), "plain")).await;
        let coded = client.raise(raise(code_only(11008), "")).await;
        answers.push((
            plain.unwrap().into_inner().status.unwrap(),
            coded.unwrap().into_inner().status.unwrap(),
        ));
    }
    assert_eq!(answers[0].0.code, StatusCode::ConnDoesNotExist as i32);
    assert_eq!(answers[0].1.code, StatusCode::ConnKeyInvalid as i32);
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0], answers[2]);
}

#[tokio::test]
async fn only_services_leaves_other_services_errors_as_grpc_errors() {
    let elsewhere = ErrorToInBodyLayer::new().only_services(["clarifai.api.V2"]);
    let mut client = StatusTesterClient::new(serve(elsewhere, Stack::Advised).await);
    let error = client
        .raise(raise(code_only(StatusCode::ConnKeyInvalid), ""))
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::Unauthenticated);

    let here = ErrorToInBodyLayer::new().only_services(["clarifai.api.V2", TESTER]);
    let mut client = StatusTesterClient::new(serve(here, Stack::Advised).await);
    let answer = client
        .raise(raise(code_only(StatusCode::ConnKeyInvalid), ""))
        .await
        .unwrap();
    assert_eq!(answer.into_inner().status.unwrap().code, 11008);
}

#[tokio::test]
async fn an_unknown_method_is_answered_in_body_too() {
    let channel = serve(ErrorToInBodyLayer::new(), Stack::Advised).await;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static("/clarifai.api.V2/NoSuchMethod");
    let codec = tonic_prost::ProstCodec::<Status, BaseResponse>::default();
    let answer = grpc
        .unary(tonic::Request::new(Status::default()), path, codec)
        .await
        .unwrap();
    let status = answer.into_inner().status.unwrap();
    assert_eq!(
        status.code,
        fallback_from_grpc(tonic::Code::Unimplemented) as i32
    );
}

// Arbitrary error headers, straight through the layer as a tower service.

/// The gRPC messages of a body: (compressed flag, bytes); `None` if the framing is broken.
fn messages(mut bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        if bytes.len() < 5 {
            return None;
        }
        let len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
        let rest = &bytes[5..];
        if rest.len() < len {
            return None;
        }
        out.push(rest[..len].to_vec());
        bytes = &rest[len..];
    }
    Some(out)
}

type TestBody =
    StreamBody<tokio_stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

/// A gRPC response: `headers` (Trailers-Only when `trailers_only`), else one message and then
/// `headers` as trailers.
fn response(headers: http::HeaderMap, trailers_only: bool) -> http::Response<TestBody> {
    let mut frames = Vec::new();
    let mut builder = http::Response::builder().header("content-type", "application/grpc");
    if trailers_only {
        for (name, value) in &headers {
            builder = builder.header(name, value);
        }
    } else {
        let message = BaseResponse {
            status: Some(code_only(StatusCode::Success)),
        }
        .encode_to_vec();
        let mut framed = vec![0];
        framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
        framed.extend_from_slice(&message);
        frames.push(Ok(Frame::data(Bytes::from(framed))));
        frames.push(Ok(Frame::trailers(headers)));
    }
    builder
        .body(StreamBody::new(tokio_stream::iter(frames)))
        .unwrap()
}

fn header_strategy() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..24),
        "[0-9 -]{0,12}".prop_map(String::into_bytes),
        "[A-Za-z0-9+/=]{0,40}".prop_map(String::into_bytes),
    ]
}

proptest::proptest! {
    /// Any values of the error headers, Trailers-Only or after a message: no panic; an error
    /// becomes OK with one more decodable status-only message; anything else passes unchanged.
    #[test]
    fn arbitrary_error_headers_never_panic(
        grpc_status in header_strategy(),
        message in header_strategy(),
        details in header_strategy(),
        code in header_strategy(),
        pushback in header_strategy(),
        trailers_only in proptest::bool::ANY,
    ) {
        let mut headers = http::HeaderMap::new();
        for (name, value) in [
            ("grpc-status", &grpc_status),
            ("grpc-message", &message),
            ("grpc-status-details-bin", &details),
            ("clarifai-status-code", &code),
            ("grpc-retry-pushback-ms", &pushback),
        ] {
            if let Ok(value) = http::HeaderValue::from_bytes(value) {
                headers.insert(name, value);
            }
        }
        let is_error = clarifai_status::grpc::read_grpc_code(&headers) != Some(tonic::Code::Ok)
            && headers.contains_key("grpc-status");
        let sent = headers.clone();
        let service = tower::service_fn(move |_: http::Request<()>| {
            let response = response(sent.clone(), trailers_only);
            async move { Ok::<_, Infallible>(response) }
        });
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let answered = runtime.block_on(async {
            let response = ErrorToInBodyLayer::new().layer(service).oneshot(http::Request::new(())).await.unwrap();
            let (parts, body) = response.into_parts();
            (parts, body.collect().await.unwrap())
        });
        let (parts, body) = answered;
        let trailers = body.trailers().cloned().unwrap_or_default();
        let received = messages(&body.to_bytes()).expect("well framed");
        // Where the call's status ends up: the headers of a Trailers-Only response, else the
        // trailers.
        let end = if trailers_only && !is_error { &parts.headers } else { &trailers };
        let stripped = if trailers_only { &parts.headers } else { &trailers };
        let sent_messages = usize::from(!trailers_only);
        if is_error {
            proptest::prop_assert_eq!(received.len(), sent_messages + 1);
            let last = BaseResponse::decode(received.last().unwrap().as_slice()).unwrap();
            proptest::prop_assert!(last.status.is_some());
            proptest::prop_assert_eq!(&end["grpc-status"], "0");
            proptest::prop_assert!(!stripped.contains_key("clarifai-status-code"));
            proptest::prop_assert!(!stripped.contains_key("grpc-message"));
            proptest::prop_assert!(!stripped.contains_key("grpc-status-details-bin"));
        } else {
            proptest::prop_assert_eq!(received.len(), sent_messages);
            for (name, value) in &headers {
                proptest::prop_assert_eq!(end.get(name), Some(value));
            }
        }
    }
}

#[tokio::test]
async fn a_trailers_only_answer_has_an_exact_size_hint() {
    let mut headers = http::HeaderMap::new();
    headers.insert("grpc-status", "5".parse().unwrap());
    headers.insert("grpc-message", "no%20such%20model".parse().unwrap());
    let service = tower::service_fn(move |_: http::Request<()>| {
        let response = response(headers.clone(), true);
        async move { Ok::<_, Infallible>(response) }
    });
    let response = ErrorToInBodyLayer::new()
        .layer(service)
        .oneshot(http::Request::new(()))
        .await
        .unwrap();
    let hint = http_body::Body::size_hint(response.body()).exact();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(hint, Some(bytes.len() as u64));
    let status = BaseResponse::decode(&bytes[5..]).unwrap().status.unwrap();
    assert_eq!(status.description, "no such model");
}

/// The crate's `Tester` service behind the layer, or bare.
async fn tester(layered: bool) -> StatusTesterClient<Channel> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let service = clarifai_status_testing::Tester::new().into_server();
    tokio::spawn(async move {
        if layered {
            Server::builder()
                .layer(ErrorToInBodyLayer::new())
                .layer(StatusLayer::new())
                .add_service(service)
                .serve_with_incoming(incoming)
                .await
        } else {
            Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming)
                .await
        }
    });
    StatusTesterClient::new(channel(addr).await)
}

#[tokio::test]
async fn a_grpc_error_through_the_layer_equals_the_testers_own_in_body_answer() {
    let mut layered = tester(true).await;
    let mut bare = tester(false).await;
    let failures = StatusCode::all()
        .map(Code::from)
        .filter(|code| code.outcome() == Outcome::Failure);
    for code in failures.chain([Code::new(77777)]) {
        let status = Status {
            description: "what went wrong".into(),
            details: "more".into(),
            req_id: "req-t".into(),
            internal_details: "PRIVATE".into(),
            ..code_only(code)
        };
        let request = |in_body: bool| RaiseRequest {
            in_body,
            key: format!("{}-{in_body}", code.number()),
            ..raise(status.clone(), "")
        };
        let through_layer = layered.raise(request(false)).await.unwrap().into_inner();
        let in_body = bare.raise(request(true)).await.unwrap().into_inner();
        assert_eq!(through_layer.status, in_body.status, "{code:?}");
        assert_eq!(through_layer.status.unwrap().internal_details, "");
    }
}

#[tokio::test]
async fn an_interceptor_rejection_is_answered_in_body_with_its_code() {
    use clarifai_status::grpc::ClarifaiStatusExt;
    use clarifai_status::server::{ApiKeyAuth, StaticKeys};

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let auth = ApiKeyAuth::new(StaticKeys::new(["s3cret"]));
    let service = StatusTesterServer::with_interceptor(Handler::default(), auth);
    tokio::spawn(
        Server::builder()
            .layer(ErrorToInBodyLayer::new())
            .layer(StatusLayer::new())
            .add_service(service)
            .serve_with_incoming(incoming),
    );
    let mut client = StatusTesterClient::new(channel(addr).await);
    let mut request = tonic::Request::new(raise(code_only(StatusCode::Success), "auth"));
    request
        .metadata_mut()
        .insert("authorization", "Key wrong".parse().unwrap());
    let answer = client.raise(request).await.unwrap().into_inner();
    let status = answer.status.unwrap();

    // The code the interceptor rejects with, as a bare server sends it.
    let auth = ApiKeyAuth::new(StaticKeys::new(["s3cret"]));
    let mut bare = tonic::Request::new(());
    bare.metadata_mut()
        .insert("authorization", "Key wrong".parse().unwrap());
    let rejection = tonic::service::Interceptor::call(&mut { auth }, bare).unwrap_err();
    assert_eq!(status.code, rejection.clarifai_code().number());
    assert_eq!(Code::new(status.code).outcome(), Outcome::Failure);
    assert_eq!(answer.attempt, 0, "the handler never ran");
}
