//! Multi-thread stress with hakmem as the global allocator of this test
//! binary: std itself (threads, channels, the test harness) runs on hakmem.
//! Threads churn `Vec`, `String`, `HashMap` and `Box`, hand boxed messages
//! to the next thread over mpsc channels and through a shared array of
//! atomically swapped slots, and verify every message they receive before
//! dropping it (a cross-thread free). Threads are torn down and recreated
//! between rounds.

mod common;

use std::collections::HashMap;
use std::sync::atomic::Ordering::{AcqRel, Relaxed};
use std::sync::atomic::{AtomicPtr, AtomicU64};
use std::sync::mpsc;
use std::sync::Arc;

use common::{mix, pattern_word, Rng};

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

const THREADS: usize = 8;
const ROUNDS: usize = 4;
const ITERS: usize = 1_200;
const TRANSFER_SLOTS: usize = 512;

/// A message whose every part can be recomputed from `(from, seq)`.
struct Msg {
    from: usize,
    seq: u64,
    words: Vec<u64>,
    text: String,
    map: HashMap<u32, String>,
    bytes: Box<[u8]>,
}

fn key(from: usize, seq: u64) -> u64 {
    mix(from as u64, seq)
}

/// Payload length in words: mostly tiny, some mid, a few up to 1 MiB.
fn words_len(k: u64) -> usize {
    match k % 1000 {
        0..=899 => (k >> 10) as usize % 128,
        900..=995 => 128 + (k >> 10) as usize % 8064,
        _ => 8192 + (k >> 10) as usize % (131_072 - 8192),
    }
}

fn make(from: usize, seq: u64) -> Box<Msg> {
    let k = key(from, seq);
    let n = words_len(k);
    let words: Vec<u64> = (0..n).map(|i| pattern_word(k, i)).collect();
    let text = format!("msg {from}/{seq} {}", "x".repeat((k % 200) as usize));
    let mut map = HashMap::new();
    for i in 0..(k % 12) as u32 {
        map.insert(i, format!("{k:x}-{i}"));
    }
    let blen = ((k >> 20) % 3000) as usize;
    let bytes: Box<[u8]> = (0..blen).map(|i| (k as usize + i) as u8).collect();
    Box::new(Msg {
        from,
        seq,
        words,
        text,
        map,
        bytes,
    })
}

/// Panics with a precise message when any part of `m` is wrong.
fn verify(m: &Msg, me: usize, via: &str) {
    let (from, seq) = (m.from, m.seq);
    let k = key(from, seq);
    let ctx = || format!("thread {me} received msg {from}/{seq} via {via}");
    assert_eq!(m.words.len(), words_len(k), "{}: words length", ctx());
    if let Some(i) = (0..m.words.len()).find(|&i| m.words[i] != pattern_word(k, i)) {
        panic!(
            "{}: words[{i}] = {:#x}, expected {:#x} (vec at {:p}, len {})",
            ctx(),
            m.words[i],
            pattern_word(k, i),
            m.words.as_ptr(),
            m.words.len()
        );
    }
    let text = format!("msg {from}/{seq} {}", "x".repeat((k % 200) as usize));
    assert_eq!(m.text, text, "{}: text", ctx());
    assert_eq!(m.map.len(), (k % 12) as usize, "{}: map size", ctx());
    for i in 0..(k % 12) as u32 {
        assert_eq!(
            m.map.get(&i),
            Some(&format!("{k:x}-{i}")),
            "{}: map[{i}]",
            ctx()
        );
    }
    let blen = ((k >> 20) % 3000) as usize;
    assert_eq!(m.bytes.len(), blen, "{}: bytes length", ctx());
    if let Some(i) = (0..blen).find(|&i| m.bytes[i] != (k as usize + i) as u8) {
        panic!("{}: bytes[{i}] = {:#04x}", ctx(), m.bytes[i]);
    }
}

struct Shared {
    transfer: Vec<AtomicPtr<Msg>>,
    received: AtomicU64,
    cross: AtomicU64,
}

fn worker(
    sh: &Shared,
    me: usize,
    tx: mpsc::Sender<Box<Msg>>,
    rx: mpsc::Receiver<Box<Msg>>,
) -> usize {
    let mut rng = Rng::new(me as u64 * 7919);
    let mut local: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut strings: Vec<String> = Vec::new();
    let mut got = 0usize;
    let mut take = |m: Box<Msg>, via: &str| {
        verify(&m, me, via);
        sh.received.fetch_add(1, Relaxed);
        if m.from != me {
            sh.cross.fetch_add(1, Relaxed);
        }
        got += 1;
        drop(m);
    };
    for seq in 0..ITERS as u64 {
        let m = make(me, seq);
        if rng.chance(50) {
            tx.send(m)
                .expect("receiver alive until all senders are gone");
        } else {
            let j = rng.below(TRANSFER_SLOTS);
            let old = sh.transfer[j].swap(Box::into_raw(m), AcqRel);
            if !old.is_null() {
                // SAFETY: every non-null slot holds a `Box<Msg>` from
                // `Box::into_raw`; the swap made it ours alone.
                take(unsafe { Box::from_raw(old) }, "transfer slot");
            }
        }
        while let Ok(m) = rx.try_recv() {
            take(m, "channel");
        }
        // Local churn: a map of byte vectors and a pile of strings.
        let k = rng.below(512) as u64;
        let len = rng.range(1, 2000);
        if let Some(v) = local.insert(k, vec![k as u8; len]) {
            assert!(
                v.iter().all(|&b| b == k as u8),
                "thread {me}: local map value corrupted"
            );
        }
        if rng.chance(30) {
            let k = rng.below(512) as u64;
            if let Some(v) = local.remove(&k) {
                assert!(
                    v.iter().all(|&b| b == k as u8),
                    "thread {me}: local map value corrupted"
                );
            }
        }
        strings.push(format!("{me}:{seq}"));
        if strings.len() > 300 {
            for (i, s) in strings.drain(..200).enumerate() {
                assert!(
                    s.starts_with(&format!("{me}:")),
                    "thread {me}: string {i} = {s:?}"
                );
            }
        }
    }
    drop(tx);
    for m in rx {
        take(m, "channel (drain)");
    }
    got
}

#[test]
fn std_collections_churn_across_threads_on_hakmem() {
    let sh = Arc::new(Shared {
        transfer: (0..TRANSFER_SLOTS)
            .map(|_| AtomicPtr::new(std::ptr::null_mut()))
            .collect(),
        received: AtomicU64::new(0),
        cross: AtomicU64::new(0),
    });
    let before = hakmem::stats();
    for round in 0..ROUNDS {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..THREADS).map(|_| mpsc::channel()).unzip();
        // Thread t sends to thread t+1.
        let mut rxs: Vec<Option<mpsc::Receiver<Box<Msg>>>> = rxs.into_iter().map(Some).collect();
        rxs.rotate_right(1);
        let handles: Vec<_> = txs
            .into_iter()
            .zip(rxs)
            .enumerate()
            .map(|(t, (tx, rx))| {
                let sh = Arc::clone(&sh);
                let me = round * THREADS + t;
                std::thread::Builder::new()
                    .name(format!("churn-{me}"))
                    .spawn(move || worker(&sh, me, tx, rx.unwrap()))
                    .unwrap()
            })
            .collect();
        for h in handles {
            h.join().expect("churn worker panicked");
        }
    }
    let mut leftover = 0;
    for slot in &sh.transfer {
        let p = slot.swap(std::ptr::null_mut(), AcqRel);
        if !p.is_null() {
            // SAFETY: as in the worker.
            let m = unsafe { Box::from_raw(p) };
            verify(&m, usize::MAX, "final drain");
            leftover += 1;
        }
    }
    let after = hakmem::stats();
    let received = sh.received.load(Relaxed) + leftover;
    let cross = sh.cross.load(Relaxed);
    let remote = after.remote_frees - before.remote_frees;
    println!(
        "global stress: {received} messages verified, {cross} freed by another thread, \
         {remote} hakmem remote frees, {} superslabs mapped",
        after.superslabs
    );
    assert_eq!(received, (ROUNDS * THREADS * ITERS) as u64, "messages lost");
    assert!(
        cross > received / 4,
        "only {cross} of {received} messages crossed threads"
    );
    assert!(remote > 0, "hakmem::stats().remote_frees did not move");
}
