//! Configuration from `HAKMEM_*` environment variables, read once with
//! `getenv` (which does not allocate) on the first slow path. See
//! `docs/ENV_VARS.md`.

use core::ffi::CStr;
use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize};

use hakmem_ace_learning::POLICY;
use hakmem_ptr_bridge::NUM_CLASSES;

static STATE: AtomicU8 = AtomicU8::new(0); // 0 unread, 1 reading, 2 done
/// 0 = no report, 1 = table, 2 = JSON (HAKMEM_STATS).
static STATS_MODE: AtomicU8 = AtomicU8::new(0);
static REPORTED: AtomicBool = AtomicBool::new(false);

pub(crate) fn var(name: &CStr) -> Option<&'static [u8]> {
    var_cstr(name).map(CStr::to_bytes)
}

/// [`var`] as the C string itself (for a value passed on to the OS, such
/// as a path).
pub(crate) fn var_cstr(name: &CStr) -> Option<&'static CStr> {
    // SAFETY: `name` is NUL-terminated; getenv returns null or a pointer
    // into the environment, which we only read.
    let p = unsafe { libc::getenv(name.as_ptr()) };
    if p.is_null() {
        None
    } else {
        // SAFETY: non-null getenv results are NUL-terminated strings.
        Some(unsafe { CStr::from_ptr(p) })
    }
}

pub(crate) fn parse_u32(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 9 {
        return None;
    }
    let mut v = 0u32;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (b - b'0') as u32;
    }
    Some(v)
}

/// The value of numeric setting `name`; a value that is not a number is
/// reported (`hakmem: NAME=value ignored (not a number)`) and the default
/// kept.
fn number(name: &CStr) -> Option<u32> {
    let v = var(name)?;
    let n = parse_u32(v);
    if n.is_none() {
        crate::diag::bad_setting(name, "not a number");
    }
    n
}

pub(crate) fn truthy(s: &[u8]) -> bool {
    matches!(s, b"1" | b"yes" | b"true" | b"on")
}

/// `pthread_self()` of the thread reading the environment (while STATE is 1).
static READER: AtomicUsize = AtomicUsize::new(0);

/// Reads the environment once (later calls return at once). A call nested
/// in the reading itself (the `atexit` below may allocate) returns at once
/// too: the settings read so far, the mode first, are in force.
pub(crate) fn init() {
    if STATE.load(Acquire) == 2 {
        return;
    }
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() } as usize;
    if STATE.compare_exchange(0, 1, AcqRel, Acquire).is_err() {
        if READER.load(Acquire) == me {
            return;
        }
        while STATE.load(Acquire) != 2 {
            core::hint::spin_loop();
        }
        return;
    }
    READER.store(me, Release);
    if !hakmem_superslab_backend::os::check_page_size() {
        crate::diag::unsupported("the page size is above 64 KiB, which hakmem's slab layout does not support (see docs/platforms.md)");
    }
    crate::install_fork_handlers();
    // The secure mode first: it decides how every block is laid out.
    match var(c"HAKMEM_SECURE") {
        Some(v) if truthy(v) => crate::secure::enable(),
        Some(v) if v.is_empty() || matches!(v, b"0" | b"no" | b"false" | b"off") => {}
        Some(_) => crate::diag::bad_setting(c"HAKMEM_SECURE", "not 1 or 0"),
        None => {}
    }
    if crate::secure::requested() {
        crate::secure::enable();
    }
    if let Some(v) = var(c"HAKMEM_STATS") {
        let mode = match v {
            b"json" | b"JSON" => 2,
            v if truthy(v) || v == b"table" => 1,
            b"" | b"0" | b"no" | b"false" | b"off" => 0,
            _ => {
                crate::diag::bad_setting(c"HAKMEM_STATS", "not 1, table or json");
                0
            }
        };
        STATS_MODE.store(mode, Relaxed);
        if mode != 0 {
            // Where the report will go (HAKMEM_STATS_FILE, or a duplicate
            // of stderr), taken now: the program may close stderr first.
            crate::stats::open_report_sink();
            // SAFETY: registers a plain `extern "C"` function that lives for
            // the process. atexit may allocate after its first 32 entries;
            // this thread is registered already, so that nested call works.
            unsafe { libc::atexit(report_hook) };
        }
    }
    if let Some(n) = number(c"HAKMEM_SPAN_THRESHOLD") {
        hakmem_ptr_bridge::set_span_threshold(n as usize);
    }
    if let Some(n) = number(c"HAKMEM_NODES") {
        hakmem_superslab_backend::set_node_spread(n as usize);
    }
    if let Some(n) = number(c"HAKMEM_DECAY_MS") {
        hakmem_superslab_backend::set_decay_ms(n);
    }
    if let Some(n) = number(c"HAKMEM_THP_MIN") {
        hakmem_superslab_backend::set_huge_min(n as usize);
    }
    if let Some(n) = number(c"HAKMEM_REFILL") {
        for c in 0..NUM_CLASSES {
            POLICY.set_refill_count(c, n);
        }
    }
    if let Some(n) = number(c"HAKMEM_CACHE_CAP") {
        if crate::secure::on() {
            crate::diag::bad_setting(c"HAKMEM_CACHE_CAP", "the secure mode keeps no cache");
        } else {
            for c in 0..NUM_CLASSES {
                POLICY.set_cache_cap(c, n);
            }
        }
    }
    STATE.store(2, Release);
}

extern "C" fn report_hook() {
    report_at_exit();
}

/// True once the environment has been read (the mode can no longer change).
pub(crate) fn done() -> bool {
    STATE.load(Acquire) == 2
}

/// Prints the statistics report once, if `HAKMEM_STATS` asked for one, to
/// `HAKMEM_STATS_FILE` or to the duplicate of stderr taken when the
/// environment was read. Called at process exit (atexit, and the preload
/// library's destructor).
pub fn report_at_exit() {
    let mode = STATS_MODE.load(Relaxed);
    if mode == 0 || REPORTED.swap(true, AcqRel) {
        return;
    }
    crate::stats::write_exit_report(if mode == 2 {
        crate::stats::ReportFormat::Json
    } else {
        crate::stats::ReportFormat::Table
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(parse_u32(b"42"), Some(42));
        assert_eq!(parse_u32(b""), None);
        assert_eq!(parse_u32(b"4x"), None);
        assert_eq!(parse_u32(b"12345678901"), None);
        assert!(truthy(b"1") && !truthy(b"0"));
    }
}
