//! refill-engine: the warm path between a thread's caches and the slabs.
//!
//! - [`refill()`]: a cache miss. Takes a batch of blocks (the count comes from
//!   the policy table) from the thread's own slabs — local free list first,
//!   then the remote stack, then never-used memory — adopting an ownerless
//!   slab or acquiring a fresh one when the thread has none left.
//! - [`flush()`]: a cache overflow. Returns cached blocks to their slabs
//!   until the cache is at half its cap, and gives empty slabs back to the
//!   backend.
//! - [`free_remote`] (after the inline [`batch_remote`]): a free of a block
//!   whose slab the thread does not own, batched per class and slab
//!   ([`flush_remote_batches`] pushes the batches); a FULL slab is adopted
//!   on the spot.
//! - [`abandon_all`]: thread exit. Returns every cached block, then releases
//!   empty slabs and publishes the others for adoption; [`sweep_empty`]
//!   releases published slabs that have since been freed empty, and
//!   [`trim`] does both for a live thread.
//! - [`migrate`]: moving a slab from one owner to another.
//! - [`LocalHeap`]: one thread's state below the facade (cache, heap, span
//!   stash, counters, [`Lifecycle`]) with the slow entries the facade
//!   calls — [`LocalHeap::alloc_slow`], [`LocalHeap::free_slow`],
//!   [`LocalHeap::free_span`] — and the maintenance [`LocalHeap::tick`].
//!
//! One module per path: `local` (the [`LocalHeap`]), `heap` (the [`Heap`],
//! taking and letting go of slabs), `refill`, `flush`, `remote`, `abandon`.
//!
//! The engine reads the policy table and emits learning events; it never
//! runs learning itself. Walk-throughs: `docs/malloc.md` (refill and
//! flush), `docs/remote-free.md` (remote frees, thread exit, adoption),
//! `docs/migration.md`.
//!
//! **Architecture Invariant:** the engine is only entered from a slow path;
//! the hot path (tls-front) never calls into it.
#![no_std]

pub mod migrate;

mod abandon;
mod flush;
mod grow;
mod heap;
mod local;
mod refill;
mod remote;

pub use abandon::{abandon_all, sweep_empty, trim};
pub use flush::flush;
pub use grow::{
    grow_limit, grown_all_bytes, reset_grown_all_after_fork, set_growth, GROW_GLOBAL_BYTES,
    GROW_MAX_BLOCKS, GROW_MAX_BYTES, GROW_MID_BLOCKS, GROW_THREAD_BYTES,
};
pub use heap::{ClassCounters, Counters, Heap, EXITED, UNREGISTERED};
pub use local::{next_id, FreeResult, Lifecycle, LocalHeap, PUBLISH_EVERY};
pub use refill::{refill, set_scrub_carved, take_chain, Chain};
pub use remote::{batch_remote, flush_remote_batches, free_remote, FreeOutcome, REMOTE_BATCH};
