//! superslab-backend: memory from the OS.
//!
//! - **Superslabs**: 2 MiB-aligned regions carved into slabs of one
//!   [`SlabKind`]. [`acquire_slab`] hands a FREE slab to a thread (creating a
//!   superslab when none has room), [`release_slab`] takes an empty slab back
//!   and unmaps a superslab once it is empty and enough others are cached.
//! - **The registry** ([`registry`]): is an address ours, and what is there?
//! - **Spans**: sizes above the slab classes, or aligned above a page,
//!   are mapped on their own with a [`SpanHeader`] ([`span_alloc`],
//!   [`span_free`], [`span_realloc`] which moves pages with `mremap`).
//!
//! All OS calls are in [`os`]. Nothing here allocates from the global heap.
//!
//! Platform: Linux only (`mmap`, `madvise`, `mremap`, `mbind`, `/proc`);
//! pages of at most 64 KiB ([`os::check_page_size`]). See docs/platforms.md.
#![no_std]

#[cfg(not(target_os = "linux"))]
compile_error!("hakmem supports Linux only: its OS layer (crates/superslab-backend/src/os.rs) uses mmap, madvise, mremap and /proc; see docs/platforms.md");

pub mod os;
pub use os::page_size;
mod guard;
pub mod registry;
pub use guard::{set_guard_pages, span_pad_intact};
mod span;
mod superslab;

use core::sync::atomic::Ordering::Relaxed;

/// The old names of the span API ("large" and "span" named one thing).
#[deprecated(note = "renamed span_alloc")]
pub use span::span_alloc as large_alloc;
#[deprecated(note = "renamed span_free")]
pub use span::span_free as large_free;
#[deprecated(note = "renamed span_realloc")]
pub use span::span_realloc as large_realloc;
#[deprecated(note = "renamed span_usable_size")]
pub use span::span_usable_size as large_usable_size;
pub use span::{
    cached_bytes as span_cache_bytes, set_huge_min, span_alloc, span_cache_holds, span_free,
    span_header, span_realloc, span_usable_size, SpanStash, HUGE_MIN_DEFAULT, SPAN_CACHE_BYTES,
    SPAN_CACHE_SLOTS,
};
pub use superslab::{
    acquire_slab, decay_ms, lock_all_for_fork, move_superslab, node_of_address, node_spread,
    release_slab, set_decay_ms, set_node_spread, tier_counts, unlock_all_after_fork,
    MAX_EMPTY_SUPERSLABS, NODES,
};

/// Counters of what the backend holds from the OS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackendStats {
    /// Superslabs currently mapped.
    pub superslabs: usize,
    /// Spans currently mapped (live, not cached).
    pub live_spans: usize,
    /// Bytes mapped for live spans.
    pub live_span_bytes: usize,
    /// Spans handed out since the start.
    pub span_allocs: u64,
    /// Spans freed since the start.
    pub span_frees: u64,
    /// Span requests served from the span cache.
    pub span_cache_hits: u64,
    /// Bytes of freed spans kept in the span cache.
    pub span_cache_bytes: usize,
}

/// A snapshot of [`BackendStats`].
pub fn stats() -> BackendStats {
    BackendStats {
        superslabs: superslab::SUPERSLABS_MAPPED.load(Relaxed),
        live_spans: span::SPAN_LIVE.load(Relaxed),
        live_span_bytes: span::SPAN_BYTES.load(Relaxed),
        span_allocs: span::SPAN_ALLOCS.load(Relaxed),
        span_frees: span::SPAN_FREES.load(Relaxed),
        span_cache_hits: span::CACHE_HITS.load(Relaxed),
        span_cache_bytes: span::cached_bytes(),
    }
}

/// Gives memory back to the OS: slabs released and superslabs empty for
/// longer than the decay delay, and cached spans as old (everything, with
/// `force`). Cheap to call often: unforced runs are rate-limited. Returns
/// the bytes given back.
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
pub fn decay(force: bool) -> usize {
    let freed = superslab::decay(force);
    if force || freed > 0 || span::cached_bytes() > 0 {
        freed + span::cache_decay(os::now_ms(), superslab::decay_ms(), force)
    } else {
        freed
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use core::ptr;
    use hakmem_ptr_bridge::{
        slab_state, superslab_tier, SlabKind, SlabMeta, FIRST_SLAB, PAGE_SIZE,
    };
    use std::sync::Mutex;
    use std::vec::Vec;

    /// The pools and the span cache are process-wide: tests that count
    /// their contents run one at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

    #[test]
    fn span_round_trip_and_registry() {
        let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let p = span_alloc(100_000, 16, false);
        assert!(!p.is_null());
        assert_eq!(p as usize % 16, 0);
        assert!(span_usable_size(p).unwrap() >= 100_000);
        // SAFETY: p is a fresh span of at least 100 000 bytes.
        unsafe {
            *p = 1;
            *p.add(99_999) = 2;
        }
        // SAFETY: p + 16 is inside the span.
        let interior = unsafe { p.add(16) };
        assert!(span_header(interior).is_none());
        assert!(span_free(p));
        assert!(!span_free(p), "second free must be refused");
    }

    #[test]
    fn spans_are_coloured_and_counted() {
        let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let before = stats();
        let mut spans = Vec::new();
        for align in [16usize, 64, 128] {
            for _ in 0..4 {
                let p = span_alloc(256 << 10, align, false);
                assert!(!p.is_null());
                assert_eq!(p as usize % align, 0);
                assert!(span_usable_size(p).unwrap() >= 256 << 10);
                spans.push(p);
            }
        }
        // Consecutive mappings start their blocks at different offsets
        // within a page, so their first bytes do not share an L1 set.
        let mut offsets: Vec<usize> = spans.iter().map(|&p| p as usize % 4096).collect();
        offsets.sort_unstable();
        offsets.dedup();
        assert!(offsets.len() >= 4, "page offsets {offsets:?}");
        // Above 128 bytes the alignment wins over colouring.
        let q = span_alloc(256 << 10, 4096, false);
        assert_eq!(q as usize % 4096, 0);
        spans.push(q);
        let mid = stats();
        assert_eq!(mid.span_allocs - before.span_allocs, 13);
        assert_eq!(mid.live_spans - before.live_spans, 13);
        for p in spans {
            // SAFETY: each is a live span written within its usable size.
            unsafe { p.write_bytes(0x5A, 256 << 10) };
            assert!(span_free(p));
        }
        let after = stats();
        assert_eq!(after.span_frees - before.span_frees, 13);
        assert_eq!(after.live_spans, before.live_spans);
        assert_eq!(after.live_span_bytes, before.live_span_bytes);
    }

    #[test]
    fn span_cache_grows_a_short_mapping_instead_of_mapping_afresh() {
        let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        decay(true); // empty cache
        let small = span_alloc(3 << 20, 16, false);
        assert!(!small.is_null());
        // SAFETY: live span of 3 MiB.
        unsafe { small.write_bytes(0x11, 3 << 20) };
        assert!(span_free(small));
        let before = stats();
        // Longer than anything cached: the cached 4 MiB mapping grows.
        let big = span_alloc(9 << 20, 16, true);
        assert!(!big.is_null());
        let after = stats();
        assert_eq!(after.span_cache_hits, before.span_cache_hits + 1);
        assert_eq!(after.span_cache_bytes, 0);
        assert!(span_usable_size(big).unwrap() >= 9 << 20);
        // SAFETY: live span of 9 MiB, asked zeroed.
        let s = unsafe { core::slice::from_raw_parts(big, 9 << 20) };
        assert!(s.iter().all(|&b| b == 0), "calloc-style span not zeroed");
        // SAFETY: as above.
        unsafe { big.write_bytes(0x22, 9 << 20) };
        assert!(span_free(big));
        // A shorter request now reuses the long mapping whole.
        let again = span_alloc(1 << 20, 16, false);
        assert_eq!(stats().span_cache_hits, after.span_cache_hits + 1);
        assert!(span_usable_size(again).unwrap() >= 9 << 20);
        assert!(span_free(again));
        decay(true);
    }

    /// The `VmFlags` line of the mapping containing `p` in /proc/self/smaps.
    fn vm_flags(p: *mut u8) -> std::string::String {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut inside = false;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ') {
                if let Some((lo, hi)) = range.split_once('-') {
                    if let (Ok(lo), Ok(hi)) =
                        (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
                    {
                        inside = (lo..hi).contains(&(p as usize));
                        continue;
                    }
                }
            }
            if inside {
                if let Some(f) = line.strip_prefix("VmFlags:") {
                    return f.into();
                }
            }
        }
        panic!("no mapping holds {p:p}");
    }

    #[test]
    fn large_spans_ask_for_huge_pages_small_ones_refuse_them() {
        let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        if !std::path::Path::new("/sys/kernel/mm/transparent_hugepage/enabled").exists() {
            return; // a kernel without THP has no flag to show
        }
        decay(true); // no cached mapping: these are fresh
        set_huge_min(4 << 20);
        let big = span_alloc(8 << 20, 16, false);
        let small = span_alloc(1 << 20, 16, false);
        assert!(vm_flags(big).split_whitespace().any(|f| f == "hg"));
        assert!(!vm_flags(small).split_whitespace().any(|f| f == "hg"));
        // Below the threshold a span refuses huge pages outright, so that
        // THP in `always` mode does not back it with 2 MiB pages.
        assert!(vm_flags(small).split_whitespace().any(|f| f == "nh"));
        assert!(span_free(big) && span_free(small));
        decay(true);
        set_huge_min(0);
        let off = span_alloc(8 << 20, 16, false);
        assert!(!vm_flags(off).split_whitespace().any(|f| f == "hg"));
        assert!(vm_flags(off).split_whitespace().any(|f| f == "nh"));
        assert!(span_free(off));
        set_huge_min(HUGE_MIN_DEFAULT);
        decay(true);
    }

    #[test]
    fn huge_alignment() {
        let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        for align in [4096usize, 1 << 20, 2 << 20, 8 << 20] {
            let p = span_alloc(10, align, false);
            assert!(!p.is_null());
            assert_eq!(p as usize % align, 0, "align {align}");
            assert!(span_free(p));
        }
    }

    #[test]
    fn mremap_preserves_content() {
        let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let p = span_alloc(3 << 20, 16, false);
        // SAFETY: 3 MiB span.
        unsafe {
            for i in (0..3 << 20).step_by(4096) {
                *p.add(i) = (i / 4096) as u8;
            }
            let q = span_realloc(p, 40 << 20);
            assert!(!q.is_null());
            for i in (0..3 << 20).step_by(4096) {
                assert_eq!(*q.add(i), (i / 4096) as u8);
            }
            *q.add((40 << 20) - 1) = 9;
            let r = span_realloc(q, 1 << 20);
            assert_eq!(r, q);
            assert_eq!(*r.add(4096), 1);
            assert!(span_free(r));
        }
    }

    #[test]
    fn oversize_fails_cleanly() {
        assert!(span_alloc(usize::MAX - 10, 16, false).is_null());
        assert!(span_alloc(isize::MAX as usize, 16, false).is_null());
    }

    #[test]
    fn tiering_hot_draining_free_and_decay() {
        let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        decay(true);
        let before = stats().superslabs;
        let per = SlabKind::Small.slabs() - FIRST_SLAB;
        // Two full superslabs and a third with one slab.
        let mut slabs: Vec<&SlabMeta> = (0..2 * per + 1)
            .map(|_| acquire_slab(0, 7, 0).expect("memory"))
            .collect();
        assert!(stats().superslabs >= before + 3);
        let first = slabs[0].superslab();
        // Release all but one slab of the first superslab: it drains.
        let (mine, rest): (Vec<&SlabMeta>, Vec<&SlabMeta>) =
            slabs.drain(..).partition(|m| m.superslab() == first);
        assert_eq!(mine.len(), per);
        for m in &mine[1..] {
            // SAFETY: owned, empty, unlisted.
            unsafe { release_slab(m) };
        }
        // SAFETY: `first` is live (one slab still in use).
        let tier = unsafe { (*first).tier.load(Relaxed) };
        assert_eq!(
            tier,
            superslab_tier::DRAINING,
            "a mostly empty superslab drains"
        );
        // New slabs come from HOT superslabs, not from the draining one.
        let extra = acquire_slab(0, 7, 0).unwrap();
        assert_ne!(
            extra.superslab(),
            first,
            "draining superslab handed out a slab"
        );
        // SAFETY: owned, empty, unlisted.
        unsafe { release_slab(extra) };
        // Its last slab goes: FREE, then unmapped by a forced decay.
        // SAFETY: as above.
        unsafe { release_slab(mine[0]) };
        // SAFETY: still mapped (FREE superslabs are kept until decay).
        let tier = unsafe { (*first).tier.load(Relaxed) };
        assert_eq!(tier, superslab_tier::FREE);
        for m in rest {
            // SAFETY: as above.
            unsafe { release_slab(m) };
        }
        assert!(decay(true) > 0);
        assert_eq!(
            stats().superslabs,
            before,
            "empty superslabs unmapped on forced decay"
        );
        assert!(!registry::is_superslab(registry::kind_of(first as usize)));
    }

    #[test]
    fn span_cache_reuses_and_zeroes() {
        let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        decay(true);
        let hits = stats().span_cache_hits;
        let p = span_alloc(5 << 20, 16, false);
        // SAFETY: 5 MiB span.
        unsafe { ptr::write_bytes(p, 0xAB, 5 << 20) };
        assert!(span_free(p));
        assert!(span_cache_bytes() > 0);
        let q = span_alloc(5 << 20, 16, true);
        assert_eq!(q, p, "the cached mapping is reused");
        assert_eq!(stats().span_cache_hits, hits + 1);
        // SAFETY: 5 MiB span.
        let all_zero = unsafe { core::slice::from_raw_parts(q, 5 << 20) }
            .iter()
            .all(|&b| b == 0);
        assert!(all_zero, "a zeroed request on a reused span must read zero");
        assert!(span_free(q));
        assert!(decay(true) >= 5 << 20);
        assert_eq!(span_cache_bytes(), 0);
    }

    #[test]
    fn span_cache_is_bounded() {
        let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        decay(true);
        let ps: Vec<*mut u8> = (0..40).map(|_| span_alloc(9 << 20, 16, false)).collect();
        for p in ps {
            assert!(span_free(p));
            assert!(span_cache_bytes() <= SPAN_CACHE_BYTES);
        }
        assert!(span_cache_bytes() <= SPAN_CACHE_SLOTS * (10 << 20));
        decay(true);
        assert_eq!(span_cache_bytes(), 0);
    }

    #[test]
    fn span_cache_leaves_out_what_growth_supersedes() {
        let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        decay(true);
        // A table replaced by one twice its size: the old one (5 MiB, a
        // 6 MiB mapping, half of what is live) is not cached.
        let old = span_alloc(5 << 20, 16, false);
        let new = span_alloc(10 << 20, 16, false);
        assert!(span_free(old));
        assert_eq!(span_cache_bytes(), 0, "a superseded table is unmapped");
        // A loop over one large block keeps its mapping.
        assert!(span_free(new));
        assert_eq!(span_cache_bytes(), 12 << 20, "the last block is cached");
        let again = span_alloc(10 << 20, 16, false);
        assert_eq!(again, new, "and reused");
        assert!(span_free(again));
        decay(true);
        // Churn among many large blocks: one freed block is a small share
        // of the live ones, so it is cached even after a longer request.
        let live: Vec<*mut u8> = (0..8).map(|_| span_alloc(5 << 20, 16, false)).collect();
        let big = span_alloc(13 << 20, 16, false);
        assert!(span_free(live[0]));
        assert_eq!(span_cache_bytes(), 6 << 20, "churn keeps caching");
        for &p in &live[1..] {
            assert!(span_free(p));
        }
        assert!(span_free(big));
        decay(true);
        assert_eq!(span_cache_bytes(), 0);
    }

    #[test]
    fn logical_nodes_place_and_move_superslabs() {
        let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let a = acquire_slab(5, 9, 0).unwrap();
        let b = acquire_slab(5, 9, 1).unwrap();
        // SAFETY: live superslabs (slabs in use).
        let (na, nb) = unsafe {
            (
                (*a.superslab()).node.load(Relaxed),
                (*b.superslab()).node.load(Relaxed),
            )
        };
        assert_eq!(na, node_of_address(a.superslab() as usize));
        assert_eq!(nb, node_of_address(b.superslab() as usize));
        assert_eq!((na, nb), (0, 1), "each node's superslab lives in its half");
        // SAFETY: live superslab.
        unsafe {
            assert!(move_superslab(a.superslab(), 1));
            assert_eq!((*a.superslab()).node.load(Relaxed), 1);
            assert!(!move_superslab(a.superslab(), 1));
        }
        // Releasing after the move goes through the new home pool.
        // SAFETY: owned, empty, unlisted.
        unsafe {
            release_slab(a);
            release_slab(b);
        }
        decay(true);
    }

    #[test]
    fn node_lists_parse() {
        assert_eq!(os::count_node_list(b"0\n"), 1);
        assert_eq!(os::count_node_list(b"0-1\n"), 2);
        assert_eq!(os::count_node_list(b"0,2-3\n"), 3);
        assert!(os::numa_nodes() >= 1);
    }

    #[test]
    fn slabs_come_and_go() {
        let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let m = acquire_slab(3, 42, 0).unwrap();
        assert_eq!(m.state(), slab_state::ACTIVE);
        assert_eq!(m.owner(), 42);
        assert!(registry::is_superslab(registry::kind_of(m.data_start())));
        assert_eq!(m.data_start() % PAGE_SIZE, 0);
        // SAFETY: we own the slab and nothing was handed out.
        unsafe { release_slab(m) };
        assert_eq!(m.state(), slab_state::FREE);
    }

    /// Decay drops the pool lock for its system calls and borrows the
    /// slabs it discards meanwhile: threads acquiring and releasing slabs
    /// at the same time must never get a borrowed slab, nor have a slab
    /// discarded (zeroed) while they hold it.
    #[test]
    fn decay_never_discards_or_hands_out_a_slab_in_use() {
        let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|sc| {
            sc.spawn(|| {
                while !stop.load(Relaxed) {
                    decay(true);
                }
            });
            let workers: Vec<_> = (0..3usize)
                .map(|t| {
                    let stop = &stop;
                    sc.spawn(move || {
                        let owner = 1000 + t;
                        let mut held: Vec<(&SlabMeta, u64)> = Vec::new();
                        let mut rounds = 0u64;
                        for r in 0..20_000u64 {
                            // A tiny and a medium class, alternately.
                            let class = if r % 2 == 0 { 3 } else { 70 };
                            let m = acquire_slab(class, owner, 0).expect("memory");
                            assert_eq!(m.owner(), owner);
                            let tag = (owner as u64) << 32 | r;
                            let at = m.data_start() as *mut u64;
                            // SAFETY: we own the slab; its first page is ours.
                            unsafe { at.write(tag) };
                            held.push((m, tag));
                            if held.len() > 24 {
                                let (m, tag) = held.swap_remove((r as usize * 7) % held.len());
                                let at = m.data_start() as *const u64;
                                // SAFETY: still ours.
                                assert_eq!(unsafe { at.read() }, tag, "slab changed under us");
                                // SAFETY: ours, nothing handed out from it.
                                unsafe { release_slab(m) };
                            }
                            rounds += 1;
                        }
                        for (m, tag) in held {
                            // SAFETY: as above.
                            assert_eq!(unsafe { (m.data_start() as *const u64).read() }, tag);
                            // SAFETY: as above.
                            unsafe { release_slab(m) };
                        }
                        let _ = stop;
                        rounds
                    })
                })
                .collect();
            for w in workers {
                assert_eq!(w.join().unwrap(), 20_000);
            }
            stop.store(true, Relaxed);
        });
        decay(true);
    }
}
