//! Each thread keeps its last freed one-chunk span (requests up to 2 MiB −
//! 64 B) for its own next span request, without the shared cache's lock.
//! One test function: the statistics and the shared cache are
//! process-wide, so nothing else may run beside it.

const SPAN: usize = 256 << 10;

#[test]
fn span_stash_reuses_counts_zeroes_and_is_handed_back() {
    // Reuse: the next request of the same size gets the same mapping back.
    let s0 = hakmem::stats();
    let a = hakmem::malloc(SPAN);
    assert!(!a.is_null());
    // SAFETY: live span of SPAN bytes.
    unsafe { a.write_bytes(0xEE, SPAN) };
    // SAFETY: freed once.
    unsafe { hakmem::free(a) };
    // The stashed mapping is still hakmem's memory (its registry entry is
    // kept for a quick reuse; its header is invalid, so a second free is a
    // double free: misuse.rs `double_free_span_at_once`).
    assert!(hakmem::owns(a), "a stashed span is still hakmem's memory");
    let b = hakmem::malloc(SPAN);
    assert_eq!(a, b, "the stashed mapping serves the next span request");
    let s1 = hakmem::stats();
    assert_eq!(s1.large_allocs - s0.large_allocs, 2, "both requests count");
    assert_eq!(s1.large_frees - s0.large_frees, 1);

    // calloc from the stash still reads zero.
    // SAFETY: live span; freed once.
    unsafe {
        b.write_bytes(0xAB, SPAN);
        hakmem::free(b);
    }
    let z = hakmem::calloc(SPAN);
    assert_eq!(z, b);
    // SAFETY: live span of SPAN bytes.
    let bytes = unsafe { std::slice::from_raw_parts(z, SPAN) };
    assert!(
        bytes.iter().all(|&x| x == 0),
        "calloc from the stash not zeroed"
    );
    // SAFETY: freed once.
    unsafe { hakmem::free(z) };

    // A second free while one is stashed sends the older one to the
    // shared cache; the frees are counted once each.
    let c = hakmem::malloc(SPAN);
    let d = hakmem::malloc(SPAN);
    let s2 = hakmem::stats();
    // SAFETY: each freed once.
    unsafe {
        hakmem::free(c);
        hakmem::free(d);
    }
    let s3 = hakmem::stats();
    assert_eq!(s3.large_frees - s2.large_frees, 2);
    assert!(
        s3.span_cache_bytes >= 2 << 20,
        "the older span went to the cache"
    );

    // Thread exit hands the stash back to the shared cache.
    hakmem::trim(); // empty cache, empty stash
    assert_eq!(hakmem::stats().span_cache_bytes, 0);
    std::thread::spawn(|| {
        let p = hakmem::malloc(SPAN);
        // SAFETY: live span, freed once (into this thread's stash).
        unsafe { hakmem::free(p) };
        assert_eq!(hakmem::stats().span_cache_bytes, 0, "kept in the stash");
    })
    .join()
    .unwrap();
    assert_eq!(
        hakmem::stats().span_cache_bytes,
        2 << 20,
        "the exiting thread handed its stashed span to the cache"
    );

    // trim() hands the calling thread's stash back too, and the cache to
    // the OS.
    let e = hakmem::malloc(SPAN);
    // SAFETY: freed once.
    unsafe { hakmem::free(e) };
    hakmem::trim();
    let s4 = hakmem::stats();
    assert_eq!(s4.span_cache_bytes, 0);
    assert_eq!(
        s4.large_allocs - s4.large_frees,
        s0.large_allocs - s0.large_frees
    );
}
