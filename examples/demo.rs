//! The crate end to end, on loopback: the table, a layered and authenticated gRPC server, the
//! errors a client sees, in-body failures, retries with a budget, and the HTTP side.
//!
//! ```sh
//! cargo run --all-features --example demo
//! ```
//!
//! Everything runs in this process on 127.0.0.1 with ports picked by the system, and finishes in
//! a few seconds.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use clarifai_status::grpc::ClarifaiStatusExt;
use clarifai_status::pb::Status;
use clarifai_status::response::into_result;
use clarifai_status::retry::{self, Backoff, Policy, RetryLayer};
use clarifai_status::server::{status::StatusLayer, ApiKeyAuth, StaticKeys};
use clarifai_status::{Code, StatusCode};
use clarifai_status_testing::pb::status_tester_client::StatusTesterClient;
use clarifai_status_testing::pb::status_tester_server::StatusTesterServer;
use clarifai_status_testing::pb::{RaiseRequest, RaiseResponse};
use clarifai_status_testing::{TestServer, Tester};
use tonic::transport::Channel;
use tower::ServiceBuilder;

type Error = Box<dyn std::error::Error + Send + Sync>;

const API_KEY: &str = "demo-key";

fn heading(title: &str) {
    println!("\n== {title}");
}

/// One line per answer: what an operator wants to see.
fn show(label: &str, answer: &Result<tonic::Response<RaiseResponse>, tonic::Status>) {
    match answer {
        Ok(response) => {
            let response = response.get_ref();
            let code = Code::new(response.status.as_ref().map_or(0, |s| s.code));
            println!(
                "  {label:<46} gRPC {:<18} {} {} ({}), attempt {}",
                "OK",
                code.number(),
                code.name(),
                code.outcome(),
                response.attempt
            );
        }
        Err(error) => {
            let code = error.clarifai_code();
            println!(
                "  {label:<46} gRPC {:<18} {} {}{}: {:?}",
                clarifai_status::mapping::grpc_code_name(error.code()),
                code.number(),
                code.name(),
                if code.is_retryable() {
                    " (retryable)"
                } else {
                    ""
                },
                error.message()
            );
        }
    }
}

fn raise(code: impl Into<Code>) -> RaiseRequest {
    RaiseRequest {
        status: Some(Status {
            code: code.into().number(),
            req_id: "req-demo".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn with_key(request: RaiseRequest, key: Option<&str>) -> tonic::Request<RaiseRequest> {
    let mut request = tonic::Request::new(request);
    if let Some(key) = key {
        if let Ok(value) = format!("Key {key}").parse() {
            request.metadata_mut().insert("authorization", value);
        }
    }
    request
}

/// A gRPC server like a real service's: API-key auth in front, the status layer around it.
async fn start_service() -> Result<SocketAddr, Error> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let auth = ApiKeyAuth::new(StaticKeys::new([API_KEY]));
    tokio::spawn(
        tonic::transport::Server::builder()
            .layer(StatusLayer::new())
            .add_service(StatusTesterServer::with_interceptor(Tester::new(), auth))
            .serve_with_incoming(incoming),
    );
    Ok(addr)
}

async fn connect(addr: SocketAddr) -> Result<Channel, Error> {
    Ok(Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?)
}

fn http_get(addr: SocketAddr, path: &str) -> Result<String, Error> {
    let mut stream = TcpStream::connect(addr)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    Ok(text)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    heading("The table: every fact of every code, from the proto");
    for code in [
        StatusCode::ConnKeyInvalid,
        StatusCode::ModelBusyPleaseRetry,
        StatusCode::ModelTraining,
    ] {
        println!(
            "  {:>5} {:<26} {:<12} retryable={:<5} gRPC {:<16} HTTP {}  {:?}",
            code.number(),
            code.name(),
            code.outcome(),
            code.is_retryable(),
            clarifai_status::mapping::grpc_code_name(code.grpc_code()),
            code.http_status().as_u16(),
            code.description()
        );
    }

    let service = start_service().await?;
    heading(&format!(
        "A service on {service}: ApiKeyAuth in front, StatusLayer around"
    ));
    let mut client = StatusTesterClient::new(connect(service).await?);
    show(
        "no API key",
        &client
            .raise(with_key(raise(StatusCode::Success), None))
            .await,
    );
    show(
        "unknown API key",
        &client
            .raise(with_key(raise(StatusCode::Success), Some("guess")))
            .await,
    );
    show(
        "valid key, success",
        &client
            .raise(with_key(raise(StatusCode::Success), Some(API_KEY)))
            .await,
    );
    show(
        "valid key, model does not exist",
        &client
            .raise(with_key(
                raise(StatusCode::ModelDoesNotExist),
                Some(API_KEY),
            ))
            .await,
    );
    show(
        "valid key, a number the table does not know",
        &client
            .raise(with_key(raise(Code::new(77777)), Some(API_KEY)))
            .await,
    );

    // The status test server, as `clarifai-status serve` runs it.
    let bound = TestServer::new().bind("127.0.0.1:0".parse()?, Some("127.0.0.1:0".parse()?))?;
    let (grpc, http) = (
        bound.grpc_addr(),
        bound.http_addr().ok_or("no http address")?,
    );
    tokio::spawn(bound.serve_with_shutdown(std::future::pending()));
    let mut tester = StatusTesterClient::new(connect(grpc).await?);

    heading(&format!(
        "Clarifai-style answers from the status test server on {grpc}: failures in OK responses"
    ));
    let in_body = RaiseRequest {
        in_body: true,
        ..raise(StatusCode::ConnThrottled)
    };
    let answer = tester.raise(in_body).await;
    show("in_body: gRPC OK, failure inside", &answer);
    let as_error =
        answer.and_then(|response| into_result(response.into_inner()).map(tonic::Response::new));
    show("... through response::into_result", &as_error);

    heading(
        "Retries: one policy, exponential backoff with full jitter, a shared token-bucket budget",
    );
    let policy = Policy::new()
        .max_attempts(4)
        .backoff(Backoff::new(
            Duration::from_millis(20),
            Duration::from_millis(200),
        ))
        .deadline(Duration::from_secs(5));
    let channel = ServiceBuilder::new()
        .layer(RetryLayer::new(policy.clone()))
        .service(connect(grpc).await?);
    let mut retrying = StatusTesterClient::new(channel);

    let busy = RaiseRequest {
        fail_times: 2,
        key: "busy".into(),
        ..raise(StatusCode::ModelBusyPleaseRetry)
    };
    show(
        "RetryLayer: MODEL_BUSY twice, then OK",
        &retrying.raise(busy).await,
    );
    let bad_key = RaiseRequest {
        fail_times: 2,
        key: "bad-key".into(),
        ..raise(StatusCode::ConnKeyInvalid)
    };
    show(
        "RetryLayer: CONN_KEY_INVALID is not retried",
        &retrying.raise(bad_key).await,
    );

    let started = Instant::now();
    let pushback = RaiseRequest {
        fail_times: 1,
        key: "pushback".into(),
        retry_after_ms: 300,
        ..raise(StatusCode::ConnThrottled)
    };
    let answer = retrying.raise(pushback).await;
    show("RetryLayer: throttled with 300 ms pushback", &answer);
    println!(
        "  {:<46} waited {} ms for the pushback",
        "",
        started.elapsed().as_millis()
    );

    let busy_in_body = RaiseRequest {
        in_body: true,
        fail_times: 2,
        key: "busy-in-body".into(),
        ..raise(StatusCode::ModelBusyPleaseRetry)
    };
    show(
        "RetryLayer: in-body MODEL_BUSY twice, then OK",
        &retrying.raise(busy_in_body).await,
    );

    let in_body = RaiseRequest {
        in_body: true,
        fail_times: 2,
        key: "in-body".into(),
        ..raise(StatusCode::RunnerNeedsRetry)
    };
    let answer = retry::call(&policy, || {
        let (mut client, request) = (tester.clone(), in_body.clone());
        async move { client.raise(request).await }
    })
    .await;
    show("retry::call: in-body RUNNER_NEEDS_RETRY twice", &answer);

    heading(&format!("HTTP on {http}: GET /v2/raise/{{code}}"));
    for path in [
        "/v2/raise/11008",
        "/v2/raise/CONN_THROTTLED?retry_after_ms=1500",
        "/v2/raise/10000",
    ] {
        let response = tokio::task::spawn_blocking(move || http_get(http, path)).await??;
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let status_line = head.lines().next().unwrap_or_default();
        let interesting: Vec<&str> = head
            .lines()
            .filter(|l| {
                let l = l.to_ascii_lowercase();
                l.starts_with("clarifai-status-code") || l.starts_with("retry-after")
            })
            .collect();
        println!(
            "  GET {path}\n    {status_line}  [{}]\n    {}",
            interesting.join(", "),
            body.trim()
        );
    }

    println!("\ndone: every call above crossed a real socket on 127.0.0.1");
    Ok(())
}
