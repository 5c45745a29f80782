//! The stand-in for Clarifai's `clarifai.api.V2` gRPC service, and the routing of the test
//! server's gRPC port.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::tokio_stream;
use tonic::server::{Grpc, NamedService, StreamingService, UnaryService};
use tower_service::Service;

use super::scenario::clip;
use super::service::{bad_request, scenario_text, table_status, StandInAnswer, Tester};
use crate::pb::status_tester_server::StatusTester;
use crate::pb::{RaiseRequest, RaiseResponse};
use clarifai_status::grpc::ErrorBuilder;
use clarifai_status::{pb, Code, Outcome, StatusCode};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

const V2_PREFIX: &str = "/clarifai.api.V2/";
const RAISE_PATH: &str = "/clarifai.status.testing.v1.StatusTester/Raise";

/// The longest V2 method name answered (Clarifai's longest is under 64 bytes).
const MAX_METHOD_LEN: usize = 128;

/// A stand-in for Clarifai's `clarifai.api.V2` gRPC service: answers every method (unary,
/// server-streaming, client-streaming, bidirectional) with a status-only message, decided by the
/// call's scenario.
///
/// Every response message of the V2 service has `clarifai.api.status.Status status = 1`, so a
/// message holding only that field (a [`pb::BaseResponse`]) decodes as any of them: Clarifai's
/// own clients and Rust clients generated from Clarifai's protos read it as their response type,
/// without this crate knowing the service's protos. The request's messages are not decoded. A
/// stream gets one message, then OK. See the [module docs](super) for the scenarios.
///
/// Add it to your own tonic router as any service (its [`NamedService::NAME`] is
/// `clarifai.api.V2`); [`TestServer`](super::TestServer) serves it beside the `StatusTester`.
///
/// # Examples
///
/// ```no_run
/// use clarifai_status_testing::Tester;
///
/// # async fn run() -> Result<(), tonic::transport::Error> {
/// let tester = Tester::new();
/// tonic::transport::Server::builder()
///     .serve("127.0.0.1:18080".parse().unwrap(), tester.v2())
///     .await
/// # }
/// ```
#[derive(Clone)]
pub struct V2StandIn {
    tester: Tester,
}

impl fmt::Debug for V2StandIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("V2StandIn").finish_non_exhaustive()
    }
}

impl V2StandIn {
    pub(crate) fn new(tester: Tester) -> V2StandIn {
        V2StandIn { tester }
    }
}

impl NamedService for V2StandIn {
    const NAME: &'static str = "clarifai.api.V2";
}

impl<B> Service<http::Request<B>> for V2StandIn
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        let method = path
            .strip_prefix(V2_PREFIX)
            .filter(|m| is_method_name(m))
            .map(str::to_owned);
        let Some(method) = method else {
            let response = unimplemented(path);
            return Box::pin(async move { Ok(response) });
        };
        let answer = self
            .tester
            .stand_in(scenario_text(request.headers()), &method, Some(&method));
        Box::pin(async move {
            let mut grpc = Grpc::new(StatusOnly);
            Ok(grpc.streaming(Answering(Some(answer)), request).await)
        })
    }
}

fn is_method_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_METHOD_LEN
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// tonic's own answer to a `Raise` it cannot read before the handler runs (no message at all, a
/// message cut short, a compressed one: the server takes no compression), a bare `INTERNAL`,
/// becomes `CONN_BAD_REQUEST_FORMAT` (11100) with tonic's text in `details`, as a message that
/// does not decode is answered. The handler's own answers always carry a code, so only tonic's
/// lack one; other responses pass as they are. (The V2 stand-in answers whatever the request
/// holds, so it needs none of this.)
fn unreadable_as_bad_request(
    response: http::Response<tonic::body::Body>,
) -> http::Response<tonic::body::Body> {
    let headers = response.headers();
    if headers.contains_key(clarifai_status::CODE_HEADER)
        || clarifai_status::grpc::read_grpc_code(headers) != Some(tonic::Code::Internal)
    {
        return response;
    }
    let said = tonic::Status::from_header_map(headers)
        .map(|status| status.message().to_owned())
        .unwrap_or_default();
    tonic::Status::from(&bad_request(format!(
        "the request could not be read: {}",
        clip(&said)
    )))
    .into_http()
}

/// The answer to a path the server does not serve: gRPC `UNIMPLEMENTED`, carrying
/// `NOT_IMPLEMENTED` (10040) per the wire contract.
fn unimplemented(path: &str) -> http::Response<tonic::body::Body> {
    ErrorBuilder::new(StatusCode::NotImplemented)
        .message(format!(
            "no such method `{}`; this server answers /clarifai.api.V2/* and /clarifai.status.testing.v1.StatusTester/Raise",
            clip(path)
        ))
        .build()
        .into_http()
}

/// Answers one stand-in call: reads the first request message (or the end of the requests),
/// waits the scenario's delay, then answers.
///
/// Without a delay the answer is whole at once: a Trailers-Only error, or the response with its
/// one message. With a delay the response headers go out at once and the message (or the error,
/// in trailers) after the delay, so the client's own deadline decides how a slow answer ends:
/// tonic's server would otherwise end a call whose `grpc-timeout` passes before the headers with
/// `CANCELLED`, which no client expects from its own deadline.
struct Answering(Option<StandInAnswer>);

type Answer = Result<pb::BaseResponse, tonic::Status>;

impl StreamingService<()> for Answering {
    type Response = pb::BaseResponse;
    type ResponseStream = OneAnswer;
    type Future = BoxFuture<Result<tonic::Response<OneAnswer>, tonic::Status>>;

    fn call(&mut self, request: tonic::Request<tonic::Streaming<()>>) -> Self::Future {
        let answer = self.0.take();
        Box::pin(async move {
            let Some(answer) = answer else {
                return Err(tonic::Status::internal("a stand-in call is answered once"));
            };
            let requests = request.into_inner();
            // An in-body failure carries its pushback in the response headers, where
            // `ErrorToInBodyLayer` puts an error's (an OK response has no `RetryInfo`).
            let pushback = answer
                .retry_after
                .filter(|_| {
                    !answer.as_error && Code::new(answer.status.code).outcome() == Outcome::Failure
                })
                .map(|delay| u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
            let successes = answer.successes_first;
            let mut response = if answer.delay.is_zero() && successes == 0 {
                let message = answer_after(requests, answer).await?;
                tonic::Response::new(OneAnswer::ready(Ok(message)))
            } else {
                tonic::Response::new(OneAnswer::later(successes, answer_after(requests, answer)))
            };
            if let Some(ms) = pushback {
                response
                    .metadata_mut()
                    .insert("grpc-retry-pushback-ms", ms.into());
            }
            Ok(response)
        })
    }
}

/// The answer, once the first request message (or the end of the requests) is in and the delay
/// has passed.
async fn answer_after(mut requests: tonic::Streaming<()>, answer: StandInAnswer) -> Answer {
    // The answer does not depend on the request; waiting for its first message keeps the
    // exchange in the usual order for every kind of method. A request that cannot be read (too
    // large, cut off) changes nothing.
    let _ = requests.message().await;
    if !answer.delay.is_zero() {
        tokio::time::sleep(answer.delay).await;
    }
    if answer.as_error {
        let mut error = ErrorBuilder::from_status(&answer.status);
        if let Some(delay) = answer.retry_after {
            error = error.retry_after(delay);
        }
        return Err(error.build());
    }
    Ok(pb::BaseResponse {
        status: Some(answer.status),
    })
}

/// A response stream of one answer, ready now or the output of a future, after `successes`
/// SUCCESS messages.
struct OneAnswer {
    successes: u32,
    next: Option<BoxFuture<Answer>>,
}

impl OneAnswer {
    fn ready(answer: Answer) -> OneAnswer {
        OneAnswer::later(0, std::future::ready(answer))
    }

    fn later(successes: u32, answer: impl Future<Output = Answer> + Send + 'static) -> OneAnswer {
        OneAnswer {
            successes,
            next: Some(Box::pin(answer)),
        }
    }
}

impl tokio_stream::Stream for OneAnswer {
    type Item = Answer;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Answer>> {
        if self.successes > 0 {
            self.successes -= 1;
            return Poll::Ready(Some(Ok(pb::BaseResponse {
                status: Some(table_status(StatusCode::Success.into())),
            })));
        }
        let Some(next) = self.next.as_mut() else {
            return Poll::Ready(None);
        };
        let answer = std::task::ready!(next.as_mut().poll(cx));
        self.next = None;
        Poll::Ready(Some(answer))
    }
}

/// Encodes status-only responses; decodes any request message to `()` without reading it.
#[derive(Debug, Clone, Copy, Default)]
struct StatusOnly;

impl Codec for StatusOnly {
    type Encode = pb::BaseResponse;
    type Decode = ();
    type Encoder = StatusOnly;
    type Decoder = StatusOnly;

    fn encoder(&mut self) -> StatusOnly {
        StatusOnly
    }

    fn decoder(&mut self) -> StatusOnly {
        StatusOnly
    }
}

impl Encoder for StatusOnly {
    type Item = pb::BaseResponse;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: pb::BaseResponse,
        dst: &mut EncodeBuf<'_>,
    ) -> Result<(), Self::Error> {
        item.encode(dst)
            .map_err(|e| tonic::Status::internal(format!("cannot encode the answer: {e}")))
    }
}

impl Decoder for StatusOnly {
    type Item = ();
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<()>, Self::Error> {
        src.advance(src.remaining());
        Ok(Some(()))
    }
}

/// `StatusTester/Raise`'s messages. Unlike the generated server's codec, a request that does not
/// decode is answered `CONN_BAD_REQUEST_FORMAT` (11100) per the wire contract, not a bare
/// `INTERNAL`.
#[derive(Debug, Clone, Copy, Default)]
struct RaiseCodec;

impl Codec for RaiseCodec {
    type Encode = RaiseResponse;
    type Decode = RaiseRequest;
    type Encoder = RaiseCodec;
    type Decoder = RaiseCodec;

    fn encoder(&mut self) -> RaiseCodec {
        RaiseCodec
    }

    fn decoder(&mut self) -> RaiseCodec {
        RaiseCodec
    }
}

impl Encoder for RaiseCodec {
    type Item = RaiseResponse;
    type Error = tonic::Status;

    fn encode(&mut self, item: RaiseResponse, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        item.encode(dst)
            .map_err(|e| tonic::Status::internal(format!("cannot encode the answer: {e}")))
    }
}

impl Decoder for RaiseCodec {
    type Item = RaiseRequest;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<RaiseRequest>, Self::Error> {
        RaiseRequest::decode(src).map(Some).map_err(|e| {
            tonic::Status::from(&bad_request(format!(
                "the request is not a clarifai.status.testing.v1.RaiseRequest: {e}"
            )))
        })
    }
}

/// One `Raise` call, answered by the tester.
struct RaiseCall(Tester);

impl UnaryService<RaiseRequest> for RaiseCall {
    type Response = RaiseResponse;
    type Future = BoxFuture<Result<tonic::Response<RaiseResponse>, tonic::Status>>;

    fn call(&mut self, request: tonic::Request<RaiseRequest>) -> Self::Future {
        let tester = self.0.clone();
        Box::pin(async move { tester.raise(request).await })
    }
}

/// The test server's gRPC port: `StatusTester` and the V2 stand-in by path, `UNIMPLEMENTED`
/// (with `NOT_IMPLEMENTED`, 10040) for any other path.
#[derive(Clone)]
pub(crate) struct Dispatch {
    tester: Tester,
    v2: V2StandIn,
}

impl Dispatch {
    pub(crate) fn new(tester: Tester) -> Dispatch {
        Dispatch {
            v2: tester.v2(),
            tester,
        }
    }
}

impl Service<http::Request<tonic::body::Body>> for Dispatch {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let path = request.uri().path();
        if path == RAISE_PATH {
            let call = RaiseCall(self.tester.clone());
            Box::pin(async move {
                let response = Grpc::new(RaiseCodec).unary(call, request).await;
                Ok(unreadable_as_bad_request(response))
            })
        } else if path.starts_with(V2_PREFIX) {
            self.v2.call(request)
        } else {
            let response = unimplemented(path);
            Box::pin(async move { Ok(response) })
        }
    }
}
