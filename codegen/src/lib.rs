//! The code generator: compiles the protos (with protox: no system `protoc`) and generates the
//! Rust side of the status table from the options declared beside each code in
//! `status_code.proto`.
//!
//! Run by maintainers, not by any build: `cargo run -p clarifai-status-codegen` writes its output
//! into `src/generated/` and `clarifai-status-testing/src/generated/`, which ship with the crates,
//! so dependents never build the generators (protox, prost-build, ...). Its tests
//! (`codegen/tests/generate.rs`) run it into a temporary folder and fail on any difference from
//! the shipped files, and on broken copies of the table; `--check` does the first from the
//! command line.
//!
//! Generated:
//! - the prost messages and enum (`clarifai.api.status.rs`, `google.rpc.rs`) for the core crate,
//!   and the tester service (`clarifai.status.testing.v1.rs`) for `clarifai-status-testing`;
//! - `status_table.rs`: one row of facts per number, in number order; an exhaustive
//!   `StatusCode` to position match; matches for what few codes have (aliases, the release that
//!   removed a code); each gRPC code's name and canonical HTTP status. Names go through prost's
//!   own `from_str_name`, then the alias match;
//! - `status_fields.rs`: `Status`'s private fields and the public ones the wire contract carries;
//! - `status_table.md`: the mapping table the crate docs show.
//!
//! The build fails, naming the code, if the table breaks one of the crate's invariants (a failure
//! that is gRPC OK or HTTP 2xx, a retryable success, an alias that carries facts, a code whose
//! facts are marked `unreviewed`, ...).
//!
//! [`upstream`] reads Clarifai's published enum (a clarifai-grpc wheel or a `FileDescriptorSet`)
//! and compares it with the table: the `diff` command, which can also add the new codes for
//! review. The release routine (new clarifai-grpc, `diff`, review, regenerate, CHANGELOG) is in
//! the crate's README:
//!
#![doc = include_str!("../README.md")]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use heck::ToUpperCamelCase;
use protox::prost_reflect::{DescriptorPool, DynamicMessage, ReflectMessage as _, Value};

pub mod upstream;

const STATUS_CODE_PROTO: &str = "clarifai/api/status/status_code.proto";
const STATUS_PROTO: &str = "clarifai/api/status/status.proto";
const RPC_PROTOS: [&str; 2] = ["google/rpc/status.proto", "google/rpc/error_details.proto"];
const TESTER_PROTO: &str = "clarifai/status/testing/v1/tester.proto";

/// What `meta.proto` declares beside the codes: each gRPC code's name and canonical HTTP status
/// (by number, from `GrpcCode`), and the categories `status_code.proto` declares.
struct Meta {
    grpc: Vec<(String, u32)>,
    categories: Vec<String>,
}

impl Meta {
    fn grpc_name(&self, number: i32) -> &str {
        self.grpc
            .get(number as usize)
            .map_or("UNKNOWN", |g| g.0.as_str())
    }
}

/// One number of the table with everything declared about it.
struct Row {
    number: i32,
    name: String,
    aliases: Vec<String>,
    name_deprecated: bool,
    alias_deprecated: Vec<bool>,
    description: String,
    category: String,
    /// The outcome's name in `meta.proto`'s `Outcome` (`SUCCESS`, `IN_PROGRESS`, `FAILURE`).
    outcome: String,
    retryable: bool,
    /// `retryable_on_every_method` is set: a refusal, safe to retry on any method.
    retryable_on_every_method: bool,
    grpc: i32,
    http: u32,
    /// The clarifai-grpc release that removed the code; empty while Clarifai still has it.
    removed_in: String,
    /// `unreviewed` is set: the generator refuses the table.
    unreviewed: bool,
}

impl Row {
    /// Every name of the code is deprecated (each marked so in the proto), or Clarifai removed it.
    fn deprecated(&self) -> bool {
        !self.removed_in.is_empty()
            || (self.name_deprecated && self.alias_deprecated.iter().all(|d| *d))
    }
}

/// What the generator returns: an error names what is wrong.
pub type BuildResult<T> = Result<T, Box<dyn std::error::Error>>;

/// The files [`generate`] writes, each with the folder it ships in, from the repository's root.
pub const OUTPUTS: [(&str, &str); 6] = [
    ("clarifai.api.status.rs", "src/generated"),
    ("google.rpc.rs", "src/generated"),
    (
        "clarifai.status.testing.v1.rs",
        "clarifai-status-testing/src/generated",
    ),
    ("status_table.rs", "src/generated"),
    ("status_fields.rs", "src/generated"),
    ("status_table.md", "src/generated"),
];

/// The folders of `.proto` files under the repository's root: the core crate's (the table), and
/// the test server's (its own service).
pub const PROTO_DIRS: [&str; 2] = ["proto", "clarifai-status-testing/proto"];

/// Compiles the protos under `proto_dirs` and writes every file of [`OUTPUTS`] into `out_dir`.
///
/// Fails, naming the code, if the table breaks one of the crate's invariants.
pub fn generate(proto_dirs: &[&Path], out_dir: &Path) -> BuildResult<()> {
    let mut files = vec![STATUS_CODE_PROTO, STATUS_PROTO];
    files.extend(RPC_PROTOS);
    files.push(TESTER_PROTO);
    let mut compiler = protox::Compiler::new(proto_dirs)?;
    compiler.include_imports(true);
    // Proto comments become the generated items' docs (`pb::Status::code` warns of `Zero`).
    compiler.include_source_info(true);
    compiler.open_files(&files)?;
    let pool = compiler.descriptor_pool();

    let meta = read_meta(&pool)?;
    let rows = read_table(&pool, &meta)?;
    check_invariants(&rows, &meta)?;
    write_if_changed(
        &out_dir.join("status_table.rs"),
        &render_rust(&rows, &meta)?,
    )?;
    write_if_changed(&out_dir.join("status_fields.rs"), &render_fields(&pool)?)?;
    write_if_changed(
        &out_dir.join("status_table.md"),
        &render_markdown(&rows, &meta),
    )?;

    // prost sees every file (it resolves types across them) but the crate includes only its own
    // packages; Google's well-known types map to prost-types. The tester's service is generated
    // whole (server, client, transport), for clarifai-status-testing.
    let fds = compiler.file_descriptor_set();
    let mut config = prost_build::Config::new();
    config.enable_type_names();
    config.btree_map(["."]);
    // Clarifai adds codes: a new one must not break a dependent's `match`.
    config.enum_attribute(".clarifai.api.status.StatusCode", "#[non_exhaustive]");
    config.out_dir(out_dir);
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .build_transport(true)
        .out_dir(out_dir)
        .compile_fds_with_config(fds, config)?;
    // The options' own package is the generator's business, not the crate's.
    let meta = out_dir.join("clarifai.status.meta.rs");
    if meta.exists() {
        fs::remove_file(meta)?;
    }
    Ok(())
}

/// The table's numbers with their names and removal marks, for comparing it with a published
/// enum ([`upstream::Diff`]). Reads the proto without checking the table's invariants, so that a
/// table with unreviewed codes can still be compared.
pub fn table(proto_dirs: &[&Path]) -> BuildResult<Vec<upstream::TableCode>> {
    let mut compiler = protox::Compiler::new(proto_dirs)?;
    compiler.include_imports(true);
    compiler.open_files([STATUS_CODE_PROTO])?;
    let pool = compiler.descriptor_pool();
    let meta = read_meta(&pool)?;
    Ok(read_table(&pool, &meta)?
        .into_iter()
        .map(|r| upstream::TableCode {
            number: r.number,
            names: std::iter::once(r.name).chain(r.aliases).collect(),
            removed_in: (!r.removed_in.is_empty()).then_some(r.removed_in),
        })
        .collect())
}

/// The path of the table's proto under the core crate's proto folder.
pub const TABLE_PROTO: &str = STATUS_CODE_PROTO;

/// Writes `text` unless the file holds it already (as prost-build does), so an unchanged table
/// does not make the crate rebuild.
fn write_if_changed(path: &Path, text: &str) -> BuildResult<()> {
    if fs::read_to_string(path).ok().as_deref() != Some(text) {
        fs::write(path, text)?;
    }
    Ok(())
}

fn read_meta(pool: &DescriptorPool) -> BuildResult<Meta> {
    let grpc_enum = pool
        .get_enum_by_name("clarifai.status.meta.GrpcCode")
        .ok_or("GrpcCode enum missing")?;
    let canonical = pool
        .get_extension_by_name("clarifai.status.meta.canonical_http")
        .ok_or("clarifai.status.meta.canonical_http option missing")?;
    let mut grpc = Vec::new();
    for (i, value) in grpc_enum.values().enumerate() {
        if usize::try_from(value.number()) != Ok(i) {
            return Err(format!("GrpcCode {} is not numbered {i}", value.name()).into());
        }
        let http = match value.options().get_extension(&canonical).as_ref() {
            Value::U32(http) if (100..600).contains(http) => *http,
            _ => return Err(format!("GrpcCode {} has no canonical_http", value.name()).into()),
        };
        grpc.push((value.name().to_owned(), http));
    }
    if grpc.len() != 17 {
        return Err(format!("GrpcCode has {} values, not gRPC's 17", grpc.len()).into());
    }
    let file = pool
        .get_file_by_name(STATUS_CODE_PROTO)
        .ok_or("status_code.proto missing")?;
    let declared = pool
        .get_extension_by_name("clarifai.status.meta.categories")
        .ok_or("clarifai.status.meta.categories option missing")?;
    let categories: Vec<String> = match file.options().get_extension(&declared).as_ref() {
        Value::List(list) => list
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    if categories.is_empty() {
        return Err("status_code.proto declares no (clarifai.status.meta.categories)".into());
    }
    Ok(Meta { grpc, categories })
}

fn read_table(pool: &DescriptorPool, meta_decl: &Meta) -> BuildResult<Vec<Row>> {
    let enum_desc = pool
        .get_enum_by_name("clarifai.api.status.StatusCode")
        .ok_or("StatusCode enum missing")?;
    let ext = pool
        .get_extension_by_name("clarifai.status.meta.code")
        .ok_or("clarifai.status.meta.code option missing")?;
    // The value carrying the facts is the printed name; the others of its number are aliases.
    // (Declaration order puts it first, which is also the name prost keeps.)
    let mut rows: BTreeMap<i32, Row> = BTreeMap::new();
    let mut aliases: Vec<(i32, String, bool)> = Vec::new();
    // The first name of each number in declaration order (what prost keeps).
    let mut first_names: BTreeMap<i32, String> = BTreeMap::new();
    for value in &enum_desc.enum_descriptor_proto().value {
        first_names
            .entry(value.number())
            .or_insert_with(|| value.name().to_owned());
    }
    for value in enum_desc.values() {
        let opts = value.options();
        let deprecated = matches!(
            opts.get_field_by_name("deprecated").as_deref(),
            Some(Value::Bool(true))
        );
        let number = value.number();
        let name = value.name().to_owned();
        // prost keeps the first value of a number (its `as_str_name` and `from_str_name`), and
        // the crate reads printed names through prost: the facts go on that value.
        let first = first_names.get(&number).map_or("", String::as_str);
        if opts.has_extension(&ext) && first != name {
            return Err(format!(
                "{name} ({number}) declares the facts but {first} comes first: put the value with the facts first (prost keeps the first name)"
            )
            .into());
        }
        if !opts.has_extension(&ext) {
            aliases.push((number, name, deprecated));
            continue;
        }
        let meta = opts.get_extension(&ext);
        let meta = meta.as_message().ok_or("code option is not a message")?;
        let row = Row {
            number,
            name,
            aliases: Vec::new(),
            name_deprecated: deprecated,
            alias_deprecated: Vec::new(),
            description: string_field(meta, "description")?,
            category: string_field(meta, "category")?,
            outcome: enum_name(meta, "outcome")?,
            retryable: matches!(
                meta.get_field_by_name("retryable").as_deref(),
                Some(Value::Bool(true))
            ),
            retryable_on_every_method: matches!(
                meta.get_field_by_name("retryable_on_every_method")
                    .as_deref(),
                Some(Value::Bool(true))
            ),
            grpc: enum_field(meta, "grpc")?,
            // Unset: the canonical HTTP status of the code's gRPC code.
            http: match meta.get_field_by_name("http").as_deref() {
                Some(Value::U32(0)) => {
                    let grpc = enum_field(meta, "grpc")?;
                    meta_decl
                        .grpc
                        .get(usize::try_from(grpc)?)
                        .ok_or("grpc code out of range")?
                        .1
                }
                Some(Value::U32(v)) => *v,
                _ => return Err("http is not a uint32".into()),
            },
            removed_in: string_field(meta, "removed_in")?,
            unreviewed: matches!(
                meta.get_field_by_name("unreviewed").as_deref(),
                Some(Value::Bool(true))
            ),
        };
        if let Some(other) = rows.insert(number, row) {
            return Err(format!(
                "{number}: both {} and another name declare facts",
                other.name
            )
            .into());
        }
    }
    for (number, name, deprecated) in aliases {
        let row = rows
            .get_mut(&number)
            .ok_or_else(|| format!("{name} = {number} declares no (clarifai.status.meta.code)"))?;
        row.aliases.push(name);
        row.alias_deprecated.push(deprecated);
    }
    Ok(rows.into_values().collect())
}

fn string_field(meta: &DynamicMessage, field: &str) -> BuildResult<String> {
    match meta.get_field_by_name(field).as_deref() {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(format!("{field} is not a string").into()),
    }
}

/// The name of the value an enum field holds, from the enum's own declaration.
fn enum_name(meta: &DynamicMessage, field: &str) -> BuildResult<String> {
    let number = enum_field(meta, field)?;
    let kind = meta
        .descriptor()
        .get_field_by_name(field)
        .and_then(|f| f.kind().as_enum().cloned())
        .ok_or_else(|| format!("{field} is not an enum"))?;
    Ok(kind
        .get_value(number)
        .map_or_else(String::new, |v| v.name().to_owned()))
}

fn enum_field(meta: &DynamicMessage, field: &str) -> BuildResult<i32> {
    match meta.get_field_by_name(field).as_deref() {
        Some(Value::EnumNumber(n)) => Ok(*n),
        _ => Err(format!("{field} is not an enum").into()),
    }
}

fn check_invariants(rows: &[Row], meta: &Meta) -> BuildResult<()> {
    let unreviewed: Vec<String> = rows
        .iter()
        .filter(|r| r.unreviewed)
        .map(|r| format!("{} ({})", r.name, r.number))
        .collect();
    if !unreviewed.is_empty() {
        return Err(format!(
            "facts not reviewed: {}; check each one's facts in status_code.proto, then delete its `unreviewed: true`",
            unreviewed.join(", ")
        )
        .into());
    }
    for r in rows {
        let ok = r.grpc == 0;
        let two_xx = (200..300).contains(&r.http);
        let fail = |why: &str| Err(format!("{} ({}): {why}", r.name, r.number).into());
        if !(100..600).contains(&r.http) {
            return fail("http is not an HTTP status");
        }
        if !meta.categories.contains(&r.category) {
            return fail(&format!(
                "category {:?} is not declared by a (clarifai.status.meta.categories) option of status_code.proto",
                r.category
            ));
        }
        match r.outcome.as_str() {
            "SUCCESS" | "IN_PROGRESS" => {
                if !ok || !two_xx {
                    return fail("success and in_progress must be gRPC OK and HTTP 2xx");
                }
                if r.retryable {
                    return fail("only failures are retryable");
                }
            }
            "FAILURE" => {
                if ok || two_xx {
                    return fail("a failure is never gRPC OK nor HTTP 2xx");
                }
            }
            _ => return fail("outcome unset"),
        }
        if r.retryable_on_every_method && !r.retryable {
            return fail("retryable_on_every_method is set on a code that is not retryable");
        }
        if !(0..17).contains(&r.grpc) {
            return fail("grpc code out of range");
        }
        if !r.removed_in.is_empty() && !is_release(&r.removed_in) {
            return fail(&format!(
                "removed_in {:?} is not a release number like \"12.0.3\"",
                r.removed_in
            ));
        }
    }
    Ok(())
}

/// `major.minor.patch`, digits only.
fn is_release(text: &str) -> bool {
    let parts: Vec<&str> = text.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn variant(name: &str) -> String {
    name.to_upper_camel_case()
}

fn render_rust(rows: &[Row], meta: &Meta) -> BuildResult<String> {
    let mut s = String::new();
    s.push_str("// @generated by codegen/ from proto/clarifai/api/status/status_code.proto.\n\n");

    writeln!(
        s,
        "/// The categories `status_code.proto` declares; [`Row::category`] indexes them."
    )?;
    writeln!(
        s,
        "pub(crate) static CATEGORIES: [&str; {}] = {:?};\n",
        meta.categories.len(),
        meta.categories
    )?;

    // One row per number, in number order: what every code has. A lookup finds a row by the
    // code's position (an exhaustive match) or by binary search over the numbers.
    writeln!(s, "/// Every code of the table, in number order.")?;
    writeln!(s, "#[allow(deprecated)]")?;
    writeln!(s, "pub(crate) static ROWS: [Row; {}] = {{", rows.len())?;
    writeln!(
        s,
        "    use crate::Outcome::*;\n    use tonic::Code as Grpc;\n    ["
    )?;
    for r in rows {
        let category = meta
            .categories
            .iter()
            .position(|c| *c == r.category)
            .ok_or("undeclared category")?;
        writeln!(
            s,
            "        Row {{ code: StatusCode::{}, name: {:?}, description: {:?}, category: {category}, outcome: {}, retryable: {}, retryable_on_every_method: {}, grpc: Grpc::{}, http: http_status({}), deprecated: {}, name_deprecated: {} }},",
            variant(&r.name),
            r.name,
            r.description,
            r.outcome.to_upper_camel_case(),
            r.retryable,
            r.retryable_on_every_method,
            meta.grpc_name(r.grpc).to_upper_camel_case(),
            r.http,
            r.deprecated(),
            r.name_deprecated || !r.removed_in.is_empty(),
        )?;
    }
    writeln!(s, "    ]\n}};\n")?;

    // The numbers alone, for the binary search of a wire number: 4 bytes a step, not a row.
    writeln!(
        s,
        "/// Every code's number, in the order of [`ROWS`] (ascending), for binary search."
    )?;
    writeln!(s, "pub(crate) static NUMBERS: [i32; {}] = [", rows.len())?;
    for chunk in rows.chunks(12) {
        let line: Vec<String> = chunk.iter().map(|r| r.number.to_string()).collect();
        writeln!(s, "    {},", line.join(", "))?;
    }
    writeln!(s, "];\n")?;

    // Exhaustive variant -> position: no wildcard, so a variant without a row does not compile.
    writeln!(s, "impl StatusCode {{")?;
    writeln!(
        s,
        "    /// This code's position in [`ROWS`]: an exhaustive match, so every variant has a row."
    )?;
    writeln!(s, "    #[allow(deprecated)]")?;
    writeln!(s, "    pub(crate) const fn position(self) -> usize {{")?;
    writeln!(s, "        match self {{")?;
    for (i, r) in rows.iter().enumerate() {
        writeln!(s, "            StatusCode::{} => {i},", variant(&r.name))?;
    }
    writeln!(s, "        }}\n    }}\n}}\n")?;

    // A dependent's match naming every code still needs a wildcard arm: `#[non_exhaustive]`
    // makes a code Clarifai adds no breaking change. Proved by a doctest that cannot compile.
    writeln!(
        s,
        "/// A match naming every code, without a wildcard arm, does not compile outside the crate:"
    )?;
    writeln!(s, "///\n/// ```compile_fail,E0004")?;
    writeln!(s, "/// # #![allow(deprecated)]")?;
    writeln!(
        s,
        "/// fn number(code: clarifai_status::StatusCode) -> i32 {{\n///     use clarifai_status::StatusCode::*;\n///     match code {{"
    )?;
    for r in rows {
        writeln!(s, "///         {} => {},", variant(&r.name), r.number)?;
    }
    writeln!(s, "///     }}\n/// }}\n/// ```")?;
    writeln!(s, "#[cfg(doctest)]\npub struct EveryCodeNeedsAWildcard;\n")?;

    // What few codes have: matches, with no row field for the many that lack it.
    writeln!(
        s,
        "/// The code of an alias (a name other than the printed one), and whether the alias is"
    )?;
    writeln!(
        s,
        "/// deprecated. Printed names are prost's (`StatusCode::from_str_name`)."
    )?;
    writeln!(s, "#[allow(deprecated)]")?;
    writeln!(
        s,
        "pub(crate) fn alias(name: &str) -> Option<(StatusCode, bool)> {{\n    match name {{"
    )?;
    for r in rows {
        let removed = !r.removed_in.is_empty();
        for (a, d) in r.aliases.iter().zip(&r.alias_deprecated) {
            writeln!(
                s,
                "        {a:?} => Some((StatusCode::{}, {})),",
                variant(&r.name),
                *d || removed
            )?;
        }
    }
    writeln!(s, "        _ => None,\n    }}\n}}\n")?;
    writeln!(s, "/// The aliases of a code.")?;
    writeln!(s, "#[allow(deprecated)]")?;
    writeln!(
        s,
        "pub(crate) fn aliases(code: StatusCode) -> &'static [&'static str] {{\n    match code {{"
    )?;
    for r in rows.iter().filter(|r| !r.aliases.is_empty()) {
        writeln!(
            s,
            "        StatusCode::{} => &{:?},",
            variant(&r.name),
            r.aliases
        )?;
    }
    writeln!(s, "        _ => &[],\n    }}\n}}\n")?;
    writeln!(
        s,
        "/// The clarifai-grpc release that removed a code, for the codes Clarifai removed."
    )?;
    writeln!(s, "#[allow(deprecated)]")?;
    writeln!(
        s,
        "pub(crate) fn removed_in(code: StatusCode) -> Option<&'static str> {{\n    match code {{"
    )?;
    let mut releases: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for r in rows.iter().filter(|r| !r.removed_in.is_empty()) {
        releases
            .entry(&r.removed_in)
            .or_default()
            .push(format!("StatusCode::{}", variant(&r.name)));
    }
    for (release, codes) in &releases {
        writeln!(
            s,
            "        {} => Some({release:?}),",
            codes.join("\n        | ")
        )?;
    }
    writeln!(s, "        _ => None,\n    }}\n}}\n")?;

    render_grpc_tables(&mut s, meta)?;
    writeln!(
        s,
        "/// An HTTP status the generator checked is in 100..600 (anything else fails to compile)."
    )?;
    writeln!(
        s,
        "const fn http_status(status: u16) -> http::StatusCode {{"
    )?;
    writeln!(s, "    match http::StatusCode::from_u16(status) {{")?;
    writeln!(
        s,
        "        Ok(status) => status,\n        Err(_) => panic!(\"not an HTTP status\"),"
    )?;
    writeln!(s, "    }}\n}}")?;
    Ok(s)
}

/// `status_fields.rs`: what the proto says about `Status`'s fields (private, public).
fn render_fields(pool: &DescriptorPool) -> BuildResult<String> {
    let mut s = String::new();
    s.push_str("// @generated by codegen/ from proto/clarifai/api/status/status.proto.\n\n");
    render_private_fields(&mut s, pool)?;
    render_public_fields(&mut s, pool)?;
    Ok(s)
}

/// `Status::strip_private`, from the fields the proto marks `(clarifai.status.meta.private)`.
fn render_private_fields(s: &mut String, pool: &DescriptorPool) -> BuildResult<()> {
    let status = pool
        .get_message_by_name("clarifai.api.status.Status")
        .ok_or("Status message missing")?;
    let ext = pool
        .get_extension_by_name("clarifai.status.meta.private")
        .ok_or("clarifai.status.meta.private option missing")?;
    let private: Vec<String> = status
        .fields()
        .filter(|f| matches!(f.options().get_extension(&ext).as_ref(), Value::Bool(true)))
        .map(|f| f.name().to_owned())
        .collect();
    if private.is_empty() {
        return Err("Status declares no private field".into());
    }
    writeln!(s, "impl Status {{")?;
    writeln!(s, "    /// The fields the proto marks `(clarifai.status.meta.private)`: they never leave a service.")?;
    writeln!(
        s,
        "    pub const PRIVATE_FIELDS: [&'static str; {}] = {:?};\n",
        private.len(),
        private
    )?;
    writeln!(
        s,
        "    /// Clears every field the proto marks private ({}).",
        private.join(", ")
    )?;
    writeln!(s, "    ///\n    /// # Examples\n    ///\n    /// ```")?;
    writeln!(s, "    /// let mut status = clarifai_status::pb::Status {{ internal_details: \"db down\".into(), ..Default::default() }};")?;
    writeln!(s, "    /// status.strip_private();")?;
    writeln!(
        s,
        "    /// assert!(status.internal_details.is_empty());\n    /// ```"
    )?;
    writeln!(s, "    pub fn strip_private(&mut self) {{")?;
    for f in &private {
        writeln!(s, "        self.{f} = Default::default();")?;
    }
    writeln!(s, "    }}\n}}\n")?;
    Ok(())
}

/// Each gRPC code's name and canonical HTTP status, by number, as `meta.proto` declares them.
/// The public fields of `Status` besides `code` and `description`, from the proto: the list the
/// wire contract carries in `ErrorInfo` metadata and Clarifai's REST JSON, a setter by name, and
/// the copy that leaves the private fields behind. A field the proto adds travels everywhere,
/// or, if its type is one the contract has no text for, the generator fails naming it.
fn render_public_fields(s: &mut String, pool: &DescriptorPool) -> BuildResult<()> {
    use protox::prost_reflect::Kind;
    let status = pool
        .get_message_by_name("clarifai.api.status.Status")
        .ok_or("Status message missing")?;
    let ext = pool
        .get_extension_by_name("clarifai.status.meta.private")
        .ok_or("clarifai.status.meta.private option missing")?;
    // (field name, JSON name, is a number)
    let mut fields: Vec<(String, String, bool)> = Vec::new();
    for f in status.fields() {
        let private = matches!(f.options().get_extension(&ext).as_ref(), Value::Bool(true));
        if private || f.name() == "code" || f.name() == "description" {
            continue;
        }
        let number = match (f.kind(), f.is_list()) {
            (Kind::String, false) => false,
            (Kind::Uint32, false) => true,
            _ => {
                return Err(format!(
                    "Status.{}: the wire contract carries text and uint32 fields only; mark it (clarifai.status.meta.private) or teach codegen/ its text",
                    f.name()
                )
                .into())
            }
        };
        fields.push((f.name().to_owned(), f.json_name().to_owned(), number));
    }
    writeln!(
        s,
        "/// The value of a public field of [`Status`], as the wire contract carries it."
    )?;
    writeln!(s, "#[derive(Clone, Copy, Debug, PartialEq, Eq)]")?;
    writeln!(
        s,
        "pub(crate) enum PublicValue<'a> {{\n    Text(&'a str),\n    Number(u32),\n}}\n"
    )?;
    writeln!(
        s,
        "/// How many public fields [`Status`] has besides `code` and `description`."
    )?;
    writeln!(
        s,
        "pub(crate) const PUBLIC_FIELDS: usize = {};\n",
        fields.len()
    )?;
    writeln!(s, "impl Status {{")?;
    writeln!(
        s,
        "    /// Every public field but `code` and `description`, in field-number order: its name,"
    )?;
    writeln!(
        s,
        "    /// its JSON (lowerCamelCase) name, and its value. Generated from the proto, so a field"
    )?;
    writeln!(s, "    /// the proto adds is carried too.")?;
    writeln!(
        s,
        "    #[cfg_attr(not(feature = \"json\"), allow(dead_code))]"
    )?;
    writeln!(
        s,
        "    pub(crate) fn public_fields(&self) -> [(&'static str, &'static str, PublicValue<'_>); PUBLIC_FIELDS] {{"
    )?;
    writeln!(s, "        [")?;
    for (name, json, number) in &fields {
        let value = if *number {
            format!("PublicValue::Number(self.{name})")
        } else {
            format!("PublicValue::Text(&self.{name})")
        };
        writeln!(s, "            ({name:?}, {json:?}, {value}),")?;
    }
    writeln!(s, "        ]\n    }}\n")?;
    writeln!(
        s,
        "    /// Sets the public field called `name` (its name or JSON name) from its text; `false`"
    )?;
    writeln!(
        s,
        "    /// for a name that is no public field, or text that is not the field's type."
    )?;
    writeln!(
        s,
        "    pub(crate) fn set_public_field(&mut self, name: &str, text: &str) -> bool {{"
    )?;
    writeln!(s, "        match name {{")?;
    for (name, json, number) in &fields {
        let pattern = if name == json {
            format!("{name:?}")
        } else {
            format!("{name:?} | {json:?}")
        };
        if *number {
            writeln!(
                s,
                "            {pattern} => text.parse().map(|v| self.{name} = v).is_ok(),"
            )?;
        } else {
            writeln!(
                s,
                "            {pattern} => {{\n                self.{name} = text.to_owned();\n                true\n            }}"
            )?;
        }
    }
    writeln!(s, "            _ => false,\n        }}\n    }}\n")?;
    writeln!(
        s,
        "    /// Calls `f` with each public field but `code` and `description` that is set (non-empty,"
    )?;
    writeln!(
        s,
        "    /// non-zero), in field-number order: its name, its JSON name and its value. Straight-line"
    )?;
    writeln!(s, "    /// code, for the paths every coded error takes.")?;
    writeln!(
        s,
        "    #[cfg_attr(not(feature = \"json\"), allow(dead_code))]"
    )?;
    writeln!(
        s,
        "    pub(crate) fn for_each_set_public_field<'a>(&'a self, mut f: impl FnMut(&'static str, &'static str, PublicValue<'a>)) {{"
    )?;
    for (name, json, number) in &fields {
        if *number {
            writeln!(
                s,
                "        if self.{name} != 0 {{\n            f({name:?}, {json:?}, PublicValue::Number(self.{name}));\n        }}"
            )?;
        } else {
            writeln!(
                s,
                "        if !self.{name}.is_empty() {{\n            f({name:?}, {json:?}, PublicValue::Text(&self.{name}));\n        }}"
            )?;
        }
    }
    writeln!(s, "    }}\n")?;
    // The ErrorInfo metadata of the set fields, as straight-line code: every coded error's path.
    writeln!(
        s,
        "    /// Calls `f` with the `ErrorInfo` metadata of the public fields that are set: each JSON"
    )?;
    writeln!(
        s,
        "    /// name with its text through `cap`, or its number in decimal. Straight-line code that"
    )?;
    writeln!(
        s,
        "    /// allocates nothing but what `cap` does: every coded error takes this path."
    )?;
    writeln!(
        s,
        "    pub(crate) fn with_error_info_metadata<R>(&self, cap: impl Fn(&str) -> std::borrow::Cow<'_, str>, f: impl FnOnce(&[(&'static str, &[u8])]) -> R) -> R {{"
    )?;
    for (name, _, number) in &fields {
        if *number {
            writeln!(s, "        let mut {name}_digits = [0u8; 10];")?;
            writeln!(
                s,
                "        let {name} = public_decimal(self.{name}, &mut {name}_digits);"
            )?;
        } else {
            writeln!(s, "        let {name} = cap(&self.{name});")?;
        }
    }
    writeln!(
        s,
        "        let candidates: [(&'static str, &[u8]); PUBLIC_FIELDS] = ["
    )?;
    for (name, json, number) in &fields {
        if *number {
            writeln!(s, "            ({json:?}, {name}),")?;
        } else {
            writeln!(s, "            ({json:?}, {name}.as_bytes()),")?;
        }
    }
    writeln!(s, "        ];")?;
    writeln!(
        s,
        "        let mut entries: [(&'static str, &[u8]); PUBLIC_FIELDS] = [(\"\", &[]); PUBLIC_FIELDS];"
    )?;
    writeln!(s, "        let mut n = 0;")?;
    writeln!(s, "        for (key, value) in candidates {{")?;
    writeln!(
        s,
        "            if !value.is_empty() {{\n                entries[n] = (key, value);\n                n += 1;\n            }}\n        }}"
    )?;
    writeln!(s, "        f(&entries[..n])\n    }}\n")?;
    writeln!(
        s,
        "    /// A copy holding `code`, `description` and the public fields; the private ones stay"
    )?;
    writeln!(s, "    /// behind.")?;
    writeln!(s, "    pub(crate) fn public_copy(&self) -> Status {{")?;
    writeln!(s, "        Status {{")?;
    writeln!(s, "            code: self.code,")?;
    writeln!(s, "            description: self.description.clone(),")?;
    for (name, _, number) in &fields {
        if *number {
            writeln!(s, "            {name}: self.{name},")?;
        } else {
            writeln!(s, "            {name}: self.{name}.clone(),")?;
        }
    }
    writeln!(
        s,
        "            ..Default::default()\n        }}\n    }}\n}}\n"
    )?;
    writeln!(
        s,
        "/// `n` in decimal, at the end of `buf`; nothing for 0 (an unset field)."
    )?;
    writeln!(
        s,
        "fn public_decimal(mut n: u32, buf: &mut [u8; 10]) -> &[u8] {{\n    let mut at = buf.len();\n    while n != 0 {{\n        at -= 1;\n        buf[at] = b'0' + (n % 10) as u8;\n        n /= 10;\n    }}\n    &buf[at..]\n}}\n"
    )?;
    Ok(())
}

fn render_grpc_tables(s: &mut String, meta: &Meta) -> BuildResult<()> {
    writeln!(
        s,
        "/// Each gRPC code's name, by number (`meta.proto`'s `GrpcCode`)."
    )?;
    writeln!(
        s,
        "pub(crate) static GRPC_NAME: [&str; {}] = [",
        meta.grpc.len()
    )?;
    for (name, _) in &meta.grpc {
        writeln!(s, "    {name:?},")?;
    }
    writeln!(
        s,
        "];
"
    )?;
    writeln!(
        s,
        "/// Each gRPC code's canonical HTTP status, by number (`meta.proto`'s `canonical_http`)."
    )?;
    writeln!(
        s,
        "pub(crate) static GRPC_HTTP: [http::StatusCode; {}] = [",
        meta.grpc.len()
    )?;
    for (_, http) in &meta.grpc {
        writeln!(s, "    http_status({http}),")?;
    }
    writeln!(
        s,
        "];
"
    )?;
    Ok(())
}

fn render_markdown(rows: &[Row], meta: &Meta) -> String {
    let mut s = String::from(
        "| Code | Name | Category | Outcome | Retryable | gRPC | HTTP |\n|---:|---|---|---|---|---|---:|\n",
    );
    for r in rows {
        let outcome = r.outcome.to_ascii_lowercase();
        let mut name = format!("`{}`", r.name);
        for a in &r.aliases {
            let _ = write!(name, " (alias `{a}`)");
        }
        if !r.removed_in.is_empty() {
            let _ = write!(name, " (removed in clarifai-grpc {})", r.removed_in);
        }
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.number,
            name,
            r.category.replace('|', "\\|"),
            outcome,
            match (r.retryable, r.retryable_on_every_method) {
                (true, true) => "yes, on every method",
                (true, false) => "yes",
                _ => "no",
            },
            meta.grpc_name(r.grpc),
            r.http
        );
    }
    s
}
