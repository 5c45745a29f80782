//! A service answering like a hostile handler or upstream, case by case (`x-hostile-case`), for
//! the tests of the server layers: `tests/hostile_server.rs` (tonic clients) and
//! `tests/hostile_interop.rs` (grpcio and grpc-js).

use std::convert::Infallible;
use std::task::{Context, Poll};

use clarifai_status::grpc::ErrorBuilder;
use clarifai_status::server::{error_to_in_body::ErrorToInBodyLayer, status::StatusLayer};
use clarifai_status::StatusCode;
use http_body_util::BodyExt as _;

pub(crate) const MIB: usize = 1 << 20;
const SERVICE: &str = "clarifai.status.testing.v1.StatusTester";

/// What the handler (or the upstream) answers, by case name.
pub(crate) fn answer(case: &str) -> http::Response<tonic::body::Body> {
    let unavailable = || tonic::Status::from(StatusCode::RpcServerUnavailable);
    let with_metadata = |mut status: tonic::Status, key: &'static str, value: &str| {
        status
            .metadata_mut()
            .insert(key, value.parse().expect("ASCII"));
        status
    };
    match case {
        // A handler's error with details of its own and 1 MiB of text.
        "details_and_1mib_message" => tonic::Status::with_details(
            tonic::Code::Unavailable,
            "m".repeat(MIB),
            unavailable().details().to_vec().into(),
        )
        .into_http(),
        // The same over a default client's 4 MiB message limit, once in-body.
        "details_and_5mib_message" => tonic::Status::with_details(
            tonic::Code::Unavailable,
            "m".repeat(5 * MIB),
            unavailable().details().to_vec().into(),
        )
        .into_http(),
        // A coded error, and 1 MiB of the handler's own metadata beside it.
        "coded_with_1mib_metadata" => {
            with_metadata(unavailable(), "x-handler-junk", &"j".repeat(MIB)).into_http()
        }
        // The same error in the trailers after the response headers, as a stream ends.
        "coded_with_1mib_metadata_in_trailers" => {
            let status = with_metadata(unavailable(), "x-handler-junk", &"j".repeat(MIB));
            let trailers = status.into_http::<()>().into_parts().0.headers;
            let mut response = http::Response::new(tonic::body::Body::new(
                http_body_util::Empty::<bytes::Bytes>::new()
                    .map_err(|never: Infallible| -> tonic::Status { match never {} })
                    .with_trailers(async move { Some(Ok::<_, tonic::Status>(trailers)) }),
            ));
            response
                .headers_mut()
                .insert("content-type", "application/grpc".parse().unwrap());
            response
        }
        // A handler claiming success, or a code still in progress, on an error.
        "success_on_unavailable" => with_metadata(
            tonic::Status::unavailable("down"),
            "clarifai-status-code",
            "10000",
        )
        .into_http(),
        "in_progress_on_unavailable" => with_metadata(
            tonic::Status::unavailable("down"),
            "clarifai-status-code",
            "64001",
        )
        .into_http(),
        // An in-body description over a default client's 4 MiB message limit.
        "coded_5mib_message" => ErrorBuilder::new(StatusCode::RpcServerUnavailable)
            .message("d".repeat(5 * MIB))
            .build()
            .into_http(),
        // An upstream's bytes: details that are not base64, a status that is not a number.
        "details_not_base64" => {
            let mut response = unavailable().into_http();
            response
                .headers_mut()
                .insert("grpc-status-details-bin", "!!!".parse().unwrap());
            response
        }
        "status_not_a_number" => {
            let mut response = tonic::Status::unavailable("down").into_http();
            response
                .headers_mut()
                .insert("grpc-status", "abc".parse().unwrap());
            response
        }
        other => panic!("no case {other}"),
    }
}

/// The cases, with the Clarifai code and gRPC code a client must read behind `StatusLayer`.
pub(crate) const CASES: [(&str, i32, i32); 9] = [
    ("details_and_1mib_message", 40031, 14),
    ("details_and_5mib_message", 40031, 14),
    ("coded_with_1mib_metadata", 40031, 14),
    ("coded_with_1mib_metadata_in_trailers", 40031, 14),
    ("success_on_unavailable", 40031, 14),
    ("in_progress_on_unavailable", 40031, 14),
    ("coded_5mib_message", 40031, 14),
    ("details_not_base64", 40031, 14),
    // UNKNOWN, stamped as its fallback FAILURE.
    ("status_not_a_number", 10020, 2),
];

/// The service behind the layers: answers by `x-hostile-case`.
#[derive(Clone)]
pub(crate) struct Hostile;

impl tonic::server::NamedService for Hostile {
    const NAME: &'static str = SERVICE;
}

impl tower::Service<http::Request<tonic::body::Body>> for Hostile {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let case = request
            .headers()
            .get("x-hostile-case")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        std::future::ready(Ok(answer(&case)))
    }
}

/// Starts the server with `StatusLayer`, and with `ErrorToInBodyLayer` outside it when `in_body`.
pub(crate) async fn serve(in_body: bool) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let server = tonic::transport::Server::builder();
    if in_body {
        let layers = tower::ServiceBuilder::new()
            .layer(ErrorToInBodyLayer::new())
            .layer(StatusLayer::new());
        let router = server.layer(layers).add_service(Hostile);
        tokio::spawn(router.serve_with_incoming(incoming));
    } else {
        let router = server.layer(StatusLayer::new()).add_service(Hostile);
        tokio::spawn(router.serve_with_incoming(incoming));
    }
    addr
}
