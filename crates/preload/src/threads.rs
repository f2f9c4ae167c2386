//! `pthread_create` and `__register_atfork`, interposed, so that hakmem's
//! fork handlers are registered with libc when they can matter and before
//! any of the program's (docs/fork.md):
//!
//! - `pthread_create` registers them while the process still has one
//!   thread, so no other thread can fork meanwhile, then creates the thread
//!   with libc's `pthread_create`;
//! - `__register_atfork` (what `pthread_atfork` calls: glibc links a stub
//!   into each object that passes its `__dso_handle`; `pthread_atfork`
//!   itself for dynamic calls) registers them before the program's
//!   handlers, so hakmem's stay the oldest: glibc runs
//!   prepare handlers newest first, and a program's prepare handler may
//!   wait for one of its threads that is inside the allocator, which must
//!   be able to finish before hakmem's handler takes every lock.
//!
//! The constructor does not register them (`hakmem::defer_fork_registration`):
//! a process that never has a second thread cannot fork with an allocator
//! lock held, and the registration costs it about 64 KiB of libc's
//! read-only data and 50–130 KiB of its text. Threads that glibc creates
//! for itself (a `SIGEV_THREAD` timer's helper) do not come through here;
//! the first lock such a thread takes registers them instead.
//!
//! libc's functions are found with `dlsym(RTLD_NEXT)` on the first call of
//! each. hakmem's own registration (`hakmem_remote_queue::fork`) reaches
//! libc through the `__register_atfork` below too (the link binds its
//! reference to this definition); the nested `register_fork_handlers_now`
//! finds the registration under way on this thread and returns at once.

use core::ffi::{c_void, CStr};
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
/// A fork handler as `__register_atfork` takes it.
type Handler = Option<unsafe extern "C" fn()>;
/// `__register_atfork`'s signature.
type Register = unsafe extern "C" fn(Handler, Handler, Handler, *mut c_void) -> libc::c_int;

/// libc's functions, 0 until the first call resolves them.
static NEXT_CREATE: AtomicUsize = AtomicUsize::new(0);
static NEXT_REGISTER: AtomicUsize = AtomicUsize::new(0);

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
    let f = registered_then_next(
        &NEXT_CREATE,
        c"pthread_create",
        pthread_create as *const () as usize,
    );
    if f == 0 {
        return libc::EAGAIN;
    }
    // SAFETY: `f` is the address of the next object's `pthread_create`,
    // whose type is `Create`.
    let create: Create = unsafe { core::mem::transmute::<usize, Create>(f) };
    // SAFETY: forwarded contract.
    unsafe { create(thread, attr, start, arg) }
}

/// glibc's `__register_atfork` (behind `pthread_atfork`): hakmem's fork
/// handlers are registered first (once per process), then libc's registers
/// the caller's. `ENOMEM` if no next `__register_atfork` can be found (a
/// diagnostic says so).
///
/// # Safety
/// As for libc's: the handlers are null or functions that stay callable
/// for as long as `dso_handle`'s object is loaded (for ever if null).
#[no_mangle]
pub unsafe extern "C" fn __register_atfork(
    prepare: Handler,
    parent: Handler,
    child: Handler,
    dso_handle: *mut c_void,
) -> libc::c_int {
    let f = registered_then_next(
        &NEXT_REGISTER,
        c"__register_atfork",
        __register_atfork as *const () as usize,
    );
    if f == 0 {
        return libc::ENOMEM;
    }
    // SAFETY: `f` is the address of the next object's `__register_atfork`,
    // whose type is `Register`.
    let register: Register = unsafe { core::mem::transmute::<usize, Register>(f) };
    // SAFETY: forwarded contract.
    unsafe { register(prepare, parent, child, dso_handle) }
}

/// `pthread_atfork(3)` called dynamically (through `dlsym`, a language's
/// foreign-function interface, or a binary older than glibc 2.3.2, which
/// bind to libc's compatibility `pthread_atfork@GLIBC_2.2.5`; programs
/// compiled since call [`__register_atfork`] from a stub of their own):
/// the same as `__register_atfork` with no object handle (never
/// unregistered, as with libc's compatibility symbol).
///
/// # Safety
/// As for libc's: the handlers are null or functions that stay callable
/// for the life of the process.
#[no_mangle]
pub unsafe extern "C" fn pthread_atfork(
    prepare: Handler,
    parent: Handler,
    child: Handler,
) -> libc::c_int {
    // SAFETY: forwarded contract.
    unsafe { __register_atfork(prepare, parent, child, core::ptr::null_mut()) }
}

/// Registers hakmem's fork handlers (once per process), then returns the
/// next object's `name` (libc's), kept in `slot`; 0 (after a one-line
/// diagnostic) if there is none or it is `ours`.
fn registered_then_next(slot: &AtomicUsize, name: &CStr, ours: usize) -> usize {
    hakmem::register_fork_handlers_now();
    let f = slot.load(Relaxed);
    if f != 0 {
        return f;
    }
    resolve(slot, name, ours)
}

#[cold]
fn resolve(slot: &AtomicUsize, name: &CStr, ours: usize) -> usize {
    // SAFETY: a NUL-terminated name; RTLD_NEXT is a valid pseudo-handle.
    let f = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) } as usize;
    if f == 0 || f == ours {
        let mut buf = [0u8; 96];
        let mut n = 0;
        for &b in b"hakmem: no next "
            .iter()
            .chain(name.to_bytes())
            .chain(b" to call\n")
        {
            if n < buf.len() {
                buf[n] = b;
                n += 1;
            }
        }
        hakmem::write_stderr(&buf[..n]);
        return 0;
    }
    slot.store(f, Relaxed);
    f
}
