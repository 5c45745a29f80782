//! Interop with real grpcio: the Python client in `tests/interop/` reads the errors of the status
//! test server, started here in-process on 127.0.0.1.
//!
//! Ignored by a plain `cargo test`: it needs the interpreter named by `CLARIFAI_STATUS_PYTHON`,
//! with the packages of `tests/interop/requirements.txt`. `.ci/run` installs them and runs it with
//! `--ignored`; run that way without the variable, it fails rather than passing unrun.

use std::path::Path;
use std::time::Duration;

use clarifai_status::{Code, Outcome, StatusCode};
use clarifai_status_testing::TestServer;

const PYTHON_VAR: &str = "CLARIFAI_STATUS_PYTHON";

/// A hang guard, not a timing check: the child is killed if it has not exited by then. Its own
/// work takes under a minute of CPU, several times that in wall time on a machine whose cores
/// are busy with other work (a loaded `.ci/run` overran 120 s).
const HANG_GUARD: Duration = Duration::from_secs(600);

#[tokio::test]
#[ignore = "needs CLARIFAI_STATUS_PYTHON with tests/interop/requirements.txt; .ci/run runs it"]
async fn python_grpcio_reads_the_wire_contract() {
    let python = std::env::var_os(PYTHON_VAR).unwrap_or_else(|| {
        panic!("{PYTHON_VAR} is not set: point it at a Python with tests/interop/requirements.txt installed (see .ci/run)")
    });

    let bound = TestServer::new()
        .bind("127.0.0.1:0".parse().unwrap(), None)
        .unwrap();
    let target = bound.grpc_addr().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(bound.serve_with_shutdown(async {
        stopped.await.ok();
    }));

    // Every code of the table (and one it does not know), with what grpcio must read for it.
    let codes: Vec<serde_json::Value> = StatusCode::all()
        .map(Code::from)
        .chain([Code::new(12345)])
        .map(|code| {
            serde_json::json!({
                "code": code.number(),
                "name": code.name(),
                "grpc": i32::from(code.grpc_code()),
                "failure": code.outcome() == Outcome::Failure,
            })
        })
        .collect();
    let codes_file = std::env::temp_dir().join(format!(
        "clarifai-status-interop-codes-{}.json",
        std::process::id()
    ));
    std::fs::write(&codes_file, serde_json::to_vec(&codes).unwrap()).unwrap();

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut command = tokio::process::Command::new(&python);
    command
        .arg(root.join("tests/interop/client.py"))
        .arg("--target")
        .arg(&target)
        .arg("--proto-dir")
        .arg(root.join("proto"))
        .arg("--codes")
        .arg(&codes_file)
        .kill_on_drop(true);
    let output = tokio::time::timeout(HANG_GUARD, command.output())
        .await
        .expect("the Python client exits within the hang guard")
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", Path::new(&python).display()));
    let _ = std::fs::remove_file(&codes_file);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();

    assert!(
        output.status.success(),
        "the Python client failed ({}); its output is above",
        output.status
    );
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(
        summary.starts_with("interop: ") && summary.ends_with(" passed, 0 failed"),
        "unexpected summary: {summary}"
    );
}
