//! The response body of [`StatusService`](super::StatusService).

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::stamp;

pin_project! {
    /// A response body that stamps a gRPC error in its trailers with a Clarifai code (errors
    /// sent after a stream), passing every data frame through untouched.
    #[derive(Debug)]
    pub struct ResponseBody<B> {
        #[pin]
        inner: B,
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn new(inner: B) -> ResponseBody<B> {
        ResponseBody { inner }
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

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
