//! The status test server: an httpbin for Clarifai statuses, and a fault-injecting stand-in for
//! Clarifai's V2 API, over gRPC and HTTP.
//!
//! Point a client, a retry policy or a proxy at it to see exactly what it does with each status:
//! the crate's own `StatusTester/Raise`, or Clarifai's real clients (the `clarifai` Python SDK,
//! the `clarifai-grpc` stubs and JSON channel, Rust clients generated from Clarifai's protos)
//! calling their usual methods.
//!
//! # gRPC: Clarifai's `clarifai.api.V2`, every method
//!
//! Every method under `/clarifai.api.V2/` (unary, server-streaming, client-streaming,
//! bidirectional; known to Clarifai or not) is answered with a status-only message: field 1 set
//! to a [`pb::Status`](clarifai_status::pb::Status), which every V2 response type has, so it decodes as any
//! of them ([`V2StandIn`]). The default answer is `SUCCESS` in the body, as Clarifai answers. A
//! stream gets one message, then OK. Requests are not decoded; the server waits for the first
//! request message (or the end of the requests) before answering. A delayed answer (`delay_ms`)
//! sends its response headers at once and its message (or error, in trailers) after the delay,
//! so the client's own deadline decides how a slow call ends. Paths outside
//! `/clarifai.api.V2/` and `StatusTester/Raise` answer gRPC `UNIMPLEMENTED` (with
//! `NOT_IMPLEMENTED`, 10040, per the wire contract). Every gRPC error the port sends carries a
//! Clarifai code, tonic's own too (an over-size message: `OUT_OF_RANGE` with the code
//! [`StatusLayer`](clarifai_status::server::status::StatusLayer) maps it to).
//!
//! ## Scenarios
//!
//! What a call is answered with comes from the first of:
//! 1. metadata `x-clarifai-status-raise: <pairs>`;
//! 2. the API key, `authorization: Key raise;<pairs>` (`Key raise` alone: the defaults), since
//!    Clarifai's SDK sends no other header of its user's choosing; any other key is not read;
//! 3. the first matching rule of the [`Scenarios`] plan (`clarifai-status serve --scenario
//!    FILE`, [`TestServer::scenarios`]).
//!
//! Without any of these, `SUCCESS`. `<pairs>` is `name=value` joined by `;`:
//!
//! | name | value | default |
//! |---|---|---|
//! | `code` | a number (any `i32`) or a name in any case | `SUCCESS` |
//! | `methods` | method names or `*` patterns joined by `,` (`PostModelOutputs,Get*`): the scenario applies to these only, other methods answer `SUCCESS` | every method |
//! | `fail_times` | the first N calls per scenario text and method answer `code`, later ones `SUCCESS`; 0: always | 0 |
//! | `in_body` | `true`: every answer is gRPC OK with the status in the body; `false`: a failure is a gRPC error per the [wire contract](clarifai_status::grpc) | `true` |
//! | `retry_after_ms` | pushback on a failure: on a gRPC error, `RetryInfo` and `grpc-retry-pushback-ms`; on an in-body failure over gRPC, `grpc-retry-pushback-ms` in the response headers (as `ErrorToInBodyLayer` answers); over REST, `Retry-After` | 0 (none) |
//! | `delay_ms` | wait before answering a call that gets `code`, at most [`MAX_DELAY_MS`] | 0 |
//! | `successes_first` | gRPC: SUCCESS messages sent before the answer of a call that gets `code`, at most 16: a server stream that fails after its first messages (a unary client reads more than one message as an error) | 0 |
//! | `percent` | 0-100: the share of matching calls that get `code`, drawn from the plan's seed, the scenario text, the method and the call's count, so a run repeats | 100 |
//! | `id` | any text, only to keep the counters of otherwise equal scenarios apart | |
//!
//! A call gets `code` when the scenario applies to its method, it is within `fail_times`, and
//! the `percent` draw says so; otherwise `SUCCESS`. Answers carry the code and the table's
//! description. Unknown, repeated or malformed pairs, a non-ASCII header, or a scenario text
//! longer than [`MAX_KEY_LEN`] are answered `CONN_INVALID_REQUEST` (11102) in the body, with
//! `details` naming the bad pair, and are not counted.
//!
//! # HTTP: Clarifai's REST API, every path under `/v2/`
//!
//! Any method and path under `/v2/` other than `/v2/raise/{code}` and `/v2/_tester/...` answers
//! in Clarifai's REST shape ([`rest::response`](clarifai_status::rest::response): the mapped HTTP status,
//! `clarifai-status-code`, the JSON `{"status": {...}}`), with the scenario read from
//! `Authorization: Key raise;<pairs>` (the one header Clarifai's JSON client lets through; the
//! `x-clarifai-status-raise` header works too) or the plan's first rule. `methods` does not apply
//! to REST, and `in_body` means nothing there; counters are per scenario text and `METHOD PATH`.
//!
//! # Call counts: `GET /v2/_tester/calls`
//!
//! Answers `{"calls":[{"key":"<scenario text>","method":"<Method>","count":N},...]}`, oldest
//! first: every call the server answered, per scenario text (the `<pairs>` as sent, `rules[i]`
//! for the plan's rule `i`, the `key` of a `Raise` call, empty without any) and method (the gRPC
//! method's name, `METHOD /path` over REST). [`Tester::calls`] gives the same in Rust. The
//! counters are bounded (see below), so a test can assert how often a client retried.
//!
//! # gRPC: `clarifai.status.testing.v1.StatusTester/Raise`
//!
//! A [`RaiseRequest`](crate::pb::RaiseRequest) is answered as follows:
//! - `status` is what to answer with. Its private fields (`stack_trace`, `internal_details`,
//!   `redirect_info`) are stripped before anything is sent. A request without `status` is
//!   rejected (see below).
//! - `in_body` false: a failure ([`Outcome::Failure`](clarifai_status::Outcome)) is a gRPC error per the
//!   [wire contract](clarifai_status::grpc); a success or in-progress status is gRPC OK with the status in
//!   `RaiseResponse.status`. `in_body` true: always gRPC OK with the status in
//!   `RaiseResponse.status`, as Clarifai's API answers.
//! - `fail_times` 0: always answer with `status`. N: the first N calls with the same `key` answer
//!   with `status`, later ones with `SUCCESS` (code 10000 and the table's description, nothing
//!   else). `RaiseResponse.attempt` is the number of calls seen with this `key`, this one
//!   included. The empty key is a key like any other: calls without a key share one counter.
//! - `retry_after_ms` non-zero: a gRPC error carries the delay as pushback, a `RetryInfo` detail
//!   and `grpc-retry-pushback-ms` metadata, besides everything the wire contract puts in an
//!   error (code, description, request id and the other public fields). Pushback applies only to
//!   gRPC errors: an OK answer (`in_body` true, or a success) has nowhere to carry
//!   it, and ignores it.
//!
//! # HTTP: `GET /v2/raise/{code}?fail_times=N&key=K&retry_after_ms=M`
//!
//! `{code}` is a number (any `i32`, known or not) or a known name in any case (`CONN_KEY_INVALID`,
//! `conn_key_invalid`), as `clarifai-status explain` and the scenarios' `code` take it. The answer is [`rest::response`](clarifai_status::rest::response)
//! for a status with that code and the table's description: the mapped HTTP status,
//! `clarifai-status-code`, and the JSON body `{"status": {...}}`. A failure answered while
//! `retry_after_ms` is non-zero also carries `Retry-After`, in whole seconds rounded up. The
//! query parameters are all optional and mean what they mean over gRPC; the calls count under the
//! same keys as gRPC calls (one counter store for both). A query that is not UTF-8 once
//! percent-decoded is rejected (as gRPC rejects a key that is not UTF-8), so two keys never share
//! a counter. A method other than `GET` on `/v2/raise/{code}` or `/v2/_tester/calls` answers
//! `CONN_METHOD_NOT_ALLOWED` (11103) in the same JSON shape.
//!
//! Paths outside `/v2/`, and other paths under `/v2/_tester/`, answer `CONN_DOES_NOT_EXIST`
//! (11101, HTTP 404) in the same JSON shape. A request whose header list (name + value + 32 per
//! field) is over [`Limits::max_header_list_size`] is answered `RPC_MAX_MESSAGE_SIZE_EXCEEDED`
//! (40033) in the same shape. Every answer of the server carries a Clarifai code; what hyper
//! reads before the server sees a request is answered by hyper (see below).
//!
//! # Malformed requests
//!
//! An unknown code name, an unknown or repeated query parameter, a parameter that is not a number
//! in `u32`, a key longer than [`MAX_KEY_LEN`] bytes, a gRPC request that does not decode as a
//! `RaiseRequest` (or holds no message, one cut short, or a compressed one), or a gRPC request
//! without `status` is
//! answered `CONN_BAD_REQUEST_FORMAT` (11100: gRPC `INVALID_ARGUMENT`, HTTP 400) with the table's
//! description, and a `details` field saying what was rejected. A rejected call is not counted.
//!
//! # Bounds
//!
//! The counters hold at most [`MAX_KEYS`] pairs of key and method. Past that, a new pair evicts
//! the oldest inserted one, whose count starts again at 1 if it is seen again. Keys and methods
//! are never truncated: one longer than [`MAX_KEY_LEN`] bytes is rejected, so two long keys never
//! share a counter by accident. `delay_ms` is at most [`MAX_DELAY_MS`].
//!
//! # Limits
//!
//! Both listeners hold to [`Limits`] ([`TestServer::limits`], `clarifai-status serve`'s flags):
//! a cap on open connections (one more is answered `RPC_REQUEST_QUEUE_FULL`, 40030, by a hyper
//! connection of its own, then closed), a handshake timeout (10 s) for connections that send
//! nothing, an idle timeout (120 s), a pause instead of a spin when out of file descriptors, a
//! header list limit (16 KiB: a longer list is answered `RPC_MAX_MESSAGE_SIZE_EXCEEDED`, 40033,
//! on its own stream, and the connection goes on), and on gRPC HTTP/2
//! `SETTINGS_MAX_CONCURRENT_STREAMS` (100). An HTTP/1.1 request on the gRPC port is answered
//! `CONN_BAD_REQUEST_FORMAT` (11100) in the REST shape. Every limit comes from the public
//! configuration of tonic, hyper, h2 and tokio, or from a tower layer in front of the handlers
//! (no byte of HTTP/2 or HTTP/1.1 is read or written beneath them).
//!
//! # What the stack answers by itself
//!
//! hyper and h2 read every request before the server does, and answer some themselves, without
//! a Clarifai code (measured with h2 0.4.20 and hyper 1.12; `tests/abuse.rs` checks each):
//!
//! | port | what the client sends | the answer |
//! |---|---|---|
//! | gRPC | a header list of [`header_list_read_size`] bytes or more (258 KiB by default; h2 advertises it as `SETTINGS_MAX_HEADER_LIST_SIZE` and compares with `>=`, so a list of exactly that size is h2's), up to four times it | HTTP `431` on the stream, no `grpc-status` (clients read `UNKNOWN` or `INTERNAL`); the connection goes on |
//! | gRPC | a header list over four times that, or in more `CONTINUATION` frames than it needs (more than 1.25 times the list size over the frame size, at least 5) | `GOAWAY` (`ENHANCE_YOUR_CALM` or `COMPRESSION_ERROR`): the connection closes, clients read `UNAVAILABLE` or `INTERNAL` |
//! | gRPC | a malformed request: a connection-specific header, `te` other than `trailers`, a missing or misplaced pseudo-header | `RST_STREAM(PROTOCOL_ERROR)` on the stream (clients read `INTERNAL`) |
//! | gRPC | a header block h2 cannot decode (an upper-case name) | `GOAWAY(PROTOCOL_ERROR)` |
//! | gRPC | bytes that are neither the HTTP/2 preface nor HTTP/1.1 (TLS, garbage, a broken preface) | hyper's HTTP/1.1 `400` with an empty body, then close |
//! | HTTP | bytes that are not HTTP/1.1 | hyper's `400`, empty body, then close |
//! | HTTP | a head over hyper's buffer (about 400 KiB), or more than 100 headers | hyper's `431`, empty body |
//! | HTTP | a URI over 64 KiB | hyper's `414`, empty body |
//!
//! grpc-go users: grpc-go sends header lists up to the size the server advertises and refuses
//! a longer one itself, with a local `INTERNAL` and no Clarifai code; between
//! [`Limits::max_header_list_size`] and the advertised size, the server answers 40033.
//! Errors the server sends keep their trailers within what default clients accept, whatever the
//! size of a status's text (see the wire contract's [size rule](clarifai_status::grpc#size-the-code-always-arrives)).
//!
//! # Examples
//!
//! ```
//! use clarifai_status_testing::pb::status_tester_client::StatusTesterClient;
//! use clarifai_status_testing::pb::RaiseRequest;
//! use clarifai_status_testing::TestServer;
//! use clarifai_status::{pb, StatusCode};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let bound = TestServer::new().bind("127.0.0.1:0".parse().unwrap(), None).unwrap();
//! let url = format!("http://{}", bound.grpc_addr());
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let server = tokio::spawn(bound.serve_with_shutdown(async { stopped.await.ok(); }));
//!
//! let mut client = StatusTesterClient::connect(url).await.unwrap();
//! let request = RaiseRequest {
//!     status: Some(pb::Status { code: StatusCode::ModelTraining as i32, ..Default::default() }),
//!     ..Default::default()
//! };
//! let response = client.raise(request).await.unwrap().into_inner();
//! assert_eq!(response.status.unwrap().code, 21101);
//! assert_eq!(response.attempt, 1);
//!
//! stop.send(()).unwrap();
//! server.await.unwrap().unwrap();
//! # });
//! ```

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::future::{Future, IntoFuture};
use std::io;
use std::net::{SocketAddr, TcpListener};

use tonic::transport::Server;
use tower_layer::Layer as _;

pub mod pb;

mod counters;
mod guard;
mod http;
mod limits;
mod scenario;
mod service;
mod v2;

pub use counters::CallCount;
pub use limits::{header_list_read_size, Limits, ACCEPT_BACKOFF};
pub use scenario::{InvalidScenarios, Scenarios, MAX_DELAY_MS};
pub use service::Tester;
pub use v2::V2StandIn;

// `RaiseResponse` carries a status like every Clarifai response, so the retry helpers and
// `into_result` take it as they take the real API's responses.
clarifai_status::impl_has_status!(crate::pb::RaiseResponse);

/// The most counters held, one per key and method; a new one past this evicts the oldest inserted.
///
/// Bounds the server's memory whatever its clients send: at most this many keys of at most
/// [`MAX_KEY_LEN`] bytes each.
///
/// # Examples
///
/// ```
/// assert_eq!(clarifai_status_testing::MAX_KEYS, 10_000);
/// ```
pub const MAX_KEYS: usize = 10_000;

/// The longest key accepted, in bytes; longer keys are rejected, not truncated.
///
/// Rejected with `CONN_BAD_REQUEST_FORMAT` (gRPC `INVALID_ARGUMENT`, HTTP 400): truncating would
/// silently make two keys share a counter.
///
/// # Examples
///
/// ```
/// assert_eq!(clarifai_status_testing::MAX_KEY_LEN, 256);
/// ```
pub const MAX_KEY_LEN: usize = 256;

/// The status test server, before it binds: the gRPC service and, optionally, the HTTP endpoint.
///
/// # Examples
///
/// ```no_run
/// use clarifai_status_testing::TestServer;
///
/// # async fn run() -> std::io::Result<()> {
/// let bound = TestServer::new().bind(
///     "0.0.0.0:50051".parse().unwrap(),
///     Some("0.0.0.0:8080".parse().unwrap()),
/// )?;
/// println!("grpc listening on {}", bound.grpc_addr());
/// bound.serve_with_shutdown(std::future::pending()).await
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct TestServer {
    tester: Tester,
    limits: Limits,
}

impl TestServer {
    /// A server with fresh counters.
    ///
    /// # Examples
    ///
    /// ```
    /// let server = clarifai_status_testing::TestServer::new();
    /// # drop(server);
    /// ```
    pub fn new() -> TestServer {
        TestServer::default()
    }

    /// Sets the fault-injection plan: the rules that answer V2 and REST calls carrying no
    /// scenario of their own.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status_testing::{Scenarios, TestServer};
    ///
    /// let plan = Scenarios::from_json(r#"{"seed": 7, "rules": [{"methods": ["Post*"], "code": 21354, "percent": 30}]}"#).unwrap();
    /// let server = TestServer::new().scenarios(plan);
    /// # drop(server);
    /// ```
    pub fn scenarios(mut self, scenarios: Scenarios) -> TestServer {
        self.tester = self.tester.with_scenarios(scenarios);
        self
    }

    /// Sets the limits both listeners hold to (connections, timeouts, HTTP/2 settings); without
    /// this, [`Limits::default`].
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status_testing::{Limits, TestServer};
    ///
    /// let mut limits = Limits::default();
    /// limits.max_concurrent_streams = 10;
    /// let server = TestServer::new().limits(limits);
    /// # drop(server);
    /// ```
    pub fn limits(mut self, limits: Limits) -> TestServer {
        self.limits = limits;
        self
    }

    /// The server's [`Tester`]: clone it before [`bind`](TestServer::bind) to read the call
    /// counts ([`Tester::calls`]) while the server runs.
    ///
    /// # Examples
    ///
    /// ```
    /// let server = clarifai_status_testing::TestServer::new();
    /// let tester = server.tester().clone();
    /// assert!(tester.calls().is_empty());
    /// ```
    pub fn tester(&self) -> &Tester {
        &self.tester
    }

    /// Binds the gRPC listener and, if `http` is given, the HTTP one. Port 0 picks a free port:
    /// read it back from [`Bound::grpc_addr`] and [`Bound::http_addr`].
    ///
    /// Needs no async runtime; [`Bound::serve_with_shutdown`] does.
    ///
    /// # Errors
    ///
    /// The error of binding either address (in use, not local, no permission).
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status_testing::TestServer;
    ///
    /// let bound = TestServer::new()
    ///     .bind("127.0.0.1:0".parse().unwrap(), Some("127.0.0.1:0".parse().unwrap()))
    ///     .unwrap();
    /// assert_ne!(bound.grpc_addr().port(), 0);
    /// assert!(bound.http_addr().is_some());
    /// ```
    pub fn bind(self, grpc: SocketAddr, http: Option<SocketAddr>) -> io::Result<Bound> {
        let (grpc, grpc_addr) = listen(grpc)?;
        let (http, http_addr) = match http {
            Some(addr) => {
                let (listener, addr) = listen(addr)?;
                (Some(listener), Some(addr))
            }
            None => (None, None),
        };
        Ok(Bound {
            tester: self.tester,
            limits: self.limits,
            grpc,
            grpc_addr,
            http,
            http_addr,
        })
    }
}

fn listen(addr: SocketAddr) -> io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr)?;
    // tokio takes the listener over as is: it must not block.
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// The status test server with its listeners bound, ready to serve.
///
/// # Examples
///
/// ```
/// use clarifai_status_testing::TestServer;
///
/// let bound = TestServer::new().bind("127.0.0.1:0".parse().unwrap(), None).unwrap();
/// println!("grpc listening on {}", bound.grpc_addr());
/// assert_eq!(bound.http_addr(), None);
/// ```
#[derive(Debug)]
pub struct Bound {
    tester: Tester,
    limits: Limits,
    grpc: TcpListener,
    grpc_addr: SocketAddr,
    http: Option<TcpListener>,
    http_addr: Option<SocketAddr>,
}

impl Bound {
    /// The address the gRPC listener is bound to, with the port picked if port 0 was asked.
    ///
    /// # Examples
    ///
    /// ```
    /// # let bound = clarifai_status_testing::TestServer::new().bind("127.0.0.1:0".parse().unwrap(), None).unwrap();
    /// assert!(bound.grpc_addr().ip().is_loopback());
    /// ```
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// The address the HTTP listener is bound to; `None` if no HTTP address was given.
    ///
    /// # Examples
    ///
    /// ```
    /// # let bound = clarifai_status_testing::TestServer::new().bind("127.0.0.1:0".parse().unwrap(), Some("127.0.0.1:0".parse().unwrap())).unwrap();
    /// assert_ne!(bound.http_addr().unwrap().port(), 0);
    /// ```
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// Serves gRPC (and HTTP, if bound) until `signal` completes, then shuts down gracefully:
    /// both servers stop accepting and finish the calls in flight.
    ///
    /// Must run inside a tokio runtime. The returned future is `Send` when `signal` is, so it can
    /// be spawned.
    ///
    /// # Errors
    ///
    /// The first error either server fails with; the other one is then dropped.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use clarifai_status_testing::TestServer;
    ///
    /// # async fn run() -> std::io::Result<()> {
    /// let bound = TestServer::new().bind("127.0.0.1:50051".parse().unwrap(), None)?;
    /// bound
    ///     .serve_with_shutdown(async { tokio::signal::ctrl_c().await.ok(); })
    ///     .await
    /// # }
    /// ```
    pub async fn serve_with_shutdown(self, signal: impl Future<Output = ()>) -> io::Result<()> {
        let (stop, stopping) = tokio::sync::watch::channel(());
        let stopped = |mut stopping: tokio::sync::watch::Receiver<()>| async move {
            // A send or the sender's drop: either way, time to stop.
            let _ = stopping.changed().await;
        };

        let limits = self.limits;
        let incoming =
            limits::Accepting::grpc(tokio::net::TcpListener::from_std(self.grpc)?, &limits);
        // Every error leaving the port carries a Clarifai code, tonic's own included (an
        // over-size message, an unknown service).
        // The header list limit is the guard's: h2 reads longer lists, so that one over the limit
        // is answered on its own stream and the connection goes on.
        let service = clarifai_status::server::status::StatusLayer::new().layer(guard::Guard::new(
            v2::Dispatch::new(self.tester.clone()),
            limits.max_header_list_size,
            guard::Port::Grpc,
        ));
        let grpc = Server::builder()
            .max_concurrent_streams(limits.max_concurrent_streams)
            .http2_max_header_list_size(header_list_read_size(limits.max_header_list_size))
            // HTTP/1.1 requests reach the guard, which answers them 11100 in the REST shape.
            .accept_http1(true)
            .serve_with_incoming_shutdown(service, incoming, stopped(stopping.clone()));
        let grpc = async { grpc.await.map_err(io::Error::other) };

        let http = match self.http {
            Some(listener) => Some(
                axum::serve(
                    limits::Accepting::http(tokio::net::TcpListener::from_std(listener)?, &limits),
                    self::http::router(self.tester).layer(guard::GuardLayer {
                        limit: limits.max_header_list_size,
                        port: guard::Port::Rest,
                    }),
                )
                .with_graceful_shutdown(stopped(stopping))
                .into_future(),
            ),
            None => None,
        };
        let http = async {
            match http {
                Some(http) => http.await,
                None => Ok(()),
            }
        };

        let signal = async {
            signal.await;
            let _ = stop.send(());
            Ok(())
        };
        // All three to completion, or the first error.
        tokio::try_join!(signal, grpc, http).map(|_| ())
    }
}

// The README's examples run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
