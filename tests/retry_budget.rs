//! The retry budget: bounded extra load under total failure, shared by every clone, earned back
//! by successes, exact under concurrency.
#![cfg(feature = "retry")]

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clarifai_status::retry::{Backoff, BoxError, Budget, Policy, RetryLayer};
use tonic::body::Body;
use tower::{Service, ServiceBuilder, ServiceExt};

type Req = http::Request<Body>;
type Res = http::Response<Body>;

/// A server failing when `fail(n)` for attempt `n` (from 0), counting attempts.
fn server(
    fail: impl Fn(usize) -> bool + Clone + Send + 'static,
) -> (
    impl Service<Req, Response = Res, Error = BoxError, Future: Send> + Clone,
    Arc<AtomicUsize>,
) {
    let attempts = Arc::new(AtomicUsize::new(0));
    let counter = attempts.clone();
    let svc = tower::service_fn(move |_: Req| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        let failed = fail(n);
        async move {
            let mut response = http::Response::new(Body::empty());
            if failed {
                response
                    .headers_mut()
                    .insert("grpc-status", "14".parse().unwrap());
            }
            Ok::<_, BoxError>(response)
        }
    });
    (svc, attempts)
}

fn instant() -> Policy {
    Policy::new().backoff(Backoff::new(Duration::ZERO, Duration::ZERO))
}

async fn call<S>(svc: &mut S) -> bool
where
    S: Service<Req, Response = Res, Error = BoxError>,
{
    let response = svc
        .ready()
        .await
        .unwrap()
        .call(http::Request::new(Body::empty()))
        .await;
    response.unwrap().headers().get("grpc-status").is_none()
}

#[tokio::test]
async fn retry_stops_at_budget_under_total_failure() {
    let (inner, attempts) = server(|_| true);
    let policy = instant().budget(Budget::new(10, 0.1).unwrap());
    let mut svc = ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .service(inner);
    for _ in 0..200 {
        assert!(!call(&mut svc).await);
    }
    // gRFC A6: four failures take 10 tokens to 6; the fifth reaches the threshold (5).
    assert_eq!(attempts.load(Ordering::SeqCst), 204);
}

#[tokio::test]
async fn without_a_budget_total_failure_multiplies_load() {
    let (inner, attempts) = server(|_| true);
    let mut svc = ServiceBuilder::new()
        .layer(RetryLayer::new(instant().no_budget()))
        .service(inner);
    for _ in 0..200 {
        call(&mut svc).await;
    }
    assert_eq!(attempts.load(Ordering::SeqCst), 1000);
}

#[tokio::test]
async fn default_budget_caps_amplification_at_1_2_under_total_failure() {
    let (inner, attempts) = server(|_| true);
    let mut svc = ServiceBuilder::new()
        .layer(RetryLayer::new(instant()))
        .service(inner);
    let calls = 200;
    for _ in 0..calls {
        call(&mut svc).await;
    }
    let amplification = attempts.load(Ordering::SeqCst) as f64 / f64::from(calls);
    assert!(amplification <= 1.2, "{amplification}");
}

#[tokio::test]
async fn every_clone_shares_one_budget() {
    let (inner, attempts) = server(|_| true);
    let layer = RetryLayer::new(instant().budget(Budget::new(10, 0.1).unwrap()));
    let mut first = ServiceBuilder::new()
        .layer(layer.clone())
        .service(inner.clone());
    let mut second = first.clone();
    let mut third = ServiceBuilder::new().layer(layer).service(inner);
    call(&mut first).await; // drains the bucket: 5 attempts
    call(&mut second).await;
    call(&mut third).await;
    assert_eq!(attempts.load(Ordering::SeqCst), 7);
}

#[tokio::test]
async fn successes_earn_retries_back() {
    let budget = Arc::new(Budget::new(10, 0.5).unwrap());
    let failing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let switch = failing.clone();
    let (inner, _) = server(move |_| switch.load(Ordering::SeqCst));
    let mut svc = ServiceBuilder::new()
        .layer(RetryLayer::new(instant().budget(budget.clone())))
        .service(inner);
    for _ in 0..20 {
        call(&mut svc).await;
    }
    assert!(!budget.can_retry());
    failing.store(false, Ordering::SeqCst);
    for _ in 0..12 {
        assert!(call(&mut svc).await);
    }
    assert!(budget.can_retry());
    assert!(budget.tokens() >= 6.0);
}

#[tokio::test]
async fn partial_transient_failure_is_always_retried() {
    // Every fifth attempt fails (20%): successes keep the default bucket full.
    let (inner, attempts) = server(|n| n % 5 == 0);
    let mut svc = ServiceBuilder::new()
        .layer(RetryLayer::new(instant()))
        .service(inner);
    let mut succeeded = 0;
    for _ in 0..1000 {
        succeeded += usize::from(call(&mut svc).await);
    }
    assert_eq!(succeeded, 1000);
    let amplification = attempts.load(Ordering::SeqCst) as f64 / 1000.0;
    assert!(amplification <= 1.3, "{amplification}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_share_the_budget() {
    let (inner, attempts) = server(|_| true);
    let svc = ServiceBuilder::new()
        .layer(RetryLayer::new(
            instant().budget(Budget::new(10, 0.1).unwrap()),
        ))
        .service(inner);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let mut svc = svc.clone();
        tasks.spawn(async move {
            for _ in 0..25 {
                let response = svc
                    .ready()
                    .await
                    .unwrap()
                    .call(http::Request::new(Body::empty()));
                response.await.unwrap();
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    // 400 calls; at most the retries the bucket allows above its threshold, however interleaved.
    let total = attempts.load(Ordering::SeqCst);
    assert!((400..=405).contains(&total), "{total}");
}

#[test]
fn token_count_is_exact_under_contention() {
    let budget = Arc::new(Budget::new(1000, 1.0).unwrap());
    let allowed = Arc::new(AtomicU64::new(0));
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let (budget, allowed) = (budget.clone(), allowed.clone());
            scope.spawn(move || {
                for _ in 0..100 {
                    allowed.fetch_add(u64::from(budget.record_failure()), Ordering::Relaxed);
                }
            });
        }
    });
    assert_eq!(budget.tokens(), 600.0);
    assert_eq!(allowed.load(Ordering::Relaxed), 400);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let budget = budget.clone();
            scope.spawn(move || {
                for _ in 0..50 {
                    budget.record_success();
                }
            });
        }
    });
    assert_eq!(budget.tokens(), 800.0);
}
