//! Size classes: 80 classes from 16 B to 64 KiB.
//!
//! Classes 0..8 step by 16 B (16..=128). Above 128 B every power-of-two
//! range `(128·2^g, 256·2^g]` is split into eight equal steps, so the worst
//! internal fragmentation for a request `r > 128` is `step-1` bytes over a
//! block of at least `9·step`: below 1/9 (11.1 %). Requests of 128 B or less
//! waste at most 15 bytes (the 16-byte minimum alignment of malloc).
//!
//! Tier boundaries: tiny = classes 0..32 (up to [`TINY_MAX`] = 1 KiB),
//! mid = classes 32..80 (up to [`MAX_CLASS_SIZE`] = 64 KiB).
//!
//! Three limits happen to be 64 KiB and have a name each:
//! [`MAX_CLASS_SIZE`] (the largest block a slab serves),
//! [`MAX_ROUTED_SIZE`] (the largest request the route table covers: `malloc`
//! sends anything larger straight to a span) and [`MAX_SPAN_THRESHOLD`]
//! (the highest, and default, pool/span threshold).

use static_assertions::{const_assert, const_assert_eq};

/// Number of size classes.
pub const NUM_CLASSES: usize = 80;
/// Number of tiny classes (16 B ..= 1 KiB).
pub const NUM_TINY_CLASSES: usize = 32;
/// Largest tiny request.
pub const TINY_MAX: usize = 1024;
/// Largest size class (the last entry of `CLASS_SIZE`): the largest request
/// a slab block can serve.
pub const MAX_CLASS_SIZE: usize = 65536;
/// Largest request the route table ([`route_of`]) covers; larger requests
/// are spans whatever the threshold.
pub const MAX_ROUTED_SIZE: usize = MAX_CLASS_SIZE;
/// Highest pool/span threshold, and its default (every class in use).
pub const MAX_SPAN_THRESHOLD: usize = MAX_CLASS_SIZE;
/// The old name of the three limits above.
#[deprecated(note = "use MAX_CLASS_SIZE, MAX_ROUTED_SIZE or MAX_SPAN_THRESHOLD")]
pub const SMALL_MAX: usize = MAX_CLASS_SIZE;
/// Minimum alignment of every block (malloc's guarantee on x86-64).
pub const MIN_ALIGN: usize = 16;

pub(crate) const fn build_class_sizes() -> [u32; NUM_CLASSES] {
    let mut t = [0u32; NUM_CLASSES];
    let mut c = 0;
    while c < 8 {
        t[c] = 16 * (c as u32 + 1);
        c += 1;
    }
    let mut g = 0;
    while c < NUM_CLASSES {
        let base = 128u32 << g;
        let step = base / 8;
        let mut i = 0;
        while i < 8 {
            t[c] = base + step * (i + 1);
            c += 1;
            i += 1;
        }
        g += 1;
    }
    t
}

/// Block size of each class, in bytes.
#[link_section = ".rodata.hakmem_startup"] // start-up group, see crates/preload/layout.ld
pub static CLASS_SIZE: [u32; NUM_CLASSES] = build_class_sizes();

/// True when every size is a multiple of `align` and larger than the one
/// before it.
const fn increasing_multiples(t: &[u32; NUM_CLASSES], align: u32) -> bool {
    let mut c = 0;
    while c < NUM_CLASSES {
        if !t[c].is_multiple_of(align) || (c > 0 && t[c] <= t[c - 1]) {
            return false;
        }
        c += 1;
    }
    true
}

// The class table's shape, checked when the crate compiles: sizes strictly
// increase (`class_of` is the smallest fitting class), every size keeps
// malloc's 16-byte alignment, the tiers end where their constants say,
// and class indices fit the byte tables (`ALIGNED_CLASS` uses `u8::MAX`
// for "none", `Event::class` is a byte).
const_assert!(increasing_multiples(&build_class_sizes(), MIN_ALIGN as u32));
const_assert_eq!(build_class_sizes()[0], 16);
const_assert_eq!(build_class_sizes()[7], 128);
const_assert_eq!(build_class_sizes()[NUM_TINY_CLASSES - 1] as usize, TINY_MAX);
const_assert_eq!(
    build_class_sizes()[NUM_CLASSES - 1] as usize,
    MAX_CLASS_SIZE
);
const_assert_eq!(class_of_slow(TINY_MAX), NUM_TINY_CLASSES - 1);
const_assert_eq!(class_of_slow(MAX_CLASS_SIZE), NUM_CLASSES - 1);
const_assert!(NUM_CLASSES < u8::MAX as usize);
const_assert!(NUM_TINY_CLASSES < NUM_CLASSES);

/// Classes of at least this many bytes are *cache-coloured*: their blocks
/// sit [`COLOUR_GAP`] bytes further apart than their size.
pub const COLOUR_MIN: usize = 8192;

/// The extra distance between consecutive blocks of a coloured class.
///
/// Without it every class from 8 KiB up has a block size that is a multiple
/// of 1 KiB (most of them of 4 KiB), so the same offset in consecutive
/// blocks — a header at offset 0, the first byte of each page — falls into
/// the same L1 set (the set index is address bits 6..12): with 64 KiB
/// blocks, every block's page starts compete for one set of 8 ways. 128
/// bytes shifts block `i` by `i` × 2 cache lines, spreading the blocks of a
/// slab over 32 set groups while keeping 128-byte alignment (what
/// cache-padded types ask for). It costs 128 bytes per block (1.6 % at
/// 8 KiB, 0.2 % at 64 KiB; the worst request, 8193 B in the 9216 B class,
/// wastes 12.3 % of its 9344-byte stride) and one block of capacity in
/// some slabs (that tail is never touched, so never resident).
/// Measured on the `scenario/json` workload (four live 64 KiB blocks, one
/// byte written per page): see `docs/memory.md`.
pub const COLOUR_GAP: usize = 128;

pub(crate) const fn build_class_strides() -> [u32; NUM_CLASSES] {
    let mut t = build_class_sizes();
    let mut c = 0;
    while c < NUM_CLASSES {
        if t[c] as usize >= COLOUR_MIN {
            t[c] += COLOUR_GAP as u32;
        }
        c += 1;
    }
    t
}

/// Distance between consecutive blocks of each class in a slab: the class
/// size, plus [`COLOUR_GAP`] for classes of [`COLOUR_MIN`] bytes and more.
/// This is a block's usable size (the gap belongs to the block before it).
#[link_section = ".rodata.hakmem_startup"] // start-up group, see crates/preload/layout.ld
pub static CLASS_STRIDE: [u32; NUM_CLASSES] = build_class_strides();

// Strides keep the 16-byte alignment too; the colour gap keeps the
// coloured classes 128-byte aligned; `block_index`'s reciprocal is exact
// for strides below 2^17.
const_assert!(increasing_multiples(
    &build_class_strides(),
    MIN_ALIGN as u32
));
const_assert_eq!(COLOUR_GAP % 128, 0);
const_assert!(build_class_strides()[NUM_CLASSES - 1] < 1 << 17);

const fn class_of_slow(size: usize) -> usize {
    if size <= 128 {
        if size == 0 {
            0
        } else {
            (size - 1) >> 4
        }
    } else {
        let s = size - 1;
        let msb = (usize::BITS - 1 - s.leading_zeros()) as usize;
        let g = msb - 7;
        8 * g + (s >> (g + 4))
    }
}

const fn build_class_table() -> [u8; MAX_ROUTED_SIZE / 16 + 1] {
    let mut t = [0u8; MAX_ROUTED_SIZE / 16 + 1];
    let mut i = 0;
    while i < t.len() {
        t[i] = class_of_slow(i * 16) as u8;
        i += 1;
    }
    t
}

/// `SIZE_CLASS[(size + 15) / 16]` is the *route* of a request of `size`
/// bytes: its class (every class size is a multiple of 16, so rounding the
/// request up to 16 does not change its class), or, for sizes above the
/// span threshold, that class's *span twin* `class + NUM_CLASSES`
/// ([`set_span_threshold`]). 16 KiB; the tiny part is 260 bytes. Entries
/// are 32-bit atomics so the threshold can change while threads allocate; a
/// relaxed 32-bit load is one plain `mov` straight into an index register
/// (a byte would need an extra zero-extension).
#[link_section = ".data.hakmem_table"] // libhakmem.so: see crates/preload/layout.ld
static SIZE_CLASS: [core::sync::atomic::AtomicU32; MAX_ROUTED_SIZE / 16 + 1] = {
    let t = build_class_table();
    let mut a = [const { core::sync::atomic::AtomicU32::new(0) }; MAX_ROUTED_SIZE / 16 + 1];
    let mut i = 0;
    while i < t.len() {
        a[i] = core::sync::atomic::AtomicU32::new(t[i] as u32);
        i += 1;
    }
    a
};

/// A pointer to [`SIZE_CLASS`], placed just before it in libhakmem.so
/// (crates/preload/layout.ld), which nothing reads: in a shared library it
/// needs a relocation, so ld.so writes the page that holds the table's
/// first entries (every request up to about 9 KiB) before anything runs.
/// That page is then the process's own copy, and the first `malloc`'s read
/// of the table does not fault; a read fault there would make the kernel
/// map the table's other, unused pages beside it (fault-around: up to
/// 64 KiB of the file's cached pages), 16 KiB of resident memory.
#[used]
#[link_section = ".data.hakmem_anchor"]
static SIZE_CLASS_ANCHOR: &[core::sync::atomic::AtomicU32; MAX_ROUTED_SIZE / 16 + 1] = &SIZE_CLASS;

/// Number of routes: every class plus its span twin. A thread cache has a
/// list head per route; the twins' lists stay empty, so a request routed to
/// a twin misses in the unchanged fast path and the miss path maps a span.
pub const NUM_ROUTES: usize = 2 * NUM_CLASSES;

static SPAN_THRESHOLD: core::sync::atomic::AtomicUsize =
    core::sync::atomic::AtomicUsize::new(MAX_SPAN_THRESHOLD);

/// Sets the pool/span threshold: requests of more than `t` bytes (at 16-byte
/// alignment) become spans instead of slab blocks. Clamped to
/// `TINY_MAX..=MAX_SPAN_THRESHOLD`; the default is `MAX_SPAN_THRESHOLD` (every slab class in
/// use). Costs nothing on the fast path: it rewrites the route table.
pub fn set_span_threshold(t: usize) {
    let t = t.clamp(TINY_MAX, MAX_SPAN_THRESHOLD);
    SPAN_THRESHOLD.store(t, core::sync::atomic::Ordering::Relaxed);
    for (i, e) in SIZE_CLASS.iter().enumerate() {
        let c = class_of_slow(i * 16);
        let route = if i * 16 > t { c + NUM_CLASSES } else { c };
        e.store(route as u32, core::sync::atomic::Ordering::Relaxed);
    }
}

/// The current pool/span threshold.
pub fn span_threshold() -> usize {
    SPAN_THRESHOLD.load(core::sync::atomic::Ordering::Relaxed)
}

/// The class of a request of `size` bytes (≤ [`MAX_CLASS_SIZE`]) whatever the
/// span threshold (slow: a few arithmetic instructions).
pub const fn size_class(size: usize) -> usize {
    class_of_slow(size)
}

/// The route of a request of `size` bytes (alignment ≤ [`MIN_ALIGN`]): its
/// class, or `class + NUM_CLASSES` when the span threshold sends it to a
/// span.
///
/// Cost: one add, one shift and one table load.
///
/// Requires `size <= MAX_ROUTED_SIZE` (debug-checked).
#[inline(always)]
pub fn route_of(size: usize) -> usize {
    debug_assert!(size <= MAX_ROUTED_SIZE);
    // Callers test `size <= MAX_ROUTED_SIZE` first, which lets the compiler drop
    // this bounds check after inlining.
    SIZE_CLASS[size.wrapping_add(15) >> 4].load(core::sync::atomic::Ordering::Relaxed) as usize
}

/// The old name of [`route_of`] (it returns a route, not always a class).
#[deprecated(note = "renamed route_of: it returns a route")]
#[inline(always)]
pub fn class_of(size: usize) -> usize {
    route_of(size)
}

const ALIGN_LEVELS: usize = 8; // 32, 64, ..., 4096
const_assert_eq!(32 << (ALIGN_LEVELS - 1), crate::PAGE_SIZE);

const fn build_aligned_table() -> [[u8; NUM_CLASSES]; ALIGN_LEVELS] {
    // Blocks start at slab starts (64 KiB-aligned) plus multiples of the
    // stride: the stride decides the alignment.
    let sizes = build_class_strides();
    let mut t = [[u8::MAX; NUM_CLASSES]; ALIGN_LEVELS];
    let mut l = 0;
    while l < ALIGN_LEVELS {
        let align = 32u32 << l;
        let mut c = 0;
        while c < NUM_CLASSES {
            let mut d = c;
            while d < NUM_CLASSES && !sizes[d].is_multiple_of(align) {
                d += 1;
            }
            if d < NUM_CLASSES {
                t[l][c] = d as u8;
            }
            c += 1;
        }
        l += 1;
    }
    t
}

/// `ALIGNED_CLASS[log2(align) - 5][c]`: the first class `>= c` whose block
/// stride is a multiple of `align`; `u8::MAX` when none. Coloured classes
/// (8 KiB and up) are 128-byte aligned, so a request of more than 4 KiB
/// aligned to 256 bytes or more becomes a span.
#[link_section = ".rodata.hakmem_startup"] // start-up group, see crates/preload/layout.ld
static ALIGNED_CLASS: [[u8; NUM_CLASSES]; ALIGN_LEVELS] = build_aligned_table();

/// The class serving `size` bytes at `align`, or `None` when the request
/// must become a span (too big, or aligned above a page).
///
/// Blocks of class `c` start at page-aligned slab starts plus multiples of
/// `CLASS_STRIDE[c]`, so a class whose stride is a multiple of `align`
/// returns `align`-aligned blocks.
#[inline]
pub fn class_for(size: usize, align: usize) -> Option<usize> {
    if size > MAX_CLASS_SIZE {
        return None;
    }
    if align <= MIN_ALIGN {
        return Some(class_of_slow(size));
    }
    if align > crate::PAGE_SIZE {
        return None;
    }
    let level = align.trailing_zeros() as usize - 5;
    let c = ALIGNED_CLASS[level][class_of_slow(size.max(align))];
    if c == u8::MAX {
        None
    } else {
        Some(c as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_of_is_smallest_fitting_class() {
        for size in 0..=MAX_ROUTED_SIZE {
            let c = route_of(size);
            assert!(CLASS_SIZE[c] as usize >= size, "size {size}");
            if c > 0 {
                assert!((CLASS_SIZE[c - 1] as usize) < size.max(1), "size {size}");
            }
        }
    }

    #[test]
    fn fragmentation_bound() {
        for size in 129..=MAX_CLASS_SIZE {
            let c = route_of(size);
            let bs = CLASS_SIZE[c] as usize;
            // waste/bs < 1/9  <=>  9 * waste < bs
            assert!(9 * (bs - size) < bs, "size {size} -> {bs}");
            // With the colour gap the block takes its stride: still below
            // 1/8 (12.5 %).
            let stride = CLASS_STRIDE[c] as usize;
            assert!(8 * (stride - size) < stride, "size {size} -> {stride}");
        }
    }

    #[test]
    fn aligned_classes() {
        let mut align = 32;
        while align <= crate::PAGE_SIZE {
            for size in [1, 15, 16, 17, 100, 1000, 4000, 5000, 60000, MAX_CLASS_SIZE] {
                if let Some(c) = class_for(size, align) {
                    let bs = CLASS_SIZE[c] as usize;
                    let stride = CLASS_STRIDE[c] as usize;
                    assert!(bs >= size && stride.is_multiple_of(align));
                }
            }
            align *= 2;
        }
        assert_eq!(class_for(1, 8192), None);
        // Page-aligned 4 KiB still comes from a slab; larger page-aligned
        // requests hit coloured classes and become spans.
        assert_eq!(class_for(4096, 4096).map(|c| CLASS_SIZE[c]), Some(4096));
        assert_eq!(class_for(5000, 4096), None);
        assert!(class_for(60000, 128).is_some());
        assert_eq!(class_for(60000, 256), None);
    }

    #[test]
    fn strides_colour_the_large_classes() {
        for c in 0..NUM_CLASSES {
            let (size, stride) = (CLASS_SIZE[c] as usize, CLASS_STRIDE[c] as usize);
            if size >= COLOUR_MIN {
                assert_eq!(stride, size + COLOUR_GAP);
                // Consecutive blocks start in different L1 set groups.
                assert_ne!(stride % 4096, 0);
            } else {
                assert_eq!(stride, size);
            }
            assert!(stride.is_multiple_of(MIN_ALIGN));
        }
        assert_eq!(class_for(MAX_CLASS_SIZE + 1, 16), None);
    }
}
