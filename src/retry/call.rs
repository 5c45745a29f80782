//! [`call`]: retrying a typed call, in-body statuses included.

use std::future::Future;

use tokio::time::Instant;

use super::policy::{Decision, Policy};
use super::{classify, timeout};
use crate::response::HasStatus;

/// Makes a typed call with `make_call`, and makes it again while it fails retryably.
///
/// A failure is a gRPC error (read as the wire contract says: a carried Clarifai code, else the
/// plain gRPC code) or an OK response whose in-body `status.code` is a failure, the way
/// Clarifai's API answers (`CONN_THROTTLED`, `MODEL_BUSY_PLEASE_RETRY`, ...). Whether it is
/// retried, how long to wait, and when to stop are the [`Policy`]'s; a server's pushback is read
/// from the error (its `RetryInfo` detail, its metadata) or the response metadata. Success and
/// in-progress statuses are returned at once.
///
/// Returns the last response or error: a success, a failure not to be retried, or the last
/// retryable failure when the policy stops (attempts, budget, pushback or deadline). An OK
/// response with an in-body failure stays `Ok`: use
/// [`response::into_result`](crate::response::into_result) to turn it into an error.
///
/// The policy's deadline bounds the whole call: no sleep ends after it, and an attempt still
/// running then is dropped and the call fails with the client's own `DEADLINE_EXCEEDED` (it has
/// a [source](std::error::Error::source) and carries no code, so
/// [`clarifai_code`](crate::grpc::ClarifaiStatusExt::clarifai_code) reads
/// [`LOCAL_FAILURE`](crate::grpc::LOCAL_FAILURE): no server sent it). The policy's
/// [per-attempt timeout](Policy::attempt_timeout) cuts an attempt sooner; it then fails with that
/// same local `DEADLINE_EXCEEDED` and is retried. `call` knows no method path: under a
/// policy with [idempotent methods](Policy::idempotent_methods) use [`call_method`]. Dropping the returned future stops everything: no attempt
/// starts afterwards.
///
/// # With `RetryLayer` underneath
///
/// `call` owns the retrying of its attempts. To have a [`RetryLayer`](super::RetryLayer) on the
/// client's channel send each of them once, build each attempt's request with
/// [`SendOnce::request`] (or insert [`SendOnce`] into its extensions): the mark travels with the
/// request, so it holds through a `Buffer`, a spawned task or any other service between the
/// client and the layer. Stacked this way, a failure that never ends is tried `max_attempts`
/// times; an attempt without the mark is retried by the layer too, `max_attempts` squared in all.
///
/// # Errors
///
/// The last attempt's `tonic::Status`, when it ended in a gRPC error.
///
/// # Examples
///
/// ```
/// use clarifai_status::pb::{BaseResponse, Status};
/// use clarifai_status::retry::{self, Backoff, Policy};
/// use clarifai_status::StatusCode;
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let policy = Policy::new().backoff(Backoff::new(Duration::from_millis(1), Duration::from_millis(5)));
/// let mut attempts = 0;
/// // In real code, each attempt owns its client and request:
/// // `retry::call(&policy, || { let (mut c, r) = (client.clone(), request.clone()); async move { c.predict(r).await } })`.
/// let response = retry::call(&policy, || {
///     attempts += 1;
///     let code = if attempts < 3 { StatusCode::ModelBusyPleaseRetry } else { StatusCode::Success };
///     let body = BaseResponse { status: Some(Status { code: code as i32, ..Default::default() }) };
///     async move { Ok(tonic::Response::new(body)) }
/// })
/// .await
/// .unwrap();
/// assert_eq!(attempts, 3);
/// assert_eq!(response.get_ref().status.as_ref().unwrap().code, StatusCode::Success as i32);
/// # }
/// ```
pub async fn call<R, F, Fut>(
    policy: &Policy,
    make_call: F,
) -> Result<tonic::Response<R>, tonic::Status>
where
    R: HasStatus,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<tonic::Response<R>, tonic::Status>>,
{
    let run = run(policy, None, make_call);
    #[cfg(feature = "telemetry")]
    let run = super::recording::instrument(policy, None, run);
    run.await
}

/// [`call`] for a known method path (`/clarifai.api.V2/PostInputs`), so the policy's
/// [per-method rule](Policy::idempotent_methods) applies: with a list of idempotent methods set,
/// failures of unknown effect (`UNAVAILABLE`, `DEADLINE_EXCEEDED`, a timed-out attempt) are
/// retried only when `method` is on it. [`call`] knows no method: under such a policy it retries
/// only refusals (throttles, a busy or loading model).
///
/// # Errors
///
/// As [`call`].
///
/// # Examples
///
/// ```
/// use clarifai_status::pb::BaseResponse;
/// use clarifai_status::retry::{self, Backoff, Policy};
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let policy = Policy::new()
///     .backoff(Backoff::new(Duration::from_millis(1), Duration::from_millis(5)))
///     .idempotent_methods(["/clarifai.api.V2/Get*"]);
/// let mut attempts = 0;
/// let result = retry::call_method(&policy, "/clarifai.api.V2/PostInputs", || {
///     attempts += 1;
///     async { Err::<tonic::Response<BaseResponse>, _>(tonic::Status::unavailable("lost")) }
/// })
/// .await;
/// assert_eq!(result.unwrap_err().code(), tonic::Code::Unavailable);
/// assert_eq!(attempts, 1); // may have taken effect: not retried
/// # }
/// ```
pub async fn call_method<R, F, Fut>(
    policy: &Policy,
    method: &str,
    make_call: F,
) -> Result<tonic::Response<R>, tonic::Status>
where
    R: HasStatus,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<tonic::Response<R>, tonic::Status>>,
{
    let run = run(policy, Some(method), make_call);
    #[cfg(feature = "telemetry")]
    let run = super::recording::instrument(policy, Some(method), run);
    run.await
}

async fn run<R, F, Fut>(
    policy: &Policy,
    method: Option<&str>,
    mut make_call: F,
) -> Result<tonic::Response<R>, tonic::Status>
where
    R: HasStatus,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<tonic::Response<R>, tonic::Status>>,
{
    let deadline = policy.deadline_from(Instant::now(), None);
    let mut attempt = 1;
    #[cfg(feature = "telemetry")]
    let mut tap = super::recording::CallTap::current(policy.telemetry_ref(), method);
    loop {
        #[cfg(feature = "telemetry")]
        tap.attempt_started();
        // Boxed: a generated call's future can be large (Clarifai's `PostModelOutputs` is about
        // 84 KB in a debug build), and `call` would hold it inline on the caller's stack.
        let owned = Box::pin(make_call());
        // Each attempt ends by its timeout, or the call's deadline when sooner.
        let limit = policy.attempt_limit();
        let cut = limit.and_then(|l| Instant::now().checked_add(l));
        let (result, failure) = match timeout::earliest(cut, deadline) {
            None => {
                let result = owned.await;
                let failure = classify_result(&result);
                (result, failure)
            }
            Some(due) => match tokio::time::timeout_at(due, owned).await {
                Ok(result) => {
                    let failure = classify_result(&result);
                    (result, failure)
                }
                // The call's deadline came first: nothing follows.
                Err(_elapsed) if deadline.is_some_and(|d| cut.is_none_or(|cut| d <= cut)) => {
                    tracing::debug!(attempt, "stop: deadline reached");
                    #[cfg(feature = "telemetry")]
                    tap.finish((tonic::Code::DeadlineExceeded, None));
                    return Err(timeout::expired("deadline reached"));
                }
                Err(_elapsed) => (
                    Err(timeout::expired("attempt timed out")),
                    Some(classify::timed_out()),
                ),
            },
        };
        #[cfg(feature = "telemetry")]
        tap.attempt_result(&result);
        let Some(failure) = failure else {
            policy.succeeded();
            return result;
        };
        match policy.decide(&failure, method, attempt, Policy::remaining(deadline)) {
            Decision::Stop => return result,
            Decision::Retry(delay) => {
                drop(result);
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                attempt += 1;
            }
        }
    }
}

fn classify_result<R: HasStatus>(
    result: &Result<tonic::Response<R>, tonic::Status>,
) -> Option<classify::Failure> {
    match result {
        Ok(response) => classify::from_response(response),
        Err(status) => Some(classify::from_status(status)),
    }
}

/// Marks a request as one attempt of [`call`] (or of any retrying of the caller's own), so a
/// [`RetryLayer`](super::RetryLayer) underneath sends it once and leaves the retrying to the
/// caller.
///
/// A request extension: tonic carries a `tonic::Request`'s extensions into the
/// `http::Request` the layer sees, and a `Buffer` or a spawn between them carries the request
/// whole, so the mark cannot be lost on the way. The layer then neither retries nor times the
/// request: the caller's retrying bounds it ([`call`] applies the policy's deadline and
/// per-attempt timeout itself).
///
/// # Examples
///
/// ```
/// use clarifai_status::retry::SendOnce;
///
/// let request = SendOnce::request("message");
/// assert!(request.extensions().get::<SendOnce>().is_some());
///
/// // The same mark, on a request built elsewhere:
/// let mut request = tonic::Request::new("message");
/// request.extensions_mut().insert(SendOnce);
/// assert!(request.extensions().get::<SendOnce>().is_some());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendOnce;

impl SendOnce {
    /// A `tonic::Request` for `message`, marked to be sent once by a `RetryLayer` underneath.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::retry::SendOnce;
    ///
    /// let request = SendOnce::request(42_u32);
    /// assert_eq!(*request.get_ref(), 42);
    /// assert_eq!(request.extensions().get::<SendOnce>(), Some(&SendOnce));
    /// ```
    pub fn request<T>(message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.extensions_mut().insert(SendOnce);
        request
    }
}
