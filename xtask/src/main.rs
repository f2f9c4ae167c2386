//! xtask: project automation, run as `cargo xtask <task> [args]`.
//!
//! Each task lives in its own module and exposes `run(args) -> ExitCode`.
//! Adding a task means adding a module, a match arm in [`main`] and a line
//! in [`USAGE`]. Exit status: 0 success, 1 the task failed, 2 bad usage.

mod acceptance;
mod bench;
mod contracts;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task> [args]

tasks:
  check-contracts   check the box dependency graph against docs/contracts.md
  acceptance        run the slab-migration acceptance matrix [--quick]
  bench             run the benchmark suite (= cargo run --release -p hakmem-bench --) [--quick] ...
  help              print this message
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((task, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    match task.as_str() {
        "check-contracts" => contracts::run(rest),
        "acceptance" => acceptance::run(rest),
        "bench" => bench::run(rest),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        other => {
            eprint!("xtask: unknown task `{other}`\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
