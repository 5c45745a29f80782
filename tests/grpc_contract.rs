//! The wire contract of a Clarifai code carried by a `tonic::Status`, for every code of the table
//! and for numbers the table does not know: what is sent (read with prost and with tonic-types,
//! the ecosystem's reader) and what is read back, from the status and from raw headers. This file
//! owns that contract; the spelling of the code header is `tests/spelling.rs`'s, the reading of
//! a retry delay `tests/pushback.rs`'s, and the private fields `tests/private_fields.rs`'s.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use base64::Engine as _;
use clarifai_status::grpc::{self, ClarifaiStatusExt, ErrorBuilder, Pushback};
use clarifai_status::pb::{self, rpc};
use clarifai_status::{mapping, Code, StatusCode};
use prost::Message as _;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic_types::{ErrorDetail, StatusExt as _};

mod common;

use common::{codes, grpc_codes, UNKNOWN_NUMBERS};

const DOMAIN: &str = "api.clarifai.com";
const ERROR_INFO_URL: &str = "type.googleapis.com/google.rpc.ErrorInfo";
const RETRY_INFO_URL: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// What a status carrying `code` must hold besides the code itself.
struct Expected {
    code: Code,
    message: String,
    /// The whole `ErrorInfo.metadata`.
    metadata: BTreeMap<String, String>,
    retry: Option<Duration>,
}

impl Expected {
    fn new(code: Code) -> Expected {
        Expected {
            code,
            message: code.description().to_owned(),
            metadata: BTreeMap::from([("code".to_owned(), code.number().to_string())]),
            retry: None,
        }
    }

    fn meta(mut self, key: &str, value: &str) -> Expected {
        self.metadata.insert(key.to_owned(), value.to_owned());
        self
    }
}

fn assert_contract(status: &tonic::Status, want: &Expected) {
    let n = want.code.number();
    assert_eq!(status.code(), want.code.grpc_code(), "gRPC code of {n}");
    assert_eq!(status.message(), want.message, "message of {n}");
    let header = status
        .metadata()
        .get("clarifai-status-code")
        .map(|v| v.as_encoded_bytes());
    assert_eq!(header, Some(n.to_string().as_bytes()), "header of {n}");
    let pushback = status
        .metadata()
        .get("grpc-retry-pushback-ms")
        .map(|v| v.as_encoded_bytes());
    let want_pushback = want.retry.map(|d| d.as_millis().to_string());
    assert_eq!(
        pushback,
        want_pushback.as_ref().map(String::as_bytes),
        "pushback of {n}"
    );

    // prost: the google.rpc.Status exactly as sent, every detail accounted for.
    let sent = rpc::Status::decode(status.details()).expect("details are a google.rpc.Status");
    assert_eq!(sent.code, status.code() as i32, "details code of {n}");
    assert_eq!(sent.message, status.message(), "details message of {n}");
    let urls: Vec<&str> = sent.details.iter().map(|a| a.type_url.as_str()).collect();
    let want_urls = match want.retry {
        Some(_) => vec![ERROR_INFO_URL, RETRY_INFO_URL],
        None => vec![ERROR_INFO_URL],
    };
    assert_eq!(urls, want_urls, "details of {n}");
    let info = rpc::ErrorInfo::decode(sent.details[0].value.as_slice()).expect("ErrorInfo");
    let want_info = rpc::ErrorInfo {
        reason: want.code.name().to_owned(),
        domain: DOMAIN.to_owned(),
        metadata: want.metadata.clone(),
    };
    assert_eq!(info, want_info, "ErrorInfo of {n}");
    if let Some(delay) = want.retry {
        let retry = rpc::RetryInfo::decode(sent.details[1].value.as_slice()).expect("RetryInfo");
        let want_delay = prost_types::Duration {
            seconds: i64::try_from(delay.as_secs()).unwrap(),
            nanos: i32::try_from(delay.subsec_nanos()).unwrap(),
        };
        assert_eq!(retry.retry_delay, Some(want_delay), "RetryInfo of {n}");
    }

    // tonic-types: what the rest of the ecosystem reads.
    let want_meta: HashMap<String, String> = want.metadata.clone().into_iter().collect();
    let details = status
        .check_error_details_vec()
        .expect("tonic-types decodes the details");
    match (details.as_slice(), want.retry) {
        ([ErrorDetail::ErrorInfo(info)], None) => {
            assert_eq!(
                (info.reason.as_str(), info.domain.as_str()),
                (want.code.name(), DOMAIN)
            );
            assert_eq!(info.metadata, want_meta, "tonic-types metadata of {n}");
        }
        ([ErrorDetail::ErrorInfo(info), ErrorDetail::RetryInfo(retry)], Some(delay)) => {
            assert_eq!(
                (info.reason.as_str(), info.domain.as_str()),
                (want.code.name(), DOMAIN)
            );
            assert_eq!(info.metadata, want_meta, "tonic-types metadata of {n}");
            assert_eq!(
                retry.retry_delay,
                Some(delay),
                "tonic-types RetryInfo of {n}"
            );
        }
        (other, _) => panic!("details of {n}: {other:?}"),
    }
    let info = status
        .get_details_error_info()
        .expect("tonic-types finds the ErrorInfo");
    assert_eq!(info.reason, want.code.name());
    assert_eq!(info.domain, DOMAIN);
    assert_eq!(info.metadata, want_meta);
    let all = status.get_error_details();
    assert_eq!(
        all.error_info().map(|i| i.reason.as_str()),
        Some(want.code.name())
    );
    assert_eq!(
        all.retry_info().and_then(|r| r.retry_delay),
        want.retry,
        "tonic-types retry delay of {n}"
    );

    // And this crate reads back what it sent.
    assert_eq!(status.clarifai_code(), want.code, "read-back code of {n}");
    assert_eq!(status.carried_clarifai_code(), Some(want.code));
    assert_eq!(
        status.clarifai_retry_delay(),
        want.retry,
        "read-back delay of {n}"
    );
}

#[test]
fn every_code_becomes_a_tonic_status_per_the_contract() {
    for code in StatusCode::all() {
        assert_contract(&tonic::Status::from(code), &Expected::new(code.into()));
    }
    for code in codes() {
        assert_contract(&tonic::Status::from(code), &Expected::new(code));
    }
}

#[test]
fn unknown_numbers_are_sent_as_unknown_code_with_their_number() {
    for n in UNKNOWN_NUMBERS {
        let status = tonic::Status::from(Code::new(n));
        assert_eq!(status.code(), tonic::Code::Unknown);
        assert_eq!(status.message(), "Unknown status code");
        let info = status.get_details_error_info().unwrap();
        assert_eq!(info.reason, "UNKNOWN_CODE");
        assert_eq!(info.metadata.get("code"), Some(&n.to_string()));
        assert_eq!(status.clarifai_code().number(), n);
    }
}

#[test]
fn builder_message_replaces_the_table_description() {
    for code in codes() {
        let message = format!("custom message for {}: ünïcödé", code.number());
        let status = ErrorBuilder::new(code).message(message.clone()).build();
        let mut want = Expected::new(code);
        want.message = message;
        assert_contract(&status, &want);
    }
}

#[test]
fn builder_req_id_and_retry_delay_are_sent_and_read_back() {
    let delays = [
        Duration::ZERO,
        Duration::from_millis(1),
        Duration::from_millis(1500),
        Duration::new(2, 500),
        Duration::from_secs(3600),
    ];
    for code in codes() {
        for delay in delays {
            let status = ErrorBuilder::new(code)
                .req_id("r")
                .retry_after(delay)
                .build();
            let mut want = Expected::new(code).meta("reqId", "r");
            want.retry = Some(delay);
            assert_contract(&status, &want);
        }
    }
}

#[test]
fn empty_req_id_is_not_sent() {
    let status = ErrorBuilder::new(StatusCode::ConnKeyInvalid)
        .req_id("")
        .build();
    assert_contract(&status, &Expected::new(StatusCode::ConnKeyInvalid.into()));
}

/// A status whose header, details and gRPC code are set independently.
fn forged(grpc_code: tonic::Code, header: Option<&str>, details: &[u8]) -> tonic::Status {
    let mut metadata = MetadataMap::new();
    if let Some(header) = header {
        let value: MetadataValue<_> = header.parse().expect("a valid ASCII metadata value");
        metadata.insert("clarifai-status-code", value);
    }
    tonic::Status::with_details_and_metadata(
        grpc_code,
        "forged",
        bytes::Bytes::copy_from_slice(details),
        metadata,
    )
}

/// Details bytes carrying `code` in a Clarifai `ErrorInfo`, as this crate sends them.
fn details_of(code: Code) -> Vec<u8> {
    tonic::Status::from(code).details().to_vec()
}

fn error_info_details(info: &rpc::ErrorInfo) -> Vec<u8> {
    rpc::Status {
        code: 2,
        message: String::new(),
        details: vec![prost_types::Any {
            type_url: ERROR_INFO_URL.to_owned(),
            value: info.encode_to_vec(),
        }],
    }
    .encode_to_vec()
}

const GARBAGE_HEADERS: [&str; 10] = [
    "",
    " ",
    "abc",
    "11008x",
    "x11008",
    "1.5",
    "0x10",
    "99999999999",
    "-2147483649",
    "--1",
];

fn garbage_details() -> Vec<Vec<u8>> {
    let foreign_domain = rpc::ErrorInfo {
        reason: "CONN_KEY_INVALID".into(),
        domain: "googleapis.com".into(),
        metadata: BTreeMap::from([("code".into(), "11008".into())]),
    };
    let no_code = rpc::ErrorInfo {
        reason: "NOT_A_CLARIFAI_NAME".into(),
        domain: DOMAIN.into(),
        metadata: BTreeMap::from([("code".into(), "eleven".into())]),
    };
    let wrong_url = rpc::Status {
        code: 2,
        message: String::new(),
        details: vec![prost_types::Any {
            type_url: "type.googleapis.com/google.rpc.DebugInfo".into(),
            value: details_of(StatusCode::ConnKeyInvalid.into()),
        }],
    }
    .encode_to_vec();
    vec![
        Vec::new(),
        b"\xff\xff\xff\xff".to_vec(),
        b"not a protobuf message at all".to_vec(),
        vec![0x1a, 0x80, 0x80, 0x80, 0x80, 0x10],
        rpc::Status::default().encode_to_vec(),
        error_info_details(&foreign_domain),
        error_info_details(&no_code),
        wrong_url,
    ]
}

/// What a status with gRPC code `grpc` that carries `carried` reads as: the carried code, unless
/// the status is an error and the code is not a failure (an error never carries SUCCESS or an
/// in-progress code), then the gRPC code's fallback.
fn read_as(grpc: tonic::Code, carried: Code) -> Option<Code> {
    (grpc == tonic::Code::Ok || carried.is_failure()).then_some(carried)
}

#[test]
fn header_wins_over_error_info() {
    let all: Vec<Code> = codes().collect();
    for (i, a) in all.iter().enumerate() {
        let b = all[(i + 1) % all.len()];
        let status = forged(b.grpc_code(), Some(&a.number().to_string()), &details_of(b));
        let want = read_as(b.grpc_code(), *a);
        let fallback = Code::from(mapping::fallback_from_grpc(b.grpc_code()));
        assert_eq!(status.carried_clarifai_code(), want, "{a:?} on {b:?}");
        assert_eq!(status.clarifai_code(), want.unwrap_or(fallback));
        assert_eq!(
            status.to_clarifai_status().code,
            want.unwrap_or(fallback).number()
        );
    }
}

#[test]
fn garbage_header_falls_back_to_error_info() {
    let fallback = Code::from(mapping::fallback_from_grpc(tonic::Code::Internal));
    for code in codes() {
        let want = read_as(tonic::Code::Internal, code).unwrap_or(fallback);
        for header in GARBAGE_HEADERS {
            let status = forged(tonic::Code::Internal, Some(header), &details_of(code));
            assert_eq!(status.clarifai_code(), want, "header {header:?}");
            assert_eq!(status.to_clarifai_status().code, want.number());
        }
    }
}

#[test]
fn error_info_without_code_metadata_is_read_by_its_reason() {
    for code in StatusCode::all() {
        let info = rpc::ErrorInfo {
            reason: code.name().to_owned(),
            domain: DOMAIN.to_owned(),
            metadata: BTreeMap::new(),
        };
        let status = forged(tonic::Code::Internal, None, &error_info_details(&info));
        let fallback = mapping::fallback_from_grpc(tonic::Code::Internal).into();
        let want = read_as(tonic::Code::Internal, code.into()).unwrap_or(fallback);
        assert_eq!(status.clarifai_code(), want);
    }
}

#[test]
fn garbage_header_and_garbage_details_fall_back_to_the_grpc_code() {
    for grpc_code in grpc_codes() {
        let want = mapping::fallback_from_grpc(grpc_code);
        for details in garbage_details() {
            for header in GARBAGE_HEADERS.map(Some).into_iter().chain([None]) {
                let status = forged(grpc_code, header, &details);
                assert_eq!(
                    status.clarifai_code(),
                    want,
                    "{grpc_code:?} {header:?} {details:?}"
                );
                assert_eq!(status.carried_clarifai_code(), None);
                assert_eq!(status.clarifai_retry_delay(), None);
                assert_eq!(status.to_clarifai_status().code, want.number());
            }
        }
    }
}

#[test]
fn plain_grpc_errors_fall_back_by_grpc_code() {
    for grpc_code in grpc_codes() {
        let status = tonic::Status::new(grpc_code, "plain");
        assert_eq!(
            status.clarifai_code(),
            mapping::fallback_from_grpc(grpc_code)
        );
        assert_eq!(status.carried_clarifai_code(), None);
        let back = status.to_clarifai_status();
        assert_eq!(back.code, mapping::fallback_from_grpc(grpc_code).number());
        assert_eq!(back.description, "plain");
    }
}

/// A status with every public field set to something distinct (the private ones are
/// `tests/private_fields.rs`'s).
fn full_status(code: Code) -> pb::Status {
    let n = code.number();
    pb::Status {
        code: n,
        description: format!("description of {n}"),
        details: format!("details of {n}"),
        percent_completed: 42,
        time_remaining: 3600,
        req_id: format!("req-{n}"),
        developer_notes: format!("notes for {n}"),
        http_status_code: 418,
        ..Default::default()
    }
}

#[test]
fn pb_status_public_fields_survive_tonic_round_trip() {
    for code in codes() {
        let status = full_status(code);
        let n = code.number();
        let want = Expected::new(code)
            .meta("reqId", &status.req_id)
            .meta("details", &status.details)
            .meta("percentCompleted", "42")
            .meta("timeRemaining", "3600")
            .meta("developerNotes", &status.developer_notes)
            .meta("httpStatusCode", "418");
        let want = Expected {
            message: status.description.clone(),
            ..want
        };
        for sent in [
            tonic::Status::from(&status),
            tonic::Status::from(status.clone()),
        ] {
            assert_contract(&sent, &want);
            assert_eq!(sent.to_clarifai_status(), status, "round trip of {n}");
        }
    }
}

#[test]
fn pb_status_without_description_sends_the_table_description() {
    for code in codes() {
        let status = pb::Status {
            code: code.number(),
            ..Default::default()
        };
        let sent = tonic::Status::from(&status);
        assert_contract(&sent, &Expected::new(code));
        let back = sent.to_clarifai_status();
        assert_eq!(back.code, code.number());
        assert_eq!(back.description, code.description());
    }
}

#[test]
fn pb_status_numbers_above_i32_max_survive() {
    let status = pb::Status {
        code: StatusCode::JobRunning as i32,
        percent_completed: u32::MAX,
        time_remaining: u32::MAX - 1,
        http_status_code: 1 << 31,
        ..Default::default()
    };
    let back = tonic::Status::from(&status).to_clarifai_status();
    assert_eq!(back.percent_completed, u32::MAX);
    assert_eq!(back.time_remaining, u32::MAX - 1);
    assert_eq!(back.http_status_code, 1 << 31);
}

/// The headers a tonic server writes for this status (trailers, or headers of a trailers-only
/// response).
fn wire_headers(status: &tonic::Status) -> http::HeaderMap {
    status.clone().into_http::<()>().headers().clone()
}

fn padded(headers: &http::HeaderMap) -> http::HeaderValue {
    let raw = headers["grpc-status-details-bin"].as_bytes();
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(raw)
        .expect("tonic writes unpadded base64");
    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
    http::HeaderValue::from_str(&text).unwrap()
}

#[test]
fn header_map_readers_see_every_code_on_the_wire() {
    let delay = Duration::from_millis(1500);
    for code in codes() {
        let n = code.number();
        let status = ErrorBuilder::new(code)
            .req_id("r")
            .retry_after(delay)
            .build();
        let mut headers = wire_headers(&status);
        assert_eq!(grpc::read_code(&headers), Some(code), "header of {n}");
        assert_eq!(grpc::read_grpc_code(&headers), Some(code.grpc_code()));
        assert_eq!(grpc::read_retry_delay(&headers), Some(delay));
        assert_eq!(grpc::read_pushback(&headers), Some(Pushback::After(delay)));

        // Without the code header, the code comes from the base64 details (unpadded, as tonic
        // writes them, and padded, as other peers may).
        headers.remove("clarifai-status-code");
        assert_eq!(grpc::read_code(&headers), Some(code), "details of {n}");
        let padded = padded(&headers);
        headers.insert("grpc-status-details-bin", padded);
        assert_eq!(
            grpc::read_code(&headers),
            Some(code),
            "padded details of {n}"
        );
        assert_eq!(grpc::read_retry_delay(&headers), Some(delay));

        // The pushback alone still gives the delay; nothing gives no code.
        headers.remove("grpc-status-details-bin");
        assert_eq!(grpc::read_code(&headers), None);
        assert_eq!(grpc::read_retry_delay(&headers), Some(delay));
        headers.remove("grpc-retry-pushback-ms");
        assert_eq!(grpc::read_retry_delay(&headers), None);
        assert_eq!(grpc::read_pushback(&headers), None);
    }
}

#[test]
fn tonic_reads_back_every_code_from_the_wire() {
    for code in codes() {
        let status = ErrorBuilder::new(code)
            .message(format!("message of {}: ✓ 100%", code.number()))
            .req_id("r")
            .build();
        let back = tonic::Status::from_header_map(&wire_headers(&status)).expect("grpc-status");
        assert_eq!(back.code(), status.code());
        assert_eq!(back.message(), status.message());
        assert_eq!(back.details(), status.details());
        assert_eq!(back.clarifai_code(), code);
        assert_eq!(back.to_clarifai_status().req_id, "r");
    }
}

#[test]
fn plain_grpc_error_headers_carry_no_clarifai_code() {
    for grpc_code in grpc_codes() {
        let headers = wire_headers(&tonic::Status::new(grpc_code, "plain"));
        assert_eq!(grpc::read_code(&headers), None);
        assert_eq!(grpc::read_grpc_code(&headers), Some(grpc_code));
        assert_eq!(grpc::read_retry_delay(&headers), None);
    }
}

/// Bytes of a header list as HTTP/2 counts them (`SETTINGS_MAX_HEADER_LIST_SIZE`): name, value and
/// 32 per entry.
fn header_list_size(headers: &http::HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 32)
        .sum()
}

/// Texts of every awkward size and shape: the limits of default peers are 8-16 KiB.
fn long_texts() -> Vec<String> {
    vec![
        "a".repeat(6 * 1024),
        "b".repeat(10 * 1024),
        " ".repeat(40_000),
        "é".repeat(300_000),
        "🦀 x".repeat(100_000),
        "z".repeat(1 << 20),
    ]
}

#[test]
fn any_text_size_keeps_the_error_metadata_within_the_cap_and_the_code_readable() {
    for text in long_texts() {
        for code in codes()
            .step_by(7)
            .chain([Code::new(11008), Code::new(21200), Code::new(98004)])
        {
            let status = pb::Status {
                code: code.number(),
                description: text.clone(),
                details: text.clone(),
                req_id: text.clone(),
                developer_notes: text.clone(),
                percent_completed: 1,
                ..Default::default()
            };
            let error = ErrorBuilder::from_status(&status)
                .retry_after(Duration::from_secs(1))
                .build();
            let headers = wire_headers(&error);
            let ours: http::HeaderMap = headers
                .iter()
                .filter(|(name, _)| *name != "content-type" && *name != "grpc-status")
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect();
            let size = header_list_size(&ours);
            assert!(
                size <= grpc::MAX_ERROR_METADATA_BYTES,
                "{} bytes of error metadata for code {} and a text of {} bytes",
                size,
                code.number(),
                text.len()
            );
            assert!(headers["grpc-message"].len() <= grpc::MAX_MESSAGE_BYTES);
            assert_eq!(error.code(), code.grpc_code());
            assert_eq!(grpc::read_code(&headers), Some(code));
            let back = error.to_clarifai_status();
            assert_eq!(back.code, code.number());
            let note = format!("[truncated from {} bytes]", text.len());
            for field in [
                &back.description,
                &back.details,
                &back.req_id,
                &back.developer_notes,
            ] {
                assert!(field.ends_with(&note), "no truncation note");
                let kept = field.strip_suffix(&note).unwrap();
                assert!(
                    text.starts_with(kept.strip_suffix("... ").unwrap()),
                    "a cut that is not a prefix"
                );
            }
            assert!(back.details.len() <= grpc::MAX_FIELD_BYTES);
            // The details carry the same (cut) message as `grpc-message`, as peers check.
            let decoded = rpc::Status::decode(error.details()).unwrap();
            assert_eq!(decoded.message, error.message());
        }
    }
}

#[test]
fn texts_within_the_cap_are_sent_whole() {
    let text = "ok ".repeat(100);
    let error = ErrorBuilder::new(StatusCode::ConnKeyInvalid)
        .message(text.clone())
        .req_id("r".repeat(grpc::MAX_FIELD_BYTES))
        .build();
    assert_eq!(error.message(), text);
    assert_eq!(
        error.to_clarifai_status().req_id.len(),
        grpc::MAX_FIELD_BYTES
    );
}

#[cfg(feature = "server")]
#[tokio::test]
async fn status_layer_cuts_a_long_plain_error_so_its_code_arrives() {
    use tower::{Layer as _, ServiceExt as _};

    let text = "é".repeat(1 << 19);
    let service = tower::service_fn(move |_: http::Request<()>| {
        let text = text.clone();
        async move {
            Ok::<_, std::convert::Infallible>(tonic::Status::internal(text).into_http::<String>())
        }
    });
    let response = clarifai_status::server::status::StatusLayer::new()
        .layer(service)
        .oneshot(http::Request::new(()))
        .await
        .unwrap();
    let headers = response.headers();
    assert!(headers["grpc-message"].len() <= grpc::MAX_MESSAGE_BYTES);
    let ours: http::HeaderMap = headers
        .iter()
        .filter(|(name, _)| *name != "content-type" && *name != "grpc-status")
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    assert!(header_list_size(&ours) <= grpc::MAX_ERROR_METADATA_BYTES);
    let code = Code::from(mapping::fallback_from_grpc(tonic::Code::Internal));
    assert_eq!(grpc::read_code(headers), Some(code));
    let status = tonic::Status::from_header_map(headers).unwrap();
    assert_eq!(status.code(), tonic::Code::Internal);
    assert!(status.message().starts_with('é'));
    assert!(status
        .message()
        .ends_with(&format!("[truncated from {} bytes]", 1 << 20)));
    let details = rpc::Status::decode(status.details()).unwrap();
    assert_eq!(details.message, status.message());
}
