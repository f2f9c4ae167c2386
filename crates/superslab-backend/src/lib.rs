//! superslab-backend: memory from the OS.
//!
//! - **Superslabs**: 2 MiB-aligned regions carved into slabs of one
//!   [`SlabKind`]. [`acquire_slab`] hands a FREE slab to a thread (creating a
//!   superslab when none has room), [`release_slab`] takes an empty slab back
//!   and unmaps a superslab once it is empty and enough others are cached.
//! - **The registry** ([`registry`]): is an address ours, and what is there?
//! - **Large spans**: sizes above the slab classes, or aligned above a page,
//!   are mapped on their own with a [`LargeHeader`] ([`large_alloc`],
//!   [`large_free`], [`large_realloc`] which moves pages with `mremap`).
//!
//! All OS calls are in [`os`]. Nothing here allocates from the global heap.
#![no_std]

pub mod os;
pub mod registry;

use core::ptr;
use core::sync::atomic::Ordering::{Relaxed, Release, SeqCst};
use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize};

use ptr_bridge::{
    chunk_of, large_header_addr, slab_capacity, slab_state, LargeHeader, SlabKind, SlabMeta,
    SuperslabHeader, CHUNK_MASK, CLASS_SIZE, FIRST_SLAB, LARGE_MAGIC, PAGE_SIZE, SUPERSLAB_MAGIC,
    SUPERSLAB_SIZE,
};
use remote_queue::primitive::SpinLock;

/// `in_use` bit of slab 0, which holds the header and is never handed out.
const HEADER_SLAB_BIT: u32 = (1 << FIRST_SLAB) - 1;

/// Empty superslabs kept mapped per kind before further ones are unmapped.
pub const CACHED_EMPTY_SUPERSLABS: usize = 1;

struct Pool {
    lock: SpinLock,
    /// Superslabs of this kind with at least one FREE slab (doubly linked).
    partial: AtomicPtr<SuperslabHeader>,
    /// Superslabs of this kind whose slabs are all FREE.
    empty: AtomicUsize,
}

static POOLS: [Pool; SlabKind::COUNT] = [const {
    Pool {
        lock: SpinLock::new(),
        partial: AtomicPtr::new(ptr::null_mut()),
        empty: AtomicUsize::new(0),
    }
}; SlabKind::COUNT];

static SUPERSLABS_MAPPED: AtomicUsize = AtomicUsize::new(0);
static LARGE_LIVE: AtomicUsize = AtomicUsize::new(0);
static LARGE_BYTES: AtomicUsize = AtomicUsize::new(0);
static LARGE_ALLOCS: AtomicU64 = AtomicU64::new(0);
static LARGE_FREES: AtomicU64 = AtomicU64::new(0);

/// Counters of what the backend holds from the OS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackendStats {
    /// Superslabs currently mapped.
    pub superslabs: usize,
    /// Large spans currently mapped.
    pub large_spans: usize,
    /// Bytes mapped for large spans.
    pub large_bytes: usize,
    /// Spans mapped since the start.
    pub large_allocs: u64,
    /// Spans unmapped since the start.
    pub large_frees: u64,
}

/// A snapshot of [`BackendStats`].
pub fn stats() -> BackendStats {
    BackendStats {
        superslabs: SUPERSLABS_MAPPED.load(Relaxed),
        large_spans: LARGE_LIVE.load(Relaxed),
        large_bytes: LARGE_BYTES.load(Relaxed),
        large_allocs: LARGE_ALLOCS.load(Relaxed),
        large_frees: LARGE_FREES.load(Relaxed),
    }
}

fn pool(kind: SlabKind) -> &'static Pool {
    &POOLS[kind as usize]
}

/// Links `ss` at the head of the pool's partial list (lock held).
///
/// # Safety
/// `ss` is a live superslab header of the pool's kind, not yet listed.
unsafe fn link(p: &Pool, ss: *mut SuperslabHeader) {
    // SAFETY: caller contract; list fields are guarded by the pool lock.
    unsafe {
        let head = p.partial.load(Relaxed);
        (*ss).prev.store(ptr::null_mut(), Relaxed);
        (*ss).next.store(head, Relaxed);
        if !head.is_null() {
            (*head).prev.store(ss, Relaxed);
        }
        (*ss).listed.store(1, Relaxed);
    }
    p.partial.store(ss, Relaxed);
}

/// Unlinks `ss` from the pool's partial list (lock held).
///
/// # Safety
/// `ss` is listed in this pool.
unsafe fn unlink(p: &Pool, ss: *mut SuperslabHeader) {
    // SAFETY: caller contract; list fields are guarded by the pool lock.
    unsafe {
        let prev = (*ss).prev.load(Relaxed);
        let next = (*ss).next.load(Relaxed);
        if prev.is_null() {
            p.partial.store(next, Relaxed);
        } else {
            (*prev).next.store(next, Relaxed);
        }
        if !next.is_null() {
            (*next).prev.store(prev, Relaxed);
        }
        (*ss).next.store(ptr::null_mut(), Relaxed);
        (*ss).prev.store(ptr::null_mut(), Relaxed);
        (*ss).listed.store(0, Relaxed);
    }
}

/// Maps and initialises a superslab of `kind` (zeroed memory, so every slab
/// record starts FREE). Null when the OS refuses.
#[cold]
fn new_superslab(kind: SlabKind) -> *mut SuperslabHeader {
    if !registry::init() {
        return ptr::null_mut();
    }
    let base = os::map_aligned(SUPERSLAB_SIZE, SUPERSLAB_SIZE);
    if base.is_null() {
        return ptr::null_mut();
    }
    if !registry::covers(base as usize) {
        os::unmap(base, SUPERSLAB_SIZE);
        return ptr::null_mut();
    }
    let ss = base as *mut SuperslabHeader;
    // SAFETY: fresh zeroed mapping large enough for the header; an all-zero
    // header is a valid value (atomics, FREE slab records); the owners are
    // set to NO_OWNER below before the superslab is published.
    let h = unsafe { &*ss };
    h.slab_shift.store(kind.shift() as u8, Relaxed);
    h.kind.store(kind as u8, Relaxed);
    for (i, m) in h.slabs.iter().enumerate() {
        m.index.store(i as u8, Relaxed);
        m.owner.store(ptr_bridge::NO_OWNER, Relaxed);
    }
    h.in_use.store(HEADER_SLAB_BIT, Relaxed);
    h.magic.store(SUPERSLAB_MAGIC as usize, Release);
    registry::set(base as usize, kind.shift() as u8);
    SUPERSLABS_MAPPED.fetch_add(1, Relaxed);
    ss
}

/// Hands out a FREE slab for `class`, initialised and owned by `owner`
/// (state ACTIVE). `None` when the OS has no memory left.
pub fn acquire_slab(class: usize, owner: usize) -> Option<&'static SlabMeta> {
    let kind = SlabKind::of_class(class);
    let p = pool(kind);
    let meta = {
        let _g = p.lock.lock();
        let mut ss = p.partial.load(Relaxed);
        if ss.is_null() {
            ss = new_superslab(kind);
            if ss.is_null() {
                return None;
            }
            // SAFETY: fresh superslab, not listed; a new superslab counts
            // as empty until its first slab is taken below.
            unsafe { link(p, ss) };
            p.empty.fetch_add(1, Relaxed);
        }
        // SAFETY: listed superslabs are live.
        let h = unsafe { &*ss };
        let in_use = h.in_use.load(Relaxed);
        if in_use == HEADER_SLAB_BIT {
            p.empty.fetch_sub(1, Relaxed);
        }
        let idx = (!in_use).trailing_zeros() as usize;
        debug_assert!(idx < kind.slabs());
        let now = in_use | (1 << idx);
        h.in_use.store(now, Relaxed);
        if now.count_ones() as usize == kind.slabs() {
            // SAFETY: `ss` is listed (it was the head).
            unsafe { unlink(p, ss) };
        }
        &h.slabs[idx]
    };
    let bs = CLASS_SIZE[class] as usize;
    let idx = meta.index.load(Relaxed) as usize;
    meta.free.store(ptr::null_mut(), Relaxed);
    meta.remote.store(ptr::null_mut(), Relaxed);
    meta.next.store(ptr::null_mut(), Relaxed);
    meta.prev.store(ptr::null_mut(), Relaxed);
    meta.used.store(0, Relaxed);
    meta.carved.store(0, Relaxed);
    debug_assert!(idx >= FIRST_SLAB);
    meta.capacity
        .store(slab_capacity(kind.shift(), bs), Relaxed);
    meta.block_size.store(bs as u32, Relaxed);
    meta.class.store(class as u32, Relaxed);
    meta.owner.store(owner, SeqCst);
    meta.state.store(slab_state::ACTIVE, SeqCst);
    Some(meta)
}

/// Takes back an empty slab (`used == 0`, owned by the caller, unlinked from
/// every list). Unmaps its superslab once all of its slabs are FREE and
/// [`CACHED_EMPTY_SUPERSLABS`] empty ones are already kept.
///
/// # Safety
/// The caller owns `meta`, it is empty and no thread can reach its blocks.
pub unsafe fn release_slab(meta: &SlabMeta) {
    debug_assert_eq!(meta.used.load(Relaxed), 0);
    meta.owner.store(ptr_bridge::NO_OWNER, SeqCst);
    meta.free.store(ptr::null_mut(), Relaxed);
    meta.remote.store(ptr::null_mut(), Relaxed);
    meta.carved.store(0, Relaxed);
    meta.state.store(slab_state::FREE, SeqCst);
    let ss = meta.superslab();
    // SAFETY: a slab record's superslab is live while the slab is in use.
    let h = unsafe { &*ss };
    let kind = if h.kind.load(Relaxed) == SlabKind::Small as u8 {
        SlabKind::Small
    } else {
        SlabKind::Medium
    };
    let p = pool(kind);
    let _g = p.lock.lock();
    let now = h.in_use.load(Relaxed) & !(1u32 << meta.index.load(Relaxed));
    h.in_use.store(now, Relaxed);
    if h.listed.load(Relaxed) == 0 {
        // SAFETY: live and not listed.
        unsafe { link(p, ss) };
    }
    if now == HEADER_SLAB_BIT {
        if p.empty.load(Relaxed) >= CACHED_EMPTY_SUPERSLABS {
            // SAFETY: listed (just ensured above); every slab is FREE so no
            // thread holds a block or record of it.
            unsafe { unlink(p, ss) };
            h.magic.store(0, Relaxed);
            registry::set(ss as usize, registry::KIND_NONE);
            SUPERSLABS_MAPPED.fetch_sub(1, Relaxed);
            os::unmap(ss as *mut u8, SUPERSLAB_SIZE);
        } else {
            p.empty.fetch_add(1, Relaxed);
        }
    }
}

/// Holds every backend lock (fork prepare handler).
pub fn lock_all_for_fork() {
    for p in POOLS.iter() {
        core::mem::forget(p.lock.lock());
    }
}

/// Releases what [`lock_all_for_fork`] took (parent and child handlers).
///
/// # Safety
/// Only after [`lock_all_for_fork`].
pub unsafe fn unlock_all_after_fork() {
    for p in POOLS.iter() {
        // SAFETY: forwarded contract.
        unsafe { p.lock.force_unlock() };
    }
}

// ---------------------------------------------------------------- spans --

const HDR: usize = core::mem::size_of::<LargeHeader>();

fn round_up(x: usize, to: usize) -> Option<usize> {
    Some(x.checked_add(to - 1)? & !(to - 1))
}

/// Where the user pointer sits in a mapping for `align`, and how long the
/// mapping must be for `size` usable bytes.
fn span_geometry(size: usize, align: usize) -> Option<(usize, usize)> {
    let off = if align < SUPERSLAB_SIZE {
        round_up(HDR, align.max(HDR))?
    } else {
        align
    };
    // At least one byte, so that the user pointer is inside the mapping
    // even for a zero-size request at chunk alignment.
    let len = round_up(off.checked_add(size.max(1))?, SUPERSLAB_SIZE)?;
    if len > isize::MAX as usize {
        return None;
    }
    Some((off, len))
}

/// Maps a span for `size` bytes aligned to `align` (a power of two). The
/// memory is zeroed. Null when the request cannot be met.
pub fn large_alloc(size: usize, align: usize) -> *mut u8 {
    if !registry::init() {
        return ptr::null_mut();
    }
    let Some((off, len)) = span_geometry(size, align) else {
        return ptr::null_mut();
    };
    let base = os::map_aligned(len, align.max(SUPERSLAB_SIZE));
    if base.is_null() {
        return base;
    }
    if !registry::covers(base as usize + len) {
        os::unmap(base, len);
        return ptr::null_mut();
    }
    let user = base as usize + off;
    write_header(user, base as usize, len, align);
    LARGE_LIVE.fetch_add(1, Relaxed);
    LARGE_ALLOCS.fetch_add(1, Relaxed);
    LARGE_BYTES.fetch_add(len, Relaxed);
    user as *mut u8
}

fn write_header(user: usize, map_base: usize, map_len: usize, align: usize) {
    let h = large_header_addr(user) as *mut LargeHeader;
    // SAFETY: the header address is inside the mapping we own (the
    // geometry puts at least one header's room before the user pointer).
    unsafe {
        h.write(LargeHeader {
            magic: LARGE_MAGIC,
            user,
            map_base,
            map_len,
            align,
        })
    };
    let kind = if user & CHUNK_MASK == 0 {
        registry::KIND_LARGE_ALIGNED
    } else {
        registry::KIND_LARGE
    };
    registry::set(chunk_of(user), kind);
}

/// The header of the span whose user pointer is `p`, when `p` really is one.
pub fn large_header(p: *mut u8) -> Option<&'static LargeHeader> {
    let user = p as usize;
    let kind = registry::kind_of(user);
    let ok = match kind {
        registry::KIND_LARGE => user & CHUNK_MASK >= HDR,
        registry::KIND_LARGE_ALIGNED => user & CHUNK_MASK == 0,
        _ => false,
    };
    if !ok {
        return None;
    }
    // SAFETY: the registry says a span of ours has its user pointer in this
    // chunk, so the header address is inside that span's mapping.
    let h = unsafe { &*(large_header_addr(user) as *const LargeHeader) };
    (h.magic == LARGE_MAGIC && h.user == user).then_some(h)
}

/// Usable bytes of span `p`, or `None` when `p` is not a span of ours.
pub fn large_usable_size(p: *mut u8) -> Option<usize> {
    large_header(p).map(ptr_bridge::large_usable)
}

/// Unmaps span `p`. False (and nothing done) when `p` is not a span.
pub fn large_free(p: *mut u8) -> bool {
    let Some(h) = large_header(p) else {
        return false;
    };
    let (base, len) = (h.map_base, h.map_len);
    registry::set(chunk_of(p as usize), registry::KIND_NONE);
    LARGE_LIVE.fetch_sub(1, Relaxed);
    LARGE_FREES.fetch_add(1, Relaxed);
    LARGE_BYTES.fetch_sub(len, Relaxed);
    os::unmap(base as *mut u8, len);
    true
}

/// Resizes span `p` to `new_size` usable bytes without copying: shrinks or
/// grows in place, or moves the pages with `mremap` to a fresh aligned
/// reservation. Returns the (possibly moved) user pointer; null when the OS
/// refuses, in which case `p` is untouched.
///
/// # Safety
/// `p` must be a live span of ours.
pub unsafe fn large_realloc(p: *mut u8, new_size: usize) -> *mut u8 {
    let Some(h) = large_header(p) else {
        return ptr::null_mut();
    };
    let (base, len, align) = (h.map_base, h.map_len, h.align);
    let off = p as usize - base;
    let Some(new_len) = off
        .checked_add(new_size.max(1))
        .and_then(|n| round_up(n, SUPERSLAB_SIZE))
    else {
        return ptr::null_mut();
    };
    if new_len == len {
        return p;
    }
    if new_len < len {
        os::unmap((base + new_len) as *mut u8, len - new_len);
        write_header(p as usize, base, new_len, align);
        LARGE_BYTES.fetch_sub(len - new_len, Relaxed);
        return p;
    }
    if os::remap_in_place(base as *mut u8, len, new_len) {
        write_header(p as usize, base, new_len, align);
        LARGE_BYTES.fetch_add(new_len - len, Relaxed);
        return p;
    }
    let dest = os::map_aligned(new_len, align.max(SUPERSLAB_SIZE));
    if dest.is_null() || !registry::covers(dest as usize + new_len) {
        if !dest.is_null() {
            os::unmap(dest, new_len);
        }
        return ptr::null_mut();
    }
    if !os::remap_to(base as *mut u8, len, new_len, dest) {
        os::unmap(dest, new_len);
        return ptr::null_mut();
    }
    registry::set(chunk_of(p as usize), registry::KIND_NONE);
    let user = dest as usize + off;
    write_header(user, dest as usize, new_len, align);
    LARGE_BYTES.fetch_add(new_len - len, Relaxed);
    user as *mut u8
}

/// Page size rounding helper for callers (valloc and friends).
pub const fn page_round(x: usize) -> usize {
    (x + PAGE_SIZE - 1) & !(PAGE_SIZE - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_round_trip_and_registry() {
        let p = large_alloc(100_000, 16);
        assert!(!p.is_null());
        assert_eq!(p as usize % 16, 0);
        assert!(large_usable_size(p).unwrap() >= 100_000);
        // SAFETY: p is a fresh span of at least 100 000 bytes.
        unsafe {
            *p = 1;
            *p.add(99_999) = 2;
        }
        // SAFETY: p + 16 is inside the span.
        let interior = unsafe { p.add(16) };
        assert!(large_header(interior).is_none());
        assert!(large_free(p));
        assert!(!large_free(p), "second free must be refused");
    }

    #[test]
    fn huge_alignment() {
        for align in [4096usize, 1 << 20, 2 << 20, 8 << 20] {
            let p = large_alloc(10, align);
            assert!(!p.is_null());
            assert_eq!(p as usize % align, 0, "align {align}");
            assert!(large_free(p));
        }
    }

    #[test]
    fn mremap_preserves_content() {
        let p = large_alloc(3 << 20, 16);
        // SAFETY: 3 MiB span.
        unsafe {
            for i in (0..3 << 20).step_by(4096) {
                *p.add(i) = (i / 4096) as u8;
            }
            let q = large_realloc(p, 40 << 20);
            assert!(!q.is_null());
            for i in (0..3 << 20).step_by(4096) {
                assert_eq!(*q.add(i), (i / 4096) as u8);
            }
            *q.add((40 << 20) - 1) = 9;
            let r = large_realloc(q, 1 << 20);
            assert_eq!(r, q);
            assert_eq!(*r.add(4096), 1);
            assert!(large_free(r));
        }
    }

    #[test]
    fn oversize_fails_cleanly() {
        assert!(large_alloc(usize::MAX - 10, 16).is_null());
        assert!(large_alloc(isize::MAX as usize, 16).is_null());
    }

    #[test]
    fn slabs_come_and_go() {
        let m = acquire_slab(3, 42).unwrap();
        assert_eq!(m.state.load(Relaxed), slab_state::ACTIVE);
        assert_eq!(m.owner.load(Relaxed), 42);
        assert!(registry::is_superslab(registry::kind_of(m.data_start())));
        assert_eq!(m.data_start() % PAGE_SIZE, 0);
        // SAFETY: we own the slab and nothing was handed out.
        unsafe { release_slab(m) };
        assert_eq!(m.state.load(Relaxed), slab_state::FREE);
    }
}
