//! The registry: one 16-bit entry per 2 MiB chunk of the 47-bit user
//! address space, answering "is this address ours, and what lives there?"
//! in one load (after the table's mask and base, which share a cache line).
//!
//! The table is 128 MiB of anonymous memory mapped at hakmem's first
//! superslab or span ([`reserve`]) without backing: only the pages covering
//! chunks we actually use are ever touched (one 4 KiB page of the table
//! covers 4 GiB of address space).
//! For a superslab the entry is its record mask
//! ([`hakmem_ptr_bridge::SlabKind::record_mask`]), so the free path learns "ours"
//! and where the slab record is from the same load, and finds the record
//! with a constant shift and an `and` (no variable shift, which on x86-64
//! needs the count in `cl`).

use core::sync::atomic::{AtomicPtr, AtomicU16, AtomicUsize, Ordering};

use hakmem_ptr_bridge::{SlabKind, SUPERSLAB_SHIFT};
use static_assertions::{const_assert, const_assert_eq};

/// What the registry records for a chunk (stored as 16 bits, handled
/// widened so that the free path's mask needs no extra zero-extension).
pub type Kind = usize;
/// Nothing of ours.
pub const KIND_NONE: Kind = 0;
/// A span's user pointer is in this chunk; its header is at the chunk start.
pub const KIND_SPAN: Kind = 2;
/// A chunk-aligned span's user pointer; its header is one chunk before.
pub const KIND_SPAN_ALIGNED: Kind = 3;
/// The old name of [`KIND_SPAN`].
#[deprecated(note = "renamed KIND_SPAN")]
pub const KIND_LARGE: Kind = KIND_SPAN;
/// The old name of [`KIND_SPAN_ALIGNED`].
#[deprecated(note = "renamed KIND_SPAN_ALIGNED")]
pub const KIND_LARGE_ALIGNED: Kind = KIND_SPAN_ALIGNED;
/// Kinds at or above this value are superslabs; the value is the record
/// mask of the superslab's slab kind.
pub const KIND_SUPERSLAB_MIN: Kind = 16;

const ADDRESS_BITS: u32 = 47;
const ENTRIES: usize = 1 << (ADDRESS_BITS - SUPERSLAB_SHIFT);

// A superslab's entry is its record mask: both masks must read as
// superslabs, fit the 16-bit entry, and differ from every other kind.
const_assert!(SlabKind::Small.record_mask() >= KIND_SUPERSLAB_MIN);
const_assert!(SlabKind::Medium.record_mask() >= KIND_SUPERSLAB_MIN);
const_assert!(SlabKind::Small.record_mask() <= u16::MAX as usize);
const_assert!(SlabKind::Medium.record_mask() <= u16::MAX as usize);
const_assert!(KIND_SPAN < KIND_SUPERSLAB_MIN);
const_assert!(KIND_SPAN_ALIGNED < KIND_SUPERSLAB_MIN);
// "128 MiB" (the module doc).
const_assert_eq!(core::mem::size_of::<[AtomicU16; ENTRIES]>(), 128 << 20);

/// Where the table is, and the mask that keeps an index inside it.
///
/// Before the table exists, `base` points at [`EMPTY`] and `mask` is 0, so
/// every lookup reads that one zero entry ([`KIND_NONE`]): a free of a
/// foreign pointer before hakmem's first mapping is still answered. The
/// table is mapped by [`reserve`], which publishes `base` before `mask`
/// (any thread that has seen the real `base` may store the mask); a lookup
/// reads `mask` (acquire) before `base`, so it never pairs the real mask
/// with the one-entry placeholder.
#[repr(C, align(16))]
struct Table {
    mask: AtomicUsize,
    base: AtomicPtr<AtomicU16>,
}

static EMPTY: AtomicU16 = AtomicU16::new(0);

static TABLE: Table = Table {
    mask: AtomicUsize::new(0),
    base: AtomicPtr::new(&EMPTY as *const AtomicU16 as *mut AtomicU16),
};

const TABLE_BYTES: usize = ENTRIES * core::mem::size_of::<AtomicU16>();

/// Maps the table if it is not mapped yet; false when the mapping failed
/// (the caller then fails the request that needed an entry).
///
/// The table is 128 MiB of `MAP_NORESERVE` anonymous memory, advised
/// `MADV_NOHUGEPAGE` so that the one 4 KiB page of entries a program uses
/// never becomes a 2 MiB huge page. It is not `.bss`: a library whose
/// image spans more than 2 MiB is mapped 2 MiB-aligned by the kernel, and
/// that fixed the alignment of libc below it, and with it how many of
/// libc's pages the kernel's fault-around made resident (docs/memory.md).
#[cold]
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
pub fn reserve() -> bool {
    if TABLE.mask.load(Ordering::Acquire) != 0 {
        return true;
    }
    let placeholder = &EMPTY as *const AtomicU16 as *mut AtomicU16;
    if TABLE.base.load(Ordering::Acquire) == placeholder {
        let p = crate::os::map_sparse(TABLE_BYTES);
        if p.is_null() {
            return false;
        }
        crate::os::advise_no_huge(p, TABLE_BYTES);
        if TABLE
            .base
            .compare_exchange(
                placeholder,
                p as *mut AtomicU16,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            // Another thread's table won; ours was never seen.
            crate::os::unmap(p, TABLE_BYTES);
        }
    }
    // The base is a real table now (ours, or one whose store this thread
    // has seen): publish the mask. Every thread that gets here stores the
    // same value, so none waits for another — not even a forked child whose
    // parent was between the two stores in a thread the child lacks.
    TABLE.mask.store(ENTRIES - 1, Ordering::Release);
    true
}

#[inline(always)]
fn entry(idx: usize) -> &'static AtomicU16 {
    debug_assert!(idx < ENTRIES);
    let base = TABLE.base.load(Ordering::Relaxed);
    // SAFETY: callers pass an index masked by the mask read (acquire)
    // before `base`: 0 with the placeholder, or below ENTRIES with the
    // table, which is zero-initialised memory that is never unmapped.
    unsafe { &*base.add(idx) }
}

/// The kind recorded for the chunk holding `p` ([`KIND_NONE`] when unknown).
///
/// Cost: a shift, a mask and one 16-bit load. The mask folds addresses at or
/// above 2^47 onto the table: Linux never hands such addresses to a process
/// that did not ask for them with an explicit `mmap` hint (even with 5-level
/// paging), and everything hakmem maps is below 2^47 ([`covers`] is
/// checked at mapping time). Only a garbage pointer above 2^47 could alias a
/// chunk of ours; that is undefined behaviour in every allocator.
#[inline(always)]
pub fn kind_of(p: usize) -> Kind {
    let mask = TABLE.mask.load(Ordering::Acquire);
    entry((p >> SUPERSLAB_SHIFT) & mask).load(Ordering::Acquire) as Kind
}

/// True when `kind` (from [`kind_of`]) denotes a superslab.
#[inline(always)]
pub const fn is_superslab(kind: Kind) -> bool {
    kind >= KIND_SUPERSLAB_MIN
}

/// Records `kind` for the chunk at `chunk` (2 MiB aligned).
pub fn set(chunk: usize, kind: Kind) {
    let idx = chunk >> SUPERSLAB_SHIFT;
    debug_assert!(idx < ENTRIES);
    if idx >= ENTRIES {
        return;
    }
    debug_assert!(kind <= u16::MAX as Kind);
    if !reserve() {
        // Only KIND_NONE can be stored without a table, and it is its
        // every entry already.
        debug_assert!(kind == KIND_NONE);
        return;
    }
    entry(idx).store(kind as u16, Ordering::Release)
}

/// True when `p` is inside the address range the table covers and the
/// table is mapped (mapping it now if needed: see [`reserve`]). Checked
/// before a superslab or span is recorded, so that a failed table mapping
/// fails that request instead of leaving memory of ours unrecorded.
pub fn covers(p: usize) -> bool {
    (p >> SUPERSLAB_SHIFT) < ENTRIES && reserve()
}

/// Calls `f(chunk_base, kind)` for every chunk the registry records (slow:
/// scans the whole table, skipping untouched parts quickly; for invariant
/// scans in tests and diagnostics).
pub fn for_each(mut f: impl FnMut(usize, Kind)) {
    if TABLE.mask.load(Ordering::Acquire) == 0 {
        return;
    }
    let words = TABLE.base.load(Ordering::Relaxed) as *const core::sync::atomic::AtomicU64;
    for w in 0..ENTRIES / 4 {
        // SAFETY: the table is 4096-aligned and 2 * ENTRIES bytes long, so
        // it is also ENTRIES/4 aligned u64 words; atomics of either width
        // may read the same zero-initialised memory.
        let v = unsafe { (*words.add(w)).load(Ordering::Relaxed) };
        if v == 0 {
            continue;
        }
        for b in 0..4 {
            let idx = w * 4 + b;
            let k = entry(idx).load(Ordering::Acquire) as Kind;
            if k != KIND_NONE {
                f(idx << SUPERSLAB_SHIFT, k);
            }
        }
    }
}
