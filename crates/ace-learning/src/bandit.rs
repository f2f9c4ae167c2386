//! UCB1 over a fixed set of `K` arms, with rewards in `[0, 1]`.
//!
//! `select` plays every arm once (in index order), then the arm maximising
//! `mean_i + c · sqrt(ln n / n_i)`. UCB1's textbook constant is `c = √2`;
//! the allocator's rewards differ by a few hundredths between good and bad
//! arms, so the learner uses a smaller `c` (configurable).
//!
//! Workloads drift, so the bandit is not stationary: a pull count stops
//! growing at `window` (the mean becomes an exponential average over about
//! `window` pulls), and [`Ucb1::soften`] shrinks the counts after a
//! workload shift so that every arm gets re-explored soon.

use crate::math::{ln, sqrt};

/// A UCB1 bandit with `K` arms.
#[derive(Clone, Copy, Debug)]
pub struct Ucb1<const K: usize> {
    n: [u32; K],
    mean: [f64; K],
    c: f64,
    window: u32,
}

impl<const K: usize> Ucb1<K> {
    /// A fresh bandit: no arm played, exploration constant `c`, counts
    /// capped at `window` (≥ 1).
    pub const fn new(c: f64, window: u32) -> Self {
        assert!(K > 0);
        Ucb1 {
            n: [0; K],
            mean: [0.0; K],
            c,
            window: if window == 0 { 1 } else { window },
        }
    }

    /// The arm to play next.
    pub fn select(&self) -> usize {
        if let Some(i) = self.n.iter().position(|&n| n == 0) {
            return i;
        }
        let total: f64 = self.n.iter().map(|&n| n as f64).sum();
        let lt = ln(total);
        let mut best = 0;
        let mut best_v = f64::NEG_INFINITY;
        for i in 0..K {
            let v = self.mean[i] + self.c * sqrt(lt / self.n[i] as f64);
            if v > best_v {
                best_v = v;
                best = i;
            }
        }
        best
    }

    /// Records `reward` (clamped to `[0, 1]`) for `arm`.
    pub fn update(&mut self, arm: usize, reward: f64) {
        let r = if reward.is_nan() {
            0.0
        } else {
            reward.clamp(0.0, 1.0)
        };
        if self.n[arm] < self.window {
            self.n[arm] += 1;
        }
        self.mean[arm] += (r - self.mean[arm]) / self.n[arm] as f64;
    }

    /// Caps every pull count at `max` (keeping the means), so that the
    /// exploration bonus grows back and the arms get re-tried.
    pub fn soften(&mut self, max: u32) {
        for n in self.n.iter_mut() {
            *n = (*n).min(max);
        }
    }

    /// The played arm with the highest mean (arm 0 when none was played).
    pub fn best(&self) -> usize {
        let mut best = 0;
        let mut best_v = f64::NEG_INFINITY;
        for i in 0..K {
            if self.n[i] > 0 && self.mean[i] > best_v {
                best_v = self.mean[i];
                best = i;
            }
        }
        best
    }

    /// Pulls of `arm` counted (at most the window).
    pub fn pulls(&self, arm: usize) -> u32 {
        self.n[arm]
    }

    /// Mean reward of `arm`.
    pub fn mean(&self, arm: usize) -> f64 {
        self.mean[arm]
    }

    /// Restores one arm's statistics (profile loading).
    pub fn set_arm(&mut self, arm: usize, pulls: u32, mean: f64) {
        self.n[arm] = pulls.min(self.window);
        self.mean[arm] = if mean.is_finite() {
            mean.clamp(0.0, 1.0)
        } else {
            0.0
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic generator for the synthetic rewards.
    struct Lcg(u64);
    impl Lcg {
        fn unit(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    #[test]
    fn plays_each_arm_then_converges_to_the_best() {
        let means = [0.50, 0.55, 0.70, 0.60];
        let mut b: Ucb1<4> = Ucb1::new(0.3, 1000);
        let mut rng = Lcg(7);
        let mut plays = [0u32; 4];
        for step in 0..2000 {
            let a = b.select();
            if step < 4 {
                assert_eq!(a, step, "every arm is played once first");
            }
            plays[a] += 1;
            let r = means[a] + 0.2 * (rng.unit() - 0.5);
            b.update(a, r);
        }
        assert_eq!(b.best(), 2);
        assert!(plays[2] > 1500, "best arm played {plays:?}");
    }

    #[test]
    fn adapts_after_a_shift() {
        let mut b: Ucb1<3> = Ucb1::new(0.3, 32);
        for _ in 0..300 {
            let a = b.select();
            b.update(a, [0.9, 0.5, 0.4][a]);
        }
        assert_eq!(b.best(), 0);
        // The world changes: arm 1 is now the best.
        b.soften(2);
        for _ in 0..300 {
            let a = b.select();
            b.update(a, [0.3, 0.8, 0.4][a]);
        }
        assert_eq!(b.best(), 1);
    }

    #[test]
    fn clamps_rewards() {
        let mut b: Ucb1<2> = Ucb1::new(0.1, 10);
        b.update(0, 5.0);
        b.update(1, f64::NAN);
        assert_eq!(b.mean(0), 1.0);
        assert_eq!(b.mean(1), 0.0);
    }
}
