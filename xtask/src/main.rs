//! xtask: project automation, run as `cargo xtask <task> [args]`.
//!
//! Each task lives in its own module and exposes a `run` function that
//! returns an `ExitCode`. Adding a task means adding a module and a variant
//! of [`Task`] (its doc comment is the line in `--help`). Exit status: 0
//! success, 1 the task failed, 2 bad usage (clap's error line).

mod acceptance;
mod bench;
mod contracts;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Project automation for hakmem.
#[derive(Parser, Debug)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    arg_required_else_help = true
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand, Debug)]
enum Task {
    /// Check the box dependency graph against docs/contracts.md.
    CheckContracts,
    /// Run the slab-migration acceptance matrix.
    Acceptance {
        /// Fewer operations per cell.
        #[arg(long)]
        quick: bool,
    },
    /// Run the benchmark suite (= cargo run --release -p hakmem-bench --);
    /// every argument, `--help` included, goes to hakmem-bench.
    #[command(disable_help_flag = true)]
    Bench {
        /// hakmem-bench's arguments (`--quick`, `ace-real`, `--out DIR`, ...).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    match Cli::parse().task {
        Task::CheckContracts => contracts::run(),
        Task::Acceptance { quick } => acceptance::run(quick),
        Task::Bench { args } => bench::run(&args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bench_passes_everything_through() {
        let cli =
            Cli::try_parse_from(["xtask", "bench", "--quick", "--out", "d", "--help"]).unwrap();
        match cli.task {
            Task::Bench { args } => assert_eq!(args, ["--quick", "--out", "d", "--help"]),
            other => panic!("{other:?}"),
        }
    }
}
