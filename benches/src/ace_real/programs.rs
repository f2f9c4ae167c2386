//! The programs of `ace-real` and the inputs they are given: python3,
//! perl, sqlite3, redis, git, gcc, ls and the bench's C harnesses, each
//! found on the machine (or left out with a note) and sized for a full or a
//! `--quick` run.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use crate::cbuild::build_c_program;

const TINY_HOT_C: &str = include_str!("../../c/tiny_hot.c");
const LARGE_CHURN_C: &str = include_str!("../../c/large_churn.c");

/// One command of a program's run.
#[derive(Clone, Debug)]
pub(super) struct Step {
    pub(super) argv: Vec<OsString>,
    pub(super) repeat: u32,
}

#[derive(Clone, Debug)]
pub(super) enum Kind {
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
pub(super) struct Program {
    pub(super) name: String,
    pub(super) what: String,
    pub(super) cwd: PathBuf,
    pub(super) env: Vec<(String, String)>,
    pub(super) kind: Kind,
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

pub(super) fn os(v: &[&str]) -> Vec<OsString> {
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
pub(super) fn programs(
    dir: &Path,
    quick: bool,
    notes: &mut Vec<String>,
) -> Result<Vec<Program>, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_inputs_have_their_size() {
        assert_eq!(sqlite_sql(10).matches("INSERT").count(), 10);
        assert_eq!(gcc_source(5).matches("int f").count(), 5);
    }
}
