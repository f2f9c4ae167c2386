//! The dependency graph of the workspace members, as their manifests declare
//! it, read from `cargo metadata --format-version 1 --no-deps`.
//!
//! Kept: normal and build dependencies, including optional and
//! target-specific ones. Dropped: dev-dependencies (docs/contracts.md says
//! why). Dependencies are named by **package** name, so a renamed key such
//! as preload's `api = { package = "hakmem", .. }` is the edge to `hakmem`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

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

// The slice of `cargo metadata` output the check reads; serde ignores the rest.
#[derive(Deserialize)]
struct Metadata {
    packages: Vec<Package>,
    workspace_members: Vec<String>,
    workspace_root: PathBuf,
}

#[derive(Deserialize)]
struct Package {
    id: String,
    name: String,
    manifest_path: PathBuf,
    dependencies: Vec<Dependency>,
}

#[derive(Deserialize)]
struct Dependency {
    /// The package name; the renamed key, if any, is in `rename`.
    name: String,
    /// null for normal, "dev" or "build".
    kind: Option<String>,
}

impl Graph {
    /// Builds the graph from the JSON that `cargo metadata --format-version 1`
    /// prints (with or without `--no-deps`).
    pub fn from_metadata(json: &str) -> Result<Self, String> {
        let metadata: Metadata = serde_json::from_str(json)
            .map_err(|e| format!("cannot parse `cargo metadata` output: {e}"))?;
        let members: BTreeSet<&str> = metadata
            .workspace_members
            .iter()
            .map(String::as_str)
            .collect();
        let packages: Vec<&Package> = metadata
            .packages
            .iter()
            .filter(|p| members.contains(p.id.as_str()))
            .collect();
        let names: BTreeSet<&str> = packages.iter().map(|p| p.name.as_str()).collect();

        let mut crates = Vec::with_capacity(packages.len());
        for package in packages {
            let mut deps = Vec::new();
            for dep in &package.dependencies {
                let kind = match dep.kind.as_deref() {
                    None | Some("normal") => DepKind::Normal,
                    Some("build") => DepKind::Build,
                    Some("dev") => continue,
                    Some(other) => {
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
                name: package.name.clone(),
                manifest: relative(&package.manifest_path, &metadata.workspace_root),
                deps,
            });
        }
        Ok(Self {
            root: metadata.workspace_root,
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

    /// Trimmed `cargo metadata --no-deps` output: a renamed path dependency,
    /// an external one, a build and a dev dependency, and a non-member.
    const METADATA: &str = r#"{
      "workspace_root": "/ws",
      "workspace_members": ["path+file:///ws/crates/hakmem#0.1.0",
                            "path+file:///ws/crates/preload#0.1.0",
                            "path+file:///ws/xtask#0.1.0"],
      "packages": [
        {"id": "path+file:///ws/crates/hakmem#0.1.0", "name": "hakmem",
         "manifest_path": "/ws/crates/hakmem/Cargo.toml",
         "dependencies": [
           {"name": "libc", "rename": null, "kind": null, "optional": false},
           {"name": "cc", "rename": null, "kind": "build"},
           {"name": "proptest", "rename": null, "kind": "dev"}]},
        {"id": "path+file:///ws/crates/preload#0.1.0", "name": "preload",
         "manifest_path": "/ws/crates/preload/Cargo.toml",
         "dependencies": [
           {"name": "hakmem", "rename": "api", "kind": null, "path": "/ws/crates/hakmem"}]},
        {"id": "path+file:///ws/xtask#0.1.0", "name": "xtask",
         "manifest_path": "/ws/xtask/Cargo.toml", "dependencies": []},
        {"id": "registry+https://github.com/rust-lang/crates.io-index#libc@0.2.0",
         "name": "libc", "manifest_path": "/registry/libc/Cargo.toml", "dependencies": []}
      ]
    }"#;

    #[test]
    fn reads_members_and_their_declared_dependencies() {
        let graph = Graph::from_metadata(METADATA).unwrap();
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
        let graph = Graph::from_metadata(METADATA).unwrap();
        let preload = graph.get("preload").unwrap();
        assert_eq!(preload.deps.len(), 1);
        assert_eq!(preload.deps[0].name, "hakmem");
        assert!(preload.deps[0].workspace);
    }

    #[test]
    fn bad_json_is_an_error() {
        let err = Graph::from_metadata("{\"packages\": 3}").unwrap_err();
        assert!(
            err.contains("cannot parse `cargo metadata` output"),
            "{err}"
        );
    }
}
