//! The rules: the dependency graph against the contract table. Pure.
//!
//! - every box in the table is a workspace member, and every member under
//!   `crates/` is a box in the table;
//! - a box depends on another workspace member only along an allowed edge
//!   (so never on an exempt member such as `xtask`);
//! - a box depends on an external crate only if the table lists it.
//!
//! Exempt members (not in the table, outside `crates/`) are not checked.
//! Forbidden paths need no rule here: the table parser guarantees the edge
//! table allows none, so a graph that keeps to the edges keeps off them.

use std::fmt;

use super::graph::{DepKind, Graph};
use super::table::Table;
use super::CONTRACTS_DOC;

/// One way the graph breaks the table; displayed as one line with the fix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Violation {
    /// `from` depends on workspace member `to` and the table does not allow it.
    Edge {
        from: String,
        to: String,
        kind: DepKind,
        manifest: String,
    },
    /// `from` depends on external crate `krate` and the table does not list it.
    External {
        from: String,
        krate: String,
        kind: DepKind,
        manifest: String,
    },
    /// The table lists a box that is not a workspace member.
    MissingBox { name: String },
    /// A member under `crates/` has no rows in the table.
    UnlistedBox { name: String, manifest: String },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let section = |kind: &DepKind| match kind {
            DepKind::Normal => "",
            DepKind::Build => " (build-dependency)",
        };
        match self {
            Self::Edge {
                from,
                to,
                kind,
                manifest,
            } => write!(
                f,
                "contract violation: {from} -> {to}{} is not allowed \
                 (fix {manifest}, or change {CONTRACTS_DOC} with a design note)",
                section(kind)
            ),
            Self::External {
                from,
                krate,
                kind,
                manifest,
            } => write!(
                f,
                "contract violation: {from} -> external crate {krate}{} is not allowed \
                 (fix {manifest}, or change {CONTRACTS_DOC} with a design note)",
                section(kind)
            ),
            Self::MissingBox { name } => write!(
                f,
                "contract violation: box {name} is in {CONTRACTS_DOC} but not in the workspace \
                 (add crates/{name}, or remove its rows from {CONTRACTS_DOC} with a design note)"
            ),
            Self::UnlistedBox { name, manifest } => write!(
                f,
                "contract violation: {name} ({manifest}) is a workspace crate under crates/ \
                 with no rows in {CONTRACTS_DOC} (add its rows there, with a design note)"
            ),
        }
    }
}

/// Every violation, sorted and without duplicates; empty when the graph
/// keeps to the table.
pub fn check(graph: &Graph, table: &Table) -> Vec<Violation> {
    let mut violations = Vec::new();
    for name in table.boxes() {
        if graph.get(name).is_none() {
            violations.push(Violation::MissingBox {
                name: name.to_string(),
            });
        }
    }
    for krate in &graph.crates {
        if !table.is_box(&krate.name) {
            if krate.under_crates_dir() {
                violations.push(Violation::UnlistedBox {
                    name: krate.name.clone(),
                    manifest: krate.manifest.clone(),
                });
            }
            continue;
        }
        for dep in &krate.deps {
            if dep.workspace && !table.allows_edge(&krate.name, &dep.name) {
                violations.push(Violation::Edge {
                    from: krate.name.clone(),
                    to: dep.name.clone(),
                    kind: dep.kind,
                    manifest: krate.manifest.clone(),
                });
            } else if !dep.workspace && !table.allows_external(&krate.name, &dep.name) {
                violations.push(Violation::External {
                    from: krate.name.clone(),
                    krate: dep.name.clone(),
                    kind: dep.kind,
                    manifest: krate.manifest.clone(),
                });
            }
        }
    }
    violations.sort();
    violations.dedup();
    violations
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::graph::{Crate, Dep};
    use super::*;

    const DOC: &str = "\
## Allowed edges
| box | may depend on |
| --- | --- |
| `ptr-bridge` | — |
| `tls-front` | `ptr-bridge` |
| `ace-learning` | `ptr-bridge` |
| `refill-engine` | `tls-front`, `ace-learning`, `ptr-bridge` |
## Allowed external crates
| box | may use |
| --- | --- |
| `ptr-bridge` | `static_assertions` |
| `tls-front` | — |
| `ace-learning` | `crossbeam-queue` |
| `refill-engine` | — |
## Forbidden paths
| box | must never reach |
| --- | --- |
| `tls-front` | `refill-engine`, `ace-learning` |
| `ace-learning` | `tls-front` |
";

    fn table() -> Table {
        Table::parse(DOC).unwrap()
    }

    fn member(name: &str, dir: &str, deps: &[(&str, DepKind, bool)]) -> Crate {
        Crate {
            name: name.to_string(),
            manifest: format!("{dir}/{name}/Cargo.toml"),
            deps: deps
                .iter()
                .map(|&(name, kind, workspace)| Dep {
                    name: name.to_string(),
                    kind,
                    workspace,
                })
                .collect(),
        }
    }

    /// A graph that keeps to [`DOC`], plus an exempt member.
    fn graph() -> Graph {
        use DepKind::{Build, Normal};
        Graph {
            root: PathBuf::from("/ws"),
            crates: vec![
                member(
                    "ptr-bridge",
                    "crates",
                    &[("static_assertions", Build, false)],
                ),
                member("tls-front", "crates", &[("ptr-bridge", Normal, true)]),
                member("ace-learning", "crates", &[("ptr-bridge", Normal, true)]),
                member(
                    "refill-engine",
                    "crates",
                    &[
                        ("tls-front", Normal, true),
                        ("ace-learning", Normal, true),
                        ("ptr-bridge", Build, true),
                    ],
                ),
                member(
                    "xtask",
                    ".",
                    &[("serde_json", Normal, false), ("tls-front", Normal, true)],
                ),
            ],
        }
    }

    fn with_dep(mut graph: Graph, from: &str, dep: (&str, DepKind, bool)) -> Graph {
        let krate = graph.crates.iter_mut().find(|c| c.name == from).unwrap();
        krate.deps.push(Dep {
            name: dep.0.to_string(),
            kind: dep.1,
            workspace: dep.2,
        });
        graph
    }

    fn messages(graph: &Graph) -> Vec<String> {
        check(graph, &table())
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_graph_that_keeps_to_the_table_passes() {
        assert_eq!(messages(&graph()), Vec::<String>::new());
    }

    #[test]
    fn a_forbidden_edge_is_one_line_naming_the_edge_and_the_manifest() {
        let bad = with_dep(
            graph(),
            "tls-front",
            ("ace-learning", DepKind::Normal, true),
        );
        assert_eq!(
            messages(&bad),
            [
                "contract violation: tls-front -> ace-learning is not allowed \
              (fix crates/tls-front/Cargo.toml, or change docs/contracts.md with a design note)"
            ]
        );
    }

    #[test]
    fn learning_may_not_see_the_thread_cache() {
        let bad = with_dep(
            graph(),
            "ace-learning",
            ("tls-front", DepKind::Normal, true),
        );
        let found = messages(&bad);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("contract violation: ace-learning -> tls-front is not"));
    }

    #[test]
    fn build_dependencies_are_checked_too() {
        let bad = with_dep(
            graph(),
            "tls-front",
            ("refill-engine", DepKind::Build, true),
        );
        let found = messages(&bad);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("tls-front -> refill-engine (build-dependency) is not allowed"));
    }

    #[test]
    fn a_forbidden_external_crate_is_rejected() {
        let bad = with_dep(graph(), "tls-front", ("libc", DepKind::Normal, false));
        assert_eq!(
            messages(&bad),
            [
                "contract violation: tls-front -> external crate libc is not allowed \
              (fix crates/tls-front/Cargo.toml, or change docs/contracts.md with a design note)"
            ]
        );
        // Allowed for one box is not allowed for another.
        let bad = with_dep(
            graph(),
            "tls-front",
            ("crossbeam-queue", DepKind::Normal, false),
        );
        assert_eq!(messages(&bad).len(), 1);
    }

    #[test]
    fn depending_on_an_exempt_member_is_rejected() {
        let bad = with_dep(graph(), "refill-engine", ("xtask", DepKind::Normal, true));
        let found = messages(&bad);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("refill-engine -> xtask is not allowed"));
    }

    #[test]
    fn table_and_workspace_must_list_the_same_boxes() {
        let mut bad = graph();
        bad.crates.retain(|c| c.name != "ace-learning");
        bad.crates.push(member("new-box", "crates", &[]));
        assert_eq!(
            messages(&bad),
            [
                "contract violation: box ace-learning is in docs/contracts.md but not in the \
                 workspace (add crates/ace-learning, or remove its rows from docs/contracts.md \
                 with a design note)",
                "contract violation: new-box (crates/new-box/Cargo.toml) is a workspace crate \
                 under crates/ with no rows in docs/contracts.md (add its rows there, with a \
                 design note)",
            ]
        );
    }

    #[test]
    fn repeated_declarations_are_reported_once() {
        // e.g. the same dependency under two [target.'cfg(..)'.dependencies].
        let bad = with_dep(graph(), "tls-front", ("libc", DepKind::Normal, false));
        let bad = with_dep(bad, "tls-front", ("libc", DepKind::Normal, false));
        assert_eq!(messages(&bad).len(), 1);
    }
}
