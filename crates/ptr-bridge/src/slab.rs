//! The per-slab record ([`SlabMeta`]), its life-cycle states
//! ([`slab_state`]) and transitions, and the [`SlabRecord`] trait that lets
//! the remote-free protocol (and its model test) run on any record.

use core::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU8, AtomicUsize, Ordering};

use static_assertions::{assert_eq_size, const_assert_eq};

use crate::cell::{AtomicCell, AtomicCount};
use crate::*;
/// The `owner` of a slab that no thread owns. Thread heap ids are never
/// this value, and a thread that has not registered yet has id 0, which no
/// slab ever carries, so an all-zero thread state matches no slab.
pub const NO_OWNER: usize = usize::MAX;

/// Life-cycle states of a slab ([`SlabMeta::state`]), and the
/// [`SlabMeta`] method that moves a slab along each edge.
///
/// ```text
///            activate                    go_full (the owner lets go)
///  FREE -----------------> ACTIVE(owner) ----------------------> FULL (no owner)
///   ^                       |  ^   ^                               |   |
///   |      release          |  |   +---------- try_adopt_full -----+   | queue_if_full
///   +--- (used == 0) -------+  |               (or go_full's           | (the first
///   |                          |               take-back CAS)          |  remote free,
///   |      release             |  claim_queued                         |  or go_full's
///   +--- (used == 0, swept) -- QUEUED (in a reclaim list) <------------+  CAS)
///                               ^
///                               +--- go_queued (from ACTIVE, at thread exit)
/// ```
///
/// `hand_to` also moves an ACTIVE slab from one owner to another (slab
/// migration, under quiescence).
pub mod slab_state {
    /// Not assigned to any class; belongs to the superslab backend.
    pub const FREE: u8 = 0;
    /// Owned by one thread (`owner` is its heap id, never [`NO_OWNER`](super::NO_OWNER)) and linked in its partial list.
    pub const ACTIVE: u8 = 1;
    /// Every block was handed out; the owner let go of it (`owner == NO_OWNER`).
    /// The first remote free moves it to `QUEUED`.
    pub const FULL: u8 = 2;
    /// Ownerless and linked in the reclaim list of its class, waiting to be
    /// adopted by a thread that needs blocks of that class.
    pub const QUEUED: u8 = 3;
}

/// The per-slab record (one cache line, so that remote frees to different
/// slabs never share a line).
///
/// Every field is private; it is read through the accessors and changed
/// only through the named transitions below (and the few owner-only
/// setters), each of which says which thread may call it and with which
/// orderings. Fields marked *owner* are only touched by the owning thread
/// (or by the backend while the slab is FREE, or under quiescence during a
/// migration) and use `Relaxed`, which compiles to plain loads and stores.
///
/// # Invariants
///
/// They hold between transitions (inside one, the fields are written in
/// the order its documentation gives). `len(l)` is the length of a block
/// list; blocks in a thread cache or in a pending remote batch count as
/// `used`.
///
/// For a slab that is not FREE:
/// ```text
/// used + len(free) + len(remote) + (capacity - carved) == capacity     (blocks)
/// carved <= capacity
/// block_size == CLASS_STRIDE[class]
/// capacity   == slab_capacity(slab shift, block_size), or, with the
///               secure mode's guard page at the slab's end, the slab's
///               bytes less that page divided by block_size
/// ```
/// For every slab:
/// ```text
/// (state == ACTIVE) <=> (owner != NO_OWNER)                            (ownership)
/// (state == ACTIVE) <=> the slab is linked in partial[class] of owner's heap, or is
///                       in the middle of the owner's refill or exit
/// (state == QUEUED) <=> the slab is linked exactly once in RECLAIM[class]
/// (state == FREE)    => used == 0 && free == null && remote == null && carved == 0
/// state becomes FREE only while used == 0, and only by `release`       (release guard)
/// ```
/// `owner` and `state` change only through [`SlabMeta::activate`],
/// [`SlabMeta::release`], [`SlabMeta::go_full`], [`SlabMeta::go_queued`],
/// [`SlabMeta::hand_to`], [`SlabMeta::try_adopt_full`],
/// [`SlabMeta::queue_if_full`] and [`SlabMeta::claim_queued`]; `used`
/// only through [`SlabMeta::add_used`], [`SlabMeta::sub_used`] and
/// [`SlabMeta::end_remote_free`]. The bodies of the transitions on the
/// shared fields (`owner`, `state`, `remote`, `used`) are the provided
/// methods of [`SlabRecord`], so a model record runs the same code.
#[repr(C, align(64))]
pub struct SlabMeta {
    /// Heap id of the owning thread; [`NO_OWNER`] when none. Read by the
    /// free fast path at offset 0: do not move.
    owner: AtomicUsize,
    /// *owner*: head of the local free list (link in each block's first word).
    free: AtomicPtr<u8>,
    /// Head of the multi-producer stack of remotely freed blocks.
    remote: AtomicPtr<u8>,
    /// Intrusive link: next slab in the owner's partial list or reclaim list.
    next: AtomicPtr<SlabMeta>,
    /// *owner*: previous slab in the owner's partial list.
    prev: AtomicPtr<SlabMeta>,
    /// Blocks handed out and not yet returned (see the invariants above).
    used: AtomicU32,
    /// *owner*: blocks carved from the slab's memory so far.
    carved: AtomicU32,
    /// Number of blocks the slab holds.
    capacity: AtomicU32,
    /// Distance between blocks in bytes, which is also each block's usable
    /// size (== `CLASS_STRIDE[class]`: the class size, plus the colour gap
    /// from 8 KiB up).
    block_size: AtomicU32,
    /// Size class (a u32 so the free path loads it straight into an index
    /// register). Read by the free fast path at offset 56: do not move.
    class: AtomicU32,
    /// One of [`slab_state`].
    state: AtomicU8,
    /// This slab's index in its superslab.
    index: AtomicU8,
    /// *owner*: a refill found the slab exhausted and kept it once (see
    /// `hakmem-refill-engine`'s `take_chain`); cleared when blocks are
    /// taken from it and when a heap links it.
    spared: AtomicU8,
}

// One cache line, and nothing more: the record arithmetic below
// (`RECORD_SHIFT`, `record_mask`) multiplies by 64, and remote frees to
// different slabs must never share a line.
assert_eq_size!(SlabMeta, [u8; 64]);
const_assert_eq!(core::mem::align_of::<SlabMeta>(), 64);
const_assert_eq!(core::mem::offset_of!(SlabMeta, owner), 0);
const_assert_eq!(core::mem::offset_of!(SlabMeta, class), 56);

/// The fields of a slab record that threads share — `remote`, `owner`,
/// `used`, `state` — as [`cell`] atomics, and the bodies of the record's
/// transitions on them (the provided methods).
///
/// [`SlabMeta`] is the production record: its transition methods
/// ([`SlabMeta::go_full`], ...) forward to these bodies with
/// `#[inline(always)]`, so they compile to the same code as stores and
/// CASes written in place. The remote-free protocol of
/// `hakmem-remote-queue` is generic over this trait (its `*_on`
/// functions), and its model test (`crates/remote-queue/tests/model.rs`)
/// implements it for a record built from shuttle's atomics, so the model
/// checker runs the transitions' own code.
///
/// The four `*_cell` accessors hand out the raw atomics: they exist for
/// the provided methods and for the remote stack of
/// `hakmem-remote-queue` (`push_remote_chain_on`, `take_remote_on`) only.
/// Everything else reads [`SlabMeta`]'s accessors and calls its named
/// transitions, which do not need this trait in scope.
pub trait SlabRecord {
    /// `remote`: the head of the remote stack.
    type Ptr: AtomicCell<*mut u8>;
    /// `owner`: a heap id or [`NO_OWNER`].
    type Word: AtomicCell<usize>;
    /// `used`: blocks handed out and not yet returned.
    type Count: AtomicCount;
    /// `state`: one of [`slab_state`].
    type State: AtomicCell<u8>;
    /// The remote stack head (for the remote-free protocol only).
    fn remote_cell(&self) -> &Self::Ptr;
    /// The owner's heap id (for the transition bodies only).
    fn owner_cell(&self) -> &Self::Word;
    /// The count of blocks out (for the transition bodies only).
    fn used_cell(&self) -> &Self::Count;
    /// The life-cycle state (for the remote-free protocol only).
    fn state_cell(&self) -> &Self::State;

    /// The body of [`SlabMeta::go_full`].
    #[inline(always)]
    fn go_full(&self, to: u8) -> bool {
        self.owner_cell().store(NO_OWNER, SeqCst);
        self.state_cell().store(slab_state::FULL, SeqCst);
        !self.remote_cell().load(SeqCst).is_null()
            && self
                .state_cell()
                .compare_exchange(slab_state::FULL, to, SeqCst, SeqCst)
                .is_ok()
    }

    /// The body of [`SlabMeta::go_queued`].
    #[inline(always)]
    fn go_queued(&self) {
        self.owner_cell().store(NO_OWNER, SeqCst);
        self.state_cell().store(slab_state::QUEUED, SeqCst);
    }

    /// The body of [`SlabMeta::hand_to`].
    #[inline(always)]
    fn hand_to(&self, owner: usize) {
        self.owner_cell().store(owner, SeqCst);
    }

    /// The body of [`SlabMeta::try_adopt_full`].
    #[inline(always)]
    fn try_adopt_full(&self, owner: usize) -> bool {
        let state = self.state_cell();
        if state.load(Relaxed) == slab_state::FULL
            && state
                .compare_exchange(slab_state::FULL, slab_state::ACTIVE, SeqCst, Relaxed)
                .is_ok()
        {
            self.owner_cell().store(owner, SeqCst);
            return true;
        }
        false
    }

    /// The body of [`SlabMeta::queue_if_full`].
    #[inline(always)]
    fn queue_if_full(&self) -> bool {
        let state = self.state_cell();
        state.load(SeqCst) == slab_state::FULL
            && state
                .compare_exchange(slab_state::FULL, slab_state::QUEUED, SeqCst, Relaxed)
                .is_ok()
    }

    /// The body of [`SlabMeta::claim_queued`].
    #[inline(always)]
    fn claim_queued(&self, owner: usize) {
        self.owner_cell().store(owner, SeqCst);
        self.state_cell().store(slab_state::ACTIVE, SeqCst);
    }

    /// The body of [`SlabMeta::add_used`].
    #[inline(always)]
    fn add_used(&self, n: u32) {
        self.used_cell().fetch_add(n, SeqCst);
    }

    /// The body of [`SlabMeta::sub_used`].
    #[inline(always)]
    fn sub_used(&self, n: u32) -> u32 {
        self.used_cell().fetch_sub(n, SeqCst)
    }

    /// The body of [`SlabMeta::end_remote_free`].
    #[inline(always)]
    fn end_remote_free(&self, n: u32) {
        self.used_cell().fetch_sub(n, Release);
    }
}

impl SlabRecord for SlabMeta {
    type Ptr = AtomicPtr<u8>;
    type Word = AtomicUsize;
    type Count = AtomicU32;
    type State = AtomicU8;
    #[inline(always)]
    fn remote_cell(&self) -> &AtomicPtr<u8> {
        &self.remote
    }
    #[inline(always)]
    fn owner_cell(&self) -> &AtomicUsize {
        &self.owner
    }
    #[inline(always)]
    fn used_cell(&self) -> &AtomicU32 {
        &self.used
    }
    #[inline(always)]
    fn state_cell(&self) -> &AtomicU8 {
        &self.state
    }
}

impl SlabMeta {
    /// A record in the FREE state.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        SlabMeta {
            owner: AtomicUsize::new(NO_OWNER),
            free: AtomicPtr::new(core::ptr::null_mut()),
            remote: AtomicPtr::new(core::ptr::null_mut()),
            next: AtomicPtr::new(core::ptr::null_mut()),
            prev: AtomicPtr::new(core::ptr::null_mut()),
            used: AtomicU32::new(0),
            carved: AtomicU32::new(0),
            capacity: AtomicU32::new(0),
            block_size: AtomicU32::new(0),
            class: AtomicU32::new(0),
            state: AtomicU8::new(slab_state::FREE),
            index: AtomicU8::new(0),
            spared: AtomicU8::new(0),
        }
    }

    // ----- reads -----

    /// Heap id of the owner, [`NO_OWNER`] when none (`Relaxed`: the free
    /// fast path compares it with its own heap id, which only the owner
    /// itself can have stored).
    #[inline(always)]
    pub fn owner(&self) -> usize {
        self.owner.load(Relaxed)
    }

    /// The size class (`Relaxed`; fixed while the slab is not FREE).
    #[inline(always)]
    pub fn class(&self) -> usize {
        self.class.load(Relaxed) as usize
    }

    /// One of [`slab_state`] (`Acquire`).
    #[inline(always)]
    pub fn state(&self) -> u8 {
        self.state.load(Acquire)
    }

    /// Blocks handed out and not yet returned (`SeqCst`: `used == 0` read
    /// by the owner or a sweeper is what proves that no remote free still
    /// touches the record, the release guard).
    #[inline(always)]
    pub fn used(&self) -> u32 {
        self.used.load(SeqCst)
    }

    /// *owner*: blocks carved so far (`Relaxed`).
    #[inline(always)]
    pub fn carved(&self) -> u32 {
        self.carved.load(Relaxed)
    }

    /// Number of blocks the slab holds (`Relaxed`; fixed while not FREE).
    #[inline(always)]
    pub fn capacity(&self) -> u32 {
        self.capacity.load(Relaxed)
    }

    /// Distance between blocks and usable size of each, in bytes
    /// (`Relaxed`; fixed while not FREE).
    #[inline(always)]
    pub fn block_size(&self) -> u32 {
        self.block_size.load(Relaxed)
    }

    /// *owner*: head of the local free list (`Relaxed`).
    #[inline(always)]
    pub fn free_head(&self) -> *mut u8 {
        self.free.load(Relaxed)
    }

    /// Head of the remote stack (`SeqCst`), without taking it: for the
    /// exhaustion check and for walkers that run while every thread is
    /// quiesced (migration audit, invariant scan). Only the remote-free
    /// protocol (`hakmem_remote_queue::take_remote`) takes it.
    #[inline(always)]
    pub fn remote_head(&self) -> *mut u8 {
        self.remote.load(SeqCst)
    }

    /// Next slab in the list that holds this one (`Relaxed`; the list's
    /// holder reads it: the owner for its partial list, the reclaim list
    /// under its lock).
    #[inline(always)]
    pub fn next(&self) -> *mut SlabMeta {
        self.next.load(Relaxed)
    }

    /// *owner*: previous slab in the owner's partial list (`Relaxed`).
    #[inline(always)]
    pub fn prev(&self) -> *mut SlabMeta {
        self.prev.load(Relaxed)
    }

    // ----- owner-only and list-holder setters -----

    /// *owner*: sets the head of the local free list (`Relaxed`). The
    /// caller keeps the blocks invariant: blocks only move between the
    /// local list and the owner's cache (counted by [`SlabMeta::add_used`]
    /// / [`SlabMeta::sub_used`]) or from the remote stack.
    #[inline(always)]
    pub fn set_free_head(&self, head: *mut u8) {
        self.free.store(head, Relaxed);
    }

    /// *owner*: advances the carve cursor to `carved` (`Relaxed`;
    /// `carved <= capacity`, never moves back while the slab is not FREE).
    #[inline(always)]
    pub fn set_carved(&self, carved: u32) {
        debug_assert!(carved <= self.capacity() && carved >= self.carved());
        self.carved.store(carved, Relaxed);
    }

    /// Sets the next link (`Relaxed`): only the holder of the list the
    /// slab is in, or is being put in (the owner for its partial list; the
    /// reclaim list under its lock; a sweeper for the chain it took).
    #[inline(always)]
    pub fn set_next(&self, next: *mut SlabMeta) {
        self.next.store(next, Relaxed);
    }

    /// *owner*: sets the previous link of the owner's partial list
    /// (`Relaxed`).
    #[inline(always)]
    pub fn set_prev(&self, prev: *mut SlabMeta) {
        self.prev.store(prev, Relaxed);
    }

    /// *owner*: whether a refill already kept this slab once while it was
    /// exhausted (`Relaxed`).
    #[inline]
    pub fn spared(&self) -> bool {
        self.spared.load(Relaxed) != 0
    }

    /// *owner*: sets [`SlabMeta::spared`] (`Relaxed`).
    #[inline]
    pub fn set_spared(&self, on: bool) {
        self.spared.store(on as u8, Relaxed);
    }

    // ----- transitions -----

    /// Backend, once per record when its superslab is mapped (the memory
    /// is zeroed): the record of slab `index`, FREE and ownerless (both
    /// `Relaxed`; the superslab is published later with a `SeqCst` store
    /// of its magic).
    #[inline]
    pub fn init_free(&self, index: u8) {
        self.index.store(index, Relaxed);
        self.owner.store(NO_OWNER, Relaxed);
    }

    /// FREE → ACTIVE: the backend hands the slab, which it has just taken
    /// out of its pools (so no other thread can reach the record), to
    /// `owner` for `class`, with blocks `stride` bytes apart and
    /// `capacity` of them, nothing carved and every list empty. The
    /// geometry and lists are stored `Relaxed`, then `owner` and last
    /// `state` with `SeqCst`, so a thread that sees ACTIVE (an `Acquire`
    /// [`SlabMeta::state`]) sees the rest.
    #[inline]
    pub fn activate(&self, owner: usize, class: usize, stride: u32, capacity: u32) {
        debug_assert_ne!(owner, NO_OWNER);
        self.free.store(ptr::null_mut(), Relaxed);
        self.remote.store(ptr::null_mut(), Relaxed);
        self.next.store(ptr::null_mut(), Relaxed);
        self.prev.store(ptr::null_mut(), Relaxed);
        self.used.store(0, Relaxed);
        self.carved.store(0, Relaxed);
        self.capacity.store(capacity, Relaxed);
        self.block_size.store(stride, Relaxed);
        self.class.store(class as u32, Relaxed);
        self.owner.store(owner, SeqCst);
        self.state.store(slab_state::ACTIVE, SeqCst);
    }

    /// ACTIVE or QUEUED → FREE: the slab goes back to the backend
    /// (`hakmem_superslab_backend::release_slab`). Only the owner, or the
    /// sweeper that unlinked a QUEUED slab from its reclaim list, and only
    /// when `used == 0` (read with [`SlabMeta::used`]): the last step of
    /// every remote free is its `used` decrement, so no free still touches
    /// the record. `owner` is cleared (`SeqCst`), the local list, remote
    /// stack and carve cursor are reset (`Relaxed`), and `state` becomes
    /// FREE last (`SeqCst`).
    #[inline]
    pub fn release(&self) {
        debug_assert_eq!(self.used.load(Relaxed), 0);
        self.owner.store(NO_OWNER, SeqCst);
        self.free.store(ptr::null_mut(), Relaxed);
        self.remote.store(ptr::null_mut(), Relaxed);
        self.carved.store(0, Relaxed);
        self.state.store(slab_state::FREE, SeqCst);
    }

    /// ACTIVE → FULL, then maybe FULL → `to`: the owner lets go of a slab
    /// it has unlinked and that has no free block left to hand out
    /// (`owner = NO_OWNER`, `state = FULL`, both `SeqCst`). A remote free
    /// that saw the slab ACTIVE did not publish it; if such a block is on
    /// the remote stack now (a `SeqCst` load: under sequential consistency
    /// either the free's push is visible here or its state load comes
    /// after the FULL store), the slab is moved from FULL to `to` with one
    /// `SeqCst` CAS and true is returned, for the caller to take it back
    /// (`to` = ACTIVE, then [`SlabMeta::hand_to`] itself) or publish it
    /// (`to` = QUEUED). False: no remote free slipped in, or one that saw
    /// FULL won the FULL → QUEUED CAS ([`SlabMeta::queue_if_full`]) and
    /// publishes the slab itself. Owner only.
    #[inline(always)]
    pub fn go_full(&self, to: u8) -> bool {
        SlabRecord::go_full(self, to)
    }

    /// ACTIVE → QUEUED: the owner lets go of a slab that still has free or
    /// uncarved blocks (thread exit): `owner = NO_OWNER`, then `state =
    /// QUEUED`, both `SeqCst`. The caller has unlinked it and links it into
    /// its reclaim list next (`hakmem_remote_queue::publish`). Owner only.
    #[inline(always)]
    pub fn go_queued(&self) {
        SlabRecord::go_queued(self)
    }

    /// Stores `owner` as the owner of an ACTIVE slab (`SeqCst`): the owner
    /// taking a slab back after [`SlabMeta::go_full`]`(ACTIVE)` returned
    /// true, or a migration moving it to another heap while both heaps'
    /// threads are quiesced.
    #[inline(always)]
    pub fn hand_to(&self, owner: usize) {
        SlabRecord::hand_to(self, owner)
    }

    /// FULL → ACTIVE for `owner`: a thread that frees a block of a FULL
    /// slab adopts it on the spot. A `Relaxed` look at `state`, then a CAS
    /// FULL → ACTIVE (`SeqCst` on success, `Relaxed` on failure), and on
    /// success `owner` (`SeqCst`). True when `owner` won the slab; false,
    /// with nothing written, when it was not FULL or another thread (a
    /// remote free's [`SlabMeta::queue_if_full`], another adopter) won.
    /// Any registered thread.
    #[inline(always)]
    pub fn try_adopt_full(&self, owner: usize) -> bool {
        SlabRecord::try_adopt_full(self, owner)
    }

    /// FULL → QUEUED: after a remote free has pushed its blocks, a `SeqCst`
    /// load of `state` and, if FULL, a CAS FULL → QUEUED (`SeqCst` on
    /// success, `Relaxed` on failure). True for the one thread that won:
    /// it must link the slab into its reclaim list
    /// (`hakmem_remote_queue::publish`). Any thread, while the slab is not
    /// FREE (its blocks count in `used`).
    #[inline(always)]
    pub fn queue_if_full(&self) -> bool {
        SlabRecord::queue_if_full(self)
    }

    /// QUEUED → ACTIVE: the thread that unlinked the slab from its reclaim
    /// list (`hakmem_remote_queue::adopt`) becomes its owner: `owner`, then
    /// `state = ACTIVE`, both `SeqCst`. It drains the remote stack next.
    #[inline(always)]
    pub fn claim_queued(&self, owner: usize) {
        SlabRecord::claim_queued(self, owner)
    }

    /// `used += n` (`SeqCst`): the owner handed `n` blocks from the local
    /// list, the remote stack or the carve cursor to its cache.
    #[inline(always)]
    pub fn add_used(&self, n: u32) {
        SlabRecord::add_used(self, n)
    }

    /// `used -= n` (`SeqCst`), returning the count before: the owner put
    /// `n` blocks back on the local list (a local free, a flush, a
    /// migration's flush of the old owner's cache). When it returns `n`,
    /// the slab is empty and the owner may [`SlabMeta::release`] it.
    #[inline(always)]
    pub fn sub_used(&self, n: u32) -> u32 {
        SlabRecord::sub_used(self, n)
    }

    /// `used -= n` (`Release`): the very last step of a remote free of `n`
    /// blocks (`hakmem_remote_queue::remote_free_chain`), after the push
    /// and [`SlabMeta::queue_if_full`]; the record must not be touched
    /// after it (the release guard). Any thread that freed the blocks.
    #[inline(always)]
    pub fn end_remote_free(&self, n: u32) {
        SlabRecord::end_remote_free(self, n)
    }

    // ----- geometry -----

    /// The superslab header this record lives in.
    #[inline]
    pub fn superslab(&self) -> *mut SuperslabHeader {
        ((self as *const SlabMeta as usize) & !CHUNK_MASK) as *mut SuperslabHeader
    }

    /// First byte of the slab's block area.
    #[inline]
    pub fn data_start(&self) -> usize {
        // SAFETY: a SlabMeta only ever lives inside a superslab header, whose
        // `slab_shift` is written before any slab record is handed out.
        let shift = unsafe { (*self.superslab()).slab_shift.load(Ordering::Relaxed) } as u32;
        slab_data_start(
            self.superslab() as usize,
            self.index.load(Ordering::Relaxed) as usize,
            shift,
        )
    }

    /// The slab index this record describes.
    #[inline]
    pub fn slab_index(&self) -> usize {
        self.index.load(Ordering::Relaxed) as usize
    }

    /// True when `p` is the start of one of this slab's carved blocks.
    /// Divides by the block size with a multiply by a per-class reciprocal
    /// ([`block_index`]): a few cycles, still only on slow paths.
    pub fn is_block_start(&self, p: usize) -> bool {
        let start = self.data_start();
        let bs = self.block_size.load(Ordering::Relaxed) as usize;
        let class = self.class.load(Ordering::Relaxed) as usize;
        if p < start || bs == 0 || class >= NUM_CLASSES {
            return false;
        }
        let off = p - start;
        if off >= 1 << MEDIUM_SLAB_SHIFT {
            return false;
        }
        is_block_offset(off, class) && off < self.carved.load(Ordering::Relaxed) as usize * bs
    }

    /// Blocks this slab has never handed out and never will again without a
    /// free: nothing local, nothing remote, nothing left to carve.
    #[inline]
    pub fn is_exhausted(&self) -> bool {
        self.free.load(Ordering::Relaxed).is_null()
            && self.carved.load(Ordering::Relaxed) >= self.capacity.load(Ordering::Relaxed)
            && self.remote.load(Ordering::SeqCst).is_null()
    }
}
