//! `cargo run -p clarifai-status-codegen [-- --check]`: regenerates the shipped generated code
//! of `clarifai-status` and `clarifai-status-testing` from the protos, or with `--check` only
//! says which shipped file differs from what the protos generate (exit status 1).
//!
//! `cargo run -p clarifai-status-codegen -- diff <clarifai_grpc-X.whl | descriptors.fds> [--add]`:
//! reports what differs between Clarifai's `StatusCode` enum in that release and the table; with
//! `--add`, adds the release's new numbers and names to `status_code.proto`, the new codes' facts
//! marked unreviewed (see the crate's docs for the release routine).
//!
//! `cargo run -p clarifai-status-codegen -- enum <clarifai_grpc-X.whl | descriptors.fds>`: prints
//! the release's enum, one `number<TAB>name<TAB>deprecated` line per value (for
//! `codegen/history.sh`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::{env, fs};

use clarifai_status_codegen::upstream::{self, Diff};
use clarifai_status_codegen::{generate, table, BuildResult, OUTPUTS, PROTO_DIRS, TABLE_PROTO};

const USAGE: &str = "usage: clarifai-status-codegen [--check]
       clarifai-status-codegen diff <clarifai_grpc-X.whl|descriptors.fds> [--add]
       clarifai-status-codegen enum <clarifai_grpc-X.whl|descriptors.fds>";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        [] => generated(false),
        ["--check"] => generated(true),
        ["diff", file] => diff(Path::new(file), false),
        ["diff", file, "--add"] | ["diff", "--add", file] => diff(Path::new(file), true),
        ["enum", file] => print_enum(Path::new(file)),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {e}");
        ExitCode::FAILURE
    })
}

/// The repository's root: the package sits in `codegen/`, one below it.
fn root() -> BuildResult<&'static Path> {
    Ok(Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("the generator is not inside the repository")?)
}

fn generated(check: bool) -> BuildResult<ExitCode> {
    let stale = run(check)?;
    if stale.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for file in &stale {
        eprintln!("{} differs from what the protos generate", file.display());
    }
    eprintln!("run `cargo run -p clarifai-status-codegen` and commit the generated files");
    Ok(ExitCode::FAILURE)
}

/// The release's name from a wheel's file name (`clarifai_grpc-12.6.0-py3-none-any.whl` gives
/// `clarifai-grpc 12.6.0`), or the file's name.
fn release_name(file: &Path) -> String {
    let name = file
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    match name.strip_prefix("clarifai_grpc-") {
        Some(rest) => format!("clarifai-grpc {}", rest.split('-').next().unwrap_or(rest)),
        None => name,
    }
}

fn diff(file: &Path, add: bool) -> BuildResult<ExitCode> {
    let root = root()?;
    let release = upstream::read_enum(file)?;
    let dirs: Vec<PathBuf> = PROTO_DIRS.iter().map(|d| root.join(d)).collect();
    let dirs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    let diff = Diff::new(&release, &table(&dirs)?);
    let name = release_name(file);
    println!("{name} ({} values) against the table", release.len());
    print!("{}", diff.report());
    if add && diff.has_new() {
        let proto = root.join("proto").join(TABLE_PROTO);
        let text = fs::read_to_string(&proto)?;
        fs::write(&proto, upstream::add_to_proto(&text, &diff, &name)?)?;
        println!(
            "added {} numbers and {} names to {}: review each code marked `unreviewed: true`, then regenerate",
            diff.new_numbers.len(),
            diff.new_names.len(),
            proto.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_enum(file: &Path) -> BuildResult<ExitCode> {
    for v in upstream::read_enum(file)? {
        let dep = if v.deprecated { "deprecated" } else { "" };
        println!("{}\t{}\t{dep}", v.number, v.name);
    }
    Ok(ExitCode::SUCCESS)
}

/// Generates into a scratch folder, then writes (or, with `check`, lists) every shipped file
/// that differs. Returns the files that differ when checking, none otherwise.
fn run(check: bool) -> BuildResult<Vec<PathBuf>> {
    let root = root()?;
    let dirs: Vec<PathBuf> = PROTO_DIRS.iter().map(|d| root.join(d)).collect();
    let dirs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    let scratch = env::temp_dir().join(format!("clarifai-status-codegen-{}", std::process::id()));
    fs::create_dir_all(&scratch)?;
    let result = generate(&dirs, &scratch).and_then(|()| {
        let mut stale = Vec::new();
        for (file, shipped) in OUTPUTS {
            let fresh = fs::read_to_string(scratch.join(file))?;
            let target = root.join(shipped).join(file);
            if fs::read_to_string(&target).ok().as_deref() == Some(fresh.as_str()) {
                continue;
            }
            if check {
                stale.push(target);
            } else {
                fs::write(&target, fresh)?;
                println!("wrote {}", target.display());
            }
        }
        Ok(stale)
    });
    let _ = fs::remove_dir_all(&scratch);
    result
}
