//! `glibc-simple`: the shape of glibc's `benchtests/bench-malloc-simple`
//! (also in mimalloc-bench as `glibc-simple`), for one block size.
//!
//! ```text
//! for each n in 25, 100, 400, 1600:
//!     repeat allocs/n times:
//!         allocate n blocks of `size` bytes, writing each byte by byte
//!         free the first half in allocation order,
//!         the second half in reverse order (newest first)
//! ```
//!
//! That sweep runs once untimed as a warm-up (glibc does the same), then,
//! timed: once in the main thread (glibc: main arena, single-threaded),
//! once in a second thread (a thread arena), and once more in the main
//! thread after that thread has exited (main arena with the process no
//! longer single-threaded). glibc's own version frees every block in
//! allocation order and writes nothing; mimalloc-bench's writes every
//! `int` of each block. This one writes every byte (a pattern the checks
//! read back: first and last byte of each block before its free) and frees
//! half of each batch newest-first, so that both LIFO and FIFO frees of a
//! thread cache are exercised. An op is one allocator call; the timed
//! region is the three timed sweeps, the thread's spawn and join included.

use std::alloc::{handle_alloc_error, GlobalAlloc, Layout};
use std::time::Instant;

use super::{corrupt, layout, Outcome, Params, MAX_SIZE};

/// The batch sizes of glibc's benchmark.
pub const BATCHES: [usize; 4] = [25, 100, 400, 1600];

/// Parameters of `glibc-simple`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlibcSimple {
    pub size: usize, // block size in bytes
    pub allocs: u64, // allocations per batch size and sweep (glibc: 200000)
}

impl GlibcSimple {
    pub(crate) fn params(&self) -> Vec<(&'static str, u64)> {
        vec![("size", self.size as u64), ("allocs", self.allocs)]
    }

    pub(crate) fn from_params(p: &mut Params) -> Result<GlibcSimple, String> {
        Ok(GlibcSimple {
            size: p.take_in("size", 16, 2, MAX_SIZE)?,
            allocs: p.take("allocs", 200_000),
        })
    }

    pub fn run<A: GlobalAlloc + Sync + 'static>(&self, a: &'static A) -> Outcome {
        let (size, allocs) = (self.size, self.allocs);
        // Warm-up, untimed.
        let (_, warm) = sweep(a, size, allocs, 0);
        let start = Instant::now();
        let (ops1, c1) = sweep(a, size, allocs, 1);
        let (ops2, c2) = std::thread::spawn(move || sweep(a, size, allocs, 2))
            .join()
            .expect("glibc-simple thread panicked");
        let (ops3, c3) = sweep(a, size, allocs, 3);
        let elapsed = start.elapsed();
        Outcome {
            ops: ops1 + ops2 + ops3,
            elapsed,
            check: warm
                .wrapping_add(c1)
                .wrapping_add(c2.rotate_left(1))
                .wrapping_add(c3.rotate_left(2)),
            rss_after_free_kib: None,
            phases: None,
        }
    }
}

/// Writes block `i`'s pattern into its `size` bytes at `p`, byte by byte
/// (as glibc's benchmark does). Out of line so that how the compiler
/// builds this loop (vectorised or not) does not depend on how much of the
/// allocator under test is inlined into `sweep`: with a few more inlined
/// instructions in `dealloc`, LLVM stopped inlining `sweep`'s free closure
/// and this loop, inlined, became scalar — three times the run time for
/// every allocator with an inlined `dealloc` (docs/benchmarks.md, "the
/// sized free").
///
/// # Safety
/// `p` is valid for writes of `size` bytes.
#[inline(never)]
unsafe fn fill(p: *mut u8, size: usize, s: u64, i: usize) {
    for k in 0..size {
        // SAFETY: caller contract.
        unsafe { p.add(k).write(pattern(s, i, k)) };
    }
}

/// Checks block `i`'s first and last bytes and frees it; returns the two
/// bytes' sum. A function always inlined, not a closure of `sweep`: whether
/// LLVM inlined such a closure depended on how much of the allocator's
/// `dealloc` is inlined, and a closure left out of line cost every free a
/// call (docs/benchmarks.md, "the sized free").
///
/// # Safety
/// `p` is the live block of slot `i` (at least 2 bytes, written by
/// [`fill`]), allocated from `a` with layout `l`; it is freed here.
#[inline(always)]
unsafe fn free_one<A: GlobalAlloc>(a: &A, l: Layout, s: u64, i: usize, p: *mut u8) -> u64 {
    let size = l.size();
    // SAFETY: caller contract.
    let (b0, b1) = unsafe { (p.read(), p.add(size - 1).read()) };
    if b0 != pattern(s, i, 0) || b1 != pattern(s, i, size - 1) {
        corrupt(p, size, u64::from(pattern(s, i, 0)), u64::from(b0));
    }
    // SAFETY: caller contract.
    unsafe { a.dealloc(p, l) };
    u64::from(b0) + u64::from(b1)
}

/// The byte written at offset `k` of block `i` in sweep `s`.
#[inline(always)]
fn pattern(s: u64, i: usize, k: usize) -> u8 {
    (s as usize)
        .wrapping_mul(31)
        .wrapping_add(i)
        .wrapping_add(k) as u8
}

/// One sweep over [`BATCHES`]: returns the ops made and a checksum.
fn sweep<A: GlobalAlloc>(a: &A, size: usize, allocs: u64, s: u64) -> (u64, u64) {
    let l = layout(size);
    let mut arr: Vec<*mut u8> = vec![std::ptr::null_mut(); BATCHES[BATCHES.len() - 1]];
    let mut ops = 0u64;
    let mut check = 0u64;
    for n in BATCHES {
        let iters = (allocs / n as u64).max(1);
        for _ in 0..iters {
            for (i, slot) in arr[..n].iter_mut().enumerate() {
                // SAFETY: the layout has a non-zero size.
                let p = unsafe { a.alloc(l) };
                if p.is_null() {
                    handle_alloc_error(l);
                }
                // SAFETY: `p` is a fresh block of `size` bytes.
                unsafe { fill(p, size, s, i) };
                *slot = p;
            }
            let half = n / 2;
            for (i, &p) in arr[..half].iter().enumerate() {
                // SAFETY: `p` is the live block of slot `i` written above,
                // from `a` with layout `l`; freed once.
                check = check.wrapping_add(unsafe { free_one(a, l, s, i, p) });
            }
            for (i, &p) in arr[..n].iter().enumerate().skip(half).rev() {
                // SAFETY: as above.
                check = check.wrapping_add(unsafe { free_one(a, l, s, i, p) });
            }
            ops += 2 * n as u64;
        }
    }
    (ops, check)
}
