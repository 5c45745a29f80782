//! What the retry layer costs a call that succeeds.
//!
//! (a) In process, no network: a tower service answering a unary OK at once (after draining the
//!     request body, as a channel sends it), bare and wrapped in `RetryLayer` with
//!     `Policy::new()`, called with a realistic small unary request (tonic's headers, a 5-byte
//!     gRPC frame header and a 240-byte message). Every future is ready at once and is polled
//!     with a no-op waker. Criterion benchmarks each path; a paired benchmark alternates the two
//!     in chunks within every sample, and the table gives the median added ns per call over those
//!     interleaved samples (body buffering included).
//! (b) On loopback: a real tonic server on 127.0.0.1 (a hand-written unary service behind
//!     `tonic::server::Grpc`), one channel, called through `tonic::client::Grpc` bare, through
//!     `RetryLayer`, and bare again as a control, unary calls one at a time. Each round runs the
//!     three in a rotated order; the table gives each path's median throughput, the ratio of
//!     medians to the bare path, and the median of per-round ratios. The control's ratio shows
//!     the noise of the method on this machine.
//!
//! (c) The in-body read, in process: the same call answered the way Clarifai answers (HTTP 200,
//!     one status-only message `BaseResponse { status: SUCCESS }`, then `grpc-status: 0`
//!     trailers), its body read to the end by the caller, through `RetryLayer` with the read of
//!     in-body statuses off (`in_body(false)`) and on (the default), paired as in (a). Target:
//!     the read adds at most 300 ns.
//! (d) On loopback, (b) answers a Clarifai-shaped message too, and also runs through
//!     `RetryLayer` with the read off: the read on against off, within 2 %.
//!
//! `cargo bench --features retry --bench retry`

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Buf as _, BufMut as _, Bytes};
use clarifai_status::pb;
use clarifai_status::retry::{BoxError, Policy, Retry, RetryLayer};
use criterion::{criterion_group, criterion_main, Criterion};
use http::header::{HeaderValue, CONTENT_TYPE, TE, USER_AGENT};
use http::uri::PathAndQuery;
use http::{Method, Request, Response, Uri, Version};
use http_body::Body as _;
use prost::Message as _;
use tonic::body::Body;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tower::{Layer, Service};

mod common;
use common::{median, Samples};

/// Paired in-process benchmark: calls per chunk, alternating bare and layered.
const CHUNK: u64 = 256;
/// Loopback: rounds per path, and sequential unary calls per round.
const ROUNDS: usize = 60;
const CALLS_PER_ROUND: usize = 500;

/// A small unary request message (a 240-byte payload), as the client sends it.
const MESSAGE: [u8; 240] = [0x2a; 240];

fn framed() -> Bytes {
    let mut frame = Vec::with_capacity(5 + MESSAGE.len());
    frame.push(0);
    frame.extend_from_slice(&(MESSAGE.len() as u32).to_be_bytes());
    frame.extend_from_slice(&MESSAGE);
    Bytes::from(frame)
}

/// A request as tonic's client builds it for a unary call.
fn request(body: &Bytes) -> Request<Body> {
    let mut request = Request::new(Body::new(http_body_util::Full::new(body.clone())));
    *request.method_mut() = Method::POST;
    *request.uri_mut() =
        Uri::from_static("http://127.0.0.1:50051/clarifai.api.V2/PostModelOutputs");
    *request.version_mut() = Version::HTTP_2;
    let headers = request.headers_mut();
    headers.insert(TE, HeaderValue::from_static("trailers"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert(USER_AGENT, HeaderValue::from_static("tonic/0.14.9"));
    request
}

/// The in-process server: drains the request body, as a channel sends it, and answers OK.
fn server() -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone {
    tower::service_fn(|request: Request<Body>| {
        let mut cx = Context::from_waker(Waker::noop());
        let mut body = pin!(request.into_body());
        while let Poll::Ready(Some(frame)) = body.as_mut().poll_frame(&mut cx) {
            black_box(&frame);
        }
        let mut response = Response::new(Body::empty());
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        std::future::ready(Ok(response))
    })
}

/// One call, polled to completion with a no-op waker (every future here is ready at once).
fn call_once<S>(service: &mut S, body: &Bytes, cx: &mut Context<'_>)
where
    S: Service<Request<Body>, Response = Response<Body>>,
{
    let Poll::Ready(Ok(())) = service.poll_ready(cx) else {
        unreachable!("the mock is always ready")
    };
    let future = pin!(service.call(request(body)));
    let Poll::Ready(Ok(response)) = future.poll(cx) else {
        unreachable!("the mock answers at once")
    };
    black_box(response);
}

static SAMPLES: Samples = Samples::new();

fn time_calls<S>(service: &mut S, body: &Bytes, calls: u64) -> Duration
where
    S: Service<Request<Body>, Response = Response<Body>>,
{
    let mut cx = Context::from_waker(Waker::noop());
    let start = Instant::now();
    for _ in 0..calls {
        call_once(service, body, &mut cx);
    }
    start.elapsed()
}

/// Times `first` and `second` for `iters` calls each, in every sample, alternating chunk by
/// chunk so drift hits them alike; records each one's ns per call and their difference
/// (`second` - `first`, as "added") under `group`.
fn paired(
    iters: u64,
    (group, first_name, second_name): (&'static str, &'static str, &'static str),
    mut first: impl FnMut(u64) -> Duration,
    mut second: impl FnMut(u64) -> Duration,
) -> Duration {
    let (mut first_time, mut second_time, mut done) = (Duration::ZERO, Duration::ZERO, 0);
    while done < iters {
        let n = CHUNK.min(iters - done);
        if (done / CHUNK).is_multiple_of(2) {
            first_time += first(n);
            second_time += second(n);
        } else {
            second_time += second(n);
            first_time += first(n);
        }
        done += n;
    }
    let per = |t: Duration| t.as_nanos() as f64 / iters as f64;
    SAMPLES.record(group, first_name, per(first_time));
    SAMPLES.record(group, second_name, per(second_time));
    SAMPLES.record(group, "added", per(second_time) - per(first_time));
    first_time + second_time
}

fn in_process(c: &mut Criterion) {
    let body = framed();
    let mut bare = server();
    let mut layered = RetryLayer::new(Policy::new()).layer(server());
    let mut g = c.benchmark_group("in_process");
    g.bench_function("bare", |b| {
        b.iter_custom(|iters| time_calls(&mut bare, &body, iters))
    });
    g.bench_function("RetryLayer", |b| {
        b.iter_custom(|iters| time_calls(&mut layered, &body, iters))
    });
    g.bench_function("paired (bare + RetryLayer)", |b| {
        b.iter_custom(|iters| {
            paired(
                iters,
                ("", "bare", "layered"),
                |n| time_calls(&mut bare, &body, n),
                |n| time_calls(&mut layered, &body, n),
            )
        })
    });
    g.finish();
}

fn in_process_summary() {
    let (Some(bare), Some(layered), Some(added)) = (
        SAMPLES.figure("", "bare"),
        SAMPLES.figure("", "layered"),
        SAMPLES.figure("", "added"),
    ) else {
        return;
    };
    println!("\n## in_process: ns per successful unary call, paired samples\n");
    println!("| bare ns | RetryLayer ns | added ns (median of paired differences) | target |");
    println!("|---:|---:|---:|---|");
    let verdict = if added <= 500.0 { "met" } else { "NOT met" };
    println!("| {bare:.1} | {layered:.1} | {added:.1} | <= 500 ns: {verdict} |\n");
}

/// A Clarifai answer: `BaseResponse { status: SUCCESS, "Ok" }`, unframed.
fn success_message() -> Bytes {
    pb::BaseResponse {
        status: Some(pb::Status {
            code: 10000,
            description: "Ok".into(),
            ..Default::default()
        }),
    }
    .encode_to_vec()
    .into()
}

/// The in-process server answering the Clarifai way: drains the request, answers one framed
/// status-only message and OK trailers.
fn clarifai_server(
) -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone {
    common::answering(common::frame(&success_message()))
}

/// One call, its response body read to the end, as tonic's client reads it.
fn call_and_read<S>(service: &mut S, body: &Bytes, cx: &mut Context<'_>)
where
    S: Service<Request<Body>, Response = Response<Body>>,
{
    let Poll::Ready(Ok(())) = service.poll_ready(cx) else {
        unreachable!("the mock is always ready")
    };
    let future = pin!(service.call(request(body)));
    let Poll::Ready(Ok(response)) = future.poll(cx) else {
        unreachable!("the mock answers at once")
    };
    let mut body = pin!(response.into_body());
    while let Poll::Ready(Some(frame)) = body.as_mut().poll_frame(cx) {
        black_box(frame.ok());
    }
}

fn time_read_calls<S>(service: &mut S, body: &Bytes, calls: u64) -> Duration
where
    S: Service<Request<Body>, Response = Response<Body>>,
{
    let mut cx = Context::from_waker(Waker::noop());
    let start = Instant::now();
    for _ in 0..calls {
        call_and_read(service, body, &mut cx);
    }
    start.elapsed()
}

fn in_body_read(c: &mut Criterion) {
    let body = framed();
    let mut off = RetryLayer::new(Policy::new())
        .in_body(false)
        .layer(clarifai_server());
    let mut on = RetryLayer::new(Policy::new()).layer(clarifai_server());
    let mut g = c.benchmark_group("in_body_read");
    g.bench_function("RetryLayer, read off", |b| {
        b.iter_custom(|iters| time_read_calls(&mut off, &body, iters))
    });
    g.bench_function("RetryLayer, read on", |b| {
        b.iter_custom(|iters| time_read_calls(&mut on, &body, iters))
    });
    g.bench_function("paired (read off + read on)", |b| {
        b.iter_custom(|iters| {
            paired(
                iters,
                ("in_body", "off", "on"),
                |n| time_read_calls(&mut off, &body, n),
                |n| time_read_calls(&mut on, &body, n),
            )
        })
    });
    g.finish();
}

fn in_body_summary() {
    let (Some(off), Some(on), Some(added)) = (
        SAMPLES.figure("in_body", "off"),
        SAMPLES.figure("in_body", "on"),
        SAMPLES.figure("in_body", "added"),
    ) else {
        return;
    };
    println!("\n## in_body_read: ns per successful unary call answered in-body, paired samples\n");
    println!("| RetryLayer, read off ns | RetryLayer, read on ns | added ns (median of paired differences) | target |");
    println!("|---:|---:|---:|---|");
    let verdict = if added <= 300.0 { "met" } else { "NOT met" };
    println!("| {off:.1} | {on:.1} | {added:.1} | <= 300 ns: {verdict} |\n");
}

/// Bytes in, bytes out: the messages are opaque to the benchmark.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// The loopback server: one unary method answering a status-only Clarifai message (SUCCESS).
#[derive(Debug, Clone, Copy)]
struct Echo;

impl tonic::server::NamedService for Echo {
    const NAME: &'static str = "bench.Echo";
}

impl Service<Request<Body>> for Echo {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let reply = tower::service_fn(|_: tonic::Request<Bytes>| {
            std::future::ready(Ok(tonic::Response::new(success_message())))
        });
        Box::pin(async move {
            Ok(tonic::server::Grpc::new(RawCodec)
                .unary(reply, request)
                .await)
        })
    }
}

async fn serve() -> Result<std::net::SocketAddr, BoxError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let router = tonic::transport::Server::builder().add_service(Echo);
    tokio::spawn(router.serve_with_incoming(incoming));
    Ok(addr)
}

/// Seconds taken by `calls` sequential unary calls.
async fn round<S>(client: &mut tonic::client::Grpc<S>, calls: usize) -> Result<f64, BoxError>
where
    S: tonic::client::GrpcService<Body>,
    S::Error: Into<BoxError>,
    S::ResponseBody: http_body::Body<Data = Bytes> + Send + 'static,
    <S::ResponseBody as http_body::Body>::Error: Into<BoxError> + Send,
{
    let path = PathAndQuery::from_static("/bench.Echo/Call");
    let start = Instant::now();
    for _ in 0..calls {
        client.ready().await.map_err(Into::into)?;
        let request = tonic::Request::new(Bytes::from_static(&MESSAGE));
        let response = client.unary(request, path.clone(), RawCodec).await?;
        black_box(response);
    }
    Ok(start.elapsed().as_secs_f64())
}

async fn loopback(rounds: usize, calls: usize) -> Result<(), BoxError> {
    let addr = serve().await?;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .tcp_nodelay(true)
        .connect()
        .await?;
    let mut bare = tonic::client::Grpc::new(channel.clone());
    let mut control = tonic::client::Grpc::new(channel.clone());
    let mut layered: tonic::client::Grpc<Retry<_>> =
        tonic::client::Grpc::new(RetryLayer::new(Policy::new()).layer(channel.clone()));
    let mut read_off: tonic::client::Grpc<Retry<_>> =
        tonic::client::Grpc::new(RetryLayer::new(Policy::new()).in_body(false).layer(channel));
    round(&mut bare, calls).await?;
    round(&mut control, calls).await?;
    round(&mut layered, calls).await?;
    round(&mut read_off, calls).await?;

    // calls/s per round: [bare, RetryLayer, bare again (control), RetryLayer with the in-body
    // read off], each round in a rotated order.
    const PATHS: usize = 4;
    let mut rates = [const { Vec::new() }; PATHS];
    for i in 0..rounds {
        for k in 0..PATHS {
            let path = (i + k) % PATHS;
            let seconds = match path {
                0 => round(&mut bare, calls).await?,
                1 => round(&mut layered, calls).await?,
                2 => round(&mut control, calls).await?,
                _ => round(&mut read_off, calls).await?,
            };
            rates[path].push(calls as f64 / seconds);
        }
    }
    let medians = rates.each_ref().map(|r| median(r));
    let paired = |path: usize| {
        let ratios: Vec<f64> = rates[path]
            .iter()
            .zip(&rates[0])
            .map(|(r, b)| r / b)
            .collect();
        median(&ratios)
    };
    println!(
        "\n## loopback: unary calls/s, {rounds} interleaved rounds x {calls} sequential calls\n"
    );
    println!(
        "| path | median calls/s | median us/call | min..max calls/s | ratio of medians to bare | \
         median of per-round ratios |\n|---|---:|---:|---|---:|---:|"
    );
    for (path, name) in [
        "bare channel",
        "RetryLayer (in-body read on, the default)",
        "bare channel again (control)",
        "RetryLayer, in-body read off",
    ]
    .iter()
    .enumerate()
    {
        let min = rates[path].iter().copied().fold(f64::INFINITY, f64::min);
        let max = rates[path].iter().copied().fold(0.0, f64::max);
        println!(
            "| {name} | {:.0} | {:.1} | {min:.0}..{max:.0} | {:.3} | {:.3} |",
            medians[path],
            1e6 / medians[path],
            medians[path] / medians[0],
            paired(path)
        );
    }
    let ratio = medians[1] / medians[0];
    let verdict = if ratio >= 0.98 { "met" } else { "NOT met" };
    println!(
        "\nRetryLayer / bare throughput, ratio of medians: {ratio:.3} (target: within 2%: {verdict}); \
         added per call: {:.2} us. The control row shows the noise of the method.\n",
        1e6 / medians[1] - 1e6 / medians[0]
    );
    let read = medians[1] / medians[3];
    let per_round: Vec<f64> = rates[1]
        .iter()
        .zip(&rates[3])
        .map(|(on, off)| on / off)
        .collect();
    let verdict = if read >= 0.98 { "met" } else { "NOT met" };
    println!(
        "In-body read on / off throughput, ratio of medians: {read:.3}, median of per-round \
         ratios: {:.3} (target: within 2%: {verdict}); added per call: {:.2} us.\n",
        median(&per_round),
        1e6 / medians[1] - 1e6 / medians[3]
    );
    Ok(())
}

/// Prints the in-process table, then runs the loopback comparison (a short one under
/// `cargo test --benches`).
fn loopback_bench(_c: &mut Criterion) {
    in_process_summary();
    in_body_summary();
    common::run_loopback((ROUNDS, CALLS_PER_ROUND), loopback);
}

criterion_group! {
    name = benches;
    config = common::criterion(3);
    targets = in_process, in_body_read, loopback_bench
}
criterion_main!(benches);
