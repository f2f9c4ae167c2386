//! Fork safety for Rust users of `HakMem` (no libhakmem.so, so nothing but
//! the facade registers the atfork handlers): the process forks again and
//! again while three threads allocate tiny, mid and span blocks and free
//! each other's. Without the handlers a child can inherit a lock that a
//! parent thread held at the fork and hang on its first allocation.
//! Every child must allocate, check, free and exit within a time bound.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

/// Forks per run; `HAKMEM_FORK_TEST_FORKS=2000` for a long run.
fn forks() -> usize {
    std::env::var("HAKMEM_FORK_TEST_FORKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
}
/// A child that has not exited after this long is taken as hung.
const CHILD_LIMIT: Duration = Duration::from_secs(10);

/// Sizes that take every route: tiny, mid and span.
const SIZES: [usize; 6] = [24, 200, 3000, 20_000, 150_000, 600_000];

/// Allocates, fills, checks and frees through the facade only (the child
/// of a multi-threaded fork should not rely on std beyond that).
fn churn_once(round: usize) -> bool {
    let mut ok = true;
    let mut blocks = [(core::ptr::null_mut::<u8>(), 0usize); SIZES.len()];
    for (i, &n) in SIZES.iter().enumerate() {
        let p = hakmem::malloc(n);
        if p.is_null() {
            return false;
        }
        // SAFETY: `n` fresh bytes.
        unsafe { p.write_bytes((round + i) as u8, n) };
        blocks[i] = (p, n);
    }
    for (i, &(p, n)) in blocks.iter().enumerate() {
        // SAFETY: the live block written above.
        let s = unsafe { std::slice::from_raw_parts(p, n) };
        ok &= s.iter().all(|&b| b == (round + i) as u8);
        // SAFETY: live, freed once.
        unsafe { hakmem::free(p) };
    }
    ok
}

#[test]
fn children_of_a_busy_process_allocate_and_exit() {
    let stop = Arc::new(AtomicBool::new(false));
    // Three workers: each allocates every size and sends the blocks to the
    // next worker, which checks and frees them (remote frees in every tier).
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..3)
        .map(|_| mpsc::channel::<(usize, usize, u8)>())
        .unzip();
    let mut workers = Vec::new();
    for (w, rx) in rxs.into_iter().enumerate() {
        let tx = txs[(w + 1) % 3].clone();
        let stop = stop.clone();
        workers.push(std::thread::spawn(move || {
            let mut i = 0usize;
            while !stop.load(Relaxed) {
                let n = SIZES[i % SIZES.len()];
                let v = vec![(i % 251) as u8; n].into_boxed_slice();
                let p = Box::into_raw(v) as *mut u8 as usize;
                let _ = tx.send((p, n, (i % 251) as u8));
                while let Ok((p, n, fill)) = rx.try_recv() {
                    // SAFETY: a boxed slice of `n` bytes another worker sent.
                    let b = unsafe {
                        Box::from_raw(std::ptr::slice_from_raw_parts_mut(p as *mut u8, n))
                    };
                    assert!(b.iter().all(|&c| c == fill), "a handed block changed");
                }
                // Slab and span hand-backs take the backend's pool and
                // span cache locks: the locks a child must not inherit.
                if i.is_multiple_of(8) {
                    let a = vec![1u8; 300_000];
                    let b = vec![2u8; 500_000];
                    drop((a, b));
                }
                if i.is_multiple_of(16) {
                    hakmem::trim();
                }
                i += 1;
            }
            drop(tx);
            while let Ok((p, n, _)) = rx.recv_timeout(Duration::from_millis(100)) {
                // SAFETY: as above.
                drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(p as *mut u8, n)) });
            }
        }));
    }
    drop(txs);
    let mut hung = 0;
    let mut failed = 0;
    let forks = forks();
    for round in 0..forks {
        // SAFETY: the child calls only the facade and async-signal-safe
        // libc functions, then _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // trim takes every backend lock: a lock inherited in the held
            // state hangs the child here at the latest.
            hakmem::trim();
            let ok = (0..5).all(|r| churn_once(round + r));
            // SAFETY: leaves without running the test harness's exit path.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let start = Instant::now();
        let mut status = 0;
        loop {
            // SAFETY: our child; a valid out-pointer.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == pid {
                if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
                    failed += 1;
                }
                break;
            }
            if start.elapsed() > CHILD_LIMIT {
                // SAFETY: our child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                hung += 1;
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    stop.store(true, Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(
        (hung, failed),
        (0, 0),
        "of {forks} children: {hung} hung, {failed} failed"
    );
}

/// The slow start's total over all threads (`GROW_GLOBAL_BYTES` bounds it)
/// counts in a child only what the forking thread holds: the extras of the
/// parent's other threads were not copied.
#[test]
fn a_child_counts_only_its_own_slow_start_extras() {
    let (grown_tx, grown_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let other = std::thread::spawn(move || {
        // Batches of 40 blocks of 40 000 bytes, over a cache of a few:
        // the class's cap grows.
        for round in 0..4u8 {
            let blocks: Vec<*mut u8> = (0..40).map(|_| hakmem::malloc(40_000)).collect();
            for &p in &blocks {
                assert!(!p.is_null());
                // SAFETY: 40 000 fresh bytes.
                unsafe { p.write_bytes(round, 40_000) };
            }
            for p in blocks {
                // SAFETY: a block from hakmem::malloc above, freed once.
                unsafe { hakmem::free(p) };
            }
        }
        grown_tx.send(hakmem::debug::thread_grown_bytes()).unwrap();
        done_rx.recv().unwrap();
    });
    let theirs = grown_rx.recv().unwrap();
    assert!(theirs > 0, "the other thread's cap did not grow");
    let own = hakmem::debug::thread_grown_bytes();
    assert!(hakmem::debug::grown_all_bytes() >= own + theirs);
    // SAFETY: the child only reads two counters and exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = hakmem::debug::grown_all_bytes() == hakmem::debug::thread_grown_bytes();
        // SAFETY: ends the child without running the parent's exit hooks.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: our child, a valid out-pointer.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the child counted the parent's other threads: status {status:#x}"
    );
    done_tx.send(()).unwrap();
    other.join().unwrap();
}
