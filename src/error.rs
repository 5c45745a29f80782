use std::fmt;

/// The error of parsing a status code from a string that is neither a known name nor a number
/// this conversion accepts.
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
        let mut end = input.len().min(Self::MAX_KEPT);
        while !input.is_char_boundary(end) {
            end -= 1;
        }
        ParseCodeError {
            input: input[..end].into(),
        }
    }

    /// The rejected input (its first 64 bytes at most).
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
