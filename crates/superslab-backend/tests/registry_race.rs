//! Threads racing to map the registry's table: exactly one table stays
//! mapped, and every thread comes back with it usable (registry.rs,
//! `reserve`). A process of its own, so that the table does not exist yet.

use std::sync::{Arc, Barrier};

use hakmem_superslab_backend::registry;

/// The bytes of the mappings of at least 128 MiB (the table; tables left
/// mapped by losers would merge with it into one larger mapping, having
/// the same flags, so bytes are counted, not mappings).
fn large_mapped_bytes() -> usize {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
    maps.lines()
        .filter_map(|l| l.split_whitespace().next()?.split_once('-'))
        .map(|(a, b)| usize::from_str_radix(b, 16).unwrap() - usize::from_str_radix(a, 16).unwrap())
        .filter(|&len| len >= 128 << 20)
        .sum()
}

#[test]
fn racing_threads_map_one_table_and_all_use_it() {
    let before = large_mapped_bytes();
    let n = 8;
    let go = Arc::new(Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let go = Arc::clone(&go);
            std::thread::spawn(move || {
                go.wait();
                assert!(registry::reserve(), "the table could not be mapped");
                // Usable at once: a lookup reads a real entry of it.
                assert_eq!(registry::kind_of(0x7000_0000_0000), registry::KIND_NONE);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(
        large_mapped_bytes(),
        before + (128 << 20),
        "the losers' tables must be unmapped"
    );
    assert!(registry::reserve(), "a later call finds it mapped");
    assert_eq!(large_mapped_bytes(), before + (128 << 20));
}
