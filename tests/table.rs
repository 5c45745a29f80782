//! The crate's table against the two documents it mirrors: Clarifai's status table
//! (`data/status-codes.md`) and every value of Clarifai's official enum (`data/official-codes.tsv`).

use std::collections::{BTreeMap, BTreeSet};

use clarifai_status::StatusCode;

const STATUS_TABLE: &str = include_str!("data/status-codes.md");
const OFFICIAL_ENUM: &str = include_str!("data/official-codes.tsv");

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
fn all_is_sorted_without_duplicates_and_is_the_union_of_both_documents() {
    let all: Vec<i32> = StatusCode::all().map(StatusCode::number).collect();
    assert!(
        all.windows(2).all(|w| w[0] < w[1]),
        "all() is strictly increasing"
    );

    let mut union: BTreeSet<i32> = table_rows().iter().map(|r| r.number).collect();
    union.extend(official_names().iter().map(|n| n.number));
    union.insert(StatusCode::Zero.number());
    assert_eq!(union.len(), 441);
    assert_eq!(all, union.into_iter().collect::<Vec<_>>());
    assert_eq!(StatusCode::all().len(), 441);
}

#[test]
fn every_name_of_a_number_in_either_document_is_known_and_no_other() {
    let mut names: BTreeMap<i32, BTreeSet<String>> = BTreeMap::new();
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
    assert_eq!(aliased, [30000, 30001, 30002, 30003, 54005]);
}
