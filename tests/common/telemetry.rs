//! What the telemetry tests share: a `StatusTester` answering as each test asks, a server behind
//! `StatusLayer::telemetry` on 127.0.0.1, a client channel, and a meter provider reading into
//! OpenTelemetry's in-memory exporter.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use clarifai_status::pb::Status;
use clarifai_status::retry::{Backoff, Policy};
use clarifai_status::server::status::StatusLayer;
use clarifai_status::telemetry::Telemetry;
use clarifai_status::{Code, StatusCode};
use clarifai_status_testing::pb::status_tester_server::{StatusTester, StatusTesterServer};
use clarifai_status_testing::pb::{RaiseRequest, RaiseResponse};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use tokio::net::TcpListener;
use tonic::transport::{Channel, Server};

/// Answers `Raise` with the status asked for: in-body (key "inbody"), as a gRPC error (any
/// other key), busy in-body for the first two calls of key "flaky", or a gRPC error telling
/// the client not to retry (key "stop").
#[derive(Default)]
pub(crate) struct Handler {
    flaky: AtomicUsize,
}

#[tonic::async_trait]
impl StatusTester for Handler {
    async fn raise(
        &self,
        request: tonic::Request<RaiseRequest>,
    ) -> Result<tonic::Response<RaiseResponse>, tonic::Status> {
        let request = request.into_inner();
        let mut status = request.status.unwrap_or_default();
        let reply = |status: Status| {
            Ok(tonic::Response::new(RaiseResponse {
                status: Some(status),
                attempt: 1,
            }))
        };
        match request.key.as_str() {
            "flaky" => {
                let n = self.flaky.fetch_add(1, Ordering::SeqCst);
                status.code = if n < 2 {
                    StatusCode::ModelBusyPleaseRetry as i32
                } else {
                    StatusCode::Success as i32
                };
                reply(status)
            }
            "inbody" => reply(status),
            "stop" => {
                let mut error = tonic::Status::from(&status);
                error
                    .metadata_mut()
                    .insert("grpc-retry-pushback-ms", "-1".parse().unwrap());
                Err(error)
            }
            _ if Code::new(status.code).is_failure() => Err(tonic::Status::from(&status)),
            _ => reply(status),
        }
    }
}

/// A meter provider reading into an in-memory exporter.
pub(crate) fn metrics() -> (SdkMeterProvider, InMemoryMetricExporter) {
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter.clone()).build())
        .build();
    (provider, exporter)
}

pub(crate) fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(crate) async fn serve(telemetry: Telemetry) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        Server::builder()
            .layer(StatusLayer::new().telemetry(telemetry))
            .add_service(StatusTesterServer::new(Handler::default()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    addr
}

pub(crate) async fn channel(addr: std::net::SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

pub(crate) fn raise(key: &str, code: i32) -> RaiseRequest {
    RaiseRequest {
        key: key.into(),
        status: Some(Status {
            code,
            req_id: "req-9".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(crate) fn fast(policy: Policy) -> Policy {
    policy.backoff(Backoff::new(
        Duration::from_millis(1),
        Duration::from_millis(2),
    ))
}

/// Waits (yielding to the server's tasks) until `done` holds; a bounded number of turns, no
/// timing.
pub(crate) async fn settle(mut done: impl FnMut() -> bool) {
    // A hang guard, not a measure: what the server records when its body ends may come after the
    // client has its answer; on a loaded machine that can take a while, so wait up to 60 s.
    for _ in 0..60_000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(done(), "what was recorded never came");
}
