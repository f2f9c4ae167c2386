//! The pool/span threshold is a policy value: moving it routes requests
//! above it to spans, with no change to the fast path.

#[test]
fn threshold_routes_sizes_to_spans_and_back() {
    assert_eq!(hakmem::span_threshold(), 65536, "documented default");
    let spans = |s: &hakmem::Stats| s.large_allocs;
    let before = spans(&hakmem::stats());
    let small = hakmem::malloc(8000);
    assert_eq!(
        spans(&hakmem::stats()),
        before,
        "8000 B is a slab block by default"
    );

    hakmem::set_span_threshold(4096);
    assert_eq!(hakmem::span_threshold(), 4096);
    let big = hakmem::malloc(8000);
    assert!(!big.is_null());
    assert_eq!(
        spans(&hakmem::stats()),
        before + 1,
        "above the threshold: a span"
    );
    assert!(hakmem::usable_size(big) >= 8000);
    let mid = hakmem::malloc(4000);
    assert_eq!(
        spans(&hakmem::stats()),
        before + 1,
        "at or below it: a slab block"
    );
    // SAFETY: live blocks, written then freed once.
    unsafe {
        std::ptr::write_bytes(big, 0x5A, 8000);
        std::ptr::write_bytes(small, 0x5A, 8000);
        // A block allocated before the change still frees normally.
        hakmem::free(small);
        hakmem::free(big);
        hakmem::free(mid);
    }

    hakmem::set_span_threshold(65536);
    let again = hakmem::malloc(8000);
    assert_eq!(spans(&hakmem::stats()), before + 1, "back to slabs");
    // SAFETY: live block.
    unsafe { hakmem::free(again) };
}
