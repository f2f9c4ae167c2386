//! The learner: turns drained events and a few process figures into policy
//! writes. It is plain data driven by the facade's background thread —
//! [`Learner::record`] for each event, [`Learner::tick`] every 10–50 ms —
//! and it changes the allocator only through the [`PolicyWriter`] passed to
//! `tick` (Contract B).
//!
//! Three policies run on each tick:
//!
//! 1. **Per-class bandits** ([`Ucb1`] over [`ARM_TABLE`]): each class with
//!    traffic plays an arm — a (refill count, cache cap) pair derived from
//!    the class's base policy — for a *window* of at least `window_events`
//!    refill/flush events and `window_min_ms` (or `window_max_ms`). The window's cost is
//!    `time + memory`, where `time` is the share of the active threads'
//!    time spent in refills and flushes (events × `event_ns` per
//!    thread-second: the refills a bigger batch avoids) and `memory` is what
//!    the arm lets the active threads cache (`threads · (refill + cap)/2 ·
//!    block size`) over the process RSS — both fractions of the
//!    throughput × RSS product the benchmarks judge. The reward is
//!    `1 / (1 + cost / typical cost of the class)` (the typical cost is a
//!    moving average), so arms compare by *relative* cost whatever the
//!    class's traffic; a window whose cost is below `min_cost` is not
//!    judged at all (nothing material to gain, so the arm stays).
//! 2. **Elo strategies for the decay delay** ([`Elo`] over
//!    [`DECAY_STRATEGIES`]): one decision per epoch of `epoch_ms` of
//!    activity; the score is `−(faults · fault_ns / thread-time + RSS /
//!    RSS at the start of the LEARN cycle)`: returning memory sooner lowers
//!    the RSS, and costs page faults when it is reused.
//!    The knob has one Elo state per workload *regime* ([`REGIME_NAMES`]:
//!    which tier produces most slow-path events) — the seeds' strategy
//!    cache: a regime that comes back resumes where it was (FROZEN stays
//!    FROZEN, at no exploration cost).
//! 3. **Workload shift and idle detection.** The tick's events are binned
//!    by kind and tier (tiny, mid, span); a fast and a slow moving average
//!    of that mix and of the event rate are compared, and a clear
//!    difference (L1 distance of the mixes above `shift_l1`, or rates apart
//!    by more than `2^shift_rate_log2`) is a shift. If the regime is the
//!    same, its knob goes back to LEARN; if it is another, that regime's
//!    cached state takes over. Either way the bandits' counts are softened
//!    so that they re-explore. No event for `idle_ms` asks the facade for
//!    one idle trim; so does a move to another regime (memory the old
//!    regime released is given back before the new one grows).

use hakmem_ptr_bridge::{CLASS_SIZE, NUM_CLASSES, NUM_TINY_CLASSES};

use crate::bandit::Ucb1;
use crate::elo::{Elo, EloConfig, Phase, Transition};
use crate::math::ln;
use crate::{Event, EventKind, Knob, PolicyTable, PolicyWriter};

/// One bandit arm: a refill count and a cache cap relative to the class's
/// base policy (the table at start-up: by default 16 KiB worth of blocks
/// per refill and a cap of two refills).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arm {
    /// Refill count in quarters of the base refill count.
    pub refill_x4: u32,
    /// Cache cap: the base cap scaled like the refill count, times
    /// `cap_per_refill / 2` (so with the default base, `cap_per_refill`
    /// refills' worth).
    pub cap_per_refill: u32,
}

/// Number of bandit arms per class.
pub const ARMS: usize = 6;

/// The arms; arm 0 is the base policy. UCB1 plays each once in this order
/// before it exploits, so the arms that usually pay (bigger batches) come
/// first and the one that usually costs (half batches) last.
pub const ARM_TABLE: [Arm; ARMS] = [
    Arm {
        refill_x4: 4,
        cap_per_refill: 2,
    },
    Arm {
        refill_x4: 8,
        cap_per_refill: 2,
    },
    Arm {
        refill_x4: 16,
        cap_per_refill: 2,
    },
    Arm {
        refill_x4: 8,
        cap_per_refill: 4,
    },
    Arm {
        refill_x4: 16,
        cap_per_refill: 4,
    },
    Arm {
        refill_x4: 2,
        cap_per_refill: 2,
    },
];

/// Prior mean reward of each arm (index as [`ARM_TABLE`]), given to every
/// class's bandit at start as [`PRIOR_PULLS`] pseudo-pulls. It encodes what
/// the static sweep of the `phases` workload shows (2 × refill with a cap
/// of 4 refills best, then 4 × refill; half batches worst), so a class
/// starts on arm 3 and explores only when its own windows disagree with the
/// prior: the real rewards of the played arm hover around 0.5 (they are
/// relative to the class's typical cost), so an arm whose prior is `d`
/// below is tried once the played arm's measured mean falls `d` below 0.5
/// or the exploration bonus of the less-played arms outgrows `d`.
pub const ARM_PRIOR: [f64; ARMS] = [0.44, 0.47, 0.45, 0.50, 0.49, 0.38];

/// Pseudo-pulls behind each [`ARM_PRIOR`] mean (real pulls outweigh them
/// after a few windows; the count cap `ucb_window` bounds both).
pub const PRIOR_PULLS: u32 = 8;

/// The arm the prior favours (played from the first tick on).
pub const PRIOR_ARM: usize = 3;

/// Most bytes an arm lets one thread cache in one class (unless the base
/// policy already allows more).
pub const MAX_CACHE_BYTES: u32 = 1 << 20;

/// The (refill count, cache cap) of `arm` for a class whose base policy is
/// (`base_refill`, `base_cap`) and whose blocks are `block` bytes.
pub fn arm_policy(base_refill: u32, base_cap: u32, arm: usize, block: u32) -> (u32, u32) {
    let a = ARM_TABLE[arm];
    let r = (base_refill.max(1) as u64 * a.refill_x4 as u64 / 4).clamp(1, 1024) as u32;
    let cap = (base_cap as u64 * a.refill_x4 as u64 * a.cap_per_refill as u64 / 8).min(4096) as u32;
    let limit = (MAX_CACHE_BYTES / block.max(1)).max(base_cap);
    (r, cap.min(limit))
}

/// The decay delays (ms) the Elo knob chooses among.
pub const DECAY_STRATEGIES: [u32; 6] = [25, 50, 100, 250, 500, 1000];

/// The pool/span thresholds (bytes) the second Elo knob chooses among:
/// requests above the threshold become spans, those at or below it slab
/// blocks (`hakmem_ptr_bridge::set_span_threshold` accepts 1 KiB – 64 KiB).
pub const SPAN_STRATEGIES: [u32; 3] = [16 << 10, 32 << 10, 64 << 10];

/// Tuning of the learner (the defaults are what `hakmem::ace` runs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LearnerConfig {
    /// Run the per-class bandits.
    pub bandit: bool,
    /// Run the Elo knob of the decay delay.
    pub elo: bool,
    /// Run the Elo knob of the pool/span threshold (in the mid and span
    /// regimes, once the decay knob is FROZEN there).
    pub span: bool,
    /// Ask for a trim when idle, and when the workload moves to another
    /// regime (what the old regime released is unlikely to be reused soon).
    pub idle: bool,
    /// The warm-pool prefill budget: at an idle trim, give the classes
    /// that were refilling before it a budget (their cache cap, within
    /// `hakmem_ace_learning::prefill_limit`) for the first refills after the idle
    /// period; clear it after `prefill_ms` of renewed activity. Needs
    /// `idle`.
    pub prefill: bool,
    /// How long (ms of activity after an idle period) a prefill budget
    /// stays in force.
    pub prefill_ms: u32,
    /// Share of the recent refills a class must have had before the idle
    /// period to get a budget.
    pub prefill_share: f64,
    /// Start every class's bandit from [`ARM_PRIOR`] (on [`PRIOR_ARM`])
    /// instead of from no statistics on arm 0.
    pub prior: bool,
    /// UCB1 exploration constant.
    pub ucb_c: f64,
    /// UCB1 pull-count cap (memory of the means).
    pub ucb_window: u32,
    /// Refill + flush events of a class that close its bandit window
    /// (once it is at least `window_min_ms` old).
    pub window_events: u32,
    /// Shortest bandit window, in ms: an arm is held at least this long.
    pub window_min_ms: u32,
    /// Longest bandit window, in ms (closed then if it saw ≥ 4 events).
    pub window_max_ms: u32,
    /// Estimated cost of one refill or flush beyond its per-block work, ns.
    pub event_ns: f64,
    /// Windows costing less than this fraction are not judged.
    pub min_cost: f64,
    /// Elo lifecycle tuning.
    pub elo_cfg: EloConfig,
    /// Length of one Elo decision, in ms of activity.
    pub epoch_ms: u32,
    /// Estimated cost of one minor page fault, ns.
    pub fault_ns: f64,
    /// Estimated cost of one span allocation or free beyond a slab
    /// block's (registry, span cache or mapping), ns.
    pub span_ns: f64,
    /// No event for this long is idleness (one trim per idle period).
    pub idle_ms: u32,
    /// Mix distance (L1, 0..2) that is a workload shift.
    pub shift_l1: f64,
    /// Event-rate change (log2) that is a workload shift.
    pub shift_rate_log2: f64,
    /// Fewest events in a tick for it to count for shift detection.
    pub shift_min_events: u32,
    /// No second shift within this many ms.
    pub shift_cooldown_ms: u32,
}

impl LearnerConfig {
    /// The defaults.
    pub const DEFAULT: LearnerConfig = LearnerConfig {
        bandit: true,
        elo: true,
        span: true,
        idle: true,
        prefill: true,
        prefill_ms: 50,
        prefill_share: 0.02,
        prior: true,
        ucb_c: 0.15,
        ucb_window: 32,
        window_events: 16,
        window_min_ms: 25,
        window_max_ms: 1000,
        event_ns: 150.0,
        min_cost: 0.0005,
        elo_cfg: EloConfig::DEFAULT,
        epoch_ms: 100,
        fault_ns: 250.0,
        span_ns: 1000.0,
        idle_ms: 250,
        shift_l1: 0.6,
        shift_rate_log2: 3.0,
        shift_min_events: 16,
        shift_cooldown_ms: 250,
    };
}

impl Default for LearnerConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What the facade measured at this tick (process-wide).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    /// Monotonic time, ms.
    pub now_ms: u64,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
    /// Minor page faults since the process started.
    pub minor_faults: u64,
}

/// A decision or observation worth logging.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Change {
    /// A class's policy changed.
    Class {
        /// Size class.
        class: usize,
        /// Refill count before and after.
        refill: (u32, u32),
        /// Cache cap before and after.
        cap: (u32, u32),
        /// Arm now played.
        arm: usize,
        /// Reward of the window that just closed.
        reward: f64,
    },
    /// A knob changed.
    Knob {
        /// Which.
        knob: Knob,
        /// Value before and after.
        value: (u32, u32),
        /// Phase of its Elo lifecycle.
        phase: Phase,
        /// Strategy rating.
        rating: f64,
        /// Workload regime whose strategy this is.
        regime: usize,
    },
    /// A knob's lifecycle moved.
    Phase {
        /// Which.
        knob: Knob,
        /// The transition.
        transition: Transition,
        /// Value of the confirmed strategy.
        confirmed_value: u32,
        /// Workload regime.
        regime: usize,
    },
    /// The workload shifted.
    Shift {
        /// L1 distance of the event mixes.
        l1: f64,
        /// log2 ratio of the event rates.
        rate_log2: f64,
        /// The regime now (an index into [`REGIME_NAMES`]).
        regime: usize,
        /// Phase of that regime's knob after the shift.
        phase: Phase,
    },
    /// The process went idle; a trim is requested.
    Idle {
        /// Time since the last event, ms.
        quiet_ms: u64,
    },
    /// Warm-pool prefill budgets were set (at an idle trim) or cleared
    /// (once activity resumed).
    Prefill {
        /// Classes whose budget changed.
        classes: u32,
        /// Sum of the budgets now in force, in blocks (0: cleared).
        blocks: u32,
    },
}

/// What the facade should do after a tick (besides applying knobs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TickResult {
    /// Return idle memory to the OS now (`hakmem::trim_idle`).
    pub trim: bool,
    /// Policy values changed by this tick.
    pub writes: u32,
}

/// Bins of the event mix: tiny/mid refill, tiny/mid flush, tiny slab
/// traffic, span map, span unmap, mid slab traffic.
const BINS: usize = 8;

/// Workload regimes, each with its own Elo state for the decay knob (the
/// seeds' *strategy cache*): which tier produces most of the slow-path
/// events — tiny (refills and flushes of classes ≤ 1 KiB), mid (refills
/// and flushes of bigger classes, slab traffic) or spans.
pub const REGIMES: usize = 3;

/// Names of the [`REGIMES`].
pub const REGIME_NAMES: [&str; REGIMES] = ["tiny", "mid", "span"];

/// The tiny regime (index into [`REGIME_NAMES`]).
const TINY_REGIME: usize = 0;

/// Reports `score` to `e` (the Elo state of `knob` in `regime`) and logs
/// a lifecycle transition.
fn report<const K: usize>(
    e: &mut Elo<K>,
    knob: Knob,
    regime: usize,
    score: f64,
    log: &mut dyn FnMut(Change),
) {
    if let Some(t) = e.report(score) {
        log(Change::Phase {
            knob,
            transition: t,
            confirmed_value: e.value(t.confirmed),
            regime,
        });
    }
}

fn regime_of(mix: &[f64; BINS]) -> usize {
    let w = [
        mix[0] + mix[2] + mix[4],
        mix[1] + mix[3] + mix[7],
        mix[5] + mix[6],
    ];
    let mut best = 0;
    for r in 1..REGIMES {
        if w[r] > w[best] {
            best = r;
        }
    }
    best
}

fn bin(ev: &Event) -> usize {
    let mid = ev.class as usize >= NUM_TINY_CLASSES;
    match ev.kind {
        EventKind::Refill => mid as usize,
        EventKind::Flush => 2 + mid as usize,
        EventKind::SlabAcquire | EventKind::SlabRelease | EventKind::Adopt => {
            if mid {
                7
            } else {
                4
            }
        }
        // A span no bigger than the largest slab class is mid traffic that
        // the threshold knob sent to spans: binned with the mid refills and
        // flushes, so that moving the threshold does not look like a
        // workload shift (nor move the regime).
        EventKind::SpanMap if ev.count <= MID_SPAN_KIB => 1,
        EventKind::SpanUnmap if ev.count <= MID_SPAN_KIB => 3,
        EventKind::SpanMap => 5,
        EventKind::SpanUnmap => 6,
    }
}

/// Largest span (KiB, as events count them) that is binned as mid traffic:
/// the largest slab class plus a page of rounding.
const MID_SPAN_KIB: u32 = (hakmem_ptr_bridge::SMALL_MAX >> 10) as u32 + 4;

fn thread_bit(thread: u32) -> u64 {
    1u64 << (thread.wrapping_mul(0x9E37_79B9) >> 26)
}

fn log2(x: f64) -> f64 {
    ln(x) / core::f64::consts::LN_2
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct ClassState {
    pub(crate) ucb: Ucb1<ARMS>,
    pub(crate) arm: u8,
    base: u32,
    base_cap: u32,
    cost_scale: f64,
    win_events: u32,
    win_threads: u64,
    win_start_ms: u64,
}

#[derive(Clone, Copy, Debug)]
struct Shift {
    last: [f64; BINS],
    fast: [f64; BINS],
    slow: [f64; BINS],
    fast_rate: f64,
    slow_rate: f64,
    samples: u32,
    quiet_until_ms: u64,
    named: bool,
}

/// The learner's whole state (about 10 KiB; the facade boxes it).
#[derive(Clone, Debug)]
pub struct Learner {
    cfg: LearnerConfig,
    pub(crate) classes: [ClassState; NUM_CLASSES],
    pub(crate) decay: [Elo<{ DECAY_STRATEGIES.len() }>; REGIMES],
    pub(crate) span: [Elo<{ SPAN_STRATEGIES.len() }>; REGIMES],
    pub(crate) regime: usize,
    epoch_span: bool,
    epoch_slow: f64,
    epoch_spans: f64,
    epoch_start_ms: u64,
    epoch_faults: u64,
    epoch_rss_sum: f64,
    epoch_ticks: u32,
    epoch_threads: u64,
    rss_ref: f64,
    shift: Shift,
    bins: [u32; BINS],
    /// Refill events of each class in this tick (weighted).
    tick_refills: [u32; NUM_CLASSES],
    /// Moving average of `tick_refills` over active ticks.
    recent_refills: [f32; NUM_CLASSES],
    /// Prefill budgets in force: `Some(when activity resumed, ms)`, or
    /// `Some(0)` while still idle.
    prefill_set: Option<u64>,
    tick_events: u32,
    last_tick_ms: u64,
    last_event_ms: u64,
    idle_fired: bool,
    started: bool,
    events: u64,
    decisions: u64,
    shifts: u64,
    trims: u64,
}

impl Learner {
    /// A learner whose arm 0 is the policy now in `table` and whose decay
    /// knob starts at `decay_ms`, at time `now_ms`.
    pub fn new(cfg: LearnerConfig, table: &PolicyTable, decay_ms: u32, now_ms: u64) -> Self {
        let mut classes = [ClassState {
            ucb: Ucb1::new(cfg.ucb_c, cfg.ucb_window),
            arm: 0,
            base: 1,
            base_cap: 2,
            cost_scale: 0.0,
            win_events: 0,
            win_threads: 0,
            win_start_ms: now_ms,
        }; NUM_CLASSES];
        for (c, st) in classes.iter_mut().enumerate() {
            st.base = table.refill_count(c);
            st.base_cap = table.cache_cap(c);
            // The prior is for the tiny classes (≤ 1 KiB), where bigger
            // batches pay in every sweep; the mid classes' memory share is
            // larger and workload-specific, so they start on arm 0 with no
            // statistics, as before.
            if cfg.bandit && cfg.prior && c < NUM_TINY_CLASSES {
                for (a, &m) in ARM_PRIOR.iter().enumerate() {
                    st.ucb.set_arm(a, PRIOR_PULLS, m);
                }
                st.arm = PRIOR_ARM as u8;
            }
        }
        let decay = core::array::from_fn(|r| {
            let mut e = Elo::new(
                DECAY_STRATEGIES,
                0,
                cfg.elo_cfg,
                0x5EED_ACE0 ^ now_ms ^ ((r as u64) << 40),
            );
            let d = e.nearest(decay_ms);
            e.restore([1500.0; DECAY_STRATEGIES.len()], d, Phase::Learn);
            e
        });
        let span = core::array::from_fn(|r| {
            Elo::new(
                SPAN_STRATEGIES,
                SPAN_STRATEGIES.len() - 1,
                cfg.elo_cfg,
                0x5EED_5FA0 ^ now_ms ^ ((r as u64) << 40),
            )
        });
        Learner {
            cfg,
            classes,
            decay,
            span,
            regime: 0,
            epoch_span: false,
            epoch_slow: 0.0,
            epoch_spans: 0.0,
            epoch_start_ms: now_ms,
            epoch_faults: 0,
            epoch_rss_sum: 0.0,
            epoch_ticks: 0,
            epoch_threads: 0,
            rss_ref: 0.0,
            shift: Shift {
                last: [0.0; BINS],
                fast: [0.0; BINS],
                slow: [0.0; BINS],
                fast_rate: 0.0,
                slow_rate: 0.0,
                samples: 0,
                quiet_until_ms: 0,
                named: false,
            },
            bins: [0; BINS],
            tick_refills: [0; NUM_CLASSES],
            recent_refills: [0.0; NUM_CLASSES],
            prefill_set: None,
            tick_events: 0,
            last_tick_ms: now_ms,
            last_event_ms: now_ms,
            idle_fired: false,
            started: false,
            events: 0,
            decisions: 0,
            shifts: 0,
            trims: 0,
        }
    }

    /// The pool/span threshold in force at start (bytes): the confirmed
    /// strategy of the threshold knob in every regime is the nearest one.
    pub fn with_span_threshold(mut self, bytes: u32) -> Self {
        for e in self.span.iter_mut() {
            let i = e.nearest(bytes);
            e.restore([1500.0; SPAN_STRATEGIES.len()], i, Phase::Learn);
        }
        self
    }

    /// The configuration.
    pub fn config(&self) -> &LearnerConfig {
        &self.cfg
    }

    /// Takes one drained event into account (cheap: a few counters).
    pub fn record(&mut self, ev: &Event) {
        self.record_weighted(ev, 1);
    }

    /// Takes into account an event that stands for `weight` events
    /// (observation sampled one in `weight`).
    pub fn record_weighted(&mut self, ev: &Event, weight: u32) {
        let w = weight.max(1);
        self.events += 1;
        self.tick_events = self.tick_events.saturating_add(w);
        self.bins[bin(ev)] = self.bins[bin(ev)].saturating_add(w);
        self.epoch_threads |= thread_bit(ev.thread);
        match ev.kind {
            EventKind::SpanMap | EventKind::SpanUnmap => self.epoch_spans += w as f64,
            _ => self.epoch_slow += w as f64,
        }
        if ev.kind == EventKind::Refill {
            if let Some(n) = self.tick_refills.get_mut(ev.class as usize) {
                *n = n.saturating_add(w);
            }
        }
        if matches!(ev.kind, EventKind::Refill | EventKind::Flush) {
            if let Some(st) = self.classes.get_mut(ev.class as usize) {
                st.win_events = st.win_events.saturating_add(w);
                st.win_threads |= thread_bit(ev.thread);
            }
        }
    }

    /// Runs the policies on what was recorded since the last tick and
    /// writes their decisions through `w`. `log` sees every change.
    pub fn tick(
        &mut self,
        s: &Sample,
        w: &PolicyWriter<'_>,
        log: &mut dyn FnMut(Change),
    ) -> TickResult {
        let mut out = TickResult::default();
        let now = s.now_ms;
        if !self.started {
            self.started = true;
            self.epoch_start_ms = now;
            self.epoch_faults = s.minor_faults;
            if self.cfg.elo {
                self.apply_knob(Knob::DecayMs, w, log, &mut out);
            }
            if self.cfg.bandit {
                self.apply_arms(w, log, &mut out);
            }
        }
        let dt_ms = now.saturating_sub(self.last_tick_ms).max(1);
        self.last_tick_ms = now;
        let active = self.tick_events > 0;

        // 3. Shift and idle detection.
        if self.tick_events >= self.cfg.shift_min_events {
            if let Some((l1, dr)) = self.detect_shift(now, dt_ms) {
                self.shifts += 1;
                // The regime of the tick that showed the shift.
                let r = regime_of(&self.shift.last);
                let same = r == self.regime;
                if self.cfg.elo || self.cfg.span {
                    // The same regime changed: learn it again. Another
                    // regime: resume its own knob states (FROZEN stays
                    // FROZEN: the strategy cache).
                    self.regime = r;
                    let (e, t) = (&mut self.decay[r], &mut self.span[r]);
                    if same {
                        e.relearn();
                        t.relearn();
                    } else {
                        e.resume();
                        t.resume();
                    }
                    self.rss_ref = 0.0;
                }
                log(Change::Shift {
                    l1,
                    rate_log2: dr,
                    regime: r,
                    phase: self.decay[self.regime].phase(),
                });
                if self.cfg.elo {
                    self.decay[self.regime].choose();
                    self.apply_knob(Knob::DecayMs, w, log, &mut out);
                }
                if self.cfg.span && self.regime != TINY_REGIME {
                    // This regime's threshold is in force from now on: its
                    // confirmed one, unless it is the threshold's turn to
                    // be learned (never while the decay knob explores).
                    if self.span_turn() {
                        self.span[self.regime].choose();
                    } else {
                        self.span[self.regime].hold();
                    }
                    self.apply_knob(Knob::SpanThreshold, w, log, &mut out);
                }
                if self.cfg.elo || self.cfg.span {
                    self.restart_epoch(s);
                }
                for st in self.classes.iter_mut() {
                    st.ucb.soften(2);
                }
                if self.cfg.idle && !same {
                    self.trims += 1;
                    out.trim = true;
                }
            }
        }
        if active {
            self.last_event_ms = now;
            self.idle_fired = false;
            for (r, &n) in self.recent_refills.iter_mut().zip(self.tick_refills.iter()) {
                *r += 0.3 * (n as f32 - *r);
            }
            self.end_prefill(now, w, log, &mut out);
        } else if self.cfg.idle
            && !self.idle_fired
            && now.saturating_sub(self.last_event_ms) >= self.cfg.idle_ms as u64
        {
            self.idle_fired = true;
            self.trims += 1;
            out.trim = true;
            log(Change::Idle {
                quiet_ms: now - self.last_event_ms,
            });
            if self.cfg.prefill {
                self.start_prefill(w, log, &mut out);
            }
        }
        self.tick_refills = [0; NUM_CLASSES];

        // 1. Per-class bandits.
        if self.cfg.bandit {
            self.run_bandits(s, w, log, &mut out);
        }

        // 2. The Elo knobs: epochs count active time only.
        if self.cfg.elo || self.cfg.span {
            if active {
                self.epoch_rss_sum += s.rss_bytes as f64;
                self.epoch_ticks += 1;
                if now.saturating_sub(self.epoch_start_ms) >= self.cfg.epoch_ms as u64
                    || self.clearly_losing(s)
                {
                    self.close_epoch(s, w, log, &mut out);
                }
            } else {
                self.restart_epoch(s);
            }
        }

        self.bins = [0; BINS];
        self.tick_events = 0;
        out
    }

    /// At an idle trim: the classes that had at least `prefill_share` of
    /// the recent refills get a prefill budget of their cache cap (the
    /// table clamps it to `prefill_limit`), so that each thread's first
    /// refill after the idle period fills its cache in one batch.
    fn start_prefill(
        &mut self,
        w: &PolicyWriter<'_>,
        log: &mut dyn FnMut(Change),
        out: &mut TickResult,
    ) {
        let total: f32 = self.recent_refills.iter().sum();
        if total <= 0.0 {
            return;
        }
        let (mut classes, mut blocks) = (0, 0);
        for c in 0..NUM_CLASSES {
            if self.recent_refills[c] < self.cfg.prefill_share as f32 * total {
                continue;
            }
            let t = w.table();
            if w.set_prefill(c, t.cache_cap(c)) {
                classes += 1;
            }
            blocks += t.prefill(c);
        }
        if classes > 0 {
            out.writes += classes;
            self.decisions += 1;
            self.prefill_set = Some(0);
            log(Change::Prefill { classes, blocks });
        }
    }

    /// Activity resumed: the budgets stay `prefill_ms`, then are cleared.
    fn end_prefill(
        &mut self,
        now: u64,
        w: &PolicyWriter<'_>,
        log: &mut dyn FnMut(Change),
        out: &mut TickResult,
    ) {
        match self.prefill_set {
            Some(0) => self.prefill_set = Some(now.max(1)),
            Some(t) if now.saturating_sub(t) >= self.cfg.prefill_ms as u64 => {
                self.prefill_set = None;
                let classes = w.clear_prefill();
                if classes > 0 {
                    out.writes += classes;
                    self.decisions += 1;
                    log(Change::Prefill { classes, blocks: 0 });
                }
            }
            _ => {}
        }
    }

    /// Whether warm-pool prefill budgets set at the last idle trim are
    /// still in force.
    pub fn prefill_pending(&self) -> bool {
        self.prefill_set.is_some()
    }

    fn detect_shift(&mut self, now: u64, dt_ms: u64) -> Option<(f64, f64)> {
        let total = self.tick_events as f64;
        let mut mix = [0.0; BINS];
        for (m, &b) in mix.iter_mut().zip(self.bins.iter()) {
            *m = b as f64 / total;
        }
        let rate = log2(total * 1000.0 / dt_ms as f64);
        let sh = &mut self.shift;
        sh.last = mix;
        if sh.samples == 0 {
            sh.fast = mix;
            sh.slow = mix;
            sh.fast_rate = rate;
            sh.slow_rate = rate;
            sh.samples = 1;
            if !sh.named {
                // The first activity names the starting regime.
                sh.named = true;
                self.regime = regime_of(&mix);
            }
            return None;
        }
        for i in 0..BINS {
            sh.fast[i] += 0.5 * (mix[i] - sh.fast[i]);
            sh.slow[i] += 0.05 * (mix[i] - sh.slow[i]);
        }
        sh.fast_rate += 0.5 * (rate - sh.fast_rate);
        sh.slow_rate += 0.05 * (rate - sh.slow_rate);
        sh.samples += 1;
        if sh.samples < 4 || now < sh.quiet_until_ms {
            return None;
        }
        let l1: f64 = (0..BINS).map(|i| (sh.fast[i] - sh.slow[i]).abs()).sum();
        let dr = (sh.fast_rate - sh.slow_rate).abs();
        if l1 > self.cfg.shift_l1 || dr > self.cfg.shift_rate_log2 {
            sh.slow = sh.fast;
            sh.slow_rate = sh.fast_rate;
            sh.samples = 1;
            sh.quiet_until_ms = now + self.cfg.shift_cooldown_ms as u64;
            return Some((l1, dr));
        }
        None
    }

    fn run_bandits(
        &mut self,
        s: &Sample,
        w: &PolicyWriter<'_>,
        log: &mut dyn FnMut(Change),
        out: &mut TickResult,
    ) {
        let now = s.now_ms;
        let rss = (s.rss_bytes as f64).max(1.0 * 1024.0 * 1024.0);
        for c in 0..NUM_CLASSES {
            let cfg = self.cfg;
            let st = &mut self.classes[c];
            if st.win_events == 0 {
                st.win_start_ms = now;
                continue;
            }
            let elapsed = now.saturating_sub(st.win_start_ms).max(1);
            let full = st.win_events >= cfg.window_events && elapsed >= cfg.window_min_ms as u64;
            let late = elapsed >= cfg.window_max_ms as u64;
            if !full && !late {
                continue;
            }
            if !full && st.win_events < 4 {
                // Too little traffic to judge: start over with the same arm.
                st.win_events = 0;
                st.win_threads = 0;
                st.win_start_ms = now;
                continue;
            }
            let threads = st.win_threads.count_ones().max(1) as f64;
            let arm = st.arm as usize;
            let (r, cap) = arm_policy(st.base, st.base_cap, arm, CLASS_SIZE[c]);
            let time = st.win_events as f64 * cfg.event_ns / (elapsed as f64 * 1e6 * threads);
            let held = threads * (r + cap) as f64 / 2.0 * CLASS_SIZE[c] as f64;
            let cost = time + held / rss;
            st.win_events = 0;
            st.win_threads = 0;
            st.win_start_ms = now;
            if cost < cfg.min_cost {
                continue;
            }
            st.cost_scale = if st.cost_scale > 0.0 {
                st.cost_scale + 0.1 * (cost - st.cost_scale)
            } else {
                cost
            };
            let reward = 1.0 / (1.0 + cost / st.cost_scale);
            st.ucb.update(arm, reward);
            let next = st.ucb.select();
            if next != arm {
                st.arm = next as u8;
                let (nr, ncap) = arm_policy(st.base, st.base_cap, next, CLASS_SIZE[c]);
                let before = (w.table().refill_count(c), w.table().cache_cap(c));
                let a = w.set_refill_count(c, nr);
                let b = w.set_cache_cap(c, ncap);
                let n = a as u32 + b as u32;
                if n > 0 {
                    out.writes += n;
                    self.decisions += 1;
                    log(Change::Class {
                        class: c,
                        refill: (before.0, nr),
                        cap: (before.1, ncap),
                        arm: next,
                        reward,
                    });
                }
            }
        }
    }

    /// Writes every class's current arm (the prior's, or a loaded
    /// profile's) at the first tick; values already in force are no writes.
    fn apply_arms(
        &mut self,
        w: &PolicyWriter<'_>,
        log: &mut dyn FnMut(Change),
        out: &mut TickResult,
    ) {
        for c in 0..NUM_CLASSES {
            let st = &self.classes[c];
            let arm = st.arm as usize;
            let (nr, ncap) = arm_policy(st.base, st.base_cap, arm, CLASS_SIZE[c]);
            let before = (w.table().refill_count(c), w.table().cache_cap(c));
            let n = w.set_refill_count(c, nr) as u32 + w.set_cache_cap(c, ncap) as u32;
            if n > 0 {
                out.writes += n;
                self.decisions += 1;
                log(Change::Class {
                    class: c,
                    refill: (before.0, nr),
                    cap: (before.1, ncap),
                    arm,
                    reward: f64::NAN,
                });
            }
        }
    }

    fn restart_epoch(&mut self, s: &Sample) {
        self.epoch_start_ms = s.now_ms;
        self.epoch_faults = s.minor_faults;
        self.epoch_rss_sum = 0.0;
        self.epoch_ticks = 0;
        self.epoch_threads = 0;
        self.epoch_slow = 0.0;
        self.epoch_spans = 0.0;
        self.epoch_span = self.span_turn();
    }

    /// Whether the next epoch belongs to the threshold knob: the knobs of
    /// a regime are learned one after the other — the decay delay first,
    /// then, once it is FROZEN, the threshold (so that neither's score is
    /// measured while the other explores). Not in the tiny regime, where
    /// no request comes near the threshold.
    fn span_turn(&self) -> bool {
        let r = self.regime;
        self.cfg.span
            && r != TINY_REGIME
            && self.span[r].phase() != Phase::Frozen
            && (!self.cfg.elo || self.decay[r].phase() == Phase::Frozen)
    }

    /// Whether the epoch under way explores a strategy that already scores
    /// clearly (by the Elo `prune` gap) below the confirmed one's average:
    /// it ends now, as a loss, instead of costing a whole epoch.
    fn clearly_losing(&mut self, s: &Sample) -> bool {
        let base = if self.epoch_span {
            let e = &self.span[self.regime];
            e.exploring().then(|| e.baseline()).flatten()
        } else if self.cfg.elo {
            let e = &self.decay[self.regime];
            e.exploring().then(|| e.baseline()).flatten()
        } else {
            None
        };
        match base {
            Some(b) => self.epoch_score(s) < b - self.cfg.elo_cfg.prune,
            None => false,
        }
    }

    /// The score of the epoch so far (higher is better; see `close_epoch`).
    fn epoch_score(&mut self, s: &Sample) -> f64 {
        let dur_ns = s.now_ms.saturating_sub(self.epoch_start_ms).max(1) as f64 * 1e6;
        let threads = self.epoch_threads.count_ones().max(1) as f64;
        let faults = s.minor_faults.saturating_sub(self.epoch_faults) as f64;
        let rss = self.epoch_rss_sum / self.epoch_ticks.max(1) as f64;
        if self.rss_ref <= 0.0 {
            self.rss_ref = rss.max(1.0);
        }
        // The epoch's cost: the threads' time in page faults, slow paths
        // (refills, flushes, slab traffic) and span allocations and frees,
        // plus the memory held relative to the cycle's start.
        let time = faults * self.cfg.fault_ns
            + self.epoch_slow * self.cfg.event_ns
            + self.epoch_spans * self.cfg.span_ns;
        -(time / (dur_ns * threads) + rss / self.rss_ref)
    }

    fn close_epoch(
        &mut self,
        s: &Sample,
        w: &PolicyWriter<'_>,
        log: &mut dyn FnMut(Change),
        out: &mut TickResult,
    ) {
        let score = self.epoch_score(s);
        let regime = self.regime;
        if self.epoch_span {
            let e = &mut self.span[regime];
            report(e, Knob::SpanThreshold, regime, score, log);
            e.choose();
            self.apply_knob(Knob::SpanThreshold, w, log, out);
        } else if self.cfg.elo {
            let e = &mut self.decay[regime];
            report(e, Knob::DecayMs, regime, score, log);
            e.choose();
            self.apply_knob(Knob::DecayMs, w, log, out);
            if self.span_turn() {
                // The decay knob just froze: the threshold's turn.
                self.span[regime].choose();
                self.apply_knob(Knob::SpanThreshold, w, log, out);
            }
        }
        self.restart_epoch(s);
    }

    /// The strategy of `knob`'s last decision in the current regime:
    /// (value, phase, rating).
    fn knob_state(&self, knob: Knob) -> (u32, Phase, f64) {
        fn get<const K: usize>(e: &Elo<K>) -> (u32, Phase, f64) {
            (e.value(e.current()), e.phase(), e.rating(e.current()))
        }
        match knob {
            Knob::DecayMs => get(&self.decay[self.regime]),
            Knob::SpanThreshold => get(&self.span[self.regime]),
        }
    }

    fn apply_knob(
        &mut self,
        knob: Knob,
        w: &PolicyWriter<'_>,
        log: &mut dyn FnMut(Change),
        out: &mut TickResult,
    ) {
        let (v, phase, rating) = self.knob_state(knob);
        let before = w.table().knob(knob);
        if w.set_knob(knob, v) {
            if knob == Knob::SpanThreshold {
                // Moving the threshold moves mid traffic between slab and
                // span events: the learner's own change, not a workload
                // shift. The detector starts a new baseline (the regime
                // stays).
                self.shift.samples = 0;
            }
            out.writes += 1;
            self.decisions += 1;
            log(Change::Knob {
                knob,
                value: (before, v),
                phase,
                rating,
                regime: self.regime,
            });
        }
    }

    /// Writes the learned policy (each class's current arm and the decay
    /// knob's confirmed value) through `w`: used after loading a profile.
    /// Returns the number of values changed.
    pub fn apply_all(&mut self, w: &PolicyWriter<'_>) -> u32 {
        let mut n = 0;
        for c in 0..NUM_CLASSES {
            let st = &self.classes[c];
            let (r, cap) = arm_policy(st.base, st.base_cap, st.arm as usize, CLASS_SIZE[c]);
            n += w.set_refill_count(c, r) as u32 + w.set_cache_cap(c, cap) as u32;
        }
        if self.cfg.elo {
            n += w.set_knob(Knob::DecayMs, self.knob_state(Knob::DecayMs).0) as u32;
        }
        if self.cfg.span && self.regime != TINY_REGIME {
            n += w.set_knob(Knob::SpanThreshold, self.knob_state(Knob::SpanThreshold).0) as u32;
        }
        n
    }

    /// Events recorded.
    pub fn events(&self) -> u64 {
        self.events
    }
    /// Policy decisions applied (a class's arm change or a knob change).
    pub fn decisions(&self) -> u64 {
        self.decisions
    }
    /// Workload shifts detected.
    pub fn shifts(&self) -> u64 {
        self.shifts
    }
    /// Idle trims requested.
    pub fn trims(&self) -> u64 {
        self.trims
    }
    /// Arm currently played by `class`.
    pub fn class_arm(&self, class: usize) -> usize {
        self.classes[class].arm as usize
    }
    /// The bandit of `class`.
    pub fn class_bandit(&self, class: usize) -> &Ucb1<ARMS> {
        &self.classes[class].ucb
    }
    /// Base policy (refill count, cache cap) of `class` (arm 0's).
    pub fn class_base(&self, class: usize) -> (u32, u32) {
        (self.classes[class].base, self.classes[class].base_cap)
    }
    /// The decay knob's Elo state in the current regime.
    pub fn decay(&self) -> &Elo<{ DECAY_STRATEGIES.len() }> {
        &self.decay[self.regime]
    }
    /// The decay knob's Elo state in regime `r`.
    pub fn decay_in(&self, r: usize) -> &Elo<{ DECAY_STRATEGIES.len() }> {
        &self.decay[r]
    }
    /// The threshold knob's Elo state in the current regime.
    pub fn span(&self) -> &Elo<{ SPAN_STRATEGIES.len() }> {
        &self.span[self.regime]
    }
    /// The threshold knob's Elo state in regime `r`.
    pub fn span_in(&self, r: usize) -> &Elo<{ SPAN_STRATEGIES.len() }> {
        &self.span[r]
    }
    /// The current workload regime (an index into [`REGIME_NAMES`]).
    pub fn regime(&self) -> usize {
        self.regime
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    fn ev(kind: EventKind, class: usize, thread: u32) -> Event {
        let span = matches!(kind, EventKind::SpanMap | EventKind::SpanUnmap);
        Event {
            kind,
            class: class as u8,
            // Spans of 512 KiB (above every slab class); 8 blocks otherwise.
            count: if span { 512 } else { 8 },
            thread,
        }
    }

    fn sample(now_ms: u64) -> Sample {
        Sample {
            now_ms,
            rss_bytes: 64 << 20,
            minor_faults: now_ms,
        }
    }

    #[test]
    fn arms_respect_bounds() {
        for c in 0..NUM_CLASSES {
            let base = crate::default_refill(c);
            assert_eq!(
                arm_policy(base, 2 * base, 0, CLASS_SIZE[c]),
                (base, 2 * base)
            );
            for a in 0..ARMS {
                let (r, cap) = arm_policy(base, 2 * base, a, CLASS_SIZE[c]);
                assert!((1..=1024).contains(&r) && cap >= r && cap <= 4096);
                assert!(cap as u64 * CLASS_SIZE[c] as u64 <= (1 << 20) || cap == r);
            }
        }
    }

    /// A busy class moves to bigger refills: the simulated allocator sends
    /// fewer refill events per tick when the refill count is larger.
    #[test]
    fn busy_class_learns_bigger_batches() {
        let table = PolicyTable::new();
        let w = table.writer().unwrap();
        let cfg = LearnerConfig {
            elo: false,
            idle: false,
            ..LearnerConfig::DEFAULT
        };
        let mut l = Learner::new(cfg, &table, 500, 0);
        let class = 3; // 64-byte blocks
        let base = table.refill_count(class);
        let mut changes = Vec::new();
        for t in 1..=3000u64 {
            // One thread, 12 800 allocations per 20 ms tick; one refill
            // event per batch.
            let r = table.refill_count(class) as u64;
            for _ in 0..12_800 / r {
                l.record(&ev(EventKind::Refill, class, 1));
            }
            l.tick(&sample(t * 20), &w, &mut |c| changes.push(c));
        }
        assert!(!changes.is_empty());
        let arm = l.class_arm(class);
        assert!(
            ARM_TABLE[arm].refill_x4 >= 8,
            "ended on arm {arm} ({:?}), refill {}",
            ARM_TABLE[arm],
            table.refill_count(class)
        );
        assert!(table.refill_count(class) >= 2 * base);
        assert_eq!(l.decisions(), changes.len() as u64);
    }

    /// A class of big blocks with little traffic keeps small caches: the
    /// memory it would hold costs more than the few refills it saves.
    #[test]
    fn quiet_big_class_keeps_small_caches() {
        let table = PolicyTable::new();
        let w = table.writer().unwrap();
        let cfg = LearnerConfig {
            elo: false,
            idle: false,
            ..LearnerConfig::DEFAULT
        };
        let mut l = Learner::new(cfg, &table, 500, 0);
        let class = NUM_CLASSES - 1; // 64 KiB blocks
        for t in 1..=4000u64 {
            for i in 0..2 {
                l.record(&ev(EventKind::Refill, class, i + 1));
            }
            let mut s = sample(t * 20);
            s.rss_bytes = 8 << 20;
            l.tick(&s, &w, &mut |_| {});
        }
        let arm = l.class_arm(class);
        let (br, bc) = l.class_base(class);
        let (r, cap) = arm_policy(br, bc, arm, CLASS_SIZE[class]);
        assert!(r + cap <= br + bc, "arm {arm}: {r}/{cap}");
    }

    #[test]
    fn idle_asks_for_one_trim_per_quiet_period() {
        let table = PolicyTable::new();
        let w = table.writer().unwrap();
        let mut l = Learner::new(LearnerConfig::DEFAULT, &table, 500, 0);
        let mut trims = 0;
        for t in 1..=100u64 {
            if t < 10 || (50..60).contains(&t) {
                l.record(&ev(EventKind::Refill, 1, 1));
            }
            if l.tick(&sample(t * 25), &w, &mut |_| {}).trim {
                trims += 1;
            }
        }
        assert_eq!(trims, 2);
        assert_eq!(l.trims(), 2);
    }

    /// The warm-pool prefill budget: at the idle trim, the class that was
    /// refilling gets a budget of its cache cap (bounded), a class with a
    /// negligible share none; `prefill_ms` after activity resumes it is
    /// cleared. Only the table is written.
    #[test]
    fn idle_trim_sets_a_prefill_budget_cleared_after_resuming() {
        let table = PolicyTable::new();
        let w = table.writer().unwrap();
        let cfg = LearnerConfig {
            elo: false,
            span: false,
            bandit: false,
            ..LearnerConfig::DEFAULT
        };
        let mut l = Learner::new(cfg, &table, 500, 0);
        let (hot, cold) = (3, 20);
        let mut changes = Vec::new();
        let mut t = 0u64;
        let mut run = |l: &mut Learner, busy: bool, ticks: u64, ch: &mut Vec<Change>| {
            for _ in 0..ticks {
                t += 1;
                if busy {
                    for i in 0..200 {
                        l.record(&ev(EventKind::Refill, hot, i % 2));
                    }
                    // 0.5 % of the refills: below `prefill_share`.
                    l.record(&ev(EventKind::Refill, cold, 1));
                }
                l.tick(&sample(t * 25), &w, &mut |c| ch.push(c));
            }
        };
        run(&mut l, true, 40, &mut changes);
        assert!((0..NUM_CLASSES).all(|c| table.prefill(c) == 0));
        run(&mut l, false, 12, &mut changes); // 300 ms idle: one trim
        assert_eq!(l.trims(), 1);
        assert!(l.prefill_pending());
        let cap = table.cache_cap(hot);
        assert_eq!(table.prefill(hot), cap.min(crate::prefill_limit(hot)));
        assert!(table.prefill(hot) > table.refill_count(hot));
        assert_eq!(table.prefill(cold), 0, "a negligible class gets none");
        assert!(changes.contains(&Change::Prefill {
            classes: 1,
            blocks: table.prefill(hot)
        }));
        // Still idle: the budget waits for the next refills.
        run(&mut l, false, 20, &mut changes);
        assert!(table.prefill(hot) > 0);
        // Activity resumes: cleared after `prefill_ms` (50 ms = 2 ticks).
        run(&mut l, true, 1, &mut changes);
        assert!(table.prefill(hot) > 0, "in force at the first refills");
        run(&mut l, true, 2, &mut changes);
        assert_eq!(table.prefill(hot), 0);
        assert!(!l.prefill_pending());
        assert_eq!(
            changes.last(),
            Some(&Change::Prefill {
                classes: 1,
                blocks: 0
            })
        );
        // Off: no budget.
        let cfg = LearnerConfig {
            prefill: false,
            ..cfg
        };
        let table = PolicyTable::new();
        let w2 = table.writer().unwrap();
        let mut l = Learner::new(cfg, &table, 500, 0);
        for t in 1..=60u64 {
            if t <= 40 {
                for i in 0..200 {
                    l.record(&ev(EventKind::Refill, hot, i % 2));
                }
            }
            l.tick(&sample(t * 25), &w2, &mut |_| {});
        }
        assert_eq!(l.trims(), 1);
        assert_eq!(table.prefill(hot), 0);
    }

    #[test]
    fn detects_a_shift_in_the_event_mix() {
        let table = PolicyTable::new();
        let w = table.writer().unwrap();
        let mut l = Learner::new(LearnerConfig::DEFAULT, &table, 500, 0);
        let mut shifts = Vec::new();
        let mut phase_after = None;
        for t in 1..=400u64 {
            let (kind, class) = if t <= 200 {
                (EventKind::Refill, 2) // tiny churn
            } else {
                (EventKind::SpanMap, 0) // large spans
            };
            for i in 0..40 {
                l.record(&ev(kind, class, i % 3));
            }
            l.tick(&sample(t * 25), &w, &mut |c| {
                if let Change::Shift { .. } = c {
                    shifts.push(t)
                }
            });
            if shifts.len() == 1 && phase_after.is_none() {
                phase_after = Some(l.decay().phase());
            }
            if t == 200 {
                assert_eq!(l.decay().phase(), Phase::Frozen, "learned by then");
            }
        }
        assert_eq!(shifts.len(), 1, "{shifts:?}");
        assert!((201..=210).contains(&shifts[0]));
        assert_eq!(l.regime(), 2, "span regime");
        assert_eq!(
            phase_after,
            Some(Phase::Learn),
            "a new regime starts in LEARN"
        );
    }

    /// The strategy cache: a regime that comes back resumes FROZEN on its
    /// confirmed strategy; a shift inside one regime relearns it.
    #[test]
    fn regimes_cache_their_strategy() {
        let table = PolicyTable::new();
        let w = table.writer().unwrap();
        let cfg = LearnerConfig {
            bandit: false,
            ..LearnerConfig::DEFAULT
        };
        let mut l = Learner::new(cfg, &table, 500, 0);
        let mut t = 0u64;
        let mut shifts = Vec::new();
        let mut run = |l: &mut Learner, kind: EventKind, class: usize, n: u32, ticks: u64| {
            for _ in 0..ticks {
                t += 1;
                for i in 0..n {
                    l.record(&ev(kind, class, i % 2));
                }
                l.tick(&sample(t * 25), &w, &mut |c| {
                    if let Change::Shift { regime, phase, .. } = c {
                        shifts.push((regime, phase))
                    }
                });
            }
        };
        run(&mut l, EventKind::Refill, 2, 40, 400); // tiny, 10 s
        assert_eq!((l.regime(), l.decay().phase()), (0, Phase::Frozen));
        let tiny = l.decay().confirmed();
        run(&mut l, EventKind::SpanMap, 0, 40, 400); // spans
        assert_eq!((l.regime(), l.decay().phase()), (2, Phase::Frozen));
        run(&mut l, EventKind::Refill, 2, 40, 60); // tiny again
        assert_eq!(l.regime(), 0);
        assert_eq!(l.decay().phase(), Phase::Frozen, "resumed from the cache");
        assert_eq!(l.decay().confirmed(), tiny);
        // Tiny at 64× the rate: 0.5 s, shorter than a LEARN cycle.
        run(&mut l, EventKind::Refill, 2, 40 * 64, 20);
        assert_eq!(l.regime(), 0);
        assert_eq!(l.decay().phase(), Phase::Learn, "same regime, new workload");
        assert_eq!(
            shifts,
            [(2, Phase::Learn), (0, Phase::Frozen), (0, Phase::Learn)]
        );
    }

    /// The threshold knob: in the mid regime, after the decay knob has
    /// frozen, it goes LEARN → CANARY → FROZEN on the threshold that costs
    /// least (a world where 32 KiB faults least), writes only the table,
    /// and goes back to LEARN (after the decay knob) on a shift inside the
    /// regime. In the tiny regime it never plays.
    #[test]
    fn span_threshold_knob_learns_after_the_decay_knob() {
        let table = PolicyTable::new();
        let w = table.writer().unwrap();
        let cfg = LearnerConfig {
            bandit: false,
            idle: false,
            ..LearnerConfig::DEFAULT
        };
        let mut l = Learner::new(cfg, &table, 500, 0).with_span_threshold(64 << 10);
        let mid = NUM_TINY_CLASSES + 2;
        let mut faults = 0u64;
        let mut phases = Vec::new();
        let mut t = 0u64;
        let mut run = |l: &mut Learner, n: u32, ticks: u64, phases: &mut Vec<(Phase, Phase)>| {
            for _ in 0..ticks {
                t += 1;
                for i in 0..n {
                    l.record(&ev(EventKind::Refill, mid, i % 2));
                }
                // Faults per tick by threshold: 16 KiB 3000, 32 KiB 1000,
                // 64 KiB 2000 (the decay delay does not matter here).
                faults += match table.knob(Knob::SpanThreshold) {
                    0 | 65536 => 2000,
                    32768 => 1000,
                    _ => 3000,
                };
                let s = Sample {
                    now_ms: t * 25,
                    rss_bytes: 64 << 20,
                    minor_faults: faults,
                };
                let decay_frozen = l.decay().phase() == Phase::Frozen;
                let span_decisions = l.span().decisions();
                l.tick(&s, &w, &mut |c| {
                    if let Change::Phase {
                        knob: Knob::SpanThreshold,
                        transition,
                        ..
                    } = c
                    {
                        phases.push((transition.from, transition.to))
                    }
                });
                if !decay_frozen && l.decay().phase() != Phase::Frozen {
                    assert_eq!(
                        l.span().decisions(),
                        span_decisions,
                        "the threshold waits for the decay knob"
                    );
                }
            }
        };
        run(&mut l, 40, 800, &mut phases); // 20 s of mid traffic
        assert_eq!(l.regime(), 1, "mid regime");
        assert_eq!(l.decay().phase(), Phase::Frozen);
        assert_eq!(
            phases,
            [
                (Phase::Learn, Phase::Canary),
                (Phase::Canary, Phase::Frozen)
            ],
            "{:?}",
            l.span()
        );
        assert_eq!(l.span().value(l.span().confirmed()), 32 << 10);
        assert_eq!(table.knob(Knob::SpanThreshold), 32 << 10);
        // About 5 % of the CANARY decisions used the candidate.
        assert_eq!(l.span().candidate_decisions(), 3);
        // A shift inside the mid regime (64 × the rate): both knobs learn
        // again, the decay delay first.
        phases.clear();
        run(&mut l, 40 * 64, 12, &mut phases);
        assert_eq!(l.regime(), 1);
        assert_eq!(l.span().phase(), Phase::Learn, "{phases:?}");
        // The tiny regime never plays the threshold.
        let mut tiny = Learner::new(cfg, &table, 500, 0);
        for t in 1..=800u64 {
            for i in 0..40 {
                tiny.record(&ev(EventKind::Refill, 2, i % 2));
            }
            tiny.tick(&sample(t * 25), &w, &mut |_| {});
        }
        assert_eq!(tiny.regime(), 0);
        assert_eq!(tiny.span().decisions(), 0);
    }

    /// Two properties of a knob's exploration that bound its cost: on a
    /// shift into the mid regime the threshold keeps its confirmed value
    /// while the decay knob learns (it used to take its first LEARN
    /// strategy, 16 KiB, at once, unscored); and an exploring epoch that
    /// already scores clearly below the confirmed strategy ends after one
    /// tick, pruning the strategies beyond it.
    #[test]
    fn threshold_holds_while_decay_learns_and_losing_epochs_end_early() {
        let table = PolicyTable::new();
        let w = table.writer().unwrap();
        let cfg = LearnerConfig {
            bandit: false,
            idle: false,
            ..LearnerConfig::DEFAULT
        };
        let mut l = Learner::new(cfg, &table, 500, 0).with_span_threshold(64 << 10);
        let mid = NUM_TINY_CLASSES + 2;
        let mut faults = 0u64;
        let mut ticks_at = [0u32; DECAY_STRATEGIES.len()];
        for t in 1..=200u64 {
            let class = if t <= 40 { 2 } else { mid };
            for i in 0..40 {
                l.record(&ev(EventKind::Refill, class, i % 2));
            }
            let d = table.knob(Knob::DecayMs);
            // Delays of 50 ms and less fault heavily in this world.
            faults += if d <= 50 { 1_000_000 } else { 1000 };
            let s = Sample {
                now_ms: t * 25,
                rss_bytes: 64 << 20,
                minor_faults: faults,
            };
            l.tick(&s, &w, &mut |_| {});
            if t > 40 && l.regime() == 1 && l.decay().phase() == Phase::Learn {
                let th = table.knob(Knob::SpanThreshold);
                assert!(th == 0 || th == 64 << 10, "tick {t}: threshold {th}");
                ticks_at[l.decay().current()] += 1;
            }
        }
        assert_eq!(l.regime(), 1);
        assert_ne!(l.decay().phase(), Phase::Learn);
        assert!(table.knob(Knob::DecayMs) >= 100, "{:?}", l.decay());
        // 50 ms was looked at for one tick (25 ms, not a 100 ms epoch); 25
        // ms, beyond it, never.
        assert_eq!(ticks_at[1], 1, "{ticks_at:?}");
        assert_eq!(ticks_at[0], 0, "{ticks_at:?}");
    }

    #[test]
    fn decay_knob_is_written_and_learned() {
        let table = PolicyTable::new();
        let w = table.writer().unwrap();
        let cfg = LearnerConfig {
            bandit: false,
            ..LearnerConfig::DEFAULT
        };
        let mut l = Learner::new(cfg, &table, 500, 0);
        let mut faults = 0u64;
        for t in 1..=3000u64 {
            for i in 0..20 {
                l.record(&ev(EventKind::Refill, 4, i % 2));
            }
            // A world where short delays fault a lot and long ones hold
            // memory: 250 ms is the sweet spot (faults/epoch ∝ 1/d, RSS ∝ d).
            let d = table.knob(Knob::DecayMs).max(1) as u64;
            faults += 1_500_000 / d;
            let rss = (60 << 20) + d * (8 << 10);
            let s = Sample {
                now_ms: t * 25,
                rss_bytes: rss,
                minor_faults: faults,
            };
            l.tick(&s, &w, &mut |_| {});
        }
        assert_eq!(table.knob(Knob::DecayMs), 250, "{:?}", l.decay());
        assert_eq!(l.decay().phase(), Phase::Frozen);
    }
}
