//! `hakmem-bench footprint`: what an allocator costs a program that
//! barely uses it.
//!
//! `benches/c/footprint.c` (built with `cc` into the output directory)
//! makes one `malloc(64)`, writes it, frees it, and copies its own
//! `/proc/self/status` to stdout before it exits (and, with the argument
//! `smaps`, its `/proc/self/smaps`), using `read`/`write` on a static
//! buffer so that reporting allocates nothing. It runs with plain glibc
//! and with `LD_PRELOAD` of each allocator library that is installed
//! (hakmem's `libhakmem.so`, mimalloc, jemalloc, tcmalloc minimal, scudo,
//! and mimalloc's secure build, which the suite compiles itself),
//! `runs` times each, the libraries alternating. The table has, per
//! allocator, the medians of the program's `VmHWM` (peak RSS) and `VmRSS`
//! (RSS at exit, read by the program itself), with the ratios to glibc.
//! `footprint.csv` also has `ru_maxrss` from `wait4`, but it is no
//! cross-check here: Linux carries the maximum over `execve`, so it is the
//! RSS of the forked runner (about 4.3 MiB) unless the probe exceeds it.
//!
//! The breakdown then runs the program once more with plain glibc and once
//! with hakmem, with `smaps`, and sorts every mapping into a group:
//! `<file> text` (`r-xp`), `<file> rodata` (`r--p`: read-only data and
//! RELRO), `<file> data` (`rw-p`), `<file> bss` (the anonymous mapping that
//! starts where the last mapping of that file ends: the zero-initialised
//! data beyond the file's last page), the kernel's named mappings
//! (`[stack]`, `[heap]`, `[vdso]`, …), anonymous mappings that are 2 MiB
//! aligned and a multiple of 2 MiB long (hakmem's superslabs and spans
//! are; glibc maps none), and every other anonymous mapping (thread stacks,
//! the loader's TLS blocks and its own small allocations). Each group
//! shows its mappings, size and RSS in both runs. Nothing is asked of the
//! allocator: this is what anyone can read from the outside.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::cbuild::{build_c_program, hakmem_so};

/// The probe's source, carried inside the binary.
const FOOTPRINT_C: &str = include_str!("../c/footprint.c");

/// The system libraries tried besides glibc and hakmem: name, path, the
/// Debian package that installs it.
pub const SYSTEM_LIBS: [(&str, &str, &str); 4] = [
    (
        "mimalloc",
        "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2",
        "libmimalloc2.0",
    ),
    (
        "jemalloc",
        "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
        "libjemalloc2",
    ),
    (
        "tcmalloc",
        "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
        "libtcmalloc-minimal4",
    ),
    (
        "scudo",
        "/usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.scudo_standalone-x86_64.so",
        "libclang-rt-14-dev",
    ),
];

/// Options of the `footprint` mode.
#[derive(Clone, Debug)]
pub struct Options {
    pub runs: usize,         // runs per allocator (median)
    pub build_preload: bool, // `cargo build --release -p hakmem-preload` first
    pub out: PathBuf,        // where the probe and footprint.csv go
}

impl Default for Options {
    fn default() -> Options {
        Options {
            runs: 5,
            build_preload: true,
            out: crate::out_dir(),
        }
    }
}

/// One allocator's medians.
#[derive(Clone, Debug)]
pub struct Line {
    pub name: String,
    pub lib: Option<PathBuf>,
    pub hwm_kib: u64,
    pub rss_kib: u64,
    pub maxrss_kib: u64,
    pub runs: usize,
}

/// What one run of the probe printed.
#[derive(Clone, Debug, Default)]
struct Probe {
    hwm_kib: u64,
    rss_kib: u64,
    maxrss_kib: u64,
    smaps: Vec<Mapping>,
}

/// One mapping of `/proc/<pid>/smaps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    pub perms: String,
    pub path: String, // empty for anonymous mappings
    pub size_kib: u64,
    pub rss_kib: u64,
}

/// Runs the probe once under `lib` (none: plain glibc).
fn probe(bin: &Path, lib: Option<&Path>, smaps: bool) -> Result<Probe, String> {
    let mut c = Command::new(bin);
    if smaps {
        c.arg("smaps");
    }
    if let Some(l) = lib {
        c.env("LD_PRELOAD", l);
    } else {
        c.env_remove("LD_PRELOAD");
    }
    let child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", bin.display()))?;
    let pid = child.id() as libc::pid_t;
    // Read everything first (smaps can exceed a pipe's buffer), then reap
    // the child with wait4 for its ru_maxrss.
    let mut child = child;
    let mut out = String::new();
    let mut err = String::new();
    {
        use std::io::Read;
        if let Some(mut o) = child.stdout.take() {
            o.read_to_string(&mut out).map_err(|e| e.to_string())?;
        }
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
    }
    let mut status: libc::c_int = 0;
    // SAFETY: all-zero is a valid `rusage`.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our child, not yet reaped; the out-pointers are
        // valid for the call.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("wait4: {e}"));
        }
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!(
            "the probe failed (status {status:#x}): {}",
            err.trim()
        ));
    }
    let mut p = parse(&out).ok_or_else(|| format!("cannot parse the probe's output {out:?}"))?;
    p.maxrss_kib = ru.ru_maxrss as u64;
    Ok(p)
}

/// Parses the probe's output: `== status`, the status file, optionally
/// `== smaps` and the smaps file.
fn parse(out: &str) -> Option<Probe> {
    let status = out.split("== status\n").nth(1)?;
    let (status, smaps) = match status.split_once("== smaps\n") {
        Some((a, b)) => (a, Some(b)),
        None => (status, None),
    };
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    Some(Probe {
        hwm_kib: field("VmHWM:")?,
        rss_kib: field("VmRSS:")?,
        maxrss_kib: 0,
        smaps: smaps.map(parse_smaps).unwrap_or_default(),
    })
}

/// Parses `/proc/<pid>/smaps`: one header line per mapping
/// (`start-end perms offset dev inode [path]`), then `Key: value kB` lines.
pub fn parse_smaps(text: &str) -> Vec<Mapping> {
    let mut v: Vec<Mapping> = Vec::new();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let Some(first) = it.next() else { continue };
        if let Some((a, b)) = first.split_once('-') {
            if let (Ok(start), Ok(end)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) {
                let perms = it.next().unwrap_or("").to_string();
                let path = it.nth(3).unwrap_or("").to_string();
                v.push(Mapping {
                    start,
                    end,
                    perms,
                    path,
                    size_kib: 0,
                    rss_kib: 0,
                });
                continue;
            }
        }
        let kib = || it.clone().next().and_then(|n| n.parse::<u64>().ok());
        if let Some(m) = v.last_mut() {
            match first {
                "Size:" => m.size_kib = kib().unwrap_or(0),
                "Rss:" => m.rss_kib = kib().unwrap_or(0),
                _ => {}
            }
        }
    }
    v
}

/// The 2 MiB of hakmem's superslabs (and of transparent huge pages).
const TWO_MIB: u64 = 2 << 20;

/// The group of each mapping (see the module documentation).
pub fn groups(maps: &[Mapping]) -> Vec<String> {
    let base = |p: &str| p.rsplit('/').next().unwrap_or(p).to_string();
    let mut out = Vec::with_capacity(maps.len());
    for (i, m) in maps.iter().enumerate() {
        let g = if m.path.starts_with('/') {
            let kind = match m.perms.as_str() {
                p if p.starts_with("r-x") => "text",
                p if p.starts_with("rw") => "data",
                p if p.starts_with("r--") => "rodata",
                _ => "other",
            };
            format!("{} {kind}", base(&m.path))
        } else if m.path.starts_with('[') {
            m.path.clone()
        } else if i > 0 && maps[i - 1].end == m.start && maps[i - 1].path.starts_with('/') {
            format!("{} bss", base(&maps[i - 1].path))
        } else if m.start % TWO_MIB == 0 && (m.end - m.start) % TWO_MIB == 0 {
            "anon, 2 MiB-aligned".to_string()
        } else {
            "anon, other".to_string()
        };
        out.push(g);
    }
    out
}

/// Per group: mappings, size and RSS in KiB, in first-seen order.
fn totals(maps: &[Mapping]) -> Vec<(String, usize, u64, u64)> {
    let mut v: Vec<(String, usize, u64, u64)> = Vec::new();
    for (m, g) in maps.iter().zip(groups(maps)) {
        match v.iter_mut().find(|t| t.0 == g) {
            Some(t) => {
                t.1 += 1;
                t.2 += m.size_kib;
                t.3 += m.rss_kib;
            }
            None => v.push((g, 1, m.size_kib, m.rss_kib)),
        }
    }
    v
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// Runs the mode: the table, the breakdown and `footprint.csv`'s text;
/// notes say what was left out.
pub fn run(o: &Options) -> Result<(String, String, Vec<String>), String> {
    let bin = build_c_program(&o.out, "footprint", FOOTPRINT_C)?;
    let mut notes = Vec::new();
    let mut libs: Vec<(String, Option<PathBuf>)> = vec![("glibc".into(), None)];
    let hak = hakmem_so(o.build_preload, &mut notes);
    if hak.exists() {
        libs.push(("hakmem".into(), Some(hak.clone())));
    } else {
        notes.push(format!(
            "{} not found (build it with `cargo build --release -p hakmem-preload`): no hakmem line",
            hak.display()
        ));
    }
    for (name, path, package) in SYSTEM_LIBS {
        if Path::new(path).exists() {
            libs.push((name.into(), Some(PathBuf::from(path))));
        } else {
            notes.push(format!(
                "{name}: {path} is not installed, so its line is left out \
                 (install it with `apt-get install {package}`)"
            ));
        }
    }
    // mimalloc's secure build (MI_SECURE=4), built from the bundled source
    // once, with MI_MALLOC_OVERRIDE so that it serves LD_PRELOAD.
    match crate::dl::MIMALLOC_SECURE_LIB.path() {
        Ok(p) => libs.push(("mimalloc-secure".into(), Some(p.clone()))),
        Err(e) => notes.push(e.replace("column", "line")),
    }
    let runs = o.runs.max(1);
    let mut probes: Vec<Vec<Probe>> = vec![Vec::new(); libs.len()];
    for r in 0..runs {
        for k in 0..libs.len() {
            let i = (k + r) % libs.len();
            let p = probe(&bin, libs[i].1.as_deref(), false)
                .map_err(|e| format!("{}: {e}", libs[i].0))?;
            probes[i].push(p);
        }
    }
    let lines: Vec<Line> = libs
        .iter()
        .zip(&probes)
        .map(|((name, lib), ps)| Line {
            name: name.clone(),
            lib: lib.clone(),
            hwm_kib: median(ps.iter().map(|p| p.hwm_kib).collect()),
            rss_kib: median(ps.iter().map(|p| p.rss_kib).collect()),
            maxrss_kib: median(ps.iter().map(|p| p.maxrss_kib).collect()),
            runs: ps.len(),
        })
        .collect();
    let mut text = table(&lines);
    let mut csv = String::from("allocator,library,runs,vmhwm_kib,vmrss_kib,ru_maxrss_kib,hwm_ratio_glibc,rss_ratio_glibc\n");
    let g = &lines[0];
    for l in &lines {
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{:.4},{:.4}",
            l.name,
            l.lib
                .as_ref()
                .map_or(String::new(), |p| p.display().to_string()),
            l.runs,
            l.hwm_kib,
            l.rss_kib,
            l.maxrss_kib,
            l.hwm_kib as f64 / g.hwm_kib.max(1) as f64,
            l.rss_kib as f64 / g.rss_kib.max(1) as f64
        );
    }
    if hak.exists() {
        let plain = probe(&bin, None, true)?;
        let with = probe(&bin, Some(&hak), true)?;
        text.push('\n');
        text.push_str(&breakdown(&plain.smaps, &with.smaps));
        let _ = writeln!(csv, "\ngroup,glibc_mappings,glibc_size_kib,glibc_rss_kib,hakmem_mappings,hakmem_size_kib,hakmem_rss_kib");
        for (grp, a, b) in joined(&plain.smaps, &with.smaps) {
            let _ = writeln!(csv, "{grp},{},{},{},{},{},{}", a.0, a.1, a.2, b.0, b.1, b.2);
        }
        if let Some(t) = tls_size(&hak) {
            notes.push(format!(
                "libhakmem.so's TLS segment (readelf -lW): {t} bytes per thread"
            ));
        }
    }
    Ok((text, csv, notes))
}

/// The footprint table.
pub fn table(lines: &[Line]) -> String {
    let g = &lines[0];
    let ratio = |a: u64, b: u64| a as f64 / b.max(1) as f64;
    let rows: Vec<Vec<String>> = lines
        .iter()
        .map(|l| {
            vec![
                l.name.clone(),
                l.hwm_kib.to_string(),
                format!("{:.2}", ratio(l.hwm_kib, g.hwm_kib)),
                l.rss_kib.to_string(),
                format!("{:.2}", ratio(l.rss_kib, g.rss_kib)),
                l.runs.to_string(),
            ]
        })
        .collect();
    crate::report::tables::text(
        &[
            "allocator",
            "peak RSS KiB",
            "× glibc",
            "RSS exit KiB",
            "× glibc",
            "runs",
        ],
        &rows,
        &[1, 2, 3, 4, 5],
    )
}

type Tot = (usize, u64, u64);

/// Groups of both runs side by side: (group, glibc, hakmem).
fn joined(plain: &[Mapping], with: &[Mapping]) -> Vec<(String, Tot, Tot)> {
    let a = totals(plain);
    let b = totals(with);
    let mut names: Vec<String> = b.iter().map(|t| t.0.clone()).collect();
    for t in &a {
        if !names.contains(&t.0) {
            names.push(t.0.clone());
        }
    }
    let get = |v: &[(String, usize, u64, u64)], n: &str| {
        v.iter()
            .find(|t| t.0 == n)
            .map_or((0, 0, 0), |t| (t.1, t.2, t.3))
    };
    names
        .into_iter()
        .map(|n| {
            let (x, y) = (get(&a, &n), get(&b, &n));
            (n, x, y)
        })
        .collect()
}

/// The smaps breakdown, glibc against hakmem.
pub fn breakdown(plain: &[Mapping], with: &[Mapping]) -> String {
    let mut s = format!(
        "resident memory of the probe by mapping group (/proc/self/smaps at exit)\n\
         {:<32} {:>5} {:>10} {:>8}   {:>5} {:>10} {:>8} {:>9}\n",
        "group", "glibc", "size KiB", "RSS KiB", "hakm.", "size KiB", "RSS KiB", "Δ RSS"
    );
    let (mut ra, mut rb) = (0u64, 0u64);
    for (g, a, b) in joined(plain, with) {
        ra += a.2;
        rb += b.2;
        let _ = writeln!(
            s,
            "{:<32} {:>5} {:>10} {:>8}   {:>5} {:>10} {:>8} {:>+9}",
            g,
            a.0,
            a.1,
            a.2,
            b.0,
            b.1,
            b.2,
            b.2 as i64 - a.2 as i64
        );
    }
    let _ = writeln!(
        s,
        "{:<32} {:>5} {:>10} {:>8}   {:>5} {:>10} {:>8} {:>+9}",
        "total",
        plain.len(),
        plain.iter().map(|m| m.size_kib).sum::<u64>(),
        ra,
        with.len(),
        with.iter().map(|m| m.size_kib).sum::<u64>(),
        rb,
        rb as i64 - ra as i64
    );
    s
}

/// The `MemSiz` of a library's `TLS` program header (`readelf -lW`).
fn tls_size(lib: &Path) -> Option<u64> {
    let o = Command::new("readelf").arg("-lW").arg(lib).output().ok()?;
    let text = String::from_utf8_lossy(&o.stdout);
    let line = text.lines().find(|l| l.trim_start().starts_with("TLS "))?;
    let memsz = line.split_whitespace().nth(5)?;
    u64::from_str_radix(memsz.trim_start_matches("0x"), 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55c44d695000-55c44d696000 r--p 00000000 08:01 1234 /tmp/fp
Size:                  4 kB
Rss:                   4 kB
7f5682415000-7f568246d000 r-xp 00015000 08:01 99 /x/libhakmem.so
Size:                352 kB
Rss:                 224 kB
7f5682470000-7f5682476000 rw-p 00070000 08:01 99 /x/libhakmem.so
Size:                 24 kB
Rss:                  12 kB
7f5682476000-7f568a4b9000 rw-p 00000000 00:00 0
Size:             131340 kB
Rss:                  20 kB
200000000000-200000200000 rw-p 00000000 00:00 0
Size:               2048 kB
Rss:                   8 kB
7f568a4e0000-7f568a4e7000 rw-p 00000000 00:00 0
Size:                 28 kB
Rss:                  20 kB
7ffce8dd8000-7ffce8df9000 rw-p 00000000 00:00 0 [stack]
Size:                132 kB
Rss:                  36 kB
";

    #[test]
    fn smaps_groups() {
        let m = parse_smaps(SMAPS);
        assert_eq!(m.len(), 7);
        assert_eq!(m[3].size_kib, 131340);
        assert_eq!(m[3].rss_kib, 20);
        assert_eq!(
            groups(&m),
            [
                "fp rodata",
                "libhakmem.so text",
                "libhakmem.so data",
                "libhakmem.so bss",
                "anon, 2 MiB-aligned",
                "anon, other",
                "[stack]"
            ]
        );
        let out = format!("x\n== status\nVmHWM:\t 1684 kB\nVmRSS:\t 1600 kB\n== smaps\n{SMAPS}");
        let p = parse(&out).unwrap();
        assert_eq!((p.hwm_kib, p.rss_kib, p.smaps.len()), (1684, 1600, 7));
        let b = breakdown(&m[..1], &m);
        assert!(b.contains("libhakmem.so bss"), "{b}");
    }
}
