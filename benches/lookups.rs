//! Lookups side by side with prost's and tonic's: each fact of a code (target <= 10 ns), number
//! to code against prost's `TryFrom<i32>` (no slower), name to code against prost's
//! `from_str_name` (within 1.2x); tonic's `Code::from_i32` as a reference.
//!
//! Every measurement walks a shuffled array of all inputs (fixed seed), so branch predictors and
//! caches see the spread of a real mix of codes rather than one hot code, and every input passes
//! through `black_box` on its own, so the compiler cannot specialise a lookup for the loop. The
//! tables printed at the end give nanoseconds per lookup (median over criterion's samples), the
//! ratio to the group's baseline, and whether each target is met.
//!
//! `cargo bench --bench lookups`

use std::hint::black_box;
use std::time::Instant;

use clarifai_status::{Code, StatusCode};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

mod common;
use common::Samples;

/// xorshift64, for a fixed shuffle without a new dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

fn shuffled<T>(mut items: Vec<T>) -> Vec<T> {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for i in (1..items.len()).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
    items
}

static SAMPLES: Samples = Samples::new();

/// Benchmarks `f` over every input once per iteration, recording ns per lookup. Every input
/// passes through `black_box` on its own, so the compiler cannot specialise the lookup for the
/// loop (for tonic's `from_i32`, a range check it would otherwise fold into the loop).
fn bench_each<T: Copy, R>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    group_name: &str,
    id: &str,
    inputs: &[T],
    f: impl Fn(T) -> R,
) {
    group.throughput(Throughput::Elements(inputs.len() as u64));
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                for &x in black_box(inputs) {
                    black_box(f(black_box(x)));
                }
            }
            let elapsed = start.elapsed();
            SAMPLES.record(
                group_name,
                id,
                elapsed.as_nanos() as f64 / (iters as f64 * inputs.len() as f64),
            );
            elapsed
        })
    });
}

fn numbers() -> Vec<i32> {
    StatusCode::all().map(StatusCode::number).collect()
}

/// Every name: printed names and aliases.
fn names() -> Vec<&'static str> {
    StatusCode::all()
        .flat_map(|c| std::iter::once(c.name()).chain(c.aliases().iter().copied()))
        .collect()
}

/// Plausible non-names of the same lengths: each name with one byte changed, lower-cased, and
/// truncated by one byte.
fn non_names() -> Vec<String> {
    let mut out = Vec::new();
    for name in names() {
        let mut changed = name.as_bytes().to_vec();
        let mid = changed.len() / 2;
        changed[mid] = if changed[mid] == b'X' { b'Y' } else { b'X' };
        out.push(String::from_utf8(changed).unwrap_or_default());
        out.push(name.to_ascii_lowercase());
        out.push(name[..name.len() - 1].to_owned());
    }
    out.retain(|s| StatusCode::from_name(s).is_none());
    out
}

/// Numbers near the table's that it does not have, and some far from it.
fn non_numbers() -> Vec<i32> {
    let mut out: Vec<i32> = numbers()
        .iter()
        .flat_map(|n| [n + 1, n - 1, n + 50, -n])
        .chain([i32::MIN, i32::MAX, 1, 999_999])
        .filter(|n| StatusCode::from_number(*n).is_none())
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

fn facts(c: &mut Criterion) {
    let name = "facts";
    let codes = shuffled(StatusCode::all().collect::<Vec<_>>());
    let numbers: Vec<i32> = codes.iter().map(|c| c.number()).collect();
    // tonic's lookup over as many inputs, all in 0..=16 so none takes its out-of-range arm.
    let grpc_numbers: Vec<i32> = numbers.iter().map(|n| n.rem_euclid(17)).collect();

    let mut group = c.benchmark_group(name);
    let g = &mut group;
    bench_each(
        g,
        name,
        "tonic Code::from_i32",
        &grpc_numbers,
        tonic::Code::from_i32,
    );
    bench_each(
        g,
        name,
        "StatusCode grpc_code",
        &codes,
        StatusCode::grpc_code,
    );
    bench_each(
        g,
        name,
        "StatusCode http_status",
        &codes,
        StatusCode::http_status,
    );
    bench_each(g, name, "StatusCode outcome", &codes, StatusCode::outcome);
    bench_each(
        g,
        name,
        "StatusCode is_retryable",
        &codes,
        StatusCode::is_retryable,
    );
    bench_each(
        g,
        name,
        "StatusCode is_retryable_on_every_method",
        &codes,
        StatusCode::is_retryable_on_every_method,
    );
    bench_each(g, name, "StatusCode name", &codes, StatusCode::name);
    bench_each(
        g,
        name,
        "StatusCode description",
        &codes,
        StatusCode::description,
    );
    bench_each(g, name, "StatusCode category", &codes, StatusCode::category);
    bench_each(g, name, "StatusCode aliases", &codes, StatusCode::aliases);
    bench_each(
        g,
        name,
        "StatusCode removed_in",
        &codes,
        StatusCode::removed_in,
    );
    bench_each(g, name, "Code grpc_code", &numbers, |n| {
        Code::new(n).grpc_code()
    });
    bench_each(g, name, "Code http_status", &numbers, |n| {
        Code::new(n).http_status()
    });
    bench_each(g, name, "Code outcome", &numbers, |n| {
        Code::new(n).outcome()
    });
    bench_each(g, name, "Code is_retryable", &numbers, |n| {
        Code::new(n).is_retryable()
    });
    bench_each(g, name, "Code name", &numbers, |n| Code::new(n).name());
    bench_each(g, name, "Code description", &numbers, |n| {
        Code::new(n).description()
    });
    group.finish();
}

fn number_to_code(c: &mut Criterion) {
    let name = "number_to_code";
    let hits = shuffled(numbers());
    let misses = shuffled(non_numbers());
    let mut mixed = hits.clone();
    mixed.extend(&misses);
    let mixed = shuffled(mixed);

    let mut g = c.benchmark_group(name);
    for (kind, inputs) in [("hits", &hits), ("misses", &misses), ("mixed", &mixed)] {
        bench_each(
            &mut g,
            name,
            &format!("prost StatusCode::try_from, {kind}"),
            inputs,
            |n| StatusCode::try_from(n).ok(),
        );
        bench_each(
            &mut g,
            name,
            &format!("StatusCode::from_number, {kind}"),
            inputs,
            StatusCode::from_number,
        );
        bench_each(&mut g, name, &format!("Code::known, {kind}"), inputs, |n| {
            Code::new(n).known()
        });
    }
    g.finish();
}

fn name_to_code(c: &mut Criterion) {
    let name = "name_to_code";
    let hits = shuffled(names());
    let misses_owned = shuffled(non_names());
    let misses: Vec<&str> = misses_owned.iter().map(String::as_str).collect();

    let mut g = c.benchmark_group(name);
    for (kind, inputs) in [("hits", &hits), ("misses", &misses)] {
        bench_each(
            &mut g,
            name,
            &format!("prost from_str_name, {kind}"),
            inputs,
            StatusCode::from_str_name,
        );
        bench_each(
            &mut g,
            name,
            &format!("StatusCode::from_name, {kind}"),
            inputs,
            StatusCode::from_name,
        );
    }
    g.finish();
}

/// One row of a summary table: the figure, its ratio to `baseline`, the target and whether
/// `meets(ns, ratio)`.
fn row(group: &str, id: &str, baseline: &str, target: &str, meets: impl Fn(f64, f64) -> bool) {
    let (Some(ns), Some(base)) = (SAMPLES.figure(group, id), SAMPLES.figure(group, baseline))
    else {
        return;
    };
    let ratio = ns / base;
    let verdict = if target.is_empty() {
        ""
    } else if meets(ns, ratio) {
        "met"
    } else {
        "NOT met"
    };
    println!("| {id} | {ns:.2} | {ratio:.2} | {target} | {verdict} |");
}

/// Prints the tables (run last, after every group).
fn summary(_c: &mut Criterion) {
    // Nothing measured under `cargo test --benches`, which runs each benchmark once.
    if !SAMPLES.any_measured() {
        return;
    }
    println!("\n## facts: ns per lookup (tonic Code::from_i32 for reference)\n");
    println!("| lookup | ns | ratio to tonic | target | |\n|---|---:|---:|---|---|");
    let base = "tonic Code::from_i32";
    row("facts", base, base, "", |_, _| true);
    for id in [
        "StatusCode grpc_code",
        "StatusCode http_status",
        "StatusCode outcome",
        "StatusCode is_retryable",
        "StatusCode is_retryable_on_every_method",
        "StatusCode name",
        "StatusCode description",
        "StatusCode category",
        "StatusCode aliases",
        "StatusCode removed_in",
        "Code grpc_code",
        "Code http_status",
        "Code outcome",
        "Code is_retryable",
        "Code name",
        "Code description",
    ] {
        row("facts", id, base, "<= 10 ns", |ns, _| ns <= 10.0);
    }

    println!("\n## number_to_code: ns per lookup vs prost TryFrom<i32>\n");
    println!("| lookup | ns | ratio | target | |\n|---|---:|---:|---|---|");
    for kind in ["hits", "misses", "mixed"] {
        let base = format!("prost StatusCode::try_from, {kind}");
        row("number_to_code", &base, &base, "", |_, _| true);
        for id in ["StatusCode::from_number", "Code::known"] {
            row(
                "number_to_code",
                &format!("{id}, {kind}"),
                &base,
                "<= 1.0 (+5 % noise)",
                |_, r| r <= 1.05,
            );
        }
    }

    println!("\n## name_to_code: ns per lookup vs prost from_str_name\n");
    println!("| lookup | ns | ratio | target | |\n|---|---:|---:|---|---|");
    for kind in ["hits", "misses"] {
        let base = format!("prost from_str_name, {kind}");
        row("name_to_code", &base, &base, "", |_, _| true);
        row(
            "name_to_code",
            &format!("StatusCode::from_name, {kind}"),
            &base,
            "<= 1.2",
            |_, r| r <= 1.2,
        );
    }
    println!();
}

criterion_group! {
    name = benches;
    config = common::criterion(2);
    targets = facts, number_to_code, name_to_code, summary
}
criterion_main!(benches);
