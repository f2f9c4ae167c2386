//! [`AceConfig`]: the worker's settings, from `HAKMEM_ACE_*`.

use std::path::PathBuf;

use hakmem_ace_learning::LearnerConfig;

use crate::env::{flag, number, number_in, var};

/// Worker configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct AceConfig {
    /// Drain-and-decide period, ms (5..=1000).
    pub tick_ms: u32,
    /// Print every policy change to stderr.
    pub log: bool,
    /// Where the learned state is loaded from at start and saved at stop
    /// (`HAKMEM_ACE_PROFILE`: a file, or a directory holding one file per
    /// program, named after the executable).
    pub profile: Option<PathBuf>,
    /// The policies' tuning.
    pub learner: LearnerConfig,
}

impl Default for AceConfig {
    fn default() -> Self {
        AceConfig {
            tick_ms: 25,
            log: false,
            profile: None,
            learner: LearnerConfig::DEFAULT,
        }
    }
}

impl AceConfig {
    /// The defaults, overridden by `HAKMEM_ACE_LOG`, `HAKMEM_ACE_PROFILE`,
    /// `HAKMEM_ACE_TICK_MS`, `HAKMEM_ACE_IDLE_MS` and `HAKMEM_ACE_POLICIES`
    /// (a comma-separated subset of `bandit,elo,span,idle,prefill`). A value
    /// that cannot be used is reported in one line
    /// (`hakmem: HAKMEM_ACE_TICK_MS=abc ignored (not a number)`) and the
    /// default kept (for `HAKMEM_ACE_POLICIES`, one unknown name makes
    /// the whole value ignored: every policy runs).
    pub fn from_env() -> Self {
        let mut c = AceConfig::default();
        if let Some(on) = flag(crate::env_name!("HAKMEM_ACE_LOG")) {
            c.log = on;
        }
        if let Some(v) = var(crate::env_name!("HAKMEM_ACE_PROFILE")) {
            if !v.is_empty() {
                // A file, or a directory (or a path ending in `/`)
                // holding one profile per program.
                c.profile = super::life::profile_path(v);
            }
        }
        if let Some(n) = number_in(
            crate::env_name!("HAKMEM_ACE_TICK_MS"),
            5,
            1000,
            "not between 5 and 1000",
        ) {
            c.tick_ms = n;
        }
        if let Some(n) = number(crate::env_name!("HAKMEM_ACE_IDLE_MS")) {
            c.learner.idle_ms = n;
        }
        if let Some(v) = var(crate::env_name!("HAKMEM_ACE_POLICIES")) {
            const NAMES: [&[u8]; 5] = [b"bandit", b"elo", b"span", b"idle", b"prefill"];
            if v.split(|&b| b == b',')
                .any(|p| !p.is_empty() && !NAMES.contains(&p))
            {
                crate::env::bad_setting(
                    crate::env_name!("HAKMEM_ACE_POLICIES"),
                    "unknown policy; known: bandit,elo,span,idle,prefill",
                );
            } else {
                let has = |name: &[u8]| v.split(|&b| b == b',').any(|p| p == name);
                c.learner.bandit = has(b"bandit");
                c.learner.elo = has(b"elo");
                c.learner.span = has(b"span");
                c.learner.idle = has(b"idle");
                c.learner.prefill = has(b"prefill");
            }
        }
        c
    }
}
