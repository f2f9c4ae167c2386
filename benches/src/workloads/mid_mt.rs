//! `mid-mt`: multi-threaded churn of mid-size blocks. Each of `threads`
//! threads runs its own `random-mixed` loop — `ops` operations over `slots`
//! slots, sizes `min..=max` (2 KiB..64 KiB) — on blocks only it allocates
//! and frees, and frees what is left at the end. This measures the mid-size
//! tier and its scaling, with no cross-thread frees.

use std::alloc::GlobalAlloc;
use std::time::Instant;

use super::{
    alloc_stamped, free_stamped, stamp_of, Blocks, Outcome, Params, MAX_SIZE, MIN_STAMPED,
};
use crate::rng::Rng;

/// Parameters of `mid-mt`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MidMt {
    pub threads: usize, // threads
    pub ops: u64,       // slot operations per thread
    pub slots: usize,   // slots per thread
    pub min: usize,     // smallest block size
    pub max: usize,     // largest block size
    pub seed: u64,      // random seed (thread t uses seed + t)
}

impl MidMt {
    pub(crate) fn params(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("threads", self.threads as u64),
            ("ops", self.ops),
            ("slots", self.slots as u64),
            ("min", self.min as u64),
            ("max", self.max as u64),
            ("seed", self.seed),
        ]
    }

    pub(crate) fn from_params(p: &mut Params) -> Result<MidMt, String> {
        let w = MidMt {
            threads: p.take_in("threads", 2, 1, 1024)?,
            ops: p.take("ops", 1_000_000),
            slots: p.take_in("slots", 256, 1, 1 << 24)?,
            min: p.take_in("min", 2048, MIN_STAMPED, MAX_SIZE)?,
            max: p.take_in("max", 65536, MIN_STAMPED, MAX_SIZE)?,
            seed: p.take("seed", 99),
        };
        if w.min > w.max {
            return Err(format!("min={} > max={}", w.min, w.max));
        }
        Ok(w)
    }

    pub fn run<A: GlobalAlloc + Sync>(&self, a: &A) -> Outcome {
        let mut arrays: Vec<Blocks> = (0..self.threads).map(|_| Blocks::new(self.slots)).collect();
        let start = Instant::now();
        let (ops, check) = std::thread::scope(|s| {
            let workers: Vec<_> = arrays
                .iter_mut()
                .enumerate()
                .map(|(t, b)| {
                    let mut rng = Rng::new(self.seed.wrapping_add(t as u64));
                    s.spawn(move || {
                        let mut check = 0u64;
                        for _ in 0..self.ops {
                            let i = rng.below(self.slots);
                            let p = b.ptrs[i];
                            if p.is_null() {
                                let size = rng.range(self.min, self.max);
                                b.ptrs[i] = alloc_stamped(a, size, stamp_of(i));
                                b.sizes[i] = size as u32;
                            } else {
                                // SAFETY: live slot `i` holds a block from
                                // `a` with this size and stamp.
                                let w =
                                    unsafe { free_stamped(a, p, b.sizes[i] as usize, stamp_of(i)) };
                                check = check.wrapping_add(w);
                                b.ptrs[i] = std::ptr::null_mut();
                            }
                        }
                        (self.ops + b.free_all(a), check)
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|h| h.join().expect("mid-mt worker panicked"))
                .fold((0u64, 0u64), |(o, c), (o2, c2)| {
                    (o + o2, c.wrapping_add(c2))
                })
        });
        let elapsed = start.elapsed();
        Outcome {
            ops,
            elapsed,
            check,
            rss_after_free_kib: None,
            phases: None,
        }
    }
}
