//! Allocators loaded at run time from a system shared library with
//! `dlopen`: tcmalloc (gperftools' `libtcmalloc_minimal.so.4`), scudo
//! (LLVM's standalone `libclang_rt.scudo_standalone-x86_64.so`), and
//! mimalloc's secure build (`MI_SECURE=4`), which the suite compiles itself
//! from the C source the `libmimalloc-sys` crate bundles
//! ([`crate::cbuild::mimalloc_secure_so`]): Cargo's feature unification
//! would make the linked `mimalloc` secure for every column.
//!
//! The harness builds and runs without them: a library that is not
//! installed (or cannot be built) only removes its column, with a printed
//! line that says which package to install or why ([`DlLib::missing`]). When it is there, the child of
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
//! to itself and not to glibc's. The mimalloc secure library is opened
//! with `RTLD_DEEPBIND` too (it is built with `MI_MALLOC_OVERRIDE`, so that
//! the same file serves `LD_PRELOAD`), and called through `mi_malloc`,
//! `mi_memalign` and `mi_free`.

use std::ffi::{c_int, c_void, CStr, CString};
use std::path::PathBuf;
use std::sync::OnceLock;

type MallocFn = unsafe extern "C" fn(usize) -> *mut c_void;
type FreeFn = unsafe extern "C" fn(*mut c_void);
type MemalignFn = unsafe extern "C" fn(usize, usize) -> *mut c_void;
type VoidFn = unsafe extern "C" fn();
type MalloptFn = unsafe extern "C" fn(c_int, c_int) -> c_int;
type ForceFn = unsafe extern "C" fn(bool);

/// How a library is asked to return free memory to the OS.
#[derive(Clone, Copy, Debug)]
pub enum TrimCall {
    /// `void f(void)`, e.g. `MallocExtension_ReleaseFreeMemory`.
    Void(&'static CStr),
    /// `mallopt(param, 0)`, e.g. scudo's `M_PURGE` (-101).
    Mallopt(&'static CStr, c_int),
    /// `void f(bool force)` called with `true`, e.g. `mi_collect`.
    Force(&'static CStr),
}

/// Where a library's file comes from.
#[derive(Debug)]
pub enum Source {
    /// A file a Debian package installs.
    System {
        /// Where the package puts the library.
        path: &'static str,
        /// The Debian package that installs it.
        package: &'static str,
    },
    /// A library the suite builds itself: the function returns its path,
    /// building it first (once; the file is kept) when its argument is
    /// `true`, else only when it is already built; the error says why not.
    Built(fn(bool) -> Result<PathBuf, String>),
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
    Force(ForceFn),
}

/// A shared library holding an allocator, and its entry points once loaded.
#[derive(Debug)]
pub struct DlLib {
    /// The column's name (`tcmalloc`, `scudo`, `mimalloc-secure`).
    pub name: &'static str,
    /// Where the library's file comes from.
    pub source: Source,
    malloc: &'static CStr,
    free: &'static CStr,
    memalign: &'static CStr,
    trim: Option<TrimCall>,
    deepbind: bool,
    env: &'static [(&'static str, &'static str)],
    path: OnceLock<Result<PathBuf, String>>,
    fns: OnceLock<Result<Fns, String>>,
}

impl DlLib {
    /// Describes a library; nothing is opened before the first use.
    #[allow(clippy::too_many_arguments)]
    pub const fn new(
        name: &'static str,
        source: Source,
        syms: [&'static CStr; 3],
        trim: Option<TrimCall>,
        deepbind: bool,
        env: &'static [(&'static str, &'static str)],
    ) -> DlLib {
        DlLib {
            name,
            source,
            malloc: syms[0],
            free: syms[1],
            memalign: syms[2],
            trim,
            deepbind,
            env,
            path: OnceLock::new(),
            fns: OnceLock::new(),
        }
    }

    /// The library's file, building it first for a [`Source::Built`]
    /// (once per process; the built file is kept for later runs), or the
    /// line to print: what is missing and how to install it, or why it
    /// cannot be built.
    pub fn path(&self) -> Result<&PathBuf, &String> {
        self.path
            .get_or_init(|| match self.source {
                Source::System { path, package } => {
                    if std::path::Path::new(path).exists() {
                        Ok(PathBuf::from(path))
                    } else {
                        Err(format!(
                            "{}: {path} is not installed, so the {} column is left out \
                             (install it with `apt-get install {package}`)",
                            self.name, self.name
                        ))
                    }
                }
                Source::Built(f) => f(true).map_err(|e| {
                    format!(
                        "{}: {e}, so the {} column is left out",
                        self.name, self.name
                    )
                }),
            })
            .as_ref()
    }

    /// `None` when the library file is there (or could be built), else the
    /// line to print: what is missing and how to install it, or why it
    /// cannot be built.
    pub fn missing(&self) -> Option<String> {
        self.path().err().cloned()
    }

    /// Where the library is, for `list`, without building anything: the
    /// path, or what is missing.
    pub fn whereabouts(&self) -> String {
        match self.source {
            Source::System { path, package } => {
                if std::path::Path::new(path).exists() {
                    path.to_string()
                } else {
                    format!("MISSING {path} (apt-get install {package})")
                }
            }
            Source::Built(f) => match f(false) {
                Ok(p) => p.display().to_string(),
                Err(e) => e,
            },
        }
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
        let file = self.path().map_err(Clone::clone)?;
        let shown = file.display().to_string();
        let path = CString::new(file.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string())?;
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
            let mut e = format!("dlopen {shown}: {}", dl_error());
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
                    "{}: no symbol {} in {shown}",
                    self.name,
                    s.to_string_lossy(),
                ))
            } else {
                Ok(p)
            }
        };
        let (malloc, free, memalign) = (sym(self.malloc)?, sym(self.free)?, sym(self.memalign)?);
        let trim = match self.trim {
            None => None,
            Some(TrimCall::Void(s) | TrimCall::Mallopt(s, _) | TrimCall::Force(s)) => sym(s).ok(),
        };
        // SAFETY: each symbol is the C function of that name with the
        // signature its type says (malloc, free, memalign, and the
        // gperftools extension `void f(void)`, `int mallopt(int, int)` or
        // mimalloc's `void mi_collect(bool)`),
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
                    (Some(TrimCall::Force(_)), Some(p)) => {
                        Some(Trim::Force(transmute::<*mut c_void, ForceFn>(p)))
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
            // SAFETY: as above.
            Some(Trim::Force(f)) => unsafe { f(true) },
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
    Source::System {
        path: "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
        package: "libtcmalloc-minimal4",
    },
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
    Source::System {
        path: "/usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.scudo_standalone-x86_64.so",
        package: "libclang-rt-14-dev",
    },
    [c"malloc", c"free", c"memalign"],
    Some(TrimCall::Mallopt(c"mallopt", -101)),
    true,
    &[("GLIBC_TUNABLES", "glibc.rtld.optional_static_tls=65536")],
);

/// mimalloc's secure build (`MI_SECURE=4`: guard pages, encoded free
/// lists, double-free detection, randomised allocation), compiled by the
/// suite from the bundled C source ([`crate::cbuild::mimalloc_secure_so`]),
/// through `mi_malloc`/`mi_memalign`/`mi_free`; `mi_collect(true)` returns
/// its free memory.
pub static MIMALLOC_SECURE_LIB: DlLib = DlLib::new(
    "mimalloc-secure",
    Source::Built(crate::cbuild::mimalloc_secure_so),
    [c"mi_malloc", c"mi_free", c"mi_memalign"],
    Some(TrimCall::Force(c"mi_collect")),
    true,
    &[],
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_says_how_to_install_it() {
        static NONE: DlLib = DlLib::new(
            "nothing",
            Source::System {
                path: "/nonexistent/libnothing.so.1",
                package: "libnothing1",
            },
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

    #[test]
    fn mimalloc_secure_builds_and_allocates_or_says_why_not() {
        // Builds the library once (cached under target/hakmem-bench); where
        // there is no source or no C compiler, the note says so.
        if let Some(m) = MIMALLOC_SECURE_LIB.missing() {
            assert!(m.starts_with("mimalloc-secure: "), "{m}");
            assert!(m.contains("column is left out"), "{m}");
            return;
        }
        MIMALLOC_SECURE_LIB.load().unwrap();
        // SAFETY: as in the tcmalloc test.
        unsafe {
            for align in [8, 64, 4096] {
                let p = MIMALLOC_SECURE_LIB.alloc(100, align);
                assert!(!p.is_null() && (p as usize).is_multiple_of(align));
                p.write_bytes(7, 100);
                MIMALLOC_SECURE_LIB.free(p);
            }
        }
        MIMALLOC_SECURE_LIB.trim();
        assert!(!MIMALLOC_SECURE_LIB.whereabouts().contains("not built"));
    }
}
