//! Clarifai codes in telemetry: metrics per Clarifai code and method, `tracing` spans, and a
//! tower-http classifier, for failures that travel as gRPC errors and for those answered
//! in-body, inside gRPC OK.
//!
//! Generic gRPC instrumentation (tonic's `trace_fn`, tower-http's `TraceLayer` with
//! `GrpcErrorsAsFailures`, OpenTelemetry's gRPC conventions, gRFC A66's plugins) reads only the
//! gRPC status, so it counts Clarifai's in-body failures (a busy model, a throttle, a bad key,
//! all answered as gRPC OK) as successes. With a [`Telemetry`] set, the crate's layers record
//! what they read: the gRPC status *and* the Clarifai code, in-body or carried.
//!
//! # Why OpenTelemetry's API
//!
//! The metrics are OpenTelemetry instruments made from a [`Meter`] you pass
//! ([`Telemetry::new`]): the names below are OpenTelemetry's RPC semantic conventions and gRFC
//! A66/A96's instruments, so they land beside the ones other services export under the same
//! names, through whatever exporter the application chose (OTLP, Prometheus, in-memory). An
//! explicit `Meter` rather than a global recorder (the `metrics` facade's way) lets two clients,
//! or a test, keep their figures apart. Spans and events are `tracing`'s, as the rest of the
//! crate's.
//!
//! Each outcome of a method (its gRPC status and Clarifai code) is recorded through instruments
//! *bound* to its attribute set (`Histogram::bind`, OpenTelemetry 0.33's bound instruments,
//! behind its `experimental_metrics_bound_instruments` feature): the SDK resolves the set to its
//! series once, and a recording is then an update of that series, with no hashing or comparing of
//! attributes per call. That is what keeps the cost within the figures below. What it means for
//! an application:
//!
//! - **OpenTelemetry 0.33.** The crate depends on `opentelemetry` 0.33 (`metrics` and the bound
//!   instruments feature) and on `opentelemetry_sdk` 0.33 with the same feature. The crate's code
//!   uses only the API; the SDK dependency is there to turn the feature on in the application's
//!   SDK (Cargo unifies features), because an SDK without it answers `bind` with a no-op and every
//!   recording would be lost without a word. An SDK other than `opentelemetry_sdk` must implement
//!   `SyncInstrument::bind` for the same reason.
//! - **The experimental feature** can change in a later OpenTelemetry release; the crate follows
//!   it (a 0.x release, in `CHANGELOG.md`).
//! - **Cardinality limit.** A series is bound the first time its outcome is recorded, and kept as
//!   long as the `Telemetry`. If the SDK's cardinality limit (2000 series per instrument by
//!   default) is already reached then, that outcome stays in the SDK's overflow series
//!   (`otel.metric.overflow=true`) for the `Telemetry`'s life. The labels are bounded (below), so
//!   a service reaches the limit only with more methods × outcomes than it allows.
//! - **Delta temporality** works as with unbound instruments: a bound series is not evicted at an
//!   export, and each export has what was recorded since the one before.
//!
//! # Where it is recorded
//!
//! - **Servers** (feature `server`): [`StatusLayer::telemetry`] records every call that leaves
//!   it: the gRPC status it lets out (Trailers-Only headers, or trailers after a stream), and for
//!   an OK response the in-body status of its first message, read as it passes (nothing is held
//!   or copied beyond the first 1 KiB of the first message). An error that
//!   [`ErrorToInBodyLayer`] (outside `StatusLayer`, as the server docs ask) will answer in-body
//!   is recorded as the client gets it: `OK`, with the error's Clarifai code. Put
//!   `InBodyToErrorLayer` inside `StatusLayer`, as the server docs ask: its errors are then seen
//!   as errors.
//! - **Clients** (feature `retry`): [`Policy::telemetry`] makes [`RetryLayer`], [`retry::call`]
//!   and [`retry::poll`] (each poll is a `call`) record every call and each of its attempts. A
//!   `RetryLayer` under `retry::call` records nothing: `call` owns the attempts, and records them.
//!
//! # Instruments
//!
//! | instrument | kind, unit | recorded | attributes |
//! |---|---|---|---|
//! | `rpc.server.call.duration` | histogram, `s` | per call, by `StatusLayer`, when the call ends (its trailers, its Trailers-Only answer, or the body dropped: `CANCELLED`) | `rpc.system.name`, `rpc.method`, `rpc.response.status_code`, `clarifai.status.code`, `clarifai.status.name` |
//! | `rpc.client.call.duration` | histogram, `s` | per call, all attempts and delays included, when the call's response (or error) is returned | the same |
//! | `grpc.client.attempt.started` | counter, `{attempt}` | per attempt, when sent | `grpc.method` |
//! | `grpc.client.attempt.duration` | histogram, `s` | per attempt, when it ends (the last one when the call returns) | `grpc.method`, `grpc.status`, `clarifai.status.code`, `clarifai.status.name` |
//! | `grpc.client.call.retries` | histogram, `{retry}` | per call that retried (gRFC A96: no 0 is recorded) | `grpc.method`, `grpc.status`, `clarifai.status.code`, `clarifai.status.name` (the call's outcome) |
//! | `grpc.client.call.retry_delay` | histogram, `s` | per call that retried: the time with no attempt in flight | the same |
//! | `clarifai.client.retry.stopped` | counter, `{call}` | when the budget refuses a retry, or a server's pushback stops one | `grpc.method`, `clarifai.retry.stop_reason` (`budget`, `pushback`), `clarifai.status.code`, `clarifai.status.name` |
//!
//! Durations are in seconds, with OpenTelemetry's recommended boundaries for `rpc.*` and gRFC
//! A66's latency boundaries for `grpc.*` (a view in your SDK can change them).
//!
//! # Attributes
//!
//! | attribute | values |
//! |---|---|
//! | `rpc.system.name` | `grpc` |
//! | `rpc.method`, `grpc.method` | the fully qualified method, `package.Service/Method` (no leading `/`), or `_OTHER` (below) |
//! | `rpc.response.status_code`, `grpc.status` | the gRPC status name the peer sees: `OK`, `UNAVAILABLE`, ... (17 values) |
//! | `clarifai.status.code` | the Clarifai code (int): carried on the gRPC error (`clarifai-status-code`, `ErrorInfo`) or read in-body; [`UNKNOWN_CODE`] (`-1`) for a number the table does not know; absent when no Clarifai code was read (an OK response that is not Clarifai-shaped, a plain error the client saw) |
//! | `clarifai.status.name` | the table's name (`MODEL_BUSY_PLEASE_RETRY`, ...); `UNKNOWN_CODE` for a number the table does not know; absent with the code |
//! | `clarifai.retry.stop_reason` | `budget` (the [`Budget`] refused the retry), `pushback` (the server said not to retry, or asked for a wait past `MAX_PUSHBACK`) |
//!
//! # Bounded labels
//!
//! Whatever peers send, every attribute takes a bounded set of values:
//!
//! - **Codes**: a number the table does not know is recorded as [`UNKNOWN_CODE`] (`-1`) and
//!   `UNKNOWN_CODE`, never as itself: the table bounds the set.
//! - **Methods**: recorded as [`OTHER_METHOD`] (`_OTHER`, the conventions' own bucket for a
//!   method the instrumentation does not recognize) when
//!   - [`Telemetry::methods`] lists the methods and the path is not one of them (list your
//!     services' methods on a server that faces the internet: then nothing a client sends makes
//!     a new value);
//!   - without a list, the server answered `UNIMPLEMENTED` without a Clarifai code (how tonic's
//!     router answers a path it does not serve); such a path is never admitted among the methods
//!     seen, so a peer sending paths the service does not have cannot use up [`MAX_METHODS`];
//!   - the path is not `/<service>/<method>` of letters, digits, `_` and `.`, or longer than 256
//!     bytes;
//!   - [`MAX_METHODS`] distinct methods were already recorded by this [`Telemetry`].
//!
//! # Spans and events
//!
//! With a `Telemetry` set, `StatusLayer` runs the inner service in an `INFO` span
//! `rpc.server.call`, and `RetryLayer` and `retry::call` run each call in an `INFO` span
//! `rpc.client.call`, with fields `rpc.system.name`, `rpc.method` and, once known,
//! `rpc.response.status_code`, `clarifai.status.code`, `clarifai.status.name`,
//! `clarifai.attempts` (client) and `clarifai.request_id`. The retry events (`retrying`,
//! `not retrying: ...`, with `code`, `attempt`, `delay_ms`) are emitted inside that span, so a
//! subscriber shows them with the method; `StatusLayer`'s `grpc error` event carries
//! `rpc.method`.
//!
//! `clarifai.request_id` is Clarifai's `Status.req_id`, in the span only (never a metric
//! attribute: one value per call would make the label set unbounded), and only when it is 1 to
//! 128 bytes of printable ASCII (otherwise it is left out). It is read:
//!
//! - from an in-body status: by `StatusLayer` and `RetryLayer` from the same read of the first
//!   message that finds its code, when that status is whole within the bytes read (the first
//!   1 KiB of the message); by `retry::call` from the decoded response;
//! - from a gRPC error: from its Clarifai `ErrorInfo` (`req_id` metadata), which is decoded for
//!   this on errors only, and only when the call is recorded.
//!
//! A status without one (Clarifai's own `req_id` empty), a status past the first 1 KiB, a later
//! message of a stream, and a compressed message give no request id.
//!
//! Nothing private leaks: a status's `stack_trace`, `internal_details` and `redirect_info`, and
//! messages (which a handler may fill from private data), are never read into a span, an event
//! or a metric.
//!
//! # Cost, and the feature off
//!
//! `benches/telemetry.rs` runs the same stack with telemetry off and on, side by side
//! (BENCHMARKS.md, section 12). In process, `StatusLayer::telemetry` adds about 0.2 µs per call,
//! and so does `Policy::telemetry`. On loopback (unary calls through real tonic servers and
//! clients on 127.0.0.1), the median of per-round ratios to the same stack with telemetry off
//! was, over five runs, 1.003-1.019 with telemetry on at the server and 1.003-1.021 on at the
//! client; with both on in one process, 1.011-1.030. Counted in
//! instructions (`examples/telemetry_cost.rs` under callgrind), a loopback call gains 0.6 % at
//! the server, 0.5 % at the client and 1.5 % with both.
//!
//! Per call, a recording finds its method (a per-thread cache of the last four), then its
//! outcome's series (plain loads from slots filled once), and the SDK updates that bound series
//! (a lock and a few adds): no attribute is built, hashed or compared. With no `tracing`
//! subscriber recording the spans, their fields (the request id among them) are not read.
//!
//! Without the feature, nothing of this is compiled: the layers' services, futures and bodies
//! are the code they were before telemetry (`cfg`-gated, no added field), and no dependency is
//! added.
//!
//! # tower-http's `TraceLayer`
//!
//! [`ClarifaiFailures`] classifies responses for tower-http's `TraceLayer`: a response is a
//! failure when it carries a Clarifai failure code where the classifier can see it. See its docs
//! for what it cannot see.
//!
//! # Examples
//!
//! ```
//! use clarifai_status::telemetry::Telemetry;
//! use opentelemetry::metrics::MeterProvider as _;
//!
//! // In an application: your SDK's provider (here the SDK's, as in the crate's tests).
//! let provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder().build();
//! let telemetry = Telemetry::new(&provider.meter("my-service"))
//!     .methods(["/clarifai.api.V2/PostModelOutputs", "/clarifai.api.V2/GetModel"]);
//! # let _ = telemetry;
//! ```
//!
//! The `telemetry` example runs a server and a retrying client on loopback and prints the
//! per-code figures a dashboard would show (`cargo run --all-features --example telemetry`).
//!
#![cfg_attr(
    not(feature = "server"),
    doc = "[`StatusLayer::telemetry`]: crate#features"
)]
#![cfg_attr(
    feature = "server",
    doc = "[`StatusLayer::telemetry`]: crate::server::status::StatusLayer::telemetry"
)]
#![cfg_attr(
    not(feature = "server"),
    doc = "[`ErrorToInBodyLayer`]: crate#features"
)]
#![cfg_attr(
    feature = "server",
    doc = "[`ErrorToInBodyLayer`]: crate::server::error_to_in_body::ErrorToInBodyLayer"
)]
#![cfg_attr(not(feature = "retry"), doc = "[`Policy::telemetry`]: crate#features")]
#![cfg_attr(
    feature = "retry",
    doc = "[`Policy::telemetry`]: crate::retry::Policy::telemetry"
)]
#![cfg_attr(not(feature = "retry"), doc = "[`RetryLayer`]: crate#features")]
#![cfg_attr(feature = "retry", doc = "[`RetryLayer`]: crate::retry::RetryLayer")]
#![cfg_attr(not(feature = "retry"), doc = "[`retry::call`]: crate#features")]
#![cfg_attr(feature = "retry", doc = "[`retry::call`]: crate::retry::call()")]
#![cfg_attr(not(feature = "retry"), doc = "[`retry::poll`]: crate#features")]
#![cfg_attr(feature = "retry", doc = "[`retry::poll`]: crate::retry::poll()")]
#![cfg_attr(not(feature = "retry"), doc = "[`Budget`]: crate#features")]
#![cfg_attr(feature = "retry", doc = "[`Budget`]: crate::retry::Budget")]

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock, RwLock};

use opentelemetry::metrics::{BoundCounter, BoundHistogram, Counter, Histogram, Meter};
use opentelemetry::{KeyValue, Value};

use crate::Code;

mod classify;

pub use classify::{ClarifaiFailure, ClarifaiFailures, ClassifyClarifaiEos};

/// The method attribute's value for a method the instrumentation does not recognize (see
/// [bounded labels](self#bounded-labels)): `_OTHER`, as OpenTelemetry's conventions name it.
///
/// # Examples
///
/// ```
/// assert_eq!(clarifai_status::telemetry::OTHER_METHOD, "_OTHER");
/// ```
pub const OTHER_METHOD: &str = "_OTHER";

/// The `clarifai.status.code` recorded for a number the table does not know (its
/// `clarifai.status.name` is `UNKNOWN_CODE`): `-1`.
///
/// # Examples
///
/// ```
/// assert_eq!(clarifai_status::telemetry::UNKNOWN_CODE, -1);
/// ```
pub const UNKNOWN_CODE: i64 = -1;

/// The most distinct methods one [`Telemetry`] records; later ones are recorded as
/// [`OTHER_METHOD`].
///
/// # Examples
///
/// ```
/// assert_eq!(clarifai_status::telemetry::MAX_METHODS, 512);
/// ```
pub const MAX_METHODS: usize = 512;

/// The longest method path recorded as itself.
const MAX_PATH: usize = 256;

/// OpenTelemetry's recommended boundaries for `rpc.*.call.duration`, in seconds.
const RPC_BOUNDARIES: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// gRFC A66's latency boundaries, in seconds.
const A66_BOUNDARIES: [f64; 41] = [
    0.0, 0.00001, 0.00005, 0.0001, 0.0003, 0.0006, 0.0008, 0.001, 0.002, 0.003, 0.004, 0.005,
    0.006, 0.008, 0.01, 0.013, 0.016, 0.02, 0.025, 0.03, 0.04, 0.05, 0.065, 0.08, 0.1, 0.13, 0.16,
    0.2, 0.25, 0.3, 0.4, 0.5, 0.65, 0.8, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0,
];

/// The instruments the crate records into, made once from a [`Meter`], and the methods it
/// knows. Cheap to clone (one `Arc`); every clone records into the same instruments.
///
/// Set it on a server with `StatusLayer::telemetry` (feature `server`) and on a client with
/// `Policy::telemetry` (feature `retry`). The [module docs](self) list every instrument and
/// attribute.
///
/// # Examples
///
/// ```
/// use clarifai_status::telemetry::Telemetry;
/// use opentelemetry::metrics::MeterProvider as _;
///
/// let provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder().build();
/// let telemetry = Telemetry::new(&provider.meter("clarifai-client"));
/// # let _ = telemetry;
/// ```
#[derive(Clone)]
pub struct Telemetry {
    inner: Arc<Inner>,
}

#[cfg_attr(not(any(feature = "server", feature = "retry")), allow(dead_code))]
pub(crate) struct Inner {
    pub(crate) server_duration: Histogram<f64>,
    pub(crate) client_duration: Histogram<f64>,
    pub(crate) attempt_started: Counter<u64>,
    pub(crate) attempt_duration: Histogram<f64>,
    pub(crate) call_retries: Histogram<u64>,
    pub(crate) call_retry_delay: Histogram<f64>,
    pub(crate) retry_stopped: Counter<u64>,
    /// This `Inner`'s own number, for the per-thread cache of methods ([`recent`]).
    id: u64,
    methods: Methods,
}

/// The numbers of [`Inner`]s: never reused, so a cached method is never another's.
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// A per-thread cache of the methods looked up last, so a call to a method already known finds
/// it by comparing its path rather than hashing it (SipHash) under the methods' lock. Valid for
/// ever: a method once recorded as itself stays so (nothing is removed, a list never changes).
/// Only methods recorded as themselves are cached, found by their own path: a path that is not
/// one of them never matches.
#[cfg(any(feature = "server", feature = "retry"))]
mod recent {
    use std::cell::RefCell;
    use std::sync::Arc;

    use super::Method;

    const WAYS: usize = 4;

    /// The last methods looked up, with their `Inner`'s number, and the next way to replace.
    type Ways = ([Option<(u64, Arc<Method>)>; WAYS], usize);

    thread_local! {
        static RECENT: RefCell<Ways> =
            const { RefCell::new(([const { None }; WAYS], 0)) };
    }

    pub(super) fn get(id: u64, path: &str) -> Option<Arc<Method>> {
        let name = path.strip_prefix('/')?;
        RECENT
            .try_with(|recent| {
                let recent = recent.try_borrow().ok()?;
                recent.0.iter().flatten().find_map(|(owner, method)| {
                    (*owner == id && method.path.as_deref() == Some(name)).then(|| method.clone())
                })
            })
            .ok()
            .flatten()
    }

    pub(super) fn put(id: u64, method: &Arc<Method>) {
        if method.path.is_none() {
            return;
        }
        let _ = RECENT.try_with(|recent| {
            if let Ok(mut recent) = recent.try_borrow_mut() {
                let (ways, next) = &mut *recent;
                ways[*next] = Some((id, method.clone()));
                *next = (*next + 1) % WAYS;
            }
        });
    }
}

/// The methods recorded so far (or the only ones allowed), each made once.
struct Methods {
    listed: Option<MethodMap>,
    seen: RwLock<MethodMap>,
    /// [`OTHER_METHOD`]'s.
    other: Arc<Method>,
}

/// The most series a [`Method`] keeps bound; an outcome past them is recorded with its attribute
/// set made for each recording (recorded the same, at the cost of building it and of the SDK
/// looking it up).
const MAX_SETS: usize = 1 << SLOT_BITS;
const SLOT_BITS: u32 = 6;

/// A method as recorded: its attribute value, and the series of its outcomes, each bound once (a
/// recording then builds no `KeyValue`, and the SDK neither hashes nor compares an attribute set).
pub(crate) struct Method {
    /// The path without its leading `/` (`value`'s text), for the per-thread cache's compare.
    #[cfg_attr(not(any(feature = "server", feature = "retry")), allow(dead_code))]
    path: Option<Arc<str>>,
    value: Value,
    /// `grpc.client.attempt.started` bound to `grpc.method` alone, once an attempt is recorded.
    #[cfg_attr(not(feature = "retry"), allow(dead_code))]
    started: OnceLock<BoundCounter<u64>>,
    /// The outcomes' series, by open addressing (see [`Method::outcome`]).
    sets: Box<[OnceLock<Box<Series>>; MAX_SETS]>,
}

/// One outcome's two attribute sets, and the instruments bound to them, each bound when first
/// recorded into (so an instrument never recorded into has no series: a server exports no client
/// figures).
pub(crate) struct Series {
    /// The outcome's key (see [`Method::outcome`]).
    key: u64,
    /// `rpc.system.name`, `rpc.method`, `rpc.response.status_code`, and the code's two
    /// (`rpc.server.call.duration`, `rpc.client.call.duration`).
    rpc: Box<[KeyValue]>,
    /// `grpc.method`, `grpc.status`, and the code's two (`grpc.client.attempt.duration`,
    /// `grpc.client.call.retries`, `grpc.client.call.retry_delay`).
    grpc: Box<[KeyValue]>,
    /// By [`Seconds`].
    seconds: [OnceLock<BoundHistogram<f64>>; 4],
    retries: OnceLock<BoundHistogram<u64>>,
}

/// An outcome to record, with its series bound, or (past [`MAX_SETS`]) its attribute sets made
/// for this recording.
#[cfg_attr(not(any(feature = "server", feature = "retry")), allow(dead_code))]
pub(crate) enum Recording<'a> {
    Bound(&'a Series),
    Made {
        rpc: Box<[KeyValue]>,
        grpc: Box<[KeyValue]>,
    },
}

/// A duration histogram a [`Method`] records into.
#[cfg_attr(not(any(feature = "server", feature = "retry")), allow(dead_code))]
#[derive(Debug, Clone, Copy)]
pub(crate) enum Seconds {
    /// `rpc.server.call.duration`.
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    ServerCall,
    /// `rpc.client.call.duration`.
    #[cfg_attr(not(feature = "retry"), allow(dead_code))]
    ClientCall,
    /// `grpc.client.attempt.duration`.
    #[cfg_attr(not(feature = "retry"), allow(dead_code))]
    Attempt,
    /// `grpc.client.call.retry_delay`.
    #[cfg_attr(not(feature = "retry"), allow(dead_code))]
    RetryDelay,
}

impl fmt::Debug for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Method").field(&self.value.as_str()).finish()
    }
}

#[cfg_attr(not(any(feature = "server", feature = "retry")), allow(dead_code))]
impl Method {
    /// [`OTHER_METHOD`].
    fn other() -> Method {
        Method::with(None, Value::from(OTHER_METHOD))
    }

    /// A method recorded as itself: `path` without its leading `/`.
    fn named(path: &str) -> Method {
        let path = Arc::<str>::from(&path[1..]);
        Method::with(Some(path.clone()), Value::from(path))
    }

    fn with(path: Option<Arc<str>>, value: Value) -> Method {
        Method {
            path,
            value,
            started: OnceLock::new(),
            sets: Box::new([const { OnceLock::new() }; MAX_SETS]),
        }
    }

    /// The `rpc.method` / `grpc.method` value.
    pub(crate) fn value(&self) -> &Value {
        &self.value
    }

    /// Counts an attempt started (`grpc.client.attempt.started`).
    #[cfg_attr(not(feature = "retry"), allow(dead_code))]
    pub(crate) fn attempt_started(&self, instruments: &Inner) {
        self.started
            .get_or_init(|| {
                instruments
                    .attempt_started
                    .bind(&[KeyValue::new(GRPC_METHOD, self.value.clone())])
            })
            .add(1);
    }

    /// The recording of an outcome: the gRPC status the peer sees, and the Clarifai code read, if
    /// any. Its series is made and kept on first use (up to [`MAX_SETS`] per method).
    ///
    /// The series sit in a fixed table of [`MAX_SETS`] slots, found by open addressing from a
    /// hash of the outcome: a slot, once filled, is never emptied or changed, so a recording
    /// finds its series with plain loads (no lock, no write to memory other threads read).
    pub(crate) fn outcome(&self, grpc: tonic::Code, code: Option<Code>) -> Recording<'_> {
        // First by the number as read: a code the method has recorded before is found without
        // asking the table whether it knows the number.
        let read = series_key(grpc, code.map(|c| i64::from(c.number())));
        if let Some(series) = self.find(read) {
            return Recording::Bound(series);
        }
        // New to the method, or a number the table does not know: kept under `UNKNOWN_CODE`'s
        // key, so unknown numbers share one series.
        let key = series_key(grpc, code.map(code_number));
        let first = slot_of(key);
        for i in 0..MAX_SETS {
            let slot = &self.sets[(first + i) % MAX_SETS];
            // Empty: claim it (if another thread fills it first, with this outcome or another,
            // the slot holds theirs).
            let series = slot.get_or_init(|| {
                let (rpc, grpc) = self.make(grpc, code);
                Box::new(Series {
                    key,
                    rpc,
                    grpc,
                    seconds: [const { OnceLock::new() }; 4],
                    retries: OnceLock::new(),
                })
            });
            if series.key == key {
                return Recording::Bound(series);
            }
        }
        let (rpc, grpc) = self.make(grpc, code);
        Recording::Made { rpc, grpc }
    }

    /// The series of `key`, if a slot holds it: probed from its first slot to the first empty
    /// one (slots are filled in that order and never emptied).
    fn find(&self, key: u64) -> Option<&Series> {
        let first = slot_of(key);
        for i in 0..MAX_SETS {
            let series = self.sets[(first + i) % MAX_SETS].get()?;
            if series.key == key {
                return Some(series);
            }
        }
        None
    }

    /// The outcome's `rpc.*` and `grpc.*` attribute sets.
    fn make(&self, grpc: tonic::Code, code: Option<Code>) -> (Box<[KeyValue]>, Box<[KeyValue]>) {
        let status = crate::mapping::grpc_code_name(grpc);
        let mut rpc = vec![
            KeyValue::new(RPC_SYSTEM, "grpc"),
            KeyValue::new(RPC_METHOD, self.value.clone()),
            KeyValue::new(RPC_STATUS, status),
        ];
        let mut grpc = vec![
            KeyValue::new(GRPC_METHOD, self.value.clone()),
            KeyValue::new(GRPC_STATUS, status),
        ];
        if let Some(code) = code {
            rpc.extend(code_attributes(code));
            grpc.extend(code_attributes(code));
        }
        (rpc.into_boxed_slice(), grpc.into_boxed_slice())
    }
}

#[cfg_attr(not(any(feature = "server", feature = "retry")), allow(dead_code))]
impl Recording<'_> {
    /// Records `seconds` into `histogram`.
    pub(crate) fn seconds(&self, instruments: &Inner, histogram: Seconds, seconds: f64) {
        let unbound = match histogram {
            Seconds::ServerCall => &instruments.server_duration,
            Seconds::ClientCall => &instruments.client_duration,
            Seconds::Attempt => &instruments.attempt_duration,
            Seconds::RetryDelay => &instruments.call_retry_delay,
        };
        match self {
            Recording::Bound(series) => {
                let attributes = match histogram {
                    Seconds::ServerCall | Seconds::ClientCall => &series.rpc,
                    Seconds::Attempt | Seconds::RetryDelay => &series.grpc,
                };
                series.seconds[histogram as usize]
                    .get_or_init(|| unbound.bind(attributes))
                    .record(seconds)
            }
            Recording::Made { rpc, grpc } => match histogram {
                Seconds::ServerCall | Seconds::ClientCall => unbound.record(seconds, rpc),
                Seconds::Attempt | Seconds::RetryDelay => unbound.record(seconds, grpc),
            },
        }
    }

    /// Records a call's retries (`grpc.client.call.retries`).
    #[cfg_attr(not(feature = "retry"), allow(dead_code))]
    pub(crate) fn retries(&self, instruments: &Inner, retries: u64) {
        let unbound = &instruments.call_retries;
        match self {
            Recording::Bound(series) => series
                .retries
                .get_or_init(|| unbound.bind(&series.grpc))
                .record(retries),
            Recording::Made { grpc, .. } => unbound.record(retries, grpc),
        }
    }
}

/// The key of an outcome's series: bounded when `number` is (the table's numbers, or
/// [`UNKNOWN_CODE`]): the gRPC code (17 values), the number or none.
fn series_key(grpc: tonic::Code, number: Option<i64>) -> u64 {
    (grpc as u64 & 0x1f) << 34
        | (number.is_some() as u64) << 33
        | number.map_or(0, |n| n as u32 as u64)
}

/// The slot a key is looked for first: the top bits of a multiplicative hash.
fn slot_of(key: u64) -> usize {
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SLOT_BITS)) as usize
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Telemetry")
            .field(
                "methods",
                &self.inner.methods.listed.as_ref().map(HashMap::len),
            )
            .finish_non_exhaustive()
    }
}

impl Telemetry {
    /// Makes the instruments from `meter`. Every method is recorded as itself (within
    /// [bounded labels](self#bounded-labels)) until [`methods`](Telemetry::methods) lists them.
    ///
    /// # Examples
    ///
    /// ```
    /// let meter = opentelemetry::global::meter("my-service");
    /// let telemetry = clarifai_status::telemetry::Telemetry::new(&meter);
    /// # let _ = telemetry;
    /// ```
    pub fn new(meter: &Meter) -> Telemetry {
        let seconds = |name: &'static str, description: &'static str, bounds: &[f64]| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(description)
                .with_boundaries(bounds.to_vec())
                .build()
        };
        Telemetry {
            inner: Arc::new(Inner {
                server_duration: seconds(
                    "rpc.server.call.duration",
                    "Duration of calls served, by gRPC status and Clarifai code.",
                    &RPC_BOUNDARIES,
                ),
                client_duration: seconds(
                    "rpc.client.call.duration",
                    "Duration of client calls, retries included, by gRPC status and Clarifai code.",
                    &RPC_BOUNDARIES,
                ),
                attempt_started: meter
                    .u64_counter("grpc.client.attempt.started")
                    .with_unit("{attempt}")
                    .with_description("Attempts started, retries included.")
                    .build(),
                attempt_duration: seconds(
                    "grpc.client.attempt.duration",
                    "Duration of each attempt, by gRPC status and Clarifai code.",
                    &A66_BOUNDARIES,
                ),
                call_retries: meter
                    .u64_histogram("grpc.client.call.retries")
                    .with_unit("{retry}")
                    .with_description("Retries per call that retried.")
                    .with_boundaries(vec![1.0, 2.0, 3.0, 4.0, 5.0])
                    .build(),
                call_retry_delay: seconds(
                    "grpc.client.call.retry_delay",
                    "Time with no attempt in flight, per call that retried.",
                    &A66_BOUNDARIES,
                ),
                retry_stopped: meter
                    .u64_counter("clarifai.client.retry.stopped")
                    .with_unit("{call}")
                    .with_description("Retries refused by the budget or stopped by pushback.")
                    .build(),
                id: next_id(),
                methods: Methods {
                    listed: None,
                    seen: RwLock::new(HashMap::new()),
                    other: Arc::new(Method::other()),
                },
            }),
        }
    }

    /// Records only these methods as themselves (paths, `/clarifai.api.V2/PostModelOutputs`);
    /// any other is recorded as [`OTHER_METHOD`]. Replaces an earlier list.
    ///
    /// # Examples
    ///
    /// ```
    /// let meter = opentelemetry::global::meter("my-service");
    /// let telemetry = clarifai_status::telemetry::Telemetry::new(&meter)
    ///     .methods(["/clarifai.api.V2/PostModelOutputs"]);
    /// assert_eq!(telemetry.method_value("/clarifai.api.V2/GetModel"), "_OTHER");
    /// assert_eq!(telemetry.method_value("/clarifai.api.V2/PostModelOutputs"), "clarifai.api.V2/PostModelOutputs");
    /// ```
    pub fn methods(self, paths: impl IntoIterator<Item = impl Into<String>>) -> Telemetry {
        let listed = paths
            .into_iter()
            .map(Into::into)
            .filter(|path| well_formed(path))
            .take(MAX_METHODS)
            .map(|path| {
                let method = Arc::new(Method::named(&path));
                (path.into_boxed_str(), method)
            })
            .collect();
        let inner = &self.inner;
        Telemetry {
            inner: Arc::new(Inner {
                server_duration: inner.server_duration.clone(),
                client_duration: inner.client_duration.clone(),
                attempt_started: inner.attempt_started.clone(),
                attempt_duration: inner.attempt_duration.clone(),
                call_retries: inner.call_retries.clone(),
                call_retry_delay: inner.call_retry_delay.clone(),
                retry_stopped: inner.retry_stopped.clone(),
                id: next_id(),
                methods: Methods {
                    listed: Some(listed),
                    seen: RwLock::new(HashMap::new()),
                    other: Arc::new(Method::other()),
                },
            }),
        }
    }

    /// The value a call to this path is recorded under (`rpc.method`, `grpc.method`): the path
    /// without its leading `/`, or [`OTHER_METHOD`] ([bounded labels](self#bounded-labels)).
    ///
    /// # Examples
    ///
    /// ```
    /// let telemetry = clarifai_status::telemetry::Telemetry::new(&opentelemetry::global::meter("m"));
    /// assert_eq!(telemetry.method_value("/pkg.Svc/Do"), "pkg.Svc/Do");
    /// assert_eq!(telemetry.method_value("/not a method"), "_OTHER");
    /// ```
    pub fn method_value(&self, path: &str) -> String {
        self.method_text(path)
    }

    /// The method's value for a span, an event or [`method_value`](Telemetry::method_value),
    /// without admitting the path among the methods seen: a request's path is admitted only when
    /// its call is recorded as itself (not an `UNIMPLEMENTED` without a Clarifai code), so paths
    /// the service does not have never use up [`MAX_METHODS`].
    pub(crate) fn method_text(&self, path: &str) -> String {
        let methods = &self.inner.methods;
        if let Some(listed) = &methods.listed {
            return listed
                .get(path)
                .unwrap_or(&methods.other)
                .value()
                .as_str()
                .into_owned();
        }
        let seen = read(&methods.seen);
        if let Some(method) = seen.get(path) {
            return method.value().as_str().into_owned();
        }
        match path.strip_prefix('/') {
            Some(rest) if well_formed(path) && seen.len() < MAX_METHODS => rest.to_owned(),
            _ => OTHER_METHOD.to_owned(),
        }
    }

    /// The method a path is recorded as; only a well-formed path, known or within the cap, is
    /// recorded as itself.
    #[cfg(any(feature = "server", feature = "retry"))]
    pub(crate) fn method(&self, path: &str) -> Arc<Method> {
        let id = self.inner.id;
        if let Some(method) = recent::get(id, path) {
            return method;
        }
        let method = self.look_up(path);
        recent::put(id, &method);
        method
    }

    #[cfg(any(feature = "server", feature = "retry"))]
    fn look_up(&self, path: &str) -> Arc<Method> {
        let methods = &self.inner.methods;
        if let Some(listed) = &methods.listed {
            return listed.get(path).unwrap_or(&methods.other).clone();
        }
        if let Some(method) = read(&methods.seen).get(path) {
            return method.clone();
        }
        if !well_formed(path) {
            return methods.other.clone();
        }
        let mut seen = methods.seen.write().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= MAX_METHODS {
            return methods.other.clone();
        }
        seen.entry(path.into())
            .or_insert_with(|| Arc::new(Method::named(path)))
            .clone()
    }

    /// [`OTHER_METHOD`], as recorded.
    #[cfg_attr(not(any(feature = "server", feature = "retry")), allow(dead_code))]
    pub(crate) fn other_method(&self) -> Arc<Method> {
        self.inner.methods.other.clone()
    }

    /// The instruments, for the server and client taps.
    #[cfg_attr(not(any(feature = "server", feature = "retry")), allow(dead_code))]
    pub(crate) fn instruments(&self) -> &Inner {
        &self.inner
    }
}

type MethodMap = HashMap<Box<str>, Arc<Method>>;

fn read(lock: &RwLock<MethodMap>) -> std::sync::RwLockReadGuard<'_, MethodMap> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

/// `/<service>/<method>`, each part non-empty, of letters, digits, `_` and `.`, within
/// [`MAX_PATH`] bytes.
fn well_formed(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    let Some((service, method)) = rest.split_once('/') else {
        return false;
    };
    let part = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
    };
    path.len() <= MAX_PATH && part(service) && part(method)
}

/// `clarifai.status.code` and `clarifai.status.name` of a code, bounded by the table.
#[cfg_attr(not(all(feature = "server", feature = "retry")), allow(dead_code))]
pub(crate) fn code_attributes(code: Code) -> [KeyValue; 2] {
    let number = if code.is_known() {
        i64::from(code.number())
    } else {
        UNKNOWN_CODE
    };
    [
        KeyValue::new(CLARIFAI_CODE, number),
        KeyValue::new(CLARIFAI_NAME, code.name()),
    ]
}

/// A request id as a span records it: 1 to 128 bytes of printable ASCII (`' '` to `'~'`), else
/// nothing (a peer's text is never recorded unbounded).
#[cfg_attr(not(any(feature = "server", feature = "retry")), allow(dead_code))]
pub(crate) fn bounded_request_id(id: &str) -> Option<&str> {
    let printable = (1..=128).contains(&id.len()) && id.bytes().all(|b| (b' '..=b'~').contains(&b));
    printable.then_some(id)
}

/// The request id of a gRPC error in `headers` (its Clarifai `ErrorInfo`'s `req_id`), bounded as
/// [`bounded_request_id`] bounds it. Decodes the details: for errors only.
#[cfg_attr(not(any(feature = "server", feature = "retry")), allow(dead_code))]
pub(crate) fn error_request_id(headers: &http::HeaderMap) -> Option<String> {
    let raw = headers.get("grpc-status-details-bin")?;
    let bytes = crate::grpc::decode_base64(raw.as_bytes())?;
    let decoded = crate::grpc::details::decode(&bytes);
    let id = decoded
        .metadata
        .get("req_id")
        .or_else(|| decoded.metadata.get("reqId"))?;
    bounded_request_id(id).map(str::to_owned)
}

/// The value recorded for a code in spans: the same bounded number.
#[cfg_attr(not(all(feature = "server", feature = "retry")), allow(dead_code))]
pub(crate) fn code_number(code: Code) -> i64 {
    if code.is_known() {
        i64::from(code.number())
    } else {
        UNKNOWN_CODE
    }
}

#[cfg_attr(not(all(feature = "server", feature = "retry")), allow(dead_code))]
pub(crate) const RPC_SYSTEM: &str = "rpc.system.name";
#[cfg_attr(not(all(feature = "server", feature = "retry")), allow(dead_code))]
pub(crate) const RPC_METHOD: &str = "rpc.method";
#[cfg_attr(not(all(feature = "server", feature = "retry")), allow(dead_code))]
pub(crate) const RPC_STATUS: &str = "rpc.response.status_code";
#[cfg_attr(not(all(feature = "server", feature = "retry")), allow(dead_code))]
pub(crate) const GRPC_METHOD: &str = "grpc.method";
#[cfg_attr(not(all(feature = "server", feature = "retry")), allow(dead_code))]
pub(crate) const GRPC_STATUS: &str = "grpc.status";
#[cfg_attr(not(all(feature = "server", feature = "retry")), allow(dead_code))]
pub(crate) const CLARIFAI_CODE: &str = "clarifai.status.code";
#[cfg_attr(not(all(feature = "server", feature = "retry")), allow(dead_code))]
pub(crate) const CLARIFAI_NAME: &str = "clarifai.status.name";
#[cfg_attr(not(all(feature = "server", feature = "retry")), allow(dead_code))]
pub(crate) const STOP_REASON: &str = "clarifai.retry.stop_reason";

/// A Clarifai code a layer of the crate read from a response body (the in-body status of its
/// first message), left in the response's extensions for what runs outside the layer, such as
/// [`ClarifaiFailures`].
///
/// Inserted (feature `telemetry`) by `RetryLayer` when it read the status of a response it
/// passes on, and by `ErrorToInBodyLayer` when it answers a Trailers-Only error in-body.
/// (`InBodyToErrorLayer` answers the failures it reads as gRPC errors carrying
/// `clarifai-status-code`, which the classifier reads.)
///
/// # Examples
///
/// ```
/// use clarifai_status::telemetry::InBodyCode;
/// use clarifai_status::StatusCode;
///
/// let mut response = http::Response::new(());
/// response.extensions_mut().insert(InBodyCode(StatusCode::ModelBusyPleaseRetry.into()));
/// assert_eq!(response.extensions().get::<InBodyCode>().unwrap().0.number(), 21354);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InBodyCode(pub Code);
