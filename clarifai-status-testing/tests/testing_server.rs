//! The status test server, in-process on 127.0.0.1: the generated tonic client over a real
//! channel, and a raw HTTP/1.1 client over a TCP stream.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use clarifai_status::grpc::ClarifaiStatusExt as _;
use clarifai_status::{pb, Code, StatusCode};
use clarifai_status_testing::pb::status_tester_client::StatusTesterClient;
use clarifai_status_testing::pb::{RaiseRequest, RaiseResponse};
use clarifai_status_testing::{TestServer, MAX_KEYS, MAX_KEY_LEN};
use prost::Message as _;
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tonic_types::StatusExt as _;

use common::raw_http::get;

struct Running {
    grpc: SocketAddr,
    http: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn client(&self) -> StatusTesterClient<Channel> {
        StatusTesterClient::connect(format!("http://{}", self.grpc))
            .await
            .expect("connect to the test server")
    }

    async fn stop(self) {
        self.stop.send(()).expect("server still running");
        let result = tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("server stops within 10s")
            .expect("server task did not panic");
        result.expect("server stops cleanly");
    }
}

async fn start() -> Running {
    let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let bound = TestServer::new().bind(local, Some(local)).unwrap();
    let grpc = bound.grpc_addr();
    let http = bound.http_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(bound.serve_with_shutdown(async {
        stopped.await.ok();
    }));
    Running {
        grpc,
        http,
        stop,
        task,
    }
}

fn status(code: impl Into<Code>) -> pb::Status {
    pb::Status {
        code: code.into().number(),
        ..Default::default()
    }
}

fn raise(status: pb::Status) -> RaiseRequest {
    RaiseRequest {
        status: Some(status),
        ..Default::default()
    }
}

/// Checks the `ErrorInfo` of a Clarifai error and returns its metadata.
fn error_info(
    error: &tonic::Status,
    reason: &str,
    code: i32,
) -> std::collections::HashMap<String, String> {
    let info = error
        .get_details_error_info()
        .expect("an ErrorInfo in the details");
    assert_eq!(info.reason, reason);
    assert_eq!(info.domain, "api.clarifai.com");
    assert_eq!(info.metadata.get("code"), Some(&code.to_string()));
    info.metadata
}

#[tokio::test]
async fn failure_is_a_grpc_error_per_the_wire_contract() {
    let server = start().await;
    let mut client = server.client().await;

    let request = raise(pb::Status {
        req_id: "req-1".into(),
        ..status(StatusCode::ConnKeyInvalid)
    });
    let error = client.raise(request).await.unwrap_err();
    assert_eq!(error.code(), tonic::Code::Unauthenticated);
    assert_eq!(
        error.message(),
        "Invalid API key or Invalid API key/application pair"
    );
    assert_eq!(
        error.metadata().get("clarifai-status-code").unwrap(),
        "11008"
    );
    let metadata = error_info(&error, "CONN_KEY_INVALID", 11008);
    assert_eq!(metadata.get("reqId").map(String::as_str), Some("req-1"));
    assert_eq!(error.clarifai_code(), StatusCode::ConnKeyInvalid);
    assert!(error.get_details_retry_info().is_none());
    assert!(error.metadata().get("grpc-retry-pushback-ms").is_none());

    server.stop().await;
}

#[tokio::test]
async fn failure_message_is_the_status_description() {
    let server = start().await;
    let mut client = server.client().await;

    let request = raise(pb::Status {
        description: "no model `m1`".into(),
        details: "looked in app a1".into(),
        ..status(StatusCode::ModelDoesNotExist)
    });
    let error = client.raise(request).await.unwrap_err();
    assert_eq!(error.code(), tonic::Code::NotFound);
    assert_eq!(error.message(), "no model `m1`");
    let metadata = error_info(&error, "MODEL_DOES_NOT_EXIST", 21200);
    assert_eq!(
        metadata.get("details").map(String::as_str),
        Some("looked in app a1")
    );
    assert_eq!(error.to_clarifai_status().details, "looked in app a1");
}

#[tokio::test]
async fn failure_in_body_is_ok_with_the_status() {
    let server = start().await;
    let mut client = server.client().await;

    let request = RaiseRequest {
        in_body: true,
        ..raise(pb::Status {
            req_id: "req-2".into(),
            ..status(StatusCode::ConnKeyInvalid)
        })
    };
    let response = client.raise(request).await.unwrap();
    assert!(response.metadata().get("clarifai-status-code").is_none());
    let response = response.into_inner();
    let answered = response.status.unwrap();
    assert_eq!(answered.code, 11008);
    assert_eq!(answered.req_id, "req-2");
    assert_eq!(response.attempt, 1);
}

#[tokio::test]
async fn success_and_in_progress_are_ok() {
    let server = start().await;
    let mut client = server.client().await;

    for code in [
        StatusCode::Success,
        StatusCode::ModelTraining,
        StatusCode::JobRunning,
    ] {
        let response = client
            .raise(raise(status(code)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(response.status.unwrap().code, code.number());
    }
}

#[tokio::test]
async fn fail_times_fails_then_succeeds_per_key() {
    let server = start().await;
    let mut client = server.client().await;
    let request = |key: &str, in_body: bool| RaiseRequest {
        fail_times: 2,
        key: key.into(),
        in_body,
        ..raise(status(StatusCode::ConnThrottled))
    };

    let mut seen = Vec::new();
    for _ in 0..4 {
        let response = client
            .raise(request("in-body", true))
            .await
            .unwrap()
            .into_inner();
        seen.push((response.status.unwrap().code, response.attempt));
    }
    assert_eq!(seen, [(11005, 1), (11005, 2), (10000, 3), (10000, 4)]);

    // Another key counts from the start; as gRPC errors, the failures carry no attempt.
    for _ in 0..2 {
        let error = client.raise(request("as-errors", false)).await.unwrap_err();
        assert_eq!(error.clarifai_code(), StatusCode::ConnThrottled);
    }
    let response = client
        .raise(request("as-errors", false))
        .await
        .unwrap()
        .into_inner();
    let success = response.status.unwrap();
    assert_eq!((success.code, response.attempt), (10000, 3));
    assert_eq!(success.description, "Ok");
}

#[tokio::test]
async fn calls_without_a_key_share_one_counter() {
    let server = start().await;
    let mut client = server.client().await;

    let mut attempts = Vec::new();
    for _ in 0..3 {
        let response = client
            .raise(raise(status(StatusCode::Success)))
            .await
            .unwrap();
        attempts.push(response.into_inner().attempt);
    }
    assert_eq!(attempts, [1, 2, 3]);
}

#[tokio::test]
async fn retry_after_is_sent_as_pushback() {
    let server = start().await;
    let mut client = server.client().await;

    let request = RaiseRequest {
        retry_after_ms: 1500,
        ..raise(pb::Status {
            req_id: "req-3".into(),
            description: "slow down".into(),
            ..status(StatusCode::ConnThrottled)
        })
    };
    let error = client.raise(request).await.unwrap_err();
    assert_eq!(error.code(), tonic::Code::ResourceExhausted);
    assert_eq!(error.message(), "slow down");
    let retry = error.get_details_retry_info().expect("a RetryInfo");
    assert_eq!(retry.retry_delay, Some(Duration::from_millis(1500)));
    assert_eq!(
        error.metadata().get("grpc-retry-pushback-ms").unwrap(),
        "1500"
    );
    assert_eq!(
        error.clarifai_retry_delay(),
        Some(Duration::from_millis(1500))
    );
    let metadata = error_info(&error, "CONN_THROTTLED", 11005);
    assert_eq!(metadata.get("reqId").map(String::as_str), Some("req-3"));
}

#[tokio::test]
async fn retry_after_is_ignored_by_ok_answers() {
    let server = start().await;
    let mut client = server.client().await;

    let request = RaiseRequest {
        retry_after_ms: 1500,
        in_body: true,
        ..raise(status(StatusCode::ConnThrottled))
    };
    let response = client.raise(request).await.unwrap();
    assert!(response.metadata().get("grpc-retry-pushback-ms").is_none());
    assert_eq!(response.into_inner().status.unwrap().code, 11005);
}

const SECRETS: [&str; 5] = [
    "SECRET-STACK-FRAME",
    "SECRET-INTERNAL",
    "SECRET-URL",
    "SECRET-OLD-ID",
    "SECRET-TYPE",
];

fn with_private_fields(code: StatusCode) -> pb::Status {
    pb::Status {
        stack_trace: vec![SECRETS[0].into(), "frame 2".into()],
        internal_details: SECRETS[1].into(),
        redirect_info: Some(pb::RedirectInfo {
            url: SECRETS[2].into(),
            old_resource_id: SECRETS[3].into(),
            resource_type: SECRETS[4].into(),
            new_resource_id: "new".into(),
        }),
        req_id: "public-req".into(),
        details: "public details".into(),
        ..status(code)
    }
}

fn assert_no_secret(bytes: &[u8], what: &str) {
    for secret in SECRETS {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} leaked in {what}"
        );
    }
}

/// Every byte a client sees of an error: message, details, and each metadata entry both decoded
/// and as sent (binary values base64-encoded).
fn assert_error_leaks_nothing(error: &tonic::Status) {
    assert_no_secret(error.message().as_bytes(), "message");
    assert_no_secret(error.details(), "details");
    for entry in error.metadata().iter() {
        match entry {
            tonic::metadata::KeyAndValueRef::Ascii(key, value) => {
                assert_no_secret(value.as_bytes(), key.as_str());
            }
            tonic::metadata::KeyAndValueRef::Binary(key, value) => {
                assert_no_secret(&value.to_bytes().unwrap(), key.as_str());
            }
        }
    }
    for (key, value) in error.metadata().clone().into_headers().iter() {
        assert_no_secret(value.as_bytes(), key.as_str());
    }
}

#[tokio::test]
async fn private_fields_never_leave_the_server() {
    let server = start().await;
    let mut client = server.client().await;

    let error = client
        .raise(raise(with_private_fields(StatusCode::ConnKeyInvalid)))
        .await
        .unwrap_err();
    assert_error_leaks_nothing(&error);
    // The public fields do go out.
    assert_eq!(error.to_clarifai_status().req_id, "public-req");

    let error = client
        .raise(RaiseRequest {
            retry_after_ms: 10,
            ..raise(with_private_fields(StatusCode::ConnThrottled))
        })
        .await
        .unwrap_err();
    assert_error_leaks_nothing(&error);

    for (code, in_body) in [
        (StatusCode::ConnKeyInvalid, true),
        (StatusCode::Success, false),
    ] {
        let response = client
            .raise(RaiseRequest {
                in_body,
                ..raise(with_private_fields(code))
            })
            .await
            .unwrap();
        for (key, value) in response.metadata().clone().into_headers().iter() {
            assert_no_secret(value.as_bytes(), key.as_str());
        }
        let response: RaiseResponse = response.into_inner();
        assert_no_secret(&response.encode_to_vec(), "response body");
        let answered = response.status.unwrap();
        assert_eq!(
            (answered.req_id.as_str(), answered.details.as_str()),
            ("public-req", "public details")
        );
        assert!(answered.redirect_info.is_none());
    }
}

#[tokio::test]
async fn unknown_code_round_trips() {
    let server = start().await;
    let mut client = server.client().await;

    let error = client.raise(raise(status(12345))).await.unwrap_err();
    assert_eq!(error.code(), tonic::Code::Unknown);
    assert_eq!(error.message(), "Unknown status code");
    assert_eq!(
        error.metadata().get("clarifai-status-code").unwrap(),
        "12345"
    );
    error_info(&error, "UNKNOWN_CODE", 12345);
    assert_eq!(error.clarifai_code().number(), 12345);
}

#[tokio::test]
async fn malformed_requests_are_invalid_argument() {
    let server = start().await;
    let mut client = server.client().await;

    let error = client.raise(RaiseRequest::default()).await.unwrap_err();
    assert_eq!(error.code(), tonic::Code::InvalidArgument);
    assert_eq!(error.clarifai_code(), StatusCode::ConnBadRequestFormat);
    let metadata = error_info(&error, "CONN_BAD_REQUEST_FORMAT", 11100);
    assert_eq!(
        metadata.get("details").map(String::as_str),
        Some("`status` is required")
    );

    let request = RaiseRequest {
        key: "k".repeat(MAX_KEY_LEN + 1),
        ..raise(status(StatusCode::Success))
    };
    let error = client.raise(request).await.unwrap_err();
    assert_eq!(error.code(), tonic::Code::InvalidArgument);
    let metadata = error_info(&error, "CONN_BAD_REQUEST_FORMAT", 11100);
    assert!(metadata["details"].contains("at most 256"), "{metadata:?}");

    let request = RaiseRequest {
        key: "k".repeat(MAX_KEY_LEN),
        ..raise(status(StatusCode::Success))
    };
    assert_eq!(client.raise(request).await.unwrap().into_inner().attempt, 1);
}

#[tokio::test]
async fn counters_stay_bounded_and_evict_the_oldest_key() {
    let server = start().await;
    let client = server.client().await;
    let call = |key: String| {
        let mut client = client.clone();
        async move {
            let request = RaiseRequest {
                key,
                ..raise(status(StatusCode::Success))
            };
            client.raise(request).await.unwrap().into_inner().attempt
        }
    };

    assert_eq!(call("first".into()).await, 1);
    assert_eq!(call("first".into()).await, 2);
    // Concurrent calls over one HTTP/2 connection, in batches to bound the streams in flight.
    let keys: Vec<String> = (0..MAX_KEYS).map(|i| format!("k{i}")).collect();
    for batch in keys.chunks(500) {
        let calls: Vec<_> = batch
            .iter()
            .map(|k| tokio::spawn(call(k.clone())))
            .collect();
        for call in calls {
            assert_eq!(call.await.unwrap(), 1);
        }
    }
    assert_eq!(call("first".into()).await, 1, "the oldest key was evicted");
    assert_eq!(
        call(keys[MAX_KEYS - 1].clone()).await,
        2,
        "a recent key was kept"
    );
}

#[tokio::test]
async fn other_methods_are_unimplemented() {
    let server = start().await;
    let mut grpc = tonic::client::Grpc::new(
        Channel::from_shared(format!("http://{}", server.grpc))
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    grpc.ready().await.unwrap();
    let path =
        http::uri::PathAndQuery::from_static("/clarifai.status.testing.v1.StatusTester/Nope");
    let error = grpc
        .unary::<RaiseRequest, RaiseResponse, _>(
            tonic::Request::new(RaiseRequest::default()),
            path,
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::Unimplemented);
}

// ---- HTTP ----

#[tokio::test]
async fn http_answers_a_failure_in_rest_shape() {
    let server = start().await;

    let answer = get(server.http, "/v2/raise/11008").await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.header("clarifai-status-code"), Some("11008"));
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.header("retry-after"), None);
    assert_eq!(
        answer.body,
        serde_json::json!({"status": {
            "code": 11008,
            "description": "Invalid API key or Invalid API key/application pair",
        }})
    );

    server.stop().await;
}

#[tokio::test]
async fn http_takes_names_and_unknown_numbers() {
    let server = start().await;

    let answer = get(server.http, "/v2/raise/MODEL_TRAINING").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["status"]["code"], 21101);

    let answer = get(server.http, "/v2/raise/12345").await;
    assert_eq!(answer.status, 500);
    assert_eq!(answer.header("clarifai-status-code"), Some("12345"));
    assert_eq!(answer.body["status"]["code"], 12345);
}

#[tokio::test]
async fn http_failures_carry_retry_after_in_seconds_rounded_up() {
    let server = start().await;

    let answer = get(server.http, "/v2/raise/CONN_THROTTLED?retry_after_ms=1500").await;
    assert_eq!(answer.status, 429);
    assert_eq!(answer.header("retry-after"), Some("2"));

    let answer = get(server.http, "/v2/raise/10000?retry_after_ms=1500").await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("retry-after"),
        None,
        "a success carries no delay"
    );
}

#[tokio::test]
async fn http_rejects_unknown_codes_and_bad_queries_with_400() {
    let server = start().await;

    for (target, rejected) in [
        ("/v2/raise/not-a-code", "not-a-code"),
        ("/v2/raise/99999999999", "99999999999"),
        ("/v2/raise/11008?fail_times=abc", "fail_times"),
        ("/v2/raise/11008?retry_after_ms=-5", "retry_after_ms"),
        ("/v2/raise/11008?colour=red", "colour"),
        ("/v2/raise/11008?key=a&key=b", "key"),
    ] {
        let answer = get(server.http, target).await;
        assert_eq!(answer.status, 400, "{target}");
        assert_eq!(
            answer.header("clarifai-status-code"),
            Some("11100"),
            "{target}"
        );
        let status = &answer.body["status"];
        assert_eq!(status["code"], 11100, "{target}");
        let details = status["details"].as_str().unwrap();
        assert!(details.contains(rejected), "{target}: {details}");
    }

    let long_key = "k".repeat(MAX_KEY_LEN + 1);
    let answer = get(server.http, &format!("/v2/raise/11008?key={long_key}")).await;
    assert_eq!(answer.status, 400);

    let answer = get(server.http, "/nowhere").await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.body["status"]["code"], 11101);
}

#[tokio::test]
async fn http_fail_times_fails_then_succeeds() {
    let server = start().await;

    let target = "/v2/raise/CONN_KEY_INVALID?fail_times=2&key=http%20key";
    let mut seen = Vec::new();
    for _ in 0..3 {
        let answer = get(server.http, target).await;
        seen.push((
            answer.status,
            answer.body["status"]["code"].as_i64().unwrap(),
        ));
    }
    assert_eq!(seen, [(401, 11008), (401, 11008), (200, 10000)]);
}

#[tokio::test]
async fn grpc_and_http_share_counters() {
    let server = start().await;
    let mut client = server.client().await;
    let request = || RaiseRequest {
        fail_times: 2,
        key: "shared".into(),
        in_body: true,
        ..raise(status(StatusCode::ConnKeyInvalid))
    };

    assert_eq!(
        client.raise(request()).await.unwrap().into_inner().attempt,
        1
    );
    let answer = get(server.http, "/v2/raise/11008?fail_times=2&key=shared").await;
    assert_eq!(answer.status, 401);
    let response = client.raise(request()).await.unwrap().into_inner();
    assert_eq!(
        (response.status.unwrap().code, response.attempt),
        (10000, 3)
    );
}

#[tokio::test]
async fn shutdown_closes_both_listeners() {
    let server = start().await;
    let (grpc, http) = (server.grpc, server.http);
    assert_eq!(get(http, "/v2/raise/10000").await.status, 200);
    server.stop().await;
    assert!(tokio::net::TcpStream::connect(grpc).await.is_err());
    assert!(tokio::net::TcpStream::connect(http).await.is_err());
}

/// The handshake and idle timeouts, timed on tokio's paused clock: the server runs in-process,
/// so its timers are the test's, and the clock moves only when everything waits.
#[tokio::test(start_paused = true)]
async fn a_silent_connection_is_closed_at_the_handshake_timeout_and_an_idle_one_at_the_idle_timeout(
) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let mut limits = clarifai_status_testing::Limits::default();
    limits.handshake_timeout = Duration::from_secs(1);
    limits.idle_timeout = Duration::from_secs(5);
    let bound = TestServer::new()
        .limits(limits)
        .bind("127.0.0.1:0".parse().unwrap(), None)
        .unwrap();
    let addr = bound.grpc_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(bound.serve_with_shutdown(async {
        stopped.await.ok();
    }));

    // Silent: closed at the handshake timeout, not the idle one.
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let start = tokio::time::Instant::now();
    let mut buf = [0u8; 256];
    while silent.read(&mut buf).await.unwrap() > 0 {}
    let closed = start.elapsed();
    assert!(
        (Duration::from_secs(1)..Duration::from_millis(1100)).contains(&closed),
        "closed after {closed:?} of virtual time"
    );

    // One byte, then silence: idle from then on, closed at the idle timeout.
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"P").await.unwrap();
    let start = tokio::time::Instant::now();
    while idle.read(&mut buf).await.unwrap() > 0 {}
    let closed = start.elapsed();
    assert!(
        (Duration::from_secs(5)..Duration::from_millis(5100)).contains(&closed),
        "closed after {closed:?} of virtual time"
    );

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
