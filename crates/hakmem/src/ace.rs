//! ACE, the learning layer's background worker: observe → decide → apply,
//! off the hot path. See `docs/ace.md`.
//!
//! - **Observe.** While the worker runs, `hakmem_ace_learning::POLICY` has
//!   observation on and the slow paths (refill, flush, slab traffic, span
//!   map and unmap) copy a 12-byte [`Event`] into the pre-allocated ring
//!   `hakmem_ace_learning::EVENTS`. The hot path never sees any of it.
//! - **Decide.** Every tick (25 ms by default) the worker drains the ring
//!   into its [`Learner`] and runs the policies: per-class UCB1 bandits over
//!   (refill count, cache cap), Elo-rated strategies for the decay delay
//!   and for the pool/span threshold (LEARN → CANARY → FROZEN),
//!   workload-shift and idle detection.
//! - **Apply.** The learner holds the policy table's one
//!   [`PolicyWriter`](hakmem_ace_learning::PolicyWriter): it writes the next
//!   refill count and cache cap of a class (read by the refill engine at
//!   the next refill of that class) and the decay-delay and threshold
//!   knobs, which this module hands to the backend and to
//!   [`crate::set_span_threshold`] (a route-table rewrite). The only other thing the worker does is
//!   [`crate::trim_idle`] when the process is idle, which touches no
//!   thread cache.
//!
//! The worker is an ordinary thread started by [`start`] — never from
//! inside an allocation call. Rust programs call [`start`] from `main`
//! (or [`start_from_env`], which starts it only with `HAKMEM_ACE=1`);
//! `libhakmem.so` calls [`start_from_env`] from its constructor. After
//! `fork()` the child has no worker: [`after_fork_child`] (an atfork child
//! handler) marks it stopped, and [`start`] or [`start_from_env`] in the
//! child starts a new one.
//!
//! Environment (read by [`AceConfig::from_env`]): `HAKMEM_ACE`,
//! `HAKMEM_ACE_LOG`, `HAKMEM_ACE_PROFILE`, `HAKMEM_ACE_TICK_MS`,
//! `HAKMEM_ACE_IDLE_MS`, `HAKMEM_ACE_POLICIES` (see `docs/ace.md`).

use core::cell::UnsafeCell;
use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hakmem_ace_learning::profile::{self, PROFILE_LEN};
use hakmem_ace_learning::REGIME_NAMES;
use hakmem_ace_learning::{
    Change, Event, EventKind, Knob, Learner, LearnerConfig, Phase, PolicyWriter, Sample, EVENTS,
    POLICY,
};
use hakmem_ptr_bridge::{CLASS_SIZE, NUM_CLASSES};

use crate::config::{flag, number, number_in, var};

/// Worker configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct AceConfig {
    /// Drain-and-decide period, ms (5..=1000).
    pub tick_ms: u32,
    /// Print every policy change to stderr.
    pub log: bool,
    /// Where the learned state is loaded from at start and saved at stop.
    pub profile: Option<PathBuf>,
    /// The policies' tuning.
    pub learner: LearnerConfig,
}

impl Default for AceConfig {
    fn default() -> Self {
        AceConfig {
            tick_ms: 25,
            log: false,
            profile: None,
            learner: LearnerConfig::DEFAULT,
        }
    }
}

impl AceConfig {
    /// The defaults, overridden by `HAKMEM_ACE_LOG`, `HAKMEM_ACE_PROFILE`,
    /// `HAKMEM_ACE_TICK_MS`, `HAKMEM_ACE_IDLE_MS` and `HAKMEM_ACE_POLICIES`
    /// (a comma-separated subset of `bandit,elo,span,idle,prefill`). A value
    /// that cannot be used is reported in one line
    /// (`hakmem: HAKMEM_ACE_TICK_MS=abc ignored (not a number)`) and the
    /// default kept (for `HAKMEM_ACE_POLICIES`, one unknown name makes
    /// the whole value ignored: every policy runs).
    pub fn from_env() -> Self {
        let mut c = AceConfig::default();
        if let Some(on) = flag(c"HAKMEM_ACE_LOG") {
            c.log = on;
        }
        if let Some(v) = var(c"HAKMEM_ACE_PROFILE") {
            if !v.is_empty() {
                use std::os::unix::ffi::OsStrExt;
                c.profile = Some(PathBuf::from(std::ffi::OsStr::from_bytes(v)));
            }
        }
        if let Some(n) = number_in(c"HAKMEM_ACE_TICK_MS", 5, 1000, "not between 5 and 1000") {
            c.tick_ms = n;
        }
        if let Some(n) = number(c"HAKMEM_ACE_IDLE_MS") {
            c.learner.idle_ms = n;
        }
        if let Some(v) = var(c"HAKMEM_ACE_POLICIES") {
            const NAMES: [&[u8]; 5] = [b"bandit", b"elo", b"span", b"idle", b"prefill"];
            if v.split(|&b| b == b',')
                .any(|p| !p.is_empty() && !NAMES.contains(&p))
            {
                crate::diag::bad_setting(
                    c"HAKMEM_ACE_POLICIES",
                    "unknown policy; known: bandit,elo,span,idle,prefill",
                );
            } else {
                let has = |name: &[u8]| v.split(|&b| b == b',').any(|p| p == name);
                c.learner.bandit = has(b"bandit");
                c.learner.elo = has(b"elo");
                c.learner.span = has(b"span");
                c.learner.idle = has(b"idle");
                c.learner.prefill = has(b"prefill");
            }
        }
        c
    }
}

// ---------------------------------------------------------------------------
// Worker life cycle.
// ---------------------------------------------------------------------------

const STOPPED: u8 = 0;
const STARTING: u8 = 1;
const RUNNING: u8 = 2;
const STOPPING: u8 = 3;

static STATE: AtomicU8 = AtomicU8::new(STOPPED);
static STOP: AtomicBool = AtomicBool::new(false);
static RESTART_PENDING: AtomicBool = AtomicBool::new(false);
static ATEXIT: AtomicBool = AtomicBool::new(false);

struct Worker {
    handle: JoinHandle<(Box<Learner>, PolicyWriter<'static>)>,
    cfg: AceConfig,
}

/// The running worker. Touched only by the thread that moved [`STATE`]
/// out of STOPPED (in [`start_with`]) or out of RUNNING (in [`stop`]), so
/// never by two threads at once.
struct Slot(UnsafeCell<Option<Worker>>);

// SAFETY: access is serialised by the STATE transitions described above.
unsafe impl Sync for Slot {}

static SLOT: Slot = Slot(UnsafeCell::new(None));

/// The policy in force when the worker was first started (for
/// [`reset_policy`]).
struct Base {
    saved: AtomicBool,
    refill: [AtomicU32; NUM_CLASSES],
    cap: [AtomicU32; NUM_CLASSES],
    decay_ms: AtomicU32,
    span_threshold: AtomicU32,
}

static BASE: Base = Base {
    saved: AtomicBool::new(false),
    refill: [const { AtomicU32::new(0) }; NUM_CLASSES],
    cap: [const { AtomicU32::new(0) }; NUM_CLASSES],
    decay_ms: AtomicU32::new(0),
    span_threshold: AtomicU32::new(0),
};

/// Starts the worker with [`AceConfig::from_env`]. Returns false when it
/// was already running (or being started or stopped by another thread).
/// Call it outside any allocation call — from `main`, or from a library
/// constructor; never from a `GlobalAlloc` method.
pub fn start() -> bool {
    start_with(AceConfig::from_env())
}

/// Starts the worker when `HAKMEM_ACE` is `1`/`yes`/`true`/`on`
/// (learning is off by default). For `libhakmem.so`'s constructor and for
/// programs that want the environment to decide. Returns whether a worker
/// was started.
pub fn start_from_env() -> bool {
    if flag(c"HAKMEM_ACE") == Some(true) {
        start()
    } else {
        crate::config::init();
        crate::background::ensure();
        false
    }
}

/// Starts the worker with `cfg`. Returns false when it was already running
/// (or being started or stopped by another thread).
pub fn start_with(cfg: AceConfig) -> bool {
    crate::config::init();
    let started = start_worker(cfg);
    if started {
        // One thread does both jobs: the worker purges on its tick.
        crate::background::ace_started();
    }
    // A safe point: the background purge the environment asks for starts
    // here when the worker does not run.
    crate::background::ensure();
    started
}

fn start_worker(cfg: AceConfig) -> bool {
    if crate::secure::on() {
        // The secure mode keeps no thread cache: nothing for the learner
        // to tune, and its caps must stay 0.
        return false;
    }
    if STATE
        .compare_exchange(STOPPED, STARTING, AcqRel, Acquire)
        .is_err()
    {
        return false;
    }
    // Register this thread and read the HAKMEM_* configuration now, so
    // that the base policy below is the configured one.
    // SAFETY: a fresh 16-byte block is freed at once.
    unsafe { crate::free(crate::malloc(16)) };
    let Some(w) = POLICY.writer() else {
        // Someone else (a test) holds the table's writer.
        STATE.store(STOPPED, Release);
        return false;
    };
    if !BASE.saved.swap(true, AcqRel) {
        for c in 0..NUM_CLASSES {
            BASE.refill[c].store(POLICY.refill_count(c), Relaxed);
            BASE.cap[c].store(POLICY.cache_cap(c), Relaxed);
        }
        BASE.decay_ms
            .store(hakmem_superslab_backend::decay_ms(), Relaxed);
        BASE.span_threshold
            .store(crate::span_threshold() as u32, Relaxed);
    }
    // Arm 0 of every bandit is the start-up policy, even if an earlier
    // worker left a learned one in the table.
    let base = hakmem_ace_learning::PolicyTable::new();
    for c in 0..NUM_CLASSES {
        base.set_refill_count(c, BASE.refill[c].load(Relaxed));
        base.set_cache_cap(c, BASE.cap[c].load(Relaxed));
    }
    let mut learner = Box::new(
        Learner::new(cfg.learner, &base, BASE.decay_ms.load(Relaxed), now_ms())
            .with_span_threshold(BASE.span_threshold.load(Relaxed)),
    );
    PROFILE_LOADED.store(false, Relaxed);
    if let Some(path) = &cfg.profile {
        load_profile(path, &mut learner, &w, cfg.log);
    }
    // Events from before this start describe another run: discard them.
    while EVENTS.pop().is_some() {}
    STOP.store(false, Release);
    // Start sampled (1 in 16): the first tick measures the real rate and
    // lowers the shift if the slow paths are quiet.
    w.set_auto_sampling(true);
    w.set_sample_shift(INITIAL_SAMPLE_SHIFT);
    POLICY.set_observing(true);
    publish_state(&learner);
    let wcfg = cfg.clone();
    let spawned = std::thread::Builder::new()
        .name("hakmem-ace".into())
        .spawn(move || worker(wcfg, learner, w));
    match spawned {
        Ok(handle) => {
            NEEDS_JOIN_AT_EXIT.store(cfg.profile.is_some() || cfg.log, Relaxed);
            // SAFETY: we moved STATE out of STOPPED; nobody else touches
            // the slot until STATE says RUNNING.
            unsafe { *SLOT.0.get() = Some(Worker { handle, cfg }) };
            RESTART_PENDING.store(false, Relaxed);
            if !ATEXIT.swap(true, AcqRel) {
                // SAFETY: registers a plain `extern "C"` function that lives
                // for the process.
                unsafe { libc::atexit(ace_atexit) };
            }
            STATE.store(RUNNING, Release);
            true
        }
        Err(e) => {
            POLICY.set_observing(false);
            // The closure (and the writer in it) was dropped: take the
            // writer again to undo the sampling set above.
            if let Some(w) = POLICY.writer() {
                w.set_auto_sampling(false);
                w.set_sample_shift(0);
            }
            eprintln!("hakmem ace: cannot start the worker thread: {e}");
            STATE.store(STOPPED, Release);
            false
        }
    }
}

/// Whether the running worker's final state is needed at process exit: a
/// profile to save or a log to finish (the `HAKMEM_STATS` report wants the
/// final counters too, see [`ace_atexit`]).
static NEEDS_JOIN_AT_EXIT: AtomicBool = AtomicBool::new(false);

extern "C" fn ace_atexit() {
    // No background purge thread is started at exit.
    crate::background::exiting();
    if !NEEDS_JOIN_AT_EXIT.load(Relaxed)
        && crate::config::stats_mode() == 0
        && STATE.load(Acquire) == RUNNING
    {
        // Nothing needs the worker's final state: stop observing and tell
        // it to stop, but do not wait for it to be scheduled and joined —
        // the process exit ends the thread. (Measured with hakmem-bench
        // ace-real: the join cost a short program about 0.18 ms of wall
        // time, more under load; docs/ace.md.)
        POLICY.set_observing(false);
        STOP.store(true, Release);
        return;
    }
    stop();
}

/// Stops the worker: observation off, the ring drained, the learned state
/// saved to the profile (if one is configured). The learned policy stays
/// in force ([`reset_policy`] restores the start-up one). Returns false
/// when no worker was running.
pub fn stop() -> bool {
    loop {
        match STATE.compare_exchange(RUNNING, STOPPING, AcqRel, Acquire) {
            Ok(_) => break,
            Err(STARTING) | Err(STOPPING) => std::thread::yield_now(),
            Err(_) => return false,
        }
    }
    // SAFETY: we moved STATE out of RUNNING; the slot is ours.
    let worker = unsafe { (*SLOT.0.get()).take() };
    let Some(worker) = worker else {
        STATE.store(STOPPED, Release);
        return false;
    };
    STOP.store(true, Release);
    worker.handle.thread().unpark();
    match worker.handle.join() {
        Ok((learner, writer)) => {
            // A prefill budget is for the moment after an idle trim, not a
            // learned policy: it does not outlive the worker.
            writer.clear_prefill();
            if let Some(path) = &worker.cfg.profile {
                save_profile(path, &learner, worker.cfg.log);
            }
            publish_state(&learner);
            DECISIONS_BEFORE.store(DECISIONS.load(Relaxed), Relaxed);
            // `writer` is dropped here: the table's writer is free again.
        }
        Err(_) => eprintln!("hakmem ace: the worker thread panicked"),
    }
    RUNNING_FLAG.store(false, Relaxed);
    STATE.store(STOPPED, Release);
    // The background purge, if on, gets its own thread again.
    crate::background::ace_stopped();
    true
}

/// True while the worker runs.
pub fn is_running() -> bool {
    STATE.load(Acquire) == RUNNING
}

/// Restores the policy that was in force when the worker was first
/// started (refill counts, cache caps, decay delay, pool/span threshold).
/// Only while stopped;
/// returns false otherwise (or if the worker never ran).
pub fn reset_policy() -> bool {
    if STATE.load(Acquire) != STOPPED || !BASE.saved.load(Acquire) {
        return false;
    }
    let Some(w) = POLICY.writer() else {
        return false;
    };
    for c in 0..NUM_CLASSES {
        w.set_refill_count(c, BASE.refill[c].load(Relaxed));
        w.set_cache_cap(c, BASE.cap[c].load(Relaxed));
    }
    w.clear_prefill();
    w.set_knob(Knob::DecayMs, 0);
    w.set_knob(Knob::SpanThreshold, 0);
    hakmem_superslab_backend::set_decay_ms(BASE.decay_ms.load(Relaxed));
    crate::set_span_threshold(BASE.span_threshold.load(Relaxed) as usize);
    true
}

/// The `pthread_atfork` child handler's part for ACE: the worker thread
/// was not copied into the child, so mark it stopped (without touching
/// its join handle), turn observation off, release the policy writer it
/// held and reset the event ring (a thread of the parent may have been
/// half-way through a push or pop). Only atomic stores: safe in a forked
/// child. [`start`] or [`start_from_env`] may start a new worker later;
/// [`restart_pending`] says whether one was running before the fork.
pub fn after_fork_child() {
    POLICY.set_observing(false);
    let was = STATE.swap(STOPPED, AcqRel);
    if was != STOPPED {
        RESTART_PENDING.store(true, Relaxed);
    }
    // SAFETY: in the child only the forking thread exists; the worker
    // thread (and any thread in start/stop) was not copied, so the slot's
    // handle refers to nothing here: forget it without dropping (dropping
    // would detach a thread id of the parent).
    unsafe {
        let slot = &mut *SLOT.0.get();
        if let Some(w) = slot.take() {
            core::mem::forget(w);
        }
    }
    // SAFETY: the writer's holder (the worker) does not exist in the child.
    unsafe { POLICY.forget_writer_after_fork() };
    // SAFETY: no other thread exists in the child to push or pop.
    unsafe { EVENTS.reset_after_fork() };
    STOP.store(false, Relaxed);
    RUNNING_FLAG.store(false, Relaxed);
    DECISIONS_BEFORE.store(DECISIONS.load(Relaxed), Relaxed);
}

/// True in a forked child whose parent was running the worker, until a
/// worker is started again.
pub fn restart_pending() -> bool {
    RESTART_PENDING.load(Relaxed)
}

// ---------------------------------------------------------------------------
// The worker.
// ---------------------------------------------------------------------------

fn now_ms() -> u64 {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// Resident set size from `/proc/self/statm` (no allocation).
fn rss_bytes() -> u64 {
    // SAFETY: a NUL-terminated path; the fd is closed below.
    let fd = unsafe { libc::open(c"/proc/self/statm".as_ptr(), libc::O_RDONLY) };
    if fd < 0 {
        return 0;
    }
    let mut buf = [0u8; 128];
    // SAFETY: reading into our own buffer.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
    // SAFETY: our fd.
    unsafe { libc::close(fd) };
    if n <= 0 {
        return 0;
    }
    let s = &buf[..n as usize];
    let mut fields = s.split(|&b| b == b' ');
    let _size = fields.next();
    let pages = fields
        .next()
        .and_then(|f| core::str::from_utf8(f).ok())
        .and_then(|f| f.trim().parse::<u64>().ok())
        .unwrap_or(0);
    pages * hakmem_superslab_backend::page_size() as u64
}

fn minor_faults() -> u64 {
    // SAFETY: an all-zero rusage is valid; getrusage fills it.
    let mut ru: libc::rusage = unsafe { core::mem::zeroed() };
    // SAFETY: valid out-pointer.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } == 0 {
        ru.ru_minflt as u64
    } else {
        0
    }
}

fn thread_cpu_ns() -> u64 {
    // SAFETY: an all-zero timespec is valid; clock_gettime fills it.
    let mut ts: libc::timespec = unsafe { core::mem::zeroed() };
    // SAFETY: valid out-pointer.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0 {
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    } else {
        0
    }
}

/// Events per second the worker wants to see in the ring; above it the
/// slow paths sample (a power of two).
const SAMPLED_PER_S: f64 = 50_000.0;
/// Sampling shift the worker starts with.
const INITIAL_SAMPLE_SHIFT: u32 = 4;
/// Sampling never goes below one event in 4: a process that wakes up from
/// idleness at full speed then fills at most a quarter of the ring's
/// worth per tick at 650 000 slow-path events a second, before the
/// producers' own back-off and the next tick adapt.
const MIN_SAMPLE_SHIFT: u32 = 2;

// What the worker publishes for [`state`] and [`crate::stats`].
static SAMPLE_SHIFT: AtomicU8 = AtomicU8::new(0);
static RUNNING_FLAG: AtomicBool = AtomicBool::new(false);
static TICKS: AtomicU64 = AtomicU64::new(0);
static DRAINED: AtomicU64 = AtomicU64::new(0);
static DECISIONS: AtomicU64 = AtomicU64::new(0);
static SHIFTS: AtomicU64 = AtomicU64::new(0);
static TRIMS: AtomicU64 = AtomicU64::new(0);
static TRIMMED_BYTES: AtomicU64 = AtomicU64::new(0);
static WORKER_CPU_NS: AtomicU64 = AtomicU64::new(0);
static WORKER_WALL_MS: AtomicU64 = AtomicU64::new(0);
static DROP_WARNINGS: AtomicU64 = AtomicU64::new(0);
static DECAY_PHASE: AtomicU8 = AtomicU8::new(Phase::Learn as u8);
static DECAY_CONFIRMED: AtomicU32 = AtomicU32::new(0);
static SPAN_PHASE: AtomicU8 = AtomicU8::new(Phase::Learn as u8);
static SPAN_CONFIRMED: AtomicU32 = AtomicU32::new(0);
static REGIME: AtomicU8 = AtomicU8::new(0);
static CLASS_ARM: [AtomicU8; NUM_CLASSES] = [const { AtomicU8::new(0) }; NUM_CLASSES];
// Decisions of earlier workers (a restarted worker's learner counts from 0).
static DECISIONS_BEFORE: AtomicU64 = AtomicU64::new(0);

fn publish_state(l: &Learner) {
    DECISIONS.store(DECISIONS_BEFORE.load(Relaxed) + l.decisions(), Relaxed);
    SHIFTS.store(l.shifts(), Relaxed);
    TRIMS.store(l.trims(), Relaxed);
    DECAY_PHASE.store(l.decay().phase() as u8, Relaxed);
    DECAY_CONFIRMED.store(l.decay().value(l.decay().confirmed()), Relaxed);
    SPAN_PHASE.store(l.span().phase() as u8, Relaxed);
    SPAN_CONFIRMED.store(l.span().value(l.span().confirmed()), Relaxed);
    REGIME.store(l.regime() as u8, Relaxed);
    for c in 0..NUM_CLASSES {
        CLASS_ARM[c].store(l.class_arm(c) as u8, Relaxed);
    }
}

fn log_change(c: &Change) {
    match *c {
        Change::Class {
            class,
            refill,
            cap,
            arm,
            reward,
        } => eprintln!(
            "hakmem ace: class {class} ({} B): refill {} -> {}, cap {} -> {} (arm {arm}, last reward {reward:.3})",
            CLASS_SIZE[class], refill.0, refill.1, cap.0, cap.1
        ),
        Change::Knob {
            knob,
            value,
            phase,
            rating,
            regime,
        } => eprintln!(
            "hakmem ace: {} {} -> {} ({} regime, {}, rating {rating:.0})",
            knob.name(),
            value.0,
            value.1,
            REGIME_NAMES[regime],
            phase.name()
        ),
        Change::Phase {
            knob,
            transition,
            confirmed_value,
            regime,
        } => eprintln!(
            "hakmem ace: {} ({} regime) {} -> {} (confirmed {confirmed_value})",
            knob.name(),
            REGIME_NAMES[regime],
            transition.from.name(),
            transition.to.name()
        ),
        Change::Shift {
            l1,
            rate_log2,
            regime,
            phase,
        } => eprintln!(
            "hakmem ace: workload shift (mix distance {l1:.2}, rate change 2^{rate_log2:.1}): {} regime, {}",
            REGIME_NAMES[regime],
            phase.name()
        ),
        Change::Idle { quiet_ms } => {
            eprintln!("hakmem ace: idle for {quiet_ms} ms: trimming")
        }
        Change::Prefill { classes, blocks: 0 } => {
            eprintln!("hakmem ace: prefill budget cleared ({classes} classes)")
        }
        Change::Prefill { classes, blocks } => eprintln!(
            "hakmem ace: prefill budget for the next refills: {classes} classes, {blocks} blocks in all"
        ),
    }
}

fn worker(
    cfg: AceConfig,
    mut learner: Box<Learner>,
    w: PolicyWriter<'static>,
) -> (Box<Learner>, PolicyWriter<'static>) {
    RUNNING_FLAG.store(true, Relaxed);
    let started = now_ms();
    let cpu0 = thread_cpu_ns();
    let tick = Duration::from_millis(cfg.tick_ms.clamp(5, 1000) as u64);
    let cap = EVENTS.capacity();
    // A short first sleep: the ring may be filling fast before sampling
    // has adapted to the event rate.
    let mut sleep = Duration::from_millis(5);
    let mut last_tick = started;
    let mut last_offered = EVENTS.pushed() + EVENTS.dropped();
    let mut rate_ema = 0.0f64;
    let mut window_pushed = EVENTS.pushed();
    let mut window_dropped = EVENTS.dropped();
    let mut window_start = started;
    let mut last_warning: Option<u64> = None;
    let mut decay_applied = hakmem_superslab_backend::decay_ms();
    loop {
        std::thread::park_timeout(sleep);
        if STOP.load(Acquire) {
            break;
        }
        // Observe: drain what the slow paths pushed (bounded, so that a
        // flood cannot keep the worker here). With sampling on, each event
        // stands for 2^shift of them.
        let shift = w.table().sample_shift();
        let n = EVENTS.drain(2 * cap, |ev| learner.record_weighted(&ev, 1 << shift));
        DRAINED.fetch_add(n as u64, Relaxed);
        let now = now_ms();
        // Adapt the sampling so that about SAMPLED_PER_S events a second
        // reach the ring, whatever the slow paths' rate.
        let offered = EVENTS.pushed() + EVENTS.dropped();
        let dt = now.saturating_sub(last_tick).max(1) as f64;
        let rate = ((offered - last_offered) << shift) as f64 * 1000.0 / dt;
        rate_ema = rate.max(rate_ema * 0.7 + rate * 0.3);
        let mut want = MIN_SAMPLE_SHIFT;
        while want < hakmem_ace_learning::MAX_SAMPLE_SHIFT
            && rate_ema / (1u64 << want) as f64 > SAMPLED_PER_S
        {
            want += 1;
        }
        w.set_sample_shift(want);
        SAMPLE_SHIFT.store(want as u8, Relaxed);
        last_offered = offered;
        last_tick = now;
        // Decide and apply.
        let sample = Sample {
            now_ms: now,
            rss_bytes: rss_bytes(),
            minor_faults: minor_faults(),
        };
        let log = cfg.log;
        let res = learner.tick(&sample, &w, &mut |c| {
            if log {
                log_change(&c)
            }
        });
        let d = w.table().knob(Knob::DecayMs);
        if d != 0 && d != decay_applied {
            hakmem_superslab_backend::set_decay_ms(d);
            decay_applied = d;
        }
        apply_span_knob(&w);
        if res.trim {
            let freed = crate::trim_idle();
            TRIMMED_BYTES.fetch_add(freed as u64, Relaxed);
            if log {
                eprintln!("hakmem ace: idle trim returned {freed} bytes");
            }
        }
        // The background purge's step, when it is on and due (one thread
        // does both jobs while the worker runs).
        crate::background::ace_tick();
        publish_state(&learner);
        TICKS.fetch_add(1, Relaxed);
        WORKER_CPU_NS.store(thread_cpu_ns().saturating_sub(cpu0), Relaxed);
        WORKER_WALL_MS.store(now - started, Relaxed);
        // Contract A's alarm: more than 1 % of the events of the last
        // second dropped (at most one warning per 10 s).
        if now - window_start >= 1000 {
            let p = EVENTS.pushed();
            let dr = EVENTS.dropped();
            let (dp, dd) = (p - window_pushed, dr - window_dropped);
            if dd * 100 > dp + dd && last_warning.is_none_or(|t| now - t >= 10_000) {
                last_warning = Some(now);
                DROP_WARNINGS.fetch_add(1, Relaxed);
                eprintln!(
                    "hakmem ace: warning: the event ring dropped {dd} of {} events ({:.1} %) in the last second",
                    dp + dd,
                    dd as f64 * 100.0 / (dp + dd) as f64
                );
            }
            window_pushed = p;
            window_dropped = dr;
            window_start = now;
        }
        // Busy ring: drain sooner. (A quiet process is still polled every
        // tick: it may wake up at full speed.)
        sleep = if n > cap / 4 {
            (tick / 2).max(Duration::from_millis(5))
        } else {
            tick
        };
    }
    POLICY.set_observing(false);
    w.set_auto_sampling(false);
    w.set_sample_shift(0);
    SAMPLE_SHIFT.store(0, Relaxed);
    while EVENTS.pop().is_some() {}
    WORKER_CPU_NS.store(thread_cpu_ns().saturating_sub(cpu0), Relaxed);
    WORKER_WALL_MS.store(now_ms() - started, Relaxed);
    RUNNING_FLAG.store(false, Relaxed);
    (learner, w)
}

// ---------------------------------------------------------------------------
// Persisted context.
// ---------------------------------------------------------------------------

fn load_profile(path: &Path, l: &mut Learner, w: &PolicyWriter<'_>, log: bool) {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            eprintln!(
                "hakmem ace: profile {}: cannot read ({e}); using defaults",
                path.display()
            );
            return;
        }
    };
    match profile::decode_into(&bytes, l) {
        Ok(()) => {
            let n = l.apply_all(w);
            PROFILE_LOADED.store(true, Relaxed);
            if let Some(d) = (n > 0).then(|| w.table().knob(Knob::DecayMs)) {
                if d != 0 {
                    hakmem_superslab_backend::set_decay_ms(d);
                }
            }
            apply_span_knob(w);
            if log {
                eprintln!(
                    "hakmem ace: profile {} loaded ({n} policy values applied, decay {})",
                    path.display(),
                    l.decay().phase().name()
                );
            }
        }
        Err(e) => eprintln!(
            "hakmem ace: profile {} rejected: {e}; using defaults",
            path.display()
        ),
    }
}

static PROFILE_LOADED: AtomicBool = AtomicBool::new(false);

/// Hands the threshold knob to the route table when it differs from the
/// threshold in force (0: never written). Requests see the new route from
/// their next `malloc`; blocks already allocated are freed by what the
/// registry says they are, whatever the threshold is now.
fn apply_span_knob(w: &PolicyWriter<'_>) {
    let t = w.table().knob(Knob::SpanThreshold) as usize;
    if t != 0 && t != crate::span_threshold() {
        crate::set_span_threshold(t);
    }
}

fn save_profile(path: &Path, l: &Learner, log: bool) {
    let mut img = Box::new([0u8; PROFILE_LEN]);
    profile::encode(l, &POLICY, &mut img);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let r = std::fs::write(&tmp, &img[..]).and_then(|_| std::fs::rename(&tmp, path));
    match r {
        Ok(()) if log => eprintln!("hakmem ace: profile {} saved", path.display()),
        Ok(()) => {}
        Err(e) => eprintln!("hakmem ace: profile {}: cannot write ({e})", path.display()),
    }
}

// ---------------------------------------------------------------------------
// State and diagnostics.
// ---------------------------------------------------------------------------

/// The policy of one size class as the refill engine sees it now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassPolicy {
    /// Block size.
    pub size: u32,
    /// Blocks the next refill brings.
    pub refill_count: u32,
    /// Most blocks a thread caches.
    pub cache_cap: u32,
    /// Bandit arm the learner plays (0 = the start-up policy).
    pub arm: u8,
}

/// A snapshot of the learning layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AceState {
    /// The worker runs.
    pub running: bool,
    /// Events accepted by the ring since the start (or the last fork).
    pub events: u64,
    /// Events dropped because the ring was full.
    pub dropped: u64,
    /// `dropped / (events + dropped)`.
    pub drop_rate: f64,
    /// Events the worker drained and learned from.
    pub drained: u64,
    /// Ticks the worker ran.
    pub ticks: u64,
    /// Policy decisions applied (a class's arm or a knob changed).
    pub decisions: u64,
    /// Workload shifts detected.
    pub shifts: u64,
    /// Idle trims performed.
    pub trims: u64,
    /// Bytes the idle trims returned to the OS.
    pub trimmed_bytes: u64,
    /// CPU time of the worker thread, ns (the current or last worker).
    pub worker_cpu_ns: u64,
    /// Wall time of the worker thread, ms (the current or last worker).
    pub worker_wall_ms: u64,
    /// Drop-rate warnings printed.
    pub drop_warnings: u64,
    /// Observation samples one slow-path event in `2^sample_shift`.
    pub sample_shift: u8,
    /// Decay delay in force, ms.
    pub decay_ms: u32,
    /// Current workload regime (`hakmem_ace_learning::REGIME_NAMES`).
    pub regime: &'static str,
    /// Phase of the decay knob's Elo lifecycle in that regime.
    pub decay_phase: Phase,
    /// The decay knob's confirmed value, ms.
    pub decay_confirmed_ms: u32,
    /// The pool/span threshold in force, bytes.
    pub span_threshold: usize,
    /// Phase of the threshold knob's Elo lifecycle in the current regime.
    pub span_phase: Phase,
    /// The threshold knob's confirmed value, bytes.
    pub span_confirmed: u32,
    /// A profile was loaded at start.
    pub profile_loaded: bool,
    /// Per size class.
    pub classes: [ClassPolicy; NUM_CLASSES],
}

/// Policy decisions applied so far (all workers of this process).
pub fn decisions() -> u64 {
    DECISIONS.load(Relaxed)
}

/// The policy of `class` now (allocation-free; for [`crate::stats`]).
pub(crate) fn class_policy(class: usize) -> ClassPolicy {
    ClassPolicy {
        size: CLASS_SIZE[class],
        refill_count: POLICY.refill_count(class),
        cache_cap: POLICY.cache_cap(class),
        arm: CLASS_ARM[class].load(Relaxed),
    }
}

/// A snapshot of the learning layer (allocation-free).
pub fn state() -> AceState {
    let events = EVENTS.pushed();
    let dropped = EVENTS.dropped();
    let mut classes = [ClassPolicy::default(); NUM_CLASSES];
    for (c, p) in classes.iter_mut().enumerate() {
        *p = class_policy(c);
    }
    AceState {
        running: is_running(),
        events,
        dropped,
        drop_rate: drop_rate(events, dropped),
        drained: DRAINED.load(Relaxed),
        ticks: TICKS.load(Relaxed),
        decisions: decisions(),
        shifts: SHIFTS.load(Relaxed),
        trims: TRIMS.load(Relaxed),
        trimmed_bytes: TRIMMED_BYTES.load(Relaxed),
        worker_cpu_ns: WORKER_CPU_NS.load(Relaxed),
        worker_wall_ms: WORKER_WALL_MS.load(Relaxed),
        drop_warnings: DROP_WARNINGS.load(Relaxed),
        sample_shift: SAMPLE_SHIFT.load(Relaxed),
        decay_ms: hakmem_superslab_backend::decay_ms(),
        regime: REGIME_NAMES[(REGIME.load(Relaxed) as usize).min(REGIME_NAMES.len() - 1)],
        decay_phase: phase(&DECAY_PHASE),
        decay_confirmed_ms: DECAY_CONFIRMED.load(Relaxed),
        span_threshold: crate::span_threshold(),
        span_phase: phase(&SPAN_PHASE),
        span_confirmed: SPAN_CONFIRMED.load(Relaxed),
        profile_loaded: PROFILE_LOADED.load(Relaxed),
        classes,
    }
}

fn phase(a: &AtomicU8) -> Phase {
    match a.load(Relaxed) {
        1 => Phase::Canary,
        2 => Phase::Frozen,
        _ => Phase::Learn,
    }
}

/// `dropped / (events + dropped)` (0 when nothing was offered).
pub fn drop_rate(events: u64, dropped: u64) -> f64 {
    let total = events + dropped;
    if total == 0 {
        0.0
    } else {
        dropped as f64 / total as f64
    }
}

/// Emits a span event (cold paths of the facade; nothing when learning is
/// off).
#[cold]
pub(crate) fn span_event(kind: EventKind, bytes: usize) {
    if POLICY.observing() {
        let id = crate::thread::id();
        hakmem_ace_learning::observe(Event {
            kind,
            class: 0,
            count: (bytes >> 10).min(u32::MAX as usize) as u32,
            thread: id as u32,
        });
    }
}

/// Accessors for tests and diagnostics: what the *calling* thread's cache
/// holds. They read the thread's own state and change nothing.
pub mod debug {
    /// The cache cap the calling thread applies to `class` now (set at its
    /// last refill of the class, or at registration).
    pub fn thread_cache_cap(class: usize) -> u32 {
        // SAFETY: our own thread's state, read outside any allocator call.
        crate::thread::peek().map_or(0, |t| unsafe { (*t).front.cap(class) })
    }

    /// Blocks the calling thread has cached for `class`.
    pub fn thread_cache_len(class: usize) -> u32 {
        // SAFETY: as above.
        crate::thread::peek().map_or(0, |t| unsafe { (*t).front.count(class) })
    }
}
