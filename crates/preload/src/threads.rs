//! `pthread_create`, `__register_atfork` and `pthread_atfork`, interposed,
//! so that hakmem's fork handlers are registered with libc when they can
//! matter and before any of the program's (docs/fork.md):
//!
//! - `pthread_create` registers them while the process still has one
//!   thread, so no other thread can fork meanwhile, then creates the thread
//!   with libc's `pthread_create`;
//! - `__register_atfork` (what `pthread_atfork` calls: glibc links a stub
//!   into each object that passes its `__dso_handle`; `pthread_atfork`
//!   itself for dynamic calls) registers them before the program's
//!   handlers, so hakmem's stay the oldest: glibc runs prepare handlers
//!   newest first, and a program's prepare handler may wait for one of its
//!   threads that is inside the allocator, which must be able to finish
//!   before hakmem's handler takes every lock.
//!
//! The constructor defers the registration (`hakmem::defer_fork_registration`)
//! only when these exports are what the process calls (the library is
//! preloaded or linked, not `dlopen`ed): a process that never has a second
//! thread cannot fork with an allocator lock held, and the registration
//! costs it about 64 KiB of libc's read-only data and 50–130 KiB of its
//! text. Threads that glibc creates for itself (a `SIGEV_THREAD` timer's
//! helper) do not come through here; the first lock such a thread takes
//! registers the handlers instead.
//!
//! libc's `pthread_create` is found with `dlsym(RTLD_NEXT)` on the first
//! call, and libc's `__register_atfork` by the lock module
//! (`hakmem::libc_register_atfork`, looked up by the constructor and in any
//! case before a registration is marked under way: `dlsym` takes ld.so's
//! lock, and a thread holding it in `dlopen` may allocate and wait for a
//! registration under way). hakmem's own registration calls libc's through
//! that pointer, never through the export below of the same name.

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
/// A fork handler as `__register_atfork` takes it.
type Handler = hakmem::AtforkHandler;

/// libc's `pthread_create`, 0 until the first call found it.
static NEXT_CREATE: AtomicUsize = AtomicUsize::new(0);

/// One line on stderr naming a libc function that could not be found
/// (the first time only).
fn missing(name: &[u8]) {
    static SAID: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
    if SAID.swap(true, Relaxed) {
        return;
    }
    let mut buf = [0u8; 96];
    let mut n = 0;
    for &b in b"hakmem: no next ".iter().chain(name).chain(b" to call\n") {
        if n < buf.len() {
            buf[n] = b;
            n += 1;
        }
    }
    hakmem::write_stderr(&buf[..n]);
}

/// Whether the program's `__register_atfork` and `pthread_create` are this
/// library's: true when this library comes before libc in ld.so's list of
/// loaded objects (`_r_debug.r_map`, in load order: the program, the
/// preloaded libraries, then its dependencies, then what `dlopen` added),
/// that is, when it was preloaded or linked ahead of libc; false when it
/// was `dlopen`ed (with or without `RTLD_DEEPBIND`, whose own-scope
/// lookups would find this library's exports first although the program
/// calls libc's). An executable that exports its own `__register_atfork`
/// and forwards with `RTLD_NEXT` reaches this library's next when
/// preloaded. Reads only ld.so's own data: a lookup through `dlopen(NULL)`
/// and `dladdr` brought a 64 KiB window of libc's read-only data in.
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
pub(crate) fn interposing() -> bool {
    #[repr(C)]
    struct LinkMap {
        l_addr: usize,
        l_name: *const libc::c_char,
        l_ld: *const c_void,
        l_next: *const LinkMap,
        l_prev: *const LinkMap,
    }
    #[repr(C)]
    struct RDebug {
        r_version: libc::c_int,
        r_map: *const LinkMap,
    }
    extern "C" {
        /// ld.so's debugger interface: the list of loaded objects (ld.so
        /// writes it; read through a raw pointer).
        static mut _r_debug: RDebug;
        /// This object's dynamic section (linker-defined).
        static _DYNAMIC: u8;
    }
    #[link_section = ".rodata.hakmem_startup"] // start-up group, see docs/benchmarks.md
    static LIBC: [u8; 9] = *b"libc.so.6";
    // SAFETY: ld.so's list, read on the thread that runs this library's
    // constructor (at start-up, or inside `dlopen`, which holds ld.so's
    // lock); names are NUL-terminated C strings or null.
    unsafe {
        let me = &raw const _DYNAMIC as *const c_void;
        let list = &raw const _r_debug;
        let mut m = (*list).r_map;
        // This library, then libc: the program's calls come here. libc
        // first, or no libc found by that name (a libc preloaded under
        // another file name): not deferred, which is always safe.
        let mut seen_me = false;
        while !m.is_null() {
            if (*m).l_ld == me {
                seen_me = true;
            } else if !(*m).l_name.is_null() {
                let n = core::ffi::CStr::from_ptr((*m).l_name).to_bytes();
                if n.ends_with(&LIBC)
                    && (n.len() == LIBC.len() || n[n.len() - LIBC.len() - 1] == b'/')
                {
                    return seen_me;
                }
            }
            m = (*m).l_next;
        }
        false
    }
}

/// `pthread_create(3)`: the fork handlers are registered first (once per
/// process), then libc's creates the thread. `EAGAIN` if libc's
/// `pthread_create` cannot be found (a diagnostic says so).
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
    let mut f = NEXT_CREATE.load(Relaxed);
    if f == 0 {
        // SAFETY: a NUL-terminated name; RTLD_NEXT is a valid pseudo-handle.
        f = unsafe { libc::dlsym(libc::RTLD_NEXT, c"pthread_create".as_ptr()) } as usize;
        if f == 0 {
            missing(b"pthread_create");
            return libc::EAGAIN;
        }
        NEXT_CREATE.store(f, Relaxed);
    }
    hakmem::register_fork_handlers_now();
    // SAFETY: libc's `pthread_create`, whose type is `Create`; the
    // contract is forwarded.
    unsafe { core::mem::transmute::<usize, Create>(f)(thread, attr, start, arg) }
}

/// glibc's `__register_atfork` (behind `pthread_atfork`): hakmem's fork
/// handlers are registered first (once per process), then libc's registers
/// the caller's. `ENOMEM` if libc's cannot be found (a diagnostic says so).
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
    let Some(register) = hakmem::libc_register_atfork() else {
        missing(b"__register_atfork");
        return libc::ENOMEM;
    };
    hakmem::register_fork_handlers_now();
    // SAFETY: libc's `__register_atfork`; the contract is forwarded.
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
