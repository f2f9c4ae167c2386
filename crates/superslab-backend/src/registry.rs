//! The registry: one byte per 2 MiB chunk of the 47-bit user address space,
//! answering "is this address ours, and what lives there?" in one load.
//!
//! The table is 64 MiB of address space mapped with `MAP_NORESERVE`; only
//! the pages covering chunks we actually use are ever touched (one 4 KiB
//! page of the table covers 8 GiB of address space).

use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU8, Ordering};

use ptr_bridge::SUPERSLAB_SHIFT;

/// Nothing of ours.
pub const KIND_NONE: u8 = 0;
/// A superslab starts at this chunk.
pub const KIND_SUPERSLAB: u8 = 1;
/// A large span's user pointer is in this chunk; its header is at the chunk start.
pub const KIND_LARGE: u8 = 2;
/// A chunk-aligned large span's user pointer; its header is one chunk before.
pub const KIND_LARGE_ALIGNED: u8 = 3;

const ADDRESS_BITS: u32 = 47;
const ENTRIES: usize = 1 << (ADDRESS_BITS - SUPERSLAB_SHIFT);

static TABLE: AtomicPtr<AtomicU8> = AtomicPtr::new(ptr::null_mut());

/// Maps the table if needed. Returns false when the OS refuses.
#[cold]
pub fn init() -> bool {
    if !TABLE.load(Ordering::Acquire).is_null() {
        return true;
    }
    let t = crate::os::map_noreserve(ENTRIES) as *mut AtomicU8;
    if t.is_null() {
        return false;
    }
    if TABLE
        .compare_exchange(ptr::null_mut(), t, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        crate::os::unmap(t as *mut u8, ENTRIES);
    }
    true
}

/// The kind recorded for the chunk holding `p` ([`KIND_NONE`] when unknown).
///
/// Cost: one load of the table pointer, a shift, a bound check, one byte load.
#[inline(always)]
pub fn kind_of(p: usize) -> u8 {
    let t = TABLE.load(Ordering::Acquire);
    let idx = p >> SUPERSLAB_SHIFT;
    if t.is_null() || idx >= ENTRIES {
        return KIND_NONE;
    }
    // SAFETY: `idx < ENTRIES` and the table, once mapped, is never unmapped.
    unsafe { (*t.add(idx)).load(Ordering::Acquire) }
}

/// Records `kind` for the chunk at `chunk` (2 MiB aligned).
pub fn set(chunk: usize, kind: u8) {
    let t = TABLE.load(Ordering::Acquire);
    let idx = chunk >> SUPERSLAB_SHIFT;
    debug_assert!(!t.is_null() && idx < ENTRIES);
    if t.is_null() || idx >= ENTRIES {
        return;
    }
    // SAFETY: as in `kind_of`.
    unsafe { (*t.add(idx)).store(kind, Ordering::Release) }
}

/// True when every address the OS can hand us fits in the table.
pub fn covers(p: usize) -> bool {
    (p >> SUPERSLAB_SHIFT) < ENTRIES
}
