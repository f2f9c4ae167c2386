//! `large-churn`: the shape of mimalloc-bench's `malloc-large` (issue 5).
//!
//! ```text
//! slots[20] empty
//! repeat `iterations` times:
//!     i    = random slot, size = random in 5..=25 MiB
//!     new  = alloc(size); touch it; stamp it
//!     free(slots[i]) if it holds a block (after the allocation, as
//!                    `buffers[i] = make_unique<char[]>(size)` does)
//!     slots[i] = new
//! free what is left (timed)
//! ```
//!
//! Up to `slots + 1` blocks of 5–25 MiB are live, so an allocator that
//! unmaps (or `MADV_DONTNEED`s) each freed block and maps a fresh one pays
//! the page faults of every page it touches on every iteration; one that
//! keeps freed spans for reuse does not. `touch=0` (default) writes one byte
//! per 4 KiB page — every page is faulted in if it is not resident, at a
//! cost that is the same for every allocator whose memory is resident;
//! `touch=1` writes every byte, as `make_unique<char[]>` (value-initialised,
//! so zeroed) does in the original, which adds about 15 MiB of `memset` per
//! iteration to every allocator alike; `touch=2` staggers the page bytes
//! (see [`Touch`]).

use std::alloc::GlobalAlloc;
use std::time::Instant;

use super::{alloc_touched, free_touched, stamp_of, Outcome, Params, Touch, MAX_SIZE, MIN_STAMPED};
use crate::rng::Rng;

/// Parameters of `large-churn`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LargeChurn {
    pub slots: usize,    // live blocks (the original's kNumBuffers = 20)
    pub iterations: u64, // replacements (the original: 2000)
    pub min: usize,      // smallest block size (5 MiB)
    pub max: usize,      // largest block size (25 MiB)
    pub seed: u64,       // random seed
    pub touch: Touch,    // how each new block is written (see `Touch`)
}

impl LargeChurn {
    pub(crate) fn params(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("slots", self.slots as u64),
            ("iterations", self.iterations),
            ("min", self.min as u64),
            ("max", self.max as u64),
            ("seed", self.seed),
            ("touch", self.touch as u64),
        ]
    }

    pub(crate) fn from_params(p: &mut Params) -> Result<LargeChurn, String> {
        let w = LargeChurn {
            slots: p.take_in("slots", 20, 1, 1 << 20)?,
            iterations: p.take("iterations", 2000),
            min: p.take_in("min", 5 << 20, MIN_STAMPED, MAX_SIZE)?,
            max: p.take_in("max", 25 << 20, MIN_STAMPED, MAX_SIZE)?,
            seed: p.take("seed", 42),
            touch: Touch::from_param(p)?,
        };
        if w.min > w.max {
            return Err(format!("min={} > max={}", w.min, w.max));
        }
        Ok(w)
    }

    pub fn run<A: GlobalAlloc>(&self, a: &A) -> Outcome {
        let mut ptrs: Vec<*mut u8> = vec![std::ptr::null_mut(); self.slots];
        let mut sizes = vec![0usize; self.slots];
        let mut stamps = vec![0u64; self.slots];
        let mut rng = Rng::new(self.seed);
        let mut check = 0u64;
        let mut ops = 0u64;
        let start = Instant::now();
        for it in 0..self.iterations {
            let i = rng.below(self.slots);
            let size = rng.range(self.min, self.max);
            let stamp = stamp_of(it as usize);
            let p = alloc_touched(a, size, stamp, self.touch);
            let old = ptrs[i];
            if !old.is_null() {
                // SAFETY: live slot `i` holds a block of `a` with this size
                // and stamp.
                let w = unsafe { free_touched(a, old, sizes[i], stamps[i], self.touch) };
                check = check.wrapping_add(w);
                ops += 1;
            }
            (ptrs[i], sizes[i], stamps[i]) = (p, size, stamp);
            ops += 1;
        }
        for i in 0..self.slots {
            if !ptrs[i].is_null() {
                // SAFETY: as above.
                let w = unsafe { free_touched(a, ptrs[i], sizes[i], stamps[i], self.touch) };
                check = check.wrapping_add(w);
                ops += 1;
            }
        }
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
