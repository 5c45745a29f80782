//! Putting Clarifai codes to work in tonic services: interceptors and a server layer.
//!
//! - [`intercept`]: any closure returning a Clarifai code (or status) on rejection becomes a
//!   `tonic::service::Interceptor` whose rejections follow the [wire contract](crate::grpc).
//! - [`ApiKeyAuth`]: API-key authentication in Clarifai's convention (`authorization: Key
//!   <key>`), with a pluggable [`KeyValidator`] ([`StaticKeys`] compares in constant time).
//! - [`StatusLayer`]: a tower layer making every error that leaves the server carry a Clarifai
//!   code, in Trailers-Only headers and in trailers after a stream, logged with `tracing`.
//! - [`InBodyLayer`]: a tower layer answering responses that carry a failure in their body
//!   (`response.status.code`, Clarifai's way) as gRPC errors, for servers and proxies whose
//!   clients expect real gRPC errors.
//!
//! For HTTP services and REST gateways see [`rest`](crate::rest); to answer in-body failures of
//! Clarifai-style responses as gRPC errors in a handler, see
//! [`response::into_result`](crate::response::into_result).
//!
//! # Examples
//!
//! Any generated service (here the crate's own test service, `StatusTesterServer`) takes the
//! interceptor; the server takes the layer:
//!
//! ```no_run
//! # #[cfg(feature = "testing")]
//! # async fn run<T: clarifai_status::pb::testing::status_tester_server::StatusTester>(my_service: T) -> Result<(), tonic::transport::Error> {
//! use clarifai_status::pb::testing::status_tester_server::StatusTesterServer;
//! use clarifai_status::server::{ApiKeyAuth, StaticKeys, StatusLayer};
//!
//! let auth = ApiKeyAuth::new(StaticKeys::new(["s3cret"]));
//! tonic::transport::Server::builder()
//!     .layer(StatusLayer::new())
//!     .add_service(StatusTesterServer::with_interceptor(my_service, auth))
//!     .serve("127.0.0.1:50051".parse().unwrap())
//!     .await
//! # }
//! ```

mod auth;
mod body;
mod future;
mod in_body;
mod interceptor;
mod layer;

pub use auth::{ApiKeyAuth, KeyCheck, KeyValidator, StaticKeys};
pub use body::StatusBody;
pub use future::ResponseFuture;
pub use in_body::{InBody, InBodyLayer, InBodyResponse, DEFAULT_MESSAGE_LIMIT};
pub use interceptor::{intercept, Intercept};
pub use layer::{StatusLayer, StatusService};
