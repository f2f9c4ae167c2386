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
        lookups_before_the_table_exists_answer_none_and_the_first_mapping_creates_it as fn()
            as usize,
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
    // Neither the table nor a small heap's superslab takes huge pages
    // (with THP in `always` mode each would hold 2 MiB at its first touch).
    if std::path::Path::new("/sys/kernel/mm/transparent_hugepage/enabled").exists() {
        assert!(
            vm_flags(start).split_whitespace().any(|f| f == "nh"),
            "superslab"
        );
        let table = table_mapping_address();
        assert!(
            vm_flags(table).split_whitespace().any(|f| f == "nh"),
            "table"
        );
    }
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

/// The `VmFlags` line of the mapping holding `p` (/proc/self/smaps).
fn vm_flags(p: usize) -> String {
    let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
    let mut inside = false;
    for line in smaps.lines() {
        let head = line.split_whitespace().next().unwrap_or("");
        if let Some((a, b)) = head.split_once('-') {
            if let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) {
                inside = a <= p && p < b;
                continue;
            }
        }
        if inside {
            if let Some(f) = line.strip_prefix("VmFlags:") {
                return f.into();
            }
        }
    }
    panic!("no mapping holds {p:#x}");
}

/// An address inside the registry's table: the start of the one mapping of
/// at least its 128 MiB (the kernel may have merged a neighbouring
/// superslab into it, which has the same flags).
fn table_mapping_address() -> usize {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
    for line in maps.lines() {
        let head = line.split_whitespace().next().unwrap_or("");
        if let Some((a, b)) = head.split_once('-') {
            let (a, b) = (
                usize::from_str_radix(a, 16).unwrap(),
                usize::from_str_radix(b, 16).unwrap(),
            );
            if b - a >= 128 << 20 {
                return a;
            }
        }
    }
    panic!("no mapping of 128 MiB or more (the registry table)");
}
