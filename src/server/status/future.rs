//! The response future of [`StatusService`](super::StatusService).

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::Response;
use pin_project_lite::pin_project;

use super::stamp;
use super::ResponseBody;

pin_project! {
    /// The response future of [`StatusService`](super::StatusService): stamps a Trailers-Only
    /// error in the response headers, and wraps the body to stamp an error in the trailers.
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F) -> ResponseFuture<F> {
        ResponseFuture { inner }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut response = ready!(self.project().inner.poll(cx))?;
        stamp(response.headers_mut());
        Poll::Ready(Ok(response.map(ResponseBody::new)))
    }
}
