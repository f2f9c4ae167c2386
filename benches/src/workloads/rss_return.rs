//! `rss-return`: does freed memory go back to the OS? (issue 5)
//!
//! ```text
//! start: read RSS (/proc/self/statm)
//! each of `threads` threads:  allocate total/threads bytes, half of them in
//!                             `small` (64 B) and half in `large` (4 KiB)
//!                             blocks, interleaved (large/small small blocks,
//!                             then one large, repeat); write every byte
//!   barrier (all `total` bytes are live at once)
//!   free every block: its own (`cross=0`) or those of thread t+1 mod N
//!   (`cross=1`: every free is a remote free); exit
//! main:  join, then `trim=1`: the allocator's trim ([`Trim`]) and/or
//!        `wait_ms`: sleep that long (a decay delay to expire)
//! end:   read RSS again; report RSS(end) − RSS(start)
//! ```
//!
//! The blocks form one intrusive list per thread (first word = next block),
//! so the workload needs no bookkeeping memory that would itself show up in
//! the RSS. Each block carries a stamp in its second word and in its last
//! byte, checked before it is freed. The timed region is the threads'
//! allocations and frees plus the trim; the wait is not timed.

use std::alloc::{handle_alloc_error, GlobalAlloc};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use super::{corrupt, layout, stamp_of, Outcome, Params, MAX_SIZE};
use crate::allocators::Trim;

/// Parameters of `rss-return`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RssReturn {
    pub threads: usize, // allocating threads
    pub total: usize,   // bytes allocated over all threads (requested sizes)
    pub small: usize,   // the small block size
    pub large: usize,   // the large block size (a multiple of `small`)
    pub cross: bool,    // free the next thread's blocks instead of one's own
    pub trim: bool,     // call the allocator's trim after the frees
    pub wait_ms: u64,   // then sleep this long before reading the RSS
}

/// Smallest `small`: the link word, the stamp word and a distinct last byte.
const MIN_BLOCK: usize = 24;

impl RssReturn {
    pub(crate) fn params(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("threads", self.threads as u64),
            ("total", self.total as u64),
            ("small", self.small as u64),
            ("large", self.large as u64),
            ("cross", self.cross as u64),
            ("trim", self.trim as u64),
            ("wait_ms", self.wait_ms),
        ]
    }

    pub(crate) fn from_params(p: &mut Params) -> Result<RssReturn, String> {
        let w = RssReturn {
            threads: p.take_in("threads", 2, 1, 1024)?,
            total: p.take_in("total", 512 << 20, 1, 1 << 40)?,
            small: p.take_in("small", 64, MIN_BLOCK, MAX_SIZE)?,
            large: p.take_in("large", 4096, MIN_BLOCK, MAX_SIZE)?,
            cross: p.take_in("cross", 0, 0, 1)? == 1,
            trim: p.take_in("trim", 1, 0, 1)? == 1,
            wait_ms: p.take("wait_ms", 0),
        };
        if !w.large.is_multiple_of(w.small) {
            return Err(format!(
                "large={} is not a multiple of small={}",
                w.large, w.small
            ));
        }
        Ok(w)
    }

    /// Small blocks per large block: equal bytes in both sizes.
    fn ratio(&self) -> usize {
        self.large / self.small
    }

    /// Blocks each thread allocates: whole (`ratio` small + 1 large) units
    /// of `2 × large` bytes, at least one.
    pub fn blocks_per_thread(&self) -> u64 {
        let units = (self.total / self.threads / (2 * self.large)).max(1);
        (units * (self.ratio() + 1)) as u64
    }

    /// The size of block `i` of a thread (`ratio` small ones, then a large).
    #[inline(always)]
    fn size_of(&self, i: u64) -> usize {
        if i % (self.ratio() as u64 + 1) == self.ratio() as u64 {
            self.large
        } else {
            self.small
        }
    }

    pub fn run<A: GlobalAlloc + Trim + Sync>(&self, a: &A) -> Outcome {
        let n = self.blocks_per_thread();
        let heads: Vec<AtomicUsize> = (0..self.threads).map(|_| AtomicUsize::new(0)).collect();
        let barrier = Barrier::new(self.threads);
        let start_kib = rss_kib();
        let start = Instant::now();
        let check = std::thread::scope(|s| {
            let workers: Vec<_> = (0..self.threads)
                .map(|t| {
                    let (heads, barrier) = (&heads, &barrier);
                    s.spawn(move || {
                        heads[t].store(self.allocate(a, t, n) as usize, Ordering::Release);
                        barrier.wait();
                        let victim = if self.cross {
                            (t + 1) % self.threads
                        } else {
                            t
                        };
                        let head = heads[victim].load(Ordering::Acquire) as *mut u8;
                        // SAFETY: `head` is the list `allocate` built for
                        // thread `victim`, which only this thread frees.
                        unsafe { self.free_list(a, victim, n, head) }
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|h| h.join().expect("rss-return worker panicked"))
                .fold(0u64, u64::wrapping_add)
        });
        if self.trim {
            a.trim();
        }
        let elapsed = start.elapsed();
        if self.wait_ms > 0 {
            std::thread::sleep(Duration::from_millis(self.wait_ms));
        }
        let after_kib = rss_kib();
        Outcome {
            ops: 2 * n * self.threads as u64,
            elapsed,
            check,
            rss_after_free_kib: Some(after_kib - start_kib),
            phases: None,
        }
    }

    /// The stamp of block `i` of thread `t`.
    #[inline(always)]
    fn stamp(t: usize, i: u64) -> u64 {
        stamp_of(((t as u64) << 40 | i) as usize)
    }

    /// Allocates thread `t`'s `n` blocks, writes every byte, links them
    /// (last allocated first) and returns the head.
    fn allocate<A: GlobalAlloc>(&self, a: &A, t: usize, n: u64) -> *mut u8 {
        let mut head: *mut u8 = std::ptr::null_mut();
        for i in 0..n {
            let size = self.size_of(i);
            let l = layout(size);
            // SAFETY: the layout has a non-zero size.
            let p = unsafe { a.alloc(l) };
            if p.is_null() {
                handle_alloc_error(l);
            }
            let stamp = Self::stamp(t, i);
            // SAFETY: `p` is a fresh block of `size` ≥ 24 bytes aligned to 8:
            // the two words and the last byte are in bounds and distinct.
            unsafe {
                p.write_bytes(stamp as u8, size);
                p.cast::<*mut u8>().write(head);
                p.cast::<u64>().add(1).write(stamp);
                p.add(size - 1).write(stamp as u8 ^ 0xA5);
            }
            head = p;
        }
        head
    }

    /// Checks and frees thread `t`'s list of `n` blocks; returns the sum of
    /// the stamps read.
    ///
    /// # Safety
    /// `head` is the list `allocate(a, t, n)` returned, not freed since.
    unsafe fn free_list<A: GlobalAlloc>(&self, a: &A, t: usize, n: u64, head: *mut u8) -> u64 {
        let mut check = 0u64;
        let mut p = head;
        for i in (0..n).rev() {
            let size = self.size_of(i);
            let stamp = Self::stamp(t, i);
            // SAFETY: the caller's contract: `p` is block `i` of the list,
            // live, of `size` bytes.
            let (next, w, b) = unsafe {
                (
                    p.cast::<*mut u8>().read(),
                    p.cast::<u64>().add(1).read(),
                    p.add(size - 1).read(),
                )
            };
            if w != stamp || b != stamp as u8 ^ 0xA5 {
                corrupt(p, size, stamp, w);
            }
            check = check.wrapping_add(w);
            // SAFETY: `p` came from `a` with this layout; freed once.
            unsafe { a.dealloc(p, layout(size)) };
            p = next;
        }
        debug_assert!(p.is_null());
        check
    }
}

/// The resident set size of this process in KiB, from `/proc/self/statm`
/// (its second field, in pages); 0 where unreadable.
pub fn rss_kib() -> i64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: i64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no memory-safety preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as i64;
    pages * page / 1024
}
