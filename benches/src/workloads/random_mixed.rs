//! `random-mixed`: `ops` operations over `slots` slots: pick a random slot;
//! if it holds a block, free it, else allocate a block of a random size in
//! `min..=max` into it — the seeds' `bench_random_mixed 2000000 400 42`
//! (sizes 16..1024). With `max=64k` it is the `random-mixed-64k` variant.
//! Blocks still live at the end are freed inside the timed region.

use std::alloc::GlobalAlloc;
use std::time::Instant;

use super::{
    alloc_stamped, free_stamped, stamp_of, Blocks, Outcome, Params, MAX_SIZE, MIN_STAMPED,
};
use crate::rng::Rng;

/// Parameters of `random-mixed`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RandomMixed {
    pub ops: u64,     // slot operations (each is one alloc or one free)
    pub slots: usize, // slots (at most this many blocks live)
    pub seed: u64,    // random seed
    pub min: usize,   // smallest block size
    pub max: usize,   // largest block size
}

impl RandomMixed {
    pub(crate) fn params(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("ops", self.ops),
            ("slots", self.slots as u64),
            ("seed", self.seed),
            ("min", self.min as u64),
            ("max", self.max as u64),
        ]
    }

    pub(crate) fn from_params(p: &mut Params) -> Result<RandomMixed, String> {
        let w = RandomMixed {
            ops: p.take("ops", 2_000_000),
            slots: p.take_in("slots", 400, 1, 1 << 26)?,
            seed: p.take("seed", 42),
            min: p.take_in("min", 16, MIN_STAMPED, MAX_SIZE)?,
            max: p.take_in("max", 1024, MIN_STAMPED, MAX_SIZE)?,
        };
        if w.min > w.max {
            return Err(format!("min={} > max={}", w.min, w.max));
        }
        Ok(w)
    }

    pub fn run<A: GlobalAlloc>(&self, a: &A) -> Outcome {
        let mut b = Blocks::new(self.slots);
        let mut rng = Rng::new(self.seed);
        let mut check = 0u64;
        let start = Instant::now();
        for _ in 0..self.ops {
            let i = rng.below(self.slots);
            let p = b.ptrs[i];
            if p.is_null() {
                let size = rng.range(self.min, self.max);
                b.ptrs[i] = alloc_stamped(a, size, stamp_of(i));
                b.sizes[i] = size as u32;
            } else {
                // SAFETY: live slot `i` holds a block from `a` with this size
                // and stamp.
                let w = unsafe { free_stamped(a, p, b.sizes[i] as usize, stamp_of(i)) };
                check = check.wrapping_add(w);
                b.ptrs[i] = std::ptr::null_mut();
            }
        }
        let tail = b.free_all(a);
        let elapsed = start.elapsed();
        Outcome {
            ops: self.ops + tail,
            elapsed,
            check,
            rss_after_free_kib: None,
            phases: None,
        }
    }
}
