//! The background purge (`HAKMEM_BACKGROUND`, `hakmem::background`): memory
//! freed by threads that then make no allocator call goes back to the OS
//! on the decay schedule; without the purge it stays; with the ACE worker
//! running one thread does both jobs; a forked child restarts it at its
//! next safe point.
//!
//! Each case runs in a child process (the test binary runs itself with
//! `--exact <case>` and `HAKMEM_BG_CHILD=1`), so that the purge thread, the
//! decay delay and the RSS of one case do not meet another's.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

const CHILD: &str = "HAKMEM_BG_CHILD";
const MIB: usize = 1 << 20;

fn in_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

/// Runs `case` (this test's own name) in a child with `env` (and no other
/// `HAKMEM_*` variable); returns its stderr.
fn child(case: &str, env: &[(&str, &str)]) -> String {
    let out = common::run_child(CHILD, case, env);
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Resident bytes from `/proc/self/statm`, read into a stack buffer (no
/// allocator call).
fn rss() -> usize {
    // SAFETY: a NUL-terminated path; the descriptor is closed below.
    let fd = unsafe { libc::open(c"/proc/self/statm".as_ptr(), libc::O_RDONLY) };
    assert!(fd >= 0);
    let mut buf = [0u8; 128];
    // SAFETY: reading into our own buffer.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    // SAFETY: our descriptor.
    unsafe { libc::close(fd) };
    assert!(n > 0);
    // Second field: resident pages.
    let mut field = 0;
    let mut pages = 0usize;
    for &b in &buf[..n as usize] {
        if b == b' ' {
            field += 1;
            if field == 2 {
                break;
            }
        } else if field == 1 {
            pages = pages * 10 + (b - b'0') as usize;
        }
    }
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize
}

/// Sleeps without the allocator (`nanosleep`).
fn nap(ms: u64) {
    let ts = libc::timespec {
        tv_sec: (ms / 1000) as libc::time_t,
        tv_nsec: ((ms % 1000) * 1_000_000) as libc::c_long,
    };
    // SAFETY: a valid timespec; an interrupted sleep is only shorter.
    unsafe { libc::nanosleep(&ts, core::ptr::null_mut()) };
}

/// Spins (with naps) until `a` reaches `n`; no allocator call.
fn wait_for(a: &AtomicUsize, n: usize) {
    while a.load(SeqCst) < n {
        nap(1);
    }
}

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);
static FREE_NOW: AtomicUsize = AtomicUsize::new(0);

const BLOCK: usize = 4096;
const PER_THREAD: usize = 96 * MIB;

/// The blocks the threads keep: one per 2 MiB superslab they used.
static KEPT: [AtomicUsize; 1024] = [const { AtomicUsize::new(0) }; 1024];
static KEPT_LEN: AtomicUsize = AtomicUsize::new(0);

/// One of the two threads: allocates and touches 96 MiB of 4 KiB blocks,
/// waits, frees them — all but the first block of each 2 MiB superslab,
/// so that the emptied slabs go back to the backend *dirty* (released,
/// their superslab still in use), not as whole empty superslabs, which
/// the backend unmaps at once once it keeps four — and exits: its exit
/// hook hands its slabs back to the backend.
fn worker() {
    let n = PER_THREAD / BLOCK;
    let mut blocks: Vec<*mut u8> = Vec::with_capacity(n);
    // The superslabs this thread has kept a block of. Not just the last
    // one: a refill may take the last blocks of one superslab and the
    // first of the next, and the cache then hands them out interleaved
    // (new, old, new); keeping a block at every change of superslab kept
    // two or three per superslab then, each pinning a slab of its own.
    let mut seen = [0usize; 512];
    let mut seen_len = 0;
    for i in 0..n {
        let p = hakmem::malloc(BLOCK);
        assert!(!p.is_null());
        // SAFETY: BLOCK fresh bytes.
        unsafe { p.write_bytes(i as u8 | 1, BLOCK) };
        let chunk = p as usize & !(hakmem::SUPERSLAB_SIZE - 1);
        if !seen[..seen_len].contains(&chunk) {
            seen[seen_len] = chunk;
            seen_len += 1;
            let k = KEPT_LEN.fetch_add(1, SeqCst);
            KEPT[k].store(p as usize, SeqCst);
        } else {
            blocks.push(p);
        }
    }
    ALLOCATED.fetch_add(1, SeqCst);
    wait_for(&FREE_NOW, 1);
    for &p in &blocks {
        // SAFETY: live blocks from hakmem::malloc, freed once.
        unsafe { hakmem::free(p) };
    }
}

/// What the main thread saw.
struct Outcome {
    start: usize,
    peak: usize,
    after_free: usize,
    /// RSS at the end of the wait.
    last: usize,
    /// Milliseconds after the frees when RSS went below start + 16 MiB.
    below_at_ms: Option<u64>,
}

/// The scenario: two threads allocate 192 MiB in all, free it and exit;
/// the main thread then watches RSS for 3 s without calling the
/// allocator, and frees the kept blocks last.
fn scenario() -> Outcome {
    let start = rss();
    let threads: Vec<_> = (0..2).map(|_| std::thread::spawn(worker)).collect();
    wait_for(&ALLOCATED, 2);
    let peak = rss();
    FREE_NOW.store(1, SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    let after_free = rss();
    // From here until the end of the wait: no allocator call in this
    // process except the purge's own (which makes none).
    let mut below_at_ms = None;
    let mut last = after_free;
    let mut waited = 0u64;
    while waited < 3000 {
        nap(20);
        waited += 20;
        last = rss();
        if last < start + 16 * MIB {
            below_at_ms = Some(waited);
            break;
        }
    }
    for k in &KEPT[..KEPT_LEN.load(SeqCst)] {
        // SAFETY: blocks the workers kept, freed once.
        unsafe { hakmem::free(k.load(SeqCst) as *mut u8) };
    }
    Outcome {
        start,
        peak,
        after_free,
        last,
        below_at_ms,
    }
}

fn describe(o: &Outcome) -> String {
    format!(
        "start {} MiB, peak {} MiB, right after the frees {} MiB, last {} MiB, below start + 16 MiB after {:?} ms",
        o.start / MIB,
        o.peak / MIB,
        o.after_free / MIB,
        o.last / MIB,
        o.below_at_ms
    )
}

#[test]
fn idle_memory_goes_back_with_the_background_purge() {
    if in_child() {
        // A Rust program with only the variable: the purge starts at its
        // first safe point.
        assert!(hakmem::background::start_from_env());
        let s = hakmem::background::state();
        assert!(s.enabled && s.thread_running && !s.by_ace, "{s:?}");
        assert_eq!(s.interval_ms, 250);
        let o = scenario();
        eprintln!("background purge: {}", describe(&o));
        assert!(o.peak >= o.start + 160 * MIB, "{}", describe(&o));
        assert!(o.below_at_ms.is_some(), "{}", describe(&o));
        let s = hakmem::background::state();
        // The purge ran; how much of the memory it returned itself is not
        // asserted: on a loaded machine the threads' own decay ticks
        // (LocalHeap::tick) can return the slabs before the purge's next
        // round, and then `purged_bytes` is 0 although RSS went down (seen
        // in CI: 196 -> 19 MiB with purged_bytes 0).
        assert!(s.purges > 0, "{s:?}");
        eprintln!("background purge: {s:?}");
        return;
    }
    child(
        "idle_memory_goes_back_with_the_background_purge",
        &[("HAKMEM_BACKGROUND", "1"), ("HAKMEM_DECAY_MS", "500")],
    );
}

#[test]
fn idle_memory_stays_without_the_background_purge() {
    if in_child() {
        assert!(!hakmem::background::start_from_env());
        assert!(!hakmem::background::state().thread_running);
        let o = scenario();
        eprintln!("no background purge: {}", describe(&o));
        assert!(o.peak >= o.start + 160 * MIB, "{}", describe(&o));
        assert!(o.below_at_ms.is_none(), "{}", describe(&o));
        assert!(o.last >= o.start + 150 * MIB, "{}", describe(&o));
        return;
    }
    child(
        "idle_memory_stays_without_the_background_purge",
        &[("HAKMEM_DECAY_MS", "500")],
    );
}

/// Threads of this process whose name is `name` (`/proc/self/task/*/comm`).
fn count_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
        .filter(|c| c.trim_end() == name)
        .count()
}

/// [`count_named`] once it has settled on `want` (a new thread names
/// itself when it starts running; an old one is gone once joined), or
/// what it is after 2 s.
fn threads_named(name: &str, want: usize) -> usize {
    for _ in 0..200 {
        if count_named(name) == want {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    count_named(name)
}

#[test]
fn the_ace_worker_does_the_purge_with_no_second_thread() {
    if in_child() {
        assert!(hakmem::ace::start_from_env());
        assert!(hakmem::background::start_from_env());
        hakmem::background::start().unwrap();
        let s = hakmem::background::state();
        assert!(s.enabled && s.by_ace && !s.thread_running, "{s:?}");
        assert_eq!(threads_named("hakmem-purge", 0), 0);
        assert_eq!(threads_named("hakmem-ace", 1), 1);
        // The worker's ticks run the purge step.
        let before = s.purges;
        std::thread::sleep(Duration::from_millis(400));
        assert!(hakmem::background::state().purges > before);
        // Without the worker the purge gets its own thread back.
        assert!(hakmem::ace::stop());
        let s = hakmem::background::state();
        assert!(s.enabled && s.thread_running && !s.by_ace, "{s:?}");
        assert_eq!(threads_named("hakmem-purge", 1), 1);
        // And gives it up again when the worker starts.
        assert!(hakmem::ace::start());
        let s = hakmem::background::state();
        assert!(s.by_ace && !s.thread_running, "{s:?}");
        assert_eq!(threads_named("hakmem-purge", 0), 0);
        assert!(hakmem::ace::stop());
        assert!(hakmem::background::stop());
        assert!(!hakmem::background::state().thread_running);
        assert_eq!(threads_named("hakmem-purge", 0), 0);
        return;
    }
    child(
        "the_ace_worker_does_the_purge_with_no_second_thread",
        &[
            ("HAKMEM_ACE", "1"),
            ("HAKMEM_BACKGROUND", "1"),
            ("HAKMEM_BACKGROUND_MS", "50"),
        ],
    );
}

#[test]
fn a_forked_child_restarts_the_purge_at_its_next_safe_point() {
    if in_child() {
        hakmem::background::start().unwrap();
        assert!(hakmem::background::state().thread_running);
        // SAFETY: the child only uses hakmem's API, std's thread spawn and
        // _exit; an alarm kills it rather than letting a bug hang the test.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // SAFETY: plain libc call.
            unsafe { libc::alarm(20) };
            let s = hakmem::background::state();
            let mut ok = !s.thread_running && s.restart_pending && !s.enabled;
            // A safe point: the purge is still wanted, so it starts again.
            ok &= hakmem::options::background();
            let s = hakmem::background::state();
            ok &= s.thread_running && !s.restart_pending;
            ok &= hakmem::background::stop();
            // SAFETY: leaves the child without the test harness's exit path.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: our child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child status {status:#x}"
        );
        assert!(
            hakmem::background::state().thread_running,
            "the parent's thread is untouched"
        );
        assert!(hakmem::background::stop());
        return;
    }
    child(
        "a_forked_child_restarts_the_purge_at_its_next_safe_point",
        &[],
    );
}
