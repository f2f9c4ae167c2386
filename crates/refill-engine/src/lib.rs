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

use core::ptr;
use core::sync::atomic::Ordering::{Acquire, Relaxed, SeqCst};

use hakmem_ace_learning::{observe, Event, EventKind, POLICY};
use hakmem_ptr_bridge::{
    block_next, is_block_offset, is_carved_block, set_block_next, set_free_mark, slab_and_shift_of,
    slab_meta_of, slab_state, SlabMeta, NO_OWNER, NUM_CLASSES,
};
use hakmem_remote_queue::RemoteFree;
use hakmem_tls_front::Front;

/// When set, blocks are zeroed as they are carved (the facade's secure
/// mode sets it once, before the first allocation, so that every block it
/// hands out is zero past its list words whatever the slab served before,
/// and a non-zero byte there means a write after free).
static SCRUB_CARVED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Turns on (or off) the zeroing of blocks as they are carved.
pub fn set_scrub_carved(on: bool) {
    SCRUB_CARVED.store(on, Relaxed);
}

/// Heap id of a thread that has not registered yet: matches no slab owner.
/// It is 0 so that an all-zero thread state is a valid, unregistered one.
pub const UNREGISTERED: usize = 0;
/// Heap id of a thread that has exited (its caches are disabled).
pub const EXITED: usize = usize::MAX - 1;

/// A thread's ownership state: the slabs it owns, per class.
///
/// Invariant: a slab is linked in `partial[c]` iff `owner == id`, its
/// state is ACTIVE and its class is `c`.
pub struct Heap {
    id: usize,                             // owner id written in slab records
    partial: [*mut SlabMeta; NUM_CLASSES], // owned slabs (doubly linked)
    pending: [Pending; NUM_CLASSES],       // remote frees batched per class
    /// Slow-path counters of this thread (published by the facade).
    pub counters: Counters,
}

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
struct Pending {
    slab: *const SlabMeta,
    head: *mut u8,
    tail: *mut u8,
    start: usize,
    carved_bytes: u32,
    n: u32,
}

impl Pending {
    const EMPTY: Pending = Pending {
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

/// Per-thread, per-class slow-path counters (published in batches by the
/// facade's statistics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassCounters {
    /// Refills performed.
    pub refills: u64,
    /// Blocks brought by refills (handed out or cached).
    pub refill_blocks: u64,
    /// Flushes performed.
    pub flushes: u64,
    /// Cached blocks given back by flushes and thread exit.
    pub flushed_blocks: u64,
    /// Frees of blocks whose slab another thread owned (or none did).
    pub remote_frees: u64,
}

impl ClassCounters {
    const ZERO: ClassCounters = ClassCounters {
        refills: 0,
        refill_blocks: 0,
        flushes: 0,
        flushed_blocks: 0,
        remote_frees: 0,
    };
}

/// Per-thread slow-path counters.
#[derive(Clone, Copy, Debug)]
pub struct Counters {
    /// Per size class.
    pub class: [ClassCounters; NUM_CLASSES],
    /// Slabs adopted from the reclaim lists.
    pub adopted: u64,
}

impl Counters {
    /// Takes and resets the counters of `class`.
    pub fn take_class(&mut self, class: usize) -> ClassCounters {
        core::mem::replace(&mut self.class[class], ClassCounters::ZERO)
    }
}

impl Heap {
    /// A heap with no id and no slabs.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Heap {
            id: UNREGISTERED,
            partial: [ptr::null_mut(); NUM_CLASSES],
            pending: [Pending::EMPTY; NUM_CLASSES],
            counters: Counters {
                class: [ClassCounters::ZERO; NUM_CLASSES],
                adopted: 0,
            },
        }
    }

    /// A heap with id `id` and no slabs (for states that are shared and
    /// never written, whose id must be one no slab ever has as its owner:
    /// [`UNREGISTERED`] or [`EXITED`]).
    pub const fn with_id(id: usize) -> Self {
        let mut h = Heap::new();
        h.id = id;
        h
    }

    /// The owner id of this heap.
    #[inline(always)]
    pub fn id(&self) -> usize {
        self.id
    }

    /// Gives the heap its id (once, at thread registration) or marks it
    /// [`EXITED`].
    pub fn set_id(&mut self, id: usize) {
        self.id = id;
    }

    /// The memory node this heap takes new slabs from: threads are spread
    /// by heap id over the first `hakmem_superslab_backend::node_spread()` nodes
    /// (1 by default on a one-node machine; the acceptance test and
    /// `HAKMEM_NODES=2` spread them over both logical nodes).
    #[inline]
    pub fn node(&self) -> u8 {
        (self.id % hakmem_superslab_backend::node_spread()) as u8
    }

    fn link(&mut self, class: usize, s: &SlabMeta) {
        let sp = s as *const SlabMeta as *mut SlabMeta;
        let head = self.partial[class];
        s.prev.store(ptr::null_mut(), Relaxed);
        s.next.store(head, Relaxed);
        if !head.is_null() {
            // SAFETY: linked slabs are live records owned by this heap.
            unsafe { (*head).prev.store(sp, Relaxed) };
        }
        self.partial[class] = sp;
    }

    fn unlink(&mut self, class: usize, s: &SlabMeta) {
        let prev = s.prev.load(Relaxed);
        let next = s.next.load(Relaxed);
        if prev.is_null() {
            debug_assert!(ptr::eq(self.partial[class], s));
            self.partial[class] = next;
        } else {
            // SAFETY: linked slabs are live records owned by this heap.
            unsafe { (*prev).next.store(next, Relaxed) };
        }
        if !next.is_null() {
            // SAFETY: as above.
            unsafe { (*next).prev.store(prev, Relaxed) };
        }
        s.next.store(ptr::null_mut(), Relaxed);
        s.prev.store(ptr::null_mut(), Relaxed);
    }
}

fn event(kind: EventKind, class: usize, count: u32, heap: &Heap) {
    observe(Event {
        kind,
        class: class as u8,
        count,
        thread: heap.id as u32,
    });
}

/// Finds a slab for `class`: adopt an ownerless one, else a fresh one.
fn obtain(heap: &mut Heap, class: usize) -> Option<&'static SlabMeta> {
    if let Some(s) = hakmem_remote_queue::adopt(class, heap.id) {
        heap.counters.adopted += 1;
        heap.link(class, s);
        event(EventKind::Adopt, class, 0, heap);
        return Some(s);
    }
    let s = hakmem_superslab_backend::acquire_slab(class, heap.id, heap.node())?;
    heap.link(class, s);
    event(EventKind::SlabAcquire, class, 0, heap);
    Some(s)
}

/// The owner lets go of a slab that has nothing left to hand out. If a
/// remote free slipped in meanwhile, the slab is taken back (returns true).
fn give_up_exhausted(heap: &mut Heap, class: usize, s: &SlabMeta) -> bool {
    heap.unlink(class, s);
    s.owner.store(NO_OWNER, SeqCst);
    s.state.store(slab_state::FULL, SeqCst);
    // A remote free that saw ACTIVE did not publish the slab; its block is
    // visible here (SeqCst), so take the slab back instead of stranding it.
    if !s.remote.load(SeqCst).is_null()
        && s.state
            .compare_exchange(slab_state::FULL, slab_state::ACTIVE, SeqCst, SeqCst)
            .is_ok()
    {
        s.owner.store(heap.id, SeqCst);
        heap.link(class, s);
        return true;
    }
    false
}

/// Cache miss for `class`: returns one block and leaves up to
/// `refill_count - 1` more in the thread cache. Null when memory is
/// exhausted (nothing was changed then).
///
/// # Safety
/// `heap` and `front` are the calling thread's, and the heap is registered.
#[cold]
pub unsafe fn refill(heap: &mut Heap, front: &mut Front, class: usize) -> *mut u8 {
    debug_assert!(heap.id != UNREGISTERED);
    front.set_cap(class, POLICY.cache_cap(class));
    // A warm-pool prefill budget (set by the learner after an idle trim)
    // may ask for more than the refill count; the cache cap bounds both.
    let want = POLICY
        .refill_count(class)
        .max(POLICY.prefill(class))
        .min(front.cap(class).max(1));
    let mut head: *mut u8 = ptr::null_mut();
    let mut tail: *mut u8 = ptr::null_mut();
    let mut n = 0u32;
    while n < want {
        let s: &SlabMeta = if heap.partial[class].is_null() {
            match obtain(heap, class) {
                Some(s) => s,
                None => break,
            }
        } else {
            // SAFETY: linked slabs are live records owned by this heap.
            unsafe { &*heap.partial[class] }
        };
        let mut taken = 0u32;
        // Free blocks before never-used ones: the local list, and when it
        // runs short the remote stack too, so that carving (which grows the
        // set of blocks in circulation, and the cache footprint) only
        // happens when nothing freed is left.
        let mut f = s.free.load(Relaxed);
        let mut took_remote = false;
        while n < want {
            if f.is_null() {
                if took_remote {
                    break;
                }
                took_remote = true;
                f = hakmem_remote_queue::take_remote(s);
                if f.is_null() {
                    break;
                }
            }
            // Take a prefix of the list as it is: walk (reading only) to its
            // last block, cut the list there and splice the prefix in front
            // of our chain — one write for the whole prefix.
            let first = f;
            let mut last = f;
            let mut k = 1;
            // SAFETY: `last` is a free block of a slab we own.
            let mut nx = unsafe { block_next(last) };
            while k < want - n && !nx.is_null() {
                last = nx;
                // SAFETY: as above.
                nx = unsafe { block_next(last) };
                k += 1;
            }
            // SAFETY: `last` ends the prefix, which becomes our chain's head.
            unsafe { set_block_next(last, head) };
            if tail.is_null() {
                tail = last;
            }
            head = first;
            f = nx;
            taken += k;
            n += k;
        }
        s.free.store(f, Relaxed);
        if n < want {
            let cap = s.capacity.load(Relaxed);
            let mut carved = s.carved.load(Relaxed);
            if carved < cap {
                let bs = s.block_size.load(Relaxed) as usize;
                let start = s.data_start();
                let scrub = SCRUB_CARVED.load(Relaxed);
                while n < want && carved < cap {
                    let b = (start + carved as usize * bs) as *mut u8;
                    if scrub {
                        // SAFETY: a never-used block of `bs` bytes inside
                        // the slab we own.
                        unsafe { ptr::write_bytes(b, 0, bs) };
                    }
                    // SAFETY: a never-used block inside the slab we own.
                    // It enters a free structure, so it carries the free
                    // mark like every other free block.
                    unsafe {
                        set_block_next(b, head);
                        set_free_mark(b);
                    }
                    if tail.is_null() {
                        tail = b;
                    }
                    head = b;
                    carved += 1;
                    taken += 1;
                    n += 1;
                }
                s.carved.store(carved, Relaxed);
            }
        }
        if taken > 0 {
            s.used.fetch_add(taken, SeqCst);
        }
        if n < want && s.is_exhausted() {
            give_up_exhausted(heap, class, s);
        }
    }
    if n == 0 {
        return ptr::null_mut();
    }
    heap.counters.class[class].refills += 1;
    heap.counters.class[class].refill_blocks += n as u64;
    event(EventKind::Refill, class, n, heap);
    let first = head;
    // SAFETY: `first` heads our private chain of `n` blocks.
    let rest = unsafe { block_next(first) };
    if n > 1 {
        // SAFETY: `rest..=tail` is the remaining chain of n-1 blocks.
        unsafe { front.push_chain(class, rest, tail, n - 1) };
    }
    first
}

/// Returns one block (that the thread holds) to its slab: to the local free
/// list when the thread owns the slab, else through the remote protocol.
///
/// # Safety
/// `b` is an allocated block of class `class` held by the calling thread.
unsafe fn return_block(heap: &mut Heap, class: usize, b: *mut u8) {
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
    if s.owner.load(Relaxed) == heap.id {
        // SAFETY: we own the slab, so its local list is ours.
        unsafe { set_block_next(b, s.free.load(Relaxed)) };
        s.free.store(b, Relaxed);
        let was = s.used.fetch_sub(1, SeqCst);
        if was == 1 && !ptr::eq(heap.partial[class], s) {
            // Empty and not the warm head of the list: give it back.
            heap.unlink(class, s);
            // SAFETY: we own it, used == 0, and it is unlinked.
            unsafe { hakmem_superslab_backend::release_slab(s) };
            event(EventKind::SlabRelease, class, 0, heap);
        }
    } else {
        // SAFETY: forwarded contract; a block we hold is allocated.
        let r = unsafe { hakmem_remote_queue::remote_free(s, b) };
        debug_assert_eq!(r, RemoteFree::Queued);
    }
}

/// Cache overflow for `class`: returns blocks until the cache is at half
/// its cap.
///
/// Every block leaving the cache is checked to be a block start of a slab
/// of `class` (the owner's free fast path pushes without that check, which
/// costs a division): a pointer that is not — an interior or misaligned
/// free by the owning thread — stops the flush and comes back as `Err`,
/// with the cache left as it was minus the blocks already returned, for
/// the caller to report.
///
/// # Safety
/// `heap` and `front` are the calling thread's.
#[cold]
pub unsafe fn flush(heap: &mut Heap, front: &mut Front, class: usize) -> Result<(), *mut u8> {
    let keep = front.cap(class) / 2;
    let n = front.count(class).saturating_sub(keep);
    let (mut b, k) = front.take(class, n);
    while !b.is_null() {
        // SAFETY: `b` is a free block from our cache chain (or, if the
        // program freed a bad pointer, an address inside a live superslab
        // of ours, which is all the check needs). The cache only holds
        // pointers whose slab had `class` when they were pushed, and the
        // slab cannot change class while they count as used.
        let (s, shift) = unsafe { slab_and_shift_of(b) };
        if !is_carved_block(b as usize, shift, class, s.carved.load(Relaxed)) {
            return Err(b);
        }
        // SAFETY: `b` is a free block from our cache chain.
        let nx = unsafe { block_next(b) };
        // SAFETY: blocks in our cache are allocated from their slab's view;
        // `s` is `b`'s slab record.
        unsafe { return_block_to(heap, class, b, s) };
        b = nx;
    }
    heap.counters.class[class].flushes += 1;
    heap.counters.class[class].flushed_blocks += k as u64;
    event(EventKind::Flush, class, k, heap);
    Ok(())
}

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
    let class = s.class.load(Relaxed) as usize;
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
pub unsafe fn free_remote(heap: &mut Heap, b: *mut u8) -> FreeOutcome {
    // SAFETY: caller contract.
    let s = unsafe { slab_meta_of(b) };
    if !s.is_block_start(b as usize) {
        return FreeOutcome::NotAllocated;
    }
    let class = s.class.load(Relaxed) as usize;
    // Only a thread that itself allocates this class adopts: a pure consumer
    // would just hoard the slab (producer/consumer keeps the remote path).
    if heap.id != UNREGISTERED
        && heap.id != EXITED
        && !heap.partial[class].is_null()
        && s.state.load(Relaxed) == slab_state::FULL
        && s.state
            .compare_exchange(slab_state::FULL, slab_state::ACTIVE, SeqCst, Relaxed)
            .is_ok()
    {
        s.owner.store(heap.id, SeqCst);
        heap.link(class, s);
        heap.counters.adopted += 1;
        event(EventKind::Adopt, class, 1, heap);
        return FreeOutcome::Adopted { class };
    }
    if s.state.load(Acquire) == slab_state::FREE {
        return FreeOutcome::NotAllocated;
    }
    heap.counters.class[class].remote_frees += 1;
    if heap.id == EXITED || heap.id == UNREGISTERED {
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
    p.carved_bytes = s.carved.load(Relaxed) * s.block_size.load(Relaxed);
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
    unsafe { set_block_next(tail, s.free.load(Relaxed)) };
    s.free.store(r, Relaxed);
    n
}

/// Thread exit: empties every cache, then for each owned slab releases it
/// when empty or publishes it for adoption. Afterwards the heap owns
/// nothing and the front is empty.
///
/// # Safety
/// `heap` and `front` are the calling thread's.
#[cold]
pub unsafe fn abandon_all(heap: &mut Heap, front: &mut Front) {
    flush_remote_batches(heap);
    for class in 0..NUM_CLASSES {
        let (mut b, k) = front.take(class, u32::MAX);
        heap.counters.class[class].flushed_blocks += k as u64;
        while !b.is_null() {
            // SAFETY: a block from our cache chain.
            let nx = unsafe { block_next(b) };
            // SAFETY: blocks in our cache are allocated.
            unsafe { return_block(heap, class, b) };
            b = nx;
        }
    }
    for class in 0..NUM_CLASSES {
        while !heap.partial[class].is_null() {
            // SAFETY: linked slabs are live records owned by this heap.
            let s: &SlabMeta = unsafe { &*heap.partial[class] };
            heap.unlink(class, s);
            drain_remote(s);
            if s.used.load(SeqCst) == 0 {
                // SAFETY: owned, empty, unlinked.
                unsafe { hakmem_superslab_backend::release_slab(s) };
            } else if !s.free.load(Relaxed).is_null()
                || s.carved.load(Relaxed) < s.capacity.load(Relaxed)
            {
                s.owner.store(NO_OWNER, SeqCst);
                s.state.store(slab_state::QUEUED, SeqCst);
                hakmem_remote_queue::publish(s);
            } else {
                s.owner.store(NO_OWNER, SeqCst);
                s.state.store(slab_state::FULL, SeqCst);
                if !s.remote.load(SeqCst).is_null()
                    && s.state
                        .compare_exchange(slab_state::FULL, slab_state::QUEUED, SeqCst, SeqCst)
                        .is_ok()
                {
                    hakmem_remote_queue::publish(s);
                }
            }
        }
    }
}

/// Releases every published slab whose blocks have all been freed (for
/// example by other threads after its owner exited). Returns the number of
/// slabs released. Any thread may call it; it takes no ownership.
#[cold]
pub fn sweep_empty() -> usize {
    let mut released = 0;
    for list in hakmem_remote_queue::RECLAIM.iter() {
        let mut chain = list.take_empty();
        while !chain.is_null() {
            // SAFETY: `take_empty` returns live, unlinked, empty records.
            let s: &SlabMeta = unsafe { &*chain };
            chain = s.next.load(Relaxed);
            s.next.store(ptr::null_mut(), Relaxed);
            // SAFETY: empty (used == 0), unlinked, no remote free in flight;
            // nobody else can reach it since it left the reclaim list.
            unsafe { hakmem_superslab_backend::release_slab(s) };
            released += 1;
        }
    }
    released
}

/// Trim: hands back the calling thread's caches and slabs (as at thread
/// exit, but the thread stays usable), then releases every ownerless slab
/// whose blocks have all been freed ([`sweep_empty`]). Returns the number of
/// slabs the sweep released.
///
/// # Safety
/// `heap` and `front` are the calling thread's.
#[cold]
pub unsafe fn trim(heap: &mut Heap, front: &mut Front) -> usize {
    // SAFETY: forwarded contract.
    unsafe { abandon_all(heap, front) };
    sweep_empty()
}
