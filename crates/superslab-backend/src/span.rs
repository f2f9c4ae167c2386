//! Spans: requests above the slab classes (or aligned above a page),
//! each mapped on its own with a [`SpanHeader`], plus a small cache of
//! recently freed mappings (the seeds' "BigCache") so that allocate/free
//! cycles of large blocks do not pay for `mmap`, `munmap` and page faults
//! every time. Cached mappings go back to the OS after the decay delay,
//! when the cache overflows, or on trim.

use core::ptr;
use core::sync::atomic::Ordering::Relaxed;
use core::sync::atomic::{AtomicU64, AtomicUsize};

use hakmem_ptr_bridge::{
    chunk_of, span_header_addr, SpanHeader, CHUNK_MASK, SPAN_MAGIC, SUPERSLAB_SIZE,
};
use hakmem_remote_queue::primitive::SpinLock;

use crate::guard::{fill_pad, guard, guarded_place};
use crate::{os, registry};

const HDR: usize = core::mem::size_of::<SpanHeader>();

/// Mappings the span cache holds at most.
pub const SPAN_CACHE_SLOTS: usize = 16;
/// The default of [`set_huge_min`]: off. Measured on large-churn (5–25 MiB
/// blocks, `run-one hakmem large-churn`, three runs each, 2026-11-22):
/// with 4 MiB page faults fell from 134k to 20k but CPU time went from
/// 0.39–0.57 s to 0.33–1.63 s — with THP defrag in `madvise` mode the
/// faults of advised ranges compact memory synchronously.
pub const HUGE_MIN_DEFAULT: usize = 0;

static HUGE_MIN: AtomicUsize = AtomicUsize::new(HUGE_MIN_DEFAULT);

/// Spans of at least `bytes` (0: none, the default) ask for transparent
/// huge pages on the 2 MiB pages their request covers (`MADV_HUGEPAGE`,
/// see [`os::advise_huge`]) when they are mapped: with THP in `madvise`
/// mode the kernel then faults them in 2 MiB at a time instead of 4 KiB —
/// fewer faults, but the kernel may compact memory to find huge pages, and
/// a program that touches a large block sparsely pays for whole 2 MiB
/// pages. `HAKMEM_THP_MIN` sets it at start-up.
pub fn set_huge_min(bytes: usize) {
    HUGE_MIN.store(bytes, Relaxed);
}
/// Bytes the span cache holds at most.
pub const SPAN_CACHE_BYTES: usize = 256 << 20;
/// Freed spans up to this long are always offered to the cache: one 4 MiB
/// mapping (a 2 MiB request and its header), so that a loop that allocates
/// and frees one such block keeps reusing it. Longer ones may be left out
/// (see [`superseded`]).
const SPAN_CACHE_FLOOR: usize = 4 << 20;
/// The last span mapping handed out, in bytes (see [`superseded`]).
/// Written with `CACHE.lock` held.
static LAST_LEN: AtomicUsize = AtomicUsize::new(0);

// The span counters. They are written only with `CACHE.lock` held, so an
// update is a plain load and store ([`bump`]) rather than a locked
// read-modify-write: five fewer locked instructions per span allocation
// and per free. Readers (statistics) load them without the lock.
pub(crate) static SPAN_LIVE: AtomicUsize = AtomicUsize::new(0);
pub(crate) static SPAN_BYTES: AtomicUsize = AtomicUsize::new(0);
pub(crate) static SPAN_ALLOCS: AtomicU64 = AtomicU64::new(0);
pub(crate) static SPAN_FREES: AtomicU64 = AtomicU64::new(0);
pub(crate) static CACHE_HITS: AtomicU64 = AtomicU64::new(0);

/// Adds `d` (wrapping) to a span counter. Only with `CACHE.lock` held.
#[inline]
fn bump(c: &AtomicUsize, d: usize) {
    c.store(c.load(Relaxed).wrapping_add(d), Relaxed);
}

/// Adds one to an event counter. Only with `CACHE.lock` held.
#[inline]
fn count(c: &AtomicU64) {
    c.store(c.load(Relaxed) + 1, Relaxed);
}

/// A cached mapping. Its age is kept without reading the clock on the
/// free path: `seq` orders entries for eviction, and the first decay pass
/// that sees the entry stamps `since_ms` (so a mapping is released between
/// one and one-plus-a-decay-interval delays after its free).
#[derive(Clone, Copy)]
struct Cached {
    base: usize, // 2 MiB aligned; 0 = empty slot
    len: usize,
    seq: u32,      // value of `SpanCache::seq` when cached
    since_ms: u32, // first decay pass after caching; UNSTAMPED before
}

const UNSTAMPED: u32 = u32::MAX;

struct SpanCache {
    lock: SpinLock,
    slots: core::cell::UnsafeCell<[Cached; SPAN_CACHE_SLOTS]>,
    seq: AtomicUsize, // written with `lock` held
    bytes: AtomicUsize,
}

// SAFETY: `slots` is only accessed with `lock` held.
unsafe impl Sync for SpanCache {}

static CACHE: SpanCache = SpanCache {
    lock: SpinLock::new(),
    slots: core::cell::UnsafeCell::new(
        [Cached {
            base: 0,
            len: 0,
            seq: 0,
            since_ms: UNSTAMPED,
        }; SPAN_CACHE_SLOTS],
    ),
    seq: AtomicUsize::new(0),
    bytes: AtomicUsize::new(0),
};

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
    let len = round_up(
        off.checked_add(size.max(1))?.checked_add(guard())?,
        SUPERSLAB_SIZE,
    )?;
    if len > isize::MAX as usize {
        return None;
    }
    Some((off, len))
}

/// True when `p` points into a mapping the shared span cache keeps (a
/// span that was freed and not handed out again). Takes the cache lock:
/// for the diagnostics of a bad free only.
pub fn span_cache_holds(p: *const u8) -> bool {
    if CACHE.bytes.load(Relaxed) == 0 {
        return false;
    }
    let _g = CACHE.lock.lock();
    // SAFETY: lock held.
    let slots = unsafe { &*CACHE.slots.get() };
    slots
        .iter()
        .any(|s| s.base != 0 && (p as usize).wrapping_sub(s.base) < s.len)
}

/// Takes a cached mapping for a request of `len` bytes: the smallest one of
/// at least `len` bytes, else the largest smaller one, which the caller
/// grows. `None` when the cache is empty.
fn cache_take(len: usize) -> Option<(usize, usize)> {
    if CACHE.bytes.load(Relaxed) == 0 {
        return None;
    }
    let _g = CACHE.lock.lock();
    // SAFETY: lock held.
    let slots = unsafe { &mut *CACHE.slots.get() };
    let mut fit: Option<usize> = None; // smallest with len >= request
    let mut below: Option<usize> = None; // largest with len < request
    for (i, s) in slots.iter().enumerate() {
        if s.base == 0 {
            continue;
        }
        if s.len >= len {
            if fit.is_none_or(|b| slots[b].len > s.len) {
                fit = Some(i);
            }
        } else if below.is_none_or(|b| slots[b].len < s.len) {
            below = Some(i);
        }
    }
    let i = fit.or(below)?;
    let s = slots[i];
    slots[i].base = 0;
    bump(&CACHE.bytes, s.len.wrapping_neg());
    Some((s.base, s.len))
}

/// Grows the mapping `base..base+len` to `new_len` bytes without copying:
/// in place, or by moving its pages (`mremap`) to a fresh aligned
/// reservation. The new base, or `None` (the mapping untouched) when the OS
/// refuses.
fn grow_mapping(base: usize, len: usize, new_len: usize, align: usize) -> Option<usize> {
    if os::remap_in_place(base as *mut u8, len, new_len) {
        return Some(base);
    }
    let dest = os::map_aligned(new_len, align.max(SUPERSLAB_SIZE));
    if dest.is_null() || !registry::covers(dest as usize + new_len) {
        if !dest.is_null() {
            os::unmap(dest, new_len);
        }
        return None;
    }
    if !os::remap_to(base as *mut u8, len, new_len, dest) {
        os::unmap(dest, new_len);
        return None;
    }
    Some(dest as usize)
}

/// Corrects the span byte count after a taken mapping changed from `old`
/// to `new` bytes.
fn adjust_bytes(new: usize, old: usize) {
    let _g = CACHE.lock.lock();
    bump(&SPAN_BYTES, new.wrapping_sub(old));
}

/// Mappings [`cache_put`] gives back to the OS: the offered one when it is
/// not cached, and older ones evicted to make room for it.
struct Victims {
    list: [(usize, usize); SPAN_CACHE_SLOTS + 1],
    n: usize,
}

impl Victims {
    fn push(&mut self, base: usize, len: usize) {
        self.list[self.n] = (base, len);
        self.n += 1;
    }

    /// Unmaps them (after the cache lock is released).
    fn unmap(self) {
        for &(b, l) in &self.list[..self.n] {
            os::unmap(b as *mut u8, l);
        }
    }
}

/// True when a freed mapping of `len` bytes is what a growing structure
/// left behind: longer than [`SPAN_CACHE_FLOOR`], at least a quarter of
/// the `live` span bytes, and the last mapping handed out is at least twice
/// as long. A table replaced by one twice its size (Python's dict, a
/// vector that grows by allocate-copy-free) does exactly that, and its next
/// request will be longer still, so caching the old one would only hold
/// its pages (python_dict: 5 MiB of 64; glibc unmaps it, having served it
/// by `mmap`). Churn among many large blocks (large-churn: one freed block
/// is a twentieth of the live ones) and a loop over one block (the last
/// mapping is as long as the freed one) keep caching. Only with
/// `CACHE.lock` held.
fn superseded(len: usize, live: usize) -> bool {
    len > SPAN_CACHE_FLOOR && len > live / 4 && LAST_LEN.load(Relaxed) / 2 >= len
}

/// Takes back a span mapping of `len` bytes (no longer live) and, with
/// `cache`, offers it to the cache; returns the mappings to unmap: the
/// offered one when it is not cached (longer than a quarter of
/// [`SPAN_CACHE_BYTES`], or [`superseded`]), else the oldest ones evicted
/// to stay within [`SPAN_CACHE_SLOTS`] and [`SPAN_CACHE_BYTES`].
/// `user_free` counts a free; a [`SpanStash`] hands its mapping back
/// without one (it counted the free itself).
fn cache_put(base: usize, len: usize, cache: bool, user_free: bool) -> Victims {
    let mut out = Victims {
        list: [(0, 0); SPAN_CACHE_SLOTS + 1],
        n: 0,
    };
    let _g = CACHE.lock.lock();
    bump(&SPAN_LIVE, usize::MAX);
    bump(&SPAN_BYTES, len.wrapping_neg());
    if user_free {
        count(&SPAN_FREES);
    }
    if !cache || len > SPAN_CACHE_BYTES / 4 || superseded(len, SPAN_BYTES.load(Relaxed)) {
        out.push(base, len);
        return out;
    }
    // SAFETY: lock held.
    let slots = unsafe { &mut *CACHE.slots.get() };
    // Evict the oldest mappings until this one fits the bound and a slot.
    loop {
        let full = slots.iter().all(|s| s.base != 0);
        if !full && CACHE.bytes.load(Relaxed) + len <= SPAN_CACHE_BYTES {
            break;
        }
        let mut old: Option<usize> = None;
        for (i, s) in slots.iter().enumerate() {
            if s.base != 0 && old.is_none_or(|o| slots[o].seq.wrapping_sub(s.seq) as i32 > 0) {
                old = Some(i);
            }
        }
        // Never empty here (full, or holding more than the bound - len).
        let Some(o) = old else { break };
        out.push(slots[o].base, slots[o].len);
        bump(&CACHE.bytes, slots[o].len.wrapping_neg());
        slots[o].base = 0;
    }
    let Some(slot) = slots.iter().position(|s| s.base == 0) else {
        out.push(base, len); // not reached: a slot was freed above
        return out;
    };
    bump(&CACHE.seq, 1);
    slots[slot] = Cached {
        base,
        len,
        seq: CACHE.seq.load(Relaxed) as u32,
        since_ms: UNSTAMPED,
    };
    bump(&CACHE.bytes, len);
    out
}

/// Unmaps cached mappings older than `delay_ms` (all with `force`).
/// Returns the bytes unmapped.
pub(crate) fn cache_decay(now: u32, delay_ms: u32, force: bool) -> usize {
    if CACHE.bytes.load(Relaxed) == 0 {
        return 0;
    }
    let mut out = [(0usize, 0usize); SPAN_CACHE_SLOTS];
    let mut n = 0;
    {
        let _g = CACHE.lock.lock();
        // SAFETY: lock held.
        let slots = unsafe { &mut *CACHE.slots.get() };
        for s in slots.iter_mut() {
            if s.base != 0 && s.since_ms == UNSTAMPED {
                // First pass to see it: its age starts now.
                s.since_ms = if now == UNSTAMPED { now - 1 } else { now };
            }
            if s.base != 0 && (force || delay_ms == 0 || now.wrapping_sub(s.since_ms) >= delay_ms) {
                out[n] = (s.base, s.len);
                n += 1;
                bump(&CACHE.bytes, s.len.wrapping_neg());
                s.base = 0;
            }
        }
    }
    let mut freed = 0;
    for &(b, l) in &out[..n] {
        os::unmap(b as *mut u8, l);
        freed += l;
    }
    freed
}

/// Bytes held in the span cache.
pub fn cached_bytes() -> usize {
    CACHE.bytes.load(Relaxed)
}

/// Maps (or takes from the cache) a span for `size` bytes aligned to
/// `align` (a power of two). With `zero`, the first `size` bytes read as
/// zero. Null when the request cannot be met.
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
pub fn span_alloc(size: usize, align: usize, zero: bool) -> *mut u8 {
    let Some((off, len)) = span_geometry(size, align) else {
        return ptr::null_mut();
    };
    let mut base = 0;
    let mut map_len = len;
    let mut fresh = true;
    if align < SUPERSLAB_SIZE {
        // Reuse a cached mapping whatever its size, so that its pages —
        // already faulted in — serve the request: the smallest one large
        // enough is used whole (giving a tail back would only make the
        // next large request fault it in again), else the largest smaller
        // one grows by `mremap` and only its new part faults. Only an
        // empty cache maps from scratch.
        if let Some((b, l)) = cache_take(len) {
            if l >= len {
                (base, map_len, fresh) = (b, l, false);
            } else if guard() != 0 {
                // A guarded mapping is not grown (its guard page would end
                // up inside): map afresh.
                os::unmap(b as *mut u8, l);
            } else if let Some(nb) = grow_mapping(b, l, len, align) {
                (base, fresh) = (nb, false);
            } else {
                // The OS refused to grow it: give it back, map afresh.
                os::unmap(b as *mut u8, l);
            }
        }
    }
    if base == 0 {
        let b = os::map_aligned(len, align.max(SUPERSLAB_SIZE));
        if b.is_null() {
            // Memory may be sitting in the cache: give it back and retry.
            if cache_decay(0, 0, true) == 0 {
                return ptr::null_mut();
            }
            let b2 = os::map_aligned(len, align.max(SUPERSLAB_SIZE));
            if b2.is_null() {
                return ptr::null_mut();
            }
            base = b2 as usize;
        } else {
            base = b as usize;
        }
        if !registry::covers(base + len) {
            os::unmap(base as *mut u8, len);
            return ptr::null_mut();
        }
        let g = guard();
        if g != 0 {
            // When the OS refuses (its limit of mappings), the page stays
            // accessible but unused: the span is still placed before it.
            os::protect_none((base + len - g) as *mut u8, g);
        }
        let huge_min = HUGE_MIN.load(Relaxed);
        if huge_min != 0 && size >= huge_min {
            // The 2 MiB pages the request covers (all of the first but the
            // header and colour, under 4 KiB; not the last one when the
            // request ends early in it): the program asked for them.
            let lo = base;
            let hi = (base + off + size) & !(SUPERSLAB_SIZE - 1);
            if hi > lo {
                os::advise_huge(lo as *mut u8, hi - lo);
            }
        } else {
            // No huge pages unless asked for, whatever the system's THP
            // mode: the mapping is 2 MiB-aligned and a multiple of 2 MiB, so
            // with THP in `always` mode the first touch of a 100 KiB block
            // would be backed by a 2 MiB page (docs/memory.md, "Huge pages
            // and the registry").
            os::advise_no_huge(base as *mut u8, len);
        }
    }
    {
        let _g = CACHE.lock.lock();
        bump(&SPAN_LIVE, 1);
        bump(&SPAN_BYTES, map_len);
        LAST_LEN.store(map_len, Relaxed);
        count(&SPAN_ALLOCS);
        if !fresh {
            count(&CACHE_HITS);
        }
    }
    hand_out(base, map_len, off, size, align, zero && !fresh)
}

/// Places a request of `size` bytes at `align` in the mapping
/// `base..base+map_len` (header at `off` before the user pointer, plus the
/// colour), zeroes it with `zero`, writes the header and registers it.
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
fn hand_out(
    base: usize,
    map_len: usize,
    off: usize,
    size: usize,
    align: usize,
    zero: bool,
) -> *mut u8 {
    let g = guard();
    let user = match guarded_place(base, map_len, g, size, align) {
        Some(u) => u,
        None => base + off + colour(base, map_len - off - g - size.max(1), align),
    };
    if zero {
        // SAFETY: `user..user+size` is inside the mapping we own.
        unsafe { ptr::write_bytes(user as *mut u8, 0, size) };
    }
    if g != 0 {
        fill_pad(user + size, base + map_len - g);
    }
    write_header(user, base, map_len, align, g, size);
    user as *mut u8
}

/// Cache colouring of spans: how far past the header the user pointer of a
/// span mapped at `base` starts. Mappings are 2 MiB-aligned, so without it
/// every span's bytes at the same offset — its first bytes, the start of
/// each of its pages — would share one L1 set (and a few L2 sets) with
/// every other span's. The colour steps by 128 bytes (keeping 128-byte
/// alignment) through 32 values taken from the mapping's address, so
/// consecutive mappings differ; it never needs a longer mapping (`slack`
/// is the room left at the end) and is skipped for alignments above 128.
fn colour(base: usize, slack: usize, align: usize) -> usize {
    const STEP: usize = 128;
    if align > STEP {
        return 0;
    }
    let c = ((base / SUPERSLAB_SIZE) % 32) * STEP;
    c.min(slack & !(STEP - 1))
}

fn write_header(
    user: usize,
    map_base: usize,
    map_len: usize,
    align: usize,
    guard: usize,
    size: usize,
) {
    let h = span_header_addr(user) as *mut SpanHeader;
    // SAFETY: the header address is inside the mapping we own (the
    // geometry puts at least one header's room before the user pointer).
    unsafe {
        h.write(SpanHeader {
            magic: SPAN_MAGIC,
            user,
            map_base,
            map_len,
            align,
            guard,
            size,
        })
    };
    let kind = if user & CHUNK_MASK == 0 {
        registry::KIND_SPAN_ALIGNED
    } else {
        registry::KIND_SPAN
    };
    registry::set(chunk_of(user), kind);
}

/// The header of the span whose user pointer is `p`, when `p` really is one.
pub fn span_header(p: *mut u8) -> Option<&'static SpanHeader> {
    let user = p as usize;
    let kind = registry::kind_of(user);
    let ok = match kind {
        registry::KIND_SPAN => user & CHUNK_MASK >= HDR,
        registry::KIND_SPAN_ALIGNED => user & CHUNK_MASK == 0,
        _ => false,
    };
    if !ok {
        return None;
    }
    // SAFETY: the registry says a span of ours has its user pointer in this
    // chunk, so the header address is inside that span's mapping.
    let h = unsafe { &*(span_header_addr(user) as *const SpanHeader) };
    (h.magic == SPAN_MAGIC && h.user == user).then_some(h)
}

/// Usable bytes of span `p`, or `None` when `p` is not a span of ours.
pub fn span_usable_size(p: *mut u8) -> Option<usize> {
    span_header(p).map(hakmem_ptr_bridge::large_usable)
}

/// Frees span `p`: its mapping goes to the span cache (or back to the OS).
/// False (and nothing done) when `p` is not a span.
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
pub fn span_free(p: *mut u8) -> bool {
    let Some(h) = span_header(p) else {
        return false;
    };
    let (base, len, align) = (h.map_base, h.map_len, h.align);
    // SAFETY: the header is ours; clearing the magic makes a second free of
    // the same pointer fail validation even if the mapping is cached.
    unsafe { (*(h as *const SpanHeader as *mut SpanHeader)).magic = 0 };
    registry::set(chunk_of(p as usize), registry::KIND_NONE);
    cache_put(base, len, align < SUPERSLAB_SIZE, true).unmap();
    true
}

/// One freed span mapping that a thread keeps for its own next span
/// request (the caller owns it: hakmem keeps one per thread, in TLS).
///
/// Reusing it takes no lock and no locked instruction: a locked
/// instruction waits for the thread's pending stores to drain, which after
/// a program has just written a large block costs more than the rest of
/// the span path together. Only mappings of one chunk (requests up to
/// 2 MiB − 64 B) are stashed, so a thread hoards at most 2 MiB of address
/// space this way; the owner gives it to the shared cache with
/// [`SpanStash::flush`] (at thread exit and on trim). A stashed mapping
/// still counts as a live span in the backend's statistics until it goes
/// back to the shared cache; the requests and frees a stash serves are
/// counted in the stash ([`SpanStash::take_counts`]), not by the backend.
#[derive(Debug, Default)]
#[repr(C)]
pub struct SpanStash {
    base: usize, // 0: empty
    len: usize,
    // The kept span's user pointer, request size and alignment when its
    // header (magic cleared) and its registry entry were left in place
    // (no guard page): a request of the same size and alignment gets the
    // same pointer back by restoring the magic. 0: nothing left in place.
    user: usize,
    size: usize,
    align: usize,
    allocs: u64, // requests served, not yet taken by `take_counts`
    frees: u64,  // frees kept, likewise
}

impl SpanStash {
    /// An empty stash (all zero).
    pub const fn new() -> Self {
        SpanStash {
            base: 0,
            len: 0,
            user: 0,
            size: 0,
            align: 0,
            allocs: 0,
            frees: 0,
        }
    }

    /// Frees span `p`: into the stash when it qualifies (one chunk, normal
    /// alignment; a mapping already kept goes to the shared cache), else as
    /// [`span_free`] does. False (and nothing done) when `p` is not a span.
    #[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
    pub fn free(&mut self, p: *mut u8) -> bool {
        let Some(h) = span_header(p) else {
            return false;
        };
        let (base, len, align) = (h.map_base, h.map_len, h.align);
        if len != SUPERSLAB_SIZE || align >= SUPERSLAB_SIZE {
            return span_free(p);
        }
        let (guard, size) = (h.guard, h.size);
        // SAFETY: the header is ours; clearing the magic makes a second
        // free of the same pointer fail validation.
        unsafe { (*(h as *const SpanHeader as *mut SpanHeader)).magic = 0 };
        self.flush();
        if guard == 0 {
            // The registry entry stays (a free of `p` now finds a span
            // chunk with no valid header: an invalid pointer, as a freed
            // one must be); `flush` or a different request clears it.
            (self.user, self.size, self.align) = (p as usize, size, align);
        } else {
            registry::set(chunk_of(p as usize), registry::KIND_NONE);
        }
        (self.base, self.len) = (base, len);
        self.frees += 1;
        true
    }

    /// Clears the registry entry a kept span left in place.
    #[inline]
    fn forget_user(&mut self) {
        let user = core::mem::take(&mut self.user);
        if user != 0 {
            registry::set(chunk_of(user), registry::KIND_NONE);
        }
    }

    /// True when `p` points into the mapping this stash keeps (a span that
    /// was freed and not handed out again).
    pub fn holds(&self, p: *mut u8) -> bool {
        self.base != 0 && (p as usize).wrapping_sub(self.base) < self.len
    }

    /// Serves a span request from the stash when the kept mapping fits
    /// (`size` bytes at `align` in one chunk); null otherwise (nothing
    /// done). With `zero` the first `size` bytes read as zero.
    #[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
    pub fn alloc(&mut self, size: usize, align: usize, zero: bool) -> *mut u8 {
        if self.base == 0 {
            return ptr::null_mut();
        }
        if self.user != 0 && size == self.size && align == self.align {
            // The same request as the kept span's (which has no guard page,
            // or `user` would be 0): its header and registry entry are in
            // place, only the magic comes back.
            self.allocs += 1;
            self.base = 0;
            let user = core::mem::take(&mut self.user);
            if zero {
                // SAFETY: `size` bytes at `user` are inside our mapping.
                unsafe { ptr::write_bytes(user as *mut u8, 0, size) };
            }
            // SAFETY: the header of the span we kept (inside its mapping,
            // which we own); every other field still describes `user`.
            unsafe { (*(span_header_addr(user) as *mut SpanHeader)).magic = SPAN_MAGIC };
            return user as *mut u8;
        }
        self.forget_user();
        match span_geometry(size, align) {
            Some((off, len)) if len == self.len => {
                self.allocs += 1;
                let base = core::mem::take(&mut self.base);
                hand_out(base, len, off, size, align, zero)
            }
            _ => ptr::null_mut(),
        }
    }

    /// Gives the kept mapping (if any) to the shared span cache.
    pub fn flush(&mut self) {
        self.forget_user();
        let base = core::mem::take(&mut self.base);
        if base != 0 {
            cache_put(base, self.len, true, false).unmap();
        }
    }

    /// The requests served and frees kept since the last call: `(allocs,
    /// frees)`, for the owner's statistics.
    pub fn take_counts(&mut self) -> (u64, u64) {
        (
            core::mem::take(&mut self.allocs),
            core::mem::take(&mut self.frees),
        )
    }
}

/// Resizes span `p` to `new_size` usable bytes without copying: shrinks or
/// grows in place, or moves the pages with `mremap` to a fresh aligned
/// reservation. Returns the (possibly moved) user pointer; null when the OS
/// refuses, in which case `p` is untouched.
///
/// # Safety
/// `p` must be a live span of ours.
pub unsafe fn span_realloc(p: *mut u8, new_size: usize) -> *mut u8 {
    let Some(h) = span_header(p) else {
        return ptr::null_mut();
    };
    if h.guard != 0 {
        // A guarded mapping is not resized in place: the caller copies.
        return ptr::null_mut();
    }
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
        write_header(p as usize, base, new_len, align, 0, new_size);
        adjust_bytes(new_len, len);
        return p;
    }
    let Some(dest) = grow_mapping(base, len, new_len, align) else {
        return ptr::null_mut();
    };
    if dest != base {
        registry::set(chunk_of(p as usize), registry::KIND_NONE);
    }
    let user = dest + off;
    write_header(user, dest, new_len, align, 0, new_size);
    adjust_bytes(new_len, len);
    user as *mut u8
}

/// Holds the span cache lock across `fork()` (prepare handler).
pub(crate) fn lock_for_fork() {
    core::mem::forget(CACHE.lock.lock());
}

/// Releases it after `fork()` (parent and child).
///
/// # Safety
/// Only after [`lock_for_fork`].
pub(crate) unsafe fn unlock_after_fork() {
    // SAFETY: forwarded contract.
    unsafe { CACHE.lock.force_unlock() };
}
