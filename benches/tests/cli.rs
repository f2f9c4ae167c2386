//! End-to-end: the runner spawns its children, and writes its table, CSV and
//! charts (to a temporary directory, not target/hakmem-bench).

use std::process::Command;

const EXE: &str = env!("CARGO_BIN_EXE_hakmem-bench");

#[test]
fn run_one_prints_a_result_for_every_allocator() {
    for a in [
        "hakmem",
        "system",
        "mimalloc",
        "mi-direct",
        "jemalloc",
        "snmalloc",
    ] {
        let o = Command::new(EXE)
            .args([
                "run-one",
                a,
                "tiny-hot",
                "size=64",
                "batch=100",
                "rounds=100",
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{a}: {o:?}");
        let out = String::from_utf8(o.stdout).unwrap();
        assert!(out.starts_with("{\"ops\":20000,"), "{a}: {out}");
        assert_eq!(out.lines().count(), 1, "{a}: one JSON line: {out}");
    }
    let bad = Command::new(EXE)
        .args(["run-one", "nope", "tiny-hot"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn quick_suite_writes_table_csv_and_svg() {
    let dir = std::env::temp_dir().join(format!("hakmem-bench-test-{}", std::process::id()));
    let o = Command::new(EXE)
        .args(["--quick", "--only"])
        .arg("tiny-hot/64,larson,producer-consumer,rss-return/own,scenario/vm")
        .args(["--allocators", "hakmem,mimalloc", "--scale", "0.1", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    // One progress line per run: 6 workloads × 2 allocators × 1 rep.
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with('[')).count(),
        12,
        "{stderr}"
    );
    assert!(stdout.contains("larson/2t"), "{stdout}");
    assert!(stdout.contains("RSS after free MiB"), "{stdout}");
    assert!(
        stdout.contains("suite peak RSS: geometric mean"),
        "{stdout}"
    );
    let csv = std::fs::read_to_string(dir.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 12 + 12, "{csv}");
    let records = hakmem_bench::report::results::read(&dir.join("results.csv")).unwrap();
    assert_eq!(records.len(), 12 + 12);
    assert!(records.iter().all(|r| r.status.ends_with("ok")), "{csv}");
    if hakmem_bench::report::charts::font().is_ok() {
        for chart in ["throughput.svg", "rss.svg"] {
            let svg = std::fs::read_to_string(dir.join(chart)).unwrap();
            assert!(svg.contains("<rect") && svg.trim_end().ends_with("</svg>"));
            assert!(
                svg.contains("larson/2t") && svg.contains("mimalloc"),
                "{chart}"
            );
        }
        let png = std::fs::read(dir.join("throughput.png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
    } else {
        assert!(stdout.contains("no TTF font for the charts"), "{stdout}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn list_names_every_column_and_glibc_simple() {
    let o = Command::new(EXE).arg("list").output().unwrap();
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    for name in [
        "tcmalloc",
        "snmalloc",
        "scudo",
        "mimalloc-secure",
        "glibc-simple/16",
        "glibc-simple/4096",
    ] {
        assert!(out.contains(name), "{name} missing in:\n{out}");
    }
}

/// tcmalloc and scudo run when their libraries are installed, and are left
/// out with a line naming the package when they are not: never silently.
#[test]
fn dlopen_columns_run_or_say_what_is_missing() {
    let dir = std::env::temp_dir().join(format!("hakmem-bench-dl-{}", std::process::id()));
    let o = Command::new(EXE)
        .args(["--quick", "--only", "glibc-simple/256", "--scale", "0.5"])
        .args(["--allocators", "tcmalloc,scudo,snmalloc,mimalloc", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    for (name, path, package) in [
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
    ] {
        let ran = stderr
            .lines()
            .any(|l| l.starts_with('[') && l.contains(&format!(" {name} ")));
        if std::path::Path::new(path).exists() {
            assert!(ran, "{name} did not run:\n{stderr}");
        } else {
            assert!(!ran);
            assert!(
                stdout.contains(&format!("apt-get install {package}")),
                "{stdout}"
            );
        }
    }
    assert!(
        stdout.lines().any(|l| l
            .split_whitespace()
            .take(2)
            .eq(["glibc-simple/256", "snmalloc"])),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// mimalloc's secure build is compiled from the bundled source on first
/// use and runs as its own column, or is left out with a line saying why
/// (no source, no C compiler).
#[test]
fn mimalloc_secure_runs_or_says_why_not() {
    let dir = std::env::temp_dir().join(format!("hakmem-bench-misec-{}", std::process::id()));
    let o = Command::new(EXE)
        .args(["--quick", "--only", "glibc-simple/256", "--scale", "0.5"])
        .args(["--allocators", "mimalloc,mimalloc-secure", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    let ran = stdout.lines().any(|l| {
        l.split_whitespace()
            .take(2)
            .eq(["glibc-simple/256", "mimalloc-secure"])
    });
    let note = stderr
        .lines()
        .any(|l| l.starts_with("hakmem-bench: mimalloc-secure: ") && l.contains("left out"));
    assert!(ran != note, "{stdout}\n{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
