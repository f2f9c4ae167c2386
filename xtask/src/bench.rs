//! `cargo xtask bench [args]`: the benchmark suite, exactly
//! `cargo run --release -p hakmem-bench -- [args]` (see docs/benchmarks.md).

use std::path::Path;
use std::process::{Command, ExitCode};

/// Runs the suite with `args` passed through.
pub fn run(args: &[String]) -> ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args(["run", "--release", "--quiet", "-p", "hakmem-bench", "--"])
        .args(args)
        .status();
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => ExitCode::from(s.code().unwrap_or(1).clamp(1, 255) as u8),
        Err(e) => {
            eprintln!("xtask bench: cannot run cargo: {e}");
            ExitCode::from(1)
        }
    }
}
