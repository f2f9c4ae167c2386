//! `cache-scratch`: passive false sharing (Hoard's `cache-scratch`, Berger
//! et al. 2000). The main thread allocates one small object per thread —
//! neighbours in memory, likely in one cache line — and hands one to each
//! worker. A worker frees its object, then `iterations` times allocates an
//! object of `objsize` bytes, writes every byte of it `repetitions` times
//! and frees it. An allocator that gives a worker back the freed object (or
//! its neighbour) makes the workers write to one cache line, and the run
//! becomes many times slower. The time is mostly the writes; what matters is
//! the ratio between allocators.

use std::alloc::{handle_alloc_error, GlobalAlloc};
use std::time::Instant;

use super::{layout, Outcome, Params};

/// Parameters of `cache-scratch`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheScratch {
    pub threads: usize,   // workers
    pub iterations: u64,  // allocate-write-free cycles per worker
    pub objsize: usize,   // object size in bytes
    pub repetitions: u64, // writes to every byte per cycle
}

/// The objects handed from the main thread to the workers.
struct Handed(*mut u8);

// SAFETY: each handed object is owned by exactly one worker.
unsafe impl Send for Handed {}

impl CacheScratch {
    pub(crate) fn params(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("threads", self.threads as u64),
            ("iterations", self.iterations),
            ("objsize", self.objsize as u64),
            ("repetitions", self.repetitions),
        ]
    }

    pub(crate) fn from_params(p: &mut Params) -> Result<CacheScratch, String> {
        Ok(CacheScratch {
            threads: p.take_in("threads", 2, 1, 1024)?,
            iterations: p.take("iterations", 1000),
            objsize: p.take_in("objsize", 8, 1, 1 << 20)?,
            repetitions: p.take("repetitions", 20_000),
        })
    }

    pub fn run<A: GlobalAlloc + Sync>(&self, a: &A) -> Outcome {
        let l = layout(self.objsize);
        let handed: Vec<Handed> = (0..self.threads)
            .map(|_| {
                // SAFETY: non-zero size.
                let p = unsafe { a.alloc(l) };
                if p.is_null() {
                    handle_alloc_error(l);
                }
                Handed(p)
            })
            .collect();
        let start = Instant::now();
        let check = std::thread::scope(|s| {
            let workers: Vec<_> = handed
                .into_iter()
                .map(|h| {
                    s.spawn(move || {
                        let h = h;
                        // SAFETY: the object came from `a` with layout `l`
                        // and is owned by this worker alone.
                        unsafe { a.dealloc(h.0, l) };
                        let mut check = 0u64;
                        for _ in 0..self.iterations {
                            // SAFETY: non-zero size.
                            let p = unsafe { a.alloc(l) };
                            if p.is_null() {
                                handle_alloc_error(l);
                            }
                            for k in 0..self.objsize {
                                // SAFETY: `k < objsize`: in bounds of the
                                // fresh block `p`.
                                unsafe { p.add(k).write_volatile(0) };
                            }
                            for _ in 0..self.repetitions {
                                for k in 0..self.objsize {
                                    // SAFETY: as above.
                                    unsafe {
                                        let q = p.add(k);
                                        q.write_volatile(q.read_volatile().wrapping_add(1));
                                    }
                                }
                            }
                            // SAFETY: in bounds (objsize ≥ 1).
                            check = check.wrapping_add(unsafe { p.read_volatile() } as u64);
                            // SAFETY: `p` came from `a` with layout `l`.
                            unsafe { a.dealloc(p, l) };
                        }
                        check
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|h| h.join().expect("cache-scratch worker panicked"))
                .fold(0u64, u64::wrapping_add)
        });
        let elapsed = start.elapsed();
        Outcome {
            ops: self.threads as u64 * (1 + 2 * self.iterations),
            elapsed,
            check,
            rss_after_free_kib: None,
            phases: None,
        }
    }
}
