//! API-key authentication in Clarifai's convention: `authorization: Key <key>`.

use std::fmt;
use std::sync::Arc;

use subtle::ConstantTimeEq;
use tonic::service::Interceptor;
use tonic::Request;

use crate::StatusCode;

/// What a [`KeyValidator`] concluded about a key.
///
/// Each rejection maps to a Clarifai code (see [`ApiKeyAuth`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyCheck {
    /// The key is valid for this call.
    Valid,
    /// No such key: `CONN_KEY_NOT_FOUND` (11009, gRPC `UNAUTHENTICATED`).
    Unknown,
    /// The key exists but may not be used (revoked, expired, another app's):
    /// `CONN_KEY_INVALID` (11008, gRPC `UNAUTHENTICATED`).
    Invalid,
    /// The key is valid but lacks a scope this call needs: `CONN_INSUFFICIENT_SCOPES` (11007, gRPC
    /// `PERMISSION_DENIED`).
    InsufficientScopes,
}

impl KeyCheck {
    /// The Clarifai code a rejection answers with; `None` for [`KeyCheck::Valid`].
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::server::KeyCheck;
    /// use clarifai_status::StatusCode;
    ///
    /// assert_eq!(KeyCheck::Invalid.rejection(), Some(StatusCode::ConnKeyInvalid));
    /// assert_eq!(KeyCheck::Valid.rejection(), None);
    /// ```
    pub fn rejection(self) -> Option<StatusCode> {
        match self {
            KeyCheck::Valid => None,
            KeyCheck::Unknown => Some(StatusCode::ConnKeyNotFound),
            KeyCheck::Invalid => Some(StatusCode::ConnKeyInvalid),
            KeyCheck::InsufficientScopes => Some(StatusCode::ConnInsufficientScopes),
        }
    }
}

/// Decides whether an API key may make a call.
///
/// Implemented for closures `Fn(&str, &Request<()>) -> KeyCheck` and for [`StaticKeys`]. A
/// validator comparing secrets itself should compare in constant time (as [`StaticKeys`] does).
///
/// # Examples
///
/// ```
/// use clarifai_status::server::{KeyCheck, KeyValidator};
///
/// let validator = |key: &str, _request: &tonic::Request<()>| {
///     if key == "k1" { KeyCheck::Valid } else { KeyCheck::Unknown }
/// };
/// assert_eq!(validator.check("k1", &tonic::Request::new(())), KeyCheck::Valid);
/// ```
pub trait KeyValidator {
    /// Checks `key` (the token after `Key `) for this request.
    fn check(&self, key: &str, request: &Request<()>) -> KeyCheck;
}

impl<F> KeyValidator for F
where
    F: Fn(&str, &Request<()>) -> KeyCheck,
{
    fn check(&self, key: &str, request: &Request<()>) -> KeyCheck {
        self(key, request)
    }
}

/// A fixed set of valid keys, compared in constant time.
///
/// Every stored key is compared against the presented one with [`subtle`]'s constant-time
/// equality, and the loop does not stop at a match, so timing reveals neither which key matched
/// nor how much of a key was right (only, as with any comparison, whether lengths differ).
///
/// # Examples
///
/// ```
/// use clarifai_status::server::{KeyCheck, KeyValidator, StaticKeys};
///
/// let keys = StaticKeys::new(["secret-1", "secret-2"]);
/// let request = tonic::Request::new(());
/// assert_eq!(keys.check("secret-2", &request), KeyCheck::Valid);
/// assert_eq!(keys.check("secret-3", &request), KeyCheck::Unknown);
/// ```
#[derive(Clone)]
pub struct StaticKeys {
    keys: Arc<[Box<[u8]>]>,
}

impl StaticKeys {
    /// A validator accepting exactly these keys.
    pub fn new<I, K>(keys: I) -> StaticKeys
    where
        I: IntoIterator<Item = K>,
        K: AsRef<str>,
    {
        StaticKeys {
            keys: keys
                .into_iter()
                .map(|k| k.as_ref().as_bytes().into())
                .collect(),
        }
    }
}

impl fmt::Debug for StaticKeys {
    /// Shows how many keys there are, never the keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticKeys")
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl KeyValidator for StaticKeys {
    fn check(&self, key: &str, _request: &Request<()>) -> KeyCheck {
        let presented = key.as_bytes();
        let mut found = subtle::Choice::from(0);
        for stored in self.keys.iter() {
            found |= stored.as_ref().ct_eq(presented);
        }
        if bool::from(found) {
            KeyCheck::Valid
        } else {
            KeyCheck::Unknown
        }
    }
}

/// An interceptor authenticating calls by API key in Clarifai's convention,
/// `authorization: Key <key>`.
///
/// | request | Clarifai code | gRPC code |
/// |---|---|---|
/// | no `authorization` metadata | `CONN_KEY_NOT_FOUND` (11009) | `UNAUTHENTICATED` |
/// | not `Key <token>` (other scheme, empty token, not visible ASCII) | `CONN_INVALID_REQUEST` (11102) | `INVALID_ARGUMENT` |
/// | validator says [`KeyCheck::Unknown`] | `CONN_KEY_NOT_FOUND` (11009) | `UNAUTHENTICATED` |
/// | validator says [`KeyCheck::Invalid`] | `CONN_KEY_INVALID` (11008) | `UNAUTHENTICATED` |
/// | validator says [`KeyCheck::InsufficientScopes`] | `CONN_INSUFFICIENT_SCOPES` (11007) | `PERMISSION_DENIED` |
///
/// A missing key is "API key not found" as Clarifai describes 11009; a malformed header is
/// "something wrong with a header", 11102's description, and not an authentication failure: the
/// client sent a broken request, not a wrong secret. The scheme `Key` is matched
/// case-insensitively, as HTTP auth schemes are. Rejections carry the table's description, never
/// the presented key.
///
/// # Examples
///
/// ```
/// use clarifai_status::server::{ApiKeyAuth, StaticKeys};
/// use tonic::service::Interceptor;
///
/// let mut auth = ApiKeyAuth::new(StaticKeys::new(["s3cret"]));
///
/// let mut request = tonic::Request::new(());
/// request.metadata_mut().insert("authorization", "Key s3cret".parse().unwrap());
/// assert!(auth.call(request).is_ok());
///
/// let rejected = auth.call(tonic::Request::new(())).unwrap_err();
/// assert_eq!(rejected.code(), tonic::Code::Unauthenticated);
/// assert_eq!(rejected.metadata().get("clarifai-status-code").unwrap(), "11009");
/// ```
#[derive(Clone)]
pub struct ApiKeyAuth<V> {
    validator: V,
}

impl<V> fmt::Debug for ApiKeyAuth<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyAuth").finish_non_exhaustive()
    }
}

impl<V: KeyValidator> ApiKeyAuth<V> {
    /// Authenticates with this validator.
    pub fn new(validator: V) -> ApiKeyAuth<V> {
        ApiKeyAuth { validator }
    }

    /// Checks a request's metadata; `Err` holds the Clarifai code to reject with.
    ///
    /// # Errors
    ///
    /// The code for the failing case, per the table on [`ApiKeyAuth`].
    pub fn authenticate(&self, request: &Request<()>) -> Result<(), StatusCode> {
        let Some(value) = request.metadata().get("authorization") else {
            return Err(StatusCode::ConnKeyNotFound);
        };
        let key = value
            .to_str()
            .ok()
            .and_then(parse_key)
            .ok_or(StatusCode::ConnInvalidRequest)?;
        match self.validator.check(key, request).rejection() {
            None => Ok(()),
            Some(code) => Err(code),
        }
    }
}

/// The token of `Key <token>`: scheme case-insensitive, one or more spaces, a non-empty token of
/// visible ASCII.
fn parse_key(value: &str) -> Option<&str> {
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("key") {
        return None;
    }
    let token = rest.trim_start_matches(' ').trim_end();
    let visible = |b: u8| b.is_ascii_graphic();
    (!token.is_empty() && token.bytes().all(visible)).then_some(token)
}

impl<V: KeyValidator> Interceptor for ApiKeyAuth<V> {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, tonic::Status> {
        match self.authenticate(&request) {
            Ok(()) => Ok(request),
            Err(code) => Err(code.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_key_accepts_only_key_scheme_with_a_token() {
        assert_eq!(parse_key("Key abc"), Some("abc"));
        assert_eq!(parse_key("key   abc "), Some("abc"));
        assert_eq!(parse_key("KEY a.b-c_d"), Some("a.b-c_d"));
        for bad in [
            "Bearer abc",
            "Key",
            "Key ",
            "Keyabc",
            "Key a b",
            "",
            " Key abc",
        ] {
            assert_eq!(parse_key(bad), None, "{bad:?}");
        }
    }
}
