//! The learning layer (ACE): its contracts A and B, the worker's life
//! cycle, the persisted profile, idle trim, fork, and the diagnostics.
//! Contract C (no allocation on the event path) is in `ace_alloc.rs`,
//! which needs its own `#[global_allocator]`.
//!
//! The event ring, the policy table and the worker are process-wide: the
//! tests here run one at a time.

mod common;

use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hakmem::ace::{self, AceConfig};
use hakmem::debug;
use hakmem_ace_learning::{observe, Event, EventKind, Knob, EVENTS, POLICY};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    ace::stop();
    ace::reset_policy();
    g
}

fn drain() {
    while EVENTS.pop().is_some() {}
}

/// Runs `f` on `threads` threads and waits at most `limit` for all of
/// them; a thread that does not finish in time fails the test (instead of
/// hanging it). Returns their results.
fn run_bounded<T: Send + 'static>(
    threads: usize,
    limit: Duration,
    f: impl Fn(usize) -> T + Send + Sync + Copy + 'static,
) -> Vec<T> {
    let (tx, rx) = mpsc::channel();
    for t in 0..threads {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let r = f(t);
            let _ = tx.send(r);
        });
    }
    drop(tx);
    let deadline = Instant::now() + limit;
    (0..threads)
        .map(|_| {
            let left = deadline.saturating_duration_since(Instant::now());
            rx.recv_timeout(left)
                .expect("a producer did not finish in time: a push blocked")
        })
        .collect()
}

/// Allocates and frees a mix of tiny, mid and span sizes, then hands the
/// thread's caches back so that the next round refills again.
fn churn(rounds: usize) {
    const SIZES: [usize; 7] = [16, 48, 200, 1000, 5000, 40_000, 100_000];
    let mut v = Vec::with_capacity(64 * SIZES.len());
    for _ in 0..rounds {
        for &s in &SIZES {
            for _ in 0..64 {
                let p = hakmem::malloc(s);
                assert!(!p.is_null());
                v.push(p);
            }
        }
        for p in v.drain(..) {
            // SAFETY: blocks allocated above, freed once.
            unsafe { hakmem::free(p) };
        }
        hakmem::flush_thread();
    }
}

fn ev(i: u32) -> Event {
    Event {
        kind: EventKind::Refill,
        class: (i % 80) as u8,
        count: i,
        thread: 7,
    }
}

/// Contract A: with the consumer stopped, producers fill the real ring
/// (through `observe`, the function the slow paths call); every push
/// returns promptly, the overflow is dropped and counted exactly.
/// A push that waited for room would never return here (nobody pops), and
/// `run_bounded` would fail the test.
#[test]
fn contract_a_full_ring_drops_counts_and_never_blocks() {
    let _g = serial();
    assert!(!ace::is_running());
    drain();
    POLICY.set_observing(true);
    let (p0, d0) = (EVENTS.pushed(), EVENTS.dropped());
    const THREADS: usize = 4;
    const PER: usize = 100_000;
    let worst = run_bounded(THREADS, Duration::from_secs(60), |t| {
        let mut worst = Duration::ZERO;
        for i in 0..PER {
            let s = Instant::now();
            observe(ev((t * PER + i) as u32));
            worst = worst.max(s.elapsed());
        }
        worst
    });
    let accepted = EVENTS.pushed() - p0;
    let dropped = EVENTS.dropped() - d0;
    assert_eq!(
        accepted + dropped,
        (THREADS * PER) as u64,
        "every push is accepted or counted as dropped"
    );
    assert_eq!(accepted, EVENTS.capacity() as u64, "the ring filled up");
    assert_eq!(EVENTS.len(), EVENTS.capacity());
    let worst = worst.into_iter().max().unwrap();
    assert!(worst < Duration::from_millis(200), "slowest push {worst:?}");

    // The real slow paths on a full ring: refills, flushes and span maps
    // keep running; their events are dropped and counted.
    let d1 = EVENTS.dropped();
    run_bounded(THREADS, Duration::from_secs(120), |_| churn(20));
    assert!(
        EVENTS.dropped() >= d1 + 100,
        "slow-path events were dropped: {}",
        EVENTS.dropped() - d1
    );
    let s = hakmem::stats();
    assert!(s.ace_dropped >= dropped && s.ace_drop_rate() > 0.5);
    POLICY.set_observing(false);
    drain();
}

/// Contract B by API: while the worker runs it holds the policy table's
/// only writer, so nothing else can write policy behind its back — and the
/// worker has nothing but that writer to change the allocator with.
#[test]
fn contract_b_worker_holds_the_only_writer() {
    let _g = serial();
    assert!(POLICY.writer().is_some(), "free while stopped");
    assert!(ace::start_with(AceConfig::default()));
    assert!(ace::is_running());
    assert!(
        POLICY.observing(),
        "observation is on while the worker runs"
    );
    assert!(POLICY.has_writer());
    assert!(POLICY.writer().is_none(), "the worker holds the writer");
    assert!(ace::stop());
    assert!(!POLICY.observing(), "observation is off once it stops");
    assert!(POLICY.writer().is_some(), "released at stop");
}

/// Contract B: a policy change does not touch any thread cache; a thread
/// applies the new cap only at its next refill of the class — not while it
/// keeps hitting in its cache.
#[test]
fn contract_b_policy_change_waits_for_the_next_refill() {
    let _g = serial();
    const SIZE: usize = 48;
    let class = hakmem_ptr_bridge::route_of(SIZE);
    hakmem::flush_thread();
    let first = hakmem::malloc(SIZE);
    let cap0 = debug::thread_cache_cap(class);
    let len0 = debug::thread_cache_len(class);
    assert_eq!(cap0, POLICY.cache_cap(class));
    assert!(len0 > 4, "a refill left blocks in the cache ({len0})");
    let (r0, c0) = (POLICY.refill_count(class), POLICY.cache_cap(class));
    {
        let w = POLICY.writer().expect("no worker running");
        assert!(w.set_refill_count(class, 5));
        assert!(w.set_cache_cap(class, 9));
    }
    // Written, but no cache changed.
    assert_eq!(debug::thread_cache_cap(class), cap0);
    assert_eq!(debug::thread_cache_len(class), len0);
    // Hits do not apply it either.
    let mut held: Vec<*mut u8> = (0..len0).map(|_| hakmem::malloc(SIZE)).collect();
    assert_eq!(debug::thread_cache_len(class), 0);
    assert_eq!(debug::thread_cache_cap(class), cap0);
    // The next miss refills: the new cap and count apply now.
    held.push(hakmem::malloc(SIZE));
    assert_eq!(debug::thread_cache_cap(class), 9);
    assert_eq!(debug::thread_cache_len(class), 4, "a refill of 5 left 4");
    // Restore and clean up.
    {
        let w = POLICY.writer().unwrap();
        w.set_refill_count(class, r0);
        w.set_cache_cap(class, c0);
    }
    held.push(first);
    for p in held {
        // SAFETY: allocated above, freed once.
        unsafe { hakmem::free(p) };
    }
    hakmem::flush_thread();
}

/// The warm-pool prefill budget: written to the policy table, it
/// changes no thread cache until the class's next refill, which then brings
/// the budget instead of the refill count — bounded by the thread's cache
/// cap and by `prefill_limit`; cleared, refills are back to the count.
#[test]
fn prefill_budget_applies_at_the_next_refill_and_is_bounded() {
    let _g = serial();
    const SIZE: usize = 64;
    let class = hakmem_ptr_bridge::route_of(SIZE);
    hakmem::flush_thread();
    let (r0, c0) = (POLICY.refill_count(class), POLICY.cache_cap(class));
    let mut held = vec![hakmem::malloc(SIZE)];
    let len0 = debug::thread_cache_len(class);
    assert_eq!(
        len0 as u32,
        r0 - 1,
        "a plain refill brings the refill count"
    );
    let budget = 3 * r0;
    assert!(budget <= hakmem_ace_learning::prefill_limit(class));
    {
        let w = POLICY.writer().expect("no worker running");
        // Room in the cache for the whole budget.
        w.set_cache_cap(class, 4 * r0);
        assert!(w.set_prefill(class, budget));
    }
    // Written, but no cache changed: hits do not look at it.
    assert_eq!(debug::thread_cache_len(class), len0);
    held.extend((0..len0).map(|_| hakmem::malloc(SIZE)));
    assert_eq!(debug::thread_cache_len(class), 0);
    // The next miss refills with the budget.
    held.push(hakmem::malloc(SIZE));
    assert_eq!(debug::thread_cache_len(class) as u32, budget - 1);
    // Bounded by the cache cap: a cap below the budget wins.
    held.extend((0..budget - 1).map(|_| hakmem::malloc(SIZE)));
    assert_eq!(debug::thread_cache_len(class), 0);
    {
        let w = POLICY.writer().unwrap();
        w.set_cache_cap(class, 2 * r0);
    }
    held.push(hakmem::malloc(SIZE));
    assert_eq!(debug::thread_cache_len(class) as u32, 2 * r0 - 1);
    // Bounded by the table: an absurd budget is clamped to the limit.
    {
        let w = POLICY.writer().unwrap();
        w.set_prefill(class, u32::MAX);
    }
    let limit = hakmem_ace_learning::prefill_limit(class);
    assert_eq!(POLICY.prefill(class), limit);
    assert!(limit as usize * SIZE <= hakmem_ace_learning::MAX_PREFILL_BYTES as usize);
    // Cleared: back to the refill count.
    held.extend((0..2 * r0 - 1).map(|_| hakmem::malloc(SIZE)));
    assert_eq!(debug::thread_cache_len(class), 0);
    {
        let w = POLICY.writer().unwrap();
        assert!(w.clear_prefill() >= 1);
        w.set_cache_cap(class, c0);
    }
    held.push(hakmem::malloc(SIZE));
    assert_eq!(debug::thread_cache_len(class) as u32, r0 - 1);
    for p in held {
        // SAFETY: allocated above, freed once.
        unsafe { hakmem::free(p) };
    }
    hakmem::flush_thread();
    assert_eq!(POLICY.refill_count(class), r0);
}

/// The worker drains the events the slow paths push, learns, applies the
/// decay knob to the backend and reports it all through `state()` and
/// `stats()`.
#[test]
fn worker_learns_from_slow_path_events() {
    let _g = serial();
    let cfg = AceConfig {
        tick_ms: 10,
        ..AceConfig::default()
    };
    assert!(ace::start_with(cfg.clone()));
    assert!(!ace::start_with(cfg), "a second start is refused");
    let before = ace::state();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        run_bounded(3, Duration::from_secs(60), |_| churn(10));
        let s = ace::state();
        if s.drained > before.drained + 1000 && s.ticks > before.ticks + 20 && s.decisions > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let s = ace::state();
    assert!(s.running);
    assert!(s.drained > before.drained + 1000, "drained {}", s.drained);
    assert!(s.ticks > before.ticks + 20);
    assert!(s.decisions > 0, "no decision after {} ticks", s.ticks);
    assert_eq!(
        s.decay_ms,
        POLICY.knob(Knob::DecayMs),
        "the knob is applied to the backend"
    );
    assert!(s.worker_cpu_ns > 0);
    let st = hakmem::stats();
    assert_eq!(st.ace_decisions, ace::decisions());
    for c in 0..80 {
        assert_eq!(st.classes[c].refill_count, POLICY.refill_count(c));
        assert_eq!(st.classes[c].cache_cap, POLICY.cache_cap(c));
    }
    assert!(ace::stop());
    assert!(!ace::stop(), "already stopped");
    assert!(!ace::state().running);
    assert!(ace::reset_policy());
    for c in 0..80 {
        assert_eq!(
            POLICY.refill_count(c),
            hakmem_ace_learning::default_refill(c)
        );
        assert_eq!(POLICY.cache_cap(c), hakmem_ace_learning::default_cap(c));
    }
}

/// Idle detection: no event for `idle_ms` → one trim, which returns the
/// memory released by a thread that exited.
#[test]
fn idle_process_is_trimmed() {
    let _g = serial();
    let mut cfg = AceConfig {
        tick_ms: 10,
        ..AceConfig::default()
    };
    cfg.learner.idle_ms = 100;
    assert!(ace::start_with(cfg));
    let t0 = ace::state().trims;
    std::thread::spawn(|| {
        let v: Vec<*mut u8> = (0..4000).map(|_| hakmem::malloc(16 << 10)).collect();
        for p in v {
            // SAFETY: allocated above, freed once.
            unsafe { hakmem::free(p) };
        }
    })
    .join()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while ace::state().trims == t0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let s = ace::state();
    assert!(s.trims > t0, "no idle trim");
    assert!(ace::stop());
}

fn tmp_profile(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hakmem-ace-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// The persisted context: saved at stop, loaded at the next start; a
/// corrupt or foreign file is rejected and the defaults are used.
#[test]
fn profile_round_trip_and_rejection() {
    let _g = serial();
    let path = tmp_profile("round-trip.prof");
    let _ = std::fs::remove_file(&path);
    let cfg = AceConfig {
        tick_ms: 10,
        profile: Some(path.clone()),
        ..AceConfig::default()
    };
    assert!(ace::start_with(cfg.clone()));
    assert!(!ace::state().profile_loaded, "no file yet");
    run_bounded(2, Duration::from_secs(60), |_| churn(10));
    std::thread::sleep(Duration::from_millis(100));
    assert!(ace::stop());
    let img = std::fs::read(&path).expect("profile written at stop");
    assert_eq!(img.len(), hakmem_ace_learning::profile::PROFILE_LEN);
    assert_eq!(&img[..8], b"HKACEPRF");
    let learned: Vec<(u32, u32)> = (0..80)
        .map(|c| (POLICY.refill_count(c), POLICY.cache_cap(c)))
        .collect();

    // Warm start: the saved policy is in force as soon as start returns.
    assert!(ace::reset_policy());
    assert!(ace::start_with(cfg.clone()));
    let s = ace::state();
    assert!(s.profile_loaded);
    let now: Vec<(u32, u32)> = (0..80)
        .map(|c| (POLICY.refill_count(c), POLICY.cache_cap(c)))
        .collect();
    assert_eq!(now, learned);
    assert!(ace::stop());

    // Corrupt: one flipped byte.
    let mut bad = img.clone();
    bad[200] ^= 0x40;
    std::fs::write(&path, &bad).unwrap();
    assert!(ace::reset_policy());
    let cfg_nosave = AceConfig {
        profile: Some(path.clone()),
        ..cfg.clone()
    };
    assert!(ace::start_with(cfg_nosave));
    assert!(!ace::state().profile_loaded, "corrupt profile rejected");
    for c in 0..80 {
        assert_eq!(
            POLICY.refill_count(c),
            hakmem_ace_learning::default_refill(c)
        );
    }
    assert!(ace::stop());

    // Foreign: not a profile at all.
    std::fs::write(&path, b"#!/bin/sh\necho not a profile\n").unwrap();
    assert!(ace::reset_policy());
    assert!(ace::start_with(cfg));
    assert!(!ace::state().profile_loaded, "foreign file rejected");
    assert!(ace::stop());
    assert!(ace::reset_policy());
    let _ = std::fs::remove_file(&path);
}

/// After fork the child has no worker: it is marked stopped, the writer
/// is free, observation is off, and a new worker can be started there.
#[test]
fn fork_child_restarts_cleanly() {
    let _g = serial();
    assert!(ace::start_with(AceConfig {
        tick_ms: 10,
        ..AceConfig::default()
    }));
    // SAFETY: the child only uses hakmem's API, the ACE worker and _exit;
    // an alarm kills it rather than letting a bug hang the test.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // SAFETY: plain libc calls in the child.
        unsafe { libc::alarm(20) };
        ace::after_fork_child();
        let mut ok = !ace::is_running()
            && ace::restart_pending()
            && !POLICY.observing()
            && !POLICY.has_writer()
            && EVENTS.is_empty();
        ok &= ace::start_with(AceConfig::default());
        ok &= ace::is_running() && !ace::restart_pending();
        churn(2);
        ok &= ace::stop();
        // SAFETY: leaves the child without running the test harness's
        // exit path.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: our child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child status {status:#x}"
    );
    assert!(ace::is_running(), "the parent's worker is untouched");
    assert!(ace::stop());
    assert!(ace::reset_policy());
}

/// `start_from_env` starts nothing unless HAKMEM_ACE says so.
#[test]
fn learning_is_off_by_default() {
    let _g = serial();
    if std::env::var_os("HAKMEM_ACE").is_none() {
        assert!(!ace::start_from_env());
        assert!(!ace::is_running());
        assert!(!POLICY.observing());
    }
}

/// The threshold knob, end to end: the worker moves the pool/span
/// threshold (its LEARN phase plays 16, 32 and 64 KiB) while threads keep
/// 20–48 KiB blocks alive across the changes; every block allocated under
/// one threshold keeps its contents and frees correctly under another
/// (frees go by what the registry says the pointer is, not by its size).
/// Then, with the worker stopped, a change takes effect at the very next
/// allocation and a slab block from before it still frees as a slab block.
#[test]
fn span_threshold_knob_moves_and_live_blocks_survive() {
    let _g = serial();
    let mut cfg = AceConfig {
        tick_ms: 10,
        ..AceConfig::default()
    };
    // The threshold alone (it waits for a FROZEN decay knob otherwise),
    // with short epochs.
    cfg.learner.bandit = false;
    cfg.learner.elo = false;
    cfg.learner.idle = false;
    cfg.learner.epoch_ms = 30;
    assert_eq!(hakmem::span_threshold(), 65536);
    assert!(ace::start_with(cfg));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..2)
        .map(|t| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                // 32 live blocks of 20–48 KiB, each filled with its own
                // byte; a random one is checked, freed and replaced.
                let mut live: Vec<(*mut u8, usize, u8)> = Vec::new();
                let mut x = 0x9E37_79B9u64 ^ t;
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) || n < 1000 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let size = (20 << 10) + (x as usize % (28 << 10));
                    let fill = (x >> 32) as u8;
                    let p = hakmem::malloc(size);
                    assert!(!p.is_null());
                    assert!(hakmem::usable_size(p) >= size);
                    // SAFETY: a fresh block of `size` bytes.
                    unsafe { std::ptr::write_bytes(p, fill, size) };
                    live.push((p, size, fill));
                    if live.len() > 32 {
                        let (q, qs, qf) = live.swap_remove((x >> 16) as usize % live.len());
                        // SAFETY: a live block of `qs` bytes we filled.
                        let b = unsafe { std::slice::from_raw_parts(q, qs) };
                        assert!(b.iter().all(|&v| v == qf), "block {q:p} corrupted");
                        // SAFETY: freed once.
                        unsafe { hakmem::free(q) };
                    }
                    n += 1;
                }
                for (q, qs, qf) in live {
                    // SAFETY: as above.
                    let b = unsafe { std::slice::from_raw_parts(q, qs) };
                    assert!(b.iter().all(|&v| v == qf), "block {q:p} corrupted");
                    // SAFETY: freed once.
                    unsafe { hakmem::free(q) };
                }
                n
            })
        })
        .collect();
    let mut seen = vec![hakmem::span_threshold()];
    let deadline = Instant::now() + Duration::from_secs(30);
    // The knob must leave its start-up value and finish a lifecycle:
    // either it tried every strategy, or it pruned the far ones after a
    // clear loss (the learner's rule) and froze.
    let mut froze = false; // FROZEN seen after a move (the phase may move on later)
    let done = |seen: &Vec<usize>, froze: bool| {
        (seen.len() >= 3 && seen.contains(&(16 << 10))) || (seen.len() >= 2 && froze)
    };
    while Instant::now() < deadline && !done(&seen, froze) {
        if seen.len() >= 2 && ace::state().span_phase == hakmem_ace_learning::Phase::Frozen {
            froze = true;
        }
        let t = hakmem::span_threshold();
        if !seen.contains(&t) {
            seen.push(t);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        assert!(w.join().expect("a worker thread failed") >= 1000);
    }
    let s = ace::state();
    assert!(ace::stop());
    assert!(done(&seen, froze), "thresholds seen {seen:?}, state {s:?}");
    assert_eq!(s.regime, "mid", "moving the threshold is no regime change");
    assert_eq!(
        POLICY.knob(Knob::SpanThreshold) as usize,
        hakmem::span_threshold()
    );

    // Deterministic part, worker stopped.
    hakmem::set_span_threshold(64 << 10);
    let spans = || hakmem::stats().large_allocs;
    let old = hakmem::malloc(40 << 10);
    let before = spans();
    hakmem::set_span_threshold(16 << 10);
    let new = hakmem::malloc(40 << 10);
    assert_eq!(spans(), before + 1, "the next allocation is a span");
    // SAFETY: live blocks of 40 KiB, written then freed once each.
    unsafe {
        std::ptr::write_bytes(old, 1, 40 << 10);
        std::ptr::write_bytes(new, 2, 40 << 10);
        hakmem::free(old);
        hakmem::free(new);
    }
    let again = hakmem::malloc(40 << 10);
    assert_eq!(spans(), before + 2);
    // SAFETY: live block, freed once.
    unsafe { hakmem::free(again) };
    assert!(ace::reset_policy());
    assert_eq!(
        hakmem::span_threshold(),
        65536,
        "reset restores the threshold"
    );
}

const LIFE_CHILD: &str = "HAKMEM_ACE_LIFE_CHILD";

/// The child of `a_program_whose_last_run_was_short_starts_no_worker`:
/// starts learning from the environment, prints whether a worker runs,
/// lives `HAKMEM_TEST_LIVE_MS` and exits (the exit hooks record the run).
#[test]
fn life_child() {
    if std::env::var_os(LIFE_CHILD).is_none() {
        return;
    }
    let started = ace::start_from_env();
    assert_eq!(started, ace::is_running());
    println!("worker={}", started as u8);
    let ms: u64 = std::env::var("HAKMEM_TEST_LIVE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    std::thread::sleep(Duration::from_millis(ms));
}

/// `HAKMEM_ACE_PROFILE` naming a directory keeps one profile per program
/// (named after the executable), and a program whose previous run lived
/// less than `HAKMEM_ACE_MIN_LIFE_MS` starts no worker thread; a long run
/// of it records that (at the path read at start, whatever the directory
/// at exit), and the next run starts the worker again.
#[test]
fn a_program_whose_last_run_was_short_starts_no_worker() {
    if std::env::var_os(LIFE_CHILD).is_some() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("hakmem-ace-life-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let profile_dir = format!("{}/", dir.display());
    let run_err = |live_ms: &str, min_life: Option<&str>| -> (bool, String) {
        // A limit well above what a quick child takes on a loaded machine
        // (start, join, saves).
        let env = vec![
            ("HAKMEM_ACE", "1"),
            ("HAKMEM_ACE_PROFILE", profile_dir.as_str()),
            ("HAKMEM_TEST_LIVE_MS", live_ms),
            ("HAKMEM_ACE_MIN_LIFE_MS", min_life.unwrap_or("1000")),
        ];
        let out = common::run_child(LIFE_CHILD, "life_child", &env);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let started = stdout.contains("worker=1");
        assert!(
            started || stdout.contains("worker=0"),
            "child said: {stdout}"
        );
        (started, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let run = |live_ms: &str, min_life: Option<&str>| run_err(live_ms, min_life).0;
    let files = || -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let life = || -> u32 {
        let f = files()
            .into_iter()
            .find(|f| f.ends_with(".ace.life"))
            .unwrap();
        std::fs::read_to_string(dir.join(f))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };

    // No profile yet: the worker starts, and its stop saves the profile
    // and the run's lifetime, in files named after this test binary.
    assert!(run("0", None), "a first run starts the worker");
    let exe = std::env::current_exe().unwrap();
    let name = exe.file_name().unwrap().to_string_lossy().into_owned();
    let got = files();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got[0].starts_with(&format!("{name}.")) && got[0].ends_with(".ace"),
        "{got:?}"
    );
    assert_eq!(got[1], format!("{}.life", got[0]));
    assert!(life() < 1000, "a quick run lived {} ms", life());

    // Its last run was short: no worker, and a short run writes nothing.
    assert!(!run("0", None), "a short program started the worker");
    assert!(life() < 1000);
    // `HAKMEM_ACE_MIN_LIFE_MS=0` always starts it.
    assert!(run("0", Some("0")));

    // A run without the worker that turns out long records it...
    assert!(!run("1100", None));
    // (The clock is the coarse one: a few ms of resolution.)
    assert!(life() >= 1050, "the long run recorded {} ms", life());
    // ...and the next run starts the worker again.
    assert!(run("0", None), "after a long run the worker starts");
    // A bad limit is reported once and the default (200 ms) applies to
    // the record the quick run above left (a few ms, unless the machine
    // is very loaded).
    let last = life();
    let (started, err) = run_err("0", Some("9999999"));
    let line = "hakmem: HAKMEM_ACE_MIN_LIFE_MS=9999999 ignored (not between 0 and 3600000)\n";
    assert_eq!(err.matches(line).count(), 1, "stderr: {err}");
    assert_eq!(
        started,
        last >= 200,
        "the default limit did not apply ({last} ms)"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
