//! The code generator (`cargo run -p clarifai-status-codegen`): what it makes of the protos is
//! exactly what the crates ship in their `src/generated/`, and it refuses a broken table, naming
//! the code at fault.

use clarifai_status_codegen as codegen;

use std::fs;
use std::path::{Path, PathBuf};

/// The repository's root (the generator's package is `codegen/`).
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
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
    generate_edited_table(name, edit).map(drop)
}

/// As [`generate_edited`], returning the generated `status_table.rs`.
fn generate_edited_table(
    name: &str,
    edit: impl FnOnce(String) -> String,
) -> Result<String, String> {
    generate_edited_file(name, STATUS_CODE_PROTO, edit)
}

/// Generates from a copy of the protos whose `file` went through `edit`; the generated
/// `status_table.rs`, then `status_fields.rs`.
fn generate_edited_file(
    name: &str,
    file: &str,
    edit: impl FnOnce(String) -> String,
) -> Result<String, String> {
    let dir = scratch(name);
    let protos = dir.join("proto");
    copy_tree(&root().join("proto"), &protos);
    let table = protos.join(file);
    let text = fs::read_to_string(&table).unwrap();
    let edited = edit(text.clone());
    assert_ne!(edited, text, "the edit changed nothing");
    fs::write(&table, edited).unwrap();
    let out = dir.join("out");
    fs::create_dir_all(&out).unwrap();
    let tester = root().join(codegen::PROTO_DIRS[1]);
    let result = codegen::generate(&[&protos, &tester], &out)
        .map_err(|e| e.to_string())
        .map(|()| {
            ["status_table.rs", "status_fields.rs"]
                .map(|file| fs::read_to_string(out.join(file)).unwrap())
                .concat()
        });
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
    let dirs: Vec<PathBuf> = codegen::PROTO_DIRS.iter().map(|d| root().join(d)).collect();
    let dirs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    codegen::generate(&dirs, &out).unwrap();
    for (file, folder) in codegen::OUTPUTS {
        let fresh = fs::read_to_string(out.join(file)).unwrap();
        let shipped = fs::read_to_string(root().join(folder).join(file))
            .unwrap_or_else(|e| panic!("{folder}/{file}: {e}"));
        assert!(
            fresh == shipped,
            "{folder}/{file} differs from what the protos generate: run `cargo run -p clarifai-status-codegen` and commit it"
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

/// 100 names Clarifai could add, in its own patterns (resource, operation, state), none in the
/// table yet: the first is the one that collided with `DATASET_VERSION_EXPORT_IN_PROGRESS` under
/// the hash that read only some of a name's words.
fn plausible_new_names(table: &str) -> Vec<String> {
    let resources = [
        "DATASET_VERSION",
        "MODEL_VERSION",
        "WORKFLOW_VERSION",
        "MODULE_VERSION",
        "PIPELINE_VERSION",
        "APP",
        "INPUT",
        "ANNOTATION",
        "CONCEPT",
        "RUNNER",
        "NODEPOOL",
        "COMPUTE_CLUSTER",
        "DEPLOYMENT",
        "ARTIFACT",
        "SECRET",
        "COLLECTOR",
        "LABEL_ORDER",
        "EVALUATION",
    ];
    let operations = ["IMPORT", "EXPORT", "SYNC", "COPY", "MIGRATION", "UPLOAD"];
    let states = ["IN_PROGRESS", "PENDING", "FAILED", "SUCCESS", "CANCELLED"];
    let mut names = vec!["DATASET_VERSION_IMPORT_IN_PROGRESS".to_owned()];
    for state in states {
        for operation in operations {
            for resource in resources {
                let name = format!("{resource}_{operation}_{state}");
                let declared = format!("  {name} = ");
                if names.len() < 100 && !names.contains(&name) && !table.contains(&declared) {
                    names.push(name);
                }
            }
        }
    }
    assert_eq!(names.len(), 100);
    names
}

#[test]
fn a_hundred_plausible_new_names_still_generate() {
    let table = generate_edited_table("new-names", |t| {
        let names = plausible_new_names(&t);
        let mut added = String::new();
        for (i, name) in names.iter().enumerate() {
            let number = 97_000 + i;
            assert!(!t.contains(&format!(" = {number} ")), "{number} is taken");
            added.push_str(&format!(
                "  {name} = {number} [(clarifai.status.meta.code) = {{\n    description: \"new\"\n    category: \"Generic\"\n    outcome: FAILURE\n    grpc: INTERNAL\n  }}];\n"
            ));
        }
        t.replacen("  SUCCESS = 10000 [", &format!("{added}  SUCCESS = 10000 ["), 1)
    })
    .unwrap();
    assert!(table.contains("name: \"DATASET_VERSION_IMPORT_IN_PROGRESS\""));
    assert!(table.contains("name: \"DATASET_VERSION_EXPORT_IN_PROGRESS\""));
}

#[test]
fn facts_on_a_value_after_the_first_of_its_number_are_refused_by_name() {
    // prost keeps a number's first name, and the crate prints prost's: the facts go there.
    let err = generate_edited("facts-second", |t| {
        t.replacen(
            "  SUCCESS = 10000 [",
            "  SUCCESS_FIRST = 10000;\n  SUCCESS = 10000 [",
            1,
        )
    })
    .unwrap_err();
    assert!(err.contains("SUCCESS (10000)"), "{err}");
    assert!(err.contains("SUCCESS_FIRST comes first"), "{err}");
}

#[test]
fn retryable_on_every_method_without_retryable_is_refused_by_name() {
    let err = generate_edited("every-method", |t| {
        replace_after(
            &t,
            "CONN_KEY_INVALID = 11008",
            "outcome: FAILURE",
            "outcome: FAILURE\n    retryable_on_every_method: true",
        )
    })
    .unwrap_err();
    assert!(err.contains("CONN_KEY_INVALID (11008)"), "{err}");
    assert!(err.contains("not retryable"), "{err}");
}

const STATUS_PROTO: &str = "clarifai/api/status/status.proto";

/// Adds `field` to the `Status` message of a copy of `status.proto`.
fn with_status_field(field: &str) -> impl FnOnce(String) -> String + '_ {
    move |t| {
        let at = t.find("message Status {").expect("message Status");
        let end = at + t[at..].find("\n}").expect("its end");
        let mut out = t.clone();
        out.insert_str(end, &format!("\n  {field}"));
        out
    }
}

#[test]
fn a_public_field_the_proto_adds_travels_everywhere() {
    let table = generate_edited_file(
        "new-field",
        STATUS_PROTO,
        with_status_field("string support_url = 12;"),
    )
    .unwrap();
    // Carried in ErrorInfo metadata and REST JSON, read back by name, kept by public copies.
    assert!(
        table.contains(r#"("support_url", "supportUrl", PublicValue::Text(&self.support_url)),"#)
    );
    assert!(table.contains(r#""support_url" | "supportUrl" => {"#));
    assert!(table.contains("support_url: self.support_url.clone(),"));
}

#[test]
fn a_public_field_of_a_type_the_contract_cannot_carry_is_refused_by_name() {
    let err = generate_edited_file(
        "list-field",
        STATUS_PROTO,
        with_status_field("repeated string tags = 12;"),
    )
    .unwrap_err();
    assert!(err.contains("Status.tags"), "{err}");
    // Private, it is fine: it never travels.
    generate_edited_file(
        "private-list-field",
        STATUS_PROTO,
        with_status_field("repeated string tags = 12 [(clarifai.status.meta.private) = true];"),
    )
    .unwrap();
}

/// A release's `status_code.proto` descriptor: the table's values as `values` (number, name,
/// deprecated) lists them.
fn release_descriptor(values: &[(i32, &str, bool)]) -> prost_types::FileDescriptorProto {
    use prost_types::{EnumDescriptorProto, EnumValueDescriptorProto, EnumValueOptions};
    prost_types::FileDescriptorProto {
        name: Some("proto/clarifai/api/status/status_code.proto".into()),
        package: Some("clarifai.api.status".into()),
        enum_type: vec![EnumDescriptorProto {
            name: Some("StatusCode".into()),
            value: values
                .iter()
                .map(|(number, name, deprecated)| EnumValueDescriptorProto {
                    name: Some((*name).into()),
                    number: Some(*number),
                    options: deprecated.then(|| EnumValueOptions {
                        deprecated: Some(true),
                        ..Default::default()
                    }),
                })
                .collect(),
            ..Default::default()
        }],
        syntax: Some("proto3".into()),
        ..Default::default()
    }
}

/// The table's codes, from the repository's protos.
fn table_codes() -> Vec<codegen::upstream::TableCode> {
    let dirs: Vec<PathBuf> = codegen::PROTO_DIRS.iter().map(|d| root().join(d)).collect();
    let dirs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    codegen::table(&dirs).unwrap()
}

/// A release like the table's codes, less 10001, plus a new number (with an alias) and a new
/// name of 11008, as a `FileDescriptorSet` file.
fn changed_release(dir: &Path) -> PathBuf {
    use prost::Message as _;
    let codes = table_codes();
    let mut values: Vec<(i32, String, bool)> = codes
        .iter()
        .filter(|c| c.removed_in.is_none() && c.number != 10001)
        .map(|c| (c.number, c.names[0].clone(), false))
        .collect();
    values.push((21399, "MODEL_SOMETHING_NEW".into(), false));
    values.push((21399, "MODEL_SOMETHING_NEWER".into(), true));
    values.push((11008, "CONN_KEY_RENAMED".into(), false));
    let values: Vec<(i32, &str, bool)> = values
        .iter()
        .map(|(n, s, d)| (*n, s.as_str(), *d))
        .collect();
    let set = prost_types::FileDescriptorSet {
        file: vec![release_descriptor(&values)],
    };
    let path = dir.join("release.fds");
    fs::write(&path, set.encode_to_vec()).unwrap();
    path
}

#[test]
fn diff_reports_new_numbers_new_names_and_what_the_release_lacks() {
    let dir = scratch("diff");
    let release = codegen::upstream::read_enum(&changed_release(&dir)).unwrap();
    let diff = codegen::upstream::Diff::new(&release, &table_codes());
    assert_eq!(
        diff.new_numbers.keys().copied().collect::<Vec<_>>(),
        [21399]
    );
    let names: Vec<(i32, &str)> = diff
        .new_names
        .iter()
        .map(|(v, _)| (v.number, v.name.as_str()))
        .collect();
    assert_eq!(names, [(11008, "CONN_KEY_RENAMED")]);
    assert!(
        diff.missing_numbers.iter().any(|c| c.number == 10001),
        "10001 is reported missing"
    );
    assert!(
        !diff.missing_numbers.iter().any(|c| c.removed_in.is_some()),
        "codes marked removed are not reported again"
    );
    let report = diff.report();
    assert!(report.contains("21399 MODEL_SOMETHING_NEW\n"), "{report}");
    assert!(
        report.contains("21399 MODEL_SOMETHING_NEWER (deprecated)"),
        "{report}"
    );
    assert!(
        report.contains("11008 CONN_KEY_RENAMED (the table prints CONN_KEY_INVALID)"),
        "{report}"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn diff_add_writes_the_new_codes_and_the_generator_refuses_them_until_reviewed() {
    let dir = scratch("diff-add");
    let release = codegen::upstream::read_enum(&changed_release(&dir)).unwrap();
    let diff = codegen::upstream::Diff::new(&release, &table_codes());
    let mut added = String::new();
    let err = generate_edited("diff-add-refused", |t| {
        added = codegen::upstream::add_to_proto(&t, &diff, "clarifai-grpc 99.0.0").unwrap();
        added.clone()
    })
    .unwrap_err();
    assert!(err.contains("facts not reviewed"), "{err}");
    assert!(err.contains("MODEL_SOMETHING_NEW (21399)"), "{err}");
    // In number order, facts from its family's nearest code, the alias after it.
    let at = added.find("  MODEL_SOMETHING_NEW = 21399").unwrap();
    assert!(added[..at].rfind("= 21354").is_some());
    assert!(added[at..].contains("    category: \"Model Deployment\"\n"));
    assert!(added[at..].contains("  MODEL_SOMETHING_NEWER = 21399 [deprecated = true];"));
    let next = added[at..].find("= 21400").map_or(usize::MAX, |n| n + at);
    assert!(added.find("  MODEL_SOMETHING_NEWER = 21399").unwrap() < next);
    assert!(added.contains("  CONN_KEY_RENAMED = 11008;"));

    // Reviewed (the mark deleted), the table generates, with both new names.
    let reviewed = added.replace("    unreviewed: true\n", "");
    let table = generate_edited_table("diff-add-reviewed", |_| reviewed).unwrap();
    assert!(
        table.contains("StatusCode::ModelSomethingNew"),
        "the new code is generated"
    );
    assert!(
        table.contains("\"CONN_KEY_RENAMED\" => Some((StatusCode::ConnKeyInvalid, false)),"),
        "the new alias is in the alias match"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_wheel_is_read_from_the_descriptor_its_module_embeds() {
    use prost::Message as _;
    use std::io::Write as _;
    let descriptor = release_descriptor(&[
        (0, "ZERO", false),
        (10000, "SUCCESS", false),
        (11001, "CONN_TOKEN_INVALID", true),
    ])
    .encode_to_vec();
    // As protoc's Python generator writes it: printable ASCII as is, `\'` and `\\` escaped,
    // the rest as `\xHH` (and older protoc's octal `\NNN`, tried on the first bytes).
    let mut literal = String::new();
    for (i, b) in descriptor.iter().enumerate() {
        match b {
            b'\'' => literal.push_str("\\'"),
            b'\\' => literal.push_str("\\\\"),
            b'\n' => literal.push_str("\\n"),
            0x20..=0x7e => literal.push(char::from(*b)),
            _ if i < 8 => literal.push_str(&format!("\\{b:03o}")),
            _ => literal.push_str(&format!("\\x{b:02x}")),
        }
    }
    let module = format!(
        "from google.protobuf import descriptor_pool as _descriptor_pool\nDESCRIPTOR = _descriptor_pool.Default().AddSerializedFile(b'{literal}')\n"
    );
    let dir = scratch("wheel");
    let wheel = dir.join("clarifai_grpc-99.0.0-py3-none-any.whl");
    let mut zip = zip::ZipWriter::new(fs::File::create(&wheel).unwrap());
    let stored = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file(codegen::upstream::WHEEL_MODULE, stored)
        .unwrap();
    zip.write_all(module.as_bytes()).unwrap();
    zip.finish().unwrap();

    let values = codegen::upstream::read_enum(&wheel).unwrap();
    let read: Vec<(i32, &str, bool)> = values
        .iter()
        .map(|v| (v.number, v.name.as_str(), v.deprecated))
        .collect();
    assert_eq!(
        read,
        [
            (0, "ZERO", false),
            (10000, "SUCCESS", false),
            (11001, "CONN_TOKEN_INVALID", true)
        ]
    );
    let _ = fs::remove_dir_all(&dir);
}
