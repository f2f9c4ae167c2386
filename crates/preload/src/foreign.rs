//! Foreign pointers: blocks hakmem did not allocate (the superslab registry
//! does not know them), e.g. memory another allocator in the process handed
//! out, or memory obtained before the preload took effect.
//!
//! Policy (`HAKMEM_FOREIGN_FREE`, read with the facade's `env_var`, which
//! does not allocate; the facade applies the default itself, see its `diag` module):
//!
//! - unset / `abort` (default): one-line diagnostic and `abort()`, as
//!   glibc does for a pointer it never handed out.
//! - `ignore`: the diagnostic, and the block is leaked. Handing an
//!   arbitrary pointer to the next allocator is no safer than leaking it:
//!   glibc's `free` would corrupt its heap or abort on a pointer it does not
//!   own, and there is no reliable way to ask it first (its
//!   `malloc_usable_size` reads the chunk header in front of the pointer,
//!   which is just as unsafe on a stranger's memory).
//! - `forward`: the call goes to the next definition in the symbol chain
//!   (`dlsym(RTLD_NEXT, ..)`, normally glibc): `realloc` and
//!   `malloc_usable_size` now, `free` once the facade calls
//!   [`free`] from its slow path (see the function).
//!
//! The next definitions are resolved lazily, at the first foreign pointer,
//! never during `malloc` or initialisation. `dlsym` may itself call
//! `malloc`/`calloc`/`free`; that is fine because hakmem works by then and
//! no hakmem lock is held on this path. A foreign pointer freed *by* `dlsym`
//! while this thread resolves is diagnosed and leaked instead of recursing.

use core::ffi::{c_void, CStr};
use core::sync::atomic::Ordering::Relaxed;
use core::sync::atomic::{AtomicU8, AtomicUsize};

// ---------------------------------------------------------------------------
// The mode.
// ---------------------------------------------------------------------------

const MODE_UNREAD: u8 = 0;
const MODE_IGNORE: u8 = 1;
const MODE_FORWARD: u8 = 2;

static MODE: AtomicU8 = AtomicU8::new(MODE_UNREAD);

#[cold]
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
fn read_mode() -> u8 {
    // The facade's reading of the environment (allocation-free).
    let forward =
        hakmem::env_var(hakmem::env_name!("HAKMEM_FOREIGN_FREE")) == Some(b"forward".as_slice());
    let m = if forward { MODE_FORWARD } else { MODE_IGNORE };
    MODE.store(m, Relaxed);
    m
}

/// Whether foreign pointers go to the next allocator
/// (`HAKMEM_FOREIGN_FREE=forward`).
#[inline]
pub(crate) fn forwarding() -> bool {
    let m = MODE.load(Relaxed);
    let m = if m == MODE_UNREAD { read_mode() } else { m };
    m == MODE_FORWARD
}

// ---------------------------------------------------------------------------
// The next allocator, resolved once.
// ---------------------------------------------------------------------------

/// The one resolution (the facade's re-entrant once-cell: `dlsym` may
/// call back into `free` on the resolving thread).
static RESOLVED: hakmem::InitOnce = hakmem::InitOnce::new();
static NEXT_FREE: AtomicUsize = AtomicUsize::new(0);
static NEXT_REALLOC: AtomicUsize = AtomicUsize::new(0);
static NEXT_USABLE: AtomicUsize = AtomicUsize::new(0);

/// `dlsym(RTLD_NEXT, name)`, or 0 when missing or when it is our own
/// definition (`ours`), which would loop.
fn next(name: &CStr, ours: usize) -> usize {
    // SAFETY: a NUL-terminated name; RTLD_NEXT is a valid pseudo-handle.
    let f = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) } as usize;
    if f == ours {
        0
    } else {
        f
    }
}

/// Resolves the next allocator's functions once; false if this thread is
/// the one resolving (a nested call from inside `dlsym`).
#[cold]
fn resolve() -> bool {
    RESOLVED.call(|| {
        NEXT_FREE.store(next(c"free", crate::free as *const () as usize), Relaxed);
        NEXT_REALLOC.store(
            next(c"realloc", crate::realloc as *const () as usize),
            Relaxed,
        );
        NEXT_USABLE.store(
            next(
                c"malloc_usable_size",
                crate::malloc_usable_size as *const () as usize,
            ),
            Relaxed,
        );
    })
}

/// In a child after `fork`: a resolution that was under way in the parent
/// belongs to a thread that does not exist here; start over.
pub(crate) fn after_fork_child() {
    RESOLVED.reset_after_fork();
}

/// The resolved function in `slot`, or 0.
fn resolved(slot: &AtomicUsize) -> usize {
    if resolve() {
        slot.load(Relaxed)
    } else {
        0
    }
}

/// One-line diagnostic for a foreign pointer we cannot hand on.
#[cold]
fn unforwardable(what: &[u8]) {
    let mut buf = [0u8; 128];
    let mut n = 0;
    for &b in b"hakmem: "
        .iter()
        .chain(what)
        .chain(b": foreign pointer, no next allocator to forward it to\n")
    {
        if n < buf.len() {
            buf[n] = b;
            n += 1;
        }
    }
    hakmem::write_stderr(&buf[..n]);
}

// ---------------------------------------------------------------------------
// The forwarded calls.
// ---------------------------------------------------------------------------

/// The facade's foreign-free hook: hands `p`, which the registry does not
/// know, to the next `free`. Returns whether it did; on false the facade
/// applies its policy (one line, and the block is leaked).
///
/// Installed with `hakmem::set_foreign_free_handler` by the library
/// constructor when forwarding is on.
///
/// # Safety
/// `p` is a live block of another allocator, not ours.
pub(crate) unsafe fn free(p: *mut u8) -> bool {
    if !forwarding() {
        return false;
    }
    let f = resolved(&NEXT_FREE);
    if f == 0 {
        return false;
    }
    // SAFETY: `f` is the next definition of `free`, found by dlsym;
    // `p` belongs to that allocator (caller contract).
    unsafe {
        let f: unsafe extern "C" fn(*mut c_void) = core::mem::transmute(f);
        f(p as *mut c_void);
    }
    true
}

/// `realloc` of a foreign block: the next `realloc`. Its result belongs to
/// that allocator too (and is forwarded again when freed).
///
/// # Safety
/// `p` is a live block of another allocator, not ours.
pub(crate) unsafe fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    let f = resolved(&NEXT_REALLOC);
    if f == 0 {
        unforwardable(b"realloc()");
        return crate::nomem();
    }
    // SAFETY: `f` is the next definition of `realloc`, found by dlsym; `p`
    // belongs to that allocator (caller contract).
    unsafe {
        let f: unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void = core::mem::transmute(f);
        f(p, size)
    }
}

/// `malloc_usable_size` of a foreign block: the next one's answer, or 0.
///
/// # Safety
/// `p` is a live block of another allocator, not ours.
pub(crate) unsafe fn usable_size(p: *mut c_void) -> usize {
    let f = resolved(&NEXT_USABLE);
    if f == 0 {
        return 0;
    }
    // SAFETY: `f` is the next definition of `malloc_usable_size`, found by
    // dlsym; `p` belongs to that allocator (caller contract).
    unsafe {
        let f: unsafe extern "C" fn(*mut c_void) -> usize = core::mem::transmute(f);
        f(p)
    }
}
