//! The registry's table is mapped on first use, not carried in `.bss`
//! (registry.rs, `reserve`). A process of its own, so that nothing has
//! mapped the table before the first assertions run.

use hakmem_superslab_backend::{acquire_slab, registry, release_slab, span_alloc, span_free};

#[test]
fn lookups_before_the_table_exists_answer_none_and_the_first_mapping_creates_it() {
    // Before any superslab or span: every address (null, the stack, this
    // code, an address above 2^47) is nobody's, and a scan sees nothing.
    let local = 0u64;
    let probes = [
        0usize,
        &local as *const u64 as usize,
        lookups_before_the_table_exists_answer_none_and_the_first_mapping_creates_it as usize,
        1 << 50,
        usize::MAX,
    ];
    for p in probes {
        assert_eq!(registry::kind_of(p), registry::KIND_NONE, "{p:#x}");
    }
    let mut seen = 0;
    registry::for_each(|_, _| seen += 1);
    assert_eq!(seen, 0, "a scan before the table exists");

    // The first superslab maps the table and is recorded in it.
    let m = acquire_slab(0, 1, 0).expect("a slab");
    let start = m.data_start();
    assert!(registry::is_superslab(registry::kind_of(start)));
    registry::for_each(|_, k| seen += registry::is_superslab(k) as usize);
    assert_eq!(seen, 1, "the scan finds the one superslab");
    for p in probes {
        assert_eq!(registry::kind_of(p), registry::KIND_NONE, "{p:#x} after");
    }

    // A span is recorded in the same table.
    let s = span_alloc(1 << 20, 16, false);
    assert!(!s.is_null());
    let k = registry::kind_of(s as usize);
    assert!(k == registry::KIND_SPAN || k == registry::KIND_SPAN_ALIGNED);
    assert!(span_free(s));
    // SAFETY: the slab is ours, empty and unlisted.
    unsafe { release_slab(m) };
}
