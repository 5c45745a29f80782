//! What a new user meets first, over a real tonic server and client on 127.0.0.1: the client
//! interceptor sending `authorization: Key <key>`, checked on the server by a closure given to
//! `ApiKeyAuth::from_fn` without type annotations; and building and reading in-body
//! `pb::Status` values. This file is the home of `pb::Status::new` and of `pb::Status`'s
//! `From<StatusCode>` and `From<Code>`.

use clarifai_status::pb::{BaseResponse, Status};
use clarifai_status::{Code, StatusCode};
use prost::Message;

mod common;
use common::{codes, UNKNOWN_NUMBERS};

// ---- `pb::Status::new` and `From<StatusCode>` / `From<Code>` for `pb::Status`: their home ----

#[test]
fn status_new_fills_number_and_table_description_for_every_code() {
    for code in codes() {
        let status = Status::new(code);
        assert_eq!(status.code, code.number());
        assert_eq!(status.description, code.description());
        if !code.is_known() {
            assert_eq!(status.description, Code::UNKNOWN_DESCRIPTION, "{code}");
        }
        assert_eq!(status.clarifai_code(), code);
        let rest = Status {
            code: 0,
            description: String::new(),
            ..status.clone()
        };
        assert_eq!(
            rest,
            Status::default(),
            "{code}: only code and description are set"
        );
    }
}

#[test]
fn status_from_status_code_from_code_and_from_a_number_equal_status_new() {
    for code in codes() {
        assert_eq!(Status::from(code), Status::new(code));
        assert_eq!(Status::new(code.number()), Status::new(code));
        if let Some(known) = code.known() {
            assert_eq!(Status::from(known), Status::new(code));
        }
    }
    let response = BaseResponse {
        status: Some(StatusCode::ModelDeploying.into()),
    };
    assert_eq!(
        response.status.unwrap().clarifai_code(),
        StatusCode::ModelDeploying
    );
}

#[test]
fn a_default_status_reads_as_zero() {
    assert_eq!(Status::default().clarifai_code(), StatusCode::Zero);
}

// ---- The `code` field on the wire ----

/// Clarifai's own declaration of the field, `StatusCode code = 1`, which the crate's proto
/// declares `int32` so that prost generates no lossy `code()` getter.
#[derive(Clone, PartialEq, prost::Message)]
struct ClarifaiDeclaredStatus {
    #[prost(enumeration = "StatusCode", tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    description: String,
}

#[test]
fn the_int32_code_is_wire_identical_to_clarifais_enum_and_keeps_every_number() {
    let numbers = UNKNOWN_NUMBERS
        .into_iter()
        .chain([0, 10000, 21354, -1, i32::MIN, i32::MAX]);
    for number in numbers {
        let theirs = ClarifaiDeclaredStatus {
            code: number,
            description: "d".into(),
        };
        let ours = Status {
            code: number,
            description: "d".into(),
            ..Default::default()
        };
        assert_eq!(ours.encode_to_vec(), theirs.encode_to_vec(), "{number}");
        let decoded = Status::decode(theirs.encode_to_vec().as_slice()).unwrap();
        assert_eq!(decoded.clarifai_code(), Code::new(number));
        let back = ClarifaiDeclaredStatus::decode(ours.encode_to_vec().as_slice()).unwrap();
        assert_eq!(back.code, number);
    }
}

// ---- `AddApiKey` ----

#[test]
fn invalid_api_key_is_terse_and_never_shows_the_key() {
    use clarifai_status::client::AddApiKey;

    for bad in [
        "",
        "two words",
        "tab\there",
        "clé-secrète",
        "nl\n",
        "Key\u{7f}",
    ] {
        let error = AddApiKey::new(bad).unwrap_err();
        assert_eq!(error.to_string(), "invalid api key");
        let debug = format!("{error:?}");
        assert!(bad.is_empty() || !debug.contains(bad), "{debug}");
    }
    let key = AddApiKey::new("s3cret-key").unwrap();
    assert!(!format!("{key:?}").contains("s3cret"));
}

/// The interceptor and the closure validator against a real server.
#[cfg(feature = "server")]
mod over_the_wire {
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    use clarifai_status::client::AddApiKey;
    use clarifai_status::grpc::ClarifaiStatusExt;
    use clarifai_status::pb::Status;
    use clarifai_status::server::{status::StatusLayer, ApiKeyAuth, KeyCheck};
    use clarifai_status::StatusCode;
    use clarifai_status_testing::pb::status_tester_client::StatusTesterClient;
    use clarifai_status_testing::pb::status_tester_server::StatusTesterServer;
    use clarifai_status_testing::pb::RaiseRequest;
    use clarifai_status_testing::Tester;
    use tokio::net::TcpListener;
    use tonic::service::Interceptor;
    use tonic::transport::{Channel, Server};

    /// Serves the crate's `StatusTester` behind `interceptor` on 127.0.0.1:0.
    async fn serve<I>(interceptor: I) -> Channel
    where
        I: Interceptor + Clone + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        tokio::spawn(
            Server::builder()
                .layer(StatusLayer::new())
                .add_service(StatusTesterServer::with_interceptor(
                    Tester::new(),
                    interceptor,
                ))
                .serve_with_incoming(incoming),
        );
        Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    /// A `Raise` asking for SUCCESS: what a successful call returns once past the interceptor.
    fn success() -> RaiseRequest {
        RaiseRequest {
            status: Some(Status::new(StatusCode::Success)),
            ..Default::default()
        }
    }

    /// The server's validator: `s3cret` passes, `revoked` is invalid, anything else unknown.
    /// Written without type annotations: what `from_fn` is for.
    fn auth() -> impl Interceptor + Clone + Send + Sync + 'static {
        ApiKeyAuth::from_fn(|key, _request| match key {
            "s3cret" => KeyCheck::Valid,
            "revoked" => KeyCheck::Invalid,
            _ => KeyCheck::Unknown,
        })
    }

    async fn client_with_key(
        key: &str,
    ) -> StatusTesterClient<tonic::service::interceptor::InterceptedService<Channel, AddApiKey>>
    {
        StatusTesterClient::with_interceptor(serve(auth()).await, AddApiKey::new(key).unwrap())
    }

    #[tokio::test]
    async fn right_key_from_the_client_interceptor_passes_from_fn_auth() {
        let mut client = client_with_key("s3cret").await;
        let response = client.raise(success()).await.unwrap().into_inner();
        assert_eq!(
            response.status.unwrap().clarifai_code(),
            StatusCode::Success
        );
    }

    #[tokio::test]
    async fn revoked_key_is_unauthenticated_with_conn_key_invalid() {
        let mut client = client_with_key("revoked").await;
        let error = client.raise(success()).await.unwrap_err();
        assert_eq!(error.code(), tonic::Code::Unauthenticated);
        assert_eq!(error.clarifai_code(), StatusCode::ConnKeyInvalid);
        assert_eq!(error.clarifai_code().number(), 11008);
    }

    #[tokio::test]
    async fn unknown_key_is_unauthenticated_with_conn_key_not_found() {
        let mut client = client_with_key("guess").await;
        let error = client.raise(success()).await.unwrap_err();
        assert_eq!(error.code(), tonic::Code::Unauthenticated);
        assert_eq!(error.clarifai_code(), StatusCode::ConnKeyNotFound);
    }

    #[tokio::test]
    async fn no_key_is_unauthenticated_with_conn_key_not_found() {
        let mut client = StatusTesterClient::new(serve(auth()).await);
        let error = client.raise(success()).await.unwrap_err();
        assert_eq!(error.code(), tonic::Code::Unauthenticated);
        assert_eq!(error.clarifai_code(), StatusCode::ConnKeyNotFound);
        assert_eq!(error.clarifai_code().number(), 11009);
    }

    #[tokio::test]
    async fn bool_closure_passes_true_and_answers_false_with_conn_key_not_found() {
        let channel = serve(ApiKeyAuth::from_fn(|key, _| key == "s3cret")).await;
        let mut right = StatusTesterClient::with_interceptor(
            channel.clone(),
            AddApiKey::new("s3cret").unwrap(),
        );
        assert!(right.raise(success()).await.is_ok());
        let mut wrong =
            StatusTesterClient::with_interceptor(channel, AddApiKey::new("s3cret2").unwrap());
        let error = wrong.raise(success()).await.unwrap_err();
        assert_eq!(error.code(), tonic::Code::Unauthenticated);
        assert_eq!(error.clarifai_code(), StatusCode::ConnKeyNotFound);
    }

    #[tokio::test]
    async fn server_sees_exactly_the_key_the_interceptor_sent_and_the_request() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        let channel = serve(ApiKeyAuth::from_fn(move |key, request| {
            let trace = request
                .metadata()
                .get("x-trace")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            record.lock().unwrap().push((key.to_owned(), trace));
            true
        }))
        .await;
        let key = "ABCdef0123456789-_.~!;=,";
        let mut client =
            StatusTesterClient::with_interceptor(channel, AddApiKey::new(key).unwrap());
        let mut request = tonic::Request::new(success());
        request
            .metadata_mut()
            .insert("x-trace", "t-1".parse().unwrap());
        client.raise(request).await.unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            vec![(key.to_owned(), "t-1".to_owned())]
        );
    }

    #[tokio::test]
    async fn a_key_set_on_the_request_overrides_the_interceptors_key() {
        let mut client = client_with_key("guess").await;
        let mut request = tonic::Request::new(success());
        request
            .metadata_mut()
            .insert("authorization", "Key s3cret".parse().unwrap());
        assert!(client.raise(request).await.is_ok());
        // And the interceptor's own key is used when the request has none.
        let error = client.raise(success()).await.unwrap_err();
        assert_eq!(error.clarifai_code(), StatusCode::ConnKeyNotFound);
    }
}

/// The client interceptor against the V2 stand-in of `clarifai-status serve`: a `Key raise;...`
/// API key chooses the scenario, as it does for Clarifai's own SDK.
mod against_the_v2_stand_in {
    use std::net::SocketAddr;

    use clarifai_status::client::AddApiKey;
    use clarifai_status::grpc::ClarifaiStatusExt;
    use clarifai_status::pb::BaseResponse;
    use clarifai_status::StatusCode;
    use clarifai_status_testing::{TestServer, Tester};
    use tonic::service::interceptor::InterceptedService;
    use tonic::transport::Channel;

    type Codec = tonic_prost::ProstCodec<BaseResponse, BaseResponse>;

    /// Starts the test server on 127.0.0.1:0; its gRPC address and its call counters.
    async fn start() -> (SocketAddr, Tester) {
        let server = TestServer::new();
        let tester = server.tester().clone();
        let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let bound = server.bind(local, None).unwrap();
        let addr = bound.grpc_addr();
        tokio::spawn(bound.serve_with_shutdown(std::future::pending()));
        (addr, tester)
    }

    /// A raw V2 client whose every call carries `authorization: Key <key>`.
    async fn client(
        addr: SocketAddr,
        key: &str,
    ) -> tonic::client::Grpc<InterceptedService<Channel, AddApiKey>> {
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let key = AddApiKey::new(key).unwrap();
        tonic::client::Grpc::new(InterceptedService::new(channel, key))
    }

    async fn call(
        client: &mut tonic::client::Grpc<InterceptedService<Channel, AddApiKey>>,
        method: &'static str,
    ) -> Result<BaseResponse, tonic::Status> {
        client.ready().await.unwrap();
        let path = http::uri::PathAndQuery::from_static(method);
        let request = tonic::Request::new(BaseResponse::default());
        Ok(client
            .unary(request, path, Codec::default())
            .await?
            .into_inner())
    }

    fn count(tester: &Tester, key: &str, method: &str) -> Option<u32> {
        tester
            .calls()
            .into_iter()
            .find(|c| c.key == key && c.method == method)
            .map(|c| c.count)
    }

    #[tokio::test]
    async fn raise_key_sent_by_the_interceptor_chooses_the_in_body_scenario() {
        let (addr, tester) = start().await;
        let scenario = "code=MODEL_BUSY_PLEASE_RETRY;fail_times=2;id=ergonomics";
        let mut client = client(addr, &format!("raise;{scenario}")).await;
        let mut codes = Vec::new();
        for _ in 0..3 {
            let response = call(&mut client, "/clarifai.api.V2/PostModelOutputs")
                .await
                .unwrap();
            codes.push(response.status.unwrap().clarifai_code());
        }
        assert_eq!(
            codes,
            [
                StatusCode::ModelBusyPleaseRetry,
                StatusCode::ModelBusyPleaseRetry,
                StatusCode::Success
            ]
        );
        assert_eq!(count(&tester, scenario, "PostModelOutputs"), Some(3));
    }

    #[tokio::test]
    async fn raise_key_with_in_body_false_is_a_grpc_error_with_the_clarifai_code() {
        let (addr, tester) = start().await;
        let scenario = "code=11008;in_body=false;id=ergonomics";
        let mut client = client(addr, &format!("raise;{scenario}")).await;
        let error = call(&mut client, "/clarifai.api.V2/ListApps")
            .await
            .unwrap_err();
        assert_eq!(error.code(), tonic::Code::Unauthenticated);
        assert_eq!(error.clarifai_code(), StatusCode::ConnKeyInvalid);
        assert_eq!(count(&tester, scenario, "ListApps"), Some(1));
    }
}
