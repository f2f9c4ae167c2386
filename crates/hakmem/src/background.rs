//! Background purge: memory that is due for release on the decay schedule
//! goes back to the OS while the process makes no allocator call. Opt-in
//! (`HAKMEM_BACKGROUND=1`, or [`start`]). See `docs/background.md`.
//!
//! Without it, released memory is returned by the slow paths of the
//! allocator itself (every 32nd slow-path event runs the rate-limited
//! decay): a process that frees a lot and then stops calling the
//! allocator keeps that memory resident. With it, a thread wakes every
//! [`interval_ms`] (half the decay delay unless `HAKMEM_BACKGROUND_MS` or
//! [`set_interval_ms`] says otherwise) and runs one [`purge step`]:
//!
//! 1. `hakmem_refill_engine::sweep_empty()`: ownerless slabs whose blocks
//!    have all been freed (by other threads) are released to the backend,
//!    stamped with the time; they are due one decay delay later.
//! 2. `hakmem_superslab_backend::decay(false)`: the pages of slabs
//!    released at least one decay delay ago are discarded
//!    (`MADV_DONTNEED`), superslabs empty for that long are unmapped, and
//!    so are spans cached for that long. Only what is due: this is not a
//!    trim (`decay(true)`), and it is rate-limited like the slow paths'.
//!
//! Both touch only what the backend and the remote-queue reclaim lists
//! own; no thread cache, no thread's slabs. Neither allocates.
//!
//! **Where it starts.** Spawning a thread allocates, so it never happens
//! inside `malloc`/`free`. The safe points are: [`start`] and
//! [`start_from_env`], every function of [`crate::options`], and
//! [`crate::ace::start`]/[`crate::ace::stop`]. `libhakmem.so` calls
//! [`start_from_env`] from its constructor. A Rust program whose only
//! request is `HAKMEM_BACKGROUND=1` gets the purge at its first call of one
//! of these (`hakmem::background::start_from_env()` at the top of `main`
//! is the usual one).
//!
//! **With ACE.** While the learning worker runs, it does the purge on its
//! own tick ([`ace_tick`]) and no purge thread exists: [`start`] spawns
//! none, and a purge thread that was running is stopped when the worker
//! starts and started again when it stops.
//!
//! **After fork.** The child has no purge thread: [`after_fork_child`]
//! (called by [`crate::fork_child`], the atfork child handler) marks it
//! stopped; it starts again at the child's next safe point, since the
//! purge is still wanted there.
//!
//! [`purge step`]: purge_step

use core::cell::UnsafeCell;
use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::options::OptionError;
use crate::sys::now_ms;

/// Shortest and longest purge interval, ms (`HAKMEM_BACKGROUND_MS`).
pub const MIN_INTERVAL_MS: u32 = 1;
/// See [`MIN_INTERVAL_MS`].
pub const MAX_INTERVAL_MS: u32 = 60_000;
/// The automatic interval (half the decay delay) is never below this.
const MIN_AUTO_MS: u32 = 10;

/// The purge is wanted (the environment at a safe point, [`start`], or
/// `options::set_background(true)`); survives `fork`.
static WANTED: AtomicBool = AtomicBool::new(false);
/// `HAKMEM_BACKGROUND` said on (read with the configuration).
static ENV_ON: AtomicBool = AtomicBool::new(false);
/// Purge interval, ms; 0 = half the decay delay.
static INTERVAL: AtomicU32 = AtomicU32::new(0);
/// Set by the `atexit` path of ACE: no thread is (re)started any more.
static EXITING: AtomicBool = AtomicBool::new(false);

const STOPPED: u8 = 0;
const STARTING: u8 = 1;
const RUNNING: u8 = 2;
const STOPPING: u8 = 3;

/// The purge thread's life cycle.
static STATE: AtomicU8 = AtomicU8::new(STOPPED);
static STOP: AtomicBool = AtomicBool::new(false);
static RESTART_PENDING: AtomicBool = AtomicBool::new(false);

/// The purge thread's handle. Touched only by the thread that moved
/// [`STATE`] out of STOPPED (in [`spawn_thread`]) or out of RUNNING (in
/// [`stop_thread`]), so never by two threads at once; and by the atfork
/// child handler, when no other thread exists.
struct Slot(UnsafeCell<Option<JoinHandle<()>>>);

// SAFETY: access is serialised by the STATE transitions described above.
unsafe impl Sync for Slot {}

static SLOT: Slot = Slot(UnsafeCell::new(None));

// What the purge publishes for [`state`].
static PURGES: AtomicU64 = AtomicU64::new(0);
static PURGED_BYTES: AtomicU64 = AtomicU64::new(0);
static SWEPT_SLABS: AtomicU64 = AtomicU64::new(0);
/// When the last purge step ran ([`crate::sys::now_ms`]), for [`ace_tick`].
static LAST_PURGE_MS: AtomicU64 = AtomicU64::new(0);

/// A snapshot of the background purge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackgroundState {
    /// The purge is on (a thread does it, or the ACE worker does).
    pub enabled: bool,
    /// A dedicated purge thread (`hakmem-purge`) runs.
    pub thread_running: bool,
    /// The ACE worker does the purge on its tick.
    pub by_ace: bool,
    /// The interval in force, ms.
    pub interval_ms: u32,
    /// Purge steps run.
    pub purges: u64,
    /// Bytes the purge steps gave back to the OS.
    pub purged_bytes: u64,
    /// Ownerless empty slabs the purge steps released to the backend.
    pub swept_slabs: u64,
    /// In a forked child whose parent ran the purge, until it starts again.
    pub restart_pending: bool,
}

/// Reads `HAKMEM_BACKGROUND` and `HAKMEM_BACKGROUND_MS` (with the rest of
/// the configuration; a bad value is reported once and the default used).
pub(crate) fn read_env() {
    if crate::env::flag(crate::env_name!("HAKMEM_BACKGROUND")) == Some(true) {
        ENV_ON.store(true, Relaxed);
    }
    if let Some(n) = crate::env::number_in(
        crate::env_name!("HAKMEM_BACKGROUND_MS"),
        MIN_INTERVAL_MS,
        MAX_INTERVAL_MS,
        "not between 1 and 60000",
    ) {
        // An interval chosen from Rust first wins.
        let _ = INTERVAL.compare_exchange(0, n, Relaxed, Relaxed);
    }
}

/// Whether the purge is wanted (or `HAKMEM_BACKGROUND` asks for it).
pub(crate) fn wanted() -> bool {
    WANTED.load(Relaxed) || ENV_ON.load(Relaxed)
}

/// The interval as set (0: half the decay delay).
pub(crate) fn interval_setting() -> u32 {
    INTERVAL.load(Relaxed)
}

/// The purge interval in force, ms: `HAKMEM_BACKGROUND_MS` or
/// [`set_interval_ms`], else half the decay delay (at least 10 ms, at most
/// 60 s). Read again at every wake-up, so a new decay delay (from the
/// options API or the ACE worker) takes effect at the next one.
pub fn interval_ms() -> u32 {
    match INTERVAL.load(Relaxed) {
        0 => (hakmem_superslab_backend::decay_ms() / 2).clamp(MIN_AUTO_MS, MAX_INTERVAL_MS),
        n => n,
    }
}

/// Sets the purge interval, ms (`MIN_INTERVAL_MS..=MAX_INTERVAL_MS`; 0 =
/// half the decay delay, the default). A running purge thread uses it from
/// its next sleep (after the one in progress).
pub fn set_interval_ms(ms: u32) -> Result<(), OptionError> {
    if ms != 0 && !(MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&ms) {
        return Err(OptionError::OutOfRange {
            min: MIN_INTERVAL_MS,
            max: MAX_INTERVAL_MS,
        });
    }
    crate::config::init();
    INTERVAL.store(ms, Relaxed);
    Ok(())
}

/// Starts the background purge: a thread named `hakmem-purge`, or nothing
/// more while the ACE worker runs (it purges on its tick). `Ok` when the
/// purge is on afterwards (also when it already was). Call it outside any
/// allocation call — from `main` or a library constructor, never from a
/// `GlobalAlloc` method. `Err(OptionError::Spawn)` when the thread could
/// not be created (the purge is then off).
pub fn start() -> Result<(), OptionError> {
    crate::config::init();
    WANTED.store(true, Relaxed);
    if spawn_thread() {
        Ok(())
    } else {
        WANTED.store(false, Relaxed);
        Err(OptionError::Spawn)
    }
}

/// Starts the purge when `HAKMEM_BACKGROUND` is `1`/`yes`/`true`/`on`
/// (for `libhakmem.so`'s constructor, and programs that want the
/// environment to decide), and restarts it after a fork if it ran in the
/// parent. Returns whether the purge is on.
pub fn start_from_env() -> bool {
    crate::config::init();
    if ENV_ON.load(Relaxed) {
        WANTED.store(true, Relaxed);
    }
    ensure();
    is_enabled()
}

/// Stops the background purge (joins the purge thread; while the ACE
/// worker runs, its tick stops purging). Returns whether it was on.
pub fn stop() -> bool {
    let was = WANTED.swap(false, Relaxed);
    // The environment's request is answered: it does not come back at the
    // next safe point.
    ENV_ON.store(false, Relaxed);
    stop_thread();
    RESTART_PENDING.store(false, Relaxed);
    was
}

/// Whether the purge is on (a thread or the ACE worker does it).
pub fn is_enabled() -> bool {
    WANTED.load(Relaxed) && (STATE.load(Acquire) == RUNNING || crate::ace::is_running())
}

/// A snapshot of the purge (allocation-free).
pub fn state() -> BackgroundState {
    let thread_running = STATE.load(Acquire) == RUNNING;
    let wanted = WANTED.load(Relaxed);
    let by_ace = wanted && crate::ace::is_running();
    BackgroundState {
        enabled: wanted && (thread_running || by_ace),
        thread_running,
        by_ace,
        interval_ms: interval_ms(),
        purges: PURGES.load(Relaxed),
        purged_bytes: PURGED_BYTES.load(Relaxed),
        swept_slabs: SWEPT_SLABS.load(Relaxed),
        restart_pending: RESTART_PENDING.load(Relaxed),
    }
}

/// One purge step: ownerless empty slabs back to the backend, then what is
/// due on the decay schedule back to the OS. Returns the bytes given back.
/// Allocation-free; touches no thread cache.
pub fn purge_step() -> usize {
    LAST_PURGE_MS.store(now_ms(), Relaxed);
    let swept = hakmem_refill_engine::sweep_empty();
    let freed = hakmem_superslab_backend::decay(false);
    PURGES.fetch_add(1, Relaxed);
    PURGED_BYTES.fetch_add(freed as u64, Relaxed);
    SWEPT_SLABS.fetch_add(swept as u64, Relaxed);
    freed
}

/// The safe points' check: starts the purge thread when the purge is
/// wanted and neither a thread nor the ACE worker does it (the first safe
/// point with `HAKMEM_BACKGROUND=1`, or the first one in a forked child).
pub(crate) fn ensure() {
    if !WANTED.load(Relaxed) && ENV_ON.load(Relaxed) {
        WANTED.store(true, Relaxed);
    }
    if WANTED.load(Relaxed) && STATE.load(Acquire) == STOPPED {
        spawn_thread();
    }
}

/// The ACE worker's tick: runs a purge step when the purge is on and the
/// interval has passed since the last one. Called only by the worker.
pub(crate) fn ace_tick() {
    if !WANTED.load(Relaxed) {
        return;
    }
    let now = now_ms();
    if now.saturating_sub(LAST_PURGE_MS.load(Relaxed)) >= interval_ms() as u64 {
        purge_step();
    }
}

/// The ACE worker has started: one thread does both jobs, so the purge
/// thread (if any) stops. Called by [`crate::ace::start_with`].
pub(crate) fn ace_started() {
    stop_thread();
}

/// The ACE worker has stopped: the purge thread comes back if the purge is
/// wanted. Called by [`crate::ace::stop`] (not at exit).
pub(crate) fn ace_stopped() {
    if !EXITING.load(Relaxed) {
        ensure();
    }
}

/// The process is exiting (ACE's `atexit` hook): no thread is started from
/// now on.
pub(crate) fn exiting() {
    EXITING.store(true, Relaxed);
}

/// The `pthread_atfork` child handler's part for the purge: the thread was
/// not copied into the child, so it is marked stopped (its handle is
/// forgotten, not dropped); the purge stays wanted, and the next safe point
/// in the child starts a new thread. Only atomic stores: safe in a forked
/// child.
pub fn after_fork_child() {
    let was = STATE.swap(STOPPED, AcqRel);
    if was != STOPPED {
        RESTART_PENDING.store(true, Relaxed);
    }
    // SAFETY: in the child only the forking thread exists; the purge thread
    // (and any thread in spawn_thread/stop_thread) was not copied, so the
    // handle refers to nothing here: forget it without dropping it.
    unsafe {
        let slot = &mut *SLOT.0.get();
        if let Some(h) = slot.take() {
            core::mem::forget(h);
        }
    }
    STOP.store(false, Relaxed);
}

/// Spawns the purge thread unless one runs, the ACE worker does the job,
/// or the process is exiting. False only when spawning failed.
#[cold]
#[inline(never)]
fn spawn_thread() -> bool {
    if crate::ace::is_running() || EXITING.load(Relaxed) {
        return true;
    }
    if STATE
        .compare_exchange(STOPPED, STARTING, AcqRel, Acquire)
        .is_err()
    {
        // Running, or being started or stopped by another thread.
        return true;
    }
    STOP.store(false, Release);
    // The child of a fork must learn that it has no purge thread even when
    // no lock was taken since the thread started.
    crate::register_fork_handlers_now();
    let spawned = std::thread::Builder::new()
        .name("hakmem-purge".into())
        .spawn(run);
    match spawned {
        Ok(h) => {
            // SAFETY: we moved STATE out of STOPPED; nobody else touches
            // the slot until STATE says RUNNING.
            unsafe { *SLOT.0.get() = Some(h) };
            RESTART_PENDING.store(false, Relaxed);
            STATE.store(RUNNING, Release);
            true
        }
        Err(e) => {
            eprintln!("hakmem: cannot start the background purge thread: {e}");
            STATE.store(STOPPED, Release);
            false
        }
    }
}

/// Stops and joins the purge thread, if one runs.
fn stop_thread() {
    loop {
        match STATE.compare_exchange(RUNNING, STOPPING, AcqRel, Acquire) {
            Ok(_) => break,
            Err(STARTING) | Err(STOPPING) => std::thread::yield_now(),
            Err(_) => return,
        }
    }
    // SAFETY: we moved STATE out of RUNNING; the slot is ours.
    let h = unsafe { (*SLOT.0.get()).take() };
    if let Some(h) = h {
        STOP.store(true, Release);
        h.thread().unpark();
        if h.join().is_err() {
            eprintln!("hakmem: the background purge thread panicked");
        }
    }
    STOP.store(false, Release);
    STATE.store(STOPPED, Release);
}

/// The purge thread: sleep an interval, purge, again; nothing here
/// allocates. While the ACE worker runs, the thread is stopped by
/// [`ace_started`]; in the short window before that, it leaves the work to
/// the worker.
fn run() {
    loop {
        let interval = Duration::from_millis(interval_ms() as u64);
        let slept = Instant::now();
        // The whole interval (a spurious unpark does not shorten it);
        // `stop_thread` unparks after setting STOP.
        while slept.elapsed() < interval && !STOP.load(Acquire) {
            std::thread::park_timeout(interval.saturating_sub(slept.elapsed()));
        }
        if STOP.load(Acquire) {
            return;
        }
        if !crate::ace::is_running() {
            purge_step();
        }
    }
}
