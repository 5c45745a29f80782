//! Interceptors that reject with Clarifai codes.

use std::fmt;

use tonic::service::Interceptor;
use tonic::Request;

/// A [`tonic::service::Interceptor`] over a closure whose error is anything that becomes a
/// `tonic::Status` per the [wire contract](crate::grpc): a [`StatusCode`](crate::StatusCode), a
/// [`Code`](crate::Code), a [`pb::Status`](crate::pb::Status), an
/// [`ErrorBuilder`](crate::grpc::ErrorBuilder) (or a `tonic::Status` itself).
///
/// Made by [`intercept`].
#[derive(Clone)]
pub struct Intercept<F> {
    f: F,
}

impl<F> fmt::Debug for Intercept<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Intercept").finish_non_exhaustive()
    }
}

/// Wraps a closure as an interceptor that rejects with Clarifai codes.
///
/// The closure returns `Ok(request)` to let the call through, or `Err(e)` to reject it with `e`
/// converted per the wire contract (mapped gRPC code, description, `ErrorInfo`,
/// `clarifai-status-code`).
///
/// # Examples
///
/// ```
/// use clarifai_status::server::intercept;
/// use clarifai_status::StatusCode;
/// use tonic::service::Interceptor;
///
/// let mut only_json = intercept(|request: tonic::Request<()>| {
///     match request.metadata().get("x-format") {
///         Some(v) if v == "json" => Ok(request),
///         _ => Err(StatusCode::ConnBadRequestFormat),
///     }
/// });
/// let rejected = only_json.call(tonic::Request::new(())).unwrap_err();
/// assert_eq!(rejected.code(), tonic::Code::InvalidArgument);
/// assert_eq!(rejected.metadata().get("clarifai-status-code").unwrap(), "11100");
/// ```
pub fn intercept<F, E>(f: F) -> Intercept<F>
where
    F: FnMut(Request<()>) -> Result<Request<()>, E>,
    E: Into<tonic::Status>,
{
    Intercept { f }
}

impl<F, E> Interceptor for Intercept<F>
where
    F: FnMut(Request<()>) -> Result<Request<()>, E>,
    E: Into<tonic::Status>,
{
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, tonic::Status> {
        (self.f)(request).map_err(Into::into)
    }
}
