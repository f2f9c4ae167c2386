//! hakmem-ptr-bridge: the vocabulary every other box of hakmem shares —
//! size classes, the superslab / slab / block layout arithmetic and the
//! per-slab metadata record. (There is no USER↔BASE conversion: a tiny or
//! mid block's user pointer is its base, see the glossary.)
//!
//! ```
//! use hakmem_ptr_bridge::{route_of, CLASS_SIZE, NUM_CLASSES};
//!
//! let c = route_of(24); // the route of a 24-byte request: a slab class
//! assert!(c < NUM_CLASSES);
//! assert_eq!(CLASS_SIZE[c], 32); // served by 32-byte blocks
//! ```
//!
//! # Glossary
//! - **superslab**: a 2 MiB region, 2 MiB aligned, obtained from the OS. Its
//!   first page holds a [`SuperslabHeader`]; the rest is carved into slabs.
//! - **slab**: a power-of-two part of a superslab (64 KiB for classes up to
//!   8 KiB, 512 KiB above) that serves blocks of exactly one size class and
//!   has exactly one owner thread at a time (or none). Slab 0 holds the
//!   header and serves no blocks: its address space is reserved (only the
//!   header page is ever touched), so no block pointer can fall in the
//!   header and the free path needs no extra range check.
//! - **block**: one allocation unit of a slab. Tiny and mid blocks carry **no
//!   per-object header**: the user pointer *is* the block base
//!   (USER == BASE), and a free block stores the next-link in its first word
//!   and its free mark ([`free_mark`]) in its second.
//! - **class**: an index into [`CLASS_SIZE`]; 80 classes from 16 B to 64 KiB,
//!   eight per power of two, so internal fragmentation stays below 1/9
//!   (11.1 %) for every request above 128 B.
//! - **span**: a large allocation mapped on its own (above [`MAX_CLASS_SIZE`] or
//!   with an alignment above [`PAGE_SIZE`]); it has a 64-byte header
//!   ([`SpanHeader`]) at the start of the 2 MiB chunk that holds the user
//!   pointer.
//!
//! This crate is `no_std`, allocates nothing and knows no OS.
#![no_std]

#[cfg(not(target_pointer_width = "64"))]
compile_error!("hakmem needs a 64-bit target: its address registry covers a 47-bit address space in 2 MiB chunks; see docs/platforms.md");

use core::ptr;
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU8, AtomicUsize, Ordering};

use static_assertions::{
    assert_eq_align, assert_eq_size, const_assert, const_assert_eq, const_assert_ne,
};

pub mod cell;
mod class;
use cell::{AtomicCell, AtomicCount};
pub use class::*;

/// log2 of the superslab size.
pub const SUPERSLAB_SHIFT: u32 = 21;
/// Size (and alignment) of a superslab: 2 MiB.
pub const SUPERSLAB_SIZE: usize = 1 << SUPERSLAB_SHIFT;
/// Mask of the offset of an address inside its 2 MiB chunk.
pub const CHUNK_MASK: usize = SUPERSLAB_SIZE - 1;
/// The smallest page size, used for alignment classes (alignments above it
/// go to spans) and for header placement. The OS page size, which may be
/// larger (up to 64 KiB), is `hakmem_superslab_backend::page_size()`; the
/// layout only needs slabs to be whole pages.
pub const PAGE_SIZE: usize = 4096;
/// Bytes at the start of a superslab reserved for its header.
pub const HEADER_SIZE: usize = PAGE_SIZE;
/// The first slab that serves blocks (slab 0 holds the header).
pub const FIRST_SLAB: usize = 1;
/// Most slabs one superslab can hold (64 KiB slabs: 2 MiB / 64 KiB).
pub const MAX_SLABS: usize = SUPERSLAB_SIZE >> SMALL_SLAB_SHIFT;
/// log2 of the slab size for classes up to [`SMALL_SLAB_MAX_BLOCK`].
pub const SMALL_SLAB_SHIFT: u32 = 16;
/// log2 of the slab size for the larger mid classes.
pub const MEDIUM_SLAB_SHIFT: u32 = 19;
/// Largest block size served from 64 KiB slabs (at least 8 blocks a slab).
pub const SMALL_SLAB_MAX_BLOCK: usize = 8 * 1024;
/// Magic number in every superslab header ("HAKMEMSS").
pub const SUPERSLAB_MAGIC: u64 = 0x4841_4B4D_454D_5353;
/// Magic number in every large-span header ("HAKMEMLG").
pub const SPAN_MAGIC: u64 = 0x4841_4B4D_454D_4C47;

/// The two slab geometries. A superslab is carved with one of them for its
/// whole life, so that `slab index = offset >> shift` needs no table.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum SlabKind {
    /// 32 slabs of 64 KiB: classes up to 8 KiB.
    Small = 0,
    /// 4 slabs of 512 KiB: classes above 8 KiB (up to 64 KiB).
    Medium = 1,
}

impl SlabKind {
    /// Number of kinds (for per-kind tables).
    pub const COUNT: usize = 2;

    /// log2 of the slab size.
    #[inline]
    pub const fn shift(self) -> u32 {
        match self {
            SlabKind::Small => SMALL_SLAB_SHIFT,
            SlabKind::Medium => MEDIUM_SLAB_SHIFT,
        }
    }

    /// Slabs per superslab.
    #[inline]
    pub const fn slabs(self) -> usize {
        SUPERSLAB_SIZE >> self.shift()
    }

    /// Where the record of slab `index` sits in [`SuperslabHeader::slabs`]:
    /// records are placed by 64 KiB granule, so a 512 KiB slab's record is
    /// at the position of its first granule (`index * 8`). That lets the
    /// free path find a record with one constant shift and a mask
    /// ([`slab_meta_at`]) whatever the slab size.
    #[inline]
    pub const fn record_pos(self, index: usize) -> usize {
        index << (self.shift() - SMALL_SLAB_SHIFT)
    }

    /// The registry's value for a superslab of this kind: the mask that
    /// turns `p >> RECORD_SHIFT` into the byte offset of `p`'s slab record
    /// from `slabs[0]` (granule index, rounded down to the slab's first
    /// granule, times the 64-byte record size).
    #[inline]
    pub const fn record_mask(self) -> usize {
        let granules = SUPERSLAB_SIZE >> SMALL_SLAB_SHIFT;
        let per_slab = 1usize << (self.shift() - SMALL_SLAB_SHIFT);
        ((granules - 1) & !(per_slab - 1)) * core::mem::size_of::<SlabMeta>()
    }

    /// The kind whose [`SlabKind::record_mask`] is `mask`.
    #[inline]
    pub const fn from_record_mask(mask: usize) -> SlabKind {
        if mask == SlabKind::Small.record_mask() {
            SlabKind::Small
        } else {
            SlabKind::Medium
        }
    }

    /// The kind that serves a class.
    #[inline]
    pub const fn of_class(class: usize) -> SlabKind {
        if (CLASS_SIZE[class] as usize) <= SMALL_SLAB_MAX_BLOCK {
            SlabKind::Small
        } else {
            SlabKind::Medium
        }
    }
}

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
/// capacity   == slab_capacity(slab shift, block_size)
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

/// The header at the start of every superslab (first page).
///
/// Invariant: `in_use` has bit `i` set iff `i == 0` (the header slab) or
/// `slabs[i].state != FREE`.
#[repr(C, align(64))]
pub struct SuperslabHeader {
    /// [`SUPERSLAB_MAGIC`].
    pub magic: AtomicUsize,
    /// log2 of the slab size ([`SlabKind::shift`]).
    pub slab_shift: AtomicU8,
    /// [`SlabKind`] as u8.
    pub kind: AtomicU8,
    /// Home memory node (logical).
    pub node: AtomicU8,
    /// Bitmap of slabs that are not FREE (backend lock).
    pub in_use: AtomicU32,
    /// Backend list link (superslabs of one kind with free slabs).
    pub next: AtomicPtr<SuperslabHeader>,
    /// Backend list back link.
    pub prev: AtomicPtr<SuperslabHeader>,
    /// Which backend list holds it (see [`superslab_tier`]), or
    /// [`superslab_tier::UNLISTED`] when it has no FREE slab.
    pub listed: AtomicU8,
    /// One of [`superslab_tier`] HOT / DRAINING / FREE (backend lock).
    pub tier: AtomicU8,
    /// Slabs released since their pages were last returned to the OS.
    pub dirty: AtomicU32,
    /// When the superslab became entirely FREE (coarse ms clock).
    pub empty_since_ms: AtomicU32,
    /// When each slab was released (coarse ms clock), for delayed return.
    pub released_ms: [AtomicU32; MAX_SLABS],
    /// The slab records, by 64 KiB granule: slab `i`'s is at
    /// [`SlabKind::record_pos`]`(i)` (use [`SuperslabHeader::slab`]). Slab
    /// 0 (the header) and the positions no slab starts at are never used.
    pub slabs: [SlabMeta; MAX_SLABS],
}

impl SuperslabHeader {
    /// The slab kind this superslab was carved with.
    #[inline]
    pub fn slab_kind(&self) -> SlabKind {
        if self.kind.load(Ordering::Relaxed) == SlabKind::Medium as u8 {
            SlabKind::Medium
        } else {
            SlabKind::Small
        }
    }

    /// The record of slab `index` (`index < slab_kind().slabs()`).
    #[inline]
    pub fn slab(&self, index: usize) -> &SlabMeta {
        &self.slabs[self.slab_kind().record_pos(index)]
    }
}

/// Superslab tiers (stored in [`SuperslabHeader::tier`]) and backend lists
/// (stored in [`SuperslabHeader::listed`]).
///
/// ```text
/// HOT --(few slabs in use, another HOT superslab has room)--> DRAINING
///  ^  <-------------(no HOT superslab has room)-------------    |
///  |                                                            | last slab freed
///  +-----------(a slab is needed)------------- FREE <-----------+
///                                               | delay elapsed, or trim
///                                               v
///                                           unmapped
/// ```
pub mod superslab_tier {
    /// Slabs are handed out from it.
    pub const HOT: u8 = 0;
    /// Mostly empty: no new slab is taken from it while a HOT superslab has
    /// room, so its live slabs drain away.
    pub const DRAINING: u8 = 1;
    /// Every slab is FREE; unmapped after the decay delay or on trim.
    pub const FREE: u8 = 2;
    /// `listed` value of a superslab in no list (every slab in use).
    pub const UNLISTED: u8 = 0xff;
}

// The header (with its slab records) fits the first page, which slab 0
// reserves for it.
const_assert!(core::mem::size_of::<SuperslabHeader>() <= HEADER_SIZE);
const_assert!(HEADER_SIZE <= 1 << SMALL_SLAB_SHIFT);
// `in_use` is a 32-bit bitmap of the slabs and `SlabMeta::index` a byte.
const_assert!(MAX_SLABS <= u32::BITS as usize);
const_assert!(MAX_SLABS <= u8::MAX as usize + 1);
const_assert_eq!(SlabKind::Small.slabs(), MAX_SLABS);
// Slabs are whole pages and split a superslab evenly.
const_assert!(SMALL_SLAB_SHIFT < MEDIUM_SLAB_SHIFT && MEDIUM_SLAB_SHIFT < SUPERSLAB_SHIFT);
const_assert_eq!((1usize << SMALL_SLAB_SHIFT) % PAGE_SIZE, 0);
// "At least 8 blocks a slab" for the 64 KiB slabs, and the 512 KiB slabs
// hold at least 7 of the largest (coloured) class.
const_assert!(slab_capacity(SMALL_SLAB_SHIFT, SMALL_SLAB_MAX_BLOCK) >= 8);
const_assert!(slab_capacity(MEDIUM_SLAB_SHIFT, MAX_CLASS_SIZE + COLOUR_GAP) >= 7);

/// Start of slab `index`'s block area in the superslab at `base`
/// (`index >= FIRST_SLAB`).
#[inline]
pub const fn slab_data_start(base: usize, index: usize, shift: u32) -> usize {
    base + (index << shift)
}

/// Number of blocks of `block_size` that a slab of `1 << shift` bytes holds.
#[inline]
pub const fn slab_capacity(shift: u32, block_size: usize) -> u32 {
    ((1usize << shift) / block_size) as u32
}

/// Byte offset of `slabs[0]` inside [`SuperslabHeader`].
pub const SLABS_OFFSET: usize = core::mem::offset_of!(SuperslabHeader, slabs);

/// Base of the 2 MiB chunk containing `p`.
#[inline(always)]
pub const fn chunk_of(p: usize) -> usize {
    p & !CHUNK_MASK
}

/// The slab record of a block pointer (USER == BASE for slab blocks).
///
/// # Safety
/// `p` must point into a live superslab (the registry says so).
#[inline(always)]
pub unsafe fn slab_meta_of(p: *mut u8) -> &'static SlabMeta {
    let ss = chunk_of(p as usize) as *const SuperslabHeader;
    // SAFETY: the caller guarantees `ss` is a live superslab header.
    let kind = unsafe { (*ss).slab_kind() };
    // SAFETY: forwarded contract; the mask is the superslab's own.
    unsafe { slab_meta_at(p, kind.record_mask()) }
}

/// The slab record of a block pointer and the log2 of its slab's size,
/// from one read of the superslab header (see [`slab_meta_of`]).
///
/// # Safety
/// `p` must point into a live superslab (the registry says so).
#[inline(always)]
pub unsafe fn slab_and_shift_of(p: *mut u8) -> (&'static SlabMeta, u32) {
    let a = p as usize;
    let ss = chunk_of(a) as *const SuperslabHeader;
    // SAFETY: the caller guarantees `ss` is a live superslab header.
    let shift = unsafe { (*ss).slab_shift.load(Ordering::Relaxed) } as u32;
    // The record of the slab's first granule: the granule index with the
    // bits below the slab size cleared, times 64.
    let first = ((a & CHUNK_MASK) >> shift) << shift;
    let m = chunk_of(a) + SLABS_OFFSET + (first >> RECORD_SHIFT);
    // SAFETY: as in `slab_meta_at`: a live header whose records outlive
    // every block, and `first >> RECORD_SHIFT` is the offset of the record
    // of `p`'s slab (`SlabKind::record_pos` of its index, times 64).
    (unsafe { &*(m as *const SlabMeta) }, shift)
}

/// True when `p`, inside a slab of `1 << shift` bytes (a slab's blocks
/// start at its first byte), is the start of one of the slab's first
/// `carved` blocks of `class`. Loads nothing but the class tables: the
/// cheap block-start check of the slow paths that already hold the slab's
/// geometry.
#[inline]
pub fn is_carved_block(p: usize, shift: u32, class: usize, carved: u32) -> bool {
    let off = p & ((1usize << shift) - 1);
    is_block_offset(off, class) && off < carved as usize * CLASS_STRIDE[class] as usize
}

/// `p >> RECORD_SHIFT` is `p`'s 64 KiB granule index times the 64-byte
/// record size (in its low bits, which [`SlabKind::record_mask`] keeps).
pub const RECORD_SHIFT: u32 = SMALL_SLAB_SHIFT - 6;
// `(p >> RECORD_SHIFT) & mask` is a record offset: a granule index times
// the record size.
const_assert_eq!(
    core::mem::size_of::<SlabMeta>(),
    1 << (SMALL_SLAB_SHIFT - RECORD_SHIFT)
);
// The registry stores the mask in a 16-bit entry, where values below 16
// mean "nothing" or "span" (superslab-backend's `KIND_SUPERSLAB_MIN`);
// `from_record_mask` tells the kinds apart by their masks.
const_assert!(SlabKind::Small.record_mask() < (1 << 16));
const_assert!(SlabKind::Medium.record_mask() >= 16 && SlabKind::Small.record_mask() >= 16);
const_assert_ne!(
    SlabKind::Small.record_mask(),
    SlabKind::Medium.record_mask()
);

/// The slab record of a block pointer when the superslab's record mask is
/// already known (the registry stores it): `chunk + SLABS_OFFSET + ((p >>
/// RECORD_SHIFT) & mask)` — a copy, a constant shift and an `and`, with
/// the chunk base and the offset folded into the loads' addressing.
///
/// # Safety
/// `p` must point into a live superslab whose record mask is `mask`.
#[inline(always)]
pub unsafe fn slab_meta_at(p: *mut u8, mask: usize) -> &'static SlabMeta {
    let a = p as usize;
    let off = (a >> RECORD_SHIFT) & mask;
    debug_assert!(off < MAX_SLABS * core::mem::size_of::<SlabMeta>());
    let m = chunk_of(a) + SLABS_OFFSET + off;
    // SAFETY: the caller guarantees a live superslab header at `chunk_of(a)`
    // whose records outlive every block; `off` selects the record of the
    // slab holding `p` because `mask` is its superslab's.
    unsafe { &*(m as *const SlabMeta) }
}

const RECIP_SHIFT: u32 = 56;

const fn build_reciprocals() -> [u64; NUM_CLASSES] {
    let sizes = class::build_class_strides();
    let mut t = [0u64; NUM_CLASSES];
    let mut c = 0;
    while c < NUM_CLASSES {
        let bs = sizes[c] as u64;
        t[c] = (1u64 << RECIP_SHIFT).div_ceil(bs);
        c += 1;
    }
    t
}

/// `ceil(2^56 / CLASS_STRIDE[c])` per class.
static RECIPROCAL: [u64; NUM_CLASSES] = build_reciprocals();

/// `off / CLASS_STRIDE[class]` for `off < 512 KiB`, by multiplication: with
/// `m = ceil(2^56 / bs) = (2^56 + e) / bs`, `0 <= e < bs`, the error term
/// `off * e / 2^56` stays below `2^19 * 2^17 / 2^56 = 2^-20 < 1 / bs`
/// (strides stay below 2^17), so the
/// truncated product is exact.
#[inline]
pub fn block_index(off: usize, class: usize) -> usize {
    debug_assert!(off < 1 << MEDIUM_SLAB_SHIFT);
    ((off as u128 * RECIPROCAL[class] as u128) >> RECIP_SHIFT) as usize
}

/// True when `off` (from a slab's data start, below 512 KiB) is the start
/// of a block of `class`: a multiple of the class's stride
/// ([`CLASS_STRIDE`], which includes the colour gap).
#[inline]
pub fn is_block_offset(off: usize, class: usize) -> bool {
    block_index(off, class) * CLASS_STRIDE[class] as usize == off
}

/// Reads the free-list link stored in a free block's first word.
///
/// # Safety
/// `block` must be a free block (or a block being linked) of at least 8
/// bytes, aligned to 8.
#[inline(always)]
pub unsafe fn block_next(block: *mut u8) -> *mut u8 {
    // SAFETY: by the caller's contract the first word is ours to read.
    unsafe { *(block as *mut *mut u8) }
}

/// Writes the free-list link of a free block.
///
/// # Safety
/// As for [`block_next`]; the block must not be in use by the program.
#[inline(always)]
pub unsafe fn set_block_next(block: *mut u8, next: *mut u8) {
    // SAFETY: by the caller's contract the first word is ours to write.
    unsafe { *(block as *mut *mut u8) = next }
}

/// Offset of the *free mark* in a free block: the second word (the first
/// holds the free-list link; every block is at least 16 bytes).
///
/// Invariant (the double-free check rests on it): a slab block that sits in
/// any free structure — a thread cache, a pending remote batch, a slab's
/// remote stack or local free list — has `free_mark(p)` in this word; a
/// block handed to the program has anything else, because every hand-out
/// ([`clear_free_mark`], in tls-front's pop and the facade's slow path)
/// overwrites it, and the program only puts the mark back by writing this
/// exact address, which nothing gives it (it is the base of a superslab,
/// whose slab 0 holds the header and serves no blocks).
pub const FREE_MARK_OFFSET: usize = 8;

// The link and the free mark are two words inside the smallest block.
const_assert!(FREE_MARK_OFFSET >= core::mem::size_of::<*mut u8>());
const_assert!(
    FREE_MARK_OFFSET + core::mem::size_of::<usize>() <= class::build_class_sizes()[0] as usize
);

/// The free mark of slab block `p`: the base of its superslab. The free
/// path holds that value in a register already (it locates the slab
/// record from it), so writing and checking the mark costs no extra
/// address arithmetic.
#[inline(always)]
pub const fn free_mark(p: usize) -> usize {
    chunk_of(p)
}

/// True when block `p` carries its free mark, i.e. it is already free.
///
/// # Safety
/// `p` is a pointer into a live superslab with at least 16 bytes mapped
/// from `p` (any slab block, or any 16-aligned address of a slab).
#[inline(always)]
pub unsafe fn has_free_mark(p: *mut u8) -> bool {
    // SAFETY: caller contract; the word is inside the superslab mapping.
    unsafe { *(p.add(FREE_MARK_OFFSET) as *const usize) == free_mark(p as usize) }
}

/// Writes the free mark of block `p` (it is becoming free).
///
/// # Safety
/// `p` is a slab block being freed (no longer in use by the program).
#[inline(always)]
pub unsafe fn set_free_mark(p: *mut u8) {
    // SAFETY: caller contract.
    unsafe { *(p.add(FREE_MARK_OFFSET) as *mut usize) = free_mark(p as usize) }
}

/// Erases the free mark of block `p` (it is being handed to the program).
///
/// # Safety
/// `p` is a free block of at least 16 bytes that the caller is handing out.
#[inline(always)]
pub unsafe fn clear_free_mark(p: *mut u8) {
    // SAFETY: caller contract.
    unsafe { *(p.add(FREE_MARK_OFFSET) as *mut usize) = 0 }
}

/// The 64-byte header of a span, at the start of the 2 MiB chunk that
/// holds the user pointer (or one chunk before it when the user pointer is
/// itself chunk-aligned).
#[repr(C, align(64))]
pub struct SpanHeader {
    /// [`SPAN_MAGIC`].
    pub magic: u64,
    /// The user pointer this header describes (validates frees).
    pub user: usize,
    /// Start of the whole mapping.
    pub map_base: usize,
    /// Length of the whole mapping.
    pub map_len: usize,
    /// Requested alignment.
    pub align: usize,
    /// Bytes at the mapping's end that are not usable: the guard page of
    /// the secure mode (`PROT_NONE`), 0 without one.
    pub guard: usize,
    /// The requested size (the secure mode checks the canary bytes that
    /// follow it at the free).
    pub size: usize,
}

// The span header is one cache line: the user pointer of a span is at
// least 64 bytes past the chunk start.
assert_eq_size!(SpanHeader, [u8; 64]);
assert_eq_align!(SpanHeader, SlabMeta);
/// The old name of [`SpanHeader`].
#[deprecated(note = "renamed SpanHeader")]
pub type LargeHeader = SpanHeader;

const _: () = assert!(core::mem::size_of::<SpanHeader>() == 64);

/// Where the header of a span with user pointer `user` lives.
#[inline]
pub const fn span_header_addr(user: usize) -> usize {
    if user & CHUNK_MASK == 0 {
        user - SUPERSLAB_SIZE
    } else {
        chunk_of(user)
    }
}

/// Usable bytes of a span: from the user pointer to the mapping end;
/// exactly the requested size when it has a guard page (the secure mode:
/// the bytes between the two hold a canary).
#[inline]
pub fn large_usable(h: &SpanHeader) -> usize {
    if h.guard != 0 {
        h.size
    } else {
        h.map_base + h.map_len - h.user
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacities_hold_at_least_eight_blocks() {
        for c in 0..NUM_CLASSES {
            let kind = SlabKind::of_class(c);
            let cap = slab_capacity(kind.shift(), CLASS_STRIDE[c] as usize);
            // Seven for the 64 KiB class: its colour gap costs the eighth.
            assert!(cap >= 7, "class {c} holds {cap}");
        }
    }

    #[test]
    fn block_offsets_follow_the_stride() {
        for c in 0..NUM_CLASSES {
            let stride = CLASS_STRIDE[c] as usize;
            for i in 0..slab_capacity(SlabKind::of_class(c).shift(), stride) as usize {
                assert!(is_block_offset(i * stride, c), "class {c} block {i}");
                // Strides are multiples of 16: 8 past a start is no start.
                assert!(
                    !is_block_offset(i * stride + 8, c),
                    "class {c} block {i} + 8"
                );
            }
        }
    }

    #[test]
    fn reciprocal_division_is_exact() {
        for c in 0..NUM_CLASSES {
            let bs = CLASS_STRIDE[c] as usize;
            let limit = 1usize << MEDIUM_SLAB_SHIFT;
            // Every multiple and its neighbours, across the whole range.
            let mut off = 0;
            while off < limit {
                for d in [0usize, 1, bs - 1] {
                    let o = off + d;
                    if o < limit {
                        assert_eq!(block_index(o, c), o / bs, "class {c} off {o}");
                    }
                }
                off += bs;
            }
        }
    }

    #[test]
    fn large_header_placement() {
        assert_eq!(span_header_addr(0x4000_0040), 0x4000_0000);
        assert_eq!(span_header_addr(0x4020_0000), 0x4000_0000);
        assert_eq!(span_header_addr(0x4021_0000), 0x4020_0000);
    }

    #[test]
    fn slab_geometry_is_aligned() {
        for kind in [SlabKind::Small, SlabKind::Medium] {
            for i in FIRST_SLAB..kind.slabs() {
                let s = slab_data_start(0, i, kind.shift());
                assert_eq!(s % PAGE_SIZE, 0);
                assert!(s >= HEADER_SIZE && s < (i + 1) << kind.shift());
            }
        }
    }
}
