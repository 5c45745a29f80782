//! Building a Clarifai-coded `tonic::Status` and reading its code back.
//!
//! Building is compared with a bare `tonic::Status::new` plus one metadata insert (the floor for
//! any status carrying a code header) and with the generic tonic-types path
//! (`with_error_details_and_metadata` with an `ErrorInfo`). Reading is measured by the header,
//! by the details alone (header removed), and from raw headers (`grpc::read_code`) with base64
//! details. The table printed at the end gives each figure (median ns per call over criterion's
//! samples) and its ratio to the baseline.
//!
//! `cargo bench --bench status`

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use clarifai_status::grpc::{self, ClarifaiStatusExt, ErrorBuilder};
use clarifai_status::{Code, StatusCode};
use criterion::{criterion_group, criterion_main, Criterion};
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic_types::{ErrorDetails, StatusExt as _};

mod common;
use common::Samples;

/// A typical failure: an invalid API key.
const CODE: StatusCode = StatusCode::ConnKeyInvalid;

static SAMPLES: Samples = Samples::new();

/// Benchmarks `f` (its result dropped inside the timed loop), recording ns per call.
fn bench<R>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    group_name: &str,
    id: &str,
    f: impl Fn() -> R,
) {
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(f());
            }
            let elapsed = start.elapsed();
            SAMPLES.record(group_name, id, elapsed.as_nanos() as f64 / iters as f64);
            elapsed
        })
    });
}

fn build(c: &mut Criterion) {
    let name = "build";
    let code = black_box(CODE);
    let mut g = c.benchmark_group(name);
    bench(&mut g, name, "bare Status::new + 1 metadata insert", || {
        let mut status = tonic::Status::new(code.grpc_code(), code.description());
        status.metadata_mut().insert(
            clarifai_status::CODE_HEADER,
            MetadataValue::from(code.number()),
        );
        status
    });
    bench(&mut g, name, "Status::from(StatusCode)", || {
        tonic::Status::from(code)
    });
    bench(&mut g, name, "ErrorBuilder + req_id", || {
        ErrorBuilder::new(code).req_id("req-42").build()
    });
    bench(&mut g, name, "ErrorBuilder + req_id + retry_after", || {
        ErrorBuilder::new(code)
            .req_id("req-42")
            .retry_after(Duration::from_millis(250))
            .build()
    });
    bench(
        &mut g,
        name,
        "tonic-types with_error_details_and_metadata",
        || {
            let mut metadata = MetadataMap::with_capacity(1);
            metadata.insert(
                clarifai_status::CODE_HEADER,
                MetadataValue::from(code.number()),
            );
            let info = HashMap::from([("code".to_owned(), code.number().to_string())]);
            tonic::Status::with_error_details_and_metadata(
                code.grpc_code(),
                code.description(),
                ErrorDetails::with_error_info(code.name(), grpc::DOMAIN, info),
                metadata,
            )
        },
    );
    g.finish();
}

fn read(c: &mut Criterion) {
    let name = "read";
    let with_header = tonic::Status::from(CODE);
    let mut details_only = tonic::Status::from(CODE);
    details_only
        .metadata_mut()
        .remove(clarifai_status::CODE_HEADER);
    let mut headers = http::HeaderMap::new();
    if details_only.add_header(&mut headers).is_err() {
        panic!("status does not fit in headers");
    }
    let mut headers_with_code = headers.clone();
    headers_with_code.insert(
        clarifai_status::CODE_HEADER,
        http::HeaderValue::from(CODE.number()),
    );
    let expected = Code::from(CODE);
    assert_eq!(with_header.clarifai_code(), expected);
    assert_eq!(details_only.clarifai_code(), expected);
    assert_eq!(grpc::read_code(&headers), Some(expected));
    assert_eq!(grpc::read_code(&headers_with_code), Some(expected));

    let mut g = c.benchmark_group(name);
    bench(
        &mut g,
        name,
        "ClarifaiStatusExt::clarifai_code, by header",
        || black_box(&with_header).clarifai_code(),
    );
    bench(
        &mut g,
        name,
        "ClarifaiStatusExt::clarifai_code, by details",
        || black_box(&details_only).clarifai_code(),
    );
    bench(
        &mut g,
        name,
        "grpc::read_code(HeaderMap), by header",
        || grpc::read_code(black_box(&headers_with_code)),
    );
    bench(
        &mut g,
        name,
        "grpc::read_code(HeaderMap), by base64 details",
        || grpc::read_code(black_box(&headers)),
    );
    bench(
        &mut g,
        name,
        "tonic-types get_details_error_info (for comparison)",
        || black_box(&details_only).get_details_error_info(),
    );
    g.finish();
}

/// Prints one row; `baseline` None prints no ratio, `target` a limit on the ratio (or on the
/// ns when there is no baseline).
fn row(group: &str, id: &str, baseline: Option<&str>, target: Option<(&str, f64)>) {
    let Some(ns) = SAMPLES.figure(group, id) else {
        return;
    };
    let ratio = baseline
        .and_then(|b| SAMPLES.figure(group, b))
        .map(|base| ns / base);
    let shown = ratio.map_or(String::new(), |r| format!("{r:.2}"));
    let (target_text, verdict) = match target {
        None => (String::new(), ""),
        Some((text, limit)) => {
            let value = ratio.unwrap_or(ns);
            (
                text.to_owned(),
                if value <= limit { "met" } else { "NOT met" },
            )
        }
    };
    println!("| {id} | {ns:.1} | {shown} | {target_text} | {verdict} |");
}

/// Prints the ratio table (run last, after every group).
fn summary(_c: &mut Criterion) {
    // Nothing measured under `cargo test --benches`, which runs each benchmark once.
    let measured = SAMPLES.any_measured();
    if !measured {
        return;
    }
    let base = "bare Status::new + 1 metadata insert";
    println!("\n## build: ns per status vs a bare Status::new + 1 metadata insert\n");
    println!("| build | ns | ratio | target | |\n|---|---:|---:|---|---|");
    row("build", base, Some(base), None);
    row(
        "build",
        "Status::from(StatusCode)",
        Some(base),
        Some(("<= 2.0", 2.0)),
    );
    for id in [
        "ErrorBuilder + req_id",
        "ErrorBuilder + req_id + retry_after",
        "tonic-types with_error_details_and_metadata",
    ] {
        row("build", id, Some(base), None);
    }

    println!("\n## read: ns per read\n");
    println!("| read | ns | ratio | target | |\n|---|---:|---:|---|---|");
    row(
        "read",
        "ClarifaiStatusExt::clarifai_code, by header",
        None,
        Some(("< 100 ns", 100.0)),
    );
    for id in [
        "ClarifaiStatusExt::clarifai_code, by details",
        "grpc::read_code(HeaderMap), by header",
        "grpc::read_code(HeaderMap), by base64 details",
        "tonic-types get_details_error_info (for comparison)",
    ] {
        row("read", id, None, None);
    }
    println!();
}

criterion_group! {
    name = benches;
    config = common::criterion(2);
    targets = build, read, summary
}
criterion_main!(benches);
