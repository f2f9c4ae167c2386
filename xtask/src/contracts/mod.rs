//! `cargo xtask check-contracts`: Contract D, checked.
//!
//! ```text
//! run ─ cargo metadata --no-deps ─ graph::Graph::from_metadata   (what the manifests say;
//!                                   read with the cargo_metadata crate)
//!     ─ docs/contracts.md ──────── table::Table::parse           (what the design allows)
//!     ─ check::check(graph, table) ─ [] → summary, exit 0
//!                                  └ violations → one line each, exit 1
//! ```
//!
//! Only [`run`] touches the outside world; [`graph`], [`table`] and [`check`]
//! are pure so that the rules can be tested without running cargo.

mod check;
mod graph;
mod table;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use check::check;
use graph::Graph;
use table::Table;

/// Where the table lives, relative to the workspace root.
pub const CONTRACTS_DOC: &str = "docs/contracts.md";

/// Runs the task: exit 0 when the graph keeps to the table, 1 on a violation
/// or an error (bad usage, exit 2, is clap's, in `main`).
pub fn run() -> ExitCode {
    let (graph, table) = match load() {
        Ok(loaded) => loaded,
        Err(message) => {
            eprintln!("xtask check-contracts: error: {message}");
            return ExitCode::FAILURE;
        }
    };
    let violations = check(&graph, &table);
    if violations.is_empty() {
        println!("check-contracts: ok: {}", summary(&graph, &table));
        ExitCode::SUCCESS
    } else {
        for violation in &violations {
            eprintln!("{violation}");
        }
        eprintln!(
            "check-contracts: {} violation(s) of {CONTRACTS_DOC}",
            violations.len()
        );
        ExitCode::FAILURE
    }
}

/// Reads the real workspace graph and the real table.
fn load() -> Result<(Graph, Table), String> {
    let graph = workspace_graph()?;
    let doc_path = graph.root.join(CONTRACTS_DOC);
    let table = load_table(&doc_path)?;
    Ok((graph, table))
}

/// Runs `cargo metadata` on this workspace, whatever the current directory
/// (`$CARGO`, else `cargo`, as cargo_metadata does).
fn workspace_graph() -> Result<Graph, String> {
    // --no-deps: the declared dependencies of the members are all the check
    // needs, and it makes the command work offline from a fresh clone.
    let metadata = cargo_metadata::MetadataCommand::new()
        .manifest_path(workspace_manifest())
        .no_deps()
        .exec()
        .map_err(|e| format!("`cargo metadata` failed: {e}"))?;
    Graph::from_metadata(&metadata)
}

/// The root `Cargo.toml`: xtask sits one level below the workspace root.
fn workspace_manifest() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or_else(|| Path::new(".."))
        .join("Cargo.toml")
}

fn load_table(path: &Path) -> Result<Table, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Table::parse(&text).map_err(|e| format!("{CONTRACTS_DOC}:{e}"))
}

/// One line for a passing run: what was checked, and what was exempt.
fn summary(graph: &Graph, table: &Table) -> String {
    let boxes: Vec<_> = graph
        .crates
        .iter()
        .filter(|c| table.is_box(&c.name))
        .collect();
    let edges: usize = boxes
        .iter()
        .map(|c| c.deps.iter().filter(|d| d.workspace).count())
        .sum();
    let externals: usize = boxes
        .iter()
        .map(|c| c.deps.iter().filter(|d| !d.workspace).count())
        .sum();
    let exempt: Vec<&str> = graph
        .crates
        .iter()
        .filter(|c| !table.is_box(&c.name))
        .map(|c| c.name.as_str())
        .collect();
    format!(
        "{} boxes, {edges} workspace edges and {externals} external dependencies checked \
         against {CONTRACTS_DOC}; exempt members: {}",
        boxes.len(),
        if exempt.is_empty() {
            "none".to_string()
        } else {
            exempt.join(", ")
        }
    )
}

#[cfg(test)]
mod tests {
    //! The rules against the real workspace and the real doc. These run
    //! `cargo metadata --no-deps` (offline, well under a second).

    use super::check::{check, Violation};
    use super::graph::{Dep, DepKind, Graph};
    use super::*;

    fn real() -> (Graph, Table) {
        load().unwrap_or_else(|e| panic!("loading the real workspace: {e}"))
    }

    fn add_dep(graph: &mut Graph, from: &str, to: &str, workspace: bool) {
        let krate = graph
            .crates
            .iter_mut()
            .find(|c| c.name == from)
            .unwrap_or_else(|| panic!("{from} is not in the workspace"));
        krate.deps.push(Dep {
            name: to.to_string(),
            kind: DepKind::Normal,
            workspace,
        });
    }

    fn lines(violations: &[Violation]) -> Vec<String> {
        violations.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn real_workspace_keeps_the_real_table() {
        let (graph, table) = real();
        let violations = lines(&check(&graph, &table));
        assert!(violations.is_empty(), "{violations:#?}");
        // The check looked at the boxes, not at an empty graph.
        for name in [
            "hakmem-ptr-bridge",
            "hakmem-tls-front",
            "hakmem-refill-engine",
            "hakmem-ace-learning",
            "hakmem-preload",
        ] {
            assert!(table.is_box(name), "{name} missing from the table");
            assert!(
                graph.crates.iter().any(|c| c.name == name),
                "{name} not found"
            );
        }
    }

    #[test]
    fn hot_path_depending_on_learning_is_rejected() {
        let (mut graph, table) = real();
        add_dep(&mut graph, "hakmem-tls-front", "hakmem-ace-learning", true);
        let violations = lines(&check(&graph, &table));
        assert_eq!(violations.len(), 1, "{violations:#?}");
        assert!(
            violations[0].contains("hakmem-tls-front -> hakmem-ace-learning"),
            "{violations:?}"
        );
        assert!(
            violations[0].contains("crates/tls-front/Cargo.toml"),
            "{violations:?}"
        );
        assert!(violations[0].contains(CONTRACTS_DOC), "{violations:?}");
    }

    #[test]
    fn hot_path_depending_on_refill_is_rejected() {
        let (mut graph, table) = real();
        add_dep(&mut graph, "hakmem-tls-front", "hakmem-refill-engine", true);
        let violations = lines(&check(&graph, &table));
        assert_eq!(violations.len(), 1, "{violations:#?}");
        assert!(
            violations[0].contains("hakmem-tls-front -> hakmem-refill-engine"),
            "{violations:?}"
        );
    }

    #[test]
    fn learning_seeing_the_thread_cache_is_rejected() {
        let (mut graph, table) = real();
        add_dep(&mut graph, "hakmem-ace-learning", "hakmem-tls-front", true);
        let violations = lines(&check(&graph, &table));
        assert_eq!(violations.len(), 1, "{violations:#?}");
        assert!(
            violations[0].contains("hakmem-ace-learning -> hakmem-tls-front"),
            "{violations:?}"
        );
        assert!(
            violations[0].contains("crates/ace-learning/Cargo.toml"),
            "{violations:?}"
        );
    }

    #[test]
    fn unlisted_external_crate_is_rejected() {
        let (mut graph, table) = real();
        add_dep(&mut graph, "hakmem-tls-front", "libc", false);
        let violations = lines(&check(&graph, &table));
        assert_eq!(violations.len(), 1, "{violations:#?}");
        assert!(
            violations[0].contains("hakmem-tls-front -> external crate libc"),
            "{violations:?}"
        );
        assert!(
            violations[0].contains("crates/tls-front/Cargo.toml"),
            "{violations:?}"
        );
    }

    #[test]
    fn box_depending_on_a_non_box_member_is_rejected() {
        let (mut graph, table) = real();
        add_dep(&mut graph, "hakmem", "hakmem-bench", true);
        let violations = lines(&check(&graph, &table));
        assert_eq!(violations.len(), 1, "{violations:#?}");
        assert!(
            violations[0].contains("hakmem -> hakmem-bench"),
            "{violations:?}"
        );
    }

    #[test]
    fn the_real_table_encodes_contract_d() {
        let (_, table) = real();
        assert!(!table.allows_edge("hakmem-tls-front", "hakmem-refill-engine"));
        assert!(!table.allows_edge("hakmem-tls-front", "hakmem-ace-learning"));
        assert!(!table.allows_edge("hakmem-ace-learning", "hakmem-tls-front"));
        assert!(table.allows_edge("hakmem-refill-engine", "hakmem-tls-front"));
        assert!(table.allows_edge("hakmem", "hakmem-refill-engine"));
        assert!(table.allows_edge("hakmem-preload", "hakmem"));
        assert!(table.allows_external("hakmem", "libc"));
        assert!(!table.allows_external("hakmem-tls-front", "libc"));
    }
}
