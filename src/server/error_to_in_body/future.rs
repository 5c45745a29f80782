//! The response future of [`ErrorToInBody`](super::ErrorToInBody).

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::Response;
use pin_project_lite::pin_project;

use super::{answer, ResponseBody};

pin_project! {
    /// The response future of [`ErrorToInBody`](super::ErrorToInBody): answers a Trailers-Only
    /// error in-body, and wraps the body to answer an error in the trailers in-body.
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        applies: bool,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(inner: F, applies: bool) -> ResponseFuture<F> {
        ResponseFuture { inner, applies }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.inner.poll(cx))?;
        Poll::Ready(Ok(if *this.applies {
            answer(response)
        } else {
            let mut response = response;
            crate::server::wire::repair(response.headers_mut());
            response.map(|body| ResponseBody::new(body, false))
        }))
    }
}
