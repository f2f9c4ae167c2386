//! Contract C of the learning layer: events are plain `Copy` data copied
//! into a pre-allocated ring, and **nothing on the event path allocates**.
//!
//! This test binary's global allocator is hakmem wrapped in a counter that
//! counts every allocation made by a thread while its counting flag is on.
//! The event path — `observe` directly, and the real slow paths (refills,
//! flushes, slab traffic, span map/unmap) with observation on — runs with
//! the flag on and must not allocate once. (A `Vec` or a `Box` anywhere on
//! that path would be counted: the first check shows the counter works.)

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use hakmem::HakMem;
use hakmem_ace_learning::{observe, Event, EventKind, EVENTS, POLICY};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    // Const-initialised, no destructor: reading it never allocates.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    if COUNTING.with(|c| c.get()) {
        ALLOCS.fetch_add(1, Relaxed);
    }
}

// SAFETY: forwards every call to HakMem unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded contract.
        unsafe { HakMem.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded contract.
        unsafe { HakMem.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count();
        // SAFETY: forwarded contract.
        unsafe { HakMem.realloc(p, l, n) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: forwarded contract.
        unsafe { HakMem.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn counted<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let a0 = ALLOCS.load(Relaxed);
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    (r, ALLOCS.load(Relaxed) - a0)
}

#[test]
fn no_allocation_on_the_event_path() {
    fn is_plain_data<T: Copy + Send + Sync + 'static>() {}
    is_plain_data::<Event>();
    assert!(!std::mem::needs_drop::<Event>());

    // The counter has teeth: a Vec on the path would be seen.
    let (_, n) = counted(|| std::hint::black_box(Vec::<u8>::with_capacity(32)));
    assert_eq!(n, 1, "the counting allocator counts");

    // Learning on (no worker: the ring fills and then drops — both paths
    // are exercised).
    while EVENTS.pop().is_some() {}
    POLICY.set_observing(true);
    let offered0 = EVENTS.pushed() + EVENTS.dropped();

    // 1. The event path itself: 100 000 events built on the stack.
    let (_, n) = counted(|| {
        for i in 0..100_000u32 {
            observe(Event {
                kind: EventKind::Refill,
                class: (i % 80) as u8,
                count: i,
                thread: 1,
            });
        }
    });
    assert_eq!(n, 0, "observe allocated {n} times");
    while EVENTS.pop().is_some() {}

    // 2. The real slow paths emitting events: refills and flushes in tiny
    //    and mid classes, slab acquire/release, span map/unmap.
    let sizes = [16usize, 48, 200, 1000, 5000, 40_000, 100_000, 3 << 20];
    let mut slots = [std::ptr::null_mut::<u8>(); 256];
    let (_, n) = counted(|| {
        for _ in 0..20 {
            for &s in &sizes {
                for p in slots.iter_mut() {
                    *p = hakmem::malloc(s);
                    assert!(!p.is_null());
                }
                for p in slots.iter() {
                    // SAFETY: allocated just above, freed once.
                    unsafe { hakmem::free(*p) };
                }
            }
            hakmem::flush_thread();
        }
    });
    assert_eq!(n, 0, "the slow paths allocated {n} times with learning on");
    let offered = EVENTS.pushed() + EVENTS.dropped() - offered0;
    assert!(offered > 100_000 + 1000, "events offered: {offered}");
    POLICY.set_observing(false);
    while EVENTS.pop().is_some() {}
}
