//! The slabs a thread owns: its [`Heap`], taking a slab (adopt or acquire)
//! and letting one go.

use core::ptr;

use hakmem_ace_learning::{observe, Event, EventKind};
use hakmem_ptr_bridge::{slab_state, SlabMeta, NUM_CLASSES};

use crate::grow::Grow;
use crate::local::Lifecycle;
use crate::remote::Pending;

/// Heap id of a thread that has not registered yet: matches no slab owner.
/// It is 0 so that an all-zero thread state is a valid, unregistered one.
pub const UNREGISTERED: usize = 0;
/// Heap id of a thread that has exited (its caches are disabled).
pub const EXITED: usize = usize::MAX - 1;

/// A thread's ownership state: the slabs it owns, per class.
///
/// Invariant: a slab is linked in `partial[c]` iff `owner == id`, its
/// state is ACTIVE and its class is `c`; `tail[c]` is the list's last slab
/// (null when it is empty).
#[repr(C)] // this order: what a refill touches first, `pending` (remote frees only) last
pub struct Heap {
    pub(crate) id: usize, // owner id written in slab records
    pub(crate) partial: [*mut SlabMeta; NUM_CLASSES], // owned slabs (doubly linked)
    pub(crate) tail: [*mut SlabMeta; NUM_CLASSES], // last slab of each partial list
    pub(crate) grow: [Grow; NUM_CLASSES], // cache slow start per class
    pub(crate) grown: usize, // bytes the slow start's extras hold, all classes
    /// Slow-path counters of this thread (published by the facade).
    pub counters: Counters,
    pub(crate) pending: [Pending; NUM_CLASSES], // remote frees batched per class
}

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
    /// Makes the refills of `class` bring the policy's full count at once,
    /// as they do after the thread's first few (the ramp of
    /// `refill::ramp`): for tests and benchmarks that need a full batch
    /// from the first refill.
    pub fn skip_refill_ramp(&mut self, class: usize) {
        self.grow[class].skip_ramp();
    }

    /// A heap with no id and no slabs.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Heap {
            id: UNREGISTERED,
            partial: [ptr::null_mut(); NUM_CLASSES],
            tail: [ptr::null_mut(); NUM_CLASSES],
            pending: [Pending::EMPTY; NUM_CLASSES],
            grow: [Grow::ZERO; NUM_CLASSES],
            grown: 0,
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

    /// Blocks the cache cap of `class` holds above the policy's cap, from
    /// the slow start (see `grow.rs`): 0 until the class cycles more blocks
    /// than its cache holds.
    pub fn cap_boost(&self, class: usize) -> u32 {
        self.grow[class].boost()
    }

    /// Bytes of blocks the slow start's extras of all classes let this
    /// thread's cache hold above the policy's caps (at most
    /// [`crate::GROW_THREAD_BYTES`]).
    pub fn grown_bytes(&self) -> usize {
        self.grown
    }

    /// The owner id of this heap.
    #[inline(always)]
    pub fn id(&self) -> usize {
        self.id
    }

    /// Where the owning thread is in its life, read from the id: the id is
    /// the representation (the fast path compares slab owners with it), the
    /// [`Lifecycle`] is the API.
    #[inline]
    pub fn lifecycle(&self) -> Lifecycle {
        match self.id {
            UNREGISTERED => Lifecycle::Unregistered,
            EXITED => Lifecycle::Exited,
            _ => Lifecycle::Active,
        }
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

    pub(crate) fn link(&mut self, class: usize, s: &SlabMeta) {
        let sp = s as *const SlabMeta as *mut SlabMeta;
        let head = self.partial[class];
        s.set_spared(false);
        s.set_prev(ptr::null_mut());
        s.set_next(head);
        if head.is_null() {
            self.tail[class] = sp;
        } else {
            // SAFETY: linked slabs are live records owned by this heap.
            unsafe { (*head).set_prev(sp) };
        }
        self.partial[class] = sp;
    }

    /// Moves `s`, the head of `partial[class]`, to the end of the list.
    /// False, and nothing moved, when it is the only slab there.
    pub(crate) fn move_to_tail(&mut self, class: usize, s: &SlabMeta) -> bool {
        let last = self.tail[class];
        let sp = s as *const SlabMeta as *mut SlabMeta;
        if ptr::eq(last, sp) {
            return false;
        }
        self.unlink(class, s);
        s.set_prev(last);
        // SAFETY: linked slabs are live records owned by this heap, and the
        // list is not empty (`last` is in it).
        unsafe { (*last).set_next(sp) };
        self.tail[class] = sp;
        true
    }

    pub(crate) fn unlink(&mut self, class: usize, s: &SlabMeta) {
        let prev = s.prev();
        let next = s.next();
        if prev.is_null() {
            debug_assert!(ptr::eq(self.partial[class], s));
            self.partial[class] = next;
        } else {
            // SAFETY: linked slabs are live records owned by this heap.
            unsafe { (*prev).set_next(next) };
        }
        if next.is_null() {
            debug_assert!(ptr::eq(self.tail[class], s));
            self.tail[class] = prev;
        } else {
            // SAFETY: as above.
            unsafe { (*next).set_prev(prev) };
        }
        s.set_next(ptr::null_mut());
        s.set_prev(ptr::null_mut());
    }
}

pub(crate) fn event(kind: EventKind, class: usize, count: u32, heap: &Heap) {
    observe(Event {
        kind,
        class: class as u8,
        count,
        thread: heap.id as u32,
    });
}

/// Finds a slab for `class`: adopt an ownerless one, else a fresh one.
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
pub(crate) fn obtain(heap: &mut Heap, class: usize) -> Option<&'static SlabMeta> {
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

/// The owner lets go of a slab that has nothing left to hand out
/// ([`SlabMeta::go_full`]). If a remote free slipped in meanwhile, the
/// slab is taken back (returns true).
pub(crate) fn give_up_exhausted(heap: &mut Heap, class: usize, s: &SlabMeta) -> bool {
    heap.unlink(class, s);
    if s.go_full(slab_state::ACTIVE) {
        s.hand_to(heap.id);
        heap.link(class, s);
        return true;
    }
    false
}
