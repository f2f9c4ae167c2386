//! Edge cases of the public API: zero sizes, alignments from 1 B to 8 MiB
//! at every class boundary, realloc across tiers, zeroed memory after dirty
//! frees, usable sizes, impossible requests, ownership queries and frees of
//! pointers hakmem never handed out.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashSet;

use common::{assert_pattern, boundary_sizes, fill, find_nonzero};
use hakmem::HakMem;

const MIB: usize = 1024 * 1024;

/// Frees a batch of raw-API blocks.
fn free_all(ptrs: impl IntoIterator<Item = *mut u8>) {
    for p in ptrs {
        // SAFETY: every pointer passed here is a live hakmem block.
        unsafe { hakmem::free(p) };
    }
}

#[test]
fn malloc_zero_is_unique_non_null_and_freeable() {
    for round in 0..3 {
        let ptrs: Vec<*mut u8> = (0..5000).map(|_| hakmem::malloc(0)).collect();
        let mut seen = HashSet::new();
        for &p in &ptrs {
            assert!(!p.is_null(), "round {round}: malloc(0) returned null");
            assert!(
                seen.insert(p as usize),
                "round {round}: malloc(0) returned {p:p} twice"
            );
            assert!(
                hakmem::owns(p),
                "round {round}: owns(malloc(0) = {p:p}) is false"
            );
        }
        free_all(ptrs);
    }
    // calloc(0) and malloc_aligned(0, a) for aligns served by classes and
    // by spans below the chunk size.
    let mut live = Vec::new();
    let mut seen = HashSet::new();
    for shift in 0..=20 {
        let align = 1usize << shift;
        for (p, want) in [
            (hakmem::calloc(0), 16),
            (hakmem::malloc_aligned(0, align), align.max(16)),
        ] {
            assert!(
                !p.is_null(),
                "zero-size request at align {want} returned null"
            );
            assert_eq!(
                p as usize % want,
                0,
                "zero-size block {p:p} not aligned to {want}"
            );
            assert!(
                seen.insert(p as usize),
                "zero-size block {p:p} returned twice"
            );
            live.push(p);
        }
    }
    free_all(live);
}

/// Whether the page holding `p` is mapped in this process.
fn page_is_mapped(p: *const u8) -> bool {
    let page = (p as usize) & !4095;
    let mut vec = 0u8;
    // SAFETY: mincore only inspects the mapping state of the range and
    // writes one byte into `vec`; it fails with ENOMEM for unmapped pages.
    let rc = unsafe { libc::mincore(page as *mut libc::c_void, 1, &mut vec) };
    rc == 0
}

/// A zero-size request aligned to the 2 MiB chunk size or more must still
/// return a pointer *inside* the span's mapping, one that `realloc` and
/// `free` accept (the C API reaches this with `aligned_alloc(2 MiB, 0)` and
/// `posix_memalign(&p, 2 MiB, 0)`).
#[test]
fn zero_size_with_chunk_alignment() {
    for align in [2 * MIB, 4 * MIB] {
        let p = hakmem::malloc_aligned(0, align);
        assert!(!p.is_null(), "malloc_aligned(0, {align}) returned null");
        assert_eq!(p as usize % align, 0);
        assert!(
            page_is_mapped(p),
            "malloc_aligned(0, {align}) returned {p:p}, which is not inside any mapping: the \
             span geometry maps exactly `align` bytes and puts the user pointer one past its \
             end (and registers the chunk at {p:p}, which hakmem does not own, as its span)"
        );
        // SAFETY: `p` is a live zero-size block aligned to `align`.
        let q = unsafe { hakmem::realloc_aligned(p, 100, align) };
        assert!(
            !q.is_null(),
            "realloc_aligned(malloc_aligned(0, {align}) = {p:p}, 100, {align}) returned null \
             (usable_size was {})",
            hakmem::usable_size(p)
        );
        assert_eq!(q as usize % align, 0);
        // SAFETY: `q` is live.
        unsafe { hakmem::free(q) };
    }
}

#[test]
fn alignments_up_to_8_mib_at_every_class_boundary() {
    let sizes = boundary_sizes(3 * MIB);
    for shift in 0..=23 {
        let align = 1usize << shift;
        let mut live: Vec<(*mut u8, usize)> = Vec::new();
        for &size in &sizes {
            for how in 0..3 {
                let p = match how {
                    0 => hakmem::malloc_aligned(size, align),
                    1 => hakmem::calloc_aligned(size, align),
                    _ => {
                        let layout = Layout::from_size_align(size, align).unwrap();
                        // SAFETY: size > 0.
                        unsafe { HakMem.alloc(layout) }
                    }
                };
                let what = ["malloc_aligned", "calloc_aligned", "GlobalAlloc::alloc"][how];
                assert!(
                    !p.is_null(),
                    "{what}(size {size}, align {align}) returned null"
                );
                assert_eq!(
                    p as usize % align.max(16),
                    0,
                    "{what}(size {size}, align {align}) = {p:p} is misaligned"
                );
                let usable = hakmem::usable_size(p);
                assert!(
                    usable >= size,
                    "{what}(size {size}, align {align}): usable_size {usable} < {size}"
                );
                if how == 1 {
                    // SAFETY: `size` readable bytes (sampled at both ends
                    // for big blocks to keep the test fast).
                    let bad = unsafe {
                        find_nonzero(p, size.min(4096))
                            .or_else(|| find_nonzero(p.add(size - size.min(4096)), size.min(4096)))
                    };
                    assert!(
                        bad.is_none(),
                        "calloc_aligned({size}, {align}) not zeroed: {bad:?}"
                    );
                }
                // SAFETY: the first and last usable bytes are ours.
                unsafe {
                    *p = 0x5A;
                    *p.add(usable - 1) = 0xA5;
                }
                live.push((p, usable));
                // Keep the big-alignment spans few at a time.
                if align >= MIB || size >= MIB {
                    let (q, _) = live.pop().unwrap();
                    free_all([q]);
                }
            }
        }
        // No two live blocks of this alignment overlap.
        let mut ranges: Vec<(usize, usize)> = live
            .iter()
            .map(|&(p, u)| (p as usize, p as usize + u))
            .collect();
        ranges.sort_unstable();
        for w in ranges.windows(2) {
            assert!(
                w[0].1 <= w[1].0,
                "align {align}: blocks [{:#x}, {:#x}) and [{:#x}, {:#x}) overlap",
                w[0].0,
                w[0].1,
                w[1].0,
                w[1].1
            );
        }
        for &(p, usable) in &live {
            // SAFETY: live blocks, first and last usable bytes.
            unsafe {
                assert_eq!(*p, 0x5A, "align {align}: first byte of {p:p} overwritten");
                assert_eq!(
                    *p.add(usable - 1),
                    0xA5,
                    "align {align}: last byte of {p:p} overwritten"
                );
            }
        }
        free_all(live.into_iter().map(|(p, _)| p));
    }
}

#[test]
fn realloc_across_tiers_preserves_content() {
    // tiny -> mid -> span -> bigger span -> tiny -> mid -> span -> tiny ...
    let chain = [
        24,
        700,
        5_000,
        65_536,
        70_000,
        3 * MIB,
        9 * MIB,
        1_000,
        16,
        40_000,
        300_000,
        65_537,
        64,
        1,
    ];
    for align in [1usize, 16, 64, 4096, 8192, 2 * MIB] {
        let seed = 0xC0FFEE ^ align as u64;
        let mut size = 10usize;
        let mut p = hakmem::malloc_aligned(size, align);
        assert!(!p.is_null());
        // SAFETY: `size` bytes of a live block.
        unsafe { fill(p, size, seed) };
        for &new in &chain {
            // SAFETY: `p` is live and was allocated with `align`.
            let q = unsafe {
                if align <= 16 {
                    hakmem::realloc(p, new)
                } else {
                    hakmem::realloc_aligned(p, new, align)
                }
            };
            let what = format!("realloc(size {size} -> {new}, align {align})");
            assert!(!q.is_null(), "{what} returned null");
            assert_eq!(q as usize % align, 0, "{what} = {q:p} lost the alignment");
            assert!(
                hakmem::usable_size(q) >= new,
                "{what}: usable_size too small"
            );
            // SAFETY: the common prefix is readable.
            unsafe { assert_pattern(q, size.min(new), seed, &what) };
            // SAFETY: `new` bytes of a live block.
            unsafe { fill(q, new, seed) };
            p = q;
            size = new;
        }
        free_all([p]);
    }
    // The same through GlobalAlloc::realloc.
    let mut layout = Layout::from_size_align(10, 32).unwrap();
    // SAFETY: non-zero size.
    let mut p = unsafe { HakMem.alloc(layout) };
    // SAFETY: 10 bytes.
    unsafe { fill(p, 10, 7) };
    for &new in &chain {
        // SAFETY: `p` is live with `layout`.
        let q = unsafe { HakMem.realloc(p, layout, new) };
        assert!(
            !q.is_null() && (q as usize) & 31 == 0,
            "GlobalAlloc::realloc to {new}"
        );
        // SAFETY: common prefix.
        unsafe { assert_pattern(q, layout.size().min(new), 7, "GlobalAlloc::realloc") };
        // SAFETY: `new` bytes.
        unsafe { fill(q, new, 7) };
        p = q;
        layout = Layout::from_size_align(new, 32).unwrap();
    }
    // SAFETY: live with `layout`.
    unsafe { HakMem.dealloc(p, layout) };
}

/// Blocks filled with 0xAB and freed must come back zeroed from `calloc`,
/// `calloc_aligned` and `GlobalAlloc::alloc_zeroed`, in every tier.
#[test]
fn zeroed_allocations_after_dirty_frees() {
    let tiny = [1, 16, 24, 100, 512, 1000, 1024];
    let mid = [1025, 1500, 4096, 8000, 8193, 40_000, 65_536];
    let large = [65_537, 300_000, 1_500_000, 3 * MIB];
    for (tier, sizes, n, rounds) in [
        ("tiny", &tiny[..], 64, 6),
        ("mid", &mid[..], 16, 4),
        ("large", &large[..], 3, 3),
    ] {
        for round in 0..rounds {
            for &size in sizes {
                for (how, align) in [(0, 16), (1, 64), (1, 4096), (2, 16), (2, 256)] {
                    let dirty: Vec<*mut u8> = (0..n)
                        .map(|_| {
                            let p = hakmem::malloc_aligned(size, align);
                            assert!(!p.is_null());
                            // SAFETY: the whole usable block is writable.
                            unsafe { p.write_bytes(0xAB, hakmem::usable_size(p)) };
                            p
                        })
                        .collect();
                    free_all(dirty);
                    for _ in 0..n {
                        let (p, what) = match how {
                            0 => (hakmem::calloc(size), "calloc"),
                            1 => (hakmem::calloc_aligned(size, align), "calloc_aligned"),
                            _ => {
                                let l = Layout::from_size_align(size, align).unwrap();
                                // SAFETY: non-zero size.
                                (unsafe { HakMem.alloc_zeroed(l) }, "alloc_zeroed")
                            }
                        };
                        assert!(!p.is_null(), "{tier}: {what}({size}, align {align}) null");
                        // SAFETY: `size` readable bytes.
                        if let Some((off, b)) = unsafe { find_nonzero(p, size) } {
                            panic!(
                                "{tier} round {round}: {what}(size {size}, align {align}) = {p:p} \
                                 holds {b:#04x} at offset {off} after dirty frees"
                            );
                        }
                        free_all([p]);
                    }
                }
            }
        }
    }
}

#[test]
fn usable_size_covers_request_for_a_sweep() {
    let mut sizes: Vec<usize> = (0..=4200).collect();
    sizes.extend((4201..=300_000).step_by(61));
    sizes.extend(boundary_sizes(5 * MIB));
    for &size in &sizes {
        for align in [16usize, 64, 4096] {
            let p = hakmem::malloc_aligned(size, align);
            assert!(!p.is_null(), "malloc_aligned({size}, {align}) null");
            let usable = hakmem::usable_size(p);
            assert!(
                usable >= size,
                "usable_size(malloc_aligned({size}, {align})) = {usable}"
            );
            if usable > 0 {
                // SAFETY: every usable byte is writable.
                unsafe {
                    *p = 1;
                    *p.add(usable - 1) = 2;
                }
            }
            free_all([p]);
        }
    }
    assert_eq!(hakmem::usable_size(std::ptr::null()), 0);
    let local = 5u64;
    assert_eq!(hakmem::usable_size(&local as *const u64 as *const u8), 0);
}

#[test]
fn impossible_requests_return_null() {
    let huge = [
        usize::MAX,
        usize::MAX - 4096,
        usize::MAX / 2,
        isize::MAX as usize,
        isize::MAX as usize - 4096,
        1 << 47,
    ];
    for &size in &huge {
        assert!(hakmem::malloc(size).is_null(), "malloc({size:#x}) not null");
        assert!(hakmem::calloc(size).is_null(), "calloc({size:#x}) not null");
        for align in [32usize, 4096, 8192, 2 * MIB] {
            assert!(
                hakmem::malloc_aligned(size, align).is_null(),
                "malloc_aligned({size:#x}, {align}) not null"
            );
            assert!(
                hakmem::calloc_aligned(size, align).is_null(),
                "calloc_aligned({size:#x}, {align}) not null"
            );
        }
    }
    // GlobalAlloc with the largest layouts Layout accepts.
    for align in [1usize, 16, 4096, 2 * MIB] {
        let l = Layout::from_size_align(isize::MAX as usize - (align - 1), align).unwrap();
        // SAFETY: non-zero size.
        unsafe {
            assert!(HakMem.alloc(l).is_null(), "alloc({l:?}) not null");
            assert!(
                HakMem.alloc_zeroed(l).is_null(),
                "alloc_zeroed({l:?}) not null"
            );
        }
    }
    // A failing realloc returns null and leaves the block intact.
    for size in [100usize, 20_000, 200_000, 3 * MIB] {
        let p = hakmem::malloc(size);
        assert!(!p.is_null());
        // SAFETY: `size` bytes.
        unsafe { fill(p, size, 99) };
        for &new in &huge {
            // SAFETY: `p` is live.
            let q = unsafe { hakmem::realloc(p, new) };
            assert!(q.is_null(), "realloc({size} -> {new:#x}) not null");
            // SAFETY: `p` is still live and unchanged.
            unsafe { assert_pattern(p, size, 99, "after a failed realloc") };
        }
        let l = Layout::from_size_align(size, 16).unwrap();
        // SAFETY: `p` is live with `l`; the new size fits a Layout.
        let q = unsafe { HakMem.realloc(p, l, isize::MAX as usize - 15) };
        assert!(q.is_null());
        // SAFETY: `p` is still live.
        unsafe { assert_pattern(p, size, 99, "after a failed GlobalAlloc::realloc") };
        free_all([p]);
    }
    // Allocation still works.
    let p = hakmem::malloc(64);
    assert!(!p.is_null());
    free_all([p]);
}

#[test]
fn owns_distinguishes_our_memory() {
    let local = [0u8; 64];
    assert!(!hakmem::owns(local.as_ptr()), "owns(stack address)");
    assert!(!hakmem::owns(std::ptr::null()), "owns(null)");
    let l = Layout::from_size_align(256, 16).unwrap();
    // SAFETY: non-zero size.
    let s = unsafe { System.alloc(l) };
    assert!(!s.is_null());
    assert!(!hakmem::owns(s), "owns(System pointer)");
    // SAFETY: allocated above with `l`.
    unsafe { System.dealloc(s, l) };
    let b = Box::new(7u64);
    assert!(
        !hakmem::owns(&*b as *const u64 as *const u8),
        "owns(Box from System)"
    );

    for size in [8usize, 1000, 30_000, 100_000, 3 * MIB] {
        let p = hakmem::malloc(size);
        assert!(hakmem::owns(p), "owns(malloc({size}))");
        free_all([p]);
    }
    // A freed span is unmapped: no longer ours.
    let p = hakmem::malloc(5 * MIB);
    assert!(hakmem::owns(p));
    free_all([p]);
    assert!(!hakmem::owns(p), "owns(freed 5 MiB span)");
}

/// Blocks of the classes from 8 KiB up are cache-coloured: consecutive
/// blocks of one class start at different offsets within a page (so the
/// same field of each falls into a different L1 set), each block's usable
/// size covers its colour gap without reaching the next block, and
/// 128-byte alignment still comes from the slab.
#[test]
fn large_classes_are_cache_coloured() {
    for size in [8192usize, 9000, 40_000, 65_536] {
        let blocks: Vec<*mut u8> = (0..6).map(|_| hakmem::malloc(size)).collect();
        let mut offsets: Vec<usize> = blocks.iter().map(|&p| p as usize % 4096).collect();
        offsets.sort_unstable();
        offsets.dedup();
        assert!(offsets.len() >= 4, "size {size}: page offsets {offsets:?}");
        for &p in &blocks {
            let usable = hakmem::usable_size(p);
            assert!(
                usable >= size && usable < size + size / 8,
                "size {size}: {usable}"
            );
            // SAFETY: `p` is live with `usable` bytes; a neighbour's bytes
            // overlapping would show up in the checks below.
            unsafe { p.write_bytes((p as usize >> 4) as u8, usable) };
        }
        for &p in &blocks {
            let usable = hakmem::usable_size(p);
            // SAFETY: as above.
            let s = unsafe { std::slice::from_raw_parts(p, usable) };
            assert!(
                s.iter().all(|&b| b == (p as usize >> 4) as u8),
                "size {size}"
            );
            // SAFETY: live block from hakmem::malloc.
            unsafe { hakmem::free(p) };
        }
        let a = hakmem::malloc_aligned(size, 128);
        assert!(!a.is_null() && (a as usize).is_multiple_of(128));
        // SAFETY: live block.
        unsafe { hakmem::free(a) };
    }
}

/// A sized free whose size names another class than the block's (as after
/// a `realloc` that kept the block in place) puts the block back in its own
/// class: the class's next `malloc` gets it, the size's class never does.
/// (The default mode: the secure mode's quarantine delays every reuse.)
#[test]
fn sized_free_with_another_class_keeps_the_blocks_class() {
    let p = hakmem::malloc(64);
    assert!(!p.is_null());
    // SAFETY: `p` is live; 16 is another class's size (the mismatch the
    // fast push must refuse).
    unsafe { hakmem::free_sized_layout(p, 16) };
    let small: Vec<*mut u8> = (0..64).map(|_| hakmem::malloc(16)).collect();
    assert!(
        !small.contains(&p),
        "a 64-byte block went to the 16-byte list"
    );
    let q = hakmem::malloc(64);
    assert_eq!(q, p, "the block is back at the head of its own class");
    // SAFETY: every pointer is live and freed once.
    unsafe {
        hakmem::free(q);
        for s in small {
            hakmem::free_sized_layout(s, 16);
        }
    }
}
