//! What Clarifai-coded errors look like to a client, and how to read them.
//!
//! ```sh
//! cargo run --all-features --example server -- 127.0.0.1:50051
//! cargo run --all-features --example client -- http://127.0.0.1:50051
//! ```

use clarifai_status::grpc::ClarifaiStatusExt;
use clarifai_status::pb::Status;
use clarifai_status::StatusCode;
use clarifai_status_testing::pb::status_tester_client::StatusTesterClient;
use clarifai_status_testing::pb::RaiseRequest;

fn request(code: StatusCode, key: &str, api_key: Option<&str>) -> tonic::Request<RaiseRequest> {
    let mut request = tonic::Request::new(RaiseRequest {
        status: Some(Status {
            code: code as i32,
            req_id: "req-example".into(),
            ..Default::default()
        }),
        key: key.into(),
        ..Default::default()
    });
    if let Some(api_key) = api_key {
        let value = format!("Key {api_key}").parse().expect("ASCII key");
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// Prints an answer the way an operator wants to read it.
fn show(
    label: &str,
    answer: Result<tonic::Response<clarifai_status_testing::pb::RaiseResponse>, tonic::Status>,
) {
    match answer {
        Ok(response) => {
            let status = response.into_inner().status.unwrap_or_default();
            let code = clarifai_status::Code::new(status.code);
            println!(
                "{label:<34} OK          {} {} ({})",
                code.number(),
                code.name(),
                code.outcome()
            );
        }
        Err(error) => {
            let code = error.clarifai_code();
            println!(
                "{label:<34} {:<11} {} {}  retryable={}  message={:?}  req_id={:?}",
                clarifai_status::mapping::grpc_code_name(error.code()),
                code.number(),
                code.name(),
                code.is_retryable(),
                error.message(),
                error.to_clarifai_status().req_id,
            );
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:50051".to_owned());
    let mut client = StatusTesterClient::connect(endpoint).await?;
    let key = Some("demo-key");

    show(
        "no API key",
        client.raise(request(StatusCode::Success, "", None)).await,
    );
    show(
        "wrong API key",
        client
            .raise(request(StatusCode::Success, "", Some("nope")))
            .await,
    );
    show("malformed authorization", {
        let mut r = request(StatusCode::Success, "", None);
        r.metadata_mut()
            .insert("authorization", "Bearer x".parse()?);
        client.raise(r).await
    });
    show(
        "success",
        client.raise(request(StatusCode::Success, "", key)).await,
    );
    show(
        "in progress",
        client
            .raise(request(StatusCode::ModelTraining, "", key))
            .await,
    );
    show(
        "model does not exist",
        client
            .raise(request(StatusCode::ModelDoesNotExist, "", key))
            .await,
    );
    show(
        "model busy",
        client
            .raise(request(StatusCode::ModelBusyPleaseRetry, "", key))
            .await,
    );
    show(
        "plain error, stamped by the layer",
        client
            .raise(request(StatusCode::Success, "plain", key))
            .await,
    );
    Ok(())
}
