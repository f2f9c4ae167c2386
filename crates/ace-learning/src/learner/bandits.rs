//! The per-class bandits: the arms (refill count, cache cap) and the
//! windows that judge them.

use hakmem_ptr_bridge::{CLASS_SIZE, NUM_CLASSES};

use super::{Change, Learner, Sample, TickResult};
use crate::bandit::Ucb1;
use crate::PolicyWriter;

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

/// The arms; arm 0 is the base policy. A bandit without the prior (the mid
/// classes, or every class with `LearnerConfig::prior` off) plays each once
/// in this order before it exploits, so the arms that usually pay (bigger
/// batches) come first and the one that usually costs (half batches) last.
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

/// The arm the prior favours (played from the class's first full window
/// on).
pub const PRIOR_ARM: usize = 3;
static_assertions::const_assert!(PRIOR_ARM < ARMS);

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

#[derive(Clone, Copy, Debug)]
pub(crate) struct ClassState {
    pub(crate) ucb: Ucb1<ARMS>,
    pub(crate) arm: u8,
    pub(super) base: u32,
    pub(super) base_cap: u32,
    pub(super) cost_scale: f64,
    pub(super) win_events: u32,
    pub(super) win_threads: u64,
    pub(super) win_start_ms: u64,
    /// Whether the class's arm is in force in the policy table. A class
    /// that starts on the prior's arm gets it only after its first full
    /// window: a class with little traffic keeps the base policy, so the
    /// bigger batches and caps of the prior do not sit in the caches of
    /// classes a program hardly uses (docs/ace.md, "ACE on real
    /// programs"). A loaded profile's arms are in force from the first tick.
    pub(crate) armed: bool,
}

impl Learner {
    pub(super) fn run_bandits(
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
                st.restart_window(now);
                continue;
            }
            if !st.armed {
                // The window ran under the base policy: not a sample of
                // the arm. With enough traffic, the arm comes into force.
                st.restart_window(now);
                if full {
                    st.armed = true;
                    self.put_arm(c, f64::NAN, w, log, out);
                }
                continue;
            }
            let threads = st.win_threads.count_ones().max(1) as f64;
            let arm = st.arm as usize;
            let (r, cap) = arm_policy(st.base, st.base_cap, arm, CLASS_SIZE[c]);
            let time = st.win_events as f64 * cfg.event_ns / (elapsed as f64 * 1e6 * threads);
            let held = threads * (r + cap) as f64 / 2.0 * CLASS_SIZE[c] as f64;
            let cost = time + held / rss;
            st.restart_window(now);
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
                self.put_arm(c, reward, w, log, out);
            }
        }
    }

    /// Writes the arm of every class whose arm is in force (a loaded
    /// profile's; see `ClassState::armed`) at the first tick; values
    /// already in force are no writes.
    pub(super) fn apply_arms(
        &mut self,
        w: &PolicyWriter<'_>,
        log: &mut dyn FnMut(Change),
        out: &mut TickResult,
    ) {
        for c in 0..NUM_CLASSES {
            if self.classes[c].armed {
                self.put_arm(c, f64::NAN, w, log, out);
            }
        }
    }

    /// Writes the policy of class `c`'s current arm into the table and logs
    /// the change (`reward`: the window's that chose the arm, or NaN when
    /// none did); values already in force are no writes.
    fn put_arm(
        &mut self,
        c: usize,
        reward: f64,
        w: &PolicyWriter<'_>,
        log: &mut dyn FnMut(Change),
        out: &mut TickResult,
    ) {
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
                reward,
            });
        }
    }
}

impl ClassState {
    /// Starts a new judging window at `now` (same arm).
    fn restart_window(&mut self, now: u64) {
        self.win_events = 0;
        self.win_threads = 0;
        self.win_start_ms = now;
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

    /// The prior's arm comes into force only for a class with a full window
    /// of traffic: the first tick writes nothing for the tiny classes, a
    /// class with a few refills keeps the base policy, and a busy one gets
    /// the prior's arm after its first full window.
    #[test]
    fn prior_arm_waits_for_traffic() {
        let table = PolicyTable::new();
        let w = table.writer().unwrap();
        let cfg = LearnerConfig {
            elo: false,
            idle: false,
            ..LearnerConfig::DEFAULT
        };
        let mut l = Learner::new(cfg, &table, 500, 0);
        let (busy, quiet) = (3, 6);
        let base = |c: usize| (table.refill_count(c), table.cache_cap(c));
        let (busy0, quiet0) = (base(busy), base(quiet));
        let mut changes = Vec::new();
        l.tick(&sample(20), &w, &mut |c| changes.push(c));
        assert!(changes.is_empty(), "first tick wrote {changes:?}");
        for t in 2..=4u64 {
            for _ in 0..cfg.window_events {
                l.record(&ev(EventKind::Refill, busy, 1));
            }
            l.record(&ev(EventKind::Refill, quiet, 1));
            l.tick(&sample(t * 20), &w, &mut |c| changes.push(c));
        }
        assert_eq!(base(quiet), quiet0, "a quiet class keeps the base policy");
        let c = l.classes[busy];
        let want = arm_policy(c.base, c.base_cap, PRIOR_ARM, CLASS_SIZE[busy]);
        assert!(c.armed);
        assert_ne!(want, busy0);
        assert_eq!(base(busy), want, "the busy class runs the prior's arm");
        assert!(changes
            .iter()
            .all(|ch| matches!(ch, Change::Class { class, .. } if *class == busy)));
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
}
