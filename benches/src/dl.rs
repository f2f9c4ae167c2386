//! Allocators loaded at run time from a system shared library with
//! `dlopen`: tcmalloc (gperftools' `libtcmalloc_minimal.so.4`) and scudo
//! (LLVM's standalone `libclang_rt.scudo_standalone-x86_64.so`).
//!
//! The harness builds and runs without them: a library that is not
//! installed only removes its column, with a printed line that says which
//! package to install ([`DlLib::missing`]). When it is there, the child of
//! that column opens it with `RTLD_LOCAL` (its `malloc`/`free` do not
//! replace anybody's; the binary's global allocator stays glibc's) and
//! looks up the entry points named in its [`DlLib`]; the workloads then
//! call them through function pointers, one indirect call per operation
//! (what a PLT call costs a C program).
//!
//! Scudo's library is linked with a static TLS block of about 11 KiB,
//! more than glibc keeps in reserve for `dlopen`; its children therefore
//! get `GLIBC_TUNABLES=glibc.rtld.optional_static_tls=65536`
//! ([`DlLib::child_env`]), else `dlopen` fails with "cannot allocate memory
//! in static TLS block". It is opened with `RTLD_DEEPBIND` as well, so that
//! its own references to `malloc`/`free` (it exports those names only) bind
//! to itself and not to glibc's.

use std::ffi::{c_int, c_void, CStr, CString};
use std::sync::OnceLock;

type MallocFn = unsafe extern "C" fn(usize) -> *mut c_void;
type FreeFn = unsafe extern "C" fn(*mut c_void);
type MemalignFn = unsafe extern "C" fn(usize, usize) -> *mut c_void;
type VoidFn = unsafe extern "C" fn();
type MalloptFn = unsafe extern "C" fn(c_int, c_int) -> c_int;

/// How a library is asked to return free memory to the OS.
#[derive(Clone, Copy, Debug)]
pub enum TrimCall {
    /// `void f(void)`, e.g. `MallocExtension_ReleaseFreeMemory`.
    Void(&'static CStr),
    /// `mallopt(param, 0)`, e.g. scudo's `M_PURGE` (-101).
    Mallopt(&'static CStr, c_int),
}

/// The entry points of a loaded library.
#[derive(Clone, Copy, Debug)]
struct Fns {
    malloc: MallocFn,
    free: FreeFn,
    memalign: MemalignFn,
    trim: Option<Trim>,
}

#[derive(Clone, Copy, Debug)]
enum Trim {
    Void(VoidFn),
    Mallopt(MalloptFn, c_int),
}

/// A shared library holding an allocator, and its entry points once loaded.
#[derive(Debug)]
pub struct DlLib {
    /// The column's name (`tcmalloc`, `scudo`).
    pub name: &'static str,
    /// Where the Debian package puts the library.
    pub path: &'static str,
    /// The Debian package that installs it.
    pub package: &'static str,
    malloc: &'static CStr,
    free: &'static CStr,
    memalign: &'static CStr,
    trim: Option<TrimCall>,
    deepbind: bool,
    env: &'static [(&'static str, &'static str)],
    fns: OnceLock<Result<Fns, String>>,
}

impl DlLib {
    /// Describes a library; nothing is opened before the first use.
    #[allow(clippy::too_many_arguments)]
    pub const fn new(
        name: &'static str,
        path: &'static str,
        package: &'static str,
        syms: [&'static CStr; 3],
        trim: Option<TrimCall>,
        deepbind: bool,
        env: &'static [(&'static str, &'static str)],
    ) -> DlLib {
        DlLib {
            name,
            path,
            package,
            malloc: syms[0],
            free: syms[1],
            memalign: syms[2],
            trim,
            deepbind,
            env,
            fns: OnceLock::new(),
        }
    }

    /// `None` when the library file is there, else the line to print:
    /// what is missing and how to install it.
    pub fn missing(&self) -> Option<String> {
        if std::path::Path::new(self.path).exists() {
            return None;
        }
        Some(format!(
            "{}: {} is not installed, so the {} column is left out \
             (install it with `apt-get install {}`)",
            self.name, self.path, self.name, self.package
        ))
    }

    /// Environment variables a child process using this library needs.
    pub fn child_env(&self) -> &'static [(&'static str, &'static str)] {
        self.env
    }

    /// Opens the library and resolves its entry points (once per process).
    pub fn load(&self) -> Result<(), String> {
        self.fns().map(|_| ())
    }

    fn fns(&self) -> Result<&Fns, String> {
        self.fns
            .get_or_init(|| self.open())
            .as_ref()
            .map_err(Clone::clone)
    }

    fn open(&self) -> Result<Fns, String> {
        if let Some(m) = self.missing() {
            return Err(m);
        }
        let path = CString::new(self.path).map_err(|e| e.to_string())?;
        let mut flags = libc::RTLD_NOW | libc::RTLD_LOCAL;
        if self.deepbind {
            flags |= libc::RTLD_DEEPBIND;
        }
        // SAFETY: `path` is NUL-terminated; the library's initialisers are
        // those of a malloc implementation meant to be loaded into any
        // process. The handle is never closed: the functions stay valid
        // for the life of the process.
        let h = unsafe { libc::dlopen(path.as_ptr(), flags) };
        if h.is_null() {
            let mut e = format!("dlopen {}: {}", self.path, dl_error());
            if !self.env.is_empty() {
                let env: Vec<String> = self.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
                e.push_str(&format!(
                    " (its children need {}; the suite sets it)",
                    env.join(" ")
                ));
            }
            return Err(e);
        }
        let sym = |s: &CStr| -> Result<*mut c_void, String> {
            // SAFETY: `h` is a live handle and `s` is NUL-terminated.
            let p = unsafe { libc::dlsym(h, s.as_ptr()) };
            if p.is_null() {
                Err(format!(
                    "{}: no symbol {} in {}",
                    self.name,
                    s.to_string_lossy(),
                    self.path
                ))
            } else {
                Ok(p)
            }
        };
        let (malloc, free, memalign) = (sym(self.malloc)?, sym(self.free)?, sym(self.memalign)?);
        let trim = match self.trim {
            None => None,
            Some(TrimCall::Void(s) | TrimCall::Mallopt(s, _)) => sym(s).ok(),
        };
        // SAFETY: each symbol is the C function of that name with the
        // signature its type says (malloc, free, memalign, and the
        // gperftools extension `void f(void)` or `int mallopt(int, int)`),
        // as the libraries' headers declare; all are non-null (checked).
        unsafe {
            use std::mem::transmute;
            Ok(Fns {
                malloc: transmute::<*mut c_void, MallocFn>(malloc),
                free: transmute::<*mut c_void, FreeFn>(free),
                memalign: transmute::<*mut c_void, MemalignFn>(memalign),
                trim: match (self.trim, trim) {
                    (Some(TrimCall::Void(_)), Some(p)) => {
                        Some(Trim::Void(transmute::<*mut c_void, VoidFn>(p)))
                    }
                    (Some(TrimCall::Mallopt(_, param)), Some(p)) => {
                        Some(Trim::Mallopt(transmute::<*mut c_void, MalloptFn>(p), param))
                    }
                    _ => None,
                },
            })
        }
    }

    /// The entry points; aborts the process when the library cannot be
    /// loaded (the runner checks [`DlLib::load`] before any workload, so
    /// this only fires on a misuse).
    #[inline(always)]
    fn get(&self) -> &Fns {
        match self.fns.get() {
            Some(Ok(f)) => f,
            _ => self.get_slow(),
        }
    }

    #[cold]
    #[inline(never)]
    fn get_slow(&self) -> &Fns {
        match self.fns() {
            Ok(f) => f,
            Err(e) => {
                eprintln!("hakmem-bench: {e}");
                std::process::abort()
            }
        }
    }

    /// `malloc(size)`, or `memalign(align, size)` above 16-byte alignment.
    ///
    /// # Safety
    /// `size` is non-zero and `align` a power of two.
    #[inline(always)]
    pub unsafe fn alloc(&self, size: usize, align: usize) -> *mut u8 {
        let f = self.get();
        // SAFETY: plain C allocation calls with a valid size/alignment;
        // both libraries return at least 16-byte aligned blocks from malloc.
        unsafe {
            if align <= 16 {
                (f.malloc)(size).cast()
            } else {
                (f.memalign)(align, size).cast()
            }
        }
    }

    /// `free(p)`.
    ///
    /// # Safety
    /// `p` came from [`DlLib::alloc`] of this library and is not freed yet.
    #[inline(always)]
    pub unsafe fn free(&self, p: *mut u8) {
        // SAFETY: the caller's contract.
        unsafe { (self.get().free)(p.cast()) }
    }

    /// Asks the library to return free memory to the OS (nothing when it
    /// has no such call).
    pub fn trim(&self) {
        match self.get().trim {
            // SAFETY: the extension calls take no pointers; any thread may
            // call them.
            Some(Trim::Void(f)) => unsafe { f() },
            // SAFETY: as above.
            Some(Trim::Mallopt(f, p)) => unsafe {
                f(p, 0);
            },
            None => {}
        }
    }
}

fn dl_error() -> String {
    // SAFETY: dlerror returns null or a NUL-terminated string valid until
    // the next dl* call on this thread; it is copied at once.
    unsafe {
        let e = libc::dlerror();
        if e.is_null() {
            "unknown error".into()
        } else {
            CStr::from_ptr(e).to_string_lossy().into_owned()
        }
    }
}

/// gperftools' tcmalloc (minimal: no heap profiler), through its `tc_`
/// entry points, which the library exports beside `malloc`/`free`.
pub static TCMALLOC_LIB: DlLib = DlLib::new(
    "tcmalloc",
    "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
    "libtcmalloc-minimal4",
    [c"tc_malloc", c"tc_free", c"tc_memalign"],
    Some(TrimCall::Void(c"MallocExtension_ReleaseFreeMemory")),
    false,
    &[],
);

/// LLVM 14's standalone scudo (the hardened allocator), through the
/// `malloc`/`free`/`memalign` it exports; `mallopt(M_PURGE, 0)` releases
/// its free memory (M_PURGE = -101 in scudo's wrappers).
pub static SCUDO_LIB: DlLib = DlLib::new(
    "scudo",
    "/usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.scudo_standalone-x86_64.so",
    "libclang-rt-14-dev",
    [c"malloc", c"free", c"memalign"],
    Some(TrimCall::Mallopt(c"mallopt", -101)),
    true,
    &[("GLIBC_TUNABLES", "glibc.rtld.optional_static_tls=65536")],
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_says_how_to_install_it() {
        static NONE: DlLib = DlLib::new(
            "nothing",
            "/nonexistent/libnothing.so.1",
            "libnothing1",
            [c"malloc", c"free", c"memalign"],
            None,
            false,
            &[],
        );
        let m = NONE.missing().unwrap();
        assert!(m.contains("apt-get install libnothing1"), "{m}");
        assert!(m.contains("/nonexistent/libnothing.so.1"), "{m}");
        assert_eq!(NONE.load().unwrap_err(), m);
    }

    #[test]
    fn tcmalloc_allocates_when_installed() {
        if TCMALLOC_LIB.missing().is_some() {
            return;
        }
        TCMALLOC_LIB.load().unwrap();
        // SAFETY: non-zero size, power-of-two alignments; each block is
        // written within bounds and freed once.
        unsafe {
            for align in [8, 64, 4096] {
                let p = TCMALLOC_LIB.alloc(100, align);
                assert!(!p.is_null() && (p as usize).is_multiple_of(align));
                p.write_bytes(7, 100);
                TCMALLOC_LIB.free(p);
            }
        }
        TCMALLOC_LIB.trim();
    }
}
