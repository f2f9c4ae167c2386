//! The contract tables, parsed out of `docs/contracts.md`.
//!
//! The doc has three sections, each found by its heading and read from the
//! first markdown table under it:
//!
//! | heading starts with        | column 1 | column 2                                   |
//! | -------------------------- | -------- | ------------------------------------------ |
//! | `Allowed edges`            | a box    | the boxes it may depend on (`*`: any box)  |
//! | `Allowed external crates`  | a box    | the non-workspace crates it may depend on  |
//! | `Forbidden paths`          | a box    | boxes it must never reach, even indirectly |
//!
//! Names may be in backticks; a list is comma-separated; `—`, `-` or an
//! empty cell means none. Further columns are prose and are not read. Every
//! box has exactly one row in each of the first two tables.
//!
//! **Invariant:** a parsed [`Table`] never allows a forbidden path: [`Table::parse`]
//! rejects a doc whose edge table would let a box reach what the third table
//! forbids, so checking edges one by one enforces the paths too.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

const EDGES: &str = "Allowed edges";
const EXTERNAL: &str = "Allowed external crates";
const FORBIDDEN: &str = "Forbidden paths";

/// What the design allows, as written in `docs/contracts.md`.
#[derive(Debug, Clone)]
pub struct Table {
    /// Box → the boxes it may depend on.
    edges: BTreeMap<String, Targets>,
    /// Box → the external crates it may depend on.
    external: BTreeMap<String, BTreeSet<String>>,
}

#[derive(Debug, Clone)]
enum Targets {
    /// `*`: every other box.
    Any,
    Only(BTreeSet<String>),
}

/// A malformed doc: the line (1-based) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.line, self.message)
    }
}

fn error<T>(line: usize, message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        line,
        message: message.into(),
    })
}

/// One table row: its line and its first two cells, parsed.
struct Row {
    line: usize,
    subject: String,
    list: Vec<String>,
}

/// One table: the line of its header and its rows.
struct Section {
    line: usize,
    rows: Vec<Row>,
}

impl Table {
    /// Parses the three tables out of the doc and checks that they agree.
    pub fn parse(doc: &str) -> Result<Self, ParseError> {
        let lines: Vec<&str> = doc.lines().collect();
        let edge_rows = section(&lines, EDGES)?;
        let external_rows = section(&lines, EXTERNAL)?;
        let forbidden_rows = section(&lines, FORBIDDEN)?;

        let mut edges = BTreeMap::new();
        for row in &edge_rows.rows {
            let targets = if row.list.iter().any(|t| t == "*") {
                if row.list.len() > 1 {
                    return error(
                        row.line,
                        "`*` (any box) cannot be combined with other names",
                    );
                }
                Targets::Any
            } else {
                Targets::Only(row.list.iter().cloned().collect())
            };
            if edges.insert(row.subject.clone(), targets).is_some() {
                return error(row.line, format!("box `{}` has two rows", row.subject));
            }
        }
        for row in &edge_rows.rows {
            for target in row.list.iter().filter(|t| *t != "*") {
                if target == &row.subject {
                    return error(row.line, format!("box `{target}` cannot depend on itself"));
                }
                if !edges.contains_key(target) {
                    return error(
                        row.line,
                        format!("`{target}` is not a box: give it a row of its own first"),
                    );
                }
            }
        }

        let mut external = BTreeMap::new();
        for row in &external_rows.rows {
            if !edges.contains_key(&row.subject) {
                return error(
                    row.line,
                    format!("`{}` has no row in the `{EDGES}` table", row.subject),
                );
            }
            if let Some(name) = row
                .list
                .iter()
                .find(|n| edges.contains_key(*n) || *n == "*")
            {
                return error(
                    row.line,
                    format!("`{name}` is not an external crate: list boxes in the `{EDGES}` table"),
                );
            }
            let crates = row.list.iter().cloned().collect();
            if external.insert(row.subject.clone(), crates).is_some() {
                return error(row.line, format!("box `{}` has two rows", row.subject));
            }
        }
        if let Some(missing) = edges.keys().find(|b| !external.contains_key(*b)) {
            return error(
                external_rows.line,
                format!("box `{missing}` has no row in this table (write `—` for none)"),
            );
        }

        let table = Self { edges, external };
        for row in &forbidden_rows.rows {
            for name in std::iter::once(&row.subject).chain(&row.list) {
                if !table.is_box(name) {
                    return error(row.line, format!("`{name}` is not a box"));
                }
            }
            for target in &row.list {
                if let Some(path) = table.allowed_path(&row.subject, target) {
                    return error(
                        row.line,
                        format!(
                            "the `{EDGES}` table lets {} reach {target} ({}), which this row \
                             forbids",
                            row.subject,
                            path.join(" -> ")
                        ),
                    );
                }
            }
        }
        Ok(table)
    }

    /// True when `name` has rows in the table.
    pub fn is_box(&self, name: &str) -> bool {
        self.edges.contains_key(name)
    }

    /// The boxes, in name order.
    pub fn boxes(&self) -> impl Iterator<Item = &str> {
        self.edges.keys().map(String::as_str)
    }

    /// May box `from` depend on workspace crate `to`? Only boxes may be
    /// depended on; `*` means any box but itself.
    pub fn allows_edge(&self, from: &str, to: &str) -> bool {
        match self.edges.get(from) {
            Some(Targets::Any) => from != to && self.is_box(to),
            Some(Targets::Only(targets)) => targets.contains(to),
            None => false,
        }
    }

    /// May box `from` depend on the external crate `krate`?
    pub fn allows_external(&self, from: &str, krate: &str) -> bool {
        self.external
            .get(from)
            .is_some_and(|crates| crates.contains(krate))
    }

    /// A chain of allowed edges from `from` to `to`, if there is one.
    fn allowed_path(&self, from: &str, to: &str) -> Option<Vec<String>> {
        let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = VecDeque::from([from]);
        while let Some(node) = queue.pop_front() {
            for next in self.boxes().filter(|b| self.allows_edge(node, b)) {
                if next == from || parent.contains_key(next) {
                    continue;
                }
                parent.insert(next, node);
                if next == to {
                    let mut path = vec![to.to_string()];
                    let mut at = to;
                    while at != from {
                        at = parent[at];
                        path.push(at.to_string());
                    }
                    path.reverse();
                    return Some(path);
                }
                queue.push_back(next);
            }
        }
        None
    }
}

/// Finds the section whose heading starts with `heading` and reads the first
/// table under it.
fn section(lines: &[&str], heading: &str) -> Result<Section, ParseError> {
    let is_heading = |line: &str| line.trim_start().starts_with('#');
    let matches = |line: &str| {
        let text = line.trim_start().trim_start_matches('#').trim();
        is_heading(line) && text.to_lowercase().starts_with(&heading.to_lowercase())
    };
    let mut found = lines.iter().enumerate().filter(|(_, l)| matches(l));
    let Some((at, _)) = found.next() else {
        return error(1, format!("no section headed `## {heading}`"));
    };
    if let Some((again, _)) = found.next() {
        return error(again + 1, format!("a second section headed `{heading}`"));
    }

    let mut i = at + 1;
    while i < lines.len() && !lines[i].trim_start().starts_with('|') {
        if is_heading(lines[i]) {
            break;
        }
        i += 1;
    }
    if i == lines.len() || !lines[i].trim_start().starts_with('|') {
        return error(at + 1, format!("section `{heading}` has no table"));
    }
    let start = i;
    while i < lines.len() && lines[i].trim_start().starts_with('|') {
        i += 1;
    }
    let block = &lines[start..i];

    let header = cells(block[0]);
    if header.len() < 2 {
        return error(start + 1, "a contract table needs at least two columns");
    }
    let separator_ok = block.get(1).is_some_and(|l| {
        let cells = cells(l);
        cells.len() == header.len() && cells.iter().all(|c| is_separator_cell(c))
    });
    if !separator_ok {
        return error(
            start + 2,
            format!(
                "expected the separator row (`| --- |` × {}) under the header",
                header.len()
            ),
        );
    }

    let mut rows = Vec::new();
    for (k, text) in block.iter().enumerate().skip(2) {
        let line = start + k + 1;
        let cells = cells(text);
        if cells.len() != header.len() {
            return error(
                line,
                format!(
                    "row has {} cells, the header has {}",
                    cells.len(),
                    header.len()
                ),
            );
        }
        let subject = name(&cells[0]).map_err(|m| ParseError { line, message: m })?;
        let list = list(&cells[1]).map_err(|m| ParseError { line, message: m })?;
        rows.push(Row {
            line,
            subject,
            list,
        });
    }
    Ok(Section {
        line: start + 1,
        rows,
    })
}

/// The cells of a `| a | b |` row, trimmed.
fn cells(line: &str) -> Vec<String> {
    let line = line.trim();
    let line = line.strip_prefix('|').unwrap_or(line);
    let line = line.strip_suffix('|').unwrap_or(line);
    line.split('|').map(|c| c.trim().to_string()).collect()
}

fn is_separator_cell(cell: &str) -> bool {
    let dashes = cell.trim_start_matches(':').trim_end_matches(':');
    dashes.len() >= 3 && dashes.chars().all(|c| c == '-')
}

/// One crate name, optionally in backticks; `*` passes through.
fn name(cell: &str) -> Result<String, String> {
    let bare = cell
        .strip_prefix('`')
        .and_then(|c| c.strip_suffix('`'))
        .unwrap_or(cell)
        .trim();
    let valid = bare == "*"
        || (!bare.is_empty()
            && bare
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    if valid {
        Ok(bare.to_string())
    } else {
        Err(format!(
            "`{cell}` is not a crate name (expected e.g. `tls-front`)"
        ))
    }
}

/// A comma-separated list of names; `—`, `-`, `none` or empty for none.
fn list(cell: &str) -> Result<Vec<String>, String> {
    if matches!(cell, "" | "—" | "–" | "-" | "none" | "(none)") {
        return Ok(Vec::new());
    }
    cell.split(',').map(|item| name(item.trim())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
# Contracts

Prose that mentions | pipes is fine outside the tables.

## Allowed edges between boxes

| box | may depend on | why |
| --- | :--- | --- |
| `leaf` | — | the bottom |
| `front` | `leaf` | hot path |
| `engine` | `front`, `leaf` | warm path |
| `top` | `*` | facade |

## Allowed external crates

| box | may use | why |
| --- | --- | --- |
| `leaf` | | none |
| `front` | - | none |
| `engine` | `libc` | os |
| `top` | `libc`, `crossbeam-queue` | everything |

## Forbidden paths (Contract D)

| box | must never reach | why |
| --- | --- | --- |
| `front` | `engine` | hot path stays hot |
";

    fn parse_err(doc: &str) -> ParseError {
        Table::parse(doc).expect_err("the doc should be rejected")
    }

    fn with(from: &str, to: &str) -> String {
        assert!(DOC.contains(from), "{from}");
        DOC.replacen(from, to, 1)
    }

    #[test]
    fn parses_the_doc_format() {
        let table = Table::parse(DOC).unwrap();
        assert_eq!(
            table.boxes().collect::<Vec<_>>(),
            ["engine", "front", "leaf", "top"]
        );
        assert!(table.allows_edge("front", "leaf"));
        assert!(table.allows_edge("engine", "front"));
        assert!(!table.allows_edge("front", "engine"));
        assert!(!table.allows_edge("leaf", "front"));
        assert!(table.allows_edge("top", "engine"), "`*` is any box");
        assert!(!table.allows_edge("top", "top"), "but not itself");
        assert!(!table.allows_edge("top", "xtask"), "and only boxes");
        assert!(!table.allows_edge("nobody", "leaf"));
        assert!(table.allows_external("engine", "libc"));
        assert!(table.allows_external("top", "crossbeam-queue"));
        assert!(!table.allows_external("front", "libc"));
        assert!(!table.allows_external("leaf", "libc"));
    }

    #[test]
    fn a_missing_section_is_named() {
        let err = parse_err(&DOC.replace("## Allowed external crates", "## Externals"));
        assert_eq!(err.line, 1);
        assert!(
            err.message
                .contains("no section headed `## Allowed external crates`"),
            "{err}"
        );
    }

    #[test]
    fn a_section_without_a_table_is_rejected() {
        let doc = "## Allowed edges\n\ntext only\n\n## Allowed external crates\n";
        let err = parse_err(doc);
        assert_eq!(err.line, 1);
        assert!(err.message.contains("has no table"), "{err}");
    }

    #[test]
    fn a_missing_separator_row_is_rejected() {
        let err = parse_err(&with("| --- | :--- | --- |\n", ""));
        assert_eq!(err.line, 8);
        assert!(err.message.contains("separator row"), "{err}");
    }

    #[test]
    fn a_row_with_the_wrong_number_of_cells_is_rejected() {
        let err = parse_err(&with(
            "| `front` | `leaf` | hot path |",
            "| `front` | `leaf` |",
        ));
        assert_eq!(err.line, 10);
        assert!(
            err.message.contains("row has 2 cells, the header has 3"),
            "{err}"
        );
        assert_eq!(err.to_string(), "10: row has 2 cells, the header has 3");
    }

    #[test]
    fn a_bad_name_is_rejected() {
        let err = parse_err(&with("`front`, `leaf`", "`front` and `leaf`"));
        assert_eq!(err.line, 11);
        assert!(err.message.contains("is not a crate name"), "{err}");
    }

    #[test]
    fn an_unknown_target_is_rejected() {
        let err = parse_err(&with("`front`, `leaf`", "`front`, `leaff`"));
        assert!(err.message.contains("`leaff` is not a box"), "{err}");
    }

    #[test]
    fn duplicate_and_incomplete_rows_are_rejected() {
        let err = parse_err(&with("| `top` | `*` |", "| `leaf` | `*` |"));
        assert!(err.message.contains("`leaf` has two rows"), "{err}");

        let err = parse_err(&with("| `engine` | `libc` | os |\n", ""));
        assert!(
            err.message
                .contains("box `engine` has no row in this table"),
            "{err}"
        );

        let err = parse_err(&with("| `leaf` | | none |", "| `lief` | | none |"));
        assert!(
            err.message
                .contains("`lief` has no row in the `Allowed edges` table"),
            "{err}"
        );
    }

    #[test]
    fn a_box_in_the_external_table_is_rejected() {
        let err = parse_err(&with("| `engine` | `libc` |", "| `engine` | `leaf` |"));
        assert!(
            err.message.contains("`leaf` is not an external crate"),
            "{err}"
        );
    }

    #[test]
    fn star_only_alone() {
        let err = parse_err(&with("| `top` | `*` |", "| `top` | `*`, `leaf` |"));
        assert!(err.message.contains("cannot be combined"), "{err}");
    }

    #[test]
    fn a_table_allowing_a_forbidden_edge_is_rejected() {
        let err = parse_err(&with(
            "| `front` | `leaf` |",
            "| `front` | `leaf`, `engine` |",
        ));
        assert_eq!(err.line, 27);
        assert!(
            err.message
                .contains("lets front reach engine (front -> engine)"),
            "{err}"
        );
    }

    #[test]
    fn a_table_allowing_a_forbidden_path_is_rejected() {
        // front -> top is allowed, and top may depend on anything.
        let err = parse_err(&with("| `front` | `leaf` |", "| `front` | `leaf`, `top` |"));
        assert!(err.message.contains("(front -> top -> engine)"), "{err}");
    }
}
