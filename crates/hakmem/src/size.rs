//! The size of a live block, and resizing: `usable_size`, `realloc`.
//! Both validate the pointer the way `free` does (one-line diagnostic and
//! abort for a pointer into hakmem's memory that is not a live block).

use core::ptr;

use hakmem_ptr_bridge::{slab_meta_at, CLASS_STRIDE, MAX_CLASS_SIZE, MIN_ALIGN};
use hakmem_superslab_backend::registry;

use crate::{diag, free, freed_span, malloc_aligned, owns, secure};

/// Usable size of block `p`: 0 for null or for a pointer in no hakmem
/// mapping (the caller decides what a foreign pointer means; see
/// [`foreign_pointer`]). A pointer into hakmem's memory that is not a live
/// block it handed out — already freed, interior, misaligned — stops the
/// program with a one-line diagnostic naming `malloc_usable_size()`.
pub fn usable_size(p: *const u8) -> usize {
    live_size("malloc_usable_size()", p as *mut u8)
}

/// The usable size of live block `p`, validated (see [`usable_size`]);
/// `call` names the entry point in the diagnostic.
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
fn live_size(call: &str, p: *mut u8) -> usize {
    let a = p as usize;
    match registry::kind_of(a) {
        k if registry::is_superslab(k) => {
            if secure::on() {
                return secure::live_size(call, p);
            }
            // SAFETY: inside a live superslab with slab shift `k`.
            let m = unsafe { slab_meta_at(p, k) };
            if !m.is_block_start(a) || m.state() == hakmem_ptr_bridge::slab_state::FREE {
                diag::invalid_pointer(call, p);
            }
            // SAFETY: a block start of a live slab: 16 bytes are ours to read.
            if unsafe { hakmem_ptr_bridge::has_free_mark(p) } {
                diag::fatal(call, "pointer already freed", p);
            }
            m.block_size() as usize
        }
        registry::KIND_SPAN | registry::KIND_SPAN_ALIGNED => {
            match hakmem_superslab_backend::span_usable_size(p) {
                Some(n) => n,
                // A span kept in this thread's stash keeps its registry
                // entry, with its header invalidated.
                None if freed_span(p) => diag::fatal(call, "pointer already freed", p),
                None => diag::invalid_pointer(call, p),
            }
        }
        _ => {
            if !p.is_null() && freed_span(p) {
                diag::fatal(call, "pointer already freed", p);
            }
            // (A secure-mode malloc(0) pointer lands here too: size 0.)
            0
        }
    }
}

/// Applies the foreign-pointer policy for a pointer in no hakmem mapping
/// that entry point `call` was given (the C library calls it after its own
/// forwarding, if any, declined): by default one line and abort, as glibc
/// does; with `HAKMEM_FOREIGN_FREE=ignore` or `forward`, one line and the
/// pointer is left alone.
#[cold]
pub fn foreign_pointer(call: &str, p: *const u8) {
    diag::foreign(call, p)
}

/// Resizes block `p` to `new_size` bytes keeping alignment `align` and the
/// first `min(old, new)` bytes. On failure returns null and leaves `p`
/// intact. `p` may be null (plain allocation).
///
/// # Safety
/// `p` is null or a live block of this allocator allocated with `align`.
pub unsafe fn realloc_aligned(p: *mut u8, new_size: usize, align: usize) -> *mut u8 {
    if p.is_null() || secure::is_zero_block(p) {
        return malloc_aligned(new_size, align);
    }
    let old = live_size("realloc()", p);
    if old == 0 && !owns(p) {
        diag::foreign("realloc()", p);
        return ptr::null_mut();
    }
    let kind = registry::kind_of(p as usize);
    if registry::is_superslab(kind) && secure::on() {
        // The secure layout records the exact size: always move, so the
        // canary and the header are laid out for the new size.
    } else if registry::is_superslab(kind) {
        // Keep the block while the new size maps to a class no larger and
        // not much smaller (at most one halving of waste).
        if new_size <= old && (new_size > MAX_CLASS_SIZE / 2 || new_size >= old / 2) {
            return p;
        }
        if align <= MIN_ALIGN
            && new_size <= MAX_CLASS_SIZE
            && CLASS_STRIDE[hakmem_ptr_bridge::size_class(new_size)] as usize == old
        {
            return p;
        }
    } else if new_size > MAX_CLASS_SIZE {
        // SAFETY: `p` is one of our spans (checked inside).
        let q = unsafe { hakmem_superslab_backend::span_realloc(p, new_size) };
        if !q.is_null() {
            return q;
        }
    }
    let q = malloc_aligned(new_size, align);
    if q.is_null() {
        return q;
    }
    // SAFETY: both blocks are live and distinct; we copy the bytes both hold.
    unsafe {
        ptr::copy_nonoverlapping(p, q, old.min(new_size));
        free(p);
    }
    q
}

/// Resizes block `p` (16-byte alignment).
///
/// # Safety
/// As for [`realloc_aligned`].
pub unsafe fn realloc(p: *mut u8, new_size: usize) -> *mut u8 {
    // SAFETY: forwarded contract.
    unsafe { realloc_aligned(p, new_size, MIN_ALIGN) }
}
