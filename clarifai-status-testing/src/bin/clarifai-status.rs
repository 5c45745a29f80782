//! `clarifai-status`: the Clarifai status table from the command line.
//!
//! ```text
//! clarifai-status explain 11008 conn_throttled   # everything the table says about each code
//! clarifai-status table --format json            # every code: json, csv or markdown
//! clarifai-status serve --addr 127.0.0.1:50051 --http-addr 127.0.0.1:8080   # status test server
//! ```
//!
//! `explain` takes numbers and names (printed names or aliases, any case). It exits with status 2
//! if any argument is not in the table, after explaining the others; usage errors exit 2 too. A
//! closed output (`clarifai-status table | head`) ends the tool quietly with status 0.
//!
//! `serve` runs the status test server (see `clarifai_status_testing`): it answers any Clarifai
//! status on request, over gRPC and HTTP. Port 0 picks a free port; the first lines on stdout,
//! flushed at once, are `grpc listening on <ip:port>` and (with `--http-addr`) `http listening on
//! <ip:port>`. It stops cleanly on SIGINT and SIGTERM. `--scenario FILE` loads a fault-injection
//! plan; a file that cannot be read or is invalid ends the tool with status 2, naming the rule and
//! field at fault. `--max-connections`, `--handshake-timeout`, `--idle-timeout`,
//! `--max-concurrent-streams` and `--max-header-list-size` set the server's limits
//! (`clarifai_status_testing::Limits`, whose defaults they keep when not given). Warnings (out
//! of file descriptors, accepting again) are logged to stderr.

use std::fmt;
use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use clarifai_status::mapping::grpc_code_name;
use clarifai_status::StatusCode;
use clarifai_status_testing::{Limits, Scenarios, TestServer};
use serde::ser::{Serialize, SerializeMap, Serializer};

/// Exit status for an argument that names no code; clap uses the same for usage errors.
const EXIT_UNKNOWN: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "The Clarifai API status table: explain codes, dump the table"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Explain status codes, given by number or name.
    Explain(ExplainArgs),
    /// Print every code of the table, one row per number, in number order.
    Table(TableArgs),
    /// Serve the status test server: any Clarifai status on request, over gRPC and HTTP, and a
    /// stand-in for Clarifai's V2 API (gRPC `clarifai.api.V2/*`, REST `/v2/*`).
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address for gRPC (`clarifai.api.V2/*` and `clarifai.status.testing.v1.StatusTester`); port
    /// 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:50051")]
    addr: SocketAddr,
    /// Address for HTTP (`GET /v2/raise/{code}`, `GET /v2/_tester/calls`, Clarifai's REST paths
    /// under `/v2/`); no HTTP server without it.
    #[arg(long)]
    http_addr: Option<SocketAddr>,
    /// A fault-injection plan (JSON: `{"seed": 7, "rules": [{"methods": ["Post*"], "code":
    /// 21354, "percent": 30}]}`) for V2 and REST calls that carry no scenario of their own.
    #[arg(long, value_name = "FILE")]
    scenario: Option<std::path::PathBuf>,
    #[command(flatten)]
    limits: LimitArgs,
}

/// The server's limits (`clarifai_status_testing::Limits`); each defaults to the library's.
#[derive(Debug, Args)]
struct LimitArgs {
    /// Most open connections per listener; one more is answered 40030 (retry later) and closed
    /// [default: 1000, less under a low open-files limit]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: Option<u32>,
    /// Seconds a new connection may take to send its first byte [default: 10]
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    handshake_timeout: Option<u64>,
    /// Seconds a connection may go without a byte read or written [default: 120]
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    idle_timeout: Option<u64>,
    /// HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS of the gRPC listener [default: 100]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_concurrent_streams: Option<u32>,
    /// HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE of the gRPC listener, in bytes; a longer list is
    /// answered 40033 [default: 16384]
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(1024..))]
    max_header_list_size: Option<u32>,
}

impl LimitArgs {
    fn limits(&self) -> Limits {
        let mut limits = Limits::default();
        if let Some(n) = self.max_connections {
            limits.max_connections = n as usize;
        }
        if let Some(secs) = self.handshake_timeout {
            limits.handshake_timeout = std::time::Duration::from_secs(secs);
        }
        if let Some(secs) = self.idle_timeout {
            limits.idle_timeout = std::time::Duration::from_secs(secs);
        }
        if let Some(n) = self.max_concurrent_streams {
            limits.max_concurrent_streams = n;
        }
        if let Some(n) = self.max_header_list_size {
            limits.max_header_list_size = n;
        }
        limits
    }
}

#[derive(Debug, Args)]
struct ExplainArgs {
    /// Numbers or names (printed name or alias, any case), e.g. `11008` or `conn_key_invalid`.
    #[arg(
        required = true,
        value_name = "CODE|NAME",
        allow_negative_numbers = true
    )]
    codes: Vec<String>,
}

#[derive(Debug, Args)]
struct TableArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Markdown)]
    format: Format,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// One JSON array of objects.
    Json,
    /// RFC 4180 CSV with a header row; aliases joined by `;`.
    Csv,
    /// A Markdown table.
    Markdown,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let result = match cli.command {
        Command::Explain(args) => explain(&args.codes, &mut out),
        Command::Table(args) => table(args.format, &mut out).map(|()| ExitCode::SUCCESS),
        Command::Serve(args) => serve(&args, &mut out),
    };
    match result.and_then(|status| out.flush().map(|()| status)) {
        Ok(status) => status,
        // The reader went away (`| head`): it has all it wanted.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            report(format_args!("cannot write output: {e}"));
            ExitCode::FAILURE
        }
    }
}

/// Writes an error line to stderr; a failing stderr must not turn into a panic as `eprintln!` does.
fn report(message: fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr().lock(), "error: {message}");
}

// --- serve -------------------------------------------------------------------------------

fn serve(args: &ServeArgs, out: &mut impl Write) -> io::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let _entered = runtime.enter();
    // The server's warnings (out of file descriptors, accepting again) go to stderr.
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(io::stderr)
        .init();
    let mut server = TestServer::new().limits(args.limits.limits());
    if let Some(path) = &args.scenario {
        let plan = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| Scenarios::from_json(&text).map_err(|e| e.to_string()));
        match plan {
            Ok(plan) => server = server.scenarios(plan),
            Err(e) => {
                report(format_args!("bad scenario file {}: {e}", path.display()));
                return Ok(ExitCode::from(EXIT_UNKNOWN));
            }
        }
    }
    let bound = match server.bind(args.addr, args.http_addr) {
        Ok(bound) => bound,
        Err(e) => {
            report(format_args!("cannot listen: {e}"));
            return Ok(ExitCode::FAILURE);
        }
    };
    let shutdown = ShutdownSignal::install();
    writeln!(out, "grpc listening on {}", bound.grpc_addr())?;
    if let Some(http) = bound.http_addr() {
        writeln!(out, "http listening on {http}")?;
    }
    // Flushed at once: scripts wait for these lines before they connect.
    out.flush()?;
    let served = runtime.block_on(async {
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let stopped = |mut stopping: tokio::sync::watch::Receiver<bool>| async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        };
        let server = bound.serve_with_shutdown(stopped(stopping.clone()));
        // Open connections get a grace period to finish; a client that never answers the
        // server's goodbye must not keep it alive.
        let deadline = async {
            stopped(stopping).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        let signal = async {
            shutdown.recv().await;
            let _ = stop.send(true);
            std::future::pending::<()>().await;
        };
        tokio::select! {
            result = server => result,
            () = deadline => Ok(()),
            () = signal => Ok(()),
        }
    });
    match served {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            report(format_args!("server failed: {e}"));
            Ok(ExitCode::FAILURE)
        }
    }
}

/// How long open connections may take to finish after SIGINT or SIGTERM.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// SIGINT and SIGTERM (on Unix; Ctrl-C elsewhere), caught from the moment this is built: built
/// before the listening lines are printed, so a script that signals as soon as it reads them
/// stops the server cleanly instead of killing it by the default action.
struct ShutdownSignal {
    #[cfg(unix)]
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl ShutdownSignal {
    /// Installs the handlers; needs a runtime entered.
    fn install() -> ShutdownSignal {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let streams = match (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) {
                (Ok(int), Ok(term)) => Some((int, term)),
                // Without signal handlers the server still runs; it then ends with the process.
                _ => None,
            };
            ShutdownSignal { streams }
        }
        #[cfg(not(unix))]
        ShutdownSignal {}
    }

    /// Resolves on the first signal.
    async fn recv(self) {
        #[cfg(unix)]
        match self.streams {
            Some((mut int, mut term)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            None => std::future::pending().await,
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

// --- explain -------------------------------------------------------------------------------

fn explain(args: &[String], out: &mut impl Write) -> io::Result<ExitCode> {
    let mut status = ExitCode::SUCCESS;
    let mut first = true;
    for arg in args {
        match lookup(arg) {
            Ok(code) => {
                if !first {
                    writeln!(out)?;
                }
                first = false;
                write_explanation(code, out)?;
            }
            Err(unknown) => {
                report(format_args!("{unknown}"));
                status = ExitCode::from(EXIT_UNKNOWN);
            }
        }
    }
    Ok(status)
}

/// An argument of `explain` that the table does not know.
#[derive(Debug)]
enum Unknown<'a> {
    Number(&'a str),
    Name(&'a str),
}

impl fmt::Display for Unknown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unknown::Number(n) => write!(f, "unknown status code {n}"),
            // Quoted and escaped: the argument may be empty or hold control characters.
            Unknown::Name(name) => write!(f, "unknown status code name {name:?}"),
        }
    }
}

/// The code an argument names: a decimal number (any size) or a name in any case.
fn lookup(arg: &str) -> Result<StatusCode, Unknown<'_>> {
    let arg = arg.trim();
    let digits = arg.strip_prefix(['-', '+']).unwrap_or(arg);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return arg
            .parse()
            .ok()
            .and_then(StatusCode::from_number)
            .ok_or(Unknown::Number(arg));
    }
    StatusCode::from_name(&arg.to_ascii_uppercase()).ok_or(Unknown::Name(arg))
}

fn write_explanation(code: StatusCode, out: &mut impl Write) -> io::Result<()> {
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let http = code.http_status();
    let grpc = code.grpc_code();

    writeln!(out, "{} {}", code.number(), marked(code.name()))?;
    let aliases: Vec<String> = code.aliases().iter().map(|a| marked(a)).collect();
    let aliases = if aliases.is_empty() {
        "(none)".to_owned()
    } else {
        aliases.join(", ")
    };
    let description = match code.description() {
        "" => "(no description in the table)",
        d => d,
    };
    writeln!(out, "  aliases:      {aliases}")?;
    writeln!(out, "  category:     {}", code.category())?;
    writeln!(out, "  description:  {description}")?;
    writeln!(out, "  deprecated:   {}", yes_no(code.is_deprecated()))?;
    writeln!(out, "  outcome:      {}", code.outcome())?;
    writeln!(out, "  retryable:    {}", yes_no(code.is_retryable()))?;
    writeln!(
        out,
        "  gRPC code:    {} ({})",
        grpc_code_name(grpc),
        i32::from(grpc)
    )?;
    match http.canonical_reason() {
        Some(reason) => writeln!(out, "  HTTP status:  {} {reason}", http.as_u16()),
        None => writeln!(out, "  HTTP status:  {}", http.as_u16()),
    }
}

/// The name, with `(deprecated)` beside it if Clarifai's official enum deprecates it.
fn marked(name: &str) -> String {
    match StatusCode::name_is_deprecated(name) {
        Some(true) => format!("{name} (deprecated)"),
        _ => name.to_owned(),
    }
}

// --- table ---------------------------------------------------------------------------------

/// A column of the table: its name (JSON key and header) and how to read it from a code.
type Column = (&'static str, fn(StatusCode) -> Cell);

/// The table's columns, in output order; every format is written from this one list.
const COLUMNS: [Column; 11] = [
    ("code", |c| Cell::Int(c.number().into())),
    ("name", |c| Cell::Str(c.name())),
    ("aliases", |c| Cell::List(c.aliases())),
    ("description", |c| Cell::Str(c.description())),
    ("category", |c| Cell::Str(c.category())),
    ("deprecated", |c| Cell::Bool(c.is_deprecated())),
    ("outcome", |c| Cell::Str(c.outcome().as_str())),
    ("retryable", |c| Cell::Bool(c.is_retryable())),
    ("grpc_code", |c| Cell::Int(i32::from(c.grpc_code()).into())),
    ("grpc_name", |c| Cell::Str(grpc_code_name(c.grpc_code()))),
    ("http_status", |c| {
        Cell::Int(c.http_status().as_u16().into())
    }),
];

/// One value of the table.
#[derive(Debug)]
enum Cell {
    Int(i64),
    Str(&'static str),
    Bool(bool),
    List(&'static [&'static str]),
}

impl Serialize for Cell {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Cell::Int(n) => serializer.serialize_i64(*n),
            Cell::Str(s) => serializer.serialize_str(s),
            Cell::Bool(b) => serializer.serialize_bool(*b),
            Cell::List(items) => serializer.collect_seq(items.iter()),
        }
    }
}

impl fmt::Display for Cell {
    /// The text of the cell in CSV and Markdown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Int(n) => write!(f, "{n}"),
            Cell::Str(s) => f.write_str(s),
            Cell::Bool(b) => write!(f, "{b}"),
            Cell::List(items) => f.write_str(&items.join(";")),
        }
    }
}

/// A code as one JSON object, keys in column order.
#[derive(Debug)]
struct JsonRow(StatusCode);

impl Serialize for JsonRow {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(COLUMNS.len()))?;
        for (name, cell) in COLUMNS {
            map.serialize_entry(name, &cell(self.0))?;
        }
        map.end()
    }
}

/// Every code as a JSON array.
#[derive(Debug)]
struct JsonTable;

impl Serialize for JsonTable {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(StatusCode::all().map(JsonRow))
    }
}

fn table(format: Format, out: &mut impl Write) -> io::Result<()> {
    let header = || COLUMNS.iter().map(|(name, _)| (*name).to_owned());
    let cells = |code| COLUMNS.iter().map(move |(_, cell)| cell(code).to_string());
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &JsonTable)?;
            writeln!(out)
        }
        Format::Csv => {
            write_csv_row(out, header())?;
            StatusCode::all().try_for_each(|code| write_csv_row(out, cells(code)))
        }
        Format::Markdown => {
            write_markdown_row(out, header())?;
            write_markdown_row(out, COLUMNS.iter().map(|_| "---".to_owned()))?;
            StatusCode::all().try_for_each(|code| write_markdown_row(out, cells(code)))
        }
    }
}

fn write_csv_row(out: &mut impl Write, fields: impl Iterator<Item = String>) -> io::Result<()> {
    let fields: Vec<String> = fields.map(|f| csv_field(&f)).collect();
    writeln!(out, "{}", fields.join(","))
}

fn write_markdown_row(out: &mut impl Write, cells: impl Iterator<Item = String>) -> io::Result<()> {
    let cells: Vec<String> = cells.map(|c| markdown_cell(&c)).collect();
    writeln!(out, "| {} |", cells.join(" | "))
}

/// An RFC 4180 field: quoted (inner quotes doubled) if it holds a comma, quote or line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// A Markdown table cell: pipes escaped and line breaks flattened, so the row stays one row.
fn markdown_cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\r', '\n'], " ")
}
