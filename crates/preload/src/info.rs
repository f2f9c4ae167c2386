//! glibc's introspection and tuning calls: `mallinfo2`, `mallinfo`,
//! `mallopt`, `malloc_trim`, `malloc_stats`. Programs call them for
//! diagnostics or tuning; each gives a truthful, harmless answer built from
//! the facade (`hakmem::stats`, `hakmem::trim`, `hakmem::print_report`).
//! None allocates.

use core::ffi::c_int;

/// Bytes mapped per superslab (`hakmem_ptr_bridge::SUPERSLAB_SIZE`, 2 MiB; the
/// facade does not re-export it, and preload may only use the facade).
const SUPERSLAB_BYTES: usize = hakmem::SUPERSLAB_SIZE;

/// glibc's `struct mallinfo2` (`<malloc.h>`, glibc 2.33+): ten `size_t`.
/// The fields map hakmem's figures onto glibc's meanings as closely as the
/// designs allow (superslabs play glibc's arena, spans its mmapped
/// chunks, thread caches its fastbins/tcache, the span cache its releasable
/// top).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mallinfo2 {
    /// Non-mmapped space allocated (bytes): here, bytes of mapped superslabs.
    pub arena: usize,
    /// Number of free chunks: 0 (not tracked).
    pub ordblks: usize,
    /// Number of free fastbin blocks: here, blocks in thread caches.
    pub smblks: usize,
    /// Number of mmapped regions: here, live spans.
    pub hblks: usize,
    /// Space allocated in mmapped regions (bytes): here, live large-span bytes.
    pub hblkhd: usize,
    /// Unused, always 0 (as in glibc).
    pub usmblks: usize,
    /// Space in freed fastbin blocks (bytes): here, bytes in thread caches.
    pub fsmblks: usize,
    /// Total allocated space (bytes): here, bytes of live small blocks.
    pub uordblks: usize,
    /// Total free space (bytes): here, `arena - uordblks`.
    pub fordblks: usize,
    /// Top-most releasable space (bytes): here, bytes in the span cache.
    pub keepcost: usize,
}

/// glibc's `struct mallinfo` (`<malloc.h>`): ten `int`; values above
/// `INT_MAX` saturate (glibc truncates them).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mallinfo {
    /// See [`Mallinfo2::arena`].
    pub arena: c_int,
    /// See [`Mallinfo2::ordblks`].
    pub ordblks: c_int,
    /// See [`Mallinfo2::smblks`].
    pub smblks: c_int,
    /// See [`Mallinfo2::hblks`].
    pub hblks: c_int,
    /// See [`Mallinfo2::hblkhd`].
    pub hblkhd: c_int,
    /// See [`Mallinfo2::usmblks`].
    pub usmblks: c_int,
    /// See [`Mallinfo2::fsmblks`].
    pub fsmblks: c_int,
    /// See [`Mallinfo2::uordblks`].
    pub uordblks: c_int,
    /// See [`Mallinfo2::fordblks`].
    pub fordblks: c_int,
    /// See [`Mallinfo2::keepcost`].
    pub keepcost: c_int,
}

const _: () = assert!(core::mem::size_of::<Mallinfo2>() == 10 * core::mem::size_of::<usize>());
const _: () = assert!(core::mem::size_of::<Mallinfo>() == 10 * core::mem::size_of::<c_int>());

/// glibc `mallinfo2`: a snapshot of the allocator's memory. Other threads'
/// per-class counters are published in batches, so live and cached bytes
/// may lag by a few dozen blocks per thread.
#[no_mangle]
pub extern "C" fn mallinfo2() -> Mallinfo2 {
    let s = hakmem::stats();
    let arena = s.superslabs.saturating_mul(SUPERSLAB_BYTES);
    let (mut live, mut cached, mut cached_blocks) = (0u64, 0u64, 0u64);
    for c in s.classes.iter() {
        live += c.live_bytes;
        cached += c.cached_bytes;
        if c.size != 0 {
            cached_blocks += c.cached_bytes / c.size as u64;
        }
    }
    let z = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
    Mallinfo2 {
        arena,
        ordblks: 0,
        smblks: z(cached_blocks),
        hblks: s.large_spans,
        hblkhd: s.large_bytes,
        usmblks: 0,
        fsmblks: z(cached),
        uordblks: z(live),
        fordblks: arena.saturating_sub(z(live)),
        keepcost: s.span_cache_bytes,
    }
}

/// glibc `mallinfo` (deprecated there): [`mallinfo2`] in `int`s.
#[no_mangle]
pub extern "C" fn mallinfo() -> Mallinfo {
    let m = mallinfo2();
    let i = |v: usize| v.min(c_int::MAX as usize) as c_int;
    Mallinfo {
        arena: i(m.arena),
        ordblks: i(m.ordblks),
        smblks: i(m.smblks),
        hblks: i(m.hblks),
        hblkhd: i(m.hblkhd),
        usmblks: i(m.usmblks),
        fsmblks: i(m.fsmblks),
        uordblks: i(m.uordblks),
        fordblks: i(m.fordblks),
        keepcost: i(m.keepcost),
    }
}

// `<malloc.h>` parameter numbers.
const M_MXFAST: c_int = 1;
const M_NLBLKS: c_int = 2;
const M_GRAIN: c_int = 3;
const M_KEEP: c_int = 4;
const M_TRIM_THRESHOLD: c_int = -1;
const M_TOP_PAD: c_int = -2;
const M_MMAP_THRESHOLD: c_int = -3;
const M_MMAP_MAX: c_int = -4;
const M_CHECK_ACTION: c_int = -5;
const M_PERTURB: c_int = -6;
const M_ARENA_TEST: c_int = -7;
const M_ARENA_MAX: c_int = -8;

/// glibc `mallopt`: every parameter `<malloc.h>` defines is accepted and
/// ignored (returns 1), except values glibc itself rejects (`M_MXFAST`
/// above `80 * sizeof(size_t) / 4`, `M_MMAP_THRESHOLD` above 32 MiB or
/// negative), which return 0. Unknown parameters return 0 (glibc returns 1
/// for them; 0 is the SVID/man-page error report, chosen here so that a
/// caller can tell).
#[no_mangle]
pub extern "C" fn mallopt(param: c_int, value: c_int) -> c_int {
    match param {
        M_MXFAST => {
            let max = 80 * core::mem::size_of::<usize>() as c_int / 4;
            c_int::from((0..=max).contains(&value))
        }
        M_MMAP_THRESHOLD => c_int::from((0..=32 << 20).contains(&value)),
        M_NLBLKS | M_GRAIN | M_KEEP | M_TRIM_THRESHOLD | M_TOP_PAD | M_MMAP_MAX
        | M_CHECK_ACTION | M_PERTURB | M_ARENA_TEST | M_ARENA_MAX => 1,
        _ => 0,
    }
}

/// glibc `malloc_trim`: `hakmem::trim()` — hands the calling thread's
/// cached blocks and slabs back, releases ownerless slabs that have become
/// empty, discards the pages of free slabs and unmaps empty superslabs and
/// cached spans. Other threads' caches are not touched. `pad` is ignored.
/// Returns 1 if memory was returned to the OS, 0 otherwise (as glibc).
#[no_mangle]
pub extern "C" fn malloc_trim(_pad: usize) -> c_int {
    c_int::from(hakmem::trim() > 0)
}

/// glibc `malloc_stats`: the statistics table of `HAKMEM_STATS=1` on stderr
/// (formatted on the stack, no allocation).
#[no_mangle]
pub extern "C" fn malloc_stats() {
    hakmem::print_report(hakmem::ReportFormat::Table);
}
