//! Exponential backoff with full jitter.

use std::time::Duration;

/// Exponential backoff with full jitter: the delay before retry `n` (from 0) is drawn uniformly
/// from `0..=min(cap, base * 2^n)`.
///
/// Full jitter (AWS's "exponential backoff and jitter"; AWS standard retry mode uses it with a
/// 1 s base and a 20 s cap) spreads clients that failed together over the whole window, instead
/// of sending them back in synchronized waves as a fixed delay does. A server's pushback replaces
/// the drawn delay (see [`Policy`](super::Policy)).
///
/// # Examples
///
/// ```
/// use clarifai_status::retry::Backoff;
/// use std::time::Duration;
///
/// let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
/// assert_eq!(backoff.ceiling(0), Duration::from_millis(100));
/// assert_eq!(backoff.ceiling(3), Duration::from_millis(800));
/// assert_eq!(backoff.ceiling(4), Duration::from_secs(1)); // capped
/// assert!(backoff.delay(3) <= Duration::from_millis(800));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
}

impl Backoff {
    /// Backoff starting at `base` and doubling up to `cap`; a `cap` below `base` is raised to it.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::retry::Backoff;
    /// use std::time::Duration;
    ///
    /// let backoff = Backoff::new(Duration::from_secs(2), Duration::from_secs(1));
    /// assert_eq!(backoff.ceiling(5), Duration::from_secs(2));
    /// ```
    pub const fn new(base: Duration, cap: Duration) -> Backoff {
        let cap = if cap.as_nanos() < base.as_nanos() {
            base
        } else {
            cap
        };
        Backoff { base, cap }
    }

    /// The first delay's upper bound.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::retry::Backoff;
    ///
    /// assert_eq!(Backoff::default().base(), std::time::Duration::from_millis(100));
    /// ```
    pub const fn base(&self) -> Duration {
        self.base
    }

    /// The largest delay ever drawn.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::retry::Backoff;
    ///
    /// assert_eq!(Backoff::default().cap(), std::time::Duration::from_secs(5));
    /// ```
    pub const fn cap(&self) -> Duration {
        self.cap
    }

    /// The upper bound of the delay before retry `n` (from 0): `min(cap, base * 2^n)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::retry::Backoff;
    /// use std::time::Duration;
    ///
    /// let backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(50));
    /// assert_eq!(backoff.ceiling(1), Duration::from_millis(20));
    /// assert_eq!(backoff.ceiling(40), Duration::from_millis(50));
    /// ```
    pub fn ceiling(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n).unwrap_or(u32::MAX);
        self.base
            .checked_mul(factor)
            .map_or(self.cap, |d| d.min(self.cap))
    }

    /// A delay drawn uniformly from `0..=ceiling(n)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::retry::Backoff;
    /// use std::time::Duration;
    ///
    /// let backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(50));
    /// assert!((0..100).all(|_| backoff.delay(2) <= Duration::from_millis(40)));
    /// ```
    pub fn delay(&self, n: u32) -> Duration {
        let ceiling = u64::try_from(self.ceiling(n).as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(0..=ceiling))
    }
}

impl Default for Backoff {
    /// 100 ms doubling up to 5 s: gRFC A6's initial backoff and the maximum backoff of
    /// Clarifai's official gRPC channel configuration.
    fn default() -> Backoff {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(5))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_saturates_without_overflow() {
        let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(20));
        assert_eq!(backoff.ceiling(u32::MAX), Duration::from_secs(20));
        assert_eq!(backoff.ceiling(31), Duration::from_secs(20));
    }

    #[test]
    fn zero_base_means_no_wait() {
        let backoff = Backoff::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(backoff.delay(7), Duration::ZERO);
    }

    #[test]
    fn jitter_spreads_over_the_window() {
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let draws: Vec<Duration> = (0..1000).map(|_| backoff.delay(0)).collect();
        assert!(draws.iter().all(|d| *d <= Duration::from_millis(100)));
        assert!(draws.iter().any(|d| *d < Duration::from_millis(20)));
        assert!(draws.iter().any(|d| *d > Duration::from_millis(80)));
    }
}
