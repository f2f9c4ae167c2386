//! Misuse of the free boundary through `GlobalAlloc` and the raw API: every
//! double free (each tier, same thread, other thread, after other
//! allocations, interleaved, after the block left the thread cache) and
//! every invalid pointer must stop the process with one line naming the
//! call and the pointer, and SIGABRT — as glibc does.
//!
//! Each case runs in a child process: the test binary runs itself with
//! `--exact <case>` and `HAKMEM_MISUSE_CHILD=1`, the child performs the
//! misuse, and the parent checks the signal and the diagnostic. A child
//! that survives the misuse prints `survived` and exits 0, which fails the
//! parent's assertion — the checks must catch the fault, or the test fails.

use std::alloc::{GlobalAlloc, Layout, System};
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use hakmem::HakMem;

const CHILD: &str = "HAKMEM_MISUSE_CHILD";

fn in_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

/// Runs `case` (this test's own name) in a child and returns its stderr
/// after asserting that it died of SIGABRT.
fn expect_abort(case: &str, env: &[(&str, &str)], needle: &str) -> String {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", case, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "{case}: expected SIGABRT, got {:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        out.status
    );
    let line = stderr
        .lines()
        .rfind(|l| l.starts_with("hakmem: "))
        .unwrap_or_else(|| panic!("{case}: no hakmem diagnostic; stderr:\n{stderr}"));
    assert!(
        line.contains(needle) && line.contains(" 0x"),
        "{case}: diagnostic {line:?} lacks {needle:?}"
    );
    stderr
}

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 16).unwrap()
}

fn alloc(size: usize) -> *mut u8 {
    // SAFETY: non-zero size.
    let p = unsafe { HakMem.alloc(layout(size)) };
    assert!(!p.is_null());
    // SAFETY: `size` bytes; the program writes its block as programs do.
    unsafe { p.write_bytes(0xA5, size) };
    p
}

fn dealloc(p: *mut u8, size: usize) {
    // SAFETY: deliberately violated by the cases (that is the point); the
    // allocator must stop the process instead of corrupting it.
    unsafe { HakMem.dealloc(p, layout(size)) }
}

/// The child's end when the misuse was not caught.
fn survived() -> ! {
    println!("survived");
    std::process::exit(0)
}

macro_rules! misuse {
    ($(#[$doc:meta])* $name:ident, $needle:expr, $env:expr, $body:block) => {
        $(#[$doc])*
        #[test]
        fn $name() {
            if in_child() {
                $body;
                survived();
            }
            expect_abort(stringify!($name), $env, $needle);
        }
    };
}

const TINY: usize = 48;
const MID: usize = 8 * 1024;
const SPAN: usize = 300 * 1024;

misuse!(double_free_tiny_at_once, "free(): double free of", &[], {
    let p = alloc(TINY);
    dealloc(p, TINY);
    dealloc(p, TINY);
});

misuse!(double_free_mid_at_once, "free(): double free of", &[], {
    let p = alloc(MID);
    dealloc(p, MID);
    dealloc(p, MID);
});

misuse!(double_free_span_at_once, "free(): double free of", &[], {
    let p = alloc(SPAN);
    dealloc(p, SPAN);
    dealloc(p, SPAN);
});

misuse!(
    /// A span whose mapping went on to the shared cache (another span was
    /// freed after it) is found there by the second free.
    double_free_span_after_another_span,
    "free(): double free of",
    &[],
    {
        let p = alloc(SPAN);
        let q = alloc(SPAN);
        dealloc(p, SPAN);
        dealloc(q, SPAN);
        dealloc(p, SPAN);
    }
);

misuse!(
    double_free_tiny_after_other_allocations,
    "free(): double free of",
    &[],
    {
        let p = alloc(TINY);
        dealloc(p, TINY);
        let others: Vec<*mut u8> = [16, 100, 1000, 5000, 70_000]
            .iter()
            .map(|&n| alloc(n))
            .collect();
        dealloc(p, TINY);
        std::hint::black_box(others);
    }
);

misuse!(
    double_free_interleaved_a_b_a,
    "free(): double free of",
    &[],
    {
        let a = alloc(TINY);
        let b = alloc(TINY);
        dealloc(a, TINY);
        dealloc(b, TINY);
        dealloc(a, TINY);
    }
);

misuse!(
    /// After the first free the block leaves the thread cache (thousands of
    /// frees of its class flush it back to its slab's free list).
    double_free_after_the_cache_flushed,
    "free(): double free of",
    &[],
    {
        let many: Vec<*mut u8> = (0..5000).map(|_| alloc(TINY)).collect();
        let p = many[10];
        for &q in &many {
            dealloc(q, TINY);
        }
        dealloc(p, TINY);
    }
);

fn in_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f).join().unwrap()
}

misuse!(
    double_free_first_by_another_thread,
    "free(): double free of",
    &[],
    {
        for size in [TINY, MID] {
            let p = alloc(size) as usize;
            in_thread(move || dealloc(p as *mut u8, size));
            dealloc(p as *mut u8, size);
        }
    }
);

misuse!(
    double_free_second_by_another_thread,
    "free(): double free of",
    &[],
    {
        let p = alloc(MID) as usize;
        dealloc(p as *mut u8, MID);
        in_thread(move || dealloc(p as *mut u8, MID));
    }
);

misuse!(
    double_free_by_two_other_threads,
    "free(): double free of",
    &[],
    {
        let p = alloc(TINY) as usize;
        in_thread(move || dealloc(p as *mut u8, TINY));
        in_thread(move || dealloc(p as *mut u8, TINY));
    }
);

misuse!(
    double_free_of_an_aligned_block,
    "free(): double free of",
    &[],
    {
        let l = Layout::from_size_align(200, 256).unwrap();
        // SAFETY: non-zero size.
        let p = unsafe { HakMem.alloc(l) };
        // SAFETY: deliberately freed twice.
        unsafe {
            HakMem.dealloc(p, l);
            HakMem.dealloc(p, l);
        }
    }
);

misuse!(free_of_a_stack_address, "free(): invalid pointer", &[], {
    let _warm = alloc(TINY);
    let mut x = [0u64; 8];
    dealloc(x.as_mut_ptr() as *mut u8, 64);
    std::hint::black_box(&mut x);
});

static STATIC_BUF: [u64; 8] = [0; 8];

misuse!(free_of_static_data, "free(): invalid pointer", &[], {
    dealloc(STATIC_BUF.as_ptr() as *mut u8, 64);
});

misuse!(free_of_a_small_integer, "free(): invalid pointer", &[], {
    dealloc(0x10 as *mut u8, 16);
});

misuse!(
    free_of_another_allocators_block,
    "free(): invalid pointer",
    &[],
    {
        // SAFETY: non-zero size.
        let p = unsafe { System.alloc(layout(64)) };
        dealloc(p, 64);
    }
);

misuse!(
    free_far_outside_every_mapping,
    "free(): invalid pointer",
    &[],
    {
        let p = alloc(TINY);
        dealloc(p.wrapping_add(64 << 20), TINY);
    }
);

misuse!(free_of_a_span_interior, "free(): invalid pointer", &[], {
    let p = alloc(SPAN);
    dealloc(p.wrapping_add(4096), SPAN);
});

misuse!(
    free_of_a_superslab_header,
    "free(): invalid pointer",
    &[],
    {
        let p = alloc(TINY);
        dealloc(
            ((p as usize & !(2 * 1024 * 1024 - 1)) + 64) as *mut u8,
            TINY,
        );
    }
);

misuse!(
    /// An interior pointer freed by a thread that does not own the slab is
    /// checked at once (the remote path validates block starts).
    free_of_an_interior_pointer_by_another_thread,
    "free(): invalid pointer",
    &[],
    {
        let p = alloc(TINY) as usize;
        in_thread(move || dealloc((p + 16) as *mut u8, TINY));
    }
);

misuse!(
    free_of_a_misaligned_pointer_by_another_thread,
    "free(): invalid pointer",
    &[],
    {
        let p = alloc(MID) as usize;
        in_thread(move || dealloc((p + 1) as *mut u8, MID));
    }
);

misuse!(
    /// The owning thread's free fast path does not divide by the stride, so
    /// an interior pointer it frees is caught when it leaves the cache (the
    /// flush checks every block start) — see docs/security.md for why.
    free_of_an_interior_pointer_by_the_owner_is_caught_at_the_flush,
    "free(): invalid pointer",
    &[],
    {
        let many: Vec<*mut u8> = (0..5000).map(|_| alloc(TINY)).collect();
        dealloc(many[0].wrapping_add(16), TINY);
        for &q in &many[1..] {
            dealloc(q, TINY);
        }
    }
);

misuse!(
    realloc_of_a_freed_block,
    "realloc(): pointer already freed",
    &[],
    {
        let p = alloc(TINY);
        dealloc(p, TINY);
        // SAFETY: deliberately a freed block.
        unsafe { HakMem.realloc(p, layout(TINY), 500) };
    }
);

misuse!(
    realloc_of_an_interior_pointer,
    "realloc(): invalid pointer",
    &[],
    {
        let p = alloc(TINY);
        // SAFETY: deliberately an interior pointer.
        unsafe { hakmem::realloc(p.wrapping_add(16), 500) };
    }
);

misuse!(
    usable_size_of_a_freed_block,
    "malloc_usable_size(): pointer already freed",
    &[],
    {
        let p = alloc(MID);
        dealloc(p, MID);
        std::hint::black_box(hakmem::usable_size(p));
    }
);

misuse!(
    /// A freed span kept in the thread's stash keeps its registry entry
    /// (for a quick reuse) with its header invalidated: asking its size is
    /// still a use of a freed pointer.
    usable_size_of_a_stashed_span,
    "malloc_usable_size(): pointer already freed",
    &[],
    {
        let p = alloc(SPAN);
        dealloc(p, SPAN);
        std::hint::black_box(hakmem::usable_size(p));
    }
);

misuse!(
    realloc_of_a_stashed_span,
    "realloc(): pointer already freed",
    &[],
    {
        let p = alloc(SPAN);
        dealloc(p, SPAN);
        // SAFETY: deliberately a freed span.
        unsafe { HakMem.realloc(p, layout(SPAN), 500_000) };
    }
);

misuse!(
    /// `HAKMEM_FOREIGN_FREE=ignore` lets pointers of no hakmem mapping
    /// through (they are reported and leaked), but never a double free.
    ignore_mode_still_stops_double_frees,
    "free(): double free of",
    &[("HAKMEM_FOREIGN_FREE", "ignore")],
    {
        let mut x = [0u64; 4];
        dealloc(x.as_mut_ptr() as *mut u8, 32);
        let p = alloc(TINY);
        dealloc(p, TINY);
        dealloc(p, TINY);
    }
);

/// With `HAKMEM_FOREIGN_FREE=ignore`, frees of a stack address and of a
/// `System` block are reported, nothing is written, and the allocator goes
/// on working.
#[test]
fn ignore_mode_reports_and_leaves_foreign_pointers_alone() {
    if in_child() {
        let mut stack = [0x77u8; 256];
        // SAFETY: non-zero size.
        let sys = unsafe { System.alloc(layout(4096)) };
        // SAFETY: 4096 bytes.
        unsafe { sys.write_bytes(11, 4096) };
        dealloc(stack.as_mut_ptr().wrapping_add(64), 64);
        dealloc(sys, 64);
        assert!(stack.iter().all(|&b| b == 0x77), "wrote to the stack");
        // SAFETY: 4096 bytes of our System block.
        let s = unsafe { std::slice::from_raw_parts(sys, 4096) };
        assert!(s.iter().all(|&b| b == 11), "wrote to the System block");
        let live: Vec<*mut u8> = (0..1000).map(|i| alloc([16, 48, 9000][i % 3])).collect();
        for (i, &p) in live.iter().enumerate() {
            dealloc(p, [16, 48, 9000][i % 3]);
        }
        println!(
            "ignored {:x} {:x}",
            stack.as_ptr() as usize + 64,
            sys as usize
        );
        std::process::exit(0);
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([
            "--exact",
            "ignore_mode_reports_and_leaves_foreign_pointers_alone",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env("HAKMEM_FOREIGN_FREE", "ignore")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}\n{stdout}\n{stderr}", out.status);
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("ignored ").map(|(_, r)| r))
        .unwrap_or_else(|| panic!("child did not finish:\n{stdout}\n{stderr}"));
    for hex in line.split_whitespace() {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains("ignored") && l.contains(hex)),
            "no report for 0x{hex}:\n{stderr}"
        );
    }
}

/// A bad value of `HAKMEM_FOREIGN_FREE` is reported and the default (stop)
/// is used.
#[test]
fn bad_foreign_free_setting_is_reported_and_the_default_used() {
    if in_child() {
        let mut x = [0u64; 4];
        dealloc(x.as_mut_ptr() as *mut u8, 32);
        survived();
    }
    let err = expect_abort(
        "bad_foreign_free_setting_is_reported_and_the_default_used",
        &[("HAKMEM_FOREIGN_FREE", "maybe")],
        "free(): invalid pointer",
    );
    assert!(
        err.contains("hakmem: HAKMEM_FOREIGN_FREE=maybe ignored"),
        "{err}"
    );
}

/// Correct programs never trip the checks: blocks whose second word the
/// program never writes (8-byte requests in 16-byte blocks), blocks handed
/// out by every path (cache pop, refill, carve, adoption by another
/// thread), and reused over and over, free cleanly.
#[test]
fn correct_use_never_trips_the_free_mark() {
    let mut rounds = Vec::new();
    for round in 0..20 {
        let v: Vec<usize> = (0..3000)
            .map(|i| {
                // SAFETY: non-zero sizes.
                let p = unsafe { HakMem.alloc(layout([8, 16, 24, 48, 8000][i % 5])) };
                assert!(!p.is_null());
                // Write only the first byte: the second word stays as the
                // allocator left it.
                // SAFETY: at least one byte.
                unsafe { *p = round as u8 };
                p as usize
            })
            .collect();
        rounds.push(v);
        if round % 2 == 1 {
            // Another thread frees half of the blocks of the last round.
            let v = rounds.pop().unwrap();
            in_thread(move || {
                for (i, &p) in v.iter().enumerate() {
                    dealloc(p as *mut u8, [8, 16, 24, 48, 8000][i % 5]);
                }
            });
        }
    }
    for v in rounds {
        for (i, &p) in v.iter().enumerate() {
            dealloc(p as *mut u8, [8, 16, 24, 48, 8000][i % 5]);
        }
    }
}

/// Plain data that looks like a superslab base never trips the free mark.
/// The mark is the base address of the block's superslab; when the first
/// superslab sat at 0x2000_0000_0000 (2^45) in every process, gcc's cc1
/// stored that round number in a live block and was stopped with a false
/// "double free". The bases are random per process now, so live blocks
/// holding the old fixed bases (and the 2 MiB steps after them) in their
/// second word free cleanly. (Fails on the fixed layout: the first block
/// of the first round carries 2^45 and lives in the superslab at 2^45.)
#[test]
fn round_addresses_in_live_blocks_never_trip_the_free_mark() {
    for base in [0x2000_0000_0000usize, 0x6000_0000_0000] {
        let v: Vec<(usize, usize)> = (0..4096)
            .map(|i| {
                let size = [16, 32, 64, 256, 1024, 8000][i % 6];
                let p = alloc(size);
                let word = base + (i % 64) * (2 << 20);
                // SAFETY: every block is at least 16 bytes: its second word
                // is the program's to write.
                unsafe { (p.add(8) as *mut usize).write(word) };
                (p as usize, size)
            })
            .collect();
        for &(p, size) in v.iter().rev() {
            dealloc(p as *mut u8, size);
        }
    }
}

/// The superslab base differs between processes (it is what makes the
/// free mark a value programs do not hold by chance).
#[test]
fn superslab_base_is_random_per_process() {
    const PRINT: &str = "HAKMEM_PRINT_FIRST_BLOCK";
    if std::env::var_os(PRINT).is_some() {
        let p = alloc(64);
        println!("block={:#x}", p as usize & !((2 << 20) - 1));
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let bases: std::collections::BTreeSet<String> = (0..4)
        .map(|_| {
            let out = Command::new(&exe)
                .args([
                    "--exact",
                    "superslab_base_is_random_per_process",
                    "--nocapture",
                ])
                .env(PRINT, "1")
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            stdout
                .lines()
                .find_map(|l| l.strip_prefix("block=").map(str::to_owned))
                .unwrap_or_else(|| panic!("child printed no block:\n{stdout}"))
        })
        .collect();
    assert!(
        bases.len() >= 3,
        "superslab bases repeat across processes: {bases:?}"
    );
}

/// A numeric setting that is not a number is reported in one line and the
/// default used; the allocator works.
#[test]
fn bad_numeric_setting_is_reported_and_the_default_used() {
    if in_child() {
        let p = alloc(100);
        dealloc(p, 100);
        println!("ran");
        std::process::exit(0);
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "bad_numeric_setting_is_reported_and_the_default_used",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env("HAKMEM_DECAY_MS", "abc")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}\n{stderr}", out.status);
    assert!(String::from_utf8_lossy(&out.stdout).contains("ran"));
    assert_eq!(
        stderr
            .lines()
            .filter(|l| *l == "hakmem: HAKMEM_DECAY_MS=abc ignored (not a number)")
            .count(),
        1,
        "{stderr}"
    );
}
