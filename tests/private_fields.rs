//! The private fields of `pb::Status` never leave: no conversion puts them in a message, details,
//! metadata, header or JSON body. The fields are driven from `pb::Status::PRIVATE_FIELDS`, which
//! build.rs generates from the proto, so a new private field fails here until it is covered.
// Reads and writes Clarifai's REST JSON bodies.
#![cfg(feature = "json")]

use clarifai_status::grpc::ClarifaiStatusExt;
use clarifai_status::pb::{self, BaseResponse};
use clarifai_status::response::into_result;
use clarifai_status::{rest, Code, StatusCode};
use prost::Message as _;

mod common;
use common::codes;

/// Sets a private field to distinctive markers (lower-case alphanumerics, which no encoding on
/// the way out changes) and returns them. Panics on a field this test does not know.
fn set_private(status: &mut pb::Status, field: &str) -> Vec<String> {
    let marker = |part: &str| format!("zqxprivate{}{part}zqx", field.replace('_', ""));
    match field {
        "stack_trace" => {
            status.stack_trace = vec![marker("frame0"), marker("frame1"), marker("frame2")];
            status.stack_trace.clone()
        }
        "internal_details" => {
            status.internal_details = marker("text");
            vec![status.internal_details.clone()]
        }
        "redirect_info" => {
            let info = pb::RedirectInfo {
                url: format!("https://{}.example.com/{}", marker("host"), marker("path")),
                resource_type: marker("resourcetype"),
                old_resource_id: marker("oldid"),
                new_resource_id: marker("newid"),
            };
            let markers = vec![
                marker("host"),
                marker("path"),
                info.resource_type.clone(),
                info.old_resource_id.clone(),
                info.new_resource_id.clone(),
            ];
            status.redirect_info = Some(info);
            markers
        }
        other => {
            panic!("private field `{other}` is not covered by this test: add it to set_private")
        }
    }
}

/// A status with every public field set, and every private field set to markers.
fn leaky(code: Code) -> (pb::Status, Vec<String>) {
    let n = code.number();
    let mut status = pb::Status {
        code: n,
        description: format!("description of {n}"),
        details: format!("details of {n}"),
        percent_completed: 50,
        time_remaining: 60,
        req_id: format!("req-{n}"),
        developer_notes: format!("notes for {n}"),
        http_status_code: 307,
        ..Default::default()
    };
    let mut markers = Vec::new();
    for field in pb::Status::PRIVATE_FIELDS {
        markers.extend(set_private(&mut status, field));
    }
    (status, markers)
}

fn contains(haystack: &[u8], marker: &str) -> bool {
    let haystack = haystack.to_ascii_lowercase();
    haystack
        .windows(marker.len())
        .any(|window| window == marker.as_bytes())
}

fn assert_absent(what: &str, haystack: &[u8], markers: &[String]) {
    for marker in markers {
        assert!(!contains(haystack, marker), "{what} leaks `{marker}`");
    }
}

fn assert_headers_clean(what: &str, headers: &http::HeaderMap, markers: &[String]) {
    for (name, value) in headers {
        assert_absent(
            &format!("{what}: header name"),
            name.as_str().as_bytes(),
            markers,
        );
        assert_absent(&format!("{what}: header {name}"), value.as_bytes(), markers);
    }
}

fn assert_tonic_clean(what: &str, status: &tonic::Status, markers: &[String]) {
    assert_absent(
        &format!("{what}: message"),
        status.message().as_bytes(),
        markers,
    );
    assert_absent(&format!("{what}: details"), status.details(), markers);
    for entry in status.metadata().iter() {
        match entry {
            tonic::metadata::KeyAndValueRef::Ascii(key, value) => {
                assert_absent(
                    &format!("{what}: metadata key"),
                    key.as_str().as_bytes(),
                    markers,
                );
                assert_absent(
                    &format!("{what}: metadata {key}"),
                    value.as_encoded_bytes(),
                    markers,
                );
            }
            tonic::metadata::KeyAndValueRef::Binary(key, value) => {
                assert_absent(
                    &format!("{what}: metadata key"),
                    key.as_str().as_bytes(),
                    markers,
                );
                let decoded = value.to_bytes().expect("valid binary metadata");
                assert_absent(&format!("{what}: metadata {key}"), &decoded, markers);
            }
        }
    }
    // What a server writes on the wire for it.
    let headers = status.clone().into_http::<()>().headers().clone();
    assert_headers_clean(&format!("{what}: wire headers"), &headers, markers);

    let read_back = status.to_clarifai_status();
    assert_status_clean(&format!("{what}: to_clarifai_status"), &read_back, markers);
}

fn assert_status_clean(what: &str, status: &pb::Status, markers: &[String]) {
    assert!(status.stack_trace.is_empty(), "{what}: stack_trace");
    assert!(
        status.internal_details.is_empty(),
        "{what}: internal_details"
    );
    assert_eq!(status.redirect_info, None, "{what}: redirect_info");
    assert_absent(what, &status.encode_to_vec(), markers);
}

#[test]
fn private_fields_are_exactly_the_three_the_proto_marks() {
    assert_eq!(
        pb::Status::PRIVATE_FIELDS,
        ["stack_trace", "internal_details", "redirect_info"]
    );
}

#[test]
fn markers_are_set_and_detectable() {
    let (status, markers) = leaky(StatusCode::Moved.into());
    let bytes = status.encode_to_vec();
    for marker in &markers {
        assert!(contains(&bytes, marker), "`{marker}` was not set");
    }
    let leaked = tonic::Status::new(tonic::Code::Internal, markers.join(" "));
    for marker in &markers {
        assert!(contains(leaked.message().as_bytes(), marker));
    }
}

#[test]
fn strip_private_clears_every_private_field() {
    for code in codes() {
        let (mut status, markers) = leaky(code);
        status.strip_private();
        assert_status_clean("strip_private", &status, &markers);
    }
}

#[test]
fn tonic_status_from_pb_status_drops_private_fields() {
    for code in codes() {
        let (status, markers) = leaky(code);
        assert_tonic_clean("from &pb::Status", &tonic::Status::from(&status), &markers);
        assert_tonic_clean("from pb::Status", &tonic::Status::from(status), &markers);
    }
}

#[test]
fn to_clarifai_status_drops_private_fields_and_keeps_public_ones() {
    for code in codes() {
        let (status, markers) = leaky(code);
        let back = tonic::Status::from(&status).to_clarifai_status();
        assert_status_clean("to_clarifai_status", &back, &markers);
        let mut public = status;
        public.strip_private();
        assert_eq!(back, public);
    }
}

#[test]
fn rest_json_drops_private_fields() {
    for code in codes() {
        let (status, markers) = leaky(code);
        let body = rest::to_json(&status);
        assert_absent("to_json", body.as_bytes(), &markers);
        for name in [
            "stack_trace",
            "internal_details",
            "redirect_info",
            "stackTrace",
        ] {
            assert!(!body.contains(name), "to_json writes `{name}`");
        }
        let parsed = rest::parse_json(body.as_bytes()).expect("parses");
        assert_status_clean("parse_json", &parsed, &markers);
    }
}

#[test]
fn rest_response_drops_private_fields() {
    for code in codes() {
        let (status, markers) = leaky(code);
        let response = rest::response(&status);
        assert_absent("response body", response.body().as_bytes(), &markers);
        assert_headers_clean("response", response.headers(), &markers);
        // A MOVED response takes no Location from redirect_info.
        assert!(!response.headers().contains_key(http::header::LOCATION));
        let (parts, body) = response.into_parts();
        let back = rest::read_status_or_fallback(parts.status, &parts.headers, body.as_bytes());
        assert_status_clean("read_status", &back, &markers);
    }
}

#[test]
fn into_result_drops_private_fields() {
    for code in codes() {
        let (status, markers) = leaky(code);
        let response = BaseResponse {
            status: Some(status.clone()),
        };
        match into_result(response.clone()) {
            Err(error) => assert_tonic_clean("into_result", &error, &markers),
            // Passing responses are the caller's own, unchanged.
            Ok(passed) => assert_eq!(passed, response),
        }
        if let Err(error) = into_result(status) {
            assert_tonic_clean("into_result on pb::Status", &error, &markers);
        }
    }
}
