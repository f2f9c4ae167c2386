//! Runtime configuration: `hakmem::options` setters and getters, bad
//! `HAKMEM_*` values (one line each on stderr, the default used) and
//! `HAKMEM_VERBOSE=1` (the settings in force, at start-up).
//!
//! hakmem is not this binary's global allocator, so nothing reads the
//! configuration before a case calls hakmem. The cases that depend on the
//! environment, or on hakmem not having started, run in a child process
//! (the test binary runs itself with `--exact <case>` and
//! `HAKMEM_OPT_CHILD=1`).

mod common;

use hakmem::options::{self, ForeignFree, OptionError, StatsMode};

const CHILD: &str = "HAKMEM_OPT_CHILD";

fn in_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

/// Runs `case` in a child with `env` (and no other `HAKMEM_*` variable);
/// returns its stderr.
fn child(case: &str, env: &[(&str, &str)]) -> String {
    let out = common::run_child(CHILD, case, env);
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Some allocations through hakmem (the first slow path reads the
/// environment).
fn churn() {
    let mut v = [core::ptr::null_mut(); 64];
    for (i, p) in v.iter_mut().enumerate() {
        *p = hakmem::malloc(16 + i * 100);
        assert!(!p.is_null());
    }
    for p in v {
        // SAFETY: blocks from hakmem::malloc above, freed once.
        unsafe { hakmem::free(p) };
    }
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

/// Every variable with a bad value: one line each, and the default in
/// force.
const BAD: &[(&str, &str, &str)] = &[
    ("HAKMEM_DECAY_MS", "abc", "not a number"),
    ("HAKMEM_SPAN_THRESHOLD", "12", "not between 1024 and 65536"),
    ("HAKMEM_NODES", "7", "not 1 or 2"),
    ("HAKMEM_THP_MIN", "-1", "not a number"),
    ("HAKMEM_REFILL", "0", "not between 1 and 1024"),
    ("HAKMEM_CACHE_CAP", "99999", "not between 0 and 4096"),
    ("HAKMEM_SECURE", "maybe", "not 1 or 0"),
    ("HAKMEM_STATS", "loud", "not 1, table or json"),
    (
        "HAKMEM_FOREIGN_FREE",
        "sometimes",
        "not abort, ignore or forward",
    ),
    ("HAKMEM_BACKGROUND", "perhaps", "not 1 or 0"),
    ("HAKMEM_BACKGROUND_MS", "0", "not between 1 and 60000"),
    ("HAKMEM_VERBOSE", "loud", "not 1 or 0"),
    ("HAKMEM_ACE", "later", "not 1 or 0"),
    ("HAKMEM_ACE_LOG", "much", "not 1 or 0"),
    ("HAKMEM_ACE_TICK_MS", "2", "not between 5 and 1000"),
    ("HAKMEM_ACE_IDLE_MS", "soon", "not a number"),
    (
        "HAKMEM_ACE_POLICIES",
        "bandit,magic",
        "unknown policy; known: bandit,elo,span,idle,prefill",
    ),
];

#[test]
fn bad_values_are_reported_once_and_the_defaults_apply() {
    if in_child() {
        churn();
        churn();
        assert_eq!(options::decay_ms(), 500);
        assert_eq!(hakmem::span_threshold(), 65536);
        assert!(!options::secure());
        assert_eq!(options::stats_mode(), StatsMode::Off);
        assert_eq!(options::foreign_free(), ForeignFree::Abort);
        assert_eq!(options::foreign_free(), ForeignFree::Abort);
        assert!(!options::background());
        assert!(!hakmem::background::state().thread_running);
        assert_eq!(options::background_ms(), 250);
        // HAKMEM_ACE's bad value: learning stays off.
        assert!(!hakmem::ace::start_from_env());
        let c = hakmem::ace::AceConfig::from_env();
        assert_eq!(c, hakmem::ace::AceConfig::default());
        return;
    }
    let env: Vec<(&str, &str)> = BAD.iter().map(|&(k, v, _)| (k, v)).collect();
    let err = child("bad_values_are_reported_once_and_the_defaults_apply", &env);
    for &(k, v, why) in BAD {
        let line = format!("hakmem: {k}={v} ignored ({why})\n");
        assert_eq!(count(&err, &line), 1, "{line:?} in:\n{err}");
    }
    assert_eq!(
        count(&err, "hakmem: setting"),
        0,
        "HAKMEM_VERBOSE=loud is off"
    );
}

#[test]
fn verbose_prints_the_settings_in_force_at_start() {
    if in_child() {
        churn();
        churn();
        return;
    }
    let err = child(
        "verbose_prints_the_settings_in_force_at_start",
        &[
            ("HAKMEM_VERBOSE", "1"),
            ("HAKMEM_DECAY_MS", "123"),
            ("HAKMEM_NODES", "2"),
            ("HAKMEM_BACKGROUND_MS", "40"),
            ("HAKMEM_FOREIGN_FREE", "ignore"),
        ],
    );
    for line in [
        "hakmem: setting HAKMEM_SECURE=off\n",
        "hakmem: setting HAKMEM_STATS=off\n",
        "hakmem: setting HAKMEM_FOREIGN_FREE=ignore\n",
        "hakmem: setting HAKMEM_DECAY_MS=123\n",
        "hakmem: setting HAKMEM_SPAN_THRESHOLD=65536\n",
        "hakmem: setting HAKMEM_NODES=2\n",
        "hakmem: setting HAKMEM_THP_MIN=0\n",
        "hakmem: setting HAKMEM_REFILL=(per-class default)\n",
        "hakmem: setting HAKMEM_CACHE_CAP=(per-class default)\n",
        "hakmem: setting HAKMEM_BACKGROUND=off\n",
        "hakmem: setting HAKMEM_BACKGROUND_MS=40\n",
        "hakmem: setting HAKMEM_ACE=off\n",
    ] {
        assert_eq!(count(&err, line), 1, "{line:?} in:\n{err}");
    }
    assert_eq!(count(&err, "hakmem: setting "), 12, "{err}");
}

#[test]
fn verbose_is_quiet_by_default() {
    if in_child() {
        churn();
        return;
    }
    let err = child("verbose_is_quiet_by_default", &[]);
    assert_eq!(err.matches("hakmem:").count(), 0, "{err}");
}

#[test]
fn setters_change_what_is_in_force() {
    if in_child() {
        churn();
        options::set_decay_ms(80).unwrap();
        assert_eq!(options::decay_ms(), 80);
        assert_eq!(hakmem_superslab_decay(), 80);
        // The automatic purge interval follows the decay delay.
        assert_eq!(options::background_ms(), 40);
        options::set_background_ms(15).unwrap();
        assert_eq!(options::background_ms(), 15);
        assert_eq!(
            options::set_background_ms(60_001),
            Err(OptionError::OutOfRange {
                min: 1,
                max: 60_000
            })
        );
        options::set_background_ms(0).unwrap();
        assert_eq!(options::background_ms(), 40);
        options::set_background(true).unwrap();
        assert!(options::background());
        options::set_background(false).unwrap();
        assert!(!options::background());
        // Over HAKMEM_FOREIGN_FREE=abort: a foreign pointer is let through
        // with a line (it would abort otherwise).
        options::set_foreign_free(ForeignFree::Ignore).unwrap();
        assert_eq!(options::foreign_free(), ForeignFree::Ignore);
        let mut on_stack = [0u64; 4];
        // SAFETY: a pointer hakmem never handed out, which the policy says
        // to leave alone.
        unsafe { hakmem::free(on_stack.as_mut_ptr().cast()) };
        options::set_foreign_free(ForeignFree::Abort).unwrap();
        assert_eq!(options::foreign_free(), ForeignFree::Abort);
        options::set_stats(StatsMode::Json).unwrap();
        assert_eq!(options::stats_mode(), StatsMode::Json);
        // The secure mode is fixed: hakmem has allocated.
        assert_eq!(options::set_secure(true), Err(OptionError::TooLate));
        assert_eq!(options::set_secure(false), Ok(()));
        assert!(!options::secure());
        return;
    }
    let err = child(
        "setters_change_what_is_in_force",
        &[("HAKMEM_FOREIGN_FREE", "abort")],
    );
    assert_eq!(
        count(&err, "pointer not allocated by hakmem ignored"),
        1,
        "{err}"
    );
    // HAKMEM_STATS was off; set_stats(Json) made the exit report JSON.
    assert_eq!(count(&err, "{\"allocs\":"), 1, "{err}");
}

fn hakmem_superslab_decay() -> u32 {
    hakmem::ace::state().decay_ms
}

#[test]
fn the_secure_mode_is_chosen_before_the_first_allocation_only() {
    if in_child() {
        // The first call into hakmem: the choice is taken.
        assert_eq!(options::set_secure(true), Ok(()));
        assert!(options::secure() && hakmem::secure_mode());
        churn();
        assert_eq!(options::set_secure(true), Ok(()));
        let e = options::set_secure(false).unwrap_err();
        assert_eq!(e, OptionError::TooLate);
        assert!(e.to_string().contains("too late"), "{e}");
        assert!(hakmem::secure_mode(), "a refused setter changes nothing");
        return;
    }
    child(
        "the_secure_mode_is_chosen_before_the_first_allocation_only",
        &[],
    );
}

#[test]
fn set_secure_before_start_overrides_the_environment() {
    if in_child() {
        assert_eq!(options::set_secure(false), Ok(()));
        churn();
        assert!(!hakmem::secure_mode());
        assert_eq!(options::set_secure(true), Err(OptionError::TooLate));
        return;
    }
    child(
        "set_secure_before_start_overrides_the_environment",
        &[("HAKMEM_SECURE", "1")],
    );
}

#[test]
fn option_errors_say_what_went_wrong() {
    assert_eq!(
        OptionError::OutOfRange {
            min: 1,
            max: 60_000
        }
        .to_string(),
        "value out of range (1..=60000)"
    );
    let e: Box<dyn std::error::Error> = Box::new(OptionError::Spawn);
    assert!(e.to_string().contains("thread"));
}
