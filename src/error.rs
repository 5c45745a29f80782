use std::fmt;

/// The error of parsing a status code from a string that is neither a known name nor a number
/// this conversion accepts (see [the spelling rules](crate::Code#codes-in-text)).
///
/// # Examples
///
/// ```
/// use clarifai_status::StatusCode;
///
/// let err = "NO_SUCH_CODE".parse::<StatusCode>().unwrap_err();
/// assert_eq!(err.input(), "NO_SUCH_CODE");
/// assert_eq!(err.to_string(), "unknown status code `NO_SUCH_CODE`");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseCodeError {
    input: Box<str>,
}

impl ParseCodeError {
    /// Longest input kept in the error, so a hostile peer cannot make errors large.
    const MAX_KEPT: usize = 64;

    pub(crate) fn new(input: &str) -> Self {
        ParseCodeError {
            input: input[..cut(input, Self::MAX_KEPT)].into(),
        }
    }

    /// The rejected input (its first 64 bytes at most).
    ///
    /// # Examples
    ///
    /// ```
    /// let err = "x".repeat(100).parse::<clarifai_status::Code>().unwrap_err();
    /// assert_eq!(err.input().len(), 64);
    /// ```
    pub fn input(&self) -> &str {
        &self.input
    }
}

impl fmt::Display for ParseCodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown status code `{}`", self.input)
    }
}

impl std::error::Error for ParseCodeError {}

/// The error of converting a number the table does not know into a [`StatusCode`](crate::StatusCode).
///
/// Returned by `StatusCode::try_from(Code)`; it carries the rejected number, so nothing is lost:
/// keep the number as a [`Code`](crate::Code) to carry it on.
///
/// # Examples
///
/// ```
/// use clarifai_status::{Code, StatusCode, UnknownCode};
///
/// let err: UnknownCode = StatusCode::try_from(Code::new(12345)).unwrap_err();
/// assert_eq!(err.number(), 12345);
/// assert_eq!(err.to_string(), "unknown status code 12345");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UnknownCode {
    number: i32,
}

impl UnknownCode {
    pub(crate) const fn new(number: i32) -> Self {
        UnknownCode { number }
    }

    /// The rejected number.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status::{Code, StatusCode};
    ///
    /// assert_eq!(StatusCode::try_from(Code::new(-1)).unwrap_err().number(), -1);
    /// ```
    pub const fn number(&self) -> i32 {
        self.number
    }
}

impl fmt::Display for UnknownCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown status code {}", self.number)
    }
}

impl std::error::Error for UnknownCode {}

/// The error of parsing an [`Outcome`](crate::Outcome) from a string that names none.
///
/// # Examples
///
/// ```
/// use clarifai_status::Outcome;
///
/// let err = "done".parse::<Outcome>().unwrap_err();
/// assert_eq!(err.input(), "done");
/// assert_eq!(err.to_string(), "unknown outcome `done`");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseOutcomeError {
    input: Box<str>,
}

impl ParseOutcomeError {
    pub(crate) fn new(input: &str) -> Self {
        ParseOutcomeError {
            input: input[..cut(input, ParseCodeError::MAX_KEPT)].into(),
        }
    }

    /// The rejected input (its first 64 bytes at most).
    ///
    /// # Examples
    ///
    /// ```
    /// let err = "x".repeat(100).parse::<clarifai_status::Outcome>().unwrap_err();
    /// assert_eq!(err.input().len(), 64);
    /// ```
    pub fn input(&self) -> &str {
        &self.input
    }
}

impl fmt::Display for ParseOutcomeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown outcome `{}`", self.input)
    }
}

impl std::error::Error for ParseOutcomeError {}

/// The largest char boundary of `input` at most `max` bytes in.
fn cut(input: &str, max: usize) -> usize {
    let mut end = input.len().min(max);
    while !input.is_char_boundary(end) {
        end -= 1;
    }
    end
}
