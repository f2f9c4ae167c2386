//! The checks of one secure slab block: its header, its canary, and the
//! zeros a freed block must still hold (see the layout in `mod.rs`).

use hakmem_ptr_bridge::{
    block_index, free_mark, slab_meta_at, slab_state, SlabKind, CLASS_STRIDE, NUM_CLASSES,
};
use hakmem_superslab_backend::registry;

use super::{canary, live_word, secret, word, USER_MIN};
use crate::diag;

/// Where a user pointer of a secure slab block lives.
pub(super) struct Loc {
    pub(super) block: usize,
    pub(super) stride: usize,
}

/// Finds the block holding `p` (any address inside a carved block of a
/// live slab), or `None`.
fn locate(p: *mut u8) -> Option<Loc> {
    let a = p as usize;
    let k = registry::kind_of(a);
    if !registry::is_superslab(k) {
        return None;
    }
    // SAFETY: the registry says a live superslab with this mask holds `p`.
    let s = unsafe { slab_meta_at(p, k) };
    let class = s.class();
    if s.state() == slab_state::FREE || class >= NUM_CLASSES {
        return None;
    }
    let start = s.data_start();
    let stride = CLASS_STRIDE[class] as usize;
    let off = a.checked_sub(start)?;
    let carved = s.carved() as usize * stride;
    if off >= carved {
        return None;
    }
    let block = start + block_index(off, class) * stride;
    Some(Loc { block, stride })
}

/// The live block of class `class` whose user pointer is `p`, found
/// without the registry: `p` is a pointer the free path located in a slab
/// of `class`, and a block with the default 16-byte header starts 16
/// bytes before it. The live word there (keyed with the secret and the
/// block address) proves it; anything else (an aligned block, an interior
/// or misaligned pointer, a freed block) returns `None`, and the caller
/// takes [`check_live`], which finds the block by division and names the
/// misuse. Returns the block, its stride and the requested size, the
/// header and canary checked.
///
/// # Safety
/// `p` lies in a live superslab, in a slab of class `class`.
#[inline]
pub(super) unsafe fn live_fast(p: *mut u8, class: usize) -> Option<(Loc, usize)> {
    let a = p as usize;
    if a & 15 != 0 || class >= NUM_CLASSES {
        return None;
    }
    // Not in the first 16 bytes of its slab (slabs are aligned to their
    // size): the bytes before those are the previous slab's guard page, or
    // the superslab's start.
    if a & ((1usize << SlabKind::of_class(class).shift()) - 1) < 16 {
        return None;
    }
    let b = a - 16;
    // SAFETY: `b` is in the same slab as `a` (checked above), inside the
    // superslab mapping and before the slab's guard page: readable.
    let (w0, w1) = unsafe { (word(b, 0), word(b, 1)) };
    if w1 != live_word(b) {
        return None;
    }
    let v = w0 ^ secret() ^ b as u64;
    let (n, h) = ((v & 0xffff_ffff) as usize, (v >> 32) as usize);
    let stride = CLASS_STRIDE[class] as usize;
    if h != 16 {
        return None;
    }
    if n.max(USER_MIN) + h >= stride {
        diag::fatal("free()", "invalid pointer or corrupted block header", p)
    }
    // SAFETY: the bytes from the user end to the stride are the canary.
    if !unsafe { canary_intact(b, h + n.max(USER_MIN), stride) } {
        diag::fatal("free()", "buffer overflow past the end of block", p)
    }
    Some((Loc { block: b, stride }, n))
}

/// Checks the header and canary of the live block holding user pointer `p`
/// for entry point `call`; returns its location and requested size.
pub(super) fn check_live(call: &str, p: *mut u8) -> (Loc, usize) {
    let Some(l) = locate(p) else {
        diag::invalid_pointer(call, p)
    };
    // SAFETY: a carved block of at least 32 bytes (the secure layout's
    // smallest class).
    let (w0, w1) = unsafe { (word(l.block, 0), word(l.block, 1)) };
    if w1 as usize == free_mark(l.block) {
        if call == "free()" {
            diag::double_free(call, p)
        }
        diag::fatal(call, "pointer already freed", p)
    }
    if w1 != live_word(l.block) {
        diag::fatal(
            call,
            "invalid pointer or heap corruption before the block",
            p,
        )
    }
    let v = w0 ^ secret() ^ l.block as u64;
    let (n, h) = ((v & 0xffff_ffff) as usize, (v >> 32) as usize);
    if h != p as usize - l.block || h < 16 || n.max(USER_MIN) + h >= l.stride {
        diag::fatal(call, "invalid pointer or corrupted block header", p)
    }
    let from = h + n.max(USER_MIN);
    // SAFETY: bytes [h + max(n, 16), stride) of the block are its canary.
    if !unsafe { canary_intact(l.block, from, l.stride) } {
        diag::fatal(call, "buffer overflow past the end of block", p)
    }
    (l, n)
}

/// True when `p` is the start of a carved block of a live slab that
/// carries the free mark: what every slab free-list link must point to.
pub(super) fn is_free_block(p: *mut u8) -> bool {
    let k = registry::kind_of(p as usize);
    if !registry::is_superslab(k) {
        return false;
    }
    // SAFETY: the registry says a live superslab with this mask holds `p`.
    let s = unsafe { slab_meta_at(p, k) };
    // SAFETY: a block start of a live slab has 16 readable bytes.
    s.is_block_start(p as usize) && unsafe { hakmem_ptr_bridge::has_free_mark(p) }
}

/// True when bytes `[from, to)` of block `b` all hold the canary (`from`
/// at least 8, `to` a multiple of 8): word by word, the first word masked
/// to the bytes from `from` on.
///
/// # Safety
/// The bytes, and the word that holds byte `from`, are inside block `b`,
/// which is ours to read.
#[inline]
unsafe fn canary_intact(b: usize, from: usize, to: usize) -> bool {
    let pat = u64::from_ne_bytes([canary(); 8]);
    let mut i = from & !7;
    if i >= to {
        return true;
    }
    // Little-endian: the bytes before `from` are the low ones of the word.
    let keep = !0u64 << (8 * (from - i));
    // SAFETY: caller contract; `b + i` is 8-aligned (`b` is 16-aligned).
    let mut diff = (unsafe { word(b + i, 0) } ^ pat) & keep;
    i += 8;
    while i < to {
        // SAFETY: as above.
        diff |= unsafe { word(b + i, 0) } ^ pat;
        i += 8;
    }
    diff == 0
}

/// Writes the canary into bytes `[from, to)` of block `b` (`from` at
/// least 8, `to` a multiple of 8): the first word merged with the bytes
/// before `from`, then whole words.
///
/// # Safety
/// The bytes, and the word that holds byte `from`, are inside block `b`,
/// which is ours to write.
#[inline]
pub(super) unsafe fn fill_canary(b: usize, from: usize, to: usize) {
    let c = canary();
    let mut i = from & !7;
    if i >= to {
        return;
    }
    let pat = u64::from_ne_bytes([c; 8]);
    // Little-endian: the bytes before `from` are the low ones of the word.
    let keep = (1u64 << (8 * (from - i))).wrapping_sub(1);
    // SAFETY: caller contract; 8-aligned as `b` is 16-aligned.
    unsafe {
        let w = (b + i) as *mut u64;
        *w = (*w & keep) | (pat & !keep);
    }
    i += 8;
    if to - i > 256 {
        // SAFETY: caller contract.
        unsafe { core::ptr::write_bytes((b + i) as *mut u8, c, to - i) };
        return;
    }
    while i < to {
        // SAFETY: as above. Volatile keeps the few stores inline (not a
        // `memset` call).
        unsafe { core::ptr::write_volatile((b + i) as *mut u64, pat) };
        i += 8;
    }
}

/// True when words `[from, stride / 8)` of block `b` are all zero: what a
/// freed block must still hold. On x86-64, 64 bytes a step with four
/// SSE2 ORs (the baseline of the target: no feature test); elsewhere, and
/// for the last words, word by word.
///
/// # Safety
/// `b` is a block of `stride` bytes (a multiple of 16) that is ours.
#[inline]
pub(super) unsafe fn still_zero(b: usize, from: usize, stride: usize) -> bool {
    let mut i = b + 8 * from;
    let end = b + stride;
    let mut acc = 0u64;
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
            _mm_setzero_si128,
        };
        if end - i >= 64 {
            // SAFETY: SSE2 is part of the x86-64 baseline; every load is
            // of 16 bytes inside the block (caller contract).
            unsafe {
                let mut v = _mm_setzero_si128();
                while end - i >= 64 {
                    let p = i as *const __m128i;
                    v = _mm_or_si128(
                        v,
                        _mm_or_si128(
                            _mm_or_si128(_mm_loadu_si128(p), _mm_loadu_si128(p.add(1))),
                            _mm_or_si128(_mm_loadu_si128(p.add(2)), _mm_loadu_si128(p.add(3))),
                        ),
                    );
                    i += 64;
                }
                if _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_setzero_si128())) != 0xffff {
                    return false;
                }
            }
        }
    }
    while i < end {
        // SAFETY: caller contract.
        acc |= unsafe { *(i as *const u64) };
        i += 8;
    }
    acc == 0
}

/// Zeroes words `[2, stride / 8)` of block `b` (a freed block's contents):
/// sixteen bytes a step, inline for the small strides (the call to
/// `memset` costs more than the stores there).
///
/// # Safety
/// `b` is a block of `stride` bytes (a multiple of 16) that is ours.
#[inline]
pub(super) unsafe fn zero_contents(b: usize, stride: usize) {
    if stride > 512 {
        // SAFETY: caller contract.
        unsafe { core::ptr::write_bytes((b + 16) as *mut u8, 0, stride - 16) };
        return;
    }
    let mut i = 16;
    while i < stride {
        // SAFETY: caller contract; volatile so that the loop stays stores
        // (LLVM would turn it back into a `memset` call).
        unsafe {
            core::ptr::write_volatile((b + i) as *mut u64, 0);
            core::ptr::write_volatile((b + i + 8) as *mut u64, 0);
        }
        i += 16;
    }
}
