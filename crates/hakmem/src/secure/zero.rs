//! The secure mode's `malloc(0)`: memory that faults when it is touched.
//!
//! A zero-byte request gets a pointer into one reserved 2 MiB mapping with
//! no access rights (`PROT_NONE`, `MAP_NORESERVE`: address space, no memory),
//! so any read or write through it faults at once. Pointers are handed out
//! at consecutive slots of the alignment asked for, wrapping after 2 MiB, so
//! they are distinct while fewer than 131072 (16-byte slots) are live.
//! `free` accepts them and does nothing; `realloc` treats them as null;
//! `malloc_usable_size` says 0.

use core::ptr;
use core::sync::atomic::AtomicUsize;
use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};

const ZERO_LEN: usize = 2 << 20;
static ZERO_BASE: AtomicUsize = AtomicUsize::new(0);
static ZERO_NEXT: AtomicUsize = AtomicUsize::new(0);

/// The reserved mapping (created on first use); 0 when the OS refused it.
fn zero_base() -> usize {
    let b = ZERO_BASE.load(Acquire);
    if b != 0 {
        return b;
    }
    let m = hakmem_superslab_backend::os::reserve(ZERO_LEN);
    if m.is_null() {
        return 0;
    }
    match ZERO_BASE.compare_exchange(0, m as usize, AcqRel, Acquire) {
        Ok(_) => m as usize,
        Err(other) => {
            // Another thread's reservation won the race; ours is unused.
            hakmem_superslab_backend::os::unmap(m, ZERO_LEN);
            other
        }
    }
}

/// A pointer for `malloc(0)` aligned to `align` (null and ENOMEM when no
/// reservation could be made).
pub(super) fn zero_alloc(align: usize) -> *mut u8 {
    let base = zero_base();
    if base == 0 {
        crate::set_enomem();
        return ptr::null_mut();
    }
    let a = align.clamp(16, ZERO_LEN);
    let off = ZERO_NEXT.fetch_add(1, Relaxed).wrapping_mul(a) & (ZERO_LEN - 1);
    (base + off) as *mut u8
}

/// True when `p` is a pointer [`zero_alloc`] hands out.
pub(crate) fn is_zero_block(p: *const u8) -> bool {
    let base = ZERO_BASE.load(Acquire);
    let a = p as usize;
    base != 0 && a >= base && a < base + ZERO_LEN && (a - base).is_multiple_of(16)
}
