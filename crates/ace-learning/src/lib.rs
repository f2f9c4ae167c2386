//! ace-learning: the learning layer (ACE: observe → decide → apply).
//!
//! This crate holds the three things the rest of the allocator touches:
//! - [`Event`]: a small `Copy` record built on the stack by a slow path;
//! - [`EventRing`]: a pre-allocated, fixed-capacity, **non-blocking** ring —
//!   a full ring drops the event and counts the drop (Contract A), events
//!   are copied in, never referenced (Contract C);
//! - [`PolicyTable`]: the atomics the learning layer writes and the refill
//!   engine reads (Contract B: learning never touches anything else).
//!
//! **Architecture Invariant:** this crate never sees a thread cache
//! (it does not depend on `tls-front`), and nothing here allocates.
#![no_std]

mod ring;
pub use ring::EventRing;

use core::sync::atomic::Ordering::Relaxed;
use core::sync::atomic::{AtomicBool, AtomicU32};

use ptr_bridge::{CLASS_SIZE, NUM_CLASSES};

/// What a slow path observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum EventKind {
    /// A thread cache was refilled (`count` blocks).
    Refill = 1,
    /// An overfull thread cache was flushed (`count` blocks).
    Flush = 2,
    /// A slab was taken from the backend.
    SlabAcquire = 3,
    /// An empty slab was given back.
    SlabRelease = 4,
    /// An ownerless slab was adopted.
    Adopt = 5,
    /// A span was mapped (`count` = size in KiB).
    SpanMap = 6,
    /// A span was unmapped (`count` = size in KiB).
    SpanUnmap = 7,
}

/// One observation; plain data, copied into the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// Size class (0 for spans).
    pub class: u8,
    /// Blocks (or KiB) involved.
    pub count: u32,
    /// Heap id of the thread that observed it.
    pub thread: u32,
}

const _: () = assert!(core::mem::size_of::<Event>() == 12);

/// The ring every slow path writes to (4096 events, pre-allocated in .bss).
pub static EVENTS: EventRing<4096> = EventRing::new();

/// Default number of blocks a refill brings for a class: about 16 KiB worth,
/// at least 2 and at most 64 blocks.
pub const fn default_refill(class: usize) -> u32 {
    let bs = CLASS_SIZE[class];
    let n = (16 * 1024) / bs;
    if n < 2 {
        2
    } else if n > 64 {
        64
    } else {
        n
    }
}

/// Default cache cap of a class: two refills' worth.
pub const fn default_cap(class: usize) -> u32 {
    2 * default_refill(class)
}

/// The policy values the refill engine reads on every refill. Written only
/// by the learning layer (and by configuration at start-up).
pub struct PolicyTable {
    refill: [AtomicU32; NUM_CLASSES],
    cap: [AtomicU32; NUM_CLASSES],
    observe: AtomicBool,
}

impl PolicyTable {
    /// The default policy.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        let refill = {
            let mut a = [const { AtomicU32::new(0) }; NUM_CLASSES];
            let mut c = 0;
            while c < NUM_CLASSES {
                a[c] = AtomicU32::new(default_refill(c));
                c += 1;
            }
            a
        };
        let cap = {
            let mut a = [const { AtomicU32::new(0) }; NUM_CLASSES];
            let mut c = 0;
            while c < NUM_CLASSES {
                a[c] = AtomicU32::new(default_cap(c));
                c += 1;
            }
            a
        };
        PolicyTable {
            refill,
            cap,
            observe: AtomicBool::new(false),
        }
    }

    /// Blocks the next refill of `class` should bring (≥ 1).
    #[inline]
    pub fn refill_count(&self, class: usize) -> u32 {
        self.refill[class].load(Relaxed).max(1)
    }

    /// Most blocks a thread may cache for `class`.
    #[inline]
    pub fn cache_cap(&self, class: usize) -> u32 {
        self.cap[class].load(Relaxed)
    }

    /// Sets the refill count of `class` (clamped to 1..=1024).
    pub fn set_refill_count(&self, class: usize, n: u32) {
        self.refill[class].store(n.clamp(1, 1024), Relaxed);
    }

    /// Sets the cache cap of `class` (clamped to 0..=4096).
    pub fn set_cache_cap(&self, class: usize, n: u32) {
        self.cap[class].store(n.min(4096), Relaxed);
    }

    /// True when slow paths should emit events.
    #[inline]
    pub fn observing(&self) -> bool {
        self.observe.load(Relaxed)
    }

    /// Turns event emission on or off.
    pub fn set_observing(&self, on: bool) {
        self.observe.store(on, Relaxed);
    }
}

/// The one policy table of the process.
pub static POLICY: PolicyTable = PolicyTable::new();

/// Records an event if observation is on. Never blocks, never allocates.
#[inline]
pub fn observe(ev: Event) {
    if POLICY.observing() {
        EVENTS.push(ev);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_sane() {
        for c in 0..NUM_CLASSES {
            let r = default_refill(c);
            assert!((2..=64).contains(&r));
            assert_eq!(default_cap(c), 2 * r);
        }
        assert_eq!(default_refill(0), 64);
        assert_eq!(default_refill(NUM_CLASSES - 1), 2);
    }

    #[test]
    fn policy_clamps() {
        let p = PolicyTable::new();
        p.set_refill_count(3, 0);
        assert_eq!(p.refill_count(3), 1);
        p.set_refill_count(3, 99_999);
        assert_eq!(p.refill_count(3), 1024);
        p.set_cache_cap(3, 10);
        assert_eq!(p.cache_cap(3), 10);
    }
}
