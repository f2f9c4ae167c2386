//! Concurrency primitives used by the boxes that share state between
//! threads. Kept in one small module so that a model checker (loom, shuttle)
//! can substitute them in tests.
//!
//! Two kinds of things live here:
//! - the spin lock of the slow paths ([`SpinLock`]);
//! - the atomic operations the remote-free protocol performs on a slab
//!   record ([`AtomicCell`], [`AtomicCount`]). They are implemented for
//!   `core`'s atomics here, one `#[inline(always)]` forwarding call each, so
//!   the production path compiles to the very same instructions; a model
//!   test implements them for its checker's atomics (see
//!   `crates/remote-queue/tests/model.rs` and `docs/remote-free.md`).

use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU8, AtomicUsize, Ordering};

/// The operations on one atomic field of a slab record that the
/// remote-free protocol uses, with `core::sync::atomic` semantics.
pub trait AtomicCell<T: Copy> {
    /// As `core`'s `load`.
    fn load(&self, order: Ordering) -> T;
    /// As `core`'s `store`.
    fn store(&self, v: T, order: Ordering);
    /// As `core`'s `swap`.
    fn swap(&self, v: T, order: Ordering) -> T;
    /// As `core`'s `compare_exchange`.
    fn compare_exchange(
        &self,
        current: T,
        new: T,
        success: Ordering,
        failure: Ordering,
    ) -> Result<T, T>;
    /// As `core`'s `compare_exchange_weak` (may fail spuriously).
    fn compare_exchange_weak(
        &self,
        current: T,
        new: T,
        success: Ordering,
        failure: Ordering,
    ) -> Result<T, T>;
}

/// A counter field (`used`): an [`AtomicCell`] that also adds and subtracts.
pub trait AtomicCount: AtomicCell<u32> {
    /// As `core`'s `fetch_add`.
    fn fetch_add(&self, v: u32, order: Ordering) -> u32;
    /// As `core`'s `fetch_sub`.
    fn fetch_sub(&self, v: u32, order: Ordering) -> u32;
}

macro_rules! forward_atomic_cell {
    ($atomic:ty, $t:ty) => {
        impl AtomicCell<$t> for $atomic {
            #[inline(always)]
            fn load(&self, order: Ordering) -> $t {
                <$atomic>::load(self, order)
            }
            #[inline(always)]
            fn store(&self, v: $t, order: Ordering) {
                <$atomic>::store(self, v, order)
            }
            #[inline(always)]
            fn swap(&self, v: $t, order: Ordering) -> $t {
                <$atomic>::swap(self, v, order)
            }
            #[inline(always)]
            fn compare_exchange(
                &self,
                current: $t,
                new: $t,
                success: Ordering,
                failure: Ordering,
            ) -> Result<$t, $t> {
                <$atomic>::compare_exchange(self, current, new, success, failure)
            }
            #[inline(always)]
            fn compare_exchange_weak(
                &self,
                current: $t,
                new: $t,
                success: Ordering,
                failure: Ordering,
            ) -> Result<$t, $t> {
                <$atomic>::compare_exchange_weak(self, current, new, success, failure)
            }
        }
    };
}

forward_atomic_cell!(AtomicPtr<u8>, *mut u8);
forward_atomic_cell!(AtomicUsize, usize);
forward_atomic_cell!(AtomicU32, u32);
forward_atomic_cell!(AtomicU8, u8);

impl AtomicCount for AtomicU32 {
    #[inline(always)]
    fn fetch_add(&self, v: u32, order: Ordering) -> u32 {
        AtomicU32::fetch_add(self, v, order)
    }
    #[inline(always)]
    fn fetch_sub(&self, v: u32, order: Ordering) -> u32 {
        AtomicU32::fetch_sub(self, v, order)
    }
}

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

    /// Acquires the lock.
    #[inline]
    pub fn lock(&self) -> SpinGuard<'_> {
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
