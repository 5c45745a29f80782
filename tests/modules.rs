//! The core crate's top-level modules form no import cycle: read from `src/` itself, each
//! module's `crate::...` paths (in its files, and the generated files it `include!`s) give the
//! modules it uses; the crate root's re-exports (`crate::Code`, `crate::StatusCode`, ...) count
//! as the modules that define them. Comments are left out: a doc link is no import.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The text without `//` comments (doc comments included) and without string literals' text,
/// so neither a doc link nor an example makes an edge.
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_string = false;
        let mut escaped = false;
        let mut prev = '\0';
        for c in line.chars() {
            if in_string {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    in_string = false;
                    out.push('"');
                }
                prev = c;
                continue;
            }
            if c == '/' && prev == '/' {
                out.pop();
                break;
            }
            if c == '"' {
                in_string = true;
            }
            out.push(c);
            prev = c;
        }
        out.push('\n');
    }
    out
}

/// Every file of a module: `src/name.rs` or everything under `src/name/`, and what they include.
fn module_files(name: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let file = src().join(format!("{name}.rs"));
    if file.exists() {
        files.push(file);
    }
    let mut dirs = vec![src().join(name)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut i = 0;
    while i < files.len() {
        let text = fs::read_to_string(&files[i]).unwrap();
        for rest in text.split("include!(\"").skip(1) {
            let included = &rest[..rest.find('"').unwrap()];
            files.push(files[i].parent().unwrap().join(included));
        }
        i += 1;
    }
    files
}

/// The identifiers that follow `crate::` (or `$crate::`), braces of a `use crate::{...}` opened
/// one level.
fn crate_paths(code: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = Vec::new();
    for rest in code.split("crate::").skip(1) {
        let rest = rest.trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            // The top-level items of the group: split at commas outside nested braces.
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.push(ident(item.trim()));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            found.push(ident(item.trim()));
        } else {
            found.push(ident(rest));
        }
    }
    found.retain(|f| !f.is_empty());
    found
}

/// The top-level modules declared in `lib.rs`, and the module each root re-export comes from.
fn modules_and_reexports() -> (BTreeSet<String>, BTreeMap<String, String>) {
    let lib = code_only(&fs::read_to_string(src().join("lib.rs")).unwrap());
    let mut modules = BTreeSet::new();
    let mut reexports = BTreeMap::new();
    for line in lib.lines().map(str::trim) {
        let line = line.strip_prefix("pub ").unwrap_or(line);
        if let Some(name) = line.strip_prefix("mod ") {
            modules.insert(name.trim_end_matches(';').to_owned());
        }
    }
    for line in lib.lines().map(str::trim) {
        let Some(path) = line.strip_prefix("pub use ") else {
            continue;
        };
        let path = path.trim_end_matches(';');
        let (module, items) = path.split_once("::").unwrap();
        let items = items.rsplit("::").next().unwrap();
        for item in items.trim_matches(|c| c == '{' || c == '}').split(',') {
            reexports.insert(item.trim().to_owned(), module.to_owned());
        }
    }
    (modules, reexports)
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let (modules, reexports) = modules_and_reexports();
    let mut graph = BTreeMap::new();
    for module in &modules {
        let mut uses = BTreeSet::new();
        for file in module_files(module) {
            let code = code_only(&fs::read_to_string(&file).unwrap());
            for name in crate_paths(&code) {
                let target = if modules.contains(&name) {
                    Some(name)
                } else {
                    reexports.get(&name).cloned()
                };
                if let Some(target) = target.filter(|t| t != module) {
                    uses.insert(target);
                }
            }
        }
        graph.insert(module.clone(), uses);
    }
    graph
}

/// A cycle of `graph`, as the modules along it, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, done, path) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut done, &mut Vec::new()))
}

#[test]
fn the_top_level_modules_form_no_cycle() {
    let graph = graph();
    // The reader sees the modules and their imports (a broken reader would pass vacuously).
    assert!(graph["code"].contains("table"), "{graph:#?}");
    assert!(graph["grpc"].contains("pb"), "{graph:#?}");
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "the top-level modules import in a cycle: {}\n{graph:#?}",
            cycle.join(" -> ")
        );
    }
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let edge = |graph: &mut BTreeMap<String, BTreeSet<String>>, a: &str, b: &str| {
        graph.entry(a.into()).or_default().insert(b.into());
    };
    edge(&mut graph, "code", "pb");
    edge(&mut graph, "pb", "table");
    edge(&mut graph, "grpc", "pb");
    assert_eq!(find_cycle(&graph), None);
    edge(&mut graph, "table", "code");
    assert_eq!(find_cycle(&graph).unwrap(), ["code", "pb", "table", "code"]);
}

#[test]
fn paths_are_read_from_code_not_comments_or_strings() {
    let code = code_only(
        "use crate::{pb::{self, Status}, Code};\n// crate::retry\nlet s = \"crate::server\"; crate::table::ROWS",
    );
    assert_eq!(crate_paths(&code), ["pb", "Code", "table"]);
}
