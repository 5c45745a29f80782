//! The build script: tells dependents' build scripts where the crate's protos are, and, for
//! maintainers only, regenerates the Rust side of the protos.
//!
//! The generated code ships in `src/generated/`, so a dependent's build compiles no code
//! generator. After changing a `.proto`, regenerate it with
//!
//! ```text
//! cargo build --features regenerate
//! ```
//!
//! which runs `codegen/` (protox and prost-build) into `src/generated/`. `tests/codegen.rs` fails
//! while the shipped files differ from what the protos generate.

#[cfg(feature = "regenerate")]
#[allow(dead_code)]
mod codegen;

fn main() {
    // `links = "clarifai_status"`: dependents' build scripts read `DEP_CLARIFAI_STATUS_PROTO_DIR`.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo::metadata=proto_dir={manifest}/proto");
    println!("cargo::rerun-if-changed=build.rs");
    #[cfg(feature = "regenerate")]
    {
        println!("cargo::rerun-if-changed=proto");
        println!("cargo::rerun-if-changed=codegen");
        println!("cargo::rerun-if-changed=src/table/name_hash.rs");
        let root = std::path::Path::new(&manifest);
        if let Err(e) = codegen::generate(&root.join("proto"), &root.join("src/generated")) {
            panic!("regenerating src/generated failed: {e}");
        }
    }
}
