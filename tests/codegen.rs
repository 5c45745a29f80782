//! The code generator (`codegen/`, run by `cargo build --features regenerate`): what it makes of
//! the protos is exactly what `src/generated/` ships, and it refuses a broken table, naming the
//! code at fault.

#[allow(dead_code, unreachable_pub)]
#[path = "../codegen/mod.rs"]
mod codegen;

use std::fs;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh, empty folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "clarifai-status-codegen-{}-{name}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Copies `from` into `to`, folders included.
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

const STATUS_CODE_PROTO: &str = "clarifai/api/status/status_code.proto";

/// Generates from a copy of the protos whose `status_code.proto` went through `edit`.
fn generate_edited(name: &str, edit: impl FnOnce(String) -> String) -> Result<(), String> {
    let dir = scratch(name);
    let protos = dir.join("proto");
    copy_tree(&root().join("proto"), &protos);
    let table = protos.join(STATUS_CODE_PROTO);
    let text = fs::read_to_string(&table).unwrap();
    let edited = edit(text.clone());
    assert_ne!(edited, text, "the edit changed nothing");
    fs::write(&table, edited).unwrap();
    let out = dir.join("out");
    fs::create_dir_all(&out).unwrap();
    let result = codegen::generate(&protos, &out).map_err(|e| e.to_string());
    let _ = fs::remove_dir_all(&dir);
    result
}

/// Replaces the first `old` after `anchor` with `new`.
fn replace_after(text: &str, anchor: &str, old: &str, new: &str) -> String {
    let at = text.find(anchor).unwrap_or_else(|| panic!("no {anchor:?}"));
    let rel = text[at..]
        .find(old)
        .unwrap_or_else(|| panic!("no {old:?} after {anchor:?}"));
    let mut out = text.to_owned();
    out.replace_range(at + rel..at + rel + old.len(), new);
    out
}

#[test]
fn shipped_code_is_what_the_protos_generate() {
    let out = scratch("current");
    codegen::generate(&root().join("proto"), &out).unwrap();
    for file in codegen::OUTPUTS {
        let fresh = fs::read_to_string(out.join(file)).unwrap();
        let shipped = fs::read_to_string(root().join("src/generated").join(file))
            .unwrap_or_else(|e| panic!("src/generated/{file}: {e}"));
        assert!(
            fresh == shipped,
            "src/generated/{file} differs from what the protos generate: run `cargo build --features regenerate` and commit src/generated"
        );
    }
    let _ = fs::remove_dir_all(&out);
}

#[test]
fn a_failure_mapped_to_ok_is_refused_by_name() {
    let err = generate_edited("failure-ok", |t| {
        replace_after(
            &t,
            "CONN_KEY_INVALID = 11008",
            "grpc: UNAUTHENTICATED",
            "grpc: OK",
        )
    })
    .unwrap_err();
    assert!(err.contains("CONN_KEY_INVALID (11008)"), "{err}");
    assert!(err.contains("never gRPC OK"), "{err}");
}

#[test]
fn a_retryable_success_is_refused_by_name() {
    let err = generate_edited("retryable-success", |t| {
        replace_after(
            &t,
            "MODEL_TRAINED = 21100",
            "outcome: SUCCESS",
            "outcome: SUCCESS\n    retryable: true",
        )
    })
    .unwrap_err();
    assert!(err.contains("MODEL_TRAINED (21100)"), "{err}");
    assert!(err.contains("only failures are retryable"), "{err}");
}

#[test]
fn an_alias_with_facts_is_refused_by_name() {
    let err = generate_edited("alias-facts", |t| {
        let (start, end) = option_of(&t, "SUCCESS = 10000");
        let option = t[start..end].to_owned();
        t.replacen(
            "  SUCCESS = 10000",
            &format!("  SUCCESS_TOO = 10000{option};\n  SUCCESS = 10000"),
            1,
        )
    })
    .unwrap_err();
    assert!(err.contains("10000"), "{err}");
    assert!(
        err.contains("SUCCESS_TOO") || err.contains("SUCCESS"),
        "{err}"
    );
}

#[test]
fn an_undeclared_category_is_refused_by_name() {
    let err = generate_edited("category", |t| {
        replace_after(
            &t,
            "MODEL_TRAINED = 21100",
            "category: \"Model\"",
            "category: \"Modle\"",
        )
    })
    .unwrap_err();
    assert!(err.contains("MODEL_TRAINED (21100)"), "{err}");
    assert!(err.contains("Modle"), "{err}");
}

/// The ` [(clarifai.status.meta.code) = {...}]` option of the value declared by `decl`: its
/// byte range, from the space before `[` to the `]`.
fn option_of(text: &str, decl: &str) -> (usize, usize) {
    let at = text.find(decl).unwrap() + decl.len();
    let end = at + text[at..].find("}]").unwrap() + 2;
    (at, end)
}
