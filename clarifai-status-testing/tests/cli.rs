//! The `clarifai-status` binary, run as a user would.
#![cfg(feature = "cli")]

use std::collections::BTreeSet;
use std::io::Read;
use std::process::{Command, Output, Stdio};

use clarifai_status::mapping::grpc_code_name;
use clarifai_status::StatusCode;
use serde_json::Value;

const COLUMNS: [&str; 11] = [
    "code",
    "name",
    "aliases",
    "description",
    "category",
    "deprecated",
    "outcome",
    "retryable",
    "grpc_code",
    "grpc_name",
    "http_status",
];

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clarifai-status"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout(output: &Output) -> &str {
    std::str::from_utf8(&output.stdout).expect("stdout is UTF-8")
}

fn stderr(output: &Output) -> &str {
    std::str::from_utf8(&output.stderr).expect("stderr is UTF-8")
}

/// The table's facts of a code as text, in column order, as the CSV and Markdown print them.
fn expected_cells(code: StatusCode) -> Vec<String> {
    vec![
        code.number().to_string(),
        code.name().to_owned(),
        code.aliases().join(";"),
        code.description().to_owned(),
        code.category().to_owned(),
        code.is_deprecated().to_string(),
        code.outcome().as_str().to_owned(),
        code.is_retryable().to_string(),
        i32::from(code.grpc_code()).to_string(),
        grpc_code_name(code.grpc_code()).to_owned(),
        code.http_status().as_u16().to_string(),
    ]
}

#[test]
fn explain_by_number_or_lower_case_name_shows_every_fact() {
    for arg in ["11008", "conn_key_invalid", "CONN_KEY_INVALID"] {
        let output = run(&["explain", arg]);
        assert!(output.status.success(), "{arg}: {output:?}");
        assert_eq!(stderr(&output), "");
        let text = stdout(&output);
        for fact in [
            "11008",
            "CONN_KEY_INVALID",
            StatusCode::ConnKeyInvalid.description(),
            "Connection",
            "failure",
            "UNAUTHENTICATED (16)",
            "401 Unauthorized",
        ] {
            assert!(text.contains(fact), "{arg}: {fact:?} missing from\n{text}");
        }
    }
}

#[test]
fn explain_marks_deprecated_names_and_says_when_the_table_has_no_description() {
    let output = run(&["explain", "input_success", "10001"]);
    assert!(output.status.success(), "{output:?}");
    let text = stdout(&output);
    assert!(
        text.contains("30000 INPUT_DOWNLOAD_SUCCESS (deprecated)"),
        "{text}"
    );
    assert!(text.contains("INPUT_SUCCESS\n"), "{text}");
    assert!(text.contains("(no description in the table)"), "{text}");
}

#[test]
fn explain_of_unknown_codes_names_them_on_stderr_and_exits_2() {
    let output = run(&["explain", "12345"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(stdout(&output), "");
    assert!(stderr(&output).contains("unknown status code 12345"));

    let output = run(&["explain", "no_such_code"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("unknown status code name \"no_such_code\""));
}

#[test]
fn explain_goes_on_past_unknown_codes_and_still_exits_2() {
    let output = run(&["explain", "12345", "11008", "FOO", "conn_throttled"]);
    assert_eq!(output.status.code(), Some(2));
    let text = stdout(&output);
    assert!(text.contains("11008 CONN_KEY_INVALID"), "{text}");
    assert!(text.contains("11005 CONN_THROTTLED"), "{text}");
    let errors = stderr(&output);
    assert!(errors.contains("12345"), "{errors}");
    assert!(errors.contains("FOO"), "{errors}");
    assert_eq!(errors.lines().count(), 2, "{errors}");
}

#[test]
fn explain_rejects_garbage_without_panicking() {
    for arg in [
        "",
        " ",
        "-5",
        "+",
        "99999999999999999999999",
        "11008.0",
        "0x2b00",
        "é",
        "\u{1b}[31m",
    ] {
        let output = run(&["explain", arg]);
        assert_eq!(output.status.code(), Some(2), "{arg:?}: {output:?}");
        assert!(
            stderr(&output).starts_with("error: unknown status code"),
            "{arg:?}: {output:?}"
        );
        assert!(!stderr(&output).contains("panicked"), "{arg:?}");
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &[][..],
        &["explain"],
        &["table", "--format", "xml"],
        &["no-such-command"],
    ] {
        let output = run(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn table_json_is_every_code_with_the_library_facts() {
    let output = run(&["table", "--format", "json"]);
    assert!(output.status.success(), "{output:?}");
    let rows: Vec<serde_json::Map<String, Value>> =
        serde_json::from_str(stdout(&output)).expect("an array of objects");
    assert_eq!(rows.len(), 460);
    let mut numbers = Vec::new();
    for row in &rows {
        let keys: BTreeSet<&str> = row.keys().map(String::as_str).collect();
        assert_eq!(keys, BTreeSet::from(COLUMNS));

        let number = i32::try_from(row["code"].as_i64().unwrap()).unwrap();
        numbers.push(number);
        let code = StatusCode::from_number(number).unwrap();
        assert_eq!(row["name"], code.name());
        assert_eq!(row["aliases"], Value::from(code.aliases().to_vec()));
        assert_eq!(row["description"], code.description());
        assert_eq!(row["category"], code.category());
        assert_eq!(row["deprecated"], code.is_deprecated());
        assert_eq!(row["outcome"], code.outcome().as_str());
        assert_eq!(row["retryable"], code.is_retryable());
        assert_eq!(row["grpc_code"], i32::from(code.grpc_code()));
        assert_eq!(row["grpc_name"], grpc_code_name(code.grpc_code()));
        assert_eq!(row["http_status"], code.http_status().as_u16());
    }
    let all: Vec<i32> = StatusCode::all().map(StatusCode::number).collect();
    assert_eq!(numbers, all, "one row per number, in number order");

    let throttled = rows.iter().find(|r| r["code"] == 11005).unwrap();
    assert_eq!(throttled["name"], "CONN_THROTTLED");
    assert_eq!(throttled["retryable"], true);
    assert_eq!(throttled["grpc_name"], "RESOURCE_EXHAUSTED");
    assert_eq!(throttled["http_status"], 429);
    let task_failed = rows.iter().find(|r| r["code"] == 54005).unwrap();
    assert_eq!(task_failed["aliases"], serde_json::json!(["TASK_FAILED"]));
}

/// Splits RFC 4180 CSV into records: quoted fields may hold commas, doubled quotes and line breaks.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (false, '"') => {
                assert!(field.is_empty(), "a quote inside an unquoted field");
                quoted = true;
            }
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (_, c) => field.push(c),
        }
    }
    assert!(!quoted, "an unterminated quoted field");
    assert!(
        field.is_empty() && record.is_empty(),
        "no newline after the last record"
    );
    records
}

#[test]
fn csv_parser_handles_quotes_commas_and_line_breaks() {
    let records = parse_csv("a,\"b,c\",\"say \"\"hi\"\"\"\n\"line\nbreak\",,x\n");
    assert_eq!(
        records,
        [vec!["a", "b,c", "say \"hi\""], vec!["line\nbreak", "", "x"],]
    );
}

#[test]
fn table_csv_is_a_header_and_every_code_with_the_library_facts() {
    let output = run(&["table", "--format", "csv"]);
    assert!(output.status.success(), "{output:?}");
    let text = stdout(&output);
    assert_eq!(text.lines().count(), 461);
    let records = parse_csv(text);
    assert_eq!(records.len(), 461);
    assert_eq!(records[0], COLUMNS);
    let expected: Vec<Vec<String>> = StatusCode::all().map(expected_cells).collect();
    assert_eq!(records[1..], expected[..]);
    // Some descriptions hold commas: the quoting is exercised, not just possible.
    assert!(
        text.lines().any(|line| line.contains("\",")),
        "no quoted field"
    );
}

#[test]
fn table_markdown_is_a_header_and_every_code() {
    // Markdown is the default format.
    for args in [&["table"][..], &["table", "--format", "markdown"]] {
        let output = run(args);
        assert!(output.status.success(), "{output:?}");
        let lines: Vec<&str> = stdout(&output).lines().collect();
        assert_eq!(lines.len(), 2 + 460);
        assert_eq!(lines[0], format!("| {} |", COLUMNS.join(" | ")));
        assert_eq!(lines[1], format!("|{}", " --- |".repeat(COLUMNS.len())));
        for (line, code) in lines[2..].iter().zip(StatusCode::all()) {
            let cells: Vec<&str> = line
                .strip_prefix('|')
                .and_then(|l| l.strip_suffix('|'))
                .unwrap_or_else(|| panic!("not a table row: {line}"))
                .split(" | ")
                .map(str::trim)
                .collect();
            assert_eq!(cells, expected_cells(code), "{line}");
        }
    }
}

#[test]
fn a_closed_pipe_ends_the_table_quietly_with_status_0() {
    let full = run(&["table", "--format", "json"]);
    // More than a pipe buffer holds, so the binary is still writing when the reader goes away.
    assert!(full.stdout.len() > 1 << 16);

    let mut child = Command::new(env!("CARGO_BIN_EXE_clarifai-status"))
        .args(["table", "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut first = [0u8; 1];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // The read end is dropped: every later write fails with a broken pipe.
    let output = child.wait_with_output().unwrap();
    assert_eq!(first, *b"[");
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(stderr(&output), "");
}
