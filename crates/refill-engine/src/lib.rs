//! refill-engine: the warm path between a thread's caches and the slabs.
//!
//! - [`refill`]: a cache miss. Takes a batch of blocks (the count comes from
//!   the policy table) from the thread's own slabs — local free list first,
//!   then the remote stack, then never-used memory — adopting an ownerless
//!   slab or acquiring a fresh one when the thread has none left.
//! - [`flush`]: a cache overflow. Returns half of the cached blocks to their
//!   slabs, and gives empty slabs back to the backend.
//! - [`free_remote`]: a free of a block whose slab the thread does not own.
//! - [`abandon_all`]: thread exit. Returns every cached block, then releases
//!   empty slabs and publishes the others for adoption.
//!
//! The engine reads the policy table and emits learning events; it never
//! runs learning itself. Walk-through: `docs/refill.md`.
//!
//! **Architecture Invariant:** the engine is only entered from a slow path;
//! the hot path (tls-front) never calls into it.
#![no_std]

pub mod migrate;

mod abandon;
mod flush;
mod heap;
mod refill;
mod remote;

pub use abandon::{abandon_all, sweep_empty, trim};
pub use flush::flush;
pub use heap::{ClassCounters, Counters, Heap, EXITED, UNREGISTERED};
pub use refill::{refill, set_scrub_carved};
pub use remote::{batch_remote, flush_remote_batches, free_remote, FreeOutcome, REMOTE_BATCH};
