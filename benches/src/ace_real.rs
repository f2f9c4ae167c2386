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
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::instructions::{build_c_program, hakmem_so};
use crate::report;

const ACE_RUN_C: &str = include_str!("../c/ace_run.c");
const TINY_HOT_C: &str = include_str!("../c/tiny_hot.c");
const LARGE_CHURN_C: &str = include_str!("../c/large_churn.c");

/// The issue's targets: geometric means of on ÷ off over the programs.
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

/// One command of a program's run.
#[derive(Clone, Debug)]
struct Step {
    argv: Vec<OsString>,
    repeat: u32,
}

#[derive(Clone, Debug)]
enum Kind {
    /// Steps run one after the other, each through the wrapper; `reset`
    /// (files or directories) is removed before each run, untimed.
    Steps {
        steps: Vec<Step>,
        reset: Vec<PathBuf>,
    },
    /// redis-server under the wrapper, redis-benchmark against it.
    Redis {
        server: PathBuf,
        bench: PathBuf,
        cli: PathBuf,
        requests: u32,
    },
}

/// A program ready to run.
#[derive(Clone, Debug)]
struct Program {
    name: String,
    what: String,
    cwd: PathBuf,
    env: Vec<(String, String)>,
    kind: Kind,
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

/// Finds an executable: the first of `candidates` that exists, else
/// `name` on `PATH`.
fn find_exe(name: &str, candidates: &[&str]) -> Option<PathBuf> {
    for c in candidates {
        let p = Path::new(c);
        if p.is_file() {
            return Some(p.to_path_buf());
        }
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn os(v: &[&str]) -> Vec<OsString> {
    v.iter().map(OsString::from).collect()
}

fn step(exe: &Path, args: &[&str]) -> Step {
    let mut argv = vec![exe.as_os_str().to_os_string()];
    argv.extend(os(args));
    Step { argv, repeat: 1 }
}

/// The Python workload: dicts, lists, strings, a sort, small objects.
const PYTHON_PY: &str = r#"import sys
n = int(sys.argv[1])
d = {}
for i in range(n):
    d["key%d" % i] = [i, str(i) * (i % 7), (i, i + 1)]
words = " ".join(str(i * 7) for i in range(n)).split()
s = 0
for k, v in d.items():
    s += len(k) + len(v[1])
order = sorted(d, key=lambda k: (len(d[k][1]), k))
class P:
    __slots__ = ("a", "b")
    def __init__(self, a, b):
        self.a = a
        self.b = b
ps = [P(i, str(i)) for i in range(n)]
for _ in range(3):
    d2 = {p.b: p for p in ps if p.a % 3}
    s += len(d2)
    del d2
print(s, len(order), len(words), len(ps))
"#;

const PERL_PL: &str = r#"my $n = shift; my %h; my $s = 0;
for my $i (1 .. $n) { $h{"key$i"} = join(",", ($i) x ($i % 9 + 1)); }
for my $k (sort keys %h) { $s += length($h{$k}); }
my @a = map { [$_, "v$_" x 3] } 1 .. $n;
my %w; $w{$_->[1]}++ for @a;
print "$s ", scalar(@a), " ", scalar(keys %w), "\n";"#;

/// SQL: `rows` single-row INSERTs in one transaction, an index, queries.
fn sqlite_sql(rows: u32) -> String {
    let mut s = String::from(
        "PRAGMA journal_mode=DELETE;\nCREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, val REAL);\nBEGIN;\n",
    );
    for i in 0..rows {
        let _ = writeln!(
            s,
            "INSERT INTO t(name, grp, val) VALUES('name-{}-{}', {}, {}.{});",
            i.wrapping_mul(2_654_435_761) % 1_000_003,
            i,
            i % 997,
            i % 1000,
            i % 7
        );
    }
    s.push_str(
        "COMMIT;\nCREATE INDEX t_grp ON t(grp, name);\nCREATE INDEX t_name ON t(name);\n\
         SELECT grp, count(*), avg(val) FROM t GROUP BY grp ORDER BY 2 DESC, 1 LIMIT 3;\n\
         SELECT count(*) FROM t WHERE name LIKE 'name-1%';\n\
         SELECT count(DISTINCT substr(name, 1, 9)) FROM t;\n\
         SELECT sum(length(group_concat)) FROM (SELECT group_concat(name) AS group_concat FROM t GROUP BY grp);\n",
    );
    s
}

/// A C file of `n` functions for gcc -O2 (each about 4 ms of cc1 on the
/// development container: a few thousand would take far longer than the
/// 0.5–3 s a run should).
fn gcc_source(n: u32) -> String {
    let mut s = String::from(
        "struct s { int a, b; double c; char name[16]; };\nint ext(struct s *p, int x);\n",
    );
    for i in 0..n {
        let _ = writeln!(
            s,
            "int f{i}(struct s *p, int x) {{\n\
             \x20   int acc = {i} + x * {};\n\
             \x20   if (acc & 1) p->a += acc; else p->b -= acc >> 3;\n\
             \x20   switch (x & 7) {{\n\
             \x20   case 0: p->c += acc * 0.5; break;\n\
             \x20   case 1: p->name[x & 15] = (char)acc; break;\n\
             \x20   case 3: acc = ext(p, x - 1); break;\n\
             \x20   default: acc ^= p->a * p->b;\n\
             \x20   }}\n\
             \x20   return acc + (int)p->c;\n\
             }}",
            i % 11 + 1
        );
    }
    s
}

/// Writes `files` text files in `dirs` directories under `root` (once).
fn git_tree(root: &Path, files: u32) -> Result<(), String> {
    let dirs = (files / 100).max(1);
    for i in 0..files {
        let dir = root.join(format!("d{:03}", i % dirs));
        fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let mut text = String::new();
        for l in 0..(20 + i % 40) {
            let _ = writeln!(text, "file {i} line {l}: {}", (i * 31 + l * 7) % 1009);
        }
        fs::write(dir.join(format!("f{i:05}.txt")), text).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The programs (those installed), written into `dir`; notes say what was
/// left out and why.
fn programs(dir: &Path, quick: bool, notes: &mut Vec<String>) -> Result<Vec<Program>, String> {
    let q = |full: u32| if quick { (full / 10).max(1) } else { full };
    let mut v = Vec::new();
    let missing = |name: &str, exe: &str, pkg: &str, notes: &mut Vec<String>| {
        notes.push(format!(
            "{name}: `{exe}` is not installed, so it is left out (apt-get install {pkg})"
        ));
    };
    let plain = |name: &str, what: String, steps: Vec<Step>, reset: Vec<PathBuf>| Program {
        name: name.into(),
        what,
        cwd: dir.to_path_buf(),
        env: Vec::new(),
        kind: Kind::Steps { steps, reset },
    };

    // python3: the system's binary first (a pyenv shim on PATH is a shell
    // script that would run under the preload too).
    match find_exe("python3", &["/usr/bin/python3"]) {
        Some(py) => {
            let script = dir.join("ace_real.py");
            fs::write(&script, PYTHON_PY).map_err(|e| e.to_string())?;
            let n = q(300_000).to_string();
            v.push(plain(
                "python3",
                format!(
                    "{} ace_real.py {n} (dicts, lists, strings, objects)",
                    py.display()
                ),
                vec![step(&py, &["ace_real.py", &n])],
                Vec::new(),
            ));
        }
        None => missing("python3", "python3", "python3", notes),
    }
    match find_exe("perl", &["/usr/bin/perl"]) {
        Some(pl) => {
            fs::write(dir.join("ace_real.pl"), PERL_PL).map_err(|e| e.to_string())?;
            let n = q(400_000).to_string();
            v.push(plain(
                "perl",
                format!("perl ace_real.pl {n} (a hash of strings, sort, arrays)"),
                vec![step(&pl, &["ace_real.pl", &n])],
                Vec::new(),
            ));
        }
        None => missing("perl", "perl", "perl", notes),
    }
    match find_exe("sqlite3", &["/usr/bin/sqlite3"]) {
        Some(sq) => {
            let rows = q(200_000);
            fs::write(dir.join("ace_real.sql"), sqlite_sql(rows)).map_err(|e| e.to_string())?;
            let db = dir.join("ace_real.db");
            v.push(plain(
                "sqlite3",
                format!(
                    "sqlite3 ace_real.db .read ace_real.sql ({rows} INSERTs in a transaction, 2 indexes, 4 queries)"
                ),
                vec![step(&sq, &["-batch", "ace_real.db", ".read ace_real.sql"])],
                vec![db.clone(), dir.join("ace_real.db-journal")],
            ));
        }
        None => missing("sqlite3", "sqlite3", "sqlite3", notes),
    }
    match (
        find_exe("redis-server", &["/usr/bin/redis-server"]),
        find_exe("redis-benchmark", &["/usr/bin/redis-benchmark"]),
        find_exe("redis-cli", &["/usr/bin/redis-cli"]),
    ) {
        (Some(server), Some(bench), Some(cli)) => {
            let requests = q(200_000);
            v.push(Program {
                name: "redis".into(),
                what: format!(
                    "redis-server (preloaded) + redis-benchmark -q -n {requests} -t set,get,lpush,lpop -P 16 (not preloaded): benchmark wall time, server peak RSS"
                ),
                cwd: dir.to_path_buf(),
                env: Vec::new(),
                kind: Kind::Redis {
                    server,
                    bench,
                    cli,
                    requests,
                },
            });
        }
        (s, b, c) => {
            for (name, e) in [
                ("redis-server", s.is_none()),
                ("redis-benchmark", b.is_none()),
                ("redis-cli", c.is_none()),
            ] {
                if e {
                    missing(
                        "redis",
                        name,
                        if name == "redis-server" {
                            "redis-server"
                        } else {
                            "redis-tools"
                        },
                        notes,
                    );
                }
            }
        }
    }
    match find_exe("git", &[]) {
        Some(git) => {
            let files = q(3000);
            let tree = dir.join("git-tree");
            // Generated once per size (the marker sits outside the tree,
            // which is committed whole).
            let marker = dir.join("git-tree.files");
            if fs::read_to_string(&marker).ok().as_deref() != Some(&files.to_string()) {
                let _ = fs::remove_dir_all(&tree);
                git_tree(&tree, files)?;
                fs::write(&marker, files.to_string()).map_err(|e| e.to_string())?;
            }
            let mut p = plain(
                "git",
                format!("git init, add -A, commit, gc of {files} generated files"),
                vec![
                    step(&git, &["init", "-q"]),
                    step(&git, &["add", "-A"]),
                    step(&git, &["commit", "-q", "-m", "tree"]),
                    step(&git, &["gc", "-q"]),
                ],
                vec![tree.join(".git")],
            );
            p.cwd = tree;
            p.env = [
                ("HOME", dir.display().to_string()),
                ("GIT_CONFIG_NOSYSTEM", "1".into()),
                ("GIT_AUTHOR_NAME", "bench".into()),
                ("GIT_AUTHOR_EMAIL", "bench@example.invalid".into()),
                ("GIT_COMMITTER_NAME", "bench".into()),
                ("GIT_COMMITTER_EMAIL", "bench@example.invalid".into()),
                ("GIT_AUTHOR_DATE", "2000-01-01T00:00:00Z".into()),
                ("GIT_COMMITTER_DATE", "2000-01-01T00:00:00Z".into()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            v.push(p);
        }
        None => missing("git", "git", "git", notes),
    }
    match find_exe("gcc", &["/usr/bin/gcc"]) {
        Some(gcc) => {
            let n = q(500);
            fs::write(dir.join("ace_real_gcc.c"), gcc_source(n)).map_err(|e| e.to_string())?;
            v.push(plain(
                "gcc",
                format!("gcc -O2 -c ace_real_gcc.c ({n} functions)"),
                vec![step(
                    &gcc,
                    &["-O2", "-c", "ace_real_gcc.c", "-o", "ace_real_gcc.o"],
                )],
                vec![dir.join("ace_real_gcc.o")],
            ));
        }
        None => missing("gcc", "gcc", "gcc", notes),
    }
    match find_exe("ls", &["/usr/bin/ls", "/bin/ls"]) {
        Some(ls) => {
            let mut s = step(&ls, &["-l", "/usr/bin"]);
            s.repeat = if quick { 10 } else { 100 };
            v.push(plain(
                "ls",
                format!("ls -l /usr/bin, {} times (a short program)", s.repeat),
                vec![s],
                Vec::new(),
            ));
        }
        None => missing("ls", "ls", "coreutils", notes),
    }
    // The bench's C harnesses.
    match build_c_program(dir, "tiny_hot", TINY_HOT_C) {
        Ok(bin) => {
            let rounds = q(1_500_000).to_string();
            v.push(plain(
                "c:tiny_hot",
                format!("benches/c/tiny_hot.c 64 100 {rounds} (malloc/free batches of 100 × 64 B)"),
                vec![step(&bin, &["64", "100", &rounds])],
                Vec::new(),
            ));
        }
        Err(e) => notes.push(format!(
            "c:tiny_hot: cannot build benches/c/tiny_hot.c: {e}"
        )),
    }
    match build_c_program(dir, "large_churn", LARGE_CHURN_C) {
        Ok(bin) => {
            let it = q(8000).to_string();
            v.push(plain(
                "c:large_churn",
                format!("benches/c/large_churn.c {it} (20 slots of 5–25 MiB, one byte per page)"),
                vec![step(&bin, &[&it, "0"])],
                Vec::new(),
            ));
        }
        Err(e) => notes.push(format!(
            "c:large_churn: cannot build benches/c/large_churn.c: {e}"
        )),
    }
    Ok(v)
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

/// A program's summary.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub name: String,
    pub pairs: usize,
    pub wall_off: f64,
    pub wall_on: f64,
    pub time: f64,              // median(on) / median(off)
    pub time_range: (f64, f64), // min, max of the per-pair ratios
    pub cpu: f64,               // median CPU on / off
    pub rss_off_mib: f64,
    pub rss_on_mib: f64,
    pub rss: f64,
    pub rss_range: (f64, f64),
    pub ace_cpu_ms: f64, // median over the on runs
    pub ace_pct: f64,    // of the median on wall time
    pub ace_seen: usize, // on runs where a hakmem-ace thread was seen
}

fn med(v: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = v.collect();
    report::median(&mut v).unwrap_or(f64::NAN)
}

fn range(v: impl Iterator<Item = f64>) -> (f64, f64) {
    v.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    })
}

/// The summary of one program (None without a complete pair).
pub fn summarize(m: &Measured) -> Option<Line> {
    let n = m.on.len().min(m.off.len());
    if n == 0 {
        return None;
    }
    let (on, off) = (&m.on[..n], &m.off[..n]);
    let kib = |r: &Run| r.maxrss_kib as f64;
    let wall_on = med(on.iter().map(|r| r.wall_s));
    let wall_off = med(off.iter().map(|r| r.wall_s));
    let rss_on = med(on.iter().map(kib));
    let rss_off = med(off.iter().map(kib));
    let ace_cpu_ms = med(on.iter().map(|r| r.ace_cpu_ns as f64 * 1e-6));
    Some(Line {
        name: m.name.clone(),
        pairs: n,
        wall_off,
        wall_on,
        time: wall_on / wall_off,
        time_range: range(on.iter().zip(off).map(|(a, b)| a.wall_s / b.wall_s)),
        cpu: med(on.iter().map(|r| r.cpu_s)) / med(off.iter().map(|r| r.cpu_s)),
        rss_off_mib: rss_off / 1024.0,
        rss_on_mib: rss_on / 1024.0,
        rss: rss_on / rss_off,
        rss_range: range(on.iter().zip(off).map(|(a, b)| kib(a) / kib(b))),
        ace_cpu_ms,
        ace_pct: ace_cpu_ms / (wall_on * 1e3) * 100.0,
        ace_seen: on.iter().filter(|r| r.ace_threads > 0).count(),
    })
}

/// The geometric mean (None for an empty list).
pub fn geomean(v: impl Iterator<Item = f64>) -> Option<f64> {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x.ln(), n + 1));
    (n > 0).then(|| (s / n as f64).exp())
}

/// A program worse than [`PROGRAM_MAX`] beyond its spread: its median
/// ratio is above the limit and no pair came out at or below 1.0 (ACE on
/// was never as good as off in any repetition).
pub fn worse_beyond_spread(ratio: f64, range: (f64, f64)) -> bool {
    ratio > PROGRAM_MAX && range.0 > 1.0
}

/// The plain-text table.
pub fn table(lines: &[Line], failed: &[(String, String)]) -> String {
    let mut s = format!(
        "{:<14} {:>5} {:>9} {:>9} {:>7} {:>13} {:>7} {:>9} {:>9} {:>7} {:>13} {:>13}\n",
        "program",
        "pairs",
        "off s",
        "on s",
        "time",
        "pair range",
        "CPU",
        "off MiB",
        "on MiB",
        "RSS",
        "pair range",
        "worker CPU"
    );
    for l in lines {
        let _ = writeln!(
            s,
            "{:<14} {:>5} {:>9.3} {:>9.3} {:>7.3} {:>13} {:>7.3} {:>9.1} {:>9.1} {:>7.3} {:>13} {:>13}",
            l.name,
            l.pairs,
            l.wall_off,
            l.wall_on,
            l.time,
            format!("{:.3}–{:.3}", l.time_range.0, l.time_range.1),
            l.cpu,
            l.rss_off_mib,
            l.rss_on_mib,
            l.rss,
            format!("{:.3}–{:.3}", l.rss_range.0, l.rss_range.1),
            worker(l)
        );
    }
    for (name, e) in failed {
        let _ = writeln!(s, "{name:<14} failed: {e}");
    }
    s
}

fn worker(l: &Line) -> String {
    if l.ace_seen == 0 {
        "not seen".into()
    } else {
        format!("{:.1} ms {:.2}%", l.ace_cpu_ms, l.ace_pct)
    }
}

/// The verdict against the issue's targets.
pub fn verdict(lines: &[Line]) -> String {
    let mut s = String::new();
    let gt = geomean(lines.iter().map(|l| l.time));
    let gr = geomean(lines.iter().map(|l| l.rss));
    let gc = geomean(lines.iter().map(|l| l.cpu));
    let met = |v: Option<f64>, max: f64| match v {
        Some(v) if v <= max => "met",
        Some(_) => "NOT met",
        None => "no data",
    };
    let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
    // The band: geomeans of the programs' lowest and highest pair ratios
    // (a difference inside it is not resolved by this run).
    let band = |lo: fn(&Line) -> f64, hi: fn(&Line) -> f64| match (
        geomean(lines.iter().map(lo)),
        geomean(lines.iter().map(hi)),
    ) {
        (Some(a), Some(b)) => format!(" [pair band {a:.3}–{b:.3}]"),
        _ => String::new(),
    };
    let _ = writeln!(
        s,
        "geomean over {} programs, ACE on ÷ off: time {}{} (target ≤ {TIME_GEOMEAN_MAX}: {}), \
         peak RSS {}{} (target ≤ {RSS_GEOMEAN_MAX}: {}), CPU time {}",
        lines.len(),
        f(gt),
        band(|l| l.time_range.0, |l| l.time_range.1),
        met(gt, TIME_GEOMEAN_MAX),
        f(gr),
        band(|l| l.rss_range.0, |l| l.rss_range.1),
        met(gr, RSS_GEOMEAN_MAX),
        f(gc)
    );
    let _ = writeln!(
        s,
        "pair band = geomeans of the programs' lowest and highest per-pair ratios: \
         a geomean inside a band that straddles its target is not a resolved verdict"
    );
    // With fewer than 3 pairs a range is no spread: not judged.
    let judged: Vec<&Line> = lines.iter().filter(|l| l.pairs >= 3).collect();
    let worse: Vec<String> = judged
        .iter()
        .flat_map(|l| {
            let mut v = Vec::new();
            if worse_beyond_spread(l.time, l.time_range) {
                v.push(format!("{} time {:.3}", l.name, l.time));
            }
            if worse_beyond_spread(l.rss, l.rss_range) {
                v.push(format!("{} RSS {:.3}", l.name, l.rss));
            }
            v
        })
        .collect();
    let _ = writeln!(
        s,
        "programs worse than {PROGRAM_MAX}× beyond their spread (median above it and no pair ≤ 1.0): {}",
        if judged.is_empty() {
            "not judged (fewer than 3 pairs)".to_string()
        } else if worse.is_empty() {
            "none".to_string()
        } else {
            worse.join(", ")
        }
    );
    s
}

/// The markdown table.
pub fn markdown(lines: &[Line], failed: &[(String, String)]) -> String {
    let mut s = String::from(
        "| program | pairs | off s | on s | time on/off | pair range | CPU on/off | off MiB | on MiB | RSS on/off | pair range | worker CPU |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for l in lines {
        let _ = writeln!(
            s,
            "| {} | {} | {:.3} | {:.3} | {:.3} | {:.3}–{:.3} | {:.3} | {:.1} | {:.1} | {:.3} | {:.3}–{:.3} | {} |",
            l.name,
            l.pairs,
            l.wall_off,
            l.wall_on,
            l.time,
            l.time_range.0,
            l.time_range.1,
            l.cpu,
            l.rss_off_mib,
            l.rss_on_mib,
            l.rss,
            l.rss_range.0,
            l.rss_range.1,
            worker(l)
        );
    }
    for (name, e) in failed {
        let _ = writeln!(s, "| {name} | failed: {} |||||||||||", e.replace('|', "/"));
    }
    s
}

/// One CSV row per run, then the summary.
pub fn csv(ms: &[Measured], lines: &[Line]) -> String {
    let mut s =
        String::from("program,rep,ace,first,wall_s,cpu_s,maxrss_kib,ace_threads,ace_cpu_ms\n");
    for m in ms {
        for (rep, (on, off)) in m.on.iter().zip(&m.off).enumerate() {
            for (ace, r) in [(true, on), (false, off)] {
                let _ = writeln!(
                    s,
                    "{},{rep},{},{},{:.6},{:.6},{},{},{:.3}",
                    m.name,
                    on_off(ace),
                    on_first(rep) == ace,
                    r.wall_s,
                    r.cpu_s,
                    r.maxrss_kib,
                    r.ace_threads,
                    r.ace_cpu_ns as f64 * 1e-6
                );
            }
        }
    }
    s.push_str("\nprogram,pairs,wall_off_s,wall_on_s,time_ratio,time_pair_min,time_pair_max,cpu_ratio,rss_off_mib,rss_on_mib,rss_ratio,rss_pair_min,rss_pair_max,ace_cpu_ms,ace_cpu_pct\n");
    for l in lines {
        let _ = writeln!(
            s,
            "{},{},{:.6},{:.6},{:.4},{:.4},{:.4},{:.4},{:.2},{:.2},{:.4},{:.4},{:.4},{:.3},{:.3}",
            l.name,
            l.pairs,
            l.wall_off,
            l.wall_on,
            l.time,
            l.time_range.0,
            l.time_range.1,
            l.cpu,
            l.rss_off_mib,
            l.rss_on_mib,
            l.rss,
            l.rss_range.0,
            l.rss_range.1,
            l.ace_cpu_ms,
            l.ace_pct
        );
    }
    s
}

/// A bar chart: per program, time and peak-RSS ratio (on ÷ off) with the
/// per-pair range as a whisker, a dashed line at 1.0.
pub fn svg(lines: &[Line], note: &str) -> String {
    let (left, right, top, bottom, plot_h) = (60.0, 20.0, 60.0, 110.0, 300.0);
    let group = 50.0;
    let width = (left + right + group * lines.len().max(1) as f64).max(420.0);
    let height = top + plot_h + bottom;
    let hi = lines
        .iter()
        .map(|l| l.time_range.1.max(l.rss_range.1))
        .fold(1.1f64, f64::max);
    let lo = lines
        .iter()
        .map(|l| l.time_range.0.min(l.rss_range.0))
        .fold(0.9f64, f64::min);
    let (ymin, ymax) = ((lo * 10.0).floor() / 10.0, (hi * 10.0).ceil() / 10.0);
    let y = |v: f64| top + plot_h - (v - ymin) / (ymax - ymin) * plot_h;
    let mut s = report::svg_open(
        width,
        height,
        left,
        "hakmem-bench ace-real: ACE on ÷ off (median; whisker: per-pair range; lower is better)",
    );
    for (i, (name, colour)) in [("wall time", "#1f77b4"), ("peak RSS", "#ff7f0e")]
        .iter()
        .enumerate()
    {
        let x = left + i as f64 * 100.0;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="32" width="10" height="10" fill="{colour}"/><text x="{}" y="41">{name}</text>"#,
            x + 14.0
        );
    }
    let mut t = ymin;
    while t <= ymax + 1e-9 {
        let yy = y(t);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{t:.1}×</text>"##,
            width - right,
            left - 6.0,
            yy + 4.0
        );
        t += 0.1;
    }
    let _ = writeln!(
        s,
        r##"<line x1="{left}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#000" stroke-dasharray="4 3"/>"##,
        y(1.0),
        width - right,
        y(1.0)
    );
    for (gi, l) in lines.iter().enumerate() {
        let gx = left + 8.0 + gi as f64 * group;
        for (k, (v, r, colour)) in [
            (l.time, l.time_range, "#1f77b4"),
            (l.rss, l.rss_range, "#ff7f0e"),
        ]
        .into_iter()
        .enumerate()
        {
            let x = gx + k as f64 * 16.0;
            let (y0, y1) = (y(1.0), y(v));
            let _ = writeln!(
                s,
                r#"<rect x="{x:.1}" y="{:.1}" width="15" height="{:.1}" fill="{colour}"><title>{}: {v:.3}× ({:.3}–{:.3})</title></rect>"#,
                y0.min(y1),
                (y0 - y1).abs().max(0.5),
                report::esc(&l.name),
                r.0,
                r.1
            );
            let _ = writeln!(
                s,
                r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#333"/>"##,
                x + 7.5,
                y(r.0),
                x + 7.5,
                y(r.1)
            );
        }
        let _ = writeln!(
            s,
            r#"<text transform="translate({:.1},{:.1}) rotate(-45)" text-anchor="end">{}</text>"#,
            gx + 16.0,
            top + plot_h + 14.0,
            report::esc(&l.name)
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="{left}" y="{:.1}" font-size="9" fill="#555">{}</text>"##,
        height - 8.0,
        report::esc(note)
    );
    s.push_str("</svg>\n");
    s
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

    #[test]
    fn summary_ratios_ranges_and_verdict() {
        let run = |w: f64, k: u64| Run {
            wall_s: w,
            cpu_s: w,
            maxrss_kib: k,
            ace_threads: 1,
            ace_cpu_ns: 1_000_000,
        };
        let m = Measured {
            name: "p".into(),
            what: String::new(),
            on: vec![run(0.9, 900), run(1.0, 950), run(1.1, 1000)],
            off: vec![run(1.0, 1000), run(1.0, 1000), run(1.0, 1000)],
            error: None,
        };
        let l = summarize(&m).unwrap();
        assert_eq!(l.pairs, 3);
        assert!((l.time - 1.0).abs() < 1e-12 && (l.rss - 0.95).abs() < 1e-12);
        assert!((l.time_range.0 - 0.9).abs() < 1e-12 && (l.time_range.1 - 1.1).abs() < 1e-12);
        assert_eq!(l.ace_seen, 3);
        assert!((geomean([0.5, 2.0].into_iter()).unwrap() - 1.0).abs() < 1e-12);
        assert!(worse_beyond_spread(1.05, (1.01, 1.1)));
        assert!(!worse_beyond_spread(1.05, (0.99, 1.1)));
        assert!(!worse_beyond_spread(1.01, (1.01, 1.01)));
        let v = verdict(std::slice::from_ref(&l));
        assert!(
            v.contains("time 1.000 [pair band 0.900–1.100] (target ≤ 0.97: NOT met)"),
            "{v}"
        );
        assert!(
            v.contains("peak RSS 0.950 [pair band 0.900–1.000] (target ≤ 0.95: met)"),
            "{v}"
        );
        assert!(table(std::slice::from_ref(&l), &[]).contains("0.900–1.100"));
        let one = Line {
            pairs: 1,
            time: 1.5,
            time_range: (1.5, 1.5),
            ..l.clone()
        };
        assert!(verdict(&[one]).contains("not judged (fewer than 3 pairs)"));
        assert!(svg(&[l], "n").ends_with("</svg>\n"));
    }

    #[test]
    fn generated_inputs_have_their_size() {
        assert_eq!(sqlite_sql(10).matches("INSERT").count(), 10);
        assert_eq!(gcc_source(5).matches("int f").count(), 5);
    }
}
