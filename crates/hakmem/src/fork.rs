//! Fork support: the `pthread_atfork` handlers that take every allocator
//! lock before `fork()` and release (or, in the child, reset) them after,
//! and their one-time registration.

use crate::{ace, background, thread};

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

// The handlers (and what they inline) sit in the start-up group: a fork
// runs them in the parent and the child of any program, and in their own
// place in `.text` they brought a 64 KiB window of libhakmem.so's text
// into both (docs/benchmarks.md, fifth session).
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
extern "C" fn atfork_prepare() {
    fork_prepare();
}
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
extern "C" fn atfork_parent() {
    fork_parent();
}
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
extern "C" fn atfork_child() {
    fork_child();
    ace::after_fork_child();
}

static FORK_HANDLERS: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Registers hakmem's `pthread_atfork` handlers ([`fork_prepare`],
/// [`fork_parent`], [`fork_child`] and the learning worker's reset) once
/// per process. The facade calls it on its first slow path, so every user
/// (`HakMem`, `HakMemSecure`, `libhakmem.so`) forks safely: a child never
/// inherits an allocator lock that another thread of the parent held.
/// Later calls do nothing.
pub fn install_fork_handlers() {
    if FORK_HANDLERS.swap(true, core::sync::atomic::Ordering::AcqRel) {
        return;
    }
    // SAFETY: the handlers are `extern "C"` functions living for the
    // process. pthread_atfork may allocate; a nested call finds the flag
    // set and the configuration being read by this thread, and proceeds.
    unsafe {
        register_atfork(
            Some(atfork_prepare),
            Some(atfork_parent),
            Some(atfork_child),
        )
    };
}

/// A fork handler as `pthread_atfork` takes it.
pub type AtforkHandler = Option<unsafe extern "C" fn()>;

#[cfg(target_env = "gnu")]
extern "C" {
    /// glibc's registration behind `pthread_atfork` (which is a static
    /// stub from `libc_nonshared.a` passing the object's `__dso_handle`).
    fn __register_atfork(
        prepare: AtforkHandler,
        parent: AtforkHandler,
        child: AtforkHandler,
        dso_handle: *mut libc::c_void,
    ) -> libc::c_int;
    /// The handle of the object this code is linked into (crtbegin's).
    static __dso_handle: u8;
}

/// `pthread_atfork(prepare, parent, child)`. With glibc it calls
/// `__register_atfork` directly, as the `pthread_atfork` stub does: the
/// stub is linked at the end of `libhakmem.so`'s text and reaches libc
/// through the PLT there, so calling it at load made the kernel's
/// fault-around map one more 64 KiB window of text in every process
/// (docs/benchmarks.md, "the footprint's text windows").
///
/// # Safety
/// The handlers must be safe to run at every `fork` for the life of the
/// process (or of the object, which glibc unregisters at `dlclose`).
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
pub unsafe fn register_atfork(
    prepare: AtforkHandler,
    parent: AtforkHandler,
    child: AtforkHandler,
) -> libc::c_int {
    #[cfg(target_env = "gnu")]
    // SAFETY: the glibc entry point `pthread_atfork` forwards to, with the
    // handle of this object; the handlers' contract is the caller's.
    unsafe {
        __register_atfork(
            prepare,
            parent,
            child,
            &raw const __dso_handle as *mut libc::c_void,
        )
    }
    #[cfg(not(target_env = "gnu"))]
    // SAFETY: the handlers' contract is the caller's.
    unsafe {
        libc::pthread_atfork(prepare, parent, child)
    }
}
