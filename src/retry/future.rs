//! The [`Retry`](super::Retry) service's response future.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::header::HeaderValue;
use http::request::Parts;
use http_body::Body as _;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tonic::body::Body;
use tower_service::Service;

use super::body::{Chunks, Prefix, Tail};
use super::policy::{Decision, Policy};
use super::timeout;
use super::BoxError;
use super::{body, classify};
use crate::peek::{self, Peeked};

/// gRFC A6: the number of attempts made before this one, sent on every retry.
const PREVIOUS_ATTEMPTS: &str = "grpc-previous-rpc-attempts";

// With feature `telemetry` the future holds the call's recording (`tap`); without it, the
// struct is the one the crate had before telemetry, field for field.
#[cfg(not(feature = "telemetry"))]
pin_project! {
    /// The response future of [`Retry`](super::Retry): runs attempts until one is committed, a
    /// failure is not to be retried, or the policy stops.
    ///
    /// Dropping it drops the attempt in flight (tonic then cancels the stream) or the pending
    /// backoff: no further attempt is made.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::retry::{future::ResponseFuture, Policy, Retry};
    /// use tower::{service_fn, Service, ServiceExt};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let inner = service_fn(|_: http::Request<tonic::body::Body>| async {
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(tonic::body::Body::empty()))
    /// });
    /// let mut svc = Retry::new(inner, Policy::new());
    /// let request = http::Request::new(tonic::body::Body::empty());
    /// let future: ResponseFuture<_, _> = svc.ready().await.unwrap().call(request);
    /// assert_eq!(future.await.unwrap().status(), 200);
    /// # }
    /// ```
    pub struct ResponseFuture<S, F> {
        #[pin]
        state: State<F>,
        service: S,
        // `None`: the request was not replayable and is sent once.
        replay: Option<Replay>,
        // Whether the status in the first message of an OK response is read (replayable calls
        // only).
        peek: bool,
        policy: Arc<Policy>,
        attempt: u32,
        deadline: Option<Instant>,
    }
}

#[cfg(feature = "telemetry")]
pin_project! {
    /// The response future of [`Retry`](super::Retry): runs attempts until one is committed, a
    /// failure is not to be retried, or the policy stops.
    ///
    /// Dropping it drops the attempt in flight (tonic then cancels the stream) or the pending
    /// backoff: no further attempt is made.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::retry::{future::ResponseFuture, Policy, Retry};
    /// use tower::{service_fn, Service, ServiceExt};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let inner = service_fn(|_: http::Request<tonic::body::Body>| async {
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(tonic::body::Body::empty()))
    /// });
    /// let mut svc = Retry::new(inner, Policy::new());
    /// let request = http::Request::new(tonic::body::Body::empty());
    /// let future: ResponseFuture<_, _> = svc.ready().await.unwrap().call(request);
    /// assert_eq!(future.await.unwrap().status(), 200);
    /// # }
    /// ```
    pub struct ResponseFuture<S, F> {
        #[pin]
        state: State<F>,
        service: S,
        // `None`: the request was not replayable and is sent once.
        replay: Option<Replay>,
        // Whether the status in the first message of an OK response is read (replayable calls
        // only).
        peek: bool,
        policy: Arc<Policy>,
        attempt: u32,
        deadline: Option<Instant>,
        tap: Tap,
    }
}

#[cfg(feature = "telemetry")]
use super::recording::CallTap as Tap;

#[cfg(feature = "telemetry")]
impl Tap {
    /// The policy decided on the attempt that ended with `result`: a retry drops it, so its
    /// attempt ends here.
    fn decided(&mut self, decision: &Decision, result: &Result<http::Response<Body>, BoxError>) {
        if self.is_on() && matches!(decision, Decision::Retry(_)) {
            self.attempt_ended(outcome(result));
        }
    }

    /// [`decided`](Tap::decided) for a response the layer read the first message of.
    fn decided_response(&mut self, decision: &Decision, response: &http::Response<Body>) {
        if self.is_on() && matches!(decision, Decision::Retry(_)) {
            let outcome = self
                .take_read()
                .unwrap_or_else(|| super::recording::of_response(response));
            self.attempt_ended(outcome);
        }
    }

    /// The call returns `result`.
    fn finish_with(&mut self, result: &Result<http::Response<Body>, BoxError>) {
        use crate::grpc::ClarifaiStatusExt as _;
        if !self.is_on() {
            return;
        }
        let outcome = match result {
            Ok(_) => self.take_read(),
            Err(_) => None,
        }
        .unwrap_or_else(|| outcome(result));
        // A Clarifai error's request id: from the error tonic made, or the gRPC error the
        // response carries (Trailers-Only, as a channel passes it on). In the span only: not
        // read when no subscriber records it.
        match result {
            _ if !self.wants_request_id() => {}
            Err(error) => {
                if let Some(status) = error.downcast_ref::<tonic::Status>() {
                    if status.carried_clarifai_code().is_some() {
                        self.request_id(&status.to_clarifai_status().req_id);
                    }
                }
            }
            Ok(response) if outcome.0 != tonic::Code::Ok && outcome.1.is_some() => {
                if let Some(id) = crate::telemetry::error_request_id(response.headers()) {
                    self.request_id(&id);
                }
            }
            Ok(_) => {}
        }
        self.finish(outcome);
    }
}

#[cfg(feature = "telemetry")]
fn outcome(result: &Result<http::Response<Body>, BoxError>) -> super::recording::Outcome {
    match result {
        Ok(response) => super::recording::of_response(response),
        Err(error) => super::recording::of_error(error.as_ref()),
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        // `due`: when the attempt is cut, the sooner of the per-attempt timeout and the call's
        // deadline. `timer` is made from it on the attempt's first `Pending` only, so an attempt
        // answered at once costs no timer.
        Attempt {
            #[pin]
            future: F,
            due: Option<Instant>,
            #[pin]
            timer: Option<Sleep>,
        },
        // The attempt's response headers said OK: reading its first message's status code.
        // `parts` is `None` only once the response has left this state.
        Peek {
            parts: Option<http::response::Parts>,
            body: Body,
            read: Chunks,
            frames: usize,
            due: Option<Instant>,
            timer: Option<Pin<Box<Sleep>>>,
        },
        Backoff { sleep: Pin<Box<Sleep>> },
        // Waiting for the service to be ready for the next attempt.
        Ready,
    }
}

impl<F> State<F> {
    fn attempt(future: F, due: Option<Instant>) -> State<F> {
        State::Attempt {
            future,
            due,
            timer: None,
        }
    }
}

/// What is needed to send the request again.
struct Replay {
    parts: Parts,
    body: Bytes,
    /// Whether the request carried `grpc-timeout`: retries then carry the time remaining.
    timed: bool,
    /// The policy's per-attempt timeout.
    limit: Option<std::time::Duration>,
}

impl Replay {
    fn request(&self) -> http::Request<Body> {
        let body = if self.body.is_empty() {
            Body::empty()
        } else {
            Body::new(Replayed(Some(self.body.clone())))
        };
        http::Request::from_parts(self.parts.clone(), body)
    }

    fn retry(&self, attempt: u32, deadline: Option<Instant>) -> http::Request<Body> {
        let mut request = self.request();
        request
            .headers_mut()
            .insert(PREVIOUS_ATTEMPTS, HeaderValue::from(attempt - 1));
        self.bound(&mut request, deadline);
        request
    }

    /// Sends the attempt's bound in `grpc-timeout`: the time left, when the call carried one,
    /// or the per-attempt timeout when sooner.
    fn bound(&self, request: &mut http::Request<Body>, deadline: Option<Instant>) {
        let left = deadline
            .filter(|_| self.timed)
            .map(|d| d.saturating_duration_since(Instant::now()));
        let bound = match (left, self.limit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(bound) = bound {
            request
                .headers_mut()
                .insert(&timeout::HEADER, timeout::encode(bound));
        }
    }

    /// When an attempt starting now is cut: its timeout, or the call's deadline when sooner.
    fn due(&self, deadline: Option<Instant>) -> Option<Instant> {
        let limit = self.limit.and_then(|l| Instant::now().checked_add(l));
        timeout::earliest(limit, deadline)
    }
}

impl<S, F> ResponseFuture<S, F> {
    /// A call that will be retried: sends the first attempt.
    ///
    /// `rebound`: the call's `grpc-timeout` ends after the policy's deadline, so the first
    /// attempt carries the time left instead.
    pub(crate) fn replayable(
        mut service: S,
        parts: Parts,
        body: Bytes,
        (timed, rebound, peek): (bool, bool, bool),
        policy: Arc<Policy>,
        deadline: Option<Instant>,
    ) -> ResponseFuture<S, F>
    where
        S: Service<http::Request<Body>, Response = http::Response<Body>, Future = F>,
    {
        let replay = Replay {
            parts,
            body,
            timed,
            limit: policy.attempt_limit(),
        };
        let mut first = replay.request();
        if replay.limit.is_some() || rebound {
            replay.bound(&mut first, deadline);
        }
        // The bound is taken before the call, so it is due no later than the one the call
        // carries in `grpc-timeout` (which tonic's channel enforces itself, as `CANCELLED`).
        let due = replay.due(deadline);
        let future = service.call(first);
        ResponseFuture {
            state: State::attempt(future, due),
            service,
            replay: Some(replay),
            peek,
            policy,
            attempt: 1,
            deadline,
            #[cfg(feature = "telemetry")]
            tap: Tap::off(),
        }
    }

    /// A call sent once, as is, bounded by `deadline`.
    pub(crate) fn once(
        service: S,
        future: F,
        policy: Arc<Policy>,
        deadline: Option<Instant>,
    ) -> ResponseFuture<S, F> {
        ResponseFuture {
            state: State::attempt(future, deadline),
            service,
            replay: None,
            peek: false,
            policy,
            attempt: 1,
            deadline,
            #[cfg(feature = "telemetry")]
            tap: Tap::off(),
        }
    }
}

impl<S, F> ResponseFuture<S, F> {
    /// Records the call into `tap`; its first attempt is already sent.
    #[cfg(feature = "telemetry")]
    pub(crate) fn tapped(mut self, mut tap: Tap) -> ResponseFuture<S, F> {
        tap.attempt_started();
        self.tap = tap;
        self
    }
}

impl<S, F, E> Future for ResponseFuture<S, F>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = E, Future = F>,
    F: Future<Output = Result<http::Response<Body>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<http::Response<Body>, BoxError>;

    #[cfg(not(feature = "telemetry"))]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.poll_attempts(cx)
    }

    #[cfg(feature = "telemetry")]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let span = self.tap.span().cloned();
        let _entered = span.as_ref().map(tracing::Span::enter);
        let result = ready!(self.as_mut().poll_attempts(cx));
        self.project().tap.finish_with(&result);
        Poll::Ready(result)
    }
}

impl<S, F, E> ResponseFuture<S, F>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = E, Future = F>,
    F: Future<Output = Result<http::Response<Body>, E>>,
    E: Into<BoxError>,
{
    // Without telemetry, `poll` is this loop, inlined: the one the crate had before telemetry.
    #[cfg_attr(not(feature = "telemetry"), inline(always))]
    fn poll_attempts(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<http::Response<Body>, BoxError>> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Attempt {
                    future,
                    due,
                    mut timer,
                } => {
                    let result = match future.poll(cx) {
                        // An error at the attempt's bound is the bound's doing, whoever
                        // noticed first (tonic's channel cuts at the `grpc-timeout` it was
                        // given, and reports `CANCELLED`).
                        Poll::Ready(Err(_)) if due.is_some_and(timeout::reached) => None,
                        Poll::Ready(result) => Some(result),
                        Poll::Pending => {
                            let Some(due) = *due else {
                                return Poll::Pending;
                            };
                            if timer.is_none() {
                                timer.set(Some(tokio::time::sleep_until(due)));
                            }
                            if let Some(timer) = timer.as_mut().as_pin_mut() {
                                ready!(timer.poll(cx));
                            }
                            None
                        }
                    };
                    let (failure, result) = match result {
                        // The call's deadline: no attempt outlives it, and nothing follows.
                        None if this.deadline.is_some_and(timeout::reached) => {
                            tracing::debug!(attempt = *this.attempt, "stop: deadline reached");
                            let status = timeout::expired("deadline reached");
                            return Poll::Ready(Err(BoxError::from(status)));
                        }
                        // The per-attempt timeout: the attempt is dropped (tonic resets its
                        // stream), and tonic's client reads the error as DEADLINE_EXCEEDED,
                        // the client's own.
                        None => {
                            let status = timeout::expired("attempt timed out");
                            (classify::timed_out(), Err(BoxError::from(status)))
                        }
                        Some(Ok(mut response)) => {
                            let failure = classify::inspect(&mut response);
                            if failure.is_none() && *this.peek && !response.body().is_end_stream() {
                                let due = *due;
                                let (parts, body) = response.into_parts();
                                this.state.set(State::Peek {
                                    parts: Some(parts),
                                    body,
                                    read: Chunks::default(),
                                    frames: 0,
                                    due,
                                    timer: None,
                                });
                                continue;
                            }
                            let response = body::guard(response, *this.deadline);
                            match failure {
                                None => {
                                    if this.replay.is_some() {
                                        this.policy.succeeded();
                                    }
                                    return Poll::Ready(Ok(response));
                                }
                                Some(_) if this.replay.is_none() => {
                                    return Poll::Ready(Ok(response));
                                }
                                Some(failure) => (failure, Ok(response)),
                            }
                        }
                        Some(Err(error)) if this.replay.is_none() => {
                            return Poll::Ready(Err(error.into()));
                        }
                        // Read the error as tonic's client would (a failed connection is
                        // UNAVAILABLE), and hand tonic that status.
                        Some(Err(error)) => {
                            let status = tonic::Status::from_error(error.into());
                            (classify::from_status(&status), Err(BoxError::from(status)))
                        }
                    };
                    let method = this.replay.as_ref().map(|r| r.parts.uri.path());
                    let remaining = Policy::remaining(*this.deadline);
                    let decision = this
                        .policy
                        .decide(&failure, method, *this.attempt, remaining);
                    #[cfg(feature = "telemetry")]
                    this.tap.decided(&decision, &result);
                    match next(decision, this.attempt, result) {
                        Next::Retry(state) => this.state.set(state),
                        Next::Return(result) => return Poll::Ready(result),
                    }
                }
                StateProj::Peek {
                    parts,
                    body,
                    read,
                    frames,
                    due,
                    timer,
                } => {
                    let read_out = match poll_peek(cx, body, read, frames) {
                        // A body error at the attempt's bound is the bound's doing, as in
                        // `Attempt`.
                        Poll::Ready((None, Some(Tail::Frame(Err(_)))))
                            if due.is_some_and(timeout::reached) =>
                        {
                            None
                        }
                        Poll::Ready(read_out) => Some(read_out),
                        Poll::Pending => {
                            let Some(due) = *due else {
                                return Poll::Pending;
                            };
                            let timer = timer
                                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
                            ready!(timer.as_mut().poll(cx));
                            None
                        }
                    };
                    // The attempt's bound came while waiting for the first message: as when it
                    // comes before the headers.
                    let Some((peeked, tail)) = read_out else {
                        if this.deadline.is_some_and(timeout::reached) {
                            tracing::debug!(attempt = *this.attempt, "stop: deadline reached");
                            let status = timeout::expired("deadline reached");
                            return Poll::Ready(Err(BoxError::from(status)));
                        }
                        let status = timeout::expired("attempt timed out");
                        let result = Err(BoxError::from(status));
                        let method = this.replay.as_ref().map(|r| r.parts.uri.path());
                        let remaining = Policy::remaining(*this.deadline);
                        let decision = this.policy.decide(
                            &classify::timed_out(),
                            method,
                            *this.attempt,
                            remaining,
                        );
                        #[cfg(feature = "telemetry")]
                        this.tap.decided(&decision, &result);
                        match next(decision, this.attempt, result) {
                            Next::Retry(state) => this.state.set(state),
                            Next::Return(result) => return Poll::Ready(result),
                        }
                        continue;
                    };
                    let Some(parts) = parts.take() else {
                        // Polled again after the response left: unreachable, harmless.
                        let status = tonic::Status::internal("response already returned");
                        return Poll::Ready(Err(BoxError::from(status)));
                    };
                    // What runs outside the layer (a `TraceLayer`'s classifier, the call's
                    // recording) learns the in-body code read; the call's span, the request id
                    // beside it.
                    #[cfg(feature = "telemetry")]
                    let parts = {
                        let mut parts = parts;
                        // The attempt's outcome, for the call's recording: OK (a response is peeked
                        // only when its headers carry no error), and the in-body code the client
                        // will decode, without reading the headers again.
                        this.tap.read(peeked.map(crate::Code::new));
                        if let Some(code) = peeked {
                            parts
                                .extensions
                                .insert(crate::telemetry::InBodyCode(crate::Code::new(code)));
                            if this.tap.wants_request_id() {
                                if let Some(id) = peek::request_id(&read.prefix(peek::PEEK_LIMIT)) {
                                    this.tap.request_id(id);
                                }
                            }
                        }
                        parts
                    };
                    let failure = match peeked {
                        Some(code) => classify::in_body(code, &parts.headers),
                        None => None,
                    };
                    let prefix = Prefix {
                        chunks: std::mem::take(read),
                        tail,
                    };
                    let body = std::mem::replace(body, Body::empty());
                    let response = http::Response::from_parts(parts, body);
                    let response = body::guard_peeked(response, prefix, *this.deadline);
                    let Some(failure) = failure else {
                        this.policy.succeeded();
                        return Poll::Ready(Ok(response));
                    };
                    let method = this.replay.as_ref().map(|r| r.parts.uri.path());
                    let remaining = Policy::remaining(*this.deadline);
                    let decision = this
                        .policy
                        .decide(&failure, method, *this.attempt, remaining);
                    #[cfg(feature = "telemetry")]
                    this.tap.decided_response(&decision, &response);
                    match next(decision, this.attempt, Ok(response)) {
                        Next::Retry(state) => this.state.set(state),
                        Next::Return(result) => return Poll::Ready(result),
                    }
                }
                StateProj::Backoff { sleep } => {
                    ready!(sleep.as_mut().poll(cx));
                    this.state.set(State::Ready);
                }
                StateProj::Ready => {
                    if let Err(error) = ready!(this.service.poll_ready(cx)) {
                        return Poll::Ready(Err(error.into()));
                    }
                    let Some(replay) = this.replay.as_ref() else {
                        // Only replayable calls retry; unreachable, and harmless if reached.
                        let status = tonic::Status::internal("retry without a replayable request");
                        return Poll::Ready(Err(BoxError::from(status)));
                    };
                    let due = replay.due(*this.deadline);
                    #[cfg(feature = "telemetry")]
                    this.tap.attempt_started();
                    let future = this
                        .service
                        .call(replay.retry(*this.attempt, *this.deadline));
                    this.state.set(State::attempt(future, due));
                }
            }
        }
    }
}

/// What follows a failed attempt the policy decided on.
enum Next<F> {
    /// Another attempt, from this state.
    Retry(State<F>),
    /// This result, returned.
    Return(Result<http::Response<Body>, BoxError>),
}

/// The state after a failed attempt the policy decided on, or the result to return.
fn next<F>(
    decision: Decision,
    attempt: &mut u32,
    result: Result<http::Response<Body>, BoxError>,
) -> Next<F> {
    match decision {
        Decision::Stop => Next::Return(result),
        Decision::Retry(delay) => {
            // Dropping a response cancels its stream.
            drop(result);
            *attempt += 1;
            if delay.is_zero() {
                Next::Retry(State::Ready)
            } else {
                let sleep = Box::pin(tokio::time::sleep(delay));
                Next::Retry(State::Backoff { sleep })
            }
        }
    }
}

/// Reads the response body until its first message's status code is known or cannot be, within
/// [`peek::PEEK_LIMIT`] bytes and [`peek::PEEK_FRAMES`] frames. `Ready((code, tail))`: the code
/// if read, and the frame that ended the reading early (trailers, an error, the end), if one did.
fn poll_peek(
    cx: &mut Context<'_>,
    body: &mut Body,
    read: &mut Chunks,
    frames: &mut usize,
) -> Poll<(Option<i32>, Option<Tail>)> {
    loop {
        if *frames >= peek::PEEK_FRAMES || read.len() >= peek::PEEK_LIMIT {
            return Poll::Ready((None, None));
        }
        let frame = ready!(Pin::new(&mut *body).poll_frame(cx));
        // Counted once a frame came: a wake-up without one is no frame.
        *frames += 1;
        match frame {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) if data.is_empty() => {}
                Ok(data) => {
                    read.push(data);
                    match peek::read(&read.prefix(peek::PEEK_LIMIT)) {
                        Peeked::More => {}
                        Peeked::Code(code) => return Poll::Ready((Some(code), None)),
                        Peeked::Not => return Poll::Ready((None, None)),
                    }
                }
                Err(trailers) => return Poll::Ready((None, Some(Tail::Frame(Ok(trailers))))),
            },
            Some(Err(status)) => return Poll::Ready((None, Some(Tail::Frame(Err(status))))),
            None => return Poll::Ready((None, Some(Tail::End))),
        }
    }
}

impl<S, F> std::fmt::Debug for ResponseFuture<S, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("attempt", &self.attempt)
            .field("replayable", &self.replay.is_some())
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// A buffered request body, sent again: one data frame, then the end of the stream.
///
/// No exact size hint, so hyper adds no `content-length` (the request stays as tonic sent it);
/// the end of the stream is known with the frame, so it goes out with the data (one DATA frame
/// with END_STREAM instead of two).
struct Replayed(Option<Bytes>);

impl http_body::Body for Replayed {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::convert::Infallible>>> {
        Poll::Ready(self.0.take().map(|data| Ok(http_body::Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }
}
