//! [`Code`]: any status number seen on the wire, known or not.

use std::fmt;
use std::str::FromStr;

use crate::table::{self, Row};
use crate::{Outcome, ParseCodeError, StatusCode, UnknownCode};

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
///
/// # Codes in text
///
/// Wherever this crate reads a code written as text, it follows one set of rules: `Code`'s and
/// [`StatusCode`]'s `FromStr`, serde's strings (feature `serde`), the `clarifai-status-code`
/// header ([`grpc::read_code`](crate::grpc::read_code), [`rest::read_code_or_fallback`],
/// [`tonic::Status`] metadata) and a string `status.code` in REST JSON
/// ([`rest::parse_json`]).
///
/// - **Surrounding spaces**: ASCII whitespace (space, tab, CR, LF, form feed) before and after is
///   ignored; whitespace inside is not (`"11 008"` is rejected).
/// - **A number**: decimal ASCII digits, with an optional leading `+` or `-`, leading zeros
///   allowed, within `i32` (`"11008"`, `"+11008"`, `"-1"`, `"011008"`). No hex, exponent,
///   fraction or digit separators. Text that starts with a digit or a sign is read as a number
///   only.
/// - **A name**: a printed name or an alias in the table, exactly as the table spells it: upper
///   case, as Clarifai's protos, its clients and proto3 JSON write it (`"CONN_KEY_INVALID"`,
///   `"TASK_FAILED"`; not `"conn_key_invalid"`). Other text is rejected, never read as a number.
///
/// So text reads back what `Display` writes (a known code's name, an unknown code's number), and
/// what Clarifai's JSON and headers carry. A number is kept as is by [`Code`], known or not;
/// [`StatusCode`] accepts only numbers in the table. [`StatusCode::from_name`] is the exact
/// lookup underneath: one name, no spaces. [`Outcome`]'s `FromStr` follows the same rules
/// (`success`, `in_progress`, `failure`, as `Display` writes them). Only what people type by hand
/// is looser: the `clarifai-status` command and the test server's scenarios (`clarifai-status-testing`)
/// upper-case a name first, then apply these rules.
///
/// ```
/// use clarifai_status::{Code, StatusCode};
///
/// for text in ["11008", " +11008\t", "CONN_KEY_INVALID", "CONN_KEY_INVALID\r\n", "011008"] {
///     assert_eq!(text.parse::<StatusCode>(), Ok(StatusCode::ConnKeyInvalid), "{text:?}");
/// }
/// assert_eq!("77777".parse::<Code>().unwrap().number(), 77777);
/// for text in ["", "11 008", "0x2B00", "1e4", "11008.0", "conn_key_invalid", "2147483648"] {
///     assert!(text.parse::<Code>().is_err(), "{text:?}");
/// }
/// assert_eq!(StatusCode::from_name(" CONN_KEY_INVALID"), None); // the exact lookup
/// ```
// The REST readers exist with `json`; without it their links go to the features table.
#[cfg_attr(
    feature = "json",
    doc = "[`rest::read_code_or_fallback`]: crate::rest::read_code_or_fallback"
)]
#[cfg_attr(
    feature = "json",
    doc = "[`rest::parse_json`]: crate::rest::parse_json"
)]
#[cfg_attr(
    not(feature = "json"),
    doc = "[`rest::read_code_or_fallback`]: crate#features"
)]
#[cfg_attr(not(feature = "json"), doc = "[`rest::parse_json`]: crate#features")]
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Code(i32);

impl Code {
    /// The name printed for a number the table does not know (also the `ErrorInfo.reason`).
    pub const UNKNOWN_NAME: &'static str = table::UNKNOWN_NAME;

    /// The description used for a number the table does not know.
    pub const UNKNOWN_DESCRIPTION: &'static str = table::UNKNOWN_DESCRIPTION;

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

    /// The code's row; the unknown-number row (the documented fallbacks) for an unknown number.
    #[inline]
    fn row(self) -> &'static Row {
        table::row_of_number(self.0)
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
        StatusCode::from_number(self.0)
    }

    /// Whether the code says the request succeeded ([`Outcome::Success`]); `false` for an unknown
    /// number.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::Code;
    ///
    /// assert!(Code::new(10000).is_success());
    /// assert!(!Code::new(64001).is_success());
    /// assert!(!Code::new(3).is_success());
    /// ```
    #[inline]
    pub fn is_success(self) -> bool {
        self.outcome() == Outcome::Success
    }

    /// Whether the code says the request failed ([`Outcome::Failure`]); `true` for an unknown
    /// number.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::Code;
    ///
    /// assert!(Code::new(11008).is_failure());
    /// assert!(Code::new(3).is_failure());
    /// assert!(!Code::new(10000).is_failure());
    /// ```
    #[inline]
    pub fn is_failure(self) -> bool {
        self.outcome() == Outcome::Failure
    }

    /// Whether the code says a long-running resource is not done yet ([`Outcome::InProgress`]);
    /// `false` for an unknown number.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::Code;
    ///
    /// assert!(Code::new(64001).is_in_progress());
    /// assert!(!Code::new(10000).is_in_progress());
    /// ```
    #[inline]
    pub fn is_in_progress(self) -> bool {
        self.outcome() == Outcome::InProgress
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
        table::position_of_number(self.0).is_some()
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
        self.row().name
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
        self.row().description
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
        self.row().outcome
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
        self.row().retryable
    }

    /// Whether the code says the server refused the request before it took effect, so retrying
    /// it is safe on every method ([`StatusCode::is_retryable_on_every_method`]); `false` for an
    /// unknown number.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::Code;
    ///
    /// assert!(Code::new(11005).is_retryable_on_every_method()); // CONN_THROTTLED
    /// assert!(!Code::new(40031).is_retryable_on_every_method()); // RPC_SERVER_UNAVAILABLE
    /// assert!(!Code::new(3).is_retryable_on_every_method());
    /// ```
    #[inline]
    pub fn is_retryable_on_every_method(self) -> bool {
        self.row().retryable_on_every_method
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
        self.row().grpc
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
        self.row().http
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
        self.row().category()
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
        self.known().map_or(&[], StatusCode::aliases)
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

    /// The clarifai-grpc release whose enum first lacks this code, for a code Clarifai removed;
    /// `None` while Clarifai has it, and for an unknown number.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(clarifai_status::Code::new(52000).removed_in(), Some("12.3.0"));
    /// assert_eq!(clarifai_status::Code::new(11008).removed_in(), None);
    /// ```
    #[inline]
    pub fn removed_in(self) -> Option<&'static str> {
        self.known().and_then(StatusCode::removed_in)
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
        match self.known() {
            Some(code) => f.write_str(code.name()),
            None => write!(f, "{}", self.0),
        }
    }
}

impl FromStr for Code {
    type Err = ParseCodeError;

    /// Parses a known name (printed or alias) or any decimal `i32`, known or not, by the
    /// [spelling rules](Code#codes-in-text).
    ///
    /// # Errors
    ///
    /// [`ParseCodeError`] for an unknown name, a number outside `i32`, or anything else.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::Code;
    ///
    /// assert_eq!(" TASK_FAILED ".parse::<Code>().unwrap().number(), 54005);
    /// assert_eq!("-7".parse::<Code>().unwrap().number(), -7);
    /// assert!("NO_SUCH_CODE".parse::<Code>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        read_text(s).ok_or_else(|| ParseCodeError::new(s))
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
    type Error = UnknownCode;

    /// The table's code for the number.
    ///
    /// # Errors
    ///
    /// [`UnknownCode`] carrying the number, when the table does not know it.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::{Code, StatusCode};
    ///
    /// assert_eq!(StatusCode::try_from(Code::new(11008)), Ok(StatusCode::ConnKeyInvalid));
    /// assert_eq!(StatusCode::try_from(Code::new(3)).unwrap_err().number(), 3);
    /// ```
    #[inline]
    fn try_from(code: Code) -> Result<StatusCode, Self::Error> {
        code.known().ok_or(UnknownCode::new(code.0))
    }
}

/// Reads a code written as text, by the [spelling rules](Code#codes-in-text): the one reader
/// behind every text path (`FromStr`, serde, headers, REST JSON). `None` for anything else.
pub(crate) fn read_text(text: &str) -> Option<Code> {
    let text = text.trim_ascii();
    match text.as_bytes().first()? {
        b'0'..=b'9' | b'+' | b'-' => text.parse::<i32>().ok().map(Code),
        _ => StatusCode::from_name(text).map(Code::from),
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

impl FromStr for StatusCode {
    type Err = ParseCodeError;

    /// Parses a name (printed or alias) or a decimal number the table knows, by the crate's
    /// [spelling rules](crate::Code#codes-in-text).
    ///
    /// # Errors
    ///
    /// [`ParseCodeError`] for anything else, including numbers outside the table: parse into
    /// [`Code`](crate::Code) to keep those.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::StatusCode;
    ///
    /// assert_eq!(" CONN_KEY_INVALID\t".parse(), Ok(StatusCode::ConnKeyInvalid));
    /// assert!("conn_key_invalid".parse::<StatusCode>().is_err());
    /// assert_eq!("+11008".parse(), Ok(StatusCode::ConnKeyInvalid));
    /// assert!("12345".parse::<StatusCode>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        read_text(s)
            .and_then(Code::known)
            .ok_or_else(|| ParseCodeError::new(s))
    }
}
