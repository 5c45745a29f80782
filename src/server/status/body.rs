//! The response body of [`StatusService`](super::StatusService).

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::stamp;

// With feature `telemetry` the body holds the call's recording; without it, the struct and
// `poll_frame` below are the ones the crate had before telemetry, field for field and line for
// line.
#[cfg(not(feature = "telemetry"))]
pin_project! {
    /// A response body that stamps a gRPC error in its trailers with a Clarifai code (errors
    /// sent after a stream), passing every data frame through untouched.
    #[derive(Debug)]
    pub struct ResponseBody<B> {
        #[pin]
        inner: B,
    }
}

#[cfg(feature = "telemetry")]
pin_project! {
    /// A response body that stamps a gRPC error in its trailers with a Clarifai code (errors
    /// sent after a stream), passing every data frame through untouched.
    #[derive(Debug)]
    pub struct ResponseBody<B> {
        #[pin]
        inner: B,
        tap: super::Tap,
    }
}

impl<B> ResponseBody<B> {
    #[cfg(not(feature = "telemetry"))]
    pub(crate) fn new(inner: B) -> ResponseBody<B> {
        ResponseBody { inner }
    }

    #[cfg(feature = "telemetry")]
    pub(crate) fn new(inner: B, tap: super::Tap) -> ResponseBody<B> {
        ResponseBody { inner, tap }
    }

    /// The wrapped body.
    pub fn into_inner(self) -> B {
        self.inner
    }
}

impl<B: Body> Body for ResponseBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    #[cfg(not(feature = "telemetry"))]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let frame = ready!(self.project().inner.poll_frame(cx));
        Poll::Ready(frame.map(|result| {
            result.map(|mut frame| {
                if let Some(trailers) = frame.trailers_mut() {
                    stamp(trailers);
                }
                frame
            })
        }))
    }

    #[cfg(feature = "telemetry")]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        let tap = this.tap;
        Poll::Ready(match frame {
            Some(Ok(mut frame)) => {
                if let Some(trailers) = frame.trailers_mut() {
                    let (status, stamped) = stamp(trailers, tap);
                    tap.trailers(status, stamped);
                } else if let Some(data) = frame.data_ref() {
                    tap.data(bytes::Buf::chunk(data));
                }
                Some(Ok(frame))
            }
            None => {
                tap.end();
                None
            }
            other => other,
        })
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
