//! The test server as a stand-in for Clarifai's V2 API: real tonic calls to `/clarifai.api.V2/*`
//! of every kind, and raw HTTP/1.1 calls to its REST side, on 127.0.0.1.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clarifai_status::grpc::ClarifaiStatusExt as _;
use clarifai_status::{pb, Code, StatusCode};
use clarifai_status_testing::{CallCount, Scenarios, TestServer, Tester};
use tokio::sync::oneshot;
use tonic::transport::Channel;

use common::raw_http::request;

/// The shape of a real Clarifai response (`MultiOutputResponse`): the status at field 1, then
/// fields a status-only answer does not have.
#[derive(Clone, PartialEq, prost::Message)]
struct MultiOutputResponse {
    #[prost(message, optional, tag = "1")]
    status: Option<pb::Status>,
    #[prost(string, repeated, tag = "2")]
    outputs: Vec<String>,
}

/// Any request message: the stand-in does not read requests.
#[derive(Clone, PartialEq, prost::Message)]
struct AnyRequest {
    #[prost(string, tag = "1")]
    model_id: String,
}

type Codec = tonic_prost::ProstCodec<AnyRequest, MultiOutputResponse>;

struct Running {
    grpc: SocketAddr,
    http: SocketAddr,
    tester: Tester,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn client(&self) -> tonic::client::Grpc<Channel> {
        let channel = Channel::from_shared(format!("http://{}", self.grpc))
            .unwrap()
            .connect()
            .await
            .unwrap();
        tonic::client::Grpc::new(channel)
    }

    /// The count of `method` under `key`, 0 if never seen.
    fn count(&self, key: &str, method: &str) -> u32 {
        self.tester
            .calls()
            .into_iter()
            .find(|c| c.key == key && c.method == method)
            .map_or(0, |c| c.count)
    }

    async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("server stops within 10s")
            .unwrap()
            .unwrap();
    }
}

async fn start_with(server: TestServer) -> Running {
    let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let tester = server.tester().clone();
    let bound = server.bind(local, Some(local)).unwrap();
    let (grpc, http) = (bound.grpc_addr(), bound.http_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(bound.serve_with_shutdown(async {
        stopped.await.ok();
    }));
    Running {
        grpc,
        http,
        tester,
        stop,
        task,
    }
}

async fn start() -> Running {
    start_with(TestServer::new()).await
}

fn path(method: &str) -> http::uri::PathAndQuery {
    format!("/clarifai.api.V2/{method}").parse().unwrap()
}

fn with_metadata<T>(message: T, metadata: &[(&'static str, &str)]) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    for (name, value) in metadata {
        request.metadata_mut().insert(*name, value.parse().unwrap());
    }
    request
}

/// A unary V2 call with `metadata`; the response's status, or the gRPC error.
async fn unary(
    server: &Running,
    method: &str,
    metadata: &[(&'static str, &str)],
) -> Result<pb::Status, tonic::Status> {
    let mut client = server.client().await;
    client.ready().await.unwrap();
    let request = with_metadata(AnyRequest::default(), metadata);
    let response = client
        .unary(request, path(method), Codec::default())
        .await?
        .into_inner();
    assert!(response.outputs.is_empty());
    Ok(response.status.expect("a status-only answer has a status"))
}

async fn code_of(server: &Running, method: &str, metadata: &[(&'static str, &str)]) -> i32 {
    unary(server, method, metadata).await.unwrap().code
}

const RAISE: &str = "x-clarifai-status-raise";
const AUTH: &str = "authorization";

#[tokio::test]
async fn any_v2_method_answers_success_in_body_by_default() {
    let server = start().await;
    for method in [
        "PostModelOutputs",
        "GetModel",
        "ListApps",
        "SomeFutureMethod",
    ] {
        let status = unary(&server, method, &[]).await.unwrap();
        assert_eq!(status.code, StatusCode::Success as i32, "{method}");
        assert_eq!(status.description, "Ok");
        assert_eq!(server.count("", method), 1, "{method} is counted");
    }
    server.stop().await;
}

#[tokio::test]
async fn every_kind_of_method_gets_one_message_then_ok() {
    let server = start().await;
    let pairs = "code=21200;id=kinds";
    let metadata = [(RAISE, pairs)];

    let mut client = server.client().await;
    client.ready().await.unwrap();
    let mut stream = client
        .server_streaming(
            with_metadata(AnyRequest::default(), &metadata),
            path("GenerateModelOutputs"),
            Codec::default(),
        )
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert_eq!(first.status.unwrap().code, 21200);
    assert_eq!(stream.message().await.unwrap(), None, "then OK");

    client.ready().await.unwrap();
    let requests = tokio_stream::iter(vec![AnyRequest::default(), AnyRequest::default()]);
    let answer = client
        .client_streaming(
            with_metadata(requests, &metadata),
            path("PostInputsUploads"),
            Codec::default(),
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.status.unwrap().code, 21200);

    // Bidirectional, with the client's stream still open while the answer arrives.
    client.ready().await.unwrap();
    let (send, receive) = tokio::sync::mpsc::channel::<AnyRequest>(4);
    send.send(AnyRequest::default()).await.unwrap();
    let mut stream = client
        .streaming(
            with_metadata(
                tokio_stream::wrappers::ReceiverStream::new(receive),
                &metadata,
            ),
            path("StreamModelOutputs"),
            Codec::default(),
        )
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert_eq!(first.status.unwrap().code, 21200);
    assert_eq!(stream.message().await.unwrap(), None, "then OK");
    drop(send);

    for method in [
        "GenerateModelOutputs",
        "PostInputsUploads",
        "StreamModelOutputs",
    ] {
        assert_eq!(server.count(pairs, method), 1, "{method}");
    }
    server.stop().await;
}

#[tokio::test]
async fn successes_first_sends_success_messages_before_the_answer_of_a_stream() {
    let server = start().await;
    for (pairs, end) in [
        (
            "code=RPC_SERVER_UNAVAILABLE;in_body=false;successes_first=2",
            Some(tonic::Code::Unavailable),
        ),
        ("code=21354;successes_first=1", None),
    ] {
        let mut client = server.client().await;
        client.ready().await.unwrap();
        let mut stream = client
            .server_streaming(
                with_metadata(AnyRequest::default(), &[(RAISE, pairs)]),
                path("GenerateModelOutputs"),
                Codec::default(),
            )
            .await
            .unwrap()
            .into_inner();
        let mut codes = Vec::new();
        let ended = loop {
            match stream.message().await {
                Ok(Some(message)) => codes.push(message.status.unwrap().code),
                Ok(None) => break None,
                Err(status) => break Some(status.code()),
            }
        };
        match end {
            Some(code) => assert_eq!((codes, ended), (vec![10000, 10000], Some(code))),
            None => assert_eq!((codes, ended), (vec![10000, 21354], None)),
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn an_in_body_failure_carries_its_pushback_in_the_response_headers() {
    let server = start().await;
    let mut client = server.client().await;
    for (pairs, pushback) in [
        ("code=21354;retry_after_ms=250", Some("250")),
        ("code=21354", None),
        ("code=10000;retry_after_ms=250", None),
    ] {
        client.ready().await.unwrap();
        let response = client
            .unary(
                with_metadata(AnyRequest::default(), &[(RAISE, pairs)]),
                path("PostModelOutputs"),
                Codec::default(),
            )
            .await
            .unwrap();
        let header = response.metadata().get("grpc-retry-pushback-ms");
        assert_eq!(header.map(|v| v.to_str().unwrap()), pushback, "{pairs}");
    }
    server.stop().await;
}

#[tokio::test]
async fn the_header_wins_over_the_key_and_the_key_over_the_rules() {
    let rules = Scenarios::from_json(r#"{"rules": [{"code": 21355}]}"#).unwrap();
    let server = start_with(TestServer::new().scenarios(rules)).await;
    let header = [(RAISE, "code=21200"), (AUTH, "Key raise;code=11008")];
    assert_eq!(code_of(&server, "GetModel", &header).await, 21200);
    let key = [(AUTH, "Key raise;code=conn_key_invalid")];
    assert_eq!(code_of(&server, "GetModel", &key).await, 11008);
    assert_eq!(code_of(&server, "GetModel", &[]).await, 21355);
    let real_key = [(AUTH, "Key 0123456789abcdef")];
    assert_eq!(code_of(&server, "GetModel", &real_key).await, 21355);
    assert_eq!(server.count("rules[0]", "GetModel"), 2);
    assert_eq!(server.count("code=conn_key_invalid", "GetModel"), 1);
    server.stop().await;
}

#[tokio::test]
async fn methods_limit_the_scenario_and_other_methods_answer_success() {
    let server = start().await;
    let key = [(AUTH, "Key raise;code=21354;methods=PostModelOutputs,List*")];
    assert_eq!(code_of(&server, "PostModelOutputs", &key).await, 21354);
    assert_eq!(code_of(&server, "ListApps", &key).await, 21354);
    assert_eq!(code_of(&server, "GetModel", &key).await, 10000);
    let pairs = "code=21354;methods=PostModelOutputs,List*";
    assert_eq!(server.count(pairs, "GetModel"), 1, "counted all the same");
    server.stop().await;
}

#[tokio::test]
async fn fail_times_counts_per_scenario_text_and_method() {
    let server = start().await;
    let busy = [(RAISE, "code=MODEL_BUSY_PLEASE_RETRY;fail_times=2")];
    let seen: Vec<i32> = codes_of(&server, "PostModelOutputs", &busy, 3).await;
    assert_eq!(seen, [21354, 21354, 10000]);
    // Another method under the same text has its own counter.
    assert_eq!(code_of(&server, "GetModel", &busy).await, 21354);
    // So does another text: `id` only keeps counters apart.
    let other = [(RAISE, "code=MODEL_BUSY_PLEASE_RETRY;fail_times=2;id=b")];
    assert_eq!(code_of(&server, "PostModelOutputs", &other).await, 21354);
    let pairs = "code=MODEL_BUSY_PLEASE_RETRY;fail_times=2";
    assert_eq!(server.count(pairs, "PostModelOutputs"), 3);
    server.stop().await;
}

async fn codes_of(
    server: &Running,
    method: &str,
    metadata: &[(&'static str, &str)],
    n: usize,
) -> Vec<i32> {
    let mut codes = Vec::new();
    for _ in 0..n {
        codes.push(code_of(server, method, metadata).await);
    }
    codes
}

#[tokio::test]
async fn in_body_false_answers_failures_as_grpc_errors_per_the_wire_contract() {
    let server = start().await;
    let key = [(AUTH, "Key raise;code=11008;in_body=false")];
    let error = unary(&server, "PostModelOutputs", &key).await.unwrap_err();
    assert_eq!(error.code(), tonic::Code::Unauthenticated);
    assert_eq!(error.clarifai_code(), StatusCode::ConnKeyInvalid);
    assert_eq!(
        error.message(),
        "Invalid API key or Invalid API key/application pair"
    );

    let throttled = [(
        RAISE,
        "code=CONN_THROTTLED;in_body=false;retry_after_ms=1500",
    )];
    let error = unary(&server, "ListApps", &throttled).await.unwrap_err();
    assert_eq!(error.code(), tonic::Code::ResourceExhausted);
    assert_eq!(
        error.clarifai_retry_delay(),
        Some(Duration::from_millis(1500))
    );
    assert_eq!(
        error.metadata().get("grpc-retry-pushback-ms").unwrap(),
        "1500"
    );

    // A success has nothing to raise: it stays in the body.
    let success = [(RAISE, "code=10000;in_body=false")];
    assert_eq!(code_of(&server, "ListApps", &success).await, 10000);

    // Streams end with the error instead of a message.
    let mut client = server.client().await;
    client.ready().await.unwrap();
    let result = client
        .server_streaming(
            with_metadata(AnyRequest::default(), &key),
            path("GenerateModelOutputs"),
            Codec::default(),
        )
        .await;
    let error = match result {
        Err(error) => error,
        Ok(response) => response.into_inner().message().await.unwrap_err(),
    };
    assert_eq!(error.clarifai_code(), StatusCode::ConnKeyInvalid);
    server.stop().await;
}

#[tokio::test]
async fn unknown_codes_are_answered_as_sent() {
    let server = start().await;
    let status = unary(&server, "GetModel", &[(RAISE, "code=77777")])
        .await
        .unwrap();
    assert_eq!(status.code, 77777);
    assert_eq!(status.description, Code::new(77777).description());
    let error = unary(&server, "GetModel", &[(RAISE, "code=77777;in_body=false")])
        .await
        .unwrap_err();
    assert_eq!(error.clarifai_code(), Code::new(77777));
    server.stop().await;
}

#[tokio::test]
async fn delay_ms_waits_before_answering() {
    let server = start().await;
    let start = Instant::now();
    assert_eq!(
        code_of(&server, "GetModel", &[(RAISE, "code=21355;delay_ms=300")]).await,
        21355
    );
    assert!(start.elapsed() >= Duration::from_millis(300));
    server.stop().await;
}

#[tokio::test]
async fn a_delayed_answer_is_left_to_the_clients_deadline() {
    let server = start().await;
    // tonic's server would end a call whose grpc-timeout passes before its response headers with
    // CANCELLED; the stand-in sends its headers at once, so the client's own deadline decides (a
    // grpcio client then reports DEADLINE_EXCEEDED: tests/interop/clarifai_clients.py).
    let mut client = server.client().await;
    client.ready().await.unwrap();
    let mut request = with_metadata(AnyRequest::default(), &[(RAISE, "code=21355;delay_ms=300")]);
    request.set_timeout(Duration::from_millis(50));
    let start = Instant::now();
    let response = client
        .unary(request, path("GetModel"), Codec::default())
        .await
        .expect("no CANCELLED from the server's side of the deadline");
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert_eq!(response.into_inner().status.unwrap().code, 21355);

    // A delayed failure sent as a gRPC error arrives in trailers, with the wire contract.
    client.ready().await.unwrap();
    let request = with_metadata(
        AnyRequest::default(),
        &[(RAISE, "code=11008;in_body=false;delay_ms=50")],
    );
    let error = client
        .unary(request, path("GetModel"), Codec::default())
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::Unauthenticated);
    assert_eq!(error.clarifai_code(), StatusCode::ConnKeyInvalid);
    server.stop().await;
}

/// 100 calls under `percent=30`: which of them fail.
async fn failing_calls(server: &Running, pairs: &str) -> Vec<usize> {
    let metadata = [(RAISE, pairs)];
    let mut failed = Vec::new();
    for i in 0..100 {
        if code_of(server, "PostModelOutputs", &metadata).await != 10000 {
            failed.push(i);
        }
    }
    failed
}

#[tokio::test]
async fn percent_fails_a_seeded_share_that_repeats_run_after_run() {
    let pairs = "code=21354;percent=30";
    let first = start().await;
    let a = failing_calls(&first, pairs).await;
    first.stop().await;
    let second = start().await;
    let b = failing_calls(&second, pairs).await;
    second.stop().await;
    assert_eq!(a, b, "the same calls fail in every run");
    assert!((15..=45).contains(&a.len()), "{} of 100 failed", a.len());

    let seeded = Scenarios::from_json(r#"{"seed": 99, "rules": []}"#).unwrap();
    let third = start_with(TestServer::new().scenarios(seeded)).await;
    let c = failing_calls(&third, pairs).await;
    third.stop().await;
    assert_ne!(a, c, "another seed draws other calls");

    let never = start().await;
    assert!(failing_calls(&never, "code=21354;percent=0")
        .await
        .is_empty());
    never.stop().await;
}

#[tokio::test]
async fn rules_apply_in_order_with_globs() {
    let rules = Scenarios::from_json(
        r#"{"rules": [
            {"methods": ["Post*"], "code": "model_busy_please_retry", "fail_times": 1},
            {"methods": ["GetModel"], "code": 21200, "in_body": false}
        ]}"#,
    )
    .unwrap();
    let server = start_with(TestServer::new().scenarios(rules)).await;
    assert_eq!(code_of(&server, "PostModelOutputs", &[]).await, 21354);
    assert_eq!(code_of(&server, "PostModelOutputs", &[]).await, 10000);
    assert_eq!(code_of(&server, "PostInputs", &[]).await, 21354);
    let error = unary(&server, "GetModel", &[]).await.unwrap_err();
    assert_eq!(error.code(), tonic::Code::NotFound);
    assert_eq!(code_of(&server, "ListApps", &[]).await, 10000);
    assert_eq!(server.count("rules[0]", "PostModelOutputs"), 2);
    assert_eq!(server.count("rules[1]", "GetModel"), 1);
    assert_eq!(server.count("", "ListApps"), 1);
    server.stop().await;
}

#[tokio::test]
async fn malformed_scenarios_answer_invalid_request_naming_the_pair() {
    let server = start().await;
    for (pairs, named) in [
        ("code=nope", "`code=nope`"),
        ("code=21354;colour=red", "`colour=red`"),
        ("percent=150", "`percent=150`"),
        ("fail_times=-1", "`fail_times=-1`"),
    ] {
        let status = unary(&server, "PostModelOutputs", &[(RAISE, pairs)])
            .await
            .unwrap();
        assert_eq!(
            status.code,
            StatusCode::ConnInvalidRequest as i32,
            "{pairs}"
        );
        assert!(
            status.details.contains(named),
            "{pairs}: {}",
            status.details
        );
        assert_eq!(server.count(pairs, "PostModelOutputs"), 0, "not counted");
    }
    let long = format!("code=21354;id={}", "x".repeat(300));
    let status = unary(&server, "GetModel", &[(RAISE, &long)]).await.unwrap();
    assert_eq!(status.code, StatusCode::ConnInvalidRequest as i32);
    assert!(status.details.contains("at most 256"), "{}", status.details);
    server.stop().await;
}

#[tokio::test]
async fn other_services_are_unimplemented_and_raise_still_works() {
    let server = start().await;
    let mut client = server.client().await;
    for bad in ["/clarifai.api.V3/GetModel", "/clarifai.api.V2/", "/x/y"] {
        client.ready().await.unwrap();
        let error = client
            .unary(
                tonic::Request::new(AnyRequest::default()),
                bad.parse().unwrap(),
                Codec::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(error.code(), tonic::Code::Unimplemented, "{bad}");
        assert_eq!(error.clarifai_code(), StatusCode::NotImplemented, "{bad}");
    }
    let channel = Channel::from_shared(format!("http://{}", server.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut tester =
        clarifai_status_testing::pb::status_tester_client::StatusTesterClient::new(channel);
    let raised = tester
        .raise(clarifai_status_testing::pb::RaiseRequest {
            status: Some(pb::Status {
                code: 21101,
                ..Default::default()
            }),
            key: "k".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(raised.status.unwrap().code, 21101);
    assert_eq!(server.count("k", "Raise"), 1);
    server.stop().await;
}

// ---- REST ----

#[tokio::test]
async fn rest_paths_answer_the_scenario_of_the_api_key() {
    let server = start().await;
    let outputs = "/v2/users/u/apps/a/models/m/outputs";
    let answer = request(server.http, "POST", outputs, &[]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["status"]["code"], 10000);
    assert_eq!(answer.header("clarifai-status-code"), Some("10000"));

    let key = [(
        "Authorization",
        "Key raise;code=CONN_THROTTLED;retry_after_ms=1500;id=r",
    )];
    let answer = request(server.http, "POST", outputs, &key).await;
    assert_eq!(answer.status, 429);
    assert_eq!(answer.body["status"]["code"], 11005);
    assert_eq!(answer.header("clarifai-status-code"), Some("11005"));
    assert_eq!(answer.header("retry-after"), Some("2"));

    // `methods` is for gRPC methods; over REST it does not apply.
    let answer = request(
        server.http,
        "GET",
        "/v2/users/me/apps",
        &[("Authorization", "Key raise;code=21200;methods=GetModel")],
    )
    .await;
    assert_eq!(
        (answer.status, answer.body["status"]["code"].as_i64()),
        (404, Some(21200))
    );

    let answer = request(
        server.http,
        "DELETE",
        "/v2/users/me/apps/a",
        &[("Authorization", "Key raise;code=oops")],
    )
    .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.body["status"]["code"], 11102);
    assert!(answer.body["status"]["details"]
        .as_str()
        .unwrap()
        .contains("`code=oops`"));

    let key_text = "code=CONN_THROTTLED;retry_after_ms=1500;id=r";
    assert_eq!(server.count("", &format!("POST {outputs}")), 1);
    assert_eq!(server.count(key_text, &format!("POST {outputs}")), 1);
    server.stop().await;
}

#[tokio::test]
async fn rest_fail_times_counts_per_method_and_path() {
    let server = start().await;
    let key = [("Authorization", "Key raise;code=21354;fail_times=1")];
    let outputs = "/v2/models/m/outputs";
    let codes = [
        request(server.http, "POST", outputs, &key).await.body["status"]["code"].clone(),
        request(server.http, "POST", outputs, &key).await.body["status"]["code"].clone(),
        request(server.http, "GET", outputs, &key).await.body["status"]["code"].clone(),
    ];
    assert_eq!(codes, [21354, 10000, 21354]);
    server.stop().await;
}

#[tokio::test]
async fn the_calls_endpoint_lists_every_counter() {
    let server = start().await;
    code_of(
        &server,
        "PostModelOutputs",
        &[(RAISE, "code=21354;fail_times=2")],
    )
    .await;
    code_of(
        &server,
        "PostModelOutputs",
        &[(RAISE, "code=21354;fail_times=2")],
    )
    .await;
    request(server.http, "GET", "/v2/users/me/apps", &[]).await;
    let answer = request(server.http, "GET", "/v2/_tester/calls", &[]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let want = serde_json::json!({"calls": [
        {"key": "code=21354;fail_times=2", "method": "PostModelOutputs", "count": 2},
        {"key": "", "method": "GET /v2/users/me/apps", "count": 1},
    ]});
    assert_eq!(answer.body, want);
    let calls: Vec<CallCount> = server.tester.calls();
    assert_eq!(calls.len(), 2);

    // Reading the counters is not a call; other `_tester` paths do not exist.
    let answer = request(server.http, "GET", "/v2/_tester/other", &[]).await;
    assert_eq!(
        (answer.status, answer.body["status"]["code"].as_i64()),
        (404, Some(11101))
    );
    assert_eq!(server.tester.calls().len(), 2);
    server.stop().await;
}
