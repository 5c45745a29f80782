//! What the benches share: per-sample figures recorded from criterion's timing loops, and their
//! medians, so each bench can print its own table of ratios and targets.
#![allow(dead_code)]

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use criterion::Criterion;

mod ok_tester;
#[allow(unused_imports)]
pub(crate) use ok_tester::OkTester;

/// Samples per criterion benchmark, in every bench.
pub(crate) const SAMPLE_SIZE: usize = 30;

/// Every bench's criterion settings: 1 s warm-up, `measurement_secs` of measurement,
/// `SAMPLE_SIZE` samples (kept small: the machine has two cores).
pub(crate) fn criterion(measurement_secs: u64) -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(measurement_secs))
        .sample_size(SAMPLE_SIZE)
}

/// Figures (ns per operation) of every sample, by group and benchmark id.
pub(crate) struct Samples(Mutex<Vec<(String, String, Vec<f64>)>>);

impl Samples {
    pub(crate) const fn new() -> Samples {
        Samples(Mutex::new(Vec::new()))
    }

    /// Records one sample's figure.
    pub(crate) fn record(&self, group: &str, id: &str, ns_per_op: f64) {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match all.iter_mut().find(|(g, i, _)| g == group && i == id) {
            Some((.., samples)) => samples.push(ns_per_op),
            None => all.push((group.to_owned(), id.to_owned(), vec![ns_per_op])),
        }
    }

    /// Whether any benchmark was measured (not the single run of `cargo test --benches`).
    pub(crate) fn any_measured(&self) -> bool {
        let all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        all.iter().any(|(.., s)| s.len() > SAMPLE_SIZE)
    }

    /// The median of a benchmark's measurement samples (the last `SAMPLE_SIZE` calls; earlier
    /// ones were criterion's warm-up); `None` when it was not measured (`cargo test --benches`).
    pub(crate) fn figure(&self, group: &str, id: &str) -> Option<f64> {
        let all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (.., samples) = all.iter().find(|(g, i, _)| g == group && i == id)?;
        (samples.len() > SAMPLE_SIZE).then(|| median(&samples[samples.len() - SAMPLE_SIZE..]))
    }
}

/// The median of some figures (NaN for none).
pub(crate) fn median(samples: &[f64]) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// A distribution-free 95 % confidence interval of the median of `samples` (independent draws):
/// the order statistics at ranks n/2 -/+ 1.96 sqrt(n)/2.
pub(crate) fn median_interval(samples: &[f64]) -> (f64, f64) {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let half = 0.98 * (n as f64).sqrt();
    let lo = ((n as f64 / 2.0 - half).floor().max(0.0) as usize).min(n - 1);
    let hi = ((n as f64 / 2.0 + half).ceil() as usize).min(n - 1);
    (s[lo], s[hi])
}

/// Whether criterion's command line asks for the loopback comparison: no benchmark filter, or
/// one that `loopback` matches; never when listing or profiling.
pub(crate) fn loopback_wanted(args: &[String]) -> bool {
    const TAKES_VALUE: [&str; 14] = [
        "--baseline",
        "--color",
        "--confidence-level",
        "--format",
        "--load-baseline",
        "--measurement-time",
        "--noise-threshold",
        "--nresamples",
        "--output-format",
        "--plotting-backend",
        "--sample-size",
        "--save-baseline",
        "--significance-level",
        "--warm-up-time",
    ];
    let mut filter = None;
    let mut rest = args.iter().skip(1);
    while let Some(arg) = rest.next() {
        if arg == "--list" || arg == "--profile-time" {
            return false;
        } else if TAKES_VALUE.contains(&arg.as_str()) {
            rest.next();
        } else if !arg.starts_with('-') {
            filter = Some(arg.as_str());
        }
    }
    filter.is_none_or(|f| "loopback".contains(f))
}

/// Runs a loopback comparison `loopback(rounds, calls)` on its own two-thread runtime, when
/// criterion's command line asks for it; a token run (2 rounds of 10 calls) under
/// `cargo test --benches`, which runs benchmarks without `--bench`. Exits 1 if it fails.
pub(crate) fn run_loopback<F, Fut, E>(full: (usize, usize), loopback: F)
where
    F: FnOnce(usize, usize) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    run_loopback_on(Runtime::TwoWorkers, full, loopback);
}

/// The tokio runtime a loopback comparison runs on.
#[allow(dead_code)]
#[derive(Debug, Clone, Copy)]
pub(crate) enum Runtime {
    /// Two worker threads (the machine's two cores): servers and clients as services run them.
    TwoWorkers,
    /// One thread for servers and clients: a call never waits for a sleeping core to wake, so the
    /// time per call is the work done, and a few percent of it can be resolved.
    CurrentThread,
}

/// [`run_loopback`] on the given runtime.
pub(crate) fn run_loopback_on<F, Fut, E>(runtime: Runtime, full: (usize, usize), loopback: F)
where
    F: FnOnce(usize, usize) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let args: Vec<String> = std::env::args().collect();
    if !loopback_wanted(&args) {
        return;
    }
    let (rounds, calls) = if args.iter().any(|a| a == "--bench") {
        full
    } else {
        (2, 10)
    };
    let runtime = match runtime {
        Runtime::TwoWorkers => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build(),
        Runtime::CurrentThread => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    };
    let result = match runtime {
        Ok(runtime) => runtime
            .block_on(loopback(rounds, calls))
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = result {
        eprintln!("loopback benchmark failed: {e}");
        std::process::exit(1);
    }
}

/// One data frame, then `grpc-status: 0` trailers: a unary answer as a server sends it.
pub(crate) struct Answer {
    pub(crate) data: Option<bytes::Bytes>,
    pub(crate) trailers: Option<http::HeaderMap>,
}

impl http_body::Body for Answer {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, tonic::Status>>> {
        if let Some(data) = self.data.take() {
            return std::task::Poll::Ready(Some(Ok(http_body::Frame::data(data))));
        }
        std::task::Poll::Ready(
            self.trailers
                .take()
                .map(|t| Ok(http_body::Frame::trailers(t))),
        )
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && self.trailers.is_none()
    }
}

/// `message` as gRPC sends it: a 0 (uncompressed) flag, its length (4 bytes, big-endian), then
/// the message.
pub(crate) fn frame(message: &[u8]) -> bytes::Bytes {
    let mut framed = Vec::with_capacity(5 + message.len());
    framed.push(0);
    framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
    framed.extend_from_slice(message);
    bytes::Bytes::from(framed)
}

/// An in-process server: drains each request's body (polled with a no-op waker), then answers
/// `framed` as one data frame and `grpc-status: 0` trailers.
pub(crate) fn answering(
    framed: bytes::Bytes,
) -> impl tower::Service<
    http::Request<tonic::body::Body>,
    Response = http::Response<tonic::body::Body>,
    Error = std::convert::Infallible,
> + Clone {
    use http_body::Body as _;
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    tower::service_fn(move |request: http::Request<tonic::body::Body>| {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut body = std::pin::pin!(request.into_body());
        while let std::task::Poll::Ready(Some(frame)) = body.as_mut().poll_frame(&mut cx) {
            std::hint::black_box(&frame);
        }
        let mut response = http::Response::new(tonic::body::Body::new(Answer {
            data: Some(framed.clone()),
            trailers: Some(trailers.clone()),
        }));
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/grpc"),
        );
        std::future::ready(Ok(response))
    })
}
