//! Multi-thread stress on hakmem's raw API, in the style of mimalloc's
//! `test-stress` and larson: 8 threads per round, several rounds with the
//! threads torn down and recreated between them, a shared transfer array of
//! `AtomicPtr` slots swapped atomically (so a large share of frees are
//! cross-thread, and frees after the allocating thread exited), and every
//! block value-checked on free.
//!
//! Blocks carry no header of the test's own: the first 8 bytes hold a
//! cookie (size in bits 0..24, allocating thread in bits 24..32, random
//! bits above) and the rest a pattern derived from the cookie and the
//! offset. The test binary's own allocations use `System`, so only these
//! blocks live in hakmem.

mod common;

use std::sync::atomic::Ordering::{AcqRel, Relaxed};
use std::sync::atomic::{AtomicPtr, AtomicU64};
use std::sync::{Arc, Mutex};

use common::{find_mismatch, Rng};

const THREADS: usize = 8;
const ROUNDS: usize = 8;
const OPS_PER_THREAD: usize = 10_000;
const TRANSFER_SLOTS: usize = 1024;
const LOCAL_SLOTS: usize = 256;
const MAX_LARGE: usize = 1 << 20;

struct Shared {
    transfer: Vec<AtomicPtr<u8>>,
    mismatches: AtomicU64,
    first_errors: Mutex<Vec<String>>,
    frees: AtomicU64,
    cross_thread_frees: AtomicU64,
    after_exit_frees: AtomicU64,
}

/// Mostly tiny (93 %: 8..=1024), some mid (6.7 %: up to 64 KiB), a few
/// large (0.3 %: up to 1 MiB).
fn pick_size(rng: &mut Rng) -> usize {
    let r = rng.below(1000);
    if r < 930 {
        rng.range(8, 1024)
    } else if r < 997 {
        rng.range(1025, 65_536)
    } else {
        rng.range(65_537, MAX_LARGE)
    }
}

fn make_cookie(rng: &mut Rng, size: usize, thread: usize) -> u64 {
    (rng.next_u64() & !0xFFFF_FFFF) | ((thread as u64 & 0xFF) << 24) | size as u64
}

/// Writes the cookie and the fill of a fresh block.
///
/// # Safety
/// `p` has at least `size >= 8` writable bytes.
unsafe fn stamp(p: *mut u8, size: usize, cookie: u64) {
    // SAFETY: caller contract.
    unsafe {
        (p as *mut u64).write_unaligned(cookie);
        common::fill(p.add(8), size - 8, cookie);
    }
}

impl Shared {
    fn report(&self, msg: String) {
        self.mismatches.fetch_add(1, Relaxed);
        let mut v = self.first_errors.lock().unwrap_or_else(|e| e.into_inner());
        if v.len() < 16 {
            v.push(msg);
        }
    }

    /// Checks a block; returns its size when it is intact.
    ///
    /// # Safety
    /// `p` is a live block stamped by this test.
    unsafe fn check(&self, p: *mut u8, me: usize, what: &str) -> Option<usize> {
        // SAFETY: every stamped block has at least 8 bytes.
        let cookie = unsafe { (p as *const u64).read_unaligned() };
        let size = (cookie & 0xFF_FFFF) as usize;
        let owner = ((cookie >> 24) & 0xFF) as usize;
        let usable = hakmem::usable_size(p);
        if !(8..=MAX_LARGE).contains(&size) || usable < size {
            self.report(format!(
                "{what}: thread {me}: block {p:p} has a corrupt cookie {cookie:#018x} \
                 (size {size}, usable_size {usable})"
            ));
            return None;
        }
        // SAFETY: the block holds `size` bytes.
        if let Some((off, got)) = unsafe { find_mismatch(p.add(8), size - 8, cookie) } {
            self.report(format!(
                "{what}: thread {me}: block {p:p} (size {size}, allocated by thread {owner}) \
                 corrupted at offset {}: found {got:#04x}, expected {:#04x}",
                off + 8,
                common::pattern_byte(cookie, off)
            ));
            return None;
        }
        Some(owner)
    }

    /// Verifies and frees a block. Corrupt blocks are leaked, not freed.
    ///
    /// # Safety
    /// `p` is a live block stamped by this test; the caller gives it up.
    unsafe fn retire(&self, p: *mut u8, me: usize, round_first: usize, what: &str) {
        // SAFETY: forwarded contract.
        let Some(owner) = (unsafe { self.check(p, me, what) }) else {
            return;
        };
        self.frees.fetch_add(1, Relaxed);
        if owner != me {
            self.cross_thread_frees.fetch_add(1, Relaxed);
        }
        if owner < round_first {
            self.after_exit_frees.fetch_add(1, Relaxed);
        }
        // SAFETY: forwarded contract.
        unsafe { hakmem::free(p) };
    }
}

fn worker(sh: &Shared, me: usize, round_first: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut local: Vec<*mut u8> = vec![std::ptr::null_mut(); LOCAL_SLOTS];
    for _ in 0..OPS_PER_THREAD {
        let action = rng.below(100);
        if action < 5 {
            // Realloc a local block to a new size (often another tier).
            let j = rng.below(LOCAL_SLOTS);
            let p = local[j];
            if p.is_null() {
                continue;
            }
            // SAFETY: `p` is our live stamped block.
            let Some(_) = (unsafe { sh.check(p, me, "before realloc") }) else {
                local[j] = std::ptr::null_mut();
                continue;
            };
            // SAFETY: as above.
            let old_cookie = unsafe { (p as *const u64).read_unaligned() };
            let old_size = (old_cookie & 0xFF_FFFF) as usize;
            let new_size = pick_size(&mut rng);
            // SAFETY: `p` is live; we give it up to realloc.
            let q = unsafe { hakmem::realloc(p, new_size) };
            assert!(
                !q.is_null(),
                "realloc({old_size} -> {new_size}) returned null"
            );
            // SAFETY: the common prefix must have been preserved.
            unsafe {
                let keep = old_size.min(new_size);
                if (q as *const u64).read_unaligned() != old_cookie {
                    sh.report(format!(
                        "realloc {old_size} -> {new_size}: cookie lost at {q:p}"
                    ));
                } else if let Some((off, got)) = find_mismatch(q.add(8), keep - 8, old_cookie) {
                    sh.report(format!(
                        "realloc {old_size} -> {new_size}: {q:p} differs at offset {} \
                         (found {got:#04x})",
                        off + 8
                    ));
                }
            }
            let cookie = make_cookie(&mut rng, new_size, me);
            // SAFETY: `q` holds `new_size` bytes.
            unsafe { stamp(q, new_size, cookie) };
            local[j] = q;
            continue;
        }
        if action < 10 {
            // Free a local block without replacing it.
            let j = rng.below(LOCAL_SLOTS);
            let p = std::mem::replace(&mut local[j], std::ptr::null_mut());
            if !p.is_null() {
                // SAFETY: our live stamped block, given up here.
                unsafe { sh.retire(p, me, round_first, "local free") };
            }
            continue;
        }
        let size = pick_size(&mut rng);
        let p = hakmem::malloc(size);
        assert!(!p.is_null(), "malloc({size}) returned null");
        assert_eq!(p as usize % 16, 0, "malloc({size}) = {p:p} not 16-aligned");
        let cookie = make_cookie(&mut rng, size, me);
        // SAFETY: `p` holds `size` bytes.
        unsafe { stamp(p, size, cookie) };
        let old = if action < 60 {
            // Hand it over: whoever takes this slot frees it.
            let j = rng.below(TRANSFER_SLOTS);
            sh.transfer[j].swap(p, AcqRel)
        } else {
            let j = rng.below(LOCAL_SLOTS);
            std::mem::replace(&mut local[j], p)
        };
        if !old.is_null() {
            // SAFETY: a live stamped block that is now ours alone.
            unsafe { sh.retire(old, me, round_first, "replace") };
        }
    }
    for p in local {
        if !p.is_null() {
            // SAFETY: our live stamped block.
            unsafe { sh.retire(p, me, round_first, "thread end") };
        }
    }
}

#[test]
fn cross_thread_stress_with_value_checks() {
    let sh = Arc::new(Shared {
        transfer: (0..TRANSFER_SLOTS)
            .map(|_| AtomicPtr::new(std::ptr::null_mut()))
            .collect(),
        mismatches: AtomicU64::new(0),
        first_errors: Mutex::new(Vec::new()),
        frees: AtomicU64::new(0),
        cross_thread_frees: AtomicU64::new(0),
        after_exit_frees: AtomicU64::new(0),
    });
    let before = hakmem::stats();
    for round in 0..ROUNDS {
        let round_first = round * THREADS;
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let sh = Arc::clone(&sh);
                let me = round_first + t;
                std::thread::spawn(move || {
                    worker(&sh, me, round_first, 0xA110C ^ ((me as u64) << 20))
                })
            })
            .collect();
        for h in handles {
            h.join().expect("stress worker panicked");
        }
    }
    // Drain what the last round left in the transfer array (the main
    // thread's id, 255, is never an allocating thread).
    for slot in &sh.transfer {
        let p = slot.swap(std::ptr::null_mut(), AcqRel);
        if !p.is_null() {
            // SAFETY: a live stamped block, now ours alone.
            unsafe { sh.retire(p, 255, ROUNDS * THREADS, "final drain") };
        }
    }
    let after = hakmem::stats();
    let errors = sh.first_errors.lock().unwrap().clone();
    let mismatches = sh.mismatches.load(Relaxed);
    let frees = sh.frees.load(Relaxed);
    let cross = sh.cross_thread_frees.load(Relaxed);
    let after_exit = sh.after_exit_frees.load(Relaxed);
    let remote = after.remote_frees - before.remote_frees;
    println!(
        "stress: {frees} checked frees, {cross} cross-thread ({after_exit} after the allocating \
         thread exited), {remote} hakmem remote frees, {} adopted slabs, {} superslabs mapped",
        after.adopted_slabs - before.adopted_slabs,
        after.superslabs
    );
    assert_eq!(
        mismatches,
        0,
        "{mismatches} corrupted blocks; first ones:\n{}",
        errors.join("\n")
    );
    assert!(
        cross > frees / 10,
        "only {cross} of {frees} frees were cross-thread: the test lost its teeth"
    );
    assert!(
        after_exit > 0,
        "no block was freed after its allocating thread exited"
    );
    assert!(
        remote > 0,
        "hakmem::stats().remote_frees did not move: remote path not exercised"
    );
    assert!(
        after.adopted_slabs > before.adopted_slabs,
        "no slab was adopted although threads exited with live blocks"
    );
}
