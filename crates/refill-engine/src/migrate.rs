//! Slab migration: moving a slab from one owner to another, in the order
//! that makes the move transparent (walk-through and the argument for the
//! order: `docs/migration.md`).
//!
//! 1. **drain** the slab's remote frees into its local free list;
//! 2. **quiesce** the owner's use of the slab — the caller's duty: both
//!    threads must be parked (or be the calling thread) for the whole call;
//! 3. **flush** the owner's cached blocks that belong to the slab back to it;
//! 4. **repoint** the owner recorded in the slab record;
//! 5. **invalidate** the old owner's stale reference (its partial list);
//! 6. **resume**: link the slab into the new owner's partial list.
//!
//! With the `fault-injection` feature (debug builds only) a test can skip
//! the drain, the flush or the invalidate step, to prove that the
//! acceptance oracle notices.

use hakmem_ptr_bridge::{block_next, set_block_next, slab_state, SlabMeta};
use hakmem_tls_front::Front;

use crate::Heap;

#[cfg(all(feature = "fault-injection", not(debug_assertions)))]
compile_error!("the fault-injection feature is for debug/test builds only");

/// A protocol step that fault injection can skip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Step {
    /// Step 1.
    Drain = 1,
    /// Step 3.
    Flush = 2,
    /// Step 5.
    Invalidate = 3,
}

#[cfg(feature = "fault-injection")]
mod fault {
    use core::sync::atomic::{AtomicU8, Ordering};

    static SKIP: AtomicU8 = AtomicU8::new(0);

    pub(super) fn set(step: Option<super::Step>) {
        SKIP.store(step.map_or(0, |s| s as u8), Ordering::SeqCst);
    }

    pub(super) fn skipped(step: super::Step) -> bool {
        SKIP.load(Ordering::SeqCst) == step as u8
    }
}

/// Makes every later migration skip `step` (`None`: skip nothing).
#[cfg(feature = "fault-injection")]
pub fn inject_fault(step: Option<Step>) {
    fault::set(step);
}

#[inline]
fn skipped(_step: Step) -> bool {
    #[cfg(feature = "fault-injection")]
    {
        fault::skipped(_step)
    }
    #[cfg(not(feature = "fault-injection"))]
    {
        false
    }
}

/// What a migration moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Migration {
    /// Remotely freed blocks drained into the local free list.
    pub drained: u32,
    /// Cached blocks of the old owner flushed back to the slab.
    pub flushed: u32,
}

/// Moves slab `s` from the heap `from` (with its cache `from_front`) to the
/// heap `to`. Returns `None` (and does nothing) when `from` does not own an
/// ACTIVE `s`.
///
/// # Safety
/// Quiescence (step 2): for the whole call neither the thread owning
/// `from`/`from_front` nor the thread owning `to` runs allocator code (both
/// are parked, or one of them is the caller). `s` is a live slab record.
pub unsafe fn migrate_slab(
    from: &mut Heap,
    from_front: &mut Front,
    to: &mut Heap,
    s: &SlabMeta,
) -> Option<Migration> {
    if s.owner() != from.id() || s.state() != slab_state::ACTIVE {
        return None;
    }
    let class = s.class();
    let mut m = Migration::default();
    // 1. drain: the remote stack joins the local free list, so the new
    //    owner receives every free block of the slab.
    if !skipped(Step::Drain) {
        // The old owner is quiesced, so its local list is ours.
        m.drained = crate::remote::drain_remote(s);
    }
    // 3. flush: the old owner's cached blocks of this slab go back to it.
    if !skipped(Step::Flush) {
        let lo = s.data_start();
        let hi = lo + ((s.capacity() as usize) * s.block_size() as usize);
        let (mut b, n) = from_front.extract_if(class, |p| (lo..hi).contains(&(p as usize)));
        while !b.is_null() {
            // SAFETY: `b` is a free block of `s` taken from the cache.
            let nx = unsafe { block_next(b) };
            // SAFETY: as above; the local list is ours (quiesced owner).
            unsafe { set_block_next(b, s.free_head()) };
            s.set_free_head(b);
            b = nx;
        }
        s.sub_used(n);
        m.flushed = n;
    }
    // 4. repoint.
    s.hand_to(to.id());
    // 5. invalidate: the old owner no longer lists the slab.
    if !skipped(Step::Invalidate) {
        from.unlink(class, s);
    }
    // 6. resume: the new owner lists it.
    to.link(class, s);
    Some(m)
}

/// The slabs `heap` owns, written to `out` (up to its length); returns how
/// many were written. For controllers choosing what to migrate.
pub fn owned_slabs(heap: &Heap, out: &mut [*const SlabMeta]) -> usize {
    let mut n = 0;
    for &head in heap.partial.iter() {
        let mut cur = head;
        while !cur.is_null() && n < out.len() {
            out[n] = cur;
            n += 1;
            // SAFETY: linked slabs are live records owned by this heap.
            cur = unsafe { (*cur).next() };
        }
    }
    n
}

/// Checks what a completed migration of `s` away from `from` promises: the
/// remote stack was drained, none of the slab's blocks is still cached by
/// the old owner, and the old owner no longer lists the slab. Only
/// meaningful while every thread is quiesced.
pub fn audit_migrated(
    from: &Heap,
    from_front: &mut Front,
    s: &SlabMeta,
) -> Result<(), &'static str> {
    if !s.remote_head().is_null() {
        return Err("remote frees left undrained in a migrated slab");
    }
    let class = s.class();
    let lo = s.data_start();
    let hi = lo + ((s.capacity() as usize) * s.block_size() as usize);
    let mut stale = 0;
    // Count without removing: extract and push back.
    let (chain, n) = from_front.extract_if(class, |p| (lo..hi).contains(&(p as usize)));
    if n > 0 {
        stale = n;
        let mut tail = chain;
        // SAFETY: a chain of `n` blocks from the cache.
        while !unsafe { block_next(tail) }.is_null() {
            // SAFETY: as above.
            tail = unsafe { block_next(tail) };
        }
        // SAFETY: putting the same blocks back into the same cache.
        unsafe { from_front.push_chain(class, chain, tail, n) };
    }
    if stale > 0 {
        return Err("the old owner still caches blocks of a migrated slab");
    }
    let mut cur = from.partial[class];
    let mut steps = 0u32;
    while !cur.is_null() {
        if core::ptr::eq(cur, s) {
            return Err("the old owner still lists a migrated slab");
        }
        steps += 1;
        if steps > 1 << 20 {
            return Err("the old owner's slab list is corrupted (cycle)");
        }
        // SAFETY: linked slabs are live records.
        cur = unsafe { (*cur).next() };
    }
    Ok(())
}
