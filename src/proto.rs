//! The code prost generates from the protos (`codegen/`, `cargo run -p clarifai-status-codegen`),
//! shipped in `src/generated`. Private: [`pb`](crate::pb) re-exports the messages, the crate root
//! the [`StatusCode`](crate::StatusCode) enum, each from one public path.

// Modules nest as the proto packages do: prost refers across packages by relative paths.
#[allow(missing_docs, clippy::all, clippy::pedantic, unreachable_pub)]
pub(crate) mod clarifai {
    pub(crate) mod api {
        pub(crate) mod status {
            include!("generated/clarifai.api.status.rs");
        }
    }
}

#[allow(missing_docs, clippy::all, clippy::pedantic, unreachable_pub)]
pub(crate) mod google {
    pub(crate) mod rpc {
        include!("generated/google.rpc.rs");
    }
}
