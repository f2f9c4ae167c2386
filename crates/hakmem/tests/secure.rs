//! The secure mode from Rust: `HakMemSecure` as the global allocator of
//! this whole test binary (the harness's own allocations included), a
//! workload checked against a model, and the misuse the mode catches, each
//! in a child process (the binary runs itself, as in misuse.rs).

use std::alloc::{alloc, dealloc, realloc, Layout};
use std::collections::{BTreeMap, HashMap};
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

#[global_allocator]
static GLOBAL: hakmem::HakMemSecure = hakmem::HakMemSecure;

const CHILD: &str = "HAKMEM_SECURE_CHILD";

/// Runs test `case` of this binary alone in a child process, which takes
/// the misuse branch.
fn run_child(case: &str) -> std::process::Output {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", case, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .unwrap()
}

fn expect_abort(case: &str, needle: &str) {
    let out = run_child(case);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "{case}: {:?}\n{}\n{stderr}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    let line = stderr
        .lines()
        .rfind(|l| l.starts_with("hakmem: "))
        .unwrap_or_else(|| panic!("{case}: no diagnostic:\n{stderr}"));
    assert!(line.contains(needle), "{case}: {line:?} lacks {needle:?}");
}

macro_rules! secure_misuse {
    ($name:ident, $needle:expr, $body:block) => {
        #[test]
        fn $name() {
            if std::env::var_os(CHILD).is_some() {
                $body;
                println!("survived");
                std::process::exit(0);
            }
            expect_abort(stringify!($name), $needle);
        }
    };
}

fn l(n: usize) -> Layout {
    Layout::from_size_align(n, 8).unwrap()
}

/// `alloc` whose result the optimiser must treat as used: an allocation
/// that is freed and never read otherwise may be removed with its `dealloc`
/// (the global allocator's calls are known to LLVM), and in a release build
/// the misuse below then never reaches the allocator.
///
/// # Safety
/// As `alloc`.
unsafe fn alloc_kept(layout: Layout) -> *mut u8 {
    // SAFETY: forwarded from the caller.
    std::hint::black_box(unsafe { alloc(layout) })
}

/// `dealloc` of a pointer the optimiser cannot see through (see
/// `alloc_kept`).
///
/// # Safety
/// As `dealloc`, except that the misuse cases break it on purpose.
unsafe fn dealloc_kept(p: *mut u8, layout: Layout) {
    // SAFETY: forwarded from the caller.
    unsafe { dealloc(std::hint::black_box(p), layout) }
}

/// Every slab ends in a guard page: a write that runs off a small block's
/// slab faults there (SIGSEGV) instead of reaching the next slab.
#[test]
fn slabs_end_at_a_guard_page() {
    // SAFETY: sysconf has no preconditions.
    if unsafe { libc::sysconf(libc::_SC_PAGESIZE) } > 4096 {
        eprintln!("skipped: pages above 4 KiB, small slabs have no guard page");
        return;
    }
    if std::env::var_os(CHILD).is_some() {
        // SAFETY: none: the overflow is the misuse under test.
        unsafe {
            let p = alloc_kept(l(48));
            std::ptr::write_bytes(std::hint::black_box(p), 7, 1 << 17);
        }
        println!("overflow not stopped");
        std::process::exit(0);
    }
    let out = run_child("slabs_end_at_a_guard_page");
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGSEGV),
        "{:?}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_mode_is_on_and_blocks_are_zeroed_and_exact() {
    let v = std::hint::black_box(String::from("allocated before the check"));
    assert!(!v.is_empty());
    assert!(hakmem::secure_mode());
    for n in [1usize, 15, 16, 17, 100, 4000, 60_000] {
        // SAFETY: non-zero sizes; each block is checked and freed once.
        unsafe {
            let p = alloc(l(n));
            assert!(!p.is_null());
            assert_eq!(hakmem::usable_size(p), n);
            let s = std::slice::from_raw_parts_mut(p, n);
            assert!(s.iter().all(|&b| b == 0), "size {n}: not zeroed");
            s.fill(0xEE);
            dealloc(p, l(n));
        }
    }
}

/// Every hand-out is zeroed, whatever the alignment and tier, also when
/// the block is reused (found by the fuzz target alloc_ops_secure:
/// a 60000-byte block aligned to 4096).
#[test]
fn aligned_and_large_hand_outs_are_zeroed() {
    for align in [8usize, 64, 256, 4096] {
        for n in [1usize, 237, 5000, 60_000, 100_000, 300_000] {
            let lay = Layout::from_size_align(n, align).unwrap();
            for round in 0..3 {
                // SAFETY: non-zero size; each block is checked and freed once.
                unsafe {
                    let p = alloc(lay);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0);
                    let s = std::slice::from_raw_parts_mut(p, n);
                    if let Some(i) = s.iter().position(|&b| b != 0) {
                        panic!(
                            "size {n} align {align} round {round}: byte {i} is {:#x}",
                            s[i]
                        );
                    }
                    s.fill(0xA5);
                    dealloc(p, lay);
                }
            }
        }
    }
}

/// Spans are exact-sized (their usable size is the request: the gap before
/// the guard page is canary), and `realloc` of a span, which is never
/// resized in place in this mode, copies what the block held.
#[test]
fn spans_are_exact_and_realloc_keeps_their_bytes() {
    for n in [70_000usize, 100_000, 300_001, 2 << 20, (3 << 20) + 7] {
        // SAFETY: non-zero sizes; each block is checked and freed once.
        unsafe {
            let p = alloc(l(n));
            assert!(!p.is_null());
            assert_eq!(hakmem::usable_size(p), n, "span of {n}");
            for i in (0..n).step_by(4093).chain([n - 1]) {
                *p.add(i) = (i % 251) as u8;
            }
            let (mut cur, mut len) = (p, n);
            for m in [n + 5000, n / 2 + 1] {
                let q = realloc(cur, l(len), m);
                assert!(!q.is_null());
                assert_eq!(hakmem::usable_size(q), m, "{n} -> {m}");
                for i in (0..n.min(m)).step_by(4093) {
                    assert_eq!(*q.add(i), (i % 251) as u8, "{n} -> {m}: byte {i}");
                }
                (cur, len) = (q, m);
            }
            *cur.add(len - 1) = 1; // the last byte is usable
            dealloc(cur, l(len));
        }
    }
}

secure_misuse!(
    span_overflow_by_one_byte,
    "free(): buffer overflow past the end of block",
    {
        // SAFETY: a non-zero size.
        let p = std::hint::black_box(unsafe { alloc(l(300_001)) });
        // SAFETY: the first byte past the request: a canary byte before the
        // guard page (the misuse under test).
        unsafe {
            p.add(300_001).write_volatile(1);
            dealloc_kept(p, l(300_001));
        }
    }
);

/// A mixed workload over threads, compared with a model of what every live
/// block must hold; the checks must never fire on correct use.
#[test]
fn correct_programs_run_clean() {
    let handles: Vec<_> = (0..4u64)
        .map(|t| {
            std::thread::spawn(move || {
                let mut live: BTreeMap<usize, (Vec<u8>, Box<[u8]>)> = BTreeMap::new();
                let mut h: HashMap<u64, String> = HashMap::new();
                let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ t;
                for i in 0..20_000usize {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let n = (x % 3000) as usize + 1;
                    let fill = (x >> 32) as u8;
                    live.insert(
                        i,
                        (vec![fill; n], vec![fill; n % 97 + 1].into_boxed_slice()),
                    );
                    h.insert(x % 512, format!("{i}-{n}"));
                    if live.len() > 300 {
                        let k = *live.keys().next().unwrap();
                        let (a, b) = live.remove(&k).unwrap();
                        assert!(a.iter().all(|&c| c == a[0]));
                        assert!(b.iter().all(|&c| c == a[0]));
                    }
                }
                live.len() + h.len()
            })
        })
        .collect();
    for j in handles {
        assert!(j.join().unwrap() > 0);
    }
    // realloc keeps the contents across sizes and tiers.
    // SAFETY: one live block resized and freed once.
    unsafe {
        let mut p = alloc(l(10));
        p.write_bytes(3, 10);
        let mut n = 10;
        for m in [20usize, 7, 5000, 100_000, 300] {
            p = realloc(p, l(n), m);
            let s = std::slice::from_raw_parts(p, n.min(m));
            assert!(s.iter().all(|&b| b == 3), "realloc {n} -> {m}");
            std::slice::from_raw_parts_mut(p, m).fill(3);
            n = m;
        }
        dealloc(p, l(n));
    }
}

secure_misuse!(overflow_by_one_byte, "free(): buffer overflow", {
    // SAFETY: deliberately one byte past the block.
    unsafe {
        let p = alloc_kept(l(40));
        p.add(40).write_volatile(1);
        dealloc_kept(p, l(40));
    }
});

secure_misuse!(
    underflow_by_one_byte,
    "free(): invalid pointer or heap corruption before the block",
    {
        // SAFETY: deliberately one byte before the block. The byte is
        // changed, whatever it held (it is part of the per-process random
        // live word: writing a fixed value would leave it as it was once
        // in 256 runs, which corrupts nothing and cannot be seen).
        unsafe {
            let p = alloc_kept(l(40));
            p.sub(1).write_volatile(p.sub(1).read_volatile() ^ 1);
            dealloc_kept(p, l(40));
        }
    }
);

secure_misuse!(write_after_free, "malloc(): write after free", {
    // SAFETY: deliberately a write into a freed block.
    unsafe {
        let p = alloc_kept(l(300));
        dealloc_kept(p, l(300));
        p.add(200).write_volatile(9);
        for _ in 0..1000 {
            let q = alloc_kept(l(300));
            dealloc_kept(q, l(300));
        }
    }
});

secure_misuse!(double_free, "free(): double free of", {
    // SAFETY: deliberately freed twice.
    unsafe {
        let p = alloc_kept(l(64));
        dealloc_kept(p, l(64));
        dealloc_kept(p, l(64));
    }
});

secure_misuse!(interior_free_by_the_owner, "free(): invalid pointer", {
    // SAFETY: deliberately an interior pointer.
    unsafe {
        let p = alloc_kept(l(64));
        dealloc_kept(p.add(16), l(48));
    }
});
