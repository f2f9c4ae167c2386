//! A bounded multi-producer multi-consumer ring of [`Event`]s (Vyukov's
//! sequence-numbered array queue), statically sized and allocation-free.
//! `push` never waits: when the ring is full the event is dropped and the
//! drop is counted (Contract A).
//!
//! Layout: a slot is 16 bytes (a 32-bit sequence number and the 12-byte
//! event). The sequence number is stored *relative to the slot index*
//! (`stored = seq - index`, wrapping), so the initial state — slot `i`
//! expects position `i` — is all zeros and the ring lives in `.bss`: its
//! pages cost no memory until events are pushed. Positions are `usize`;
//! sequence numbers compare as wrapping 32-bit differences, which is exact
//! as long as the capacity is far below 2^31.
//!
//! The number of events accepted is the tail position itself, so a push
//! does exactly one successful CAS and one release store — no shared
//! counter beside them.
//!
//! Why not crossbeam-queue's `ArrayQueue` (the same algorithm): its push
//! waits for a consumer half-way through the slot's pop and its pop for a
//! producer half-way through a push (this ring drops, or reports empty,
//! instead), it allocates its buffer, has no reset for a forked child, does
//! not expose the accepted count, and costs 49 instructions per push
//! against 25 here — `docs/contracts.md`, *Design-card packages*, and the
//! example `ring_vs_arrayqueue`.

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize};

use crate::Event;

#[repr(C, align(16))]
struct Slot {
    seq: AtomicU32, // expected position minus the slot index (wrapping)
    val: UnsafeCell<MaybeUninit<Event>>,
}

// A slot is a 32-bit stamp and the 12-byte event: 16 bytes, so the ring
// of `EVENT_RING_CAPACITY` slots is 256 KiB.
static_assertions::assert_eq_size!(Slot, [u8; 16]);

/// Keeps the producers' and the consumer's cursors on separate cache lines.
#[repr(align(64))]
struct Padded<T>(T);

/// The ring; `N` must be a power of two below 2^30.
pub struct EventRing<const N: usize> {
    slots: [Slot; N],
    head: Padded<AtomicUsize>, // next position to pop
    tail: Padded<AtomicUsize>, // next position to push = events accepted
    dropped: Padded<AtomicU64>,
}

// SAFETY: a slot's value is written only by the producer that won its
// position (CAS on `tail`) and read only by the consumer that won it (CAS on
// `head`); the slot's sequence number, stored with Release and loaded with
// Acquire, orders the two. `Event` is `Copy` plain data.
unsafe impl<const N: usize> Sync for EventRing<N> {}

impl<const N: usize> EventRing<N> {
    /// An empty ring (all-zero: placed in `.bss`).
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        // A bound on the generic `N`, checked when `new::<N>` is evaluated
        // (at compile time for a static): `static_assertions` cannot name
        // a generic parameter, so this one stays a plain `assert!`.
        assert!(N.is_power_of_two() && N < (1 << 30));
        EventRing {
            slots: [const {
                Slot {
                    seq: AtomicU32::new(0),
                    val: UnsafeCell::new(MaybeUninit::uninit()),
                }
            }; N],
            head: Padded(AtomicUsize::new(0)),
            tail: Padded(AtomicUsize::new(0)),
            dropped: Padded(AtomicU64::new(0)),
        }
    }

    /// The sequence number of the slot for position `pos`, and the slot.
    #[inline(always)]
    fn slot(&self, pos: usize) -> (&Slot, u32) {
        let i = pos & (N - 1);
        let s = &self.slots[i];
        (s, s.seq.load(Acquire).wrapping_add(i as u32))
    }

    /// Stores sequence number `seq` in the slot at index `pos & (N-1)`.
    #[inline(always)]
    fn publish(&self, slot: &Slot, pos: usize, seq: usize) {
        let i = pos & (N - 1);
        slot.seq.store((seq as u32).wrapping_sub(i as u32), Release);
    }

    /// Copies `ev` in; returns false (and counts a drop) when full.
    /// Lock-free: never blocks, whatever the consumer does; a failed CAS
    /// means another producer made progress.
    #[inline]
    pub fn push(&self, ev: Event) -> bool {
        let mut pos = self.tail.0.load(Relaxed);
        loop {
            let (slot, seq) = self.slot(pos);
            let dif = seq.wrapping_sub(pos as u32) as i32;
            if dif == 0 {
                match self
                    .tail
                    .0
                    .compare_exchange_weak(pos, pos.wrapping_add(1), Relaxed, Relaxed)
                {
                    Ok(_) => {
                        // SAFETY: we own position `pos` until the seq store.
                        unsafe { (*slot.val.get()).write(ev) };
                        self.publish(slot, pos, pos.wrapping_add(1));
                        return true;
                    }
                    Err(p) => pos = p,
                }
            } else if dif < 0 {
                // The slot still holds the event from one lap ago: full.
                self.dropped.0.fetch_add(1, Relaxed);
                return false;
            } else {
                pos = self.tail.0.load(Relaxed);
            }
        }
    }

    /// Takes the oldest event, if any.
    #[inline]
    pub fn pop(&self) -> Option<Event> {
        let mut pos = self.head.0.load(Relaxed);
        loop {
            let (slot, seq) = self.slot(pos);
            let dif = seq.wrapping_sub(pos.wrapping_add(1) as u32) as i32;
            if dif == 0 {
                match self
                    .head
                    .0
                    .compare_exchange_weak(pos, pos.wrapping_add(1), AcqRel, Relaxed)
                {
                    Ok(_) => {
                        // SAFETY: the producer published this slot (seq ==
                        // pos + 1) and we own position `pos` now.
                        let ev = unsafe { (*slot.val.get()).assume_init() };
                        self.publish(slot, pos, pos.wrapping_add(N));
                        return Some(ev);
                    }
                    Err(p) => pos = p,
                }
            } else if dif < 0 {
                return None;
            } else {
                pos = self.head.0.load(Relaxed);
            }
        }
    }

    /// Pops up to `max` events, handing each to `f`; returns how many.
    pub fn drain(&self, max: usize, mut f: impl FnMut(Event)) -> usize {
        let mut n = 0;
        while n < max {
            match self.pop() {
                Some(ev) => f(ev),
                None => break,
            }
            n += 1;
        }
        n
    }

    /// Events accepted so far.
    pub fn pushed(&self) -> u64 {
        self.tail.0.load(Relaxed) as u64
    }

    /// Events dropped because the ring was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.0.load(Relaxed)
    }

    /// Events waiting to be popped (a snapshot).
    pub fn len(&self) -> usize {
        let t = self.tail.0.load(Relaxed);
        let h = self.head.0.load(Relaxed);
        t.wrapping_sub(h).min(N)
    }

    /// True when no event is waiting (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Empties the ring and forgets its position (the accepted count
    /// restarts at 0; drops are kept).
    ///
    /// Only the slots a push or pop has written are reset: those below
    /// the accepted count while it is under the capacity (positions are
    /// handed out in order, so slot `i` is first written at position `i`),
    /// all of them once it has reached the capacity. A ring
    /// that was never used (learning off) is not touched at all: storing
    /// even a zero into a `.bss` page the process never wrote would give
    /// every forked child its own copy of the whole ring (256 KiB).
    ///
    /// # Safety
    /// No other thread may push or pop during or after the call while it
    /// runs — meant for a child process right after `fork()`, where a
    /// parent thread may have been half-way through a push or a pop.
    pub unsafe fn reset_after_fork(&self) {
        let written = self.tail.0.load(Relaxed).min(N);
        for s in self.slots[..written].iter() {
            s.seq.store(0, Relaxed);
        }
        self.head.0.store(0, Relaxed);
        self.tail.0.store(0, Release);
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
        assert_eq!(r.len(), 8);
        for i in 0..8 {
            assert_eq!(r.pop().unwrap().count, i);
        }
        assert!(r.pop().is_none());
        assert!(r.push(ev(100)));
        assert_eq!(r.pop().unwrap().count, 100);
        assert_eq!(r.pushed(), 9);
    }

    #[test]
    fn reset_after_a_torn_push() {
        let r: EventRing<4> = EventRing::new();
        r.push(ev(1));
        // A producer won position 1 and vanished (fork) before publishing.
        r.tail.0.store(2, Relaxed);
        assert!(r.pop().is_some());
        assert!(r.pop().is_none(), "position 1 was never published");
        // SAFETY: no other thread uses `r`.
        unsafe { r.reset_after_fork() };
        for i in 0..4 {
            assert!(r.push(ev(i)));
        }
        assert_eq!(r.pop().unwrap().count, 0);
    }

    #[test]
    fn many_laps_keep_order() {
        let r: EventRing<4> = EventRing::new();
        for lap in 0..10_000u32 {
            assert!(r.push(ev(lap)));
            assert!(r.push(ev(lap + 1)));
            assert_eq!(r.pop().unwrap().count, lap);
            assert_eq!(r.pop().unwrap().count, lap + 1);
        }
        assert!(r.is_empty());
        let mut seen = 0;
        for i in 0..4 {
            r.push(ev(i));
        }
        assert_eq!(r.drain(10, |_| seen += 1), 4);
        assert_eq!(seen, 4);
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

    #[test]
    fn concurrent_producers_and_consumer_lose_nothing_accepted() {
        static R: EventRing<256> = EventRing::new();
        let stop = std::sync::Arc::new(core::sync::atomic::AtomicBool::new(false));
        let s2 = stop.clone();
        let consumer = std::thread::spawn(move || {
            let mut sum = 0u64;
            let mut n = 0u64;
            loop {
                match R.pop() {
                    Some(e) => {
                        sum += e.count as u64;
                        n += 1;
                    }
                    None if s2.load(Relaxed) && R.is_empty() => break,
                    None => std::thread::yield_now(),
                }
            }
            (n, sum)
        });
        let producers: std::vec::Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    let mut ok_sum = 0u64;
                    for i in 0..20_000u32 {
                        if R.push(ev(i)) {
                            ok_sum += i as u64;
                        }
                    }
                    ok_sum
                })
            })
            .collect();
        let expect: u64 = producers.into_iter().map(|h| h.join().unwrap()).sum();
        stop.store(true, Relaxed);
        let (n, sum) = consumer.join().unwrap();
        assert_eq!(n, R.pushed());
        assert_eq!(sum, expect);
        assert_eq!(R.pushed() + R.dropped(), 80_000);
    }
}
