//! What a code says about the request: [`Outcome`].

use std::fmt;
use std::str::FromStr;

use crate::ParseOutcomeError;

/// What a code says about the request that produced it.
///
/// Declared per code in the proto (`outcome`). Only failures map to a gRPC error or a non-2xx HTTP
/// status; success and in-progress codes are gRPC OK and HTTP 2xx.
///
/// # Examples
///
/// ```
/// use clarifai_status::{Outcome, StatusCode};
///
/// assert_eq!(StatusCode::Success.outcome(), Outcome::Success);
/// assert_eq!(StatusCode::ModelTraining.outcome(), Outcome::InProgress);
/// assert_eq!(StatusCode::ConnKeyInvalid.outcome(), Outcome::Failure);
/// assert_eq!(Outcome::InProgress.to_string(), "in_progress");
/// assert_eq!("in_progress".parse(), Ok(Outcome::InProgress));
/// ```
///
/// Non-exhaustive: a `match` on it needs a wildcard arm, so a new outcome is not a breaking
/// change.
///
/// ```compile_fail,E0004
/// fn word(outcome: clarifai_status::Outcome) -> &'static str {
///     use clarifai_status::Outcome;
///     match outcome {
///         Outcome::Success => "yes",
///         Outcome::InProgress => "wait",
///         Outcome::Failure => "no",
///     }
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// The call did what was asked.
    Success,
    /// A long-running resource is in a non-terminal state (pending, queued, training, running):
    /// pollers wait on it.
    InProgress,
    /// Everything else, including `ZERO` and numbers not in the table.
    Failure,
}

impl Outcome {
    /// The lower-case name used in the table's JSON: `success`, `in_progress` or `failure`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(clarifai_status::Outcome::Failure.as_str(), "failure");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::InProgress => "in_progress",
            Outcome::Failure => "failure",
        }
    }
}

impl fmt::Display for Outcome {
    /// Writes [`Outcome::as_str`]: `success`, `in_progress` or `failure`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Outcome {
    type Err = ParseOutcomeError;

    /// Parses `success`, `in_progress` or `failure`, by the crate's
    /// [spelling rules](crate::Code#codes-in-text): the name exactly as `Display` writes it,
    /// surrounding ASCII whitespace ignored.
    ///
    /// # Errors
    ///
    /// [`ParseOutcomeError`] for anything else (`SUCCESS`, `in progress` and `in-progress`
    /// included).
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::Outcome;
    ///
    /// assert_eq!(" in_progress\n".parse(), Ok(Outcome::InProgress));
    /// assert!("IN_PROGRESS".parse::<Outcome>().is_err());
    /// assert!("in progress".parse::<Outcome>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim_ascii() {
            "success" => Ok(Outcome::Success),
            "in_progress" => Ok(Outcome::InProgress),
            "failure" => Ok(Outcome::Failure),
            _ => Err(ParseOutcomeError::new(s)),
        }
    }
}
