//! The dependency graph of the workspace members, as their manifests declare
//! it, read from `cargo metadata --format-version 1 --no-deps` (parsed by
//! the cargo_metadata crate).
//!
//! Kept: normal and build dependencies, including optional and
//! target-specific ones. Dropped: dev-dependencies (docs/contracts.md says
//! why). Dependencies are named by **package** name, so a renamed key such
//! as preload's `api = { package = "hakmem", .. }` is the edge to `hakmem`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cargo_metadata::{DependencyKind, Metadata};

/// The workspace members and what each depends on.
#[derive(Debug, Clone)]
pub struct Graph {
    /// The workspace root (where `docs/` lives).
    pub root: PathBuf,
    /// Every workspace member, boxes and exempt crates alike.
    pub crates: Vec<Crate>,
}

/// One workspace member.
#[derive(Debug, Clone)]
pub struct Crate {
    /// The package name (`tls-front`).
    pub name: String,
    /// Its manifest relative to the root, with `/` (`crates/tls-front/Cargo.toml`).
    pub manifest: String,
    /// Declared normal and build dependencies.
    pub deps: Vec<Dep>,
}

/// One declared dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dep {
    /// The package name, never the renamed key.
    pub name: String,
    /// `[dependencies]` or `[build-dependencies]`.
    pub kind: DepKind,
    /// True when `name` is a workspace member (an edge between members);
    /// false for an external crate.
    pub workspace: bool,
}

/// The manifest section a dependency comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DepKind {
    /// `[dependencies]`.
    Normal,
    /// `[build-dependencies]`.
    Build,
}

impl Graph {
    /// Builds the graph from `cargo metadata` (with or without `--no-deps`).
    pub fn from_metadata(metadata: &Metadata) -> Result<Self, String> {
        let root = metadata.workspace_root.as_std_path();
        let members = metadata.workspace_packages();
        let names: BTreeSet<&str> = members.iter().map(|p| p.name.as_str()).collect();

        let mut crates = Vec::with_capacity(members.len());
        for package in members {
            let mut deps = Vec::new();
            for dep in &package.dependencies {
                let kind = match dep.kind {
                    DependencyKind::Normal => DepKind::Normal,
                    DependencyKind::Build => DepKind::Build,
                    DependencyKind::Development => continue,
                    other => {
                        return Err(format!(
                            "{}: dependency {} has an unknown kind `{other}`",
                            package.name, dep.name
                        ))
                    }
                };
                deps.push(Dep {
                    name: dep.name.clone(),
                    kind,
                    workspace: names.contains(dep.name.as_str()),
                });
            }
            crates.push(Crate {
                name: package.name.to_string(),
                manifest: relative(package.manifest_path.as_std_path(), root),
                deps,
            });
        }
        Ok(Self {
            root: root.to_path_buf(),
            crates,
        })
    }

    /// The member called `name`.
    pub fn get(&self, name: &str) -> Option<&Crate> {
        self.crates.iter().find(|c| c.name == name)
    }
}

impl Crate {
    /// True for a member under `crates/`: such a crate is a box and must
    /// have rows in the table.
    pub fn under_crates_dir(&self) -> bool {
        self.manifest.starts_with("crates/")
    }
}

/// `path` relative to `root`, `/`-separated; `path` itself when outside.
fn relative(path: &Path, root: &Path) -> String {
    match path.strip_prefix(root) {
        Ok(rel) => rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/"),
        Err(_) => path.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::{json, Value};

    /// One package of `cargo metadata --no-deps` output, with the fields
    /// that cargo_metadata requires.
    fn package(id: &str, name: &str, manifest: &str, deps: Value) -> Value {
        json!({
            "id": id, "name": name, "version": "0.1.0", "source": null,
            "description": null, "license": null, "license_file": null,
            "targets": [], "features": {}, "manifest_path": manifest,
            "dependencies": deps,
        })
    }

    /// One dependency of a package.
    fn dep(name: &str, kind: Option<&str>, rename: Option<&str>) -> Value {
        json!({
            "name": name, "source": null, "req": "*", "kind": kind,
            "rename": rename, "optional": false, "uses_default_features": true,
            "features": [], "target": null,
        })
    }

    /// Trimmed `cargo metadata --no-deps` output: a renamed path dependency,
    /// an external one, a build and a dev dependency, and a non-member.
    fn metadata() -> Metadata {
        let text = json!({
            "workspace_root": "/ws",
            "target_directory": "/ws/target",
            "version": 1,
            "resolve": null,
            "workspace_members": ["path+file:///ws/crates/hakmem#0.1.0",
                                  "path+file:///ws/crates/preload#0.1.0",
                                  "path+file:///ws/xtask#0.1.0"],
            "packages": [
                package("path+file:///ws/crates/hakmem#0.1.0", "hakmem",
                        "/ws/crates/hakmem/Cargo.toml",
                        json!([dep("libc", None, None), dep("cc", Some("build"), None),
                               dep("proptest", Some("dev"), None)])),
                package("path+file:///ws/crates/preload#0.1.0", "preload",
                        "/ws/crates/preload/Cargo.toml",
                        json!([dep("hakmem", None, Some("api"))])),
                package("path+file:///ws/xtask#0.1.0", "xtask", "/ws/xtask/Cargo.toml", json!([])),
                package("registry+https://github.com/rust-lang/crates.io-index#libc@0.2.0",
                        "libc", "/registry/libc/Cargo.toml", json!([])),
            ],
        })
        .to_string();
        cargo_metadata::MetadataCommand::parse(text).expect("the fixture parses")
    }

    #[test]
    fn reads_members_and_their_declared_dependencies() {
        let graph = Graph::from_metadata(&metadata()).unwrap();
        assert_eq!(graph.root, Path::new("/ws"));
        let names: Vec<&str> = graph.crates.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["hakmem", "preload", "xtask"],
            "libc is not a member"
        );

        let hakmem = graph.get("hakmem").unwrap();
        assert_eq!(hakmem.manifest, "crates/hakmem/Cargo.toml");
        assert!(hakmem.under_crates_dir());
        let dep = |name: &str, kind, workspace| Dep {
            name: name.to_string(),
            kind,
            workspace,
        };
        assert_eq!(
            hakmem.deps,
            [
                dep("libc", DepKind::Normal, false),
                dep("cc", DepKind::Build, false)
            ],
            "dev-dependencies are dropped"
        );
        assert!(!graph.get("xtask").unwrap().under_crates_dir());
    }

    #[test]
    fn a_renamed_dependency_is_the_edge_to_its_package() {
        let graph = Graph::from_metadata(&metadata()).unwrap();
        let preload = graph.get("preload").unwrap();
        assert_eq!(preload.deps.len(), 1);
        assert_eq!(preload.deps[0].name, "hakmem");
        assert!(preload.deps[0].workspace);
    }

    #[test]
    fn bad_json_is_an_error() {
        let err = cargo_metadata::MetadataCommand::parse("{\"packages\": 3}").unwrap_err();
        assert!(err.to_string().contains("invalid type"), "{err}");
    }
}
