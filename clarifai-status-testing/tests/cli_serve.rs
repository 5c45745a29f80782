//! `clarifai-status serve` as a user runs it: the listening lines, real gRPC and HTTP answers,
//! and a clean stop on SIGTERM and SIGINT.
#![cfg(all(feature = "cli", unix))]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clarifai_status::grpc::ClarifaiStatusExt;
use clarifai_status::pb::Status;
use clarifai_status::StatusCode;
use clarifai_status_testing::pb::status_tester_client::StatusTesterClient;
use clarifai_status_testing::pb::RaiseRequest;

/// Starts `serve` on free ports and reads the addresses from its first lines.
fn start(http: bool) -> (Child, SocketAddr, Option<SocketAddr>) {
    start_with(http, &[])
}

/// As [`start`], with more arguments.
fn start_with(http: bool, args: &[&str]) -> (Child, SocketAddr, Option<SocketAddr>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_clarifai-status"));
    command.args(["serve", "--addr", "127.0.0.1:0"]).args(args);
    if http {
        command.args(["--http-addr", "127.0.0.1:0"]);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the binary starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = |prefix: &str| -> SocketAddr {
        let line = lines.next().expect("a line").expect("utf-8");
        let addr = line
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("{line:?} does not start with {prefix:?}"));
        addr.parse().expect("an ip:port")
    };
    let grpc = next("grpc listening on ");
    let http = http.then(|| next("http listening on "));
    (child, grpc, http)
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "serve did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn serve_answers_grpc_and_http_then_stops_on_sigterm() {
    let (mut child, grpc, http) = start(true);
    assert_ne!(grpc.port(), 0);

    let mut client = StatusTesterClient::connect(format!("http://{grpc}"))
        .await
        .unwrap();
    let error = client
        .raise(RaiseRequest {
            status: Some(Status {
                code: StatusCode::ConnKeyInvalid as i32,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::Unauthenticated);
    assert_eq!(error.clarifai_code(), StatusCode::ConnKeyInvalid);

    let http = http.unwrap();
    let response = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(http).unwrap();
        stream
            .write_all(b"GET /v2/raise/21354 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        text
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(response
        .to_ascii_lowercase()
        .contains("clarifai-status-code: 21354"));

    // The client's connection is still open: the server says goodbye and stops anyway.
    signal(&child, "TERM");
    let status = tokio::task::spawn_blocking(move || wait_exit(&mut child))
        .await
        .unwrap();
    assert!(status.success());
    drop(client);
}

#[test]
fn serve_without_http_prints_one_line_and_stops_on_sigint() {
    let (mut child, grpc, http) = start(false);
    assert!(http.is_none());
    assert!(TcpStream::connect(grpc).is_ok());
    signal(&child, "INT");
    assert!(wait_exit(&mut child).success());
}

#[test]
fn serve_on_a_taken_port_fails_with_a_message() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_clarifai-status"))
        .args(["serve", "--addr", &addr])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot listen"), "{stderr}");
}

/// A scenario file in a fresh temporary directory.
fn scenario_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("clarifai-status-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("scenario.json");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn serve_with_a_scenario_file_answers_its_rules() {
    let path = scenario_file(
        "good",
        r#"{"seed": 7, "rules": [{"code": "model_busy_please_retry", "fail_times": 1}]}"#,
    );
    let (mut child, _grpc, http) = start_with(true, &["--scenario", path.to_str().unwrap()]);
    let post = |http| {
        let mut stream = TcpStream::connect(http).unwrap();
        stream
            .write_all(b"POST /v2/models/m/outputs HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        text
    };
    let http = http.unwrap();
    let first = post(http);
    assert!(first.starts_with("HTTP/1.1 503"), "{first}");
    assert!(first.contains(r#""code":21354"#), "{first}");
    let second = post(http);
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
    signal(&child, "TERM");
    assert!(wait_exit(&mut child).success());
}

#[test]
fn serve_refuses_a_bad_scenario_file_naming_the_rule_and_field() {
    let path = scenario_file("bad", r#"{"rules": [{"code": 21354}, {"percent": 130}]}"#);
    let output = Command::new(env!("CARGO_BIN_EXE_clarifai-status"))
        .args(["serve", "--addr", "127.0.0.1:0", "--scenario"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty(), "nothing is served");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("rules[1].percent"), "{stderr}");

    let missing = path.with_file_name("missing.json");
    let output = Command::new(env!("CARGO_BIN_EXE_clarifai-status"))
        .args(["serve", "--addr", "127.0.0.1:0", "--scenario"])
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn serve_refuses_limits_that_would_leave_it_unusable() {
    for (flag, value) in [
        ("--max-connections", "0"),
        ("--handshake-timeout", "0"),
        ("--idle-timeout", "0"),
        ("--idle-timeout", "soon"),
        ("--max-concurrent-streams", "0"),
        ("--max-header-list-size", "10"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_clarifai-status"))
            .args(["serve", "--addr", "127.0.0.1:0", flag, value])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{flag} {value}");
        assert!(
            output.stdout.is_empty(),
            "{flag} {value}: nothing is served"
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(flag), "{flag} {value}: {stderr}");
    }
}

#[tokio::test]
async fn serve_takes_its_limits_from_flags() {
    let (mut child, grpc, _) = start_with(
        false,
        &[
            "--max-connections",
            "8",
            "--handshake-timeout",
            "1",
            "--idle-timeout",
            "5",
            "--max-concurrent-streams",
            "4",
            "--max-header-list-size",
            "4096",
        ],
    );
    // A silent connection is closed after the 1 s handshake timeout (that it is the flag and not
    // the default 10 s is timed exactly on the paused clock in testing_server.rs).
    let mut silent = TcpStream::connect(grpc).unwrap();
    // A bound on the wait, not on the server: the read ends at the server's close (EOF) or,
    // if the server never closed it, with a timeout error.
    silent
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 256];
    let end = loop {
        match silent.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(_) => {}
            Err(e) => break Err(e),
        }
    };
    let closed = start.elapsed();
    // Stopped before asserting: a failing test must not leave the server running.
    signal(&child, "TERM");
    assert!(wait_exit(&mut child).success());
    assert!(
        end.is_ok(),
        "the server never closed the silent connection: {end:?}"
    );
    assert!(
        closed >= Duration::from_millis(900),
        "closed after {closed:?}"
    );
}
