//! ACE, the learning layer's background worker: observe → decide → apply,
//! off the hot path. See `docs/ace.md`.
//!
//! - **Observe.** While the worker runs, `hakmem_ace_learning::POLICY` has
//!   observation on and the slow paths (refill, flush, slab traffic, span
//!   map and unmap) copy a 12-byte [`Event`] into the pre-allocated ring
//!   `hakmem_ace_learning::EVENTS`. The hot path never sees any of it.
//! - **Decide.** Every tick (25 ms by default) the worker drains the ring
//!   into its [`Learner`](hakmem_ace_learning::Learner) and runs the policies: per-class UCB1 bandits over
//!   (refill count, cache cap), Elo-rated strategies for the decay delay
//!   and for the pool/span threshold (LEARN → CANARY → FROZEN),
//!   workload-shift and idle detection.
//! - **Apply.** The learner holds the policy table's one
//!   [`PolicyWriter`](hakmem_ace_learning::PolicyWriter): it writes the next
//!   refill count and cache cap of a class (read by the refill engine at
//!   the next refill of that class) and the decay-delay and threshold
//!   knobs, which this module hands to the backend and to
//!   [`crate::set_span_threshold`] (a route-table rewrite). The only other thing the worker does is
//!   [`crate::trim_idle`] when the process is idle, which touches no
//!   thread cache.
//!
//! The worker is an ordinary thread started by [`start`] — never from
//! inside an allocation call. Rust programs call [`start`] from `main`
//! (or [`start_from_env`], which starts it only with `HAKMEM_ACE=1`);
//! `libhakmem.so` calls [`start_from_env`] from its constructor. After
//! `fork()` the child has no worker: [`after_fork_child`] (an atfork child
//! handler) marks it stopped, and [`start`] or [`start_from_env`] in the
//! child starts a new one.
//!
//! Environment (read by [`AceConfig::from_env`]): `HAKMEM_ACE`,
//! `HAKMEM_ACE_LOG`, `HAKMEM_ACE_PROFILE`, `HAKMEM_ACE_TICK_MS`,
//! `HAKMEM_ACE_IDLE_MS`, `HAKMEM_ACE_POLICIES` (see `docs/ace.md`).

//!
//! The module's files, in their dependency order: `snapshot` (what the
//! worker publishes, read by `hakmem::stats` and [`state`]; depends on no
//! other part of the facade), `probe` (the OS readings of a tick), `log`
//! (one stderr line per policy change), `config` ([`AceConfig`]),
//! `profile` (loading and saving the learned state), `worker` (the thread's
//! loop) and `lifecycle` (start, stop, exit and fork).

mod config;
mod life;
mod lifecycle;
mod log;
mod probe;
mod profile;
pub(crate) mod snapshot;
mod worker;

use hakmem_ace_learning::{Event, EventKind, POLICY};

pub use config::AceConfig;
pub use lifecycle::{
    after_fork_child, reset_policy, restart_pending, start, start_from_env, start_with, stop,
};
pub use snapshot::{decisions, drop_rate, is_running, state, AceState, ClassPolicy};

/// Emits a span event (cold paths of the facade; nothing when learning is
/// off).
#[cold]
pub(crate) fn span_event(kind: EventKind, bytes: usize) {
    if POLICY.observing() {
        let id = crate::thread::id();
        hakmem_ace_learning::observe(Event {
            kind,
            class: 0,
            count: (bytes >> 10).min(u32::MAX as usize) as u32,
            thread: id as u32,
        });
    }
}

/// Accessors for tests and diagnostics: what the *calling* thread's cache
/// holds. They read the thread's own state and change nothing.
pub mod debug {
    /// The cache cap the calling thread applies to `class` now (set at its
    /// last refill of the class, or at registration).
    pub fn thread_cache_cap(class: usize) -> u32 {
        // SAFETY: our own thread's state, read outside any allocator call.
        crate::thread::peek().map_or(0, |t| unsafe { (*t).local.front().cap(class) })
    }

    /// Blocks the calling thread has cached for `class`.
    pub fn thread_cache_len(class: usize) -> u32 {
        // SAFETY: as above.
        crate::thread::peek().map_or(0, |t| unsafe { (*t).local.front().count(class) })
    }

    /// Bytes the cache slow start lets the calling thread hold above the
    /// policy's caps, all classes together (`refill-engine/src/grow.rs`).
    pub fn thread_grown_bytes() -> usize {
        // SAFETY: as above.
        crate::thread::peek().map_or(0, |t| unsafe { (*t).local.heap().grown_bytes() })
    }

    /// The same over all threads of the process.
    pub fn grown_all_bytes() -> usize {
        hakmem_refill_engine::grown_all_bytes()
    }
}
