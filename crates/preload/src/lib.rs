//! preload: `libhakmem.so`, the C allocation API over the hakmem facade, for
//! `LD_PRELOAD=target/release/libhakmem.so program`.
//!
//! Semantics follow glibc where the standards leave a choice: failures
//! return NULL with `errno = ENOMEM`, sizes above `PTRDIFF_MAX` fail,
//! `realloc(p, 0)` frees and returns NULL, `malloc(0)` returns a unique
//! pointer. Nothing here allocates or calls `dlsym`.

use core::ffi::c_void;
use core::ptr;

use api as hakmem;

const PTRDIFF_MAX: usize = isize::MAX as usize;
const PAGE: usize = 4096;

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

/// C `malloc`.
///
/// # Safety
/// Callable from C with any argument.
#[no_mangle]
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

/// C `calloc`.
///
/// # Safety
/// Callable from C with any arguments.
#[no_mangle]
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

/// C `realloc`.
///
/// # Safety
/// `p` is null or a live pointer from this allocator.
#[no_mangle]
pub unsafe extern "C" fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    if p.is_null() {
        // SAFETY: plain allocation.
        return unsafe { malloc(size) };
    }
    if size == 0 {
        // SAFETY: C caller contract.
        unsafe { hakmem::free(p as *mut u8) };
        return ptr::null_mut();
    }
    if size > PTRDIFF_MAX {
        return nomem();
    }
    // SAFETY: C caller contract.
    let q = unsafe { hakmem::realloc(p as *mut u8, size) };
    if q.is_null() {
        return nomem();
    }
    q as *mut c_void
}

/// C `reallocarray`.
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

/// C11 `aligned_alloc` (glibc accepts any power-of-two alignment).
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

/// Legacy `memalign` (non-power-of-two alignments round up, like glibc).
///
/// # Safety
/// Callable from C with any arguments.
#[no_mangle]
pub unsafe extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    let a = if align.is_power_of_two() {
        align
    } else if align > PTRDIFF_MAX / 2 {
        return nomem();
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
    unsafe { memalign(PAGE, size) }
}

/// Legacy `pvalloc`: page-aligned, size rounded up to whole pages.
///
/// # Safety
/// Callable from C with any argument.
#[no_mangle]
pub unsafe extern "C" fn pvalloc(size: usize) -> *mut c_void {
    let Some(s) = size.checked_add(PAGE - 1) else {
        return nomem();
    };
    // SAFETY: forwarded.
    unsafe { memalign(PAGE, (s & !(PAGE - 1)).max(PAGE)) }
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
    hakmem::usable_size(p as *const u8)
}

extern "C" fn atfork_prepare() {
    hakmem::fork_prepare();
}
extern "C" fn atfork_parent() {
    hakmem::fork_parent();
}
extern "C" fn atfork_child() {
    hakmem::fork_child();
}

extern "C" fn hakmem_preload_init() {
    // SAFETY: the handlers are `extern "C"` functions living for the process.
    unsafe {
        libc::pthread_atfork(
            Some(atfork_prepare),
            Some(atfork_parent),
            Some(atfork_child),
        );
    }
}

/// Runs when the library is loaded, before `main` and outside any malloc
/// call: installs the fork handlers.
#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn() = hakmem_preload_init;
