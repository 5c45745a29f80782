//! The response future of [`StatusService`](super::StatusService).

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::Response;
use pin_project_lite::pin_project;

use super::stamp;
use super::ResponseBody;

// With feature `telemetry` the future holds the call's recording; without it, the struct and
// `poll` below are the ones the crate had before telemetry, field for field and line for line.
#[cfg(not(feature = "telemetry"))]
pin_project! {
    /// The response future of [`StatusService`](super::StatusService): stamps a Trailers-Only
    /// error in the response headers, and wraps the body to stamp an error in the trailers.
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
    }
}

#[cfg(feature = "telemetry")]
pin_project! {
    /// The response future of [`StatusService`](super::StatusService): stamps a Trailers-Only
    /// error in the response headers, and wraps the body to stamp an error in the trailers.
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        tap: Option<super::Tap>,
    }
}

#[cfg(not(feature = "telemetry"))]
impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F) -> ResponseFuture<F> {
        ResponseFuture { inner }
    }
}

#[cfg(feature = "telemetry")]
impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, tap: super::Tap) -> ResponseFuture<F> {
        ResponseFuture {
            inner,
            tap: Some(tap),
        }
    }
}

#[cfg(not(feature = "telemetry"))]
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

#[cfg(feature = "telemetry")]
impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let polled = match this.tap.as_ref().and_then(super::Tap::span) {
            Some(span) => span.in_scope(|| this.inner.poll(cx)),
            None => this.inner.poll(cx),
        };
        let mut response = ready!(polled)?;
        let mut tap = this.tap.take().unwrap_or_else(super::Tap::off);
        let (status, stamped) = stamp(response.headers_mut(), &tap);
        tap.headers(status, stamped);
        Poll::Ready(Ok(response.map(|body| ResponseBody::new(body, tap))))
    }
}
