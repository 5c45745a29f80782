//! Telemetry over a real tonic server and client on 127.0.0.1: the metrics read back through
//! OpenTelemetry's SDK and its in-memory exporter, for in-body and gRPC-error failures, retries,
//! budget exhaustion, pushback, unknown numbers and unknown methods.
#![cfg(all(feature = "server", feature = "retry", feature = "telemetry"))]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clarifai_status::pb::Status;
use clarifai_status::retry::{Backoff, Budget, Policy, RetryLayer};
use clarifai_status::server::status::StatusLayer;
use clarifai_status::telemetry::Telemetry;
use clarifai_status::{Code, StatusCode};
use clarifai_status_testing::pb::status_tester_client::StatusTesterClient;
use clarifai_status_testing::pb::status_tester_server::{StatusTester, StatusTesterServer};
use clarifai_status_testing::pb::{RaiseRequest, RaiseResponse};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use tokio::net::TcpListener;
use tonic::transport::{Channel, Server};

/// Answers `Raise` with the status asked for: in-body (key "inbody"), as a gRPC error (any
/// other key), busy in-body for the first two calls of key "flaky", or a gRPC error telling
/// the client not to retry (key "stop").
#[derive(Default)]
struct Handler {
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
fn metrics() -> (SdkMeterProvider, InMemoryMetricExporter) {
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter.clone()).build())
        .build();
    (provider, exporter)
}

/// Every data point: (instrument, its attributes) → (count or sum, sum of a histogram).
type Points = BTreeMap<(String, BTreeMap<String, String>), (u64, f64)>;

fn collect(provider: &SdkMeterProvider, exporter: &InMemoryMetricExporter) -> Points {
    provider.force_flush().unwrap();
    let mut points = Points::new();
    let attrs = |it: &mut dyn Iterator<Item = &opentelemetry::KeyValue>| {
        it.map(|kv| (kv.key.to_string(), kv.value.to_string()))
            .collect::<BTreeMap<_, _>>()
    };
    for resource in exporter.get_finished_metrics().unwrap() {
        for scope in resource.scope_metrics() {
            for metric in scope.metrics() {
                let name = metric.name().to_owned();
                match metric.data() {
                    AggregatedMetrics::F64(MetricData::Histogram(h)) => {
                        for p in h.data_points() {
                            points.insert(
                                (name.clone(), attrs(&mut p.attributes())),
                                (p.count(), p.sum()),
                            );
                        }
                    }
                    AggregatedMetrics::U64(MetricData::Histogram(h)) => {
                        for p in h.data_points() {
                            points.insert(
                                (name.clone(), attrs(&mut p.attributes())),
                                (p.count(), p.sum() as f64),
                            );
                        }
                    }
                    AggregatedMetrics::U64(MetricData::Sum(s)) => {
                        for p in s.data_points() {
                            points.insert(
                                (name.clone(), attrs(&mut p.attributes())),
                                (p.value(), 0.0),
                            );
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    exporter.reset();
    points
}

fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The count (or counter value) of one data point; 0 when absent.
fn count(points: &Points, name: &str, pairs: &[(&str, &str)]) -> u64 {
    points
        .get(&(name.to_owned(), attrs(pairs)))
        .map_or(0, |p| p.0)
}

async fn serve(telemetry: Telemetry) -> std::net::SocketAddr {
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

async fn channel(addr: std::net::SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn raise(key: &str, code: i32) -> RaiseRequest {
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

const RAISE: &str = "clarifai.status.testing.v1.StatusTester/Raise";

#[tokio::test]
async fn the_server_records_in_body_and_grpc_error_failures_unknown_numbers_and_unknown_methods() {
    let (provider, exporter) = metrics();
    let addr = serve(Telemetry::new(&provider.meter("server"))).await;
    let mut client = StatusTesterClient::new(channel(addr).await);
    let method = client_method(&mut client).await;
    client
        .raise(raise("inbody", StatusCode::ModelBusyPleaseRetry as i32))
        .await
        .unwrap();
    client
        .raise(raise("error", StatusCode::ConnKeyInvalid as i32))
        .await
        .unwrap_err();
    for n in [77777, 88888, 123456] {
        client.raise(raise("error", n)).await.unwrap_err();
        client.raise(raise("inbody", n)).await.unwrap();
    }
    // A path the service does not have, from a raw client: tonic's UNIMPLEMENTED.
    for path in ["/no.Such/Method", "/no.Such/Other"] {
        let mut grpc = tonic::client::Grpc::new(channel(addr).await);
        grpc.ready().await.unwrap();
        let codec = tonic_prost::ProstCodec::<RaiseRequest, RaiseResponse>::default();
        let error = grpc
            .unary(
                tonic::Request::new(raise("x", 10000)),
                path.parse().unwrap(),
                codec,
            )
            .await
            .unwrap_err();
        assert_eq!(error.code(), tonic::Code::Unimplemented);
    }
    let points = collect(&provider, &exporter);
    let d = "rpc.server.call.duration";
    let base = [("rpc.system.name", "grpc"), ("rpc.method", method.as_str())];
    let with = |status: &str, code: &str, name: &str| {
        let mut v = base.to_vec();
        v.extend([
            ("rpc.response.status_code", status),
            ("clarifai.status.code", code),
            ("clarifai.status.name", name),
        ]);
        count(
            &points,
            d,
            &v.iter().map(|(a, b)| (*a, *b)).collect::<Vec<_>>(),
        )
    };
    let _ = with;
    let busy = [
        base[0],
        base[1],
        ("rpc.response.status_code", "OK"),
        ("clarifai.status.code", "21354"),
        ("clarifai.status.name", "MODEL_BUSY_PLEASE_RETRY"),
    ];
    assert_eq!(count(&points, d, &busy), 1, "{points:#?}");
    let key = [
        base[0],
        base[1],
        ("rpc.response.status_code", "UNAUTHENTICATED"),
        ("clarifai.status.code", "11008"),
        ("clarifai.status.name", "CONN_KEY_INVALID"),
    ];
    assert_eq!(count(&points, d, &key), 1);
    // Three different unknown numbers: one bucket each way, never a value per number.
    let unknown_error = [
        base[0],
        base[1],
        ("rpc.response.status_code", "UNKNOWN"),
        ("clarifai.status.code", "-1"),
        ("clarifai.status.name", "UNKNOWN_CODE"),
    ];
    assert_eq!(count(&points, d, &unknown_error), 3);
    let unknown_in_body = [
        base[0],
        base[1],
        ("rpc.response.status_code", "OK"),
        ("clarifai.status.code", "-1"),
        ("clarifai.status.name", "UNKNOWN_CODE"),
    ];
    assert_eq!(count(&points, d, &unknown_in_body), 3);
    // The unknown paths: `_OTHER`, with tonic's UNIMPLEMENTED stamped by StatusLayer.
    let other = points
        .keys()
        .filter(|(name, a)| name == d && a["rpc.method"] == "_OTHER")
        .map(|(_, a)| a.clone())
        .collect::<Vec<_>>();
    assert_eq!(other.len(), 1, "{other:?}");
    assert_eq!(other[0]["rpc.response.status_code"], "UNIMPLEMENTED");
    assert_eq!(
        count(
            &points,
            d,
            &other[0]
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect::<Vec<_>>()
        ),
        2
    );
    // No label value outside the bounded sets.
    for (name, a) in points.keys() {
        assert!(
            !a.values()
                .any(|v| ["77777", "88888", "123456", "no.Such/Method"].contains(&v.as_str())),
            "{name} {a:?}"
        );
    }
}

/// The first call, a success, and the method value it is recorded under.
async fn client_method(client: &mut StatusTesterClient<Channel>) -> String {
    client
        .raise(raise("inbody", StatusCode::Success as i32))
        .await
        .unwrap();
    RAISE.to_owned()
}

fn fast(policy: Policy) -> Policy {
    policy.backoff(Backoff::new(
        Duration::from_millis(1),
        Duration::from_millis(2),
    ))
}

#[tokio::test]
async fn the_client_records_calls_attempts_retries_and_delays() {
    let (provider, exporter) = metrics();
    let addr = serve(Telemetry::new(&provider.meter("server"))).await;
    let telemetry = Telemetry::new(&provider.meter("client"));
    let channel = tower::ServiceBuilder::new()
        .layer(RetryLayer::new(
            fast(Policy::new().no_budget()).telemetry(telemetry),
        ))
        .service(channel(addr).await);
    let mut client = StatusTesterClient::new(channel);
    // Busy in-body twice, then answered: three attempts, two retries.
    let response = client.raise(raise("flaky", 0)).await.unwrap();
    assert_eq!(response.get_ref().status.as_ref().unwrap().code, 10000);
    // Not retryable, as a gRPC error.
    client
        .raise(raise("error", StatusCode::ConnKeyInvalid as i32))
        .await
        .unwrap_err();
    let points = collect(&provider, &exporter);
    let m = ("grpc.method", RAISE);
    assert_eq!(
        count(&points, "grpc.client.attempt.started", &[m]),
        4,
        "{points:#?}"
    );
    let busy = [
        m,
        ("grpc.status", "OK"),
        ("clarifai.status.code", "21354"),
        ("clarifai.status.name", "MODEL_BUSY_PLEASE_RETRY"),
    ];
    assert_eq!(count(&points, "grpc.client.attempt.duration", &busy), 2);
    let ok = [
        m,
        ("grpc.status", "OK"),
        ("clarifai.status.code", "10000"),
        ("clarifai.status.name", "SUCCESS"),
    ];
    assert_eq!(count(&points, "grpc.client.attempt.duration", &ok), 1);
    let retries = points
        .get(&("grpc.client.call.retries".to_owned(), attrs(&ok)))
        .unwrap();
    assert_eq!((retries.0, retries.1), (1, 2.0));
    let delay = points
        .get(&("grpc.client.call.retry_delay".to_owned(), attrs(&ok)))
        .unwrap();
    assert_eq!(delay.0, 1);
    assert!(delay.1 > 0.0);
    let call = [
        ("rpc.system.name", "grpc"),
        ("rpc.method", RAISE),
        ("rpc.response.status_code", "OK"),
        ("clarifai.status.code", "10000"),
        ("clarifai.status.name", "SUCCESS"),
    ];
    assert_eq!(count(&points, "rpc.client.call.duration", &call), 1);
    let denied = [
        ("rpc.system.name", "grpc"),
        ("rpc.method", RAISE),
        ("rpc.response.status_code", "UNAUTHENTICATED"),
        ("clarifai.status.code", "11008"),
        ("clarifai.status.name", "CONN_KEY_INVALID"),
    ];
    assert_eq!(count(&points, "rpc.client.call.duration", &denied), 1);
    // The call that did not retry records no retries (gRFC A96).
    let denied_attempt = [
        m,
        ("grpc.status", "UNAUTHENTICATED"),
        ("clarifai.status.code", "11008"),
        ("clarifai.status.name", "CONN_KEY_INVALID"),
    ];
    assert_eq!(
        count(&points, "grpc.client.call.retries", &denied_attempt),
        0
    );
    assert_eq!(
        count(&points, "grpc.client.attempt.duration", &denied_attempt),
        1
    );
}

#[tokio::test]
async fn budget_exhaustion_and_pushback_are_counted() {
    let (provider, exporter) = metrics();
    let addr = serve(Telemetry::new(&provider.meter("server"))).await;
    let telemetry = Telemetry::new(&provider.meter("client"));
    // A bucket at its threshold after one failure: the first retry is refused.
    let budget = Arc::new(Budget::new(2, 0.1).unwrap());
    let policy = fast(Policy::new().budget(budget)).telemetry(telemetry.clone());
    let channel = tower::ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .service(channel(addr).await);
    let mut client = StatusTesterClient::new(channel);
    let busy = client
        .raise(raise("inbody", StatusCode::ModelBusyPleaseRetry as i32))
        .await
        .unwrap();
    assert_eq!(busy.get_ref().status.as_ref().unwrap().code, 21354);
    // Pushback -1: not retried, whatever the budget.
    let policy = fast(Policy::new().no_budget()).telemetry(telemetry);
    let channel = tower::ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .service(self::channel(addr).await);
    let mut client = StatusTesterClient::new(channel);
    let error = client
        .raise(raise("stop", StatusCode::ConnThrottled as i32))
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::ResourceExhausted);
    let points = collect(&provider, &exporter);
    let s = "clarifai.client.retry.stopped";
    let m = ("grpc.method", RAISE);
    assert_eq!(
        count(
            &points,
            s,
            &[
                m,
                ("clarifai.retry.stop_reason", "budget"),
                ("clarifai.status.code", "21354"),
                ("clarifai.status.name", "MODEL_BUSY_PLEASE_RETRY")
            ]
        ),
        1,
        "{points:#?}"
    );
    assert_eq!(
        count(
            &points,
            s,
            &[
                m,
                ("clarifai.retry.stop_reason", "pushback"),
                ("clarifai.status.code", "11005"),
                ("clarifai.status.name", "CONN_THROTTLED")
            ]
        ),
        1
    );
    assert_eq!(count(&points, "grpc.client.attempt.started", &[m]), 2);
}

#[tokio::test]
async fn retry_call_records_the_decoded_status() {
    let (provider, exporter) = metrics();
    let addr = serve(Telemetry::new(&provider.meter("server"))).await;
    let telemetry = Telemetry::new(&provider.meter("client"));
    // `call` over a channel with `RetryLayer` too, each attempt marked `SendOnce`: only `call`
    // records.
    let policy = fast(Policy::new().no_budget()).telemetry(telemetry);
    let channel = tower::ServiceBuilder::new()
        .layer(RetryLayer::new(policy.clone()))
        .service(channel(addr).await);
    let client = StatusTesterClient::new(channel);
    let response = clarifai_status::retry::call_method(&policy, &format!("/{RAISE}"), || {
        let mut client = client.clone();
        let request = clarifai_status::retry::SendOnce::request(raise("flaky", 0));
        async move { client.raise(request).await }
    })
    .await
    .unwrap();
    assert_eq!(response.get_ref().status.as_ref().unwrap().code, 10000);
    let points = collect(&provider, &exporter);
    let m = ("grpc.method", RAISE);
    assert_eq!(
        count(&points, "grpc.client.attempt.started", &[m]),
        3,
        "{points:#?}"
    );
    let ok = [
        ("rpc.system.name", "grpc"),
        ("rpc.method", RAISE),
        ("rpc.response.status_code", "OK"),
        ("clarifai.status.code", "10000"),
        ("clarifai.status.name", "SUCCESS"),
    ];
    assert_eq!(count(&points, "rpc.client.call.duration", &ok), 1);
    let ok_a = [
        m,
        ("grpc.status", "OK"),
        ("clarifai.status.code", "10000"),
        ("clarifai.status.name", "SUCCESS"),
    ];
    assert_eq!(
        points
            .get(&("grpc.client.call.retries".to_owned(), attrs(&ok_a)))
            .unwrap()
            .1,
        2.0
    );
}
