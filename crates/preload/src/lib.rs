//! preload: `libhakmem.so`, the C allocation API over the hakmem facade, for
//! `LD_PRELOAD=target/release/libhakmem.so program`. See `docs/preload.md`.
//!
//! Semantics follow glibc where the standards leave a choice: failures
//! return NULL with `errno = ENOMEM`, sizes above `PTRDIFF_MAX` fail,
//! `realloc(p, 0)` frees and returns NULL, `malloc(0)` returns a unique
//! pointer, `aligned_alloc` with an alignment that is not a power of two
//! fails with `EINVAL` (glibc 2.38).
//!
//! **Architecture Invariant:** `malloc` and `free` are tail calls into the
//! facade with no check of their own. Nothing here allocates, and nothing
//! calls `dlsym` except the opt-in foreign-pointer path ([`foreign`]), which
//! resolves the next allocator only when the first foreign pointer shows up.

use core::ffi::c_void;
use core::ptr;

mod cxx;
mod foreign;
mod info;
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod nounwind;
mod threads;

pub use info::{mallinfo, mallinfo2, malloc_stats, malloc_trim, mallopt, Mallinfo, Mallinfo2};

const PTRDIFF_MAX: usize = isize::MAX as usize;

#[inline]
fn set_errno(e: i32) {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() = e };
}

#[inline]
fn nomem() -> *mut c_void {
    set_errno(libc::ENOMEM);
    ptr::null_mut()
}

/// The system page size (read once by the facade's OS layer).
fn page_size() -> usize {
    hakmem::page_size()
}

// ---------------------------------------------------------------------------
// malloc / free: the hot path, tail calls only.
// ---------------------------------------------------------------------------

/// C `malloc`.
///
/// # Safety
/// Callable from C with any argument.
#[no_mangle]
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    // The facade sets errno = ENOMEM itself on failure, and sizes above
    // PTRDIFF_MAX fail in its span path, so this is a plain tail call.
    hakmem::malloc(size) as *mut c_void
}

/// C `free`.
///
/// # Safety
/// `p` is null or a live pointer from this allocator.
#[no_mangle]
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
pub unsafe extern "C" fn free(p: *mut c_void) {
    // SAFETY: C caller contract.
    unsafe { hakmem::free(p as *mut u8) }
}

/// C `cfree` (obsolete alias of free).
///
/// # Safety
/// As for [`free`].
#[no_mangle]
pub unsafe extern "C" fn cfree(p: *mut c_void) {
    // SAFETY: C caller contract.
    unsafe { hakmem::free(p as *mut u8) }
}

/// C23 `free_sized`: frees `p`, which was allocated with `size` bytes. The
/// size picks the thread cache's list early (`hakmem::free_sized_layout`;
/// a size of another class than the block's just takes `free`'s path);
/// the secure mode checks it.
///
/// # Safety
/// As for [`free`].
#[no_mangle]
pub unsafe extern "C" fn free_sized(p: *mut c_void, size: usize) {
    // SAFETY: C caller contract.
    unsafe { hakmem::free_with_size(p as *mut u8, size, "free_sized()") }
}

/// C23 `free_aligned_sized`: frees `p`, which was allocated by
/// `aligned_alloc(align, size)`. Neither value is needed nor checked.
///
/// # Safety
/// As for [`free`].
#[no_mangle]
pub unsafe extern "C" fn free_aligned_sized(p: *mut c_void, _align: usize, _size: usize) {
    // SAFETY: C caller contract.
    unsafe { hakmem::free(p as *mut u8) }
}

// ---------------------------------------------------------------------------
// calloc / realloc.
// ---------------------------------------------------------------------------

/// C `calloc`: ENOMEM when `n * size` overflows or exceeds `PTRDIFF_MAX`.
///
/// # Safety
/// Callable from C with any arguments.
#[no_mangle]
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
pub unsafe extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    let Some(total) = n.checked_mul(size).filter(|&t| t <= PTRDIFF_MAX) else {
        return nomem();
    };
    let p = hakmem::calloc(total);
    if p.is_null() {
        return nomem();
    }
    p as *mut c_void
}

/// C `realloc`: `realloc(NULL, n)` is `malloc(n)`; `realloc(p, 0)` frees
/// `p` and returns NULL (glibc); on failure returns NULL with ENOMEM and
/// leaves `p` intact.
///
/// # Safety
/// `p` is null or a live pointer from this allocator.
#[no_mangle]
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
pub unsafe extern "C" fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    if p.is_null() {
        // SAFETY: plain allocation.
        return unsafe { malloc(size) };
    }
    if size == 0 {
        // SAFETY: C caller contract.
        unsafe { free(p) };
        return ptr::null_mut();
    }
    if size > PTRDIFF_MAX {
        return nomem();
    }
    if foreign::forwarding() && !hakmem::owns(p as *const u8) {
        // SAFETY: C caller contract: `p` is live, and not ours.
        return unsafe { foreign::realloc(p, size) };
    }
    // SAFETY: C caller contract.
    let q = unsafe { hakmem::realloc(p as *mut u8, size) };
    if q.is_null() {
        return nomem();
    }
    q as *mut c_void
}

/// C `reallocarray`: `realloc(p, n * size)`, ENOMEM if the product overflows.
///
/// # Safety
/// As for [`realloc`].
#[no_mangle]
pub unsafe extern "C" fn reallocarray(p: *mut c_void, n: usize, size: usize) -> *mut c_void {
    match n.checked_mul(size) {
        // SAFETY: forwarded contract.
        Some(t) => unsafe { realloc(p, t) },
        None => nomem(),
    }
}

// ---------------------------------------------------------------------------
// Aligned allocation.
// ---------------------------------------------------------------------------

/// `size` bytes aligned to `align` (a power of two); null on failure.
fn aligned(align: usize, size: usize) -> *mut c_void {
    if size > PTRDIFF_MAX || align > PTRDIFF_MAX / 2 {
        return ptr::null_mut();
    }
    hakmem::malloc_aligned(size, align) as *mut c_void
}

/// C `posix_memalign`: EINVAL unless `align` is a power of two multiple of
/// `sizeof(void*)`; ENOMEM on failure; `*out` untouched on error.
///
/// # Safety
/// `out` is a valid pointer to write the result to.
#[no_mangle]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> i32 {
    if !align.is_power_of_two() || !align.is_multiple_of(core::mem::size_of::<*mut c_void>()) {
        return libc::EINVAL;
    }
    let p = aligned(align, size);
    if p.is_null() {
        return libc::ENOMEM;
    }
    // SAFETY: C caller contract.
    unsafe { *out = p };
    0
}

/// C11 `aligned_alloc`: any power-of-two alignment (smaller ones give the
/// usual 16); EINVAL for 0 or a non-power of two, as glibc 2.38 does; `size`
/// need not be a multiple of `align`.
///
/// # Safety
/// Callable from C with any arguments.
#[no_mangle]
pub unsafe extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    if !align.is_power_of_two() {
        set_errno(libc::EINVAL);
        return ptr::null_mut();
    }
    let p = aligned(align, size);
    if p.is_null() {
        return nomem();
    }
    p
}

/// Legacy `memalign`: a non-power-of-two alignment rounds up to the next
/// power of two, one above `SIZE_MAX / 2 + 1` fails with EINVAL (glibc).
///
/// # Safety
/// Callable from C with any arguments.
#[no_mangle]
pub unsafe extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    let a = if align.is_power_of_two() {
        align
    } else if align > usize::MAX / 2 + 1 {
        set_errno(libc::EINVAL);
        return ptr::null_mut();
    } else {
        align.next_power_of_two()
    };
    let p = aligned(a.max(16), size);
    if p.is_null() {
        return nomem();
    }
    p
}

/// Legacy `valloc`: page-aligned.
///
/// # Safety
/// Callable from C with any argument.
#[no_mangle]
pub unsafe extern "C" fn valloc(size: usize) -> *mut c_void {
    // SAFETY: forwarded.
    unsafe { memalign(page_size(), size) }
}

/// Legacy `pvalloc`: page-aligned, size rounded up to whole pages (at least
/// one).
///
/// # Safety
/// Callable from C with any argument.
#[no_mangle]
pub unsafe extern "C" fn pvalloc(size: usize) -> *mut c_void {
    let page = page_size();
    let Some(s) = size.checked_add(page - 1) else {
        return nomem();
    };
    // SAFETY: forwarded.
    unsafe { memalign(page, (s & !(page - 1)).max(page)) }
}

/// `malloc_usable_size`: bytes usable in block `p` (0 for null).
///
/// # Safety
/// `p` is null or a live pointer from this allocator.
#[no_mangle]
pub unsafe extern "C" fn malloc_usable_size(p: *mut c_void) -> usize {
    if p.is_null() {
        return 0;
    }
    let n = hakmem::usable_size(p as *const u8);
    // 0 is also the exact size of a secure-mode `malloc(0)` block.
    if n == 0 && !hakmem::owns(p as *const u8) {
        if foreign::forwarding() {
            // SAFETY: C caller contract: `p` is live, and not ours.
            return unsafe { foreign::usable_size(p) };
        }
        hakmem::foreign_pointer("malloc_usable_size()", p as *const u8);
    }
    n
}

// ---------------------------------------------------------------------------
// glibc-internal aliases. Some programs and libraries (and glibc itself, in
// older versions) call these names directly; each is its public twin.
// ---------------------------------------------------------------------------

/// glibc alias of [`malloc`].
///
/// # Safety
/// As for [`malloc`].
#[no_mangle]
pub unsafe extern "C" fn __libc_malloc(size: usize) -> *mut c_void {
    hakmem::malloc(size) as *mut c_void
}

/// glibc alias of [`free`].
///
/// # Safety
/// As for [`free`].
#[no_mangle]
pub unsafe extern "C" fn __libc_free(p: *mut c_void) {
    // SAFETY: C caller contract.
    unsafe { hakmem::free(p as *mut u8) }
}

/// glibc alias of [`calloc`].
///
/// # Safety
/// As for [`calloc`].
#[no_mangle]
pub unsafe extern "C" fn __libc_calloc(n: usize, size: usize) -> *mut c_void {
    // SAFETY: forwarded contract.
    unsafe { calloc(n, size) }
}

/// glibc alias of [`realloc`].
///
/// # Safety
/// As for [`realloc`].
#[no_mangle]
pub unsafe extern "C" fn __libc_realloc(p: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: forwarded contract.
    unsafe { realloc(p, size) }
}

/// glibc alias of [`memalign`].
///
/// # Safety
/// As for [`memalign`].
#[no_mangle]
pub unsafe extern "C" fn __libc_memalign(align: usize, size: usize) -> *mut c_void {
    // SAFETY: forwarded contract.
    unsafe { memalign(align, size) }
}

/// glibc alias of [`valloc`].
///
/// # Safety
/// As for [`valloc`].
#[no_mangle]
pub unsafe extern "C" fn __libc_valloc(size: usize) -> *mut c_void {
    // SAFETY: forwarded contract.
    unsafe { valloc(size) }
}

/// glibc alias of [`pvalloc`].
///
/// # Safety
/// As for [`pvalloc`].
#[no_mangle]
pub unsafe extern "C" fn __libc_pvalloc(size: usize) -> *mut c_void {
    // SAFETY: forwarded contract.
    unsafe { pvalloc(size) }
}

/// glibc alias of [`posix_memalign`].
///
/// # Safety
/// As for [`posix_memalign`].
#[no_mangle]
pub unsafe extern "C" fn __posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> i32 {
    // SAFETY: forwarded contract.
    unsafe { posix_memalign(out, align, size) }
}

// ---------------------------------------------------------------------------
// Process life cycle: fork handlers, installed at load time.
// ---------------------------------------------------------------------------

fn atfork_child() {
    foreign::after_fork_child();
}

#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
extern "C" fn hakmem_preload_init() {
    // libc's __register_atfork, before any registration can start, so that
    // none needs `dlsym` later inside malloc (docs/fork.md). Then, before
    // anything reads the configuration (whose first reading would register
    // the fork handlers): defer the registration when this library's
    // exports are what the process calls, so that they can register when a
    // thread or a program's handler needs it. `dlopen`ed, the library sees
    // neither, and registers below as before.
    let _ = hakmem::libc_register_atfork();
    if threads::interposing() {
        hakmem::defer_fork_registration();
    }
    page_size();
    if foreign::forwarding() {
        hakmem::set_foreign_free_handler(Some(foreign::free));
    }
    // HAKMEM_ACE=1: start the learning worker now, outside any malloc call.
    hakmem::ace::start_from_env();
    // HAKMEM_BACKGROUND=1: the background purge thread, also started here
    // (the ACE worker, if it runs, does the purge on its tick instead).
    hakmem::background::start_from_env();
    // The allocator's own fork handlers (the facade's, shared with Rust
    // users), then this library's: the forwarding table's reset. Deferred,
    // they are registered with libc by this library's `pthread_create` and
    // `__register_atfork` (or by the first lock taken with a second thread:
    // docs/fork.md), except with forwarding on: a resolution under way
    // takes no lock. Not deferred, `add_fork_handlers` registers them now.
    hakmem::add_fork_handlers(None, None, Some(atfork_child));
    if foreign::forwarding() {
        hakmem::register_fork_handlers_now();
    }
}

/// Runs when the library is loaded, before `main` and outside any malloc
/// call: installs the fork handlers.
#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn() = hakmem_preload_init;

#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
extern "C" fn hakmem_preload_fini() {
    hakmem::report_at_exit();
}

/// Runs when the library is unloaded at process exit (after the program's
/// own `atexit` handlers): prints the `HAKMEM_STATS` report if it has not
/// been printed yet.
#[used]
#[link_section = ".fini_array"]
static FINI: extern "C" fn() = hakmem_preload_fini;
