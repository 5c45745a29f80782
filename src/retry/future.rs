//! The [`Retry`](super::Retry) service's response future.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::header::HeaderValue;
use http::request::Parts;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tonic::body::Body;
use tower_service::Service;

use super::classify;
use super::policy::{Decision, Policy};
use super::timeout;
use super::BoxError;

/// gRFC A6: the number of attempts made before this one, sent on every retry.
const PREVIOUS_ATTEMPTS: &str = "grpc-previous-rpc-attempts";

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
        policy: Arc<Policy>,
        attempt: u32,
        deadline: Option<Instant>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        // `timer`: the policy's per-attempt timeout, for attempts that may be retried.
        Attempt { #[pin] future: F, timer: Option<Pin<Box<Sleep>>> },
        Backoff { sleep: Pin<Box<Sleep>> },
        // Waiting for the service to be ready for the next attempt.
        Ready,
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

    fn timer(&self) -> Option<Pin<Box<Sleep>>> {
        self.limit.map(|limit| Box::pin(tokio::time::sleep(limit)))
    }
}

impl<S, F> ResponseFuture<S, F> {
    /// A call that will be retried: sends the first attempt.
    pub(crate) fn replayable<ResBody>(
        mut service: S,
        parts: Parts,
        body: Bytes,
        timed: bool,
        policy: Arc<Policy>,
        deadline: Option<Instant>,
    ) -> ResponseFuture<S, F>
    where
        S: Service<http::Request<Body>, Response = http::Response<ResBody>, Future = F>,
    {
        let replay = Replay {
            parts,
            body,
            timed,
            limit: policy.attempt_limit(),
        };
        let mut first = replay.request();
        if replay.limit.is_some() {
            replay.bound(&mut first, deadline);
        }
        // The timer starts before the call, so it is due no later than the bound the call
        // carries in `grpc-timeout` (which tonic's channel enforces itself, as `CANCELLED`).
        let timer = replay.timer();
        let future = service.call(first);
        ResponseFuture {
            state: State::Attempt { future, timer },
            service,
            replay: Some(replay),
            policy,
            attempt: 1,
            deadline,
        }
    }

    /// A call sent once, as is.
    pub(crate) fn once(service: S, future: F, policy: Arc<Policy>) -> ResponseFuture<S, F> {
        ResponseFuture {
            state: State::Attempt {
                future,
                timer: None,
            },
            service,
            replay: None,
            policy,
            attempt: 1,
            deadline: None,
        }
    }
}

impl<S, F, ResBody, E> Future for ResponseFuture<S, F>
where
    S: Service<http::Request<Body>, Response = http::Response<ResBody>, Error = E, Future = F>,
    F: Future<Output = Result<http::Response<ResBody>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<http::Response<ResBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Attempt { future, timer } => {
                    let polled = future.poll(cx);
                    let result = match polled {
                        // An error at the attempt's bound is the bound's doing, whoever
                        // noticed first (tonic's channel cuts at the `grpc-timeout` it was
                        // given, and reports `CANCELLED`).
                        Poll::Ready(Err(_)) if timer.as_ref().is_some_and(due) => None,
                        Poll::Ready(result) => Some(result),
                        Poll::Pending => {
                            let fired = timer
                                .as_mut()
                                .is_some_and(|t| t.as_mut().poll(cx).is_ready());
                            if !fired {
                                return Poll::Pending;
                            }
                            None
                        }
                    };
                    if this.replay.is_none() {
                        if let Some(result) = result {
                            return Poll::Ready(result.map_err(Into::into));
                        }
                    }
                    let (failure, result) = match result {
                        // The per-attempt timeout: the attempt is dropped (tonic resets its
                        // stream), and tonic's client reads the error as DEADLINE_EXCEEDED.
                        None => {
                            let status = tonic::Status::deadline_exceeded("attempt timed out");
                            (classify::timed_out(), Err(BoxError::from(status)))
                        }
                        Some(result) => match result {
                            Ok(response) => {
                                match classify::from_headers(response.status(), response.headers())
                                {
                                    None => {
                                        this.policy.succeeded();
                                        return Poll::Ready(Ok(response));
                                    }
                                    Some(failure) => (failure, Ok(response)),
                                }
                            }
                            // Read the error as tonic's client would (a failed connection is
                            // UNAVAILABLE), and hand tonic that status.
                            Err(error) => {
                                let status = tonic::Status::from_error(error.into());
                                (classify::from_status(&status), Err(BoxError::from(status)))
                            }
                        },
                    };
                    let method = this.replay.as_ref().map(|r| r.parts.uri.path());
                    let remaining = Policy::remaining(*this.deadline);
                    match this
                        .policy
                        .decide(&failure, method, *this.attempt, remaining)
                    {
                        Decision::Stop => return Poll::Ready(result),
                        Decision::Retry(delay) => {
                            drop(result);
                            *this.attempt += 1;
                            if delay.is_zero() {
                                this.state.set(State::Ready);
                            } else {
                                let sleep = Box::pin(tokio::time::sleep(delay));
                                this.state.set(State::Backoff { sleep });
                            }
                        }
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
                    let replay = this.replay.as_ref().expect("only replayable calls retry");
                    let timer = replay.timer();
                    let future = this
                        .service
                        .call(replay.retry(*this.attempt, *this.deadline));
                    this.state.set(State::Attempt { future, timer });
                }
            }
        }
    }
}

/// Whether an attempt's timer is due (within the timer wheel's 1 ms resolution).
fn due(timer: &Pin<Box<Sleep>>) -> bool {
    Instant::now() + std::time::Duration::from_millis(1) >= timer.deadline()
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
