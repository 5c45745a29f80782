//! What telemetry costs per call on loopback, in instructions: a real tonic server behind
//! `StatusLayer` and a real tonic client through `RetryLayer`, in one process on a
//! current-thread runtime, making N sequential unary calls with telemetry off, on at the server,
//! on at the client, or on at both. Run it under callgrind twice (N and 2N calls) and divide the
//! difference by N, so the setup cancels out; the instruction counts do not depend on the
//! machine's load (BENCHMARKS.md, section 12):
//!
//! ```text
//! cargo build --release --all-features --example telemetry_cost
//! valgrind --tool=callgrind --callgrind-out-file=cg.%p target/release/examples/telemetry_cost both 2000
//! ```

use std::time::Duration;

use clarifai_status::retry::{Policy, RetryLayer};
use clarifai_status::server::status::StatusLayer;
use clarifai_status::telemetry::Telemetry;
use clarifai_status_testing::pb::status_tester_client::StatusTesterClient;
use clarifai_status_testing::pb::status_tester_server::StatusTesterServer;
use clarifai_status_testing::pb::RaiseRequest;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};

/// The benches' handler (`benches/common/ok_tester.rs`), so this driver answers as
/// `benches/telemetry.rs` does.
#[path = "../benches/common/ok_tester.rs"]
mod ok_tester;
use ok_tester::OkTester;

type AnyError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), AnyError> {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "off".into());
    let calls: usize = args.next().map_or(Ok(1000), |n| n.parse())?;
    let (server_on, client_on) = match path.as_str() {
        "off" => (false, false),
        "server" => (true, false),
        "client" => (false, true),
        "both" => (true, true),
        other => return Err(format!("off, server, client or both, not {other}").into()),
    };
    let exporter = InMemoryMetricExporter::default();
    let reader = PeriodicReader::builder(exporter.clone())
        .with_interval(Duration::from_secs(3600))
        .build();
    let provider = SdkMeterProvider::builder().with_reader(reader).build();
    let telemetry = Telemetry::new(&provider.meter("cost"));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let layer = StatusLayer::new();
    let service = StatusTesterServer::new(OkTester {
        req_id: "req-000042",
    });
    if server_on {
        let router = tonic::transport::Server::builder()
            .layer(layer.telemetry(telemetry.clone()))
            .add_service(service);
        tokio::spawn(router.serve_with_incoming(incoming));
    } else {
        let router = tonic::transport::Server::builder()
            .layer(layer)
            .add_service(service);
        tokio::spawn(router.serve_with_incoming(incoming));
    }
    let policy = if client_on {
        Policy::new().telemetry(telemetry)
    } else {
        Policy::new()
    };
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let mut client = StatusTesterClient::new(
        tower::ServiceBuilder::new()
            .layer(RetryLayer::new(policy))
            .service(channel),
    );
    let request = RaiseRequest::default();
    for _ in 0..calls {
        std::hint::black_box(client.raise(request.clone()).await?);
    }
    Ok(())
}
