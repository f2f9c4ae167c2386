//! Configuration from `HAKMEM_*` environment variables, read once with
//! `getenv` (which does not allocate, see [`crate::env`]) on the first slow
//! path, and applied to every box; the `HAKMEM_STATS` exit report is armed
//! here. See `docs/ENV_VARS.md`.

use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize};

use hakmem_ace_learning::POLICY;
use hakmem_ptr_bridge::NUM_CLASSES;

use crate::env::{bad_setting, falsy, flag, number, number_in, parse_u32, truthy, var};
use crate::foreign::ForeignPolicy;
use crate::once::InitOnce;
use crate::sys::StackStr;

/// The one reading of the environment.
static READ: InitOnce = InitOnce::new();
/// 0 = no report, 1 = table, 2 = JSON (HAKMEM_STATS).
static STATS_MODE: AtomicU8 = AtomicU8::new(0);
static REPORTED: AtomicBool = AtomicBool::new(false);

/// Reads the environment once (later calls return at once). A call nested
/// in the reading itself (the `atexit` below may allocate) returns at once
/// too: the settings read so far, the mode first, are in force.
#[inline]
pub(crate) fn init() {
    if !READ.is_done() {
        read_once();
    }
}

/// The first reading of [`init`], out of line: the slow paths that call
/// `init` on every miss (the secure mode's, for one) should pay one load
/// and a branch, not this call's frame.
#[cold]
#[inline(never)]
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
fn read_once() {
    READ.call(read);
}

/// The reading itself, run once by [`init`].
fn read() {
    if !hakmem_superslab_backend::os::check_page_size() {
        crate::diag::unsupported("the page size is above 64 KiB, which hakmem's slab layout does not support (see docs/platforms.md)");
    }
    crate::install_fork_handlers();
    // The secure mode first: it decides how every block is laid out.
    // (`hakmem::options::set_secure(false)` before this reading overrides
    // the variable.)
    let env_secure = flag(crate::env_name!("HAKMEM_SECURE")) == Some(true);
    match SECURE_CHOICE.load(Acquire) {
        CHOSEN_ON => crate::secure::enable(),
        CHOSEN_OFF => {}
        _ if env_secure => crate::secure::enable(),
        _ => {}
    }
    if crate::secure::requested() {
        crate::secure::enable();
    }
    if let Some(v) = var(crate::env_name!("HAKMEM_STATS")) {
        let mode = match v {
            b"json" | b"JSON" => 2,
            v if truthy(v) || v == b"table" => 1,
            v if falsy(v) => 0,
            _ => {
                bad_setting(crate::env_name!("HAKMEM_STATS"), "not 1, table or json");
                0
            }
        };
        STATS_MODE.store(mode, Relaxed);
    }
    arm_report();
    if let Some(n) = number_in(
        crate::env_name!("HAKMEM_SPAN_THRESHOLD"),
        hakmem_ptr_bridge::TINY_MAX as u32,
        hakmem_ptr_bridge::MAX_SPAN_THRESHOLD as u32,
        "not between 1024 and 65536",
    ) {
        hakmem_ptr_bridge::set_span_threshold(n as usize);
    }
    if let Some(n) = number_in(
        crate::env_name!("HAKMEM_NODES"),
        1,
        hakmem_superslab_backend::NODES as u32,
        "not 1 or 2",
    ) {
        hakmem_superslab_backend::set_node_spread(n as usize);
    }
    if let Some(n) = number(crate::env_name!("HAKMEM_DECAY_MS")) {
        hakmem_superslab_backend::set_decay_ms(n);
    }
    if let Some(n) = number(crate::env_name!("HAKMEM_THP_MIN")) {
        hakmem_superslab_backend::set_huge_min(n as usize);
        THP_MIN.store(n as usize, Relaxed);
    }
    if let Some(n) = number_in(
        crate::env_name!("HAKMEM_REFILL"),
        1,
        1024,
        "not between 1 and 1024",
    ) {
        for c in 0..NUM_CLASSES {
            POLICY.set_refill_count(c, n);
        }
    }
    if let Some(n) = number_in(
        crate::env_name!("HAKMEM_CACHE_CAP"),
        0,
        4096,
        "not between 0 and 4096",
    ) {
        if crate::secure::on() {
            bad_setting(
                crate::env_name!("HAKMEM_CACHE_CAP"),
                "the secure mode keeps no cache",
            );
        } else {
            for c in 0..NUM_CLASSES {
                POLICY.set_cache_cap(c, n);
            }
            // A cap set by hand is a bound: the slow start leaves it.
            hakmem_refill_engine::set_growth(false);
        }
    }
    // Checked now so that a bad value is reported once, at start-up (the
    // policy itself is read where a foreign pointer shows up).
    let _ = crate::foreign::policy();
    crate::background::read_env();
    if flag(crate::env_name!("HAKMEM_VERBOSE")) == Some(true) {
        print_settings();
    }
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
    if READ.is_started() {
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

// ---------------------------------------------------------------------------
// HAKMEM_VERBOSE=1: the settings in force, without allocating.
// ---------------------------------------------------------------------------

/// Writes `hakmem: setting NAME=value\n` to stderr.
fn setting(name: &str, value: core::fmt::Arguments<'_>) {
    use core::fmt::Write;
    let mut l = StackStr::<159>::new();
    let _ = write!(l, "hakmem: setting {name}={value}");
    crate::sys::write_stderr(l.as_bytes());
    crate::sys::write_stderr(b"\n");
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
        match var(crate::env_name!("HAKMEM_STATS_FILE")) {
            Some(p) if !p.is_empty() => setting(
                "HAKMEM_STATS_FILE",
                format_args!("{}", core::str::from_utf8(p).unwrap_or("(not UTF-8)")),
            ),
            _ => setting("HAKMEM_STATS_FILE", format_args!("(stderr)")),
        }
    }
    let foreign = match crate::foreign::policy() {
        ForeignPolicy::Abort => "abort",
        ForeignPolicy::Ignore => "ignore",
        ForeignPolicy::Forward => "forward",
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
    match var(crate::env_name!("HAKMEM_REFILL")).and_then(parse_u32) {
        Some(_) => setting("HAKMEM_REFILL", format_args!("{}", POLICY.refill_count(0))),
        None => setting("HAKMEM_REFILL", format_args!("(per-class default)")),
    }
    match var(crate::env_name!("HAKMEM_CACHE_CAP")).and_then(parse_u32) {
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
    let ace = var(crate::env_name!("HAKMEM_ACE")).is_some_and(truthy);
    setting("HAKMEM_ACE", format_args!("{}", on_off(ace)));
}

extern "C" fn report_hook() {
    report_at_exit();
}

/// True once the environment has been read (the mode can no longer change).
pub(crate) fn done() -> bool {
    READ.is_done()
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
