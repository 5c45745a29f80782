//! `cargo run -p clarifai-status-codegen [-- --check]`: regenerates the shipped generated code
//! of `clarifai-status` and `clarifai-status-testing` from the protos, or with `--check` only
//! says which shipped file differs from what the protos generate (exit status 1).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::{env, fs};

use clarifai_status_codegen::{generate, OUTPUTS, PROTO_DIRS};

fn main() -> ExitCode {
    let check = match env::args().nth(1).as_deref() {
        None => false,
        Some("--check") => true,
        Some(other) => {
            eprintln!("usage: clarifai-status-codegen [--check] (unknown argument {other:?})");
            return ExitCode::from(2);
        }
    };
    match run(check) {
        Ok(stale) if stale.is_empty() => ExitCode::SUCCESS,
        Ok(stale) => {
            for file in &stale {
                eprintln!("{} differs from what the protos generate", file.display());
            }
            eprintln!("run `cargo run -p clarifai-status-codegen` and commit the generated files");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Generates into a scratch folder, then writes (or, with `check`, lists) every shipped file
/// that differs. Returns the files that differ when checking, none otherwise.
fn run(check: bool) -> Result<Vec<PathBuf>, Box<dyn std::error::Error>> {
    // The package sits in `codegen/`, one below the repository's root.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("the generator is not inside the repository")?;
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
