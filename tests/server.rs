//! The server side over a real tonic server and client on 127.0.0.1: interceptor rejections, the
//! layer on unary errors and on errors after a stream, its tracing events, and load.
#![cfg(feature = "server")]

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll};

use clarifai_status::grpc::ClarifaiStatusExt;
use clarifai_status::mapping::fallback_from_grpc;
use clarifai_status::pb::{BaseResponse, Status};
use clarifai_status::server::{intercept, status::StatusLayer, ApiKeyAuth, KeyCheck, StaticKeys};
use clarifai_status::{Code, Outcome, StatusCode};
use clarifai_status_testing::pb::status_tester_client::StatusTesterClient;
use clarifai_status_testing::pb::status_tester_server::{StatusTester, StatusTesterServer};
use clarifai_status_testing::pb::{RaiseRequest, RaiseResponse};
use tokio::net::TcpListener;
use tonic::codegen::{http, BoxFuture, Service};
use tonic::server::NamedService;
use tonic::transport::{Channel, Server};
use tonic_types::StatusExt as _;

/// Answers `Raise` with the requested status: a failure as a Clarifai-coded gRPC error, or, when
/// `key` is "plain", as a plain `tonic::Status` with the code's gRPC code and no Clarifai code.
#[derive(Debug, Default)]
struct Echo;

#[tonic::async_trait]
impl StatusTester for Echo {
    async fn raise(
        &self,
        request: tonic::Request<RaiseRequest>,
    ) -> Result<tonic::Response<RaiseResponse>, tonic::Status> {
        let request = request.into_inner();
        let status = request.status.unwrap_or_default();
        let code = Code::new(status.code);
        if code.outcome() != Outcome::Failure {
            return Ok(tonic::Response::new(RaiseResponse {
                status: Some(status),
                attempt: 1,
            }));
        }
        if request.key == "plain" {
            return Err(tonic::Status::new(code.grpc_code(), "plain error"));
        }
        Err(tonic::Status::from(&status))
    }
}

/// A server-streaming method, written against tonic's server API: it sends one message, then
/// fails with the error chosen by the request's status code (plain when `req_id` is "plain").
#[derive(Debug, Clone, Default)]
struct Streamer;

impl NamedService for Streamer {
    const NAME: &'static str = "test.Streamer";
}

type MessageStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<BaseResponse, tonic::Status>> + Send>>;

struct StreamMethod;

impl tonic::server::ServerStreamingService<Status> for StreamMethod {
    type Response = BaseResponse;
    type ResponseStream = MessageStream;
    type Future = BoxFuture<tonic::Response<MessageStream>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<Status>) -> Self::Future {
        let status = request.into_inner();
        let error = if status.req_id == "plain" {
            tonic::Status::new(Code::new(status.code).grpc_code(), "stream broke")
        } else {
            tonic::Status::from(&status)
        };
        let first = BaseResponse {
            status: Some(Status {
                code: StatusCode::Success as i32,
                ..Default::default()
            }),
        };
        let items: MessageStream = Box::pin(tokio_stream::iter(vec![Ok(first), Err(error)]));
        Box::pin(async move { Ok(tonic::Response::new(items)) })
    }
}

impl<B> Service<http::Request<B>> for Streamer
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(
                tonic_prost::ProstCodec::<BaseResponse, Status>::default(),
            );
            Ok(grpc.server_streaming(StreamMethod, request).await)
        })
    }
}

async fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// Serves `Echo` (optionally behind an interceptor) and `Streamer`, with or without the layer.
async fn serve_layered(layered: bool) -> Channel {
    let (listener, addr) = listener().await;
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tokio::spawn(async move {
        let mut routes = Server::builder();
        if layered {
            routes
                .layer(StatusLayer::new())
                .add_service(StatusTesterServer::new(Echo))
                .add_service(Streamer)
                .serve_with_incoming(incoming)
                .await
        } else {
            routes
                .add_service(StatusTesterServer::new(Echo))
                .add_service(Streamer)
                .serve_with_incoming(incoming)
                .await
        }
    });
    channel(addr).await
}

fn raise(code: impl Into<Code>, key: &str) -> RaiseRequest {
    RaiseRequest {
        status: Some(Status {
            code: code.into().number(),
            ..Default::default()
        }),
        key: key.into(),
        ..Default::default()
    }
}

fn assert_carries(error: &tonic::Status, code: Code) {
    assert_eq!(error.code(), code.grpc_code());
    assert_carries_code(error, code);
}

/// As `assert_carries`, for a plain error whose gRPC code the layer keeps even where its fallback
/// code maps to another (FAILED_PRECONDITION and DATA_LOSS fall back to FAILURE).
fn assert_carries_code(error: &tonic::Status, code: Code) {
    assert_eq!(
        error
            .metadata()
            .get("clarifai-status-code")
            .map(|v| v.to_str().unwrap().to_owned()),
        Some(code.number().to_string())
    );
    let info = error
        .get_details_error_info()
        .expect("ErrorInfo in details");
    assert_eq!(info.reason, code.name());
    assert_eq!(info.domain, "api.clarifai.com");
    assert_eq!(info.metadata.get("code"), Some(&code.number().to_string()));
    assert_eq!(error.clarifai_code(), code);
}

#[tokio::test]
async fn layer_stamps_plain_unary_errors_with_the_fallback_code() {
    let mut client = StatusTesterClient::new(serve_layered(true).await);
    for grpc in 1..=16 {
        let grpc = tonic::Code::from_i32(grpc);
        // A code whose gRPC code is `grpc`, raised as a plain error.
        let Some(code) =
            StatusCode::all().find(|c| c.outcome() == Outcome::Failure && c.grpc_code() == grpc)
        else {
            continue;
        };
        let error = client.raise(raise(code, "plain")).await.unwrap_err();
        assert_eq!(error.message(), "plain error");
        assert_eq!(error.code(), grpc);
        assert_carries_code(&error, fallback_from_grpc(grpc).into());
        // The details agree with the status, as the contract (and grpcio-status) require.
        let details = error.get_error_details();
        assert!(details.error_info().is_some());
    }
}

#[tokio::test]
async fn without_the_layer_plain_errors_carry_no_code() {
    let mut client = StatusTesterClient::new(serve_layered(false).await);
    let error = client
        .raise(raise(StatusCode::ModelDoesNotExist, "plain"))
        .await
        .unwrap_err();
    assert_eq!(error.carried_clarifai_code(), None);
}

#[tokio::test]
async fn layer_leaves_errors_that_carry_a_code_untouched() {
    let mut layered = StatusTesterClient::new(serve_layered(true).await);
    let mut bare = StatusTesterClient::new(serve_layered(false).await);
    for code in [
        StatusCode::ModelBusyPleaseRetry,
        StatusCode::ConnKeyInvalid,
        StatusCode::Zero,
    ] {
        let through_layer = layered.raise(raise(code, "")).await.unwrap_err();
        let direct = bare.raise(raise(code, "")).await.unwrap_err();
        assert_carries(&through_layer, code.into());
        assert_eq!(through_layer.details(), direct.details());
        assert_eq!(through_layer.message(), direct.message());
    }
    // An unknown number survives the layer.
    let error = layered
        .raise(raise(Code::new(12345), ""))
        .await
        .unwrap_err();
    assert_carries(&error, Code::new(12345));
}

#[tokio::test]
async fn layer_lets_success_and_in_progress_through() {
    let mut client = StatusTesterClient::new(serve_layered(true).await);
    for code in [StatusCode::Success, StatusCode::ModelTraining] {
        let response = client.raise(raise(code, "")).await.unwrap();
        assert!(response.metadata().get("clarifai-status-code").is_none());
        assert_eq!(response.into_inner().status.unwrap().code, code as i32);
    }
}

async fn stream_error(channel: Channel, status: Status) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static("/test.Streamer/Stream");
    let codec = tonic_prost::ProstCodec::<Status, BaseResponse>::default();
    let mut stream = grpc
        .server_streaming(tonic::Request::new(status), path, codec)
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert_eq!(first.status.unwrap().code, StatusCode::Success as i32);
    stream.message().await.unwrap_err()
}

#[tokio::test]
async fn layer_stamps_errors_sent_in_trailers_after_a_stream() {
    let plain = Status {
        code: StatusCode::InternalServerIssue as i32,
        req_id: "plain".into(),
        ..Default::default()
    };
    let error = stream_error(serve_layered(true).await, plain.clone()).await;
    assert_eq!(error.message(), "stream broke");
    assert_carries(&error, StatusCode::ServerError.into());

    let bare = stream_error(serve_layered(false).await, plain).await;
    assert_eq!(bare.carried_clarifai_code(), None);
}

#[tokio::test]
async fn layer_leaves_coded_stream_errors_untouched() {
    let coded = Status {
        code: StatusCode::RunnerNeedsRetry as i32,
        req_id: "r-1".into(),
        ..Default::default()
    };
    let error = stream_error(serve_layered(true).await, coded).await;
    assert_carries(&error, StatusCode::RunnerNeedsRetry.into());
    assert_eq!(error.to_clarifai_status().req_id, "r-1");
}

async fn serve_with_auth<I>(interceptor: I) -> Channel
where
    I: tonic::service::Interceptor + Clone + Send + Sync + 'static,
{
    let (listener, addr) = listener().await;
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tokio::spawn(
        Server::builder()
            .layer(StatusLayer::new())
            .add_service(StatusTesterServer::with_interceptor(Echo, interceptor))
            .serve_with_incoming(incoming),
    );
    channel(addr).await
}

fn with_auth(value: &str) -> tonic::Request<RaiseRequest> {
    let mut request = tonic::Request::new(raise(StatusCode::Success, ""));
    request
        .metadata_mut()
        .insert("authorization", value.parse().unwrap());
    request
}

#[tokio::test]
async fn api_key_auth_rejects_each_case_with_its_clarifai_code() {
    let mut client = StatusTesterClient::new(
        serve_with_auth(ApiKeyAuth::new(StaticKeys::new(["s3cret", "other"]))).await,
    );

    let ok = client.raise(with_auth("Key s3cret")).await.unwrap();
    assert_eq!(ok.into_inner().status.unwrap().code, 10000);

    let missing = client
        .raise(raise(StatusCode::Success, ""))
        .await
        .unwrap_err();
    assert_carries(&missing, StatusCode::ConnKeyNotFound.into());

    for malformed in ["Bearer s3cret", "Key", "Key  ", "s3cret"] {
        let error = client.raise(with_auth(malformed)).await.unwrap_err();
        assert_carries(&error, StatusCode::ConnInvalidRequest.into());
        assert!(!error.message().contains("s3cret"));
    }

    let unknown = client.raise(with_auth("Key wrong")).await.unwrap_err();
    assert_carries(&unknown, StatusCode::ConnKeyNotFound.into());
    assert!(!unknown.message().contains("wrong"));
}

#[tokio::test]
async fn api_key_auth_takes_a_closure_for_invalid_keys_and_scopes() {
    let auth = ApiKeyAuth::from_fn(|key, _| match key {
        "good" => KeyCheck::Valid,
        "revoked" => KeyCheck::Invalid,
        "read-only" => KeyCheck::InsufficientScopes,
        _ => KeyCheck::Unknown,
    });
    let mut client = StatusTesterClient::new(serve_with_auth(auth).await);
    assert!(client.raise(with_auth("Key good")).await.is_ok());
    let revoked = client.raise(with_auth("Key revoked")).await.unwrap_err();
    assert_carries(&revoked, StatusCode::ConnKeyInvalid.into());
    let scopes = client.raise(with_auth("Key read-only")).await.unwrap_err();
    assert_carries(&scopes, StatusCode::ConnInsufficientScopes.into());
    assert_eq!(scopes.code(), tonic::Code::PermissionDenied);
}

#[tokio::test]
async fn intercept_adapter_rejects_with_any_clarifai_code() {
    let interceptor = intercept(|request: tonic::Request<()>| {
        match request
            .metadata()
            .get("x-tenant")
            .and_then(|v| v.to_str().ok())
        {
            Some("known") => Ok(request),
            Some("maintenance") => Err(tonic::Status::from(
                StatusCode::RequestDisabledForMaintenance,
            )),
            _ => Err(StatusCode::ConnAccountIssues.into()),
        }
    });
    let mut client = StatusTesterClient::new(serve_with_auth(interceptor).await);
    let tenant = |t: &str| {
        let mut request = tonic::Request::new(raise(StatusCode::Success, ""));
        request
            .metadata_mut()
            .insert("x-tenant", t.parse().unwrap());
        request
    };
    assert!(client.raise(tenant("known")).await.is_ok());
    let maintenance = client.raise(tenant("maintenance")).await.unwrap_err();
    assert_carries(
        &maintenance,
        StatusCode::RequestDisabledForMaintenance.into(),
    );
    let other = client.raise(tenant("x")).await.unwrap_err();
    assert_carries(&other, StatusCode::ConnAccountIssues.into());
}

#[tokio::test]
async fn layered_server_answers_1000_concurrent_calls_each_with_its_code() {
    let client = StatusTesterClient::new(serve_layered(true).await);
    let codes: Vec<StatusCode> = StatusCode::all().collect();
    let calls = (0..1000).map(|i| {
        let mut client = client.clone();
        let code = codes[i % codes.len()];
        let plain = i % 3 == 0;
        tokio::spawn(async move {
            let key = if plain { "plain" } else { "" };
            let answer = client.raise(raise(code, key)).await;
            (code, plain, answer)
        })
    });
    let answers = futures_join_all(calls).await;
    assert_eq!(answers.len(), 1000);
    for (code, plain, answer) in answers {
        match (code.outcome(), answer) {
            (Outcome::Failure, Err(error)) => {
                assert_eq!(error.code(), code.grpc_code());
                let expected: Code = if plain {
                    fallback_from_grpc(code.grpc_code()).into()
                } else {
                    code.into()
                };
                assert_carries_code(&error, expected);
            }
            (Outcome::Success | Outcome::InProgress, Ok(response)) => {
                assert_eq!(response.into_inner().status.unwrap().code, code as i32);
            }
            (outcome, answer) => panic!("{code:?} ({outcome}) answered {answer:?}"),
        }
    }
}

async fn futures_join_all<T: Send + 'static>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut out = Vec::new();
    for handle in handles.collect::<Vec<_>>() {
        out.push(handle.await.unwrap());
    }
    out
}

/// Records the fields of every `clarifai_status` tracing event.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<Vec<(String, String)>>>,
}

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.push((field.name().to_owned(), value.to_string()));
    }
}

impl tracing::Subscriber for &'static Recorder {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target() == "clarifai_status"
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Vec::new();
        event.record(&mut Fields(&mut fields));
        self.events.lock().unwrap().push(fields);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn recorder() -> &'static Recorder {
    static RECORDER: OnceLock<&'static Recorder> = OnceLock::new();
    RECORDER.get_or_init(|| {
        let recorder: &'static Recorder = Box::leak(Box::default());
        tracing::subscriber::set_global_default(recorder).unwrap();
        recorder
    })
}

#[tokio::test]
async fn layer_logs_each_error_with_code_name_and_grpc_code_and_no_message() {
    let recorder = recorder();
    let mut client = StatusTesterClient::new(serve_layered(true).await);
    let secret = Status {
        code: StatusCode::ConnKeyInvalid as i32,
        description: "key for tenant-secret-42".into(),
        internal_details: "db row 7".into(),
        ..Default::default()
    };
    let request = RaiseRequest {
        status: Some(secret),
        ..Default::default()
    };
    client.raise(request).await.unwrap_err();
    let events = recorder.events.lock().unwrap().clone();
    let event = events
        .iter()
        .find(|fields| fields.iter().any(|(k, v)| k == "code" && v == "11008"))
        .expect("an event for 11008");
    let get = |key: &str| {
        event
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("name"), Some("CONN_KEY_INVALID"));
    assert_eq!(get("grpc_code"), Some("UNAUTHENTICATED"));
    for (_, value) in event {
        assert!(!value.contains("tenant-secret-42") && !value.contains("db row 7"));
    }
}
