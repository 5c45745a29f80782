//! The build script: tells dependents' build scripts where the crate's protos are
//! (`DEP_CLARIFAI_STATUS_PROTO_DIR`, read by `clarifai-status-build`).
//!
//! It generates nothing: the Rust side of the protos ships in `src/generated/`, written by the
//! generator (`cargo run -p clarifai-status-codegen`, in `codegen/`), so a dependent's build
//! compiles no code generator.

fn main() {
    // `links = "clarifai_status"`: dependents' build scripts read `DEP_CLARIFAI_STATUS_PROTO_DIR`.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo::metadata=proto_dir={manifest}/proto");
    println!("cargo::rerun-if-changed=build.rs");
}
