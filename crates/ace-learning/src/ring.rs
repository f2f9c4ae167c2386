//! A bounded multi-producer multi-consumer ring of [`Event`]s (Vyukov's
//! sequence-numbered array queue), statically sized and allocation-free.
//! `push` never waits: when the ring is full the event is dropped and the
//! drop is counted (Contract A).

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use core::sync::atomic::{AtomicU64, AtomicUsize};

use crate::Event;

struct Slot {
    seq: AtomicUsize,
    val: UnsafeCell<MaybeUninit<Event>>,
}

/// The ring; `N` must be a power of two.
pub struct EventRing<const N: usize> {
    slots: [Slot; N],
    head: AtomicUsize, // next position to pop
    tail: AtomicUsize, // next position to push
    pushed: AtomicU64,
    dropped: AtomicU64,
}

// SAFETY: a slot's value is written only by the producer that won its
// position (CAS on `tail`) and read only by the consumer that won it (CAS on
// `head`); the slot's sequence number, stored with Release and loaded with
// Acquire, orders the two. `Event` is `Copy` plain data.
unsafe impl<const N: usize> Sync for EventRing<N> {}

impl<const N: usize> EventRing<N> {
    /// An empty ring.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        assert!(N.is_power_of_two());
        let mut slots = [const {
            Slot {
                seq: AtomicUsize::new(0),
                val: UnsafeCell::new(MaybeUninit::uninit()),
            }
        }; N];
        let mut i = 0;
        while i < N {
            slots[i].seq = AtomicUsize::new(i);
            i += 1;
        }
        EventRing {
            slots,
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
            pushed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    /// Copies `ev` in; returns false (and counts a drop) when full.
    /// Lock-free: never blocks, whatever the consumer does.
    pub fn push(&self, ev: Event) -> bool {
        let mut pos = self.tail.load(Relaxed);
        loop {
            let slot = &self.slots[pos & (N - 1)];
            let seq = slot.seq.load(Acquire);
            let dif = seq as isize - pos as isize;
            if dif == 0 {
                match self
                    .tail
                    .compare_exchange_weak(pos, pos + 1, Relaxed, Relaxed)
                {
                    Ok(_) => {
                        // SAFETY: we own position `pos` until the seq store.
                        unsafe { (*slot.val.get()).write(ev) };
                        slot.seq.store(pos + 1, Release);
                        self.pushed.fetch_add(1, Relaxed);
                        return true;
                    }
                    Err(p) => pos = p,
                }
            } else if dif < 0 {
                self.dropped.fetch_add(1, Relaxed);
                return false;
            } else {
                pos = self.tail.load(Relaxed);
            }
        }
    }

    /// Takes the oldest event, if any.
    pub fn pop(&self) -> Option<Event> {
        let mut pos = self.head.load(Relaxed);
        loop {
            let slot = &self.slots[pos & (N - 1)];
            let seq = slot.seq.load(Acquire);
            let dif = seq as isize - (pos + 1) as isize;
            if dif == 0 {
                match self
                    .head
                    .compare_exchange_weak(pos, pos + 1, AcqRel, Relaxed)
                {
                    Ok(_) => {
                        // SAFETY: the producer published this slot (seq ==
                        // pos + 1) and we own position `pos` now.
                        let ev = unsafe { (*slot.val.get()).assume_init() };
                        slot.seq.store(pos + N, Release);
                        return Some(ev);
                    }
                    Err(p) => pos = p,
                }
            } else if dif < 0 {
                return None;
            } else {
                pos = self.head.load(Relaxed);
            }
        }
    }

    /// Events accepted so far.
    pub fn pushed(&self) -> u64 {
        self.pushed.load(Relaxed)
    }

    /// Events dropped because the ring was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    /// Capacity.
    pub const fn capacity(&self) -> usize {
        N
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::EventKind;

    fn ev(i: u32) -> Event {
        Event {
            kind: EventKind::Refill,
            class: 1,
            count: i,
            thread: 0,
        }
    }

    #[test]
    fn fifo_and_drop_when_full() {
        let r: EventRing<8> = EventRing::new();
        for i in 0..8 {
            assert!(r.push(ev(i)));
        }
        assert!(!r.push(ev(99)));
        assert_eq!(r.dropped(), 1);
        for i in 0..8 {
            assert_eq!(r.pop().unwrap().count, i);
        }
        assert!(r.pop().is_none());
        assert!(r.push(ev(100)));
        assert_eq!(r.pop().unwrap().count, 100);
    }

    #[test]
    fn full_ring_never_blocks_producers() {
        static R: EventRing<64> = EventRing::new();
        let hs: std::vec::Vec<_> = (0..4)
            .map(|t| {
                std::thread::spawn(move || {
                    for i in 0..10_000 {
                        R.push(ev(t * 100_000 + i));
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(R.pushed() + R.dropped(), 40_000);
        assert_eq!(R.pushed(), 64);
    }
}
