//! Thread life cycle: frees after the owner exited, adoption of its slabs
//! by new threads, reuse of remotely freed blocks while the owner lives,
//! allocation from a thread whose exit hook already ran, and bounded memory
//! over hundreds of thread lifetimes. Every block is value-checked.
//!
//! The superslab count is process-wide, so the tests of this file run one
//! at a time (`SERIAL`); the test binary's own allocations use `System`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex, MutexGuard};

use common::{assert_pattern, fill, mix};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A block handed between threads: address, size, seed.
type Handed = (usize, usize, u64);

fn alloc_filled(size: usize, seed: u64) -> Handed {
    let p = hakmem::malloc(size);
    assert!(!p.is_null(), "malloc({size}) returned null");
    // SAFETY: `size` bytes of a fresh block.
    unsafe { fill(p, size, seed) };
    (p as usize, size, seed)
}

fn check_and_free((p, size, seed): Handed, what: &str) {
    let p = p as *mut u8;
    // SAFETY: a live block filled by `alloc_filled`.
    unsafe { assert_pattern(p, size, seed, what) };
    // SAFETY: live, freed once.
    unsafe { hakmem::free(p) };
}

const CYCLE_SIZES: [usize; 8] = [16, 48, 128, 256, 1000, 3000, 12_000, 40_000];
const PER_SIZE: usize = 48;
const CYCLES: usize = 200;
const WARMUP: usize = 20;
/// Superslabs the count may rise above its post-warm-up level.
const SLACK: usize = 4;

/// 200 times: a thread allocates blocks of several classes, frees half of
/// them itself and hands the other half (every other block, so that its
/// slabs stay partly used) to the main thread, then exits; the main thread
/// checks and frees them after the owner is gone. The next thread adopts
/// the orphaned slabs. The superslab count must not grow with the cycles.
#[test]
fn frees_after_owner_exit_and_adoption_keep_memory_bounded() {
    let _g = serial();
    let before = hakmem::stats();
    let mut baseline = 0;
    let mut peak = 0;
    let mut history = Vec::new();
    for cycle in 0..CYCLES {
        let handed: Vec<Handed> = std::thread::spawn(move || {
            let mut keep = Vec::new();
            let mut give = Vec::new();
            for (c, &size) in CYCLE_SIZES.iter().enumerate() {
                for k in 0..PER_SIZE {
                    let b = alloc_filled(size, mix(cycle as u64, (c * 1000 + k) as u64));
                    if k % 2 == 0 {
                        give.push(b);
                    } else {
                        keep.push(b);
                    }
                }
            }
            for b in keep {
                check_and_free(b, "free by the owner");
            }
            give
        })
        .join()
        .expect("cycle thread panicked");
        // The owner has exited (join returns after its exit hooks ran).
        for b in handed {
            check_and_free(b, "free after the owner exited");
        }
        let n = hakmem::stats().superslabs;
        history.push(n);
        if cycle + 1 == WARMUP {
            baseline = n;
        }
        if cycle >= WARMUP {
            peak = peak.max(n);
        }
    }
    let after = hakmem::stats();
    println!(
        "thread churn: superslabs {} after warm-up, peak {peak}, final {}; {} slabs adopted",
        baseline,
        after.superslabs,
        after.adopted_slabs - before.adopted_slabs
    );
    assert!(
        peak <= baseline + SLACK,
        "superslab count grew with thread churn: {baseline} after {WARMUP} cycles, peak {peak} \
         over {CYCLES} cycles; history: {history:?}"
    );
    assert!(
        after.adopted_slabs > before.adopted_slabs,
        "no slab was adopted: orphaned slabs are not reused"
    );
}

const PC_BLOCKS: usize = 100_000;
const PC_SIZES: [usize; 5] = [32, 100, 512, 1024, 2048];

/// A producer allocates 100 000 blocks and hands each to a consumer thread
/// (bounded channel) that checks and frees it: every free is remote while
/// the owner is alive. The producer must reuse those blocks — about 74 MB
/// pass through, which would be ~37 superslabs without reuse.
#[test]
fn remotely_freed_blocks_are_reused_while_owner_lives() {
    let _g = serial();
    let (tx, rx) = mpsc::sync_channel::<Handed>(256);
    let consumer = std::thread::spawn(move || {
        let mut n = 0usize;
        for b in rx {
            check_and_free(b, "consumer free");
            n += 1;
        }
        n
    });
    let producer = std::thread::spawn(move || {
        let mut baseline = 0;
        let mut peak = 0;
        for i in 0..PC_BLOCKS {
            let size = PC_SIZES[i % PC_SIZES.len()];
            tx.send(alloc_filled(size, mix(0xFEED, i as u64))).unwrap();
            if i % 1000 == 999 {
                let n = hakmem::stats().superslabs;
                if i < 10_000 {
                    baseline = baseline.max(n);
                } else {
                    peak = peak.max(n);
                }
            }
        }
        (baseline, peak)
    });
    let (baseline, peak) = producer.join().expect("producer panicked");
    let consumed = consumer.join().expect("consumer panicked");
    println!("producer/consumer: superslabs {baseline} after 10k blocks, peak {peak} after");
    assert_eq!(consumed, PC_BLOCKS);
    assert!(
        peak <= baseline + SLACK,
        "remotely freed blocks are not reused: superslabs {baseline} after 10 000 blocks, \
         peak {peak} over {PC_BLOCKS}"
    );
}

/// Frees done by a thread that never allocates from hakmem (a pure
/// consumer) are remote frees and must show up in `stats().remote_frees`
/// once that thread has exited. (The thread must not call `stats()` itself:
/// that publishes its counters and would hide the bug.)
#[test]
fn remote_frees_of_a_free_only_thread_are_counted() {
    let _g = serial();
    // Not a multiple of any plausible publication batch.
    const N: usize = 1001;
    let blocks: Vec<Handed> = (0..N).map(|i| alloc_filled(64, i as u64)).collect();
    let before = hakmem::stats().remote_frees;
    std::thread::spawn(move || {
        for b in blocks {
            check_and_free(b, "free-only thread");
        }
    })
    .join()
    .unwrap();
    let after = hakmem::stats().remote_frees;
    assert!(
        after - before >= N as u64,
        "stats().remote_frees rose by {} after a thread that only freed {N} blocks of another \
         thread exited: the counters of a thread that never allocated (never registered, so \
         its exit hook never runs) are not published",
        after - before
    );
}

/// Blocks the pthread-key destructor below allocated and freed (it runs
/// after hakmem's exit hook, whose key was created first).
static LATE_BLOCKS: Mutex<Vec<Handed>> = Mutex::new(Vec::new());
static LATE_RUNS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn late_destructor(_: *mut libc::c_void) {
    let run = LATE_RUNS.fetch_add(1, Ordering::Relaxed) as u64;
    let mut v = Vec::new();
    for (i, &size) in [16usize, 200, 1000, 5000, 40_000, 100_000]
        .iter()
        .enumerate()
    {
        let a = alloc_filled(size, mix(run, i as u64));
        let b = alloc_filled(size, mix(run, 100 + i as u64));
        check_and_free(b, "free in a late destructor");
        v.push(a);
    }
    LATE_BLOCKS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend(v);
}

/// A thread whose hakmem exit hook already ran (another library's TLS
/// destructor running later) can still allocate and free; what it allocated
/// is intact and freeable by another thread, and nothing stays owned by the
/// dead thread (repeated 50 times, memory stays bounded).
#[test]
fn allocation_after_the_exit_hook() {
    let _g = serial();
    // Registers this thread, so hakmem's pthread key exists before ours.
    check_and_free(alloc_filled(64, 1), "warm-up");
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: a valid out-pointer and an `extern "C"` destructor that lives
    // for the whole process.
    let rc = unsafe { libc::pthread_key_create(&mut key, Some(late_destructor)) };
    assert_eq!(rc, 0);
    let mut history = Vec::new();
    for round in 0..50u64 {
        std::thread::spawn(move || {
            check_and_free(alloc_filled(128, round), "ordinary free");
            // SAFETY: a valid key; the value only needs to be non-null.
            unsafe {
                libc::pthread_setspecific(
                    key,
                    &LATE_RUNS as *const AtomicUsize as *const libc::c_void,
                )
            };
        })
        .join()
        .unwrap();
        let late = std::mem::take(&mut *LATE_BLOCKS.lock().unwrap());
        assert_eq!(late.len(), 6, "the late destructor did not run");
        for b in late {
            check_and_free(b, "free of a block allocated after the exit hook");
        }
        history.push(hakmem::stats().superslabs);
    }
    // SAFETY: the key was created above and no thread uses it any more.
    unsafe { libc::pthread_key_delete(key) };
    assert_eq!(LATE_RUNS.load(Ordering::Relaxed), 50);
    let (first, last) = (history[9], *history.iter().max().unwrap());
    assert!(
        last <= first + SLACK,
        "allocations after the exit hook leak superslabs: {history:?}"
    );
}
