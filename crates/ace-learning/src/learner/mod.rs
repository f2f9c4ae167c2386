//! The learner: turns drained events and a few process figures into policy
//! writes. It is plain data driven by the facade's background thread —
//! [`Learner::record`] for each event, [`Learner::tick`] every 10–50 ms —
//! and it changes the allocator only through the [`PolicyWriter`] passed to
//! `tick` (Contract B).
//!
//! The policies that run on each tick, one module each (with their tests):
//!
//! 1. **Per-class bandits** (`bandits`) ([`Ucb1`] over [`ARM_TABLE`]): each class with
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
//! 2. **Elo strategies for the decay delay and the pool/span threshold**
//!    (`knobs`; [`Elo`] over [`DECAY_STRATEGIES`] and [`SPAN_STRATEGIES`]):
//!    one decision per epoch of `epoch_ms` of activity; the score is
//!    `−((faults · fault_ns + slow-path events · event_ns + span events ·
//!    span_ns) / thread-time + RSS / RSS at the start of the LEARN
//!    cycle)`: returning memory sooner lowers the RSS, and costs page
//!    faults when it is reused; a lower threshold trades mid refills for
//!    span traffic. In a regime the decay delay is learned first, the
//!    threshold (not in the tiny regime) once the decay delay is FROZEN.
//!    Each knob has one Elo state per workload *regime* ([`REGIME_NAMES`]:
//!    which tier produces most slow-path events) — the seeds' strategy
//!    cache: a regime that comes back resumes where it was (FROZEN stays
//!    FROZEN, at no exploration cost).
//! 3. **Workload shift and idle detection** (`shift`, and in
//!    [`Learner::tick`]). The tick's events are binned
//!    by kind and tier (tiny, mid, span); a fast and a slow moving average
//!    of that mix and of the event rate are compared, and a clear
//!    difference (L1 distance of the mixes above `shift_l1`, or rates apart
//!    by more than `2^shift_rate_log2`) is a shift. If the regime is the
//!    same, its knob goes back to LEARN; if it is another, that regime's
//!    cached state takes over. Either way the bandits' counts are softened
//!    so that they re-explore. No event for `idle_ms` asks the facade for
//!    one idle trim; so does a move to another regime (memory the old
//!    regime released is given back before the new one grows).
//! 4. **Warm-pool prefill** (`prefill`): at an idle trim, the classes that
//!    were refilling get a prefill budget in the table, cleared
//!    `prefill_ms` after activity resumes.
//!
//! [`LearnerConfig`] (`config`) switches each on or off and tunes it.

mod bandits;
mod config;
mod knobs;
mod prefill;
mod shift;

pub use bandits::{
    arm_policy, Arm, ARMS, ARM_PRIOR, ARM_TABLE, MAX_CACHE_BYTES, PRIOR_ARM, PRIOR_PULLS,
};
pub use config::LearnerConfig;
pub use knobs::{DECAY_STRATEGIES, SPAN_STRATEGIES};
pub use shift::{REGIMES, REGIME_NAMES};

use hakmem_ptr_bridge::{CLASS_SIZE, NUM_CLASSES, NUM_TINY_CLASSES};

use crate::bandit::Ucb1;
use crate::elo::{Elo, Phase, Transition};
use crate::{Event, EventKind, Knob, PolicyTable, PolicyWriter};

use bandits::ClassState;
use shift::{bin, regime_of, Shift, BINS, TINY_REGIME};

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

fn thread_bit(thread: u32) -> u64 {
    1u64 << (thread.wrapping_mul(0x9E37_79B9) >> 26)
}

/// The learner's whole state (about 13 KiB; the facade boxes it).
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
            armed: true,
        }; NUM_CLASSES];
        for (c, st) in classes.iter_mut().enumerate() {
            st.base = table.refill_count(c);
            st.base_cap = table.cache_cap(c);
            // The prior is for the tiny classes (≤ 1 KiB), where bigger
            // batches pay in every sweep; the mid classes' memory share is
            // larger and workload-specific, so they start on arm 0 with no
            // statistics.
            if cfg.bandit && cfg.prior && c < NUM_TINY_CLASSES {
                for (a, &m) in ARM_PRIOR.iter().enumerate() {
                    st.ucb.set_arm(a, PRIOR_PULLS, m);
                }
                st.arm = PRIOR_ARM as u8;
                st.armed = false;
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

    /// Writes the learned policy through `w`: each class's current arm and,
    /// when those knobs run, the value of the decay knob's current strategy
    /// in the current regime and (outside the tiny regime) the threshold
    /// knob's. Used after loading a profile. Returns the number of values
    /// changed.
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
    use super::*;

    pub(super) fn ev(kind: EventKind, class: usize, thread: u32) -> Event {
        let span = matches!(kind, EventKind::SpanMap | EventKind::SpanUnmap);
        Event {
            kind,
            class: class as u8,
            // Spans of 512 KiB (above every slab class); 8 blocks otherwise.
            count: if span { 512 } else { 8 },
            thread,
        }
    }

    pub(super) fn sample(now_ms: u64) -> Sample {
        Sample {
            now_ms,
            rss_bytes: 64 << 20,
            minor_faults: now_ms,
        }
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
}
