//! Instructions per malloc+free pair on tiny-hot, for every allocator.
//!
//! Instruction counts are stable on shared machines where times are not.
//! Each measurement runs a tiny-hot process twice, with `small` and `large`
//! rounds, and reports
//!
//! ```text
//! instructions per pair = (I(large) − I(small)) / (pairs(large) − pairs(small))
//! ```
//!
//! which cancels process start-up, allocator initialisation and the first
//! refills: what is left is the steady-state hot path, loop included.
//!
//! The counter is `perf stat -e instructions:u` when the kernel exposes it,
//! else callgrind (`valgrind --tool=callgrind`, whose `Collected` total is
//! the instructions executed in user space, all threads). Two harnesses:
//! - `rust`: this binary's `run-one <allocator> tiny-hot`, calling each
//!   allocator's `GlobalAlloc` directly;
//! - `c-preload`: `benches/c/tiny_hot.c` built with `cc`, run with plain
//!   glibc and with `LD_PRELOAD` of `libhakmem.so` (and of mimalloc, jemalloc
//!   or tcmalloc when the system has them).
//!
//! `--ace` ([`ace_overhead`]) measures instead what the ACE learning layer
//! costs the workload's own thread: `tiny-hot` (each `--size`) and
//! `random-mixed` (single-threaded workloads) with `hakmem` and
//! `hakmem+ace`, under callgrind with `--separate-threads=yes`, so that
//! the instructions of the workload's thread (thread 1) and those of every
//! other thread (the ACE worker: the workloads start no thread) are
//! counted apart. Instructions per op = the difference of two runs over the
//! difference of their op counts (each run's JSON result line, `"ops"`), as above.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::allocators::Allocator;
use crate::cbuild::{build_c_program, hakmem_so};
use crate::runner::child_args;
use crate::workloads::{TinyHot, Workload};

/// The C harness source, carried inside the binary.
const TINY_HOT_C: &str = include_str!("../c/tiny_hot.c");

/// Shared libraries tried for the C harness besides hakmem (skipped when
/// absent).
/// (scudo is not among them: it aborts at start-up under valgrind.)
const SYSTEM_LIBS: [(&str, &str); 4] = [
    ("mimalloc", "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2"),
    ("jemalloc", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"),
    (
        "tcmalloc",
        "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
    ),
    ("tcmalloc", "/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4"),
];

/// Options of the `instructions` mode.
#[derive(Clone, Debug)]
pub struct Options {
    pub allocators: Vec<Allocator>,
    pub sizes: Vec<usize>, // block sizes measured (one tiny-hot each)
    pub batch: usize,
    pub small: u64,          // rounds of the small run
    pub large: u64,          // rounds of the large run
    pub preload: bool,       // also run the C harness
    pub build_preload: bool, // `cargo build --release -p hakmem-preload` first
    pub out: PathBuf,        // where the C harness and the CSV go
}

impl Default for Options {
    fn default() -> Options {
        Options {
            allocators: vec![
                Allocator::Hakmem,
                Allocator::Mimalloc,
                Allocator::MiDirect,
                Allocator::Jemalloc,
                Allocator::System,
            ],
            sizes: vec![64],
            batch: 100,
            small: 1_000,
            large: 11_000,
            preload: true,
            build_preload: true,
            out: crate::out_dir(),
        }
    }
}

/// How instructions are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    Perf,
    Callgrind,
}

impl Counter {
    pub fn name(self) -> &'static str {
        match self {
            Counter::Perf => "perf",
            Counter::Callgrind => "callgrind",
        }
    }
}

/// One measured line.
#[derive(Clone, Debug)]
pub struct Line {
    pub harness: &'static str,
    pub size: usize,
    pub allocator: String,
    pub counter: Counter,
    pub small: u64, // instructions of the small run
    pub large: u64, // instructions of the large run
    pub pairs: u64, // pairs(large) − pairs(small)
}

impl Line {
    pub fn per_pair(&self) -> f64 {
        (self.large as f64 - self.small as f64) / self.pairs as f64
    }
}

/// Finds a working counter: perf if it counts instructions, else valgrind.
pub fn detect() -> Result<Counter, String> {
    let perf = Command::new("perf")
        .args(["stat", "-x,", "-e", "instructions:u", "--", "true"])
        .stdout(Stdio::null())
        .output();
    let perf_note = match perf {
        Ok(o) => match parse_perf(&String::from_utf8_lossy(&o.stderr)) {
            Some(_) => return Ok(Counter::Perf),
            None => "perf cannot count instructions here (<not supported>)".to_string(),
        },
        Err(e) => format!("perf not runnable ({e})"),
    };
    match Command::new("valgrind").arg("--version").output() {
        Ok(o) if o.status.success() => {
            eprintln!("instructions: {perf_note}; using callgrind");
            Ok(Counter::Callgrind)
        }
        _ => Err(format!("{perf_note}, and valgrind is not installed")),
    }
}

/// The `instructions:u` count from `perf stat -x,` output.
fn parse_perf(stderr: &str) -> Option<u64> {
    stderr.lines().find_map(|l| {
        let mut f = l.split(',');
        let v = f.next()?;
        let _unit = f.next()?;
        let ev = f.next()?;
        if ev.starts_with("instructions") {
            v.trim().parse().ok()
        } else {
            None
        }
    })
}

/// The total from callgrind's `==pid== Collected : N` line.
fn parse_callgrind(stderr: &str) -> Option<u64> {
    stderr.lines().find_map(|l| {
        let (_, rest) = l.split_once("Collected :")?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Counts the instructions of `prog args…` with `env` added.
fn count(
    c: Counter,
    prog: &Path,
    args: &[String],
    env: &[(&str, OsString)],
) -> Result<u64, String> {
    let mut cmd = match c {
        Counter::Perf => {
            let mut k = Command::new("perf");
            k.args(["stat", "-x,", "-e", "instructions:u", "--"]);
            k
        }
        Counter::Callgrind => {
            let mut k = Command::new("valgrind");
            k.args([
                "--tool=callgrind",
                "--callgrind-out-file=/dev/null",
                "--dump-instr=no",
                "--dump-line=no",
            ]);
            k
        }
    };
    cmd.arg(prog)
        .args(args)
        .stdout(Stdio::null())
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().map_err(|e| format!("{}: {e}", c.name()))?;
    let err = String::from_utf8_lossy(&o.stderr);
    if !o.status.success() {
        let tail: Vec<&str> = err.lines().rev().take(5).collect();
        return Err(format!(
            "{} exited with {}: {}",
            c.name(),
            o.status,
            tail.join(" | ")
        ));
    }
    match c {
        Counter::Perf => parse_perf(&err),
        Counter::Callgrind => parse_callgrind(&err),
    }
    .ok_or_else(|| format!("no instruction count in {} output", c.name()))
}

/// What callgrind counted in one run, thread by thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadCounts {
    pub main: u64,  // thread 1 (the workload's)
    pub other: u64, // every other thread (the ACE worker)
    pub ops: u64,   // the run's op count (the JSON result's `ops`)
}

/// The `totals:` (or `summary:`) figure of one callgrind output file.
fn parse_totals(text: &str) -> Option<u64> {
    let find = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.split_whitespace().next()?.parse().ok())
    };
    find("totals:").or_else(|| find("summary:"))
}

/// The `ops` of a child's JSON result line.
fn parse_ops(stdout: &str) -> Result<u64, String> {
    crate::runner::parse_child(stdout).map(|r| r.ops)
}

/// Runs `prog args…` under callgrind with one output file per thread in
/// `dir` (emptied first) and sums them: thread 1 apart from the others.
fn count_threads(prog: &Path, args: &[String], dir: &Path) -> Result<ThreadCounts, String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let o = Command::new("valgrind")
        .args([
            "--tool=callgrind",
            "--separate-threads=yes",
            // The worker sleeps between ticks: without fair scheduling it
            // may hardly run while the workload thread holds the CPU.
            "--fair-sched=yes",
            "--dump-instr=no",
            "--dump-line=no",
        ])
        .arg(format!("--callgrind-out-file={}", dir.join("cg").display()))
        .arg(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("valgrind: {e}"))?;
    if !o.status.success() {
        let err = String::from_utf8_lossy(&o.stderr);
        let tail: Vec<&str> = err.lines().rev().take(5).collect();
        return Err(format!(
            "valgrind exited with {}: {}",
            o.status,
            tail.join(" | ")
        ));
    }
    let ops = parse_ops(&String::from_utf8_lossy(&o.stdout))?;
    let mut c = ThreadCounts {
        ops,
        ..ThreadCounts::default()
    };
    let mut files = 0;
    for e in std::fs::read_dir(dir).map_err(|e| e.to_string())? {
        let p = e.map_err(|e| e.to_string())?.path();
        // Per-thread files are `cg-01`, `cg-02`, …
        let Some(n) = p
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("cg-"))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        let t = parse_totals(&text).ok_or_else(|| format!("no totals in {}", p.display()))?;
        files += 1;
        if n == 1 {
            c.main += t;
        } else {
            c.other += t;
        }
    }
    if files == 0 {
        return Err(format!(
            "callgrind wrote no per-thread file in {}",
            dir.display()
        ));
    }
    Ok(c)
}

/// One line of the ACE overhead table: one workload, one allocator.
#[derive(Clone, Debug)]
pub struct AceLine {
    pub workload: String,
    pub allocator: String,
    pub small: ThreadCounts,
    pub large: ThreadCounts,
}

impl AceLine {
    /// Instructions per op of the workload's thread (large − small runs).
    pub fn main_per_op(&self) -> f64 {
        (self.large.main as f64 - self.small.main as f64)
            / (self.large.ops as f64 - self.small.ops as f64)
    }
}

/// A workload of the given rounds.
type WorkloadOf = Box<dyn Fn(u64) -> Workload>;

/// `--ace`: tiny-hot (each size) and random-mixed with `hakmem` and
/// `hakmem+ace` under callgrind, the workload's thread and the others
/// counted apart (see the module documentation). Rounds: `small`/`large`
/// for tiny-hot; random-mixed runs `small`/`large` × 100 ops.
pub fn ace_overhead(opts: &Options) -> Result<(Vec<AceLine>, Vec<String>), String> {
    match Command::new("valgrind").arg("--version").output() {
        Ok(o) if o.status.success() => {}
        _ => return Err("valgrind is not installed".into()),
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = opts.out.join("callgrind-ace");
    let mut workloads: Vec<(String, WorkloadOf)> = Vec::new();
    for &size in &opts.sizes {
        let batch = opts.batch;
        workloads.push((
            format!("tiny-hot/{size}"),
            Box::new(move |rounds| {
                Workload::TinyHot(TinyHot {
                    size,
                    batch,
                    rounds,
                })
            }),
        ));
    }
    workloads.push((
        "random-mixed".into(),
        Box::new(|rounds| {
            Workload::RandomMixed(crate::workloads::RandomMixed {
                // The suite's random-mixed, shorter.
                ops: rounds * 100,
                slots: 400,
                seed: 42,
                min: 16,
                max: 1024,
            })
        }),
    ));
    let mut lines = Vec::new();
    let mut notes = Vec::new();
    for (name, w) in &workloads {
        for a in [Allocator::Hakmem, Allocator::HakmemAce] {
            eprintln!("instructions: ace   {:<10} {name} (callgrind)", a.name());
            let run = |rounds| count_threads(&exe, &child_args(a, &w(rounds)), &dir);
            match (run(opts.small), run(opts.large)) {
                (Ok(small), Ok(large)) => lines.push(AceLine {
                    workload: name.clone(),
                    allocator: a.name().into(),
                    small,
                    large,
                }),
                (Err(e), _) | (_, Err(e)) => notes.push(format!("{name} {}: {e}", a.name())),
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok((lines, notes))
}

/// The ACE overhead table: per workload, the workload thread's
/// instructions per op without and with ACE, their ratio, and the other
/// threads' (the worker's) instructions in the large run.
pub fn ace_table(lines: &[AceLine]) -> String {
    let mut names: Vec<&str> = lines.iter().map(|l| l.workload.as_str()).collect();
    names.dedup();
    let mut rows = Vec::new();
    for n in names {
        let get = |a: &str| lines.iter().find(|l| l.workload == n && l.allocator == a);
        let (Some(off), Some(on)) = (get("hakmem"), get("hakmem+ace")) else {
            continue;
        };
        rows.push(vec![
            n.to_string(),
            format!("{:.3}", off.main_per_op()),
            format!("{:.3}", on.main_per_op()),
            format!("{:.4}", on.main_per_op() / off.main_per_op()),
            on.large.other.to_string(),
            format!("{:.3}", on.large.other as f64 / on.large.ops as f64),
        ]);
    }
    crate::report::tables::text(
        &[
            "workload",
            "off instr/op",
            "on instr/op",
            "on/off",
            "worker instr",
            "worker/op",
        ],
        &rows,
        &[1, 2, 3, 4, 5],
    )
}

/// `instructions_ace.csv`.
pub fn ace_csv(lines: &[AceLine], opts: &Options) -> String {
    let mut s = String::from(
        "workload,allocator,rounds_small,rounds_large,ops_small,ops_large,main_small,main_large,\
         other_small,other_large,main_instr_per_op\n",
    );
    for l in lines {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{:.4}",
            l.workload,
            l.allocator,
            opts.small,
            opts.large,
            l.small.ops,
            l.large.ops,
            l.small.main,
            l.large.main,
            l.small.other,
            l.large.other,
            l.main_per_op()
        );
    }
    s
}

/// Runs the mode: prints progress on stderr, returns the lines measured and
/// the notes about what was skipped.
pub fn run(opts: &Options) -> Result<(Vec<Line>, Vec<String>), String> {
    let counter = detect()?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let pairs = (opts.large - opts.small) * opts.batch as u64;
    let mut lines = Vec::new();
    let mut notes = Vec::new();
    let tiny = |size, rounds| {
        Workload::TinyHot(TinyHot {
            size,
            batch: opts.batch,
            rounds,
        })
    };
    for &size in &opts.sizes {
        for &a in &opts.allocators {
            eprintln!(
                "instructions: rust  {:<9} size {size:<5} ({})",
                a.name(),
                counter.name()
            );
            let env: Vec<(&str, OsString)> = a
                .child_env()
                .iter()
                .map(|&(k, v)| (k, OsString::from(v)))
                .collect();
            let small = count(counter, &exe, &child_args(a, &tiny(size, opts.small)), &env);
            let large = count(counter, &exe, &child_args(a, &tiny(size, opts.large)), &env);
            match (small, large) {
                (Ok(small), Ok(large)) => lines.push(Line {
                    harness: "rust",
                    size,
                    allocator: a.name().into(),
                    counter,
                    small,
                    large,
                    pairs,
                }),
                (Err(e), _) | (_, Err(e)) => {
                    notes.push(format!("rust {} size {size}: {e}", a.name()))
                }
            }
        }
    }
    if opts.preload {
        match preload_harness(opts, counter, pairs) {
            Ok((l, n)) => {
                lines.extend(l);
                notes.extend(n);
            }
            Err(e) => notes.push(format!("C/LD_PRELOAD harness skipped: {e}")),
        }
    }
    Ok((lines, notes))
}

/// Builds and runs the C harness under each available allocator library.
fn preload_harness(
    opts: &Options,
    counter: Counter,
    pairs: u64,
) -> Result<(Vec<Line>, Vec<String>), String> {
    let bin = build_c(&opts.out)?;
    let mut notes = Vec::new();
    let mut libs: Vec<(String, Option<PathBuf>)> = vec![("glibc".into(), None)];
    let hak = hakmem_so(opts.build_preload, &mut notes);
    if hak.exists() {
        libs.push(("hakmem".into(), Some(hak.clone())));
        // The same library with HAKMEM_SECURE=1 (see the env below).
        libs.push(("hakmem-secure".into(), Some(hak)));
    } else {
        notes.push(format!(
            "{} not found (build it with `cargo build --release -p hakmem-preload`)",
            hak.display()
        ));
    }
    for (name, path) in SYSTEM_LIBS {
        let p = Path::new(path);
        if p.exists() && !libs.iter().any(|(n, _)| n == name) {
            libs.push((name.into(), Some(p.to_path_buf())));
        } else if !p.exists() && name == "mimalloc" {
            notes.push(format!("{path} not installed: no C-level mimalloc line"));
        }
    }
    let args = |size: usize, rounds: u64| {
        vec![size.to_string(), opts.batch.to_string(), rounds.to_string()]
    };
    let mut lines = Vec::new();
    for &size in &opts.sizes {
        for (name, lib) in &libs {
            eprintln!(
                "instructions: C     {name:<9} size {size:<5} ({})",
                counter.name()
            );
            let mut env: Vec<(&str, OsString)> = match lib {
                Some(p) => vec![("LD_PRELOAD", p.as_os_str().to_os_string())],
                None => vec![],
            };
            if name == "hakmem-secure" {
                env.push(("HAKMEM_SECURE", "1".into()));
            }
            let small = count(counter, &bin, &args(size, opts.small), &env);
            let large = count(counter, &bin, &args(size, opts.large), &env);
            match (small, large) {
                (Ok(small), Ok(large)) => lines.push(Line {
                    harness: "c-preload",
                    size,
                    allocator: name.clone(),
                    counter,
                    small,
                    large,
                    pairs,
                }),
                (Err(e), _) | (_, Err(e)) => notes.push(format!("C {name} size {size}: {e}")),
            }
        }
    }
    Ok((lines, notes))
}

/// Writes `tiny_hot.c` into `dir` and compiles it with `cc -O2`.
fn build_c(dir: &Path) -> Result<PathBuf, String> {
    build_c_program(dir, "tiny_hot", TINY_HOT_C)
}

/// The plain-text table.
pub fn table(lines: &[Line]) -> String {
    let rows: Vec<Vec<String>> = lines
        .iter()
        .map(|l| {
            vec![
                l.harness.to_string(),
                l.size.to_string(),
                l.allocator.clone(),
                l.counter.name().to_string(),
                l.small.to_string(),
                l.large.to_string(),
                l.pairs.to_string(),
                format!("{:.1}", l.per_pair()),
            ]
        })
        .collect();
    crate::report::tables::text(
        &[
            "harness",
            "size",
            "allocator",
            "counter",
            "I(small)",
            "I(large)",
            "Δpairs",
            "instr/pair",
        ],
        &rows,
        &[1, 4, 5, 6, 7],
    )
}

/// `instructions.csv`.
pub fn csv(lines: &[Line], opts: &Options) -> String {
    let mut s = String::from(
        "harness,allocator,counter,size,batch,rounds_small,rounds_large,instr_small,instr_large,pairs_diff,instr_per_pair\n",
    );
    for l in lines {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{:.2}",
            l.harness,
            l.allocator,
            l.counter.name(),
            l.size,
            opts.batch,
            opts.small,
            opts.large,
            l.small,
            l.large,
            l.pairs,
            l.per_pair()
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_counter_output() {
        assert_eq!(
            parse_perf("1234567,,instructions:u,1000,100.00,,\n"),
            Some(1_234_567)
        );
        assert_eq!(
            parse_perf("<not supported>,,instructions:u,0,100.00,,\n"),
            None
        );
        let cg = "==12== Events    : Ir\n==12== Collected : 98765\n==12==\n";
        assert_eq!(parse_callgrind(cg), Some(98_765));
        assert_eq!(
            parse_totals("thread: 2\nsummary: 77\ntotals: 78\n"),
            Some(78)
        );
        assert_eq!(parse_totals("summary: 77\n"), Some(77));
        let line = r#"{"ops":4200,"ns":1,"cpu_ns":1,"hwm_kib":1,"rss_kib":1,"check":0}"#;
        assert_eq!(parse_ops(&format!("x\n{line}\n")), Ok(4200));
        assert!(parse_ops("RESULT ops=4200 ns=1\n").is_err());
        let l = Line {
            harness: "rust",
            size: 64,
            allocator: "x".into(),
            counter: Counter::Callgrind,
            small: 1_000,
            large: 6_000,
            pairs: 100,
        };
        assert_eq!(l.per_pair(), 50.0);
    }
}
