//! A server and a retrying client on loopback, both recording into OpenTelemetry's SDK; prints
//! the per-code figures a dashboard would show. `cargo run --all-features --example telemetry`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use clarifai_status::pb::Status;
use clarifai_status::retry::{Backoff, Policy, RetryLayer};
use clarifai_status::server::status::StatusLayer;
use clarifai_status::telemetry::Telemetry;
use clarifai_status::StatusCode;
use clarifai_status_testing::pb::status_tester_client::StatusTesterClient;
use clarifai_status_testing::pb::status_tester_server::{StatusTester, StatusTesterServer};
use clarifai_status_testing::pb::{RaiseRequest, RaiseResponse};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};

/// Busy (in-body) every other call; a bad key as a gRPC error when asked.
#[derive(Default)]
struct Model(AtomicUsize);

#[tonic::async_trait]
impl StatusTester for Model {
    async fn raise(
        &self,
        request: tonic::Request<RaiseRequest>,
    ) -> Result<tonic::Response<RaiseResponse>, tonic::Status> {
        if request.get_ref().key == "bad" {
            return Err(tonic::Status::from(StatusCode::ConnKeyInvalid));
        }
        let busy = self.0.fetch_add(1, Ordering::SeqCst).is_multiple_of(2);
        let code = if busy {
            StatusCode::ModelBusyPleaseRetry
        } else {
            StatusCode::Success
        };
        let status = Status {
            code: code as i32,
            ..Default::default()
        };
        Ok(tonic::Response::new(RaiseResponse {
            status: Some(status),
            attempt: 1,
        }))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter.clone()).build())
        .build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(
        tonic::transport::Server::builder()
            .layer(StatusLayer::new().telemetry(Telemetry::new(&provider.meter("server"))))
            .add_service(StatusTesterServer::new(Model::default()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let policy = Policy::new()
        .backoff(Backoff::new(
            Duration::from_millis(1),
            Duration::from_millis(5),
        ))
        .telemetry(Telemetry::new(&provider.meter("client")));
    let mut client = StatusTesterClient::new(
        tower::ServiceBuilder::new()
            .layer(RetryLayer::new(policy))
            .service(channel),
    );
    for n in 0..10 {
        let key = if n % 5 == 4 { "bad" } else { "ok" };
        let _ = client
            .raise(RaiseRequest {
                key: key.into(),
                ..Default::default()
            })
            .await;
    }
    provider.force_flush()?;
    println!("{:<30} {:<60} {:>6}", "instrument", "attributes", "count");
    for resource in exporter.get_finished_metrics()? {
        for scope in resource.scope_metrics() {
            for metric in scope.metrics() {
                let rows: Vec<(String, u64)> = match metric.data() {
                    AggregatedMetrics::F64(MetricData::Histogram(h)) => h
                        .data_points()
                        .map(|p| (labels(p.attributes()), p.count()))
                        .collect(),
                    AggregatedMetrics::U64(MetricData::Histogram(h)) => h
                        .data_points()
                        .map(|p| (labels(p.attributes()), p.sum()))
                        .collect(),
                    AggregatedMetrics::U64(MetricData::Sum(s)) => s
                        .data_points()
                        .map(|p| (labels(p.attributes()), p.value()))
                        .collect(),
                    _ => Vec::new(),
                };
                for (labels, value) in rows {
                    println!("{:<30} {:<60} {:>6}", metric.name(), labels, value);
                }
            }
        }
    }
    Ok(())
}

/// The attributes a dashboard groups by: status and Clarifai name.
fn labels<'a>(attributes: impl Iterator<Item = &'a opentelemetry::KeyValue>) -> String {
    let mut out: Vec<String> = attributes
        .filter(|kv| {
            matches!(
                kv.key.as_str(),
                "rpc.response.status_code"
                    | "grpc.status"
                    | "clarifai.status.name"
                    | "clarifai.retry.stop_reason"
            )
        })
        .map(|kv| format!("{}={}", kv.key, kv.value))
        .collect();
    out.sort();
    out.join(" ")
}
