//! `producer-consumer`: `pairs` pairs of threads; in each pair the producer
//! allocates `objects` blocks of random sizes in `min..=max`, stamps them and
//! passes them through a bounded ring of `queue` entries to the consumer,
//! which checks and frees them. Every free is a free of another thread's
//! block: the remote-free path, and — because the ring is bounded — the
//! producer's reuse of memory that came back through it.

use std::alloc::GlobalAlloc;
use std::time::Instant;

use super::{alloc_stamped, free_stamped, Outcome, Params, MAX_SIZE, MIN_STAMPED};
use crate::rng::Rng;
use crate::spsc::Spsc;

/// Parameters of `producer-consumer`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerConsumer {
    pub pairs: usize, // producer/consumer thread pairs
    pub objects: u64, // blocks each producer allocates
    pub min: usize,   // smallest block size
    pub max: usize,   // largest block size
    pub queue: usize, // ring capacity (blocks in flight per pair)
    pub seed: u64,    // random seed
}

impl ProducerConsumer {
    pub(crate) fn params(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("pairs", self.pairs as u64),
            ("objects", self.objects),
            ("min", self.min as u64),
            ("max", self.max as u64),
            ("queue", self.queue as u64),
            ("seed", self.seed),
        ]
    }

    pub(crate) fn from_params(p: &mut Params) -> Result<ProducerConsumer, String> {
        let w = ProducerConsumer {
            pairs: p.take_in("pairs", 1, 1, 512)?,
            objects: p.take("objects", 1_000_000),
            min: p.take_in("min", 16, MIN_STAMPED, MAX_SIZE)?,
            max: p.take_in("max", 512, MIN_STAMPED, MAX_SIZE)?,
            queue: p.take_in("queue", 1024, 1, 1 << 24)?,
            seed: p.take("seed", 7),
        };
        if w.min > w.max {
            return Err(format!("min={} > max={}", w.min, w.max));
        }
        Ok(w)
    }

    pub fn run<A: GlobalAlloc + Sync>(&self, a: &A) -> Outcome {
        let rings: Vec<Spsc> = (0..self.pairs).map(|_| Spsc::new(self.queue)).collect();
        let start = Instant::now();
        let check = std::thread::scope(|s| {
            let mut consumers = Vec::new();
            for (k, q) in rings.iter().enumerate() {
                let seed = self.seed.wrapping_add(k as u64);
                let (n, min, max) = (self.objects, self.min, self.max);
                s.spawn(move || {
                    let mut rng = Rng::new(seed);
                    for i in 0..n {
                        let size = rng.range(min, max);
                        let p = alloc_stamped(a, size, stamp(i, size));
                        q.push(p as usize);
                    }
                });
                consumers.push(s.spawn(move || {
                    let mut check = 0u64;
                    for i in 0..n {
                        let p = q.pop() as *mut u8;
                        // SAFETY: the producer wrote the block's size into
                        // the low half of its first word (see `stamp`).
                        let size = unsafe { p.cast::<u64>().read() } as u32 as usize;
                        // SAFETY: `p` is a live block from `a` of `size`
                        // bytes stamped with `stamp(i, size)`; the ring
                        // hands each block to this thread exactly once.
                        let w = unsafe { free_stamped(a, p, size, stamp(i, size)) };
                        check = check.wrapping_add(w >> 32);
                    }
                    check
                }));
            }
            consumers
                .into_iter()
                .map(|h| h.join().expect("consumer panicked"))
                .fold(0u64, u64::wrapping_add)
        });
        let elapsed = start.elapsed();
        Outcome {
            ops: 2 * self.objects * self.pairs as u64,
            elapsed,
            check,
            rss_after_free_kib: None,
            phases: None,
        }
    }
}

/// The stamp of the `i`-th block: its sequence number above its size.
#[inline(always)]
fn stamp(i: u64, size: usize) -> u64 {
    (i << 32) | size as u64
}
