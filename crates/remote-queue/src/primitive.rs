//! Concurrency primitives used by the boxes that share state between
//! threads. Kept in one small module so that a model checker (loom, shuttle)
//! can substitute them in tests.
//!
//! Two kinds of things live here:
//! - the spin lock of the slow paths ([`SpinLock`]);
//! - the atomic operations the slab-record transitions and the remote-free
//!   protocol perform on a slab record ([`AtomicCell`], [`AtomicCount`]).
//!   They are defined in `hakmem_ptr_bridge::cell`, beside the record and
//!   its transitions (the leaf crate cannot depend on this one), and
//!   re-exported here; a model test implements them for its checker's
//!   atomics (see `crates/remote-queue/tests/model.rs` and
//!   `docs/remote-free.md`).

use core::sync::atomic::{AtomicBool, Ordering};

use crate::fork;

pub use hakmem_ptr_bridge::cell::{AtomicCell, AtomicCount};

/// A test-and-test-and-set spin lock that yields the CPU after a short spin.
/// Const-constructible, allocation-free and fork-friendly (see
/// [`SpinLock::force_unlock`]). Only used on slow paths.
///
/// Every allocator `SpinLock` must be taken by the facade's fork prepare
/// handler (`hakmem::fork_prepare`): a fork's own thread is let through a
/// lock it finds held while its fork holds every lock ([`fork`]'s
/// "Order"), which is only right if that lock is among them.
pub struct SpinLock {
    locked: AtomicBool,
}

/// Releases the lock on drop (unless it was lent by a `fork()`, see
/// [`SpinLock::lock`]).
pub struct SpinGuard<'a> {
    lock: &'a SpinLock,
    held: bool,
}

impl SpinLock {
    /// An unlocked lock.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        SpinLock {
            locked: AtomicBool::new(false),
        }
    }

    /// Acquires the lock. In a process that has a second thread, the fork
    /// handlers are registered first ([`fork::before_lock`]). Inside a
    /// `fork()` whose prepare handler took every lock for the calling
    /// thread, a program's later fork handler that allocates gets through
    /// without waiting for itself (see [`fork`]'s "Order").
    #[inline]
    pub fn lock(&self) -> SpinGuard<'_> {
        fork::before_lock();
        let held = self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
            || self.lock_contended();
        SpinGuard { lock: self, held }
    }

    /// Waits for the lock and takes it (true), or finds it held for this
    /// thread by its own `fork()` (false: the guard must not release it).
    #[cold]
    fn lock_contended(&self) -> bool {
        if fork::owned_by_this_fork() {
            return false;
        }
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
                return true;
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

impl Drop for SpinGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.held {
            self.lock.locked.store(false, Ordering::Release);
        }
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
