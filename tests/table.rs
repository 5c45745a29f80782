//! The crate's table against the documents it mirrors: Clarifai's status table
//! (`data/status-codes.md`), every value of Clarifai's official enum (`data/official-codes.tsv`,
//! clarifai-grpc 12.6.0), and every number and name any clarifai-grpc release from 6.x on and the
//! pinned clarifai-nodejs-grpc published (`data/clarifai-history.tsv`, rebuilt by
//! `codegen/history.py`).

use std::collections::{BTreeMap, BTreeSet};

use clarifai_status::StatusCode;

const STATUS_TABLE: &str = include_str!("data/status-codes.md");
const OFFICIAL_ENUM: &str = include_str!("data/official-codes.tsv");
const HISTORY: &str = include_str!("data/clarifai-history.tsv");

/// The names the crate gives the table's nameless rows (24153 and 40019 as early official protos
/// named them; 42000-42006 never had official names).
const NAMES_FOR_NAMELESS_ROWS: [(i32, &str); 9] = [
    (24153, "ANNOTATION_IN_PROGRESS"),
    (40019, "DATABASE_LOCKED_BY_ONGOING_OPERATION"),
    (42000, "VISUALIZATION_SUCCESS"),
    (42001, "VISUALIZATION_PENDING"),
    (42002, "VISUALIZATION_FAILED"),
    (42003, "VISUALIZATION_INVALID_REQUEST"),
    (42004, "VISUALIZATION_MISSING_APPLICATION"),
    (42005, "VISUALIZATION_TOO_MANY_URLS"),
    (42006, "VISUALIZATION_NO_INPUTS"),
];

/// A numbered row of the status table.
#[derive(Debug)]
struct TableRow {
    number: i32,
    /// Empty for the nameless rows.
    name: String,
    description: String,
}

/// Every numbered row of the status table, in document order; section headings, the header and
/// the "reserved" note have no number and are skipped.
fn table_rows() -> Vec<TableRow> {
    STATUS_TABLE
        .lines()
        .filter(|line| line.trim_start().starts_with('|'))
        .filter_map(|line| {
            let cells: Vec<&str> = line.trim().split('|').map(str::trim).collect();
            // `| a | b | c |` splits into ["", a, b, c, ""].
            assert_eq!(cells.len(), 5, "not a three-cell row: {line:?}");
            let number = cells[1].parse().ok()?;
            Some(TableRow {
                number,
                name: cells[2].to_owned(),
                description: cells[3].to_owned(),
            })
        })
        .collect()
}

/// A value of the official enum.
#[derive(Debug)]
struct OfficialName {
    number: i32,
    name: String,
    deprecated: bool,
}

fn official_names() -> Vec<OfficialName> {
    let mut lines = OFFICIAL_ENUM.lines().filter(|line| !line.starts_with('#'));
    assert_eq!(
        lines.next(),
        Some("number\tname\tdeprecated\tin_seed_table")
    );
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(fields.len(), 4, "not a four-field line: {line:?}");
            let deprecated = match fields[2] {
                "deprecated" => true,
                "" => false,
                other => panic!("unexpected deprecation mark {other:?} in {line:?}"),
            };
            OfficialName {
                number: fields[0].parse().expect("a number in the first column"),
                name: fields[1].to_owned(),
                deprecated,
            }
        })
        .collect()
}

/// A (number, name) Clarifai published, with the releases that had it.
#[derive(Debug)]
struct Published {
    number: i32,
    name: String,
    /// The first release whose enum lacks the name for the number; empty if the newest has it.
    gone_in: String,
    /// clarifai-nodejs-grpc 11.11.0 has it.
    node: bool,
}

fn history() -> Vec<Published> {
    let mut lines = HISTORY.lines().filter(|line| !line.starts_with('#'));
    assert_eq!(
        lines.next(),
        Some("number\tname\tfirst\tlast\tgone_in\tnode")
    );
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(fields.len(), 6, "not a six-field line: {line:?}");
            Published {
                number: fields[0].parse().expect("a number in the first column"),
                name: fields[1].to_owned(),
                gone_in: fields[4].to_owned(),
                node: fields[5] == "yes",
            }
        })
        .collect()
}

/// `major.minor.patch` as numbers, to order releases.
fn release(text: &str) -> Vec<u32> {
    text.split('.').map(|p| p.parse().unwrap()).collect()
}

/// The name the table gives a published (number, name): the name itself, unless Clarifai later
/// gave it to another number (the name then parses to that newest number, and the old number
/// is named `NAME_NUMBER`: 6400-6403, the JOB_* names of clarifai-grpc 7.2.0 to 7.8.0).
fn table_name(published: &Published, all: &[Published]) -> String {
    let moved = all
        .iter()
        .any(|p| p.name == published.name && p.number != published.number && p.gone_in.is_empty());
    if moved {
        format!("{}_{}", published.name, published.number)
    } else {
        published.name.clone()
    }
}

/// The name the crate prints for a table row: the table's, or the one it gives a nameless row.
fn expected_name(row: &TableRow) -> &str {
    if !row.name.is_empty() {
        return &row.name;
    }
    NAMES_FOR_NAMELESS_ROWS
        .iter()
        .find(|(number, _)| *number == row.number)
        .map_or_else(
            || panic!("{} has no name in the table nor in this test", row.number),
            |(_, name)| *name,
        )
}

#[test]
fn every_row_of_the_status_table_is_known_with_its_name_and_description() {
    let rows = table_rows();
    assert_eq!(rows.len(), 336);
    let mut nameless = Vec::new();
    for row in &rows {
        let code = StatusCode::from_number(row.number)
            .unwrap_or_else(|| panic!("{} is in the status table but not known", row.number));
        assert_eq!(code.name(), expected_name(row), "name of {}", row.number);
        if row.name.is_empty() {
            nameless.push(row.number);
        }
        if !row.description.is_empty() {
            assert_eq!(
                code.description(),
                row.description,
                "description of {}",
                row.number
            );
        }
    }
    let listed: Vec<i32> = NAMES_FOR_NAMELESS_ROWS.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        nameless, listed,
        "the nameless rows are exactly those named here"
    );
}

#[test]
fn every_official_name_parses_to_its_number_with_its_deprecation() {
    let names = official_names();
    assert_eq!(names.len(), 429);
    let numbers: BTreeSet<i32> = names.iter().map(|n| n.number).collect();
    assert_eq!(numbers.len(), 425);
    for official in &names {
        let code = StatusCode::from_name(&official.name)
            .unwrap_or_else(|| panic!("official name {} is not known", official.name));
        assert_eq!(code.number(), official.number, "{}", official.name);
        assert_eq!(
            StatusCode::name_is_deprecated(&official.name),
            Some(official.deprecated),
            "deprecation of {}",
            official.name
        );
    }
}

#[test]
fn all_is_sorted_without_duplicates_and_is_the_union_of_the_documents() {
    let all: Vec<i32> = StatusCode::all().map(StatusCode::number).collect();
    assert!(
        all.windows(2).all(|w| w[0] < w[1]),
        "all() is strictly increasing"
    );

    let mut union: BTreeSet<i32> = table_rows().iter().map(|r| r.number).collect();
    union.extend(official_names().iter().map(|n| n.number));
    union.insert(StatusCode::Zero.number());
    assert_eq!(union.len(), 441);
    union.extend(history().iter().map(|p| p.number));
    assert_eq!(union.len(), 460);
    assert_eq!(all, union.into_iter().collect::<Vec<_>>());
    assert_eq!(StatusCode::all().len(), 460);
}

#[test]
fn every_name_of_a_number_in_the_documents_is_known_and_no_other() {
    let mut names: BTreeMap<i32, BTreeSet<String>> = BTreeMap::new();
    let history = history();
    for published in &history {
        names
            .entry(published.number)
            .or_default()
            .insert(table_name(published, &history));
    }
    for row in table_rows() {
        let name = expected_name(&row).to_owned();
        names.entry(row.number).or_default().insert(name);
    }
    for official in official_names() {
        names
            .entry(official.number)
            .or_default()
            .insert(official.name);
    }
    for code in StatusCode::all() {
        let mut known: BTreeSet<String> = code.aliases().iter().map(|a| (*a).to_owned()).collect();
        assert!(
            known.insert(code.name().to_owned()),
            "{code} is its own alias"
        );
        assert_eq!(
            Some(&known),
            names.get(&code.number()),
            "names of {}",
            code.number()
        );
    }
}

#[test]
fn aliased_numbers_print_the_status_table_name_and_keep_the_other_as_alias() {
    let rows = table_rows();
    let official = official_names();
    for number in [30000, 30001, 30002, 30003, 54005] {
        let table_name = &rows.iter().find(|r| r.number == number).unwrap().name;
        let others: Vec<&str> = official
            .iter()
            .filter(|n| n.number == number && n.name != *table_name)
            .map(|n| n.name.as_str())
            .collect();
        assert_eq!(others.len(), 1, "{number} has a second name: {others:?}");

        let code = StatusCode::from_number(number).unwrap();
        assert_eq!(code.name(), table_name);
        assert_eq!(code.aliases(), others);
        assert_eq!(StatusCode::from_name(table_name), Some(code));
        assert_eq!(StatusCode::from_name(others[0]), Some(code));
    }
    let aliased: Vec<i32> = StatusCode::all()
        .filter(|c| !c.aliases().is_empty())
        .map(StatusCode::number)
        .collect();
    assert_eq!(
        aliased,
        [
            25501, 30000, 30001, 30002, 30003, 43100, 43101, 43102, 43103, 43104, 43105, 54005,
            54100, 54204, 71005
        ]
    );
}

#[test]
fn every_number_and_name_clarifai_published_parses() {
    let history = history();
    assert_eq!(history.len(), 465);
    for published in &history {
        let code = StatusCode::from_number(published.number)
            .unwrap_or_else(|| panic!("{} ({}) is not known", published.number, published.name));
        let name = table_name(published, &history);
        assert_eq!(
            StatusCode::from_name(&name),
            Some(code),
            "{name} does not parse to {}",
            published.number
        );
        // A name Clarifai moved parses to its newest number.
        if name != published.name {
            let newest = history
                .iter()
                .find(|p| p.name == published.name && p.gone_in.is_empty())
                .unwrap();
            assert_eq!(
                StatusCode::from_name(&published.name).map(StatusCode::number),
                Some(newest.number)
            );
        }
    }
    let node: Vec<&Published> = history.iter().filter(|p| p.node).collect();
    assert_eq!(node.len(), 433, "clarifai-nodejs-grpc 11.11.0's values");
    for removed in [71001, 71002, 71006] {
        assert!(
            node.iter().any(|p| p.number == removed),
            "node has {removed}"
        );
    }
}

#[test]
fn codes_clarifai_removed_are_deprecated_with_the_release_that_removed_them() {
    let history = history();
    let mut marked = Vec::new();
    for code in StatusCode::all() {
        let published: Vec<&Published> = history
            .iter()
            .filter(|p| p.number == code.number())
            .collect();
        // Removed: published, and no name of it is in the newest release. The release that
        // removed it is the one after the last that had any name of it.
        let removed_in = if !published.is_empty() && published.iter().all(|p| !p.gone_in.is_empty())
        {
            published
                .iter()
                .map(|p| p.gone_in.as_str())
                .max_by_key(|r| release(r))
        } else {
            None
        };
        assert_eq!(code.removed_in(), removed_in, "removal of {code}");
        if removed_in.is_some() {
            marked.push(code.number());
            assert!(code.is_deprecated(), "{code} is removed, so deprecated");
            assert_eq!(StatusCode::name_is_deprecated(code.name()), Some(true));
        }
    }
    assert_eq!(
        marked,
        [
            6400, 6401, 6402, 6403, 25407, 25500, 25501, 25502, 25503, 25505, 25506, 40018, 40019,
            41200, 41201, 41202, 41203, 41204, 52000, 52001, 52002, 52003, 71001, 71002, 71006
        ]
    );
}

#[test]
fn former_names_are_deprecated_aliases_and_numbers_print_their_newest_name() {
    let history = history();
    let official = official_names();
    let rows = table_rows();
    let mut former = Vec::new();
    for published in history.iter().filter(|p| !p.gone_in.is_empty()) {
        let code = StatusCode::from_number(published.number).unwrap();
        let name = table_name(published, &history);
        // A former name of a number Clarifai still has (or had later under another name).
        let renamed = history.iter().any(|p| {
            p.number == published.number
                && p.name != published.name
                && (p.gone_in.is_empty() || release(&p.gone_in) > release(&published.gone_in))
        });
        // The documents' names keep their place (54005 prints the documented table's name).
        let documented = official.iter().any(|o| o.name == published.name)
            || rows.iter().any(|r| r.name == published.name);
        if renamed && !documented {
            assert!(
                code.aliases().contains(&name.as_str()),
                "{name} is an alias of {code}"
            );
            assert_eq!(StatusCode::name_is_deprecated(&name), Some(true), "{name}");
            former.push(name);
        }
    }
    assert_eq!(former.len(), 10, "{former:?}");
    // A number the documents did not have prints its newest name.
    assert_eq!(
        StatusCode::from_number(25501).unwrap().name(),
        "INPUTS_EXTRACTION_JOB_FAILED"
    );
    assert_eq!(
        StatusCode::from_name("INPUTS_ADD_JOBS_FAILED").map(StatusCode::number),
        Some(25501)
    );
    // Numbers the documented table has keep its name; Clarifai's earlier one is an alias.
    assert_eq!(
        StatusCode::from_number(71005).unwrap().name(),
        "TWILIO_PHONE_NUMBER_BLOCKED"
    );
    assert_eq!(
        StatusCode::from_name("TWILIO_RESOURCE_NOT_FOUND").map(StatusCode::number),
        Some(71005)
    );
}
