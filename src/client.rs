//! The client side of Clarifai's convention: sending the API key with every call.
//!
//! Clarifai authenticates a call by its `authorization: Key <key>` metadata (an API key or a
//! personal access token). [`AddApiKey`] is a `tonic::service::Interceptor` that adds it to every
//! request of a generated client: the counterpart of `server::ApiKeyAuth` (feature `server`). It
//! needs no tonic transport, so it is in the default build.
//!
//! # Examples
//!
//! Any generated client takes it with `with_interceptor` (here the test server's client, from
//! `clarifai-status-testing`):
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use clarifai_status::client::AddApiKey;
//! use clarifai_status_testing::pb::status_tester_client::StatusTesterClient;
//!
//! let key = AddApiKey::new(std::env::var("CLARIFAI_PAT")?)?;
//! let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:50051")
//!     .connect()
//!     .await?;
//! let client = StatusTesterClient::with_interceptor(channel, key);
//! # drop(client);
//! # Ok(())
//! # }
//! ```
//!
//! What it does to a request:
//!
//! ```
//! use clarifai_status::client::AddApiKey;
//! use tonic::service::Interceptor;
//!
//! let mut key = AddApiKey::new("s3cret")?;
//! let request = key.call(tonic::Request::new(()))?;
//! assert_eq!(request.metadata().get("authorization").unwrap(), "Key s3cret");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::error::Error;
use std::fmt;

use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::Request;

/// The metadata key Clarifai reads the API key from.
const AUTHORIZATION: &str = "authorization";

/// An interceptor adding `authorization: Key <key>` to every request, Clarifai's convention.
///
/// The key is checked once, by [`AddApiKey::new`]; the interceptor then never fails. A request
/// that already carries `authorization` keeps it, so one call can use another key (or, against
/// `clarifai-status serve`, a `Key raise;<pairs>` scenario) through the same client.
///
/// The metadata value is marked sensitive, and `Debug` never shows the key.
///
/// # Examples
///
/// ```
/// use clarifai_status::client::AddApiKey;
/// use tonic::service::Interceptor;
///
/// let mut key = AddApiKey::new("s3cret")?;
/// let request = key.call(tonic::Request::new(()))?;
/// assert_eq!(request.metadata().get("authorization").unwrap(), "Key s3cret");
/// assert!(!format!("{key:?}").contains("s3cret"));
///
/// // A key set on the request wins.
/// let mut own = tonic::Request::new(());
/// own.metadata_mut().insert("authorization", "Key other".parse()?);
/// let own = key.call(own)?;
/// assert_eq!(own.metadata().get("authorization").unwrap(), "Key other");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct AddApiKey {
    value: AsciiMetadataValue,
}

impl AddApiKey {
    /// An interceptor sending this key (an API key or a personal access token).
    ///
    /// # Errors
    ///
    /// [`InvalidApiKey`] if the key is empty or holds anything but visible ASCII (letters,
    /// digits, punctuation; no spaces, no control characters, nothing beyond ASCII): such a key
    /// cannot be sent in gRPC metadata, and `server::ApiKeyAuth` would reject it as malformed.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::client::AddApiKey;
    ///
    /// assert!(AddApiKey::new("0123abcd").is_ok());
    /// assert!(AddApiKey::new("").is_err());
    /// assert!(AddApiKey::new("two words").is_err());
    /// assert_eq!(AddApiKey::new("clé").unwrap_err().to_string(), "invalid api key");
    /// ```
    pub fn new(key: impl AsRef<str>) -> Result<AddApiKey, InvalidApiKey> {
        let key = key.as_ref();
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidApiKey(()));
        }
        let mut value: AsciiMetadataValue =
            MetadataValue::try_from(format!("Key {key}")).map_err(|_| InvalidApiKey(()))?;
        value.set_sensitive(true);
        Ok(AddApiKey { value })
    }
}

impl fmt::Debug for AddApiKey {
    /// Never shows the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AddApiKey").finish_non_exhaustive()
    }
}

impl Interceptor for AddApiKey {
    /// Adds the key unless the request already has `authorization`; never fails.
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, tonic::Status> {
        let metadata = request.metadata_mut();
        if !metadata.contains_key(AUTHORIZATION) {
            metadata.insert(AUTHORIZATION, self.value.clone());
        }
        Ok(request)
    }
}

/// The error of [`AddApiKey::new`]: the key is empty or not visible ASCII.
///
/// Opaque and terse, and never shows the key, which is a secret.
///
/// # Examples
///
/// ```
/// let error = clarifai_status::client::AddApiKey::new("bad key").unwrap_err();
/// assert_eq!(error.to_string(), "invalid api key");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidApiKey(());

impl fmt::Display for InvalidApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid api key")
    }
}

impl Error for InvalidApiKey {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_every_byte_outside_visible_ascii() {
        for byte in 0u8..=127 {
            let key = format!("a{}b", byte as char);
            assert_eq!(
                AddApiKey::new(&key).is_ok(),
                byte.is_ascii_graphic(),
                "byte {byte}"
            );
        }
        assert!(AddApiKey::new("ab\u{e9}").is_err());
        assert!(AddApiKey::new("").is_err());
    }

    #[test]
    fn sends_the_value_marked_sensitive() {
        let request = AddApiKey::new("k").unwrap().call(Request::new(())).unwrap();
        let value = request.metadata().get(AUTHORIZATION).unwrap();
        assert!(value.is_sensitive());
        assert_eq!(value, "Key k");
    }
}
