//! [`RetryLayer`]: the tower layer that wraps a tonic channel in [`Retry`].

use std::sync::Arc;

use tower_layer::Layer;

use super::{Policy, Retry, DEFAULT_BUFFER_LIMIT};

/// Wraps a service (a tonic `Channel`, typically) in [`Retry`] with one [`Policy`].
///
/// Every service the layer builds, and every clone of those, shares the policy and its budget:
/// build one layer per client whose retries should be budgeted together.
///
/// Calls made inside [`retry::call`](super::call) (which retries in-body statuses too) are sent
/// once by the layer: stacking both, under one policy or two, makes at most `call`'s
/// `max_attempts` attempts, never their product. So one client can serve plain calls (retried
/// by the layer) and typed calls wrapped in `call`.
///
/// # Examples
///
/// ```no_run
/// use clarifai_status::retry::{Policy, RetryLayer};
/// use tonic::transport::Channel;
/// use tower::ServiceBuilder;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let channel = Channel::from_static("http://127.0.0.1:50051").connect().await?;
/// let channel = ServiceBuilder::new()
///     .layer(RetryLayer::new(Policy::new()).buffer_limit(16 * 1024))
///     .service(channel);
/// // Any generated client takes it: `PredictClient::new(channel)`, ...; they all wrap this.
/// let client = tonic::client::Grpc::new(channel);
/// # let _ = client;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct RetryLayer {
    policy: Arc<Policy>,
    buffer_limit: usize,
}

impl RetryLayer {
    /// A layer retrying by `policy`, buffering request bodies up to 64 KiB.
    ///
    /// # Examples
    ///
    /// ```
    /// let layer = clarifai_status::retry::RetryLayer::new(clarifai_status::retry::Policy::new());
    /// # let _ = layer;
    /// ```
    pub fn new(policy: Policy) -> RetryLayer {
        RetryLayer {
            policy: Arc::new(policy),
            buffer_limit: DEFAULT_BUFFER_LIMIT,
        }
    }

    /// Sets the largest request body buffered for replay, in bytes; a larger request is sent
    /// once, without retry.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::retry::{Policy, RetryLayer};
    ///
    /// let layer = RetryLayer::new(Policy::new()).buffer_limit(1 << 20);
    /// # let _ = layer;
    /// ```
    pub fn buffer_limit(mut self, bytes: usize) -> RetryLayer {
        self.buffer_limit = bytes;
        self
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = Retry<S>;

    fn layer(&self, inner: S) -> Retry<S> {
        Retry::from_parts(inner, self.policy.clone(), self.buffer_limit)
    }
}
