//! The retry layer against tower mocks: what it retries, what it replays, when it stops.
#![cfg(feature = "retry")]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use clarifai_status::grpc::ErrorBuilder;
use clarifai_status::pb::BaseResponse;
use clarifai_status::retry::{self, Backoff, BoxError, Policy, Retry, RetryLayer};
use clarifai_status::StatusCode;
use http_body_util::BodyExt as _;
use tonic::body::Body;
use tower::util::BoxCloneService;
use tower::{Service, ServiceBuilder, ServiceExt};

type Req = http::Request<Body>;
type Res = http::Response<Body>;
type Mock = BoxCloneService<Req, Res, BoxError>;

/// How the mock answers one attempt.
#[derive(Clone)]
enum Answer {
    /// HTTP 200, no `grpc-status`: headers of a normal response, the status still to come.
    Ok,
    /// A Trailers-Only response with these headers.
    Headers(Vec<(&'static str, &'static str)>),
    /// A Trailers-Only response as a tonic server sends this status.
    Status(Arc<dyn Fn() -> tonic::Status + Send + Sync>),
    /// A bare HTTP error, as from a proxy.
    Http(u16, Vec<(&'static str, &'static str)>),
    /// The service fails (as a channel does when it cannot connect).
    Error(tonic::Code),
}

fn unavailable() -> Answer {
    Answer::Headers(vec![("grpc-status", "14")])
}

/// What the mock saw of one attempt.
#[derive(Debug, Clone)]
struct Seen {
    headers: http::HeaderMap,
    body: Bytes,
    /// An exact size hint makes hyper add `content-length`.
    exact_size: Option<u64>,
}

/// A server answering attempt `i` with `script[i]` (the last answer repeats), recording requests.
fn mock(script: Vec<Answer>) -> (Mock, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let script = Arc::new(script);
    let log = seen.clone();
    let svc = tower::service_fn(move |request: Req| {
        let (seen, script) = (log.clone(), script.clone());
        async move {
            let (parts, body) = request.into_parts();
            let exact_size = http_body::Body::size_hint(&body).exact();
            let body = body.collect().await?.to_bytes();
            let n = {
                let mut seen = seen.lock().unwrap();
                seen.push(Seen {
                    headers: parts.headers,
                    body,
                    exact_size,
                });
                seen.len() - 1
            };
            let answer = script[n.min(script.len() - 1)].clone();
            answer_with(answer)
        }
    });
    (BoxCloneService::new(svc), seen)
}

fn answer_with(answer: Answer) -> Result<Res, BoxError> {
    let with_headers = |status: u16, pairs: Vec<(&'static str, &'static str)>| {
        let mut response = http::Response::new(Body::empty());
        *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
        for (name, value) in pairs {
            response.headers_mut().insert(name, value.parse().unwrap());
        }
        response
    };
    Ok(match answer {
        Answer::Ok => with_headers(200, vec![("content-type", "application/grpc")]),
        Answer::Headers(pairs) => with_headers(200, pairs),
        Answer::Status(make) => make().into_http(),
        Answer::Http(status, pairs) => with_headers(status, pairs),
        Answer::Error(code) => return Err(Box::new(tonic::Status::new(code, "service error"))),
    })
}

fn fast() -> Policy {
    Policy::new().backoff(Backoff::new(
        Duration::from_millis(1),
        Duration::from_millis(2),
    ))
}

fn request() -> Req {
    let body = Bytes::from_static(b"\0\0\0\0\x05hello");
    let mut request = http::Request::new(Body::new(http_body_util::Full::new(body)));
    *request.uri_mut() = "http://mock/test.Svc/Method".parse().unwrap();
    request
}

async fn send<S>(svc: &mut S, request: Req) -> Result<Res, BoxError>
where
    S: Service<Req, Response = Res, Error = BoxError>,
{
    svc.ready().await?.call(request).await
}

fn grpc_status(response: &Res) -> Option<&str> {
    response
        .headers()
        .get("grpc-status")
        .map(|v| v.to_str().unwrap())
}

fn layered(policy: Policy, script: Vec<Answer>) -> (Retry<Mock>, Arc<Mutex<Vec<Seen>>>) {
    let (svc, seen) = mock(script);
    (Retry::new(svc, policy), seen)
}

fn attempts(seen: &Arc<Mutex<Vec<Seen>>>) -> usize {
    seen.lock().unwrap().len()
}

#[tokio::test]
async fn retries_unavailable_until_it_succeeds() {
    let (svc, seen) = mock(vec![unavailable(), unavailable(), Answer::Ok]);
    let mut svc = ServiceBuilder::new()
        .layer(RetryLayer::new(fast()))
        .service(svc);
    let response = send(&mut svc, request()).await.unwrap();
    assert_eq!(grpc_status(&response), None);
    assert_eq!(attempts(&seen), 3);
}

#[tokio::test]
async fn replays_the_same_request_and_counts_previous_attempts() {
    let (mut svc, seen) = layered(fast(), vec![unavailable(), unavailable(), Answer::Ok]);
    let mut original = request();
    original
        .headers_mut()
        .insert("authorization", "Key abc".parse().unwrap());
    send(&mut svc, original).await.unwrap();
    let seen = seen.lock().unwrap();
    let previous: Vec<Option<&str>> = seen
        .iter()
        .map(|s| {
            s.headers
                .get("grpc-previous-rpc-attempts")
                .map(|v| v.to_str().unwrap())
        })
        .collect();
    assert_eq!(previous, [None, Some("1"), Some("2")]);
    for attempt in seen.iter() {
        assert_eq!(attempt.body, Bytes::from_static(b"\0\0\0\0\x05hello"));
        assert_eq!(attempt.headers["authorization"], "Key abc");
        assert_eq!(attempt.exact_size, None, "no content-length is added");
    }
}

#[tokio::test]
async fn retries_a_carried_retryable_clarifai_code_whatever_its_grpc_code() {
    // CONN_THROTTLED travels as RESOURCE_EXHAUSTED, which the policy does not retry as a plain
    // gRPC code; the table says the Clarifai code is retryable, and the carried code decides.
    let throttled = Answer::Headers(vec![
        ("grpc-status", "8"),
        ("clarifai-status-code", "11005"),
    ]);
    let (mut svc, seen) = layered(fast(), vec![throttled, Answer::Ok]);
    send(&mut svc, request()).await.unwrap();
    assert_eq!(attempts(&seen), 2);
}

#[tokio::test]
async fn reads_the_clarifai_code_from_the_status_details() {
    let busy = Answer::Status(Arc::new(|| StatusCode::ModelBusyPleaseRetry.into()));
    let (mut svc, seen) = layered(fast(), vec![busy, Answer::Ok]);
    send(&mut svc, request()).await.unwrap();
    assert_eq!(attempts(&seen), 2);
}

#[tokio::test]
async fn never_retries_invalid_credentials() {
    let denied = Answer::Status(Arc::new(|| StatusCode::ConnKeyInvalid.into()));
    let (mut svc, seen) = layered(fast(), vec![denied, Answer::Ok]);
    let response = send(&mut svc, request()).await.unwrap();
    assert_eq!(grpc_status(&response), Some("16"));
    assert_eq!(response.headers()["clarifai-status-code"], "11008");
    assert_eq!(attempts(&seen), 1);
}

#[tokio::test]
async fn never_retries_invalid_argument() {
    let invalid = Answer::Headers(vec![("grpc-status", "3")]);
    let (mut svc, seen) = layered(fast(), vec![invalid, Answer::Ok]);
    let response = send(&mut svc, request()).await.unwrap();
    assert_eq!(grpc_status(&response), Some("3"));
    assert_eq!(attempts(&seen), 1);
}

#[tokio::test]
async fn retries_exactly_the_table_and_the_grpc_set() {
    // Every code the table knows, carried on an error: retried exactly when the table says so.
    for code in StatusCode::all() {
        let number = code.number().to_string();
        let header: &'static str = Box::leak(number.into_boxed_str());
        let answer = Answer::Headers(vec![("grpc-status", "2"), ("clarifai-status-code", header)]);
        let (mut svc, seen) = layered(fast().no_budget(), vec![answer, Answer::Ok]);
        send(&mut svc, request()).await.unwrap();
        let want = if code.is_retryable() { 2 } else { 1 };
        assert_eq!(attempts(&seen), want, "{code:?}");
    }
    // Every plain gRPC code: only UNAVAILABLE by default.
    for n in 1..=16 {
        let value: &'static str = Box::leak(n.to_string().into_boxed_str());
        let (mut svc, seen) = layered(
            fast(),
            vec![Answer::Headers(vec![("grpc-status", value)]), Answer::Ok],
        );
        send(&mut svc, request()).await.unwrap();
        assert_eq!(
            attempts(&seen),
            if n == 14 { 2 } else { 1 },
            "grpc-status {n}"
        );
    }
}

#[tokio::test]
async fn policy_overrides_the_table_and_the_grpc_set() {
    let busy = Answer::Headers(vec![
        ("grpc-status", "14"),
        ("clarifai-status-code", "21354"),
    ]);
    let policy = fast().never_retry([StatusCode::ModelBusyPleaseRetry]);
    let (mut svc, seen) = layered(policy, vec![busy, Answer::Ok]);
    send(&mut svc, request()).await.unwrap();
    assert_eq!(attempts(&seen), 1);

    let exhausted = Answer::Headers(vec![("grpc-status", "8")]);
    let policy =
        fast().retry_grpc_codes([tonic::Code::Unavailable, tonic::Code::ResourceExhausted]);
    let (mut svc, seen) = layered(policy, vec![exhausted, Answer::Ok]);
    send(&mut svc, request()).await.unwrap();
    assert_eq!(attempts(&seen), 2);
}

#[tokio::test]
async fn stops_at_max_attempts_and_returns_the_last_failure() {
    let (mut svc, seen) = layered(fast().max_attempts(3), vec![unavailable()]);
    let response = send(&mut svc, request()).await.unwrap();
    assert_eq!(grpc_status(&response), Some("14"));
    assert_eq!(attempts(&seen), 3);
}

#[tokio::test]
async fn does_not_retry_once_committed() {
    // HTTP 200 without grpc-status: the status comes in the trailers, after the layer let go.
    let (mut svc, seen) = layered(fast(), vec![Answer::Ok, unavailable()]);
    send(&mut svc, request()).await.unwrap();
    let (mut svc2, seen2) = layered(
        fast(),
        vec![Answer::Headers(vec![("grpc-status", "0")]), unavailable()],
    );
    send(&mut svc2, request()).await.unwrap();
    assert_eq!((attempts(&seen), attempts(&seen2)), (1, 1));
}

#[tokio::test]
async fn retries_a_bare_http_error_as_grpc_reads_it() {
    let (mut svc, seen) = layered(fast(), vec![Answer::Http(503, vec![]), Answer::Ok]);
    send(&mut svc, request()).await.unwrap();
    assert_eq!(attempts(&seen), 2);
    let (mut svc, seen) = layered(fast(), vec![Answer::Http(401, vec![]), Answer::Ok]);
    send(&mut svc, request()).await.unwrap();
    assert_eq!(attempts(&seen), 1);
}

#[tokio::test]
async fn retries_a_service_error_read_as_unavailable() {
    let (mut svc, seen) = layered(
        fast(),
        vec![Answer::Error(tonic::Code::Unavailable), Answer::Ok],
    );
    send(&mut svc, request()).await.unwrap();
    assert_eq!(attempts(&seen), 2);

    let (mut svc, seen) = layered(
        fast(),
        vec![Answer::Error(tonic::Code::Internal), Answer::Ok],
    );
    let error = send(&mut svc, request()).await.unwrap_err();
    assert_eq!(
        tonic::Status::from_error(error).code(),
        tonic::Code::Internal
    );
    assert_eq!(attempts(&seen), 1);
}

#[tokio::test]
async fn retries_a_real_channel_that_cannot_connect() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let uri = format!("http://127.0.0.1:{port}");
    let channel = tonic::transport::Endpoint::from_shared(uri.clone())
        .unwrap()
        .connect_lazy();
    let (events, _guard) = capture_events();
    let mut svc = Retry::new(channel, fast().max_attempts(3));
    let mut request = request();
    *request.uri_mut() = format!("{uri}/test.Svc/Method").parse().unwrap();
    let error = send(&mut svc, request).await.unwrap_err();
    assert_eq!(
        tonic::Status::from_error(error).code(),
        tonic::Code::Unavailable
    );
    assert_eq!(retry_events(&events).len(), 2);
}

#[tokio::test]
async fn sends_a_body_over_the_buffer_limit_once() {
    let (svc, seen) = mock(vec![unavailable(), Answer::Ok]);
    let mut svc = ServiceBuilder::new()
        .layer(RetryLayer::new(fast()).buffer_limit(8))
        .service(svc);
    let response = send(&mut svc, request()).await.unwrap();
    assert_eq!(grpc_status(&response), Some("14"));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body, Bytes::from_static(b"\0\0\0\0\x05hello"));
}

/// A request body fed by a channel: a live client stream.
struct Streamed(tokio::sync::mpsc::Receiver<Bytes>);

impl http_body::Body for Streamed {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, tonic::Status>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(http_body::Frame::data(c))))
    }
}

#[tokio::test]
async fn passes_a_live_stream_through_once() {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(Bytes::from_static(b"first ")).await.unwrap();
    let (mut svc, seen) = layered(fast(), vec![unavailable(), Answer::Ok]);
    let mut request = request();
    *request.body_mut() = Body::new(Streamed(rx));
    let feed = async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        tx.send(Bytes::from_static(b"second")).await.unwrap();
    };
    let (response, ()) = tokio::join!(send(&mut svc, request), feed);
    let response = response.unwrap();
    assert_eq!(grpc_status(&response), Some("14"));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body, "first second");
}

// Paused clock: the mock answers at once, so the pushback is the only virtual time passing.
#[tokio::test(start_paused = true)]
async fn honours_pushback() {
    let pushback = Answer::Headers(vec![
        ("grpc-status", "14"),
        ("grpc-retry-pushback-ms", "80"),
    ]);
    let (mut svc, seen) = layered(fast(), vec![pushback, Answer::Ok]);
    let start = tokio::time::Instant::now();
    send(&mut svc, request()).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(80));
    assert_eq!(attempts(&seen), 2);
}

// Paused clock: the mock answers at once, so the pushback is the only virtual time passing.
#[tokio::test(start_paused = true)]
async fn honours_retry_info_in_the_details() {
    let throttled = Answer::Status(Arc::new(|| {
        ErrorBuilder::new(StatusCode::ConnThrottled)
            .retry_after(Duration::from_millis(70))
            .build()
    }));
    let (mut svc, seen) = layered(fast(), vec![throttled, Answer::Ok]);
    let start = tokio::time::Instant::now();
    send(&mut svc, request()).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(70));
    assert_eq!(attempts(&seen), 2);
}

// Paused clock: the mock answers at once, so the pushback is the only virtual time passing.
#[tokio::test(start_paused = true)]
async fn honours_http_retry_after() {
    let (mut svc, seen) = layered(
        fast(),
        vec![Answer::Http(429, vec![("retry-after", "1")]), Answer::Ok],
    );
    let start = tokio::time::Instant::now();
    send(&mut svc, request()).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(attempts(&seen), 2);
}

#[tokio::test]
async fn stops_when_pushback_says_do_not_retry() {
    let refuse = Answer::Headers(vec![
        ("grpc-status", "14"),
        ("grpc-retry-pushback-ms", "-1"),
    ]);
    let (mut svc, seen) = layered(fast(), vec![refuse, Answer::Ok]);
    let response = send(&mut svc, request()).await.unwrap();
    assert_eq!(grpc_status(&response), Some("14"));
    assert_eq!(attempts(&seen), 1);
}

// Paused clock: stopping at once takes no virtual time at all; a sleep would show.
#[tokio::test(start_paused = true)]
async fn stops_at_once_when_pushback_ends_past_the_deadline() {
    let pushback = Answer::Headers(vec![
        ("grpc-status", "14"),
        ("grpc-retry-pushback-ms", "5000"),
    ]);
    let policy = fast().deadline(Duration::from_millis(500));
    let (mut svc, seen) = layered(policy, vec![pushback, Answer::Ok]);
    let start = tokio::time::Instant::now();
    let response = send(&mut svc, request()).await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(grpc_status(&response), Some("14"));
    assert_eq!(attempts(&seen), 1);
}

// Paused clock: the mock answers at once, so virtual time is the sum of the backoff sleeps, with
// no scheduling slack to allow for (the timer's 1 ms rounding never goes past the deadline).
#[tokio::test(start_paused = true)]
async fn never_sleeps_past_the_deadline() {
    let deadline = Duration::from_millis(100);
    let policy = Policy::new()
        .no_budget()
        .max_attempts(100)
        .backoff(Backoff::new(
            Duration::from_millis(40),
            Duration::from_millis(200),
        ))
        .deadline(deadline);
    let (mut svc, _) = layered(policy, vec![unavailable()]);
    for _ in 0..10 {
        let start = tokio::time::Instant::now();
        send(&mut svc, request()).await.unwrap();
        // No sleep ends past the deadline.
        let elapsed = start.elapsed();
        assert!(elapsed <= deadline, "{elapsed:?}");
    }
}

// Paused clock: the two 50 ms pushbacks are the only virtual time passing, so each retry carries
// exactly what is left of the 400 ms, and stopping at once takes no time.
#[tokio::test(start_paused = true)]
async fn grpc_timeout_shortens_the_deadline_and_retries_carry_what_is_left() {
    let pushback = Answer::Headers(vec![
        ("grpc-status", "14"),
        ("grpc-retry-pushback-ms", "50"),
    ]);
    let (mut svc, seen) = layered(fast(), vec![pushback.clone(), pushback, Answer::Ok]);
    let mut timed = request();
    timed
        .headers_mut()
        .insert("grpc-timeout", "400m".parse().unwrap());
    send(&mut svc, timed).await.unwrap();
    let timeouts = sent_timeouts(&seen);
    assert_eq!(
        timeouts,
        [400, 350, 300].map(Duration::from_millis),
        "{timeouts:?}"
    );

    // A pushback longer than the call's own timeout: stop at once, though the policy's
    // deadline (30 s) would allow it.
    let long = Answer::Headers(vec![
        ("grpc-status", "14"),
        ("grpc-retry-pushback-ms", "1000"),
    ]);
    let (mut svc, seen) = layered(fast(), vec![long, Answer::Ok]);
    let mut timed = request();
    timed
        .headers_mut()
        .insert("grpc-timeout", "200m".parse().unwrap());
    let start = tokio::time::Instant::now();
    send(&mut svc, timed).await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(attempts(&seen), 1);
}

#[tokio::test(start_paused = true)]
async fn a_grpc_timeout_past_the_deadline_goes_out_as_the_time_left() {
    let policy = fast().deadline(Duration::from_secs(2));
    let (mut svc, seen) = layered(policy, vec![unavailable(), Answer::Ok]);
    let mut timed = request();
    timed
        .headers_mut()
        .insert("grpc-timeout", "60S".parse().unwrap());
    send(&mut svc, timed).await.unwrap();
    let timeouts = sent_timeouts(&seen);
    assert_eq!(timeouts.len(), 2);
    // The server learns the bound the client holds it to, from the first attempt on.
    assert!(timeouts[0] <= Duration::from_secs(2), "{timeouts:?}");
    assert!(timeouts[1] <= timeouts[0], "{timeouts:?}");
}

/// The `grpc-timeout` each attempt went out with.
fn sent_timeouts(seen: &Mutex<Vec<Seen>>) -> Vec<Duration> {
    seen.lock()
        .unwrap()
        .iter()
        .map(|s| parse_timeout(s.headers["grpc-timeout"].to_str().unwrap()))
        .collect()
}

fn parse_timeout(value: &str) -> Duration {
    let (digits, unit) = value.split_at(value.len() - 1);
    let n: u64 = digits.parse().unwrap();
    match unit {
        "n" => Duration::from_nanos(n),
        "u" => Duration::from_micros(n),
        "m" => Duration::from_millis(n),
        "S" => Duration::from_secs(n),
        other => panic!("unexpected unit {other}"),
    }
}

#[tokio::test]
async fn malformed_grpc_timeout_is_ignored() {
    let (mut svc, seen) = layered(fast(), vec![unavailable(), Answer::Ok]);
    let mut bad = request();
    bad.headers_mut()
        .insert("grpc-timeout", "123456789m".parse().unwrap());
    send(&mut svc, bad).await.unwrap();
    assert_eq!(attempts(&seen), 2);
}

// Paused clock: the future is dropped exactly 30 ms into the 100 ms wait, however loaded the
// machine.
#[tokio::test(start_paused = true)]
async fn dropping_the_future_mid_backoff_stops_all_attempts() {
    let pushback = Answer::Headers(vec![
        ("grpc-status", "14"),
        ("grpc-retry-pushback-ms", "100"),
    ]);
    let (mut svc, seen) = layered(fast(), vec![pushback]);
    let start = tokio::time::Instant::now();
    let future = svc.ready().await.unwrap().call(request());
    // The first attempt runs, then the future sleeps; it is dropped 30 ms into the 100 ms wait.
    assert!(tokio::time::timeout(Duration::from_millis(30), future)
        .await
        .is_err());
    assert_eq!(start.elapsed(), Duration::from_millis(30));
    assert_eq!(attempts(&seen), 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(attempts(&seen), 1);
}

// A `tracing` subscriber recording every event's fields.
type Events = Arc<Mutex<Vec<HashMap<String, String>>>>;

struct Capture(Events);

struct Fields<'a>(&'a mut HashMap<String, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.to_string());
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = HashMap::new();
        event.record(&mut Fields(&mut fields));
        fields.insert("level".into(), event.metadata().level().to_string());
        self.0.lock().unwrap().push(fields);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn capture_events() -> (Events, tracing::subscriber::DefaultGuard) {
    let events = Events::default();
    let guard = tracing::subscriber::set_default(Capture(events.clone()));
    // `tracing` caches each callsite's interest process-wide, computed by the first thread to
    // reach it: a sibling test with no subscriber reaching the "retrying" event first caches
    // `never`, and this test would record no retry at all. Reach it here (one retried call, on
    // a thread of its own under the paused clock), then recompute every cached interest from
    // this thread, whose default is the capture.
    std::thread::spawn(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let policy = Policy::new().no_budget().max_attempts(2);
        let _ = runtime.block_on(retry::call(&policy, || async {
            Err::<tonic::Response<BaseResponse>, _>(tonic::Status::unavailable("reach"))
        }));
    })
    .join()
    .unwrap();
    tracing::callsite::rebuild_interest_cache();
    events.lock().unwrap().clear();
    (events, guard)
}

fn retry_events(events: &Events) -> Vec<HashMap<String, String>> {
    let events = events.lock().unwrap();
    events
        .iter()
        .filter(|e| e.get("message").map(String::as_str) == Some("retrying"))
        .cloned()
        .collect()
}

#[tokio::test]
async fn emits_a_tracing_event_for_each_retry() {
    let busy = Answer::Headers(vec![
        ("grpc-status", "14"),
        ("clarifai-status-code", "21354"),
    ]);
    let pushback = Answer::Headers(vec![
        ("grpc-status", "14"),
        ("grpc-retry-pushback-ms", "15"),
    ]);
    let (mut svc, _) = layered(fast(), vec![busy, pushback, Answer::Ok]);
    let (events, _guard) = capture_events();
    send(&mut svc, request()).await.unwrap();
    let retries = retry_events(&events);
    assert_eq!(retries.len(), 2);
    assert_eq!(retries[0]["code"], "MODEL_BUSY_PLEASE_RETRY");
    assert_eq!(retries[0]["attempt"], "1");
    assert!(retries[0]["delay_ms"].parse::<u64>().unwrap() <= 1);
    assert_eq!(retries[1]["code"], "UNAVAILABLE");
    assert_eq!(retries[1]["attempt"], "2");
    assert_eq!(retries[1]["delay_ms"], "15");
    assert!(retries.iter().all(|e| e["level"] == "DEBUG"));
}

#[tokio::test]
async fn calls_can_be_spawned() {
    let (mut svc, seen) = layered(fast(), vec![unavailable(), Answer::Ok]);
    let call =
        tokio::spawn(async move { svc.ready().await.unwrap().call(request()).await.is_ok() });
    assert!(call.await.unwrap());
    assert_eq!(attempts(&seen), 2);
}

#[tokio::test]
async fn every_attempt_carries_the_attempt_timeout_in_grpc_timeout_capped_by_the_time_left() {
    let policy = || fast().attempt_timeout(Duration::from_millis(300));
    let (mut svc, seen) = layered(policy(), vec![unavailable(), Answer::Ok]);
    send(&mut svc, request()).await.unwrap();
    let timeouts = sent_timeouts(&seen);
    assert_eq!(timeouts, [Duration::from_millis(300); 2]);

    // The call's own timeout is sooner: it is what the attempt carries.
    let (mut svc, seen) = layered(policy(), vec![Answer::Ok]);
    let mut timed = request();
    timed
        .headers_mut()
        .insert("grpc-timeout", "100m".parse().unwrap());
    send(&mut svc, timed).await.unwrap();
    let sent = parse_timeout(
        seen.lock().unwrap()[0].headers["grpc-timeout"]
            .to_str()
            .unwrap(),
    );
    assert!(sent <= Duration::from_millis(100), "{sent:?}");
}
