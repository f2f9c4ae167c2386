//! Cache slow start: the cap of a small class grows while the thread
//! cycles more blocks of it through its cache than the cache holds, and
//! falls back when the cycling stops.
//!
//! A thread that allocates a batch of `n` blocks and then frees them all,
//! round after round (glibc's `bench-malloc-simple` shape), refills its
//! cache about `n / refill` times and flushes it about as often when `n`
//! is above the cap: every block goes through a slab's free list twice per
//! round. A larger cap keeps the whole batch in the cache. Growing every
//! cap would hold memory in idle caches, so a class grows only on evidence:
//!
//! * the class **refilled** since its cap last stopped growing (a thread
//!   that only frees — a consumer of blocks another thread allocates —
//!   never grows), and
//! * at the flush, the blocks going back to slabs are at least a quarter
//!   of the frees pushed since the previous flush. Random churn around a
//!   working set the cache already holds flushes a few blocks after
//!   thousands of frees; a batch larger than the cache flushes most of
//!   them.
//!
//! The cap then doubles, up to [`GROW_MAX_BYTES`] of blocks (at most
//! [`GROW_MAX_BLOCKS`]); so only classes below 256 bytes, whose default cap
//! holds less than that, ever grow. A flush where under one block in
//! sixteen pushed goes back halves the extra, and a trim or thread exit
//! drops it. The extra is added to whatever cap the policy (the learning
//! layer's knob) sets, and never lowers it.
//!
//! Everything here runs in the refill and flush slow paths; the hot path
//! is untouched.

use hakmem_ptr_bridge::CLASS_SIZE;
use hakmem_tls_front::Front;

/// Most bytes of blocks a grown cache of one class may hold.
pub const GROW_MAX_BYTES: u32 = 32 << 10;

/// Most blocks a grown cache of one class may hold.
pub const GROW_MAX_BLOCKS: u32 = 2048;

/// The cap `class` may grow to when the policy's cap is `base`: `base`
/// itself when that already holds [`GROW_MAX_BYTES`].
pub const fn grow_limit(class: usize, base: u32) -> u32 {
    let mut l = GROW_MAX_BYTES / CLASS_SIZE[class];
    if l > GROW_MAX_BLOCKS {
        l = GROW_MAX_BLOCKS;
    }
    if l < base {
        base
    } else {
        l
    }
}

/// Slow-start state of one class of one thread.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Grow {
    /// Blocks the cap holds above the policy's.
    boost: u32,
    /// The class refilled since its cap last stopped growing.
    cycling: bool,
    /// The front's push count at the previous flush.
    mark: u64,
}

impl Grow {
    pub(crate) const ZERO: Grow = Grow {
        boost: 0,
        cycling: false,
        mark: 0,
    };

    /// The cap to use at a refill when the policy's cap is `base`; notes
    /// the refill.
    pub(crate) fn at_refill(&mut self, class: usize, base: u32) -> u32 {
        self.cycling = true;
        let cap = base.saturating_add(self.boost).min(grow_limit(class, base));
        self.boost = cap - base;
        cap
    }

    /// Adjusts the cap of `class` in `front` at an overflow, before the
    /// flush takes the blocks above half of it.
    pub(crate) fn at_flush(&mut self, front: &mut Front, class: usize) {
        let pushes = front.pushes(class);
        let window = pushes.wrapping_sub(self.mark);
        self.mark = pushes;
        let cap = front.cap(class);
        let base = cap.saturating_sub(self.boost);
        let out = front.count(class).saturating_sub(cap / 2) as u64;
        let new = if self.cycling && out * 4 >= window {
            cap.saturating_mul(2).min(grow_limit(class, base)).max(cap)
        } else {
            self.cycling = false;
            if out * 16 < window {
                base + self.boost / 2
            } else {
                cap
            }
        };
        if new != cap {
            self.boost = new - base;
            front.set_cap(class, new);
        }
    }

    /// Drops the extra (trim, thread exit), restoring the policy's cap.
    pub(crate) fn reset(&mut self, front: &mut Front, class: usize) {
        if self.boost > 0 {
            let base = front.cap(class).saturating_sub(self.boost);
            front.set_cap(class, base);
        }
        self.boost = 0;
        self.cycling = false;
    }

    /// Blocks the cap holds above the policy's.
    pub(crate) fn boost(&self) -> u32 {
        self.boost
    }
}
