//! A dependent's own protos importing the crate's `Status`, compiled by
//! `clarifai_status_build::Builder::compile_protos` (protox, the crate's proto directory as the
//! last include): fields of the crate's `pb::Status` type and `HasStatus` where field 1 is one.

use clarifai_status::grpc::ClarifaiStatusExt as _;
use clarifai_status::response::{into_result, HasStatus};
use clarifai_status::{pb, StatusCode};
use clarifai_v2::own_protos::own::v1::predict_response::Part;
use clarifai_v2::own_protos::own::v1::{PredictResponse, Unrelated};
use prost::Message as _;

fn status(code: StatusCode) -> pb::Status {
    pb::Status {
        code: code as i32,
        ..Default::default()
    }
}

#[test]
fn own_response_carries_the_crates_status_into_into_result() {
    let response = PredictResponse {
        status: Some(status(StatusCode::ModelBusyPleaseRetry)),
        label: "cat".into(),
        ..Default::default()
    };
    assert_eq!(
        response.status_code(),
        Some(StatusCode::ModelBusyPleaseRetry.into())
    );

    let error = into_result(response).unwrap_err();

    assert_eq!(error.code(), tonic::Code::Unavailable);
    assert_eq!(error.clarifai_code(), StatusCode::ModelBusyPleaseRetry);
}

#[test]
fn nested_message_with_status_first_implements_has_status() {
    let part = Part {
        status: Some(status(StatusCode::ModelDoesNotExist)),
    };

    assert_eq!(
        part.status().map(|s| s.code),
        Some(StatusCode::ModelDoesNotExist as i32)
    );
    assert_eq!(into_result(part).unwrap_err().code(), tonic::Code::NotFound);
}

#[test]
fn own_response_decodes_from_a_status_only_message() {
    // Field 1 alone, as the test server answers: the crate's BaseResponse bytes.
    let bytes = pb::BaseResponse {
        status: Some(status(StatusCode::ConnKeyInvalid)),
    }
    .encode_to_vec();

    let response = PredictResponse::decode(bytes.as_slice()).unwrap();

    assert_eq!(response.status, Some(status(StatusCode::ConnKeyInvalid)));
    assert!(response.label.is_empty());
}

#[test]
fn status_outside_field_one_is_still_the_crates_type() {
    let unrelated = Unrelated {
        name: "x".into(),
        status: Some(status(StatusCode::Success)),
    };
    let status: Option<&pb::Status> = unrelated.status.as_ref();
    assert_eq!(status.map(|s| s.code), Some(10000));
}
