//! The readers under hostile peers (issue 18): what a peer sends never panics them, never makes
//! them allocate without bound, and a failure the client made itself is never read as a code a
//! server sent.
//!
//! Memory is measured, not timed: this test binary counts its own allocations (stats_alloc's
//! instrumented allocator), and each test asserts the bytes a reader allocated.
//! Peers are raw h2 servers on 127.0.0.1 (port 0) that say what tonic servers never would.

use std::net::SocketAddr;
use tokio::sync::Mutex;

use clarifai_status::grpc::{ClarifaiStatusExt, LOCAL_FAILURE};
use clarifai_status::{mapping, rest, StatusCode};
use clarifai_status_testing::pb::status_tester_client::StatusTesterClient;
use clarifai_status_testing::pb::status_tester_server::StatusTesterServer;
use clarifai_status_testing::pb::RaiseRequest;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

/// Every test here holds this: the allocation counters are the binary's.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.blocking_lock()
}

/// The bytes `f` allocated, reallocations' growth included: a bound on the most it held.
fn allocated_by<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let region = Region::new(GLOBAL);
    let out = f();
    let change = region.change();
    let grown = usize::try_from(change.bytes_reallocated).unwrap_or(0);
    (out, change.bytes_allocated + grown)
}

const MIB: usize = 1 << 20;

/// A 32 MiB JSON array of numbers: as a `serde_json::Value` it takes ~17 times its size.
fn big_array() -> Vec<u8> {
    let mut body = Vec::with_capacity(32 * MIB + 16);
    body.push(b'[');
    while body.len() < 32 * MIB {
        body.extend_from_slice(b"1,");
    }
    body.extend_from_slice(b"1]");
    body
}

#[test]
fn rest_readers_do_not_build_a_huge_document() {
    let _one = one_at_a_time();
    let body = big_array();
    let headers = http::HeaderMap::new();
    let http = http::StatusCode::BAD_GATEWAY;
    let want = mapping::fallback_from_http(http);
    let (code, peak) = allocated_by(|| rest::read_code_or_fallback(http, &headers, &body));
    assert_eq!(code, want);
    // Before the bounded walk: hundreds of MiB for this body.
    assert!(peak < MIB, "read_code held {peak} bytes for a 32 MiB array");
    let (status, peak) = allocated_by(|| rest::read_status_or_fallback(http, &headers, &body));
    assert_eq!(status.code, want as i32);
    assert!(peak < MIB, "read_status held {peak} bytes");
}

#[test]
fn rest_status_first_is_read_without_reading_the_rest() {
    let _one = one_at_a_time();
    // Clarifai's order: the status, then outputs of any size.
    let mut body =
        br#"{"status":{"code":21354,"description":"busy","req_id":"r-1"},"outputs":"#.to_vec();
    body.extend_from_slice(&big_array());
    body.push(b'}');
    let headers = http::HeaderMap::new();
    let (status, peak) =
        allocated_by(|| rest::read_status_or_fallback(http::StatusCode::OK, &headers, &body));
    assert_eq!(status.code, StatusCode::ModelBusyPleaseRetry as i32);
    assert_eq!(
        (status.description.as_str(), status.req_id.as_str()),
        ("busy", "r-1")
    );
    assert!(peak < 64 * 1024, "{peak} bytes to read a status of 60");
}

#[test]
fn rest_keeps_only_the_status_fields_it_knows() {
    let _one = one_at_a_time();
    // A status object holding a huge unknown field and a huge array where text belongs.
    let mut body = br#"{"status":{"junk":"#.to_vec();
    body.extend_from_slice(&big_array()[..8 * MIB]);
    body.extend_from_slice(b"1],\"details\":");
    body.extend_from_slice(&big_array()[..8 * MIB]);
    body.extend_from_slice(b"1],\"code\":11008}}");
    let (status, peak) = allocated_by(|| rest::parse_json(&body[..]));
    // Past MAX_JSON_BYTES the status does not end: read as none, with nothing built.
    assert_eq!(status, None);
    assert!(peak < MIB, "{peak}");

    let small =
        br#"{"status":{"junk":[[1,2],{"a":[3]}],"details":[1,2],"code":11008,"req_id":"q"}}"#;
    let status = rest::parse_json(small).unwrap();
    assert_eq!(
        (status.code, status.details.as_str(), status.req_id.as_str()),
        (11008, "", "q")
    );
}

#[test]
fn rest_deep_nesting_is_not_json_and_does_not_overflow_the_stack() {
    let _one = one_at_a_time();
    for open in [b'[', b'{'] {
        let body: Vec<u8> = if open == b'[' {
            vec![b'['; 200_000]
        } else {
            b"{\"a\":".repeat(100_000)
        };
        let http = http::StatusCode::SERVICE_UNAVAILABLE;
        let code = rest::read_code_or_fallback(http, &http::HeaderMap::new(), &body);
        assert_eq!(code, mapping::fallback_from_http(http));
        let mut nested = br#"{"status":"#.to_vec();
        nested.extend_from_slice(&body);
        assert_eq!(rest::parse_json(&nested), None);
    }
}

/// A raw h2 server that answers every request on its first connection with `respond`'s
/// headers, an empty body and then `trailers` (none for a trailers-only answer).
async fn h2_peer(headers: http::HeaderMap, trailers: Option<http::HeaderMap>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut connection = h2::server::Builder::new()
            .max_send_buffer_size(4 * MIB)
            .handshake::<_, bytes::Bytes>(tcp)
            .await
            .unwrap();
        while let Some(Ok((request, mut respond))) = connection.accept().await {
            drop(request);
            let mut response = http::Response::new(());
            *response.headers_mut() = headers.clone();
            let end = trailers.is_none();
            let Ok(mut send) = respond.send_response(response, end) else {
                continue;
            };
            if let Some(trailers) = &trailers {
                let _ = send.send_trailers(trailers.clone());
            }
        }
    });
    addr
}

fn grpc_headers(pairs: &[(&'static str, String)]) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    headers.insert("content-type", "application/grpc".parse().unwrap());
    for (name, value) in pairs {
        headers.append(*name, value.parse().unwrap());
    }
    headers
}

async fn raise(addr: SocketAddr, request: tonic::Request<RaiseRequest>) -> tonic::Status {
    let call = async {
        let mut client = StatusTesterClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
        client.raise(request).await
    };
    // A hang guard only: the calls below end as soon as the peer's answer is read.
    match tokio::time::timeout(std::time::Duration::from_secs(60), call).await {
        Ok(Err(status)) => status,
        Ok(Ok(_)) => panic!("the call succeeded"),
        Err(_) => panic!("the call hung"),
    }
}

#[tokio::test]
async fn trailers_over_the_clients_limit_are_a_local_failure_not_a_throttle() {
    let _one = ONE_AT_A_TIME.lock().await;
    // A hostile server: a real Clarifai code, then 1 MiB of metadata in the same trailers. tonic's
    // client refuses the header list itself and reports RESOURCE_EXHAUSTED; no code arrived.
    let trailers = grpc_headers(&[
        ("grpc-status", "14".into()),
        ("clarifai-status-code", "40031".into()),
        ("x-junk", "j".repeat(MIB)),
    ]);
    let addr = h2_peer(grpc_headers(&[]), Some(trailers)).await;
    let status = raise(addr, tonic::Request::new(RaiseRequest::default())).await;
    assert_eq!(status.carried_clarifai_code(), None, "{status:?}");
    assert!(std::error::Error::source(&status).is_some());
    // Read as the gRPC code's fallback this was CONN_THROTTLED (11005): a server's meaning.
    assert_eq!(status.clarifai_code(), LOCAL_FAILURE);
    assert_ne!(status.clarifai_code(), StatusCode::ConnThrottled);
    assert_eq!(status.to_clarifai_status().code, LOCAL_FAILURE as i32);
}

#[tokio::test]
async fn a_server_error_with_a_throttle_code_still_reads_as_sent() {
    let _one = ONE_AT_A_TIME.lock().await;
    // The same peer, within limits: the code a server sent is read as sent.
    let trailers = grpc_headers(&[
        ("grpc-status", "8".into()),
        ("clarifai-status-code", "11005".into()),
    ]);
    let addr = h2_peer(grpc_headers(&[]), Some(trailers)).await;
    let status = raise(addr, tonic::Request::new(RaiseRequest::default())).await;
    assert_eq!(status.clarifai_code(), StatusCode::ConnThrottled);
    // And a bare RESOURCE_EXHAUSTED from a server falls back as documented.
    let addr = h2_peer(grpc_headers(&[("grpc-status", "8".into())]), None).await;
    let status = raise(addr, tonic::Request::new(RaiseRequest::default())).await;
    assert!(std::error::Error::source(&status).is_none());
    assert_eq!(status.clarifai_code(), StatusCode::ConnThrottled);
}

#[tokio::test]
async fn a_success_code_on_a_grpc_error_is_not_read_as_carried() {
    let _one = ONE_AT_A_TIME.lock().await;
    for claimed in ["10000", "64001"] {
        let headers = grpc_headers(&[
            ("grpc-status", "14".into()),
            ("clarifai-status-code", claimed.into()),
        ]);
        let addr = h2_peer(headers, None).await;
        let status = raise(addr, tonic::Request::new(RaiseRequest::default())).await;
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert_eq!(status.carried_clarifai_code(), None, "{claimed}");
        assert_eq!(status.clarifai_code(), StatusCode::RpcServerUnavailable);
        assert!(status.clarifai_code().is_failure());
    }
}

#[tokio::test]
async fn a_huge_key_sent_by_the_client_is_not_read_as_a_throttle() {
    let _one = ONE_AT_A_TIME.lock().await;
    // The client's own 1 MB of metadata, to a tonic server with the crate's StatusLayer.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = clarifai_status_testing::TestServer::new();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tokio::spawn(
        tonic::transport::Server::builder()
            .layer(clarifai_status::server::status::StatusLayer::new())
            .add_service(StatusTesterServer::new(server.tester().clone()))
            .serve_with_incoming(incoming),
    );
    let mut request = tonic::Request::new(RaiseRequest::default());
    let key = format!("Key {}", "k".repeat(MIB));
    request
        .metadata_mut()
        .insert("authorization", key.parse().unwrap());
    let status = raise(addr, request).await;
    assert_ne!(
        status.clarifai_code(),
        StatusCode::ConnThrottled,
        "{status:?}"
    );
    // No server sent a code for this: the code says the call failed uncategorized, locally or
    // by the server's HTTP/2 stack.
    assert_eq!(status.carried_clarifai_code(), None);
}
