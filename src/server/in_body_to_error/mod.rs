//! [`InBodyToErrorLayer`]: a layer that turns Clarifai-style in-body failures into gRPC errors.
//!
//! Named as tower's middleware are: the layer, its service [`InBodyToError`], the body
//! [`ResponseBody`] and [`future::ResponseFuture`].

use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use prost::Message;
use tower_layer::Layer;
use tower_service::Service;

use crate::{pb, Code, Outcome};

pub mod future;

use future::ResponseFuture;

/// Default bound on the first message the layer buffers to read its status: 4 MiB, tonic's
/// default maximum message size.
pub const DEFAULT_MESSAGE_LIMIT: usize = 4 * 1024 * 1024;

/// A [`tower_layer::Layer`] for gRPC servers and proxies that answers a response carrying a
/// failure in its body (`response.status.code`, as Clarifai's API answers) as a gRPC error per the
/// [wire contract](crate::grpc).
///
/// Every Clarifai response message has `Status status = 1`, so the layer reads any of them the
/// same way: it buffers the response's first gRPC message, decodes only field 1 as a
/// [`pb::Status`] (as [`pb::BaseResponse`] does, skipping the rest), and
/// - if that status is a failure ([`Outcome::Failure`], `ZERO` and unknown numbers included),
///   answers a Trailers-Only error built from it: the mapped gRPC code, its description, the
///   `ErrorInfo` and `clarifai-status-code`. Its private fields are never read; the rest of the
///   original body is dropped;
/// - otherwise (success, in progress, no status, not decodable) sends the response on unchanged,
///   the buffered message first.
///
/// Responses it does not read, passed on untouched: errors already (Trailers-Only), non-gRPC
/// content types, compressed messages, and first messages larger than the limit
/// ([`DEFAULT_MESSAGE_LIMIT`] unless set).
///
/// # Streams
///
/// Reading the first message holds the response headers until it comes. That is safe only when
/// the client has nothing left to send: a bidi client that sends its next message when the
/// headers arrive, to a handler that answers after that message, would wait forever. So the
/// layer reads a response only when the **request has ended** by the time the response starts
/// (the service has read the request body to its end, or it was empty): every unary call and
/// every server stream, as tonic's handlers read their one request message to the end before
/// they answer. A call whose request is still open then (client- and bidi-streaming calls) is
/// left alone: its headers and messages pass at once and an in-body failure in it stays in-body.
/// The layer knows the request's end by wrapping its body in [`RequestBody`], which the service
/// behind it receives. For a server stream the headers wait for the first item.
///
/// # Examples
///
/// ```
/// use clarifai_status::pb::{BaseResponse, Status};
/// use clarifai_status::server::in_body_to_error::InBodyToErrorLayer;
/// use http_body_util::BodyExt;
/// use prost::Message;
/// use tower::{Layer, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // A gRPC response with CONN_THROTTLED in its body, framed as on the wire.
/// let message = BaseResponse { status: Some(Status { code: 11005, ..Default::default() }) }.encode_to_vec();
/// let mut frame = vec![0u8];
/// frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
/// frame.extend_from_slice(&message);
/// // A unary handler: it reads its request to the end, then answers.
/// use clarifai_status::server::in_body_to_error::RequestBody;
/// type Unary = http_body_util::Full<bytes::Bytes>;
/// let service = tower::service_fn(move |request: http::Request<RequestBody<Unary>>| {
///     let body = http_body_util::Full::new(bytes::Bytes::from(frame.clone()));
///     let response = http::Response::builder().header("content-type", "application/grpc").body(body).unwrap();
///     async move {
///         request.into_body().collect().await.unwrap();
///         Ok::<_, std::convert::Infallible>(response)
///     }
/// });
/// let request = http::Request::new(http_body_util::Full::new(bytes::Bytes::from_static(b"\0\0\0\0\0")));
/// let response = InBodyToErrorLayer::new().layer(service).oneshot(request).await.unwrap();
/// assert_eq!(response.headers()["grpc-status"], "8"); // RESOURCE_EXHAUSTED
/// assert_eq!(response.headers()["clarifai-status-code"], "11005");
/// assert!(response.into_body().collect().await.unwrap().to_bytes().is_empty());
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct InBodyToErrorLayer {
    limit: usize,
}

impl InBodyToErrorLayer {
    /// The layer, reading first messages up to [`DEFAULT_MESSAGE_LIMIT`].
    pub fn new() -> InBodyToErrorLayer {
        InBodyToErrorLayer {
            limit: DEFAULT_MESSAGE_LIMIT,
        }
    }

    /// Sets the largest first message the layer reads; larger ones pass through unread.
    pub fn message_limit(mut self, bytes: usize) -> InBodyToErrorLayer {
        self.limit = bytes;
        self
    }
}

impl Default for InBodyToErrorLayer {
    fn default() -> InBodyToErrorLayer {
        InBodyToErrorLayer::new()
    }
}

impl<S> Layer<S> for InBodyToErrorLayer {
    type Service = InBodyToError<S>;

    fn layer(&self, inner: S) -> InBodyToError<S> {
        InBodyToError {
            inner,
            limit: self.limit,
        }
    }
}

/// The service made by [`InBodyToErrorLayer`].
#[derive(Clone)]
pub struct InBodyToError<S> {
    inner: S,
    limit: usize,
}

impl<S> fmt::Debug for InBodyToError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InBodyToError")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for InBodyToError<S>
where
    S: Service<Request<RequestBody<ReqBody>>, Response = Response<ResBody>>,
    ReqBody: Body,
    S::Future: Send + 'static,
    ResBody: Body<Data = Bytes> + Send + Unpin + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<Self::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let ended = Arc::new(AtomicBool::new(request.body().is_end_stream()));
        let request = request.map(|inner| RequestBody {
            inner,
            ended: ended.clone(),
        });
        let response = self.inner.call(request);
        let limit = self.limit;
        ResponseFuture::new(Box::pin(async move {
            let response = response.await?;
            if !ended.load(Ordering::Acquire) {
                // A request still open: holding the headers could deadlock the call.
                let mut response = response;
                crate::server::wire::repair(response.headers_mut());
                return Ok(response.map(|body| ResponseBody::new(body, Bytes::new())));
            }
            Ok(inspect(response, limit).await)
        }))
    }
}

pin_project! {
    /// The request body the service behind [`InBodyToError`] receives: the client's, unchanged, noting
    /// when it ends (see [Streams](InBodyToErrorLayer#streams)).
    pub struct RequestBody<B> {
        #[pin]
        inner: B,
        ended: Arc<AtomicBool>,
    }
}

impl<B> RequestBody<B> {
    /// The client's body.
    pub fn into_inner(self) -> B {
        self.inner
    }
}

impl<B> fmt::Debug for RequestBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBody")
            .field("ended", &self.ended.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<B: Body> Body for RequestBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let frame = this.inner.as_mut().poll_frame(cx);
        let ended = match &frame {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(_))) => this.inner.is_end_stream(),
            _ => false,
        };
        if ended {
            this.ended.store(true, Ordering::Release);
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

async fn inspect<B>(response: Response<B>, limit: usize) -> Response<ResponseBody<B>>
where
    B: Body<Data = Bytes> + Unpin,
{
    let (mut parts, mut body) = response.into_parts();
    crate::server::wire::repair(&mut parts.headers);
    if parts.headers.contains_key(&crate::grpc::GRPC_STATUS_NAME) || !is_grpc(&parts.headers) {
        return Response::from_parts(parts, ResponseBody::new(body, Bytes::new()));
    }
    // Read until the first message is complete, the body ends, or the limit is passed.
    let mut buffered = BytesMut::new();
    let mut trailers = None;
    let message = loop {
        if let Some(message) = first_message(&buffered, limit) {
            break message;
        }
        match std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => buffered.extend_from_slice(&data),
                Err(frame) => {
                    trailers = frame.into_trailers().ok();
                    break FirstMessage::Unreadable;
                }
            },
            // An error or the end of the body: hand on what there is; the error, if any, is the
            // inner body's to report, and it will when polled again.
            Some(Err(_)) | None => break FirstMessage::Unreadable,
        }
    };
    let failure = match message {
        FirstMessage::Message(range) => pb::BaseResponse::decode(&buffered[range])
            .ok()
            .and_then(|response| response.status)
            .filter(|status| Code::new(status.code).outcome() == Outcome::Failure),
        FirstMessage::Unreadable => None,
    };
    match failure {
        Some(status) => {
            let mut error = tonic::Status::from(&status).into_http::<ResponseBody<B>>();
            *error.version_mut() = parts.version;
            error
        }
        None => {
            let mut passed = ResponseBody::new(body, buffered.freeze());
            passed.trailers = trailers;
            Response::from_parts(parts, passed)
        }
    }
}

fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

enum FirstMessage {
    /// The first message's bytes, uncompressed, within the buffer.
    Message(std::ops::Range<usize>),
    /// Compressed, over the limit, or incomplete at the end of the body: not read.
    Unreadable,
}

/// The first gRPC message in `buf` once it is complete; `None` while more bytes are needed.
fn first_message(buf: &[u8], limit: usize) -> Option<FirstMessage> {
    if buf.len() < 5 {
        return None;
    }
    let compressed = buf[0] != 0;
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if compressed || len > limit {
        return Some(FirstMessage::Unreadable);
    }
    (buf.len() - 5 >= len).then(|| FirstMessage::Message(5..5 + len))
}

pin_project! {
    /// The response body of [`InBodyToError`]: the bytes read to inspect the first message, then the
    /// rest of the original body (or nothing, for an error answered Trailers-Only).
    pub struct ResponseBody<B> {
        prefix: Bytes,
        trailers: Option<HeaderMap>,
        #[pin]
        inner: Option<B>,
    }
}

impl<B> ResponseBody<B> {
    fn new(inner: B, prefix: Bytes) -> ResponseBody<B> {
        ResponseBody {
            prefix,
            trailers: None,
            inner: Some(inner),
        }
    }
}

impl<B> Default for ResponseBody<B> {
    /// An empty body (the body of a Trailers-Only error).
    fn default() -> ResponseBody<B> {
        ResponseBody {
            prefix: Bytes::new(),
            trailers: None,
            inner: None,
        }
    }
}

impl<B> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("prefix", &self.prefix.len())
            .finish_non_exhaustive()
    }
}

impl<B: Body<Data = Bytes>> Body for ResponseBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        if this.prefix.has_remaining() {
            return Poll::Ready(Some(Ok(Frame::data(std::mem::take(this.prefix)))));
        }
        // Trailers read while looking for the first message end the body.
        if let Some(trailers) = this.trailers.take() {
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        match this.inner.as_pin_mut() {
            Some(inner) => inner.poll_frame(cx).map(|frame| {
                frame.map(|result| {
                    result.map(|mut frame| {
                        if let Some(trailers) = frame.trailers_mut() {
                            crate::server::wire::repair(trailers);
                        }
                        frame
                    })
                })
            }),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_empty()
            && self.trailers.is_none()
            && self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self
            .inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint);
        let prefix = self.prefix.len() as u64;
        // The upper bound first: `set_lower` asserts it is not above it.
        let mut hint = SizeHint::new();
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper.saturating_add(prefix));
        }
        hint.set_lower(inner.lower().saturating_add(prefix));
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};
    use std::convert::Infallible;

    fn framed(message: &[u8], compressed: bool) -> Vec<u8> {
        let mut frame = vec![u8::from(compressed)];
        frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
        frame.extend_from_slice(message);
        frame
    }

    /// A gRPC response whose body arrives one byte at a time, then trailers.
    fn trickled(bytes: Vec<u8>) -> Response<impl Body<Data = Bytes, Error = Infallible> + Unpin> {
        let mut frames: Vec<Result<Frame<Bytes>, Infallible>> = bytes
            .into_iter()
            .map(|b| Ok(Frame::data(Bytes::from(vec![b]))))
            .collect();
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", "0".parse().unwrap());
        frames.push(Ok(Frame::trailers(trailers)));
        let body = StreamBody::new(tokio_stream::iter(frames));
        Response::builder()
            .header("content-type", "application/grpc+proto")
            .body(body)
            .unwrap()
    }

    fn message(code: i32) -> Vec<u8> {
        pb::BaseResponse {
            status: Some(pb::Status {
                code,
                ..Default::default()
            }),
        }
        .encode_to_vec()
    }

    #[test]
    fn size_hint_adds_the_prefix_to_an_exact_inner_hint() {
        let inner = http_body_util::Full::new(Bytes::from_static(b"rest"));
        let body = ResponseBody::new(inner, Bytes::from_static(b"prefix"));
        let hint = body.size_hint();
        assert_eq!((hint.lower(), hint.upper()), (10, Some(10)));
    }

    #[tokio::test]
    async fn a_failure_split_across_chunks_is_read() {
        let response = inspect(
            trickled(framed(&message(11008), false)),
            DEFAULT_MESSAGE_LIMIT,
        )
        .await;
        assert_eq!(response.headers()["grpc-status"], "16");
        assert_eq!(response.headers()["clarifai-status-code"], "11008");
    }

    #[tokio::test]
    async fn a_success_is_passed_on_byte_for_byte_with_its_trailers() {
        let bytes = framed(&message(10000), false);
        let response = inspect(trickled(bytes.clone()), DEFAULT_MESSAGE_LIMIT).await;
        assert!(!response.headers().contains_key("grpc-status"));
        let collected = response.into_body().collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["grpc-status"], "0");
        assert_eq!(collected.to_bytes(), bytes);
    }

    proptest::proptest! {
        /// Any bytes from the inner service: no panic, and unless they frame a failure status,
        /// they reach the client unchanged.
        #[test]
        fn arbitrary_bodies_never_panic_and_pass_unless_a_failure(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let response = runtime.block_on(inspect(trickled(bytes.clone()), 16));
            if !response.headers().contains_key("grpc-status") {
                let collected = runtime.block_on(response.into_body().collect()).unwrap();
                proptest::prop_assert_eq!(collected.to_bytes(), bytes);
            }
        }
    }

    #[tokio::test]
    async fn compressed_truncated_and_garbage_messages_pass_unread() {
        let failure = message(11008);
        let truncated = framed(&failure, false)[..8].to_vec();
        let garbage = framed(&[0xff, 0xff, 0xff], false);
        for bytes in [framed(&failure, true), truncated, garbage, vec![0, 0]] {
            let response = inspect(trickled(bytes.clone()), DEFAULT_MESSAGE_LIMIT).await;
            assert!(!response.headers().contains_key("grpc-status"));
            let collected = response.into_body().collect().await.unwrap();
            assert_eq!(collected.to_bytes(), bytes);
        }
    }
}
