//! hakmem-bench: the benchmark suite of issue 3, as a library.
//!
//! The binary (`src/main.rs`) is a thin command line over these modules:
//!
//! ```text
//! main ─ cli: the command line (clap derive)
//!      ─ suite: which workloads, with which parameters (quick / default)
//!      ─ runner: for each workload × repetition × allocator (alternating),
//!                re-exec this binary as `run-one` in a child process,
//!                read its throughput and peak RSS (one JSON line,
//!                serde_json); progress: the bar with an ETA (indicatif)
//!      ─ report: median table (comfy-table), results.csv (csv + serde),
//!                SVG and PNG charts (plotters) under target/hakmem-bench/
//!      ─ sweep: issue 6's `phases` sweep (ACE, default, static grid)
//!                and warm start, CSV and a scatter (SVG, PNG)
//!      ─ instructions: instructions per malloc+free pair on tiny-hot
//!                (perf when it works, else callgrind; difference method),
//!                for the Rust harness and for a C program under LD_PRELOAD
//!      ─ footprint: peak / exit RSS of a one-malloc C program under each
//!                allocator (LD_PRELOAD), hakmem's mappings from smaps
//!      ─ ace_real: ACE on vs off in real programs (python3, perl, sqlite3,
//!                redis, git, gcc, ls, the C harnesses) under LD_PRELOAD
//! run-one ─ workloads::Workload::run::<A>(&'static A) in this process
//! ```
//!
//! Every workload is generic over `A: GlobalAlloc` and calls the allocator's
//! `alloc`/`dealloc` directly, so one binary holds hakmem, the system
//! allocator, mimalloc and jemalloc side by side. The binary's own global
//! allocator stays the system one; the workloads' bookkeeping (slot arrays,
//! queues, thread stacks) therefore never touches the allocator under test.

pub mod ace_real;
pub mod allocators;
mod cbuild;
pub mod cli;
pub mod dl;
pub mod footprint;
pub mod instructions;
pub mod progress;
pub mod report;
pub mod rng;
pub mod runner;
pub mod suite;
pub mod sweep;
pub mod workloads;

mod spsc;

/// The directory the suite writes to: `$CARGO_TARGET_DIR/hakmem-bench`, or
/// `<workspace>/target/hakmem-bench` (the workspace is this crate's parent).
pub fn out_dir() -> std::path::PathBuf {
    target_dir().join("hakmem-bench")
}

/// The Cargo target directory (`CARGO_TARGET_DIR`, else `<workspace>/target`).
pub fn target_dir() -> std::path::PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => std::path::PathBuf::from(d),
        _ => workspace_root().join("target"),
    }
}

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> std::path::PathBuf {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}
