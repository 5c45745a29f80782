//! Fault-injection scenarios: the `<pairs>` text of a header or an API key, and the rules file.

use std::fmt;
use std::time::Duration;

use std::marker::PhantomData;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use clarifai_status::{Code, StatusCode};

/// The longest `delay_ms` accepted: a minute. Longer asks are rejected, so no client can park a
/// call (and the memory behind it) for longer than this.
pub const MAX_DELAY_MS: u32 = 60_000;

/// The most SUCCESS messages sent before a failing answer (`successes_first`).
pub(crate) const MAX_SUCCESSES_FIRST: u32 = 16;

/// The most method names or patterns one scenario lists.
const MAX_METHODS: usize = 64;

/// The longest method name or pattern, in bytes.
const MAX_METHOD_LEN: usize = 128;

/// What the calls a scenario matches are answered with. Also a rule of the rules file, read by
/// serde with the same checks as the pairs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Scenario {
    #[serde(deserialize_with = "code_field")]
    pub(crate) code: Code,
    /// Method names or `*` patterns; `None` matches every method.
    #[serde(deserialize_with = "methods_field")]
    pub(crate) methods: Option<Vec<Box<str>>>,
    pub(crate) fail_times: u32,
    pub(crate) in_body: bool,
    pub(crate) retry_after_ms: u32,
    #[serde(deserialize_with = "at_most::<MAX_DELAY_MS, _>")]
    pub(crate) delay_ms: u32,
    /// SUCCESS messages sent before a failing answer: a stream that fails after its first ones.
    #[serde(deserialize_with = "at_most::<MAX_SUCCESSES_FIRST, _>")]
    pub(crate) successes_first: u32,
    #[serde(deserialize_with = "percent_field")]
    pub(crate) percent: u8,
    /// A name for the rule, for the reader of the file; it changes nothing.
    #[serde(rename = "id")]
    pub(crate) _id: Option<Box<str>>,
}

impl Default for Scenario {
    fn default() -> Scenario {
        Scenario {
            code: StatusCode::Success.into(),
            methods: None,
            fail_times: 0,
            in_body: true,
            retry_after_ms: 0,
            delay_ms: 0,
            successes_first: 0,
            percent: 100,
            _id: None,
        }
    }
}

/// The fields of a scenario, as named in pairs and in the rules file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Code,
    Methods,
    FailTimes,
    InBody,
    RetryAfterMs,
    DelayMs,
    SuccessesFirst,
    Percent,
    Id,
}

const FIELDS: [(&str, Field); 9] = [
    ("code", Field::Code),
    ("methods", Field::Methods),
    ("fail_times", Field::FailTimes),
    ("in_body", Field::InBody),
    ("retry_after_ms", Field::RetryAfterMs),
    ("delay_ms", Field::DelayMs),
    ("successes_first", Field::SuccessesFirst),
    ("percent", Field::Percent),
    ("id", Field::Id),
];

impl Field {
    fn from_name(name: &str) -> Option<Field> {
        FIELDS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    fn name(self) -> &'static str {
        FIELDS
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("", |(n, _)| n)
    }
}

impl Scenario {
    /// Reads `name=value` pairs joined by `;` (empty pieces are skipped). Names are lowercase;
    /// `code` takes a number or a name in any case; `methods` names joined by `,`.
    ///
    /// `Err` names the first bad pair and what is wrong with it.
    pub(crate) fn parse_pairs(text: &str) -> Result<Scenario, String> {
        let mut scenario = Scenario::default();
        let mut seen = [false; FIELDS.len()];
        for pair in text.split(';').filter(|p| !p.is_empty()) {
            let bad = |why: String| format!("bad pair `{}`: {why}", clip(pair));
            let Some((name, value)) = pair.split_once('=') else {
                return Err(bad("expected `name=value`".to_owned()));
            };
            let Some(field) = Field::from_name(name) else {
                return Err(bad(format!("unknown name; known: {}", known_names())));
            };
            if std::mem::replace(&mut seen[field as usize], true) {
                return Err(bad("repeated".to_owned()));
            }
            scenario.set_text(field, value).map_err(bad)?;
        }
        Ok(scenario)
    }

    fn set_text(&mut self, field: Field, value: &str) -> Result<(), String> {
        let number = |max: u32| {
            value
                .parse::<u32>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| format!("`{}` takes a number in 0..={max}", field.name()))
        };
        match field {
            Field::Code => self.code = parse_code(value)?,
            Field::Methods => self.methods = Some(parse_methods(value.split(','))?),
            Field::FailTimes => self.fail_times = number(u32::MAX)?,
            Field::InBody => {
                self.in_body = match value {
                    "true" => true,
                    "false" => false,
                    _ => return Err("`in_body` takes `true` or `false`".to_owned()),
                }
            }
            Field::RetryAfterMs => self.retry_after_ms = number(u32::MAX)?,
            Field::DelayMs => self.delay_ms = number(MAX_DELAY_MS)?,
            Field::SuccessesFirst => self.successes_first = number(MAX_SUCCESSES_FIRST)?,
            Field::Percent => self.percent = number(100)? as u8,
            Field::Id => self._id = Some(value.into()),
        }
        Ok(())
    }

    /// Whether the scenario applies to the gRPC method `method` (its bare name).
    pub(crate) fn matches(&self, method: &str) -> bool {
        self.methods
            .as_ref()
            .is_none_or(|patterns| patterns.iter().any(|p| glob(p, method)))
    }

    /// The delay before answering a call that gets the scenario's code.
    pub(crate) fn delay(&self) -> Duration {
        Duration::from_millis(u64::from(self.delay_ms))
    }
}

fn parse_code(value: &str) -> Result<Code, String> {
    if value.len() > 64 {
        return Err("`code` is too long".to_owned());
    }
    value
        .to_ascii_uppercase()
        .parse::<Code>()
        .map_err(|_| "`code` takes an i32 or a code name (any case)".to_owned())
}

fn parse_methods<'a>(names: impl Iterator<Item = &'a str>) -> Result<Vec<Box<str>>, String> {
    let mut methods = Vec::new();
    for name in names {
        let valid = !name.is_empty()
            && name.len() <= MAX_METHOD_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'*');
        if !valid {
            return Err(format!(
                "method `{}` is not a name or `*` pattern (letters, digits, `_`, `*`; at most {MAX_METHOD_LEN} bytes)",
                clip(name)
            ));
        }
        if methods.len() == MAX_METHODS {
            return Err(format!("at most {MAX_METHODS} methods"));
        }
        methods.push(name.into());
    }
    Ok(methods)
}

/// `code` in the rules file: an `i32`, or a code name in any case (as in the pairs).
fn code_field<'de, D: Deserializer<'de>>(d: D) -> Result<Code, D::Error> {
    struct CodeVisitor;
    impl Visitor<'_> for CodeVisitor {
        type Value = Code;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an i32 or a code name")
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> Result<Code, E> {
            i32::try_from(n)
                .map(Code::new)
                .map_err(|_| E::custom("takes an i32 or a code name"))
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<Code, E> {
            i32::try_from(n)
                .map(Code::new)
                .map_err(|_| E::custom("takes an i32 or a code name"))
        }
        fn visit_str<E: de::Error>(self, name: &str) -> Result<Code, E> {
            parse_code(name).map_err(E::custom)
        }
    }
    d.deserialize_any(CodeVisitor)
}

/// `methods` in the rules file: a list of names or `*` patterns, checked as in the pairs.
fn methods_field<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Box<str>>>, D::Error> {
    let names = Vec::<String>::deserialize(d)?;
    parse_methods(names.iter().map(String::as_str))
        .map(Some)
        .map_err(de::Error::custom)
}

/// A whole number in `0..=MAX`.
fn at_most<'de, const MAX: u32, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    match u64::deserialize(d)? {
        n if n <= u64::from(MAX) => Ok(n as u32),
        _ => Err(de::Error::custom(format_args!(
            "takes a number in 0..={MAX}"
        ))),
    }
}

fn percent_field<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    at_most::<100, D>(d).map(|n| n as u8)
}

/// `T` read from a JSON object only: serde's derive also takes an array of the fields in order,
/// which would make `[]` an empty plan.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Object<T>, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(ObjectVisitor(PhantomData)).map(Object)
    }
}

fn known_names() -> String {
    FIELDS
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters.
///
/// Greedy with one backtrack point: linear in practice, `O(len(pattern) * len(text))` at worst.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|b| *b == b'*')
}

/// The first 64 bytes of `text` at most, cut at a character boundary.
pub(crate) fn clip(text: &str) -> &str {
    let mut end = text.len().min(64);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A fault-injection plan for the status test server: rules tried in order, first match wins,
/// for calls that carry no scenario of their own (no `x-clarifai-status-raise` header, no
/// `Key raise;...` API key).
///
/// Read from JSON (`clarifai-status serve --scenario FILE`):
///
/// ```json
/// {"seed": 7, "rules": [
///   {"methods": ["Post*"], "code": 21354, "percent": 30},
///   {"methods": ["GetModel"], "code": "MODEL_LOADING", "fail_times": 2, "delay_ms": 200}
/// ]}
/// ```
///
/// Each rule has the fields of the scenario pairs (see the [module docs](super)): `methods` (a
/// list of method names or `*` patterns; absent: every method; ignored over REST), `code` (a
/// number or a name, any case), `fail_times`, `in_body`, `retry_after_ms`, `delay_ms` (at most
/// [`MAX_DELAY_MS`]), `successes_first` (at most 16), `percent` (0-100), `id`. `seed` (default 0) makes `percent` repeatable: the
/// same calls in the same order fail the same way in every run.
///
/// # Examples
///
/// ```
/// use clarifai_status_testing::{Scenarios, TestServer};
///
/// let plan = Scenarios::from_json(r#"{"rules": [{"methods": ["PostModelOutputs"], "code": "model_busy_please_retry", "fail_times": 2}]}"#).unwrap();
/// let server = TestServer::new().scenarios(plan);
/// # drop(server);
///
/// let err = Scenarios::from_json(r#"{"rules": [{"code": 21354, "percnt": 30}]}"#).unwrap_err();
/// assert!(err.to_string().starts_with("rules[0].percnt: unknown field `percnt`, expected one of `code`"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scenarios {
    pub(crate) seed: u64,
    pub(crate) rules: Vec<Scenario>,
}

/// Why a rules file was refused: the rule and field at fault, and what is wrong.
///
/// # Examples
///
/// ```
/// use clarifai_status_testing::Scenarios;
///
/// let err = Scenarios::from_json(r#"{"rules": [{}, {"percent": 130}]}"#).unwrap_err();
/// assert_eq!(err.to_string(), "rules[1].percent: takes a number in 0..=100 at line 1 column 31");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidScenarios {
    message: String,
}

impl fmt::Display for InvalidScenarios {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for InvalidScenarios {}

impl Scenarios {
    /// A plan with no rules: every call without a scenario of its own answers `SUCCESS`.
    ///
    /// # Examples
    ///
    /// ```
    /// let plan = clarifai_status_testing::Scenarios::new();
    /// assert_eq!(plan, Default::default());
    /// ```
    pub fn new() -> Scenarios {
        Scenarios::default()
    }

    /// Reads a plan from its JSON text.
    ///
    /// # Errors
    ///
    /// [`InvalidScenarios`] naming the rule and field at fault (`rules[1].percent: ...`) and
    /// where in the text: text that is not JSON, a rule that is not an object, an unknown
    /// top-level or rule field, a value of the wrong type or out of range, an unknown code name.
    ///
    /// # Examples
    ///
    /// ```
    /// use clarifai_status_testing::Scenarios;
    ///
    /// assert!(Scenarios::from_json(r#"{"seed": 1, "rules": []}"#).is_ok());
    /// assert!(Scenarios::from_json("not json").is_err());
    /// ```
    pub fn from_json(text: &str) -> Result<Scenarios, InvalidScenarios> {
        /// The file's shape; each rule is a [`Scenario`].
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            #[serde(default)]
            seed: u64,
            #[serde(default)]
            rules: Vec<Object<Scenario>>,
        }
        let de = &mut serde_json::Deserializer::from_str(text);
        let Object(file): Object<File> =
            serde_path_to_error::deserialize(de).map_err(|e| InvalidScenarios {
                message: e.to_string(),
            })?;
        Ok(Scenarios {
            seed: file.seed,
            rules: file.rules.into_iter().map(|Object(rule)| rule).collect(),
        })
    }

    /// The first rule that applies, with its index: to the gRPC method `method`, or to any REST
    /// call (`None`), where `methods` does not apply.
    pub(crate) fn find(&self, method: Option<&str>) -> Option<(usize, &Scenario)> {
        self.rules
            .iter()
            .enumerate()
            .find(|(_, rule)| method.is_none_or(|m| rule.matches(m)))
    }
}

/// A number in `0..100` for the `count`th call of `method` under `key`: the same in every run for
/// the same inputs, spread evenly, so `percent` picks a repeatable share of calls.
pub(crate) fn roll(seed: u64, key: &str, method: &str, count: u32) -> u8 {
    // FNV-1a over the inputs, then SplitMix64's finaliser to spread the bits.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(&seed.to_le_bytes());
    eat(key.as_bytes());
    eat(&[0xff]);
    eat(method.as_bytes());
    eat(&[0xff]);
    eat(&count.to_le_bytes());
    let mut z = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z % 100) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `glob` by its definition, recursively: exponential, for short inputs only.
    fn glob_by_definition(p: &[u8], t: &[u8]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some((b'*', rest)) => (0..=t.len()).any(|i| glob_by_definition(rest, &t[i..])),
            Some((c, rest)) => t.first() == Some(c) && glob_by_definition(rest, &t[1..]),
        }
    }

    proptest! {
        #[test]
        fn any_pairs_text_parses_or_names_a_pair(text in any::<String>()) {
            match Scenario::parse_pairs(&text) {
                Ok(s) => prop_assert!(s.percent <= 100 && s.delay_ms <= MAX_DELAY_MS),
                Err(why) => prop_assert!(why.starts_with("bad pair `"), "{}", why),
            }
        }

        #[test]
        fn pairs_of_known_names_with_any_values_never_panic(
            pairs in proptest::collection::vec(
                (proptest::sample::select(FIELDS.iter().map(|(n, _)| *n).collect::<Vec<_>>()), ".{0,12}"),
                0..6,
            )
        ) {
            let text: Vec<String> = pairs.iter().map(|(n, v)| format!("{n}={v}")).collect();
            let _ = Scenario::parse_pairs(&text.join(";"));
        }

        #[test]
        fn glob_agrees_with_its_definition(pattern in "[ab*]{0,8}", text in "[ab]{0,10}") {
            prop_assert_eq!(
                glob(&pattern, &text),
                glob_by_definition(pattern.as_bytes(), text.as_bytes())
            );
        }

        #[test]
        fn any_json_is_a_plan_or_an_error(text in any::<String>()) {
            let _ = Scenarios::from_json(&text);
        }

        #[test]
        fn rules_of_known_fields_with_any_scalars_are_a_plan_or_name_the_field(
            rules in proptest::collection::vec(
                proptest::collection::vec(
                    (
                        proptest::sample::select(FIELDS.iter().map(|(n, _)| *n).collect::<Vec<_>>()),
                        prop_oneof![
                            any::<i64>().prop_map(|n| n.to_string()),
                            any::<f64>().prop_map(|n| if n.is_finite() { n.to_string() } else { "0".into() }),
                            any::<bool>().prop_map(|b| b.to_string()),
                            "[a-zA-Z_*]{0,12}".prop_map(|t| format!("{t:?}")),
                            Just("[\"Post*\", 3]".to_owned()),
                            Just("null".to_owned()),
                        ],
                    ),
                    0..4,
                ),
                0..4,
            )
        ) {
            let rules: Vec<String> = rules
                .iter()
                .map(|fields| {
                    let fields: Vec<String> = fields.iter().map(|(n, v)| format!("{n:?}: {v}")).collect();
                    format!("{{{}}}", fields.join(", "))
                })
                .collect();
            let text = format!(r#"{{"seed": 1, "rules": [{}]}}"#, rules.join(", "));
            match Scenarios::from_json(&text) {
                Ok(plan) => prop_assert_eq!(plan.rules.len(), rules.len()),
                Err(e) => prop_assert!(e.to_string().starts_with("rules["), "{}: {}", text, e),
            }
        }
    }

    #[test]
    fn pairs_read_every_field() {
        let s = Scenario::parse_pairs(
            "code=model_busy_please_retry;methods=PostModelOutputs,Get*;fail_times=2;in_body=false;retry_after_ms=150;delay_ms=20;percent=30;id=x",
        )
        .unwrap();
        assert_eq!(s.code, Code::from(StatusCode::ModelBusyPleaseRetry));
        assert_eq!(
            s.methods.as_deref(),
            Some(&["PostModelOutputs".into(), "Get*".into()][..])
        );
        assert_eq!(
            (
                s.fail_times,
                s.in_body,
                s.retry_after_ms,
                s.delay_ms,
                s.percent
            ),
            (2, false, 150, 20, 30)
        );
        assert!(s.matches("PostModelOutputs") && s.matches("GetModel"));
        assert!(!s.matches("ListApps"));
    }

    #[test]
    fn empty_pairs_are_the_defaults() {
        assert_eq!(Scenario::parse_pairs("").unwrap(), Scenario::default());
        assert_eq!(
            Scenario::parse_pairs(";code=77777;").unwrap().code,
            Code::new(77777)
        );
    }

    #[test]
    fn bad_pairs_are_named() {
        let cases = [
            ("code=nope", "bad pair `code=nope`: `code` takes an i32 or a code name (any case)"),
            ("colour=red", "bad pair `colour=red`: unknown name; known: code, methods, fail_times, in_body, retry_after_ms, delay_ms, successes_first, percent, id"),
            ("fail_times", "bad pair `fail_times`: expected `name=value`"),
            ("percent=101", "bad pair `percent=101`: `percent` takes a number in 0..=100"),
            ("delay_ms=60001", "bad pair `delay_ms=60001`: `delay_ms` takes a number in 0..=60000"),
            ("in_body=yes", "bad pair `in_body=yes`: `in_body` takes `true` or `false`"),
            ("id=a;id=b", "bad pair `id=b`: repeated"),
            ("methods=Post Model", "bad pair `methods=Post Model`: method `Post Model` is not a name or `*` pattern (letters, digits, `_`, `*`; at most 128 bytes)"),
        ];
        for (text, want) in cases {
            assert_eq!(Scenario::parse_pairs(text).unwrap_err(), want, "{text}");
        }
    }

    #[test]
    fn glob_matches_runs_of_characters() {
        for (p, t, want) in [
            ("*", "", true),
            ("*", "Anything", true),
            ("Post*", "PostModelOutputs", true),
            ("Post*", "GetModel", false),
            ("*Outputs", "PostModelOutputs", true),
            ("P*M*s", "PostModelOutputs", true),
            ("P*M*x", "PostModelOutputs", false),
            ("GetModel", "GetModel", true),
            ("GetModel", "GetModels", false),
            ("a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false),
        ] {
            assert_eq!(glob(p, t), want, "{p} vs {t}");
        }
    }

    #[test]
    fn rules_file_reads_and_names_faults() {
        let plan = Scenarios::from_json(
            r#"{"seed": 7, "rules": [{"methods": ["Post*"], "code": 21354, "percent": 30}, {"code": "conn_throttled", "in_body": false}]}"#,
        )
        .unwrap();
        assert_eq!(plan.seed, 7);
        assert_eq!(plan.find(Some("PostModelOutputs")).map(|(i, _)| i), Some(0));
        assert_eq!(plan.find(Some("GetModel")).map(|(i, _)| i), Some(1));
        assert_eq!(plan.find(None).map(|(i, _)| i), Some(0));
        assert_eq!(plan.rules[1].code, Code::from(StatusCode::ConnThrottled));
        for (text, want) in [
            ("[]", "invalid type: sequence, expected a JSON object at line 1 column 0"),
            (r#"{"rules": [[]]}"#, "rules[0]: invalid type: sequence, expected a JSON object at line 1 column 11"),
            (
                r#"{"sede": 1}"#,
                "sede: unknown field `sede`, expected `seed` or `rules` at line 1 column 7",
            ),
            (r#"{"rules": [3]}"#, "rules[0]: invalid type: integer `3`, expected a JSON object at line 1 column 12"),
            (
                r#"{"rules": [{"code": "nope"}]}"#,
                "rules[0].code: `code` takes an i32 or a code name (any case) at line 1 column 26",
            ),
            (
                r#"{"rules": [{"code": 99999999999}]}"#,
                "rules[0].code: takes an i32 or a code name at line 1 column 31",
            ),
            (
                r#"{"rules": [{"methods": "Post*"}]}"#,
                r#"rules[0].methods: invalid type: string "Post*", expected a sequence at line 1 column 30"#,
            ),
            (
                r#"{"rules": [{"methods": ["Post Model"]}]}"#,
                "rules[0].methods: method `Post Model` is not a name or `*` pattern (letters, digits, `_`, `*`; at most 128 bytes) at line 1 column 38",
            ),
            (
                r#"{"rules": [{"delay_ms": 60001}]}"#,
                "rules[0].delay_ms: takes a number in 0..=60000 at line 1 column 30",
            ),
            (
                r#"{"rules": [{"delay_ms": 1e9}]}"#,
                "rules[0].delay_ms: invalid type: floating point `1000000000.0`, expected u64 at line 1 column 27",
            ),
        ] {
            assert_eq!(
                Scenarios::from_json(text).unwrap_err().to_string(),
                want,
                "{text}"
            );
        }
    }

    #[test]
    fn pairs_and_rules_read_the_same_fields() {
        // Every name the pairs know is a rule field with the same meaning, and no other is.
        let values = [
            ("code", "conn_throttled", r#""conn_throttled""#),
            ("methods", "Get*", r#"["Get*"]"#),
            ("fail_times", "2", "2"),
            ("in_body", "false", "false"),
            ("retry_after_ms", "150", "150"),
            ("delay_ms", "20", "20"),
            ("successes_first", "3", "3"),
            ("percent", "30", "30"),
            ("id", "x", r#""x""#),
        ];
        let names: Vec<&str> = values.iter().map(|(n, _, _)| *n).collect();
        assert_eq!(names, FIELDS.iter().map(|(n, _)| *n).collect::<Vec<_>>());
        for (name, pair, json) in values {
            let from_pair = Scenario::parse_pairs(&format!("{name}={pair}")).unwrap();
            let plan = Scenarios::from_json(&format!(r#"{{"rules": [{{"{name}": {json}}}]}}"#));
            assert_eq!(
                plan.unwrap().rules,
                std::slice::from_ref(&from_pair),
                "{name}"
            );
            assert_ne!(
                from_pair,
                Scenario::default(),
                "{name} changes the scenario"
            );
        }
    }

    #[test]
    fn clip_cuts_at_a_char_boundary() {
        let text = "é".repeat(40);
        assert_eq!(clip(&text).len(), 64);
        assert_eq!(clip("short"), "short");
    }

    #[test]
    fn roll_is_repeatable_and_spread() {
        assert_eq!(roll(7, "k", "M", 3), roll(7, "k", "M", 3));
        let below_30 = (1..=10_000).filter(|n| roll(7, "k", "M", *n) < 30).count();
        assert!((2_700..=3_300).contains(&below_30), "{below_30}");
        let differs = (1..=100).any(|n| roll(7, "k", "M", n) != roll(8, "k", "M", n));
        assert!(differs, "the seed changes the draw");
    }
}
