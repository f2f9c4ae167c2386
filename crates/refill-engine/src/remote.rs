//! Frees of blocks whose slab the thread does not own: batches per class
//! and slab, adoption of a FULL slab on the spot, and draining a slab's
//! remote stack.

use core::ptr;

use hakmem_ace_learning::EventKind;
use hakmem_ptr_bridge::{
    is_block_offset, set_block_next, slab_meta_of, slab_state, SlabMeta, NUM_CLASSES,
};
use hakmem_remote_queue::RemoteFree;

use crate::heap::{event, Heap};
use crate::local::Lifecycle;

/// Remote frees of one class waiting to be pushed to their slab together
/// (snmalloc-style batching: consecutive frees of a class mostly hit the
/// slab their producer is carving). Invariant: `n == 0` iff `slab` is null;
/// `head..=tail` is a chain of `n` freed blocks of `slab`, still counted in
/// its `used`, so the slab cannot be released meanwhile (and is not FREE).
///
/// `start` and `carved_bytes` cache what validating a block of `slab` needs
/// (its data start, and `carved * block_size` when the batch was opened):
/// `carved` only grows while the slab is live, so a block inside that range
/// at a multiple of the block size is a block the slab handed out. A block
/// beyond it takes the general path, which re-reads the record.
#[derive(Clone, Copy)]
pub(crate) struct Pending {
    slab: *const SlabMeta,
    head: *mut u8,
    tail: *mut u8,
    start: usize,
    carved_bytes: u32,
    n: u32,
}

impl Pending {
    pub(crate) const EMPTY: Pending = Pending {
        slab: ptr::null(),
        head: ptr::null_mut(),
        tail: ptr::null_mut(),
        start: 0,
        carved_bytes: 0,
        n: 0,
    };
}

/// Remote frees a thread batches per class before pushing them.
pub const REMOTE_BATCH: u32 = 32;

/// Outcome of [`free_remote`].
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum FreeOutcome {
    /// The block went to its slab's remote stack (possibly with a batch).
    Remote,
    /// The slab was FULL (ownerless, unlisted): the freeing thread adopted
    /// it, so the block is now a local free of class `class` and the caller
    /// pushes it on its cache.
    Adopted {
        /// Size class of the block.
        class: usize,
    },
    /// Not a block hakmem handed out; nothing was written.
    NotAllocated,
}

/// The common case of a free by a thread that does not own the block's
/// slab, cheap enough to inline into the facade's slow path: `b` belongs to
/// the slab this thread already batches frees of its class for and lies at
/// a block start inside the part of that slab carved when the batch was
/// opened. Then `b` joins the batch (a link and a count; a full batch is
/// pushed to the slab with one CAS, out of line) and the result is true.
/// Otherwise nothing is done and the caller goes on with [`free_remote`].
///
/// No further check is needed: a batch is only ever open on a slab that is
/// not FREE and has the batch's class (it counts the batch in `used`), and
/// only in a registered, live heap (thread exit flushes every batch first).
///
/// # Safety
/// `b` is a pointer into a live superslab that the program frees, `s` its
/// slab record; `heap` is the calling thread's.
#[inline(always)]
pub unsafe fn batch_remote(heap: &mut Heap, s: &SlabMeta, b: *mut u8) -> bool {
    let class = s.class();
    let Some(p) = heap.pending.get_mut(class) else {
        return false;
    };
    let off = (b as usize).wrapping_sub(p.start);
    if !(ptr::eq(p.slab, s) && off < p.carved_bytes as usize && is_block_offset(off, class)) {
        return false;
    }
    // SAFETY: the program freed `b`, a block of the batch's slab; it joins
    // our private chain.
    unsafe { set_block_next(b, p.head) };
    p.head = b;
    p.n += 1;
    heap.counters.class[class].remote_frees += 1;
    if p.n >= REMOTE_BATCH {
        flush_pending(heap, class);
    }
    true
}

/// A free of `b` by a thread that does not own its slab (the facade tries
/// [`batch_remote`] first).
///
/// When the slab is FULL — every block was handed out and its owner let go
/// of it — a registered thread adopts it on the spot (CAS FULL→ACTIVE), so
/// that a thread freeing many blocks of one slab (the common
/// allocate-many-then-free-all pattern, where the slabs ran out while
/// allocating) pays the slow path once per slab instead of once per block.
/// Otherwise the block joins (or opens) the thread's pending batch for its
/// class, which is pushed to the slab with one CAS when it is full or when
/// a free of another slab of the class comes.
///
/// # Safety
/// `b` is a pointer into a live superslab that the program frees; `heap` is
/// the calling thread's.
#[cold]
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
pub unsafe fn free_remote(heap: &mut Heap, b: *mut u8) -> FreeOutcome {
    // SAFETY: caller contract.
    let s = unsafe { slab_meta_of(b) };
    if !s.is_block_start(b as usize) {
        return FreeOutcome::NotAllocated;
    }
    let class = s.class();
    // Only a thread that itself allocates this class adopts: a pure consumer
    // would just hoard the slab (producer/consumer keeps the remote path).
    if heap.lifecycle() == Lifecycle::Active
        && !heap.partial[class].is_null()
        && s.try_adopt_full(heap.id)
    {
        heap.link(class, s);
        heap.counters.adopted += 1;
        event(EventKind::Adopt, class, 1, heap);
        return FreeOutcome::Adopted { class };
    }
    if s.state() == slab_state::FREE {
        return FreeOutcome::NotAllocated;
    }
    heap.counters.class[class].remote_frees += 1;
    if heap.lifecycle() != Lifecycle::Active {
        // No exit hook will flush a batch for this thread: push at once.
        // SAFETY: caller contract; the block start was validated.
        return match unsafe { hakmem_remote_queue::remote_free(s, b) } {
            RemoteFree::Queued => FreeOutcome::Remote,
            RemoteFree::NotAllocated => FreeOutcome::NotAllocated,
        };
    }
    let p = &mut heap.pending[class];
    if !ptr::eq(p.slab, s) {
        flush_pending(heap, class);
        let p = &mut heap.pending[class];
        p.slab = s;
        p.tail = b;
        p.head = ptr::null_mut();
        p.start = s.data_start();
    }
    let p = &mut heap.pending[class];
    // Also refreshed for an open batch: `b` may lie beyond the old bound.
    p.carved_bytes = s.carved() * s.block_size();
    // SAFETY: the program freed `b`; it joins our private chain.
    unsafe { set_block_next(b, p.head) };
    p.head = b;
    p.n += 1;
    if p.n >= REMOTE_BATCH {
        flush_pending(heap, class);
    }
    FreeOutcome::Remote
}

/// Pushes the batched remote frees of `class` to their slab.
#[cold]
#[inline(never)]
fn flush_pending(heap: &mut Heap, class: usize) {
    let p = core::mem::replace(&mut heap.pending[class], Pending::EMPTY);
    if p.n > 0 {
        // SAFETY: the invariant of `Pending`: a chain of `n` freed blocks
        // of a live slab that counts them in `used`.
        unsafe { hakmem_remote_queue::remote_free_chain(&*p.slab, p.head, p.tail, p.n) };
    }
}

/// Pushes every batched remote free of the thread to its slab (thread
/// exit, trim, and periodically from the facade's slow paths).
pub fn flush_remote_batches(heap: &mut Heap) {
    for class in 0..NUM_CLASSES {
        if heap.pending[class].n > 0 {
            flush_pending(heap, class);
        }
    }
}

/// Moves a slab's whole remote stack onto its local free list; returns how
/// many blocks moved. The caller owns the slab (or has quiesced its owner).
pub(crate) fn drain_remote(s: &SlabMeta) -> u32 {
    let r = hakmem_remote_queue::take_remote(s);
    if r.is_null() {
        return 0;
    }
    // SAFETY: `r` is a chain of free blocks of `s`.
    let (n, tail) = unsafe { hakmem_remote_queue::chain_len(r) };
    // SAFETY: the local list is the caller's; the chain goes in front of it.
    unsafe { set_block_next(tail, s.free_head()) };
    s.set_free_head(r);
    n
}
