//! Runs the suite: every (workload, repetition, allocator) in its own child
//! process, allocators alternating within each repetition.
//!
//! ```text
//! parent: for workload: for rep: for allocator (order rotated per rep)
//!           spawn `<this exe> run-one <allocator> <family> key=value…`
//!           wait4 → exit status, ru_maxrss;  stdout → one JSON line
//! child:  run the workload once, then print one JSON line (serde_json,
//!         [`ChildResult`]):
//!           {"ops":…,"ns":…,"cpu_ns":…,"hwm_kib":…,"rss_kib":…,"check":…,
//!            "rss_after_free_kib":…,             (rss-return only)
//!            "phases":{"ns":[…],"decisions":[…]}, (phases only)
//!            "ace":{"events":…,"dropped":…,"decisions":…,
//!                   "worker_cpu_ns":…,"worker_wall_ms":…}}   (hakmem+ace only)
//! ```
//!
//! `hakmem+ace` children call `hakmem::ace::start()` before the workload
//! and `ace::stop()` after it, and report the worker's figures
//! (`ace::state()`). A child whose environment has `HAKMEM_BENCH_POLICY`
//! applies that static configuration first (see [`crate::sweep`]).
//!
//! The child's peak RSS is its `VmHWM` from `/proc/self/status`, read after
//! the workload, so it covers exactly that process (binary, std, the
//! allocator under test and its workload). `ru_maxrss` from `wait4` is kept
//! in the CSV as a cross-check; the two agree within a few hundred KiB.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::allocators::{
    Allocator, HAKMEM, HAKMEM_SECURE, JEMALLOC, MIMALLOC, MIMALLOC_SECURE, MI_DIRECT, SCUDO,
    SNMALLOC, SYSTEM, TCMALLOC,
};
use crate::suite::Spec;
use serde::{Deserialize, Serialize};

use crate::workloads::{Outcome, PhaseTimes, Workload};

/// What one child run measured.
#[derive(Clone, Copy, Debug)]
pub struct Measured {
    pub ops: u64,
    pub secs: f64,
    pub cpu_secs: f64,   // CPU time of the child's run (all threads)
    pub hwm_kib: u64,    // the child's VmHWM (peak RSS)
    pub maxrss_kib: u64, // wait4's ru_maxrss (cross-check)
    pub check: u64,
    pub rss_after_free_kib: Option<i64>, // rss-return: RSS(end) − RSS(start)
    pub phases: Option<PhaseTimes>,      // phases: per-phase time and decisions
    pub ace: Option<AceRun>,             // hakmem+ace: the worker's figures
}

/// What the ACE worker of a `hakmem+ace` child reported (`ace::state()`
/// after `ace::stop()`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AceRun {
    pub events: u64,        // events the ring accepted
    pub dropped: u64,       // events dropped because the ring was full
    pub decisions: u64,     // policy decisions applied
    pub worker_cpu_ns: u64, // CPU time of the worker thread
    pub worker_wall_ms: u64,
}

impl AceRun {
    /// `dropped / (events + dropped)` (0 when nothing was offered).
    pub fn drop_rate(&self) -> f64 {
        hakmem::ace::drop_rate(self.events, self.dropped)
    }

    /// The worker's CPU time as a percentage of one core over its life.
    pub fn worker_cpu_pct(&self) -> f64 {
        self.worker_cpu_ns as f64 / (self.worker_wall_ms.max(1) as f64 * 1e6) * 100.0
    }

    fn read() -> AceRun {
        let st = hakmem::ace::state();
        AceRun {
            events: st.events,
            dropped: st.dropped,
            decisions: st.decisions,
            worker_cpu_ns: st.worker_cpu_ns,
            worker_wall_ms: st.worker_wall_ms,
        }
    }
}

impl Measured {
    pub fn mops(&self) -> f64 {
        self.ops as f64 / self.secs.max(1e-9) / 1e6
    }

    /// Ops per CPU-second (0 when the CPU time is unknown).
    pub fn mops_cpu(&self) -> f64 {
        if self.cpu_secs > 0.0 {
            self.ops as f64 / self.cpu_secs / 1e6
        } else {
            0.0
        }
    }

    pub fn rss_mib(&self) -> f64 {
        self.hwm_kib as f64 / 1024.0
    }

    /// `rss-return`: RSS after everything was freed minus RSS at the start.
    pub fn rss_after_free_mib(&self) -> Option<f64> {
        self.rss_after_free_kib.map(|k| k as f64 / 1024.0)
    }
}

/// One run of the suite: which workload (index into the spec list), which
/// allocator, which repetition, and what came of it.
#[derive(Clone, Debug)]
pub struct Sample {
    pub spec: usize,
    pub alloc: Allocator,
    pub rep: usize,
    pub result: Result<Measured, String>,
}

/// How to run the suite.
#[derive(Clone, Debug)]
pub struct Plan {
    pub reps: usize,
    pub allocators: Vec<Allocator>,
    pub timeout: Duration,
}

/// Runs every spec × rep × allocator; one progress line per run on stderr
/// (above a bar with an ETA on a terminal, [`crate::progress`]).
pub fn run_suite(specs: &[Spec], plan: &Plan) -> Vec<Sample> {
    let exe = std::env::current_exe().expect("cannot find this executable");
    let total = specs.len() * plan.reps * plan.allocators.len();
    let width = specs.iter().map(|s| s.name.len()).max().unwrap_or(8);
    let mut samples = Vec::with_capacity(total);
    let started = Instant::now();
    let progress = crate::progress::Progress::new(total, "hakmem-bench");
    for (si, spec) in specs.iter().enumerate() {
        for rep in 0..plan.reps {
            let n = plan.allocators.len();
            for k in 0..n {
                let alloc = plan.allocators[(k + rep) % n];
                let result = match alloc {
                    // The mimalloc of the other build (see `Allocator::Mimalloc2`).
                    Allocator::Mimalloc2 => match crate::allocators::mimalloc2_exe() {
                        Some(exe2) => run_child(
                            &exe2,
                            Allocator::Mimalloc,
                            &spec.workload,
                            &[],
                            plan.timeout,
                        ),
                        None => Err(format!(
                            "mimalloc2 needs {} (a hakmem-bench built with \
                             --features mimalloc-v2)",
                            crate::allocators::MIMALLOC2_ENV
                        )),
                    },
                    _ => run_child(&exe, alloc, &spec.workload, &[], plan.timeout),
                };
                let done = samples.len() + 1;
                let line = match &result {
                    Ok(m) => format!(
                        "{:>9.2} Mops/s {:>8.1} MiB {:>7.3} s",
                        m.mops(),
                        m.rss_mib(),
                        m.secs
                    ),
                    Err(e) => format!("FAILED: {e}"),
                };
                progress.line(&format!(
                    "[{done:>w$}/{total}] {:<width$}  {:<10}  rep {}/{}  {line}   ({:.0} s)",
                    spec.name,
                    alloc.name(),
                    rep + 1,
                    plan.reps,
                    started.elapsed().as_secs_f64(),
                    w = total.to_string().len(),
                ));
                progress.inc();
                samples.push(Sample {
                    spec: si,
                    alloc,
                    rep,
                    result,
                });
            }
        }
    }
    samples
}

/// The arguments of the hidden `run-one` subcommand for this run.
pub fn child_args(alloc: Allocator, w: &Workload) -> Vec<String> {
    let mut a = vec![
        "run-one".to_string(),
        alloc.name().to_string(),
        w.family().to_string(),
    ];
    a.extend(w.args());
    a
}

/// Runs one child (with `env` added to its environment) and collects its
/// measurement.
pub fn run_child(
    exe: &std::path::Path,
    alloc: Allocator,
    w: &Workload,
    env: &[(&str, String)],
    timeout: Duration,
) -> Result<Measured, String> {
    let mut child = Command::new(exe)
        .args(child_args(alloc, w))
        .envs(alloc.child_env().iter().copied())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    let pid = child.id() as libc::pid_t;
    let mut stdout = child.stdout.take().expect("piped stdout");
    // The child writes one short line, so the pipe cannot fill up while we
    // poll for its exit.
    let start = Instant::now();
    let mut status: libc::c_int = 0;
    // SAFETY: all-zero is a valid `rusage`.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let mut killed = false;
    loop {
        // SAFETY: `pid` is our child, not yet reaped; the out-pointers are
        // valid for the call.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
        if r == pid {
            break;
        }
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("wait4: {e}"));
        }
        if !killed && start.elapsed() > timeout {
            // SAFETY: signalling our own unreaped child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut out = String::new();
    let _ = stdout.read_to_string(&mut out);
    if killed {
        return Err(format!("timed out after {} s", timeout.as_secs()));
    }
    if libc::WIFSIGNALED(status) {
        return Err(format!("killed by signal {}", libc::WTERMSIG(status)));
    }
    if libc::WEXITSTATUS(status) != 0 {
        return Err(format!("exit status {}", libc::WEXITSTATUS(status)));
    }
    let mut m = parse_result(&out)?;
    m.maxrss_kib = ru.ru_maxrss as u64;
    Ok(m)
}

/// The child's report: one JSON line on its stdout.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChildResult {
    pub ops: u64,
    /// Wall-clock time of the timed region.
    pub ns: u64,
    /// CPU time of the run (user + system, all threads).
    pub cpu_ns: u64,
    /// `VmHWM` and `VmRSS` after the workload.
    pub hwm_kib: u64,
    pub rss_kib: u64,
    pub check: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rss_after_free_kib: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phases: Option<PhaseTimes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ace: Option<AceRun>,
}

impl From<ChildResult> for Measured {
    fn from(r: ChildResult) -> Measured {
        Measured {
            ops: r.ops,
            secs: r.ns as f64 / 1e9,
            cpu_secs: r.cpu_ns as f64 / 1e9,
            hwm_kib: r.hwm_kib,
            maxrss_kib: 0,
            check: r.check,
            rss_after_free_kib: r.rss_after_free_kib,
            phases: r.phases,
            ace: r.ace,
        }
    }
}

/// Parses the child's stdout: its last line that starts with `{` is the
/// JSON result ([`ChildResult`]); anything before it is ignored.
pub fn parse_child(out: &str) -> Result<ChildResult, String> {
    let line = out
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .ok_or_else(|| format!("no JSON result line in the child's output {out:?}"))?;
    serde_json::from_str(line).map_err(|e| format!("the child's result line {line:?}: {e}"))
}

/// Parses the child's result line into what the parent keeps.
pub fn parse_result(out: &str) -> Result<Measured, String> {
    parse_child(out).map(Measured::from)
}

/// What a child run produced: the outcome, the CPU time and, for
/// `hakmem+ace`, the worker's figures.
pub type ChildRun = (Outcome, Duration, Option<AceRun>);

/// The child side: runs `w` once against `alloc` in this process.
/// Also returns the CPU time (user + system, all threads) the run took,
/// set-up included: less disturbed by other load than wall-clock time,
/// and for `hakmem+ace` the worker's figures.
pub fn run_one(alloc: Allocator, w: &Workload) -> Result<ChildRun, String> {
    if matches!(alloc, Allocator::Hakmem | Allocator::HakmemAce) {
        apply_env_policy()?;
    }
    if let Some(lib) = alloc.dl_lib() {
        // Open the library before the clock starts, and fail with its
        // message rather than abort inside the workload.
        lib.load()?;
    }
    let c0 = cpu_time();
    let mut ace = None;
    let o = match alloc {
        Allocator::Hakmem => w.run(&HAKMEM),
        Allocator::HakmemAce => {
            if !hakmem::ace::start() {
                return Err("hakmem::ace::start() failed".into());
            }
            let o = w.run(&HAKMEM);
            hakmem::ace::stop();
            ace = Some(AceRun::read());
            o
        }
        Allocator::HakmemSecure => w.run(&HAKMEM_SECURE),
        Allocator::System => w.run(&SYSTEM),
        Allocator::Mimalloc => w.run(&MIMALLOC),
        Allocator::Mimalloc2 => {
            return Err("mimalloc2 runs as `mimalloc` in the binary named by \
                        HAKMEM_BENCH_MIMALLOC2"
                .into())
        }
        Allocator::MiDirect => w.run(&MI_DIRECT),
        Allocator::MimallocSecure => w.run(&MIMALLOC_SECURE),
        Allocator::Jemalloc => w.run(&JEMALLOC),
        Allocator::Tcmalloc => w.run(&TCMALLOC),
        Allocator::Snmalloc => w.run(&SNMALLOC),
        Allocator::Scudo => w.run(&SCUDO),
    };
    Ok((o, cpu_time().saturating_sub(c0), ace))
}

/// User + system CPU time of this process (all threads) so far.
pub fn cpu_time() -> Duration {
    // SAFETY: all-zero is a valid `rusage`.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid out-pointer for the call.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// The child side's report: one JSON line ([`ChildResult`]).
pub fn result_line(o: &Outcome, cpu: Duration, ace: Option<AceRun>) -> String {
    let (hwm_kib, rss_kib) = vm_status();
    let r = ChildResult {
        ops: o.ops,
        ns: o.elapsed.as_nanos() as u64,
        cpu_ns: cpu.as_nanos() as u64,
        hwm_kib,
        rss_kib,
        check: o.check,
        rss_after_free_kib: o.rss_after_free_kib,
        phases: o.phases,
        ace,
    };
    serde_json::to_string(&r).expect("plain numbers serialise")
}

/// `VmHWM` and `VmRSS` of this process in KiB (0 where unreadable).
pub fn vm_status() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// The environment variable that carries `R:C` (refill quarters, cap in
/// refills) from `sweep` to a child.
pub const POLICY_VAR: &str = "HAKMEM_BENCH_POLICY";

/// The child side: applies `HAKMEM_BENCH_POLICY=R:C` if set (the decay and
/// threshold come through hakmem's own variables, read at its start).
pub fn apply_env_policy() -> Result<(), String> {
    let Ok(v) = std::env::var(POLICY_VAR) else {
        return Ok(());
    };
    let bad = || format!("{POLICY_VAR}={v}: expected R:C");
    let (r, c) = v.split_once(':').ok_or_else(bad)?;
    let (r, c): (u32, u32) = (r.parse().map_err(|_| bad())?, c.parse().map_err(|_| bad())?);
    // Start hakmem first (it reads its HAKMEM_* configuration once, which
    // would overwrite what is written here).
    // SAFETY: a fresh block, freed at once.
    unsafe { hakmem::free(hakmem::malloc(16)) };
    for class in 0..hakmem_ptr_bridge::NUM_CLASSES {
        let refill = (hakmem_ace_learning::default_refill(class) * r / 4).clamp(1, 1024);
        hakmem_ace_learning::POLICY.set_refill_count(class, refill);
        hakmem_ace_learning::POLICY.set_cache_cap(class, (refill * c).min(4096));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_line_round_trips() {
        let o = Outcome {
            ops: 1234,
            elapsed: Duration::from_millis(5),
            check: 77,
            rss_after_free_kib: None,
            phases: None,
        };
        let line = result_line(&o, Duration::from_millis(4), None);
        let m = parse_result(&format!("noise\n{line}\n")).unwrap();
        assert_eq!(m.rss_after_free_kib, None);
        let o2 = Outcome {
            rss_after_free_kib: Some(-12),
            ..o
        };
        let m2 = parse_result(&result_line(&o2, Duration::ZERO, None)).unwrap();
        assert_eq!(m2.rss_after_free_kib, Some(-12));
        assert_eq!((m2.phases, m2.ace), (None, None));
        let t = PhaseTimes {
            ns: [1, 2, 3, 4, 5],
            decisions: [6, 7, 8, 9, 10],
        };
        let a = AceRun {
            events: 1000,
            dropped: 1,
            decisions: 3,
            worker_cpu_ns: 5_000_000,
            worker_wall_ms: 1000,
        };
        let o3 = Outcome {
            phases: Some(t),
            ..o
        };
        let m3 = parse_result(&result_line(&o3, Duration::ZERO, Some(a))).unwrap();
        assert_eq!((m3.phases, m3.ace), (Some(t), Some(a)));
        assert!((a.worker_cpu_pct() - 0.5).abs() < 1e-12);
        assert!((a.drop_rate() - 1.0 / 1001.0).abs() < 1e-12);
        assert!((m.cpu_secs - 0.004).abs() < 1e-12);
        assert_eq!(m.ops, 1234);
        assert_eq!(m.check, 77);
        assert!((m.secs - 0.005).abs() < 1e-12);
        assert!(m.hwm_kib > 0, "VmHWM is readable on Linux");
        assert!(line.starts_with("{\"ops\":1234,"), "{line}");
        assert!(
            !line.contains("phases"),
            "absent fields are left out: {line}"
        );
    }

    #[test]
    fn bad_result_lines_say_what_is_wrong() {
        let e = parse_result("no json here\n").unwrap_err();
        assert!(e.contains("no JSON result line"), "{e}");
        let e = parse_result("{\"ops\":1}\n").unwrap_err();
        assert!(e.contains("missing field `ns`"), "{e}");
        let e = parse_result("{\"ops\":\"x\"}\n").unwrap_err();
        assert!(e.contains("invalid type"), "{e}");
    }
}
