//! One thread's allocator state below the facade: the [`LocalHeap`], which
//! owns the thread cache (tls-front [`Front`]), the owned slabs ([`Heap`]),
//! the span stash, the slow-path counters and the maintenance cadence, and
//! its explicit [`Lifecycle`].
//!
//! The facade keeps the inline fast paths (the cache pop and push, and the
//! compare of a slab's owner with [`LocalHeap::id`]), the TLS word and the
//! thread-exit hook; every slow entry lands here and comes back as a
//! result: [`LocalHeap::alloc_slow`], [`LocalHeap::free_slow`],
//! [`LocalHeap::free_span`], with [`LocalHeap::tick`] as the named
//! maintenance step.

use core::sync::atomic::AtomicUsize;
use core::sync::atomic::Ordering::Relaxed;

use hakmem_ptr_bridge::SlabMeta;
use hakmem_superslab_backend::SpanStash;
use hakmem_tls_front::Front;

use crate::heap::{Counters, Heap, EXITED, UNREGISTERED};
use crate::remote::FreeOutcome;

/// Where a thread's state is in its life.
///
/// The enum is the API; the representation stays the heap id (see
/// [`LocalHeap::lifecycle`]): the free fast path compares a slab's owner
/// with the id, and the two reserved ids [`UNREGISTERED`] and [`EXITED`]
/// are no slab's owner, so a thread in either state always leaves the fast
/// path without a test of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    /// No allocator call yet: no id (heap id [`UNREGISTERED`], 0, so an
    /// all-zero state is an unregistered one).
    Unregistered,
    /// Registered: a real heap id, slabs and caches of its own.
    Active,
    /// Its exit hook ran (heap id [`EXITED`]): nothing may stay owned or
    /// cached; each slow call hands everything back before it returns.
    Exited,
}

/// The next heap id to hand out (ids start at 1; 0 is [`UNREGISTERED`]).
static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

/// A fresh heap id, never handed out before (thread registration, and the
/// temporary id an exited thread's allocation borrows).
pub fn next_id() -> usize {
    NEXT_ID.fetch_add(1, Relaxed)
}

/// Slow-path events of a thread between two publications of its counters
/// ([`LocalHeap::take_publish_due`]).
pub const PUBLISH_EVERY: u32 = 4096;

/// What [`LocalHeap::free_slow`] did.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum FreeResult {
    /// The block is freed (batched, pushed to its slab, or adopted with its
    /// slab and cached).
    Done,
    /// This pointer is not a block hakmem handed out (or a cache flush met
    /// one): nothing was done with it; the caller reports it.
    Invalid(*mut u8),
}

/// One thread's state below the facade.
///
/// `#[repr(C)]` with the cache first: the facade's fast paths reach
/// `front` and the heap id at fixed offsets from the TLS pointer. The small
/// fields come before the heap, and the heap's per-class arrays that every
/// refill touches before the ones only remote frees and statistics use, so
/// that a small program writes two pages of its 14 KB state, not three
/// (docs/benchmarks.md, "Issue 13: the writable data and the thread state").
#[repr(C)]
pub struct LocalHeap {
    front: Front,          // hot path: per-class block lists
    span_stash: SpanStash, // one freed span kept for this thread's next span
    slow_events: u32,      // maintenance cadence: slow events since publication
    heap: Heap,            // warm path: owned slabs per class, counters
}

impl LocalHeap {
    /// An unregistered state: empty, heap id [`UNREGISTERED`].
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        LocalHeap {
            front: Front::new(),
            heap: Heap::new(),
            span_stash: SpanStash::new(),
            slow_events: 0,
        }
    }

    /// An empty state of an exited thread (heap id [`EXITED`]): the
    /// shared, never-written state of exited threads, and the temporary
    /// state an exited thread's call is lent.
    pub const fn exited() -> Self {
        let mut l = LocalHeap::new();
        l.heap = Heap::with_id(EXITED);
        l
    }

    /// The heap id: what a slab's owner equals when this thread owns it
    /// (the fast path's compare). [`UNREGISTERED`] and [`EXITED`] equal no
    /// owner.
    #[inline(always)]
    pub fn id(&self) -> usize {
        self.heap.id()
    }

    /// The lifecycle, read from the heap id.
    #[inline]
    pub fn lifecycle(&self) -> Lifecycle {
        self.heap.lifecycle()
    }

    /// Registers the state: gives it a fresh heap id ([`Lifecycle::Active`]).
    pub fn register(&mut self) {
        self.heap.set_id(next_id());
    }

    /// Marks the state exited ([`Lifecycle::Exited`]); the caller has
    /// handed everything back ([`LocalHeap::abandon`]).
    pub fn mark_exited(&mut self) {
        self.heap.set_id(EXITED);
    }

    /// The thread cache (for the facade's inline fast paths and reports).
    #[inline(always)]
    pub fn front(&self) -> &Front {
        &self.front
    }

    /// The thread cache, mutably (the facade's inline pop and push).
    #[inline(always)]
    pub fn front_mut(&mut self) -> &mut Front {
        &mut self.front
    }

    /// The owned slabs (slab migration reads them).
    #[inline]
    pub fn heap(&self) -> &Heap {
        &self.heap
    }

    /// The heap and the cache together, for the engine's free functions
    /// that take both (the secure mode's checked refill and flushes, slab
    /// migration).
    #[inline]
    pub fn parts_mut(&mut self) -> (&mut Heap, &mut Front) {
        (&mut self.heap, &mut self.front)
    }

    /// The slow-path counters (published by the facade).
    #[inline]
    pub fn counters_mut(&mut self) -> &mut Counters {
        &mut self.heap.counters
    }

    /// Takes and resets the span stash's counts (allocations, frees).
    #[inline]
    pub fn take_stash_counts(&mut self) -> (u64, u64) {
        self.span_stash.take_counts()
    }

    /// A cache miss of `class` (or any slow allocation of a slab block):
    /// one block, the rest of the batch in the cache; null when memory is
    /// exhausted. The block still carries its free mark.
    ///
    /// Active: a refill, then a [`tick`](LocalHeap::tick). Exited (other
    /// destructors still allocating after the exit hook): the refill runs
    /// under a temporary heap id and everything else it took is handed
    /// back at once, so nothing stays owned by a dead thread.
    ///
    /// # Safety
    /// `self` is the calling thread's state (or the temporary state lent to
    /// an exited thread's call), and it is registered or exited.
    #[inline]
    #[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
    pub unsafe fn alloc_slow(&mut self, class: usize) -> *mut u8 {
        match self.lifecycle() {
            Lifecycle::Exited => {
                self.heap.set_id(next_id());
                // SAFETY: the heap has a valid id now; the state is this
                // thread's.
                let p = unsafe { crate::refill(&mut self.heap, &mut self.front, class) };
                // SAFETY: as above; returns the rest of the refill.
                unsafe { crate::abandon_all(&mut self.heap, &mut self.front) };
                self.heap.set_id(EXITED);
                p
            }
            l => {
                debug_assert_eq!(l, Lifecycle::Active);
                // SAFETY: caller contract; the heap is registered.
                let p = unsafe { crate::refill(&mut self.heap, &mut self.front, class) };
                self.tick();
                p
            }
        }
    }

    /// A cache overflow of `class`: blocks back to their slabs until the
    /// cache is at half its cap (see [`crate::flush`]); `Err` names a
    /// pointer that is not a block start of its slab (the caller reports
    /// it). No tick.
    ///
    /// # Safety
    /// `self` is the calling thread's state.
    #[inline]
    pub unsafe fn flush(&mut self, class: usize) -> Result<(), *mut u8> {
        // SAFETY: caller contract.
        unsafe { crate::flush(&mut self.heap, &mut self.front, class) }
    }

    /// The owner's cache overflow on a free: [`LocalHeap::flush`], then a
    /// [`tick`](LocalHeap::tick).
    ///
    /// # Safety
    /// `self` is the calling thread's state.
    #[inline]
    #[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
    pub unsafe fn flush_slow(&mut self, class: usize) -> Result<(), *mut u8> {
        // SAFETY: caller contract.
        let r = unsafe { self.flush(class) };
        if r.is_ok() {
            self.tick();
        }
        r
    }

    /// A free of `p` whose slab (record `m`) this thread does not own, or
    /// that no thread owns: the block joins the pending batch of its slab
    /// ([`crate::batch_remote`], inlined here, no tick: the common case, a
    /// link and a count), or goes through [`crate::free_remote`] (out of
    /// line), which pushes it to the slab or adopts a FULL slab on the spot;
    /// an adopted block is pushed on the cache (with a flush when that
    /// overflows). Then a [`tick`](LocalHeap::tick).
    ///
    /// # Safety
    /// `p` is a pointer into a live superslab that the program frees and
    /// `m` its slab record; `self` is the calling thread's state (or the
    /// temporary state lent to an exited thread's call).
    #[inline]
    #[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
    pub unsafe fn free_slow(&mut self, p: *mut u8, m: &SlabMeta) -> FreeResult {
        // SAFETY: caller contract.
        if unsafe { crate::batch_remote(&mut self.heap, m, p) } {
            return FreeResult::Done;
        }
        // SAFETY: forwarded contract.
        unsafe { self.free_slow_cold(p) }
    }

    /// [`LocalHeap::free_slow`] past the batch hit.
    ///
    /// # Safety
    /// As for [`LocalHeap::free_slow`].
    #[cold]
    #[inline(never)]
    #[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
    unsafe fn free_slow_cold(&mut self, p: *mut u8) -> FreeResult {
        // SAFETY: caller contract.
        match unsafe { crate::free_remote(&mut self.heap, p) } {
            FreeOutcome::NotAllocated => return FreeResult::Invalid(p),
            FreeOutcome::Adopted { class } => {
                // SAFETY: we own the block's slab now.
                if unsafe { self.front.push(class, p) } {
                    // SAFETY: our own state.
                    if let Err(bad) = unsafe { self.flush_slow(class) } {
                        return FreeResult::Invalid(bad);
                    }
                }
            }
            FreeOutcome::Remote => {}
        }
        self.tick();
        FreeResult::Done
    }

    /// A span for `size` bytes at `align` from the stash, or null (the
    /// caller maps one).
    #[inline]
    pub fn alloc_span(&mut self, size: usize, align: usize, zero: bool) -> *mut u8 {
        self.span_stash.alloc(size, align, zero)
    }

    /// A free of span `p`: kept in the stash (the previous one goes back),
    /// or unmapped. False when `p` is not a live span.
    #[inline]
    pub fn free_span(&mut self, p: *mut u8) -> bool {
        self.span_stash.free(p)
    }

    /// Whether span `p` is the one kept in the stash (already freed).
    #[inline]
    pub fn stash_holds(&self, p: *mut u8) -> bool {
        self.span_stash.holds(p)
    }

    /// Maintenance, once per slow-path event: every 32nd event the delayed
    /// return of memory to the OS (rate-limited inside); every 256th the
    /// ownerless slabs emptied by remote frees go back to the backend and
    /// the batched remote frees are pushed. Whether the counters are due
    /// for publication is [`LocalHeap::take_publish_due`].
    #[inline]
    #[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
    pub fn tick(&mut self) {
        self.slow_events += 1;
        if self.slow_events.is_multiple_of(32) {
            hakmem_superslab_backend::decay(false);
        }
        if self.slow_events.is_multiple_of(256) {
            crate::sweep_empty();
            crate::flush_remote_batches(&mut self.heap);
        }
    }

    /// True when [`PUBLISH_EVERY`] slow events passed since the counters
    /// were last published: the caller publishes them now. The cadence
    /// starts over from the publication point (an event ticked after it in
    /// the same slow call, as an adoption's flush and the free itself do,
    /// stays counted), as if the counters had been published at that tick.
    #[inline]
    pub fn take_publish_due(&mut self) -> bool {
        if self.slow_events < PUBLISH_EVERY {
            return false;
        }
        self.slow_events -= PUBLISH_EVERY;
        true
    }

    /// The counters were published (outside a slow call: thread exit,
    /// trim, a statistics read): the cadence starts over.
    #[inline]
    pub fn published(&mut self) {
        self.slow_events = 0;
    }

    /// Hands back every cached block, batched remote free, owned slab and
    /// the stashed span (thread exit, `flush_thread`); the state stays
    /// usable.
    ///
    /// # Safety
    /// `self` is the calling thread's state.
    #[cold]
    pub unsafe fn abandon(&mut self) {
        // SAFETY: caller contract.
        unsafe { crate::abandon_all(&mut self.heap, &mut self.front) };
        self.span_stash.flush();
    }

    /// Trim: [`LocalHeap::abandon`] with a sweep of the ownerless empty
    /// slabs in between ([`crate::trim`]).
    ///
    /// # Safety
    /// `self` is the calling thread's state, and it is registered.
    #[cold]
    pub unsafe fn trim(&mut self) {
        // SAFETY: caller contract.
        unsafe { crate::trim(&mut self.heap, &mut self.front) };
        self.span_stash.flush();
    }
}

const _: () = assert!(UNREGISTERED == 0);
