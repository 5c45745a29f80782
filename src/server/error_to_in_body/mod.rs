//! [`ErrorToInBodyLayer`]: a layer that answers gRPC errors as OK responses carrying the status in
//! their body, as Clarifai's API answers.
//!
//! Named as tower's middleware are: the layer, its service [`ErrorToInBody`], the body
//! [`ResponseBody`] and [`future::ResponseFuture`].

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use prost::Message;
use tonic::metadata::MetadataMap;
use tower_layer::Layer;
use tower_service::Service;

use crate::grpc::{self, decode_base64, ClarifaiStatusExt, Pushback};

pub mod future;

use crate::{pb, Code};
use future::ResponseFuture;

/// A [`tower_layer::Layer`] for tonic servers that answers every gRPC error as gRPC OK with a
/// status-only message, the way Clarifai's API answers failures: the reverse of
/// [`InBodyToErrorLayer`](super::in_body_to_error::InBodyToErrorLayer).
///
/// Clarifai's own clients retry throttles and busy models only when the status comes in the
/// body: the Python SDK sleeps and retries an in-body `CONN_THROTTLED` or
/// `MODEL_BUSY_PLEASE_RETRY`, but raises at once on a gRPC `RESOURCE_EXHAUSTED`. A Rust service
/// that returns `Err(tonic::Status)` idiomatically serves those clients correctly behind this
/// layer.
///
/// The message holds only field 1, a [`pb::Status`] (a [`pb::BaseResponse`]), which decodes as
/// every Clarifai response type, since all of them have `Status status = 1`. Its fields come from
/// the error per the [wire contract](crate::grpc), read by
/// [`ClarifaiStatusExt::to_clarifai_status`]:
/// - `code`: the `clarifai-status-code` header, else the Clarifai `ErrorInfo` in the details,
///   else [`fallback_from_grpc`](crate::mapping::fallback_from_grpc) of the gRPC code; unknown
///   numbers are kept;
/// - `description`: the error's message (the table's description of the code when empty);
/// - `req_id`, `details`, `percent_completed`, `time_remaining`, `developer_notes`,
///   `http_status_code`: from the `ErrorInfo` metadata.
///
/// The texts are cut as the wire contract cuts an error's (`description` to
/// [`MAX_MESSAGE_BYTES`](crate::grpc::MAX_MESSAGE_BYTES), `details`, `developer_notes` and
/// `req_id` to [`MAX_FIELD_BYTES`](crate::grpc::MAX_FIELD_BYTES)), and what else leaves follows
/// [what leaves a layer](crate::server#what-leaves-a-layer): an error is never answered as an
/// in-body success.
///
/// The private fields (`stack_trace`, `internal_details`, `redirect_info`) are never set: the
/// wire contract does not carry them, so nothing a handler put there can appear.
///
/// Where the error travels decides what the client gets:
/// - a Trailers-Only error (how tonic answers a unary error, or a stream that fails before its
///   first message) becomes HTTP 200, `content-type: application/grpc`, one message, and trailers
///   `grpc-status: 0`;
/// - an error in the trailers after a stream's messages becomes one more message, then trailers
///   `grpc-status: 0`;
/// - responses that are already OK (`grpc-status: 0`), that are not gRPC (another content type,
///   gRPC-Web included, or an HTTP status other than 200), and calls to services the layer is
///   not set for ([`only_services`](Self::only_services)) pass unchanged.
///
/// The error's own headers (`grpc-status`, `grpc-message`, `grpc-status-details-bin`,
/// `clarifai-status-code`) are removed: an OK response must not look like an error to the
/// crate's readers. Other metadata the handler set is kept.
///
/// **Pushback** is kept as `grpc-retry-pushback-ms` (the error's `RetryInfo`, else its pushback;
/// a negative pushback stays `-1`), in the response headers for a Trailers-Only error and in the
/// trailers after a stream. An OK response cannot carry `RetryInfo` and gRPC clients' own retry
/// ignores pushback on OK (gRFC A6), as does Clarifai's SDK, which uses fixed sleeps; but this
/// crate's `retry::call` (feature `retry`) reads it from the response metadata of an in-body failure, so a delay the server asks for
/// still reaches clients that can use it.
///
/// Bounded: nothing is buffered. Stream messages pass through as they come; the added message
/// is built from the error's headers alone, so it is no larger than they are.
///
/// Put it **outside** [`StatusLayer`](super::status::StatusLayer)
/// (`Server::builder().layer(ErrorToInBodyLayer::new()).layer(StatusLayer::new())`), so that
/// `StatusLayer` still sees and logs each error; see the [module docs](super) for when to use
/// which layer.
///
/// # Examples
///
/// ```
/// use clarifai_status::pb::BaseResponse;
/// use clarifai_status::server::error_to_in_body::ErrorToInBodyLayer;
/// use http_body_util::BodyExt;
/// use prost::Message;
/// use tower::{Layer, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // A service failing with a plain gRPC error, Trailers-Only, as tonic answers unary errors.
/// let service = tower::service_fn(|_: http::Request<()>| async {
///     Ok::<_, std::convert::Infallible>(tonic::Status::not_found("no model `m1`").into_http::<String>())
/// });
/// let response = ErrorToInBodyLayer::new().layer(service).oneshot(http::Request::new(())).await.unwrap();
/// assert_eq!(response.status(), http::StatusCode::OK);
/// assert!(!response.headers().contains_key("grpc-status"));
///
/// let body = response.into_body().collect().await.unwrap();
/// assert_eq!(body.trailers().unwrap()["grpc-status"], "0");
/// let bytes = body.to_bytes();
/// let status = BaseResponse::decode(&bytes[5..]).unwrap().status.unwrap();
/// assert_eq!(status.code, 11101); // NOT_FOUND falls back to CONN_DOES_NOT_EXIST
/// assert_eq!(status.description, "no model `m1`");
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct ErrorToInBodyLayer {
    services: Option<Arc<[Box<str>]>>,
}

impl ErrorToInBodyLayer {
    /// The layer, answering the errors of every service in-body.
    pub fn new() -> ErrorToInBodyLayer {
        ErrorToInBodyLayer { services: None }
    }

    /// Answers in-body only the errors of these gRPC services (full names, such as
    /// `clarifai.api.V2`); calls to any other service pass unchanged.
    ///
    /// Only a Clarifai response type decodes a status-only message: a client of another service
    /// on the same server (`grpc.health.v1.Health`, whose field 1 is an enum; reflection) would
    /// fail to decode it, and should get its errors as gRPC errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::server::error_to_in_body::ErrorToInBodyLayer;
    ///
    /// let layer = ErrorToInBodyLayer::new().only_services(["clarifai.api.V2"]);
    /// # let _ = layer;
    /// ```
    pub fn only_services<I, S>(mut self, names: I) -> ErrorToInBodyLayer
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.services = Some(
            names
                .into_iter()
                .map(|name| name.into().into_boxed_str())
                .collect(),
        );
        self
    }
}

impl<S> Layer<S> for ErrorToInBodyLayer {
    type Service = ErrorToInBody<S>;

    fn layer(&self, inner: S) -> ErrorToInBody<S> {
        ErrorToInBody {
            inner,
            services: self.services.clone(),
        }
    }
}

/// The service made by [`ErrorToInBodyLayer`].
#[derive(Clone)]
pub struct ErrorToInBody<S> {
    inner: S,
    services: Option<Arc<[Box<str>]>>,
}

impl<S> fmt::Debug for ErrorToInBody<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrorToInBody")
            .field("services", &self.services)
            .finish_non_exhaustive()
    }
}

impl<S> ErrorToInBody<S> {
    /// Whether the layer answers the errors of a call to this path (`/<service>/<method>`).
    fn applies(&self, path: &str) -> bool {
        let Some(names) = &self.services else {
            return true;
        };
        let service = path
            .strip_prefix('/')
            .and_then(|rest| rest.split_once('/'))
            .map(|(service, _)| service);
        service.is_some_and(|service| names.iter().any(|name| **name == *service))
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ErrorToInBody<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let applies = self.applies(request.uri().path());
        // `StatusLayer`'s recording, inside, records the errors answered here as the client
        // gets them: OK.
        #[cfg(feature = "telemetry")]
        let request = {
            let mut request = request;
            if applies {
                request
                    .extensions_mut()
                    .insert(crate::server::recording::AnsweredInBody);
            }
            request
        };
        ResponseFuture::new(self.inner.call(request), applies)
    }
}

pub(super) fn answer<B>(response: Response<B>) -> Response<ResponseBody<B>> {
    let (mut parts, body) = response.into_parts();
    if parts.status != http::StatusCode::OK || !is_grpc(&parts.headers) {
        crate::server::wire::repair(&mut parts.headers);
        return Response::from_parts(parts, ResponseBody::new(body, false));
    }
    if !parts.headers.contains_key(&grpc::GRPC_STATUS_NAME) {
        // Headers of a response whose status comes in the trailers: watch them.
        return Response::from_parts(parts, ResponseBody::new(body, true));
    }
    let Some(message) = in_body(&mut parts.headers) else {
        return Response::from_parts(parts, ResponseBody::new(body, false));
    };
    // What runs outside (a `TraceLayer`'s classifier) learns the code answered in-body.
    #[cfg(feature = "telemetry")]
    if let Some(code) = pb::BaseResponse::decode(&message[5..])
        .ok()
        .and_then(|m| m.status)
    {
        parts
            .extensions
            .insert(crate::telemetry::InBodyCode(Code::new(code.code)));
    }
    parts.headers.remove(http::header::CONTENT_LENGTH);
    // A Trailers-Only body is empty: nothing of the original is lost by dropping it.
    let body = ResponseBody {
        inner: None,
        watch: false,
        message: Some(message),
        trailers: Some(ok_trailers(HeaderMap::new())),
    };
    Response::from_parts(parts, body)
}

/// gRPC over HTTP/2 (`application/grpc`, `application/grpc+proto`, ...); not gRPC-Web, whose
/// trailers travel in the body.
fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.as_bytes().strip_prefix(b"application/grpc"))
        .is_some_and(|rest| rest.is_empty() || rest[0] == b'+' || rest[0] == b';')
}

/// The headers of a gRPC error, removed from the answer (the pushback is put back, re-read).
const ERROR_HEADERS: [HeaderName; 5] = [
    grpc::GRPC_STATUS_NAME,
    grpc::GRPC_MESSAGE_NAME,
    grpc::DETAILS_NAME,
    grpc::CODE_NAME,
    grpc::PUSHBACK_NAME,
];

/// If `headers` (Trailers-Only headers or trailers) hold a gRPC error: takes the error out of
/// them, leaves the pushback in its place, and returns the framed status-only message. `None`,
/// untouched, when they hold no error.
fn in_body(headers: &mut HeaderMap) -> Option<Bytes> {
    if !headers.contains_key(&grpc::GRPC_STATUS_NAME) {
        return None;
    }
    // A value a client cannot read is an error to it: tonic reads it as UNKNOWN.
    let grpc_code = grpc::read_grpc_code(headers).unwrap_or(tonic::Code::Unknown);
    if grpc_code == tonic::Code::Ok {
        return None;
    }
    let mut status = status_of(headers, grpc_code);
    // The texts as the wire contract cuts an error's, so a default client's message limit
    // (4 MiB) never drops the answer, and its code with it.
    crate::server::wire::cap_status(&mut status);
    let pushback = pushback_value(headers);
    for name in &ERROR_HEADERS {
        headers.remove(name);
    }
    // What is left (the handler's own metadata) within what a default client reads.
    crate::server::wire::drop_largest_other(headers);
    if let Some(pushback) = pushback {
        headers.insert(grpc::PUSHBACK_NAME, pushback);
    }
    Some(frame(&pb::BaseResponse {
        status: Some(status),
    }))
}

/// The Clarifai status of the error in `headers`, read by the crate's one reader of the wire
/// contract ([`ClarifaiStatusExt::to_clarifai_status`]) from a `tonic::Status` rebuilt from them.
fn status_of(headers: &HeaderMap, grpc_code: tonic::Code) -> pb::Status {
    let message = headers
        .get(&grpc::GRPC_MESSAGE_NAME)
        .map(|v| {
            percent_encoding::percent_decode(v.as_bytes())
                .decode_utf8_lossy()
                .into_owned()
        })
        .unwrap_or_default();
    // Bad base64 is read as no details, as `read_code` reads it.
    let details = headers
        .get(&grpc::DETAILS_NAME)
        .and_then(|v| decode_base64(v.as_bytes()))
        .unwrap_or_default();
    let mut carried = HeaderMap::new();
    if let Some(code) = headers.get(&grpc::CODE_NAME) {
        carried.insert(grpc::CODE_NAME, code.clone());
    }
    let error = tonic::Status::with_details_and_metadata(
        grpc_code,
        message,
        details.into(),
        MetadataMap::from_headers(carried),
    );
    let mut status = error.to_clarifai_status();
    if status.description.is_empty() {
        status.description = Code::new(status.code).description().to_owned();
    }
    status
}

/// `grpc-retry-pushback-ms` for the answer: "do not retry" kept as `-1`, else the delay the
/// error asks for (its `RetryInfo`, else its pushback) in milliseconds, at most `i32::MAX`.
fn pushback_value(headers: &HeaderMap) -> Option<HeaderValue> {
    if grpc::read_pushback(headers) == Some(Pushback::DoNotRetry) {
        return Some(HeaderValue::from_static("-1"));
    }
    let delay = grpc::read_retry_delay(headers)?;
    Some(HeaderValue::from(
        i32::try_from(delay.as_millis()).unwrap_or(i32::MAX),
    ))
}

/// One uncompressed gRPC message.
fn frame(message: &pb::BaseResponse) -> Bytes {
    let encoded = message.encode_to_vec();
    let mut buf = BytesMut::with_capacity(5 + encoded.len());
    buf.put_u8(0);
    // Built from header values, which HTTP/2 bounds far below 4 GiB.
    buf.put_u32(u32::try_from(encoded.len()).unwrap_or(u32::MAX));
    buf.put_slice(&encoded);
    buf.freeze()
}

fn ok_trailers(mut trailers: HeaderMap) -> HeaderMap {
    trailers.insert(grpc::GRPC_STATUS_NAME, HeaderValue::from_static("0"));
    trailers
}

pin_project! {
    /// The response body of [`ErrorToInBody`]: the original body, with an error in its trailers
    /// answered as one more message and `grpc-status: 0`; or, for a Trailers-Only error, the
    /// status-only message and `grpc-status: 0`.
    pub struct ResponseBody<B> {
        #[pin]
        inner: Option<B>,
        // Whether the trailers are the call's status, to answer in-body if an error.
        watch: bool,
        message: Option<Bytes>,
        trailers: Option<HeaderMap>,
    }
}

impl<B> ResponseBody<B> {
    pub(super) fn new(inner: B, watch: bool) -> ResponseBody<B> {
        ResponseBody {
            inner: Some(inner),
            watch,
            message: None,
            trailers: None,
        }
    }
}

impl<B> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("watch", &self.watch)
            .field("message", &self.message.as_ref().map(Bytes::len))
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
        let mut this = self.project();
        if let Some(message) = this.message.take() {
            return Poll::Ready(Some(Ok(Frame::data(message))));
        }
        if let Some(trailers) = this.trailers.take() {
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        let Some(inner) = this.inner.as_mut().as_pin_mut() else {
            return Poll::Ready(None);
        };
        let frame = match ready!(inner.poll_frame(cx)) {
            Some(Ok(frame)) if *this.watch => frame,
            Some(Ok(mut frame)) => {
                if let Some(trailers) = frame.trailers_mut() {
                    crate::server::wire::repair(trailers);
                }
                return Poll::Ready(Some(Ok(frame)));
            }
            other => return Poll::Ready(other),
        };
        let mut trailers = match frame.into_trailers() {
            Ok(trailers) => trailers,
            Err(data) => return Poll::Ready(Some(Ok(data))),
        };
        match in_body(&mut trailers) {
            Some(message) => {
                // The trailers end the body: drop it, send the message, then OK trailers.
                this.inner.set(None);
                *this.trailers = Some(ok_trailers(trailers));
                Poll::Ready(Some(Ok(Frame::data(message))))
            }
            None => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.message.is_none()
            && self.trailers.is_none()
            && self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self
            .inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint);
        let added = self.message.as_ref().map_or(0, Bytes::len) as u64;
        // The upper bound first: `set_lower` asserts it is not above it. A body whose trailers
        // are still watched may gain a message: no upper bound then, or hyper would send a
        // `content-length` the message passes (grpc-js resets such a stream, PROTOCOL_ERROR).
        let mut hint = SizeHint::new();
        if let Some(upper) = inner.upper().filter(|_| !self.watch) {
            hint.set_upper(upper.saturating_add(added));
        }
        hint.set_lower(inner.lower().saturating_add(added));
        hint
    }
}
