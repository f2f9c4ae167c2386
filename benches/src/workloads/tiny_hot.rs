//! `tiny-hot`: allocate a batch of `batch` blocks of `size` bytes, free them
//! in allocation order, repeat `rounds` times — the seeds'
//! `bench_tiny_hot 64 100 60000`. After the first round every allocation is
//! served from the allocator's per-thread cache: this measures the hot path.

use std::alloc::{handle_alloc_error, GlobalAlloc};
use std::time::Instant;

use super::{corrupt, layout, Outcome, Params, MAX_SIZE};

/// Parameters of `tiny-hot`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TinyHot {
    pub size: usize,  // block size in bytes (≥ 8)
    pub batch: usize, // blocks live at once
    pub rounds: u64,  // alloc-batch + free-batch repetitions
}

impl TinyHot {
    pub(crate) fn params(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("size", self.size as u64),
            ("batch", self.batch as u64),
            ("rounds", self.rounds),
        ]
    }

    pub(crate) fn from_params(p: &mut Params) -> Result<TinyHot, String> {
        Ok(TinyHot {
            size: p.take_in("size", 64, 8, MAX_SIZE)?,
            batch: p.take_in("batch", 100, 1, 1 << 20)?,
            rounds: p.take("rounds", 60_000),
        })
    }

    /// Runs `rounds × (batch allocs + batch frees)`; each block's first word
    /// is written after allocation and checked before the free.
    pub fn run<A: GlobalAlloc>(&self, a: &A) -> Outcome {
        let l = layout(self.size);
        let mut slots: Vec<*mut u8> = vec![std::ptr::null_mut(); self.batch];
        let mut check = 0u64;
        let start = Instant::now();
        for r in 0..self.rounds {
            for (i, s) in slots.iter_mut().enumerate() {
                // SAFETY: the layout has a non-zero size.
                let p = unsafe { a.alloc(l) };
                if p.is_null() {
                    handle_alloc_error(l);
                }
                // SAFETY: `p` is a fresh block of ≥ 8 bytes aligned to 8.
                unsafe { p.cast::<u64>().write(r ^ i as u64) };
                *s = p;
            }
            for (i, &p) in slots.iter().enumerate() {
                // SAFETY: `p` is the live block written above.
                let v = unsafe { p.cast::<u64>().read() };
                if v != r ^ i as u64 {
                    corrupt(p, self.size, r ^ i as u64, v);
                }
                check = check.wrapping_add(v);
                // SAFETY: `p` came from `a` with layout `l`; freed once.
                unsafe { a.dealloc(p, l) };
            }
        }
        let elapsed = start.elapsed();
        Outcome {
            ops: 2 * self.rounds * self.batch as u64,
            elapsed,
            check,
            rss_after_free_kib: None,
            phases: None,
        }
    }
}
