//! Putting Clarifai codes to work in tonic services: interceptors and server layers.
//!
//! - [`intercept`]: any closure returning a Clarifai code (or status) on rejection becomes a
//!   `tonic::service::Interceptor` whose rejections follow the [wire contract](crate::grpc).
//! - [`ApiKeyAuth`]: API-key authentication in Clarifai's convention (`authorization: Key
//!   <key>`), with a pluggable [`KeyValidator`] ([`StaticKeys`] compares in constant time).
//! - [`StatusLayer`]: a tower layer making every error that leaves the server carry a Clarifai
//!   code, in Trailers-Only headers and in trailers after a stream, logged with `tracing`.
//! - [`InBodyToErrorLayer`]: a tower layer answering responses that carry a failure in their body
//!   (`response.status.code`, Clarifai's way) as gRPC errors, for servers and proxies whose
//!   clients expect real gRPC errors.
//! - [`ErrorToInBodyLayer`]: the reverse, a tower layer answering every gRPC error as gRPC OK with
//!   a status-only message, for servers whose clients are Clarifai's own.
//!
//! For HTTP services and REST gateways see [`rest`](crate::rest); to answer in-body failures of
//! Clarifai-style responses as gRPC errors in a handler, see
//! [`response::into_result`](crate::response::into_result).
//!
//! # Which layer
//!
//! A failure travels one of two ways: as a gRPC error (`grpc-status` not 0, the way gRPC means
//! it), or, Clarifai's way, as gRPC OK with the failure in `response.status.code`. Choose by what
//! your handlers return and what your clients understand:
//!
//! | layer | handlers return | clients get | for clients such as | place it |
//! |---|---|---|---|---|
//! | [`StatusLayer`] | `Err(tonic::Status)` | gRPC errors, each carrying a Clarifai code | this crate's `RetryLayer`, grpcio-status, any gRPC client reading `ErrorInfo` | outside `InBodyToErrorLayer`, inside `ErrorToInBodyLayer` |
//! | [`InBodyToErrorLayer`] | Clarifai-style OK responses with failures in-body (or a proxy in front of Clarifai) | gRPC errors | generic gRPC clients and their retry policies (`UNAVAILABLE`, ...), `RetryLayer` | inside `StatusLayer` |
//! | [`ErrorToInBodyLayer`] | `Err(tonic::Status)` | gRPC OK with a status-only message | Clarifai's Python SDK and `clarifai-grpc` stubs, which retry throttles and busy models only in-body; `retry::call` | outside `StatusLayer` |
//!
//! Why the order: with `Server::builder().layer(a).layer(b)` (as with tower's `ServiceBuilder`),
//! `a` is the outer layer and sees the response after `b`.
//! - `InBodyToErrorLayer` inside `StatusLayer`: the errors it makes out of in-body failures then pass
//!   through `StatusLayer`, which logs them (they carry a Clarifai code already).
//! - `ErrorToInBodyLayer` outside `StatusLayer`: `StatusLayer` sees each error first and logs it
//!   with its code; inside it, `StatusLayer` would only ever see OK responses and log nothing.
//!   The in-body status is the same either way: `ErrorToInBodyLayer` falls back by the gRPC code
//!   itself, as `StatusLayer` does.
//! - `InBodyToErrorLayer` and `ErrorToInBodyLayer` together undo each other: use one.
//!
//! Interceptor rejections and tonic's own errors (an unknown method's `UNIMPLEMENTED`) come from
//! inside the layers, so they are answered in-body too; if the server also serves non-Clarifai
//! services (health, reflection), whose clients cannot decode a status-only message, restrict
//! `ErrorToInBodyLayer` with [`only_services`](error_to_in_body::ErrorToInBodyLayer::only_services).
//!
//! # What leaves a layer
//!
//! Handlers, interceptors and upstreams can answer anything; a layer of this module makes what it
//! lets out true and readable by every client (tonic's, grpcio, grpc-js), whatever came in:
//!
//! - **Nothing a client would panic on, or read as another code.** A status header no reader can
//!   use is replaced or removed before anything reads it: `grpc-status-details-bin` that is not
//!   base64 is removed (tonic's client panics on it), a `grpc-status` that is not a gRPC code is
//!   written as `2` (`UNKNOWN`, as tonic reads it: [`read_grpc_code`](crate::grpc::read_grpc_code),
//!   the one rule of `StatusLayer` and `ErrorToInBodyLayer` alike), a `grpc-message` that does not
//!   decode to UTF-8 is written again from its lossy decoding. Every layer here does this to
//!   every status it lets out, the ones it passes on untouched otherwise included
//!   (`InBodyToErrorLayer`'s errors, `ErrorToInBodyLayer`'s for services it is not set for), and
//!   `RetryLayer` does it on the client side.
//! - **An error says a failure.** A gRPC error whose `clarifai-status-code` or Clarifai
//!   `ErrorInfo` claims SUCCESS or an in-progress code carries no code
//!   ([`grpc::read_code`](crate::grpc::read_code)): `StatusLayer` stamps it by its gRPC code, as a
//!   plain error, replacing the header and such details; `ErrorToInBodyLayer` answers it in-body
//!   with that failure, never with a success; a layer that passes an error on removes such a
//!   claim, so the error carries no code rather than a false one.
//! - **The code fits.** An error's status headers stay within [`MAX_ERROR_HEADER_BYTES`]:
//!   `grpc-message` is cut to [`MAX_MESSAGE_BYTES`](crate::grpc::MAX_MESSAGE_BYTES), details
//!   larger than [`MAX_ERROR_METADATA_BYTES`](crate::grpc::MAX_ERROR_METADATA_BYTES) become the
//!   crate's own (code, message, retry delay), and while the list is still too large the
//!   handler's own metadata goes, largest entry first; in-body statuses have their texts cut the
//!   same way. A default client then reads the code rather than failing the call with
//!   `RESOURCE_EXHAUSTED`.
//!
//! # Examples
//!
//! Any generated service (here the test server's `StatusTesterServer`, from `clarifai-status-testing`) takes the
//! interceptor; the server takes the layer:
//!
//! ```no_run
//! # async fn run<T: clarifai_status_testing::pb::status_tester_server::StatusTester>(my_service: T) -> Result<(), tonic::transport::Error> {
//! use clarifai_status_testing::pb::status_tester_server::StatusTesterServer;
//! use clarifai_status::server::{ApiKeyAuth, StaticKeys, status::StatusLayer};
//!
//! let auth = ApiKeyAuth::new(StaticKeys::new(["s3cret"]));
//! tonic::transport::Server::builder()
//!     .layer(StatusLayer::new())
//!     .add_service(StatusTesterServer::with_interceptor(my_service, auth))
//!     .serve("127.0.0.1:50051".parse().unwrap())
//!     .await
//! # }
//! ```
//!
//! Serving Clarifai's own clients: errors logged by `StatusLayer`, then answered in-body, for the
//! Clarifai service only:
//!
//! ```
//! use clarifai_status::pb::BaseResponse;
//! use clarifai_status::server::{error_to_in_body::ErrorToInBodyLayer, status::StatusLayer};
//! use clarifai_status::StatusCode;
//! use http_body_util::BodyExt;
//! use prost::Message;
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // A handler's error, as tonic answers it (Trailers-Only).
//! let handler = tower::service_fn(|_: http::Request<()>| async {
//!     Ok::<_, std::convert::Infallible>(tonic::Status::from(StatusCode::ModelBusyPleaseRetry).into_http::<String>())
//! });
//! let server = tower::ServiceBuilder::new()
//!     .layer(ErrorToInBodyLayer::new().only_services(["clarifai.api.V2"]))
//!     .layer(StatusLayer::new())
//!     .service(handler);
//!
//! let call = |path: &'static str| http::Request::builder().uri(path).body(()).unwrap();
//! let response = server.clone().oneshot(call("/clarifai.api.V2/PostModelOutputs")).await.unwrap();
//! let body = response.into_body().collect().await.unwrap();
//! assert_eq!(body.trailers().unwrap()["grpc-status"], "0");
//! let status = BaseResponse::decode(&body.to_bytes()[5..]).unwrap().status.unwrap();
//! assert_eq!(status.code, 21354);
//!
//! // Another service's errors stay gRPC errors.
//! let response = server.oneshot(call("/grpc.health.v1.Health/Check")).await.unwrap();
//! assert_eq!(response.headers()["grpc-status"], "14"); // UNAVAILABLE
//! # }
//! ```

// The layers live in their modules; the docs above name them by their short names.
#![doc = "[`StatusLayer`]: status::StatusLayer"]
#![doc = "[`InBodyToErrorLayer`]: in_body_to_error::InBodyToErrorLayer"]
#![doc = "[`ErrorToInBodyLayer`]: error_to_in_body::ErrorToInBodyLayer"]

mod auth;
pub mod error_to_in_body;
pub mod in_body_to_error;
mod interceptor;
#[cfg(feature = "telemetry")]
mod recording;
pub mod status;
mod wire;

pub use auth::{ApiKeyAuth, KeyCheck, KeyValidator, StaticKeys, ValidatorFn};
pub use interceptor::{intercept, Intercept};
pub use wire::MAX_ERROR_HEADER_BYTES;
