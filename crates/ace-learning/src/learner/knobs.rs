//! The Elo knobs (the decay delay and the pool/span threshold) and their
//! epochs.

use super::{Change, Learner, Sample, TickResult, TINY_REGIME};
use crate::elo::{Elo, Phase};
use crate::{Knob, PolicyWriter};

/// The decay delays (ms) the Elo knob chooses among.
pub const DECAY_STRATEGIES: [u32; 6] = [25, 50, 100, 250, 500, 1000];

/// The pool/span thresholds (bytes) the second Elo knob chooses among:
/// requests above the threshold become spans, those at or below it slab
/// blocks (`hakmem_ptr_bridge::set_span_threshold` accepts 1 KiB – 64 KiB).
pub const SPAN_STRATEGIES: [u32; 3] = [16 << 10, 32 << 10, 64 << 10];

/// True when `t` strictly increases.
const fn increasing(t: &[u32]) -> bool {
    let mut i = 1;
    while i < t.len() {
        if t[i] <= t[i - 1] {
            return false;
        }
        i += 1;
    }
    true
}

// Elo's pruning walks a knob's values in order; the thresholds stay in the
// range `set_span_threshold` accepts, and the last one (the learner's
// initial confirmed strategy) is the default threshold, `MAX_SPAN_THRESHOLD`.
static_assertions::const_assert!(increasing(&DECAY_STRATEGIES));
static_assertions::const_assert!(increasing(&SPAN_STRATEGIES));
static_assertions::const_assert!(SPAN_STRATEGIES[0] as usize >= hakmem_ptr_bridge::TINY_MAX);
static_assertions::const_assert_eq!(
    SPAN_STRATEGIES[SPAN_STRATEGIES.len() - 1] as usize,
    hakmem_ptr_bridge::MAX_SPAN_THRESHOLD
);

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

impl Learner {
    pub(super) fn restart_epoch(&mut self, s: &Sample) {
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
    pub(super) fn span_turn(&self) -> bool {
        let r = self.regime;
        self.cfg.span
            && r != TINY_REGIME
            && self.span[r].phase() != Phase::Frozen
            && (!self.cfg.elo || self.decay[r].phase() == Phase::Frozen)
    }

    /// Whether the epoch under way explores a strategy that already scores
    /// clearly (by the Elo `prune` gap) below the confirmed one's average:
    /// it ends now, as a loss, instead of costing a whole epoch.
    pub(super) fn clearly_losing(&mut self, s: &Sample) -> bool {
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

    pub(super) fn close_epoch(
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
    pub(super) fn knob_state(&self, knob: Knob) -> (u32, Phase, f64) {
        fn get<const K: usize>(e: &Elo<K>) -> (u32, Phase, f64) {
            (e.value(e.current()), e.phase(), e.rating(e.current()))
        }
        match knob {
            Knob::DecayMs => get(&self.decay[self.regime]),
            Knob::SpanThreshold => get(&self.span[self.regime]),
        }
    }

    pub(super) fn apply_knob(
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
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::tests::{ev, sample};
    use super::super::LearnerConfig;
    use super::*;
    use crate::{EventKind, PolicyTable};
    use hakmem_ptr_bridge::NUM_TINY_CLASSES;
    use std::vec::Vec;

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
    /// while the decay knob learns (instead of taking its first LEARN
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
