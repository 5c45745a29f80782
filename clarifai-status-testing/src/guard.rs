//! The tower layer in front of both listeners' handlers: holds requests to the server's header
//! list limit, and answers, on the gRPC port, what is not gRPC over HTTP/2, before any handler
//! sees the request.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use clarifai_status::pb;
use tower_service::Service;

/// The bytes a header field counts for beyond its name and value (RFC 9113, section 6.5.2).
const FIELD_OVERHEAD: u64 = 32;

/// A request's header list size as HTTP/2 counts it: name + value + 32 per field, the
/// pseudo-headers (`:method`, `:scheme`, `:authority`, `:path`) included. On HTTP/1.1, where
/// the URI is only a path, the same sum over what the request has.
pub(crate) fn header_list_size<B>(request: &http::Request<B>) -> u64 {
    let field = |name: usize, value: usize| (name + value) as u64 + FIELD_OVERHEAD;
    let uri = request.uri();
    let mut size = field(":method".len(), request.method().as_str().len());
    if let Some(scheme) = uri.scheme_str() {
        size += field(":scheme".len(), scheme.len());
    }
    if let Some(authority) = uri.authority() {
        size += field(":authority".len(), authority.as_str().len());
    }
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    size += field(":path".len(), path.len());
    for (name, value) in request.headers() {
        size += field(name.as_str().len(), value.len());
    }
    size
}

/// Which listener a [`Guard`] stands in front of, with how it answers.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Port {
    /// The gRPC listener: gRPC answers over HTTP/2, REST-shaped ones to anything else.
    Grpc,
    /// The HTTP listener: REST-shaped answers.
    Rest,
}

/// Answers requests over `limit` with `RPC_MAX_MESSAGE_SIZE_EXCEEDED` (40033) and, on the gRPC
/// port, HTTP/1.x requests with `CONN_BAD_REQUEST_FORMAT` (11100), without calling `inner`;
/// passes the rest on.
#[derive(Debug, Clone)]
pub(crate) struct Guard<S> {
    inner: S,
    limit: u32,
    port: Port,
}

impl<S> Guard<S> {
    pub(crate) fn new(inner: S, limit: u32, port: Port) -> Guard<S> {
        Guard { inner, limit, port }
    }

    /// What to answer `request` with instead of the handler, if anything.
    fn refusal<B>(&self, request: &http::Request<B>) -> Option<(pb::Status, bool)> {
        let grpc = matches!(self.port, Port::Grpc) && request.version() == http::Version::HTTP_2;
        if matches!(self.port, Port::Grpc) && !grpc {
            let status = crate::service::bad_request(format!(
                "this port speaks gRPC over HTTP/2 only; the request was {:?}",
                request.version()
            ));
            return Some((status, false));
        }
        let size = header_list_size(request);
        if size > u64::from(self.limit) {
            let status = crate::service::request_too_large(format!(
                "the request's header list is {size} bytes (name + value + 32 per field), over \
                 this server's limit of {} bytes",
                self.limit
            ));
            return Some((status, grpc));
        }
        None
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The handlers' response bodies a [`Guard`] answers in.
pub(crate) trait AnswerBody: Sized {
    fn grpc(status: &pb::Status) -> http::Response<Self>;
    fn rest(status: &pb::Status) -> http::Response<Self>;
}

impl AnswerBody for tonic::body::Body {
    fn grpc(status: &pb::Status) -> http::Response<Self> {
        crate::limits::grpc_answer(status)
    }

    fn rest(status: &pb::Status) -> http::Response<Self> {
        crate::limits::rest_answer(status)
    }
}

impl AnswerBody for axum::body::Body {
    fn grpc(status: &pb::Status) -> http::Response<Self> {
        Self::rest(status)
    }

    fn rest(status: &pb::Status) -> http::Response<Self> {
        clarifai_status::rest::response(status).map(axum::body::Body::from)
    }
}

impl<S, B, R> Service<http::Request<B>> for Guard<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>, Error = Infallible>,
    S::Future: Send + 'static,
    R: AnswerBody + Send + 'static,
{
    type Response = http::Response<R>;
    type Error = Infallible;
    type Future = BoxFuture<Result<http::Response<R>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        match self.refusal(&request) {
            // The request (and its header list) is dropped here, before the answer is sent.
            Some((status, grpc)) => {
                let answer = if grpc {
                    R::grpc(&status)
                } else {
                    R::rest(&status)
                };
                Box::pin(std::future::ready(Ok(answer)))
            }
            None => Box::pin(self.inner.call(request)),
        }
    }
}

/// [`Guard`] as a tower layer, for axum's router.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GuardLayer {
    pub(crate) limit: u32,
    pub(crate) port: Port,
}

impl<S> tower_layer::Layer<S> for GuardLayer {
    type Service = Guard<S>;

    fn layer(&self, inner: S) -> Guard<S> {
        Guard::new(inner, self.limit, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_size_counts_every_field_as_http2_does() {
        let request = http::Request::builder()
            .uri("http://example.test/clarifai.api.V2/PostModelOutputs")
            .header("x-a", "bb")
            .body(())
            .unwrap();
        // :method GET, :scheme http, :authority example.test, :path, x-a: bb; 32 each.
        let expected = (7 + 3) + (7 + 4) + (10 + 12) + (5 + 33) + (3 + 2) + 5 * 32;
        assert_eq!(header_list_size(&request), expected);
    }
}
