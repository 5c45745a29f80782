//! The response future of [`StatusService`](super::StatusService).

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::Response;
use pin_project_lite::pin_project;

use super::ResponseBody;
use super::{stamp, Tap};

pin_project! {
    /// The response future of [`StatusService`](super::StatusService): stamps a Trailers-Only
    /// error in the response headers, and wraps the body to stamp an error in the trailers.
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        tap: Option<Tap>,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, tap: Tap) -> ResponseFuture<F> {
        ResponseFuture {
            inner,
            tap: Some(tap),
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let polled = match this.tap.as_ref().and_then(Tap::span) {
            Some(span) => span.in_scope(|| this.inner.poll(cx)),
            None => this.inner.poll(cx),
        };
        let mut response = ready!(polled)?;
        let mut tap = this.tap.take().unwrap_or_else(Tap::off);
        let (status, stamped) = stamp(response.headers_mut(), &tap);
        tap.headers(status, stamped);
        Poll::Ready(Ok(response.map(|body| ResponseBody::new(body, tap))))
    }
}
