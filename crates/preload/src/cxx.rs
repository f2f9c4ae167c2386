//! The C++ allocation operators, exported from `libhakmem.so` so that a
//! C++ program's `new` and `delete` reach hakmem without going through
//! libstdc++'s wrappers (which call `malloc`/`free` through the PLT), and so
//! that the secure mode sees the size a sized `delete` passes.
//!
//! Every standard form is here: plain, array, `nothrow`, aligned
//! (`std::align_val_t`), and the sized deletes. A throwing `new` that finds
//! no memory hands the request to the next definition in the symbol chain
//! (normally libstdc++'s, found with `dlsym(RTLD_NEXT)` on that path only),
//! which runs the `std::new_handler` loop and throws `std::bad_alloc` — what
//! a C++ program expects, and what Rust code cannot do itself. The
//! `nothrow` forms return null.

use core::ffi::{c_void, CStr};

/// The next definition of the operator `name` (`dlsym(RTLD_NEXT)`), or an
/// abort with a diagnostic when there is none.
#[cold]
fn next(name: &CStr) -> *mut c_void {
    // SAFETY: a NUL-terminated name; RTLD_NEXT is a valid pseudo-handle.
    let f = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) };
    if f.is_null() {
        let msg = b"hakmem: operator new: out of memory and no next operator new to throw\n";
        hakmem::write_stderr(msg);
        // SAFETY: abort has no preconditions.
        unsafe { libc::abort() }
    }
    f
}

#[inline(always)]
fn alloc(size: usize) -> *mut c_void {
    hakmem::malloc(size).cast()
}

#[inline]
fn alloc_aligned(size: usize, align: usize) -> *mut c_void {
    if !align.is_power_of_two() {
        return core::ptr::null_mut();
    }
    hakmem::malloc_aligned(size, align).cast()
}

/// The throwing forms are naked functions, so that no Rust frame is on the
/// stack when the next `operator new` throws (an unwind through a Rust
/// `extern "C"` frame aborts): try hakmem; on null, fetch the next
/// definition and *jump* to it with the original arguments (`rdi`, `rsi`),
/// so it runs as if the program had called it. (`rust-version` 1.88, for
/// `#[unsafe(naked)]`.)
#[cfg(target_arch = "x86_64")]
macro_rules! throwing_new {
    ($(#[$doc:meta])* $sym:ident($($arg:ident: $t:ty),*), $alloc:ident, $next:ident) => {
        $(#[$doc])*
        #[no_mangle]
        #[unsafe(naked)]
        pub extern "C" fn $sym($($arg: $t),*) -> *mut c_void {
            core::arch::naked_asm!(
                "push rdi",
                "push rsi",
                "sub rsp, 8",
                "call {alloc}",
                "add rsp, 8",
                "pop rsi",
                "pop rdi",
                "test rax, rax",
                "jz 2f",
                "ret",
                "2:",
                "push rdi",
                "push rsi",
                "sub rsp, 8",
                "call {next}",
                "add rsp, 8",
                "pop rsi",
                "pop rdi",
                "jmp rax",
                alloc = sym $alloc,
                next = sym $next,
            )
        }
    };
}

/// hakmem's part of a throwing `new`: the block, or null.
extern "C" fn new_plain(size: usize) -> *mut c_void {
    alloc(size)
}

/// hakmem's part of a throwing aligned `new`.
extern "C" fn new_aligned(size: usize, align: usize) -> *mut c_void {
    alloc_aligned(size, align)
}

extern "C" fn next_znwm() -> *mut c_void {
    next(c"_Znwm")
}
extern "C" fn next_znam() -> *mut c_void {
    next(c"_Znam")
}
extern "C" fn next_znwm_al() -> *mut c_void {
    next(c"_ZnwmSt11align_val_t")
}
extern "C" fn next_znam_al() -> *mut c_void {
    next(c"_ZnamSt11align_val_t")
}

#[cfg(target_arch = "x86_64")]
throwing_new!(
    /// `operator new(std::size_t)`.
    _Znwm(size: usize), new_plain, next_znwm
);
#[cfg(target_arch = "x86_64")]
throwing_new!(
    /// `operator new[](std::size_t)`.
    _Znam(size: usize), new_plain, next_znam
);
#[cfg(target_arch = "x86_64")]
throwing_new!(
    /// `operator new(std::size_t, std::align_val_t)`.
    _ZnwmSt11align_val_t(size: usize, align: usize), new_aligned, next_znwm_al
);
#[cfg(target_arch = "x86_64")]
throwing_new!(
    /// `operator new[](std::size_t, std::align_val_t)`.
    _ZnamSt11align_val_t(size: usize, align: usize), new_aligned, next_znam_al
);

/// `operator new(std::size_t, const std::nothrow_t&)`.
#[no_mangle]
pub extern "C" fn _ZnwmRKSt9nothrow_t(size: usize, _nt: *const c_void) -> *mut c_void {
    alloc(size)
}

/// `operator new[](std::size_t, const std::nothrow_t&)`.
#[no_mangle]
pub extern "C" fn _ZnamRKSt9nothrow_t(size: usize, _nt: *const c_void) -> *mut c_void {
    alloc(size)
}

/// `operator new(std::size_t, std::align_val_t, const std::nothrow_t&)`.
#[no_mangle]
pub extern "C" fn _ZnwmSt11align_val_tRKSt9nothrow_t(
    size: usize,
    align: usize,
    _nt: *const c_void,
) -> *mut c_void {
    alloc_aligned(size, align)
}

/// `operator new[](std::size_t, std::align_val_t, const std::nothrow_t&)`.
#[no_mangle]
pub extern "C" fn _ZnamSt11align_val_tRKSt9nothrow_t(
    size: usize,
    align: usize,
    _nt: *const c_void,
) -> *mut c_void {
    alloc_aligned(size, align)
}

macro_rules! deletes {
    ($($(#[$doc:meta])* $name:ident($($arg:ident: $t:ty),*);)*) => {$(
        $(#[$doc])*
        ///
        /// # Safety
        /// `p` is null or a live pointer from the matching `operator new`.
        #[no_mangle]
        pub unsafe extern "C" fn $name(p: *mut c_void, $($arg: $t),*) {
            $(let _ = $arg;)*
            // SAFETY: C++ caller contract.
            unsafe { hakmem::free(p.cast()) }
        }
    )*};
}

macro_rules! sized_deletes {
    ($($(#[$doc:meta])* $name:ident($($arg:ident: $t:ty),*);)*) => {$(
        $(#[$doc])*
        /// The size is checked in the secure mode.
        ///
        /// # Safety
        /// `p` is null or a live pointer from the matching `operator new`
        /// of `size` bytes.
        #[no_mangle]
        pub unsafe extern "C" fn $name(p: *mut c_void, size: usize, $($arg: $t),*) {
            $(let _ = $arg;)*
            // SAFETY: C++ caller contract.
            unsafe { hakmem::free_with_size(p.cast(), size, "operator delete()") }
        }
    )*};
}

deletes! {
    /// `operator delete(void*)`.
    _ZdlPv();
    /// `operator delete[](void*)`.
    _ZdaPv();
    /// `operator delete(void*, const std::nothrow_t&)`.
    _ZdlPvRKSt9nothrow_t(_nt: *const c_void);
    /// `operator delete[](void*, const std::nothrow_t&)`.
    _ZdaPvRKSt9nothrow_t(_nt: *const c_void);
    /// `operator delete(void*, std::align_val_t)`.
    _ZdlPvSt11align_val_t(_align: usize);
    /// `operator delete[](void*, std::align_val_t)`.
    _ZdaPvSt11align_val_t(_align: usize);
    /// `operator delete(void*, std::align_val_t, const std::nothrow_t&)`.
    _ZdlPvSt11align_val_tRKSt9nothrow_t(_align: usize, _nt: *const c_void);
    /// `operator delete[](void*, std::align_val_t, const std::nothrow_t&)`.
    _ZdaPvSt11align_val_tRKSt9nothrow_t(_align: usize, _nt: *const c_void);
}

sized_deletes! {
    /// `operator delete(void*, std::size_t)`.
    _ZdlPvm();
    /// `operator delete[](void*, std::size_t)`.
    _ZdaPvm();
    /// `operator delete(void*, std::size_t, std::align_val_t)`.
    _ZdlPvmSt11align_val_t(_align: usize);
    /// `operator delete[](void*, std::size_t, std::align_val_t)`.
    _ZdaPvmSt11align_val_t(_align: usize);
}
