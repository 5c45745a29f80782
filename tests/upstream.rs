//! The table against the Clarifai packages CI installs: the pinned clarifai-grpc
//! (`tests/interop/requirements.txt`) and the pinned clarifai-nodejs-grpc
//! (`tests/interop/node/package.json`). A new release pinned there with a code the table lacks
//! fails here, naming every missing number and name: run the generator's `diff` on that release
//! (see `codegen/README.md`).
//!
//! Ignored by a plain `cargo test`: they need the interpreter named by `CLARIFAI_STATUS_PYTHON`
//! and the node modules named by `CLARIFAI_STATUS_NODE_MODULES`. `.ci/run` installs both and
//! runs them with `--ignored`; run that way without the variables, they fail rather than passing
//! unrun.

use std::path::PathBuf;
use std::process::Command;

use clarifai_status::StatusCode;

const PYTHON_VAR: &str = "CLARIFAI_STATUS_PYTHON";
const NODE_MODULES_VAR: &str = "CLARIFAI_STATUS_NODE_MODULES";

/// Prints every value of the installed clarifai-grpc's enum, `number name` per line, from the
/// descriptor of its generated module.
const PYTHON_ENUM: &str = "
import clarifai_grpc
from clarifai_grpc.grpc.api.status import status_code_pb2
from importlib.metadata import version
print('version', version('clarifai-grpc'))
for value in status_code_pb2.DESCRIPTOR.enum_types_by_name['StatusCode'].values:
    print(value.number, value.name)
";

/// What `values` (number, name) of a package hold that the table lacks: numbers it does not
/// know, and names that do not parse to their number.
fn missing(values: &[(i32, String)]) -> Vec<String> {
    let mut missing = Vec::new();
    for (number, name) in values {
        if StatusCode::from_number(*number).is_none() {
            missing.push(format!("number {number} ({name})"));
        } else if StatusCode::from_name(name).map(StatusCode::number) != Some(*number) {
            missing.push(format!("name {name} of {number}"));
        }
    }
    missing
}

fn assert_none_missing(package: &str, values: &[(i32, String)]) {
    assert!(
        values.len() > 300,
        "{package}: only {} values read: the enum was not read whole",
        values.len()
    );
    let missing = missing(values);
    assert!(
        missing.is_empty(),
        "the table lacks what {package} publishes ({} missing): {}\nrun `cargo run -p clarifai-status-codegen -- diff <its wheel or descriptors> --add` and review (codegen/README.md)",
        missing.len(),
        missing.join(", ")
    );
}

#[test]
#[ignore = "needs CLARIFAI_STATUS_PYTHON with tests/interop/requirements.txt; .ci/run runs it"]
fn the_table_has_every_code_of_the_pinned_clarifai_grpc() {
    let python = std::env::var_os(PYTHON_VAR).unwrap_or_else(|| {
        panic!("{PYTHON_VAR} is not set: point it at a Python with tests/interop/requirements.txt installed (see .ci/run)")
    });
    let out = Command::new(&python)
        .args(["-c", PYTHON_ENUM])
        .output()
        .expect("run the Python of CLARIFAI_STATUS_PYTHON");
    assert!(
        out.status.success(),
        "reading clarifai-grpc's enum failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let version = lines.next().expect("a version line");
    let values: Vec<(i32, String)> = lines
        .map(|line| {
            let (number, name) = line.split_once(' ').expect("`number name`");
            (number.parse().expect("a number"), name.to_owned())
        })
        .collect();
    assert_none_missing(
        &format!("clarifai-grpc {}", version.trim_start_matches("version ")),
        &values,
    );
}

/// The values of the enum object a google-protobuf generated `status_code_pb.js` declares.
fn node_enum(js: &str) -> Vec<(i32, String)> {
    let body = js
        .split_once("proto.clarifai.api.status.StatusCode = {")
        .expect("the StatusCode object in status_code_pb.js")
        .1;
    let body = body
        .split_once("};")
        .expect("the end of the StatusCode object")
        .0;
    body.lines()
        .filter_map(|line| {
            let (name, number) = line.trim().trim_end_matches(',').split_once(": ")?;
            Some((number.parse().ok()?, name.to_owned()))
        })
        .collect()
}

#[test]
#[ignore = "needs CLARIFAI_STATUS_NODE_MODULES with tests/interop/node's packages; .ci/run runs it"]
fn the_table_has_every_code_of_the_pinned_clarifai_nodejs_grpc() {
    let modules = std::env::var_os(NODE_MODULES_VAR).unwrap_or_else(|| {
        panic!("{NODE_MODULES_VAR} is not set: point it at the node_modules of tests/interop/node (see .ci/run)")
    });
    let package = PathBuf::from(modules).join("clarifai-nodejs-grpc");
    let manifest = std::fs::read_to_string(package.join("package.json"))
        .expect("clarifai-nodejs-grpc's package.json");
    let version = manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("\"version\":"))
        .map_or("version unknown", |v| {
            v.trim().trim_end_matches(',').trim_matches('"')
        });
    let js = std::fs::read_to_string(package.join("proto/clarifai/api/status/status_code_pb.js"))
        .expect("clarifai-nodejs-grpc's status_code_pb.js");
    let values = node_enum(&js);
    assert_none_missing(&format!("clarifai-nodejs-grpc {version}"), &values);
}
