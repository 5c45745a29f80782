//! What the benches share: per-sample figures recorded from criterion's timing loops, and their
//! medians, so each bench can print its own table of ratios and targets.
#![allow(dead_code)]

use std::sync::Mutex;

/// Samples per criterion benchmark, in every bench.
pub(crate) const SAMPLE_SIZE: usize = 30;

/// Figures (ns per operation) of every sample, by group and benchmark id.
pub(crate) struct Samples(Mutex<Vec<(String, String, Vec<f64>)>>);

impl Samples {
    pub(crate) const fn new() -> Samples {
        Samples(Mutex::new(Vec::new()))
    }

    /// Records one sample's figure.
    pub(crate) fn record(&self, group: &str, id: &str, ns_per_op: f64) {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match all.iter_mut().find(|(g, i, _)| g == group && i == id) {
            Some((.., samples)) => samples.push(ns_per_op),
            None => all.push((group.to_owned(), id.to_owned(), vec![ns_per_op])),
        }
    }

    /// Whether any benchmark was measured (not the single run of `cargo test --benches`).
    pub(crate) fn any_measured(&self) -> bool {
        let all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        all.iter().any(|(.., s)| s.len() > SAMPLE_SIZE)
    }

    /// The median of a benchmark's measurement samples (the last `SAMPLE_SIZE` calls; earlier
    /// ones were criterion's warm-up); `None` when it was not measured (`cargo test --benches`).
    pub(crate) fn figure(&self, group: &str, id: &str) -> Option<f64> {
        let all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (.., samples) = all.iter().find(|(g, i, _)| g == group && i == id)?;
        (samples.len() > SAMPLE_SIZE).then(|| median(&samples[samples.len() - SAMPLE_SIZE..]))
    }
}

/// The median of some figures (NaN for none).
pub(crate) fn median(samples: &[f64]) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}
