//! [`poll`]: waiting on long-running work until its status is terminal.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::{call, timeout, Backoff, Policy};
use crate::response::HasStatus;
use crate::Outcome;

/// How [`poll`] waits on long-running work: the interval between polls, how long to wait in all,
/// and the [`Policy`] each poll's call is retried by.
///
/// # Examples
///
/// ```
/// use clarifai_status::retry::{Backoff, Policy, PollPolicy};
/// use std::time::Duration;
///
/// let polling = PollPolicy::new()
///     .interval(Backoff::new(Duration::from_millis(500), Duration::from_secs(10)))
///     .deadline(Duration::from_secs(300))
///     .retry(Policy::new().max_attempts(3));
/// # let _ = polling;
/// ```
#[derive(Debug, Clone)]
pub struct PollPolicy {
    interval: Backoff,
    deadline: Duration,
    retry: Policy,
}

impl PollPolicy {
    /// Polls 1 s apart at first, doubling up to 30 s (with full jitter), for up to 10 minutes
    /// (as long as Clarifai's SDK waits for a model to load), each poll retried by
    /// [`Policy::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// let polling = clarifai_status::retry::PollPolicy::new();
    /// # let _ = polling;
    /// ```
    pub fn new() -> PollPolicy {
        PollPolicy {
            interval: Backoff::new(Duration::from_secs(1), Duration::from_secs(30)),
            deadline: Duration::from_secs(600),
            retry: Policy::new(),
        }
    }

    /// Sets the interval between polls: poll `n` waits a delay drawn as [`Backoff::delay`]`(n)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::retry::{Backoff, PollPolicy};
    /// use std::time::Duration;
    ///
    /// let polling = PollPolicy::new().interval(Backoff::new(Duration::from_secs(2), Duration::from_secs(2)));
    /// # let _ = polling;
    /// ```
    pub fn interval(mut self, interval: Backoff) -> PollPolicy {
        self.interval = interval;
        self
    }

    /// Sets how long to wait in all, from the first poll.
    ///
    /// # Examples
    ///
    /// ```
    /// let polling = clarifai_status::retry::PollPolicy::new().deadline(std::time::Duration::from_secs(60));
    /// # let _ = polling;
    /// ```
    pub fn deadline(mut self, deadline: Duration) -> PollPolicy {
        self.deadline = deadline;
        self
    }

    /// Sets the policy each poll's call is retried by (transient errors while polling).
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::retry::{Policy, PollPolicy};
    ///
    /// let polling = PollPolicy::new().retry(Policy::new().max_attempts(2));
    /// # let _ = polling;
    /// ```
    pub fn retry(mut self, policy: Policy) -> PollPolicy {
        self.retry = policy;
        self
    }
}

impl Default for PollPolicy {
    /// As [`PollPolicy::new`].
    fn default() -> PollPolicy {
        PollPolicy::new()
    }
}

/// Repeats a status-returning call while its in-body status is in progress
/// ([`Outcome::InProgress`]: `MODEL_TRAINING`, `JOB_RUNNING`, `INPUT_DOWNLOAD_PENDING`, ...),
/// waiting between polls, until the status is terminal or the deadline comes.
///
/// Each poll is one [`call`] with the poll policy's retry [`Policy`], so transient failures while
/// polling are retried as usual.
///
/// Returns the last response: terminal (success or failure, in the body), or **still in
/// progress** when the next wait would end past the deadline; check its status's outcome. A
/// response without a status counts as terminal. Dropping the future stops polling.
///
/// The deadline bounds every poll's call too: a poll still unanswered when it comes is dropped,
/// and `poll` fails with the client's own `DEADLINE_EXCEEDED` (read as
/// [`LOCAL_FAILURE`](crate::grpc::LOCAL_FAILURE), as for [`call`]'s deadline).
///
/// # Errors
///
/// A gRPC error the retry policy did not (or no longer would) retry, or the local
/// `DEADLINE_EXCEEDED` of a poll cut by the deadline.
///
/// # Examples
///
/// ```
/// use clarifai_status::pb::{BaseResponse, Status};
/// use clarifai_status::response::HasStatus;
/// use clarifai_status::retry::{self, Backoff, PollPolicy};
/// use clarifai_status::{Outcome, StatusCode};
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let polling = PollPolicy::new().interval(Backoff::new(Duration::from_millis(1), Duration::from_millis(2)));
/// let mut polls = 0;
/// // In real code, each poll owns its client and request:
/// // `retry::poll(&polling, || { let (mut c, r) = (client.clone(), request.clone()); async move { c.get_model(r).await } })`.
/// let response = retry::poll(&polling, || {
///     polls += 1;
///     let code = if polls < 4 { StatusCode::ModelTraining } else { StatusCode::ModelTrained };
///     let body = BaseResponse { status: Some(Status { code: code as i32, ..Default::default() }) };
///     async move { Ok(tonic::Response::new(body)) }
/// })
/// .await
/// .unwrap();
/// assert_eq!(polls, 4);
/// assert_eq!(response.status_code().unwrap().outcome(), Outcome::Success);
/// # }
/// ```
pub async fn poll<R, F, Fut>(
    policy: &PollPolicy,
    mut make_call: F,
) -> Result<tonic::Response<R>, tonic::Status>
where
    R: HasStatus,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<tonic::Response<R>, tonic::Status>>,
{
    let deadline = Instant::now().checked_add(policy.deadline);
    let mut n = 0;
    loop {
        // The poller's deadline bounds each poll's call too, whatever the retry policy's.
        let response = match deadline {
            None => call(&policy.retry, &mut make_call).await?,
            Some(deadline) => {
                tokio::time::timeout_at(deadline, call(&policy.retry, &mut make_call))
                    .await
                    .map_err(|_elapsed| {
                        tracing::debug!(attempt = n + 1, "stop polling: deadline reached mid-poll");
                        timeout::expired("poll deadline reached")
                    })??
            }
        };
        let Some(code) = response
            .get_ref()
            .status_code()
            .filter(|code| code.outcome() == Outcome::InProgress)
        else {
            return Ok(response);
        };
        let delay = policy.interval.delay(n);
        let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        let ends = Instant::now().checked_add(delay);
        if deadline.is_some_and(|deadline| ends.is_none_or(|ends| ends >= deadline)) {
            tracing::debug!(%code, attempt = n + 1, delay_ms, "stop polling: deadline");
            return Ok(response);
        }
        tracing::debug!(%code, attempt = n + 1, delay_ms, "still in progress; polling again");
        drop(response);
        tokio::time::sleep(delay).await;
        n += 1;
    }
}
