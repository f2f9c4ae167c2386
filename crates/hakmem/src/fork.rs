//! Fork support: the `pthread_atfork` handlers that take every allocator
//! lock before `fork()` and release (or, in the child, reset) them after,
//! and their one-time registration.

use core::sync::atomic::AtomicBool;
use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};

use crate::{ace, background, thread};

pub use hakmem_remote_queue::fork::{
    libc_register_atfork, register_atfork, AtforkHandler, RegisterFn,
};

/// Fork support: call [`fork_prepare`] before `fork()`, then
/// [`fork_parent`] or [`fork_child`] after (pthread_atfork handlers).
pub fn fork_prepare() {
    thread::lock_for_fork();
    for r in hakmem_remote_queue::RECLAIM.iter() {
        r.lock_for_fork();
    }
    hakmem_superslab_backend::lock_all_for_fork();
}

/// See [`fork_prepare`].
pub fn fork_parent() {
    // SAFETY: paired with fork_prepare in the same process.
    unsafe {
        hakmem_superslab_backend::unlock_all_after_fork();
        for r in hakmem_remote_queue::RECLAIM.iter() {
            r.unlock_after_fork();
        }
    }
    thread::unlock_after_fork();
}

/// See [`fork_prepare`]. In the child, also marks the background purge
/// thread stopped (it was not copied; see [`background::after_fork_child`]).
pub fn fork_child() {
    fork_parent();
    background::after_fork_child();
    // The slow start's total over all threads: only this thread's extras
    // came along.
    // SAFETY: reads one field of this thread's own state.
    let own = thread::peek().map_or(0, |t| unsafe { (*t).local.heap().grown_bytes() });
    hakmem_refill_engine::reset_grown_all_after_fork(own);
}

/// The child handler: [`fork_child`], then the learning worker's reset.
fn child_handler() {
    fork_child();
    ace::after_fork_child();
}

static FORK_HANDLERS: AtomicBool = AtomicBool::new(false);
static DEFERRED: AtomicBool = AtomicBool::new(false);

/// Puts hakmem's fork handlers ([`fork_prepare`], [`fork_parent`],
/// [`fork_child`] and the learning worker's reset) in the lock module's
/// table once per process and registers the table with libc, so every
/// user (`HakMem`, `HakMemSecure`, `libhakmem.so`) forks safely: a child
/// never inherits an allocator lock that another thread of the parent
/// held. After [`defer_fork_registration`] the registration waits until
/// the process has a second thread (see [`hakmem_remote_queue::fork`]).
/// The facade calls this before its first lock can be taken (thread-state
/// creation, the configuration's reading, the span paths). Later calls are
/// one load and a branch.
#[inline]
pub fn install_fork_handlers() {
    if !FORK_HANDLERS.load(Relaxed) {
        install_fork_handlers_once();
    }
}

#[cold]
#[inline(never)]
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
fn install_fork_handlers_once() {
    if FORK_HANDLERS.swap(true, AcqRel) {
        return;
    }
    hakmem_remote_queue::fork::add(Some(fork_prepare), Some(fork_parent), Some(child_handler));
    if !DEFERRED.load(Acquire) {
        hakmem_remote_queue::fork::register_now();
    }
}

/// Registers the fork handlers with libc only once they can matter,
/// instead of on the first slow path: for `libhakmem.so`, whose
/// constructor calls this before the program's first allocation and which
/// registers them in its `pthread_create` and its `__register_atfork`
/// (docs/fork.md). A process of one thread then never calls
/// `__register_atfork`, which brings about 64 KiB of libc's read-only data
/// and 50–130 KiB of its text into the process. Without those two
/// interpositions, deferring lets a program's fork handlers be registered
/// before hakmem's, and a prepare handler that waits for a thread inside
/// the allocator then deadlocks the fork: Rust users should not call it.
/// Has no effect once the handlers are registered.
pub fn defer_fork_registration() {
    DEFERRED.store(true, Release);
}

/// Adds a set of fork handlers to run with hakmem's (after them in the
/// child and the parent, before them in the prepare step), registered with
/// libc together with them. For a box or library built on hakmem whose
/// state a fork must reset (libhakmem.so's forwarding table). False when
/// the table is full.
pub fn add_fork_handlers(prepare: Option<fn()>, parent: Option<fn()>, child: Option<fn()>) -> bool {
    install_fork_handlers();
    hakmem_remote_queue::fork::add(prepare, parent, child)
}

/// Whether hakmem's fork handlers are registered with libc yet: from the
/// first slow path on, or, after [`defer_fork_registration`], once a lock
/// is taken in a process with a second thread, or after
/// [`register_fork_handlers_now`].
pub fn fork_handlers_registered() -> bool {
    hakmem_remote_queue::fork::registered()
}

/// Registers the fork handlers with libc now, deferred or not: before a
/// thread is created (`libhakmem.so`'s `pthread_create`), and for state
/// that a thread changes without a lock and that a child must reset (a
/// thread started by hakmem itself, a resolution under way).
pub fn register_fork_handlers_now() {
    install_fork_handlers();
    hakmem_remote_queue::fork::register_now();
}
