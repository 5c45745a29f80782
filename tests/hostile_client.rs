//! `RetryLayer`, `retry::call` and `retry::poll` on real tonic clients against hostile peers
//! (issue 18, the client side): raw HTTP/2 servers on 127.0.0.1 that send what tonic servers
//! never would (details that are not base64, in headers and in trailers; errors claiming a
//! success code; headers and never trailers; no answer at all; pushbacks of centuries), and an
//! in-process request body of endless empty frames.
//!
//! Everything driven by time runs on tokio's paused clock: a test never waits for the wall
//! clock, and a hang shows as the guard's virtual hour running out (a failure, not a timing).
#![cfg(feature = "retry")]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use clarifai_status::grpc::{ClarifaiStatusExt as _, LOCAL_FAILURE};
use clarifai_status::pb::BaseResponse;
use clarifai_status::retry::{self, Backoff, Policy, PollPolicy, Retry, RetryLayer, SendOnce};
use http::{HeaderMap, HeaderName, HeaderValue};
use prost::Message as _;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tonic::body::Body;
use tonic::transport::Channel;
use tower::{Layer as _, Service, ServiceExt as _};

/// How the raw HTTP/2 peer answers one request.
#[derive(Clone)]
enum Peer {
    /// HTTP 200 with these headers, ending the stream (Trailers-Only when `grpc-status` is in).
    TrailersOnly(Vec<(&'static str, String)>),
    /// This HTTP status with these headers, ending the stream (a proxy's bare error).
    Http(u16, Vec<(&'static str, String)>),
    /// HTTP 200, one empty message, then these trailers.
    Trailers(Vec<(&'static str, String)>),
    /// HTTP 200 headers, then nothing: no message, no trailers, the stream left open.
    HeadersOnly,
    /// Accepts the stream and never answers.
    Silent,
    /// HTTP 200 headers, these data frames, then these trailers, or the stream left open.
    Data(Vec<Bytes>, Option<Vec<(&'static str, String)>>),
    /// HTTP 200 headers, then empty data frames, one per virtual millisecond, without end.
    EmptyFrames,
}

/// A raw HTTP/2 server answering request `n` (from 0) with `script(n)`; counts requests.
async fn peer(
    script: impl Fn(usize) -> Peer + Send + Sync + 'static,
) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let script = Arc::new(script);
    let counter = count.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (script, counter) = (script.clone(), counter.clone());
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(socket).await else {
                    return;
                };
                while let Some(Ok((request, respond))) = conn.accept().await {
                    let n = counter.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(answer(script(n), request, respond));
                }
            });
        }
    });
    (addr, count)
}

fn map(pairs: &[(&'static str, String)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(k, v)| {
            (
                HeaderName::from_static(k),
                HeaderValue::from_str(v).unwrap(),
            )
        })
        .collect()
}

fn head(status: u16, pairs: &[(&'static str, String)]) -> http::Response<()> {
    let mut response = http::Response::new(());
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    response.headers_mut().extend(map(pairs));
    response
}

async fn answer(
    peer: Peer,
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
) {
    match peer {
        Peer::TrailersOnly(pairs) => {
            let _ = respond.send_response(head(200, &pairs), true);
        }
        Peer::Http(status, pairs) => {
            let _ = respond.send_response(head(status, &pairs), true);
        }
        Peer::Trailers(pairs) => {
            let Ok(mut stream) = respond.send_response(head(200, &[]), false) else {
                return;
            };
            let _ = stream.send_data(Bytes::from_static(&[0, 0, 0, 0, 0]), false);
            let _ = stream.send_trailers(map(&pairs));
            // Keep the stream until the client is done with it.
            std::future::pending::<()>().await;
        }
        Peer::HeadersOnly => {
            let stream = respond.send_response(head(200, &[]), false);
            let _keep = (stream, request);
            std::future::pending::<()>().await;
        }
        Peer::Silent => {
            let _keep = (respond, request);
            std::future::pending::<()>().await;
        }
        Peer::Data(frames, trailers) => {
            let Ok(mut stream) = respond.send_response(head(200, &[]), false) else {
                return;
            };
            for frame in frames {
                let _ = stream.send_data(frame, false);
            }
            if let Some(pairs) = trailers {
                let _ = stream.send_trailers(map(&pairs));
            }
            let _keep = request;
            std::future::pending::<()>().await;
        }
        Peer::EmptyFrames => {
            let Ok(mut stream) = respond.send_response(head(200, &[]), false) else {
                return;
            };
            let _keep = request;
            while stream.send_data(Bytes::new(), false).is_ok() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
}

type Client = tonic::client::Grpc<Retry<Channel>>;

async fn channel(addr: &str) -> Channel {
    Channel::from_shared(addr.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn client(addr: &str, policy: Policy) -> Client {
    tonic::client::Grpc::new(RetryLayer::new(policy).layer(channel(addr).await))
}

/// One unary call (`BaseResponse` both ways) through `grpc`.
async fn unary<T>(
    grpc: &mut tonic::client::Grpc<T>,
    request: tonic::Request<BaseResponse>,
) -> Result<tonic::Response<BaseResponse>, tonic::Status>
where
    T: tonic::client::GrpcService<Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: http_body::Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error: Into<tonic::codegen::StdError>,
{
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unknown(format!("not ready: {}", e.into())))?;
    let path = http::uri::PathAndQuery::from_static("/test.Svc/Method");
    let codec = tonic_prost::ProstCodec::<BaseResponse, BaseResponse>::default();
    grpc.unary(request, path, codec).await
}

async fn call(grpc: &mut Client) -> Result<tonic::Response<BaseResponse>, tonic::Status> {
    unary(grpc, tonic::Request::new(BaseResponse::default())).await
}

/// Fails the test when `future` has not ended within a virtual hour (on the paused clock, at
/// once when nothing else is left to run): the hang guard, not a measure of speed.
async fn guard<F: Future>(future: F) -> F::Output {
    match tokio::time::timeout(Duration::from_secs(3600), future).await {
        Ok(output) => output,
        Err(_) => panic!("hung: no end within the guard's virtual hour"),
    }
}

/// Runs `future` on its own task, so a panic in tonic's client shows as a failed join.
async fn spawned<F>(future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match guard(tokio::spawn(future)).await {
        Ok(output) => output,
        Err(error) => panic!("the client task panicked: {error}"),
    }
}

fn fast() -> Policy {
    Policy::new()
        .backoff(Backoff::new(
            Duration::from_millis(1),
            Duration::from_millis(4),
        ))
        .no_budget()
}

fn unavailable_with(extra: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let mut pairs = vec![("grpc-status", "14".to_owned())];
    pairs.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    pairs
}

/// The client's own deadline: `DEADLINE_EXCEEDED`, made locally (a source), so it reads as
/// `LOCAL_FAILURE` and never as a code a server sent.
fn assert_local_deadline(status: &tonic::Status) {
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    assert_eq!(status.carried_clarifai_code(), None, "{status:?}");
    assert!(std::error::Error::source(status).is_some(), "{status:?}");
    assert_eq!(status.clarifai_code(), LOCAL_FAILURE, "{status:?}");
}

// Defect 1: details that are not base64 panic tonic's client.

#[tokio::test]
async fn details_not_base64_in_trailers_only_headers_do_not_panic_the_client() {
    let (addr, count) =
        peer(|_| Peer::TrailersOnly(unavailable_with(&[("grpc-status-details-bin", "!!!")]))).await;
    let mut grpc = client(&addr, fast().max_attempts(3)).await;
    let status = spawned(async move { call(&mut grpc).await })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert!(status.details().is_empty());
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn details_not_base64_in_trailers_do_not_panic_the_client() {
    let (addr, count) =
        peer(|_| Peer::Trailers(unavailable_with(&[("grpc-status-details-bin", "!!!")]))).await;
    let mut grpc = client(&addr, fast().max_attempts(3)).await;
    let status = spawned(async move { call(&mut grpc).await })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert!(status.details().is_empty());
    // Committed with the response headers: sent once.
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn unparseable_grpc_status_and_message_reach_the_client_as_unknown() {
    let (addr, count) = peer(|_| {
        Peer::TrailersOnly(vec![
            ("grpc-status", "fourteen".to_owned()),
            ("grpc-message", "%FF%FE".to_owned()),
        ])
    })
    .await;
    // UNKNOWN made retryable: an unparseable status on HTTP 200 is an error, not a commit.
    let policy = fast()
        .max_attempts(2)
        .retry_grpc_codes([tonic::Code::Unknown]);
    let mut grpc = client(&addr, policy).await;
    let status = spawned(async move { call(&mut grpc).await })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unknown);
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

// Defect 3: an error claiming a success code carries none.

#[tokio::test]
async fn unavailable_claiming_success_or_zero_is_retried() {
    for claimed in ["10000", "0"] {
        let (addr, count) = peer(move |_| {
            Peer::TrailersOnly(unavailable_with(&[("clarifai-status-code", claimed)]))
        })
        .await;
        let mut grpc = client(&addr, fast().max_attempts(3)).await;
        let status = spawned(async move { call(&mut grpc).await })
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable, "{claimed}");
        assert_eq!(
            count.load(Ordering::SeqCst),
            3,
            "claimed {claimed}: not retried"
        );
    }
}

#[tokio::test]
async fn bare_http_error_claiming_success_is_retried() {
    let (addr, count) =
        peer(|_| Peer::Http(503, vec![("clarifai-status-code", "10000".to_owned())])).await;
    let mut grpc = client(&addr, fast().max_attempts(3)).await;
    let status = spawned(async move { call(&mut grpc).await })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert_eq!(
        count.load(Ordering::SeqCst),
        3,
        "a 503 claiming SUCCESS was not retried"
    );
}

// Defect 4: every call ends by the policy's deadline; no wait is unbounded.

#[tokio::test(start_paused = true)]
async fn layer_against_a_silent_server_ends_by_the_default_deadline() {
    let (addr, count) = peer(|_| Peer::Silent).await;
    let mut grpc = client(&addr, Policy::new()).await;
    let start = Instant::now();
    let status = guard(call(&mut grpc)).await.unwrap_err();
    assert_local_deadline(&status);
    assert!(
        start.elapsed() >= Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    assert!(count.load(Ordering::SeqCst) >= 1);
}

#[tokio::test(start_paused = true)]
async fn layer_against_a_silent_server_ends_by_a_short_deadline() {
    let (addr, _) = peer(|_| Peer::Silent).await;
    let mut grpc = client(&addr, Policy::new().deadline(Duration::from_secs(2))).await;
    let start = Instant::now();
    let status = guard(call(&mut grpc)).await.unwrap_err();
    assert_local_deadline(&status);
    assert!(start.elapsed() >= Duration::from_secs(2));
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "the 2 s deadline was not the bound"
    );
}

#[tokio::test(start_paused = true)]
async fn layer_against_headers_and_never_trailers_ends_by_the_deadline() {
    let (addr, _) = peer(|_| Peer::HeadersOnly).await;
    let policy = Policy::new()
        .deadline(Duration::from_secs(2))
        .attempt_timeout(Duration::from_secs(1));
    let mut grpc = client(&addr, policy).await;
    let mut request = tonic::Request::new(BaseResponse::default());
    request.set_timeout(Duration::from_secs(2));
    let start = Instant::now();
    let status = guard(unary(&mut grpc, request)).await.unwrap_err();
    assert_local_deadline(&status);
    assert!(start.elapsed() >= Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn layer_with_the_default_policy_bounds_headers_and_never_trailers() {
    let (addr, _) = peer(|_| Peer::HeadersOnly).await;
    let mut grpc = client(&addr, Policy::new()).await;
    let status = guard(call(&mut grpc)).await.unwrap_err();
    assert_local_deadline(&status);
}

#[tokio::test(start_paused = true)]
async fn call_against_a_silent_server_ends_by_the_deadline() {
    let (addr, _) = peer(|_| Peer::Silent).await;
    let grpc = tonic::client::Grpc::new(channel(&addr).await);
    let policy = Policy::new().deadline(Duration::from_secs(2));
    let start = Instant::now();
    let result = guard(retry::call(&policy, || {
        let mut grpc = grpc.clone();
        async move { unary(&mut grpc, tonic::Request::new(BaseResponse::default())).await }
    }))
    .await;
    assert_local_deadline(&result.unwrap_err());
    assert!(start.elapsed() >= Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn call_through_the_layer_against_a_silent_server_ends_by_the_deadline() {
    let (addr, _) = peer(|_| Peer::Silent).await;
    let policy = Policy::new().deadline(Duration::from_secs(2));
    let grpc = client(&addr, policy.clone()).await;
    let result = guard(retry::call(&policy, || {
        let mut grpc = grpc.clone();
        async move { unary(&mut grpc, SendOnce::request(BaseResponse::default())).await }
    }))
    .await;
    assert_local_deadline(&result.unwrap_err());
}

#[tokio::test(start_paused = true)]
async fn poll_against_a_silent_server_ends_by_its_deadline() {
    let (addr, _) = peer(|_| Peer::Silent).await;
    let grpc = tonic::client::Grpc::new(channel(&addr).await);
    // Each poll's call has no deadline of its own: the poller's bounds it.
    let polling = PollPolicy::new()
        .deadline(Duration::from_secs(5))
        .retry(Policy::new().no_deadline());
    let start = Instant::now();
    let result = guard(retry::poll(&polling, || {
        let mut grpc = grpc.clone();
        async move { unary(&mut grpc, tonic::Request::new(BaseResponse::default())).await }
    }))
    .await;
    assert_local_deadline(&result.unwrap_err());
    assert!(start.elapsed() >= Duration::from_secs(5));
}

/// A `grpc-status-details-bin` with a `RetryInfo` of `seconds` seconds.
fn retry_info(seconds: i64) -> String {
    use base64::Engine as _;
    let info = tonic_types::pb::RetryInfo {
        retry_delay: Some(prost_types::Duration { seconds, nanos: 0 }),
    };
    let status = tonic_types::pb::Status {
        code: 14,
        message: String::new(),
        details: vec![prost_types::Any {
            type_url: "type.googleapis.com/google.rpc.RetryInfo".to_owned(),
            value: info.encode_to_vec(),
        }],
    };
    base64::engine::general_purpose::STANDARD.encode(status.encode_to_vec())
}

#[tokio::test(start_paused = true)]
async fn huge_pushbacks_never_park_a_call_without_deadline() {
    let huge: Vec<Peer> = vec![
        Peer::TrailersOnly(unavailable_with(&[(
            "grpc-retry-pushback-ms",
            &i64::MAX.to_string(),
        )])),
        Peer::TrailersOnly(unavailable_with(&[(
            "grpc-status-details-bin",
            &retry_info(i64::MAX),
        )])),
        Peer::Http(503, vec![("retry-after", u64::MAX.to_string())]),
    ];
    for answer in huge {
        let (addr, _) = peer(move |_| answer.clone()).await;
        let mut grpc = client(&addr, fast().max_attempts(2).no_deadline()).await;
        let start = Instant::now();
        let status = guard(call(&mut grpc)).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable);
        // Virtual time: the wait the server asked for was not taken (it is past the cap).
        assert!(
            start.elapsed() <= retry::MAX_PUSHBACK,
            "parked for {:?}",
            start.elapsed()
        );
    }
}

#[tokio::test(start_paused = true)]
async fn huge_pushbacks_never_park_retry_call_without_deadline() {
    let (addr, count) = peer(|_| {
        Peer::TrailersOnly(unavailable_with(&[(
            "grpc-status-details-bin",
            &retry_info(i64::MAX),
        )]))
    })
    .await;
    let grpc = tonic::client::Grpc::new(channel(&addr).await);
    let policy = fast().max_attempts(2).no_deadline();
    let start = Instant::now();
    let result = guard(retry::call(&policy, || {
        let mut grpc = grpc.clone();
        async move { unary(&mut grpc, tonic::Request::new(BaseResponse::default())).await }
    }))
    .await;
    assert_eq!(result.unwrap_err().code(), tonic::Code::Unavailable);
    assert!(
        start.elapsed() <= retry::MAX_PUSHBACK,
        "parked for {:?}",
        start.elapsed()
    );
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

// Defect 7: a request body of endless empty frames.

/// Empty data frames, `left` of them, then `\0\0\0\0\0` and the end; counts its polls.
struct EmptyFrames {
    left: usize,
    polls: Arc<AtomicUsize>,
    done: bool,
}

impl http_body::Body for EmptyFrames {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, tonic::Status>>> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        if self.left > 0 {
            self.left -= 1;
            return Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::new()))));
        }
        if self.done {
            return Poll::Ready(None);
        }
        self.done = true;
        Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from_static(&[
            0, 0, 0, 0, 0,
        ])))))
    }
}

#[tokio::test]
async fn endless_empty_frames_do_not_spin_the_layer() {
    // "Endless" for the layer: far more empty frames than any bound it may have; finite, so a
    // layer that spins on them ends too, and the count shows it.
    const FRAMES: usize = 200_000;
    let polls = Arc::new(AtomicUsize::new(0));
    let received = Arc::new(AtomicUsize::new(0));
    let inner = tower::service_fn({
        let received = received.clone();
        move |request: http::Request<Body>| {
            let received = received.clone();
            async move {
                use http_body_util::BodyExt as _;
                let bytes = request.into_body().collect().await?.to_bytes();
                received.fetch_add(1, Ordering::SeqCst);
                assert_eq!(bytes, Bytes::from_static(&[0, 0, 0, 0, 0]));
                let mut response = http::Response::new(Body::empty());
                response
                    .headers_mut()
                    .insert("grpc-status", HeaderValue::from_static("14"));
                Ok::<_, tonic::Status>(response)
            }
        }
    });
    let mut svc = Retry::new(inner, fast());
    let body = Body::new(EmptyFrames {
        left: FRAMES,
        polls: polls.clone(),
        done: false,
    });
    let svc = svc.ready().await.unwrap();
    let future = svc.call(http::Request::new(body));
    let in_call = polls.load(Ordering::SeqCst);
    assert!(
        in_call <= 1024,
        "Service::call polled the request body {in_call} times"
    );
    let response = guard(future).await.unwrap();
    // Not buffered, so sent once as is: its data intact, no retry.
    assert_eq!(response.headers()["grpc-status"], "14");
    assert_eq!(received.load(Ordering::SeqCst), 1);
}

// Any peer headers and trailers, through the layer into tonic's client.

mod properties {
    use super::*;
    use proptest::prelude::*;

    const NAMES: [&str; 5] = [
        "grpc-status",
        "grpc-message",
        "grpc-status-details-bin",
        "clarifai-status-code",
        "grpc-retry-pushback-ms",
    ];

    fn value() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(prop_oneof![Just(b'\t'), 0x20u8..0x7f, 0x80u8..=0xff], 0..16),
            prop_oneof![
                Just("0"),
                Just("14"),
                Just("10000"),
                Just("21101"),
                Just("!!!"),
                Just("%FF"),
                Just("-1"),
                Just("CAgSAA"),
            ]
            .prop_map(|v| v.as_bytes().to_vec()),
        ]
    }

    fn header_map() -> impl Strategy<Value = HeaderMap> {
        proptest::collection::vec((0..NAMES.len(), value()), 0..6).prop_map(|pairs| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                if let Ok(value) = HeaderValue::from_bytes(&value) {
                    headers.append(HeaderName::from_static(NAMES[name]), value);
                }
            }
            headers
        })
    }

    /// One empty message, then `trailers`.
    struct WithTrailers(Option<Bytes>, Option<HeaderMap>);

    impl http_body::Body for WithTrailers {
        type Data = Bytes;
        type Error = tonic::Status;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, tonic::Status>>> {
            if let Some(data) = self.0.take() {
                return Poll::Ready(Some(Ok(http_body::Frame::data(data))));
            }
            Poll::Ready(self.1.take().map(|t| Ok(http_body::Frame::trailers(t))))
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Whatever the peer's status headers and trailers, tonic's client behind the layer
        /// never panics, and never reads a success or in-progress code from an error.
        #[test]
        fn any_peer_status_reaches_tonic_safely(
            headers in header_map(),
            trailers in proptest::option::of(header_map()),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build()
                .unwrap();
            let result = runtime.block_on(async move {
                let inner = tower::service_fn(move |_: http::Request<Body>| {
                    let (headers, trailers) = (headers.clone(), trailers.clone());
                    async move {
                        let body = match trailers {
                            None => Body::empty(),
                            Some(t) => Body::new(WithTrailers(Some(Bytes::from_static(&[0; 5])), Some(t))),
                        };
                        let mut response = http::Response::new(body);
                        response.headers_mut().insert(
                            http::header::CONTENT_TYPE,
                            HeaderValue::from_static("application/grpc"),
                        );
                        response.headers_mut().extend(headers);
                        Ok::<_, tonic::Status>(response)
                    }
                });
                let mut grpc = tonic::client::Grpc::new(Retry::new(inner, fast().max_attempts(2)));
                let call = tokio::spawn(async move {
                    unary(&mut grpc, tonic::Request::new(BaseResponse::default())).await
                });
                guard(call).await
            });
            let result = match result {
                Ok(result) => result,
                Err(error) => return Err(TestCaseError::fail(format!("tonic's client panicked: {error}"))),
            };
            if let Err(status) = result {
                if let Some(code) = status.carried_clarifai_code() {
                    prop_assert!(code.is_failure(), "{code} from {status:?}");
                }
            }
        }
    }
}

// Issue 22: the layer reads the status of a response's first message. A hostile server must not
// make it panic, hang past the deadline, or buffer without bound. `attempt_timeout` (1 s, under
// a 10 s deadline) tells the two ends apart: a call the layer committed is bounded by the
// deadline alone (1 call), a call still waiting in the read is cut at 1 s and retried.

/// A framed message: flag 0, this length, these bytes.
fn framed(len: u32, bytes: &[u8]) -> Bytes {
    let mut framed = vec![0];
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(bytes);
    framed.into()
}

fn status_message(code: i32) -> Bytes {
    let bytes = BaseResponse {
        status: Some(clarifai_status::pb::Status {
            code,
            ..Default::default()
        }),
    }
    .encode_to_vec();
    framed(bytes.len() as u32, &bytes)
}

fn cut_and_deadline() -> Policy {
    fast()
        .max_attempts(3)
        .attempt_timeout(Duration::from_secs(1))
        .deadline(Duration::from_secs(10))
}

#[tokio::test(start_paused = true)]
async fn in_body_read_of_a_huge_length_prefix_waits_only_as_long_as_the_attempt() {
    // 4 GiB announced, nothing sent: the code never comes; each attempt is cut, then the last.
    let (addr, count) = peer(|_| Peer::Data(vec![framed(u32::MAX, &[])], None)).await;
    let mut grpc = client(&addr, cut_and_deadline()).await;
    let status = spawned(async move { call(&mut grpc).await })
        .await
        .unwrap_err();
    assert_local_deadline(&status);
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn in_body_read_of_a_huge_length_prefix_reads_the_code_and_no_more() {
    // 4 GiB announced, the status's code at its start: busy, retried, then passed on; tonic's
    // client refuses the message's size itself.
    let busy = framed(u32::MAX, &[0x0a, 0x05, 0x08, 0xea, 0xa6, 0x01]);
    let (addr, count) = peer(move |_| Peer::Data(vec![busy.clone()], None)).await;
    let mut grpc = client(&addr, cut_and_deadline()).await;
    let status = spawned(async move { call(&mut grpc).await })
        .await
        .unwrap_err();
    assert_eq!(count.load(Ordering::SeqCst), 3);
    assert_ne!(status.code(), tonic::Code::Ok);
}

#[tokio::test(start_paused = true)]
async fn in_body_read_of_endless_empty_frames_ends_once() {
    // Over a socket, empty DATA frames carry nothing the body yields: the read waits as for
    // silence, cut by the attempt timeout, and h2 ends such a connection itself (GOAWAY
    // `ENHANCE_YOUR_CALM`, "too_many_data_frames"). In process, the read stops after 64 empty
    // frames (`tests/retry_in_body.rs`). Either way: at most the policy's attempts, an end.
    let (addr, count) = peer(|_| Peer::EmptyFrames).await;
    let mut grpc = client(&addr, cut_and_deadline()).await;
    let status = spawned(async move { call(&mut grpc).await })
        .await
        .unwrap_err();
    assert_ne!(status.code(), tonic::Code::Ok);
    assert!(count.load(Ordering::SeqCst) <= 3);
}

#[tokio::test(start_paused = true)]
async fn in_body_read_of_a_message_that_never_ends_commits_once_the_code_is_read() {
    // A success code, then the rest of a 100-byte message never comes.
    let mut start = status_message(10000).to_vec();
    start[1..5].copy_from_slice(&100u32.to_be_bytes());
    let (addr, count) = peer(move |_| Peer::Data(vec![start.clone().into()], None)).await;
    let mut grpc = client(&addr, cut_and_deadline()).await;
    let status = spawned(async move { call(&mut grpc).await })
        .await
        .unwrap_err();
    assert_local_deadline(&status);
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn in_body_read_of_a_status_that_never_completes_is_bounded() {
    // A code whose varint never ends: malformed after 10 bytes, committed at once.
    let endless = framed(
        100,
        &[
            0x0a, 0x60, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ],
    );
    let (addr, count) = peer(move |_| Peer::Data(vec![endless.clone()], None)).await;
    let mut grpc = client(&addr, cut_and_deadline()).await;
    let status = spawned(async move { call(&mut grpc).await })
        .await
        .unwrap_err();
    assert_local_deadline(&status);
    assert_eq!(count.load(Ordering::SeqCst), 1);

    // A description of 64 KiB before the code: read up to 1 KiB, then committed.
    let mut status = vec![0x0a, 0x86, 0x80, 0x04, 0x12, 0x80, 0x80, 0x04];
    status.extend_from_slice(&[b'x'; 2000]);
    let long = framed(70_000, &status);
    let (addr, count) = peer(move |_| Peer::Data(vec![long.clone()], None)).await;
    let mut grpc = client(&addr, cut_and_deadline()).await;
    let status = spawned(async move { call(&mut grpc).await })
        .await
        .unwrap_err();
    assert_local_deadline(&status);
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn in_body_read_passes_an_error_in_trailers_after_the_first_message_on_once() {
    let frames = vec![status_message(10000)];
    let (addr, count) = peer(move |_| {
        Peer::Data(
            frames.clone(),
            Some(unavailable_with(&[("grpc-status-details-bin", "!!!")])),
        )
    })
    .await;
    let mut grpc = client(&addr, cut_and_deadline()).await;
    let status = spawned(async move { call(&mut grpc).await })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn in_body_read_of_trailers_before_any_message_passes_them_on_once() {
    let (addr, count) = peer(|_| Peer::Data(vec![], Some(unavailable_with(&[])))).await;
    let mut grpc = client(&addr, cut_and_deadline()).await;
    let status = spawned(async move { call(&mut grpc).await })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert_eq!(count.load(Ordering::SeqCst), 1);
}
