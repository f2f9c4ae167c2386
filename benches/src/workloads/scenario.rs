//! `scenario`: the seeds' allocation scenarios `json` (64 KiB), `mir`
//! (256 KiB) and `vm` (2 MiB) as allocate/free loops (issue 5).
//!
//! ```text
//! ring[window] empty
//! repeat `rounds` times, i = round mod window:
//!     free(ring[i]) if it holds a block (check its stamp and middle page)
//!     ring[i] = alloc(size); touch it; stamp it
//! free what is left (timed)
//! ```
//!
//! A window of 4 live blocks means an allocation can never be served by the
//! block freed just before it without a cache of freed blocks of that size.
//! Touching (one byte per 4 KiB page by default; see [`Touch`]) makes an
//! allocator that returns each freed block to the OS pay the page faults on
//! the next use — the seeds found munmap at 41 % of all cycles here.

use std::alloc::GlobalAlloc;
use std::time::Instant;

use super::{alloc_touched, free_touched, stamp_of, Outcome, Params, Touch, MAX_SIZE, MIN_STAMPED};

/// Parameters of `scenario`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    pub size: usize,   // block size (json 64 KiB, mir 256 KiB, vm 2 MiB)
    pub window: usize, // blocks live at once
    pub rounds: u64,   // allocations (each but the first `window` after a free)
    pub touch: Touch,  // how each new block is written (see `Touch`)
}

impl Scenario {
    pub(crate) fn params(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("size", self.size as u64),
            ("window", self.window as u64),
            ("rounds", self.rounds),
            ("touch", self.touch as u64),
        ]
    }

    pub(crate) fn from_params(p: &mut Params) -> Result<Scenario, String> {
        Ok(Scenario {
            size: p.take_in("size", 64 << 10, MIN_STAMPED, MAX_SIZE)?,
            window: p.take_in("window", 4, 1, 1 << 20)?,
            rounds: p.take("rounds", 100_000),
            touch: Touch::from_param(p)?,
        })
    }

    pub fn run<A: GlobalAlloc>(&self, a: &A) -> Outcome {
        let mut ring: Vec<*mut u8> = vec![std::ptr::null_mut(); self.window];
        let mut stamps = vec![0u64; self.window];
        let mut check = 0u64;
        let mut ops = 0u64;
        let start = Instant::now();
        for r in 0..self.rounds {
            let i = (r % self.window as u64) as usize;
            if !ring[i].is_null() {
                // SAFETY: live slot `i` holds a block of `a` of `size` bytes
                // with this stamp.
                let w = unsafe { free_touched(a, ring[i], self.size, stamps[i], self.touch) };
                check = check.wrapping_add(w);
                ops += 1;
            }
            let stamp = stamp_of(r as usize);
            ring[i] = alloc_touched(a, self.size, stamp, self.touch);
            stamps[i] = stamp;
            ops += 1;
        }
        for (i, &p) in ring.iter().enumerate() {
            if !p.is_null() {
                // SAFETY: as above.
                let w = unsafe { free_touched(a, p, self.size, stamps[i], self.touch) };
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
