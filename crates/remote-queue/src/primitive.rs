//! Concurrency primitives used by the boxes that share state between
//! threads. Kept in one small module so that a model checker (loom, shuttle)
//! can substitute them in tests.
//!
//! Two kinds of things live here:
//! - the spin lock of the slow paths ([`SpinLock`]), and the hook that runs
//!   once before the first lock of a multi-threaded process
//!   ([`set_threaded_hook`]);
//! - the atomic operations the slab-record transitions and the remote-free
//!   protocol perform on a slab record ([`AtomicCell`], [`AtomicCount`]).
//!   They are defined in `hakmem_ptr_bridge::cell`, beside the record and
//!   its transitions (the leaf crate cannot depend on this one), and
//!   re-exported here; a model test implements them for its checker's
//!   atomics (see `crates/remote-queue/tests/model.rs` and
//!   `docs/remote-free.md`).

use core::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

pub use hakmem_ptr_bridge::cell::{AtomicCell, AtomicCount};

/// A test-and-test-and-set spin lock that yields the CPU after a short spin.
/// Const-constructible, allocation-free and fork-friendly (see
/// [`SpinLock::force_unlock`]). Only used on slow paths.
pub struct SpinLock {
    locked: AtomicBool,
}

/// Releases the lock on drop.
pub struct SpinGuard<'a> {
    lock: &'a SpinLock,
}

impl SpinLock {
    /// An unlocked lock.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        SpinLock {
            locked: AtomicBool::new(false),
        }
    }

    /// Acquires the lock. Before the first lock of a multi-threaded
    /// process, runs the hook of [`set_threaded_hook`] (one load and a
    /// branch otherwise).
    #[inline]
    pub fn lock(&self) -> SpinGuard<'_> {
        if THREADED.load(Ordering::Acquire) != HOOK_DONE {
            before_threaded_lock();
        }
        if self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
        SpinGuard { lock: self }
    }

    #[cold]
    fn lock_contended(&self) {
        let mut spins = 0u32;
        loop {
            while self.locked.load(Ordering::Relaxed) {
                if spins < 64 {
                    core::hint::spin_loop();
                    spins += 1;
                } else {
                    // SAFETY: sched_yield has no preconditions.
                    unsafe { libc::sched_yield() };
                }
            }
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }

    /// Releases a lock whose guard was forgotten (the fork handlers hold
    /// locks across `fork()` and release them in parent and child).
    ///
    /// # Safety
    /// The lock must be held by a forgotten guard of the calling context.
    pub unsafe fn force_unlock(&self) {
        self.locked.store(false, Ordering::Release);
    }

    /// True while held (racy; for assertions).
    pub fn is_locked(&self) -> bool {
        self.locked.load(Ordering::Relaxed)
    }
}

// ---------------------------------------------------------------------------
// The hook before the first lock of a multi-threaded process.
//
// A lock that another thread holds when a thread calls `fork()` stays held
// in the child for ever, so the allocator registers fork handlers that take
// every lock around `fork()`. A process that never had a second thread
// cannot fork with a lock held by another thread, and registering costs a
// small program the kernel's fault-around of libc pages that it would
// otherwise never touch (docs/benchmarks.md, "fork handlers and the exit
// key, deferred"). So the facade registers them through this hook, which
// runs once, before the first lock taken while the process has more than
// one thread. With glibc that is read from `__libc_single_threaded`, which
// `pthread_create` clears in the creating thread before the new thread
// starts and which nothing sets again. A lock held across the moment a
// second thread appears was taken by the only thread, which does not
// create threads while it holds an allocator lock; every lock taken after
// that moment is taken after the hook has finished.
// ---------------------------------------------------------------------------

const HOOK_NONE: u8 = 0; // not run yet
const HOOK_RUNNING: u8 = 1; // being run by the thread in HOOK_OWNER
const HOOK_DONE: u8 = 2; // run (or no hook is wanted)

static THREADED: AtomicU8 = AtomicU8::new(HOOK_NONE);
static HOOK: AtomicUsize = AtomicUsize::new(0); // fn() or 0
static HOOK_OWNER: AtomicUsize = AtomicUsize::new(0); // pthread_self of the runner

/// Sets the function that runs once, before the first [`SpinLock::lock`]
/// of a process that has (or had) more than one thread, on the thread
/// taking that lock; every other thread's lock waits until it returns. It
/// may allocate: locks taken on its own thread while it runs proceed. Set
/// it before any second thread exists. Without a hook nothing runs.
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
pub fn set_threaded_hook(hook: fn()) {
    HOOK.store(hook as usize, Ordering::Release);
}

/// True while the process has never had a second thread (glibc's
/// `__libc_single_threaded`); false where that is not known.
#[inline]
pub fn single_threaded() -> bool {
    #[cfg(target_env = "gnu")]
    {
        extern "C" {
            static __libc_single_threaded: core::ffi::c_char;
        }
        // SAFETY: a libc byte that glibc documents for this use: it reads
        // nonzero until the process creates its first thread.
        unsafe { core::ptr::read_volatile(&raw const __libc_single_threaded) != 0 }
    }
    #[cfg(not(target_env = "gnu"))]
    {
        false
    }
}

/// The slow side of the check in [`SpinLock::lock`].
#[cold]
#[inline(never)]
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
fn before_threaded_lock() {
    let hook = HOOK.load(Ordering::Acquire);
    if hook == 0 || single_threaded() {
        return;
    }
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() } as usize;
    match THREADED.compare_exchange(HOOK_NONE, HOOK_RUNNING, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            HOOK_OWNER.store(me, Ordering::Relaxed);
            // SAFETY: HOOK holds a `fn()` stored by set_threaded_hook.
            let f: fn() = unsafe { core::mem::transmute::<usize, fn()>(hook) };
            f();
            THREADED.store(HOOK_DONE, Ordering::Release);
        }
        Err(HOOK_RUNNING) if HOOK_OWNER.load(Ordering::Relaxed) == me => {} // nested in the hook
        Err(_) => {
            while THREADED.load(Ordering::Acquire) != HOOK_DONE {
                // SAFETY: sched_yield has no preconditions.
                unsafe { libc::sched_yield() };
            }
        }
    }
}

impl Drop for SpinGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use core::sync::atomic::AtomicUsize;

    #[test]
    fn lock_excludes() {
        static L: SpinLock = SpinLock::new();
        static INSIDE: AtomicUsize = AtomicUsize::new(0);
        let hs: std::vec::Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..2000 {
                        let _g = L.lock();
                        assert_eq!(INSIDE.fetch_add(1, Ordering::SeqCst), 0);
                        INSIDE.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert!(!L.is_locked());
    }
}
