//! Responses that carry a Clarifai status: `into_result` for every code, on the crate's own
//! messages and on a user-defined one.

use clarifai_status::grpc::ClarifaiStatusExt;
use clarifai_status::pb::{self, BaseResponse};
use clarifai_status::response::{into_result, HasStatus};
use clarifai_status::{impl_has_status, Code, Outcome};

mod common;
use common::{codes, UNKNOWN_NUMBERS};

/// A user's own response message, as generated for a Clarifai API they call.
#[derive(Clone, PartialEq, prost::Message)]
struct PredictResponse {
    #[prost(message, optional, tag = "1")]
    status: Option<pb::Status>,
    #[prost(string, repeated, tag = "2")]
    outputs: Vec<String>,
}
impl_has_status!(PredictResponse);

fn status(code: Code) -> pb::Status {
    let n = code.number();
    pb::Status {
        code: n,
        description: format!("description of {n}"),
        details: format!("details of {n}"),
        percent_completed: 7,
        req_id: format!("req-{n}"),
        ..Default::default()
    }
}

fn predict(code: Code) -> PredictResponse {
    PredictResponse {
        status: Some(status(code)),
        outputs: vec!["concept".into(), "other".into()],
    }
}

/// The error a failure must become: the contract's code, message and carried status.
fn assert_error_carries(error: &tonic::Status, sent: &pb::Status) {
    let code = Code::new(sent.code);
    assert_eq!(error.code(), code.grpc_code(), "gRPC code of {}", sent.code);
    assert_eq!(error.message(), sent.description);
    assert_eq!(error.clarifai_code(), code);
    let header = error
        .metadata()
        .get("clarifai-status-code")
        .map(|v| v.as_encoded_bytes());
    assert_eq!(header, Some(sent.code.to_string().as_bytes()));
    assert_eq!(error.to_clarifai_status(), *sent);
}

#[test]
fn failures_become_errors_carrying_their_code() {
    for code in codes().filter(|c| c.outcome() == Outcome::Failure) {
        let error = into_result(BaseResponse {
            status: Some(status(code)),
        })
        .expect_err("a failure is an error");
        assert_error_carries(&error, &status(code));

        let error = into_result(predict(code)).expect_err("a failure is an error");
        assert_error_carries(&error, &status(code));

        let error = into_result(status(code)).expect_err("a failure is an error");
        assert_error_carries(&error, &status(code));

        let error = into_result(tonic::Response::new(predict(code))).expect_err("failure");
        assert_error_carries(&error, &status(code));
    }
}

#[test]
fn failure_without_description_carries_the_table_description() {
    for code in codes().filter(|c| c.outcome() == Outcome::Failure) {
        let response = BaseResponse {
            status: Some(pb::Status {
                code: code.number(),
                ..Default::default()
            }),
        };
        let error = into_result(response).expect_err("a failure is an error");
        assert_eq!(error.message(), code.description());
        assert_eq!(error.clarifai_code(), code);
    }
}

#[test]
fn zero_and_unknown_numbers_are_failures() {
    for n in UNKNOWN_NUMBERS.into_iter().chain([0]) {
        let error = into_result(predict(Code::new(n))).expect_err("not a success");
        assert_eq!(error.code(), tonic::Code::Unknown);
        assert_eq!(error.clarifai_code().number(), n);
    }
}

#[test]
fn success_and_in_progress_pass_through_unchanged() {
    let passing = codes().filter(|c| c.outcome() != Outcome::Failure);
    let mut count = 0;
    for code in passing {
        count += 1;
        let base = BaseResponse {
            status: Some(status(code)),
        };
        assert_eq!(into_result(base.clone()).ok(), Some(base));
        assert_eq!(into_result(predict(code)).ok(), Some(predict(code)));
        assert_eq!(into_result(status(code)).ok(), Some(status(code)));
        let response = into_result(tonic::Response::new(predict(code))).expect("passes");
        assert_eq!(response.into_inner(), predict(code));
    }
    assert!(count > 0, "the table has success and in-progress codes");
}

#[test]
fn response_without_status_passes_unchanged() {
    assert_eq!(
        into_result(BaseResponse { status: None }).ok(),
        Some(BaseResponse { status: None })
    );
    let response = PredictResponse {
        status: None,
        outputs: vec!["concept".into()],
    };
    assert_eq!(into_result(response.clone()).ok(), Some(response));
}

#[test]
fn impl_has_status_reads_the_status_field() {
    for code in codes() {
        let response = predict(code);
        assert_eq!(response.status(), Some(&status(code)));
        assert_eq!(response.status_code(), Some(code));
    }
    let empty = PredictResponse::default();
    assert_eq!(empty.status(), None);
    assert_eq!(empty.status_code(), None);
}

#[test]
fn user_message_decodes_from_clarifai_bytes() {
    use prost::Message as _;

    // A user message sharing field 1 with BaseResponse reads the status Clarifai sent.
    for code in codes() {
        let bytes = BaseResponse {
            status: Some(status(code)),
        }
        .encode_to_vec();
        let response = PredictResponse::decode(bytes.as_slice()).expect("decodes");
        assert_eq!(response.status_code(), Some(code));
    }
}
