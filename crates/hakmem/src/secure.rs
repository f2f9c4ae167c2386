//! The secure mode (`HAKMEM_SECURE=1`, or [`HakMemSecure`] from Rust): every
//! slab allocation and free takes a checked slow path, at no cost to the
//! default mode's fast path.
//!
//! How it is reached without a test on the fast path: the mode sets every
//! thread-cache cap to 0, so the cache is always empty (each `malloc` misses
//! into [`alloc`]) and every push overflows at once (each free by the
//! owning thread lands in [`free_cached`]); a free by another thread takes
//! the remote path, which is cold already and calls [`free_block`].
//!
//! A secure slab block of stride `bs` for a request of `n` bytes at
//! alignment `a` (`h = max(16, a)`):
//!
//! ```text
//! block                     block+h (user)        block+h+n          block+bs
//! | size word | live word | (zero) | user bytes ... | canary bytes ... |
//! ```
//!
//! - the *size word* holds `n` and `h`, the *live word* a tag; both are
//!   XORed with a per-process secret and the block address, so a stray or
//!   forged write shows up as a bad header, and the live word can never
//!   equal the free mark (a freed block has the mark there);
//! - at least one canary byte follows the user bytes (at least 16 of
//!   them: `free`'s fast path writes 16 bytes there first) up to the
//!   block's end;
//! - freed blocks are zeroed past their two list words and wait in a
//!   per-thread quarantine (FIFO, 64 blocks, at most 256 KiB) before they
//!   go back to their slab; a block handed out again must still be zero
//!   there (a write after free is caught), must carry the free mark, and
//!   the slab's next free block must be a marked block start (a corrupted
//!   free-list link is caught before it is followed);
//! - blocks are carved zeroed, so every hand-out is zeroed memory.
//!
//! Spans (above 64 KiB) keep the default layout and its checks (header
//! magic, double free, invalid pointer); see docs/security.md.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr;
use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};

use hakmem_ace_learning::POLICY;
use hakmem_ptr_bridge::{
    block_index, class_for, free_mark, has_free_mark, set_free_mark, slab_meta_at, slab_meta_of,
    slab_state, CLASS_STRIDE, MIN_ALIGN, NUM_CLASSES,
};
use hakmem_refill_engine::{FreeOutcome, EXITED};
use hakmem_superslab_backend::registry;

use crate::thread::ThreadState;
use crate::{diag, HakMem};

static ON: AtomicBool = AtomicBool::new(false);
static REQUESTED: AtomicBool = AtomicBool::new(false);
static SECRET: AtomicU64 = AtomicU64::new(0);

/// Whether the secure mode is on (fixed before the first allocation).
#[inline]
pub(crate) fn on() -> bool {
    ON.load(Relaxed)
}

/// Whether the process runs in the secure mode.
pub fn secure_mode() -> bool {
    on()
}

/// True when [`HakMemSecure`] asked for the mode before the configuration
/// was read.
pub(crate) fn requested() -> bool {
    REQUESTED.load(Acquire)
}

/// Turns the mode on. Called while the configuration is read, before any
/// block is handed out.
pub(crate) fn enable() {
    if on() {
        return;
    }
    let mut seed = [0u8; 8];
    // SAFETY: an 8-byte buffer of ours; getrandom does not allocate.
    let got = unsafe { libc::getrandom(seed.as_mut_ptr().cast(), 8, libc::GRND_NONBLOCK) };
    let mut s = u64::from_ne_bytes(seed);
    if got != 8 {
        // No entropy yet (early boot): the clock and an address still make
        // the secret differ from run to run.
        let ts = crate::sys::clock(libc::CLOCK_MONOTONIC);
        s ^= (ts.tv_nsec as u64).rotate_left(32) ^ ts.tv_sec as u64 ^ (&SECRET as *const _ as u64);
    }
    SECRET.store(s | 1, Relaxed);
    for c in 0..NUM_CLASSES {
        POLICY.set_cache_cap(c, 0);
    }
    hakmem_refill_engine::set_scrub_carved(true);
    ON.store(true, Release);
}

/// Asks for the secure mode from Rust ([`HakMemSecure`]): it takes effect
/// if the configuration has not been read yet, and stops the program with
/// a diagnostic if hakmem already runs in the default mode.
fn require() {
    if on() {
        return;
    }
    REQUESTED.store(true, Release);
    crate::config::init();
    if !on() && crate::config::done() {
        diag::fatal(
            "HakMemSecure",
            "hakmem already started in the default mode; cannot switch at",
            ptr::null(),
        );
    }
}

fn secret() -> u64 {
    SECRET.load(Relaxed)
}

const LIVE_TAG: u64 = 0x4c49_5645_4841_4b4d; // "LIVEHAKM"

/// The user area is at least this long: `free`'s fast path writes the list
/// link and the free mark into the first 16 user bytes before the secure
/// checks run, so a canary there would be overwritten (an overflow inside
/// those 16 bytes of a request under 16 bytes is not seen).
const USER_MIN: usize = 16;

fn canary() -> u8 {
    (secret() >> 8) as u8 | 0x80
}

fn size_word(block: usize, n: usize, h: usize) -> u64 {
    (n as u64 | (h as u64) << 32) ^ secret() ^ block as u64
}

fn live_word(block: usize) -> u64 {
    LIVE_TAG ^ secret() ^ (block as u64).rotate_left(17)
}

/// Per-thread quarantine: freed blocks wait here before going back to
/// their slab, so a dangling pointer cannot count on the next allocation.
///
/// Blocks that leave the quarantine go to a small per-class cache of this
/// thread (when it owns their slab) rather than straight back to the
/// slab, so that the next allocation of the class does not take the slab
/// round trip; cached blocks are free, marked and zeroed like quarantined
/// ones, and are checked the same way when handed out, their cache link
/// included.
#[repr(C)]
pub(crate) struct Quarantine {
    ring: [usize; Q_SLOTS],
    head: u32, // oldest entry
    len: u32,
    bytes: usize,
    cache: [*mut u8; NUM_CLASSES],
    cached: [u16; NUM_CLASSES],
}

const Q_SLOTS: usize = 64;
const Q_BYTES: usize = 256 * 1024;
/// Most blocks, and bytes, the per-class cache keeps.
const C_BLOCKS: usize = 64;
const C_BYTES: usize = 128 * 1024;

impl Quarantine {
    pub(crate) const fn new() -> Self {
        Quarantine {
            ring: [0; Q_SLOTS],
            head: 0,
            len: 0,
            bytes: 0,
            cache: [ptr::null_mut(); NUM_CLASSES],
            cached: [0; NUM_CLASSES],
        }
    }

    /// Takes a cached block of `class` (checked as a free block, and its
    /// link too before the cache follows it), or null.
    fn cache_pop(&mut self, class: usize) -> *mut u8 {
        let b = self.cache[class];
        if b.is_null() {
            return b;
        }
        if !is_free_block(b) {
            diag::fatal("malloc()", "corrupted free list: handed", b)
        }
        // SAFETY: a free block of ours: its first word is the cache link.
        let next = unsafe { hakmem_ptr_bridge::block_next(b) };
        if !next.is_null() && !is_free_block(next) {
            diag::fatal("malloc()", "corrupted free-list link to", next)
        }
        self.cache[class] = next;
        self.cached[class] -= 1;
        b
    }

    /// Keeps free block `b` of `class` (stride `stride`) if there is room.
    fn cache_push(&mut self, class: usize, stride: usize, b: *mut u8) -> bool {
        let n = self.cached[class] as usize;
        if n >= C_BLOCKS || (n + 1) * stride > C_BYTES {
            return false;
        }
        // SAFETY: a free block of ours: its first word is the link.
        unsafe { hakmem_ptr_bridge::set_block_next(b, self.cache[class]) };
        self.cache[class] = b;
        self.cached[class] += 1;
        true
    }

    fn pop_oldest(&mut self) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let b = self.ring[self.head as usize];
        self.head = (self.head + 1) % Q_SLOTS as u32;
        self.len -= 1;
        Some(b)
    }
}

/// Where a user pointer of a secure slab block lives.
struct Loc {
    block: usize,
    stride: usize,
}

/// Finds the block holding `p` (any address inside a carved block of a
/// live slab), or `None`.
fn locate(p: *mut u8) -> Option<Loc> {
    let a = p as usize;
    let k = registry::kind_of(a);
    if !registry::is_superslab(k) {
        return None;
    }
    // SAFETY: the registry says a live superslab with this mask holds `p`.
    let s = unsafe { slab_meta_at(p, k) };
    let class = s.class.load(Relaxed) as usize;
    if s.state.load(Acquire) == slab_state::FREE || class >= NUM_CLASSES {
        return None;
    }
    let start = s.data_start();
    let stride = CLASS_STRIDE[class] as usize;
    let off = a.checked_sub(start)?;
    let carved = s.carved.load(Acquire) as usize * stride;
    if off >= carved {
        return None;
    }
    let block = start + block_index(off, class) * stride;
    Some(Loc { block, stride })
}

/// Reads word `i` of block `b`.
///
/// # Safety
/// `b` is a carved block of at least 16 bytes.
unsafe fn word(b: usize, i: usize) -> u64 {
    // SAFETY: caller contract.
    unsafe { *((b + 8 * i) as *const u64) }
}

/// Checks the header and canary of the live block holding user pointer `p`
/// for entry point `call`; returns its location and requested size.
fn check_live(call: &str, p: *mut u8) -> (Loc, usize) {
    let Some(l) = locate(p) else {
        diag::invalid_pointer(call, p)
    };
    // SAFETY: a carved block of at least 32 bytes (the secure layout's
    // smallest class).
    let (w0, w1) = unsafe { (word(l.block, 0), word(l.block, 1)) };
    if w1 as usize == free_mark(l.block) {
        if call == "free()" {
            diag::double_free(call, p)
        }
        diag::fatal(call, "pointer already freed", p)
    }
    if w1 != live_word(l.block) {
        diag::fatal(
            call,
            "invalid pointer or heap corruption before the block",
            p,
        )
    }
    let v = w0 ^ secret() ^ l.block as u64;
    let (n, h) = ((v & 0xffff_ffff) as usize, (v >> 32) as usize);
    if h != p as usize - l.block || h < 16 || n.max(USER_MIN) + h >= l.stride {
        diag::fatal(call, "invalid pointer or corrupted block header", p)
    }
    let from = h + n.max(USER_MIN);
    // SAFETY: bytes [h + max(n, 16), stride) of the block are its canary.
    let tail =
        unsafe { core::slice::from_raw_parts((l.block + from) as *const u8, l.stride - from) };
    let c = canary();
    if tail.iter().any(|&b| b != c) {
        diag::fatal(call, "buffer overflow past the end of block", p)
    }
    (l, n)
}

// --- malloc(0): memory that faults when it is touched.
//
// A zero-byte request gets a pointer into one reserved 2 MiB mapping with
// no access rights (`PROT_NONE`, `MAP_NORESERVE`: address space, no memory),
// so any read or write through it faults at once. Pointers are handed out
// at consecutive slots of the alignment asked for, wrapping after 2 MiB, so
// they are distinct while fewer than 131072 (16-byte slots) are live.
// `free` accepts them and does nothing; `realloc` treats them as null;
// `malloc_usable_size` says 0.

const ZERO_LEN: usize = 2 << 20;
static ZERO_BASE: AtomicUsize = AtomicUsize::new(0);
static ZERO_NEXT: AtomicUsize = AtomicUsize::new(0);

/// The reserved mapping (created on first use); 0 when the OS refused it.
fn zero_base() -> usize {
    let b = ZERO_BASE.load(Acquire);
    if b != 0 {
        return b;
    }
    let m = hakmem_superslab_backend::os::reserve(ZERO_LEN);
    if m.is_null() {
        return 0;
    }
    match ZERO_BASE.compare_exchange(0, m as usize, AcqRel, Acquire) {
        Ok(_) => m as usize,
        Err(other) => {
            // Another thread's reservation won the race; ours is unused.
            hakmem_superslab_backend::os::unmap(m, ZERO_LEN);
            other
        }
    }
}

/// A pointer for `malloc(0)` aligned to `align` (null and ENOMEM when no
/// reservation could be made).
fn zero_alloc(align: usize) -> *mut u8 {
    let base = zero_base();
    if base == 0 {
        crate::set_enomem();
        return ptr::null_mut();
    }
    let a = align.clamp(16, ZERO_LEN);
    let off = ZERO_NEXT.fetch_add(1, Relaxed).wrapping_mul(a) & (ZERO_LEN - 1);
    (base + off) as *mut u8
}

/// True when `p` is a pointer [`zero_alloc`] hands out.
pub(crate) fn is_zero_block(p: *const u8) -> bool {
    let base = ZERO_BASE.load(Acquire);
    let a = p as usize;
    base != 0 && a >= base && a < base + ZERO_LEN && (a - base).is_multiple_of(16)
}

/// The requested size of live block `p` (secure `malloc_usable_size`).
pub(crate) fn live_size(call: &str, p: *mut u8) -> usize {
    check_live(call, p).1
}

/// Secure allocation of `n` bytes at `align`.
///
/// # Safety
/// `t` is the calling thread's state; no reference into it is live.
pub(crate) unsafe fn alloc(t: *mut ThreadState, n: usize, align: usize) -> *mut u8 {
    let align = align.max(MIN_ALIGN);
    if n == 0 {
        return zero_alloc(align);
    }
    let h = align.max(16);
    let class = n
        .max(USER_MIN)
        .checked_add(h + 1)
        .and_then(|need| class_for(need, align));
    let Some(class) = class else {
        // Spans carry no header; the mode's promise of zeroed hand-outs
        // holds by clearing a reused span (fresh ones come zeroed).
        return crate::alloc_span_z(n, align, true);
    };
    // SAFETY: caller contract.
    let cached = unsafe { (*t).quarantine.cache_pop(class) };
    let b = if cached.is_null() {
        // SAFETY: forwarded contract.
        let b = unsafe { crate::refill_block(t, class) };
        if b.is_null() {
            crate::set_enomem();
            return b;
        }
        // SAFETY: `b` is the block the refill took: a slab block of ours.
        let s = unsafe { slab_meta_of(b) };
        // SAFETY: as above; 16 bytes are ours to read.
        if !s.is_block_start(b as usize) || !unsafe { has_free_mark(b) } {
            diag::fatal("malloc()", "corrupted free list: handed", b)
        }
        // The refill follows the link next time: check it first.
        let next = s.free.load(Relaxed);
        if !next.is_null() && !is_free_block(next) {
            diag::fatal("malloc()", "corrupted free-list link to", next)
        }
        b as usize
    } else {
        cached as usize
    };
    let stride = CLASS_STRIDE[class] as usize;
    // SAFETY: the block is ours now, `stride` bytes, a multiple of 16.
    let words = unsafe { core::slice::from_raw_parts_mut(b as *mut u64, stride / 8) };
    if words[2..].iter().fold(0, |a, &w| a | w) != 0 {
        diag::fatal("malloc()", "write after free into block", b as *const u8)
    }
    words[0] = size_word(b, n, h);
    words[1] = live_word(b);
    // SAFETY: as above.
    let bytes = unsafe { core::slice::from_raw_parts_mut(b as *mut u8, stride) };
    bytes[h + n.max(USER_MIN)..].fill(canary());
    (b + h) as *mut u8
}

/// True when `p` is the start of a carved block of a live slab that
/// carries the free mark: what every free-list link must point to.
fn is_free_block(p: *mut u8) -> bool {
    let k = registry::kind_of(p as usize);
    if !registry::is_superslab(k) {
        return false;
    }
    // SAFETY: the registry says a live superslab with this mask holds `p`.
    let s = unsafe { slab_meta_at(p, k) };
    // SAFETY: a block start of a live slab has 16 readable bytes.
    s.is_block_start(p as usize) && unsafe { has_free_mark(p) }
}

/// The owning thread freed blocks that now sit in its cache of `class`
/// (whose cap is 0): take them out and free each with [`free_block`].
///
/// # Safety
/// `t` is the calling thread's state; no reference into it is live.
pub(crate) unsafe fn free_cached(t: *mut ThreadState, class: usize) {
    // SAFETY: caller contract.
    let (mut c, _) = unsafe { (*t).front.take(class, u32::MAX) };
    while !c.is_null() {
        // SAFETY: the cache's link, written by the push.
        let next = unsafe { hakmem_ptr_bridge::block_next(c) };
        // SAFETY: forwarded contract.
        unsafe { free_block(t, c) };
        c = next;
    }
}

/// Secure free of user pointer `p` (any thread): check it, zero it, and
/// put it in quarantine.
///
/// # Safety
/// `t` is the calling thread's state; no reference into it is live.
pub(crate) unsafe fn free_block(t: *mut ThreadState, p: *mut u8) {
    let (l, _) = check_live("free()", p);
    let b = l.block;
    // SAFETY: the block is being freed: ours to write.
    unsafe {
        ptr::write_bytes((b + 16) as *mut u8, 0, l.stride - 16);
        *(b as *mut usize) = 0;
        set_free_mark(b as *mut u8);
    }
    // SAFETY: our own state, no reference into it is live.
    let ts = unsafe { &mut *t };
    if ts.heap.id() == EXITED {
        // No exit hook will drain a quarantine: back at once.
        // SAFETY: as above.
        unsafe { give_back(t, b) };
        return;
    }
    let q = &mut ts.quarantine;
    let tail = (q.head as usize + q.len as usize) % Q_SLOTS;
    q.ring[tail] = b;
    q.len += 1;
    q.bytes += l.stride;
    while q.len as usize == Q_SLOTS || q.bytes > Q_BYTES {
        let Some(e) = q.pop_oldest() else { break };
        // SAFETY: a block we quarantined: free, marked, in a live slab.
        q.bytes -= CLASS_STRIDE[unsafe { slab_meta_of(e as *mut u8) }.class.load(Relaxed) as usize]
            as usize;
        // SAFETY: as above.
        unsafe { give_back(t, e) };
    }
}

/// Returns quarantined block `b` (free, marked, zeroed) to its slab.
///
/// # Safety
/// `t` is the calling thread's state; no reference into it is live.
unsafe fn give_back(t: *mut ThreadState, b: usize) {
    // SAFETY: caller contract.
    let ts = unsafe { &mut *t };
    let bp = b as *mut u8;
    // SAFETY: `b` is a block of a live slab.
    let s = unsafe { slab_meta_of(bp) };
    let class = s.class.load(Relaxed) as usize;
    let mine = s.owner.load(Relaxed) == ts.heap.id();
    if mine
        && ts.heap.id() != EXITED
        && ts
            .quarantine
            .cache_push(class, CLASS_STRIDE[class] as usize, bp)
    {
        return;
    }
    if mine {
        // SAFETY: a free block of our slab: through the cache's flush, which
        // returns it to the slab's local list.
        unsafe {
            ts.front.push_chain(class, bp, bp, 1);
            if let Err(bad) = hakmem_refill_engine::flush(&mut ts.heap, &mut ts.front, class) {
                diag::invalid_pointer("free()", bad);
            }
        }
        return;
    }
    // SAFETY: `b` is a freed block start of a live superslab.
    match unsafe { hakmem_refill_engine::free_remote(&mut ts.heap, bp) } {
        FreeOutcome::Remote => {}
        FreeOutcome::NotAllocated => diag::invalid_pointer("free()", bp),
        FreeOutcome::Adopted { class } => {
            // SAFETY: we own the block's slab now.
            unsafe {
                ts.front.push_chain(class, bp, bp, 1);
                if let Err(bad) = hakmem_refill_engine::flush(&mut ts.heap, &mut ts.front, class) {
                    diag::invalid_pointer("free()", bad);
                }
            }
        }
    }
}

/// Returns every quarantined block of the calling thread (thread exit,
/// trim).
///
/// # Safety
/// `t` is the calling thread's state; no reference into it is live.
pub(crate) unsafe fn drain(t: *mut ThreadState) {
    // SAFETY: caller contract.
    while let Some(b) = unsafe { (*t).quarantine.pop_oldest() } {
        // SAFETY: as above.
        unsafe { give_back(t, b) };
    }
    // SAFETY: as above.
    unsafe { (*t).quarantine.bytes = 0 };
    for class in 0..NUM_CLASSES {
        // SAFETY: as above.
        let ts = unsafe { &mut *t };
        let head = core::mem::replace(&mut ts.quarantine.cache[class], ptr::null_mut());
        ts.quarantine.cached[class] = 0;
        let mut b = head;
        let mut tail = ptr::null_mut();
        let mut n = 0;
        while !b.is_null() {
            tail = b;
            n += 1;
            // SAFETY: a cached free block: its first word is the link.
            b = unsafe { hakmem_ptr_bridge::block_next(b) };
        }
        if n > 0 {
            // The chain goes through the thread cache's flush, which
            // returns each block to its slab (locally or remotely).
            // SAFETY: a chain of `n` free blocks of `class` we hold.
            unsafe {
                ts.front.push_chain(class, head, tail, n);
                if let Err(bad) = hakmem_refill_engine::flush(&mut ts.heap, &mut ts.front, class) {
                    diag::invalid_pointer("free()", bad);
                }
            }
        }
    }
}

/// The secure allocator for `#[global_allocator]`: [`HakMem`] in the
/// secure mode. The mode is process-wide and fixed before the first
/// allocation: using this type after hakmem handed out memory in the
/// default mode stops the program with a diagnostic.
///
/// ```
/// #[global_allocator]
/// static GLOBAL: hakmem::HakMemSecure = hakmem::HakMemSecure;
/// # fn main() { let v = vec![1u8; 10]; assert_eq!(v.len(), 10); }
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct HakMemSecure;

// SAFETY: the same contract as HakMem's, which every method forwards to
// once the secure mode is on.
unsafe impl GlobalAlloc for HakMemSecure {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        require();
        // SAFETY: forwarded contract.
        unsafe { HakMem.alloc(layout) }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        require();
        // SAFETY: forwarded contract.
        unsafe { HakMem.dealloc(p, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        require();
        // SAFETY: forwarded contract.
        unsafe { HakMem.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        require();
        // SAFETY: forwarded contract.
        unsafe { HakMem.realloc(p, layout, new_size) }
    }
}
