//! Status-aware retries: a tower layer for tonic channels, a typed call helper, and a poller,
//! all driven by one [`Policy`].
//!
//! # Two ways in, one policy
//!
//! 1. [`RetryLayer`] / [`Retry`]: a tower layer under any generated client
//!    (`ServiceBuilder::new().layer(RetryLayer::new(policy)).service(channel)`). It works on
//!    `http::Request<tonic::body::Body>`, and reads no more of a response than the status code
//!    of its first message ([in-body answers](#in-body-answers)).
//! 2. [`call`]: retries a closure making a typed call (`|| { let (mut c, r) = (client.clone(),
//!    req.clone()); async move { c.predict(r).await } }`: each attempt owns its client and request),
//!    and sees the decoded response. Needed only for responses that are not Clarifai-shaped
//!    (no `Status` at field 1), or calls whose request is a live stream.
//!
//! [`poll`] builds on [`call`] to wait on long-running work.
//!
//! # What each way in sees
//!
//! | Signal | [`RetryLayer`] | [`call`] |
//! |---|---|---|
//! | Clarifai code carried on a gRPC error ([wire contract](crate::grpc)) | yes, in Trailers-Only headers | yes |
//! | plain gRPC code (`UNAVAILABLE`, ...) | yes, in Trailers-Only headers | yes |
//! | connection failure | yes (as tonic reads it: `UNAVAILABLE`) | yes (`UNAVAILABLE`) |
//! | bare HTTP error from a proxy (502, 503, ...) | yes, as gRPC reads it | yes |
//! | pushback: `RetryInfo`, `grpc-retry-pushback-ms`, `Retry-After` | yes | yes |
//! | in-body `response.status.code` of an OK response | yes, in the first message, uncompressed ([in-body answers](#in-body-answers)) | yes |
//! | gRPC error sent in trailers after response headers | **no** (committed) | yes |
//!
//! A tower layer sees a gRPC error only when it arrives in the response *headers*: a
//! Trailers-Only response (the status in the headers, an empty body). That is how tonic servers
//! (and grpc-go, grpc-java, C core) answer a unary call that fails before sending a message, so
//! the layer sees every error of a failed unary call from these. Clarifai answers its own
//! failures differently: gRPC OK, the status in the message. The layer reads that status from the
//! first message before passing the response on ([in-body answers](#in-body-answers)). Once the
//! response headers have said OK and the first message is read (or cannot be), the call is
//! **committed** (gRFC A6): its body, and any status in its trailers, go to the caller untouched,
//! and nothing is replayed after a message has reached the caller.
//!
//! # In-body answers
//!
//! Every Clarifai response type has `clarifai.api.status.Status status = 1`, and Clarifai
//! answers throttles, busy or loading models and most other failures as gRPC OK with that status
//! set. For a call it can replay, the layer reads the status code of the response's first
//! message before passing the response on, without decoding the message or knowing its type:
//!
//! - **What is read**: the gRPC message framing (a flag byte, a 4-byte length), then the keys
//!   and varints of field 1 and of its field 1, `code`: about 12 bytes of a Clarifai response
//!   (`prost::encoding`'s readers, the ones prost's generated code decodes with). The layer reads
//!   body frames until it has them, and no further.
//! - **What is decided**: a failure code is read as [`call`] reads a decoded response's, and goes
//!   to the same [`Policy`]: the table's retryable codes and the policy's overrides, the
//!   [`Budget`] (shared with the retries of gRPC errors), [idempotent
//!   methods](Policy::idempotent_methods) (refusals such as a busy model stay retryable for every
//!   method), the deadline, and pushback, read from the response headers
//!   (`grpc-retry-pushback-ms`, where the server's
//!   `ErrorsInBodyLayer` keeps the error's `RetryInfo`, or `Retry-After`). A success or
//!   in-progress code commits the call and earns the budget; a failure not to be retried, or
//!   the last one, is passed on as it came.
//! - **Untouched**: the frames read are passed on as they came, the same bytes in the same
//!   frames, followed by the rest of the body. A response the layer retries is dropped (its
//!   stream cancelled) before any of it reaches the caller.
//! - **Not read**, and passed on at once: a compressed message (flag 1, which would need
//!   decompressing), an empty message, a message whose first field is not a message at field 1
//!   (not Clarifai-shaped, or its status unset), malformed bytes, a code not found within the
//!   first 1 KiB of the body or 64 frames, a body that ends or sends trailers or an error first.
//!   The status is read where encoders put it: prost, protobuf-python, grpc-go and
//!   protobuf-java write fields in order, and a message field once.
//! - **Bounded**: at most 1 KiB (plus the rest of the last frame read) is held, and the wait for
//!   the first message is bounded by the call's deadline and the [per-attempt
//!   timeout](Policy::attempt_timeout), as the wait for the headers is: a hostile server (an
//!   endless length prefix, endless empty frames, a body that never ends, a status that never
//!   completes) gets the call committed, retried or cut by the deadline, never an unbounded
//!   wait or buffer.
//! - **Which calls**: only calls the layer can replay (their request body was complete and
//!   buffered: every unary and server-streaming call tonic makes, see [what the layer
//!   replays](#what-the-layer-replays)). A client or bidirectional stream fed by a live source
//!   is sent once and never waits on a peek, so a bidi client that sends only after the
//!   response headers arrive works as without the layer. A server stream is read up to its first
//!   message: whose failure is retried before the caller sees any message, and whose later
//!   failures never are.
//!
//! **On by default**, for every method: the layer is built for Clarifai's API, where in-body
//! answers are how throttles and busy models arrive, and off it would hand a busy model's answer
//! to the caller after one attempt while retrying a plain `UNAVAILABLE` (the trap Clarifai's SDKs
//! fill with per-method loops). The read costs a few hundred nanoseconds on the success path
//! (BENCHMARKS.md) and changes no byte. A service on the same channel whose responses are not
//! Clarifai-shaped is not misread when its field 1 is not a message (`grpc.health.v1`'s is an
//! enum); when it is, turn the read off for it. [`RetryLayer::in_body`] turns it off (or on) for a
//! channel, [`RetryLayer::in_body_except`] for some methods:
//!
//! ```
//! use clarifai_status::retry::{Policy, RetryLayer};
//!
//! // On for every method but the health service (the default is on).
//! let layer = RetryLayer::new(Policy::new()).in_body_except(["/grpc.health.v1.Health/*"]);
//! // Off for every method but predictions.
//! let layer = RetryLayer::new(Policy::new())
//!     .in_body(false)
//!     .in_body_except(["/clarifai.api.V2/PostModelOutputs"]);
//! # let _ = layer;
//! ```
//!
//! Under [`call`], the layer sends each attempt once and reads nothing: `call` decodes the
//! response and retries it itself, so stacking both makes at most `max_attempts` attempts.
//!
//! # What the layer replays
//!
//! The layer buffers a request body that is complete when the call is made and at most the
//! buffer limit (64 KiB by default, [`RetryLayer::buffer_limit`]): every unary and
//! server-streaming request tonic encodes, as their single message is ready at once. A body that
//! is not complete yet (a client or bidirectional stream fed by a live source), over the limit,
//! or with trailers is sent once, as is, without retry. Retries carry
//! `grpc-previous-rpc-attempts`, and, when the request carried `grpc-timeout`, the time left
//! until the deadline in its place.
//!
//! # Deadline and pushback cap
//!
//! Every call through [`RetryLayer`], [`call`] and [`poll`] ends by its deadline: the policy's
//! ([`Policy::deadline`], 30 s by default), or the request's `grpc-timeout` when the layer sees a
//! sooner one ([`PollPolicy::deadline`] for [`poll`], which bounds each poll's call too). The
//! deadline bounds everything: every attempt, every sleep, and, in the layer, the wait for the
//! response's headers, for its first message when the layer reads its [in-body
//! status](#in-body-answers), and then for the rest of its body (messages and trailers) after
//! the call is committed. A retry whose delay or pushback would end past it is not made: the last result
//! is returned at once.
//!
//! A call cut by the deadline (or an attempt cut by [`Policy::attempt_timeout`]) fails with the
//! client's own `DEADLINE_EXCEEDED`: a `tonic::Status` made by `tonic::Status::from_error` from
//! an error whose source is that status, as tonic makes the statuses of its own transport errors.
//! So it has an [`Error::source`](std::error::Error::source) and carries no Clarifai code, and
//! [`clarifai_code`](crate::grpc::ClarifaiStatusExt::clarifai_code) reads it as
//! [`LOCAL_FAILURE`](crate::grpc::LOCAL_FAILURE), never as a code a server sent. The layer
//! returns it as its error (before headers) or yields it from the response body (after them);
//! tonic's client reads both as that status. The layer does not send its own deadline to the
//! server: a request's `grpc-timeout` is passed on (as the time left, on retries and when it ends
//! after the policy's deadline), and the per-attempt timeout is sent, as before.
//!
//! Long-lived streams through the layer are bounded by the deadline too: give their channel a
//! policy with a longer one, or [`Policy::no_deadline`].
//!
//! Without a deadline, no single wait is unbounded either: a server's pushback longer than
//! [`MAX_PUSHBACK`] (5 minutes) stops the retrying instead of being waited for, and the
//! backoff's delays are capped by [`Backoff`].
//!
//! # What the layer rewrites
//!
//! The layer passes a response's status headers on only once they are safe for every reader,
//! tonic's client included, in the headers of every response and in the trailers of every body it
//! passes on: a `grpc-status` that is not a gRPC code becomes `2` (`UNKNOWN`, as tonic reads it
//! anyway); a `grpc-status-details-bin` that is not base64 is removed (tonic's client panics on
//! it); a `grpc-message` whose percent-decoding is not UTF-8 is written again from its lossy
//! decoding. Nothing else is touched, and a response without `grpc-status` in its headers (the
//! success path) is not looked at further. The layer reads the headers after that rewriting,
//! with the crate's [wire contract](crate::grpc): an error carries only a failure code, so
//! `grpc-status: 14` claiming `clarifai-status-code: 10000` is `UNAVAILABLE`, retried; a carried
//! `0` (`ZERO`, proto3's unset) says nothing about retrying, and the gRPC code decides too.
//! [`call`] and [`poll`] see a response only after tonic's client has read it: put the layer
//! on the channel under them to have peer headers made safe first (the layer then sends each of
//! `call`'s attempts once, and still rewrites).
//!
//! A request body is read inside `Service::call` for at most 64 frames, empty ones included: a
//! body yielding empty frames without end is sent once, as is. The body of a response is passed
//! on frame by frame, yielding to the executor on a long run of empty data frames.
//!
//! # Budget, cancellation, events
//!
//! The [`Budget`] (see [`budget`] for why budgets beat a bare maximum of attempts) is shared by
//! every clone of a policy and every service built from it. Dropping a
//! future stops all further attempts: retrying happens only while the future is polled.
//! [`Policy::attempt_timeout`] bounds each attempt too, and [`Policy::idempotent_methods`] keeps
//! failures whose effect is unknown from being retried on methods that are not safe to repeat
//! (Clarifai's refusals, such as throttles and busy models, stay retryable everywhere). Each
//! retry emits a `tracing` event at `DEBUG` level with fields `code`, `attempt` (the failed
//! attempt, from 1) and `delay_ms`; each decision to stop, one with the reason.
//!
//! # Under overload
//!
//! [`Policy::next_delay`] makes the same decision by hand, which the `retry_simulation` example
//! uses to run the real policy against a server with a capacity and a queue, in virtual time,
//! beside Clarifai's SDK, gRFC A6, AWS's standard mode, Envoy's retry budget and adaptive
//! throttling (outage, load spike, busy model, hung attempts); BENCHMARKS.md has the results.
//!
//! # Examples
//!
//! ```
//! use clarifai_status::retry::{Policy, RetryLayer};
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//! use std::time::Duration;
//! use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! // A server that is UNAVAILABLE twice, then answers.
//! let calls = Arc::new(AtomicUsize::new(0));
//! let server = service_fn({
//!     let calls = calls.clone();
//!     move |_: http::Request<tonic::body::Body>| {
//!         let n = calls.fetch_add(1, Ordering::SeqCst);
//!         async move {
//!             let mut response = http::Response::new(tonic::body::Body::empty());
//!             if n < 2 {
//!                 response.headers_mut().insert("grpc-status", "14".parse().unwrap());
//!             }
//!             Ok::<_, std::convert::Infallible>(response)
//!         }
//!     }
//! });
//! let policy = Policy::new().backoff(clarifai_status::retry::Backoff::new(
//!     Duration::from_millis(1),
//!     Duration::from_millis(10),
//! ));
//! let mut client = ServiceBuilder::new().layer(RetryLayer::new(policy)).service(server);
//! let request = http::Request::new(tonic::body::Body::empty());
//! let response = client.ready().await.unwrap().call(request).await.unwrap();
//! assert!(response.headers().get("grpc-status").is_none());
//! assert_eq!(calls.load(Ordering::SeqCst), 3);
//! # }
//! ```

use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::time::Instant;
use tonic::body::Body;
use tower_service::Service;

mod backoff;
mod body;
pub mod budget;
mod call;
mod classify;
pub mod future;
mod layer;
mod peek;
mod policy;
mod poll;
mod timeout;

pub use backoff::Backoff;
pub use budget::{Budget, InvalidBudget};
pub use call::{call, call_method};
pub use classify::AttemptFailure;
pub use layer::RetryLayer;
pub use policy::{Policy, MAX_PUSHBACK};
pub use poll::{poll, PollPolicy};

use body::Collected;
use future::ResponseFuture;

/// The error type of [`Retry`]: the inner service's error, boxed, or the `tonic::Status` tonic
/// would read from it (which a tonic client reads back unchanged).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Request bodies up to this size are buffered for replay by default.
const DEFAULT_BUFFER_LIMIT: usize = 64 * 1024;

/// A tower service that retries gRPC calls by a [`Policy`]; built by [`RetryLayer`].
///
/// See the [module docs](self) for what it sees, what it replays and when it stops. Every
/// response it passes on has its status headers made safe ([what the layer
/// rewrites](self#what-the-layer-rewrites)), and a body that has not ended yet is wrapped so
/// that its trailers are made safe too and its end is bounded by the call's deadline ([deadline
/// and pushback cap](self#deadline-and-pushback-cap)); a body that has ended (a Trailers-Only
/// response) is passed on as is.
///
/// # Examples
///
/// ```
/// use clarifai_status::retry::{Policy, Retry};
/// use tower::{service_fn, Service, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let inner = service_fn(|_: http::Request<tonic::body::Body>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(tonic::body::Body::empty()))
/// });
/// let mut svc = Retry::new(inner, Policy::new()).buffer_limit(4096);
/// let response = svc.ready().await.unwrap().call(http::Request::new(tonic::body::Body::empty())).await;
/// assert!(response.is_ok());
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Retry<S> {
    inner: S,
    policy: Arc<Policy>,
    buffer_limit: usize,
    in_body: InBody,
}

/// Which calls have the status in their first message read ([in-body
/// answers](self#in-body-answers)): every call when `on`, but those matching `except`; none when
/// off, but those matching `except`.
#[derive(Debug, Clone)]
pub(crate) struct InBody {
    on: bool,
    except: Option<Arc<[Box<str>]>>,
}

impl Default for InBody {
    fn default() -> InBody {
        InBody {
            on: true,
            except: None,
        }
    }
}

impl InBody {
    fn applies(&self, method: &str) -> bool {
        let listed = self
            .except
            .as_ref()
            .is_some_and(|list| list.iter().any(|p| policy::matches(p, method)));
        self.on != listed
    }

    pub(crate) fn set(&mut self, on: bool) {
        self.on = on;
    }

    pub(crate) fn except(&mut self, patterns: impl IntoIterator<Item = impl Into<String>>) {
        let list = self
            .except
            .iter()
            .flat_map(|list| list.iter().cloned())
            .chain(patterns.into_iter().map(|p| p.into().into_boxed_str()))
            .collect();
        self.except = Some(list);
    }
}

impl<S> Retry<S> {
    /// Wraps `inner`, retrying by `policy`, buffering request bodies up to 64 KiB.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::retry::{Policy, Retry};
    ///
    /// let svc = Retry::new(tower::service_fn(|_: http::Request<tonic::body::Body>| async {
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(tonic::body::Body::empty()))
    /// }), Policy::new());
    /// # let _ = svc;
    /// ```
    pub fn new(inner: S, policy: Policy) -> Retry<S> {
        Retry::from_parts(
            inner,
            Arc::new(policy),
            DEFAULT_BUFFER_LIMIT,
            InBody::default(),
        )
    }

    pub(crate) fn from_parts(
        inner: S,
        policy: Arc<Policy>,
        buffer_limit: usize,
        in_body: InBody,
    ) -> Retry<S> {
        Retry {
            inner,
            policy,
            buffer_limit,
            in_body,
        }
    }

    /// Sets the largest request body buffered for replay, in bytes (see
    /// [`RetryLayer::buffer_limit`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # use clarifai_status::retry::{Policy, Retry};
    /// let svc = Retry::new((), Policy::new()).buffer_limit(0); // only empty bodies are replayed
    /// # let _ = svc;
    /// ```
    pub fn buffer_limit(mut self, bytes: usize) -> Retry<S> {
        self.buffer_limit = bytes;
        self
    }

    /// Turns the reading of in-body statuses on or off for every method (on by default), but
    /// those named by [`in_body_except`](Retry::in_body_except); see
    /// [`RetryLayer::in_body`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use clarifai_status::retry::{Policy, Retry};
    /// let svc = Retry::new((), Policy::new()).in_body(false); // gRPC errors only
    /// # let _ = svc;
    /// ```
    pub fn in_body(mut self, on: bool) -> Retry<S> {
        self.in_body.set(on);
        self
    }

    /// Methods for which in-body statuses are read when [`in_body`](Retry::in_body) is off, or
    /// not read when it is on; see [`RetryLayer::in_body_except`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use clarifai_status::retry::{Policy, Retry};
    /// let svc = Retry::new((), Policy::new()).in_body_except(["/grpc.health.v1.Health/*"]);
    /// # let _ = svc;
    /// ```
    pub fn in_body_except(
        mut self,
        patterns: impl IntoIterator<Item = impl Into<String>>,
    ) -> Retry<S> {
        self.in_body.except(patterns);
        self
    }

    /// The policy.
    ///
    /// # Examples
    ///
    /// ```
    /// # use clarifai_status::retry::{Policy, Retry};
    /// let svc = Retry::new((), Policy::new().max_attempts(2));
    /// assert!(svc.policy().is_retryable_grpc(tonic::Code::Unavailable));
    /// ```
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The wrapped service.
    ///
    /// # Examples
    ///
    /// ```
    /// # use clarifai_status::retry::{Policy, Retry};
    /// assert_eq!(*Retry::new(7, Policy::new()).get_ref(), 7);
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    ///
    /// # Examples
    ///
    /// ```
    /// # use clarifai_status::retry::{Policy, Retry};
    /// let mut svc = Retry::new(7, Policy::new());
    /// *svc.get_mut() += 1;
    /// assert_eq!(svc.into_inner(), 8);
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the service.
    ///
    /// # Examples
    ///
    /// ```
    /// # use clarifai_status::retry::{Policy, Retry};
    /// assert_eq!(Retry::new("inner", Policy::new()).into_inner(), "inner");
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S> Service<http::Request<Body>> for Retry<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = ResponseFuture<S, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // The ready service makes this call; its clone waits for the next one.
        let clone = self.inner.clone();
        let mut service = std::mem::replace(&mut self.inner, clone);
        let policy = self.policy.clone();
        // Under `retry::call`, which retries and bounds the whole typed call itself, one attempt
        // each.
        if call::inside_call() {
            let future = service.call(request);
            return ResponseFuture::once(service, future, policy, None);
        }
        let start = Instant::now();
        let call_timeout = request
            .headers()
            .get(&timeout::HEADER)
            .and_then(|value| timeout::parse(value.as_bytes()));
        let deadline = policy.deadline_from(start, call_timeout);
        if !policy.may_retry() {
            let future = service.call(request);
            return ResponseFuture::once(service, future, policy, deadline);
        }
        let (parts, body) = request.into_parts();
        match body::collect(body, self.buffer_limit) {
            Collected::Whole(bytes) => {
                let peek = self.in_body.applies(parts.uri.path());
                let timed = call_timeout.is_some();
                // The call's own timeout ends after the policy's deadline: attempts carry the
                // time left until the deadline instead.
                let rebound = call_timeout
                    .and_then(|t| start.checked_add(t))
                    .is_some_and(|own| deadline.is_some_and(|d| d < own));
                ResponseFuture::replayable(
                    service,
                    parts,
                    bytes,
                    (timed, rebound, peek),
                    policy,
                    deadline,
                )
            }
            Collected::Stream(body) => {
                let future = service.call(http::Request::from_parts(parts, body));
                ResponseFuture::once(service, future, policy, deadline)
            }
        }
    }
}
