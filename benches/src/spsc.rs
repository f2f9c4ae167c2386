//! A bounded single-producer single-consumer ring of `usize`, for handing
//! block addresses from the producer thread to the consumer thread without
//! allocating (the workloads' bookkeeping must not touch the allocator under
//! test, and should cost little next to it).
//!
//! Invariant: `0 ≤ tail - head ≤ capacity`; slots `head..tail` (mod
//! capacity) hold values written by the producer and not yet read.

use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

/// One cache line (two on CPUs with adjacent-line prefetch) per index.
#[repr(align(128))]
struct Padded(AtomicUsize);

pub(crate) struct Spsc {
    head: Padded, // next index to read (written by the consumer)
    tail: Padded, // next index to write (written by the producer)
    buf: Box<[AtomicUsize]>,
    mask: usize,
}

impl Spsc {
    /// A ring of `capacity` (rounded up to a power of two) slots.
    pub(crate) fn new(capacity: usize) -> Spsc {
        let cap = capacity.max(2).next_power_of_two();
        Spsc {
            head: Padded(AtomicUsize::new(0)),
            tail: Padded(AtomicUsize::new(0)),
            buf: (0..cap).map(|_| AtomicUsize::new(0)).collect(),
            mask: cap - 1,
        }
    }

    /// Appends `v`, waiting while the ring is full. Producer only.
    pub(crate) fn push(&self, v: usize) {
        let t = self.tail.0.load(Relaxed);
        let mut spins = 0u32;
        while t - self.head.0.load(Acquire) > self.mask {
            backoff(&mut spins);
        }
        self.buf[t & self.mask].store(v, Relaxed);
        self.tail.0.store(t + 1, Release);
    }

    /// Removes the oldest value, waiting while the ring is empty. Consumer only.
    pub(crate) fn pop(&self) -> usize {
        let h = self.head.0.load(Relaxed);
        let mut spins = 0u32;
        while self.tail.0.load(Acquire) == h {
            backoff(&mut spins);
        }
        let v = self.buf[h & self.mask].load(Relaxed);
        self.head.0.store(h + 1, Release);
        v
    }
}

/// Spin briefly, then yield the CPU (the machine may have fewer cores than
/// the workload has threads).
#[inline]
fn backoff(spins: &mut u32) {
    *spins += 1;
    if *spins < 64 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::Spsc;

    #[test]
    fn fifo_across_threads() {
        let q = Spsc::new(8);
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 1..=10_000 {
                    q.push(i);
                }
            });
            for i in 1..=10_000 {
                assert_eq!(q.pop(), i);
            }
        });
    }
}
