//! The typed call helper and the poller: in-body statuses, gRPC errors, pushback, deadline.
#![cfg(feature = "retry")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clarifai_status::grpc::ErrorBuilder;
use clarifai_status::pb::{BaseResponse, Status};
use clarifai_status::response::HasStatus;
use clarifai_status::retry::{self, Backoff, Budget, Policy, PollPolicy};
use clarifai_status::{Code, Outcome, StatusCode};

type Reply = Result<tonic::Response<BaseResponse>, tonic::Status>;

fn body(code: StatusCode) -> Reply {
    Ok(tonic::Response::new(BaseResponse {
        status: Some(Status {
            code: code as i32,
            ..Default::default()
        }),
    }))
}

/// A call answering attempt `i` with `script[i]()` (the last one repeats), counting attempts.
fn scripted(
    script: Vec<fn() -> Reply>,
) -> (impl FnMut() -> std::future::Ready<Reply>, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    let call = move || {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        std::future::ready(script[n.min(script.len() - 1)]())
    };
    (call, count)
}

fn fast() -> Policy {
    Policy::new().backoff(Backoff::new(
        Duration::from_millis(1),
        Duration::from_millis(2),
    ))
}

fn code_of(reply: &Reply) -> Code {
    match reply {
        Ok(response) => response.status_code().unwrap(),
        Err(status) => clarifai_status::grpc::ClarifaiStatusExt::clarifai_code(status),
    }
}

#[tokio::test]
async fn retries_a_retryable_in_body_status_until_success() {
    let (call, count) = scripted(vec![
        || body(StatusCode::ModelBusyPleaseRetry),
        || body(StatusCode::ConnThrottled),
        || body(StatusCode::Success),
    ]);
    let reply = retry::call(&fast(), call).await;
    assert_eq!(code_of(&reply), StatusCode::Success);
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn returns_a_non_retryable_in_body_failure_at_once() {
    let (call, count) = scripted(vec![|| body(StatusCode::ConnKeyInvalid), || {
        body(StatusCode::Success)
    }]);
    let reply = retry::call(&fast(), call).await;
    assert!(reply.is_ok(), "an in-body failure stays an OK response");
    assert_eq!(code_of(&reply), StatusCode::ConnKeyInvalid);
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn in_progress_and_statusless_responses_are_not_retried() {
    let (call, count) = scripted(vec![|| body(StatusCode::ModelTraining)]);
    let reply = retry::call(&fast(), call).await;
    assert_eq!(code_of(&reply), StatusCode::ModelTraining);
    assert_eq!(count.load(Ordering::SeqCst), 1);

    let (call, count) = scripted(vec![|| {
        Ok(tonic::Response::new(BaseResponse { status: None }))
    }]);
    retry::call(&fast(), call).await.unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn retries_grpc_errors_by_carried_code_then_grpc_code() {
    let cases: [(fn() -> Reply, usize); 5] = [
        (|| Err(StatusCode::RpcServerUnavailable.into()), 2),
        (|| Err(StatusCode::ConnThrottled.into()), 2), // RESOURCE_EXHAUSTED, but the table says retry
        (|| Err(StatusCode::ConnKeyInvalid.into()), 1),
        (|| Err(tonic::Status::unavailable("down")), 2),
        (|| Err(tonic::Status::invalid_argument("bad")), 1),
    ];
    for (i, (fail, want)) in cases.into_iter().enumerate() {
        let script: Vec<fn() -> Reply> = vec![fail, || body(StatusCode::Success)];
        let (call, count) = scripted(script);
        retry::call(&fast(), call).await.ok();
        assert_eq!(count.load(Ordering::SeqCst), want, "case {i}");
    }
}

#[tokio::test]
async fn never_retries_what_the_table_calls_final() {
    for code in StatusCode::all().filter(|c| c.outcome() == Outcome::Failure) {
        let count = AtomicUsize::new(0);
        let policy = fast().no_budget().max_attempts(2);
        retry::call(&policy, || {
            count.fetch_add(1, Ordering::SeqCst);
            std::future::ready(body(code))
        })
        .await
        .unwrap();
        let want = if code.is_retryable() { 2 } else { 1 };
        assert_eq!(count.load(Ordering::SeqCst), want, "{code:?}");
    }
}

#[tokio::test]
async fn policy_overrides_apply_to_in_body_statuses() {
    let policy = fast()
        .never_retry([StatusCode::ConnThrottled])
        .retry_codes([StatusCode::InternalServerIssue]);
    let (call, count) = scripted(vec![|| body(StatusCode::ConnThrottled), || {
        body(StatusCode::Success)
    }]);
    retry::call(&policy, call).await.unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 1);
    let (call, count) = scripted(vec![|| body(StatusCode::InternalServerIssue), || {
        body(StatusCode::Success)
    }]);
    retry::call(&policy, call).await.unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn stops_at_max_attempts_with_the_last_reply() {
    let (call, count) = scripted(vec![|| Err(tonic::Status::unavailable("down"))]);
    let error = retry::call(&fast().max_attempts(4), call)
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::Unavailable);
    assert_eq!(count.load(Ordering::SeqCst), 4);
}

// Paused clock: the pushback is the only wait, so virtual time is exactly it.
#[tokio::test(start_paused = true)]
async fn honours_pushback_from_the_error() {
    let (call, count) = scripted(vec![
        || {
            Err(ErrorBuilder::new(StatusCode::ConnThrottled)
                .retry_after(Duration::from_millis(60))
                .build())
        },
        || body(StatusCode::Success),
    ]);
    let start = tokio::time::Instant::now();
    retry::call(&fast(), call).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(60));
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

// Paused clock: the pushback is the only wait, so virtual time is exactly it.
#[tokio::test(start_paused = true)]
async fn honours_pushback_in_response_metadata() {
    let (call, count) = scripted(vec![
        || {
            let mut reply = body(StatusCode::ConnThrottled)?;
            reply
                .metadata_mut()
                .insert("grpc-retry-pushback-ms", "50".parse().unwrap());
            Ok(reply)
        },
        || body(StatusCode::Success),
    ]);
    let start = tokio::time::Instant::now();
    retry::call(&fast(), call).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(50));
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

// Paused clock: stopping at once takes no virtual time at all; a sleep would show.
#[tokio::test(start_paused = true)]
async fn stops_at_once_when_pushback_ends_past_the_deadline() {
    let (call, count) = scripted(vec![
        || {
            Err(ErrorBuilder::new(StatusCode::ConnThrottled)
                .retry_after(Duration::from_secs(5))
                .build())
        },
        || body(StatusCode::Success),
    ]);
    let start = tokio::time::Instant::now();
    let error = retry::call(&fast().deadline(Duration::from_millis(300)), call)
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(
        clarifai_status::grpc::ClarifaiStatusExt::clarifai_code(&error),
        StatusCode::ConnThrottled
    );
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

// Paused clock: the future is dropped exactly 30 ms into the 100 ms wait, however loaded the
// machine.
#[tokio::test(start_paused = true)]
async fn dropping_the_future_mid_backoff_stops_all_attempts() {
    let (call, count) = scripted(vec![|| {
        Err(ErrorBuilder::new(StatusCode::ModelBusyPleaseRetry)
            .retry_after(Duration::from_millis(100))
            .build())
    }]);
    let policy = fast();
    let start = tokio::time::Instant::now();
    let future = retry::call(&policy, call);
    assert!(tokio::time::timeout(Duration::from_millis(30), future)
        .await
        .is_err());
    assert_eq!(start.elapsed(), Duration::from_millis(30));
    assert_eq!(count.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn budget_caps_retries_under_total_failure() {
    let budget = Arc::new(Budget::new(10, 0.1).unwrap());
    let policy = Policy::new()
        .backoff(Backoff::new(Duration::ZERO, Duration::ZERO))
        .budget(budget.clone());
    let count = AtomicUsize::new(0);
    for _ in 0..100 {
        retry::call(&policy, || {
            count.fetch_add(1, Ordering::SeqCst);
            std::future::ready(body(StatusCode::ModelBusyPleaseRetry))
        })
        .await
        .unwrap();
    }
    // Four retries, all in the first call; then the bucket is at its threshold.
    assert_eq!(count.load(Ordering::SeqCst), 104);
    assert!(!budget.can_retry());
}

#[tokio::test]
async fn poll_waits_until_terminal() {
    let polling = PollPolicy::new().interval(Backoff::new(
        Duration::from_millis(1),
        Duration::from_millis(2),
    ));
    let (call, count) = scripted(vec![
        || body(StatusCode::JobQueued),
        || body(StatusCode::JobRunning),
        || Err(tonic::Status::unavailable("blip")), // retried by the poll's retry policy
        || body(StatusCode::JobRunning),
        || body(StatusCode::JobCompleted),
    ]);
    let reply = retry::poll(&polling, call).await;
    assert_eq!(code_of(&reply), StatusCode::JobCompleted);
    assert_eq!(count.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn poll_returns_a_terminal_failure_as_is() {
    let polling = PollPolicy::new().interval(Backoff::new(
        Duration::from_millis(1),
        Duration::from_millis(2),
    ));
    let (call, count) = scripted(vec![|| body(StatusCode::ModelTraining), || {
        body(StatusCode::ModelTrainingFailed)
    }]);
    let reply = retry::poll(&polling, call).await;
    assert_eq!(code_of(&reply), StatusCode::ModelTrainingFailed);
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

// Paused clock: the polls take no time, so virtual time is the sum of the waits. No wait ends
// past the deadline (150 ms, the timer's 1 ms rounding at most), and polling stops only when the
// next wait (at most 20 ms) would: so it ends within the last 20 ms before the deadline.
#[tokio::test(start_paused = true)]
async fn poll_returns_the_last_in_progress_reply_at_the_deadline() {
    let polling = PollPolicy::new()
        .interval(Backoff::new(
            Duration::from_millis(20),
            Duration::from_millis(20),
        ))
        .deadline(Duration::from_millis(150));
    let (call, count) = scripted(vec![|| body(StatusCode::ModelTraining)]);
    let start = tokio::time::Instant::now();
    let reply = retry::poll(&polling, call).await.unwrap();
    let elapsed = start.elapsed();
    assert!(elapsed <= Duration::from_millis(150), "{elapsed:?}");
    assert!(elapsed >= Duration::from_millis(150 - 20), "{elapsed:?}");
    assert_eq!(reply.status_code().unwrap().outcome(), Outcome::InProgress);
    assert!(count.load(Ordering::SeqCst) >= 2);
}

#[tokio::test]
async fn poll_stops_on_a_non_retryable_error() {
    let polling = PollPolicy::new().interval(Backoff::new(
        Duration::from_millis(1),
        Duration::from_millis(2),
    ));
    let (call, count) = scripted(vec![|| body(StatusCode::JobRunning), || {
        Err(StatusCode::ConnKeyInvalid.into())
    }]);
    let error = retry::poll(&polling, call).await.unwrap_err();
    assert_eq!(error.code(), tonic::Code::Unauthenticated);
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn poll_passes_each_attempt_through_the_same_closure_state() {
    // The closure is FnMut: it may carry state (a page token, a request to clone) across polls.
    let seen = Mutex::new(Vec::new());
    let polling = PollPolicy::new().interval(Backoff::new(Duration::ZERO, Duration::ZERO));
    let mut n = 0;
    retry::poll(&polling, || {
        n += 1;
        seen.lock().unwrap().push(n);
        std::future::ready(body(if n < 3 {
            StatusCode::DatasetVersionPending
        } else {
            StatusCode::DatasetVersionReady
        }))
    })
    .await
    .unwrap();
    assert_eq!(*seen.lock().unwrap(), [1, 2, 3]);
}
