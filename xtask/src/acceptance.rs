//! `cargo xtask acceptance`: the slab-migration acceptance matrix.
//!
//! Builds the `acceptance` example of the hakmem crate (debug build, with the
//! `fault-injection` feature), then runs one process per cell of
//! agents {2, 4, 8} × engine {serial, parallel} × migration {off, on} ×
//! fault {none, drain, flush, invalidate} (faults only with migration on).
//! A clean cell must print PASS and exit 0; a fault cell must be caught: the
//! oracle reports FAIL (exit 1), or the process dies of a signal or hangs
//! past the time limit. Exits 0 only when every cell behaves so.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const AGENTS: [usize; 3] = [2, 4, 8];
const ENGINES: [&str; 2] = ["serial", "parallel"];
const FAULTS: [&str; 4] = ["none", "drain", "flush", "invalidate"];
const CELL_TIMEOUT: Duration = Duration::from_secs(20);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// How one cell ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Pass,
    OracleFail(String),
    Crash(String),
    Timeout,
}

fn run_cell(bin: &Path, args: &[String]) -> Outcome {
    let mut child = match Command::new(bin)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return Outcome::Crash(format!("spawn failed: {e}")),
    };
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let out = child
                    .wait_with_output()
                    .map(|o| o.stdout)
                    .unwrap_or_default();
                let line = String::from_utf8_lossy(&out)
                    .lines()
                    .last()
                    .unwrap_or("")
                    .to_string();
                return match status.code() {
                    Some(0) => Outcome::Pass,
                    Some(1) => Outcome::OracleFail(line),
                    Some(c) => Outcome::Crash(format!("exit status {c}: {line}")),
                    None => Outcome::Crash("killed by a signal".into()),
                };
            }
            Ok(None) if start.elapsed() > CELL_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Outcome::Timeout;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Outcome::Crash(format!("wait failed: {e}")),
        }
    }
}

/// Runs the matrix. `quick` (`--quick`) runs fewer operations per cell.
pub fn run(quick: bool) -> ExitCode {
    let ops = if quick { "8000" } else { "30000" };
    let root = workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("acceptance: building the acceptance example (debug, fault-injection)");
    let status = Command::new(&cargo)
        .current_dir(&root)
        .args([
            "build",
            "--quiet",
            "-p",
            "hakmem",
            "--example",
            "acceptance",
            "--features",
            "fault-injection",
        ])
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        eprintln!("acceptance: build failed");
        return ExitCode::from(1);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or(root.join("target"));
    let bin = target.join("debug").join("examples").join("acceptance");
    println!("agents    engine migration       fault  result   detail");
    let mut bad = 0;
    let mut cells = 0;
    for agents in AGENTS {
        for engine in ENGINES {
            for (migration, faults) in [("off", &FAULTS[..1]), ("on", &FAULTS[..])] {
                for &fault in faults {
                    cells += 1;
                    let args: Vec<String> = [
                        "--agents",
                        &agents.to_string(),
                        "--engine",
                        engine,
                        "--migration",
                        migration,
                        "--fault",
                        fault,
                        "--ops",
                        ops,
                        "--seed",
                        "42",
                    ]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                    let outcome = run_cell(&bin, &args);
                    let expect_pass = fault == "none";
                    let (ok, result, detail) = match (&outcome, expect_pass) {
                        (Outcome::Pass, true) => (true, "pass", String::new()),
                        (Outcome::Pass, false) => (
                            false,
                            "MISSED",
                            "the oracle did not notice the fault".into(),
                        ),
                        (Outcome::OracleFail(l), false) => (true, "caught", l.clone()),
                        (Outcome::Crash(c), false) => (true, "caught", format!("crash: {c}")),
                        (Outcome::Timeout, false) => (true, "caught", "hang (timeout)".into()),
                        (Outcome::OracleFail(l), true) => (false, "FAIL", l.clone()),
                        (Outcome::Crash(c), true) => (false, "FAIL", format!("crash: {c}")),
                        (Outcome::Timeout, true) => (false, "FAIL", "timeout".into()),
                    };
                    if !ok {
                        bad += 1;
                    }
                    let detail = detail.split(": ").last().unwrap_or("").to_string();
                    println!(
                        "{agents:>6} {engine:>9} {migration:>9} {fault:>11}  {result:<8} {detail}"
                    );
                }
            }
        }
    }
    println!("{} passed, {} failed", cells - bad, bad);
    if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
