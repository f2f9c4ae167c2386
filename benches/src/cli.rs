//! The command line of `hakmem-bench`, parsed by clap (derive). Without a
//! subcommand it runs the suite; `run-one` and `mimalloc-version` are the
//! hidden child side. Bad arguments give clap's one-line error (exit 2).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::allocators::Allocator;
use crate::sweep::Config;

/// hakmem-bench: hakmem side by side with glibc, mimalloc, jemalloc,
/// tcmalloc, snmalloc and scudo (see docs/benchmarks.md).
///
/// Without a subcommand it runs the suite (table, CSV, charts). Results go to
/// $CARGO_TARGET_DIR/hakmem-bench (default target/hakmem-bench).
#[derive(Parser, Debug)]
#[command(name = "hakmem-bench", args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub mode: Option<Mode>,
    #[command(flatten)]
    pub suite: SuiteArgs,
}

#[derive(Subcommand, Debug)]
pub enum Mode {
    /// Instructions per malloc+free pair.
    Instructions(InstructionsArgs),
    /// Peak and exit RSS of a one-malloc C program under each allocator
    /// (LD_PRELOAD), and hakmem's resident memory by mapping.
    Footprint(FootprintArgs),
    /// List the allocators, the workloads and their parameters.
    List {
        /// Threads of the multi-threaded workloads.
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
    /// Issue 6: `phases` with ACE, the default and a grid of static
    /// configurations.
    Sweep(SweepArgs),
    /// Issue 6: ACE cold vs warm (saved profile).
    Warm(PhasesArgs),
    /// Issue 15: ACE on vs off in real programs (python3, perl, sqlite3,
    /// redis, git, gcc, ls, the C harnesses) under LD_PRELOAD.
    AceReal(AceRealArgs),
    /// The child side: run one workload under one allocator, print the
    /// result as one JSON line.
    #[command(hide = true)]
    RunOne {
        allocator: String,
        workload: String,
        /// The workload's parameters, key=value.
        #[arg(allow_hyphen_values = true)]
        params: Vec<String>,
    },
    /// Print the bundled mimalloc's version.
    #[command(hide = true)]
    MimallocVersion,
}

/// A comma-separated allocator list (`hakmem,mimalloc,system`).
#[derive(Clone, Debug)]
pub struct AllocatorList(pub Vec<Allocator>);

fn allocator_list(s: &str) -> Result<AllocatorList, String> {
    Allocator::parse_list(s).map(AllocatorList)
}

fn config(s: &str) -> Result<Config, String> {
    Config::parse(s)
}

/// The suite's options (no subcommand).
#[derive(Args, Debug)]
pub struct SuiteArgs {
    /// Smoke run: tiny op counts, 1 repetition.
    #[arg(long)]
    pub quick: bool,
    /// Comma-separated workloads (`tiny-hot` = all its sizes, `tiny-hot/64`
    /// = one).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub only: Vec<String>,
    /// Threads of the multi-threaded workloads.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub threads: usize,
    /// Repetitions [default: 5; --quick: 1].
    #[arg(long, value_name = "N")]
    pub reps: Option<usize>,
    /// Subset of hakmem,hakmem+ace,hakmem-secure,mimalloc,jemalloc,tcmalloc,
    /// snmalloc,scudo,system [default: all nine; tcmalloc and scudo are left
    /// out, with a line, when not installed]; also mimalloc-secure
    /// (mimalloc's MI_SECURE=4 build, compiled once from the bundled C
    /// source; not a default column), mimalloc2 and mi-direct.
    #[arg(long, value_name = "LIST", value_parser = allocator_list)]
    pub allocators: Option<AllocatorList>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// The options the suite, `sweep` and `warm` share.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Multiply every op count by F.
    #[arg(long, value_name = "F", default_value_t = 1.0)]
    pub scale: f64,
    /// Kill a run after S seconds.
    #[arg(long, value_name = "S", default_value_t = 300)]
    pub timeout: u64,
    /// Write results to DIR instead.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// The options of `sweep` and `warm`.
#[derive(Args, Debug)]
pub struct PhasesArgs {
    /// Quick phases and (sweep) a 6-configuration grid.
    #[arg(long)]
    pub quick: bool,
    /// Repetitions [default: 3; --quick: 1].
    #[arg(long, value_name = "N")]
    pub reps: Option<usize>,
    /// Threads of `phases`.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub threads: usize,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Args, Debug)]
pub struct SweepArgs {
    #[command(flatten)]
    pub phases: PhasesArgs,
    /// default,ace,static:R:C:D:S,… (R = refill in quarters of the default,
    /// C = cap in refills, D = decay ms, S = span threshold KiB).
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = config)]
    pub configs: Option<Vec<Config>>,
}

#[derive(Args, Debug)]
pub struct InstructionsArgs {
    /// The allocators [default: hakmem,mimalloc,mi-direct,jemalloc,system].
    #[arg(long, value_name = "LIST", value_parser = allocator_list)]
    pub allocators: Option<AllocatorList>,
    /// Block sizes, comma-separated.
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "64")]
    pub size: Vec<usize>,
    /// Rounds of the small run.
    #[arg(long, value_name = "R", default_value_t = 1_000)]
    pub small: u64,
    /// Rounds of the large run.
    #[arg(long, value_name = "R", default_value_t = 11_000)]
    pub large: u64,
    /// Skip the C program under LD_PRELOAD.
    #[arg(long)]
    pub no_preload: bool,
    /// Instead: tiny-hot (each --size) and random-mixed with hakmem and
    /// hakmem+ace under callgrind, the workload's thread and the ACE worker
    /// counted apart (per op).
    #[arg(long)]
    pub ace: bool,
    /// Do not rebuild libhakmem.so first.
    #[arg(long)]
    pub no_build: bool,
    /// Write instructions.csv (and the C harness) to DIR.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct FootprintArgs {
    /// Runs per allocator (median).
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub runs: usize,
    /// Do not rebuild libhakmem.so first.
    #[arg(long)]
    pub no_build: bool,
    /// Write footprint.csv (and the C probe) to DIR.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct AceRealArgs {
    /// On/off pairs per program, alternating on,off / off,on.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub reps: usize,
    /// Comma-separated programs (python3,perl,sqlite3,redis,git,gcc,ls,
    /// c:tiny_hot,c:large_churn).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub only: Vec<String>,
    /// Workloads a tenth of the size, for a smoke run.
    #[arg(long)]
    pub quick: bool,
    /// Kill a run after S seconds.
    #[arg(long, value_name = "S", default_value_t = 120)]
    pub timeout: u64,
    /// Do not rebuild libhakmem.so first.
    #[arg(long)]
    pub no_build: bool,
    /// Default $CARGO_TARGET_DIR/hakmem-bench/ace-real.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("hakmem-bench").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn suite_options_without_a_subcommand() {
        let c = parse(&["--quick", "--only", "tiny-hot,larson", "--only", "phases"]).unwrap();
        assert!(c.mode.is_none());
        assert!(c.suite.quick);
        assert_eq!(c.suite.only, ["tiny-hot", "larson", "phases"]);
        assert_eq!(c.suite.threads, 2);
        assert_eq!(c.suite.run.timeout, 300);
        let c = parse(&["--allocators", "hakmem,mi", "--scale", "0.5"]).unwrap();
        assert_eq!(
            c.suite.allocators.unwrap().0,
            [Allocator::Hakmem, Allocator::Mimalloc]
        );
        assert_eq!(c.suite.run.scale, 0.5);
    }

    #[test]
    fn bad_arguments_are_clap_errors() {
        assert!(parse(&["--allocators", "nope"]).is_err());
        assert!(parse(&["--threads", "x"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
        assert!(parse(&["warm", "--configs", "ace"]).is_err());
        assert!(parse(&["list", "--quick"]).is_err());
    }

    #[test]
    fn subcommands() {
        let c = parse(&["instructions", "--size", "16,64", "--no-preload"]).unwrap();
        match c.mode {
            Some(Mode::Instructions(a)) => {
                assert_eq!(a.size, [16, 64]);
                assert!(a.no_preload && !a.no_build);
            }
            other => panic!("{other:?}"),
        }
        let c = parse(&["sweep", "--configs", "default,ace", "--reps", "2"]).unwrap();
        match c.mode {
            Some(Mode::Sweep(a)) => {
                assert_eq!(a.configs.unwrap().len(), 2);
                assert_eq!(a.phases.reps, Some(2));
            }
            other => panic!("{other:?}"),
        }
        let c = parse(&["run-one", "hakmem", "tiny-hot", "size=64"]).unwrap();
        match c.mode {
            Some(Mode::RunOne { params, .. }) => assert_eq!(params, ["size=64"]),
            other => panic!("{other:?}"),
        }
        let c = parse(&["ace-real", "--quick", "--reps", "1", "--no-build"]).unwrap();
        assert!(matches!(c.mode, Some(Mode::AceReal(a)) if a.quick && a.reps == 1));
    }
}
