//! `cargo xtask bench [args]`: the benchmark suite,
//! `cargo run --release -p hakmem-bench -- [args]` (see docs/benchmarks.md),
//! with a mimalloc 2.x column: unless `--quick` is given, it first builds a
//! second `hakmem-bench` with `--features mimalloc-v2` (its own target
//! directory, `<target>/mimalloc2`) and names it in
//! `HAKMEM_BENCH_MIMALLOC2`, so the issue-5 large-churn target (≥ 3×
//! mimalloc 2.x) is measured in the same run as everything else.
//! After the suite come `footprint` and, with `--quick` only, a smoke run
//! of `ace-real` (ACE on/off in real programs, one pair each, workloads a
//! tenth of their size: a few seconds; the full evaluation is
//! `cargo xtask bench ace-real`, not part of CI).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Runs the suite with `args` passed through.
pub fn run(args: &[String]) -> ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut env: Vec<(&str, PathBuf)> = Vec::new();
    // Only the suite itself (options first, no subcommand), not a smoke run.
    let suite = args.first().is_none_or(|a| a.starts_with("--"));
    let wants_mi2 = suite && !args.iter().any(|a| a == "--quick" || a == "--help");
    if wants_mi2 {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| root.join("target"), PathBuf::from)
            .join("mimalloc2");
        eprintln!(
            "xtask bench: building hakmem-bench with mimalloc 2.x in {}",
            target.display()
        );
        let built = Command::new(&cargo)
            .current_dir(root)
            .args(["build", "--release", "--quiet", "-p", "hakmem-bench"])
            .args(["--features", "mimalloc-v2", "--target-dir"])
            .arg(&target)
            .status();
        match built {
            Ok(s) if s.success() => {
                env.push((
                    "HAKMEM_BENCH_MIMALLOC2",
                    target.join("release/hakmem-bench"),
                ));
            }
            _ => eprintln!("xtask bench: the mimalloc 2.x build failed; running without it"),
        }
    }
    let status = Command::new(&cargo)
        .current_dir(root)
        .args(["run", "--release", "--quiet", "-p", "hakmem-bench", "--"])
        .args(args)
        .envs(env)
        .status();
    let status = match status {
        Ok(s) if s.success() && suite && !args.iter().any(|a| a == "--help") => {
            Command::new(&cargo)
                .current_dir(root)
                .args(["run", "--release", "--quiet", "-p", "hakmem-bench", "--"])
                .args(footprint_args(args))
                .status()
        }
        other => other,
    };
    let quick = args.iter().any(|a| a == "--quick");
    let status = match status {
        Ok(s) if s.success() && suite && quick && !args.iter().any(|a| a == "--help") => {
            Command::new(&cargo)
                .current_dir(root)
                .args(["run", "--release", "--quiet", "-p", "hakmem-bench", "--"])
                .args(ace_real_smoke_args(args))
                .status()
        }
        other => other,
    };
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => ExitCode::from(s.code().unwrap_or(1).clamp(1, 255) as u8),
        Err(e) => {
            eprintln!("xtask bench: cannot run cargo: {e}");
            ExitCode::from(1)
        }
    }
}

/// The `ace-real` smoke run that follows `--quick`'s footprint run: one
/// on/off pair per program at a tenth of the size, into `<out>/ace-real`
/// (`footprint` has just rebuilt libhakmem.so).
fn ace_real_smoke_args(args: &[String]) -> Vec<String> {
    let mut v: Vec<String> = ["ace-real", "--quick", "--reps", "1", "--no-build"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let Some(i) = args.iter().position(|a| a == "--out") {
        if let Some(d) = args.get(i + 1) {
            v.extend(["--out".to_string(), format!("{d}/ace-real")]);
        }
    }
    v
}

/// The `footprint` run that follows the suite: its `--out` and, with
/// `--quick`, 3 runs per allocator instead of 5.
fn footprint_args(args: &[String]) -> Vec<String> {
    let mut v = vec!["footprint".to_string()];
    if args.iter().any(|a| a == "--quick") {
        v.extend(["--runs".to_string(), "3".to_string()]);
    }
    if let Some(i) = args.iter().position(|a| a == "--out") {
        if let Some(d) = args.get(i + 1) {
            v.extend(["--out".to_string(), d.clone()]);
        }
    }
    v
}
