//! Whole-table invariants over `StatusCode::all()`, the documented exceptions read from the proto
//! itself, the fallbacks, and anchor facts from Clarifai's observed behaviour.

use clarifai_status::mapping::{fallback_from_grpc, fallback_from_http, http_status_from_grpc};
use clarifai_status::{Code, Outcome, StatusCode};

mod common;
use common::{grpc_codes, UNKNOWN_NUMBERS};

const PROTO: &str = include_str!("../proto/clarifai/api/status/status_code.proto");
const META: &str = include_str!("../proto/clarifai/status/meta.proto");

fn code(name: &str) -> StatusCode {
    StatusCode::from_name(name).unwrap_or_else(|| panic!("{name} is in the table"))
}

fn is_2xx(status: http::StatusCode) -> bool {
    status.is_success()
}

#[test]
fn table_is_not_empty_and_in_number_order() {
    let all: Vec<StatusCode> = StatusCode::all().collect();
    assert!(all.len() > 400, "{} codes", all.len());
    assert!(all.windows(2).all(|w| w[0].number() < w[1].number()));
    for c in &all {
        assert_eq!(StatusCode::from_number(c.number()), Some(*c));
        assert_eq!(StatusCode::from_name(c.name()), Some(*c));
    }
}

/// The `//` comment block right above the line declaring `name = number`.
fn comment_above(name: &str, number: i32) -> Vec<&'static str> {
    let lines: Vec<&'static str> = PROTO.lines().collect();
    let declaration = format!("{name} = {number}");
    let at = lines
        .iter()
        .position(|line| {
            let line = line.trim_start();
            line.strip_prefix(&declaration)
                .is_some_and(|rest| rest.starts_with([' ', ';', '[']))
        })
        .unwrap_or_else(|| panic!("{declaration} is declared in the proto"));
    let mut comment: Vec<&str> = lines[..at]
        .iter()
        .rev()
        .map(|line| line.trim_start())
        .take_while(|line| line.starts_with("//"))
        .collect();
    comment.reverse();
    comment
}

#[test]
fn http_follows_the_grpc_code_unless_the_proto_says_why() {
    let mut exceptions = Vec::new();
    for c in StatusCode::all() {
        if http_status_from_grpc(c.grpc_code()) == c.http_status() {
            continue;
        }
        exceptions.push(c);
        let comment = comment_above(c.name(), c.number());
        assert!(
            comment.iter().any(|line| line.contains("HTTP")),
            "{c} ({}) is HTTP {} where gRPC {:?} means {}, and the proto's comment above it does \
             not say why: {comment:?}",
            c.number(),
            c.http_status().as_u16(),
            c.grpc_code(),
            http_status_from_grpc(c.grpc_code()).as_u16(),
        );
    }
    // The anchors below are exceptions; the check above is not vacuous.
    for anchor in ["MIXED_STATUS", "ACCEPTED", "MOVED"] {
        assert!(exceptions.contains(&code(anchor)), "{anchor}");
    }
}

#[test]
fn fallback_from_grpc_maps_back_to_the_same_grpc_code() {
    for g in grpc_codes() {
        let fallback = fallback_from_grpc(g);
        match g {
            // Documented: no general Clarifai code means these; FAILURE is gRPC UNKNOWN.
            tonic::Code::DataLoss | tonic::Code::FailedPrecondition => {
                assert_eq!(fallback, StatusCode::Failure, "{g:?}");
                assert_eq!(fallback.grpc_code(), tonic::Code::Unknown);
            }
            _ => assert_eq!(fallback.grpc_code(), g, "{g:?} falls back to {fallback}"),
        }
        let expected_outcome = if g == tonic::Code::Ok {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        assert_eq!(fallback.outcome(), expected_outcome, "{g:?}");
    }
}

#[test]
fn fallback_from_http_maps_2xx_to_success_and_errors_to_failures() {
    for n in 100..=599u16 {
        let status = http::StatusCode::from_u16(n).unwrap();
        let fallback = fallback_from_http(status);
        match n {
            200..=299 => assert_eq!(fallback.outcome(), Outcome::Success, "{n} → {fallback}"),
            400..=599 => {
                assert_eq!(fallback.outcome(), Outcome::Failure, "{n} → {fallback}");
                assert!(!is_2xx(fallback.http_status()), "{n} → {fallback}");
            }
            _ => assert_eq!(fallback.outcome(), Outcome::Failure, "{n} → {fallback}"),
        }
    }
    assert_eq!(
        fallback_from_http(http::StatusCode::OK),
        StatusCode::Success
    );
    assert_eq!(
        fallback_from_http(http::StatusCode::ACCEPTED),
        StatusCode::Accepted
    );
    assert_eq!(
        fallback_from_http(http::StatusCode::MULTI_STATUS),
        StatusCode::MixedStatus
    );
}

#[test]
fn clarifai_http_statuses_as_observed() {
    let cases = [
        ("CONN_KEY_INVALID", 401),
        ("CONN_KEY_NOT_FOUND", 401),
        ("CONN_DOES_NOT_EXIST", 404),
        ("MIXED_STATUS", 207),
        ("CONN_THROTTLED", 429),
        ("CONN_METHOD_NOT_ALLOWED", 400),
        ("MOVED", 307),
        ("ACCEPTED", 202),
    ];
    for (name, http) in cases {
        assert_eq!(code(name).http_status().as_u16(), http, "{name}");
    }
    assert_eq!(code("CONN_KEY_INVALID").number(), 11008);
    assert_eq!(code("CONN_KEY_NOT_FOUND").number(), 11009);
    assert_eq!(code("CONN_DOES_NOT_EXIST").number(), 11101);
    assert_eq!(Code::new(11008).http_status().as_u16(), 401);
    assert_eq!(Code::new(11009).http_status().as_u16(), 401);
    assert_eq!(Code::new(11101).http_status().as_u16(), 404);
}

#[test]
fn transient_failures_are_retryable() {
    for name in [
        "MODEL_DEPLOYING",
        "MODEL_LOADING",
        "MODEL_BUSY_PLEASE_RETRY",
        "RUNNER_NEEDS_RETRY",
        "CONN_THROTTLED",
    ] {
        let c = code(name);
        assert_eq!(c.outcome(), Outcome::Failure, "{name}");
        assert!(c.is_retryable(), "{name}");
    }
}

#[test]
fn permanent_failures_are_not_retryable() {
    for name in [
        "CONN_KEY_INVALID",
        "CONN_EXCEED_MONTHLY_LIMIT",
        "INPUT_INVALID_ARGUMENT",
    ] {
        let c = code(name);
        assert_eq!(c.outcome(), Outcome::Failure, "{name}");
        assert!(!c.is_retryable(), "{name}");
    }
}

#[test]
fn clarifai_polling_codes_are_in_progress() {
    for name in [
        "INPUT_DOWNLOAD_PENDING",
        "INPUT_DOWNLOAD_IN_PROGRESS",
        "MODEL_QUEUED_FOR_TRAINING",
        "MODEL_TRAINING",
        "MODEL_NOT_EVALUATED",
        "MODEL_QUEUED_FOR_EVALUATION",
        "MODEL_EVALUATING",
        "DATASET_VERSION_PENDING",
        "DATASET_VERSION_IN_PROGRESS",
        "DATASET_VERSION_EXPORT_PENDING",
        "DATASET_VERSION_EXPORT_IN_PROGRESS",
        "JOB_QUEUED",
        "JOB_RUNNING",
    ] {
        let c = code(name);
        assert_eq!(c.outcome(), Outcome::InProgress, "{name}");
        assert!(!c.is_retryable(), "{name}");
        assert_eq!(c.grpc_code(), tonic::Code::Ok, "{name}");
    }
}

#[test]
fn zero_and_unknown_numbers_are_unknown_non_retryable_failures() {
    let zero = Code::from(StatusCode::Zero);
    assert_eq!(zero.number(), 0);
    for c in UNKNOWN_NUMBERS.into_iter().map(Code::new).chain([zero]) {
        assert_eq!(c.outcome(), Outcome::Failure, "{c:?}");
        assert_eq!(c.grpc_code(), tonic::Code::Unknown, "{c:?}");
        assert_eq!(
            c.http_status(),
            http::StatusCode::INTERNAL_SERVER_ERROR,
            "{c:?}"
        );
        assert!(!c.is_retryable(), "{c:?}");
    }
    for n in UNKNOWN_NUMBERS {
        assert!(!Code::new(n).is_known(), "{n}");
    }
}

/// Every code's facts as the proto declares them, read from its text here (not through build.rs):
/// an oracle for the generated number index and fact tables, which must give each number its
/// own facts.
/// `meta.proto`'s number of the gRPC code named `grpc` (`UNAVAILABLE = 14 [...]`), read from its
/// text.
fn grpc_number(grpc: &str) -> i32 {
    let declaration = format!("{grpc} = ");
    META.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(&declaration))
        .and_then(|rest| rest.split_once(' '))
        .and_then(|(number, _)| number.parse().ok())
        .unwrap_or_else(|| panic!("meta.proto declares no gRPC code {grpc}"))
}

/// `meta.proto`'s `canonical_http` of the gRPC code named `grpc`, read from its text.
fn canonical_http(grpc: &str) -> &'static str {
    let declaration = format!("{grpc} = ");
    META.lines()
        .map(str::trim)
        .find(|l| l.starts_with(&declaration))
        .and_then(|l| l.split_once("(canonical_http) = "))
        .and_then(|(_, rest)| rest.strip_suffix("];"))
        .unwrap_or_else(|| panic!("meta.proto declares no canonical_http for {grpc}"))
}

#[test]
fn every_code_reads_the_facts_its_proto_option_declares() {
    let mut checked = 0;
    let lines: Vec<&str> = PROTO.lines().map(str::trim).collect();
    for (i, line) in lines.iter().enumerate() {
        let Some((head, _)) = line.split_once(" [") else {
            continue;
        };
        if !line.ends_with("(clarifai.status.meta.code) = {") {
            continue;
        }
        let (name, number) = head.split_once(" = ").expect("NAME = NUMBER");
        let number: i32 = number.trim().parse().expect("a number");
        let optional = |key: &str| -> Option<&str> {
            lines[i + 1..]
                .iter()
                .take_while(|l| !l.starts_with("}];"))
                .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix(": ")))
        };
        let field =
            |key: &str| -> &str { optional(key).unwrap_or_else(|| panic!("{name}: no {key}")) };
        let code = StatusCode::from_number(number).expect("declared numbers are known");
        assert_eq!(code.name(), name);
        let expected_outcome = match field("outcome") {
            "SUCCESS" => Outcome::Success,
            "IN_PROGRESS" => Outcome::InProgress,
            "FAILURE" => Outcome::Failure,
            other => panic!("{name}: outcome {other}"),
        };
        let grpc = tonic::Code::from_i32(grpc_number(field("grpc")));
        // Written only where they differ from the defaults: the gRPC code's canonical HTTP status
        // (meta.proto), and not retryable.
        let http: u16 = optional("http")
            .unwrap_or_else(|| canonical_http(field("grpc")))
            .parse()
            .expect("an HTTP status");
        let retryable = optional("retryable") == Some("true");
        let every_method = optional("retryable_on_every_method") == Some("true");
        let context = format!("{name} ({number})");
        assert_eq!(code.outcome(), expected_outcome, "{context}: outcome");
        assert_eq!(code.grpc_code(), grpc, "{context}: grpc");
        assert_eq!(code.http_status().as_u16(), http, "{context}: http");
        assert_eq!(code.is_retryable(), retryable, "{context}: retryable");
        assert_eq!(
            code.is_retryable_on_every_method(),
            every_method,
            "{context}: retryable_on_every_method"
        );
        assert_eq!(
            code.description(),
            field("description").trim_matches('"'),
            "{context}: description"
        );
        assert_eq!(
            code.category(),
            field("category").trim_matches('"'),
            "{context}: category"
        );
        // The same facts through a wire number.
        let wire = Code::new(number);
        assert_eq!(
            (
                wire.outcome(),
                wire.grpc_code(),
                wire.http_status(),
                wire.is_retryable(),
                wire.is_retryable_on_every_method(),
                wire.name(),
                wire.description(),
                wire.category(),
                wire.known(),
            ),
            (
                code.outcome(),
                code.grpc_code(),
                code.http_status(),
                code.is_retryable(),
                code.is_retryable_on_every_method(),
                code.name(),
                code.description(),
                code.category(),
                Some(code),
            ),
            "{name}"
        );
        checked += 1;
    }
    assert_eq!(
        checked,
        StatusCode::all().count(),
        "one declaration per number"
    );
}

#[test]
fn the_codes_retryable_on_every_method_are_clarifais_refusals() {
    let every_method: Vec<&str> = StatusCode::all()
        .filter(|c| c.is_retryable_on_every_method())
        .map(StatusCode::name)
        .collect();
    assert_eq!(
        every_method,
        [
            "CONN_EXCEED_HOURLY_LIMIT",
            "CONN_THROTTLED",
            "MODEL_DEPLOYING",
            "MODEL_QUEUED_FOR_DEPLOYMENT",
            "MODEL_BUSY_PLEASE_RETRY",
            "MODEL_LOADING",
            "RPC_REQUEST_QUEUE_FULL",
        ]
    );
    for code in StatusCode::all().filter(|c| c.is_retryable_on_every_method()) {
        assert!(code.is_retryable() && code.is_failure(), "{code}");
    }
    for n in UNKNOWN_NUMBERS {
        assert!(!Code::new(n).is_retryable_on_every_method(), "{n}");
    }
}
