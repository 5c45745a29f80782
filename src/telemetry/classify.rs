//! [`ClarifaiFailures`]: a classifier for tower-http's `TraceLayer` that counts Clarifai
//! failures as failures.

use std::fmt;

use http::{HeaderMap, Request, Response};
use tower_http::classify::{ClassifiedResponse, ClassifyEos, ClassifyResponse, MakeClassifier};

use super::InBodyCode;
use crate::grpc;
use crate::mapping::{grpc_code_from_http, grpc_code_name};
use crate::Code;

/// A classifier for tower-http's `TraceLayer` (`TraceLayer::new(ClarifaiFailures::new())`)
/// that counts a call as failed when it carries a Clarifai failure code where the response
/// shows one, and any gRPC error as failed, as `GrpcErrorsAsFailures` does:
///
/// - the `clarifai-status-code` header, or a Clarifai `ErrorInfo`, of a Trailers-Only error
///   (the response headers) or of the trailers after a stream ([`grpc::read_code`]);
/// - an [`InBodyCode`] in the response's extensions: the in-body status a layer of the crate
///   read or wrote (`RetryLayer` on a client, `ErrorToInBodyLayer` on a server; see
///   [`InBodyCode`]); `InBodyToErrorLayer` answers the failures it reads as gRPC errors, seen
///   by the first rule;
/// - otherwise, `grpc-status` not `0`, or an HTTP status other than 200 (read as gRPC reads it).
///
/// What it cannot see:
///
/// - an in-body failure no layer of the crate has read: an OK response whose first message
///   carries a failure, passed by no `RetryLayer` or `InBodyToErrorLayer` inside the
///   `TraceLayer` (or a compressed one, or one those layers do not read: see their docs). Put
///   the `TraceLayer` outside those layers; on a server, `StatusLayer::telemetry` reads every
///   first message as it passes, but after the headers have left, so it records it in its own
///   metrics and span, not in a response extension;
/// - an in-body failure in a later message of a stream, or the message `ErrorToInBodyLayer`
///   adds after a stream (its trailers say OK);
/// - an in-body *success* followed by a failure in the trailers is seen (the trailers are read).
///
/// # Examples
///
/// ```
/// use clarifai_status::telemetry::ClarifaiFailures;
/// use tower_http::classify::{ClassifiedResponse, ClassifyResponse, MakeClassifier};
///
/// let classifier = ClarifaiFailures::new().make_classifier(&http::Request::new(()));
/// // A Trailers-Only error carrying MODEL_BUSY_PLEASE_RETRY.
/// let response = tonic::Status::from(clarifai_status::StatusCode::ModelBusyPleaseRetry).into_http::<()>();
/// match classifier.classify_response(&response) {
///     ClassifiedResponse::Ready(Err(failure)) => assert_eq!(failure.to_string(), "MODEL_BUSY_PLEASE_RETRY (21354), grpc UNAVAILABLE"),
///     _ => unreachable!(),
/// }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ClarifaiFailures {
    _priv: (),
}

impl ClarifaiFailures {
    /// The classifier.
    ///
    /// # Examples
    ///
    /// ```
    /// let layer = tower_http::trace::TraceLayer::new(clarifai_status::telemetry::ClarifaiFailures::new());
    /// # let _ = layer;
    /// ```
    pub fn new() -> ClarifaiFailures {
        ClarifaiFailures { _priv: () }
    }
}

/// What failed, as [`ClarifaiFailures`] classifies it (shown by `TraceLayer`'s `on_failure`).
///
/// # Examples
///
/// ```
/// use clarifai_status::telemetry::ClarifaiFailure;
///
/// let failure = ClarifaiFailure::Grpc(tonic::Code::Unavailable);
/// assert_eq!(failure.to_string(), "grpc UNAVAILABLE");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClarifaiFailure {
    /// A Clarifai failure code, with the gRPC code it travelled with (`OK` for in-body).
    Clarifai {
        /// The Clarifai code (a number the table does not know included).
        code: Code,
        /// The gRPC code of the response.
        grpc: tonic::Code,
    },
    /// A gRPC error carrying no Clarifai code.
    Grpc(tonic::Code),
    /// The service's error, as `Display` shows it.
    Error(String),
}

impl fmt::Display for ClarifaiFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClarifaiFailure::Clarifai { code, grpc } => write!(
                f,
                "{} ({}), grpc {}",
                code.name(),
                code.number(),
                grpc_code_name(*grpc)
            ),
            ClarifaiFailure::Grpc(code) => write!(f, "grpc {}", grpc_code_name(*code)),
            ClarifaiFailure::Error(error) => f.write_str(error),
        }
    }
}

impl MakeClassifier for ClarifaiFailures {
    type Classifier = ClarifaiFailures;
    type FailureClass = ClarifaiFailure;
    type ClassifyEos = ClassifyClarifaiEos;

    fn make_classifier<B>(&self, _: &Request<B>) -> ClarifaiFailures {
        *self
    }
}

impl ClassifyResponse for ClarifaiFailures {
    type FailureClass = ClarifaiFailure;
    type ClassifyEos = ClassifyClarifaiEos;

    fn classify_response<B>(
        self,
        response: &Response<B>,
    ) -> ClassifiedResponse<ClarifaiFailure, ClassifyClarifaiEos> {
        let headers = response.headers();
        if let Some(grpc_code) = grpc::read_grpc_code(headers) {
            return ClassifiedResponse::Ready(classify_status(grpc_code, headers));
        }
        if response.status() != http::StatusCode::OK {
            let grpc_code = grpc_code_from_http(response.status());
            return ClassifiedResponse::Ready(Err(ClarifaiFailure::Grpc(grpc_code)));
        }
        if let Some(InBodyCode(code)) = response.extensions().get::<InBodyCode>() {
            if code.is_failure() {
                return ClassifiedResponse::Ready(Err(ClarifaiFailure::Clarifai {
                    code: *code,
                    grpc: tonic::Code::Ok,
                }));
            }
        }
        ClassifiedResponse::RequiresEos(ClassifyClarifaiEos { _priv: () })
    }

    fn classify_error<E: fmt::Display + 'static>(self, error: &E) -> ClarifaiFailure {
        ClarifaiFailure::Error(error.to_string())
    }
}

/// The end-of-stream half of [`ClarifaiFailures`]: reads the trailers.
///
/// # Examples
///
/// ```
/// use clarifai_status::telemetry::ClarifaiFailures;
/// use tower_http::classify::{ClassifiedResponse, ClassifyEos, ClassifyResponse};
///
/// let ClassifiedResponse::RequiresEos(eos) = ClarifaiFailures::new().classify_response(&http::Response::new(())) else {
///     unreachable!()
/// };
/// let mut trailers = http::HeaderMap::new();
/// trailers.insert("grpc-status", "0".parse().unwrap());
/// assert!(eos.classify_eos(Some(&trailers)).is_ok());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ClassifyClarifaiEos {
    _priv: (),
}

impl ClassifyEos for ClassifyClarifaiEos {
    type FailureClass = ClarifaiFailure;

    fn classify_eos(self, trailers: Option<&HeaderMap>) -> Result<(), ClarifaiFailure> {
        let Some(trailers) = trailers else {
            return Ok(());
        };
        match grpc::read_grpc_code(trailers) {
            Some(grpc_code) => classify_status(grpc_code, trailers),
            None => Ok(()),
        }
    }

    fn classify_error<E: fmt::Display + 'static>(self, error: &E) -> ClarifaiFailure {
        ClarifaiFailure::Error(error.to_string())
    }
}

fn classify_status(grpc_code: tonic::Code, headers: &HeaderMap) -> Result<(), ClarifaiFailure> {
    if grpc_code == tonic::Code::Ok {
        return Ok(());
    }
    Err(match grpc::read_code(headers) {
        Some(code) => ClarifaiFailure::Clarifai {
            code,
            grpc: grpc_code,
        },
        None => ClarifaiFailure::Grpc(grpc_code),
    })
}
