//! Compiling Clarifai's protos (or your own) against `clarifai-status`'s types, from a
//! `build.rs`.
//!
//! Every Clarifai response has `clarifai.api.status.Status status = 1`. Compiled by plain
//! prost-build, that field gets a `Status` type of your crate's own, which none of
//! `clarifai-status`'s functions accept. [`Builder`] compiles the protos with prost-build and
//! tonic-prost-build, configured so that the generated code uses `clarifai-status`'s types:
//!
//! - `extern_path(".clarifai.api.status", "::clarifai_status::pb")`: `Status`, `RedirectInfo`
//!   and `BaseResponse` are `clarifai_status::pb`'s, and
//!   `extern_path(".clarifai.api.status.StatusCode", "::clarifai_status::StatusCode")`: the
//!   status code enum (a field such as `ListStatusCodesRequest`'s) is the crate's own;
//! - an `impl` of `clarifai_status::response::HasStatus` for every generated message whose
//!   field 1 is a `clarifai.api.status.Status` (nested messages included), so responses go
//!   straight into `clarifai_status::response::into_result`, `retry::call` and
//!   `retry::poll`.
//!
//! It reads `.proto` files (compiled with protox: no `protoc` needed) or a ready
//! `FileDescriptorSet` (what `protoc --include_imports --descriptor_set_out` writes, or a
//! script reading clarifai-grpc's compiled descriptors, as the repository's CI does).
//!
//! List this crate under `[build-dependencies]`, as prost-build and tonic-prost-build are. The
//! generated code needs `clarifai-status` as a normal dependency (it names
//! `::clarifai_status::pb`; that dependency also hands your build script the crate's protos, see
//! [`proto_dir`]), and `prost-types` where the protos use Google's well-known types (Clarifai's
//! do):
//!
//! ```toml
//! [dependencies]
//! clarifai-status = "0.1"
//! prost = "0.14"
//! prost-types = "0.14"
//! tonic = "0.14"
//! tonic-prost = "0.14"
//!
//! [build-dependencies]
//! clarifai-status-build = "0.1"
//! ```
//!
//! # Examples
//!
//! A `build.rs` compiling Clarifai's V2 service from `.proto` files (Clarifai's, which import
//! `proto/clarifai/...` from their repository's root, and googleapis' `google/api/*.proto`),
//! clients only, with one file nesting every package's module:
//!
//! ```no_run
//! fn main() -> std::io::Result<()> {
//!     clarifai_status_build::Builder::new()
//!         .services(|services| services.build_server(false))
//!         .prost(|config| {
//!             config.include_file("clarifai.rs");
//!         })
//!         .compile_protos(&["proto/clarifai/api/service.proto"], &["clarifai-protos", "googleapis"])
//! }
//! ```
//!
//! and in the crate, `include!(concat!(env!("OUT_DIR"), "/clarifai.rs"));`: the client is then
//! `clarifai::api::v2_client::V2Client`, and every response implements `HasStatus`. A whole
//! working package is `tests/clarifai-v2/` in the repository.
//!
//! For prost-build or tonic-prost-build used directly, the extern path is
//! [`STATUS_PROTO_PACKAGE`] → [`STATUS_RUST_PATH`], and `clarifai_status::impl_has_status!` implements
//! `HasStatus` by hand.
//!
//! # From Clarifai's descriptors to a V2 server and client
//!
//! The whole path, as `tests/clarifai-v2/` in the repository runs it (its `build.rs`, its
//! `examples/v2_server.rs`, and its `tests/v2_client.rs` and `tests/v2_server.rs`).
//!
//! **1. The descriptor set.** The `clarifai-grpc` Python package ships no `.proto` files, but its
//! compiled descriptors describe the whole V2 service; the repository's
//! `tests/interop/v2_descriptors.py` writes them out as a `FileDescriptorSet` (imports
//! included). Or compile a checkout of Clarifai's protos with [`Builder::compile_protos`].
//!
//! ```text
//! pip install clarifai-grpc==12.6.0
//! python tests/interop/v2_descriptors.py $PWD/clarifai-v2.fds   # 17 files, V2 with 273 methods
//! ```
//!
//! **2. The build script.** Clients and servers (the defaults). Servers get **default stubs**
//! ([`Builder::new`]): a server implements only the methods it serves, and every other method
//! answers `UNIMPLEMENTED`, which `StatusLayer` stamps `NOT_IMPLEMENTED` (10040) and
//! `ErrorToInBodyLayer` answers in-body as 10040. Without them, the first build fails with E0046
//! listing all 273 methods.
//!
//! ```no_run
//! // build.rs (dependencies: clarifai-status with features `server` and `retry`, prost,
//! // prost-types, tonic, tonic-prost; build-dependency: clarifai-status-build)
//! fn main() -> std::io::Result<()> {
//!     clarifai_status_build::Builder::new()
//!         .prost(|config| {
//!             config.include_file("clarifai_v2.rs");
//!         })
//!         .compile_fds_file(concat!(env!("CARGO_MANIFEST_DIR"), "/clarifai-v2.fds"))
//! }
//! ```
//!
//! and in `src/lib.rs`, `include!(concat!(env!("OUT_DIR"), "/clarifai_v2.rs"));`: the service is
//! `clarifai::api::v2_server::{V2, V2Server}`, the client `clarifai::api::v2_client::V2Client`.
//!
//! **3. The server.** Implement the methods you serve; return `Err(tonic::Status)` as usual
//! (`tonic::Status::from(StatusCode::ModelBusyPleaseRetry)` carries a Clarifai code). Behind
//! `ErrorToInBodyLayer`, outside `StatusLayer`, every error reaches Clarifai's clients in-body, the
//! way they retry it (the Python SDK retries an in-body busy model or throttle, and raises at
//! once on a gRPC error):
//!
//! ```ignore
//! use clarifai::api::v2_server::{V2, V2Server};
//! use clarifai_status::server::{ApiKeyAuth, StaticKeys, error_to_in_body::ErrorToInBodyLayer, status::StatusLayer};
//!
//! struct MyV2;
//!
//! #[tonic::async_trait]
//! impl V2 for MyV2 {
//!     async fn post_model_outputs(
//!         &self,
//!         request: tonic::Request<PostModelOutputsRequest>,
//!     ) -> Result<tonic::Response<MultiOutputResponse>, tonic::Status> {
//!         Err(tonic::Status::from(clarifai_status::StatusCode::ModelBusyPleaseRetry))
//!     }
//!     // GetModel, ListApps, ...: the other methods answer UNIMPLEMENTED.
//! }
//!
//! // The service's type: InterceptedService<V2Server<MyV2>, ApiKeyAuth<StaticKeys>>.
//! let service = V2Server::with_interceptor(MyV2, ApiKeyAuth::new(StaticKeys::new(["s3cret"])));
//! tonic::transport::Server::builder()
//!     .layer(ErrorToInBodyLayer::new().only_services(["clarifai.api.V2"])) // outside
//!     .layer(StatusLayer::new())                                          // inside
//!     .add_service(service)
//!     .serve("127.0.0.1:50051".parse()?)
//!     .await?;
//! ```
//!
//! **4. The client.** `RetryLayer` on the channel retries gRPC errors *and* Clarifai's in-body
//! answers (a busy model, a throttle) of every call, reading the status from the first message
//! of the response; no `retry::call` around each call. `AddApiKey` sends the key:
//!
//! ```ignore
//! use clarifai::api::v2_client::V2Client;
//! use clarifai_status::client::AddApiKey;
//! use clarifai_status::retry::{Policy, Retry, RetryLayer};
//! use tonic::service::interceptor::InterceptedService;
//! use tonic::transport::Channel;
//!
//! // The client's type, to name in a struct field.
//! type Client = V2Client<InterceptedService<Retry<Channel>, AddApiKey>>;
//!
//! let channel = Channel::from_static("http://127.0.0.1:50051").connect().await?;
//! let channel = tower::ServiceBuilder::new()
//!     .layer(RetryLayer::new(Policy::new()))
//!     .service(channel);
//! let mut client: Client = V2Client::with_interceptor(channel, AddApiKey::new("s3cret")?);
//! // Busy twice, then answered: three calls on the wire, one answer here.
//! let response = client.post_model_outputs(request).await?;
//! // An in-body failure the policy does not retry stays an OK response: make it an error.
//! let response = clarifai_status::response::into_result(response.into_inner())?;
//! ```
//!
//! Clarifai's Python SDK points at the server with `base_url="http://127.0.0.1:50051"` and
//! `pat="s3cret"`; the repository's `.ci/run` does so against `examples/v2_server.rs`.

#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::env;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use heck::{ToSnakeCase, ToUpperCamelCase};
use prost::Message as _;
use prost_build::{Service, ServiceGenerator};
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FileDescriptorProto, FileDescriptorSet};

/// The proto package of Clarifai's `Status` (with a leading dot, as prost-build's
/// `extern_path` takes it).
pub const STATUS_PROTO_PACKAGE: &str = ".clarifai.api.status";

/// The Rust path the crate's messages of [`STATUS_PROTO_PACKAGE`] have in a dependent.
pub const STATUS_RUST_PATH: &str = "::clarifai_status::pb";

const STATUS_MESSAGE: &str = ".clarifai.api.status.Status";

/// Clarifai's status code enum, which `clarifai_status` has at its root, not in `pb`.
const STATUS_CODE_ENUM: &str = ".clarifai.api.status.StatusCode";
const STATUS_CODE_RUST_PATH: &str = "::clarifai_status::StatusCode";

/// The environment variable that holds the directory of `clarifai-status`'s own `.proto` files.
///
/// `clarifai-status` declares `links = "clarifai_status"`, so Cargo sets it for the build
/// script of every package that lists `clarifai-status` under `[dependencies]`, which a
/// package compiling Clarifai's protos with this crate does anyway (the generated code names
/// `::clarifai_status::pb`).
pub const PROTO_DIR_VAR: &str = "DEP_CLARIFAI_STATUS_PROTO_DIR";

/// The directory of `clarifai-status`'s own `.proto` files (`clarifai/api/status/status.proto`,
/// `status_code.proto`, `google/rpc/...`), to import from your own protos: the value of
/// [`PROTO_DIR_VAR`], which Cargo sets in the build script of a package depending on
/// `clarifai-status`; `None` elsewhere.
///
/// [`Builder::compile_protos`] searches it after your include directories.
///
/// # Examples
///
/// ```
/// // In a build script of a package depending on clarifai-status, this is its `proto/`.
/// match clarifai_status_build::proto_dir() {
///     Some(dir) => assert!(dir.join("clarifai/api/status/status.proto").is_file()),
///     None => assert!(std::env::var_os(clarifai_status_build::PROTO_DIR_VAR).is_none()),
/// }
/// ```
pub fn proto_dir() -> Option<PathBuf> {
    env::var_os(PROTO_DIR_VAR).map(PathBuf::from)
}

/// Compiles `.proto` files with [`Builder::new`]'s settings: tonic clients and servers,
/// the crate's `pb` types, `HasStatus` for every response.
///
/// # Errors
///
/// As [`Builder::compile_protos`].
///
/// # Examples
///
/// ```no_run
/// // build.rs
/// fn main() -> std::io::Result<()> {
///     clarifai_status_build::compile_protos(&["proto/clarifai/api/service.proto"], &["."])
/// }
/// ```
pub fn compile_protos(
    protos: &[impl AsRef<Path>],
    includes: &[impl AsRef<Path>],
) -> io::Result<()> {
    Builder::new().compile_protos(protos, includes)
}

/// Compiles a serialized `FileDescriptorSet` file with [`Builder::new`]'s settings.
///
/// # Errors
///
/// As [`Builder::compile_fds_file`].
///
/// # Examples
///
/// ```no_run
/// // build.rs
/// fn main() -> std::io::Result<()> {
///     clarifai_status_build::compile_fds_file("clarifai-v2.fds")
/// }
/// ```
pub fn compile_fds_file(path: impl AsRef<Path>) -> io::Result<()> {
    Builder::new().compile_fds_file(path)
}

/// Compiles protos for a dependent's `build.rs`, against the crate's types.
///
/// Messages are generated by a [`prost_build::Config`] (reach it with [`Builder::prost`]) and
/// services by tonic-prost-build (reach its builder with [`Builder::services`]), with
/// [`STATUS_PROTO_PACKAGE`] mapped to [`STATUS_RUST_PATH`] and `HasStatus` implemented for every
/// message whose field 1 is a non-repeated `clarifai.api.status.Status` outside a `oneof`.
///
/// The generated files go where prost-build puts them: `OUT_DIR`, one file per package.
///
/// # Examples
///
/// ```no_run
/// // build.rs
/// fn main() -> std::io::Result<()> {
///     clarifai_status_build::Builder::new()
///         .services(|services| services.build_server(false).build_transport(true))
///         .prost(|config| {
///             config.bytes(["."]);
///         })
///         .compile_fds_file(std::env::var("CLARIFAI_V2_DESCRIPTORS").unwrap())
/// }
/// ```
#[derive(Debug)]
pub struct Builder {
    prost: prost_build::Config,
    services: Option<tonic_prost_build::Builder>,
    extern_paths: Vec<String>,
}

impl Default for Builder {
    /// As [`Builder::new`].
    fn default() -> Builder {
        Builder::new()
    }
}

impl Builder {
    /// A builder with prost-build's defaults, tonic-prost-build's (clients and servers, with
    /// transport) but with **default stubs** on, and the crate's `pb` for
    /// `clarifai.api.status`.
    ///
    /// Default stubs (tonic-prost-build's `generate_default_stubs(true)`) give every method of a
    /// generated server trait a body answering `Err(tonic::Status::unimplemented(..))`: a V2
    /// server implements the methods it serves, not all 273 of Clarifai's (without them the first
    /// build fails with E0046, listing every method). An unimplemented method then answers gRPC
    /// `UNIMPLEMENTED`, which `clarifai_status::server::status::StatusLayer` stamps `NOT_IMPLEMENTED`
    /// (10040) and `ErrorToInBodyLayer` answers in-body as 10040. Clients are unchanged. To
    /// require every method, turn it off:
    /// `.services(|s| s.generate_default_stubs(false))`.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = clarifai_status_build::Builder::new();
    /// # let _ = builder;
    /// ```
    pub fn new() -> Builder {
        let mut prost = prost_build::Config::new();
        prost.extern_path(STATUS_PROTO_PACKAGE, STATUS_RUST_PATH);
        // The more specific path wins (prost-build looks the whole name up first).
        prost.extern_path(STATUS_CODE_ENUM, STATUS_CODE_RUST_PATH);
        Builder {
            prost,
            services: Some(services()),
            extern_paths: vec![STATUS_PROTO_PACKAGE.to_owned()],
        }
    }

    /// Changes the prost-build settings of the messages (`bytes`, `btree_map`, attributes,
    /// `out_dir`, `include_file`, ...).
    ///
    /// Add extern paths with [`Builder::extern_path`] instead, so that no `HasStatus` impl is
    /// generated for a type the generated code does not define. Do not set a service
    /// generator here: [`Builder::services`] is the service generator.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = clarifai_status_build::Builder::new().prost(|config| {
    ///     config.btree_map(["."]);
    /// });
    /// # let _ = builder;
    /// ```
    pub fn prost(mut self, configure: impl FnOnce(&mut prost_build::Config)) -> Builder {
        configure(&mut self.prost);
        self
    }

    /// Changes tonic-prost-build's settings of the services: `build_client`, `build_server`,
    /// `build_transport`, `generate_default_stubs` (on here, see [`Builder::new`]), client and
    /// server attributes, `codec_path`, ...
    ///
    /// Only the service settings of the tonic builder apply (it becomes prost-build's service
    /// generator): message settings such as `extern_path`, `bytes` or `out_dir` go through
    /// [`Builder::prost`] and [`Builder::extern_path`].
    ///
    /// # Examples
    ///
    /// ```
    /// // Clients only: less code to compile.
    /// let builder = clarifai_status_build::Builder::new().services(|s| s.build_server(false));
    /// # let _ = builder;
    /// ```
    pub fn services(
        mut self,
        configure: impl FnOnce(tonic_prost_build::Builder) -> tonic_prost_build::Builder,
    ) -> Builder {
        let services = self.services.take().unwrap_or_else(services);
        self.services = Some(configure(services));
        self
    }

    /// Generates no service code at all: messages only.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = clarifai_status_build::Builder::new().no_services();
    /// # let _ = builder;
    /// ```
    pub fn no_services(mut self) -> Builder {
        self.services = None;
        self
    }

    /// Maps a proto package or type to an existing Rust path instead of generating it (as
    /// prost-build's `extern_path`), and generates no `HasStatus` impl for what it covers.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = clarifai_status_build::Builder::new()
    ///     .extern_path(".clarifai.api.utils", "::my_crate::utils");
    /// # let _ = builder;
    /// ```
    pub fn extern_path(
        mut self,
        proto_path: impl Into<String>,
        rust_path: impl Into<String>,
    ) -> Builder {
        let proto_path = proto_path.into();
        self.prost.extern_path(proto_path.clone(), rust_path);
        self.extern_paths.push(proto_path);
        self
    }

    /// Compiles `.proto` files, and everything they import, with protox.
    ///
    /// Imports are searched in `includes`, then in [`proto_dir`] (so
    /// `import "clarifai/api/status/status.proto";` resolves without a copy; a protox error
    /// naming a missing `clarifai/api/status/...` file outside a build script that has
    /// [`PROTO_DIR_VAR`] says to list `clarifai-status` under `[dependencies]`). Prints
    /// `cargo:rerun-if-changed` for each file and include directory given.
    ///
    /// # Errors
    ///
    /// A file that is missing or does not compile (the error names it), or failing to write
    /// the generated code.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// // build.rs
    /// fn main() -> std::io::Result<()> {
    ///     clarifai_status_build::Builder::new().compile_protos(&["protos/my/api.proto"], &["protos"])
    /// }
    /// ```
    pub fn compile_protos(
        self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> io::Result<()> {
        let in_build_script = env::var_os("OUT_DIR").is_some();
        for path in protos
            .iter()
            .map(AsRef::as_ref)
            .chain(includes.iter().map(AsRef::as_ref))
        {
            if in_build_script {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
        let own = proto_dir();
        let includes = includes
            .iter()
            .map(AsRef::as_ref)
            .chain(own.as_deref())
            .collect::<Vec<_>>();
        let fds = protox::compile(protos, includes).map_err(|e| {
            let hint = if own.is_none() && e.to_string().contains("clarifai/api/status/") {
                format!(
                    " ({PROTO_DIR_VAR} is not set: list clarifai-status under [dependencies] of \
                     the package whose build script this is, so that Cargo points it at the \
                     crate's protos)"
                )
            } else {
                String::new()
            };
            io::Error::other(format!("{e}{hint}"))
        })?;
        self.compile_fds(fds)
    }

    /// Compiles a serialized `FileDescriptorSet` file, which must hold every file its files
    /// import (`protoc --include_imports`), and prints `cargo:rerun-if-changed` for it.
    ///
    /// # Errors
    ///
    /// The file cannot be read or is not a `FileDescriptorSet` (the error names the path), or
    /// failing to write the generated code.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// // build.rs
    /// fn main() -> std::io::Result<()> {
    ///     clarifai_status_build::Builder::new().compile_fds_file("clarifai-v2.fds")
    /// }
    /// ```
    pub fn compile_fds_file(self, path: impl AsRef<Path>) -> io::Result<()> {
        let path = path.as_ref();
        if env::var_os("OUT_DIR").is_some() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
        let bytes = std::fs::read(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        let fds = FileDescriptorSet::decode(bytes.as_slice()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: not a FileDescriptorSet: {e}", path.display()),
            )
        })?;
        self.compile_fds(fds)
    }

    /// Compiles a serialized `FileDescriptorSet` (as [`Builder::compile_fds`]).
    ///
    /// # Errors
    ///
    /// The bytes are not a `FileDescriptorSet`, or failing to write the generated code.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// // build.rs
    /// fn main() -> std::io::Result<()> {
    ///     let bytes = std::fs::read("clarifai-v2.fds")?;
    ///     clarifai_status_build::Builder::new().compile_fds_bytes(&bytes)
    /// }
    /// ```
    pub fn compile_fds_bytes(self, bytes: &[u8]) -> io::Result<()> {
        let fds = FileDescriptorSet::decode(bytes).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a FileDescriptorSet: {e}"),
            )
        })?;
        self.compile_fds(fds)
    }

    /// Compiles a `FileDescriptorSet`, which must hold every file its files import.
    ///
    /// # Errors
    ///
    /// prost-build's: a type it cannot resolve, or failing to write the generated code.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// // build.rs
    /// fn main() -> std::io::Result<()> {
    ///     let fds = protox::compile(["protos/my/api.proto"], ["protos"]).map_err(std::io::Error::other)?;
    ///     clarifai_status_build::Builder::new().compile_fds(fds)
    /// }
    /// ```
    pub fn compile_fds(self, fds: FileDescriptorSet) -> io::Result<()> {
        let Builder {
            mut prost,
            services,
            extern_paths,
        } = self;
        // prost-build calls the service generator's `finalize` once per file, in the set's
        // order, with the buffer of the file's package: each call appends that file's impls.
        let impls = fds
            .file
            .iter()
            .map(|file| has_status_impls(file, &extern_paths))
            .collect();
        prost.service_generator(Box::new(WithHasStatus {
            services: services.map(tonic_prost_build::Builder::service_generator),
            impls,
        }));
        prost.compile_fds(fds)
    }
}

/// tonic-prost-build's defaults, with default stubs (see [`Builder::new`]).
fn services() -> tonic_prost_build::Builder {
    tonic_prost_build::configure().generate_default_stubs(true)
}

/// tonic's service generator (if any), then each file's `HasStatus` impls.
struct WithHasStatus {
    services: Option<Box<dyn ServiceGenerator>>,
    impls: VecDeque<String>,
}

impl ServiceGenerator for WithHasStatus {
    fn generate(&mut self, service: Service, buf: &mut String) {
        if let Some(services) = &mut self.services {
            services.generate(service, buf);
        }
    }

    fn finalize(&mut self, buf: &mut String) {
        if let Some(services) = &mut self.services {
            services.finalize(buf);
        }
        if let Some(impls) = self.impls.pop_front() {
            buf.push_str(&impls);
        }
    }

    fn finalize_package(&mut self, package: &str, buf: &mut String) {
        if let Some(services) = &mut self.services {
            services.finalize_package(package, buf);
        }
    }
}

/// The `HasStatus` impls for the messages of one file, as Rust items placed in the file's
/// package module (paths relative to it, as prost-build names types).
fn has_status_impls(file: &FileDescriptorProto, extern_paths: &[String]) -> String {
    let package = file.package();
    let prefix = if package.is_empty() {
        String::new()
    } else {
        format!(".{package}")
    };
    let mut out = String::new();
    for message in &file.message_type {
        push_impls(message, &prefix, &[], extern_paths, &mut out);
    }
    out
}

fn push_impls(
    message: &DescriptorProto,
    parent: &str,
    modules: &[String],
    extern_paths: &[String],
    out: &mut String,
) {
    let fq_name = format!("{parent}.{}", message.name());
    if is_extern(&fq_name, extern_paths) {
        return;
    }
    if message.options.as_ref().and_then(|o| o.map_entry) == Some(true) {
        return;
    }
    if let Some(field) = message.field.iter().find(|f| f.number() == 1) {
        let in_oneof = field.oneof_index.is_some() && !field.proto3_optional();
        if field.r#type() == Type::Message
            && field.label() != Label::Repeated
            && !in_oneof
            && field.type_name() == STATUS_MESSAGE
        {
            let mut path = modules.join("::");
            if !path.is_empty() {
                path.push_str("::");
            }
            path.push_str(&rust_type_name(message.name()));
            // `Borrow` also reads a field boxed by prost-build's `boxed` setting.
            let _ = write!(
                out,
                "\nimpl ::clarifai_status::response::HasStatus for {path} {{\n    \
                 fn status(&self) -> ::core::option::Option<&::clarifai_status::pb::Status> {{\n        \
                 self.{}.as_ref().map(::core::borrow::Borrow::borrow)\n    }}\n}}\n",
                rust_field_name(field.name()),
            );
        }
    }
    let mut nested_modules = modules.to_vec();
    nested_modules.push(rust_field_name(message.name()));
    for nested in &message.nested_type {
        push_impls(nested, &fq_name, &nested_modules, extern_paths, out);
    }
}

/// Whether prost-build resolves `fq_name` through an extern path (the path itself or an
/// ancestor package or message of it).
fn is_extern(fq_name: &str, extern_paths: &[String]) -> bool {
    extern_paths.iter().any(|path| {
        fq_name
            .strip_prefix(path.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
    })
}

/// prost-build's name of a message type (`ident::to_upper_camel`).
fn rust_type_name(name: &str) -> String {
    sanitize(name.to_upper_camel_case())
}

/// prost-build's name of a field or module (`ident::to_snake`).
fn rust_field_name(name: &str) -> String {
    sanitize(name.to_snake_case())
}

/// prost-build's `ident::sanitize_identifier`: keywords become raw identifiers, or get a `_`
/// suffix where Rust has no raw form; a leading digit gets a `_` prefix.
fn sanitize(ident: String) -> String {
    match ident.as_str() {
        "as" | "break" | "const" | "continue" | "else" | "enum" | "false" | "fn" | "for" | "if"
        | "impl" | "in" | "let" | "loop" | "match" | "mod" | "move" | "mut" | "pub" | "ref"
        | "return" | "static" | "struct" | "trait" | "true" | "type" | "unsafe" | "use"
        | "where" | "while" | "dyn" | "abstract" | "become" | "box" | "do" | "final" | "macro"
        | "override" | "priv" | "typeof" | "unsized" | "virtual" | "yield" | "async" | "await"
        | "try" | "gen" => format!("r#{ident}"),
        "_" | "super" | "self" | "Self" | "extern" | "crate" => format!("{ident}_"),
        s if s.starts_with(|c: char| c.is_numeric()) => format!("_{ident}"),
        _ => ident,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::{FieldDescriptorProto, MessageOptions, OneofDescriptorProto};

    fn field(name: &str, number: i32, type_name: &str) -> FieldDescriptorProto {
        FieldDescriptorProto {
            name: Some(name.into()),
            number: Some(number),
            label: Some(Label::Optional as i32),
            r#type: Some(Type::Message as i32),
            type_name: Some(type_name.into()),
            ..Default::default()
        }
    }

    fn message(name: &str, fields: Vec<FieldDescriptorProto>) -> DescriptorProto {
        DescriptorProto {
            name: Some(name.into()),
            field: fields,
            ..Default::default()
        }
    }

    fn file(package: &str, messages: Vec<DescriptorProto>) -> FileDescriptorProto {
        FileDescriptorProto {
            name: Some("a.proto".into()),
            package: Some(package.into()),
            message_type: messages,
            ..Default::default()
        }
    }

    /// The Rust types the impls name, in order.
    fn impl_targets(file: &FileDescriptorProto, extern_paths: &[&str]) -> Vec<String> {
        let extern_paths: Vec<String> = extern_paths.iter().map(|p| (*p).to_owned()).collect();
        has_status_impls(file, &extern_paths)
            .lines()
            .filter_map(|l| l.strip_prefix("impl ::clarifai_status::response::HasStatus for "))
            .map(|l| l.trim_end_matches(" {").to_owned())
            .collect()
    }

    #[test]
    fn top_level_response_with_status_first_gets_an_impl() {
        let f = file(
            "clarifai.api",
            vec![message(
                "MultiOutputResponse",
                vec![field("status", 1, STATUS_MESSAGE)],
            )],
        );
        assert_eq!(
            impl_targets(&f, &[STATUS_PROTO_PACKAGE]),
            ["MultiOutputResponse"]
        );
        assert!(has_status_impls(&f, &[]).contains("self.status.as_ref()"));
    }

    #[test]
    fn nested_messages_are_named_through_their_parents_snake_case_modules() {
        let inner = message("InnerReply", vec![field("status", 1, STATUS_MESSAGE)]);
        let deeper = message("Deepest", vec![field("status", 1, STATUS_MESSAGE)]);
        let mut middle = message("MiddleHTTPThing", vec![]);
        middle.nested_type.push(deeper);
        let mut outer = message("OuterMessage", vec![]);
        outer.nested_type.extend([inner, middle]);
        let f = file("clarifai.api", vec![outer]);
        assert_eq!(
            impl_targets(&f, &[]),
            [
                "outer_message::InnerReply",
                "outer_message::middle_http_thing::Deepest"
            ]
        );
    }

    #[test]
    fn names_follow_prost_case_and_keyword_rules() {
        assert_eq!(
            rust_type_name("multi_output_response"),
            "MultiOutputResponse"
        );
        assert_eq!(rust_type_name("HTTPResponse"), "HttpResponse");
        assert_eq!(rust_type_name("Self"), "Self_");
        assert_eq!(rust_field_name("Type"), "r#type");
        assert_eq!(rust_field_name("self"), "self_");
        assert_eq!(rust_field_name("requestStatus"), "request_status");
        assert_eq!(rust_field_name("V2"), "v2");
        let f = file(
            "p",
            vec![message("r", vec![field("Type", 1, STATUS_MESSAGE)])],
        );
        let impls = has_status_impls(&f, &[]);
        assert!(impls.contains("for R {"), "{impls}");
        assert!(impls.contains("self.r#type.as_ref()"), "{impls}");
    }

    #[test]
    fn only_a_singular_status_in_field_one_outside_a_oneof_counts() {
        let mut repeated = field("status", 1, STATUS_MESSAGE);
        repeated.label = Some(Label::Repeated as i32);
        let mut in_oneof = field("status", 1, STATUS_MESSAGE);
        in_oneof.oneof_index = Some(0);
        let mut proto3_optional = field("status", 1, STATUS_MESSAGE);
        proto3_optional.oneof_index = Some(0);
        proto3_optional.proto3_optional = Some(true);
        let mut oneof_message = message("InOneof", vec![in_oneof]);
        oneof_message.oneof_decl.push(OneofDescriptorProto {
            name: Some("result".into()),
            ..Default::default()
        });
        let mut optional_message = message("Optional", vec![proto3_optional]);
        optional_message.oneof_decl.push(OneofDescriptorProto {
            name: Some("_status".into()),
            ..Default::default()
        });
        let f = file(
            "p",
            vec![
                message("Repeated", vec![repeated]),
                oneof_message,
                optional_message,
                message("SecondField", vec![field("status", 2, STATUS_MESSAGE)]),
                message("OtherStatus", vec![field("status", 1, ".other.Status")]),
                message("NoFields", vec![]),
            ],
        );
        assert_eq!(impl_targets(&f, &[]), ["Optional"]);
    }

    #[test]
    fn extern_types_and_map_entries_get_no_impl() {
        let status_file = file(
            "clarifai.api.status",
            vec![message(
                "BaseResponse",
                vec![field("status", 1, STATUS_MESSAGE)],
            )],
        );
        assert!(impl_targets(&status_file, &[STATUS_PROTO_PACKAGE]).is_empty());

        let mut entry = message("ByIdEntry", vec![field("status", 1, STATUS_MESSAGE)]);
        entry.options = Some(MessageOptions {
            map_entry: Some(true),
            ..Default::default()
        });
        let mut holder = message("Holder", vec![]);
        holder.nested_type.push(entry);
        let f = file(
            "my.pkg",
            vec![
                holder,
                message("Mapped", vec![field("status", 1, STATUS_MESSAGE)]),
                message("MappedOut", vec![field("status", 1, STATUS_MESSAGE)]),
            ],
        );
        // A path covers itself and what is under it, not names it merely starts.
        assert_eq!(impl_targets(&f, &[".my.pkg.Mapped"]), ["MappedOut"]);
        assert!(impl_targets(&f, &[".my"]).is_empty());
        assert_eq!(impl_targets(&f, &[".my.pk"]), ["Mapped", "MappedOut"]);
    }

    #[test]
    fn a_file_without_a_package_names_types_from_the_root() {
        let f = file(
            "",
            vec![message("Reply", vec![field("status", 1, STATUS_MESSAGE)])],
        );
        assert_eq!(impl_targets(&f, &[]), ["Reply"]);
    }
    #[test]
    fn a_status_code_field_names_the_crate_roots_status_code() {
        use prost_types::{EnumDescriptorProto, EnumValueDescriptorProto};
        let status = FileDescriptorProto {
            name: Some("clarifai/api/status/status_code.proto".into()),
            package: Some("clarifai.api.status".into()),
            enum_type: vec![EnumDescriptorProto {
                name: Some("StatusCode".into()),
                value: vec![EnumValueDescriptorProto {
                    name: Some("ZERO".into()),
                    number: Some(0),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            syntax: Some("proto3".into()),
            ..Default::default()
        };
        let mut codes = field("status_code", 2, STATUS_CODE_ENUM);
        codes.r#type = Some(Type::Enum as i32);
        let mut user = file("my.pkg", vec![message("GetStatusCodeRequest", vec![codes])]);
        user.dependency = vec!["clarifai/api/status/status_code.proto".into()];
        user.syntax = Some("proto3".into());
        let out =
            std::env::temp_dir().join(format!("clarifai-status-build-{}", std::process::id()));
        std::fs::create_dir_all(&out).unwrap();
        let dir = out.clone();
        Builder::new()
            .no_services()
            .prost(|c| {
                c.out_dir(dir);
            })
            .compile_fds(FileDescriptorSet {
                file: vec![status, user],
            })
            .unwrap();
        let generated = std::fs::read_to_string(out.join("my.pkg.rs")).unwrap();
        let _ = std::fs::remove_dir_all(&out);
        assert!(
            generated.contains("enumeration = \"::clarifai_status::StatusCode\""),
            "{generated}"
        );
        assert!(!generated.contains("pb::StatusCode"), "{generated}");
    }
}

// The README's examples run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
