//! `larson`: the server-style benchmark of Larson & Krishnan (1998), with op
//! counts instead of a timer.
//!
//! The main thread fills one array of `slots` blocks per thread (sizes in
//! `min..=max`), then starts `threads` workers. A worker replaces blocks
//! `gen_ops` times — free a random slot, allocate a new random size into it —
//! then hands its array to a newly spawned thread and exits; each chain runs
//! `generations` threads. As in the original (`num_rounds × chunks`
//! replacements per thread), a generation replaces each slot about
//! `gen_ops / slots` times, so the first replacement of every slot frees a
//! block of the previous, exited thread (of the main thread in generation
//! 1): each hand-over exercises frees into an exited owner's slabs, the rest
//! is thread-local churn. The clock covers the workers (spawns included),
//! not the initial fill or the final free.

use std::alloc::GlobalAlloc;
use std::thread::{self, JoinHandle};
use std::time::Instant;

use super::{
    alloc_stamped, free_stamped, stamp_of, Blocks, Outcome, Params, MAX_SIZE, MIN_STAMPED,
};
use crate::rng::Rng;

/// Parameters of `larson`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Larson {
    pub threads: usize,     // concurrent chains
    pub slots: usize,       // blocks per thread's array
    pub min: usize,         // smallest block size
    pub max: usize,         // largest block size
    pub gen_ops: u64,       // replacements per thread before handing over
    pub generations: usize, // threads per chain
    pub seed: u64,          // random seed
}

/// One chain's state, moved from thread to thread.
struct Chain {
    blocks: Blocks,
    rng: Rng,
    left: usize, // generations still to run
    check: u64,
}

/// What a worker leaves behind: the chain's successor, or the chain itself.
enum Step {
    Next(JoinHandle<Step>),
    Done(Chain),
}

impl Larson {
    pub(crate) fn params(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("threads", self.threads as u64),
            ("slots", self.slots as u64),
            ("min", self.min as u64),
            ("max", self.max as u64),
            ("gen_ops", self.gen_ops),
            ("generations", self.generations as u64),
            ("seed", self.seed),
        ]
    }

    pub(crate) fn from_params(p: &mut Params) -> Result<Larson, String> {
        let w = Larson {
            threads: p.take_in("threads", 2, 1, 1024)?,
            slots: p.take_in("slots", 1000, 1, 1 << 24)?,
            min: p.take_in("min", 16, MIN_STAMPED, MAX_SIZE)?,
            max: p.take_in("max", 1000, MIN_STAMPED, MAX_SIZE)?,
            gen_ops: p.take("gen_ops", 100_000),
            generations: p.take_in("generations", 10, 1, 1 << 20)?,
            seed: p.take("seed", 4141),
        };
        if w.min > w.max {
            return Err(format!("min={} > max={}", w.min, w.max));
        }
        Ok(w)
    }

    pub fn run<A: GlobalAlloc + Sync + 'static>(&self, a: &'static A) -> Outcome {
        let chains: Vec<Chain> = (0..self.threads)
            .map(|t| {
                let mut rng = Rng::new(self.seed.wrapping_add(t as u64));
                let mut blocks = Blocks::new(self.slots);
                for i in 0..self.slots {
                    let size = rng.range(self.min, self.max);
                    blocks.ptrs[i] = alloc_stamped(a, size, stamp_of(i));
                    blocks.sizes[i] = size as u32;
                }
                Chain {
                    blocks,
                    rng,
                    left: self.generations,
                    check: 0,
                }
            })
            .collect();
        let start = Instant::now();
        let (min, max, n) = (self.min, self.max, self.gen_ops);
        let workers: Vec<JoinHandle<Step>> = chains
            .into_iter()
            .map(|c| thread::spawn(move || worker(a, c, n, min, max)))
            .collect();
        let mut done = Vec::with_capacity(self.threads);
        for mut h in workers {
            loop {
                match h.join().expect("larson worker panicked") {
                    Step::Next(next) => h = next,
                    Step::Done(c) => break done.push(c),
                }
            }
        }
        let elapsed = start.elapsed();
        let mut check = 0u64;
        for mut c in done {
            check = check.wrapping_add(c.check);
            c.blocks.free_all(a);
        }
        Outcome {
            ops: 2 * self.gen_ops * (self.threads * self.generations) as u64,
            elapsed,
            check,
            rss_after_free_kib: None,
            phases: None,
        }
    }
}

/// One generation: `n` replacements, then hand the chain over.
fn worker<A: GlobalAlloc + Sync>(
    a: &'static A,
    mut c: Chain,
    n: u64,
    min: usize,
    max: usize,
) -> Step {
    let slots = c.blocks.ptrs.len();
    for _ in 0..n {
        let i = c.rng.below(slots);
        let size = c.rng.range(min, max);
        let b = &mut c.blocks;
        // SAFETY: every slot holds a live block from `a` with the recorded
        // size and stamp (filled before the first worker started).
        let w = unsafe { free_stamped(a, b.ptrs[i], b.sizes[i] as usize, stamp_of(i)) };
        c.check = c.check.wrapping_add(w);
        b.ptrs[i] = alloc_stamped(a, size, stamp_of(i));
        b.sizes[i] = size as u32;
    }
    c.left -= 1;
    if c.left == 0 {
        Step::Done(c)
    } else {
        Step::Next(thread::spawn(move || worker(a, c, n, min, max)))
    }
}
