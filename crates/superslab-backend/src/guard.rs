//! Guard pages for spans (the facade's secure mode): every span mapping
//! ends in one `PROT_NONE` page and the block is placed to end just before
//! it; the few bytes between the requested end and the guard hold a
//! canary that the free checks ([`span_pad_intact`]).

use core::ptr;
use core::sync::atomic::Ordering::Relaxed;
use core::sync::atomic::{AtomicU8, AtomicUsize};

use hakmem_ptr_bridge::{span_header_addr, SpanHeader, CHUNK_MASK, SUPERSLAB_SIZE};

use crate::os;

const HDR: usize = core::mem::size_of::<SpanHeader>();

/// The guard at each span mapping's end (0: none, the default).
static GUARD: AtomicUsize = AtomicUsize::new(0);
/// The byte that fills the gap between a guarded span's requested end and
/// its guard page (at most [`PAD_CHECKED`] bytes of it).
static PAD_CANARY: AtomicU8 = AtomicU8::new(0);
/// Most gap bytes filled with the canary and checked at the free.
const PAD_CHECKED: usize = 64;

/// Turns on guard pages for spans (the facade's secure mode, once, before
/// the first allocation): every span mapping ends in one `PROT_NONE` page
/// and the block is placed so that it ends just before it (rounded up to
/// its alignment), so a write past the end faults at once; the few bytes
/// between the requested end and the guard hold `canary`, which
/// [`span_pad_intact`] checks. Mappings are not grown in place then
/// ([`span_realloc`](crate::span_realloc) returns null, and the caller copies).
pub fn set_guard_pages(canary: u8) {
    PAD_CANARY.store(canary, Relaxed);
    GUARD.store(os::page_size(), Relaxed);
}

pub(crate) fn guard() -> usize {
    GUARD.load(Relaxed)
}

/// True unless the canary bytes after the requested end of span `h` (a
/// guarded one) were changed: a small overflow, seen at the free.
pub fn span_pad_intact(h: &SpanHeader) -> bool {
    if h.guard == 0 {
        return true;
    }
    let from = h.user + h.size;
    let to = (h.map_base + h.map_len - h.guard).min(from + PAD_CHECKED);
    let c = PAD_CANARY.load(Relaxed);
    // SAFETY: `from..to` lies inside the mapping, before its guard page.
    unsafe { core::slice::from_raw_parts(from as *const u8, to.saturating_sub(from)) }
        .iter()
        .all(|&b| b == c)
}

/// Fills the gap `from..end` after a guarded span's requested end (at most
/// [`PAD_CHECKED`] bytes of it) with the canary.
pub(crate) fn fill_pad(from: usize, end: usize) {
    let to = end.min(from + PAD_CHECKED);
    // SAFETY: the gap after the requested end, before the guard page, in
    // a mapping the caller owns.
    unsafe { ptr::write_bytes(from as *mut u8, PAD_CANARY.load(Relaxed), to - from) };
}

/// With a guard of `g` bytes at the mapping's end, the user pointer that
/// ends a request of `size` bytes at `align` just before it — if the
/// header still fits in front of it inside the mapping; else `None`, and
/// the block is placed as without a guard (before its guard page still).
pub(crate) fn guarded_place(
    base: usize,
    map_len: usize,
    g: usize,
    size: usize,
    align: usize,
) -> Option<usize> {
    if g == 0 || align >= SUPERSLAB_SIZE {
        return None;
    }
    let end = base + map_len - g;
    let user = end.checked_sub(size.max(1))? & !(align.max(16) - 1);
    let hdr = span_header_addr(user);
    let fits = hdr >= base && (user & CHUNK_MASK == 0 || user - hdr >= HDR);
    fits.then_some(user)
}
