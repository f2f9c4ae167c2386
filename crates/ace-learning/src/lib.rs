//! ace-learning: the learning layer (ACE: observe → decide → apply).
//!
//! This crate holds what the rest of the allocator touches and the
//! policies themselves, all `no_std` and allocation-free:
//! - [`Event`]: a small `Copy` record built on the stack by a slow path;
//! - [`EventRing`]: a pre-allocated, fixed-capacity, **non-blocking** ring —
//!   a full ring drops the event and counts the drop (Contract A), events
//!   are copied in, never referenced (Contract C);
//! - [`PolicyTable`]: the atomics the learning layer writes and the refill
//!   engine reads. The learner writes it only through a [`PolicyWriter`],
//!   the one handle it is given (Contract B);
//! - the policies: [`Ucb1`] bandits over refill counts and cache caps,
//!   [`Elo`]-rated strategies for a discrete knob with the LEARN → CANARY →
//!   FROZEN lifecycle (the decay delay and the pool/span threshold), and
//!   the [`Learner`] that runs them on drained events
//!   (workload-shift and idle detection included);
//! - [`profile`]: the learned state as a versioned, checksummed byte image.
//!
//! The background thread that drains the ring lives in the facade
//! (`hakmem::ace`), which owns the OS; this crate only decides.
//!
//! **Architecture Invariant:** this crate never sees a thread cache
//! (it does not depend on `tls-front`), and nothing here allocates.
#![no_std]

mod bandit;
mod elo;
mod learner;
pub mod math;
pub mod profile;
mod ring;

pub use bandit::Ucb1;
pub use elo::{Elo, EloConfig, Phase, Transition};
pub use learner::{
    arm_policy, Arm, Change, Learner, LearnerConfig, Sample, TickResult, ARMS, ARM_TABLE,
    DECAY_STRATEGIES, MAX_CACHE_BYTES, REGIMES, REGIME_NAMES, SPAN_STRATEGIES,
};
pub use ring::EventRing;

use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};

use atomic::Atomic;
use hakmem_ptr_bridge::{CLASS_SIZE, NUM_CLASSES};
use static_assertions::{assert_eq_size, assert_impl_all, const_assert};

/// What a slow path observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum EventKind {
    /// A thread cache was refilled (`count` blocks).
    Refill = 1,
    /// An overfull thread cache was flushed (`count` blocks).
    Flush = 2,
    /// A slab was taken from the backend.
    SlabAcquire = 3,
    /// An empty slab was given back.
    SlabRelease = 4,
    /// An ownerless slab was adopted.
    Adopt = 5,
    /// A span was mapped (`count` = size in KiB).
    SpanMap = 6,
    /// A span was unmapped (`count` = size in KiB).
    SpanUnmap = 7,
}

/// One observation; plain data, copied into the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// Size class (0 for spans).
    pub class: u8,
    /// Blocks (or KiB) involved.
    pub count: u32,
    /// Heap id of the thread that observed it.
    pub thread: u32,
}

// 12 bytes, plain data: copied into the ring's 16-byte slots, never
// referenced, nothing to drop (Contract C).
assert_eq_size!(Event, [u8; 12]);
assert_impl_all!(Event: Copy, Send, Sync);
const_assert!(!core::mem::needs_drop::<Event>());

/// Capacity of [`EVENTS`]: 16 384 events of 16 bytes (256 KiB in `.bss`,
/// untouched until learning is switched on).
pub const EVENT_RING_CAPACITY: usize = 16384;
const_assert!(EVENT_RING_CAPACITY.is_power_of_two() && EVENT_RING_CAPACITY < 1 << 30);

/// The ring every slow path writes to.
#[link_section = ".bss.hakmem_cold"] // after the rest of .bss: see crates/preload/layout.ld
pub static EVENTS: EventRing<EVENT_RING_CAPACITY> = EventRing::new();

/// Default number of blocks a refill brings for a class: about 16 KiB worth,
/// at least 2 and at most 64 blocks.
pub const fn default_refill(class: usize) -> u32 {
    let bs = CLASS_SIZE[class];
    let n = (16 * 1024) / bs;
    if n < 2 {
        2
    } else if n > 64 {
        64
    } else {
        n
    }
}

/// Default cache cap of a class: two refills' worth.
pub const fn default_cap(class: usize) -> u32 {
    let two = 2 * default_refill(class);
    // Tiny classes keep at least 128 blocks (at most 128 KiB at 1 KiB), so a
    // thread cycling a batch of ~100 blocks stays in its cache.
    if class < hakmem_ptr_bridge::NUM_TINY_CLASSES && two < 128 {
        128
    } else {
        two
    }
}

/// Most blocks one refill may bring under a prefill budget.
pub const MAX_PREFILL_BLOCKS: u32 = 1024;

/// Most bytes one refill may bring under a prefill budget.
pub const MAX_PREFILL_BYTES: u32 = 64 << 10;

/// The largest prefill budget of `class`, in blocks: the smaller of
/// [`MAX_PREFILL_BLOCKS`] and [`MAX_PREFILL_BYTES`] worth, at least 1.
pub const fn prefill_limit(class: usize) -> u32 {
    let n = MAX_PREFILL_BYTES / CLASS_SIZE[class];
    if n < 1 {
        1
    } else if n > MAX_PREFILL_BLOCKS {
        MAX_PREFILL_BLOCKS
    } else {
        n
    }
}

/// A process-wide knob, besides the per-class values, that the learner
/// may set through the policy table. The facade applies it to the box
/// that owns the real setting (it has no reader on any fast path).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Knob {
    /// Delay before released memory goes back to the OS, in ms
    /// (applied with `hakmem_superslab_backend::set_decay_ms`).
    DecayMs = 0,
    /// The pool/span threshold in bytes: requests above it become spans
    /// (applied with `hakmem::set_span_threshold`, which rewrites the
    /// route table: no fast-path cost).
    SpanThreshold = 1,
}

/// Number of [`Knob`]s.
pub const KNOBS: usize = 2;

impl Knob {
    /// Lower-case name (for logs and profiles).
    pub const fn name(self) -> &'static str {
        match self {
            Knob::DecayMs => "decay_ms",
            Knob::SpanThreshold => "span_threshold",
        }
    }
}

/// The per-class values a refill reads, as one 8-byte word
/// ([`PolicyTable::class_policy`]): one relaxed load gives all three, from
/// one cache line, and a reader never sees half of a change written in
/// one store. Each field is far below `u16::MAX` because the table clamps
/// it: refill 1..=1024, cap ..=4096, prefill ..=[`prefill_limit`] (≤
/// [`MAX_PREFILL_BLOCKS`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(8))]
pub struct ClassPolicy {
    /// Blocks the next refill brings ([`PolicyTable::refill_count`]).
    pub refill: u16,
    /// Most blocks a thread may cache ([`PolicyTable::cache_cap`]).
    pub cap: u16,
    /// The warm-pool prefill budget ([`PolicyTable::prefill`]; 0: none).
    pub prefill: u16,
    /// Always 0 (the struct has no padding: every byte is a field).
    reserved: u16,
}

impl ClassPolicy {
    const fn new(refill: u32, cap: u32) -> Self {
        ClassPolicy {
            refill: refill as u16,
            cap: cap as u16,
            prefill: 0,
            reserved: 0,
        }
    }
}

// SAFETY: `ClassPolicy` is `Copy` and `'static`, `repr(C)` with four `u16`
// fields and no padding (its size is exactly theirs, asserted below), so
// every byte of a value is initialised — what `NoUninit` (and
// `Atomic<ClassPolicy>`'s compare-exchange, which compares bytes) needs.
unsafe impl bytemuck::NoUninit for ClassPolicy {}

// No padding, and `Atomic<ClassPolicy>` is a native 64-bit atomic (size
// and alignment 8): loads and stores are plain `mov`s, never the `atomic`
// crate's lock-based fallback (which this crate does not enable either:
// a type that is not lock-free would panic instead of taking a lock).
assert_eq_size!(ClassPolicy, [u16; 4], u64);
const_assert!(core::mem::align_of::<ClassPolicy>() == 8);
const_assert!(Atomic::<ClassPolicy>::is_lock_free());
// The clamps keep every value in 16 bits.
const_assert!(MAX_REFILL < 1 << 16);
const_assert!(MAX_CACHE_CAP < 1 << 16);
const_assert!(MAX_PREFILL_BLOCKS < 1 << 16);

/// Largest refill count the table holds.
const MAX_REFILL: u32 = 1024;
/// Largest cache cap the table holds.
const MAX_CACHE_CAP: u32 = 4096;

/// The policy values the refill engine reads on every refill. Written by
/// configuration at start-up and, while learning runs, only through the
/// one [`PolicyWriter`] the learner holds.
pub struct PolicyTable {
    class: [Atomic<ClassPolicy>; NUM_CLASSES],
    knobs: [AtomicU32; KNOBS],
    observe: AtomicBool,
    sample_shift: AtomicU32,
    auto_sample: AtomicBool,
    writer: AtomicBool,
    writes: AtomicU64,
}

impl PolicyTable {
    /// The default policy.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        let class = {
            let mut a = [const { Atomic::new(ClassPolicy::new(0, 0)) }; NUM_CLASSES];
            let mut c = 0;
            while c < NUM_CLASSES {
                a[c] = Atomic::new(ClassPolicy::new(default_refill(c), default_cap(c)));
                c += 1;
            }
            a
        };
        PolicyTable {
            class,
            knobs: [const { AtomicU32::new(0) }; KNOBS],
            observe: AtomicBool::new(false),
            sample_shift: AtomicU32::new(0),
            auto_sample: AtomicBool::new(false),
            writer: AtomicBool::new(false),
            writes: AtomicU64::new(0),
        }
    }

    /// The refill count, cache cap and prefill budget of `class`, from one
    /// load (a refill reads all three).
    #[inline]
    pub fn class_policy(&self, class: usize) -> ClassPolicy {
        self.class[class].load(Relaxed)
    }

    /// Blocks the next refill of `class` should bring (≥ 1).
    #[inline]
    pub fn refill_count(&self, class: usize) -> u32 {
        (self.class_policy(class).refill as u32).max(1)
    }

    /// Most blocks a thread may cache for `class`.
    #[inline]
    pub fn cache_cap(&self, class: usize) -> u32 {
        self.class_policy(class).cap as u32
    }

    /// The warm-pool prefill budget of `class`: while it is non-zero, a
    /// refill of the class brings this many blocks instead of
    /// [`PolicyTable::refill_count`] when that is more (never more than
    /// the thread's cache cap allows, and never more than
    /// [`MAX_PREFILL_BLOCKS`] / [`MAX_PREFILL_BYTES`]). 0: no budget. The
    /// learner sets it for the classes that were busy before an idle trim,
    /// so that the first refills after the idle period refill a thread's
    /// cache in one batch instead of several, and clears it once activity
    /// has resumed.
    #[inline]
    pub fn prefill(&self, class: usize) -> u32 {
        self.class_policy(class).prefill as u32
    }

    /// Sets the refill count of `class` (clamped to 1..=1024).
    /// Configuration at start-up; the learner uses its [`PolicyWriter`].
    pub fn set_refill_count(&self, class: usize, n: u32) {
        let n = n.clamp(1, MAX_REFILL) as u16;
        self.update(class, |p| ClassPolicy { refill: n, ..p });
    }

    /// Sets the cache cap of `class` (clamped to 0..=4096).
    /// Configuration at start-up; the learner uses its [`PolicyWriter`].
    pub fn set_cache_cap(&self, class: usize, n: u32) {
        let n = n.min(MAX_CACHE_CAP) as u16;
        self.update(class, |p| ClassPolicy { cap: n, ..p });
    }

    /// Replaces one field of `class`'s entry (`f` changes only that one);
    /// returns true if the value changed. A compare-exchange loop, so that
    /// writers of different fields (configuration, the secure mode, the
    /// learner's writer) never undo each other.
    fn update(&self, class: usize, f: impl Fn(ClassPolicy) -> ClassPolicy) -> bool {
        let entry = &self.class[class];
        let mut old = entry.load(Relaxed);
        loop {
            let new = f(old);
            if new == old {
                return false;
            }
            match entry.compare_exchange_weak(old, new, Relaxed, Relaxed) {
                Ok(_) => return true,
                Err(now) => old = now,
            }
        }
    }

    /// The value the learner last wrote for `knob` (0: never written).
    #[inline]
    pub fn knob(&self, knob: Knob) -> u32 {
        self.knobs[knob as usize].load(Relaxed)
    }

    /// True when slow paths should emit events.
    #[inline]
    pub fn observing(&self) -> bool {
        self.observe.load(Relaxed)
    }

    /// Turns event emission on or off.
    pub fn set_observing(&self, on: bool) {
        self.observe.store(on, Relaxed);
    }

    /// Observation samples one slow-path event in `2^sample_shift`
    /// (0: every event). The learner raises it when events come faster
    /// than it needs them, so that the ring does not overflow and the
    /// producers rarely touch the ring's shared cursor.
    #[inline]
    pub fn sample_shift(&self) -> u32 {
        self.sample_shift.load(Relaxed)
    }

    /// A push found the ring full while sampling was `shift`: with
    /// automatic sampling on, sample a quarter as often from now on (until the
    /// learner lowers it again), so that a burst of slow-path activity
    /// costs a few drops rather than a ring's worth.
    #[cold]
    fn ring_full(&self, shift: u32) {
        if self.auto_sample.load(Relaxed) && shift < MAX_SAMPLE_SHIFT {
            let _ = self.sample_shift.compare_exchange(
                shift,
                (shift + 2).min(MAX_SAMPLE_SHIFT),
                Relaxed,
                Relaxed,
            );
        }
    }

    /// Values written through writers so far (changes only).
    pub fn writes(&self) -> u64 {
        self.writes.load(Relaxed)
    }

    /// Claims the table's one writer handle; `None` while another handle
    /// is alive. The handle is released when dropped.
    pub fn writer(&self) -> Option<PolicyWriter<'_>> {
        self.writer
            .compare_exchange(false, true, Acquire, Relaxed)
            .ok()
            .map(|_| PolicyWriter { table: self })
    }

    /// True while a writer handle is alive.
    pub fn has_writer(&self) -> bool {
        self.writer.load(Relaxed)
    }

    /// Forgets the writer handle held by a thread that no longer exists.
    ///
    /// # Safety
    /// Only in a child process right after `fork()`, when the thread that
    /// held the handle was not copied into the child (so the handle can
    /// never be used or dropped there).
    pub unsafe fn forget_writer_after_fork(&self) {
        self.writer.store(false, Release);
    }
}

/// The only way the learner changes allocator state (Contract B): it can
/// write the next refill count and cache cap of a class and the process
/// knobs, and nothing else — no thread cache, no slab, no OS call. Each
/// value takes effect when a reader next looks at it (the refill engine at
/// the next refill of that class).
///
/// There is at most one per table ([`PolicyTable::writer`]).
pub struct PolicyWriter<'a> {
    table: &'a PolicyTable,
}

impl core::fmt::Debug for PolicyWriter<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PolicyWriter")
    }
}

impl PolicyWriter<'_> {
    /// The table, for reading.
    pub fn table(&self) -> &PolicyTable {
        self.table
    }

    /// Sets the next refill count of `class`; returns true if it changed.
    pub fn set_refill_count(&self, class: usize, n: u32) -> bool {
        let n = n.clamp(1, MAX_REFILL) as u16;
        self.count(self.table.update(class, |p| ClassPolicy { refill: n, ..p }))
    }

    /// Sets the cache cap of `class` (applied by each thread at its next
    /// refill of the class); returns true if it changed.
    pub fn set_cache_cap(&self, class: usize, n: u32) -> bool {
        let n = n.min(MAX_CACHE_CAP) as u16;
        self.count(self.table.update(class, |p| ClassPolicy { cap: n, ..p }))
    }

    /// Sets the warm-pool prefill budget of `class` (see
    /// [`PolicyTable::prefill`]; clamped to [`prefill_limit`]); returns
    /// true if it changed.
    pub fn set_prefill(&self, class: usize, n: u32) -> bool {
        let n = n.min(prefill_limit(class)) as u16;
        self.count(
            self.table
                .update(class, |p| ClassPolicy { prefill: n, ..p }),
        )
    }

    /// Clears every class's prefill budget; returns the number changed.
    pub fn clear_prefill(&self) -> u32 {
        (0..NUM_CLASSES)
            .map(|c| self.set_prefill(c, 0) as u32)
            .sum()
    }

    /// Sets a process knob; returns true if it changed.
    pub fn set_knob(&self, knob: Knob, v: u32) -> bool {
        let old = self.table.knobs[knob as usize].swap(v, Relaxed);
        self.count(old != v)
    }

    /// Sets the observation sampling (one event in `2^shift`, at most
    /// [`MAX_SAMPLE_SHIFT`]); returns true if it changed. Not counted as a
    /// policy write: it changes what is observed, not the allocator.
    pub fn set_sample_shift(&self, shift: u32) -> bool {
        let s = shift.min(MAX_SAMPLE_SHIFT);
        self.table.sample_shift.swap(s, Relaxed) != s
    }

    /// Lets producers that find the ring full quarter the sampling rate
    /// themselves (see [`observe`]). Off: a full ring only drops.
    pub fn set_auto_sampling(&self, on: bool) {
        self.table.auto_sample.store(on, Relaxed);
    }

    fn count(&self, changed: bool) -> bool {
        if changed {
            self.table.writes.fetch_add(1, Relaxed);
        }
        changed
    }
}

impl Drop for PolicyWriter<'_> {
    fn drop(&mut self) {
        self.table.writer.store(false, Release);
    }
}

/// The one policy table of the process.
pub static POLICY: PolicyTable = PolicyTable::new();

/// Largest observation sampling shift (one event in 1024).
pub const MAX_SAMPLE_SHIFT: u32 = 10;

/// Records an event if observation is on (one in `2^sample_shift` when the
/// learner asked for sampling). Never blocks, never allocates: the event is
/// copied into [`EVENTS`], or dropped and counted when the ring is full
/// (and, with automatic sampling on, the sampling rate is quartered).
#[inline]
pub fn observe(ev: Event) {
    if POLICY.observing() {
        let s = POLICY.sample_shift();
        if (s == 0 || sampled(s)) && !EVENTS.push(ev) {
            POLICY.ring_full(s);
        }
    }
}

/// True for about one call in `2^shift`, without shared state: the
/// time-stamp counter's low bits (below the ~30 ns granule) are
/// independent of when slow paths run.
#[inline]
fn sampled(shift: u32) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC has no preconditions and touches no memory.
        let t = unsafe { core::arch::x86_64::_rdtsc() };
        (t >> 6) & ((1u64 << shift) - 1) == 0
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // A racy counter: lost updates only perturb the sampling.
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.load(Relaxed).wrapping_add(1);
        N.store(n, Relaxed);
        n & ((1u32 << shift) - 1) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_sane() {
        for c in 0..NUM_CLASSES {
            let r = default_refill(c);
            assert!((2..=64).contains(&r));
            let cap = default_cap(c);
            assert!(cap >= 2 * r, "class {c}: a cap below two refills thrashes");
            if c >= hakmem_ptr_bridge::NUM_TINY_CLASSES {
                assert_eq!(cap, 2 * r);
            } else {
                assert!(cap >= 128);
            }
        }
        assert_eq!(default_refill(0), 64);
        assert_eq!(default_refill(NUM_CLASSES - 1), 2);
    }

    #[test]
    fn policy_clamps() {
        let p = PolicyTable::new();
        p.set_refill_count(3, 0);
        assert_eq!(p.refill_count(3), 1);
        p.set_refill_count(3, 99_999);
        assert_eq!(p.refill_count(3), 1024);
        p.set_cache_cap(3, 10);
        assert_eq!(p.cache_cap(3), 10);
    }

    #[test]
    fn one_writer_at_a_time() {
        let p = PolicyTable::new();
        let w = p.writer().expect("first writer");
        assert!(p.writer().is_none(), "a second writer must be refused");
        assert!(w.set_refill_count(5, 7));
        assert!(!w.set_refill_count(5, 7), "unchanged value is no write");
        assert!(w.set_cache_cap(5, 9));
        assert!(w.set_knob(Knob::DecayMs, 250));
        assert_eq!(p.writes(), 3);
        assert_eq!((p.refill_count(5), p.cache_cap(5)), (7, 9));
        assert_eq!(p.knob(Knob::DecayMs), 250);
        drop(w);
        assert!(p.writer().is_some());
    }

    #[test]
    fn a_full_ring_halves_sampling_only_when_automatic() {
        let p = PolicyTable::new();
        p.ring_full(0);
        assert_eq!(p.sample_shift(), 0, "off: a full ring only drops");
        let w = p.writer().unwrap();
        w.set_auto_sampling(true);
        p.ring_full(0);
        p.ring_full(0); // a second producer that saw the same shift
        assert_eq!(p.sample_shift(), 2);
        p.ring_full(2);
        assert_eq!(p.sample_shift(), 4);
        w.set_sample_shift(MAX_SAMPLE_SHIFT);
        p.ring_full(MAX_SAMPLE_SHIFT);
        assert_eq!(p.sample_shift(), MAX_SAMPLE_SHIFT);
    }

    #[test]
    fn sampling_keeps_about_one_in_two_to_the_shift() {
        let hits = (0..200_000).filter(|_| sampled(4)).count();
        assert!((6_000..=20_000).contains(&hits), "{hits} of 200000 at 1/16");
        assert!((0..1000).all(|_| sampled(0)));
    }

    #[test]
    fn class_policy_is_one_lock_free_word() {
        // The const assertions above, checked where a reader can see them.
        assert!(Atomic::<ClassPolicy>::is_lock_free());
        assert_eq!(core::mem::size_of::<Atomic<ClassPolicy>>(), 8);
        let p = PolicyTable::new();
        let c = 40; // default refill 7, cap 14
        let w = p.writer().unwrap();
        assert!(w.set_refill_count(c, 5) && w.set_cache_cap(c, 3000));
        assert!(w.set_prefill(c, u32::MAX));
        assert_eq!(
            (p.refill_count(c), p.cache_cap(c), p.prefill(c)),
            (5, 3000, prefill_limit(c))
        );
        let snap = p.class_policy(c);
        assert_eq!(
            (snap.refill, snap.cap, snap.prefill, snap.reserved),
            (5, 3000, prefill_limit(c) as u16, 0)
        );
        // Other classes untouched; every field keeps its own clamp.
        assert_eq!(p.refill_count(c + 1), default_refill(c + 1));
        p.set_cache_cap(c, u32::MAX);
        assert_eq!(p.cache_cap(c), 4096);
        assert_eq!(p.refill_count(c), 5, "a cap write keeps the refill count");
    }

    #[test]
    fn concurrent_writers_of_different_fields_keep_both() {
        extern crate std;
        static P: PolicyTable = PolicyTable::new();
        let a = std::thread::spawn(|| {
            for i in 0..20_000u32 {
                P.set_refill_count(9, 1 + i % 1000);
            }
        });
        let b = std::thread::spawn(|| {
            for i in 0..20_000u32 {
                P.set_cache_cap(9, i % 4000);
            }
        });
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(P.refill_count(9), 1 + 19_999 % 1000);
        assert_eq!(P.cache_cap(9), 19_999 % 4000);
    }
}
