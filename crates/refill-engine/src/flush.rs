//! A cache overflow: blocks go back to their slabs.

use core::ptr;

use hakmem_ace_learning::EventKind;
use hakmem_ptr_bridge::{
    block_next, is_carved_block, set_block_next, slab_and_shift_of, slab_meta_of, SlabMeta,
};
use hakmem_remote_queue::RemoteFree;
use hakmem_tls_front::Front;

use crate::heap::{event, Heap};

/// Returns one block (that the thread holds) to its slab: to the local free
/// list when the thread owns the slab, else through the remote protocol.
///
/// # Safety
/// `b` is an allocated block of class `class` held by the calling thread.
pub(crate) unsafe fn return_block(heap: &mut Heap, class: usize, b: *mut u8) {
    // SAFETY: `b` is a block of a live superslab.
    let s = unsafe { slab_meta_of(b) };
    // SAFETY: forwarded contract; `s` is `b`'s record.
    unsafe { return_block_to(heap, class, b, s) }
}

/// [`return_block`] when the caller already holds `b`'s slab record `s`.
///
/// # Safety
/// As for [`return_block`]; `s` is the record of `b`'s slab.
#[inline(always)]
unsafe fn return_block_to(heap: &mut Heap, class: usize, b: *mut u8, s: &SlabMeta) {
    if s.owner() == heap.id {
        // SAFETY: we own the slab, so its local list is ours.
        unsafe { push_local(b, s) };
        // SAFETY: we own `s` and just put one block on its local list.
        unsafe { settle(heap, class, s, 1) };
    } else {
        // SAFETY: forwarded contract; a block we hold is allocated.
        let r = unsafe { hakmem_remote_queue::remote_free(s, b) };
        debug_assert_eq!(r, RemoteFree::Queued);
    }
}

/// Puts `b` on the local free list of its slab `s`, without touching the
/// slab's used count (see [`settle`]).
///
/// # Safety
/// The calling thread owns `s`; `b` is an allocated block of `s`.
#[inline(always)]
unsafe fn push_local(b: *mut u8, s: &SlabMeta) {
    // SAFETY: we own the slab, so its local list is ours; `b` is a block.
    unsafe { set_block_next(b, s.free_head()) };
    s.set_free_head(b);
}

/// Counts `n` blocks that were just put back on the local list of the
/// owned slab `s` (one atomic `used -= n` for the run), and gives the slab
/// back when that emptied it and it is not the warm head of its list.
///
/// # Safety
/// The calling thread owns `s`, which has class `class`; `n >= 1` blocks
/// of `s` went onto its local list since they last counted as used.
#[inline(always)]
unsafe fn settle(heap: &mut Heap, class: usize, s: &SlabMeta, n: u32) {
    let was = s.sub_used(n);
    if was == n && !ptr::eq(heap.partial[class], s) {
        // Empty and not the warm head of the list: give it back.
        heap.unlink(class, s);
        // SAFETY: we own it, used == 0, and it is unlinked.
        unsafe { hakmem_superslab_backend::release_slab(s) };
        event(EventKind::SlabRelease, class, 0, heap);
    }
}

/// [`settle`] for the run in progress: `run` uncounted blocks of `cur`
/// (nothing when `run` is 0).
///
/// # Safety
/// As for [`settle`] when `run > 0`, with `cur` the owned slab.
#[inline(always)]
unsafe fn end_run(heap: &mut Heap, class: usize, cur: *const SlabMeta, run: u32) {
    if run > 0 {
        // SAFETY: caller contract; `cur` is a live record when `run > 0`.
        unsafe { settle(heap, class, &*cur, run) };
    }
}

/// Cache overflow for `class`: returns blocks until the cache is at half
/// its cap.
///
/// Every block leaving the cache is checked to be a block start of a slab
/// of `class` (the owner's free fast path pushes without that check, which
/// costs a division): a pointer that is not — an interior or misaligned
/// free by the owning thread — stops the flush and comes back as `Err` for
/// the caller to report (the facade aborts). The blocks returned before it
/// are back in their slabs; the bad pointer and the blocks the flush had
/// taken after it are neither returned nor left in the cache.
///
/// # Safety
/// `heap` and `front` are the calling thread's.
#[cold]
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
pub unsafe fn flush(heap: &mut Heap, front: &mut Front, class: usize) -> Result<(), *mut u8> {
    // The slow start may raise the cap first (see `grow.rs`).
    heap.grow[class].at_flush(front, class, &mut heap.grown);
    let keep = front.cap(class) / 2;
    let n = front.count(class).saturating_sub(keep);
    let (mut b, k) = front.take(class, n);
    // Consecutive blocks of one owned slab (the usual case: a batch freed
    // in order) are counted back with one `used -= run` instead of one
    // atomic per block; `run` blocks of `cur` are on its list, uncounted.
    let mut cur: *const SlabMeta = ptr::null();
    let mut run = 0u32;
    while !b.is_null() {
        // SAFETY: `b` is a free block from our cache chain (or, if the
        // program freed a bad pointer, an address inside a live superslab
        // of ours, which is all the check needs). The cache only holds
        // pointers whose slab had `class` when they were pushed, and the
        // slab cannot change class while they count as used.
        let (s, shift) = unsafe { slab_and_shift_of(b) };
        if !is_carved_block(b as usize, shift, class, s.carved()) {
            // SAFETY: `cur` is an owned slab with `run` uncounted blocks.
            unsafe { end_run(heap, class, cur, run) };
            return Err(b);
        }
        // SAFETY: `b` is a free block from our cache chain.
        let nx = unsafe { block_next(b) };
        if s.owner() == heap.id {
            if !ptr::eq(cur, s) {
                // SAFETY: as above.
                unsafe { end_run(heap, class, cur, run) };
                cur = s;
                run = 0;
            }
            // SAFETY: we own `s`; blocks in our cache are allocated from
            // its view until counted back by `settle`.
            unsafe { push_local(b, s) };
            run += 1;
        } else {
            // SAFETY: blocks in our cache are allocated from their slab's
            // view; `s` is `b`'s slab record.
            unsafe { return_block_to(heap, class, b, s) };
        }
        b = nx;
    }
    // SAFETY: as above.
    unsafe { end_run(heap, class, cur, run) };
    heap.counters.class[class].flushes += 1;
    heap.counters.class[class].flushed_blocks += k as u64;
    event(EventKind::Flush, class, k, heap);
    Ok(())
}
