//! [`Code`]: any status number seen on the wire, known or not.

use std::fmt;
use std::str::FromStr;

use crate::pb::RowIndex;
use crate::table::Row;
use crate::{Outcome, ParseCodeError, StatusCode};

/// Any Clarifai status number, as seen on the wire, known to the table or not.
///
/// Peers may send numbers this crate's table does not know (a newer Clarifai, a typo, a hostile
/// client). `Code` keeps the number exactly as received, so it survives every conversion; only
/// its facts fall back, as documented on each method: an unknown number is a non-retryable
/// failure, gRPC `UNKNOWN`, HTTP 500, printed as `UNKNOWN_CODE`.
///
/// # Examples
///
/// ```
/// use clarifai_status::{Code, Outcome, StatusCode};
///
/// let known = Code::from(StatusCode::ConnKeyInvalid);
/// assert_eq!(known.number(), 11008);
/// assert_eq!(known.name(), "CONN_KEY_INVALID");
///
/// let unknown = Code::new(12345);
/// assert_eq!(unknown.known(), None);
/// assert_eq!(unknown.number(), 12345); // preserved
/// assert_eq!(unknown.name(), "UNKNOWN_CODE");
/// assert_eq!(unknown.outcome(), Outcome::Failure);
/// assert_eq!(unknown.grpc_code(), tonic::Code::Unknown);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Code(i32);

impl Code {
    /// The name printed for a number the table does not know (also the `ErrorInfo.reason`).
    pub const UNKNOWN_NAME: &'static str = "UNKNOWN_CODE";

    /// The description used for a number the table does not know.
    pub const UNKNOWN_DESCRIPTION: &'static str = "Unknown status code";

    /// Wraps any number.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(clarifai_status::Code::new(-7).number(), -7);
    /// ```
    #[inline]
    pub const fn new(number: i32) -> Code {
        Code(number)
    }

    /// The number, exactly as received.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(clarifai_status::Code::new(21200).number(), 21200);
    /// ```
    #[inline]
    pub const fn number(self) -> i32 {
        self.0
    }

    /// The number's row index; the unknown row (the documented fallbacks) for an unknown number.
    #[inline(always)]
    fn row_index(self) -> RowIndex {
        RowIndex::of_number(self.0)
    }

    /// The code's row; the unknown-number row for an unknown number.
    #[inline]
    fn row(self) -> &'static Row {
        self.row_index().row()
    }

    /// The table's code for this number, or `None` if the table does not know it.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::{Code, StatusCode};
    ///
    /// assert_eq!(Code::new(10000).known(), Some(StatusCode::Success));
    /// assert_eq!(Code::new(10001 + 1).known(), Some(StatusCode::SuccessWarningClientDeprecated));
    /// assert_eq!(Code::new(3).known(), None);
    /// ```
    #[inline]
    pub fn known(self) -> Option<StatusCode> {
        self.row().code
    }

    /// Whether the table knows this number.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!clarifai_status::Code::new(3).is_known());
    /// ```
    #[inline]
    pub fn is_known(self) -> bool {
        self.row().code.is_some()
    }

    /// The printed name; [`Code::UNKNOWN_NAME`] for an unknown number.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::Code;
    ///
    /// assert_eq!(Code::new(11005).name(), "CONN_THROTTLED");
    /// assert_eq!(Code::new(3).name(), "UNKNOWN_CODE");
    /// ```
    #[inline]
    pub fn name(self) -> &'static str {
        self.row_index().name()
    }

    /// The table's description; [`Code::UNKNOWN_DESCRIPTION`] for an unknown number. Empty for a
    /// known code the table gives no description.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::Code;
    ///
    /// assert_eq!(Code::new(21200).description(), "Model does not exist");
    /// assert_eq!(Code::new(3).description(), "Unknown status code");
    /// ```
    #[inline]
    pub fn description(self) -> &'static str {
        self.row_index().description()
    }

    /// What the code says about the request; [`Outcome::Failure`] for an unknown number.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::{Code, Outcome};
    ///
    /// assert_eq!(Code::new(64001).outcome(), Outcome::InProgress);
    /// assert_eq!(Code::new(3).outcome(), Outcome::Failure);
    /// ```
    #[inline]
    pub fn outcome(self) -> Outcome {
        self.row_index().outcome()
    }

    /// Whether the same request may succeed later unchanged; `false` for an unknown number.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::Code;
    ///
    /// assert!(Code::new(21354).is_retryable());
    /// assert!(!Code::new(3).is_retryable());
    /// ```
    #[inline]
    pub fn is_retryable(self) -> bool {
        self.row_index().retryable()
    }

    /// The gRPC code; `Unknown` for an unknown number.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::Code;
    ///
    /// assert_eq!(Code::new(21200).grpc_code(), tonic::Code::NotFound);
    /// assert_eq!(Code::new(3).grpc_code(), tonic::Code::Unknown);
    /// ```
    #[inline]
    pub fn grpc_code(self) -> tonic::Code {
        self.row_index().grpc()
    }

    /// The HTTP status; 500 for an unknown number.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::Code;
    ///
    /// assert_eq!(Code::new(11008).http_status(), http::StatusCode::UNAUTHORIZED);
    /// assert_eq!(Code::new(3).http_status(), http::StatusCode::INTERNAL_SERVER_ERROR);
    /// ```
    #[inline]
    pub fn http_status(self) -> http::StatusCode {
        self.row_index().http()
    }

    /// The table's category; `Unknown` for an unknown number.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(clarifai_status::Code::new(3).category(), "Unknown");
    /// ```
    #[inline]
    pub fn category(self) -> &'static str {
        self.row().category
    }

    /// The other names of this number; empty for an unknown number.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(clarifai_status::Code::new(30000).aliases(), ["INPUT_SUCCESS"]);
    /// ```
    #[inline]
    pub fn aliases(self) -> &'static [&'static str] {
        self.row().aliases
    }

    /// Whether the code is deprecated (every name of it); `false` for an unknown number.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(clarifai_status::Code::new(11001).is_deprecated());
    /// ```
    #[inline]
    pub fn is_deprecated(self) -> bool {
        self.row().deprecated
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Code({} {})", self.0, self.name())
    }
}

impl fmt::Display for Code {
    /// Writes the printed name of a known code, and the number of an unknown one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.row().code {
            Some(code) => f.write_str(code.name()),
            None => write!(f, "{}", self.0),
        }
    }
}

impl FromStr for Code {
    type Err = ParseCodeError;

    /// Parses a known name (printed or alias) or any decimal `i32`, known or not.
    ///
    /// # Errors
    ///
    /// [`ParseCodeError`] for an unknown name or a number outside `i32`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(code) = StatusCode::from_name(s) {
            return Ok(code.into());
        }
        s.parse::<i32>()
            .map(Code)
            .map_err(|_| ParseCodeError::new(s))
    }
}

impl From<i32> for Code {
    #[inline]
    fn from(number: i32) -> Code {
        Code(number)
    }
}

impl From<StatusCode> for Code {
    #[inline]
    fn from(code: StatusCode) -> Code {
        Code(code as i32)
    }
}

impl From<Code> for i32 {
    #[inline]
    fn from(code: Code) -> i32 {
        code.0
    }
}

impl TryFrom<Code> for StatusCode {
    type Error = prost::UnknownEnumValue;

    /// The table's code for the number.
    ///
    /// # Errors
    ///
    /// `prost::UnknownEnumValue` carrying the number, as `StatusCode::try_from(i32)` does.
    #[inline]
    fn try_from(code: Code) -> Result<StatusCode, Self::Error> {
        code.known().ok_or(prost::UnknownEnumValue(code.0))
    }
}

impl PartialEq<StatusCode> for Code {
    fn eq(&self, other: &StatusCode) -> bool {
        self.0 == *other as i32
    }
}

impl PartialEq<Code> for StatusCode {
    fn eq(&self, other: &Code) -> bool {
        *self as i32 == other.0
    }
}
