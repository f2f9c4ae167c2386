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

use std::alloc::{handle_alloc_error, GlobalAlloc};
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
                for k in 0..size {
                    // SAFETY: `p` is a fresh block of `size` bytes.
                    unsafe { p.add(k).write(pattern(s, i, k)) };
                }
                *slot = p;
            }
            let free = |i: usize, p: *mut u8| -> u64 {
                // SAFETY: `p` is the live block of slot `i` written above
                // (`size` ≥ 2 bytes).
                let (b0, b1) = unsafe { (p.read(), p.add(size - 1).read()) };
                if b0 != pattern(s, i, 0) || b1 != pattern(s, i, size - 1) {
                    corrupt(p, size, u64::from(pattern(s, i, 0)), u64::from(b0));
                }
                // SAFETY: `p` came from `a` with layout `l`; freed once.
                unsafe { a.dealloc(p, l) };
                u64::from(b0) + u64::from(b1)
            };
            let half = n / 2;
            for (i, &p) in arr[..half].iter().enumerate() {
                check = check.wrapping_add(free(i, p));
            }
            for (i, &p) in arr[..n].iter().enumerate().skip(half).rev() {
                check = check.wrapping_add(free(i, p));
            }
            ops += 2 * n as u64;
        }
    }
    (ops, check)
}
