//! The retry policy: one configuration for the layer, the call helper and the poller.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::backoff::Backoff;
use super::budget::Budget;
use super::classify::{Failure, Signal};
use crate::grpc::Pushback;
use crate::Code;

/// When to retry, how long to wait, and when to stop.
///
/// One policy serves both ways in ([`RetryLayer`](super::RetryLayer) for tonic channels, and
/// [`call`](super::call) for typed calls) and is configured once:
///
/// - **attempts**: at most [`max_attempts`](Policy::max_attempts) in all (default 5, gRFC A6's
///   cap);
/// - **backoff**: exponential with full jitter and a cap ([`Backoff`], default 100 ms doubling up
///   to 5 s); a server's pushback (a `RetryInfo` detail, `grpc-retry-pushback-ms`, or HTTP
///   `Retry-After`) replaces the drawn delay, and a negative `grpc-retry-pushback-ms` means stop;
/// - **deadline**: the whole call ends by [`deadline`](Policy::deadline) after it began (default
///   30 s), or by the call's own `grpc-timeout` when the layer sees a sooner one: every attempt,
///   every sleep, and the wait for the response's headers, messages and trailers. An attempt
///   still running then is cut, and the call fails with the client's own `DEADLINE_EXCEEDED`
///   (see [the module docs](super#deadline-and-pushback-cap)); when the next delay would end past
///   it, the policy stops at once and returns the last result;
/// - **pushback cap**: a server's pushback longer than [`MAX_PUSHBACK`] (5 minutes) stops the
///   retrying, so no wait is unbounded, with or without a deadline;
/// - **budget**: a [`Budget`] token bucket shared by every clone of the policy (default
///   [`Budget::default`]), so that under sustained failure the extra load stays bounded;
/// - **what is retryable**: a Clarifai code carried on a gRPC error or in a response body is
///   retryable as the status table says ([`Code::is_retryable`]); a plain gRPC code (no Clarifai
///   code carried) is retryable when in the policy's set, by default `UNAVAILABLE` only
///   (AIP-194). [`retry_codes`](Policy::retry_codes) and [`never_retry`](Policy::never_retry)
///   override the table per code;
/// - **which methods**: by default every method is retried (as Clarifai's own channel
///   configuration retries `UNAVAILABLE` on every method). [`idempotent_methods`](Policy::idempotent_methods)
///   limits the retrying of failures whose effect is unknown (a plain gRPC code such as
///   `UNAVAILABLE` or `DEADLINE_EXCEEDED`, a lost connection, a timed-out attempt, a Clarifai
///   code other than a refusal) to the listed methods; the Clarifai codes that say the request
///   was refused before it took effect (throttles, a busy, loading or deploying model) stay
///   retryable for every method;
/// - **per-attempt timeout**: none by default; [`attempt_timeout`](Policy::attempt_timeout)
///   bounds each attempt inside the deadline, so a hung attempt is cut and retried.
///
/// A non-retryable failure is returned at once and costs the budget nothing; a retryable one
/// costs a token whether or not it is retried; a success earns.
///
/// # Examples
///
/// ```
/// use clarifai_status::retry::{Backoff, Budget, Policy};
/// use clarifai_status::{Code, StatusCode};
/// use std::time::Duration;
///
/// let policy = Policy::new()
///     .max_attempts(4)
///     .backoff(Backoff::new(Duration::from_millis(50), Duration::from_secs(2)))
///     .deadline(Duration::from_secs(10))
///     .budget(Budget::new(10, 0.1).unwrap())
///     .retry_grpc_codes([tonic::Code::Unavailable, tonic::Code::ResourceExhausted])
///     .never_retry([StatusCode::ConnExceedHourlyLimit]);
///
/// assert!(policy.is_retryable(StatusCode::ModelBusyPleaseRetry.into()));
/// assert!(!policy.is_retryable(StatusCode::ConnExceedHourlyLimit.into()));
/// assert!(!policy.is_retryable(StatusCode::ConnKeyInvalid.into()));
/// assert!(policy.is_retryable_grpc(tonic::Code::ResourceExhausted));
/// ```
#[derive(Debug, Clone)]
pub struct Policy {
    max_attempts: u32,
    backoff: Backoff,
    deadline: Option<Duration>,
    budget: Option<Arc<Budget>>,
    /// Bit `n` set: plain gRPC code `n` is retryable.
    grpc_codes: u32,
    /// Per-code overrides of the table, later entries first.
    overrides: Vec<(Code, bool)>,
    /// Methods whose unknown-effect failures are retried; `None`: every method.
    idempotent: Option<Vec<Box<str>>>,
    attempt_timeout: Option<Duration>,
    #[cfg(feature = "telemetry")]
    telemetry: Option<crate::telemetry::Telemetry>,
}

/// The longest pushback a retry waits for: a server asking for a longer wait (a `RetryInfo`, a
/// `grpc-retry-pushback-ms` or a `Retry-After` past it) gets no retry, and its failure is
/// returned at once, as for a pushback that ends past the deadline. So no single wait is
/// unbounded, even under [`Policy::no_deadline`]. 5 minutes; waiting longer than that for a
/// server is the caller's decision, not a retry's.
///
/// # Examples
///
/// ```
/// use clarifai_status::pb::BaseResponse;
/// use clarifai_status::retry::{self, Policy, MAX_PUSHBACK};
/// use clarifai_status::{grpc, StatusCode};
/// use std::time::Duration;
/// use tokio::time::Instant;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let policy = &Policy::new().no_deadline().no_budget().max_attempts(2);
/// // A throttled call asking for `wait`: how many attempts, and how long it took.
/// let asking = |wait| async move {
///     let (start, mut attempts) = (Instant::now(), 0);
///     let _ = retry::call(policy, || {
///         attempts += 1;
///         let error = grpc::ErrorBuilder::new(StatusCode::ConnThrottled).retry_after(wait).build();
///         async move { Err::<tonic::Response<BaseResponse>, _>(error) }
///     })
///     .await;
///     (attempts, start.elapsed())
/// };
/// assert_eq!(asking(MAX_PUSHBACK).await, (2, MAX_PUSHBACK)); // waited, then retried
/// assert_eq!(asking(MAX_PUSHBACK * 2).await, (1, Duration::ZERO)); // returned at once
/// # }
/// ```
pub const MAX_PUSHBACK: Duration = Duration::from_secs(300);

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Retry(Duration),
    Stop,
}

impl Policy {
    /// The default policy: 5 attempts, [`Backoff::default`], a 30 s deadline, a fresh
    /// [`Budget::default`], gRPC `UNAVAILABLE` and the table's retryable codes.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::retry::Policy;
    ///
    /// let policy = Policy::new();
    /// assert!(policy.is_retryable_grpc(tonic::Code::Unavailable));
    /// assert!(!policy.is_retryable_grpc(tonic::Code::Internal));
    /// ```
    pub fn new() -> Policy {
        Policy {
            max_attempts: 5,
            backoff: Backoff::default(),
            deadline: Some(Duration::from_secs(30)),
            budget: Some(Arc::new(Budget::default())),
            grpc_codes: 1 << tonic::Code::Unavailable as u32,
            overrides: Vec::new(),
            idempotent: None,
            attempt_timeout: None,
            #[cfg(feature = "telemetry")]
            telemetry: None,
        }
    }

    /// Sets the most attempts a call makes, the first included; 0 counts as 1 (no retry).
    ///
    /// # Examples
    ///
    /// ```
    /// let no_retries = clarifai_status::retry::Policy::new().max_attempts(1);
    /// # let _ = no_retries;
    /// ```
    pub fn max_attempts(mut self, attempts: u32) -> Policy {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Sets the backoff between attempts.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::retry::{Backoff, Policy};
    /// use std::time::Duration;
    ///
    /// let policy = Policy::new().backoff(Backoff::new(Duration::from_millis(25), Duration::from_secs(1)));
    /// # let _ = policy;
    /// ```
    pub fn backoff(mut self, backoff: Backoff) -> Policy {
        self.backoff = backoff;
        self
    }

    /// Sets the overall deadline, counted from the start of the call's first attempt: the call,
    /// all its attempts and the wait for its response included, ends by then
    /// ([`Duration::MAX`] is no deadline).
    ///
    /// # Examples
    ///
    /// ```
    /// let policy = clarifai_status::retry::Policy::new().deadline(std::time::Duration::from_secs(5));
    /// # let _ = policy;
    /// ```
    pub fn deadline(mut self, deadline: Duration) -> Policy {
        self.deadline = Some(deadline);
        self
    }

    /// Removes the overall deadline: only a call's `grpc-timeout` (when the layer sees one)
    /// bounds the call, besides the number of attempts and the
    /// [per-attempt timeout](Policy::attempt_timeout). A server's pushback is then honoured up
    /// to [`MAX_PUSHBACK`]; a longer one stops the retrying.
    ///
    /// # Examples
    ///
    /// ```
    /// let policy = clarifai_status::retry::Policy::new().no_deadline();
    /// # let _ = policy;
    /// ```
    pub fn no_deadline(mut self) -> Policy {
        self.deadline = None;
        self
    }

    /// Sets the retry budget. Pass an `Arc<Budget>` to share one bucket between policies, or to
    /// watch it.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::retry::{Budget, Policy};
    /// use std::sync::Arc;
    ///
    /// let shared = Arc::new(Budget::default());
    /// let predict = Policy::new().budget(shared.clone());
    /// let search = Policy::new().max_attempts(3).budget(shared);
    /// # let _ = (predict, search);
    /// ```
    pub fn budget(mut self, budget: impl Into<Arc<Budget>>) -> Policy {
        self.budget = Some(budget.into());
        self
    }

    /// Removes the retry budget: every retryable failure is retried up to the maximum of
    /// attempts, however many calls fail.
    ///
    /// # Examples
    ///
    /// ```
    /// let policy = clarifai_status::retry::Policy::new().no_budget();
    /// # let _ = policy;
    /// ```
    pub fn no_budget(mut self) -> Policy {
        self.budget = None;
        self
    }

    /// Sets which plain gRPC codes are retryable (replacing the default, `UNAVAILABLE` only).
    /// `OK` is ignored. Codes carried with a Clarifai code follow the table instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::retry::Policy;
    ///
    /// let policy = Policy::new().retry_grpc_codes([tonic::Code::Unavailable, tonic::Code::Aborted]);
    /// assert!(policy.is_retryable_grpc(tonic::Code::Aborted));
    /// ```
    pub fn retry_grpc_codes(mut self, codes: impl IntoIterator<Item = tonic::Code>) -> Policy {
        self.grpc_codes = codes
            .into_iter()
            .filter(|code| *code != tonic::Code::Ok)
            .fold(0, |set, code| set | 1 << code as u32);
        self
    }

    /// Makes these Clarifai codes retryable, whatever the table says.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::retry::Policy;
    /// use clarifai_status::StatusCode;
    ///
    /// let policy = Policy::new().retry_codes([StatusCode::InternalServerIssue]);
    /// assert!(policy.is_retryable(StatusCode::InternalServerIssue.into()));
    /// ```
    pub fn retry_codes(mut self, codes: impl IntoIterator<Item = impl Into<Code>>) -> Policy {
        self.set(codes, true);
        self
    }

    /// Makes these Clarifai codes non-retryable, whatever the table says.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::retry::Policy;
    /// use clarifai_status::StatusCode;
    ///
    /// let policy = Policy::new().never_retry([StatusCode::ConnThrottled]);
    /// assert!(!policy.is_retryable(StatusCode::ConnThrottled.into()));
    /// ```
    pub fn never_retry(mut self, codes: impl IntoIterator<Item = impl Into<Code>>) -> Policy {
        self.set(codes, false);
        self
    }

    /// Retries failures whose effect is unknown only for these methods; the failures that mean
    /// the request was refused before it took effect stay retryable for every method.
    ///
    /// A pattern is a method path (`/clarifai.api.V2/GetModel`), or a prefix ending in `*`
    /// (`/clarifai.api.V2/List*`, `/clarifai.api.V2/*`). Later calls add to the list.
    ///
    /// **Default: every method**, as Clarifai's own gRPC channel configuration retries
    /// `UNAVAILABLE` on every method (so the default changes nothing for code moving from
    /// Clarifai's clients). gRPC's status-code guidance warns that a non-idempotent call failing with
    /// `UNAVAILABLE` or `DEADLINE_EXCEEDED` may have taken effect: list your idempotent methods
    /// when a second effect would hurt (e.g. posting inputs without IDs).
    ///
    /// Unknown effect: a plain gRPC code (`UNAVAILABLE`, `DEADLINE_EXCEEDED`, a lost
    /// connection), an attempt cut by [`attempt_timeout`](Policy::attempt_timeout), a Clarifai
    /// code other than a refusal (throttles, a busy, loading or deploying model).
    /// [`RetryLayer`](super::RetryLayer) reads the method from the request's path;
    /// [`call`](super::call) does not know it, so use [`call_method`](super::call_method).
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::retry::Policy;
    ///
    /// let policy = Policy::new().idempotent_methods(["/clarifai.api.V2/Get*", "/clarifai.api.V2/List*"]);
    /// assert!(policy.is_idempotent("/clarifai.api.V2/GetModel"));
    /// assert!(!policy.is_idempotent("/clarifai.api.V2/PostInputs"));
    /// assert!(Policy::new().is_idempotent("/clarifai.api.V2/PostInputs"));
    /// ```
    pub fn idempotent_methods(
        mut self,
        patterns: impl IntoIterator<Item = impl Into<String>>,
    ) -> Policy {
        let list = self.idempotent.get_or_insert_with(Vec::new);
        list.extend(patterns.into_iter().map(|p| p.into().into_boxed_str()));
        self
    }

    /// Whether failures of unknown effect are retried for this method path: always, unless
    /// [`idempotent_methods`](Policy::idempotent_methods) was set and no pattern matches.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::retry::Policy;
    ///
    /// let policy = Policy::new().idempotent_methods(["/clarifai.api.V2/GetModel"]);
    /// assert!(policy.is_idempotent("/clarifai.api.V2/GetModel"));
    /// assert!(!policy.is_idempotent("/clarifai.api.V2/GetModelVersion"));
    /// ```
    pub fn is_idempotent(&self, method: &str) -> bool {
        self.idempotent_for(Some(method))
    }

    fn idempotent_for(&self, method: Option<&str>) -> bool {
        let Some(list) = &self.idempotent else {
            return true;
        };
        let Some(method) = method else {
            return false;
        };
        list.iter().any(|pattern| matches(pattern, method))
    }

    /// Bounds each attempt: one still unanswered after `timeout` is cut and counts as a
    /// retryable failure of unknown effect (so the [per-method rule](Policy::idempotent_methods)
    /// applies), as go-grpc-middleware's per-retry timeout does. The overall deadline still
    /// bounds the call. Default: none (an attempt runs until the call's own timeout).
    ///
    /// [`call`](super::call) bounds the whole attempt. [`RetryLayer`](super::RetryLayer) bounds
    /// the wait for the response headers (and for the first message, when it reads the
    /// [in-body status](super#in-body-answers)) and sends the bound to the server in `grpc-timeout`
    /// (the sooner of it and the call's own time left), so a server honouring `grpc-timeout`
    /// stops the work too; a request the layer cannot replay is not bounded.
    ///
    /// Cutting attempts adds load when the server is slow because it is overloaded (the cut
    /// attempt's work is usually done anyway): keep it well above the normal latency. BENCHMARKS.md's
    /// section 7 simulates it.
    ///
    /// # Examples
    ///
    /// ```
    /// let policy = clarifai_status::retry::Policy::new().attempt_timeout(std::time::Duration::from_secs(2));
    /// # let _ = policy;
    /// ```
    pub fn attempt_timeout(mut self, timeout: Duration) -> Policy {
        self.attempt_timeout = Some(timeout);
        self
    }

    /// Records the calls made by this policy (through [`RetryLayer`](super::RetryLayer),
    /// [`call`](super::call) and [`poll`](super::poll)) into `telemetry`: per call, per attempt,
    /// retries, their delays, and the retries the budget refused or pushback stopped; see the
    /// [`telemetry` module](crate::telemetry).
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::retry::Policy;
    /// use clarifai_status::telemetry::Telemetry;
    ///
    /// let policy = Policy::new().telemetry(Telemetry::new(&opentelemetry::global::meter("my-client")));
    /// # let _ = policy;
    /// ```
    #[cfg(feature = "telemetry")]
    pub fn telemetry(mut self, telemetry: crate::telemetry::Telemetry) -> Policy {
        self.telemetry = Some(telemetry);
        self
    }

    #[cfg(feature = "telemetry")]
    pub(crate) fn telemetry_ref(&self) -> Option<&crate::telemetry::Telemetry> {
        self.telemetry.as_ref()
    }

    /// Counts a retry the budget refused or pushback stopped.
    #[cfg(feature = "telemetry")]
    fn stopped(&self, reason: &'static str, method: Option<&str>, signal: Signal) {
        if let Some(telemetry) = &self.telemetry {
            let code = match signal {
                Signal::Clarifai(code) => Some(code),
                _ => None,
            };
            telemetry.retry_stopped(reason, method, code);
        }
    }

    pub(crate) fn attempt_limit(&self) -> Option<Duration> {
        self.attempt_timeout
    }

    fn set(&mut self, codes: impl IntoIterator<Item = impl Into<Code>>, retryable: bool) {
        for code in codes {
            let code = code.into();
            self.overrides.retain(|(c, _)| *c != code);
            self.overrides.push((code, retryable));
        }
    }

    /// Whether a failure with this Clarifai code is retried: the policy's override, else the
    /// table ([`Code::is_retryable`]; `false` for a number the table does not know).
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::retry::Policy;
    /// use clarifai_status::Code;
    ///
    /// assert!(Policy::new().is_retryable(Code::new(21354))); // MODEL_BUSY_PLEASE_RETRY
    /// assert!(!Policy::new().is_retryable(Code::new(11008))); // CONN_KEY_INVALID
    /// ```
    pub fn is_retryable(&self, code: Code) -> bool {
        self.overrides
            .iter()
            .find(|(c, _)| *c == code)
            .map_or_else(|| code.is_retryable(), |(_, retryable)| *retryable)
    }

    /// Whether a failure with this plain gRPC code (no Clarifai code carried) is retried.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::retry::Policy;
    ///
    /// assert!(!Policy::new().is_retryable_grpc(tonic::Code::InvalidArgument));
    /// ```
    pub fn is_retryable_grpc(&self, code: tonic::Code) -> bool {
        self.grpc_codes & (1 << code as u32) != 0
    }

    pub(crate) fn retries(&self, signal: Signal) -> bool {
        match signal {
            Signal::Clarifai(code) => self.is_retryable(code),
            Signal::Grpc(code) => self.is_retryable_grpc(code),
            Signal::AttemptTimeout => true,
        }
    }

    /// Whether a call may be retried at all: otherwise the layer does not buffer its body.
    pub(crate) fn may_retry(&self) -> bool {
        self.max_attempts > 1
    }

    /// The call's deadline: the policy's, or `timeout` (the call's own) when that is sooner. One
    /// too far to represent is no deadline.
    pub(crate) fn deadline_from(
        &self,
        start: Instant,
        timeout: Option<Duration>,
    ) -> Option<Instant> {
        let own = self.deadline.and_then(|d| start.checked_add(d));
        let call = timeout.and_then(|t| start.checked_add(t));
        match (own, call) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// What the policy does after failed attempt number `attempt` (from 1) of a call that began
    /// `elapsed` ago: `Some(delay)` to retry after `delay`, `None` to stop and return the
    /// failure. The same decision [`RetryLayer`](super::RetryLayer) and [`call`](super::call)
    /// make, budget included (a retryable failure costs a token whether or not it is retried),
    /// for the simulation in virtual time (`retry::simulation`), which has no method paths.
    #[cfg(test)]
    pub(crate) fn next_delay(
        &self,
        failure: &Failure,
        attempt: u32,
        elapsed: Duration,
    ) -> Option<Duration> {
        let remaining = self.deadline.map(|d| d.saturating_sub(elapsed));
        match self.decide(failure, None, attempt, remaining) {
            Decision::Retry(delay) => Some(delay),
            Decision::Stop => None,
        }
    }

    /// Records a successful (or committed) attempt.
    pub(crate) fn succeeded(&self) {
        if let Some(budget) = &self.budget {
            budget.record_success();
        }
    }

    /// The time left until `deadline`, for [`decide`](Policy::decide).
    pub(crate) fn remaining(deadline: Option<Instant>) -> Option<Duration> {
        deadline.map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Decides what follows failed attempt number `attempt` (from 1) of a call to `method`,
    /// with `remaining` left until the deadline, and says so in a `tracing` event.
    pub(crate) fn decide(
        &self,
        failure: &Failure,
        method: Option<&str>,
        attempt: u32,
        remaining: Option<Duration>,
    ) -> Decision {
        let code = failure.signal;
        if !self.retries(code) {
            tracing::debug!(%code, attempt, "not retrying: code is not retryable");
            return Decision::Stop;
        }
        if code.effect_unknown() && !self.idempotent_for(method) {
            tracing::debug!(%code, attempt, "not retrying: effect unknown and method not idempotent");
            return Decision::Stop;
        }
        // Every retryable failure costs, retried or not (gRFC A6).
        let budget_allows = self.budget.as_ref().is_none_or(|b| b.record_failure());
        if attempt >= self.max_attempts {
            tracing::debug!(%code, attempt, "not retrying: attempts exhausted");
            return Decision::Stop;
        }
        if !budget_allows {
            tracing::debug!(%code, attempt, "not retrying: retry budget exhausted");
            #[cfg(feature = "telemetry")]
            self.stopped("budget", method, code);
            return Decision::Stop;
        }
        let delay = match failure.pushback {
            Some(Pushback::DoNotRetry) => {
                tracing::debug!(%code, attempt, "not retrying: server pushback says not to");
                #[cfg(feature = "telemetry")]
                self.stopped("pushback", method, code);
                return Decision::Stop;
            }
            Some(Pushback::After(delay)) if delay > MAX_PUSHBACK => {
                let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
                tracing::debug!(%code, attempt, delay_ms, "not retrying: pushback past the cap");
                #[cfg(feature = "telemetry")]
                self.stopped("pushback", method, code);
                return Decision::Stop;
            }
            Some(Pushback::After(delay)) => delay,
            None => self.backoff.delay(attempt - 1),
        };
        let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        if let Some(remaining) = remaining {
            if delay >= remaining {
                tracing::debug!(%code, attempt, delay_ms, "not retrying: delay ends past the deadline");
                return Decision::Stop;
            }
        }
        tracing::debug!(%code, attempt, delay_ms, "retrying");
        Decision::Retry(delay)
    }
}

/// Whether a method path matches a pattern: the path itself, or a prefix ending in `*`.
pub(crate) fn matches(pattern: &str, method: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => method.starts_with(prefix),
        None => method == pattern,
    }
}

impl Default for Policy {
    /// As [`Policy::new`].
    fn default() -> Policy {
        Policy::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StatusCode;

    fn failure(signal: Signal) -> Failure {
        Failure {
            signal,
            pushback: None,
        }
    }

    #[test]
    fn later_override_wins() {
        let policy = Policy::new()
            .never_retry([StatusCode::ConnThrottled])
            .retry_codes([StatusCode::ConnThrottled]);
        assert!(policy.is_retryable(StatusCode::ConnThrottled.into()));
    }

    #[test]
    fn stops_at_max_attempts_and_charges_the_budget() {
        let budget = Arc::new(Budget::new(100, 1.0).unwrap());
        let policy = Policy::new()
            .max_attempts(2)
            .backoff(Backoff::new(Duration::ZERO, Duration::ZERO))
            .budget(budget.clone());
        let unavailable = failure(Signal::Grpc(tonic::Code::Unavailable));
        assert_eq!(
            policy.decide(&unavailable, None, 1, None),
            Decision::Retry(Duration::ZERO)
        );
        assert_eq!(policy.decide(&unavailable, None, 2, None), Decision::Stop);
        assert_eq!(budget.tokens(), 98.0);
    }

    #[test]
    fn non_retryable_costs_nothing() {
        let budget = Arc::new(Budget::new(10, 0.1).unwrap());
        let policy = Policy::new().budget(budget.clone());
        let denied = failure(Signal::Clarifai(StatusCode::ConnKeyInvalid.into()));
        assert_eq!(policy.decide(&denied, None, 1, None), Decision::Stop);
        assert_eq!(budget.tokens(), 10.0);
    }

    #[test]
    fn pushback_replaces_backoff_and_is_bounded_by_the_deadline() {
        let policy = Policy::new().no_budget();
        let mut throttled = failure(Signal::Clarifai(StatusCode::ConnThrottled.into()));
        throttled.pushback = Some(Pushback::After(Duration::from_secs(3)));
        let far = Some(Duration::from_secs(60));
        let near = Some(Duration::from_secs(1));
        assert_eq!(
            policy.decide(&throttled, None, 1, far),
            Decision::Retry(Duration::from_secs(3))
        );
        assert_eq!(policy.decide(&throttled, None, 1, near), Decision::Stop);
        throttled.pushback = Some(Pushback::DoNotRetry);
        assert_eq!(policy.decide(&throttled, None, 1, far), Decision::Stop);
    }

    #[test]
    fn pushback_past_the_cap_stops_even_without_deadline() {
        let policy = Policy::new().no_deadline().no_budget();
        let mut throttled = failure(Signal::Grpc(tonic::Code::Unavailable));
        throttled.pushback = Some(Pushback::After(MAX_PUSHBACK));
        assert_eq!(
            policy.decide(&throttled, None, 1, None),
            Decision::Retry(MAX_PUSHBACK)
        );
        for huge in [
            MAX_PUSHBACK + Duration::from_millis(1),
            Duration::from_millis(i64::MAX as u64),
            Duration::from_secs(u64::MAX),
            Duration::MAX,
        ] {
            throttled.pushback = Some(Pushback::After(huge));
            assert_eq!(policy.decide(&throttled, None, 1, None), Decision::Stop);
        }
    }

    #[test]
    fn shorter_call_timeout_is_the_deadline() {
        let start = Instant::now();
        let policy = Policy::new().deadline(Duration::from_secs(30));
        let short = Some(Duration::from_secs(2));
        assert_eq!(
            policy.deadline_from(start, short),
            Some(start + Duration::from_secs(2))
        );
        assert_eq!(
            policy.deadline_from(start, None),
            Some(start + Duration::from_secs(30))
        );
        let open = Policy::new().no_deadline();
        assert_eq!(open.deadline_from(start, None), None);
        let endless = Policy::new().deadline(Duration::MAX);
        assert_eq!(endless.deadline_from(start, None), None);
    }
}
