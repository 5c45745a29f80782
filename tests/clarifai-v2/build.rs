//! Compiles Clarifai's V2 service from the FileDescriptorSet named by `CLARIFAI_V2_DESCRIPTORS`
//! (written by `tests/interop/v2_descriptors.py` from the clarifai-grpc package), clients and
//! servers (the servers with default stubs),
//! then the package's own `protos/` with `compile_protos`, and checks that Cargo hands a
//! dependent's build script the crate's proto directory.

use std::env;
use std::path::Path;

const DESCRIPTORS: &str = "CLARIFAI_V2_DESCRIPTORS";

fn main() -> std::io::Result<()> {
    println!("cargo:rerun-if-env-changed={DESCRIPTORS}");
    let Some(path) = env::var_os(DESCRIPTORS) else {
        eprintln!(
            "error: {DESCRIPTORS} is not set: point it at the FileDescriptorSet of Clarifai's V2 \
             service, written by `python tests/interop/v2_descriptors.py OUT.fds` (needs \
             clarifai-grpc, see tests/interop/requirements.txt)"
        );
        std::process::exit(1);
    };
    if !Path::new(&path).is_absolute() {
        // A build script runs in its package's directory, not where cargo was started.
        eprintln!(
            "error: {DESCRIPTORS} must be an absolute path: {}",
            Path::new(&path).display()
        );
        std::process::exit(1);
    }
    // `links = "clarifai_status"` + `cargo::metadata=proto_dir=...` in the crate's build script.
    let proto_dir = env::var_os("DEP_CLARIFAI_STATUS_PROTO_DIR")
        .expect("Cargo sets DEP_CLARIFAI_STATUS_PROTO_DIR for clarifai-status's dependents");
    let status_proto = Path::new(&proto_dir).join("clarifai/api/status/status.proto");
    assert!(
        status_proto.is_file(),
        "{} is missing",
        status_proto.display()
    );
    assert_eq!(
        Some(Path::new(&proto_dir)),
        clarifai_status_build::proto_dir().as_deref()
    );

    // Clients and servers. The builder turns tonic's default stubs on, so a server implements
    // only the methods it serves (`examples/v2_server.rs`): the others answer UNIMPLEMENTED.
    clarifai_status_build::Builder::new()
        .prost(|config| {
            // One file that nests every package's module as the packages nest.
            config.include_file("clarifai_v2.rs");
        })
        .compile_fds_file(path)?;

    // A dependent's own protos importing the crate's `clarifai/api/status/status.proto`.
    clarifai_status_build::Builder::new()
        .services(|services| services.build_server(false))
        .prost(|config| {
            config.include_file("own.rs");
        })
        .compile_protos(&["protos/own/v1/own.proto"], &["protos"])
}
