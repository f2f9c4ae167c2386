//! What the worker publishes, and the snapshot built from it: counters,
//! the learned phases, each class's arm, and the worker's life-cycle state.
//! The lowest part of `ace`: it depends on no other module of the facade,
//! so that `stats` (which `config` calls for the exit report) can read it
//! while `ace`'s start-up reads the configuration: the module graph stays a
//! DAG (`docs/architecture.md`).

use core::sync::atomic::Ordering::{Acquire, Relaxed};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8};

use hakmem_ace_learning::{Learner, Phase, EVENTS, POLICY, REGIME_NAMES};
use hakmem_ptr_bridge::{CLASS_SIZE, NUM_CLASSES};

// The worker's life cycle (driven by `lifecycle`).
pub(super) const STOPPED: u8 = 0;
pub(super) const STARTING: u8 = 1;
pub(super) const RUNNING: u8 = 2;
pub(super) const STOPPING: u8 = 3;

/// STOPPED → STARTING → RUNNING → STOPPING → STOPPED (see `lifecycle`).
pub(super) static STATE: AtomicU8 = AtomicU8::new(STOPPED);

/// True while the worker runs.
pub fn is_running() -> bool {
    STATE.load(Acquire) == RUNNING
}

// What the worker publishes for [`state`] and [`crate::stats`].
pub(super) static SAMPLE_SHIFT: AtomicU8 = AtomicU8::new(0);
pub(super) static RUNNING_FLAG: AtomicBool = AtomicBool::new(false);
pub(super) static TICKS: AtomicU64 = AtomicU64::new(0);
pub(super) static DRAINED: AtomicU64 = AtomicU64::new(0);
pub(super) static DECISIONS: AtomicU64 = AtomicU64::new(0);
pub(super) static SHIFTS: AtomicU64 = AtomicU64::new(0);
pub(super) static TRIMS: AtomicU64 = AtomicU64::new(0);
pub(super) static TRIMMED_BYTES: AtomicU64 = AtomicU64::new(0);
pub(super) static WORKER_CPU_NS: AtomicU64 = AtomicU64::new(0);
pub(super) static WORKER_WALL_MS: AtomicU64 = AtomicU64::new(0);
pub(super) static DROP_WARNINGS: AtomicU64 = AtomicU64::new(0);
pub(super) static DECAY_PHASE: AtomicU8 = AtomicU8::new(Phase::Learn as u8);
pub(super) static DECAY_CONFIRMED: AtomicU32 = AtomicU32::new(0);
pub(super) static SPAN_PHASE: AtomicU8 = AtomicU8::new(Phase::Learn as u8);
pub(super) static SPAN_CONFIRMED: AtomicU32 = AtomicU32::new(0);
pub(super) static REGIME: AtomicU8 = AtomicU8::new(0);
pub(super) static CLASS_ARM: [AtomicU8; NUM_CLASSES] = [const { AtomicU8::new(0) }; NUM_CLASSES];
// Decisions of earlier workers (a restarted worker's learner counts from 0).
pub(super) static DECISIONS_BEFORE: AtomicU64 = AtomicU64::new(0);

pub(super) fn publish_state(l: &Learner) {
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

/// A profile was loaded at the last start.
pub(super) static PROFILE_LOADED: AtomicBool = AtomicBool::new(false);

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
        span_threshold: hakmem_ptr_bridge::span_threshold(),
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
