//! Clarifai's published `StatusCode` enum, read from a clarifai-grpc wheel or a
//! `FileDescriptorSet`, and what differs between it and the table.
//!
//! A wheel is a zip; its `clarifai_grpc/grpc/api/status/status_code_pb2.py` embeds the
//! serialized `FileDescriptorProto` of Clarifai's `status_code.proto` as a Python bytes literal
//! (`AddSerializedFile(b'...')` from protoc 3.20 on, `serialized_pb=b'...'` before). The literal
//! is unescaped and decoded with prost-types: the names and numbers come from the descriptor, not
//! from matching names in Python source.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::Path;

use prost::Message as _;
use prost_types::{FileDescriptorProto, FileDescriptorSet};

use crate::BuildResult;

/// The path of the status enum's module inside a clarifai-grpc wheel.
pub const WHEEL_MODULE: &str = "clarifai_grpc/grpc/api/status/status_code_pb2.py";

/// One value of Clarifai's `clarifai.api.status.StatusCode`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamValue {
    /// The value's number.
    pub number: i32,
    /// The value's name.
    pub name: String,
    /// Marked `deprecated = true` in Clarifai's proto.
    pub deprecated: bool,
}

/// Reads the `StatusCode` enum from a clarifai-grpc wheel (`.whl`) or, for any other file, a
/// serialized `FileDescriptorSet` holding `clarifai/api/status/status_code.proto`.
pub fn read_enum(path: &Path) -> BuildResult<Vec<UpstreamValue>> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let is_wheel = path.extension().is_some_and(|e| e == "whl") || bytes.starts_with(b"PK\x03\x04");
    let files = if is_wheel {
        vec![wheel_descriptor(&bytes).map_err(|e| format!("{}: {e}", path.display()))?]
    } else {
        FileDescriptorSet::decode(bytes.as_slice())
            .map_err(|e| format!("{}: not a FileDescriptorSet: {e}", path.display()))?
            .file
    };
    files.iter().find_map(status_enum).ok_or_else(|| {
        format!(
            "{}: no enum clarifai.api.status.StatusCode in it",
            path.display()
        )
        .into()
    })
}

/// The descriptor embedded in a wheel's [`WHEEL_MODULE`].
pub fn wheel_descriptor(wheel: &[u8]) -> BuildResult<FileDescriptorProto> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(wheel))?;
    let mut module = String::new();
    archive
        .by_name(WHEEL_MODULE)
        .map_err(|e| format!("{WHEEL_MODULE}: {e}"))?
        .read_to_string(&mut module)?;
    let serialized = embedded_descriptor(&module)?;
    Ok(FileDescriptorProto::decode(serialized.as_slice())?)
}

/// The bytes of the serialized descriptor a protoc-generated `_pb2.py` embeds.
pub fn embedded_descriptor(module: &str) -> BuildResult<Vec<u8>> {
    let start = ["AddSerializedFile(b'", "serialized_pb=b'"]
        .iter()
        .find_map(|marker| module.find(marker).map(|at| at + marker.len()))
        .ok_or("no serialized descriptor (AddSerializedFile(b'...') or serialized_pb=b'...')")?;
    python_bytes(&module[start..])
}

/// Unescapes the body of a single-quoted Python bytes literal, up to its closing quote.
fn python_bytes(text: &str) -> BuildResult<Vec<u8>> {
    let src = text.as_bytes();
    let mut out = Vec::with_capacity(src.len());
    let mut i = 0;
    while i < src.len() {
        let b = src[i];
        i += 1;
        match b {
            b'\'' => return Ok(out),
            b'\\' => {
                let e = *src.get(i).ok_or("a bytes literal ends in a backslash")?;
                i += 1;
                match e {
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'a' => out.push(0x07),
                    b'b' => out.push(0x08),
                    b'f' => out.push(0x0c),
                    b'v' => out.push(0x0b),
                    b'\\' | b'\'' | b'"' => out.push(e),
                    b'\n' => {}
                    b'x' => {
                        let hex = src.get(i..i + 2).ok_or("a short \\x escape")?;
                        out.push(u8::from_str_radix(std::str::from_utf8(hex)?, 16)?);
                        i += 2;
                    }
                    b'0'..=b'7' => {
                        let mut value = u32::from(e - b'0');
                        let mut digits = 1;
                        while digits < 3 && matches!(src.get(i), Some(b'0'..=b'7')) {
                            value = value * 8 + u32::from(src[i] - b'0');
                            i += 1;
                            digits += 1;
                        }
                        out.push(u8::try_from(value)?);
                    }
                    other => {
                        return Err(format!(
                            "unknown escape \\{} in a bytes literal",
                            other as char
                        )
                        .into())
                    }
                }
            }
            b'\n' => return Err("a bytes literal runs past its line".into()),
            _ => out.push(b),
        }
    }
    Err("a bytes literal without its closing quote".into())
}

/// The values of `clarifai.api.status.StatusCode`, if `file` declares it.
fn status_enum(file: &FileDescriptorProto) -> Option<Vec<UpstreamValue>> {
    if file.package() != "clarifai.api.status" {
        return None;
    }
    let status = file.enum_type.iter().find(|e| e.name() == "StatusCode")?;
    Some(
        status
            .value
            .iter()
            .map(|v| UpstreamValue {
                number: v.number(),
                name: v.name().to_owned(),
                deprecated: v.options.as_ref().is_some_and(|o| o.deprecated()),
            })
            .collect(),
    )
}

/// One number of the table, as the comparison sees it.
#[derive(Clone, Debug)]
pub struct TableCode {
    /// The code's number.
    pub number: i32,
    /// Its printed name, then its aliases.
    pub names: Vec<String>,
    /// The release that removed it, if the table says so.
    pub removed_in: Option<String>,
}

/// What differs between a published enum and the table.
#[derive(Debug, Default)]
pub struct Diff {
    /// Numbers the release has and the table lacks, with every name the release gives each.
    pub new_numbers: BTreeMap<i32, Vec<UpstreamValue>>,
    /// Names the release gives a number the table has, and the table lacks (a rename, or a new
    /// alias), with the table's printed name of that number.
    pub new_names: Vec<(UpstreamValue, String)>,
    /// Numbers of the table the release lacks that the table does not mark removed: removed by
    /// this release, or never in Clarifai's enum (rows only the documented table has).
    pub missing_numbers: Vec<TableCode>,
    /// Names of the table the release lacks, for numbers the release has (an earlier name of a
    /// renamed code, or a name only the documented table uses).
    pub missing_names: Vec<(i32, String)>,
    /// Codes the table marks removed that the release has again.
    pub back_again: Vec<TableCode>,
    /// Names the release gives a number that the table gives another number (Clarifai moved the
    /// name), with the table's number. A name has one number in the table (proto enum names are
    /// unique), the one the table already gives it; `--add` names a new number whose name moved
    /// `NAME_NUMBER`.
    pub moved_names: Vec<(UpstreamValue, i32)>,
}

impl Diff {
    /// Compares `release` (the values of a published enum) with `table`.
    pub fn new(release: &[UpstreamValue], table: &[TableCode]) -> Diff {
        let by_number: BTreeMap<i32, &TableCode> = table.iter().map(|c| (c.number, c)).collect();
        let released: BTreeSet<i32> = release.iter().map(|v| v.number).collect();
        let released_names: BTreeSet<&str> = release.iter().map(|v| v.name.as_str()).collect();
        let table_names: BTreeMap<&str, i32> = table
            .iter()
            .flat_map(|c| c.names.iter().map(|n| (n.as_str(), c.number)))
            .collect();
        let mut diff = Diff::default();
        for value in release {
            if let Some(number) = table_names.get(value.name.as_str()) {
                if *number != value.number {
                    diff.moved_names.push((value.clone(), *number));
                    if by_number.contains_key(&value.number) {
                        continue;
                    }
                }
            }
            match by_number.get(&value.number) {
                None => diff
                    .new_numbers
                    .entry(value.number)
                    .or_default()
                    .push(value.clone()),
                Some(code) if !code.names.contains(&value.name) => {
                    diff.new_names.push((value.clone(), code.names[0].clone()))
                }
                Some(_) => {}
            }
        }
        for code in table {
            if !released.contains(&code.number) {
                if code.removed_in.is_none() {
                    diff.missing_numbers.push(code.clone());
                }
                continue;
            }
            if code.removed_in.is_some() {
                diff.back_again.push(code.clone());
            }
            for name in &code.names {
                if !released_names.contains(name.as_str()) {
                    diff.missing_names.push((code.number, name.clone()));
                }
            }
        }
        diff
    }

    /// Whether the release has a number or a name the table lacks.
    pub fn has_new(&self) -> bool {
        !self.new_numbers.is_empty() || !self.new_names.is_empty()
    }

    /// The report the `diff` command prints.
    pub fn report(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "new numbers (the release has them, the table does not): {}",
            self.new_numbers.len()
        );
        for values in self.new_numbers.values() {
            for v in values {
                let dep = if v.deprecated { " (deprecated)" } else { "" };
                let _ = writeln!(s, "  {} {}{dep}", v.number, v.name);
            }
        }
        let _ = writeln!(
            s,
            "new names of numbers the table has (renamed, or a new alias): {}",
            self.new_names.len()
        );
        for (v, printed) in &self.new_names {
            let _ = writeln!(s, "  {} {} (the table prints {printed})", v.number, v.name);
        }
        let _ = writeln!(
            s,
            "numbers the release lacks that the table does not mark removed (removed by this release, or rows only the documented table has): {}",
            self.missing_numbers.len()
        );
        for c in &self.missing_numbers {
            let _ = writeln!(s, "  {} {}", c.number, c.names.join(" / "));
        }
        let _ = writeln!(
            s,
            "names the release lacks, of numbers it has (former names, or the documented table's): {}",
            self.missing_names.len()
        );
        for (number, name) in &self.missing_names {
            let _ = writeln!(s, "  {number} {name}");
        }
        if !self.moved_names.is_empty() {
            let _ = writeln!(
                s,
                "names the release gives another number than the table does (the table keeps its number): {}",
                self.moved_names.len()
            );
            for (v, table) in &self.moved_names {
                let _ = writeln!(s, "  {} {} (the table's {table})", v.number, v.name);
            }
        }
        if !self.back_again.is_empty() {
            let _ = writeln!(
                s,
                "codes the table marks removed that the release has again: {}",
                self.back_again.len()
            );
            for c in &self.back_again {
                let _ = writeln!(s, "  {} {}", c.number, c.names[0]);
            }
        }
        s
    }
}

/// Adds the release's new numbers and names to the text of `status_code.proto`: each new number
/// as a code whose facts are copied from its nearest neighbour of the same family (the same
/// hundred if it has one, else the same thousand), marked `unreviewed: true`, so the generator refuses the table until a maintainer
/// has reviewed them; each new name of a known number as an alias after that number's values.
/// `release` names the release in the comments (`clarifai-grpc 12.6.0`). Returns the new text.
pub fn add_to_proto(proto: &str, diff: &Diff, release: &str) -> BuildResult<String> {
    let mut lines: Vec<String> = proto.lines().map(str::to_owned).collect();
    for (number, values) in &diff.new_numbers {
        let declared = declarations(&lines)?;
        let neighbour = declared
            .iter()
            .filter(|d| d.facts.is_some() && d.number / 1000 == number / 1000 && d.number != 0)
            .min_by_key(|d| {
                (
                    d.number / 100 != number / 100,
                    (d.number - number).abs(),
                    d.number > *number,
                )
            });
        let (facts, from) = match neighbour {
            Some(d) => {
                let (start, end) = d.facts.expect("filtered on facts");
                (
                    family_facts(&lines[start..=end]),
                    format!("{} ({})", d.name, d.number),
                )
            }
            None => (
                vec![
                    "    category: \"Uncategorized\"".to_owned(),
                    "    outcome: FAILURE".to_owned(),
                    "    grpc: UNKNOWN".to_owned(),
                ],
                "no neighbour: a failure, gRPC UNKNOWN".to_owned(),
            ),
        };
        let mut block = vec![format!(
            "  // Added from {release} by `clarifai-status-codegen diff --add`; facts copied from {from}: review them, then delete `unreviewed`."
        )];
        // A name the table gives another number stays there; the new number is named
        // NAME_NUMBER (proto enum names are unique), its comment says why.
        let taken: BTreeSet<&str> = diff
            .moved_names
            .iter()
            .map(|(v, _)| v.name.as_str())
            .collect();
        let named = |v: &UpstreamValue| {
            if taken.contains(v.name.as_str()) {
                format!("{}_{}", v.name, v.number)
            } else {
                v.name.clone()
            }
        };
        for v in values.iter().filter(|v| taken.contains(v.name.as_str())) {
            block.push(format!(
                "  // {release} names it {}, a name the table gives another number.",
                v.name
            ));
        }
        for (i, v) in values.iter().enumerate() {
            let name = named(v);
            if i == 0 {
                let dep = if v.deprecated {
                    "deprecated = true, "
                } else {
                    ""
                };
                block.push(format!(
                    "  {name} = {} [{dep}(clarifai.status.meta.code) = {{",
                    v.number
                ));
                block.push(format!("    description: {:?}", describe(&v.name)));
                block.extend(facts.iter().cloned());
                block.push("    unreviewed: true".to_owned());
                block.push("  }];".to_owned());
            } else {
                let dep = if v.deprecated {
                    " [deprecated = true]"
                } else {
                    ""
                };
                block.push(format!("  {name} = {}{dep};", v.number));
            }
        }
        // Before the first value with a larger number (and the comment above it), or at the end
        // of the enum.
        let at = match declared.iter().find(|d| d.number > *number) {
            Some(next) => {
                let mut at = next.line;
                while at > 0 && lines[at - 1].trim_start().starts_with("//") {
                    at -= 1;
                }
                at
            }
            None => enum_end(&lines)?,
        };
        lines.splice(at..at, block);
    }
    for (value, _) in &diff.new_names {
        let declared = declarations(&lines)?;
        let last = declared
            .iter()
            .filter(|d| d.number == value.number)
            .map(|d| d.facts.map_or(d.line, |(_, end)| end))
            .max()
            .ok_or_else(|| format!("{} is not declared", value.number))?;
        let dep = if value.deprecated {
            " [deprecated = true]"
        } else {
            ""
        };
        lines.insert(
            last + 1,
            format!(
                "  // Added from {release} by `clarifai-status-codegen diff --add`: an alias; to print it instead, move the facts onto it."
            ),
        );
        lines.insert(
            last + 2,
            format!("  {} = {}{dep};", value.name, value.number),
        );
    }
    let mut text = lines.join("\n");
    text.push('\n');
    Ok(text)
}

/// A value of the enum as the proto's text declares it.
struct Declared {
    name: String,
    number: i32,
    /// Its line.
    line: usize,
    /// The lines of its `(clarifai.status.meta.code)` block, first and last, if it has one.
    facts: Option<(usize, usize)>,
}

/// Every value of `enum StatusCode` in the proto's text, in order.
fn declarations(lines: &[String]) -> BuildResult<Vec<Declared>> {
    let start = lines
        .iter()
        .position(|l| l.starts_with("enum StatusCode {"))
        .ok_or("no `enum StatusCode {` line")?;
    let end = enum_end(lines)?;
    let mut out = Vec::new();
    let mut i = start + 1;
    while i < end {
        let line = lines[i].trim();
        let decl = line.split_once(" = ").filter(|(name, _)| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        });
        if let Some((name, rest)) = decl {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let number: i32 = digits
                .parse()
                .map_err(|_| format!("line {}: no number", i + 1))?;
            let facts = if rest.contains("(clarifai.status.meta.code)") {
                let close = (i..end)
                    .find(|j| lines[*j].trim() == "}];")
                    .ok_or_else(|| format!("line {}: facts without `}}];`", i + 1))?;
                Some((i, close))
            } else {
                None
            };
            out.push(Declared {
                name: name.to_owned(),
                number,
                line: i,
                facts,
            });
            if let Some((_, close)) = facts {
                i = close;
            }
        }
        i += 1;
    }
    Ok(out)
}

/// The line closing `enum StatusCode`.
fn enum_end(lines: &[String]) -> BuildResult<usize> {
    let start = lines
        .iter()
        .position(|l| l.starts_with("enum StatusCode {"))
        .ok_or("no `enum StatusCode {` line")?;
    (start..lines.len())
        .find(|i| lines[*i] == "}")
        .ok_or_else(|| "enum StatusCode is not closed".into())
}

/// The facts of a neighbour worth copying: category, outcome, grpc (not its description,
/// retryability, HTTP status or removal, which are the code's own).
fn family_facts(block: &[String]) -> Vec<String> {
    block
        .iter()
        .filter(|l| {
            let l = l.trim_start();
            l.starts_with("category:") || l.starts_with("outcome:") || l.starts_with("grpc:")
        })
        .cloned()
        .collect()
}

/// A starting description from a name: `KAFKA_MISSING_TOPIC` -> "Kafka missing topic".
fn describe(name: &str) -> String {
    let lower = name.replace('_', " ").to_lowercase();
    let mut chars = lower.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
