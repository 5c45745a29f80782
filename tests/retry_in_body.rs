//! `RetryLayer` reading Clarifai's in-body answers (issue 22): an OK response whose first message
//! carries a failure `status`, against tower mocks. What it retries, what it passes on (the same
//! bytes), what it never waits on, and that one policy decides as for gRPC errors.
//!
//! Everything driven by time runs on tokio's paused clock.
#![cfg(feature = "retry")]

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use clarifai_status::grpc::{ClarifaiStatusExt as _, LOCAL_FAILURE};
use clarifai_status::pb::{BaseResponse, Status};
use clarifai_status::retry::{
    self, Backoff, BoxError, Budget, Policy, Retry, RetryLayer, SendOnce,
};
use clarifai_status::StatusCode;
use http_body::Frame;
use http_body_util::BodyExt as _;
use prost::Message as _;
use tonic::body::Body;
use tower::util::BoxCloneService;
use tower::{Service, ServiceBuilder, ServiceExt};

type Req = http::Request<Body>;
type Res = http::Response<Body>;
type Mock = BoxCloneService<Req, Res, BoxError>;

const PATH: &str = "/clarifai.api.V2/PostModelOutputs";

/// A framed, uncompressed status-only message (a `BaseResponse`), as every Clarifai response
/// type decodes it.
fn message(code: i32) -> Bytes {
    let bytes = BaseResponse {
        status: Some(Status {
            code,
            description: format!("code {code}"),
            req_id: "req-1".into(),
            ..Default::default()
        }),
    }
    .encode_to_vec();
    let mut framed = vec![0];
    framed.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    framed.extend_from_slice(&bytes);
    framed.into()
}

fn trailers(status: &str) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    map.insert("grpc-status", status.parse().unwrap());
    map
}

/// A body yielding these frames, then (when `silent`) never ending.
struct Frames {
    frames: VecDeque<Frame<Bytes>>,
    silent: bool,
}

impl http_body::Body for Frames {
    type Data = Bytes;
    type Error = tonic::Status;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        match self.frames.pop_front() {
            Some(frame) => Poll::Ready(Some(Ok(frame))),
            None if self.silent => Poll::Pending,
            None => Poll::Ready(None),
        }
    }
}

/// How the mock answers one attempt.
#[derive(Clone)]
struct Answer {
    headers: Vec<(&'static str, &'static str)>,
    /// Data frames, then `grpc-status` trailers (when `trailer` is set), or silence.
    data: Vec<Bytes>,
    trailer: Option<&'static str>,
}

/// HTTP 200 and one message with this code, then `grpc-status: 0`: how Clarifai answers.
fn in_body(code: impl Into<i32>) -> Answer {
    Answer {
        headers: vec![],
        data: vec![message(code.into())],
        trailer: Some("0"),
    }
}

fn with_headers(mut answer: Answer, headers: &[(&'static str, &'static str)]) -> Answer {
    answer.headers.extend_from_slice(headers);
    answer
}

fn unavailable() -> Answer {
    Answer {
        headers: vec![("grpc-status", "14")],
        data: vec![],
        trailer: None,
    }
}

fn respond(answer: Answer) -> Res {
    let mut frames: VecDeque<Frame<Bytes>> = answer.data.into_iter().map(Frame::data).collect();
    if let Some(status) = answer.trailer {
        frames.push_back(Frame::trailers(trailers(status)));
    }
    let trailers_only = answer.headers.iter().any(|(k, _)| *k == "grpc-status");
    let body = if trailers_only {
        Body::empty()
    } else {
        Body::new(Frames {
            frames,
            silent: answer.trailer.is_none(),
        })
    };
    let mut response = http::Response::new(body);
    response
        .headers_mut()
        .insert("content-type", "application/grpc".parse().unwrap());
    for (name, value) in answer.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

/// A server answering attempt `i` with `script[i]` (the last repeats); counts attempts.
fn mock(script: Vec<Answer>) -> (Mock, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    let script = Arc::new(script);
    let svc = tower::service_fn(move |request: Req| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        let answer = script[n.min(script.len() - 1)].clone();
        async move {
            // The request is read whole, as a server does.
            request.into_body().collect().await?;
            Ok::<_, BoxError>(respond(answer))
        }
    });
    (BoxCloneService::new(svc), count)
}

fn fast() -> Policy {
    Policy::new().backoff(Backoff::new(
        Duration::from_millis(1),
        Duration::from_millis(2),
    ))
}

fn request_to(path: &str) -> Req {
    let body = Bytes::from_static(b"\0\0\0\0\x00");
    let mut request = http::Request::new(Body::new(http_body_util::Full::new(body)));
    *request.uri_mut() = format!("http://mock{path}").parse().unwrap();
    request
}

async fn send<S>(svc: &mut S, request: Req) -> Result<Res, BoxError>
where
    S: Service<Req, Response = Res, Error = BoxError>,
{
    svc.ready().await?.call(request).await
}

/// The data and trailers of a response body, as the caller reads them.
async fn read(response: Res) -> (Vec<Bytes>, Option<http::HeaderMap>) {
    let mut body = response.into_body();
    let (mut data, mut trailers) = (Vec::new(), None);
    while let Some(frame) = body.frame().await {
        let frame = frame.unwrap();
        match frame.into_data() {
            Ok(bytes) => data.push(bytes),
            Err(frame) => trailers = frame.into_trailers().ok(),
        }
    }
    (data, trailers)
}

fn layered(policy: Policy, script: Vec<Answer>) -> (Retry<Mock>, Arc<AtomicUsize>) {
    let (svc, count) = mock(script);
    (Retry::new(svc, policy), count)
}

#[tokio::test(start_paused = true)]
async fn retries_an_in_body_busy_answer_and_passes_the_answer_on_untouched() {
    let busy = in_body(StatusCode::ModelBusyPleaseRetry);
    let ok = in_body(StatusCode::Success);
    let (mut svc, count) = layered(fast(), vec![busy.clone(), busy, ok]);
    let response = send(&mut svc, request_to(PATH)).await.unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 3);
    let (data, trailers) = read(response).await;
    // The same frame, byte for byte, then the trailers.
    assert_eq!(data, vec![message(StatusCode::Success as i32)]);
    assert_eq!(trailers.unwrap()["grpc-status"], "0");
}

#[tokio::test(start_paused = true)]
async fn answers_a_non_retryable_in_body_failure_at_once() {
    let (mut svc, count) = layered(fast(), vec![in_body(StatusCode::ConnKeyInvalid)]);
    let response = send(&mut svc, request_to(PATH)).await.unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 1);
    let (data, _) = read(response).await;
    assert_eq!(data, vec![message(StatusCode::ConnKeyInvalid as i32)]);
}

#[tokio::test(start_paused = true)]
async fn the_last_in_body_failure_is_passed_on_as_it_came() {
    let busy = in_body(StatusCode::ModelBusyPleaseRetry);
    let (mut svc, count) = layered(fast().max_attempts(3), vec![busy]);
    let response = send(&mut svc, request_to(PATH)).await.unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 3);
    let (data, trailers) = read(response).await;
    assert_eq!(data, vec![message(StatusCode::ModelBusyPleaseRetry as i32)]);
    assert_eq!(trailers.unwrap()["grpc-status"], "0");
}

#[tokio::test(start_paused = true)]
async fn success_and_in_progress_commit_at_once() {
    for code in [StatusCode::Success, StatusCode::ModelTraining] {
        let (mut svc, count) = layered(fast(), vec![in_body(code)]);
        let response = send(&mut svc, request_to(PATH)).await.unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 1, "{code:?}");
        assert_eq!(read(response).await.0, vec![message(code as i32)]);
    }
}

// Paused clock: the pushback is the only virtual time passing.
#[tokio::test(start_paused = true)]
async fn honours_pushback_sent_with_an_in_body_answer() {
    // As `ErrorToInBodyLayer` answers an error carrying `RetryInfo`: the delay in the headers.
    let busy = with_headers(
        in_body(StatusCode::ModelBusyPleaseRetry),
        &[("grpc-retry-pushback-ms", "250")],
    );
    let (mut svc, count) = layered(fast(), vec![busy, in_body(StatusCode::Success)]);
    let start = tokio::time::Instant::now();
    send(&mut svc, request_to(PATH)).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(250));
    assert_eq!(count.load(Ordering::SeqCst), 2);

    let stop = with_headers(
        in_body(StatusCode::ModelBusyPleaseRetry),
        &[("grpc-retry-pushback-ms", "-1")],
    );
    let (mut svc, count) = layered(fast(), vec![stop, in_body(StatusCode::Success)]);
    let response = send(&mut svc, request_to(PATH)).await.unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(
        read(response).await.0,
        vec![message(StatusCode::ModelBusyPleaseRetry as i32)]
    );
}

#[tokio::test(start_paused = true)]
async fn in_body_failures_and_grpc_errors_draw_on_one_budget() {
    // 10 tokens, no retry at 5 or fewer: 4 retryable failures of either kind leave 6 (retried),
    // the 5th leaves 5 (not retried).
    let budget = Arc::new(Budget::new(10, 0.1).unwrap());
    let policy = fast().max_attempts(10).budget(budget.clone());
    let busy = in_body(StatusCode::ModelBusyPleaseRetry);
    let script = vec![
        busy.clone(),
        busy,
        unavailable(),
        unavailable(),
        unavailable(),
    ];
    let (mut svc, count) = layered(policy, script);
    let response = send(&mut svc, request_to(PATH)).await.unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 5);
    assert_eq!(response.headers()["grpc-status"], "14");
    assert_eq!(budget.tokens(), 5.0);
    // The budget stops in-body retries alike: the next busy answer is not retried.
    let policy = fast().max_attempts(10).budget(budget.clone());
    let (mut svc, count) = layered(policy, vec![in_body(StatusCode::ModelBusyPleaseRetry)]);
    send(&mut svc, request_to(PATH)).await.unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 1);
    // A success earns: the in-body success counts as one.
    let policy = fast().budget(budget.clone());
    let (mut svc, _) = layered(policy, vec![in_body(StatusCode::Success)]);
    send(&mut svc, request_to(PATH)).await.unwrap();
    assert_eq!(budget.tokens(), 4.1);
}

#[tokio::test(start_paused = true)]
async fn an_in_body_failure_of_unknown_effect_follows_the_idempotent_methods() {
    let policy = || fast().idempotent_methods(["/clarifai.api.V2/Get*"]);
    // RPC_SERVER_UNAVAILABLE: retryable, may have taken effect; not on a POST.
    let unknown = in_body(StatusCode::RpcServerUnavailable);
    let (mut svc, count) = layered(policy(), vec![unknown.clone(), in_body(10000)]);
    send(&mut svc, request_to(PATH)).await.unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 1);
    let (mut svc, count) = layered(policy(), vec![unknown, in_body(10000)]);
    send(&mut svc, request_to("/clarifai.api.V2/GetModel"))
        .await
        .unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 2);
    // A busy model refused the request: retried on every method.
    let busy = in_body(StatusCode::ModelBusyPleaseRetry);
    let (mut svc, count) = layered(policy(), vec![busy, in_body(10000)]);
    send(&mut svc, request_to(PATH)).await.unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_server_stream_failing_after_its_first_message_is_not_replayed() {
    let stream = Answer {
        headers: vec![],
        data: vec![message(10000), message(10000)],
        trailer: Some("14"),
    };
    let (mut svc, count) = layered(fast(), vec![stream, in_body(10000)]);
    let response = send(
        &mut svc,
        request_to("/clarifai.api.V2/GenerateModelOutputs"),
    )
    .await
    .unwrap();
    let (data, trailers) = read(response).await;
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(data, vec![message(10000), message(10000)]);
    assert_eq!(trailers.unwrap()["grpc-status"], "14");
}

#[tokio::test(start_paused = true)]
async fn a_server_stream_whose_first_message_is_busy_is_retried() {
    let busy = Answer {
        headers: vec![],
        data: vec![message(StatusCode::ModelBusyPleaseRetry as i32)],
        trailer: Some("0"),
    };
    let stream = Answer {
        headers: vec![],
        data: vec![message(10000), message(10000)],
        trailer: Some("0"),
    };
    let (mut svc, count) = layered(fast(), vec![busy, stream]);
    let response = send(
        &mut svc,
        request_to("/clarifai.api.V2/GenerateModelOutputs"),
    )
    .await
    .unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 2);
    assert_eq!(read(response).await.0.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_switch_turns_the_read_off_per_channel_and_per_method() {
    let busy = || vec![in_body(StatusCode::ModelBusyPleaseRetry), in_body(10000)];
    let off = |svc| Retry::new(svc, fast()).in_body(false);
    let (svc, count) = mock(busy());
    send(&mut off(svc), request_to(PATH)).await.unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 1);

    // Off, but on for this method.
    let (svc, count) = mock(busy());
    let mut svc = off(svc).in_body_except([PATH]);
    send(&mut svc, request_to(PATH)).await.unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 2);

    // On (the default), but off for these methods, through the layer.
    let layer = RetryLayer::new(fast()).in_body_except(["/clarifai.api.V2/Post*"]);
    let (svc, count) = mock(busy());
    let mut svc = ServiceBuilder::new().layer(layer.clone()).service(svc);
    send(&mut svc, request_to(PATH)).await.unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 1);
    let (svc, count) = mock(busy());
    let mut svc = ServiceBuilder::new().layer(layer).service(svc);
    send(&mut svc, request_to("/clarifai.api.V2/GetModel"))
        .await
        .unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_compressed_message_is_passed_on_unread() {
    let mut compressed = message(StatusCode::ModelBusyPleaseRetry as i32).to_vec();
    compressed[0] = 1;
    let compressed = Bytes::from(compressed);
    let answer = Answer {
        headers: vec![("grpc-encoding", "gzip")],
        data: vec![compressed.clone()],
        trailer: Some("0"),
    };
    let (mut svc, count) = layered(fast(), vec![answer]);
    let response = send(&mut svc, request_to(PATH)).await.unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(read(response).await.0, vec![compressed]);
}

#[tokio::test(start_paused = true)]
async fn a_message_split_across_frames_is_read_and_passed_on_in_the_same_frames() {
    let whole = message(StatusCode::ModelBusyPleaseRetry as i32);
    let split = Answer {
        headers: vec![],
        data: vec![
            whole.slice(..3),
            Bytes::new(),
            whole.slice(3..9),
            whole.slice(9..),
        ],
        trailer: Some("0"),
    };
    let (mut svc, count) = layered(fast().max_attempts(1), vec![split.clone()]);
    // max_attempts 1: the layer does not retry, and does not read.
    send(&mut svc, request_to(PATH)).await.unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 1);
    let (mut svc, count) = layered(fast().max_attempts(2), vec![split]);
    let response = send(&mut svc, request_to(PATH)).await.unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 2);
    let (data, _) = read(response).await;
    assert_eq!(
        data,
        vec![whole.slice(..3), whole.slice(3..9), whole.slice(9..)]
    );
}

/// A request body fed by a live source: not complete when the call is made.
struct Live(tokio::sync::mpsc::Receiver<Bytes>);

impl http_body::Body for Live {
    type Data = Bytes;
    type Error = tonic::Status;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
    }
}

// Paused clock: the response comes back with no virtual time passing, though no message comes.
#[tokio::test(start_paused = true)]
async fn a_live_stream_gets_its_response_headers_without_waiting_for_a_message() {
    // A bidi server that answers headers, then waits for the client's next message before
    // sending any: the client sends it only once it has the headers.
    let silent = Answer {
        headers: vec![],
        data: vec![],
        trailer: None,
    };
    let (svc, count) = mock(vec![silent]);
    let svc = tower::service_fn(move |request: Req| {
        // Answer without reading the request: it is still open.
        let mut svc = svc.clone();
        async move {
            let (parts, _) = request.into_parts();
            let request = http::Request::from_parts(parts, Body::empty());
            svc.ready().await?.call(request).await
        }
    });
    let mut svc = Retry::new(BoxCloneService::new(svc), fast());
    let (_tx, rx) = tokio::sync::mpsc::channel(1);
    let mut request = request_to("/clarifai.api.V2/StreamModelOutputs");
    *request.body_mut() = Body::new(Live(rx));
    let start = tokio::time::Instant::now();
    let response = send(&mut svc, request).await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(response.status(), 200);
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

/// A tonic client over the mock, decoding `BaseResponse`.
async fn unary<S>(
    grpc: &mut tonic::client::Grpc<S>,
) -> Result<tonic::Response<BaseResponse>, tonic::Status>
where
    S: tonic::client::GrpcService<Body>,
    S::Error: Into<BoxError>,
    S::ResponseBody: http_body::Body<Data = Bytes> + Send + 'static,
    <S::ResponseBody as http_body::Body>::Error: Into<BoxError> + Send,
{
    unary_with(grpc, tonic::Request::new(BaseResponse::default())).await
}

async fn unary_with<S>(
    grpc: &mut tonic::client::Grpc<S>,
    request: tonic::Request<BaseResponse>,
) -> Result<tonic::Response<BaseResponse>, tonic::Status>
where
    S: tonic::client::GrpcService<Body>,
    S::Error: Into<BoxError>,
    S::ResponseBody: http_body::Body<Data = Bytes> + Send + 'static,
    <S::ResponseBody as http_body::Body>::Error: Into<BoxError> + Send,
{
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unknown(e.into().to_string()))?;
    let codec = tonic_prost::ProstCodec::<BaseResponse, BaseResponse>::default();
    let path = http::uri::PathAndQuery::from_static(PATH);
    grpc.unary(request, path, codec).await
}

#[tokio::test(start_paused = true)]
async fn a_generated_client_decodes_the_answer_after_the_retries() {
    let busy = in_body(StatusCode::ModelBusyPleaseRetry);
    let (svc, count) = mock(vec![busy.clone(), busy, in_body(10000)]);
    let channel = ServiceBuilder::new()
        .layer(RetryLayer::new(fast()))
        .service(svc);
    let mut grpc = tonic::client::Grpc::new(channel);
    let response = unary(&mut grpc).await.unwrap().into_inner();
    assert_eq!(response.status.unwrap().code, 10000);
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

/// `retry::call` over `RetryLayer`, each attempt marked `SendOnce`: the layer sends it once,
/// also with a `Buffer` between the client and the layer and with each attempt spawned onto its
/// own task; unmarked, the layer retries each attempt too.
#[tokio::test(start_paused = true)]
async fn under_retry_call_a_marked_attempt_is_sent_once() {
    async fn run<S>(grpc: tonic::client::Grpc<S>, mark: bool, spawn: bool) -> u32
    where
        S: tonic::client::GrpcService<Body> + Clone + Send + 'static,
        S::Future: Send,
        S::Error: Into<BoxError>,
        S::ResponseBody: http_body::Body<Data = Bytes> + Send + 'static,
        <S::ResponseBody as http_body::Body>::Error: Into<BoxError> + Send,
    {
        let attempts = Arc::new(Mutex::new(0));
        let result = retry::call(&fast().max_attempts(3), || {
            *attempts.lock().unwrap() += 1;
            let mut grpc = grpc.clone();
            let request = if mark {
                SendOnce::request(BaseResponse::default())
            } else {
                tonic::Request::new(BaseResponse::default())
            };
            async move {
                if spawn {
                    tokio::spawn(async move { unary_with(&mut grpc, request).await })
                        .await
                        .unwrap()
                } else {
                    unary_with(&mut grpc, request).await
                }
            }
        })
        .await;
        let code = result.unwrap().into_inner().status.unwrap().code;
        assert_eq!(code, StatusCode::ModelBusyPleaseRetry as i32);
        let attempts = *attempts.lock().unwrap();
        attempts
    }
    let busy = || in_body(StatusCode::ModelBusyPleaseRetry);
    let max = 3;

    for (mark, spawn, buffered, sent) in [
        (true, false, false, max),
        (true, true, false, max),
        (true, false, true, max),
        (true, true, true, max),
        (false, false, false, max * max),
    ] {
        let (svc, count) = mock(vec![busy(); 16]);
        let layered = ServiceBuilder::new()
            .layer(RetryLayer::new(fast().max_attempts(max)))
            .service(svc);
        let attempts = if buffered {
            let channel = tower::buffer::Buffer::new(layered, 8);
            run(tonic::client::Grpc::new(channel), mark, spawn).await
        } else {
            run(tonic::client::Grpc::new(layered), mark, spawn).await
        };
        let case = format!("mark {mark}, spawn {spawn}, buffer {buffered}");
        assert_eq!(attempts, max, "{case}: attempts of call");
        assert_eq!(count.load(Ordering::SeqCst) as u32, sent, "{case}: sent");
    }
}

// Paused clock: the wait for a first message that never comes ends at the deadline.
#[tokio::test(start_paused = true)]
async fn a_first_message_that_never_comes_ends_at_the_deadline_as_the_clients_own() {
    let silent = Answer {
        headers: vec![],
        data: vec![],
        trailer: None,
    };
    let (mut svc, count) = layered(fast().deadline(Duration::from_secs(2)), vec![silent]);
    let start = tokio::time::Instant::now();
    let error = send(&mut svc, request_to(PATH)).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_eq!(count.load(Ordering::SeqCst), 1);
    let status = tonic::Status::from_error(error);
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
    assert_eq!(status.clarifai_code(), LOCAL_FAILURE);
}

// Paused clock: each attempt is cut at 1 s while waiting for its first message, then retried.
#[tokio::test(start_paused = true)]
async fn the_attempt_timeout_bounds_the_wait_for_the_first_message() {
    let silent = Answer {
        headers: vec![],
        data: vec![],
        trailer: None,
    };
    let policy = Policy::new()
        .backoff(Backoff::new(Duration::ZERO, Duration::ZERO))
        .attempt_timeout(Duration::from_secs(1))
        .max_attempts(3);
    let (mut svc, count) = layered(policy, vec![silent.clone(), silent, in_body(10000)]);
    let start = tokio::time::Instant::now();
    let response = send(&mut svc, request_to(PATH)).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_eq!(count.load(Ordering::SeqCst), 3);
    assert_eq!(read(response).await.0, vec![message(10000)]);
}

/// Empty data frames, ready without end; counts its polls.
struct Empty(Arc<AtomicUsize>);

impl http_body::Body for Empty {
    type Data = Bytes;
    type Error = tonic::Status;
    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Poll::Ready(Some(Ok(Frame::data(Bytes::new()))))
    }
}

#[tokio::test(start_paused = true)]
async fn endless_empty_frames_are_read_64_at_most_then_passed_on() {
    let polls = Arc::new(AtomicUsize::new(0));
    let svc = tower::service_fn({
        let polls = polls.clone();
        move |_: Req| {
            let body = Body::new(Empty(polls.clone()));
            async move { Ok::<_, BoxError>(http::Response::new(body)) }
        }
    });
    let mut svc = Retry::new(svc, fast());
    let start = tokio::time::Instant::now();
    let response = send(&mut svc, request_to(PATH)).await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(polls.load(Ordering::SeqCst), 64);
    drop(response);
}

#[tokio::test(start_paused = true)]
async fn the_read_holds_at_most_about_1_kib_before_passing_on() {
    // A status whose description comes first and runs for 64 KiB, sent 100 bytes a frame.
    let mut start = vec![
        0, 0, 1, 0, 0, 0x0a, 0x86, 0x80, 0x04, 0x12, 0x80, 0x80, 0x04,
    ];
    start.extend_from_slice(&[b'x'; 87]);
    let mut data = vec![Bytes::from(start)];
    data.extend((0..100).map(|_| Bytes::from(vec![b'x'; 100])));
    let answer = Answer {
        headers: vec![],
        data,
        trailer: None,
    };
    let (mut svc, count) = layered(fast(), vec![answer]);
    let response = send(&mut svc, request_to(PATH)).await.unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 1);
    // Passed on with 11 frames read (1,100 bytes), the rest to come: all 101 reach the caller.
    let mut body = response.into_body();
    let mut frames = 0;
    while let Ok(Some(Ok(_))) = tokio::time::timeout(Duration::from_secs(1), body.frame()).await {
        frames += 1;
    }
    assert_eq!(frames, 101);
}

/// A body that wakes its task `wakeups` times without a frame, then yields `frames`.
struct SlowStart {
    wakeups: usize,
    frames: Frames,
}

impl http_body::Body for SlowStart {
    type Data = Bytes;
    type Error = tonic::Status;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        if self.wakeups > 0 {
            self.wakeups -= 1;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Pin::new(&mut self.frames).poll_frame(cx)
    }
}

#[tokio::test(start_paused = true)]
async fn wake_ups_without_a_frame_do_not_count_against_the_read() {
    // More wake-ups than the frames the read allows (64) before the first message: the read
    // still finds the busy code and retries.
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    let svc = tower::service_fn(move |request: Req| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            request.into_body().collect().await?;
            let code = if n == 0 {
                StatusCode::ModelBusyPleaseRetry
            } else {
                StatusCode::Success
            };
            let frames = Frames {
                frames: VecDeque::from([
                    Frame::data(message(code as i32)),
                    Frame::trailers(trailers("0")),
                ]),
                silent: false,
            };
            let body = Body::new(SlowStart {
                wakeups: 100,
                frames,
            });
            let mut response = http::Response::new(body);
            response
                .headers_mut()
                .insert("content-type", "application/grpc".parse().unwrap());
            Ok::<_, BoxError>(response)
        }
    });
    let mut svc = Retry::new(BoxCloneService::new(svc), fast());
    let response = send(&mut svc, request_to(PATH)).await.unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 2);
    let (data, _) = read(response).await;
    assert_eq!(data, vec![message(StatusCode::Success as i32)]);
}
