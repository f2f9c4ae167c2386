//! The worker's life cycle: [`start`] (and its variants), [`stop`], the
//! `atexit` hook, the fork child's reset and [`reset_policy`]. The state
//! machine itself (`STATE`) is published in [`super::snapshot`].

use core::cell::UnsafeCell;
use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use std::thread::JoinHandle;

use hakmem_ace_learning::{Knob, Learner, PolicyWriter, EVENTS, POLICY};
use hakmem_ptr_bridge::NUM_CLASSES;

use super::config::AceConfig;
use super::profile::{load_profile, save_profile};
use super::snapshot::{
    publish_state, DECISIONS, DECISIONS_BEFORE, PROFILE_LOADED, RUNNING, RUNNING_FLAG, STARTING,
    STATE, STOPPED, STOPPING,
};
use super::worker::{worker, INITIAL_SAMPLE_SHIFT};
use crate::env::{flag, number_in};
use crate::sys::now_ms;

/// Tells the worker to stop at its next wake-up.
pub(super) static STOP: AtomicBool = AtomicBool::new(false);
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

#[link_section = ".bss.hakmem_cold"] // after the rest of .bss: see crates/preload/layout.ld
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
///
/// Out of line (like [`start_with`]): inlined into `libhakmem.so`'s
/// constructor, the worker's set-up gave that function a 27 KiB stack
/// frame, whose probes touched 6 stack pages in every process, learning
/// on or not.
#[cold]
#[inline(never)]
pub fn start() -> bool {
    start_with(AceConfig::from_env())
}

/// Starts the worker when `HAKMEM_ACE` is `1`/`yes`/`true`/`on`
/// (learning is off by default). For `libhakmem.so`'s constructor and for
/// programs that want the environment to decide. Returns whether a worker
/// was started.
///
/// With a profile (`HAKMEM_ACE_PROFILE`) whose program's previous run
/// lived less than `HAKMEM_ACE_MIN_LIFE_MS` (200 ms by default), no worker
/// is started: a short command runs no extra thread. Such a run records its
/// own lifetime at exit only when it lived long enough, so that the next
/// run starts the worker again (see `life.rs`). The decision is taken here,
/// in the constructor or `main`, never from inside an allocation call: a
/// thread started later from `malloc` could meet a lock its caller holds
/// (the dynamic linker's in `dlopen`, a `pthread_create` wrapper's) or a
/// seccomp filter installed after start-up that forbids new threads.
pub fn start_from_env() -> bool {
    if flag(crate::env_name!("HAKMEM_ACE")) == Some(true) {
        note_birth();
        let min_life = number_in(
            crate::env_name!("HAKMEM_ACE_MIN_LIFE_MS"),
            0,
            3_600_000,
            "not between 0 and 3600000",
        )
        .unwrap_or(DEFAULT_MIN_LIFE_MS);
        // Checked before anything allocates: a skipped short run maps no
        // superslab of its own for learning.
        if min_life > 0 && super::life::last_run_was_short(min_life) {
            let log = flag(crate::env_name!("HAKMEM_ACE_LOG")) == Some(true);
            if log {
                eprintln!("hakmem ace: the last run lived less than {min_life} ms: no worker");
            }
            MIN_LIFE.store(min_life, Relaxed);
            SKIP_LOG.store(log, Relaxed);
            if !SKIP_HOOK.swap(true, AcqRel) {
                // SAFETY: registers a plain `extern "C"` function that
                // lives for the process.
                unsafe { libc::atexit(skipped_atexit) };
            }
            crate::config::init();
            crate::background::ensure();
            return false;
        }
        start()
    } else {
        crate::config::init();
        crate::background::ensure();
        false
    }
}

/// Default of `HAKMEM_ACE_MIN_LIFE_MS`: eight ticks of the default period.
const DEFAULT_MIN_LIFE_MS: u32 = 200;

/// When this process started (the coarse clock's ms; 0: not noted yet).
static BORN_MS: AtomicU64 = AtomicU64::new(0);

/// Notes the process's start for its lifetime (the first call wins).
fn note_birth() {
    let _ = BORN_MS.compare_exchange(0, now_ms().max(1), AcqRel, Acquire);
}

/// Milliseconds since [`note_birth`].
fn lifetime_ms() -> u32 {
    now_ms()
        .saturating_sub(BORN_MS.load(Acquire))
        .min(u32::MAX as u64) as u32
}

/// The minimum lifetime a run that skipped the worker compares itself
/// with at exit, and whether it logs; its exit hook is registered once.
static MIN_LIFE: AtomicU32 = AtomicU32::new(DEFAULT_MIN_LIFE_MS);
static SKIP_LOG: AtomicBool = AtomicBool::new(false);
static SKIP_HOOK: AtomicBool = AtomicBool::new(false);

/// The exit hook of a run that skipped the worker: a run that turned out
/// long records its lifetime at the path the constructor read (so the next
/// run starts the worker); a short one returns at once, without
/// allocating or touching a file.
extern "C" fn skipped_atexit() {
    let ms = lifetime_ms();
    if ms < MIN_LIFE.load(Relaxed) {
        return;
    }
    if let Some(path) = super::life::record_kept(ms) {
        if SKIP_LOG.load(Relaxed) {
            eprintln!(
                "hakmem ace: {}: this run lived {ms} ms: the next one starts the worker",
                path.display()
            );
        }
    }
}

/// Set by the exit hook: [`stop`] records the run's lifetime only then
/// (a program may stop the worker itself long before it ends).
static EXITING: AtomicBool = AtomicBool::new(false);

/// Starts the worker with `cfg`. Returns false when it was already running
/// (or being started or stopped by another thread).
#[cold]
#[inline(never)]
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
    note_birth();
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
    // The child of a fork must learn that it has no worker even when no
    // lock was taken since the worker started.
    crate::register_fork_handlers_now();
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
    EXITING.store(true, Relaxed);
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
                if EXITING.load(Relaxed) {
                    super::life::write(path, lifetime_ms());
                }
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
    // The child's lifetime (for `.life`) counts from the fork.
    BORN_MS.store(now_ms().max(1), Release);
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
