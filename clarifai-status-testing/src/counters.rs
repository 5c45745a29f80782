//! Call counters per key and method, for `fail_times` and `/v2/_tester/calls`, bounded in keys
//! and key length.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Mutex;

/// Counts calls per key and method; forgets the oldest inserted pair once `cap` are held.
///
/// First-in first-out rather than least-recently-used: a test's keys are short-lived, and FIFO
/// needs no bookkeeping on the hot path (a hit on a known key only bumps its count).
#[derive(Debug)]
pub(crate) struct Counters {
    cap: usize,
    inner: Mutex<Inner>,
}

/// A counter's identity: the key (scenario text) and the method.
type Pair = (Box<str>, Box<str>);

#[derive(Debug, Default)]
struct Inner {
    counts: HashMap<Pair, u32>,
    /// Pairs in insertion order, oldest first; the same set as `counts`'s keys.
    order: VecDeque<Pair>,
}

/// A key or method longer than [`MAX_KEY_LEN`](super::MAX_KEY_LEN) bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyTooLong {
    pub(crate) what: &'static str,
    pub(crate) len: usize,
}

impl fmt::Display for KeyTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is {} bytes long; at most {} are allowed",
            self.what,
            self.len,
            super::MAX_KEY_LEN
        )
    }
}

/// How many calls the test server has seen under one key and method, as
/// [`Tester::calls`](super::Tester::calls) and `GET /v2/_tester/calls` report them.
///
/// # Examples
///
/// ```
/// let tester = clarifai_status_testing::Tester::new();
/// assert!(tester.calls().is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallCount {
    /// The scenario text the calls carried (the `<pairs>` of the header or API key, `rules[i]`
    /// for a rule of the scenario file, the `key` of a `Raise` call); empty for calls without
    /// one.
    pub key: String,
    /// The gRPC method's name (`PostModelOutputs`, `Raise`), or `METHOD /path` for REST calls.
    pub method: String,
    /// Calls counted; saturates at `u32::MAX`.
    pub count: u32,
}

impl Counters {
    /// Counters holding at most `cap` keys (at least one).
    pub(crate) fn new(cap: usize) -> Counters {
        Counters {
            cap: cap.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Counts one call with `key` and `method` and returns the calls seen with them, this one
    /// included.
    ///
    /// The empty key is a key like any other. A pair evicted by newer ones starts again at 1.
    pub(crate) fn hit(&self, key: &str, method: &str) -> Result<u32, KeyTooLong> {
        for (what, text) in [("key", key), ("method", method)] {
            if text.len() > super::MAX_KEY_LEN {
                return Err(KeyTooLong {
                    what,
                    len: text.len(),
                });
            }
        }
        let pair: Pair = (key.into(), method.into());
        // A panic elsewhere while holding the lock leaves the maps consistent (every mutation
        // below is complete before anything can panic), so a poisoned lock is still usable.
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Inner { counts, order } = &mut *inner;
        if let Some(count) = counts.get_mut(&pair) {
            *count = count.saturating_add(1);
            return Ok(*count);
        }
        if counts.len() >= self.cap {
            if let Some(oldest) = order.pop_front() {
                counts.remove(&oldest);
            }
        }
        counts.insert(pair.clone(), 1);
        order.push_back(pair);
        Ok(1)
    }

    /// Every counter held, oldest first.
    pub(crate) fn snapshot(&self) -> Vec<CallCount> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .order
            .iter()
            .map(|pair| CallCount {
                key: pair.0.to_string(),
                method: pair.1.to_string(),
                count: inner.counts.get(pair).copied().unwrap_or(0),
            })
            .collect()
    }

    /// The number of keys held.
    #[cfg(test)]
    fn len(&self) -> usize {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        debug_assert_eq!(inner.counts.len(), inner.order.len());
        inner.counts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MAX_KEYS, MAX_KEY_LEN};

    #[test]
    fn counts_calls_per_key() {
        let counters = Counters::new(10);
        assert_eq!(counters.hit("a", "M"), Ok(1));
        assert_eq!(counters.hit("a", "M"), Ok(2));
        assert_eq!(counters.hit("b", "M"), Ok(1));
        assert_eq!(counters.hit("a", "M"), Ok(3));
        assert_eq!(counters.hit("", "M"), Ok(1));
        assert_eq!(counters.hit("", "M"), Ok(2));
    }

    #[test]
    fn cap_holds_under_many_distinct_keys() {
        let counters = Counters::new(MAX_KEYS);
        for i in 0..(3 * MAX_KEYS) {
            assert_eq!(counters.hit(&i.to_string(), "M"), Ok(1));
            assert!(counters.len() <= MAX_KEYS);
        }
        assert_eq!(counters.len(), MAX_KEYS);
    }

    #[test]
    fn evicts_oldest_inserted_key() {
        let counters = Counters::new(2);
        counters.hit("first", "M").unwrap();
        counters.hit("second", "M").unwrap();
        // Hitting `first` again does not make it younger: eviction is by insertion order.
        assert_eq!(counters.hit("first", "M"), Ok(2));
        counters.hit("third", "M").unwrap();
        assert_eq!(counters.len(), 2);
        assert_eq!(counters.hit("second", "M"), Ok(2));
        assert_eq!(
            counters.hit("first", "M"),
            Ok(1),
            "evicted keys start again"
        );
    }

    #[test]
    fn rejects_keys_longer_than_the_bound() {
        let counters = Counters::new(10);
        let longest = "k".repeat(MAX_KEY_LEN);
        assert_eq!(counters.hit(&longest, "M"), Ok(1));
        let too_long = "k".repeat(MAX_KEY_LEN + 1);
        assert_eq!(
            counters.hit(&too_long, "M"),
            Err(KeyTooLong {
                what: "key",
                len: MAX_KEY_LEN + 1
            })
        );
        assert_eq!(counters.len(), 1, "a rejected key is not counted");
    }

    #[test]
    fn methods_count_apart_and_snapshot_keeps_order() {
        let counters = Counters::new(10);
        assert_eq!(counters.hit("k", "A"), Ok(1));
        assert_eq!(counters.hit("k", "B"), Ok(1));
        assert_eq!(counters.hit("k", "A"), Ok(2));
        let seen: Vec<_> = counters
            .snapshot()
            .into_iter()
            .map(|c| (c.key, c.method, c.count))
            .collect();
        assert_eq!(
            seen,
            [
                ("k".to_owned(), "A".to_owned(), 2),
                ("k".to_owned(), "B".to_owned(), 1)
            ]
        );
        let long = "m".repeat(MAX_KEY_LEN + 1);
        assert_eq!(
            counters.hit("k", &long),
            Err(KeyTooLong {
                what: "method",
                len: MAX_KEY_LEN + 1
            })
        );
    }

    #[test]
    fn count_saturates() {
        let counters = Counters::new(1);
        counters.hit("k", "M").unwrap();
        counters
            .inner
            .lock()
            .unwrap()
            .counts
            .insert(("k".into(), "M".into()), u32::MAX);
        assert_eq!(counters.hit("k", "M"), Ok(u32::MAX));
    }
}
