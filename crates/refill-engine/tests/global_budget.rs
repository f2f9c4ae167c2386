//! The slow start's bound over all threads (`GROW_GLOBAL_BYTES`), in a
//! process of its own: the total it checks is process-wide, and the tests
//! of `engine.rs` grow caps in parallel.

use std::sync::{Arc, Barrier, Mutex};

use hakmem_ace_learning::POLICY;
use hakmem_ptr_bridge::{CLASS_SIZE, NUM_CLASSES};
use hakmem_refill_engine::{
    abandon_all, grow_limit, grown_all_bytes, Heap, GROW_GLOBAL_BYTES, GROW_MID_BLOCKS,
    GROW_THREAD_BYTES,
};
use hakmem_tls_front::Front;

mod common;
use common::batch_rounds;

#[test]
fn the_growth_of_all_threads_stays_within_the_global_budget() {
    const THREADS: usize = 12;
    let classes: Vec<usize> = (1..=8).map(|k| NUM_CLASSES - k).collect();
    let per_thread: usize = classes
        .iter()
        .map(|&c| {
            let base = POLICY.cache_cap(c);
            ((grow_limit(c, base) - base) * CLASS_SIZE[c]) as usize
        })
        .sum::<usize>()
        .min(GROW_THREAD_BYTES);
    assert!(
        THREADS * per_thread > GROW_GLOBAL_BYTES,
        "the threads fit the global budget"
    );
    // One thread grows at a time, so the bound is exact (concurrent growths
    // may pass it by a few classes' worth).
    let turn = Arc::new(Mutex::new(()));
    let grown = Arc::new(Barrier::new(THREADS + 1));
    let done = Arc::new(Barrier::new(THREADS + 1));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (turn, grown, done, classes) =
                (turn.clone(), grown.clone(), done.clone(), classes.clone());
            std::thread::spawn(move || {
                let mut heap = Heap::new();
                heap.set_id(8001 + t);
                let mut front = Front::new();
                {
                    let _g = turn.lock().unwrap();
                    for &c in &classes {
                        // Batches larger than the grown cap: the class grows as
                        // far as the budgets allow.
                        batch_rounds(&mut heap, &mut front, c, 2 * GROW_MID_BLOCKS as usize, 3);
                    }
                    assert!(heap.grown_bytes() <= GROW_THREAD_BYTES);
                }
                let mine = heap.grown_bytes();
                grown.wait();
                done.wait();
                // SAFETY: this thread's heap and front.
                unsafe { abandon_all(&mut heap, &mut front) };
                assert_eq!(heap.grown_bytes(), 0);
                mine
            })
        })
        .collect();
    grown.wait();
    let all = grown_all_bytes();
    assert!(
        all <= GROW_GLOBAL_BYTES,
        "{all} bytes grown over all threads"
    );
    let largest = classes
        .iter()
        .map(|&c| CLASS_SIZE[c] as usize)
        .max()
        .unwrap();
    assert!(
        all + GROW_MID_BLOCKS as usize * largest > GROW_GLOBAL_BYTES,
        "the global budget was not used: {all} bytes"
    );
    done.wait();
    let mine: Vec<usize> = threads.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        mine.iter().sum::<usize>(),
        all,
        "per-thread totals: {mine:?}"
    );
    assert!(
        mine.iter().any(|&m| m < per_thread),
        "every thread grew as if alone: {mine:?}"
    );
    assert_eq!(grown_all_bytes(), 0, "thread exits gave every extra back");
}
