//! Per-key call counters for `fail_times`, bounded in keys and key length.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Mutex;

/// Counts calls per key; forgets the oldest inserted key once `cap` keys are held.
///
/// First-in first-out rather than least-recently-used: a test's keys are short-lived, and FIFO
/// needs no bookkeeping on the hot path (a hit on a known key only bumps its count).
#[derive(Debug)]
pub(crate) struct Counters {
    cap: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    counts: HashMap<Box<str>, u32>,
    /// Keys in insertion order, oldest first; the same set as `counts`'s keys.
    order: VecDeque<Box<str>>,
}

/// A key longer than [`MAX_KEY_LEN`](super::MAX_KEY_LEN) bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyTooLong {
    pub(crate) len: usize,
}

impl fmt::Display for KeyTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "key is {} bytes long; at most {} are allowed",
            self.len,
            super::MAX_KEY_LEN
        )
    }
}

impl Counters {
    /// Counters holding at most `cap` keys (at least one).
    pub(crate) fn new(cap: usize) -> Counters {
        Counters {
            cap: cap.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Counts one call with `key` and returns the calls seen with it, this one included.
    ///
    /// The empty key is a key like any other. A key evicted by newer ones starts again at 1.
    pub(crate) fn hit(&self, key: &str) -> Result<u32, KeyTooLong> {
        if key.len() > super::MAX_KEY_LEN {
            return Err(KeyTooLong { len: key.len() });
        }
        // A panic elsewhere while holding the lock leaves the maps consistent (every mutation
        // below is complete before anything can panic), so a poisoned lock is still usable.
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Inner { counts, order } = &mut *inner;
        if let Some(count) = counts.get_mut(key) {
            *count = count.saturating_add(1);
            return Ok(*count);
        }
        if counts.len() >= self.cap {
            if let Some(oldest) = order.pop_front() {
                counts.remove(&oldest);
            }
        }
        let key: Box<str> = key.into();
        counts.insert(key.clone(), 1);
        order.push_back(key);
        Ok(1)
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
    use crate::testing::{MAX_KEYS, MAX_KEY_LEN};

    #[test]
    fn counts_calls_per_key() {
        let counters = Counters::new(10);
        assert_eq!(counters.hit("a"), Ok(1));
        assert_eq!(counters.hit("a"), Ok(2));
        assert_eq!(counters.hit("b"), Ok(1));
        assert_eq!(counters.hit("a"), Ok(3));
        assert_eq!(counters.hit(""), Ok(1));
        assert_eq!(counters.hit(""), Ok(2));
    }

    #[test]
    fn cap_holds_under_many_distinct_keys() {
        let counters = Counters::new(MAX_KEYS);
        for i in 0..(3 * MAX_KEYS) {
            assert_eq!(counters.hit(&i.to_string()), Ok(1));
            assert!(counters.len() <= MAX_KEYS);
        }
        assert_eq!(counters.len(), MAX_KEYS);
    }

    #[test]
    fn evicts_oldest_inserted_key() {
        let counters = Counters::new(2);
        counters.hit("first").unwrap();
        counters.hit("second").unwrap();
        // Hitting `first` again does not make it younger: eviction is by insertion order.
        assert_eq!(counters.hit("first"), Ok(2));
        counters.hit("third").unwrap();
        assert_eq!(counters.len(), 2);
        assert_eq!(counters.hit("second"), Ok(2));
        assert_eq!(counters.hit("first"), Ok(1), "evicted keys start again");
    }

    #[test]
    fn rejects_keys_longer_than_the_bound() {
        let counters = Counters::new(10);
        let longest = "k".repeat(MAX_KEY_LEN);
        assert_eq!(counters.hit(&longest), Ok(1));
        let too_long = "k".repeat(MAX_KEY_LEN + 1);
        assert_eq!(
            counters.hit(&too_long),
            Err(KeyTooLong {
                len: MAX_KEY_LEN + 1
            })
        );
        assert_eq!(counters.len(), 1, "a rejected key is not counted");
    }

    #[test]
    fn count_saturates() {
        let counters = Counters::new(1);
        counters.hit("k").unwrap();
        counters
            .inner
            .lock()
            .unwrap()
            .counts
            .insert("k".into(), u32::MAX);
        assert_eq!(counters.hit("k"), Ok(u32::MAX));
    }
}
