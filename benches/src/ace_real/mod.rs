//! `hakmem-bench ace-real`: ACE on against ACE off in real programs.
//!
//! Every program runs under `LD_PRELOAD=libhakmem.so` with `HAKMEM_ACE=1`
//! (on: the preload's constructor starts the learning worker) and with
//! `HAKMEM_ACE=0` (off: the same as unset, only `1`/`yes`/`true`/`on`
//! start it; see `docs/ENV_VARS.md`). Repetition `r` runs the pair in the
//! order on, off when `r` is even and off, on when it is odd (on, off, off,
//! on, on, off, …), program after program, so that a drift of the machine
//! falls on both sides. One untimed warm-up run per program (ACE off)
//! fills the page cache first.
//!
//! Each run goes through `benches/c/ace_run.c` (built with `cc` into the
//! output directory): a small wrapper that forks the program, sets
//! `LD_PRELOAD` in the child only, reaps it with `wait4` and reports its
//! wall time, its CPU time, its `ru_maxrss` (peak RSS; forked from the
//! ~1 MiB wrapper, not from this runner, because Linux keeps the pre-exec
//! high-water mark across `execve`) and the CPU time of its `hakmem-ace`
//! thread (polled every 5 ms from `/proc/PID/task/*/schedstat`). See the
//! wrapper's header for what each figure includes.
//!
//! The programs: python3, perl, sqlite3, git, gcc (each a ~0.5–3 s
//! workload written into the output directory), redis-server (driven by
//! `redis-benchmark`, which runs without the preload: its wall time is the
//! time figure, the server's peak RSS the memory figure), `ls` a hundred times
//! (a short program: does starting the worker cost?), and the bench's C
//! harnesses `tiny_hot.c` and `large_churn.c`. A program that is not
//! installed is reported with one line and left out.

use std::ffi::OsString;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cbuild::{build_c_program, hakmem_so};

mod programs;
mod summary;

use programs::{os, programs, Kind, Program};
pub use summary::{
    chart, csv, geomean, markdown, summarize, table, verdict, worse_beyond_spread, Line,
};

const ACE_RUN_C: &str = include_str!("../../c/ace_run.c");

/// The targets: geometric means of on ÷ off over the programs.
pub const TIME_GEOMEAN_MAX: f64 = 0.97;
pub const RSS_GEOMEAN_MAX: f64 = 0.95;
/// No program slower or bigger than this (beyond its spread).
pub const PROGRAM_MAX: f64 = 1.02;

/// Options of the `ace-real` mode.
#[derive(Clone, Debug)]
pub struct Options {
    pub reps: usize,
    pub quick: bool, // workloads a tenth of the size, for a smoke run
    pub only: Vec<String>,
    pub build_preload: bool,
    pub timeout: Duration,
    pub out: PathBuf,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            reps: 5,
            quick: false,
            only: Vec::new(),
            build_preload: true,
            timeout: Duration::from_secs(120),
            out: crate::out_dir().join("ace-real"),
        }
    }
}

/// One run's figures.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Run {
    pub wall_s: f64,
    pub cpu_s: f64,
    pub maxrss_kib: u64,
    pub ace_threads: u32,
    pub ace_cpu_ns: u64,
}

/// A program's runs, pair `i` = repetition `i`.
#[derive(Clone, Debug)]
pub struct Measured {
    pub name: String,
    pub what: String,
    pub on: Vec<Run>,
    pub off: Vec<Run>,
    pub error: Option<String>,
}

/// Whether repetition `rep` runs ACE on first (on, off, off, on, …).
pub fn on_first(rep: usize) -> bool {
    rep.is_multiple_of(2)
}

/// Parses the wrapper's result lines: wall and CPU time summed, peak RSS
/// the largest, worker threads and CPU summed; any non-zero status is an
/// error.
pub fn parse_wrapper(text: &str) -> Result<Run, String> {
    let mut r = Run::default();
    let mut lines = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        lines += 1;
        let get = |key: &str| -> Result<u64, String> {
            line.split_whitespace()
                .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("no {key} in `{line}`"))
        };
        let status = get("status")?;
        if status != 0 {
            return Err(format!("exit status {status}"));
        }
        r.wall_s += get("wall_ns")? as f64 * 1e-9;
        r.cpu_s += get("cpu_us")? as f64 * 1e-6;
        r.maxrss_kib = r.maxrss_kib.max(get("maxrss_kib")?);
        r.ace_threads += get("ace_threads")? as u32;
        r.ace_cpu_ns += get("ace_cpu_ns")?;
    }
    if lines == 0 {
        return Err("the wrapper wrote no result".into());
    }
    Ok(r)
}

/// Waits for `child` at most `timeout`, killing it after that.
fn wait_for(child: &mut Child, timeout: Duration) -> Result<std::process::ExitStatus, String> {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Ok(s),
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {} s", timeout.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("wait: {e}")),
        }
    }
}

/// The context every run shares.
struct Ctx<'a> {
    wrapper: &'a Path,
    lib: &'a Path,
    dir: &'a Path,
    timeout: Duration,
}

impl Ctx<'_> {
    /// A wrapper command for `argv` (`repeat` times) with ACE on or off.
    fn wrapped(
        &self,
        p: &Program,
        result: &Path,
        ace: bool,
        argv: &[OsString],
        repeat: u32,
    ) -> Command {
        let mut c = Command::new(self.wrapper);
        c.arg(result)
            .arg(self.lib)
            .arg(repeat.to_string())
            .args(argv)
            .current_dir(&p.cwd)
            .env_remove("LD_PRELOAD")
            .env("HAKMEM_ACE", if ace { "1" } else { "0" })
            .envs(p.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        c
    }

    fn log(&self, p: &Program, what: &str) -> Result<fs::File, String> {
        let safe = p.name.replace(':', "_");
        fs::File::create(self.dir.join(format!("{safe}.{what}"))).map_err(|e| e.to_string())
    }

    /// One run of `p`.
    fn run(&self, p: &Program, ace: bool) -> Result<Run, String> {
        let result = self
            .dir
            .join(format!("ace_run.{}.result", std::process::id()));
        let _ = fs::remove_file(&result);
        let r = self.run_kind(p, ace, &result);
        let _ = fs::remove_file(&result);
        r
    }

    fn run_kind(&self, p: &Program, ace: bool, result: &Path) -> Result<Run, String> {
        match &p.kind {
            Kind::Steps { steps, reset } => {
                for r in reset {
                    let _ = fs::remove_dir_all(r);
                    let _ = fs::remove_file(r);
                }
                for s in steps {
                    let mut child = self
                        .wrapped(p, result, ace, &s.argv, s.repeat)
                        .stdout(self.log(p, "stdout")?)
                        .stderr(self.log(p, "stderr")?)
                        .spawn()
                        .map_err(|e| format!("spawn {}: {e}", self.wrapper.display()))?;
                    let st = wait_for(&mut child, self.timeout)?;
                    if !st.success() {
                        let err = fs::read_to_string(
                            self.dir
                                .join(format!("{}.stderr", p.name.replace(':', "_"))),
                        )
                        .unwrap_or_default();
                        let tail: Vec<&str> = err.lines().rev().take(3).collect();
                        return Err(format!(
                            "{:?} failed ({st}): {}",
                            s.argv.last().unwrap_or(&OsString::new()),
                            tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
                        ));
                    }
                }
                parse_wrapper(&fs::read_to_string(result).map_err(|e| e.to_string())?)
            }
            Kind::Redis {
                server,
                bench,
                cli,
                requests,
            } => self.run_redis(p, ace, result, server, bench, cli, *requests),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn run_redis(
        &self,
        p: &Program,
        ace: bool,
        result: &Path,
        server: &Path,
        bench: &Path,
        cli: &Path,
        requests: u32,
    ) -> Result<Run, String> {
        let port = free_port()?;
        let ps = port.to_string();
        let mut argv = vec![server.as_os_str().to_os_string()];
        argv.extend(os(&[
            "--port",
            &ps,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ]));
        argv.push("--dir".into());
        argv.push(self.dir.as_os_str().to_os_string());
        let mut child = self
            .wrapped(p, result, ace, &argv, 1)
            .stdout(self.log(p, "stdout")?)
            .stderr(self.log(p, "stderr")?)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", self.wrapper.display()))?;
        let unprel = |exe: &Path| {
            let mut c = Command::new(exe);
            c.env_remove("LD_PRELOAD")
                .env_remove("HAKMEM_ACE")
                .stdin(Stdio::null());
            c
        };
        let ready = wait_ready(port, Duration::from_secs(10));
        let bench_run = ready.and_then(|()| {
            let t0 = Instant::now();
            let o = unprel(bench)
                .args(["-p", &ps, "-q", "-n", &requests.to_string()])
                .args(["-t", "set,get,lpush,lpop", "-P", "16"])
                .output()
                .map_err(|e| format!("redis-benchmark: {e}"))?;
            let wall = t0.elapsed().as_secs_f64();
            if !o.status.success() {
                return Err(format!("redis-benchmark failed ({})", o.status));
            }
            let _ = fs::write(self.dir.join("redis.benchmark"), &o.stdout);
            Ok(wall)
        });
        let _ = unprel(cli)
            .args(["-p", &ps, "shutdown", "nosave"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let st = wait_for(&mut child, Duration::from_secs(20))?;
        let wall = bench_run?;
        if !st.success() {
            return Err(format!("redis-server under the wrapper: {st}"));
        }
        let mut r = parse_wrapper(&fs::read_to_string(result).map_err(|e| e.to_string())?)?;
        r.wall_s = wall;
        Ok(r)
    }
}

/// A loopback TCP port that was free a moment ago.
fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// Waits until a Redis server answers PING on `port`.
fn wait_ready(port: u16, timeout: Duration) -> Result<(), String> {
    use std::io::{Read, Write};
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
            let mut buf = [0u8; 16];
            if s.write_all(b"PING\r\n").is_ok() {
                if let Ok(n) = s.read(&mut buf) {
                    if buf[..n].starts_with(b"+PONG") {
                        return Ok(());
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(format!("redis-server did not answer on port {port}"))
}

/// Runs the mode: every program, `reps` pairs each; notes say what was
/// left out.
pub fn run(o: &Options) -> Result<(Vec<Measured>, Vec<String>), String> {
    fs::create_dir_all(&o.out).map_err(|e| e.to_string())?;
    let dir = fs::canonicalize(&o.out).map_err(|e| e.to_string())?;
    let mut notes = Vec::new();
    let lib = hakmem_so(o.build_preload, &mut notes);
    if !lib.exists() {
        return Err(format!(
            "{} not found (build it with `cargo build --release -p preload`)",
            lib.display()
        ));
    }
    let wrapper = build_c_program(&dir, "ace_run", ACE_RUN_C)?;
    let mut progs = programs(&dir, o.quick, &mut notes)?;
    if !o.only.is_empty() {
        let unknown: Vec<&String> = o
            .only
            .iter()
            .filter(|n| !progs.iter().any(|p| &p.name == *n))
            .collect();
        if !unknown.is_empty() {
            return Err(format!(
                "--only: unknown or missing program(s) {unknown:?} (known: {})",
                progs
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ));
        }
        progs.retain(|p| o.only.contains(&p.name));
    }
    let ctx = Ctx {
        wrapper: &wrapper,
        lib: &lib,
        dir: &dir,
        timeout: o.timeout,
    };
    let mut m: Vec<Measured> = progs
        .iter()
        .map(|p| Measured {
            name: p.name.clone(),
            what: p.what.clone(),
            on: Vec::new(),
            off: Vec::new(),
            error: None,
        })
        .collect();
    for (p, mm) in progs.iter().zip(m.iter_mut()) {
        eprintln!("ace-real: warm-up {}", p.name);
        if let Err(e) = ctx.run(p, false) {
            mm.error = Some(format!("warm-up: {e}"));
        }
    }
    let progress = crate::progress::Progress::new(o.reps.max(1) * progs.len(), "ace-real");
    for rep in 0..o.reps.max(1) {
        for (p, mm) in progs.iter().zip(m.iter_mut()) {
            progress.inc();
            if mm.error.is_some() {
                continue;
            }
            let order = if on_first(rep) {
                [true, false]
            } else {
                [false, true]
            };
            let mut pair = [Run::default(); 2];
            for ace in order {
                match ctx.run(p, ace) {
                    Ok(r) => pair[usize::from(ace)] = r,
                    Err(e) => {
                        mm.error = Some(format!("rep {rep}, ACE {}: {e}", on_off(ace)));
                        break;
                    }
                }
            }
            if mm.error.is_none() {
                mm.off.push(pair[0]);
                mm.on.push(pair[1]);
                progress.line(&format!(
                    "ace-real: rep {rep} {:<14} time on/off {:.3}  RSS on/off {:.3}",
                    p.name,
                    pair[1].wall_s / pair[0].wall_s,
                    pair[1].maxrss_kib as f64 / pair[0].maxrss_kib.max(1) as f64
                ));
            }
        }
    }
    Ok((m, notes))
}

fn on_off(ace: bool) -> &'static str {
    if ace {
        "on"
    } else {
        "off"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_alternates_on_off_off_on() {
        let v: Vec<bool> = (0..4)
            .flat_map(|r| {
                if on_first(r) {
                    [true, false]
                } else {
                    [false, true]
                }
            })
            .collect();
        assert_eq!(v, [true, false, false, true, true, false, false, true]);
    }

    #[test]
    fn wrapper_lines_sum_and_take_the_peak() {
        let t = "status=0 wall_ns=1000000000 maxrss_kib=900 cpu_us=500000 ace_threads=1 ace_cpu_ns=2000000\n\
                 status=0 wall_ns=500000000 maxrss_kib=1200 cpu_us=250000 ace_threads=0 ace_cpu_ns=0\n";
        let r = parse_wrapper(t).unwrap();
        assert!((r.wall_s - 1.5).abs() < 1e-9 && (r.cpu_s - 0.75).abs() < 1e-9);
        assert_eq!(
            (r.maxrss_kib, r.ace_threads, r.ace_cpu_ns),
            (1200, 1, 2_000_000)
        );
        assert!(parse_wrapper(
            "status=1 wall_ns=1 maxrss_kib=1 cpu_us=1 ace_threads=0 ace_cpu_ns=0"
        )
        .is_err());
        assert!(parse_wrapper("").is_err());
        assert!(parse_wrapper("status=0 wall_ns=1").is_err());
    }
}
