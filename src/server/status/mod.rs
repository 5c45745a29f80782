//! [`StatusLayer`]: the tower layer that makes every error leaving a tonic server carry a
//! Clarifai code.
//!
//! Named as tower's middleware are: the layer, its service [`StatusService`] (not `Status`,
//! which would clash with `tonic::Status` in a user's imports), the body [`ResponseBody`] and
//! [`future::ResponseFuture`].

use std::fmt;
use std::task::{Context, Poll};

use http::{HeaderMap, Request, Response};
use tower_layer::Layer;
use tower_service::Service;

mod body;
pub mod future;

use crate::grpc;
use crate::mapping::{fallback_from_grpc, grpc_code_name};
pub use body::ResponseBody;
use future::ResponseFuture;

/// A [`tower_layer::Layer`] for tonic servers: every gRPC error leaving the service carries a
/// Clarifai code per the [wire contract](crate::grpc).
///
/// - An error that already carries a Clarifai code (the `clarifai-status-code` header, or a
///   Clarifai `ErrorInfo` in `grpc-status-details-bin`) passes untouched.
/// - A plain error (a handler's `tonic::Status::not_found(..)`, an interceptor's rejection, an
///   error from tonic itself) gets [`fallback_from_grpc`] of its gRPC code: the
///   `clarifai-status-code` header and, when the error has no details yet, the `ErrorInfo`
///   details (with the error's own code and message, as the contract requires). If it already
///   has details of its own, they are kept and only the header is added.
/// - Whatever the handler or an upstream answered, what leaves is readable by every client and
///   says a failure: see [what leaves a layer](crate::server#what-leaves-a-layer) (a status header
///   tonic would panic on is replaced or removed, an error never carries a success code, and the
///   status headers stay within [`MAX_ERROR_HEADER_BYTES`](crate::server::MAX_ERROR_HEADER_BYTES)).
/// - Both places a gRPC error travels are covered: the response headers of a Trailers-Only
///   response (how tonic answers a unary error), and the trailers after a streamed body.
///
/// Each error is logged as a `tracing` event (target `clarifai_status`, level `INFO`) with its
/// Clarifai code, name and gRPC code. Nothing else is logged: in particular no message, which a
/// handler might have filled from private data.
///
/// Successful responses are not touched: the success path costs one header lookup on the response
/// headers and one on the trailers.
///
#[cfg_attr(
    feature = "telemetry",
    doc = "With feature `telemetry`, [`telemetry`](StatusLayer::telemetry) makes the layer record each
call in metrics and a span, in-body failures included: see the
[`telemetry` module](crate::telemetry)."
)]
#[cfg_attr(
    not(feature = "telemetry"),
    doc = "With feature `telemetry`, the layer can also record each call in metrics and a span,
in-body failures included (see the crate's [features](crate#features))."
)]
///
/// # Examples
///
/// ```
/// use clarifai_status::server::status::StatusLayer;
/// use tower::{Layer, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // A service failing with a plain gRPC error, Trailers-Only, as tonic answers unary errors.
/// let service = tower::service_fn(|_: http::Request<()>| async {
///     Ok::<_, std::convert::Infallible>(tonic::Status::not_found("no such model").into_http::<String>())
/// });
/// let response = StatusLayer::new().layer(service).oneshot(http::Request::new(())).await.unwrap();
/// // NOT_FOUND falls back to CONN_DOES_NOT_EXIST (11101).
/// assert_eq!(response.headers()["clarifai-status-code"], "11101");
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct StatusLayer {
    _priv: (),
}

impl StatusLayer {
    /// The layer.
    pub fn new() -> StatusLayer {
        StatusLayer { _priv: () }
    }
}

impl<S> Layer<S> for StatusLayer {
    type Service = StatusService<S>;

    fn layer(&self, inner: S) -> StatusService<S> {
        StatusService::new(inner)
    }
}

#[cfg(feature = "telemetry")]
impl StatusLayer {
    /// The layer recording every call into `telemetry` (`rpc.server.call.duration` per gRPC
    /// status, Clarifai code and method, and a span; see the [`telemetry`
    /// module](crate::telemetry)), as a [`TelemetryStatusLayer`].
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::server::status::StatusLayer;
    /// use clarifai_status::telemetry::Telemetry;
    ///
    /// let telemetry = Telemetry::new(&opentelemetry::global::meter("my-service"));
    /// let layer = StatusLayer::new().telemetry(telemetry);
    /// # let _ = layer;
    /// ```
    pub fn telemetry(self, telemetry: crate::telemetry::Telemetry) -> TelemetryStatusLayer {
        TelemetryStatusLayer { telemetry }
    }
}

/// [`StatusLayer`] recording every call into a [`Telemetry`](crate::telemetry::Telemetry);
/// made by [`StatusLayer::telemetry`]. Its services are [`StatusService`]s.
///
/// # Examples
///
/// ```
/// use clarifai_status::server::status::{StatusLayer, TelemetryStatusLayer};
/// use clarifai_status::telemetry::Telemetry;
///
/// let layer: TelemetryStatusLayer =
///     StatusLayer::new().telemetry(Telemetry::new(&opentelemetry::global::meter("my-service")));
/// # let _ = layer;
/// ```
#[cfg(feature = "telemetry")]
#[derive(Debug, Clone)]
pub struct TelemetryStatusLayer {
    telemetry: crate::telemetry::Telemetry,
}

#[cfg(feature = "telemetry")]
impl<S> Layer<S> for TelemetryStatusLayer {
    type Service = StatusService<S>;

    fn layer(&self, inner: S) -> StatusService<S> {
        StatusService {
            inner,
            telemetry: Some(self.telemetry.clone()),
        }
    }
}

/// The service made by [`StatusLayer`].
#[derive(Clone)]
pub struct StatusService<S> {
    inner: S,
    #[cfg(feature = "telemetry")]
    telemetry: Option<crate::telemetry::Telemetry>,
}

impl<S> fmt::Debug for StatusService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatusService").finish_non_exhaustive()
    }
}

impl<S> StatusService<S> {
    /// Wraps a service; the same as `StatusLayer::new().layer(inner)`.
    pub fn new(inner: S) -> StatusService<S> {
        StatusService {
            inner,
            #[cfg(feature = "telemetry")]
            telemetry: None,
        }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for StatusService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    #[cfg(not(feature = "telemetry"))]
    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        ResponseFuture::new(self.inner.call(request))
    }

    #[cfg(feature = "telemetry")]
    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let tap = Tap::start(self.telemetry.as_ref(), &request);
        let future = match tap.span() {
            Some(span) => span.in_scope(|| self.inner.call(request)),
            None => self.inner.call(request),
        };
        ResponseFuture::new(future, tap)
    }
}

#[cfg(feature = "telemetry")]
pub(crate) use crate::server::recording::Tap;

// Without feature `telemetry`, `stamp` is the one the crate had before telemetry, line for line;
// with it, `stamp` below also says what it found, for the call's recording.

/// Stamps a gRPC error in `headers` (response headers or trailers) with a Clarifai code if it
/// carries none, keeps what it carries readable, and logs it. Does nothing when there is no
/// status there. The rules are the [`server`](crate::server#what-leaves-a-layer) module's.
#[cfg(not(feature = "telemetry"))]
pub(crate) fn stamp(headers: &mut HeaderMap) {
    let Some(value) = headers.get(&grpc::GRPC_STATUS_NAME) else {
        return;
    };
    // The success path: tonic's OK trailers are `grpc-status: 0` alone.
    if value == "0" && headers.len() == 1 {
        return;
    }
    crate::server::wire::sanitize(headers);
    let grpc_code = grpc::read_grpc_code(headers).unwrap_or(tonic::Code::Unknown);
    if grpc_code == tonic::Code::Ok {
        return;
    }
    let code = grpc::read_code(headers).unwrap_or_else(|| fallback_from_grpc(grpc_code).into());
    crate::server::wire::stamp_error(headers, grpc_code, code);
    tracing::info!(
        target: "clarifai_status",
        code = code.number(),
        name = code.name(),
        grpc_code = grpc_code_name(grpc_code),
        "grpc error"
    );
}

/// What [`stamp`] found on an error: its gRPC code, its Clarifai code, and whether that code
/// was carried already (not a fallback).
#[cfg(feature = "telemetry")]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stamped {
    pub(crate) grpc: tonic::Code,
    pub(crate) code: crate::Code,
    pub(crate) carried: bool,
}

/// Stamps a gRPC error in `headers` (response headers or trailers) with a Clarifai code if it
/// carries none, keeps what it carries readable, and logs it. Does nothing when there is no
/// status there. The rules are the [`server`](crate::server#what-leaves-a-layer) module's.
///
/// Returns the status found (`None` without one) and, for an error, what was stamped.
#[cfg(feature = "telemetry")]
pub(crate) fn stamp(headers: &mut HeaderMap, tap: &Tap) -> (Option<tonic::Code>, Option<Stamped>) {
    let Some(value) = headers.get(&grpc::GRPC_STATUS_NAME) else {
        return (None, None);
    };
    // The success path: tonic's OK trailers are `grpc-status: 0` alone.
    if value == "0" && headers.len() == 1 {
        return (Some(tonic::Code::Ok), None);
    }
    crate::server::wire::sanitize(headers);
    let grpc_code = grpc::read_grpc_code(headers).unwrap_or(tonic::Code::Unknown);
    if grpc_code == tonic::Code::Ok {
        return (Some(grpc_code), None);
    }
    let carried = grpc::read_code(headers);
    let code = carried.unwrap_or_else(|| fallback_from_grpc(grpc_code).into());
    crate::server::wire::stamp_error(headers, grpc_code, code);
    tap.error_request_id(headers);
    // The event carries the method when the layer records one.
    match tap.method() {
        Some(method) => tracing::info!(
            target: "clarifai_status",
            code = code.number(),
            name = code.name(),
            grpc_code = grpc_code_name(grpc_code),
            "rpc.method" = method,
            "grpc error"
        ),
        None => tracing::info!(
            target: "clarifai_status",
            code = code.number(),
            name = code.name(),
            grpc_code = grpc_code_name(grpc_code),
            "grpc error"
        ),
    }
    let stamped = Stamped {
        grpc: grpc_code,
        code,
        carried: carried.is_some(),
    };
    (Some(grpc_code), Some(stamped))
}
