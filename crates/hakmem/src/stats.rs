//! Process-wide statistics. Threads keep their slow-path counters locally
//! and publish them here when they exit; [`stats`] adds the live ones of
//! the calling thread.

use core::sync::atomic::AtomicU64;
use core::sync::atomic::Ordering::Relaxed;

use refill_engine::Heap;

static REFILLS: AtomicU64 = AtomicU64::new(0);
static FLUSHES: AtomicU64 = AtomicU64::new(0);
static REMOTE_FREES: AtomicU64 = AtomicU64::new(0);
static ADOPTED: AtomicU64 = AtomicU64::new(0);

/// A snapshot of allocator statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Cache refills (exited threads plus the calling thread).
    pub refills: u64,
    /// Cache flushes.
    pub flushes: u64,
    /// Frees that went through the remote path.
    pub remote_frees: u64,
    /// Ownerless slabs adopted.
    pub adopted_slabs: u64,
    /// Superslabs currently mapped.
    pub superslabs: usize,
    /// Large spans currently mapped.
    pub large_spans: usize,
    /// Bytes mapped for large spans.
    pub large_bytes: usize,
    /// Learning events recorded.
    pub ace_events: u64,
    /// Learning events dropped because the ring was full.
    pub ace_dropped: u64,
}

pub(crate) fn publish_thread(h: &Heap) {
    REFILLS.fetch_add(h.counters.refills, Relaxed);
    FLUSHES.fetch_add(h.counters.flushes, Relaxed);
    REMOTE_FREES.fetch_add(h.counters.remote_frees, Relaxed);
    ADOPTED.fetch_add(h.counters.adopted, Relaxed);
}

/// Current statistics.
pub fn stats() -> Stats {
    let t = crate::thread::state();
    // SAFETY: reading our own thread's counters outside any allocator call.
    let mine = unsafe { (*t).heap.counters };
    let b = superslab_backend::stats();
    Stats {
        refills: REFILLS.load(Relaxed) + mine.refills,
        flushes: FLUSHES.load(Relaxed) + mine.flushes,
        remote_frees: REMOTE_FREES.load(Relaxed) + mine.remote_frees,
        adopted_slabs: ADOPTED.load(Relaxed) + mine.adopted,
        superslabs: b.superslabs,
        large_spans: b.large_spans,
        large_bytes: b.large_bytes,
        ace_events: ace_learning::EVENTS.pushed(),
        ace_dropped: ace_learning::EVENTS.dropped(),
    }
}
