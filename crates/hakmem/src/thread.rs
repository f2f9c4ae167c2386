//! The per-thread state (cache front + heap) and its life cycle: creation
//! and registration on the first slow path, hand-over at thread exit.
//!
//! The thread-local is one word with no `Drop`, so nothing allocates or
//! registers a destructor for it; the state itself lives in a pool of
//! slots of hakmem's own. Thread exit is observed with a
//! pthread key destructor (which does not allocate).

use core::sync::atomic::AtomicU32;
use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};

use hakmem_ace_learning::POLICY;
use hakmem_ptr_bridge::NUM_CLASSES;
use hakmem_refill_engine::LocalHeap;

/// One thread's allocator state: the engine's [`LocalHeap`] (cache, heap,
/// span stash, counters, lifecycle) first — the fast paths reach its cache
/// and heap id at fixed offsets from the TLS pointer — then what only the
/// facade uses.
#[repr(C)]
pub(crate) struct ThreadState {
    pub(crate) local: LocalHeap, // cache front, heap, span stash, counters
    pub(crate) published_cached: [u32; NUM_CLASSES], // statistics: cached count last published
    pub(crate) published_pushes: [u64; NUM_CLASSES], // statistics: push count last published
    pub(crate) quarantine: crate::secure::Quarantine, // secure mode: freed blocks not reused yet
}

impl ThreadState {
    const fn new() -> Self {
        ThreadState {
            local: LocalHeap::new(),
            published_cached: [0; NUM_CLASSES],
            published_pushes: [0; NUM_CLASSES],
            quarantine: crate::secure::Quarantine::new(),
        }
    }

    const fn exited() -> Self {
        let mut t = ThreadState::new();
        t.local = LocalHeap::exited();
        t
    }
}

// ---------------------------------------------------------------------------
// The thread-local word and its life cycle.
//
// Each thread's TLS holds one word: a pointer to its `ThreadState`, which
// lives in hakmem's own metadata (the slot pool below). A state of about
// 10 KB in static TLS does not fit glibc's surplus for libraries loaded
// with dlopen (a cdylib with `HakMem`, `ctypes.CDLL("libhakmem.so")`); one
// word does.
//
// Life cycle, told by the word:
//
// | word     | lifecycle (heap id)    | meaning                                |
// |----------|------------------------|----------------------------------------|
// | &FRESH   | Unregistered (0)       | no allocator call yet (the TLS image)  |
// | a slot   | Active (its heap id)   | live: registered, exit hook armed      |
// | &EXITED_ | Exited (EXITED)        | its exit hook ran; the slot went back  |
//
// FRESH and EXITED_STATE are statics that nothing ever writes: their lists
// are empty, so malloc's pop misses without a test of its own, and their
// heap ids are no slab's owner, so free never pushes on them. Both take
// the slow path, where [`run`] creates the state (fresh) or lends a
// temporary one for the call (exited). The fast paths thus cost what they
// did when the whole state sat in TLS.
// ---------------------------------------------------------------------------

/// The state of a fresh thread, which nothing writes (see above). The
/// `UnsafeCell` only tells the compiler that the static lies in writable
/// memory: all zero, it then goes to `.bss`, not `.rodata`, where its 11 KB
/// pushed the size-class tables that the first refill reads into a second
/// 64 KiB window of file pages (docs/benchmarks.md, "Footprint cuts").
/// Nothing writes it all the same.
#[repr(transparent)]
struct Shared(core::cell::UnsafeCell<ThreadState>);
// SAFETY: never written (only a live thread's own state is ever written,
// and this is never a live thread's state), so sharing it is sound.
unsafe impl Sync for Shared {}

/// The state of an exited thread, which nothing writes either. It stays
/// in `.rodata` (its heap id is not zero, so it cannot go to `.bss`; in
/// `.data` it made the data segment's first read fault map 24 KiB more).
#[repr(transparent)]
struct SharedRo(ThreadState);
// SAFETY: as for `Shared`: never written.
unsafe impl Sync for SharedRo {}

/// The state of a thread before its first call.
#[link_section = ".bss.hakmem_cold"] // never written: see crates/preload/layout.ld
static FRESH: Shared = Shared(core::cell::UnsafeCell::new(ThreadState::new()));
/// The state of a thread after its exit hook.
static EXITED_STATE: SharedRo = SharedRo(ThreadState::exited());

fn fresh() -> *mut ThreadState {
    &FRESH as *const Shared as *mut ThreadState
}

fn exited() -> *mut ThreadState {
    &EXITED_STATE as *const SharedRo as *mut ThreadState
}

/// x86-64 Linux (default): the word is a `.tdata` symbol whose image is
/// `&FRESH`, reached with the initial-exec TLS model — a GOT load of its
/// offset and an `fs:` load, 2 instructions, where a `thread_local!` in a
/// cdylib calls `__tls_get_addr` on every access.
#[cfg(all(
    target_arch = "x86_64",
    target_os = "linux",
    not(feature = "dynamic-tls")
))]
mod tls {
    use super::{ThreadState, FRESH};

    core::arch::global_asm!(
        ".pushsection .tdata,\"awT\",@progbits",
        ".p2align 3",
        ".globl hakmem_tls",
        ".hidden hakmem_tls",
        ".type hakmem_tls,@object",
        ".size hakmem_tls,8",
        "hakmem_tls:",
        ".quad {fresh}",
        ".popsection",
        fresh = sym FRESH,
    );

    /// The offset of the word from the thread pointer.
    #[inline(always)]
    fn offset() -> usize {
        let off: usize;
        // SAFETY: loads the symbol's GOT entry (its thread-pointer offset,
        // fixed for the process); writes only the output register.
        unsafe {
            core::arch::asm!(
                "mov {o}, qword ptr [rip + hakmem_tls@GOTTPOFF]",
                o = out(reg) off,
                options(pure, nomem, nostack, preserves_flags),
            );
        }
        off
    }

    /// The word.
    #[inline(always)]
    pub(super) fn get() -> *mut ThreadState {
        let p: *mut ThreadState;
        // SAFETY: reads this thread's TLS word (`fs:` + offset); writes
        // only the output register.
        unsafe {
            core::arch::asm!(
                "mov {p}, qword ptr fs:[{o}]",
                o = in(reg) offset(),
                p = out(reg) p,
                options(pure, readonly, nostack, preserves_flags),
            );
        }
        p
    }

    /// Sets the word.
    pub(super) fn set(state: *mut ThreadState) {
        // SAFETY: writes this thread's own TLS word, which nothing else
        // references.
        unsafe {
            core::arch::asm!(
                "mov qword ptr fs:[{o}], {s}",
                o = in(reg) offset(),
                s = in(reg) state,
                options(nostack, preserves_flags),
            );
        }
    }
}

/// Every other target, and x86-64 with the `dynamic-tls` feature: a plain
/// `thread_local!` (const initialiser, no destructor, so it never
/// allocates), in whatever TLS model the toolchain picks (general-dynamic
/// in a shared library: a `__tls_get_addr` call per access).
#[cfg(not(all(
    target_arch = "x86_64",
    target_os = "linux",
    not(feature = "dynamic-tls")
)))]
mod tls {
    use super::{Shared, ThreadState, FRESH};
    use core::cell::Cell;

    std::thread_local! {
        static W: Cell<*mut ThreadState> =
            const { Cell::new(&FRESH as *const Shared as *mut ThreadState) };
    }

    /// The word.
    #[inline(always)]
    pub(super) fn get() -> *mut ThreadState {
        W.with(Cell::get)
    }

    /// Sets the word.
    pub(super) fn set(state: *mut ThreadState) {
        W.with(|w| w.set(state))
    }
}

/// The calling thread's state for the fast paths: its own, or a shared
/// state that holds no blocks and is never written (fresh or exited
/// thread). 2 instructions on x86-64.
#[inline(always)]
pub(crate) fn state() -> *mut ThreadState {
    tls::get()
}

/// The calling thread's heap id: what a slab's `owner` equals when this
/// thread owns it; an unregistered or exited thread's id never equals an
/// owner.
#[inline]
pub(crate) fn id() -> usize {
    // SAFETY: reads one field of this thread's (or a shared, never
    // written) state.
    unsafe { (*state()).local.id() }
}

/// Runs `f` with the calling thread's state: its own, created and
/// registered on the thread's first call, or, once its exit hook has run,
/// a temporary state in [`Lifecycle::Exited`] that lives for this call only
/// (the exited paths hand everything back before they return).
///
/// [`Lifecycle::Exited`]: hakmem_refill_engine::Lifecycle::Exited
///
/// Always inlined: an out-of-line copy for the first malloc's call would
/// lie outside the start-up group of functions (docs/benchmarks.md,
/// "Footprint cuts").
#[inline(always)]
pub(crate) fn run<R>(f: impl FnOnce(*mut ThreadState) -> R) -> R {
    let t = state();
    if t != fresh() && t != exited() {
        return f(t);
    }
    match create() {
        Some(t) => f(t),
        None => with_temporary(f),
    }
}

/// The calling thread's state if it has one now, without creating it.
#[inline]
pub(crate) fn peek() -> Option<*mut ThreadState> {
    let t = state();
    (t != fresh() && t != exited()).then_some(t)
}

/// The calling thread's state, created and registered if it has none;
/// `None` once its exit hook has run.
#[cold]
pub(crate) fn current() -> Option<*mut ThreadState> {
    match peek() {
        Some(t) => Some(t),
        None => create(),
    }
}

#[cold]
#[inline(never)]
fn with_temporary<R>(f: impl FnOnce(*mut ThreadState) -> R) -> R {
    let mut tmp = ThreadState::exited();
    let r = f(&mut tmp);
    crate::stats::publish_all(&mut tmp);
    r
}

/// Gives a fresh thread its state from the pool and registers it; `None`
/// for a thread whose exit hook already ran (or when no memory is left
/// for a state, which the caller then serves like an exited thread).
#[cold]
#[inline(never)]
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
fn create() -> Option<*mut ThreadState> {
    if state() == exited() {
        return None;
    }
    // The pool's lock is the first lock a thread takes: the fork handlers
    // go in the table before it (see `hakmem_remote_queue::fork`).
    crate::install_fork_handlers();
    let (t, fresh) = pool::take()?;
    // A new state is all zero bytes (`new_state_is_all_zero` below): a slot
    // from a fresh mapping is that already, a recycled one is cleared in
    // place. Writing `ThreadState::new()` instead builds the 10 KB value in
    // a stack frame of its own and copies it with `memset`/`memcpy`, whose
    // AVX2 variants lie on libc pages that a small program otherwise never
    // touches (docs/benchmarks.md, "Footprint cuts").
    if !fresh {
        // SAFETY: `t` is a slot of the pool, ours alone now, large and
        // aligned enough for a `ThreadState`, and all-zero bytes are one.
        unsafe { t.write_bytes(0, 1) };
    }
    // Registering may allocate (pthread_setspecific past the first keys,
    // atexit): the nested call must find the state, so it is set first.
    tls::set(t);
    // SAFETY: `t` is this thread's state; no reference into it is live.
    unsafe { register(t) };
    Some(t)
}

/// Where thread states live: slots carved from anonymous mappings of
/// [`pool::SLOTS`] states each, recycled through a free list when a thread
/// exits (so a program that creates and joins threads in a loop reuses a
/// few slots). Never unmapped. A spin lock guards it: it is taken once per
/// thread creation and exit, for a few instructions.
mod pool {
    use super::ThreadState;
    use core::cell::UnsafeCell;
    use core::ptr;
    use hakmem_remote_queue::primitive::SpinLock;
    use hakmem_superslab_backend::os;

    /// States per mapping.
    pub(super) const SLOTS: usize = 16;
    const SLOT: usize = core::mem::size_of::<ThreadState>().next_multiple_of(64);

    struct Inner {
        free: *mut u8, // recycled slots, linked through their first word
        next: usize,   // bump pointer in the current mapping
        end: usize,
    }
    /// The pool, guarded by the project's one spin lock type (the lock
    /// every other allocator list uses, fork-friendly).
    struct Pool {
        lock: SpinLock,
        inner: UnsafeCell<Inner>,
    }
    // SAFETY: `inner` is only touched with `lock` held.
    unsafe impl Sync for Pool {}
    static POOL: Pool = Pool {
        lock: SpinLock::new(),
        inner: UnsafeCell::new(Inner {
            free: ptr::null_mut(),
            next: 0,
            end: 0,
        }),
    };

    /// A free slot, and whether it is fresh from the OS (all zero bytes);
    /// `None` when the OS has no memory for a new mapping.
    pub(super) fn take() -> Option<(*mut ThreadState, bool)> {
        let _g = POOL.lock.lock();
        // SAFETY: the lock is held: the pool's state is ours.
        let g = unsafe { &mut *POOL.inner.get() };
        if !g.free.is_null() {
            let s = g.free;
            // SAFETY: a recycled slot holds the next free slot in its first
            // word.
            g.free = unsafe { *(s as *mut *mut u8) };
            return Some((s as *mut ThreadState, false));
        }
        if g.next == g.end {
            let len = SLOTS * SLOT;
            let m = os::map(len);
            if m.is_null() {
                return None;
            }
            g.next = m as usize;
            g.end = m as usize + len;
        }
        let s = g.next as *mut ThreadState;
        g.next += SLOT;
        Some((s, true))
    }

    /// Returns the slot of an exited thread.
    ///
    /// # Safety
    /// `t` came from [`take`], and nothing uses it any more.
    pub(super) unsafe fn give(t: *mut ThreadState) {
        let _g = POOL.lock.lock();
        // SAFETY: the lock is held; the slot is ours to overwrite.
        unsafe {
            let g = &mut *POOL.inner.get();
            *(t as *mut *mut u8) = g.free;
            g.free = t as *mut u8;
        }
    }

    /// Fork: the child must not inherit a lock another thread held.
    pub(crate) fn lock_for_fork() {
        core::mem::forget(POOL.lock.lock());
    }

    /// See [`lock_for_fork`].
    pub(crate) fn unlock_after_fork() {
        // SAFETY: paired with `lock_for_fork` in the same process (the
        // parent after fork, or the child, where no other thread exists).
        unsafe { POOL.lock.force_unlock() };
    }
}

pub(crate) use pool::{lock_for_fork, unlock_after_fork};

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
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
pub(crate) unsafe fn register(t: *mut ThreadState) {
    // SAFETY: `t` is ours; no borrow outlives this block.
    unsafe { (*t).local.register() };
    // May register an exit hook (which may allocate): the id is set.
    crate::config::init();
    // SAFETY: as above.
    unsafe {
        for c in 0..NUM_CLASSES {
            (*t).local.front_mut().set_cap(c, POLICY.cache_cap(c));
        }
    }
    if let Some(k) = thread_key() {
        // SAFETY: a valid key; the value only needs to be non-null so that
        // the destructor runs.
        unsafe { libc::pthread_setspecific(k, core::ptr::dangling::<libc::c_void>()) };
    }
}

/// The pthread key destructor: the thread is exiting. Its caches, slabs
/// and stash are handed back, its counters published, and its slot goes
/// back to the pool; later calls on this thread (other destructors still
/// allocating) see [`Lifecycle::Exited`] and are served with a temporary
/// state.
///
/// [`Lifecycle::Exited`]: hakmem_refill_engine::Lifecycle::Exited
extern "C" fn on_thread_exit(_: *mut libc::c_void) {
    let Some(t) = peek() else { return };
    // SAFETY: this runs on the exiting thread, outside any allocator call,
    // so nothing else borrows its state.
    unsafe {
        crate::secure::drain(t);
        let ts = &mut *t;
        ts.local.abandon();
        crate::stats::publish_all(ts);
        ts.local.mark_exited();
    }
    tls::set(exited());
    // SAFETY: the slot came from the pool and the thread no longer reaches
    // it (its TLS word is cleared).
    unsafe { pool::give(t) };
}

/// Hands back the calling thread's caches and slabs now (as at thread exit)
/// but keeps the thread usable: its next allocation simply refills.
pub fn flush_thread() {
    let Some(t) = peek() else { return };
    // SAFETY: called outside any allocator call on this thread.
    unsafe {
        crate::secure::drain(t);
        let ts = &mut *t;
        ts.local.abandon();
        crate::stats::publish_all(ts);
    }
}

#[cfg(test)]
mod tests {
    use super::ThreadState;
    use core::mem::{size_of, MaybeUninit};

    /// `create` relies on it: a new state is all zero bytes. The state is
    /// written over 0x00 and over 0xff; a byte that reads the same in both
    /// was written by `new`, and must be zero (one that differs is
    /// padding, which `new` leaves alone).
    #[test]
    fn new_state_is_all_zero() {
        let mut a = Box::new(MaybeUninit::<ThreadState>::zeroed());
        let mut b = Box::new(MaybeUninit::<ThreadState>::uninit());
        // SAFETY: writing bytes into our own buffer.
        unsafe {
            b.as_mut_ptr()
                .cast::<u8>()
                .write_bytes(0xff, size_of::<ThreadState>())
        };
        a.write(ThreadState::new());
        b.write(ThreadState::new());
        // SAFETY: both buffers hold `size_of::<ThreadState>()` initialised
        // bytes (zeroed or 0xff first, then written).
        let (x, y) = unsafe {
            (
                core::slice::from_raw_parts(a.as_ptr().cast::<u8>(), size_of::<ThreadState>()),
                core::slice::from_raw_parts(b.as_ptr().cast::<u8>(), size_of::<ThreadState>()),
            )
        };
        let written_nonzero = x.iter().zip(y).position(|(p, q)| p == q && *p != 0);
        assert_eq!(
            written_nonzero, None,
            "ThreadState::new() has a nonzero byte"
        );
    }
}
