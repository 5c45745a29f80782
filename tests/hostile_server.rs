//! The server layers under hostile handlers and upstreams (issue 18, the server side), read by
//! real tonic clients with default settings on 127.0.0.1: no panic, no hang, and the code that
//! arrives is the true one, never a success made from an error. Property tests push arbitrary
//! status headers through `StatusLayer` and `ErrorToInBodyLayer` in process.
//!
//! Hangs are caught by a generous guard (a failure when it runs out), never by timing a call.
#![cfg(feature = "server")]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use clarifai_status::grpc::{self, ClarifaiStatusExt};
use clarifai_status::pb::BaseResponse;
use clarifai_status::server::{
    error_to_in_body::ErrorToInBodyLayer, in_body_to_error::InBodyToErrorLayer,
    status::StatusLayer, MAX_ERROR_HEADER_BYTES,
};
use clarifai_status::{Code, StatusCode};
use clarifai_status_testing::pb::status_tester_client::StatusTesterClient;
use clarifai_status_testing::pb::RaiseRequest;
use http_body::{Body, Frame};
use http_body_util::BodyExt as _;
use prost::Message as _;
use tower::{Layer, ServiceExt as _};

mod common;
use common::hostile::{answer, serve, CASES};

/// A hang guard: the calls here end as soon as the peer's answer is read.
async fn guard<F: Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(Duration::from_secs(60), future).await {
        Ok(out) => out,
        Err(_) => panic!("{what}: hung"),
    }
}

async fn raise(
    client: &mut StatusTesterClient<tonic::transport::Channel>,
    case: &str,
) -> Result<tonic::Response<clarifai_status_testing::pb::RaiseResponse>, tonic::Status> {
    let mut request = tonic::Request::new(RaiseRequest::default());
    request
        .metadata_mut()
        .insert("x-hostile-case", case.parse().unwrap());
    // Spawned: a panic in tonic's client (details that are not base64) fails the task, and the
    // test says which case did it.
    let mut client = client.clone();
    let call = tokio::spawn(async move { client.raise(request).await });
    match guard(case, call).await {
        Ok(result) => result,
        Err(panic) => panic!("{case}: the client panicked: {panic}"),
    }
}

#[tokio::test]
async fn a_default_tonic_client_reads_the_true_code_behind_status_layer() {
    let addr = serve(false).await;
    let mut client = StatusTesterClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    for (case, code, grpc) in CASES {
        let status = raise(&mut client, case).await.expect_err(case);
        assert_eq!(i32::from(status.code()), grpc, "{case}: {status:?}");
        assert_eq!(
            status.carried_clarifai_code(),
            Some(Code::new(code)),
            "{case}"
        );
        assert!(status.message().len() <= grpc::MAX_MESSAGE_BYTES, "{case}");
        // What tonic-types reads agrees: one Clarifai ErrorInfo, the same code.
        let info = tonic_types::StatusExt::get_details_error_info(&status);
        let info_code = info.and_then(|i| i.metadata.get("code").cloned());
        assert_eq!(info_code, Some(code.to_string()), "{case}");
    }
}

#[tokio::test]
async fn a_default_tonic_client_reads_the_true_code_in_body() {
    let addr = serve(true).await;
    let mut client = StatusTesterClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    for (case, code, _) in CASES {
        let response = raise(&mut client, case).await.unwrap_or_else(|status| {
            panic!("{case}: a gRPC error where an in-body answer was due: {status:?}")
        });
        let status = response.into_inner().status.expect(case);
        assert_eq!(status.code, code, "{case}");
        assert!(
            status.description.len() <= grpc::MAX_MESSAGE_BYTES,
            "{case}"
        );
    }
}

/// The bidi handler of the deadlock: answers its response headers at once, and its first message
/// only after the first request message.
#[derive(Clone)]
struct Echo;

impl tonic::server::NamedService for Echo {
    const NAME: &'static str = "test.Echo";
}

impl tower::Service<http::Request<tonic::body::Body>> for Echo {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let body = AfterFirstRequest {
            request: request.into_body(),
            seen: 0,
            answered: false,
        };
        let response = http::Response::builder()
            .header("content-type", "application/grpc")
            .body(tonic::body::Body::new(body))
            .unwrap();
        std::future::ready(Ok(response))
    }
}

/// One message of the in-body answer SUCCESS per request message, then OK when requests end.
struct AfterFirstRequest {
    request: tonic::body::Body,
    seen: usize,
    answered: bool,
}

impl Body for AfterFirstRequest {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        loop {
            if self.answered {
                return Poll::Ready(None);
            }
            match std::task::ready!(Pin::new(&mut self.request).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    self.seen += data.remaining();
                    if self.seen >= 5 {
                        self.seen = 0;
                        let message = BaseResponse {
                            status: Some(clarifai_status::pb::Status::new(StatusCode::Success)),
                        }
                        .encode_to_vec();
                        let mut frame = BytesMut::new();
                        frame.put_u8(0);
                        frame.put_u32(message.len() as u32);
                        frame.put_slice(&message);
                        return Poll::Ready(Some(Ok(Frame::data(frame.freeze()))));
                    }
                }
                Some(Err(status)) => return Poll::Ready(Some(Err(status))),
                None => {
                    self.answered = true;
                    let mut trailers = http::HeaderMap::new();
                    trailers.insert("grpc-status", "0".parse().unwrap());
                    return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                }
            }
        }
    }
}

#[tokio::test]
async fn in_body_layer_passes_a_bidi_call_that_sends_after_the_headers() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tokio::spawn(
        tonic::transport::Server::builder()
            .layer(StatusLayer::new())
            .layer(InBodyToErrorLayer::new())
            .add_service(Echo)
            .serve_with_incoming(incoming),
    );
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    let (send, requests) = tokio::sync::mpsc::channel::<BaseResponse>(4);
    let requests = tokio_stream::wrappers::ReceiverStream::new(requests);
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static("/test.Echo/Chat");
    let codec = tonic_prost::ProstCodec::<BaseResponse, BaseResponse>::default();
    // The client sends its first message only once the response headers are in.
    let response = guard(
        "the response headers",
        grpc.streaming(tonic::Request::new(requests), path, codec),
    )
    .await
    .unwrap();
    let mut replies = response.into_inner();
    for round in 0..3 {
        send.send(BaseResponse::default()).await.unwrap();
        let reply = guard("a reply", replies.message()).await.unwrap().unwrap();
        assert_eq!(reply.status.unwrap().code, 10000, "round {round}");
    }
    drop(send);
    assert!(guard("the end", replies.message()).await.unwrap().is_none());
}

/// A Trailers-Only response with these headers, as a handler or an upstream answers.
fn answered(headers: http::HeaderMap) -> http::Response<tonic::body::Body> {
    let mut response = http::Response::new(tonic::body::Body::empty());
    *response.headers_mut() = headers;
    response
}

/// The status headers a client reads from a response: its headers when Trailers-Only, else its
/// trailers; and the body's bytes.
async fn read<B>(response: http::Response<B>) -> (http::HeaderMap, Bytes)
where
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let (parts, body) = response.into_parts();
    let collected = body.collect().await.unwrap();
    let trailers = collected.trailers().cloned();
    let bytes = collected.to_bytes();
    if parts.headers.contains_key("grpc-status") {
        (parts.headers, bytes)
    } else {
        (trailers.unwrap_or_default(), bytes)
    }
}

fn size(headers: &http::HeaderMap) -> usize {
    headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 32)
        .sum()
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Status headers as a handler or an upstream might send them.
    fn status_headers() -> impl Strategy<Value = http::HeaderMap> {
        let value = prop_oneof![
            prop::collection::vec(0x20u8..0x7f, 0..24).prop_map(|v| String::from_utf8(v).unwrap()),
            Just("!!!".to_owned()),
            Just("10000".to_owned()),
            Just("0".to_owned()),
            Just("64001".to_owned()),
            Just("40031".to_owned()),
            Just("%FF%FE".to_owned()),
            (1usize..4).prop_map(|k| "x".repeat(k * 4096)),
        ];
        let name = prop::sample::select(vec![
            "grpc-status",
            "grpc-message",
            "grpc-status-details-bin",
            "clarifai-status-code",
            "grpc-retry-pushback-ms",
            "x-handler",
            "x-other",
        ]);
        (
            prop::sample::select(vec!["14", "0", "2", "abc", "8", " 3", "99"]),
            prop::collection::vec((name, value), 0..6),
            prop::option::of(any::<Vec<u8>>()),
        )
            .prop_map(|(grpc_status, pairs, details)| {
                let mut headers = http::HeaderMap::new();
                headers.insert("content-type", "application/grpc".parse().unwrap());
                headers.insert("grpc-status", grpc_status.parse().unwrap());
                for (name, value) in pairs {
                    if let Ok(value) = value.parse() {
                        headers.insert(name, value);
                    }
                }
                if let Some(details) = details {
                    let encoded = base64::Engine::encode(
                        &base64::engine::general_purpose::STANDARD_NO_PAD,
                        details,
                    );
                    headers.insert("grpc-status-details-bin", encoded.parse().unwrap());
                }
                headers
            })
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn status_layer_lets_out_only_what_every_client_reads(headers in status_headers()) {
            let input_error = grpc::read_grpc_code(&headers) != Some(tonic::Code::Ok);
            let service = tower::service_fn(move |_: http::Request<()>| {
                std::future::ready(Ok::<_, std::convert::Infallible>(answered(headers.clone())))
            });
            let (out, _) = runtime().block_on(async {
                let response = StatusLayer::new().layer(service).oneshot(http::Request::new(())).await.unwrap();
                read(response).await
            });
            // tonic's reader does not panic on it, and reads what the crate reads.
            let status = tonic::Status::from_header_map(&out).unwrap();
            if input_error {
                prop_assert_ne!(status.code(), tonic::Code::Ok);
                let code = grpc::read_code(&out);
                prop_assert!(code.is_some_and(|c| c.is_failure()), "{:?}", out);
                prop_assert_eq!(status.clarifai_code(), code.unwrap());
                prop_assert!(size(&out) <= MAX_ERROR_HEADER_BYTES, "{} bytes", size(&out));
            }
        }

        #[test]
        fn errors_in_body_never_answers_an_error_as_a_success(headers in status_headers()) {
            let input_error = grpc::read_grpc_code(&headers) != Some(tonic::Code::Ok);
            let service = tower::service_fn(move |_: http::Request<()>| {
                std::future::ready(Ok::<_, std::convert::Infallible>(answered(headers.clone())))
            });
            let stack = tower::ServiceBuilder::new()
                .layer(ErrorToInBodyLayer::new())
                .layer(StatusLayer::new())
                .service(service);
            let (out, body) = runtime().block_on(async {
                let response = stack.oneshot(http::Request::new(())).await.unwrap();
                read(response).await
            });
            let status = tonic::Status::from_header_map(&out).unwrap();
            if input_error {
                prop_assert_eq!(status.code(), tonic::Code::Ok);
                prop_assert!(body.len() > 5);
                let answer = BaseResponse::decode(&body[5..]).unwrap().status.unwrap();
                let code = Code::new(answer.code);
                prop_assert!(code.is_failure(), "{:?}", answer);
                prop_assert!(answer.description.len() <= grpc::MAX_MESSAGE_BYTES);
                prop_assert!(size(&out) <= MAX_ERROR_HEADER_BYTES);
            }
        }
    }
}

#[tokio::test]
async fn every_case_through_status_layer_in_process_agrees_with_the_wire() {
    // The same cases as on the wire, in process: the answer a client would read.
    for (case, code, _) in CASES {
        let service = tower::service_fn(move |_: http::Request<()>| {
            std::future::ready(Ok::<_, std::convert::Infallible>(answer(case)))
        });
        let response = StatusLayer::new()
            .layer(service)
            .oneshot(http::Request::new(()))
            .await
            .unwrap();
        let (out, _) = read(response).await;
        assert_eq!(grpc::read_code(&out), Some(Code::new(code)), "{case}");
        assert!(
            size(&out) <= MAX_ERROR_HEADER_BYTES,
            "{case}: {} bytes",
            size(&out)
        );
    }
}

#[tokio::test]
async fn layers_that_pass_errors_on_repair_them_for_a_tonic_client() {
    // InBodyToErrorLayer alone, and ErrorToInBodyLayer set for another service: both pass the hostile
    // errors on rather than stamp them, and still let out nothing a client panics on or misreads.
    for stack in ["in_body", "errors_in_body_elsewhere"] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let server = tonic::transport::Server::builder();
        if stack == "in_body" {
            let router = server
                .layer(InBodyToErrorLayer::new())
                .add_service(common::hostile::Hostile);
            tokio::spawn(router.serve_with_incoming(incoming));
        } else {
            let layer = ErrorToInBodyLayer::new().only_services(["clarifai.api.V2"]);
            let router = server.layer(layer).add_service(common::hostile::Hostile);
            tokio::spawn(router.serve_with_incoming(incoming));
        }
        let mut client = StatusTesterClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
        for case in [
            "details_not_base64",
            "success_on_unavailable",
            "in_progress_on_unavailable",
            "status_not_a_number",
        ] {
            let status = raise(&mut client, case).await.expect_err(case);
            assert_ne!(status.code(), tonic::Code::Ok, "{stack} {case}");
            let carried = status.carried_clarifai_code();
            assert!(
                carried.is_none_or(|c| c.is_failure()),
                "{stack} {case}: {carried:?}"
            );
            assert!(status.clarifai_code().is_failure(), "{stack} {case}");
        }
    }
}
