//! Buffering a request body so it can be sent again.
//!
//! The rule: a body is replayable when it is complete the moment the call is made and no longer
//! than the limit. tonic encodes a unary (or server-streaming) request from a single message that
//! is ready at once, so it always qualifies when small enough; a client or bidirectional stream
//! fed by a live source is not complete yet, and passes through, as does anything over the limit
//! or with trailers. Polling happens once, with a no-op waker, inside `Service::call`: a body that
//! is not ready is handed on as is, and its next poll (by the transport) registers the real
//! waker.
//!
//! The polling is bounded by frames as well as bytes: at most [`MAX_FRAMES`] frames are read,
//! empty ones included, so a body that yields empty data frames without end is handed on (and
//! sent once) after a few polls, instead of keeping `Service::call` on the executor thread.
//!
//! [`Guarded`] wraps the body of every response the layer passes on: it ends the wait for the
//! rest of the response (messages and trailers) at the call's deadline, sanitizes the trailers
//! ([`grpc::sanitize`]) before tonic reads them, and yields to the executor on a run of empty
//! data frames.

use std::collections::VecDeque;
use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use http_body::{Body as _, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tonic::body::Body;

use super::timeout;
use crate::grpc;

/// The most frames of a request body read while trying to buffer it (tonic sends a unary
/// request in one or two).
pub(crate) const MAX_FRAMES: usize = 64;

/// The most empty data frames in a row [`Guarded`] reads in one poll before yielding.
const MAX_EMPTY_IN_A_ROW: u32 = 32;

/// A request body after the attempt to buffer it.
pub(crate) enum Collected {
    /// The whole body, ready to be sent any number of times.
    Whole(Bytes),
    /// Not replayable: what was read, followed by the rest, to be sent once.
    Stream(Body),
}

pub(crate) fn collect(mut body: Body, limit: usize) -> Collected {
    if body.is_end_stream() {
        return Collected::Whole(Bytes::new());
    }
    if body.size_hint().lower() > limit as u64 {
        return Collected::Stream(body);
    }
    let mut cx = Context::from_waker(Waker::noop());
    let mut read = Chunks::default();
    let mut frames = 0;
    loop {
        frames += 1;
        let tail = match Pin::new(&mut body).poll_frame(&mut cx) {
            Poll::Ready(None) => return Collected::Whole(read.concat()),
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => {
                    // An empty frame carries nothing to keep; it still counts as a frame.
                    if !data.is_empty() {
                        read.push(data);
                    }
                    if read.len <= limit && frames < MAX_FRAMES {
                        continue;
                    }
                    None
                }
                // Request trailers: nothing in gRPC sends them; pass them on untouched.
                Err(frame) => Some(Ok(frame)),
            },
            Poll::Ready(Some(Err(status))) => Some(Err(status)),
            Poll::Pending => None,
        };
        return Collected::Stream(Body::new(Prefixed {
            chunks: read.into_deque(),
            tail,
            rest: body,
        }));
    }
}

/// The data frames read so far; allocates only from the second frame on.
#[derive(Default)]
pub(crate) struct Chunks {
    first: Option<Bytes>,
    more: Vec<Bytes>,
    len: usize,
}

impl Chunks {
    /// The bytes held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The first `limit` bytes (at most), in one slice: the first frame itself when it holds
    /// them, else a copy.
    pub(crate) fn prefix(&self, limit: usize) -> std::borrow::Cow<'_, [u8]> {
        let first = self.first.as_deref().unwrap_or_default();
        if self.more.is_empty() || first.len() >= limit {
            return std::borrow::Cow::Borrowed(first);
        }
        let mut all = Vec::with_capacity(self.len.min(limit));
        for chunk in std::iter::once(first).chain(self.more.iter().map(|c| &c[..])) {
            let room = limit - all.len();
            all.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if all.len() >= limit {
                break;
            }
        }
        std::borrow::Cow::Owned(all)
    }

    pub(crate) fn push(&mut self, data: Bytes) {
        self.len += data.len();
        if self.first.is_none() {
            self.first = Some(data);
        } else {
            self.more.push(data);
        }
    }

    fn concat(self) -> Bytes {
        let first = self.first.unwrap_or_default();
        if self.more.is_empty() {
            return first;
        }
        let mut all = BytesMut::with_capacity(self.len);
        all.extend_from_slice(&first);
        for chunk in &self.more {
            all.extend_from_slice(chunk);
        }
        all.freeze()
    }

    fn into_deque(self) -> VecDeque<Bytes> {
        self.first.into_iter().chain(self.more).collect()
    }
}

/// What was read while trying to buffer, then whatever the body had not yielded yet.
struct Prefixed {
    chunks: VecDeque<Bytes>,
    tail: Option<Result<Frame<Bytes>, tonic::Status>>,
    rest: Body,
}

impl http_body::Body for Prefixed {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        if let Some(chunk) = self.chunks.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        if let Some(tail) = self.tail.take() {
            return Poll::Ready(Some(tail));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty() && self.tail.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let read: u64 = self.chunks.iter().map(|c| c.len() as u64).sum();
        let rest = self.rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower().saturating_add(read));
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper.saturating_add(read));
        }
        hint
    }
}

/// What the in-body peek read of a response, passed on first, untouched: its data frames, then
/// what ended the peek (trailers, an error, the end), if anything did.
#[derive(Default)]
pub(crate) struct Prefix {
    pub(crate) chunks: Chunks,
    pub(crate) tail: Option<Tail>,
}

/// The frame that ended a peek before the status code was known.
pub(crate) enum Tail {
    Frame(Result<Frame<Bytes>, tonic::Status>),
    End,
}

impl Prefix {
    fn is_empty(&self) -> bool {
        self.chunks.first.is_none() && self.chunks.more.is_empty() && self.tail.is_none()
    }

    fn pop(&mut self) -> Option<Option<Result<Frame<Bytes>, tonic::Status>>> {
        if let Some(first) = self.chunks.first.take() {
            self.chunks.len -= first.len();
            return Some(Some(Ok(Frame::data(first))));
        }
        if !self.chunks.more.is_empty() {
            let chunk = self.chunks.more.remove(0);
            self.chunks.len -= chunk.len();
            return Some(Some(Ok(Frame::data(chunk))));
        }
        match self.tail.take()? {
            Tail::Frame(frame) => Some(Some(frame)),
            Tail::End => Some(None),
        }
    }
}

pin_project! {
    /// The body of a response the layer passes on: what the peek read, then the rest of the
    /// response, bounded by the call's deadline, its trailers sanitized.
    pub(crate) struct Guarded {
        peeked: Prefix,
        #[pin]
        inner: Body,
        deadline: Option<Instant>,
        // Made on the first `Pending` only: a body that is ready at once costs no timer.
        #[pin]
        timer: Option<Sleep>,
        done: bool,
    }
}

/// The response to pass on: its body [`Guarded`] unless it has ended already (a Trailers-Only
/// response), which costs nothing.
pub(crate) fn guard(
    response: http::Response<Body>,
    deadline: Option<Instant>,
) -> http::Response<Body> {
    if response.body().is_end_stream() {
        return response;
    }
    guard_peeked(response, Prefix::default(), deadline)
}

/// The response to pass on after a peek: what the peek read first, then the rest, guarded.
pub(crate) fn guard_peeked(
    response: http::Response<Body>,
    peeked: Prefix,
    deadline: Option<Instant>,
) -> http::Response<Body> {
    response.map(|inner| {
        Body::new(Guarded {
            peeked,
            inner,
            deadline,
            timer: None,
            done: false,
        })
    })
}

impl http_body::Body for Guarded {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let mut this = self.project();
        if *this.done {
            return Poll::Ready(None);
        }
        if let Some(frame) = this.peeked.pop() {
            let frame = match frame {
                Some(Ok(mut frame)) => {
                    if let Some(trailers) = frame.trailers_mut() {
                        grpc::sanitize(trailers);
                    }
                    Some(Ok(frame))
                }
                other => other,
            };
            // The peek read the end of the body, or an error: nothing follows.
            *this.done = frame.as_ref().is_none_or(Result::is_err)
                || frame
                    .as_ref()
                    .is_some_and(|f| f.as_ref().is_ok_and(Frame::is_trailers));
            return Poll::Ready(frame);
        }
        let mut empty = 0;
        loop {
            // Once the body has waited (a timer exists), frames that keep coming do not outlive
            // the deadline either.
            if this.timer.is_some() && this.deadline.is_some_and(timeout::reached) {
                break;
            }
            match this.inner.as_mut().poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) if frame.data_ref().is_some_and(Bytes::is_empty) => {
                    empty += 1;
                    if empty >= MAX_EMPTY_IN_A_ROW {
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                }
                Poll::Ready(Some(Ok(mut frame))) => {
                    if let Some(trailers) = frame.trailers_mut() {
                        grpc::sanitize(trailers);
                    }
                    return Poll::Ready(Some(Ok(frame)));
                }
                Poll::Ready(other) => {
                    *this.done = other.is_none();
                    return Poll::Ready(other);
                }
                Poll::Pending => {
                    let Some(deadline) = *this.deadline else {
                        return Poll::Pending;
                    };
                    if this.timer.is_none() {
                        this.timer.set(Some(tokio::time::sleep_until(deadline)));
                    }
                    if let Some(timer) = this.timer.as_mut().as_pin_mut() {
                        if timer.poll(cx).is_pending() {
                            return Poll::Pending;
                        }
                    }
                    break;
                }
            }
        }
        *this.done = true;
        Poll::Ready(Some(Err(timeout::expired(
            "deadline reached while waiting for the response",
        ))))
    }

    fn is_end_stream(&self) -> bool {
        self.done || (self.peeked.is_empty() && self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        if self.done {
            return SizeHint::with_exact(0);
        }
        if self.peeked.is_empty() {
            return self.inner.size_hint();
        }
        // The peeked frames, then possibly the rest.
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn small_ready_body_is_whole() {
        let body = Body::new(http_body_util::Full::new(Bytes::from_static(b"hello")));
        match collect(body, 64) {
            Collected::Whole(bytes) => assert_eq!(bytes, "hello"),
            Collected::Stream(_) => panic!("expected a whole body"),
        }
    }

    #[test]
    fn body_over_the_limit_is_reassembled() {
        let body = Body::new(http_body_util::Full::new(Bytes::from(vec![7u8; 100])));
        let Collected::Stream(body) = collect(body, 64) else {
            panic!("expected a stream");
        };
        let bytes = block_on(body.collect()).unwrap().to_bytes();
        assert_eq!(bytes, vec![7u8; 100]);
    }

    #[test]
    fn pending_body_passes_through_with_what_was_read() {
        let open = Arc::new(AtomicBool::new(false));
        let body = Body::new(Gate {
            step: 0,
            open: open.clone(),
        });
        let Collected::Stream(body) = collect(body, 64) else {
            panic!("expected a stream");
        };
        open.store(true, Ordering::SeqCst);
        let bytes = block_on(body.collect()).unwrap().to_bytes();
        assert_eq!(bytes, "abcd");
    }

    #[test]
    fn endless_empty_frames_are_handed_on_after_a_few_polls() {
        struct Empty(usize);
        impl http_body::Body for Empty {
            type Data = Bytes;
            type Error = tonic::Status;
            fn poll_frame(
                mut self: Pin<&mut Self>,
                _: &mut Context<'_>,
            ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
                self.0 += 1;
                Poll::Ready(Some(Ok(Frame::data(Bytes::new()))))
            }
        }
        let body = Body::new(Empty(0));
        assert!(matches!(collect(body, 64), Collected::Stream(_)));
    }

    #[test]
    fn guarded_yields_on_a_run_of_empty_frames() {
        struct Empty;
        impl http_body::Body for Empty {
            type Data = Bytes;
            type Error = tonic::Status;
            fn poll_frame(
                self: Pin<&mut Self>,
                _: &mut Context<'_>,
            ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
                Poll::Ready(Some(Ok(Frame::data(Bytes::new()))))
            }
        }
        let response = guard(http::Response::new(Body::new(Empty)), None);
        let mut body = response.into_body();
        let mut cx = Context::from_waker(Waker::noop());
        // Pending (the waker woken, so it is polled again), not an endless loop in one poll.
        assert!(Pin::new(&mut body).poll_frame(&mut cx).is_pending());
    }

    #[test]
    fn guarded_sanitizes_the_trailers() {
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", "14".parse().unwrap());
        trailers.insert("grpc-status-details-bin", "!!!".parse().unwrap());
        let inner = Then(Some(Bytes::from_static(&[0; 5])), Some(trailers));
        let response = guard(http::Response::new(Body::new(inner)), None);
        let collected = block_on(response.into_body().collect()).unwrap();
        let trailers = collected.trailers().cloned().unwrap();
        assert_eq!(trailers["grpc-status"], "14");
        assert!(trailers.get("grpc-status-details-bin").is_none());
        // tonic's reading, which panicked on the details, now reads the status.
        let status = tonic::Status::from_header_map(&trailers).unwrap();
        assert_eq!(status.code(), tonic::Code::Unavailable);
    }

    /// One data frame, then trailers.
    struct Then(Option<Bytes>, Option<http::HeaderMap>);

    impl http_body::Body for Then {
        type Data = Bytes;
        type Error = tonic::Status;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
            if let Some(data) = self.0.take() {
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            Poll::Ready(self.1.take().map(|t| Ok(Frame::trailers(t))))
        }
    }

    /// Never yields a frame.
    struct Silent;

    impl http_body::Body for Silent {
        type Data = Bytes;
        type Error = tonic::Status;
        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
            Poll::Pending
        }
    }

    #[test]
    fn guarded_ends_a_silent_body_at_the_deadline_as_the_clients_own() {
        use crate::grpc::ClarifaiStatusExt as _;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async {
            let silent = Body::new(Silent);
            let deadline = Instant::now() + std::time::Duration::from_secs(2);
            let mut body = guard(http::Response::new(silent), Some(deadline)).into_body();
            let status = body.frame().await.unwrap().unwrap_err();
            assert!(Instant::now() >= deadline);
            assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
            assert_eq!(status.clarifai_code(), crate::grpc::LOCAL_FAILURE);
            assert!(body.frame().await.is_none());
        });
    }

    /// Yields `ab`, then is not ready until opened, then yields `cd` and ends.
    struct Gate {
        step: u8,
        open: Arc<AtomicBool>,
    }

    impl http_body::Body for Gate {
        type Data = Bytes;
        type Error = tonic::Status;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
            self.step += 1;
            match self.step {
                1 => Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"ab"))))),
                2 if !self.open.load(Ordering::SeqCst) => {
                    self.step = 1;
                    Poll::Pending
                }
                2 => Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"cd"))))),
                _ => Poll::Ready(None),
            }
        }
    }
}
