//! The status table: every fact about every code, generated from the proto (by `codegen/`; the
//! output ships in `src/generated/`).
//!
//! Lookups go through generated data rather than `match`es over ~460 sparse numbers: a direct
//! index from every number up to the largest code to its row (one load, no hash), tables of facts
//! indexed by row (one more load per fact), and a perfect hash for names (one displacement, one
//! slot) in a table sized for them, at most 7/8 full: not a minimal one.
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
use std::str::FromStr;

use crate::pb::{self, StatusCode};
use crate::{ParseCodeError, ParseOutcomeError};

pub(crate) mod name_hash;

/// One code's facts, as declared in the proto.
#[derive(Debug)]
pub(crate) struct Row {
    /// `None` only in the row of numbers the table does not know.
    pub(crate) code: Option<StatusCode>,
    pub(crate) aliases: &'static [&'static str],
    pub(crate) category: &'static str,
    pub(crate) deprecated: bool,
    // The name, description, outcome, retryability, gRPC code and HTTP status are in tables of
    // their own (`ROW_NAME`, ..., see `RowIndex`), so a lookup reads one small item.
}

impl NameEntry {
    /// An empty slot: its length, `usize::MAX`, matches no input.
    pub(crate) const EMPTY: NameEntry = NameEntry {
        len: usize::MAX,
        words: [0; 6],
        code: StatusCode::Zero,
        deprecated: false,
    };
}

impl Row {
    /// What a number the table does not know reads, printed as `UNKNOWN_CODE`; its facts (the
    /// last item of each row table) are a non-retryable failure, gRPC `UNKNOWN`, HTTP 500.
    pub(crate) const UNKNOWN: Row = Row {
        code: None,
        aliases: &[],
        category: "Unknown",
        deprecated: false,
    };
}

/// The name index: the slots, then the displacement of each bucket of the name hash. One static,
/// so a lookup finds both from one base address.
#[derive(Debug)]
#[repr(C, align(64))]
pub(crate) struct NameTable<const SLOTS: usize, const BUCKETS: usize> {
    // The slots first: an entry's address is then the base plus the slot's offset.
    pub(crate) slots: [NameEntry; SLOTS],
    pub(crate) displacements: [u32; BUCKETS],
}

/// One name of a code (its printed name or an alias), or an empty slot of the name table.
///
/// One cache line: a lookup reads nothing else.
#[derive(Debug)]
#[repr(align(64))]
pub(crate) struct NameEntry {
    /// The name's [`name_hash::words`], which hold all its bytes.
    pub(crate) words: [u64; 6],
    /// The name's length in bytes (`usize::MAX` for an empty slot); a word wide, so the length
    /// check is one compare with memory like the words'.
    pub(crate) len: usize,
    pub(crate) code: StatusCode,
    pub(crate) deprecated: bool,
}

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

impl pb::RowIndex {
    /// The row of any number, from the wire or elsewhere: its code's row, or the unknown row
    /// ([`Row::UNKNOWN`]) for a number the table does not have, negative numbers and numbers past
    /// the largest code included. Out-of-range numbers read the index's last entry (the unknown
    /// row) through a conditional move, not a branch, so a mix of unknown numbers costs the same.
    #[inline(always)]
    pub(crate) fn of_number(number: i32) -> pb::RowIndex {
        // A negative number becomes one above `i32::MAX`, out of range like any other.
        let n = number as u32 as usize;
        let last = pb::NUMBER_ROW.len() - 1;
        pb::NUMBER_ROW[std::hint::select_unpredictable(n < pb::NUMBER_ROW.len(), n, last)]
    }

    /// The row of a code: the code's number is in range by construction, so nothing is checked
    /// at run time (the compiler knows the enum's range).
    #[inline(always)]
    pub(crate) fn of_code(code: StatusCode) -> pb::RowIndex {
        pb::NUMBER_ROW[code as i32 as u32 as usize]
    }

    #[inline(always)]
    pub(crate) fn grpc(self) -> tonic::Code {
        pb::ROW_GRPC[self as usize]
    }

    #[inline(always)]
    pub(crate) fn http(self) -> http::StatusCode {
        pb::ROW_HTTP[self as usize]
    }

    #[inline(always)]
    pub(crate) fn outcome(self) -> Outcome {
        pb::ROW_OUTCOME[self as usize]
    }

    #[inline(always)]
    pub(crate) fn retryable(self) -> bool {
        pb::ROW_RETRYABLE[self as usize]
    }

    #[inline(always)]
    pub(crate) fn name(self) -> &'static str {
        pb::ROW_NAME[self as usize]
    }

    #[inline(always)]
    pub(crate) fn description(self) -> &'static str {
        pb::ROW_DESCRIPTION[self as usize]
    }

    #[inline(always)]
    pub(crate) fn removed_in(self) -> Option<&'static str> {
        let release = pb::ROW_REMOVED_IN[self as usize];
        (!release.is_empty()).then_some(release)
    }

    #[inline(always)]
    pub(crate) fn row(self) -> &'static Row {
        &pb::ROWS[self as usize]
    }
}

/// The entry of a name (printed name or alias), if the table has it. Case-sensitive.
#[inline]
pub(crate) fn name_entry(name: &str) -> Option<&'static NameEntry> {
    let bytes = name.as_bytes();
    // Any length goes through: the words of a name longer than COVERED miss some of its bytes,
    // but its length then matches no entry (NAME_MAX_LEN <= COVERED, checked below), so it is
    // not found without a separate test.
    let words = name_hash::words(bytes);
    let h = name_hash::hash(bytes.len(), words, pb::NAME_SEED);
    let table = &pb::NAME_TABLE;
    let bucket = name_hash::bucket(h, pb::NAME_BUCKET_BITS);
    let slot = name_hash::slot(h, table.displacements[bucket], pb::NAME_SLOT_BITS);
    let entry = &table.slots[slot];
    // The words hold every byte of a name up to COVERED bytes long. The compiler
    // makes a compare and a predictable branch of each word; measured, that beats folding the
    // differences into one word and choosing with a conditional move.
    let same = entry.len == bytes.len() && name_hash::same_words(&entry.words, &words);
    if same {
        return Some(entry);
    }
    // The few names longer than the words hold (former names) are not in the name table.
    if bytes.len() > name_hash::COVERED {
        return pb::LONG_NAMES
            .iter()
            .find(|(long, _)| *long == name)
            .map(|(_, entry)| entry);
    }
    None
}

// Every byte of every name the table has is in its words.
const _: () = assert!(pb::NAME_MAX_LEN <= name_hash::COVERED);

impl StatusCode {
    /// The code's row index.
    #[inline(always)]
    pub(crate) fn row_index(self) -> pb::RowIndex {
        let row = pb::RowIndex::of_code(self);
        // The exhaustive match keeps every variant tied to a row at compile time.
        debug_assert_eq!(row as usize, self.table_position());
        row
    }

    #[inline]
    pub(crate) fn row(self) -> &'static Row {
        self.row_index().row()
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
    /// Faster than prost's `TryFrom<i32>` (a direct index by number, not a `match`); use
    /// [`Code`](crate::Code) to keep a number the table does not know.
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
        pb::RowIndex::of_number(number).row().code
    }

    /// The code with this name, printed name or alias, or `None`: the exact lookup, case-sensitive
    /// and without spaces, as the table spells it. Text from people or peers goes through
    /// `parse` instead ([`FromStr`]), which follows the crate's
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
        name_entry(name).map(|entry| entry.code)
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
        name_entry(name).map(|entry| entry.deprecated)
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
        self.row_index().name()
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
        self.row().aliases
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
        self.row_index().description()
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
        self.row().category
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
        self.row_index().removed_in()
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
        self.row_index().outcome()
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
        self.row_index().retryable()
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
        self.row_index().grpc()
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
        self.row_index().http()
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
        pb::ALL.iter().copied()
    }
}

impl fmt::Display for StatusCode {
    /// Writes the printed name, e.g. `CONN_KEY_INVALID`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
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
        crate::code::read_text(s)
            .and_then(crate::Code::known)
            .ok_or_else(|| ParseCodeError::new(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_index_agrees_with_the_exhaustive_match() {
        for (i, code) in pb::ALL.iter().enumerate() {
            assert_eq!(code.table_position(), i);
            assert_eq!(pb::RowIndex::of_code(*code) as usize, i);
            assert_eq!(pb::RowIndex::of_number(*code as i32) as usize, i);
        }
        let unknown = pb::ALL.len();
        let last = pb::NUMBER_ROW.len() as i32 - 1;
        // Every number in range that is not a code, and the edges out of range.
        let in_range = (0..=last).filter(|n| StatusCode::try_from(*n).is_err());
        for n in in_range.chain([-1, last + 1, i32::MIN, i32::MAX]) {
            assert_eq!(pb::RowIndex::of_number(n) as usize, unknown, "{n}");
        }
    }

    #[test]
    fn longer_inputs_are_not_found_whatever_their_words() {
        for code in StatusCode::all() {
            let name = code.name();
            for extra in 1..=60 {
                // Padding at either end, and a long input built from the name's own bytes.
                let after = format!("{name}{}", "_".repeat(extra));
                let before = format!("{}{name}", "_".repeat(extra));
                let twice = name.repeat(1 + extra / 10);
                for input in [after, before, twice] {
                    if input.len() > name.len() {
                        assert!(
                            StatusCode::from_name(&input).is_none_or(
                                |c| c.name() == input || c.aliases().contains(&input.as_str())
                            ),
                            "{input}"
                        );
                    }
                }
            }
        }
        assert!(StatusCode::from_name(&"A".repeat(10_000)).is_none());
    }

    #[test]
    fn a_name_with_any_one_byte_changed_is_not_found() {
        let names: Vec<&str> = pb::ALL
            .iter()
            .flat_map(|c| std::iter::once(c.name()).chain(c.aliases().iter().copied()))
            .collect();
        assert_eq!(
            pb::NAME_TABLE
                .slots
                .iter()
                .filter(|e| e.len != usize::MAX)
                .count()
                + pb::LONG_NAMES.len(),
            names.len()
        );
        for name in &names {
            let code = StatusCode::from_name(name).unwrap();
            assert!(code.name() == *name || code.aliases().contains(name));
            for at in 0..name.len() {
                let mut changed = name.as_bytes().to_vec();
                changed[at] = if changed[at] == b'Q' { b'Z' } else { b'Q' };
                let changed = String::from_utf8(changed).unwrap();
                if !names.contains(&changed.as_str()) {
                    assert!(name_entry(&changed).is_none(), "{changed}");
                }
            }
        }
    }
}
