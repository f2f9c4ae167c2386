//! `phases`: a program whose character changes over time (issue 6), for
//! the learning layer. `threads` threads run five phases one after the
//! other; each phase starts its threads afresh and waits for them:
//!
//! ```text
//! 1. tiny churn   `steps` steps per thread: a batch of 1–256 blocks of one
//!                 size (16–512 B, a multiple of 16) allocated, stamped and
//!                 freed in reverse order, and one random slot of a working
//!                 set of 4096 live blocks (16–1024 B) replaced
//! 2. mid bursts   `bursts` bursts per thread: 48 blocks of 2–48 KiB, one
//!                 byte written per 4 KiB page, freed in allocation order
//! 3. large spans  `spans` operations per thread on 12 slots: a random slot
//!                 replaced by a block of 80 KiB – 2 MiB, every page written
//! 4. idle         every block freed, then `idle_ms` without any call
//! 5. tiny churn   as phase 1 (another random sequence)
//! ```
//!
//! An op is one allocator call, as everywhere in the suite; the timed
//! region ([`Outcome::elapsed`]) is the four busy phases, without the idle
//! one. [`Outcome::phases`] has each phase's wall time and the ACE policy
//! decisions made during it (0 without learning), for the warm-start
//! comparison (`hakmem-bench warm`).

use std::alloc::GlobalAlloc;
use std::time::{Duration, Instant};

use super::{
    alloc_stamped, alloc_touched, free_stamped, free_touched, stamp_of, Outcome, Params,
    PhaseTimes, Touch,
};
use crate::rng::Rng;

/// Parameters of `phases`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phases {
    pub threads: usize, // threads of every busy phase
    pub steps: u64,     // tiny-churn steps per thread (phases 1 and 5)
    pub bursts: u64,    // mid bursts per thread (phase 2)
    pub spans: u64,     // span replacements per thread (phase 3)
    pub idle_ms: u64,   // length of the idle phase
    pub seed: u64,      // random seed
}

/// Live blocks of the tiny-churn working set (per thread).
const LIVE: usize = 4096;
/// Blocks of one mid burst.
const BURST: usize = 48;
/// Span slots of phase 3 (per thread).
const SPAN_SLOTS: usize = 12;

impl Phases {
    pub(crate) fn params(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("threads", self.threads as u64),
            ("steps", self.steps),
            ("bursts", self.bursts),
            ("spans", self.spans),
            ("idle_ms", self.idle_ms),
            ("seed", self.seed),
        ]
    }

    pub(crate) fn from_params(p: &mut Params) -> Result<Phases, String> {
        Ok(Phases {
            threads: p.take_in("threads", 2, 1, 256)?,
            steps: p.take("steps", 60_000),
            bursts: p.take("bursts", 10_000),
            spans: p.take("spans", 2_000),
            idle_ms: p.take_in("idle_ms", 600, 0, 60_000)? as u64,
            seed: p.take("seed", 6),
        })
    }

    pub fn run<A: GlobalAlloc + Sync + 'static>(&self, a: &'static A) -> Outcome {
        let mut t = PhaseTimes::default();
        let mut ops = 0u64;
        let mut check = 0u64;
        for k in 0..5 {
            let d0 = hakmem::ace::decisions();
            let start = Instant::now();
            if k == 3 {
                // Everything was freed by the busy phases' threads.
                std::thread::sleep(Duration::from_millis(self.idle_ms));
            } else {
                let (o, c) = self.busy(a, k);
                ops += o;
                check = check.wrapping_add(c);
            }
            t.ns[k] = start.elapsed().as_nanos() as u64;
            t.decisions[k] = hakmem::ace::decisions() - d0;
        }
        let busy_ns: u64 = t.ns.iter().sum::<u64>() - t.ns[3];
        Outcome {
            ops,
            elapsed: Duration::from_nanos(busy_ns),
            check,
            rss_after_free_kib: None,
            phases: Some(t),
        }
    }

    /// Runs busy phase `k` on `threads` threads; (ops, checksum).
    fn busy<A: GlobalAlloc + Sync + 'static>(&self, a: &'static A, k: usize) -> (u64, u64) {
        let hs: Vec<_> = (0..self.threads)
            .map(|i| {
                let w = self.clone();
                let seed = self.seed ^ ((i as u64 + 1) << 32) ^ ((k as u64) << 8);
                std::thread::spawn(move || {
                    let mut rng = Rng::new(seed);
                    match k {
                        0 | 4 => tiny_churn(a, &mut rng, w.steps),
                        1 => mid_bursts(a, &mut rng, w.bursts),
                        _ => large_spans(a, &mut rng, w.spans),
                    }
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("phases thread panicked"))
            .fold((0, 0), |(o, c), (o2, c2)| (o + o2, c.wrapping_add(c2)))
    }
}

/// Phases 1 and 5.
fn tiny_churn<A: GlobalAlloc>(a: &A, rng: &mut Rng, steps: u64) -> (u64, u64) {
    let mut live = vec![std::ptr::null_mut::<u8>(); LIVE];
    let mut live_size = vec![0usize; LIVE];
    let mut batch = Vec::with_capacity(256);
    let (mut ops, mut check) = (0u64, 0u64);
    for step in 0..steps {
        let n = rng.range(1, 256);
        let size = rng.range(1, 32) * 16;
        for j in 0..n {
            batch.push(alloc_stamped(a, size, stamp_of(j)));
        }
        while let Some(p) = batch.pop() {
            // SAFETY: allocated just above with this size and stamp
            // (`batch.len()` after the pop is its index), freed once.
            check = check.wrapping_add(unsafe { free_stamped(a, p, size, stamp_of(batch.len())) });
        }
        let j = rng.below(LIVE);
        if !live[j].is_null() {
            // SAFETY: slot `j` holds a live block of this size and stamp.
            check =
                check.wrapping_add(unsafe { free_stamped(a, live[j], live_size[j], stamp_of(j)) });
            ops += 1;
        }
        live_size[j] = rng.range(1, 64) * 16;
        live[j] = alloc_stamped(a, live_size[j], stamp_of(j));
        ops += 2 * n as u64 + 1;
        check = check.wrapping_add(step);
    }
    for (j, p) in live.into_iter().enumerate() {
        if !p.is_null() {
            // SAFETY: as above.
            check = check.wrapping_add(unsafe { free_stamped(a, p, live_size[j], stamp_of(j)) });
            ops += 1;
        }
    }
    (ops, check)
}

/// Phase 2.
fn mid_bursts<A: GlobalAlloc>(a: &A, rng: &mut Rng, bursts: u64) -> (u64, u64) {
    let mut v: Vec<(*mut u8, usize)> = Vec::with_capacity(BURST);
    let mut check = 0u64;
    for _ in 0..bursts {
        for j in 0..BURST {
            let size = rng.range(2 << 10, 48 << 10);
            v.push((alloc_touched(a, size, stamp_of(j), Touch::Page), size));
        }
        for (j, (p, size)) in v.drain(..).enumerate() {
            // SAFETY: allocated above with this size, stamp and touch.
            check =
                check.wrapping_add(unsafe { free_touched(a, p, size, stamp_of(j), Touch::Page) });
        }
    }
    (bursts * 2 * BURST as u64, check)
}

/// Phase 3.
fn large_spans<A: GlobalAlloc>(a: &A, rng: &mut Rng, n: u64) -> (u64, u64) {
    let mut slots = [(std::ptr::null_mut::<u8>(), 0usize); SPAN_SLOTS];
    let (mut ops, mut check) = (0u64, 0u64);
    for _ in 0..n {
        let j = rng.below(SPAN_SLOTS);
        let (p, size) = slots[j];
        if !p.is_null() {
            // SAFETY: slot `j` holds a live block of `size` with stamp j.
            check =
                check.wrapping_add(unsafe { free_touched(a, p, size, stamp_of(j), Touch::Page) });
            ops += 1;
        }
        let size = rng.range(80 << 10, 2 << 20);
        slots[j] = (alloc_touched(a, size, stamp_of(j), Touch::Page), size);
        ops += 1;
    }
    for (j, (p, size)) in slots.into_iter().enumerate() {
        if !p.is_null() {
            // SAFETY: as above.
            check =
                check.wrapping_add(unsafe { free_touched(a, p, size, stamp_of(j), Touch::Page) });
            ops += 1;
        }
    }
    (ops, check)
}
