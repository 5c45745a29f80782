//! What `StatusLayer` costs a server.
//!
//! (a) In process, no network: a `tower::service_fn` answering a typical unary OK gRPC response
//!     (headers, a small body, trailers with `grpc-status: 0`), bare and wrapped in
//!     `StatusLayer`, each call polled to the end of its body, trailers included, so the body
//!     wrapper's cost counts. Criterion benchmarks each path, then a paired benchmark alternates
//!     the two in chunks within every sample; the table gives the median added ns per call over
//!     those interleaved samples. The error path (a Trailers-Only NOT_FOUND the layer stamps) is
//!     measured the same way, for information.
//! (b) On loopback: real tonic servers on 127.0.0.1 answering the crate's `StatusTester` service
//!     with OK, one bare, one layered, the whole test server (`clarifai_status_testing::TestServer`, as
//!     `clarifai-status serve` runs it) and a second bare one as a control, each called by its own
//!     real tonic client, unary calls one at a time. Each round runs the four in a rotated order;
//!     the table gives each server's median throughput over the rounds, the ratio of medians to
//!     the bare server, and the median of per-round ratios. The control's ratio shows the noise of
//!     the method on this machine.
//!
//! `cargo bench --features server --bench server`

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clarifai_status::pb;
use clarifai_status::server::status::StatusLayer;
use clarifai_status::StatusCode;
use clarifai_status_testing::pb::status_tester_client::StatusTesterClient;
use clarifai_status_testing::pb::status_tester_server::StatusTesterServer;
use clarifai_status_testing::pb::RaiseRequest;
use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::{Body, Frame};
use tower::{Layer, Service};

mod common;
use common::{median, OkTester, Samples};

/// Paired in-process benchmark: calls per chunk, alternating bare and layered.
const CHUNK: u64 = 256;
/// Loopback: rounds per server, and sequential unary calls per round.
const ROUNDS: usize = 20;
const CALLS_PER_ROUND: usize = 1_000;

/// A unary gRPC response body: one data frame, then the trailers.
#[derive(Debug)]
struct UnaryBody {
    data: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl Body for UnaryBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(data) = this.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && self.trailers.is_none()
    }
}

/// A gRPC message frame (flag, length, then 23 bytes of protobuf): a `RaiseResponse` with status
/// SUCCESS, description "Ok", a request id, and attempt 1.
const MESSAGE: &[u8] =
    b"\x00\x00\x00\x00\x17\x0a\x13\x08\x90\x4e\x12\x02Ok\x3a\x0areq-000042\x10\x01";

/// What tonic answers a successful unary call with: content-type, one message, `grpc-status: 0`.
fn ok_response() -> Response<UnaryBody> {
    let mut trailers = HeaderMap::with_capacity(1);
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let mut response = Response::new(UnaryBody {
        data: Some(Bytes::from_static(MESSAGE)),
        trailers: Some(trailers),
    });
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    response
}

/// What tonic answers a failed unary call with: a Trailers-Only response without a Clarifai code
/// (so the layer stamps it).
fn error_response() -> Response<UnaryBody> {
    tonic::Status::not_found("no such model")
        .into_http::<()>()
        .map(|()| UnaryBody {
            data: None,
            trailers: None,
        })
}

/// One call, polled to completion with a no-op waker (every future here is ready at once), its
/// body read to the end, trailers included.
fn call_once<S, B>(service: &mut S, cx: &mut Context<'_>)
where
    S: Service<Request<()>, Response = Response<B>, Error = Infallible>,
    B: Body,
{
    let Poll::Ready(Ok(())) = service.poll_ready(cx) else {
        unreachable!("service_fn is always ready")
    };
    let future = pin!(service.call(Request::new(())));
    let Poll::Ready(Ok(response)) = future.poll(cx) else {
        unreachable!("the handler answers at once")
    };
    let (parts, body) = response.into_parts();
    black_box(&parts);
    let mut body = pin!(body);
    while let Poll::Ready(Some(frame)) = body.as_mut().poll_frame(cx) {
        black_box(&frame);
    }
}

static SAMPLES: Samples = Samples::new();

/// Seconds taken by `n` calls.
fn time_calls<S, B>(service: &mut S, n: u64) -> Duration
where
    S: Service<Request<()>, Response = Response<B>, Error = Infallible>,
    B: Body,
{
    let mut cx = Context::from_waker(Waker::noop());
    let start = Instant::now();
    for _ in 0..n {
        call_once(service, &mut cx);
    }
    start.elapsed()
}

/// Benchmarks `bare` and `layered` alone, then both in every sample, alternating chunk by chunk
/// so that drift from other load on the machine hits them alike; records the paired figures.
fn bench_pair<S, L, B, C>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    path: &str,
    mut bare: S,
    mut layered: L,
) where
    S: Service<Request<()>, Response = Response<B>, Error = Infallible>,
    L: Service<Request<()>, Response = Response<C>, Error = Infallible>,
    B: Body,
    C: Body,
{
    group.bench_function(format!("bare, {path}"), |b| {
        b.iter_custom(|iters| time_calls(&mut bare, iters))
    });
    group.bench_function(format!("StatusLayer, {path}"), |b| {
        b.iter_custom(|iters| time_calls(&mut layered, iters))
    });
    group.bench_function(format!("paired (bare + StatusLayer), {path}"), |b| {
        b.iter_custom(|iters| {
            let (mut bare_time, mut layered_time, mut done) = (Duration::ZERO, Duration::ZERO, 0);
            while done < iters {
                let n = CHUNK.min(iters - done);
                if (done / CHUNK).is_multiple_of(2) {
                    bare_time += time_calls(&mut bare, n);
                    layered_time += time_calls(&mut layered, n);
                } else {
                    layered_time += time_calls(&mut layered, n);
                    bare_time += time_calls(&mut bare, n);
                }
                done += n;
            }
            let per = |t: Duration| t.as_nanos() as f64 / iters as f64;
            SAMPLES.record("", &format!("bare, {path}"), per(bare_time));
            SAMPLES.record("", &format!("layered, {path}"), per(layered_time));
            SAMPLES.record(
                "",
                &format!("added, {path}"),
                per(layered_time) - per(bare_time),
            );
            bare_time + layered_time
        })
    });
}

fn in_process(c: &mut Criterion) {
    let ok = || tower::service_fn(|_: Request<()>| std::future::ready(Ok(ok_response())));
    let error = || tower::service_fn(|_: Request<()>| std::future::ready(Ok(error_response())));
    let mut g = c.benchmark_group("in_process");
    bench_pair(&mut g, "OK", ok(), StatusLayer::new().layer(ok()));
    bench_pair(&mut g, "error", error(), StatusLayer::new().layer(error()));
    g.finish();
}

fn in_process_summary() {
    if SAMPLES.figure("", "added, OK").is_none() {
        return;
    }
    println!("\n## in_process: ns per call, bare vs StatusLayer, paired samples\n");
    println!(
        "| path | bare ns | layered ns | added ns (median of paired differences) | target | |"
    );
    println!("|---|---:|---:|---:|---|---|");
    for (path, target) in [("OK", Some(500.0)), ("error", None)] {
        let (Some(bare), Some(layered), Some(added)) = (
            SAMPLES.figure("", &format!("bare, {path}")),
            SAMPLES.figure("", &format!("layered, {path}")),
            SAMPLES.figure("", &format!("added, {path}")),
        ) else {
            continue;
        };
        let (target, verdict) = match target {
            Some(limit) => (
                format!("<= {limit} ns"),
                if added <= limit { "met" } else { "NOT met" },
            ),
            None => (String::new(), ""),
        };
        println!("| {path} | {bare:.1} | {layered:.1} | {added:.1} | {target} | {verdict} |");
    }
    println!();
}

type AnyError = Box<dyn std::error::Error + Send + Sync>;

async fn serve(layered: bool) -> Result<std::net::SocketAddr, AnyError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let service = StatusTesterServer::new(OkTester::default());
    if layered {
        let router = tonic::transport::Server::builder()
            .layer(StatusLayer::new())
            .add_service(service);
        tokio::spawn(router.serve_with_incoming(incoming));
    } else {
        let router = tonic::transport::Server::builder().add_service(service);
        tokio::spawn(router.serve_with_incoming(incoming));
    }
    Ok(addr)
}

type Client = StatusTesterClient<tonic::transport::Channel>;

/// Seconds taken by `calls` sequential unary calls.
async fn round(client: &mut Client, calls: usize) -> Result<f64, AnyError> {
    // A Raise of SUCCESS: the test server answers it in the body, as the others answer any call.
    let request = RaiseRequest {
        status: Some(pb::Status {
            code: StatusCode::Success as i32,
            ..Default::default()
        }),
        ..Default::default()
    };
    let start = Instant::now();
    for _ in 0..calls {
        let response = client.raise(request.clone()).await?;
        black_box(response);
    }
    Ok(start.elapsed().as_secs_f64())
}

/// The test server `clarifai-status serve` runs, with its default limits: its connections go
/// through the limits' guard and the rewriting of h2's own answers, its service through
/// `StatusLayer`, the V2 dispatch and the tester's scenarios and counters.
async fn serve_test_server() -> Result<std::net::SocketAddr, AnyError> {
    let bound = clarifai_status_testing::TestServer::new().bind("127.0.0.1:0".parse()?, None)?;
    let addr = bound.grpc_addr();
    tokio::spawn(bound.serve_with_shutdown(std::future::pending()));
    Ok(addr)
}

async fn loopback(rounds: usize, calls: usize) -> Result<(), AnyError> {
    // Paths: the bare server, the layered one, the whole test server, and a second bare server
    // as a control (its ratio to the first shows the noise of the method on this machine).
    const NAMES: [&str; 4] = [
        "bare",
        "StatusLayer",
        "TestServer (serve's whole stack)",
        "bare again (control)",
    ];
    let mut clients = Vec::with_capacity(NAMES.len());
    for path in 0..NAMES.len() {
        let addr = match path {
            1 => serve(true).await?,
            2 => serve_test_server().await?,
            _ => serve(false).await?,
        };
        let mut client = StatusTesterClient::connect(format!("http://{addr}")).await?;
        round(&mut client, calls).await?;
        clients.push(client);
    }

    // calls/s per round and path; each round runs the paths in a rotated order.
    let mut rates = vec![[0.0f64; NAMES.len()]; rounds];
    for (i, rates) in rates.iter_mut().enumerate() {
        for k in 0..NAMES.len() {
            let path = (i + k) % NAMES.len();
            rates[path] = calls as f64 / round(&mut clients[path], calls).await?;
        }
    }
    let column = |path: usize| rates.iter().map(|r| r[path]).collect::<Vec<_>>();
    let bare = median(&column(0));
    println!(
        "\n## loopback: unary calls/s, {rounds} rounds x {calls} sequential calls per path, \
         paths rotated each round\n"
    );
    println!(
        "| server | median calls/s | median us/call | min..max calls/s | ratio of medians to bare \
         | median of per-round ratios |"
    );
    println!("|---|---:|---:|---|---:|---:|");
    for (path, name) in NAMES.iter().enumerate() {
        let col = column(path);
        let rate = median(&col);
        let min = col.iter().copied().fold(f64::INFINITY, f64::min);
        let max = col.iter().copied().fold(0.0, f64::max);
        let per_round: Vec<f64> = rates.iter().map(|r| r[path] / r[0]).collect();
        println!(
            "| {name} | {rate:.0} | {:.1} | {min:.0}..{max:.0} | {:.3} | {:.3} |",
            1e6 / rate,
            rate / bare,
            median(&per_round)
        );
    }
    let layered = median(&column(1));
    println!(
        "\nStatusLayer / bare, ratio of medians: {:.3}; added per call: {:.2} us. The control row \
         shows the noise of the method.\n",
        layered / bare,
        1e6 / layered - 1e6 / bare
    );
    Ok(())
}

/// Runs the loopback comparison (a short one under `cargo test --benches`).
fn loopback_bench(_c: &mut Criterion) {
    in_process_summary();
    common::run_loopback((ROUNDS, CALLS_PER_ROUND), loopback);
}

criterion_group! {
    name = benches;
    config = common::criterion(2);
    targets = in_process, loopback_bench
}
criterion_main!(benches);
