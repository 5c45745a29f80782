//! Telemetry over a real tonic server and client on 127.0.0.1: the metrics read back through
//! OpenTelemetry's SDK and its in-memory exporter, for in-body and gRPC-error failures, retries,
//! budget exhaustion, pushback, unknown numbers and unknown methods.
#![cfg(all(feature = "server", feature = "retry", feature = "telemetry"))]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clarifai_status::pb::{BaseResponse, Status};
use clarifai_status::retry::{Backoff, Budget, Policy, RetryLayer};
use clarifai_status::server::error_to_in_body::ErrorToInBodyLayer;
use clarifai_status::server::status::StatusLayer;
use clarifai_status::telemetry::{ClarifaiFailure, ClarifaiFailures, Telemetry};
use clarifai_status::{Code, StatusCode};
use clarifai_status_testing::pb::status_tester_client::StatusTesterClient;
use clarifai_status_testing::pb::status_tester_server::{StatusTester, StatusTesterServer};
use clarifai_status_testing::pb::{RaiseRequest, RaiseResponse};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, SdkMeterProvider};
use tokio::net::TcpListener;
use tonic::transport::{Channel, Server};

mod common;
use common::telemetry::{attrs, channel, fast, metrics, raise, serve, settle, Handler};

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

/// An outcome's `rpc.*` attribute set: the method, the gRPC status name, the Clarifai code and
/// name.
fn rpc<'a>(
    method: &'a str,
    status: &'a str,
    code: &'a str,
    name: &'a str,
) -> [(&'a str, &'a str); 5] {
    [
        ("rpc.system.name", "grpc"),
        ("rpc.method", method),
        ("rpc.response.status_code", status),
        ("clarifai.status.code", code),
        ("clarifai.status.name", name),
    ]
}

/// An outcome's `grpc.*` attribute set, as [`rpc`].
fn grpc<'a>(
    method: &'a str,
    status: &'a str,
    code: &'a str,
    name: &'a str,
) -> [(&'a str, &'a str); 4] {
    [
        ("grpc.method", method),
        ("grpc.status", status),
        ("clarifai.status.code", code),
        ("clarifai.status.name", name),
    ]
}

/// The count (or counter value) of one data point; 0 when absent.
fn count(points: &Points, name: &str, pairs: &[(&str, &str)]) -> u64 {
    points
        .get(&(name.to_owned(), attrs(pairs)))
        .map_or(0, |p| p.0)
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
    let busy = rpc(&method, "OK", "21354", "MODEL_BUSY_PLEASE_RETRY");
    assert_eq!(count(&points, d, &busy), 1, "{points:#?}");
    let key = rpc(&method, "UNAUTHENTICATED", "11008", "CONN_KEY_INVALID");
    assert_eq!(count(&points, d, &key), 1);
    // Three different unknown numbers: one bucket each way, never a value per number.
    let unknown_error = rpc(&method, "UNKNOWN", "-1", "UNKNOWN_CODE");
    assert_eq!(count(&points, d, &unknown_error), 3);
    let unknown_in_body = rpc(&method, "OK", "-1", "UNKNOWN_CODE");
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

#[tokio::test]
async fn the_client_records_calls_attempts_retries_and_delays() {
    let (provider, exporter) = metrics();
    let mut client = pair(&provider).await;
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
    let busy = grpc(RAISE, "OK", "21354", "MODEL_BUSY_PLEASE_RETRY");
    assert_eq!(count(&points, "grpc.client.attempt.duration", &busy), 2);
    let ok = grpc(RAISE, "OK", "10000", "SUCCESS");
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
    let call = rpc(RAISE, "OK", "10000", "SUCCESS");
    assert_eq!(count(&points, "rpc.client.call.duration", &call), 1);
    let denied = rpc(RAISE, "UNAUTHENTICATED", "11008", "CONN_KEY_INVALID");
    assert_eq!(count(&points, "rpc.client.call.duration", &denied), 1);
    // The call that did not retry records no retries (gRFC A96).
    let denied_attempt = grpc(RAISE, "UNAUTHENTICATED", "11008", "CONN_KEY_INVALID");
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
    let ok = rpc(RAISE, "OK", "10000", "SUCCESS");
    assert_eq!(count(&points, "rpc.client.call.duration", &ok), 1);
    let ok_a = grpc(RAISE, "OK", "10000", "SUCCESS");
    assert_eq!(
        points
            .get(&("grpc.client.call.retries".to_owned(), attrs(&ok_a)))
            .unwrap()
            .1,
        2.0
    );
}

/// A server-streaming method, written against tonic's server API. The request's `description`
/// chooses: "inbody" sends the request's status as the first message, then a SUCCESS one, and
/// ends OK; anything else sends two SUCCESS messages, then fails with the request's status as a
/// gRPC error in the trailers.
#[derive(Debug, Clone, Default)]
struct Streamer;

impl tonic::server::NamedService for Streamer {
    const NAME: &'static str = "test.Streamer";
}

type MessageStream =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<BaseResponse, tonic::Status>> + Send>>;

struct StreamMethod;

impl tonic::server::ServerStreamingService<Status> for StreamMethod {
    type Response = BaseResponse;
    type ResponseStream = MessageStream;
    type Future = tonic::codegen::BoxFuture<tonic::Response<MessageStream>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<Status>) -> Self::Future {
        let status = request.into_inner();
        let success = || BaseResponse {
            status: Some(Status {
                code: StatusCode::Success as i32,
                ..Default::default()
            }),
        };
        let items = if status.description == "inbody" {
            vec![
                Ok(BaseResponse {
                    status: Some(status),
                }),
                Ok(success()),
            ]
        } else {
            vec![
                Ok(success()),
                Ok(success()),
                Err(tonic::Status::from(&status)),
            ]
        };
        let items: MessageStream = Box::pin(tokio_stream::iter(items));
        Box::pin(async move { Ok(tonic::Response::new(items)) })
    }
}

impl<B> tower::Service<http::Request<B>> for Streamer
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = tonic::codegen::BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
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

/// Every message of a `test.Streamer/Stream` call, and how it ended.
async fn stream(
    channel: Channel,
    status: Status,
) -> (Vec<BaseResponse>, Result<(), tonic::Status>) {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static("/test.Streamer/Stream");
    let codec = tonic_prost::ProstCodec::<Status, BaseResponse>::default();
    let mut stream = grpc
        .server_streaming(tonic::Request::new(status), path, codec)
        .await
        .unwrap()
        .into_inner();
    let mut messages = Vec::new();
    loop {
        match stream.message().await {
            Ok(Some(message)) => messages.push(message),
            Ok(None) => return (messages, Ok(())),
            Err(status) => return (messages, Err(status)),
        }
    }
}

#[tokio::test]
async fn the_server_records_streams_failing_in_body_first_and_in_trailers_after_messages() {
    let (provider, exporter) = metrics();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        Server::builder()
            .layer(StatusLayer::new().telemetry(Telemetry::new(&provider.meter("server"))))
            .add_service(Streamer)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    // In-body failure in the first message, the stream then ends OK.
    let busy = Status {
        code: StatusCode::ModelBusyPleaseRetry as i32,
        description: "inbody".into(),
        ..Default::default()
    };
    let (messages, end) = stream(channel(addr).await, busy).await;
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].status.as_ref().unwrap().code, 21354);
    end.unwrap();
    // A gRPC error in the trailers after two messages.
    let throttled = Status {
        code: StatusCode::ConnThrottled as i32,
        description: "trailers".into(),
        ..Default::default()
    };
    let (messages, end) = stream(channel(addr).await, throttled).await;
    assert_eq!(messages.len(), 2);
    assert_eq!(end.unwrap_err().code(), tonic::Code::ResourceExhausted);

    let d = "rpc.server.call.duration";
    let method = "test.Streamer/Stream";
    let in_body = rpc(method, "OK", "21354", "MODEL_BUSY_PLEASE_RETRY");
    let in_trailers = rpc(method, "RESOURCE_EXHAUSTED", "11005", "CONN_THROTTLED");
    let mut points = Points::new();
    settle(|| {
        points.extend(collect(&provider, &exporter));
        count(&points, d, &in_body) + count(&points, d, &in_trailers) >= 2
    })
    .await;
    assert_eq!(count(&points, d, &in_body), 1, "{points:#?}");
    assert_eq!(count(&points, d, &in_trailers), 1, "{points:#?}");
    // Nothing else: the stream's SUCCESS messages after the first are not read.
    let calls: u64 = points
        .iter()
        .filter(|((name, _), _)| name == d)
        .map(|(_, p)| p.0)
        .sum();
    assert_eq!(calls, 2, "{points:#?}");
}

/// Failures `ClarifaiFailures` classified, as `TraceLayer`'s `on_failure` got them.
type Failures = Arc<std::sync::Mutex<Vec<ClarifaiFailure>>>;

/// A server with tower-http's `TraceLayer` (classifier `ClarifaiFailures`) outermost, then,
/// with `in_body`, `ErrorToInBodyLayer`, then `StatusLayer` recording into `telemetry`.
async fn serve_traced(
    telemetry: Telemetry,
    in_body: bool,
    failures: Failures,
) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let trace = tower_http::trace::TraceLayer::new(ClarifaiFailures::new()).on_failure(
        move |failure: ClarifaiFailure, _: Duration, _: &tracing::Span| {
            failures.lock().unwrap().push(failure);
        },
    );
    let status = StatusLayer::new().telemetry(telemetry);
    let service = StatusTesterServer::new(Handler::default());
    if in_body {
        let router = Server::builder()
            .layer(trace)
            .layer(ErrorToInBodyLayer::new())
            .layer(status)
            .add_service(service);
        tokio::spawn(router.serve_with_incoming(incoming));
    } else {
        let router = Server::builder()
            .layer(trace)
            .layer(status)
            .add_service(service);
        tokio::spawn(router.serve_with_incoming(incoming));
    }
    addr
}

#[tokio::test]
async fn trace_layer_counts_clarifai_failures_in_body_and_in_the_header_as_failures() {
    let (provider, _exporter) = metrics();
    let telemetry = Telemetry::new(&provider.meter("server"));

    // `ErrorToInBodyLayer` answers the handler's error in-body: the classifier reads the code it
    // wrote.
    let failures = Failures::default();
    let addr = serve_traced(telemetry.clone(), true, failures.clone()).await;
    let mut client = StatusTesterClient::new(channel(addr).await);
    client
        .raise(raise("error", StatusCode::Success as i32))
        .await
        .unwrap();
    let answered = client
        .raise(raise("error", StatusCode::ConnKeyInvalid as i32))
        .await
        .unwrap();
    assert_eq!(answered.get_ref().status.as_ref().unwrap().code, 11008);
    // A handler's own in-body failure: no layer of the crate read it before the headers left,
    // so the classifier cannot see it (documented).
    client
        .raise(raise("inbody", StatusCode::ModelBusyPleaseRetry as i32))
        .await
        .unwrap();
    settle(|| !failures.lock().unwrap().is_empty()).await;
    assert_eq!(
        *failures.lock().unwrap(),
        [ClarifaiFailure::Clarifai {
            code: Code::new(11008),
            grpc: tonic::Code::Ok
        }]
    );

    // Without it, the error leaves as a gRPC error carrying `clarifai-status-code`.
    let failures = Failures::default();
    let addr = serve_traced(telemetry, false, failures.clone()).await;
    let mut client = StatusTesterClient::new(channel(addr).await);
    client
        .raise(raise("error", StatusCode::Success as i32))
        .await
        .unwrap();
    let error = client
        .raise(raise("error", StatusCode::ConnKeyInvalid as i32))
        .await
        .unwrap_err();
    assert_eq!(
        error.metadata().get("clarifai-status-code").unwrap(),
        "11008"
    );
    // An unknown number, as a gRPC error: classified with its number, a failure.
    client.raise(raise("error", 77777)).await.unwrap_err();
    settle(|| failures.lock().unwrap().len() >= 2).await;
    assert_eq!(
        *failures.lock().unwrap(),
        [
            ClarifaiFailure::Clarifai {
                code: Code::new(11008),
                grpc: tonic::Code::Unauthenticated
            },
            ClarifaiFailure::Clarifai {
                code: Code::new(77777),
                grpc: tonic::Code::Unknown
            }
        ]
    );
}

#[tokio::test]
async fn an_error_answered_in_body_by_error_to_in_body_layer_is_recorded_as_ok_with_its_code() {
    let (provider, exporter) = metrics();
    let addr = serve_traced(
        Telemetry::new(&provider.meter("server")),
        true,
        Failures::default(),
    )
    .await;
    let mut client = StatusTesterClient::new(channel(addr).await);
    let answered = client
        .raise(raise("error", StatusCode::ConnKeyInvalid as i32))
        .await
        .unwrap();
    assert_eq!(answered.get_ref().status.as_ref().unwrap().code, 11008);
    let d = "rpc.server.call.duration";
    let as_seen = rpc(RAISE, "OK", "11008", "CONN_KEY_INVALID");
    let mut points = Points::new();
    settle(|| {
        points.extend(collect(&provider, &exporter));
        count(&points, d, &as_seen) >= 1
    })
    .await;
    assert_eq!(count(&points, d, &as_seen), 1, "{points:#?}");
    // Never as the gRPC error the handler returned: the client did not see one.
    assert!(
        !points
            .keys()
            .any(|(name, a)| name == d && a["rpc.response.status_code"] == "UNAUTHENTICATED"),
        "{points:#?}"
    );
}

/// Answers `Raise` in process: MODEL_BUSY_PLEASE_RETRY as a gRPC error asking for a retry after
/// `pushback_ms`, for the first call; then SUCCESS.
#[derive(Default)]
struct PushingBack {
    calls: AtomicUsize,
}

#[tonic::async_trait]
impl StatusTester for PushingBack {
    async fn raise(
        &self,
        _request: tonic::Request<RaiseRequest>,
    ) -> Result<tonic::Response<RaiseResponse>, tonic::Status> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            let mut error = tonic::Status::from(StatusCode::ModelBusyPleaseRetry);
            error
                .metadata_mut()
                .insert("grpc-retry-pushback-ms", "1500".parse().unwrap());
            return Err(error);
        }
        Ok(tonic::Response::new(RaiseResponse {
            status: Some(Status::new(StatusCode::Success)),
            attempt: 2,
        }))
    }
}

#[tokio::test(start_paused = true)]
async fn the_retry_delay_recorded_is_the_pushback_the_server_asked_for() {
    let (provider, exporter) = metrics();
    let telemetry = Telemetry::new(&provider.meter("client"));
    // A backoff far from the pushback, so the delay recorded can only be the pushback's.
    let policy = Policy::new()
        .no_budget()
        .backoff(Backoff::new(
            Duration::from_millis(10),
            Duration::from_millis(20),
        ))
        .telemetry(telemetry);
    // The tonic server's service itself, in process, on tokio's paused clock.
    let service = tower::ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .service(StatusTesterServer::new(PushingBack::default()));
    let mut client = StatusTesterClient::new(service);
    let start = tokio::time::Instant::now();
    let response = client
        .raise(raise("x", StatusCode::Success as i32))
        .await
        .unwrap();
    assert_eq!(response.get_ref().attempt, 2);
    // Virtual time: the clock moved by the pushback, and nothing else took any.
    assert_eq!(start.elapsed(), Duration::from_millis(1500));

    let points = collect(&provider, &exporter);
    let ok = grpc(RAISE, "OK", "10000", "SUCCESS");
    let delay = points
        .get(&("grpc.client.call.retry_delay".to_owned(), attrs(&ok)))
        .unwrap_or_else(|| panic!("{points:#?}"));
    assert_eq!(*delay, (1, 1.5));
    let retries = points
        .get(&("grpc.client.call.retries".to_owned(), attrs(&ok)))
        .unwrap();
    assert_eq!(*retries, (1, 1.0));
    let busy = grpc(RAISE, "UNAVAILABLE", "21354", "MODEL_BUSY_PLEASE_RETRY");
    // Each attempt took no virtual time: the whole 1.5 s is the delay.
    assert_eq!(
        points.get(&("grpc.client.attempt.duration".to_owned(), attrs(&busy))),
        Some(&(1, 0.0))
    );
    let call = rpc(RAISE, "OK", "10000", "SUCCESS");
    assert_eq!(
        points.get(&("rpc.client.call.duration".to_owned(), attrs(&call))),
        Some(&(1, 1.5))
    );
}

/// `retry::poll` records each poll as a call of `retry::call` (it knows no method: `_OTHER`),
/// with the in-progress and final Clarifai codes, under the paused clock.
#[tokio::test(start_paused = true)]
async fn poll_records_each_poll_with_its_in_body_code() {
    use clarifai_status::retry::PollPolicy;

    let (provider, exporter) = metrics();
    let telemetry = Telemetry::new(&provider.meter("client"));
    let polling = PollPolicy::new()
        .interval(Backoff::new(
            Duration::from_millis(100),
            Duration::from_millis(100),
        ))
        .retry(Policy::new().telemetry(telemetry));
    let mut polls = 0;
    let response = clarifai_status::retry::poll(&polling, || {
        polls += 1;
        let code = if polls < 3 {
            StatusCode::ModelTraining
        } else {
            StatusCode::ModelTrained
        };
        let body = BaseResponse {
            status: Some(Status {
                code: code as i32,
                ..Default::default()
            }),
        };
        async move { Ok(tonic::Response::new(body)) }
    })
    .await
    .unwrap();
    assert_eq!(
        response.get_ref().status.as_ref().unwrap().code,
        StatusCode::ModelTrained as i32
    );
    let points = collect(&provider, &exporter);
    let call = |code: StatusCode| {
        let number = (code as i32).to_string();
        count(
            &points,
            "rpc.client.call.duration",
            &rpc("_OTHER", "OK", &number, code.name()),
        )
    };
    assert_eq!(call(StatusCode::ModelTraining), 2, "{points:#?}");
    assert_eq!(call(StatusCode::ModelTrained), 1, "{points:#?}");
    assert_eq!(
        count(
            &points,
            "grpc.client.attempt.started",
            &[("grpc.method", "_OTHER")]
        ),
        3,
        "{points:#?}"
    );
}

/// Paths the service does not have never use up the cap: after more unknown paths than
/// `MAX_METHODS`, every one under `_OTHER`, a method of the service is still recorded as itself.
#[tokio::test]
async fn unknown_paths_do_not_use_up_the_methods_cap() {
    use clarifai_status::telemetry::MAX_METHODS;

    let (provider, exporter) = metrics();
    let telemetry = Telemetry::new(&provider.meter("server"));
    let addr = serve(telemetry.clone()).await;
    let mut grpc = tonic::client::Grpc::new(channel(addr).await);
    let flood = MAX_METHODS + 8;
    for n in 0..flood {
        grpc.ready().await.unwrap();
        let codec = tonic_prost::ProstCodec::<RaiseRequest, RaiseResponse>::default();
        let error = grpc
            .unary(
                tonic::Request::new(raise("x", 10000)),
                format!("/no.Such/Method{n}").parse().unwrap(),
                codec,
            )
            .await
            .unwrap_err();
        assert_eq!(error.code(), tonic::Code::Unimplemented);
    }
    let mut client = StatusTesterClient::new(channel(addr).await);
    let method = client_method(&mut client).await;
    assert_eq!(telemetry.method_value(&format!("/{method}")), method);

    let points = collect(&provider, &exporter);
    let d = "rpc.server.call.duration";
    let ok = rpc(&method, "OK", "10000", "SUCCESS");
    assert_eq!(count(&points, d, &ok), 1, "{points:#?}");
    let other: u64 = points
        .iter()
        .filter(|((name, a), _)| name == d && a["rpc.method"] == "_OTHER")
        .map(|(_, p)| p.0)
        .sum();
    assert_eq!(other, flood as u64);
    assert_eq!(
        points.keys().filter(|(name, _)| name == d).count(),
        2,
        "one series for the flood, one for the method"
    );
}

/// A server and a retrying client (no budget, fast backoff), each with its own telemetry.
async fn pair(
    provider: &SdkMeterProvider,
) -> StatusTesterClient<clarifai_status::retry::Retry<Channel>> {
    let addr = serve(Telemetry::new(&provider.meter("server"))).await;
    let telemetry = Telemetry::new(&provider.meter("client"));
    let channel = tower::ServiceBuilder::new()
        .layer(RetryLayer::new(
            fast(Policy::new().no_budget()).telemetry(telemetry),
        ))
        .service(channel(addr).await);
    StatusTesterClient::new(channel)
}

/// The counts of one outcome, at the server, the client and its attempts.
fn outcome_counts(points: &Points, code: Code) -> [u64; 3] {
    let number = code.number().to_string();
    let rpc = rpc(RAISE, "OK", &number, code.name());
    let grpc = grpc(RAISE, "OK", &number, code.name());
    [
        count(points, "rpc.server.call.duration", &rpc),
        count(points, "rpc.client.call.duration", &rpc),
        count(points, "grpc.client.attempt.duration", &grpc),
    ]
}

/// A method's first outcomes are recorded through instruments bound to their attribute sets
/// (made once, kept with the method); past them, each recording makes its set. Both must count
/// every call, under the same series as any other recording of that outcome.
#[tokio::test]
async fn outcomes_past_the_bound_ones_are_counted_the_same() {
    let (provider, exporter) = metrics();
    let mut client = pair(&provider).await;
    // 80 known failure codes, none retried: more outcomes than a method keeps bound (64).
    let codes = (10000..40000)
        .map(Code::new)
        .filter(|c| c.is_known() && c.is_failure() && !c.is_retryable())
        .take(80)
        .collect::<Vec<_>>();
    assert_eq!(codes.len(), 80);
    for round in 1..=2u64 {
        for code in &codes {
            let response = client.raise(raise("inbody", code.number())).await.unwrap();
            assert_eq!(
                response.get_ref().status.as_ref().unwrap().code,
                code.number()
            );
        }
        // The server records when the body ends, which may come after the client has its answer.
        let mut points = Points::new();
        settle(|| {
            points = collect(&provider, &exporter);
            codes
                .iter()
                .all(|code| outcome_counts(&points, *code)[0] == round)
        })
        .await;
        for code in &codes {
            assert_eq!(
                outcome_counts(&points, *code),
                [round; 3],
                "{code:?} in round {round}"
            );
        }
        assert_eq!(
            count(
                &points,
                "grpc.client.attempt.started",
                &[("grpc.method", RAISE)]
            ),
            80 * round
        );
    }
}

/// With delta temporality, each export has what was recorded since the one before: the series
/// bound to an outcome keep counting after an export emptied them.
#[tokio::test]
async fn delta_exports_count_each_interval_through_bound_series() {
    let exporter = opentelemetry_sdk::metrics::InMemoryMetricExporterBuilder::new()
        .with_temporality(opentelemetry_sdk::metrics::Temporality::Delta)
        .build();
    let provider = SdkMeterProvider::builder()
        .with_reader(opentelemetry_sdk::metrics::PeriodicReader::builder(exporter.clone()).build())
        .build();
    let mut client = pair(&provider).await;
    let denied = Code::from(StatusCode::ConnKeyInvalid);
    for calls in [3u64, 0, 2] {
        for _ in 0..calls {
            client
                .raise(raise("inbody", denied.number()))
                .await
                .unwrap();
        }
        let mut points = Points::new();
        let mut server = 0;
        settle(|| {
            let more = collect(&provider, &exporter);
            server += outcome_counts(&more, denied)[0];
            points.extend(more);
            server >= calls
        })
        .await;
        assert_eq!(server, calls);
        let [_, client_calls, attempts] = outcome_counts(&points, denied);
        assert_eq!([client_calls, attempts], [calls; 2]);
    }
}
