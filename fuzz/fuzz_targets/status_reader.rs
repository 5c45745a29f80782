//! Every reader of a peer's `tonic::Status`, metadata and details: `ClarifaiStatusExt` on a
//! `tonic::Status`, and the `grpc::read_*` functions on the raw headers a tower layer sees.
//!
//! The details are either the fuzzer's raw bytes or a `google.rpc.Status` assembled from its
//! fields (so the ErrorInfo and RetryInfo decoders are reached, not only the outer decode).
#![no_main]

use std::collections::BTreeMap;

use base64::Engine as _;
use clarifai_status::grpc::{self, ClarifaiStatusExt};
use clarifai_status::mapping::fallback_from_grpc;
use clarifai_status::pb::rpc;
use clarifai_status::Code;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use tonic::metadata::{MetadataMap, MetadataValue};

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    code_header: &'a [u8],
    grpc_status: &'a [u8],
    pushback: &'a [u8],
    /// Sent as `grpc-status-details-bin` text instead of the base64 of `details` when set.
    details_text: Option<&'a [u8]>,
    grpc_code: i32,
    message: &'a str,
    details: Details<'a>,
}

#[derive(Debug, Arbitrary)]
enum Details<'a> {
    Raw(&'a [u8]),
    Structured {
        code: i32,
        message: &'a str,
        infos: Vec<Info<'a>>,
    },
}

#[derive(Debug, Arbitrary)]
struct Info<'a> {
    /// ErrorInfo, RetryInfo, or (None) the fuzzer's own type URL.
    kind: Option<bool>,
    type_url: &'a str,
    reason: &'a str,
    clarifai_domain: bool,
    domain: &'a str,
    /// The `code` metadata entry, as Clarifai sends it.
    code_meta: Option<&'a str>,
    metadata: Vec<(&'a str, &'a str)>,
    seconds: i64,
    nanos: i32,
    raw: &'a [u8],
}

fn details_bytes(details: &Details<'_>) -> Vec<u8> {
    match details {
        Details::Raw(bytes) => bytes.to_vec(),
        Details::Structured {
            code,
            message,
            infos,
        } => {
            let details = infos
                .iter()
                .map(|info| match info.kind {
                    Some(true) => prost_types::Any {
                        type_url: "type.googleapis.com/google.rpc.ErrorInfo".into(),
                        value: rpc::ErrorInfo {
                            reason: info.reason.into(),
                            domain: if info.clarifai_domain {
                                grpc::DOMAIN.into()
                            } else {
                                info.domain.into()
                            },
                            metadata: info
                                .metadata
                                .iter()
                                .copied()
                                .chain(info.code_meta.map(|v| ("code", v)))
                                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                                .collect::<BTreeMap<_, _>>(),
                        }
                        .encode_to_vec(),
                    },
                    Some(false) => prost_types::Any {
                        type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
                        value: rpc::RetryInfo {
                            retry_delay: Some(prost_types::Duration {
                                seconds: info.seconds,
                                nanos: info.nanos,
                            }),
                        }
                        .encode_to_vec(),
                    },
                    None => prost_types::Any {
                        type_url: info.type_url.into(),
                        value: info.raw.to_vec(),
                    },
                })
                .collect();
            rpc::Status {
                code: *code,
                message: (*message).into(),
                details,
            }
            .encode_to_vec()
        }
    }
}

fuzz_target!(|input: Input<'_>| {
    let details = details_bytes(&input.details);

    let mut metadata = MetadataMap::new();
    for (key, value) in [
        (clarifai_status::CODE_HEADER, input.code_header),
        (grpc::PUSHBACK_HEADER, input.pushback),
    ] {
        if let Ok(value) = MetadataValue::try_from(value) {
            metadata.insert(key, value);
        }
    }
    let status = tonic::Status::with_details_and_metadata(
        tonic::Code::from_i32(input.grpc_code),
        input.message,
        bytes::Bytes::from(details.clone()),
        metadata,
    );

    let carried = status.carried_clarifai_code();
    // An error never carries a success or in-progress code.
    if status.code() != tonic::Code::Ok {
        assert!(carried.is_none_or(|c| c.is_failure()));
    }
    let code = status.clarifai_code();
    assert_eq!(
        code,
        carried.unwrap_or_else(|| Code::from(fallback_from_grpc(status.code())))
    );
    let _ = status.clarifai_retry_delay();
    let clarifai = status.to_clarifai_status();
    assert_eq!(clarifai.code, code.number());

    let mut headers = http::HeaderMap::new();
    let details_text = match input.details_text {
        Some(text) => text.to_vec(),
        None => base64::engine::general_purpose::STANDARD_NO_PAD
            .encode(&details)
            .into_bytes(),
    };
    for (key, value) in [
        (clarifai_status::CODE_HEADER, input.code_header),
        ("grpc-status", input.grpc_status),
        (grpc::PUSHBACK_HEADER, input.pushback),
        ("grpc-status-details-bin", &details_text[..]),
    ] {
        if let Ok(value) = http::HeaderValue::from_bytes(value) {
            headers.insert(key, value);
        }
    }
    let read = grpc::read_code(&headers);
    match grpc::read_grpc_code(&headers) {
        Some(grpc_code) if grpc_code != tonic::Code::Ok => {
            assert!(read.is_none_or(|c| c.is_failure()));
        }
        Some(_) => {}
        None => assert!(!headers.contains_key("grpc-status")),
    }
    let _ = grpc::read_retry_delay(&headers);
    let _ = grpc::read_pushback(&headers);
});
