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

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use http_body::{Body as _, Frame, SizeHint};
use tonic::body::Body;

/// The most frames of a request body read while trying to buffer it (tonic sends a unary
/// request in one or two).
pub(crate) const MAX_FRAMES: usize = 64;

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
struct Chunks {
    first: Option<Bytes>,
    more: Vec<Bytes>,
    len: usize,
}

impl Chunks {
    fn push(&mut self, data: Bytes) {
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
