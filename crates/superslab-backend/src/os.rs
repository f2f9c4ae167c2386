//! All operating-system calls of hakmem live here: mapping, unmapping,
//! remapping and advising memory. Nothing here allocates.

use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// The system page size (read once and cached; 4096 if it cannot be
/// read): `getauxval(AT_PAGESZ)` on glibc, whose code lies next to the
/// `mmap` wrappers every process runs, where `sysconf` would touch a libc
/// text page and a jump table in libc's `.rodata` that a small program
/// never needs otherwise (64 KiB windows of resident memory each, see
/// docs/benchmarks.md, "Footprint cuts"); `sysconf(_SC_PAGESIZE)`
/// elsewhere. hakmem's layout needs pages of at most 64 KiB (its
/// slabs are 64 KiB aligned and given back whole); [`check_page_size`]
/// stops a process on a system with larger pages.
pub fn page_size() -> usize {
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    let p = PAGE.load(Relaxed);
    if p != 0 {
        return p;
    }
    let v = os_page_size();
    let v = if v > 0 && (v as usize).is_power_of_two() {
        v as usize
    } else {
        4096
    };
    PAGE.store(v, Relaxed);
    v
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn os_page_size() -> libc::c_long {
    // SAFETY: getauxval has no preconditions and does not allocate; 0
    // means the entry is missing.
    match unsafe { libc::getauxval(libc::AT_PAGESZ) } {
        // SAFETY: sysconf has no preconditions and does not allocate.
        0 => unsafe { libc::sysconf(libc::_SC_PAGESIZE) },
        v => v as libc::c_long,
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn os_page_size() -> libc::c_long {
    // SAFETY: sysconf has no preconditions and does not allocate.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) }
}

/// The largest page size the layout supports: a slab (64 KiB, 64 KiB
/// aligned) must be a whole number of pages so that `madvise` gives back
/// exactly one slab.
pub const MAX_PAGE_SIZE: usize = 1 << hakmem_ptr_bridge::SMALL_SLAB_SHIFT;

/// True when the system's page size is one hakmem's layout supports.
pub fn check_page_size() -> bool {
    page_size() <= MAX_PAGE_SIZE
}

/// A new anonymous private mapping of `len` bytes with `prot` and the
/// extra `flags`, at an address of the kernel's choosing. Null on failure.
fn map_anonymous(len: usize, prot: libc::c_int, flags: libc::c_int) -> *mut u8 {
    // SAFETY: an anonymous private mapping with no address hint affects no
    // existing memory and has no preconditions; failure is reported as
    // MAP_FAILED.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | flags,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        ptr::null_mut()
    } else {
        p as *mut u8
    }
}

/// Maps `len` bytes of zeroed, private, read-write memory. Null on failure.
pub fn map(len: usize) -> *mut u8 {
    map_anonymous(len, libc::PROT_READ | libc::PROT_WRITE, 0)
}

/// Maps `len` bytes of zeroed, private, read-write memory meant to be
/// touched sparsely (`MAP_NORESERVE`: no swap is reserved for it where the
/// overcommit policy honours that). Null on failure.
pub fn map_sparse(len: usize) -> *mut u8 {
    map_anonymous(len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_NORESERVE)
}

/// Reserves `len` bytes of address space with no access rights and no
/// memory behind them (`PROT_NONE`, `MAP_NORESERVE`): any access faults.
/// Null on failure.
pub fn reserve(len: usize) -> *mut u8 {
    map_anonymous(len, libc::PROT_NONE, libc::MAP_NORESERVE)
}

/// Takes every access right from `len` bytes at `p` (whole pages of a
/// mapping of ours): a guard page. False when the OS refused (for example
/// at its limit of mappings), and the range stays as it was.
pub fn protect_none(p: *mut u8, len: usize) -> bool {
    // SAFETY: callers pass whole pages of a mapping they own and do not
    // use; mprotect changes no memory contents.
    unsafe { libc::mprotect(p as *mut libc::c_void, len, libc::PROT_NONE) == 0 }
}

/// Maps `len` bytes (a multiple of the page size) at an address aligned to
/// `align` (a power of two, at least a page). Null on failure or overflow.
pub fn map_aligned(len: usize, align: usize) -> *mut u8 {
    map_aligned_hint(len, align, 0)
}

/// Unmaps `len` bytes at `p`.
pub fn unmap(p: *mut u8, len: usize) {
    // SAFETY: callers only pass ranges they mapped and no longer use; a
    // failing munmap leaves the mapping in place, which is safe.
    unsafe {
        libc::munmap(p as *mut libc::c_void, len);
    }
}

/// Tries to resize a mapping in place. True on success.
pub fn remap_in_place(p: *mut u8, old_len: usize, new_len: usize) -> bool {
    // SAFETY: without MREMAP_MAYMOVE the kernel either resizes the mapping
    // at the same address or fails; callers own the whole range.
    let r = unsafe { libc::mremap(p as *mut libc::c_void, old_len, new_len, 0) };
    r != libc::MAP_FAILED
}

/// Moves the pages of `[p, p+old_len)` to `dest` (which must be a mapping of
/// at least `new_len` bytes that the caller owns and gives up), resizing to
/// `new_len`. True on success; on failure the old mapping is untouched.
pub fn remap_to(p: *mut u8, old_len: usize, new_len: usize, dest: *mut u8) -> bool {
    // SAFETY: MREMAP_FIXED replaces whatever is at `dest` (the caller's own
    // reservation); the old range is ours. No data is copied by the CPU.
    let r = unsafe {
        libc::mremap(
            p as *mut libc::c_void,
            old_len,
            new_len,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
            dest as *mut libc::c_void,
        )
    };
    r != libc::MAP_FAILED
}

/// Returns the physical pages of a range to the OS; the range stays mapped
/// and reads back as zeroes.
pub fn discard(p: *mut u8, len: usize) {
    // SAFETY: MADV_DONTNEED on a private anonymous mapping we own only
    // drops its contents.
    unsafe {
        libc::madvise(p as *mut libc::c_void, len, libc::MADV_DONTNEED);
    }
}

/// Asks for transparent huge pages on a range (`MADV_HUGEPAGE`): with THP
/// in `madvise` mode the kernel then faults 2 MiB at a time there. A
/// refusal (THP off, old kernel) changes nothing, so it is ignored.
pub fn advise_huge(p: *mut u8, len: usize) {
    // SAFETY: a hint on a private anonymous mapping we own; it never
    // changes the range's contents.
    unsafe {
        libc::madvise(p as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
    }
}

/// Asks for no transparent huge pages on a range (`MADV_NOHUGEPAGE`): with
/// THP in `always` mode the kernel would otherwise back the first touch of
/// a 2 MiB-aligned range with a whole 2 MiB page. A refusal (THP not built
/// in, old kernel) changes nothing, so it is ignored.
pub fn advise_no_huge(p: *mut u8, len: usize) {
    // SAFETY: a hint on a private anonymous mapping we own; it never
    // changes the range's contents.
    unsafe {
        libc::madvise(p as *mut libc::c_void, len, libc::MADV_NOHUGEPAGE);
    }
}

/// A coarse monotonic clock in milliseconds (wraps after 49 days; compare
/// with `wrapping_sub`). Uses the vDSO's CLOCK_MONOTONIC_COARSE: tens of
/// nanoseconds, no system call.
pub fn now_ms() -> u32 {
    // SAFETY: an all-zero timespec is valid; clock_gettime fills it.
    let mut ts: libc::timespec = unsafe { core::mem::zeroed() };
    // SAFETY: valid out-pointer and clock id.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1000)
        .wrapping_add(ts.tv_nsec as u64 / 1_000_000) as u32
}

/// Like [`map_aligned`], asking the kernel for an address near `hint`
/// (not forced: the kernel may place it elsewhere; 0 = no preference).
pub fn map_aligned_hint(len: usize, align: usize, hint: usize) -> *mut u8 {
    let Some(total) = len.checked_add(align) else {
        return ptr::null_mut();
    };
    // SAFETY: a private anonymous mapping with a non-fixed hint: the kernel
    // only uses the hint if that range is free.
    let p = unsafe {
        libc::mmap(
            hint as *mut libc::c_void,
            total,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return ptr::null_mut();
    }
    let start = p as usize;
    let aligned = (start + align - 1) & !(align - 1);
    let head = aligned - start;
    let tail = total - head - len;
    if head > 0 {
        unmap(p as *mut u8, head);
    }
    if tail > 0 {
        unmap((aligned + len) as *mut u8, tail);
    }
    aligned as *mut u8
}

/// Number of NUMA nodes the kernel reports online (1 when unknown), read
/// once from `/sys/devices/system/node/online` ("0", "0-1", "0,2-3", ...)
/// with plain system calls (no allocation).
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
pub fn numa_nodes() -> usize {
    use core::sync::atomic::{AtomicUsize, Ordering};
    static NODES: AtomicUsize = AtomicUsize::new(0);
    let n = NODES.load(Ordering::Relaxed);
    if n != 0 {
        return n;
    }
    let mut buf = [0u8; 128];
    // The kernel reads the path at start-up: it lives with the start-up
    // read-only data, not among the rest of the strings (which
    // crates/preload/layout.ld keeps off the pages every program maps).
    #[link_section = ".rodata.hakmem_startup"] // start-up group, see docs/benchmarks.md
    static PATH: [u8; 32] = *b"/sys/devices/system/node/online\0";
    // SAFETY: a NUL-terminated path; read into our own buffer.
    let len = unsafe {
        let fd = libc::open(
            PATH.as_ptr() as *const libc::c_char,
            libc::O_RDONLY | libc::O_CLOEXEC,
        );
        if fd < 0 {
            -1
        } else {
            let r = libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len());
            libc::close(fd);
            r
        }
    };
    let count = if len <= 0 {
        1
    } else {
        count_node_list(&buf[..len as usize])
    };
    NODES.store(count.max(1), Ordering::Relaxed);
    count.max(1)
}

/// Counts the nodes in a kernel list like "0-1,3".
pub fn count_node_list(s: &[u8]) -> usize {
    let mut total = 0;
    for part in s.split(|&b| b == b',') {
        let part: &[u8] = match part.iter().position(|b| b.is_ascii_whitespace()) {
            Some(i) => &part[..i],
            None => part,
        };
        if part.is_empty() {
            continue;
        }
        let num = |x: &[u8]| {
            x.iter().fold(0usize, |a, &d| {
                a * 10 + (d.wrapping_sub(b'0') as usize % 10)
            })
        };
        match part.iter().position(|&b| b == b'-') {
            Some(i) => total += num(&part[i + 1..]).saturating_sub(num(&part[..i])) + 1,
            None => total += 1,
        }
    }
    total
}

/// Binds `[p, p+len)` to NUMA node `node` (preferred policy); with
/// `move_existing`, pages already there migrate (`MPOL_MF_MOVE`). Only
/// meaningful on machines with several nodes; failures are ignored (the
/// memory stays usable where it is).
pub fn bind_to_node(p: *mut u8, len: usize, node: usize, move_existing: bool) {
    const MPOL_PREFERRED: libc::c_long = 1;
    const MPOL_MF_MOVE: libc::c_long = 1 << 1;
    if node >= 64 {
        return;
    }
    let mask: u64 = 1 << node;
    // SAFETY: mbind on a range we own, with a one-word node mask; it only
    // changes placement policy (and may move pages), never contents.
    unsafe {
        libc::syscall(
            libc::SYS_mbind,
            p as libc::c_long,
            len as libc::c_long,
            MPOL_PREFERRED,
            &mask as *const u64 as libc::c_long,
            65 as libc::c_long,
            if move_existing { MPOL_MF_MOVE } else { 0 },
        );
    }
}

/// 64 random bits (the superslab base, the secure mode's secret): `getrandom`
/// without blocking; when that fails (an old kernel, a seccomp filter, the
/// pool not ready at early boot), the address of a stack slot (ASLR) mixed
/// with the monotonic clock. Nothing here allocates.
pub fn random_u64() -> u64 {
    let mut v = 0u64;
    // SAFETY: an 8-byte buffer of ours; getrandom does not allocate.
    let got = unsafe { libc::getrandom((&mut v as *mut u64).cast(), 8, libc::GRND_NONBLOCK) };
    if got == 8 {
        return v;
    }
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a timespec of ours; clock_gettime does not allocate.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let stack = &ts as *const libc::timespec as u64;
    let mut x = stack ^ (ts.tv_nsec as u64).rotate_left(32) ^ ts.tv_sec as u64;
    // splitmix64's finaliser: spreads every input bit over the output.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
