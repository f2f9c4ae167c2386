//! The event ring ([`EventRing`], `EVENTS`) against crossbeam-queue's
//! `ArrayQueue` on the producer side: the measurement behind the
//! "Design-card packages" section of `docs/contracts.md`.
//!
//! ```sh
//! cargo build --release -p hakmem-ace-learning --example ring_vs_arrayqueue
//! B=target/release/examples/ring_vs_arrayqueue
//! # instructions per push and per pop: the queue methods' inclusive cost
//! # over their 101 000 calls (a `full` run also has the 16 384 pushes
//! # that fill the queue first)
//! valgrind --tool=callgrind --callgrind-out-file=cg.out $B ring pushpop 101000
//! callgrind_annotate --inclusive=yes cg.out | grep -E 'Queue>::(push|pop)'
//! # time per op, and 1..T producers against one draining consumer
//! $B ring time 10000000
//! $B arrayqueue time 10000000
//! ```
//!
//! `mode` is `pushpop` (push one event and pop it: the ring never fills),
//! `full` (push onto a full ring: every push is a counted drop) or `time`
//! (both, timed, then the multi-producer run). The `arrayqueue` variant is
//! what `EVENTS` would have to be with `ArrayQueue`: the queue plus the
//! shared counter of accepted events that `EVENTS.pushed()` reads (the
//! ring's tail position is that count; `ArrayQueue` does not expose its
//! tail) and the drop counter both keep.

use std::hint::black_box;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Instant;

use crossbeam_queue::ArrayQueue;
use hakmem_ace_learning::{Event, EventKind, EventRing, EVENT_RING_CAPACITY};

const CAP: usize = EVENT_RING_CAPACITY;

trait Queue: Sync {
    fn push(&self, ev: Event) -> bool;
    fn pop(&self) -> Option<Event>;
}

impl Queue for EventRing<CAP> {
    #[inline(never)]
    fn push(&self, ev: Event) -> bool {
        EventRing::push(self, ev)
    }
    #[inline(never)]
    fn pop(&self) -> Option<Event> {
        EventRing::pop(self)
    }
}

/// `ArrayQueue` with the two counters `EVENTS` keeps.
struct Aq {
    q: ArrayQueue<Event>,
    pushed: AtomicU64,
    dropped: AtomicU64,
}

impl Queue for Aq {
    #[inline(never)]
    fn push(&self, ev: Event) -> bool {
        match self.q.push(ev) {
            Ok(()) => {
                self.pushed.fetch_add(1, Relaxed);
                true
            }
            Err(_) => {
                self.dropped.fetch_add(1, Relaxed);
                false
            }
        }
    }
    #[inline(never)]
    fn pop(&self) -> Option<Event> {
        self.q.pop()
    }
}

fn ev(i: u32) -> Event {
    Event {
        kind: EventKind::Refill,
        class: 3,
        count: i,
        thread: 1,
    }
}

fn push_pop(q: &dyn Queue, n: u64) {
    for i in 0..n {
        black_box(q.push(ev(i as u32)));
        black_box(q.pop());
    }
}

fn fill(q: &dyn Queue) {
    while q.push(ev(0)) {}
}

fn push_full(q: &dyn Queue, n: u64) {
    for i in 0..n {
        black_box(q.push(ev(i as u32)));
    }
}

fn ns_per(n: u64, f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_nanos() as f64 / n as f64
}

/// `producers` threads push `n` events each while one consumer drains;
/// returns (ns per push as the producers see it, share accepted).
fn contended(q: &'static dyn Queue, producers: usize, n: u64) -> (f64, f64) {
    while q.pop().is_some() {}
    let stop = &*Box::leak(Box::new(AtomicBool::new(false)));
    let consumer = std::thread::spawn(move || {
        let mut got = 0u64;
        while !stop.load(Relaxed) {
            match q.pop() {
                Some(_) => got += 1,
                None => std::thread::yield_now(),
            }
        }
        got
    });
    let t = Instant::now();
    let hs: Vec<_> = (0..producers)
        .map(|_| {
            std::thread::spawn(move || {
                let mut ok = 0u64;
                for i in 0..n {
                    ok += q.push(ev(i as u32)) as u64;
                }
                ok
            })
        })
        .collect();
    let ok: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
    let ns = t.elapsed().as_nanos() as f64 / n as f64;
    stop.store(true, Relaxed);
    consumer.join().unwrap();
    (ns, ok as f64 / (n * producers as u64) as f64)
}

static RING: EventRing<CAP> = EventRing::new();

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map(String::as_str).unwrap_or("ring");
    let mode = args.get(2).map(String::as_str).unwrap_or("time");
    let n: u64 = args
        .get(3)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let q: &'static dyn Queue = match which {
        "ring" => &RING,
        "arrayqueue" => Box::leak(Box::new(Aq {
            q: ArrayQueue::new(CAP),
            pushed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        })),
        _ => {
            eprintln!("usage: ring_vs_arrayqueue ring|arrayqueue pushpop|full|time [N]");
            std::process::exit(2);
        }
    };
    match mode {
        "pushpop" => push_pop(q, n),
        "full" => {
            fill(q);
            push_full(q, n);
        }
        "time" => {
            push_pop(q, n / 10); // warm-up
            let pp = ns_per(n, || push_pop(q, n));
            fill(q);
            let full = ns_per(n, || push_full(q, n));
            println!("{which}: push+pop {pp:.2} ns, push onto a full ring {full:.2} ns");
            let threads = std::thread::available_parallelism().map_or(2, |p| p.get());
            let mut p = 1;
            while p < threads {
                let (ns, acc) = contended(q, p, n / 10);
                println!(
                    "{which}: {p} producer(s) + 1 consumer: {ns:.2} ns per push, {:.1} % accepted",
                    acc * 100.0
                );
                p *= 2;
            }
        }
        _ => {
            eprintln!("unknown mode {mode}");
            std::process::exit(2);
        }
    }
}
