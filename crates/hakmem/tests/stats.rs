//! Statistics through the facade: the exit report survives a closed stderr
//! and can go to `HAKMEM_STATS_FILE`; `Stats::write_json` is valid JSON that
//! says what the snapshot says; current RSS and committed bytes follow a
//! large allocation and a trim.
//!
//! The exit-report cases run in a child process: the test binary runs
//! itself with `--exact <case>` and `HAKMEM_STATS_CHILD=1`, the child
//! allocates through hakmem (which reads the environment), closes fd 2 and
//! exits, and the parent reads what reached the child's stderr pipe.

mod common;

use std::process::Output;
use std::sync::Mutex;

use serde_json::Value;

const CHILD: &str = "HAKMEM_STATS_CHILD";
const TABLE: &str = "hakmem statistics";

/// Tests that measure process-wide figures run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn in_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

/// Runs `case` (this test's own name) in a child with `env` (and no other
/// `HAKMEM_*` variable).
fn child(case: &str, env: &[(&str, &str)]) -> Output {
    common::run_child(CHILD, case, env)
}

/// The child's part: allocate through hakmem (the first slow path reads the
/// environment), close stderr, exit through `exit` (atexit handlers run).
fn allocate_close_stderr_and_exit() -> ! {
    let mut kept = Vec::new();
    for i in 0..200usize {
        let p = hakmem::malloc(16 + i * 40);
        assert!(!p.is_null());
        kept.push(p);
    }
    for p in kept {
        // SAFETY: blocks from hakmem::malloc above, freed once.
        unsafe { hakmem::free(p) };
    }
    // SAFETY: closing our own stderr on purpose, as `ls` does at exit.
    unsafe { libc::close(2) };
    std::process::exit(0)
}

fn report_path(test: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("hakmem-stats")
        .join(format!("{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("report")
}

#[test]
fn report_reaches_the_stderr_pipe_after_stderr_is_closed() {
    if in_child() {
        allocate_close_stderr_and_exit();
    }
    let out = child(
        "report_reaches_the_stderr_pipe_after_stderr_is_closed",
        &[("HAKMEM_STATS", "1")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches(TABLE).count(), 1, "stderr:\n{stderr}");
    assert!(stderr.contains("committed "), "stderr:\n{stderr}");
}

#[test]
fn report_goes_to_the_stats_file() {
    if in_child() {
        allocate_close_stderr_and_exit();
    }
    let path = report_path("file");
    let out = child(
        "report_goes_to_the_stats_file",
        &[
            ("HAKMEM_STATS", "json"),
            ("HAKMEM_STATS_FILE", path.to_str().unwrap()),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("\"allocs\""), "stderr:\n{stderr}");
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    let v: Value = serde_json::from_str(text.trim_end()).unwrap();
    assert!(v["allocs"].as_u64().unwrap() >= 200, "{text}");
    assert!(v["frees"].as_u64().unwrap() >= 200, "{text}");
}

#[test]
fn bad_stats_file_is_reported_and_stderr_used() {
    if in_child() {
        allocate_close_stderr_and_exit();
    }
    let path = report_path("bad").join("missing").join("report");
    let p = path.to_str().unwrap();
    let out = child(
        "bad_stats_file_is_reported_and_stderr_used",
        &[("HAKMEM_STATS", "1"), ("HAKMEM_STATS_FILE", p)],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let diag: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("HAKMEM_STATS_FILE"))
        .collect();
    assert_eq!(
        diag,
        [format!(
            "hakmem: HAKMEM_STATS_FILE={p} ignored (cannot be opened: errno 2; \
             the report goes to stderr)"
        )],
        "stderr:\n{stderr}"
    );
    assert_eq!(stderr.matches(TABLE).count(), 1, "stderr:\n{stderr}");
}

fn json_of(s: &hakmem::Stats) -> Value {
    let mut text = String::new();
    s.write_json(&mut text).unwrap();
    assert!(!text.contains('\n'), "one line: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn write_json_is_json_that_matches_the_snapshot() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let p = hakmem::malloc(100);
    let q = hakmem::malloc(200_000);
    assert!(!p.is_null() && !q.is_null());
    let s = hakmem::stats();
    let v = json_of(&s);
    let u = |k: &str| {
        v[k].as_u64()
            .unwrap_or_else(|| panic!("{k} missing or not a number"))
    };
    assert_eq!(u("allocs"), s.allocs);
    assert_eq!(u("frees"), s.frees);
    assert_eq!(u("remote_frees"), s.remote_frees);
    assert_eq!(u("refills"), s.refills);
    assert_eq!(u("flushes"), s.flushes);
    assert_eq!(u("adopted_slabs"), s.adopted_slabs);
    assert_eq!(u("superslabs"), s.superslabs as u64);
    assert_eq!(u("large_spans"), s.large_spans as u64);
    assert_eq!(u("large_bytes"), s.large_bytes as u64);
    assert_eq!(u("large_allocs"), s.large_allocs);
    assert_eq!(u("large_frees"), s.large_frees);
    assert_eq!(u("span_cache_hits"), s.span_cache_hits);
    assert_eq!(u("span_cache_bytes"), s.span_cache_bytes as u64);
    assert_eq!(u("peak_rss_bytes"), s.peak_rss_bytes);
    assert_eq!(u("rss_bytes"), s.rss_bytes);
    assert_eq!(u("committed_bytes"), s.committed_bytes);
    assert_eq!(v["tiers"]["hot"].as_u64(), Some(s.tiers.0 as u64));
    assert_eq!(v["tiers"]["draining"].as_u64(), Some(s.tiers.1 as u64));
    assert_eq!(v["tiers"]["free"].as_u64(), Some(s.tiers.2 as u64));
    assert_eq!(v["ace"]["events"].as_u64(), Some(s.ace_events));
    assert_eq!(v["ace"]["dropped"].as_u64(), Some(s.ace_dropped));
    assert_eq!(v["ace"]["decisions"].as_u64(), Some(s.ace_decisions));
    assert_eq!(v["ace"]["running"].as_bool(), Some(s.ace_running));
    assert!((v["ace"]["drop_rate"].as_f64().unwrap() - s.ace_drop_rate()).abs() < 1e-6);
    let classes = v["classes"].as_array().expect("classes is an array");
    assert_eq!(classes.len(), s.classes.len());
    let mut class_allocs = 0;
    for (j, c) in classes.iter().zip(s.classes.iter()) {
        assert_eq!(j["size"].as_u64(), Some(c.size as u64));
        assert_eq!(j["allocs"].as_u64(), Some(c.allocs));
        assert_eq!(j["frees"].as_u64(), Some(c.frees));
        assert_eq!(j["remote_frees"].as_u64(), Some(c.remote_frees));
        assert_eq!(j["refills"].as_u64(), Some(c.refills));
        assert_eq!(j["flushes"].as_u64(), Some(c.flushes));
        assert_eq!(j["live_bytes"].as_u64(), Some(c.live_bytes));
        assert_eq!(j["cached_bytes"].as_u64(), Some(c.cached_bytes));
        assert_eq!(j["refill"].as_u64(), Some(c.refill_count as u64));
        assert_eq!(j["cap"].as_u64(), Some(c.cache_cap as u64));
        class_allocs += c.allocs;
    }
    // The totals are the classes plus the spans, as in stats().
    assert_eq!(s.allocs, class_allocs + s.large_allocs);
    assert!(s.allocs >= 2 && s.large_spans >= 1);
    // SAFETY: blocks from hakmem::malloc above, freed once.
    unsafe {
        hakmem::free(p);
        hakmem::free(q);
    }
    // Default is all zero and still valid JSON.
    let z = json_of(&hakmem::Stats::default());
    assert_eq!(z["allocs"].as_u64(), Some(0));
    assert_eq!(z["classes"].as_array().map(Vec::len), Some(s.classes.len()));
}

/// With the `serde` feature, the derived serialisation carries the same
/// figures under the field names.
#[cfg(feature = "serde")]
#[test]
fn serde_serialisation_has_the_fields() {
    let s = hakmem::stats();
    let d = serde_json::to_value(s).unwrap();
    let j = json_of(&s);
    for k in [
        "allocs",
        "frees",
        "superslabs",
        "large_bytes",
        "rss_bytes",
        "committed_bytes",
        "peak_rss_bytes",
    ] {
        assert_eq!(d[k], j[k], "{k}");
    }
    assert_eq!(d["ace_events"], j["ace"]["events"]);
    assert_eq!(d["ace_running"], j["ace"]["running"]);
    assert_eq!(
        d["tiers"],
        serde_json::json!([s.tiers.0, s.tiers.1, s.tiers.2])
    );
    let classes = d["classes"].as_array().unwrap();
    assert_eq!(classes.len(), s.classes.len());
    for (dc, jc) in classes.iter().zip(j["classes"].as_array().unwrap()) {
        assert_eq!(dc["size"], jc["size"]);
        assert_eq!(dc["allocs"], jc["allocs"]);
        assert_eq!(dc["refill_count"], jc["refill"]);
        assert_eq!(dc["cache_cap"], jc["cap"]);
    }
}

#[test]
fn rss_and_committed_follow_a_large_block_and_trim() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const MIB: u64 = 1 << 20;
    // Below a quarter of the span cache, so that its free is cached and
    // only the trim gives it back.
    let size = 32 << 20;
    hakmem::trim();
    let before = hakmem::stats();
    assert!(before.rss_bytes > 0);
    assert!(before.peak_rss_bytes >= before.rss_bytes);
    let p = hakmem::malloc(size);
    assert!(!p.is_null());
    // SAFETY: `size` bytes of a live block; touching makes them resident.
    unsafe { p.write_bytes(0x5A, size) };
    let held = hakmem::stats();
    assert!(
        held.committed_bytes >= before.committed_bytes + size as u64,
        "committed {} -> {}",
        before.committed_bytes,
        held.committed_bytes
    );
    assert!(held.peak_rss_bytes >= held.rss_bytes);
    assert!(
        held.rss_bytes >= before.rss_bytes + 16 * MIB,
        "rss {} -> {}",
        before.rss_bytes,
        held.rss_bytes
    );
    // SAFETY: the block above, freed once.
    unsafe { hakmem::free(p) };
    hakmem::trim();
    let after = hakmem::stats();
    assert!(
        after.committed_bytes + size as u64 <= held.committed_bytes,
        "committed {} -> {} after trim",
        held.committed_bytes,
        after.committed_bytes
    );
    assert!(
        after.rss_bytes + 16 * MIB <= held.rss_bytes,
        "rss {} -> {} after trim",
        held.rss_bytes,
        after.rss_bytes
    );
}
