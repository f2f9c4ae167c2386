//! Workload shift detection: the event mix, its bins and the regimes.

use hakmem_ptr_bridge::NUM_TINY_CLASSES;

use super::Learner;
use crate::math::ln;
use crate::{Event, EventKind};

/// Bins of the event mix: tiny/mid refill, tiny/mid flush, tiny slab
/// traffic, span map, span unmap, mid slab traffic.
pub(super) const BINS: usize = 8;

/// Workload regimes, each with its own Elo state for the decay knob (the
/// seeds' *strategy cache*): which tier produces most of the slow-path
/// events — tiny (refills and flushes of classes ≤ 1 KiB), mid (refills
/// and flushes of bigger classes, slab traffic) or spans.
pub const REGIMES: usize = 3;

/// Names of the [`REGIMES`].
pub const REGIME_NAMES: [&str; REGIMES] = ["tiny", "mid", "span"];

/// The tiny regime (index into [`REGIME_NAMES`]).
pub(super) const TINY_REGIME: usize = 0;

pub(super) fn regime_of(mix: &[f64; BINS]) -> usize {
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

pub(super) fn bin(ev: &Event) -> usize {
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
const MID_SPAN_KIB: u32 = (hakmem_ptr_bridge::MAX_CLASS_SIZE >> 10) as u32 + 4;

fn log2(x: f64) -> f64 {
    ln(x) / core::f64::consts::LN_2
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Shift {
    pub(super) last: [f64; BINS],
    pub(super) fast: [f64; BINS],
    pub(super) slow: [f64; BINS],
    pub(super) fast_rate: f64,
    pub(super) slow_rate: f64,
    pub(super) samples: u32,
    pub(super) quiet_until_ms: u64,
    pub(super) named: bool,
}

impl Learner {
    pub(super) fn detect_shift(&mut self, now: u64, dt_ms: u64) -> Option<(f64, f64)> {
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
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::tests::{ev, sample};
    use super::super::{Change, LearnerConfig};
    use super::*;
    use crate::elo::Phase;
    use crate::{EventKind, PolicyTable};
    use std::vec::Vec;

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
                (EventKind::SpanMap, 0) // spans
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
}
