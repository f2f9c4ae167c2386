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
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU8, AtomicUsize, Ordering};

use static_assertions::{
    assert_eq_align, assert_eq_size, const_assert, const_assert_eq, const_assert_ne,
};

pub mod cell;
mod class;
mod slab;
pub use class::*;
pub use slab::*;

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
#[link_section = ".rodata.hakmem_startup"] // start-up group, see crates/preload/layout.ld
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
/// exact value: no pointer it is given has it (it is the base of a
/// superslab, whose slab 0 holds the header and serves no blocks), and as
/// data it is not a round number, because superslab bases are random per
/// process (superslab-backend's `seed_hints`; see docs/security.md).
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
