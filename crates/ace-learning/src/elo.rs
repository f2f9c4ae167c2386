//! Elo-rated strategies for one discrete knob, with the lifecycle of the
//! seeds' strategy cache: **LEARN** (explore) → **CANARY** (about 5 % of
//! decisions use the candidate) → **FROZEN** (the confirmed best, nothing
//! explored), and back to LEARN when the workload shifts.
//!
//! The machinery is generic: a strategy is an index into a table of knob
//! values (`u32`), and the caller reports one score per *decision*
//! (an epoch during which the chosen strategy was applied; higher is
//! better). Each report is a match: the strategy just played against the
//! strategy played in the epoch before (adjacent epochs see nearly the same
//! workload, which keeps slow drift out of the comparison), or against the
//! confirmed strategy's average score when there is no such neighbour.
//! Ratings move by the usual rule `R += K · (S − E)`,
//! `E = 1 / (1 + 10^((R_opp − R) / 400))`, `S ∈ {0, ½, 1}` (a tie when the
//! scores differ by less than `tie`).
//!
//! Lifecycle:
//! - LEARN: every strategy plays `min_games` epochs (least played first;
//!   among equally played ones the nearest to the confirmed strategy in the
//!   value table first, so the confirmed one opens the cycle and sets the
//!   baseline, then its neighbours), then `learn_extra` more epochs
//!   ε-greedy on the rating. The best-rated strategy becomes the
//!   candidate; if it is the confirmed one, or not `margin` points better,
//!   the knob freezes on the confirmed one.
//! - **Pruning** (the values are ordered, and a knob's cost is assumed to
//!   be unimodal in its value): a strategy that scores more than `prune`
//!   below the confirmed one's average is a *clear loss*; it and every
//!   strategy further from the confirmed one on the same side are not
//!   played again in this LEARN cycle. The caller may also end a clearly
//!   losing epoch early ([`Elo::baseline`], [`Elo::exploring`]), so a bad
//!   strategy costs one short look, not a whole epoch per strategy beyond
//!   it.
//! - CANARY: one decision in `canary_every` (20 → 5 %) uses the candidate,
//!   the others the confirmed strategy. After `canary_trials` candidate
//!   epochs it is promoted if it is still `margin` points ahead and won at
//!   least half of its canary matches; either way the knob freezes.
//! - FROZEN: the confirmed strategy every time; no match is played.
//! - [`Elo::relearn`] (a workload shift): back to LEARN; ratings are pulled
//!   half-way back to 1500 and game counts reset, so that every strategy is
//!   tried again on the new workload.

use crate::math::pow10;

/// Where a knob is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Exploring every strategy.
    Learn = 0,
    /// Trying the candidate on a small share of decisions.
    Canary = 1,
    /// Using the confirmed strategy only.
    Frozen = 2,
}

impl Phase {
    /// Upper-case name (for logs).
    pub const fn name(self) -> &'static str {
        match self {
            Phase::Learn => "LEARN",
            Phase::Canary => "CANARY",
            Phase::Frozen => "FROZEN",
        }
    }

    pub(crate) const fn from_u8(v: u8) -> Option<Phase> {
        match v {
            0 => Some(Phase::Learn),
            1 => Some(Phase::Canary),
            2 => Some(Phase::Frozen),
            _ => None,
        }
    }
}

/// Tuning of the Elo lifecycle.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EloConfig {
    /// Rating step (K factor).
    pub k_factor: f64,
    /// Epochs each strategy plays in LEARN before a candidate is named.
    pub min_games: u32,
    /// Further ε-greedy LEARN epochs after every strategy has its games.
    pub learn_extra: u32,
    /// Exploration probability of those epochs, per mille.
    pub epsilon_permille: u32,
    /// One CANARY decision in this many uses the candidate (20 → 5 %).
    pub canary_every: u32,
    /// Candidate epochs in CANARY before promotion is decided.
    pub canary_trials: u32,
    /// Rating points a challenger must be ahead to replace the confirmed.
    pub margin: f64,
    /// Scores closer than this are a draw.
    pub tie: f64,
    /// A LEARN score this far below the confirmed strategy's average is a
    /// clear loss: that strategy and those beyond it are pruned.
    pub prune: f64,
}

impl EloConfig {
    /// The defaults described in the module documentation.
    pub const DEFAULT: EloConfig = EloConfig {
        k_factor: 32.0,
        min_games: 1,
        learn_extra: 3,
        epsilon_permille: 200,
        canary_every: 20,
        canary_trials: 3,
        margin: 16.0,
        tie: 0.002,
        prune: 0.05,
    };
}

/// A lifecycle change reported by [`Elo::report`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    /// Phase before.
    pub from: Phase,
    /// Phase after.
    pub to: Phase,
    /// Confirmed strategy after the transition.
    pub confirmed: usize,
    /// Candidate strategy (meaningful in CANARY).
    pub candidate: usize,
}

/// Elo ratings and lifecycle of `K` strategies (values of one knob).
#[derive(Clone, Copy, Debug)]
pub struct Elo<const K: usize> {
    values: [u32; K],
    rating: [f64; K],
    games: [u32; K],
    score: [f64; K],
    seen: [bool; K],
    pruned: [bool; K],
    phase: Phase,
    confirmed: usize,
    candidate: usize,
    current: usize,
    prev: Option<(usize, f64)>,
    phase_epochs: u32,
    canary_seen: u32,
    canary_wins: u32,
    decisions: u64,
    candidate_decisions: u64,
    rng: u64,
    cfg: EloConfig,
}

impl<const K: usize> Elo<K> {
    /// Strategies `values`, starting in LEARN with `default` confirmed.
    pub fn new(values: [u32; K], default: usize, cfg: EloConfig, seed: u64) -> Self {
        assert!(K > 0 && default < K);
        Elo {
            values,
            rating: [1500.0; K],
            games: [0; K],
            score: [0.0; K],
            seen: [false; K],
            pruned: [false; K],
            phase: Phase::Learn,
            confirmed: default,
            candidate: default,
            current: default,
            prev: None,
            phase_epochs: 0,
            canary_seen: 0,
            canary_wins: 0,
            decisions: 0,
            candidate_decisions: 0,
            rng: seed | 1,
            cfg,
        }
    }

    fn next_rand(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn best_rated(&self, exclude: Option<usize>, only_seen: bool) -> Option<usize> {
        let mut best = None;
        let mut best_r = f64::NEG_INFINITY;
        for i in 0..K {
            if Some(i) == exclude || (only_seen && !self.seen[i]) || self.pruned[i] {
                continue;
            }
            if self.rating[i] > best_r {
                best_r = self.rating[i];
                best = Some(i);
            }
        }
        best
    }

    /// Chooses the strategy for the next decision (and remembers it).
    pub fn choose(&mut self) -> usize {
        let pick = match self.phase {
            Phase::Learn => {
                let c = self.confirmed;
                let least = (0..K)
                    .filter(|&i| !self.pruned[i])
                    .min_by_key(|&i| (self.games[i], i.abs_diff(c), i))
                    .unwrap_or(c);
                if self.games[least] < self.cfg.min_games {
                    least
                } else if (self.next_rand() % 1000) < self.cfg.epsilon_permille as u64 {
                    let n = self.next_rand() % (self.open() as u64).max(1);
                    (0..K)
                        .filter(|&i| !self.pruned[i])
                        .nth(n as usize)
                        .unwrap_or(c)
                } else {
                    self.best_rated(None, false).unwrap_or(c)
                }
            }
            Phase::Canary => {
                let every = self.cfg.canary_every.max(1);
                if self.phase_epochs % every == every - 1 {
                    self.candidate
                } else {
                    self.confirmed
                }
            }
            Phase::Frozen => self.confirmed,
        };
        self.decisions += 1;
        if self.phase == Phase::Canary && pick == self.candidate {
            self.candidate_decisions += 1;
        }
        self.current = pick;
        pick
    }

    /// Strategies not pruned in this LEARN cycle.
    fn open(&self) -> u32 {
        self.pruned.iter().filter(|&&p| !p).count() as u32
    }

    /// Whether the last decision explores: it used a strategy other than
    /// the confirmed one.
    pub fn exploring(&self) -> bool {
        self.current != self.confirmed
    }

    /// The confirmed strategy's average score in this cycle, once it has
    /// been played (what an exploring epoch is compared with).
    pub fn baseline(&self) -> Option<f64> {
        self.seen[self.confirmed].then_some(self.score[self.confirmed])
    }

    /// Whether strategy `i` is pruned in this LEARN cycle.
    pub fn pruned(&self, i: usize) -> bool {
        self.pruned[i]
    }

    /// Expected score of a player rated `a` against one rated `b`.
    fn expect(a: f64, b: f64) -> f64 {
        1.0 / (1.0 + pow10(((b - a) / 400.0).clamp(-20.0, 20.0)))
    }

    /// Plays one match of `i` (score `s`) against `j` (score `sj`);
    /// returns `i`'s result.
    fn play(&mut self, i: usize, s: f64, j: usize, sj: f64) -> f64 {
        let outcome = if s > sj + self.cfg.tie {
            1.0
        } else if s < sj - self.cfg.tie {
            0.0
        } else {
            0.5
        };
        let e = Self::expect(self.rating[i], self.rating[j]);
        let d = self.cfg.k_factor * (outcome - e);
        self.rating[i] += d;
        self.rating[j] -= d;
        outcome
    }

    /// Reports the score of the decision made by the last [`Elo::choose`]
    /// (higher is better). Returns the lifecycle transition, if any.
    pub fn report(&mut self, score: f64) -> Option<Transition> {
        let score = if score.is_finite() { score } else { -1e9 };
        let i = self.current;
        let mut outcome = None;
        if self.phase != Phase::Frozen {
            let opponent = match self.prev {
                Some((j, sj)) if j != i => Some((j, sj)),
                _ if i != self.confirmed && self.seen[self.confirmed] => {
                    Some((self.confirmed, self.score[self.confirmed]))
                }
                _ => self.best_rated(Some(i), true).map(|j| (j, self.score[j])),
            };
            if let Some((j, sj)) = opponent {
                outcome = Some(self.play(i, score, j, sj));
            }
        }
        if self.seen[i] {
            self.score[i] += 0.3 * (score - self.score[i]);
        } else {
            self.score[i] = score;
            self.seen[i] = true;
        }
        self.games[i] = self.games[i].saturating_add(1);
        self.prev = Some((i, score));
        self.phase_epochs += 1;
        if self.phase == Phase::Learn && i != self.confirmed {
            if let Some(b) = self.baseline() {
                if score < b - self.cfg.prune {
                    // A clear loss: prune it and everything beyond it.
                    let c = self.confirmed;
                    for j in 0..K {
                        if (i > c && j >= i) || (i < c && j <= i) {
                            self.pruned[j] = true;
                        }
                    }
                }
            }
        }
        let from = self.phase;
        match self.phase {
            Phase::Learn => {
                let min = self.cfg.min_games;
                let all = (0..K).all(|j| self.pruned[j] || self.games[j] >= min);
                // Only the confirmed strategy left open: nothing to explore.
                let done = self.open() <= 1
                    || self.phase_epochs >= self.open() * min + self.cfg.learn_extra;
                if all && done {
                    let best = self.best_rated(None, true).unwrap_or(self.confirmed);
                    self.candidate = best;
                    if best == self.confirmed
                        || self.rating[best] < self.rating[self.confirmed] + self.cfg.margin
                    {
                        self.enter(Phase::Frozen);
                    } else {
                        self.enter(Phase::Canary);
                    }
                }
            }
            Phase::Canary => {
                if i == self.candidate {
                    self.canary_seen += 1;
                    if outcome == Some(1.0) {
                        self.canary_wins += 1;
                    }
                    if self.canary_seen >= self.cfg.canary_trials {
                        if self.rating[self.candidate]
                            >= self.rating[self.confirmed] + self.cfg.margin
                            && 2 * self.canary_wins >= self.canary_seen
                        {
                            self.confirmed = self.candidate;
                        }
                        self.enter(Phase::Frozen);
                    }
                }
            }
            Phase::Frozen => {}
        }
        (self.phase != from).then_some(Transition {
            from,
            to: self.phase,
            confirmed: self.confirmed,
            candidate: self.candidate,
        })
    }

    fn enter(&mut self, p: Phase) {
        self.phase = p;
        self.pruned = [false; K];
        self.phase_epochs = 0;
        self.canary_seen = 0;
        self.canary_wins = 0;
    }

    /// Back to LEARN (the workload shifted): ratings, game counts and
    /// remembered scores are reset — they described another workload. The
    /// confirmed strategy stays the incumbent until a candidate beats it.
    pub fn relearn(&mut self) {
        for i in 0..K {
            self.rating[i] = 1500.0;
            self.games[i] = 0;
            self.seen[i] = false;
        }
        self.prev = None;
        self.enter(Phase::Learn);
    }

    /// Resumes after a pause (the workload was elsewhere): forgets the
    /// last epoch, so that the next match is not played against a score
    /// measured on another workload. Phase and ratings are kept.
    pub fn resume(&mut self) {
        self.prev = None;
    }

    /// Makes the confirmed strategy the current one without a decision
    /// (the knob waits while another knob of the caller is being learned).
    pub fn hold(&mut self) {
        self.current = self.confirmed;
    }

    /// Current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }
    /// Confirmed strategy.
    pub fn confirmed(&self) -> usize {
        self.confirmed
    }
    /// Candidate strategy.
    pub fn candidate(&self) -> usize {
        self.candidate
    }
    /// Strategy of the last decision.
    pub fn current(&self) -> usize {
        self.current
    }
    /// Knob value of strategy `i`.
    pub fn value(&self, i: usize) -> u32 {
        self.values[i]
    }
    /// Rating of strategy `i`.
    pub fn rating(&self, i: usize) -> f64 {
        self.rating[i]
    }
    /// Average score of strategy `i` (0 until it is played).
    pub fn score(&self, i: usize) -> f64 {
        self.score[i]
    }
    /// Decisions made.
    pub fn decisions(&self) -> u64 {
        self.decisions
    }
    /// CANARY decisions that used the candidate.
    pub fn candidate_decisions(&self) -> u64 {
        self.candidate_decisions
    }
    /// The strategy whose value is closest to `v`.
    pub fn nearest(&self, v: u32) -> usize {
        (0..K)
            .min_by_key(|&i| (self.values[i] as i64 - v as i64).unsigned_abs())
            .unwrap_or(0)
    }

    /// Restores a saved state (profile loading): ratings, the confirmed
    /// strategy and the phase (CANARY is restored as LEARN).
    pub fn restore(&mut self, rating: [f64; K], confirmed: usize, phase: Phase) {
        for i in 0..K {
            self.rating[i] = if rating[i].is_finite() {
                rating[i].clamp(0.0, 4000.0)
            } else {
                1500.0
            };
        }
        self.confirmed = confirmed.min(K - 1);
        self.candidate = self.confirmed;
        self.current = self.confirmed;
        self.prev = None;
        self.enter(if phase == Phase::Frozen {
            Phase::Frozen
        } else {
            Phase::Learn
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A world where strategy `best` scores 1.0 and the others 0.5.
    fn run<const K: usize>(e: &mut Elo<K>, best: usize, epochs: usize) -> usize {
        let mut candidate_uses = 0;
        for _ in 0..epochs {
            let s = e.choose();
            if e.phase() == Phase::Canary && s == e.candidate() {
                candidate_uses += 1;
            }
            e.report(if s == best { 1.0 } else { 0.5 });
        }
        candidate_uses
    }

    #[test]
    fn learns_canaries_and_freezes_on_the_best() {
        // Two games each and four ε-greedy epochs: this test's noise (one
        // score in 7 flipped) needs more than the default's short LEARN.
        let cfg = EloConfig {
            min_games: 2,
            learn_extra: 4,
            ..EloConfig::DEFAULT
        };
        let mut e = Elo::new([10, 20, 30, 40], 1, cfg, 42);
        assert_eq!(e.phase(), Phase::Learn);
        let mut phases = [false; 3];
        let mut canary_decisions = 0;
        let mut candidate_decisions = 0;
        for n in 0..400 {
            let s = e.choose();
            if e.phase() == Phase::Canary {
                canary_decisions += 1;
                if s == e.candidate() {
                    candidate_decisions += 1;
                }
            }
            phases[e.phase() as usize] = true;
            // (Not on its first game: a clear first loss prunes it, by design.)
            let noise = if n % 7 == 5 { -0.6 } else { 0.0 };
            e.report(if s == 3 { 1.0 + noise } else { 0.5 });
        }
        assert!(phases[0] && phases[1] && phases[2], "{phases:?}");
        assert_eq!(e.phase(), Phase::Frozen);
        assert_eq!(e.confirmed(), 3);
        assert_eq!(e.value(e.confirmed()), 40);
        // About 5 % of the CANARY decisions used the candidate.
        assert_eq!(candidate_decisions, 3);
        assert_eq!(canary_decisions, 60);
        // FROZEN: the confirmed strategy only.
        for _ in 0..50 {
            assert_eq!(e.choose(), 3);
            e.report(0.0);
        }
        assert_eq!(e.phase(), Phase::Frozen);
    }

    /// LEARN opens with the confirmed strategy, then its neighbours; a
    /// clear loss prunes it and everything beyond it, so the far end of the
    /// table is never played and the cycle is shorter.
    #[test]
    fn learn_starts_near_the_confirmed_and_prunes_clear_losses() {
        // Thresholds 16, 32, 64 (KiB) with 64 confirmed; the cost grows as
        // the value moves away from 64.
        let mut e = Elo::new([16, 32, 64], 2, EloConfig::DEFAULT, 5);
        let mut played = [0u32; 3];
        let mut order = [usize::MAX; 2];
        let mut n = 0;
        while e.phase() == Phase::Learn {
            let s = e.choose();
            if n < 2 {
                order[n] = s;
            }
            n += 1;
            played[s] += 1;
            e.report(match s {
                2 => -1.0,
                1 => -1.2,
                _ => -1.6,
            });
            assert!(n < 50);
        }
        assert_eq!(order, [2, 1], "confirmed first, then its neighbour");
        assert_eq!(played[0], 0, "beyond a clear loss: pruned, never played");
        assert_eq!((e.phase(), e.confirmed()), (Phase::Frozen, 2));
        // The confirmed once, the loser once: nothing else is left open.
        assert_eq!(n, 2);
        // A close loss (within `prune`) is not pruned: every strategy plays.
        let mut e = Elo::new([16, 32, 64], 2, EloConfig::DEFAULT, 5);
        let mut played = [0u32; 3];
        while e.phase() == Phase::Learn {
            let s = e.choose();
            played[s] += 1;
            e.report(if s == 2 { -1.0 } else { -1.01 });
        }
        assert!(played.iter().all(|&p| p >= 1), "{played:?}");
        // Pruning lasts one LEARN cycle.
        e.relearn();
        assert!((0..3).all(|i| !e.pruned(i)));
    }

    #[test]
    fn keeps_the_confirmed_when_nothing_is_better() {
        let mut e = Elo::new([1, 2, 3], 0, EloConfig::DEFAULT, 1);
        for _ in 0..100 {
            e.choose();
            e.report(0.7);
        }
        assert_eq!(e.phase(), Phase::Frozen);
        assert_eq!(e.confirmed(), 0);
    }

    #[test]
    fn relearns_after_a_shift() {
        let mut e = Elo::new([1, 2, 3], 0, EloConfig::DEFAULT, 9);
        run(&mut e, 2, 300);
        assert_eq!((e.phase(), e.confirmed()), (Phase::Frozen, 2));
        e.relearn();
        assert_eq!(e.phase(), Phase::Learn);
        let uses = run(&mut e, 0, 400);
        assert_eq!(uses, 3, "{e:?}");
        assert_eq!((e.phase(), e.confirmed()), (Phase::Frozen, 0));
    }

    #[test]
    fn nearest_and_restore() {
        let mut e = Elo::new([25, 100, 500, 2000], 0, EloConfig::DEFAULT, 3);
        assert_eq!(e.nearest(480), 2);
        assert_eq!(e.nearest(0), 0);
        e.restore([1400.0, 1600.0, f64::NAN, 1500.0], 1, Phase::Frozen);
        assert_eq!(e.phase(), Phase::Frozen);
        assert_eq!(e.choose(), 1);
        assert_eq!(e.rating(2), 1500.0);
    }
}
