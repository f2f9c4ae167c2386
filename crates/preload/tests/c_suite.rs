//! The C test suite of `libhakmem.so`: compiles each program under
//! `tests/c/` with the system C compiler (`$CC`, default `cc`) and runs it
//! with `LD_PRELOAD` set to the `libhakmem.so` of the profile under test
//! (cargo builds the package's cdylib before its integration tests).
//!
//! Each program prints `test_xxx: N passed, M failed` as its last line and
//! exits 0 only if every check passed; a failure here shows its stdout and
//! stderr. See `docs/preload.md`.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A program that runs longer than this is killed and fails its test.
const TIMEOUT: Duration = Duration::from_secs(180);

/// `target/<profile>/libhakmem.so`, beside the directory holding this test
/// binary (`target/<profile>/deps/`), so it follows `--release`, `--profile`
/// and `CARGO_TARGET_DIR`.
///
/// Cargo does not build a cdylib-only package's library before its
/// integration tests, so the first call runs `cargo build -p hakmem-preload` for
/// the same profile and target directory. (Cargo releases its build lock
/// before it runs test binaries, so the nested build does not deadlock.)
fn library() -> PathBuf {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let exe = std::env::current_exe().expect("current_exe");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binary lives in target/<profile>/deps");
        let target_dir = profile_dir.parent().expect("target/<profile>");
        let profile = profile_dir
            .file_name()
            .expect("profile directory name")
            .to_string_lossy()
            .into_owned();
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "-p", "hakmem-preload"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("CARGO_TARGET_DIR", target_dir);
        match profile.as_str() {
            "debug" => {}
            "release" => {
                cmd.arg("--release");
            }
            other => {
                cmd.args(["--profile", other]);
            }
        }
        let out = cmd.output().expect("run cargo build -p hakmem-preload");
        assert!(
            out.status.success(),
            "cargo build -p hakmem-preload failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let so = profile_dir.join("libhakmem.so");
        assert!(so.is_file(), "{} is missing after the build", so.display());
        so
    })
    .clone()
}

/// Compiles `tests/c/<name>.c` once per test binary and returns the
/// executable (tests sharing a program wait for one compilation).
fn compile(name: &str) -> PathBuf {
    static DONE: Mutex<BTreeMap<String, Arc<OnceLock<PathBuf>>>> = Mutex::new(BTreeMap::new());
    let cell = DONE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(name.to_owned())
        .or_default()
        .clone();
    cell.get_or_init(|| compile_now(name)).clone()
}

fn compile_now(name: &str) -> PathBuf {
    let src_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c");
    // C++ programs are `.cpp` and built with `$CXX` (default `c++`).
    let cxx = src_dir.join(format!("{name}.cpp")).is_file();
    let src = src_dir.join(format!("{name}.{}", if cxx { "cpp" } else { "c" }));
    let profile = library()
        .parent()
        .and_then(Path::file_name)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("preload-c")
        .join(profile);
    std::fs::create_dir_all(&out_dir).expect("create the output directory");
    let exe = out_dir.join(name);
    // Built under a private name and renamed, so that a concurrent run of
    // the suite never executes a half-written file.
    let tmp = out_dir.join(format!(".{name}.{}", std::process::id()));
    let cc = if cxx {
        std::env::var("CXX").unwrap_or_else(|_| "c++".to_owned())
    } else {
        std::env::var("CC").unwrap_or_else(|_| "cc".to_owned())
    };
    let out = Command::new(&cc)
        .args(["-O2", "-g", "-pthread", "-Wall", "-Wextra", "-fno-builtin"])
        .arg("-I")
        .arg(&src_dir)
        .arg("-o")
        .arg(&tmp)
        .arg(&src)
        .arg("-ldl")
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler `{cc}`: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "compiling {} failed ({}):\n{stderr}",
        src.display(),
        out.status
    );
    if !stderr.trim().is_empty() {
        // Warnings are shown (with --nocapture) but do not fail the test.
        eprintln!("{cc} warnings for {name}.c:\n{stderr}");
    }
    std::fs::rename(&tmp, &exe).expect("move the compiled program into place");
    exe
}

/// What one run of a C program produced.
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Run {
    fn describe(&self) -> String {
        format!(
            "status: {} (signal {:?}) after {:.2?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            self.status.signal(),
            self.elapsed,
            self.stdout,
            self.stderr
        )
    }
}

/// Runs `exe` with `args` under `LD_PRELOAD=libhakmem.so`, with every
/// `HAKMEM_*` variable removed from the environment except `env`.
fn run(exe: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .env("LD_PRELOAD", library())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("HAKMEM_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = pipe.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = reader(Box::new(child.stdout.take().expect("piped stdout")));
    let err = reader(Box::new(child.stderr.take().expect("piped stderr")));
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for the C program") {
            break s;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            break child.wait().expect("wait for the killed C program");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = start.elapsed();
    Run {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
        elapsed,
    }
}

/// Compiles and runs `name`, asserting exit status 0 and the summary line.
fn suite(name: &str) -> Run {
    suite_with(name, &[], &[])
}

/// [`suite`] with arguments and `HAKMEM_*` settings.
fn suite_with(name: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let exe = compile(name);
    let r = run(&exe, args, env);
    assert!(
        r.status.success(),
        "{name} failed under LD_PRELOAD:\n{}",
        r.describe()
    );
    let last = r.stdout.lines().last().unwrap_or("");
    assert!(
        last.starts_with(&format!("{name}: ")) && last.ends_with(" passed, 0 failed"),
        "{name}: unexpected summary line {last:?}\n{}",
        r.describe()
    );
    eprintln!("{last} ({:.2?})", r.elapsed);
    r
}

#[test]
fn too_large_requests_fail_with_enomem() {
    suite("test_too_large");
}

#[test]
fn alignment_matrix_up_to_4_mib() {
    suite("test_align");
}

#[test]
fn calloc_zeroes_after_dirty_frees() {
    suite("test_calloc");
}

#[test]
fn realloc_preserves_contents_and_survives_failure() {
    suite("test_realloc");
}

#[test]
fn basic_api_frees_and_introspection() {
    let r = suite("test_basic");
    assert!(
        r.stderr.contains("hakmem statistics") && r.stderr.contains("superslabs"),
        "malloc_stats printed nothing recognisable:\n{}",
        r.describe()
    );
}

#[test]
fn fork_from_a_thread_while_others_allocate() {
    suite("test_fork");
}

#[test]
fn program_fork_handlers_may_allocate() {
    suite("test_fork_handlers");
}

#[test]
fn fork_handlers_stay_older_than_the_programs() {
    let r = suite("test_fork_order");
    let before = r
        .stderr
        .find("== before pthread_atfork")
        .expect("no first report");
    let after = r
        .stderr
        .find("== after pthread_atfork")
        .expect("no second report");
    assert!(
        r.stderr[before..after].contains("fork handlers: not registered yet"),
        "registered while the program had one thread and no handlers:\n{}",
        r.describe()
    );
    assert!(
        r.stderr[after..].contains("fork handlers: registered"),
        "not registered by the program's pthread_atfork:\n{}",
        r.describe()
    );
}

#[test]
fn backtraces_get_through_hakmem_frames() {
    suite("test_unwind");
}

#[test]
fn fork_handlers_wait_for_a_second_thread() {
    let r = suite("test_fork_lazy");
    let one = r.stderr.find("== one thread").expect("no first report");
    let two = r.stderr.find("== two threads").expect("no second report");
    let (alone, beside) = (&r.stderr[one..two], &r.stderr[two..]);
    assert!(
        alone.contains("fork handlers: not registered yet"),
        "registered while the program had one thread:\n{}",
        r.describe()
    );
    assert!(
        beside.contains("fork handlers: registered"),
        "not registered once pthread_create ran:\n{}",
        r.describe()
    );
}

#[test]
fn thread_create_join_cycles_keep_rss_bounded() {
    suite("test_threads");
}

#[test]
fn foreign_pointers_are_diagnosed_not_corrupted() {
    let r = suite_with(
        "test_foreign",
        &["ignore"],
        &[("HAKMEM_FOREIGN_FREE", "ignore")],
    );
    assert!(
        r.stderr.contains("not allocated by hakmem ignored"),
        "no diagnostic for a foreign free:\n{}",
        r.describe()
    );
}

#[test]
fn foreign_pointers_forwarded_on_request() {
    let r = suite_with(
        "test_foreign",
        &["forward"],
        &[("HAKMEM_FOREIGN_FREE", "forward")],
    );
    // `free` is forwarded once the facade calls the preload's foreign-free
    // hook; until then it is diagnosed and leaked. Either is safe.
    assert!(
        r.stdout.contains("forwarded free: "),
        "no forwarding report:\n{}",
        r.describe()
    );
}

#[test]
fn foreign_free_aborts_by_default() {
    let exe = compile("test_foreign");
    let r = run(&exe, &["abort"], &[]);
    assert_eq!(
        r.status.signal(),
        Some(libc::SIGABRT),
        "free(foreign) should abort by default:\n{}",
        r.describe()
    );
    assert!(
        r.stderr.contains("hakmem: free(): invalid pointer"),
        "{}",
        r.describe()
    );
}

/// Runs one case of `test_misuse` and asserts that hakmem stopped it with
/// SIGABRT after a one-line diagnostic containing `needle` and the pointer.
fn misuse(case: &str, needle: &str) {
    misuse_with(case, needle, &[]);
}

/// [`misuse`] with `HAKMEM_*` settings.
fn misuse_with(case: &str, needle: &str, env: &[(&str, &str)]) {
    let exe = compile("test_misuse");
    let r = run(&exe, &[case], env);
    assert_eq!(
        r.status.signal(),
        Some(libc::SIGABRT),
        "{case}: the misuse was not stopped:\n{}",
        r.describe()
    );
    let line = r
        .stderr
        .lines()
        .rfind(|l| l.starts_with("hakmem: "))
        .unwrap_or_else(|| panic!("{case}: no diagnostic:\n{}", r.describe()));
    assert!(
        line.contains(needle) && line.contains(" 0x"),
        "{case}: diagnostic {line:?} lacks {needle:?}"
    );
}

const DOUBLE: &str = "free(): double free of";
const INVALID: &str = "free(): invalid pointer";

#[test]
fn misuse_double_frees_in_every_tier_and_order() {
    for case in [
        "double_tiny",
        "double_mid",
        "double_span",
        "double_after_allocations",
        "double_a_b_a",
        "double_after_cache_flush",
        "double_other_thread_first",
        "double_other_thread_second",
        "double_two_other_threads",
        "double_free_sized",
    ] {
        misuse(case, DOUBLE);
    }
}

#[test]
fn misuse_invalid_frees() {
    for case in [
        "first_call_small_int",
        "first_call_stack",
        "invalid_stack",
        "invalid_static",
        "invalid_small_int",
        "invalid_far",
        "invalid_interior_other_thread",
        "invalid_misaligned_other_thread",
        "invalid_span_interior",
        "invalid_interior_owner_at_flush",
    ] {
        misuse(case, INVALID);
    }
}

#[test]
fn misuse_other_entry_points() {
    misuse("realloc_freed", "realloc(): pointer already freed");
    misuse("realloc_stack", "realloc(): invalid pointer");
    misuse(
        "usable_size_freed",
        "malloc_usable_size(): pointer already freed",
    );
    misuse(
        "usable_size_interior",
        "malloc_usable_size(): invalid pointer",
    );
}

const SECURE: &[(&str, &str)] = &[("HAKMEM_SECURE", "1")];

#[test]
fn misuse_default_cases_are_caught_in_the_secure_mode_too() {
    for case in [
        "double_tiny",
        "double_mid",
        "double_span",
        "double_a_b_a",
        "double_other_thread_first",
        "double_two_other_threads",
    ] {
        misuse_with(case, DOUBLE, SECURE);
    }
    for case in [
        "invalid_stack",
        "invalid_far",
        "invalid_interior_other_thread",
    ] {
        misuse_with(case, INVALID, SECURE);
    }
}

/// The secure mode's `malloc(0)`: distinct pointers that free, realloc and
/// malloc_usable_size accept, and that fault when touched (SIGSEGV).
#[test]
fn secure_malloc0_faults_when_touched() {
    let exe = compile("test_misuse");
    let ok = run(&exe, &["secure_malloc0_use"], SECURE);
    assert!(
        ok.status.success() && ok.stdout.contains("malloc0 ok"),
        "{}",
        ok.describe()
    );
    let bad = run(&exe, &["secure_malloc0_read"], SECURE);
    assert_eq!(
        bad.status.signal(),
        Some(libc::SIGSEGV),
        "{}",
        bad.describe()
    );
}

/// Runs misuse case `case` of `exe` in the secure mode and asserts that it
/// dies of SIGSEGV at the write, before it can print "not stopped".
fn faults_in_secure_mode(exe: &Path, case: &str) {
    let r = run(exe, &[case], SECURE);
    assert_eq!(
        r.status.signal(),
        Some(libc::SIGSEGV),
        "{case}: {}",
        r.describe()
    );
    assert!(
        !r.stdout.contains("not stopped"),
        "{case}: {}",
        r.describe()
    );
}

#[test]
fn secure_spans_end_at_a_guard_page() {
    let exe = compile("test_misuse");
    misuse_with(
        "secure_span_overflow_one_byte",
        "free(): buffer overflow past the end of block",
        SECURE,
    );
    for case in ["secure_span_overflow_faults", "secure_span_overflow_far"] {
        faults_in_secure_mode(&exe, case);
        // Without the secure mode the same writes land in the span's slack.
        let d = run(&exe, &[case], &[]);
        assert!(d.status.success(), "{case} (default): {}", d.describe());
    }
}

/// In the secure mode every slab ends in a guard page, so a large
/// overflow out of a slab block faults when it reaches the slab's end
/// instead of running through the slabs after it.
#[test]
fn secure_slabs_end_at_a_guard_page() {
    // SAFETY: sysconf has no preconditions.
    if unsafe { libc::sysconf(libc::_SC_PAGESIZE) } > 4096 {
        eprintln!("skipped: pages above 4 KiB, small slabs have no guard page");
        return;
    }
    let exe = compile("test_misuse");
    for case in [
        "secure_slab_overflow_far",
        "secure_medium_slab_overflow_far",
    ] {
        faults_in_secure_mode(&exe, case);
    }
    // A bad free of a block that starts a slab: the header check reads the
    // 16 bytes before the pointer only inside the slab, so the guard page
    // before it is not touched and the misuse gets its diagnostic.
    misuse_with("secure_free_at_slab_start", "free(): ", SECURE);
}

#[test]
fn misuse_secure_mode_catches_overflows_and_writes_after_free() {
    misuse_with(
        "secure_overflow_one_byte",
        "free(): buffer overflow",
        SECURE,
    );
    misuse_with("secure_overflow_large", "free(): buffer overflow", SECURE);
    misuse_with(
        "secure_underflow_one_byte",
        "free(): invalid pointer or heap corruption before the block",
        SECURE,
    );
    misuse_with(
        "secure_write_after_free",
        "malloc(): write after free",
        SECURE,
    );
    misuse_with(
        "secure_corrupted_free_list_link",
        "malloc(): corrupted free-list link",
        SECURE,
    );
    misuse_with(
        "secure_corrupted_slab_list_link",
        "malloc(): corrupted free-list link",
        SECURE,
    );
    // The owner's interior and misaligned frees are caught at once here.
    misuse_with(
        "secure_interior_by_owner",
        "free(): invalid pointer",
        SECURE,
    );
    misuse_with(
        "secure_misaligned_by_owner",
        "free(): invalid pointer",
        SECURE,
    );
}

/// The secure mode's own library-level behaviour: programs run, and
/// hand-outs are zeroed and exact-sized.
#[test]
fn secure_mode_runs_the_c_suite_programs() {
    for name in [
        "test_basic",
        "test_calloc",
        "test_realloc",
        "test_align",
        "test_threads",
    ] {
        suite_with(name, &[], SECURE);
    }
}

#[test]
fn cxx_operators_reach_hakmem() {
    suite("test_cxx");
    suite_with("test_cxx", &[], SECURE);
}

#[test]
fn secure_mode_checks_the_size_of_a_sized_delete() {
    let exe = compile("test_cxx");
    let r = run(&exe, &["sized_mismatch"], SECURE);
    assert_eq!(r.status.signal(), Some(libc::SIGABRT), "{}", r.describe());
    assert!(
        r.stderr
            .contains("hakmem: operator delete(): size mismatch for 0x"),
        "{}",
        r.describe()
    );
    // The default mode does not check the size (and does not need it).
    let r = run(&exe, &["sized_mismatch"], &[]);
    assert!(r.status.success(), "{}", r.describe());
}

/// The first line of the `HAKMEM_STATS=1` table.
const TABLE: &str = "hakmem statistics";

/// A fresh path for a report file (the directory is created, the file not).
fn report_path(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("preload-stats")
        .join(format!("{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the report directory");
    dir.join("report")
}

#[test]
fn stats_report_survives_a_closed_stderr() {
    for mode in ["close", "reuse"] {
        let r = suite_with("test_stats", &[mode], &[("HAKMEM_STATS", "1")]);
        assert_eq!(
            r.stderr.matches(TABLE).count(),
            1,
            "{mode}: the report did not reach the stderr pipe once:\n{}",
            r.describe()
        );
        assert!(r.stderr.contains("committed "), "{}", r.describe());
    }
    // The duplicate is where the report says it is.
    suite_with("test_stats", &["dup"], &[("HAKMEM_STATS", "json")]);
}

#[test]
fn stats_report_of_ls_which_closes_its_stderr() {
    let ls = Path::new("/bin/ls");
    if !ls.is_file() {
        eprintln!("no /bin/ls: skipped");
        return;
    }
    let r = run(ls, &["/"], &[("HAKMEM_STATS", "1")]);
    assert!(r.status.success(), "{}", r.describe());
    assert!(
        r.stderr.contains(TABLE) && r.stderr.contains("superslabs"),
        "ls printed no report:\n{}",
        r.describe()
    );
}

#[test]
fn stats_report_goes_to_hakmem_stats_file() {
    let path = report_path("file");
    let p = path.to_str().expect("a UTF-8 path");
    let env = [("HAKMEM_STATS", "json"), ("HAKMEM_STATS_FILE", p)];
    let r = suite_with("test_stats", &["file"], &env);
    assert!(
        !r.stderr.contains("\"allocs\""),
        "the report went to stderr too:\n{}",
        r.describe()
    );
    // A second run appends.
    suite_with("test_stats", &["close"], &env);
    let text = std::fs::read_to_string(&path).expect("read the report file");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "two runs, two reports:\n{text}");
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["allocs"].as_u64().unwrap() > 32, "{line}");
        assert!(v["committed_bytes"].as_u64().unwrap() > 0, "{line}");
        assert!(v["rss_bytes"].as_u64().unwrap() > 0, "{line}");
        assert_eq!(v["classes"].as_array().map(Vec::len), Some(80), "{line}");
    }
}

#[test]
fn stats_file_that_cannot_be_opened_falls_back_to_stderr() {
    let path = report_path("bad").join("no-such-directory").join("report");
    let p = path.to_str().expect("a UTF-8 path");
    let r = suite_with(
        "test_stats",
        &["close"],
        &[("HAKMEM_STATS", "1"), ("HAKMEM_STATS_FILE", p)],
    );
    let diag: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("hakmem: HAKMEM_STATS_FILE="))
        .collect();
    assert_eq!(
        diag,
        [format!(
            "hakmem: HAKMEM_STATS_FILE={p} ignored (cannot be opened: errno 2; \
             the report goes to stderr)"
        )],
        "{}",
        r.describe()
    );
    assert_eq!(r.stderr.matches(TABLE).count(), 1, "{}", r.describe());
    assert!(!path.exists());
}

#[test]
fn stats_file_is_ignored_without_hakmem_stats() {
    let path = report_path("off");
    let p = path.to_str().expect("a UTF-8 path");
    let r = suite_with("test_stats", &["plain"], &[("HAKMEM_STATS_FILE", p)]);
    assert!(!path.exists(), "created without HAKMEM_STATS");
    assert!(!r.stderr.contains(TABLE), "{}", r.describe());
}

/// The library's image (every `PT_LOAD` segment, `.bss` included) spans
/// less than 2 MiB. The loader reserves the whole span in one `mmap`, and
/// the kernel 2 MiB-aligns a file mapping of 2 MiB or more; an aligned
/// libhakmem.so fixed the alignment of libc mapped below it, and with it
/// the libc pages the kernel's fault-around made resident in every
/// program (docs/benchmarks.md, "the registry out of `.bss`"). The
/// address registry's 128 MiB table is mapped on first use instead.
#[test]
fn the_library_image_spans_less_than_2_mib() {
    let elf = std::fs::read(library()).expect("read libhakmem.so");
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap()) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap()) as usize;
    assert_eq!(&elf[..5], b"\x7fELF\x02", "a 64-bit ELF file");
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    let mut end = 0;
    let mut loads = 0;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if u32_at(ph) == 1 {
            // PT_LOAD: p_vaddr at +0x10, p_memsz at +0x28.
            loads += 1;
            end = end.max(u64_at(ph + 0x10) + u64_at(ph + 0x28));
        }
    }
    assert!(loads > 0, "no PT_LOAD segment");
    assert!(
        end < 2 << 20,
        "libhakmem.so's image spans {end:#x} bytes (a large static in .bss?)"
    );
}
