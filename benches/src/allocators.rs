//! The allocators under test, as statics usable side by side.
//!
//! None of them is this binary's `#[global_allocator]` (that stays the system
//! allocator): the workloads call `GlobalAlloc::alloc`/`dealloc` on these
//! statics directly.
//!
//! What each binding calls, for reading instruction counts: `HakMem` inlines
//! hakmem's `malloc`/`free`; `System` calls glibc `malloc`/`free` (alignment
//! 8 ≤ 16 and ≤ size); `MiMalloc` calls `mi_malloc_aligned`/`mi_free`;
//! `Jemalloc` calls `malloc` and the sized `sdallocx`.
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
    Jemalloc,
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
    pub const ALL: [Allocator; 6] = [
        Allocator::Hakmem,
        Allocator::HakmemAce,
        Allocator::HakmemSecure,
        Allocator::Mimalloc,
        Allocator::Jemalloc,
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
            Allocator::Jemalloc => "jemalloc",
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
            "jemalloc" | "je" => Some(Allocator::Jemalloc),
            _ => None,
        }
    }

    /// Parses a comma-separated list of names.
    pub fn parse_list(s: &str) -> Result<Vec<Allocator>, String> {
        s.split(',')
            .filter(|n| !n.is_empty())
            .map(|n| Allocator::parse(n).ok_or_else(|| format!("unknown allocator `{n}`")))
            .collect()
    }
}
