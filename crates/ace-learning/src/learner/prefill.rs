//! The warm-pool prefill budget set at an idle trim.

use hakmem_ptr_bridge::NUM_CLASSES;

use super::{Change, Learner, TickResult};
use crate::PolicyWriter;

impl Learner {
    /// At an idle trim: the classes that had at least `prefill_share` of
    /// the recent refills get a prefill budget of their cache cap (the
    /// table clamps it to `prefill_limit`), so that each thread's first
    /// refill after the idle period fills its cache in one batch.
    pub(super) fn start_prefill(
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
    pub(super) fn end_prefill(
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
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::tests::{ev, sample};
    use super::super::LearnerConfig;
    use super::*;
    use crate::{EventKind, PolicyTable};
    use std::vec::Vec;

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
}
