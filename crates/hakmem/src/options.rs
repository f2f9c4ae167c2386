//! Runtime configuration from Rust: one setter and one getter per option,
//! the Rust side of the `HAKMEM_*` variables (`docs/ENV_VARS.md`).
//!
//! Every function here reads the environment first (if the allocator has
//! not yet), so a value set here wins over the variable. They are safe
//! points (see [`crate::background`]): call them outside any allocation
//! call, never from a `GlobalAlloc` method.
//!
//! ```
//! use hakmem::options::{self, StatsMode};
//!
//! options::set_decay_ms(250).unwrap();
//! assert_eq!(options::decay_ms(), 250);
//! options::set_stats(StatsMode::Off).unwrap();
//! assert!(options::set_background_ms(100_000).is_err());
//! ```

use core::fmt;

use crate::foreign::ForeignPolicy;

/// Why a value was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OptionError {
    /// The option can only be chosen before the first allocation (the
    /// secure mode decides how every block is laid out), and hakmem has
    /// started already.
    TooLate,
    /// The value is outside `min..=max`.
    OutOfRange {
        /// Smallest value accepted.
        min: u32,
        /// Largest value accepted.
        max: u32,
    },
    /// `HakMemSecure` is the global allocator: the secure mode is fixed on.
    SecureRequired,
    /// The background purge thread could not be created.
    Spawn,
}

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionError::TooLate => f.write_str(
                "too late: this option is fixed at the first allocation, which has happened",
            ),
            OptionError::OutOfRange { min, max } => {
                write!(f, "value out of range ({min}..={max})")
            }
            OptionError::SecureRequired => {
                f.write_str("HakMemSecure is the allocator: the secure mode stays on")
            }
            OptionError::Spawn => f.write_str("the background purge thread could not be created"),
        }
    }
}

impl std::error::Error for OptionError {}

/// Reads the configuration (once) and starts what the environment asks
/// for at a safe point (the background purge).
fn safe_point() {
    crate::config::init();
    crate::background::ensure();
}

// ---------------------------------------------------------------------------
// The decay delay (HAKMEM_DECAY_MS).
// ---------------------------------------------------------------------------

/// Sets how long released slabs, empty superslabs and cached spans wait
/// before their memory goes back to the OS, ms (`HAKMEM_DECAY_MS`). Takes
/// effect at the next decay round. The ACE worker, when its `elo` policy
/// runs, may choose another value later.
pub fn set_decay_ms(ms: u32) -> Result<(), OptionError> {
    safe_point();
    hakmem_superslab_backend::set_decay_ms(ms);
    Ok(())
}

/// The decay delay in force, ms.
pub fn decay_ms() -> u32 {
    safe_point();
    hakmem_superslab_backend::decay_ms()
}

// ---------------------------------------------------------------------------
// The exit report (HAKMEM_STATS).
// ---------------------------------------------------------------------------

/// What is printed at exit (`HAKMEM_STATS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatsMode {
    /// No report (the default).
    Off,
    /// The per-class table (`HAKMEM_STATS=1` or `table`).
    Table,
    /// One JSON object on one line (`HAKMEM_STATS=json`).
    Json,
}

/// Chooses the exit report. Turning it on opens its sink now
/// (`HAKMEM_STATS_FILE`, or a duplicate of stderr) and registers the exit
/// hook, once; turning it off keeps them, unused.
pub fn set_stats(mode: StatsMode) -> Result<(), OptionError> {
    safe_point();
    crate::config::set_stats_mode(match mode {
        StatsMode::Off => 0,
        StatsMode::Table => 1,
        StatsMode::Json => 2,
    });
    Ok(())
}

/// The exit report in force.
pub fn stats_mode() -> StatsMode {
    safe_point();
    match crate::config::stats_mode() {
        0 => StatsMode::Off,
        1 => StatsMode::Table,
        _ => StatsMode::Json,
    }
}

// ---------------------------------------------------------------------------
// The checks: foreign pointers (HAKMEM_FOREIGN_FREE) and the secure mode
// (HAKMEM_SECURE).
// ---------------------------------------------------------------------------

/// What `free`/`realloc`/`malloc_usable_size` do with a pointer in no
/// hakmem mapping (`HAKMEM_FOREIGN_FREE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForeignFree {
    /// One line naming the call and the pointer, then `abort()` (default).
    Abort,
    /// The line, and the pointer is left alone.
    Ignore,
    /// Hand it to the handler of [`crate::set_foreign_free_handler`]
    /// (`libhakmem.so` installs one with `HAKMEM_FOREIGN_FREE=forward`);
    /// without one, the line and the pointer is left alone.
    Forward,
}

/// Sets the foreign-pointer policy; wins over `HAKMEM_FOREIGN_FREE` from
/// now on. A double free or a bad pointer *inside* hakmem's memory always
/// stops the program, whatever the policy.
pub fn set_foreign_free(policy: ForeignFree) -> Result<(), OptionError> {
    safe_point();
    crate::foreign::set_override(match policy {
        ForeignFree::Abort => ForeignPolicy::Abort,
        ForeignFree::Ignore => ForeignPolicy::Ignore,
        ForeignFree::Forward => ForeignPolicy::Forward,
    });
    Ok(())
}

/// The foreign-pointer policy in force.
pub fn foreign_free() -> ForeignFree {
    safe_point();
    match crate::foreign::policy() {
        ForeignPolicy::Abort => ForeignFree::Abort,
        ForeignPolicy::Ignore => ForeignFree::Ignore,
        ForeignPolicy::Forward => ForeignFree::Forward,
    }
}

/// Chooses the secure mode (`HAKMEM_SECURE`; docs/security.md). Only
/// before the first allocation through hakmem: it decides how every block
/// is laid out. Later, asking for the mode in force is `Ok`, asking for the
/// other one is `Err(OptionError::TooLate)` — and nothing changes. A
/// program with `#[global_allocator] static G: hakmem::HakMem` has
/// allocated before `main` (the Rust runtime does): there, choose with
/// `HAKMEM_SECURE` or `hakmem::HakMemSecure`. `set_secure(false)` with
/// `HakMemSecure` as the allocator is `Err(OptionError::SecureRequired)`.
///
/// Must be the first call into hakmem, made while no other thread
/// allocates through it.
pub fn set_secure(on: bool) -> Result<(), OptionError> {
    if crate::config::done() {
        return if crate::secure::on() == on {
            Ok(())
        } else if crate::secure::requested() {
            Err(OptionError::SecureRequired)
        } else {
            Err(OptionError::TooLate)
        };
    }
    // (When another thread is reading the configuration right now, the
    // choice is not recorded and the mode it fixes is checked below.)
    let _ = crate::config::choose_secure_before_init(on);
    safe_point();
    if crate::secure::on() == on {
        Ok(())
    } else if crate::secure::requested() {
        Err(OptionError::SecureRequired)
    } else {
        Err(OptionError::TooLate)
    }
}

/// Whether the secure mode is on (reads the configuration first, which
/// fixes the mode).
pub fn secure() -> bool {
    safe_point();
    crate::secure::on()
}

// ---------------------------------------------------------------------------
// The background purge (HAKMEM_BACKGROUND, HAKMEM_BACKGROUND_MS).
// ---------------------------------------------------------------------------

/// Turns the background purge on ([`crate::background::start`]) or off
/// ([`crate::background::stop`]).
pub fn set_background(on: bool) -> Result<(), OptionError> {
    crate::config::init();
    if on {
        crate::background::start()
    } else {
        crate::background::stop();
        Ok(())
    }
}

/// Whether the background purge is on.
pub fn background() -> bool {
    safe_point();
    crate::background::is_enabled()
}

/// Sets the background purge interval, ms (1..=60000; 0 = half the decay
/// delay, the default). See [`crate::background::set_interval_ms`].
pub fn set_background_ms(ms: u32) -> Result<(), OptionError> {
    safe_point();
    crate::background::set_interval_ms(ms)
}

/// The background purge interval in force, ms.
pub fn background_ms() -> u32 {
    safe_point();
    crate::background::interval_ms()
}
