//! `pthread_create`, interposed: registers hakmem's fork handlers while the
//! process still has one thread, then creates the thread with libc's
//! `pthread_create` (found with `dlsym(RTLD_NEXT)` on the first call).
//!
//! The handlers are not registered at load (`hakmem::defer_fork_registration`
//! in the constructor): a process that never has a second thread cannot
//! fork with an allocator lock held, and the registration costs it about
//! 64 KiB of libc's read-only data and 60–130 KiB of its text. Registering
//! here, before the second thread exists, leaves no window in which another
//! thread could fork meanwhile. Threads that glibc creates for itself (a
//! `SIGEV_THREAD` timer's helper) do not come through here; the lock that
//! such a thread takes first registers them instead (docs/fork.md).

use core::ffi::c_void;
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// A thread's start routine, as C declares it.
type Start = Option<unsafe extern "C" fn(*mut c_void) -> *mut c_void>;
/// `pthread_create`'s signature.
type Create = unsafe extern "C" fn(
    *mut libc::pthread_t,
    *const libc::pthread_attr_t,
    Start,
    *mut c_void,
) -> libc::c_int;

/// libc's `pthread_create`, 0 until the first call resolves it.
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// `pthread_create(3)`: the fork handlers are registered first (once per
/// process), then libc's creates the thread. `EAGAIN` if no next
/// `pthread_create` can be found (a diagnostic says so).
///
/// # Safety
/// As for libc's `pthread_create`: `thread` is writable, `attr` is null or
/// an initialised attribute object, and `start` can run with `arg` on the
/// new thread.
#[no_mangle]
pub unsafe extern "C" fn pthread_create(
    thread: *mut libc::pthread_t,
    attr: *const libc::pthread_attr_t,
    start: Start,
    arg: *mut c_void,
) -> libc::c_int {
    hakmem::register_fork_handlers_now();
    let mut f = NEXT.load(Relaxed);
    if f == 0 {
        f = resolve();
        if f == 0 {
            return libc::EAGAIN;
        }
    }
    // SAFETY: `f` is the address of the next object's `pthread_create`,
    // whose type is `Create`.
    let create: Create = unsafe { core::mem::transmute::<usize, Create>(f) };
    // SAFETY: forwarded contract.
    unsafe { create(thread, attr, start, arg) }
}

/// Finds the next `pthread_create` (libc's) and keeps it; 0 (after a
/// one-line diagnostic) if there is none or it is this one.
#[cold]
fn resolve() -> usize {
    // SAFETY: a NUL-terminated name; RTLD_NEXT is a valid pseudo-handle.
    let f = unsafe { libc::dlsym(libc::RTLD_NEXT, c"pthread_create".as_ptr()) } as usize;
    if f == 0 || f == pthread_create as *const () as usize {
        hakmem::write_stderr(b"hakmem: pthread_create: no next pthread_create to call\n");
        return 0;
    }
    NEXT.store(f, Relaxed);
    f
}
