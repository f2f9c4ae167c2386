//! Cache slow start: the cap of a class grows while the thread
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
//! The cap then doubles, up to [`grow_limit`]. A tiny class (up to 1 KiB)
//! grows to [`GROW_MAX_BYTES`] of blocks, at most [`GROW_MAX_BLOCKS`]:
//! 2048 blocks up to 256 bytes, 512 of 1 KiB — enough for all the batches
//! of glibc's `bench-malloc-simple` (up to 1600 blocks) up to 320 bytes,
//! and for its 400-block batch at 1 KiB; at the earlier 32 KiB they went
//! through the slabs twice per round at 256 bytes and above
//! (docs/benchmarks.md, "Issue 13: glibc's shape at 256 bytes"). A mid
//! class, whose default cap is 4–28 blocks, grows to [`GROW_MID_BLOCKS`]
//! (a thread churning random mid-size blocks otherwise flushed and
//! refilled every few frees: docs/benchmarks.md, "Issue 13: the mid sizes'
//! slow start" and "the mid classes' growth budget"). Mid classes grow on
//! random churn too (their caches are that small), which is why their
//! limit is a few dozen blocks. What all classes of one thread add
//! together is bounded by [`GROW_THREAD_BYTES`], and what all threads add
//! by [`GROW_GLOBAL_BYTES`]: a class that would pass either grows only as
//! far as the budgets allow. A flush where under one
//! block in sixteen pushed goes back halves the extra, and a trim or
//! thread exit drops it. The extra is added to whatever cap the policy
//! (the learning layer's knob) sets, and never lowers it.
//!
//! Everything here runs in the refill and flush slow paths; the hot path
//! is untouched.

use core::sync::atomic::Ordering::Relaxed;
use core::sync::atomic::{AtomicBool, AtomicUsize};

use hakmem_ptr_bridge::{CLASS_SIZE, NUM_TINY_CLASSES};
use hakmem_tls_front::Front;

/// Most bytes of blocks a grown cache of one tiny class may hold.
pub const GROW_MAX_BYTES: u32 = 512 << 10;

/// Most blocks a grown cache of one tiny class may hold.
pub const GROW_MAX_BLOCKS: u32 = 2048;

/// Most blocks a grown cache of one mid class (above 1 KiB) may hold.
pub const GROW_MID_BLOCKS: u32 = 32;

/// Most bytes the slow start may add to one thread's caches, over all
/// classes: the extras of eight of the largest classes grown to
/// [`GROW_MID_BLOCKS`] from an empty cap. This bounds
/// what the caps *allow*; what the caches hold is usually far less (a cap
/// is a ceiling the count reaches only at the overflow). tcmalloc bounds
/// what one thread's cache holds by 4 MiB; a 4 MiB bound on the caps held
/// the mid classes of a thread churning 2–64 KiB blocks at their default
/// caps, which cost both time and memory (docs/benchmarks.md, "Issue 13:
/// the mid classes' growth budget").
pub const GROW_THREAD_BYTES: usize = 16 << 20;

/// Most bytes the slow start may add to the caches of all threads together
/// (four threads at their full budget): with many threads,
/// each one's [`GROW_THREAD_BYTES`] would add up. Checked when a cap grows,
/// so concurrent growths may pass it by a few classes' worth.
pub const GROW_GLOBAL_BYTES: usize = 64 << 20;

/// Whether caps may grow at all (see [`set_growth`]).
static GROWTH: AtomicBool = AtomicBool::new(true);

/// Turns the slow start on or off for every thread. Off, no cap grows
/// further (extras already granted shrink as usual); the facade turns it
/// off when the user fixed the caps (`HAKMEM_CACHE_CAP`), so that a cap
/// set by hand is a bound, not a starting point.
pub fn set_growth(on: bool) {
    GROWTH.store(on, Relaxed);
}

/// Bytes the extras of all threads hold (the sum of every heap's
/// `grown`).
static GROWN_ALL: AtomicUsize = AtomicUsize::new(0);

/// Bytes the slow start's extras of all threads hold together (at most
/// about [`GROW_GLOBAL_BYTES`]).
pub fn grown_all_bytes() -> usize {
    GROWN_ALL.load(Relaxed)
}

/// In a forked child: the other threads of the parent were not copied, and
/// their extras with them; what is left is the forking thread's, `own`
/// bytes (its heap's [`crate::Heap::grown_bytes`]).
pub fn reset_grown_all_after_fork(own: usize) {
    GROWN_ALL.store(own, Relaxed);
}

/// The cap `class` may grow to when the policy's cap is `base`: `base`
/// itself when that already holds the class's limit ([`GROW_MAX_BYTES`]
/// and [`GROW_MAX_BLOCKS`] for a tiny class, [`GROW_MID_BLOCKS`] for a mid
/// one).
pub const fn grow_limit(class: usize, base: u32) -> u32 {
    let l = if class < NUM_TINY_CLASSES {
        let l = GROW_MAX_BYTES / CLASS_SIZE[class];
        if l > GROW_MAX_BLOCKS {
            GROW_MAX_BLOCKS
        } else {
            l
        }
    } else {
        GROW_MID_BLOCKS
    };
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
    /// Refills of the class by this thread so far, saturating at
    /// [`RAMP_STEPS`]: the refill ramp's step (`refill::ramp`). Kept here,
    /// not in the statistics counters, which publication resets.
    ramp: u8,
    /// The front's push count at the previous flush.
    mark: u64,
}

/// Refills after which the ramp no longer limits a class (`1 << 16`
/// blocks is past every policy count).
const RAMP_STEPS: u8 = 16;

impl Grow {
    pub(crate) const ZERO: Grow = Grow {
        boost: 0,
        cycling: false,
        ramp: 0,
        mark: 0,
    };

    /// The refill ramp's step: refills of the class by this thread so
    /// far, at most [`RAMP_STEPS`].
    #[inline]
    pub(crate) fn ramp_step(&self) -> u32 {
        self.ramp as u32
    }

    /// Ends the ramp at once (see [`crate::Heap::skip_refill_ramp`]).
    pub(crate) fn skip_ramp(&mut self) {
        self.ramp = RAMP_STEPS;
    }

    /// Notes a refill for the ramp.
    #[inline]
    pub(crate) fn ramp_done(&mut self) {
        if self.ramp < RAMP_STEPS {
            self.ramp += 1;
        }
    }

    /// Sets the extra to `boost` blocks of `class`, keeping `held` (the
    /// bytes all the thread's extras hold) in step.
    fn set_boost(&mut self, class: usize, boost: u32, held: &mut usize) {
        let size = CLASS_SIZE[class] as usize;
        let (old, new) = (self.boost as usize * size, boost as usize * size);
        debug_assert!(*held >= old);
        *held = *held + new - old;
        if new > old {
            GROWN_ALL.fetch_add(new - old, Relaxed);
        } else if old > new {
            GROWN_ALL.fetch_sub(old - new, Relaxed);
        }
        self.boost = boost;
    }

    /// The most blocks `class` may hold above `base` with the budgets: its
    /// own extra plus what is left of [`GROW_THREAD_BYTES`] for this
    /// thread and of [`GROW_GLOBAL_BYTES`] for all.
    fn room(&self, class: usize, base: u32, held: usize) -> u32 {
        if !GROWTH.load(Relaxed) {
            return 0;
        }
        let left = GROW_THREAD_BYTES
            .saturating_sub(held)
            .min(GROW_GLOBAL_BYTES.saturating_sub(GROWN_ALL.load(Relaxed)))
            / CLASS_SIZE[class] as usize;
        let own = grow_limit(class, base) - base;
        own.min(
            self.boost
                .saturating_add(left.min(u32::MAX as usize) as u32),
        )
    }

    /// The cap to use at a refill when the policy's cap is `base`; notes
    /// the refill. `held`: the bytes the thread's extras hold.
    pub(crate) fn at_refill(&mut self, class: usize, base: u32, held: &mut usize) -> u32 {
        self.cycling = true;
        // The policy may have changed `base` since the extra was set.
        let boost = self.boost.min(grow_limit(class, base) - base);
        if boost != self.boost {
            self.set_boost(class, boost, held);
        }
        base + boost
    }

    /// Adjusts the cap of `class` in `front` at an overflow, before the
    /// flush takes the blocks above half of it. `held`: the bytes the
    /// thread's extras hold.
    pub(crate) fn at_flush(&mut self, front: &mut Front, class: usize, held: &mut usize) {
        let pushes = front.pushes(class);
        let window = pushes.wrapping_sub(self.mark);
        self.mark = pushes;
        let cap = front.cap(class);
        let base = cap.saturating_sub(self.boost);
        let out = front.count(class).saturating_sub(cap / 2) as u64;
        let new = if self.cycling && out * 4 >= window {
            let room = self.room(class, base, *held);
            cap.saturating_mul(2).min(base + room).max(cap)
        } else {
            self.cycling = false;
            if out * 16 < window {
                base + self.boost / 2
            } else {
                cap
            }
        };
        if new != cap {
            self.set_boost(class, new - base, held);
            front.set_cap(class, new);
        }
    }

    /// Drops the extra (trim, thread exit), restoring the policy's cap.
    pub(crate) fn reset(&mut self, front: &mut Front, class: usize, held: &mut usize) {
        if self.boost > 0 {
            let base = front.cap(class).saturating_sub(self.boost);
            front.set_cap(class, base);
        }
        self.set_boost(class, 0, held);
        self.cycling = false;
    }

    /// Blocks the cap holds above the policy's.
    pub(crate) fn boost(&self) -> u32 {
        self.boost
    }
}
