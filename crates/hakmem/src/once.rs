//! [`InitOnce`]: the one once-cell of the facade (and of `libhakmem.so`)
//! for an initialisation that may call back into the allocator while it
//! runs. `std::sync::Once` would deadlock on such a nested call; this one
//! lets the initialising thread through and makes the others wait.

use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use core::sync::atomic::{AtomicU8, AtomicUsize};

const NOT_STARTED: u8 = 0;
const RUNNING: u8 = 1;
const DONE: u8 = 2;

/// A once-cell for an initialisation that may re-enter itself (through
/// `malloc`, say): NOT_STARTED → RUNNING (one thread, whose id is kept) →
/// DONE. Allocation-free; a `const` constructor for statics.
#[derive(Debug)]
pub struct InitOnce {
    state: AtomicU8,
    /// `pthread_self()` of the thread running the initialisation (while
    /// RUNNING), so that its nested calls can be told apart.
    runner: AtomicUsize,
}

impl InitOnce {
    /// Not started yet.
    pub const fn new() -> Self {
        InitOnce {
            state: AtomicU8::new(NOT_STARTED),
            runner: AtomicUsize::new(0),
        }
    }

    /// Runs `f` if nobody has started it yet, and returns true once it is
    /// done (by this call or an earlier one). A call from inside `f` on the
    /// same thread returns false at once, without waiting for `f`; a call
    /// from another thread while `f` runs waits for it (yielding).
    pub fn call(&self, f: impl FnOnce()) -> bool {
        loop {
            match self.state.load(Acquire) {
                DONE => return true,
                NOT_STARTED => {
                    if self
                        .state
                        .compare_exchange(NOT_STARTED, RUNNING, AcqRel, Acquire)
                        .is_err()
                    {
                        continue;
                    }
                    self.runner.store(me(), Release);
                    f();
                    self.runner.store(0, Relaxed);
                    self.state.store(DONE, Release);
                    return true;
                }
                _ => {
                    if self.runner.load(Acquire) == me() {
                        return false;
                    }
                    // SAFETY: sched_yield has no preconditions.
                    unsafe { libc::sched_yield() };
                }
            }
        }
    }

    /// True once the initialisation has finished.
    #[inline]
    pub fn is_done(&self) -> bool {
        self.state.load(Acquire) == DONE
    }

    /// True once the initialisation has started (it may still be running).
    pub fn is_started(&self) -> bool {
        self.state.load(Acquire) != NOT_STARTED
    }

    /// In a child after `fork`: an initialisation that was running in the
    /// parent belongs to a thread that does not exist here; start over.
    /// (Only atomic stores: safe in a forked child.)
    pub fn reset_after_fork(&self) {
        if self.state.load(Relaxed) == RUNNING {
            self.runner.store(0, Relaxed);
            self.state.store(NOT_STARTED, Relaxed);
        }
    }
}

impl Default for InitOnce {
    fn default() -> Self {
        Self::new()
    }
}

fn me() -> usize {
    // SAFETY: pthread_self has no preconditions.
    unsafe { libc::pthread_self() as usize }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_once_and_lets_a_nested_call_through() {
        static O: InitOnce = InitOnce::new();
        let mut runs = 0;
        let mut nested = None;
        assert!(!O.is_started());
        assert!(O.call(|| {
            runs += 1;
            nested = Some(O.call(|| unreachable!()));
        }));
        assert_eq!(nested, Some(false));
        assert!(O.call(|| unreachable!()));
        assert_eq!(runs, 1);
        assert!(O.is_done());
    }
}
