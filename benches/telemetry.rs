//! What telemetry costs a call: the same stack with it off and on, side by side in one run.
//!
//! The metrics go to OpenTelemetry's SDK (`SdkMeterProvider`) with a periodic reader into the
//! in-memory exporter, its interval an hour, so it does not export during the run (it is flushed
//! once at the end, to show the calls were recorded). No `tracing` subscriber is installed: the
//! spans are disabled, as in a service that exports metrics only.
//!
//! (a) In process, no network, every future ready at once and polled with a no-op waker, each
//!     call's response body read to the end (trailers included), paired chunk by chunk in every
//!     sample; the table gives the median of the paired differences in ns per call. Target: at
//!     most 1 µs added.
//!     - server: a `tower::service_fn` answering a unary OK with one Clarifai-shaped message
//!       (status SUCCESS, as `StatusTester` answers), through `StatusLayer::new()` and through
//!       `StatusLayer::new().telemetry(..)` (which reads the first message's status as it
//!       passes);
//!     - client: `RetryLayer::new(Policy::new())` and `RetryLayer::new(Policy::new().telemetry(..))`
//!       over an in-process service answering the same way (the layer's in-body read on in both).
//! (b) On loopback: real tonic servers on 127.0.0.1 (`StatusTester` answering SUCCESS in-body)
//!     behind `StatusLayer`, each called by its own real tonic client through `RetryLayer`, unary
//!     calls one at a time: telemetry off on both sides, on at the server only, on at the client
//!     only, on at both, and off again as a control. Many short rounds, each running the paths
//!     in a rotated order, spread over sessions of new servers and connections; the table gives
//!     each path's median time per call and its ratio to the off path (ratio of medians, and the
//!     median of per-round ratios with its 95 % interval). Run on the two-worker runtime
//!     services use, then on one thread. Target: at most 1.03, met when the interval's upper
//!     end is.
//!
//! `cargo bench --features server,retry,telemetry --bench telemetry`

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clarifai_status::pb;
use clarifai_status::retry::{Policy, Retry, RetryLayer};
use clarifai_status::server::status::StatusLayer;
use clarifai_status::telemetry::Telemetry;
use clarifai_status::StatusCode;
use clarifai_status_testing::pb::status_tester_client::StatusTesterClient;
use clarifai_status_testing::pb::status_tester_server::StatusTesterServer;
use clarifai_status_testing::pb::{RaiseRequest, RaiseResponse};
use criterion::{criterion_group, criterion_main, Criterion};
use http::header::{HeaderValue, CONTENT_TYPE, TE};
use http::{Method, Request, Response, Uri, Version};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use prost::Message as _;
use tonic::body::Body;
use tower::{Layer, Service};

mod common;
use common::{median, median_interval, OkTester, Samples};

/// Paired in-process benchmark: calls per chunk, alternating off and on.
const CHUNK: u64 = 256;
/// Loopback: rounds per path, and sequential unary calls per round.
/// Many short rounds: each pair of paths is timed within milliseconds of each other, so the
/// machine's drift (other jobs, the host) moves both alike.
const ROUNDS: usize = 1200;
const CALLS_PER_ROUND: usize = 50;
/// Loopback: sessions of new servers and connections the rounds are spread over.
const SESSIONS: usize = 24;
/// The targets: added ns per call in process, and the on/off ratio of time per call on loopback.
const IN_PROCESS_TARGET_NS: f64 = 1000.0;
const LOOPBACK_TARGET: f64 = 1.03;

/// A meter provider whose reader does not export during the run.
fn provider() -> (SdkMeterProvider, InMemoryMetricExporter) {
    let exporter = InMemoryMetricExporter::default();
    let reader = PeriodicReader::builder(exporter.clone())
        .with_interval(Duration::from_secs(3600))
        .build();
    let provider = SdkMeterProvider::builder().with_reader(reader).build();
    (provider, exporter)
}

/// The in-process handler: `RaiseResponse { status: SUCCESS "Ok" req_id, attempt: 1 }` and OK
/// trailers.
fn handler() -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone {
    let message = RaiseResponse {
        status: Some(pb::Status {
            code: StatusCode::Success as i32,
            description: "Ok".into(),
            req_id: "req-000042".into(),
            ..Default::default()
        }),
        attempt: 1,
    }
    .encode_to_vec();
    common::answering(common::frame(&message))
}

/// A unary request as tonic's client builds it: a 2-byte `RaiseRequest` in its frame.
fn request() -> Request<Body> {
    let body = Bytes::from_static(b"\x00\x00\x00\x00\x02\x0a\x00");
    let mut request = Request::new(Body::new(http_body_util::Full::new(body)));
    *request.method_mut() = Method::POST;
    *request.uri_mut() =
        Uri::from_static("http://127.0.0.1:50051/clarifai.status.testing.v1.StatusTester/Raise");
    *request.version_mut() = Version::HTTP_2;
    let headers = request.headers_mut();
    headers.insert(TE, HeaderValue::from_static("trailers"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    request
}

/// One call, polled to completion with a no-op waker, its response body read to the end.
fn call_and_read<S, B>(service: &mut S, cx: &mut Context<'_>)
where
    S: Service<Request<Body>, Response = Response<B>>,
    B: http_body::Body,
{
    let Poll::Ready(Ok(())) = service.poll_ready(cx) else {
        unreachable!("the handler is always ready")
    };
    let future = pin!(service.call(request()));
    let Poll::Ready(Ok(response)) = future.poll(cx) else {
        unreachable!("the handler answers at once")
    };
    let mut body = pin!(response.into_body());
    while let Poll::Ready(Some(frame)) = body.as_mut().poll_frame(cx) {
        black_box(frame.ok());
    }
}

fn time_calls<S, B>(service: &mut S, calls: u64) -> Duration
where
    S: Service<Request<Body>, Response = Response<B>>,
    B: http_body::Body,
{
    let mut cx = Context::from_waker(Waker::noop());
    let start = Instant::now();
    for _ in 0..calls {
        call_and_read(service, &mut cx);
    }
    start.elapsed()
}

static SAMPLES: Samples = Samples::new();

/// Benchmarks `off` and `on` alone, then both in every sample, alternating chunk by chunk so
/// drift from other load hits them alike; records each one's ns per call and the difference.
fn bench_pair<S, T, B, C>(c: &mut Criterion, group: &'static str, mut off: S, mut on: T)
where
    S: Service<Request<Body>, Response = Response<B>>,
    T: Service<Request<Body>, Response = Response<C>>,
    B: http_body::Body,
    C: http_body::Body,
{
    let mut g = c.benchmark_group(group);
    g.bench_function("telemetry off", |b| {
        b.iter_custom(|iters| time_calls(&mut off, iters))
    });
    g.bench_function("telemetry on", |b| {
        b.iter_custom(|iters| time_calls(&mut on, iters))
    });
    g.bench_function("paired (off + on)", |b| {
        b.iter_custom(|iters| {
            let (mut off_time, mut on_time, mut done) = (Duration::ZERO, Duration::ZERO, 0);
            while done < iters {
                let n = CHUNK.min(iters - done);
                if (done / CHUNK).is_multiple_of(2) {
                    off_time += time_calls(&mut off, n);
                    on_time += time_calls(&mut on, n);
                } else {
                    on_time += time_calls(&mut on, n);
                    off_time += time_calls(&mut off, n);
                }
                done += n;
            }
            let per = |t: Duration| t.as_nanos() as f64 / iters as f64;
            SAMPLES.record(group, "off", per(off_time));
            SAMPLES.record(group, "on", per(on_time));
            SAMPLES.record(group, "added", per(on_time) - per(off_time));
            off_time + on_time
        })
    });
    g.finish();
}

fn in_process(c: &mut Criterion) {
    let (provider, exporter) = provider();
    let telemetry = Telemetry::new(&provider.meter("bench"));
    bench_pair(
        c,
        "server",
        StatusLayer::new().layer(handler()),
        StatusLayer::new()
            .telemetry(telemetry.clone())
            .layer(handler()),
    );
    bench_pair(
        c,
        "client",
        RetryLayer::new(Policy::new()).layer(handler()),
        RetryLayer::new(Policy::new().telemetry(telemetry)).layer(handler()),
    );
    // The calls were recorded: one data point per instrument and attribute set, counted.
    provider.force_flush().ok();
    let recorded = exporter.get_finished_metrics().map_or(0, |m| m.len());
    if SAMPLES.any_measured() {
        println!("\n(metrics exported once, after the run: {recorded} export(s))");
    }
}

fn in_process_summary() {
    if !SAMPLES.any_measured() {
        return;
    }
    println!("\n## in_process: ns per unary call, telemetry off vs on, paired samples\n");
    println!("| stack | off ns | on ns | added ns (median of paired differences) | target | |");
    println!("|---|---:|---:|---:|---|---|");
    for (group, name) in [
        ("server", "StatusLayer vs StatusLayer::telemetry"),
        ("client", "RetryLayer vs RetryLayer with Policy::telemetry"),
    ] {
        let (Some(off), Some(on), Some(added)) = (
            SAMPLES.figure(group, "off"),
            SAMPLES.figure(group, "on"),
            SAMPLES.figure(group, "added"),
        ) else {
            continue;
        };
        let verdict = if added <= IN_PROCESS_TARGET_NS {
            "met"
        } else {
            "NOT met"
        };
        println!(
            "| {name} | {off:.1} | {on:.1} | {added:.1} | <= {IN_PROCESS_TARGET_NS} ns | {verdict} |"
        );
    }
    println!();
}

type AnyError = Box<dyn std::error::Error + Send + Sync>;

async fn serve(telemetry: Option<Telemetry>) -> Result<std::net::SocketAddr, AnyError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let service = StatusTesterServer::new(OkTester {
        req_id: "req-000042",
    });
    match telemetry {
        Some(telemetry) => {
            let router = tonic::transport::Server::builder()
                .layer(StatusLayer::new().telemetry(telemetry))
                .add_service(service);
            tokio::spawn(router.serve_with_incoming(incoming));
        }
        None => {
            let router = tonic::transport::Server::builder()
                .layer(StatusLayer::new())
                .add_service(service);
            tokio::spawn(router.serve_with_incoming(incoming));
        }
    }
    Ok(addr)
}

type Client = StatusTesterClient<Retry<tonic::transport::Channel>>;

async fn client(addr: std::net::SocketAddr, policy: Policy) -> Result<Client, AnyError> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    Ok(StatusTesterClient::new(
        tower::ServiceBuilder::new()
            .layer(RetryLayer::new(policy))
            .service(channel),
    ))
}

/// Seconds taken by `calls` sequential unary calls.
async fn round(client: &mut Client, calls: usize) -> Result<f64, AnyError> {
    let request = RaiseRequest::default();
    let start = Instant::now();
    for _ in 0..calls {
        let response = client.raise(request.clone()).await?;
        black_box(response);
    }
    Ok(start.elapsed().as_secs_f64())
}

async fn loopback(runtime: &str, rounds: usize, calls: usize) -> Result<(), AnyError> {
    const NAMES: [&str; 5] = [
        "off (StatusLayer, RetryLayer)",
        "on at the server",
        "on at the client",
        "on at both",
        "off again (control)",
    ];
    let (provider, exporter) = provider();
    let telemetry = Telemetry::new(&provider.meter("bench"));
    // us per call, per round and path; each round runs the paths in a rotated order. Every
    // session has new servers and connections, so no path keeps a connection's luck (its
    // buffers' places, its tasks' workers) for the whole run.
    let sessions = SESSIONS.min(rounds);
    let mut times = vec![[0.0f64; NAMES.len()]; rounds];
    for (s, chunk) in times.chunks_mut(rounds.div_ceil(sessions)).enumerate() {
        let mut clients = Vec::with_capacity(NAMES.len());
        for path in 0..NAMES.len() {
            let (server_on, client_on) = match path {
                1 => (true, false),
                2 => (false, true),
                3 => (true, true),
                _ => (false, false),
            };
            let addr = serve(server_on.then(|| telemetry.clone())).await?;
            let policy = if client_on {
                Policy::new().telemetry(telemetry.clone())
            } else {
                Policy::new()
            };
            let mut client = client(addr, policy).await?;
            round(&mut client, calls).await?;
            clients.push(client);
        }
        for (i, times) in chunk.iter_mut().enumerate() {
            for k in 0..NAMES.len() {
                let path = (s + i + k) % NAMES.len();
                times[path] = 1e6 * round(&mut clients[path], calls).await? / calls as f64;
            }
        }
    }
    let column = |path: usize| times.iter().map(|t| t[path]).collect::<Vec<_>>();
    let off = median(&column(0));
    println!(
        "\n## loopback ({runtime}): us per unary call, {rounds} rounds x {calls} sequential calls \
         per path, paths rotated each round, {sessions} sessions of new servers and connections\n"
    );
    println!(
        "| path | median us/call | min..max us/call | ratio of medians to off | median of \
         per-round ratios | its 95 % interval | target | |"
    );
    println!("|---|---:|---|---:|---:|---|---|---|");
    for (path, name) in NAMES.iter().enumerate() {
        let col = column(path);
        let time = median(&col);
        let min = col.iter().copied().fold(f64::INFINITY, f64::min);
        let max = col.iter().copied().fold(0.0, f64::max);
        let ratios = times.iter().map(|t| t[path] / t[0]).collect::<Vec<_>>();
        let per_round = median(&ratios);
        let (lo, hi) = median_interval(&ratios);
        let ratio = time / off;
        // The per-round ratio is the paired figure; its interval says whether the run resolves
        // the target.
        let (target, verdict) = match path {
            1..=3 => (
                format!("<= {LOOPBACK_TARGET}"),
                if hi <= LOOPBACK_TARGET {
                    "met"
                } else if per_round <= LOOPBACK_TARGET {
                    "median met, interval above"
                } else {
                    "NOT met"
                },
            ),
            _ => (String::new(), ""),
        };
        println!(
            "| {name} | {time:.1} | {min:.1}..{max:.1} | {ratio:.3} | {per_round:.3} | \
             {lo:.3}..{hi:.3} | {target} | {verdict} |"
        );
    }
    provider.force_flush().ok();
    let exported = exporter.get_finished_metrics().map_or(0, |m| m.len());
    println!(
        "\nThe control row shows the noise of the method. Metrics exported once, after the run \
         ({exported} export(s)).\n"
    );
    Ok(())
}

/// Prints the in-process table, then runs the loopback comparison (a short one under
/// `cargo test --benches`).
fn loopback_bench(_c: &mut Criterion) {
    in_process_summary();
    common::run_loopback_on(
        common::Runtime::TwoWorkers,
        (ROUNDS, CALLS_PER_ROUND),
        |rounds, calls| loopback("two worker threads", rounds, calls),
    );
    common::run_loopback_on(
        common::Runtime::CurrentThread,
        (ROUNDS, CALLS_PER_ROUND),
        |rounds, calls| loopback("one thread", rounds, calls),
    );
}

criterion_group! {
    name = benches;
    config = common::criterion(2);
    targets = in_process, loopback_bench
}
criterion_main!(benches);
