//! The allocators under test, as statics usable side by side.
//!
//! None of them is this binary's `#[global_allocator]` (that stays the system
//! allocator): the workloads call `GlobalAlloc::alloc`/`dealloc` on these
//! statics directly.
//!
//! What each binding calls, for reading instruction counts: `HakMem` inlines
//! hakmem's `malloc`/`free`; `System` calls glibc `malloc`/`free` (alignment
//! 8 ≤ 16 and ≤ size); `MiMalloc` calls `mi_malloc_aligned`/`mi_free`;
//! `Jemalloc` calls `malloc` and the sized `sdallocx`; `Tcmalloc` and
//! `Scudo` call `tc_malloc`/`tc_free` and `malloc`/`free` of their system
//! libraries through function pointers (loaded with `dlopen`, see
//! [`crate::dl`]), `MimallocSecure` `mi_malloc`/`mi_free` of the secure
//! mimalloc library the suite builds, the same way; `SnMalloc` (crate `snmalloc-rs`) calls
//! `sn_rust_alloc`/`sn_rust_dealloc` (sized).
//!
//! [`Trim`] is how each of them is asked to give memory back to the OS
//! (`hakmem::trim`, `malloc_trim`, `mi_collect`, jemalloc's arena purge).

use std::alloc::{GlobalAlloc, Layout, System};

/// hakmem.
pub static HAKMEM: hakmem::HakMem = hakmem::HakMem;
/// hakmem in the secure mode (process-wide: only in its own children).
pub static HAKMEM_SECURE: hakmem::HakMemSecure = hakmem::HakMemSecure;
/// The system allocator (glibc malloc on Linux).
pub static SYSTEM: System = System;
/// mimalloc (the `mimalloc` crate, built from its bundled C source).
pub static MIMALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
/// mimalloc called the way a C program calls it (see [`MiDirect`]).
pub static MI_DIRECT: MiDirect = MiDirect;
/// jemalloc (the `tikv-jemallocator` crate, built from its bundled C source).
pub static JEMALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// tcmalloc (gperftools, `libtcmalloc_minimal.so.4`, loaded at run time).
pub static TCMALLOC: Tcmalloc = Tcmalloc;
/// scudo (LLVM 14 standalone, loaded at run time).
pub static SCUDO: Scudo = Scudo;
/// mimalloc's secure build (`MI_SECURE=4`, built by the suite, loaded at
/// run time).
pub static MIMALLOC_SECURE: MimallocSecure = MimallocSecure;
/// snmalloc (the `snmalloc-rs` crate, built from its bundled C++ source).
pub static SNMALLOC: snmalloc_rs::SnMalloc = snmalloc_rs::SnMalloc;

/// gperftools' tcmalloc through [`crate::dl::TCMALLOC_LIB`]: `tc_malloc`
/// (`tc_memalign` above 16-byte alignment) and `tc_free`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tcmalloc;

/// LLVM's standalone scudo through [`crate::dl::SCUDO_LIB`]: its `malloc`
/// (`memalign` above 16-byte alignment) and `free`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Scudo;

/// mimalloc's secure build through [`crate::dl::MIMALLOC_SECURE_LIB`]:
/// `mi_malloc` (`mi_memalign` above 16-byte alignment) and `mi_free`.
#[derive(Clone, Copy, Debug, Default)]
pub struct MimallocSecure;

// SAFETY: DlLib::alloc returns a block of at least `size` bytes aligned to
// `align` (malloc's 16 bytes, else memalign), or null; DlLib::free takes
// back every block it returned.
unsafe impl GlobalAlloc for Tcmalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: GlobalAlloc's contract: non-zero size, valid alignment.
        unsafe { crate::dl::TCMALLOC_LIB.alloc(layout.size(), layout.align()) }
    }

    #[inline]
    unsafe fn dealloc(&self, p: *mut u8, _layout: Layout) {
        // SAFETY: GlobalAlloc's contract: `p` came from `alloc` above.
        unsafe { crate::dl::TCMALLOC_LIB.free(p) }
    }
}

// SAFETY: as for Tcmalloc.
unsafe impl GlobalAlloc for Scudo {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: GlobalAlloc's contract: non-zero size, valid alignment.
        unsafe { crate::dl::SCUDO_LIB.alloc(layout.size(), layout.align()) }
    }

    #[inline]
    unsafe fn dealloc(&self, p: *mut u8, _layout: Layout) {
        // SAFETY: GlobalAlloc's contract: `p` came from `alloc` above.
        unsafe { crate::dl::SCUDO_LIB.free(p) }
    }
}

// SAFETY: as for Tcmalloc.
unsafe impl GlobalAlloc for MimallocSecure {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: GlobalAlloc's contract: non-zero size, valid alignment.
        unsafe { crate::dl::MIMALLOC_SECURE_LIB.alloc(layout.size(), layout.align()) }
    }

    #[inline]
    unsafe fn dealloc(&self, p: *mut u8, _layout: Layout) {
        // SAFETY: GlobalAlloc's contract: `p` came from `alloc` above.
        unsafe { crate::dl::MIMALLOC_SECURE_LIB.free(p) }
    }
}

impl Trim for MimallocSecure {
    const TRIM_CALL: &'static str = "mi_collect(true)";

    fn trim(&self) {
        crate::dl::MIMALLOC_SECURE_LIB.trim();
    }
}

impl Trim for Tcmalloc {
    const TRIM_CALL: &'static str = "MallocExtension_ReleaseFreeMemory()";

    fn trim(&self) {
        crate::dl::TCMALLOC_LIB.trim();
    }
}

impl Trim for Scudo {
    const TRIM_CALL: &'static str = "mallopt(M_PURGE = -101, 0)";

    fn trim(&self) {
        crate::dl::SCUDO_LIB.trim();
    }
}

impl Trim for snmalloc_rs::SnMalloc {
    // snmalloc-rs has no call that returns memory on request; snmalloc
    // decommits on its own.
    const TRIM_CALL: &'static str = "none (snmalloc-rs has no trim call)";

    fn trim(&self) {}
}

/// mimalloc through its plain C entry points: `mi_malloc` for alignments
/// up to 16 (which `mi_malloc` guarantees), `mi_malloc_aligned` above, and
/// `mi_free`. `mimalloc::MiMalloc` always calls `mi_malloc_aligned`, which
/// costs extra instructions per call; this is the baseline a C program (or
/// `LD_PRELOAD`) sees.
#[derive(Clone, Copy, Debug, Default)]
pub struct MiDirect;

// SAFETY: mi_malloc returns blocks aligned to at least 16 bytes (so any
// layout with align ≤ 16 is met), mi_malloc_aligned meets larger alignments,
// and mi_free accepts every block either returned.
unsafe impl GlobalAlloc for MiDirect {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: plain C allocation calls with a valid size/alignment.
        unsafe {
            if layout.align() <= 16 {
                libmimalloc_sys::mi_malloc(layout.size()).cast()
            } else {
                libmimalloc_sys::mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, p: *mut u8, _layout: Layout) {
        // SAFETY: GlobalAlloc's contract: `p` came from `alloc` above.
        unsafe { libmimalloc_sys::mi_free(p.cast()) }
    }
}

/// Giving freed memory back to the OS on request: what `rss-return` calls
/// after everything has been freed (and the worker threads have exited).
pub trait Trim {
    /// What [`Trim::trim`] calls, for the documentation and `list`.
    const TRIM_CALL: &'static str;

    /// Asks the allocator to return the memory it caches to the OS now.
    fn trim(&self);
}

impl Trim for hakmem::HakMem {
    const TRIM_CALL: &'static str = "hakmem::trim()";

    fn trim(&self) {
        hakmem::trim();
    }
}

impl Trim for hakmem::HakMemSecure {
    const TRIM_CALL: &'static str = "hakmem::trim()";

    fn trim(&self) {
        hakmem::trim();
    }
}

impl Trim for System {
    const TRIM_CALL: &'static str = "malloc_trim(0)";

    fn trim(&self) {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim takes no pointers; any thread may call it.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

/// `mi_collect(true)`: collects the calling thread's heap and the pages of
/// exited threads, and returns free memory to the OS.
fn mi_collect() {
    // SAFETY: mi_collect takes no pointers; any thread may call it.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

impl Trim for mimalloc::MiMalloc {
    const TRIM_CALL: &'static str = "mi_collect(true)";

    fn trim(&self) {
        mi_collect();
    }
}

impl Trim for MiDirect {
    const TRIM_CALL: &'static str = "mi_collect(true)";

    fn trim(&self) {
        mi_collect();
    }
}

impl Trim for tikv_jemallocator::Jemalloc {
    const TRIM_CALL: &'static str = "mallctl(\"arena.4096.purge\")";

    fn trim(&self) {
        // MALLCTL_ARENAS_ALL (4096 in jemalloc 5): purge the dirty and muzzy
        // pages of every arena. The calling thread's tcache is flushed first
        // so that its cached blocks can be purged too.
        for name in [&b"thread.tcache.flush\0"[..], &b"arena.4096.purge\0"[..]] {
            // SAFETY: `name` is NUL-terminated; these controls take no old
            // or new value, so null pointers and lengths of 0 are valid.
            unsafe {
                tikv_jemalloc_sys::mallctl(
                    name.as_ptr().cast(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    0,
                );
            }
        }
    }
}

/// The version of the bundled mimalloc, e.g. `3.3.2` (`2.x` with the
/// `mimalloc-v2` feature).
pub fn mimalloc_version() -> String {
    // SAFETY: mi_version takes no arguments and only returns a constant.
    let v = unsafe { libmimalloc_sys::mi_version() };
    format!("{}.{}.{}", v / 10000, v / 100 % 100, v % 100)
}

/// Names one of the allocators under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Allocator {
    Hakmem,
    /// hakmem with the learning layer on: `hakmem::ace::start()` in the
    /// child before the workload, `ace::stop()` after it (same `HakMem`
    /// binding, so the allocation calls are the same instructions).
    HakmemAce,
    /// hakmem in the secure mode (`hakmem::HakMemSecure`; issue 11).
    HakmemSecure,
    System,
    Mimalloc,
    /// mimalloc 2.x, for the issue-5 large-churn target (which names 2.x
    /// while the `mimalloc` crate bundles 3.x): a second `hakmem-bench`
    /// built with `--features mimalloc-v2`, named by [`MIMALLOC2_ENV`], runs
    /// these children as its own `mimalloc`. Only in a run when that binary
    /// is given (`cargo xtask bench` builds it except with `--quick`).
    Mimalloc2,
    MiDirect,
    /// mimalloc's secure build (`MI_SECURE=4`), compiled by the suite from
    /// the bundled C source and loaded with `dlopen` (see [`crate::dl`]).
    /// Not a default column.
    MimallocSecure,
    Jemalloc,
    /// gperftools' tcmalloc, loaded with `dlopen` (see [`crate::dl`]).
    Tcmalloc,
    /// snmalloc (`snmalloc-rs`).
    Snmalloc,
    /// LLVM's standalone scudo, loaded with `dlopen` (see [`crate::dl`]).
    Scudo,
}

/// The environment variable naming the `hakmem-bench` binary built with
/// `--features mimalloc-v2` (the children of [`Allocator::Mimalloc2`]).
pub const MIMALLOC2_ENV: &str = "HAKMEM_BENCH_MIMALLOC2";

/// The binary named by [`MIMALLOC2_ENV`], when set and present.
pub fn mimalloc2_exe() -> Option<std::path::PathBuf> {
    let p = std::path::PathBuf::from(std::env::var_os(MIMALLOC2_ENV)?);
    p.is_file().then_some(p)
}

impl Allocator {
    /// The default list, in report order (`mi-direct` is for
    /// `instructions`). `hakmem+ace` runs every workload a second time with
    /// learning on, for the ACE on/off overhead of issue 6.
    pub const ALL: [Allocator; 9] = [
        Allocator::Hakmem,
        Allocator::HakmemAce,
        Allocator::HakmemSecure,
        Allocator::Mimalloc,
        Allocator::Jemalloc,
        Allocator::Tcmalloc,
        Allocator::Snmalloc,
        Allocator::Scudo,
        Allocator::System,
    ];

    /// The baseline every ratio is taken against.
    pub const BASELINE: Allocator = Allocator::Mimalloc;

    /// The name used on the command line, in tables and in CSV.
    pub fn name(self) -> &'static str {
        match self {
            Allocator::Hakmem => "hakmem",
            Allocator::HakmemAce => "hakmem+ace",
            Allocator::HakmemSecure => "hakmem-secure",
            Allocator::System => "system",
            Allocator::Mimalloc => "mimalloc",
            Allocator::Mimalloc2 => "mimalloc2",
            Allocator::MiDirect => "mi-direct",
            Allocator::MimallocSecure => "mimalloc-secure",
            Allocator::Jemalloc => "jemalloc",
            Allocator::Tcmalloc => "tcmalloc",
            Allocator::Snmalloc => "snmalloc",
            Allocator::Scudo => "scudo",
        }
    }

    /// Parses a name as printed by [`Allocator::name`] (also `glibc`, `je`, `mi`).
    pub fn parse(s: &str) -> Option<Allocator> {
        match s {
            "hakmem" | "hak" => Some(Allocator::Hakmem),
            "hakmem+ace" | "ace" => Some(Allocator::HakmemAce),
            "hakmem-secure" | "secure" => Some(Allocator::HakmemSecure),
            "system" | "glibc" | "sys" => Some(Allocator::System),
            "mimalloc" | "mi" => Some(Allocator::Mimalloc),
            "mimalloc2" | "mi2" => Some(Allocator::Mimalloc2),
            "mi-direct" => Some(Allocator::MiDirect),
            "mimalloc-secure" | "mi-secure" => Some(Allocator::MimallocSecure),
            "jemalloc" | "je" => Some(Allocator::Jemalloc),
            "tcmalloc" | "tc" => Some(Allocator::Tcmalloc),
            "snmalloc" | "sn" => Some(Allocator::Snmalloc),
            "scudo" => Some(Allocator::Scudo),
            _ => None,
        }
    }

    /// What the binding is and what [`Trim::trim`] calls (for `list`).
    pub fn describe(self) -> String {
        let (what, trim) = match self {
            Allocator::Hakmem => ("hakmem::HakMem", hakmem::HakMem::TRIM_CALL),
            Allocator::HakmemAce => (
                "hakmem::HakMem with hakmem::ace::start()",
                hakmem::HakMem::TRIM_CALL,
            ),
            Allocator::HakmemSecure => ("hakmem::HakMemSecure", hakmem::HakMemSecure::TRIM_CALL),
            Allocator::System => ("std::alloc::System (glibc malloc)", System::TRIM_CALL),
            Allocator::Mimalloc => (
                "mimalloc::MiMalloc (bundled mimalloc)",
                mimalloc::MiMalloc::TRIM_CALL,
            ),
            Allocator::Mimalloc2 => (
                "mimalloc 2.x: the binary named by HAKMEM_BENCH_MIMALLOC2",
                mimalloc::MiMalloc::TRIM_CALL,
            ),
            Allocator::MiDirect => ("mi_malloc/mi_free", MiDirect::TRIM_CALL),
            Allocator::MimallocSecure => (
                "mi_malloc/mi_free of mimalloc MI_SECURE=4, built from the bundled source, dlopen",
                MimallocSecure::TRIM_CALL,
            ),
            Allocator::Jemalloc => (
                "tikv_jemallocator::Jemalloc (bundled jemalloc 5.3)",
                tikv_jemallocator::Jemalloc::TRIM_CALL,
            ),
            Allocator::Tcmalloc => (
                "tc_malloc/tc_free, dlopen of the system library",
                Tcmalloc::TRIM_CALL,
            ),
            Allocator::Snmalloc => (
                "snmalloc_rs::SnMalloc (bundled snmalloc)",
                snmalloc_rs::SnMalloc::TRIM_CALL,
            ),
            Allocator::Scudo => (
                "malloc/free of scudo, dlopen of the system library",
                Scudo::TRIM_CALL,
            ),
        };
        let lib = match self.dl_lib() {
            Some(l) => format!("; {}", l.whereabouts()),
            None => String::new(),
        };
        format!("{what}; trim: {trim}{lib}")
    }

    /// The run-time library of a column loaded with `dlopen`.
    pub fn dl_lib(self) -> Option<&'static crate::dl::DlLib> {
        match self {
            Allocator::Tcmalloc => Some(&crate::dl::TCMALLOC_LIB),
            Allocator::Scudo => Some(&crate::dl::SCUDO_LIB),
            Allocator::MimallocSecure => Some(&crate::dl::MIMALLOC_SECURE_LIB),
            _ => None,
        }
    }

    /// `None` when this column can run on this machine, else the line to
    /// print (what is missing, how to install it).
    pub fn missing(self) -> Option<String> {
        self.dl_lib().and_then(|l| l.missing())
    }

    /// Environment variables this column's child processes need.
    pub fn child_env(self) -> &'static [(&'static str, &'static str)] {
        self.dl_lib().map_or(&[], |l| l.child_env())
    }

    /// Drops the columns that cannot run here; returns the printed lines.
    pub fn drop_missing(list: &mut Vec<Allocator>) -> Vec<String> {
        let notes: Vec<String> = list.iter().filter_map(|a| a.missing()).collect();
        list.retain(|a| a.missing().is_none());
        notes
    }

    /// Parses a comma-separated list of names.
    pub fn parse_list(s: &str) -> Result<Vec<Allocator>, String> {
        s.split(',')
            .filter(|n| !n.is_empty())
            .map(|n| Allocator::parse(n).ok_or_else(|| format!("unknown allocator `{n}`")))
            .collect()
    }
}
