//! The status table: every fact about every code, generated from the proto (by `codegen/`; the
//! output ships in `src/generated/`).
//!
//! The generated table is one row of facts per code, in number order. A [`StatusCode`] finds its
//! row by an exhaustive `match` (its position), a number from the wire by binary search over the
//! rows. A name goes through prost's own `StatusCode::from_str_name`, then a `match` over the
//! few aliases.
//!
//! # Examples
//!
//! ```
//! use clarifai_status::{Outcome, StatusCode};
//!
//! let code = StatusCode::from_name("MODEL_BUSY_PLEASE_RETRY").unwrap();
//! assert_eq!(code.number(), 21354);
//! assert_eq!(code.outcome(), Outcome::Failure);
//! assert!(code.is_retryable());
//! assert_eq!(code.grpc_code(), tonic::Code::Unavailable);
//! assert_eq!(code.http_status(), http::StatusCode::SERVICE_UNAVAILABLE);
//! ```
//!
//! # Non-exhaustive
//!
//! Clarifai adds codes regularly, so [`StatusCode`] and [`Outcome`] are `#[non_exhaustive]`: a
//! dependent's `match` on either has a wildcard arm, and a new code or outcome is not a breaking
//! change.
//!
//! ```
//! use clarifai_status::StatusCode;
//!
//! fn advice(code: StatusCode) -> &'static str {
//!     match code {
//!         StatusCode::ConnKeyInvalid => "check the key",
//!         _ if code.is_retryable() => "try again",
//!         _ => "give up",
//!     }
//! }
//! assert_eq!(advice(StatusCode::ConnThrottled), "try again");
//! ```
//!
//! [`Outcome`]'s own docs show that a `match` naming all its variants does not compile.
//!
//! # How codes map
//!
//! Each code declares, in the proto beside its number, an **outcome** (success, in_progress or
//! failure), whether it is **retryable**, its **gRPC code** and its **HTTP status**:
//!
//! - *success* (the call did what was asked) is gRPC OK and HTTP 2xx (202 for `ACCEPTED`, 207 for
//!   `MIXED_STATUS`);
//! - *in_progress* (a long-running resource is pending, queued, training, running) is gRPC OK and
//!   HTTP 2xx: pollers wait on it;
//! - *failure* is never gRPC OK nor HTTP 2xx. Its gRPC code follows its meaning (credentials:
//!   `UNAUTHENTICATED`; scopes: `PERMISSION_DENIED`; missing: `NOT_FOUND`; throttles:
//!   `RESOURCE_EXHAUSTED`; busy servers: `UNAVAILABLE`; ...), and its HTTP status the canonical
//!   gRPC-to-HTTP table, except where Clarifai's observed behaviour or HTTP's own meaning is more
//!   precise (307 for `MOVED`, 413 for too large, ...), each exception commented in the proto;
//! - *retryable* means the same request may succeed later without any change, within seconds to
//!   minutes (throttles, busy or loading models, `RUNNER_NEEDS_RETRY`, deadlocks, queue errors); a
//!   code that says "not now" (`MODEL_DEPLOYING`, `MODEL_LOADING`) is a retryable failure;
//! - `ZERO` and numbers not in the table are failures: gRPC `UNKNOWN`, HTTP 500, not retryable,
//!   and the number is kept.
//!
//! The generator (`codegen/` in the repository, its README has the release routine) refuses a
//! table that breaks these rules, naming the code.
//!
//! # The table
//!
//! Generated from `proto/clarifai/api/status/status_code.proto`; the proto's comments say why
//! wherever a code's HTTP status departs from the canonical gRPC-to-HTTP table. Codes not listed
//! here (and `ZERO`) are failures, gRPC `UNKNOWN`, HTTP 500, not retryable.
//!
#![doc = include_str!("../generated/status_table.md")]

use std::fmt;

use crate::{Outcome, StatusCode};

/// The name of a number the table does not know ([`Code::UNKNOWN_NAME`](crate::Code::UNKNOWN_NAME)).
pub(crate) const UNKNOWN_NAME: &str = "UNKNOWN_CODE";
/// The description of a number the table does not know
/// ([`Code::UNKNOWN_DESCRIPTION`](crate::Code::UNKNOWN_DESCRIPTION)).
pub(crate) const UNKNOWN_DESCRIPTION: &str = "Unknown status code";

// The generated table: `ROWS`, `StatusCode::position`, `alias`, `aliases`, `removed_in`,
// `CATEGORIES`, `GRPC_NAME`, `GRPC_HTTP` (codegen/ writes it from the proto).
include!("../generated/status_table.rs");

/// One code's facts, as declared in the proto.
#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) code: StatusCode,
    /// The printed name: prost's name of the code (the first declared for its number).
    pub(crate) name: &'static str,
    pub(crate) description: &'static str,
    pub(crate) http: http::StatusCode,
    pub(crate) grpc: tonic::Code,
    pub(crate) outcome: Outcome,
    pub(crate) retryable: bool,
    pub(crate) retryable_on_every_method: bool,
    /// Every name of the code is deprecated, or Clarifai removed it.
    pub(crate) deprecated: bool,
    /// The printed name is deprecated, or Clarifai removed the code.
    pub(crate) name_deprecated: bool,
    /// An index into `CATEGORIES`; [`Row::UNKNOWN`]'s is past its end.
    pub(crate) category: u8,
}

impl Row {
    /// What a number the table does not know reads: printed as `UNKNOWN_CODE`, a non-retryable
    /// failure, gRPC `UNKNOWN`, HTTP 500, category `Unknown`. Its `code` is never read.
    pub(crate) const UNKNOWN: Row = Row {
        code: StatusCode::Zero,
        name: UNKNOWN_NAME,
        description: UNKNOWN_DESCRIPTION,
        http: http::StatusCode::INTERNAL_SERVER_ERROR,
        grpc: tonic::Code::Unknown,
        outcome: Outcome::Failure,
        retryable: false,
        retryable_on_every_method: false,
        deprecated: false,
        name_deprecated: false,
        category: u8::MAX,
    };

    /// The category's name; `Unknown` for [`Row::UNKNOWN`].
    #[inline]
    pub(crate) fn category(&self) -> &'static str {
        CATEGORIES
            .get(usize::from(self.category))
            .copied()
            .unwrap_or("Unknown")
    }
}

/// The position in [`ROWS`] of a number's code, by binary search over [`NUMBERS`];
/// `None` for a number the table does not know.
#[inline]
pub(crate) fn position_of_number(number: i32) -> Option<usize> {
    NUMBERS.binary_search(&number).ok()
}

/// The row of any number: its code's, or [`Row::UNKNOWN`].
#[inline]
pub(crate) fn row_of_number(number: i32) -> &'static Row {
    match position_of_number(number) {
        Some(at) => &ROWS[at],
        None => &Row::UNKNOWN,
    }
}

impl StatusCode {
    /// The code's row.
    #[inline]
    pub(crate) fn row(self) -> &'static Row {
        &ROWS[self.position()]
    }

    /// The code's number, as sent on the wire.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(clarifai_status::StatusCode::ConnKeyInvalid.number(), 11008);
    /// ```
    #[inline]
    pub const fn number(self) -> i32 {
        self as i32
    }

    /// The code with this number, or `None` if the table has no such number.
    ///
    /// prost's `TryFrom<i32>`, as an `Option`; use [`Code`](crate::Code) to keep a number the
    /// table does not know.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::StatusCode;
    ///
    /// assert_eq!(StatusCode::from_number(21200), Some(StatusCode::ModelDoesNotExist));
    /// assert_eq!(StatusCode::from_number(12345), None);
    /// ```
    #[inline]
    pub fn from_number(number: i32) -> Option<StatusCode> {
        StatusCode::try_from(number).ok()
    }

    /// The code with this name, printed name or alias, or `None`: the exact lookup, case-sensitive
    /// and without spaces, as the table spells it. Text from people or peers goes through
    /// `parse` instead ([`FromStr`](std::str::FromStr)), which follows the crate's
    /// [spelling rules](crate::Code#codes-in-text) (surrounding spaces ignored, numbers too).
    ///
    /// Both names of an aliased number parse: `INPUT_DOWNLOAD_SUCCESS` and `INPUT_SUCCESS` are 30000;
    /// `TASK_ADD_ANNOTATIONS_FAILURE` and `TASK_FAILED` are 54005.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::StatusCode;
    ///
    /// assert_eq!(StatusCode::from_name("TASK_FAILED"), Some(StatusCode::TaskAddAnnotationsFailure));
    /// assert_eq!(StatusCode::from_name("conn_key_invalid"), None);
    /// assert_eq!(StatusCode::from_name(" TASK_FAILED"), None);
    /// assert_eq!(" TASK_FAILED".parse(), Ok(StatusCode::TaskAddAnnotationsFailure));
    /// ```
    #[inline]
    pub fn from_name(name: &str) -> Option<StatusCode> {
        // Printed names are prost's (the generator checks it); aliases are the table's own.
        StatusCode::from_str_name(name).or_else(|| alias(name).map(|(code, _)| code))
    }

    /// Whether Clarifai's official enum marks this name deprecated, or no longer has it (a name
    /// of a code Clarifai removed, or a former name of a renamed code); `None` for an unknown name.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::StatusCode;
    ///
    /// assert_eq!(StatusCode::name_is_deprecated("INPUT_DOWNLOAD_SUCCESS"), Some(true));
    /// assert_eq!(StatusCode::name_is_deprecated("INPUT_SUCCESS"), Some(false));
    /// assert_eq!(StatusCode::name_is_deprecated("NO_SUCH_NAME"), None);
    /// // Clarifai removed 52000 in clarifai-grpc 12.3.0, and renamed 71005 in 12.0.4.
    /// assert_eq!(StatusCode::name_is_deprecated("COLLECTOR_MISSING"), Some(true));
    /// assert_eq!(StatusCode::name_is_deprecated("TWILIO_RESOURCE_NOT_FOUND"), Some(true));
    /// ```
    pub fn name_is_deprecated(name: &str) -> Option<bool> {
        match StatusCode::from_str_name(name) {
            Some(code) => Some(code.row().name_deprecated),
            None => alias(name).map(|(_, deprecated)| deprecated),
        }
    }

    /// The name this crate prints: the status table's name where it has one.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::StatusCode;
    ///
    /// assert_eq!(StatusCode::ConnKeyInvalid.name(), "CONN_KEY_INVALID");
    /// assert_eq!(StatusCode::TaskAddAnnotationsFailure.name(), "TASK_ADD_ANNOTATIONS_FAILURE");
    /// ```
    #[inline]
    pub fn name(self) -> &'static str {
        self.row().name
    }

    /// The other names of this number (empty for most codes).
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::StatusCode;
    ///
    /// assert_eq!(StatusCode::TaskAddAnnotationsFailure.aliases(), ["TASK_FAILED"]);
    /// assert!(StatusCode::Success.aliases().is_empty());
    /// ```
    #[inline]
    pub fn aliases(self) -> &'static [&'static str] {
        aliases(self)
    }

    /// The status table's description, verbatim; empty where the table has none.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::StatusCode;
    ///
    /// assert_eq!(StatusCode::ConnKeyNotFound.description(), "API key not found");
    /// ```
    #[inline]
    pub fn description(self) -> &'static str {
        self.row().description
    }

    /// The status table's section this code belongs to (`Generic`, `Connection`, `Model`, ...).
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::StatusCode;
    ///
    /// assert_eq!(StatusCode::ConnThrottled.category(), "Connection");
    /// ```
    #[inline]
    pub fn category(self) -> &'static str {
        self.row().category()
    }

    /// Whether the code is deprecated: Clarifai's official enum marks every name of it deprecated,
    /// or Clarifai removed it ([`StatusCode::removed_in`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::StatusCode;
    ///
    /// #[allow(deprecated)]
    /// let token_invalid = StatusCode::ConnTokenInvalid;
    /// assert!(token_invalid.is_deprecated());
    /// // 30000's table name is deprecated, but its official name INPUT_SUCCESS is not.
    /// assert!(!StatusCode::from_number(30000).unwrap().is_deprecated());
    /// ```
    #[inline]
    pub fn is_deprecated(self) -> bool {
        self.row().deprecated
    }

    /// The clarifai-grpc release whose enum first lacks this code, for a code Clarifai removed;
    /// `None` while Clarifai has it. The table keeps removed codes with their facts, so a service
    /// still reads them from older clients and deployments.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::StatusCode;
    ///
    /// let collector_missing = StatusCode::from_number(52000).unwrap();
    /// assert_eq!(collector_missing.removed_in(), Some("12.3.0"));
    /// assert!(collector_missing.is_deprecated());
    /// assert_eq!(StatusCode::ConnKeyInvalid.removed_in(), None);
    /// ```
    #[inline]
    pub fn removed_in(self) -> Option<&'static str> {
        removed_in(self)
    }

    /// What the code says about the request: success, in progress or failure.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::{Outcome, StatusCode};
    ///
    /// assert_eq!(StatusCode::JobRunning.outcome(), Outcome::InProgress);
    /// ```
    #[inline]
    pub fn outcome(self) -> Outcome {
        self.row().outcome
    }

    /// Whether the code says the request succeeded ([`Outcome::Success`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::StatusCode;
    ///
    /// assert!(StatusCode::Success.is_success());
    /// assert!(!StatusCode::JobRunning.is_success());
    /// ```
    #[inline]
    pub fn is_success(self) -> bool {
        self.outcome() == Outcome::Success
    }

    /// Whether the code says the request failed ([`Outcome::Failure`]); `ZERO` included.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::StatusCode;
    ///
    /// assert!(StatusCode::ConnKeyInvalid.is_failure());
    /// assert!(StatusCode::Zero.is_failure());
    /// assert!(!StatusCode::Success.is_failure());
    /// ```
    #[inline]
    pub fn is_failure(self) -> bool {
        self.outcome() == Outcome::Failure
    }

    /// Whether the code says a long-running resource is not done yet ([`Outcome::InProgress`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::StatusCode;
    ///
    /// assert!(StatusCode::JobRunning.is_in_progress());
    /// assert!(!StatusCode::Success.is_in_progress());
    /// ```
    #[inline]
    pub fn is_in_progress(self) -> bool {
        self.outcome() == Outcome::InProgress
    }

    /// Whether the same request may succeed later without any change, within seconds to minutes.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::StatusCode;
    ///
    /// assert!(StatusCode::ConnThrottled.is_retryable());
    /// assert!(!StatusCode::ConnKeyInvalid.is_retryable());
    /// ```
    #[inline]
    pub fn is_retryable(self) -> bool {
        self.row().retryable
    }

    /// Whether the code says the server refused the request before it took effect (a throttle,
    /// a model busy, loading or deploying, a full queue), so retrying it is safe on every method,
    /// idempotent or not. Each such code is also [retryable](StatusCode::is_retryable).
    ///
    /// Declared in the proto (`retryable_on_every_method`); the [table](crate::table#the-table)
    /// lists them ("yes, on every method"). The `retry` module retries these on every method, and
    /// other retryable codes only on the methods a policy lists as idempotent.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::StatusCode;
    ///
    /// assert!(StatusCode::ModelBusyPleaseRetry.is_retryable_on_every_method());
    /// // Retryable, but the request may have taken effect.
    /// assert!(StatusCode::RpcServerUnavailable.is_retryable());
    /// assert!(!StatusCode::RpcServerUnavailable.is_retryable_on_every_method());
    /// ```
    #[inline]
    pub fn is_retryable_on_every_method(self) -> bool {
        self.row().retryable_on_every_method
    }

    /// The gRPC code a failure with this code is reported as; `Ok` for success and in-progress.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::StatusCode;
    ///
    /// assert_eq!(StatusCode::ConnKeyInvalid.grpc_code(), tonic::Code::Unauthenticated);
    /// ```
    #[inline]
    pub fn grpc_code(self) -> tonic::Code {
        self.row().grpc
    }

    /// The HTTP status a response with this code carries.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::StatusCode;
    ///
    /// assert_eq!(StatusCode::MixedStatus.http_status(), http::StatusCode::MULTI_STATUS);
    /// assert_eq!(StatusCode::ConnThrottled.http_status(), http::StatusCode::TOO_MANY_REQUESTS);
    /// ```
    #[inline]
    pub fn http_status(self) -> http::StatusCode {
        self.row().http
    }

    /// Every code of the table, in number order (one item per number; aliases are not repeated).
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::StatusCode;
    ///
    /// let all: Vec<StatusCode> = StatusCode::all().collect();
    /// assert_eq!(all.first(), Some(&StatusCode::Zero));
    /// assert!(all.windows(2).all(|w| w[0].number() < w[1].number()));
    /// ```
    pub fn all() -> impl ExactSizeIterator<Item = StatusCode> + DoubleEndedIterator + Clone {
        ROWS.iter().map(|row| row.code)
    }
}

impl fmt::Display for StatusCode {
    /// Writes the printed name, e.g. `CONN_KEY_INVALID`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_at_its_position_and_found_by_its_number() {
        assert!(ROWS
            .windows(2)
            .all(|w| (w[0].code as i32) < (w[1].code as i32)));
        for (at, row) in ROWS.iter().enumerate() {
            assert_eq!(row.code.position(), at);
            assert_eq!(position_of_number(row.code as i32), Some(at));
            assert_eq!(NUMBERS[at], row.code as i32);
            assert_eq!(row.name, row.code.as_str_name());
        }
        for n in [-1, 1, 3, 10_006, 99_010, i32::MIN, i32::MAX] {
            assert_eq!(position_of_number(n), None, "{n}");
            assert_eq!(row_of_number(n).name, UNKNOWN_NAME);
        }
    }
}
