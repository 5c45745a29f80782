//! A retry budget: gRFC A6's token bucket, shared by every call through a client.
//!
//! # Why a budget, not just a maximum number of attempts
//!
//! A maximum number of attempts bounds the work of *one* call; it says nothing about the load a
//! *client* adds when a server is in trouble. With at most `n` attempts, a server that fails
//! every call receives `n` times its normal traffic from every client at the exact moment it can
//! least afford it: retries turn a brown-out into an outage. Clarifai's own SDK retries 10 times,
//! so a sustained outage multiplies its load by 10.
//!
//! A budget bounds the *share* of extra work instead. gRFC A6's token bucket starts full
//! (`max_tokens`); every failed attempt costs one token, every success earns `token_ratio`
//! tokens, and no retry is sent while the bucket holds `max_tokens / 2` tokens or fewer. Because
//! it earns from successes, it tells the two situations apart that a fixed retry share cannot:
//!
//! - a *partial, transient* failure (a few percent of attempts fail): successes refill the bucket
//!   faster than failures drain it, so every failed call is retried, as far as the per-call
//!   maximum allows;
//! - a *total* failure: nothing earns, the bucket drains to the threshold after about
//!   `max_tokens / 2` failures, and from then on each call makes one attempt. Load amplification
//!   tends to 1, and retries resume by themselves as soon as successes come back.
//!
//! The bucket stays above its threshold while the share of failed attempts is below
//! `token_ratio / (1 + token_ratio)`. gRFC A6's example (10 tokens, ratio 0.1) throttles from
//! about 9% of attempts failing; [`Budget::default`] (50 tokens, ratio 0.5) keeps retrying up to
//! about a third failing, which covers a 20% transient failure rate with margin (the bucket is
//! deep enough that a burst of bad luck among many concurrent callers does not empty it), and
//! still gives up after about 25 extra attempts when everything fails. The retry simulation
//! (BENCHMARKS.md, section 7) measures both.
//!
//! # Examples
//!
//! ```
//! use clarifai_status::retry::Budget;
//!
//! let budget = Budget::new(10, 0.1).unwrap(); // gRFC A6's example numbers
//! // A total outage: after five failures the bucket is at its threshold and retries stop.
//! let allowed: Vec<bool> = (0..6).map(|_| budget.record_failure()).collect();
//! assert_eq!(allowed, [true, true, true, true, false, false]);
//! // Successes earn retries back, a tenth of a token each.
//! for _ in 0..11 {
//!     budget.record_success();
//! }
//! assert!(budget.can_retry());
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

/// Tokens are stored in thousandths: gRFC A6 allows three decimal places in `tokenRatio`.
const SCALE: u32 = 1000;
/// gRFC A6 caps `maxTokens` at 1000.
const MAX_TOKENS: u32 = 1000;

/// A token bucket that throttles retries across every call sharing it (gRFC A6).
///
/// A failed attempt costs one token; a successful call earns `token_ratio` tokens (up to
/// `max_tokens`); no retry is allowed while the bucket holds `max_tokens / 2` tokens or fewer.
/// Attempts that fail with a non-retryable code neither cost nor earn. The count is one atomic
/// integer (thousandths of a token) updated lock-free, so a budget is cheap to share: every clone
/// of a [`Policy`](super::Policy), and every layer and service built from it, shares the same
/// bucket.
///
/// See the [module docs](self) for why a budget beats a bare maximum of attempts.
///
/// # Examples
///
/// ```
/// use clarifai_status::retry::{Budget, Policy};
/// use std::sync::Arc;
///
/// let budget = Arc::new(Budget::new(20, 0.5).unwrap());
/// let policy = Policy::new().budget(budget.clone());
/// assert_eq!(budget.tokens(), 20.0);
/// # let _ = policy;
/// ```
pub struct Budget {
    /// Current tokens, in thousandths.
    tokens: AtomicU32,
    /// `max_tokens`, in thousandths.
    max: u32,
    /// `token_ratio`, in thousandths.
    ratio: u32,
}

impl Budget {
    /// A full bucket of `max_tokens` tokens, earning `token_ratio` tokens per success.
    ///
    /// gRFC A6's example is `Budget::new(10, 0.1)`; [`Budget::default`] is `Budget::new(50, 0.5)`
    /// (see the [module docs](self) for why).
    ///
    /// # Errors
    ///
    /// [`InvalidBudget`] unless `max_tokens` is in `1..=1000` and `token_ratio` is finite and at
    /// least 0.001 (gRFC A6's bounds; the ratio is kept to three decimal places).
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::retry::Budget;
    ///
    /// assert!(Budget::new(10, 0.1).is_ok());
    /// assert!(Budget::new(0, 0.1).is_err());
    /// assert!(Budget::new(10, f64::NAN).is_err());
    /// ```
    pub fn new(max_tokens: u32, token_ratio: f64) -> Result<Budget, InvalidBudget> {
        if !(1..=MAX_TOKENS).contains(&max_tokens)
            || !token_ratio.is_finite()
            || token_ratio < 0.001
            || token_ratio > f64::from(MAX_TOKENS)
        {
            return Err(InvalidBudget(()));
        }
        let max = max_tokens * SCALE;
        // In range by the check above: at most 1000 * 1000.
        let ratio = (token_ratio * f64::from(SCALE)).round() as u32;
        Ok(Budget {
            tokens: AtomicU32::new(max),
            max,
            ratio,
        })
    }

    /// The bucket's capacity, in tokens.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(clarifai_status::retry::Budget::default().max_tokens(), 50);
    /// ```
    pub fn max_tokens(&self) -> u32 {
        self.max / SCALE
    }

    /// What one success earns, in tokens.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(clarifai_status::retry::Budget::default().token_ratio(), 0.5);
    /// ```
    pub fn token_ratio(&self) -> f64 {
        f64::from(self.ratio) / f64::from(SCALE)
    }

    /// The tokens in the bucket now.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::retry::Budget;
    ///
    /// let budget = Budget::new(10, 0.1).unwrap();
    /// budget.record_failure();
    /// assert_eq!(budget.tokens(), 9.0);
    /// ```
    pub fn tokens(&self) -> f64 {
        f64::from(self.tokens.load(Ordering::Relaxed)) / f64::from(SCALE)
    }

    /// Whether a retry would be allowed now: the bucket holds more than `max_tokens / 2`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(clarifai_status::retry::Budget::default().can_retry());
    /// ```
    pub fn can_retry(&self) -> bool {
        self.tokens.load(Ordering::Relaxed) > self.max / 2
    }

    /// Records a failed attempt (one token), and says whether a retry is still allowed.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::retry::Budget;
    ///
    /// let budget = Budget::new(2, 0.1).unwrap();
    /// assert!(!budget.record_failure()); // 1 token left: not more than 2 / 2
    /// ```
    pub fn record_failure(&self) -> bool {
        let previous = self
            .tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some(t.saturating_sub(SCALE))
            })
            .unwrap_or_else(|t| t);
        previous.saturating_sub(SCALE) > self.max / 2
    }

    /// Records a successful call: earns `token_ratio` tokens, up to `max_tokens`.
    ///
    /// A full bucket is only read, not written, so the success path does not contend on it.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::retry::Budget;
    ///
    /// let budget = Budget::new(10, 0.5).unwrap();
    /// budget.record_failure();
    /// budget.record_success();
    /// assert_eq!(budget.tokens(), 9.5);
    /// ```
    pub fn record_success(&self) {
        if self.tokens.load(Ordering::Relaxed) >= self.max {
            return;
        }
        let (max, ratio) = (self.max, self.ratio);
        // The closure never returns `None`, so the update cannot fail.
        let _ = self
            .tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some(t.saturating_add(ratio).min(max))
            });
    }
}

impl Default for Budget {
    /// `Budget::new(50, 0.5)`: retries continue while up to about a third of attempts fail, and
    /// stop after about 25 failures in a row. See the [module docs](self).
    fn default() -> Budget {
        Budget {
            tokens: AtomicU32::new(50 * SCALE),
            max: 50 * SCALE,
            ratio: SCALE / 2,
        }
    }
}

impl fmt::Debug for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Budget")
            .field("tokens", &self.tokens())
            .field("max_tokens", &self.max_tokens())
            .field("token_ratio", &self.token_ratio())
            .finish()
    }
}

/// The error for budget parameters outside gRFC A6's bounds.
///
/// # Examples
///
/// ```
/// let err = clarifai_status::retry::Budget::new(5000, 0.1).unwrap_err();
/// assert_eq!(err.to_string(), "invalid retry budget");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidBudget(());

impl fmt::Display for InvalidBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid retry budget")
    }
}

impl std::error::Error for InvalidBudget {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_failure_stops_at_half() {
        let budget = Budget::new(10, 0.1).unwrap();
        let allowed = (0..20).filter(|_| budget.record_failure()).count();
        assert_eq!(allowed, 4);
        assert_eq!(budget.tokens(), 0.0);
    }

    #[test]
    fn success_is_capped_at_max() {
        let budget = Budget::new(3, 0.7).unwrap();
        budget.record_failure();
        for _ in 0..5 {
            budget.record_success();
        }
        assert_eq!(budget.tokens(), 3.0);
    }

    #[test]
    fn ratio_keeps_three_decimals() {
        assert_eq!(Budget::new(1, 0.0014).unwrap().token_ratio(), 0.001);
        assert!(Budget::new(1, 0.0004).is_err());
        assert!(Budget::new(1001, 1.0).is_err());
    }
}
