//! Many concurrent clients against a server failing transiently: success rate and load
//! amplification (attempts per logical call) for no retry, Clarifai's SDK policy, this crate's
//! default [`Policy`], and the same policy with gRFC A6's example budget (10 tokens, ratio 0.1).
//!
//! ```text
//! cargo run --release --features retry --example retry_simulation
//! ```
//!
//! Everything runs in process: the server is a tower service that answers `UNAVAILABLE`
//! (Trailers-Only, as tonic servers do) with the given probability, independently per attempt,
//! and every client of the default policy goes through the real [`RetryLayer`]. Time is scaled
//! down 1000 times (Clarifai's SDK's 5 s sleep becomes 5 ms; the policy's 100 ms backoff base,
//! 100 µs), which changes how long the run takes, not what is counted. The policy's deadline
//! (30 s) is not scaled: it never binds at real scale, and scaled it would bind on the
//! runtime's own (unscaled) scheduling delays.
//!
//! Writes the table to stdout and `target/retry-simulation/results.md`, and a chart to
//! `target/retry-simulation/chart.svg`. Exits non-zero unless the targets hold: at 20% failure,
//! at least 99.9% of calls succeed with at most 1.3 attempts per call; at 100% failure, at most
//! 1.2 attempts per call.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clarifai_status::retry::{Backoff, Budget, Policy, RetryLayer};
use tonic::body::Body;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

/// Real time is simulated time divided by this.
const TIME_SCALE: u32 = 1000;
const CLIENTS: usize = 64;
const CALLERS_PER_CLIENT: usize = 8;
const CALLS_PER_CALLER: usize = 50;
const FAILURE_RATES: [f64; 8] = [0.0, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    NoRetry,
    ClarifaiSdk,
    ThisCrate,
    A6Budget,
}

impl Strategy {
    const ALL: [Strategy; 4] = [
        Strategy::NoRetry,
        Strategy::ClarifaiSdk,
        Strategy::ThisCrate,
        Strategy::A6Budget,
    ];

    fn name(self) -> &'static str {
        match self {
            Strategy::NoRetry => "no retry",
            Strategy::ClarifaiSdk => "Clarifai SDK (10 attempts, fixed 5 s)",
            Strategy::ThisCrate => "this crate (Policy::new())",
            Strategy::A6Budget => "this crate, gRFC A6 example budget (10, 0.1)",
        }
    }

    fn color(self) -> &'static str {
        match self {
            Strategy::NoRetry => "#777777",
            Strategy::ClarifaiSdk => "#d62728",
            Strategy::ThisCrate => "#1f77b4",
            Strategy::A6Budget => "#ff7f0e",
        }
    }

    fn dash(self) -> &'static str {
        match self {
            Strategy::A6Budget => "6 4",
            Strategy::NoRetry => "2 3",
            _ => "none",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Outcome {
    rate: f64,
    strategy: Strategy,
    calls: u64,
    succeeded: u64,
    attempts: u64,
}

impl Outcome {
    fn success(&self) -> f64 {
        self.succeeded as f64 / self.calls as f64
    }

    fn amplification(&self) -> f64 {
        self.attempts as f64 / self.calls as f64
    }
}

fn scaled(simulated: Duration) -> Duration {
    simulated / TIME_SCALE
}

/// A server failing each attempt with probability `rate`, counting attempts.
fn server(
    rate: f64,
    attempts: Arc<AtomicU64>,
) -> impl Service<
    http::Request<Body>,
    Response = http::Response<Body>,
    Error = Infallible,
    Future: Send,
> + Clone
       + Send {
    service_fn(move |_request: http::Request<Body>| {
        attempts.fetch_add(1, Ordering::Relaxed);
        let fail = fastrand::f64() < rate;
        async move {
            let mut response = http::Response::new(Body::empty());
            let headers = response.headers_mut();
            headers.insert("content-type", "application/grpc".parse().unwrap());
            if fail {
                headers.insert("grpc-status", "14".parse().unwrap());
                headers.insert("grpc-message", "transient".parse().unwrap());
            }
            Ok::<_, Infallible>(response)
        }
    })
}

fn request() -> http::Request<Body> {
    // A realistic small unary message: 5-byte gRPC frame header and a few hundred bytes.
    let mut frame = vec![0u8, 0, 0, 1, 44];
    frame.extend(std::iter::repeat_n(7u8, 300));
    let mut request = http::Request::new(Body::new(http_body_util::Full::new(Bytes::from(frame))));
    *request.uri_mut() = "http://sim/clarifai.api.V2/PostModelOutputs"
        .parse()
        .unwrap();
    request
}

fn succeeded<B>(response: &http::Response<B>) -> bool {
    response
        .headers()
        .get("grpc-status")
        .is_none_or(|status| status == "0")
}

fn policy(strategy: Strategy) -> Policy {
    // Policy::new()'s own numbers, its backoff scaled down like everything else. Its deadline
    // (30 s) is kept: the runtime's scheduling delays are not scaled, so a 30 ms deadline would
    // measure this machine's load; at real scale 4 backoffs of at most 1.5 s never reach 30 s.
    let defaults = Backoff::default();
    let policy = Policy::new().backoff(Backoff::new(
        scaled(defaults.base()),
        scaled(defaults.cap()),
    ));
    match strategy {
        Strategy::A6Budget => policy.budget(Budget::new(10, 0.1).expect("valid budget")),
        _ => policy,
    }
}

async fn run(strategy: Strategy, rate: f64) -> Outcome {
    let attempts = Arc::new(AtomicU64::new(0));
    let succeeded_calls = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let bare = server(rate, attempts.clone());
        // One policy (so one budget) per client, shared by its callers.
        let layered = ServiceBuilder::new()
            .layer(RetryLayer::new(policy(strategy)))
            .service(bare.clone());
        for _ in 0..CALLERS_PER_CLIENT {
            let (mut bare, mut layered) = (bare.clone(), layered.clone());
            let succeeded_calls = succeeded_calls.clone();
            tasks.spawn(async move {
                for _ in 0..CALLS_PER_CALLER {
                    let ok = match strategy {
                        Strategy::NoRetry => succeeded(&bare.call(request()).await.unwrap()),
                        Strategy::ClarifaiSdk => {
                            let mut ok = false;
                            for attempt in 0..10 {
                                if attempt > 0 {
                                    tokio::time::sleep(scaled(Duration::from_secs(5))).await;
                                }
                                if succeeded(&bare.call(request()).await.unwrap()) {
                                    ok = true;
                                    break;
                                }
                            }
                            ok
                        }
                        Strategy::ThisCrate | Strategy::A6Budget => {
                            let svc = layered.ready().await.expect("mock is always ready");
                            svc.call(request()).await.is_ok_and(|r| succeeded(&r))
                        }
                    };
                    if ok {
                        succeeded_calls.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    }
    while let Some(joined) = tasks.join_next().await {
        joined.expect("caller task panicked");
    }
    Outcome {
        rate,
        strategy,
        calls: (CLIENTS * CALLERS_PER_CLIENT * CALLS_PER_CALLER) as u64,
        succeeded: succeeded_calls.load(Ordering::Relaxed),
        attempts: attempts.load(Ordering::Relaxed),
    }
}

fn table(outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    let calls = outcomes.first().map_or(0, |o| o.calls);
    let _ = writeln!(
        out,
        "{calls} logical calls per cell ({CLIENTS} clients x {CALLERS_PER_CLIENT} concurrent callers x \
         {CALLS_PER_CALLER} calls); each attempt fails independently with the given probability.\n\
         Cells: calls succeeded / attempts per call.\n"
    );
    let _ = write!(out, "| failure rate |");
    for strategy in Strategy::ALL {
        let _ = write!(out, " {} |", strategy.name());
    }
    let _ = write!(out, "\n|---:|");
    for _ in Strategy::ALL {
        let _ = write!(out, "---:|");
    }
    out.push('\n');
    for rate in FAILURE_RATES {
        let _ = write!(out, "| {:.0}% |", rate * 100.0);
        for strategy in Strategy::ALL {
            let o = find(outcomes, strategy, rate);
            let _ = write!(
                out,
                " {:.2}% / {:.3} |",
                o.success() * 100.0,
                o.amplification()
            );
        }
        out.push('\n');
    }
    out
}

fn find(outcomes: &[Outcome], strategy: Strategy, rate: f64) -> Outcome {
    *outcomes
        .iter()
        .find(|o| o.strategy == strategy && o.rate == rate)
        .expect("every cell was run")
}

/// A chart in two panels (success rate, and attempts per call on a log scale, against the
/// failure rate), one line per strategy, written by hand.
fn chart(outcomes: &[Outcome]) -> String {
    const W: f64 = 1100.0;
    const H: f64 = 520.0;
    const PW: f64 = 420.0;
    const PH: f64 = 300.0;
    const TOP: f64 = 130.0;
    const LEFTS: [f64; 2] = [90.0, 620.0];
    let amp_max: f64 = 10.0;
    let x_of = |left: f64, rate: f64| left + rate * PW;
    let y_success = |s: f64| TOP + PH - s * PH;
    let y_amp = |a: f64| TOP + PH - a.max(1.0).ln() / amp_max.ln() * PH;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="Helvetica, Arial, sans-serif" font-size="13">"#
    );
    let _ = writeln!(svg, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="28" font-size="18" text-anchor="middle" font-weight="bold">Retrying against a server failing transiently: {} clients x {} callers, time scaled 1/{}</text>"#,
        W / 2.0,
        CLIENTS,
        CALLERS_PER_CLIENT,
        TIME_SCALE
    );
    // Legend.
    for (i, strategy) in Strategy::ALL.iter().enumerate() {
        let x = 90.0 + (i % 2) as f64 * 480.0;
        let y = 56.0 + (i / 2) as f64 * 22.0;
        let _ = writeln!(
            svg,
            r#"<line x1="{x}" y1="{y}" x2="{}" y2="{y}" stroke="{}" stroke-width="3" stroke-dasharray="{}"/><circle cx="{}" cy="{y}" r="4" fill="{}"/><text x="{}" y="{}">{}</text>"#,
            x + 36.0,
            strategy.color(),
            strategy.dash(),
            x + 18.0,
            strategy.color(),
            x + 46.0,
            y + 4.5,
            strategy.name()
        );
    }
    let panels = [
        ("Calls that succeeded", "calls succeeded (%)"),
        (
            "Load amplification",
            "attempts per logical call (log scale)",
        ),
    ];
    for (p, (title, y_label)) in panels.iter().enumerate() {
        let left = LEFTS[p];
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" font-size="15" font-weight="bold" text-anchor="middle">{title}</text>"#,
            left + PW / 2.0,
            TOP - 12.0
        );
        let _ = writeln!(
            svg,
            r##"<rect x="{left}" y="{TOP}" width="{PW}" height="{PH}" fill="none" stroke="#333"/>"##
        );
        // X axis: failure rate.
        for tick in [0.0, 0.2, 0.4, 0.6, 0.8, 1.0] {
            let x = x_of(left, tick);
            let _ = writeln!(
                svg,
                r##"<line x1="{x}" y1="{TOP}" x2="{x}" y2="{}" stroke="#e5e5e5"/><text x="{x}" y="{}" text-anchor="middle">{:.0}</text>"##,
                TOP + PH,
                TOP + PH + 18.0,
                tick * 100.0
            );
        }
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">transient failure rate of the server (% of attempts)</text>"#,
            left + PW / 2.0,
            TOP + PH + 40.0
        );
        // Y axis.
        let ticks: Vec<(f64, String)> = if p == 0 {
            (0..=5)
                .map(|i| i as f64 * 0.2)
                .map(|s| (y_success(s), format!("{:.0}", s * 100.0)))
                .collect()
        } else {
            [1.0, 1.2, 1.5, 2.0, 3.0, 5.0, 10.0]
                .into_iter()
                .map(|a| (y_amp(a), format!("{a}")))
                .collect()
        };
        for (y, label) in ticks {
            let _ = writeln!(
                svg,
                r##"<line x1="{left}" y1="{y}" x2="{}" y2="{y}" stroke="#e5e5e5"/><text x="{}" y="{}" text-anchor="end">{label}</text>"##,
                left + PW,
                left - 8.0,
                y + 4.0
            );
        }
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle" transform="rotate(-90 {} {})">{y_label}</text>"#,
            left - 50.0,
            TOP + PH / 2.0,
            left - 50.0,
            TOP + PH / 2.0
        );
        // Targets.
        if p == 1 {
            for (rate, limit, label) in [
                (0.2, 1.3, "target at 20%: ≤ 1.3"),
                (1.0, 1.2, "target at 100%: ≤ 1.2"),
            ] {
                let y = y_amp(limit);
                let _ = writeln!(
                    svg,
                    r##"<line x1="{}" y1="{y}" x2="{}" y2="{y}" stroke="#2ca02c" stroke-width="2" stroke-dasharray="4 3"/><text x="{}" y="{}" fill="#2ca02c" font-size="11" text-anchor="{}">{label}</text>"##,
                    x_of(left, (rate - 0.1f64).max(0.0)),
                    x_of(left, (rate + 0.1f64).min(1.0)),
                    x_of(left, rate),
                    y - 6.0,
                    if rate == 1.0 { "end" } else { "middle" }
                );
            }
        } else {
            let x = x_of(left, 0.2);
            let y = y_success(0.999);
            let _ = writeln!(
                svg,
                r##"<line x1="{}" y1="{y}" x2="{}" y2="{y}" stroke="#2ca02c" stroke-width="2" stroke-dasharray="4 3"/><text x="{}" y="{}" fill="#2ca02c" font-size="11">green dashes at the top: target at 20%, ≥ 99.9%</text>"##,
                x - 40.0,
                x + 40.0,
                left + 10.0,
                TOP + PH - 12.0
            );
        }
        // One line per strategy.
        for strategy in Strategy::ALL {
            let points: Vec<(f64, f64)> = FAILURE_RATES
                .iter()
                .map(|&rate| {
                    let o = find(outcomes, strategy, rate);
                    let y = if p == 0 {
                        y_success(o.success())
                    } else {
                        y_amp(o.amplification())
                    };
                    (x_of(left, rate), y)
                })
                .collect();
            let path: Vec<String> = points
                .iter()
                .map(|(x, y)| format!("{x:.1},{y:.1}"))
                .collect();
            let _ = writeln!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2.5" stroke-dasharray="{}"/>"#,
                path.join(" "),
                strategy.color(),
                strategy.dash()
            );
            for (x, y) in points {
                let _ = writeln!(
                    svg,
                    r#"<circle cx="{x:.1}" cy="{y:.1}" r="3.5" fill="{}"/>"#,
                    strategy.color()
                );
            }
        }
    }
    svg.push_str("</svg>\n");
    svg
}

fn out_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("retry-simulation")
}

fn main() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let started = Instant::now();
    let mut outcomes = Vec::new();
    for rate in FAILURE_RATES {
        for strategy in Strategy::ALL {
            outcomes.push(runtime.block_on(run(strategy, rate)));
        }
    }
    let table = table(&outcomes);
    println!("{table}");

    let at_20 = find(&outcomes, Strategy::ThisCrate, 0.2);
    let at_100 = find(&outcomes, Strategy::ThisCrate, 1.0);
    let checks = [
        (
            format!(
                "at 20% failure, calls succeeded: {:.3}% (target >= 99.9%)",
                at_20.success() * 100.0
            ),
            at_20.success() >= 0.999,
        ),
        (
            format!(
                "at 20% failure, attempts per call: {:.3} (target <= 1.3)",
                at_20.amplification()
            ),
            at_20.amplification() <= 1.3,
        ),
        (
            format!(
                "at 100% failure, attempts per call: {:.3} (target <= 1.2)",
                at_100.amplification()
            ),
            at_100.amplification() <= 1.2,
        ),
    ];
    let mut report = table.clone();
    report.push_str("\nTargets (this crate's default policy):\n\n");
    for (text, ok) in &checks {
        let _ = writeln!(report, "- [{}] {text}", if *ok { "x" } else { " " });
    }
    for (text, ok) in &checks {
        println!("{} {text}", if *ok { "PASS" } else { "FAIL" });
    }

    let dir = out_dir();
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join("results.md"), &report))
        .and_then(|()| std::fs::write(dir.join("chart.svg"), chart(&outcomes)));
    match written {
        Ok(()) => println!(
            "\nwrote {} and {} in {:.1} s",
            dir.join("results.md").display(),
            dir.join("chart.svg").display(),
            started.elapsed().as_secs_f64()
        ),
        Err(error) => {
            eprintln!("cannot write to {}: {error}", dir.display());
            return ExitCode::FAILURE;
        }
    }
    if checks.iter().all(|(_, ok)| *ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
