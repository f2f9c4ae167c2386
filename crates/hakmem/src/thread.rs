//! The per-thread state (cache front + heap) and its life cycle:
//! registration on the first slow path, hand-over at thread exit.
//!
//! The thread-local is zero-initialised TLS with no `Drop`, so nothing
//! allocates or registers a destructor for it; thread exit is observed with
//! a pthread key destructor instead (which does not allocate).

use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use core::sync::atomic::{AtomicU32, AtomicUsize};

use ace_learning::POLICY;
use ptr_bridge::NUM_CLASSES;
use refill_engine::{Heap, EXITED, UNREGISTERED};
use superslab_backend::SpanStash;
use tls_front::Front;

/// One thread's allocator state.
#[repr(C)]
pub(crate) struct ThreadState {
    pub(crate) front: Front, // hot path: per-class block lists
    pub(crate) heap: Heap,   // warm path: owned slabs per class
    pub(crate) published_cached: [u32; NUM_CLASSES], // statistics: cached count last published
    pub(crate) slow_events: u32, // statistics: events since last publication
    pub(crate) span_stash: SpanStash, // one freed span kept for this thread's next span
    pub(crate) quarantine: crate::secure::Quarantine, // secure mode: freed blocks not reused yet
}

impl ThreadState {
    #[allow(dead_code)] // used by the thread_local! fallback only
    const fn new() -> Self {
        ThreadState {
            front: Front::new(),
            heap: Heap::new(),
            published_cached: [0; NUM_CLASSES],
            slow_events: 0,
            span_stash: SpanStash::new(),
            quarantine: crate::secure::Quarantine::new(),
        }
    }
}

// The thread state is all-zero when fresh (null lists, caps 0, heap id 0 =
// unregistered), so it can live in zero-initialised TLS.
const _: () = assert!(UNREGISTERED == 0);

/// x86-64 Linux: the state is a `.tbss` symbol reached with the initial-exec
/// TLS model — a GOT load plus an `fs:` add, 2 instructions, where a Rust
/// `thread_local!` in a cdylib would call `__tls_get_addr` on every access.
/// (Consequence: `libhakmem.so` must be preloaded or linked, not `dlopen`ed
/// late, since it needs static TLS space.)
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod tls {
    use super::ThreadState;

    core::arch::global_asm!(
        ".pushsection .tbss,\"awT\",@nobits",
        ".p2align 6",
        ".globl hakmem_thread_state",
        ".hidden hakmem_thread_state",
        ".type hakmem_thread_state,@object",
        ".size hakmem_thread_state,{size}",
        "hakmem_thread_state:",
        ".zero {size}",
        ".popsection",
        size = const core::mem::size_of::<ThreadState>(),
    );

    /// The calling thread's state.
    #[inline(always)]
    pub(crate) fn state() -> *mut ThreadState {
        let p: *mut ThreadState;
        // SAFETY: reads the thread pointer (fs:0) and the GOT entry holding
        // the symbol's offset from it; writes only the output register and
        // flags. The symbol is a zero-initialised, 64-byte aligned TLS block
        // of exactly `size_of::<ThreadState>()` bytes, so the result is a
        // valid, aligned pointer to this thread's state.
        unsafe {
            core::arch::asm!(
                "mov {p}, qword ptr [rip + hakmem_thread_state@GOTTPOFF]",
                "add {p}, qword ptr fs:[0]",
                p = out(reg) p,
                options(pure, readonly, nostack),
            );
        }
        p
    }
}

/// Other targets: a plain `thread_local!` (const initialiser, no destructor).
#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
mod tls {
    use super::ThreadState;

    thread_local! {
        static TS: UnsafeCell<ThreadState> = const { UnsafeCell::new(ThreadState::new()) };
    }

    /// The calling thread's state.
    #[inline(always)]
    pub(crate) fn state() -> *mut ThreadState {
        TS.with(|t| t.get())
    }
}

pub(crate) use tls::state;

static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

/// 0 = not created, 1 = being created, 2 = created; the key is in KEY.
static KEY_STATE: AtomicU32 = AtomicU32::new(0);
static KEY: AtomicU32 = AtomicU32::new(0);

fn thread_key() -> Option<libc::pthread_key_t> {
    loop {
        match KEY_STATE.load(Acquire) {
            2 => return Some(KEY.load(Relaxed) as libc::pthread_key_t),
            0 => {
                if KEY_STATE.compare_exchange(0, 1, AcqRel, Acquire).is_ok() {
                    let mut k: libc::pthread_key_t = 0;
                    // SAFETY: `k` is a valid out-pointer; the destructor is
                    // an `extern "C"` function that lives for the process.
                    let rc = unsafe { libc::pthread_key_create(&mut k, Some(on_thread_exit)) };
                    if rc != 0 {
                        KEY_STATE.store(0, Release);
                        return None;
                    }
                    KEY.store(k as u32, Relaxed);
                    KEY_STATE.store(2, Release);
                    return Some(k);
                }
            }
            _ => core::hint::spin_loop(),
        }
    }
}

/// Gives the calling thread a heap id and arranges for its exit hook.
///
/// The id is stored *before* `pthread_setspecific`, which may itself call
/// `calloc` (keys past the first 32); that nested call then finds a
/// registered thread and proceeds normally.
///
/// # Safety
/// `t` is the calling thread's state and no reference into it is live.
#[cold]
pub(crate) unsafe fn register(t: *mut ThreadState) {
    let id = NEXT_ID.fetch_add(1, Relaxed);
    // SAFETY: `t` is ours; no borrow outlives this block.
    unsafe { (*t).heap.set_id(id) };
    // May register an exit hook (which may allocate): the id is set.
    crate::config::init();
    // SAFETY: as above.
    unsafe {
        for c in 0..NUM_CLASSES {
            (*t).front.set_cap(c, POLICY.cache_cap(c));
        }
    }
    if let Some(k) = thread_key() {
        // SAFETY: a valid key; the value only needs to be non-null so that
        // the destructor runs.
        unsafe { libc::pthread_setspecific(k, core::ptr::dangling::<libc::c_void>()) };
    }
}

/// The pthread key destructor: the thread is exiting.
extern "C" fn on_thread_exit(_: *mut libc::c_void) {
    let t = state();
    // SAFETY: this runs on the exiting thread, outside any allocator call,
    // so nothing else borrows its state.
    unsafe {
        crate::secure::drain(t);
        let ts = &mut *t;
        refill_engine::abandon_all(&mut ts.heap, &mut ts.front);
        ts.span_stash.flush();
        crate::stats::publish_all(ts);
        ts.heap.set_id(EXITED);
    }
}

/// Allocation on a thread whose exit hook already ran (other destructors
/// still allocating): take one block with a temporary heap, then hand
/// everything back at once so nothing stays owned by a dead thread.
///
/// # Safety
/// `t` is the calling thread's state and no reference into it is live.
#[cold]
pub(crate) unsafe fn exited_alloc(t: *mut ThreadState, class: usize) -> *mut u8 {
    // SAFETY: caller contract.
    let ts = unsafe { &mut *t };
    ts.heap.set_id(NEXT_ID.fetch_add(1, Relaxed));
    // SAFETY: the heap now has a valid id; the state is this thread's.
    let p = unsafe { refill_engine::refill(&mut ts.heap, &mut ts.front, class) };
    // SAFETY: as above; returns the rest of the refill.
    unsafe { refill_engine::abandon_all(&mut ts.heap, &mut ts.front) };
    crate::stats::publish_all(ts);
    ts.heap.set_id(EXITED);
    p
}

/// Hands back the calling thread's caches and slabs now (as at thread exit)
/// but keeps the thread usable: its next allocation simply refills.
pub fn flush_thread() {
    let t = state();
    // SAFETY: called outside any allocator call on this thread.
    unsafe {
        let ts = &mut *t;
        if ts.heap.id() == UNREGISTERED || ts.heap.id() == EXITED {
            return;
        }
        crate::secure::drain(t);
        let ts = &mut *t;
        refill_engine::abandon_all(&mut ts.heap, &mut ts.front);
        ts.span_stash.flush();
        crate::stats::publish_all(ts);
    }
}
