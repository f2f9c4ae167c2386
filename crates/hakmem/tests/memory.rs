//! Returning memory: RSS falls after trim, memory reused after trim is
//! zeroed where calloc promises it, and slabs are never released while a
//! remote free can still touch them (the release guard).

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The tests here measure process-wide quantities: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn rss_bytes() -> usize {
    let s = std::fs::read_to_string("/proc/self/statm").expect("statm");
    let resident: usize = s.split_whitespace().nth(1).unwrap().parse().unwrap();
    resident * 4096
}

#[test]
fn rss_falls_after_free_and_trim() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    hakmem::trim();
    let start = rss_bytes();
    const PER_THREAD: usize = 96 << 20; // 192 MiB over two threads
    let handles: Vec<_> = (0..2)
        .map(|t| {
            std::thread::spawn(move || {
                let size = if t == 0 { 64 } else { 4096 };
                let n = PER_THREAD / size;
                let mut v: Vec<usize> = Vec::with_capacity(n);
                for i in 0..n {
                    let p = hakmem::malloc(size);
                    assert!(!p.is_null());
                    // SAFETY: fresh block of `size` bytes; touch every page.
                    unsafe {
                        *p = i as u8;
                        *p.add(size - 1) = i as u8;
                    }
                    v.push(p as usize);
                }
                v
            })
        })
        .collect();
    let blocks: Vec<Vec<usize>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let peak = rss_bytes();
    assert!(
        peak > start + (150 << 20),
        "the workload did not commit memory"
    );
    // The main thread frees everything (the owners have exited).
    for v in &blocks {
        for &p in v {
            // SAFETY: live blocks from above.
            unsafe { hakmem::free(p as *mut u8) };
        }
    }
    drop(blocks);
    let released = hakmem::trim();
    let after = rss_bytes();
    assert!(
        after < start + (16 << 20),
        "RSS after free+trim is {} MiB above the start ({} MiB at peak, {} MiB released by trim)",
        (after.saturating_sub(start)) >> 20,
        (peak - start) >> 20,
        released >> 20
    );
}

#[test]
fn calloc_after_trim_reads_zero() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for &size in &[24usize, 1000, 4000, 40_000, 3 << 20] {
        let ps: Vec<*mut u8> = (0..200)
            .map(|_| {
                let p = hakmem::malloc(size);
                // SAFETY: fresh block of `size` bytes.
                unsafe { std::ptr::write_bytes(p, 0xAB, size) };
                p
            })
            .collect();
        for p in ps {
            // SAFETY: live blocks.
            unsafe { hakmem::free(p) };
        }
        hakmem::trim();
        for _ in 0..200 {
            let p = hakmem::calloc(size);
            assert!(!p.is_null());
            // SAFETY: `size` readable bytes.
            let s = unsafe { std::slice::from_raw_parts(p, size) };
            assert!(
                s.iter().all(|&b| b == 0),
                "calloc({size}) after trim is dirty"
            );
            // SAFETY: live block.
            unsafe { hakmem::free(p) };
        }
    }
}

/// Owners allocate and hand every block to a freer thread through a slot
/// array while they themselves keep trimming (which releases empty slabs and
/// unmaps empty superslabs). If a slab could be released while a remote free
/// was still inside `remote_free`, the freer would write into released or
/// unmapped memory: a crash, or a corrupted value check on the owner side.
#[test]
fn no_release_while_remote_free_in_flight() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const SLOTS: usize = 256;
    let slots: Arc<Vec<AtomicPtr<u8>>> = Arc::new(
        (0..SLOTS)
            .map(|_| AtomicPtr::new(std::ptr::null_mut()))
            .collect(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let mismatches = Arc::new(AtomicUsize::new(0));
    let freer = {
        let (slots, stop, mismatches) = (slots.clone(), stop.clone(), mismatches.clone());
        std::thread::spawn(move || {
            let mut freed = 0u64;
            while !stop.load(Ordering::Relaxed)
                || slots.iter().any(|s| !s.load(Ordering::Relaxed).is_null())
            {
                for s in slots.iter() {
                    let p = s.swap(std::ptr::null_mut(), Ordering::AcqRel);
                    if !p.is_null() {
                        // SAFETY: the owner published a live 48-byte block
                        // whose first byte holds its tag and last its inverse.
                        unsafe {
                            if *p != !*p.add(47) {
                                mismatches.fetch_add(1, Ordering::Relaxed);
                            }
                            hakmem::free(p);
                        }
                        freed += 1;
                    }
                }
            }
            freed
        })
    };
    let owners: Vec<_> = (0..2)
        .map(|t| {
            let slots = slots.clone();
            std::thread::spawn(move || {
                for round in 0..40u32 {
                    let mut local = Vec::new();
                    for i in 0..2000usize {
                        let p = hakmem::malloc(48);
                        let tag = (i as u8) ^ (round as u8) ^ (t as u8);
                        // SAFETY: fresh 48-byte block.
                        unsafe {
                            *p = tag;
                            *p.add(47) = !tag;
                        }
                        if i % 2 == 0 {
                            let slot = &slots[(i / 2 + t * 7) % SLOTS];
                            // Hand over; wait for the slot to empty.
                            while slot
                                .compare_exchange(
                                    std::ptr::null_mut(),
                                    p,
                                    Ordering::AcqRel,
                                    Ordering::Relaxed,
                                )
                                .is_err()
                            {
                                std::thread::yield_now();
                            }
                        } else {
                            local.push(p);
                        }
                    }
                    for p in local {
                        // SAFETY: our own live blocks.
                        unsafe { hakmem::free(p) };
                    }
                    hakmem::trim();
                }
            })
        })
        .collect();
    for o in owners {
        o.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let freed = freer.join().unwrap();
    assert_eq!(freed, 2 * 40 * 1000);
    assert_eq!(mismatches.load(Ordering::Relaxed), 0);
    assert!(hakmem::stats().remote_frees > 0);
}

/// A cache flush counts the blocks of each run of one slab back with one
/// `used -= run` (refill-engine's `flush`). Frees that interleave many
/// slabs make the runs short and alternate between slabs. An undercount
/// would keep emptied slabs from going back (caught: the 2 KiB blocks
/// allocated after the 1 KiB ones were freed then need new superslabs);
/// an overcount would release a slab whose blocks are still live or
/// cached (caught by the value checks and the overlap check).
#[test]
fn interleaved_flushes_count_every_slab_back() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    std::thread::spawn(|| {
        const N: usize = 4096; // 1 KiB blocks: 64 slabs of 64 KiB
        for round in 0..8usize {
            let v: Vec<usize> = (0..N)
                .map(|i| {
                    let p = hakmem::malloc(1024);
                    assert!(!p.is_null());
                    // SAFETY: fresh 1 KiB block.
                    unsafe { std::ptr::write_bytes(p, (i ^ round) as u8, 1024) };
                    p as usize
                })
                .collect();
            let mut sorted = v.clone();
            sorted.sort_unstable();
            assert!(sorted.windows(2).all(|w| w[1] - w[0] >= 1024), "overlap");
            let full = hakmem::stats().superslabs;
            // Stride 67 (coprime with N): consecutive frees hit different
            // slabs, a few blocks apart.
            for k in 0..N {
                let i = (k * 67) % N;
                let p = v[i] as *mut u8;
                // SAFETY: a live 1 KiB block written above.
                unsafe {
                    assert_eq!(*p, (i ^ round) as u8, "block {i} changed");
                    assert_eq!(*p.add(1023), (i ^ round) as u8, "block {i} changed");
                }
                // SAFETY: allocated above, freed once.
                unsafe { hakmem::free(p) };
            }
            hakmem::trim();
            // The same bytes in another class fit in the slabs just given
            // back.
            let w: Vec<*mut u8> = (0..N / 2)
                .map(|_| {
                    let q = hakmem::malloc(2048);
                    assert!(!q.is_null());
                    // SAFETY: fresh 2 KiB block.
                    unsafe { std::ptr::write_bytes(q, 0xEE, 2048) };
                    q
                })
                .collect();
            let other = hakmem::stats().superslabs;
            assert!(
                other <= full,
                "round {round}: {other} superslabs for the 2 KiB blocks, {full} held the 1 KiB ones"
            );
            for q in w {
                // SAFETY: allocated above, freed once.
                unsafe { hakmem::free(q) };
            }
            hakmem::trim();
        }
    })
    .join()
    .unwrap();
}
