//! The response body of [`StatusService`](super::StatusService).

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::{stamp, Tap};

pin_project! {
    /// A response body that stamps a gRPC error in its trailers with a Clarifai code (errors
    /// sent after a stream), passing every data frame through untouched.
    #[derive(Debug)]
    pub struct ResponseBody<B> {
        #[pin]
        inner: B,
        tap: Tap,
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn new(inner: B, tap: Tap) -> ResponseBody<B> {
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
