//! The atomic operations that the slab-record transitions perform
//! ([`AtomicCell`], [`AtomicCount`]), as traits, so that a model checker
//! can run the very same transition bodies ([`SlabRecord`](crate::SlabRecord)'s
//! provided methods) on its own atomics. They are implemented for `core`'s
//! atomics here, one `#[inline(always)]` forwarding call each, so the
//! production path compiles to the very same instructions; a model test
//! implements them for its checker's atomics (see
//! `crates/remote-queue/tests/model.rs` and `docs/remote-free.md`).
//! `hakmem_remote_queue::primitive` re-exports them beside its spin lock.

use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU8, AtomicUsize, Ordering};

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
