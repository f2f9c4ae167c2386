//! The learner's tuning.

use crate::elo::EloConfig;

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
    /// Start every class's bandit from the prior `ARM_PRIOR` (on
    /// `PRIOR_ARM`) instead of from no statistics on arm 0.
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
