//! [`RetryLayer`]: the tower layer that wraps a tonic channel in [`Retry`].

use std::sync::Arc;

use tower_layer::Layer;

use super::{InBody, Policy, Retry, DEFAULT_BUFFER_LIMIT};

/// Wraps a service (a tonic `Channel`, typically) in [`Retry`] with one [`Policy`].
///
/// Every service the layer builds, and every clone of those, shares the policy and its budget:
/// build one layer per client whose retries should be budgeted together.
///
/// The layer retries Clarifai's in-body answers too (an OK response whose first message carries
/// a failure `status`, such as `MODEL_BUSY_PLEASE_RETRY`): see [in-body
/// answers](super#in-body-answers), and [`in_body`](RetryLayer::in_body) to turn it off.
///
/// Calls made inside [`retry::call`](super::call) are sent once by the layer: stacking both,
/// under one policy or two, makes at most `call`'s `max_attempts` attempts, never their product.
/// So one client can serve plain calls (retried by the layer) and typed calls wrapped in `call`.
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
    in_body: InBody,
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
            in_body: InBody::default(),
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

impl RetryLayer {
    /// Turns the reading of in-body statuses on or off for every method, but those named by
    /// [`in_body_except`](RetryLayer::in_body_except). **On by default**: see [in-body
    /// answers](super#in-body-answers) for what is read, and why it is on.
    ///
    /// Off, the layer sees only gRPC errors, and an OK response is committed as soon as its
    /// headers arrive.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::retry::{Policy, RetryLayer};
    ///
    /// // A channel to a service whose responses are not Clarifai's: gRPC errors only.
    /// let layer = RetryLayer::new(Policy::new()).in_body(false);
    /// # let _ = layer;
    /// ```
    pub fn in_body(mut self, on: bool) -> RetryLayer {
        self.in_body.set(on);
        self
    }

    /// Methods that take the opposite of [`in_body`](RetryLayer::in_body): not read when it is
    /// on (the default), read when it is off. A pattern is a method path
    /// (`/clarifai.api.V2/PostModelOutputs`) or a prefix ending in `*` (`/grpc.health.v1.Health/*`),
    /// as for [`Policy::idempotent_methods`]; later calls add to the list.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::retry::{Policy, RetryLayer};
    ///
    /// // Every method but the health service's, whose field 1 is not a Clarifai status.
    /// let all_but = RetryLayer::new(Policy::new()).in_body_except(["/grpc.health.v1.Health/*"]);
    /// // Only predictions.
    /// let only = RetryLayer::new(Policy::new())
    ///     .in_body(false)
    ///     .in_body_except(["/clarifai.api.V2/PostModelOutputs", "/clarifai.api.V2/Generate*"]);
    /// # let _ = (all_but, only);
    /// ```
    pub fn in_body_except(
        mut self,
        patterns: impl IntoIterator<Item = impl Into<String>>,
    ) -> RetryLayer {
        self.in_body.except(patterns);
        self
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = Retry<S>;

    fn layer(&self, inner: S) -> Retry<S> {
        Retry::from_parts(
            inner,
            self.policy.clone(),
            self.buffer_limit,
            self.in_body.clone(),
        )
    }
}
