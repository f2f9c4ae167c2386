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
pub(crate) fn number(name: &CStr) -> Option<u32> {
    let v = var(name)?;
    let n = parse_u32(v);
    if n.is_none() {
        crate::diag::bad_setting(name, "not a number");
    }
    n
}

/// [`number`], and a number outside `lo..=hi` is reported too
/// (`hakmem: NAME=value ignored (why)`) and the default kept.
pub(crate) fn number_in(name: &CStr, lo: u32, hi: u32, why: &str) -> Option<u32> {
    let n = number(name)?;
    if n < lo || n > hi {
        crate::diag::bad_setting(name, why);
        return None;
    }
    Some(n)
}

pub(crate) fn truthy(s: &[u8]) -> bool {
    matches!(s, b"1" | b"yes" | b"true" | b"on")
}

fn falsy(s: &[u8]) -> bool {
    matches!(s, b"" | b"0" | b"no" | b"false" | b"off")
}

/// On/off setting `name`: `Some(true)` for `1`/`yes`/`true`/`on`,
/// `Some(false)` for empty/`0`/`no`/`false`/`off`; any other value is
/// reported (`hakmem: NAME=value ignored (not 1 or 0)`) and gives `None`
/// (the default), as does an unset variable.
pub(crate) fn flag(name: &CStr) -> Option<bool> {
    let v = var(name)?;
    if truthy(v) {
        Some(true)
    } else if falsy(v) {
        Some(false)
    } else {
        crate::diag::bad_setting(name, "not 1 or 0");
        None
    }
}

/// `pthread_self()` of the thread reading the environment (while STATE is 1).
static READER: AtomicUsize = AtomicUsize::new(0);

/// Reads the environment once (later calls return at once). A call nested
/// in the reading itself (the `atexit` below may allocate) returns at once
/// too: the settings read so far, the mode first, are in force.
#[inline]
pub(crate) fn init() {
    if STATE.load(Acquire) != 2 {
        read_once();
    }
}

/// The first reading of [`init`], out of line: its frame is large, and the
/// slow paths that call `init` on every miss (the secure mode's, for one)
/// should pay one load and a branch, not its prologue.
#[cold]
#[inline(never)]
fn read_once() {
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
    // (`hakmem::options::set_secure(false)` before this reading overrides
    // the variable.)
    let env_secure = flag(c"HAKMEM_SECURE") == Some(true);
    match SECURE_CHOICE.load(Acquire) {
        CHOSEN_ON => crate::secure::enable(),
        CHOSEN_OFF => {}
        _ if env_secure => crate::secure::enable(),
        _ => {}
    }
    if crate::secure::requested() {
        crate::secure::enable();
    }
    if let Some(v) = var(c"HAKMEM_STATS") {
        let mode = match v {
            b"json" | b"JSON" => 2,
            v if truthy(v) || v == b"table" => 1,
            v if falsy(v) => 0,
            _ => {
                crate::diag::bad_setting(c"HAKMEM_STATS", "not 1, table or json");
                0
            }
        };
        STATS_MODE.store(mode, Relaxed);
    }
    arm_report();
    if let Some(n) = number_in(
        c"HAKMEM_SPAN_THRESHOLD",
        hakmem_ptr_bridge::TINY_MAX as u32,
        hakmem_ptr_bridge::SMALL_MAX as u32,
        "not between 1024 and 65536",
    ) {
        hakmem_ptr_bridge::set_span_threshold(n as usize);
    }
    if let Some(n) = number_in(
        c"HAKMEM_NODES",
        1,
        hakmem_superslab_backend::NODES as u32,
        "not 1 or 2",
    ) {
        hakmem_superslab_backend::set_node_spread(n as usize);
    }
    if let Some(n) = number(c"HAKMEM_DECAY_MS") {
        hakmem_superslab_backend::set_decay_ms(n);
    }
    if let Some(n) = number(c"HAKMEM_THP_MIN") {
        hakmem_superslab_backend::set_huge_min(n as usize);
        THP_MIN.store(n as usize, Relaxed);
    }
    if let Some(n) = number_in(c"HAKMEM_REFILL", 1, 1024, "not between 1 and 1024") {
        for c in 0..NUM_CLASSES {
            POLICY.set_refill_count(c, n);
        }
    }
    if let Some(n) = number_in(c"HAKMEM_CACHE_CAP", 0, 4096, "not between 0 and 4096") {
        if crate::secure::on() {
            crate::diag::bad_setting(c"HAKMEM_CACHE_CAP", "the secure mode keeps no cache");
        } else {
            for c in 0..NUM_CLASSES {
                POLICY.set_cache_cap(c, n);
            }
        }
    }
    // Checked now so that a bad value is reported once, at start-up (the
    // policy itself is read where a foreign pointer shows up).
    let _ = crate::diag::foreign_policy();
    crate::background::read_env();
    if flag(c"HAKMEM_VERBOSE") == Some(true) {
        print_settings();
    }
    STATE.store(2, Release);
}

/// `hakmem::options::set_secure` before the configuration is read: it
/// wins over `HAKMEM_SECURE` (`HakMemSecure` still turns the mode on).
static SECURE_CHOICE: AtomicU8 = AtomicU8::new(0);
const CHOSEN_ON: u8 = 1;
const CHOSEN_OFF: u8 = 2;
/// `HAKMEM_THP_MIN` as applied (the backend has no getter).
static THP_MIN: AtomicUsize = AtomicUsize::new(hakmem_superslab_backend::HUGE_MIN_DEFAULT);
/// The exit report's sink is open and its `atexit` hook registered.
static ARMED: AtomicBool = AtomicBool::new(false);
/// `hakmem::options::set_foreign_free`: 0 = the environment decides, else
/// 1 + the policy.
static FOREIGN: AtomicU8 = AtomicU8::new(0);
/// `HAKMEM_FOREIGN_FREE`'s bad value was reported already.
static FOREIGN_REPORTED: AtomicBool = AtomicBool::new(false);

/// With a report asked for (`HAKMEM_STATS` or `hakmem::options::
/// set_stats`), opens its sink and registers the exit hook, once.
fn arm_report() {
    if STATS_MODE.load(Relaxed) == 0 || ARMED.swap(true, AcqRel) {
        return;
    }
    // Where the report will go (HAKMEM_STATS_FILE, or a duplicate of
    // stderr), taken now: the program may close stderr first.
    crate::stats::open_report_sink();
    // SAFETY: registers a plain `extern "C"` function that lives for the
    // process. atexit may allocate after its first 32 entries; this thread
    // is registered already (or outside any allocator call, from the
    // options API), so that nested call works.
    unsafe { libc::atexit(report_hook) };
}

// ---------------------------------------------------------------------------
// What `hakmem::options` changes.
// ---------------------------------------------------------------------------

/// Chooses the secure mode before the configuration is read. False when
/// it is being read or was read already (the mode is fixed then).
pub(crate) fn choose_secure_before_init(on: bool) -> bool {
    if STATE.load(Acquire) != 0 {
        return false;
    }
    SECURE_CHOICE.store(if on { CHOSEN_ON } else { CHOSEN_OFF }, Release);
    true
}

/// The stats mode from Rust (0 off, 1 table, 2 JSON).
pub(crate) fn set_stats_mode(mode: u8) {
    init();
    STATS_MODE.store(mode, Relaxed);
    arm_report();
}

/// The stats mode in force (0 off, 1 table, 2 JSON).
pub(crate) fn stats_mode() -> u8 {
    STATS_MODE.load(Relaxed)
}

/// The foreign-free policy chosen from Rust (`None`: the environment's).
pub(crate) fn foreign_override() -> Option<crate::diag::ForeignPolicy> {
    use crate::diag::ForeignPolicy::*;
    match FOREIGN.load(Relaxed) {
        1 => Some(Abort),
        2 => Some(Ignore),
        3 => Some(Forward),
        _ => None,
    }
}

pub(crate) fn set_foreign_override(p: crate::diag::ForeignPolicy) {
    use crate::diag::ForeignPolicy::*;
    let v = match p {
        Abort => 1,
        Ignore => 2,
        Forward => 3,
    };
    FOREIGN.store(v, Relaxed);
}

/// True the first time a bad `HAKMEM_FOREIGN_FREE` is seen (it is then
/// reported; later readings use the default silently).
pub(crate) fn first_foreign_report() -> bool {
    !FOREIGN_REPORTED.swap(true, Relaxed)
}

// ---------------------------------------------------------------------------
// HAKMEM_VERBOSE=1: the settings in force, without allocating.
// ---------------------------------------------------------------------------

/// One stderr line assembled on the stack (what does not fit is dropped).
struct Line {
    buf: [u8; 160],
    len: usize,
}

impl core::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &b in s.as_bytes() {
            if self.len < self.buf.len() - 1 {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
        Ok(())
    }
}

/// Writes `hakmem: setting NAME=value\n` to stderr.
fn setting(name: &str, value: core::fmt::Arguments<'_>) {
    use core::fmt::Write;
    let mut l = Line {
        buf: [0; 160],
        len: 0,
    };
    let _ = write!(l, "hakmem: setting {name}={value}");
    l.buf[l.len] = b'\n';
    l.len += 1;
    // SAFETY: our own stack buffer to fd 2; a short write only loses part
    // of the line.
    unsafe { libc::write(2, l.buf.as_ptr() as *const libc::c_void, l.len) };
}

/// Prints every setting in force, one line each (`HAKMEM_VERBOSE=1`).
fn print_settings() {
    let on_off = |b: bool| if b { "on" } else { "off" };
    setting(
        "HAKMEM_SECURE",
        format_args!("{}", on_off(crate::secure::on())),
    );
    let stats = ["off", "table", "json"][STATS_MODE.load(Relaxed).min(2) as usize];
    setting("HAKMEM_STATS", format_args!("{stats}"));
    if STATS_MODE.load(Relaxed) != 0 {
        match var(c"HAKMEM_STATS_FILE") {
            Some(p) if !p.is_empty() => setting(
                "HAKMEM_STATS_FILE",
                format_args!("{}", core::str::from_utf8(p).unwrap_or("(not UTF-8)")),
            ),
            _ => setting("HAKMEM_STATS_FILE", format_args!("(stderr)")),
        }
    }
    let foreign = match crate::diag::foreign_policy() {
        crate::diag::ForeignPolicy::Abort => "abort",
        crate::diag::ForeignPolicy::Ignore => "ignore",
        crate::diag::ForeignPolicy::Forward => "forward",
    };
    setting("HAKMEM_FOREIGN_FREE", format_args!("{foreign}"));
    setting(
        "HAKMEM_DECAY_MS",
        format_args!("{}", hakmem_superslab_backend::decay_ms()),
    );
    setting(
        "HAKMEM_SPAN_THRESHOLD",
        format_args!("{}", hakmem_ptr_bridge::span_threshold()),
    );
    setting(
        "HAKMEM_NODES",
        format_args!("{}", hakmem_superslab_backend::node_spread()),
    );
    setting("HAKMEM_THP_MIN", format_args!("{}", THP_MIN.load(Relaxed)));
    // The smallest class's values stand for "every class" when the variable
    // is set; otherwise each class has its own default.
    match var(c"HAKMEM_REFILL").and_then(parse_u32) {
        Some(_) => setting("HAKMEM_REFILL", format_args!("{}", POLICY.refill_count(0))),
        None => setting("HAKMEM_REFILL", format_args!("(per-class default)")),
    }
    match var(c"HAKMEM_CACHE_CAP").and_then(parse_u32) {
        Some(_) => setting("HAKMEM_CACHE_CAP", format_args!("{}", POLICY.cache_cap(0))),
        None if crate::secure::on() => setting("HAKMEM_CACHE_CAP", format_args!("0 (secure)")),
        None => setting("HAKMEM_CACHE_CAP", format_args!("(per-class default)")),
    }
    setting(
        "HAKMEM_BACKGROUND",
        format_args!("{}", on_off(crate::background::wanted())),
    );
    match crate::background::interval_setting() {
        0 => setting(
            "HAKMEM_BACKGROUND_MS",
            format_args!(
                "(half the decay delay: {})",
                crate::background::interval_ms()
            ),
        ),
        n => setting("HAKMEM_BACKGROUND_MS", format_args!("{n}")),
    }
    let ace = var(c"HAKMEM_ACE").is_some_and(truthy);
    setting("HAKMEM_ACE", format_args!("{}", on_off(ace)));
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
