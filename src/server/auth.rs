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

impl From<bool> for KeyCheck {
    /// `true` is [`KeyCheck::Valid`], `false` is [`KeyCheck::Unknown`] (`CONN_KEY_NOT_FOUND`,
    /// as [`StaticKeys`] answers an unknown key): a validator closure may return a plain `bool`.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::server::KeyCheck;
    ///
    /// assert_eq!(KeyCheck::from(true), KeyCheck::Valid);
    /// assert_eq!(KeyCheck::from(false), KeyCheck::Unknown);
    /// ```
    fn from(valid: bool) -> KeyCheck {
        if valid {
            KeyCheck::Valid
        } else {
            KeyCheck::Unknown
        }
    }
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
/// Implemented by [`StaticKeys`], and by the closure [`ApiKeyAuth::from_fn`] wraps
/// ([`ValidatorFn`]); implement it for a type of your own (a key store, a cache) and hand it to
/// [`ApiKeyAuth::new`]. A validator comparing secrets itself should compare in constant time (as
/// [`StaticKeys`] does).
///
/// # Examples
///
/// ```
/// use clarifai_status::server::{ApiKeyAuth, KeyCheck, KeyValidator};
///
/// /// Keys of one prefix are valid; one is revoked.
/// struct Prefix(&'static str);
///
/// impl KeyValidator for Prefix {
///     fn check(&self, key: &str, _request: &tonic::Request<()>) -> KeyCheck {
///         match key {
///             "k-revoked" => KeyCheck::Invalid,
///             key if key.starts_with(self.0) => KeyCheck::Valid,
///             _ => KeyCheck::Unknown,
///         }
///     }
/// }
///
/// let request = tonic::Request::new(());
/// assert_eq!(Prefix("k-").check("k-1", &request), KeyCheck::Valid);
/// assert_eq!(Prefix("k-").check("k-revoked", &request), KeyCheck::Invalid);
/// let auth = ApiKeyAuth::new(Prefix("k-"));
/// # drop(auth);
/// ```
pub trait KeyValidator {
    /// Checks `key` (the token after `Key `) for this request.
    fn check(&self, key: &str, request: &Request<()>) -> KeyCheck;
}

/// The validator of [`ApiKeyAuth::from_fn`]: a closure taking the key and the request and
/// returning anything that converts into a [`KeyCheck`] (a `KeyCheck`, or a `bool`: `false` is
/// [`KeyCheck::Unknown`]).
///
/// Made only by [`ApiKeyAuth::from_fn`], whose bound gives the compiler the closure's
/// signature, so the closure needs no type annotations. The type is public so that
/// `ApiKeyAuth<ValidatorFn<F>>` can be named.
///
/// # Examples
///
/// ```
/// use clarifai_status::server::{ApiKeyAuth, ValidatorFn};
///
/// fn auth() -> ApiKeyAuth<ValidatorFn<impl Fn(&str, &tonic::Request<()>) -> bool + Clone>> {
///     ApiKeyAuth::from_fn(|key, _| key == "s3cret")
/// }
/// # drop(auth());
/// ```
#[derive(Clone, Copy)]
pub struct ValidatorFn<F> {
    f: F,
}

impl<F> fmt::Debug for ValidatorFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidatorFn").finish_non_exhaustive()
    }
}

impl<F, R> KeyValidator for ValidatorFn<F>
where
    F: Fn(&str, &Request<()>) -> R,
    R: Into<KeyCheck>,
{
    fn check(&self, key: &str, request: &Request<()>) -> KeyCheck {
        (self.f)(key, request).into()
    }
}

/// A fixed set of valid keys, compared in constant time.
///
/// Every stored key is compared against the presented one with [`subtle`]'s constant-time
/// equality, and the loop does not stop at a match, so timing reveals neither which key matched
/// nor how much of a key was right, nor its length: the time of a check depends on the presented
/// key's length and the number of stored keys only.
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
            found |= eq_hiding_length(stored, presented);
        }
        if bool::from(found) {
            KeyCheck::Valid
        } else {
            KeyCheck::Unknown
        }
    }
}

/// Whether `stored` equals `presented`, in time that depends on `presented`'s length alone: every
/// presented byte is compared with the stored byte at the same place (modulo the stored length,
/// so no branch depends on it), and the lengths' equality is folded in without a branch. A
/// slice `ct_eq` returns at once on a length mismatch, which tells a caller the key's length.
fn eq_hiding_length(stored: &[u8], presented: &[u8]) -> subtle::Choice {
    let same_length = (stored.len() as u64).ct_eq(&(presented.len() as u64));
    if stored.is_empty() {
        // An empty stored key equals only an empty presented one.
        return same_length;
    }
    let mut equal = subtle::Choice::from(1);
    for (i, byte) in presented.iter().enumerate() {
        equal &= byte.ct_eq(&stored[i % stored.len()]);
    }
    equal & same_length
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
/// A closure validates with [`ApiKeyAuth::from_fn`]; a type implementing [`KeyValidator`] (such
/// as [`StaticKeys`]) with [`ApiKeyAuth::new`].
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

impl<F> ApiKeyAuth<ValidatorFn<F>> {
    /// Authenticates with a closure taking the key and the request and returning a [`KeyCheck`]
    /// or a `bool` (`false` answers `CONN_KEY_NOT_FOUND`, as an unknown key).
    ///
    /// This is the one way to validate with a closure; the closure needs no type annotations,
    /// as the bound here gives the compiler its signature.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::server::{ApiKeyAuth, KeyCheck};
    /// use tonic::service::Interceptor;
    ///
    /// // A bool: false is CONN_KEY_NOT_FOUND (11009).
    /// let mut auth = ApiKeyAuth::from_fn(|key, _| key == "s3cret");
    ///
    /// // Or a KeyCheck, to tell a revoked key (CONN_KEY_INVALID, 11008) from an unknown one.
    /// let mut by_kind = ApiKeyAuth::from_fn(|key, _request| match key {
    ///     "s3cret" => KeyCheck::Valid,
    ///     "revoked" => KeyCheck::Invalid,
    ///     _ => KeyCheck::Unknown,
    /// });
    ///
    /// let with_key = |key: &str| {
    ///     let mut request = tonic::Request::new(());
    ///     request.metadata_mut().insert("authorization", format!("Key {key}").parse().unwrap());
    ///     request
    /// };
    /// assert!(auth.call(with_key("s3cret")).is_ok());
    /// let rejected = by_kind.call(with_key("revoked")).unwrap_err();
    /// assert_eq!(rejected.code(), tonic::Code::Unauthenticated);
    /// assert_eq!(rejected.metadata().get("clarifai-status-code").unwrap(), "11008");
    /// ```
    pub fn from_fn<R>(f: F) -> ApiKeyAuth<ValidatorFn<F>>
    where
        F: Fn(&str, &Request<()>) -> R,
        R: Into<KeyCheck>,
    {
        ApiKeyAuth {
            validator: ValidatorFn { f },
        }
    }
}

impl<V: KeyValidator> ApiKeyAuth<V> {
    /// Authenticates with this validator (a type implementing [`KeyValidator`]); for a closure,
    /// use [`ApiKeyAuth::from_fn`].
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
    #[test]
    fn eq_hiding_length_is_equality_for_every_pair_of_lengths() {
        let keys: [&[u8]; 7] = [b"", b"a", b"ab", b"abab", b"abc", b"abd", b"ba"];
        for stored in keys {
            for presented in keys {
                let equal = bool::from(super::eq_hiding_length(stored, presented));
                assert_eq!(equal, stored == presented, "{stored:?} {presented:?}");
            }
        }
        // The modulo never makes a repetition of the key equal to it.
        assert!(!bool::from(super::eq_hiding_length(b"ab", b"ababab")));
    }

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
