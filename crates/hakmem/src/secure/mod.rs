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
//!   per-thread quarantine (FIFO, 64 blocks, at most 256 KiB), then in a
//!   per-class secure cache (as many blocks as the default thread cache
//!   keeps; links encoded with the secret) before they go back to their
//!   slab; a block handed out again must still be zero there (a write
//!   after free is caught) and carry the free mark, and every link — the
//!   cache's, decoded, and the slab lists', as `take_chain` walks them —
//!   must name a marked block start before it is followed (a corrupted
//!   free-list link is caught, not followed);
//! - blocks are carved zeroed, so every hand-out is zeroed memory.
//!
//! Spans (above 64 KiB) keep the default header and its checks (magic,
//! double free, invalid pointer), are cleared when reused, and end at a
//! guard page with a canary in the gap before it
//! (`hakmem_superslab_backend::set_guard_pages`); see docs/security.md.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr;
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use core::sync::atomic::{AtomicBool, AtomicU64};

use hakmem_ace_learning::{default_cap, POLICY};
use hakmem_ptr_bridge::{
    block_index, class_for, free_mark, has_free_mark, set_free_mark, slab_meta_at, slab_meta_of,
    slab_state, CLASS_STRIDE, MIN_ALIGN, NUM_CLASSES,
};
use hakmem_refill_engine::{FreeOutcome, Lifecycle};
use hakmem_superslab_backend::registry;

mod zero;
pub(crate) use zero::is_zero_block;
use zero::zero_alloc;

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
    hakmem_superslab_backend::set_guard_pages(canary());
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

    /// Takes a cached block of `class`, or null. The head was checked as
    /// a free block when it became the head (it was the link this check
    /// followed, or a block [`free_block`] checked); its encoded link is
    /// decoded and the block it names checked before the cache follows it.
    fn cache_pop(&mut self, class: usize) -> *mut u8 {
        let b = self.cache[class];
        if b.is_null() {
            return b;
        }
        // SAFETY: a free block of ours: its first word is the cache link.
        let next = decode_link(b as usize, unsafe { word(b as usize, 0) } as usize) as *mut u8;
        if !next.is_null() && !is_free_block(next) {
            diag::fatal("malloc()", "corrupted free-list link to", next)
        }
        self.cache[class] = next;
        self.cached[class] -= 1;
        b
    }

    /// Keeps free block `b` of `class` if there is room: as many blocks as
    /// the default mode's thread cache keeps (`default_cap`).
    fn cache_push(&mut self, class: usize, b: *mut u8) -> bool {
        if self.cached[class] as u32 >= default_cap(class) {
            return false;
        }
        let link = encode_link(b as usize, self.cache[class] as usize);
        // SAFETY: a free block of ours: its first word is the link.
        unsafe { *(b as *mut usize) = link };
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

/// The secure cache's link word in free block `at`: the next block's
/// address XORed with the secret and `at`. A stray write into the word
/// decodes to an address that fails [`is_free_block`], and forging a link
/// needs the secret: the cache detects a corrupted link instead of
/// following it.
#[inline]
fn encode_link(at: usize, next: usize) -> usize {
    next ^ secret() as usize ^ at.rotate_left(23)
}

/// The inverse of [`encode_link`] (XOR is its own inverse).
#[inline]
fn decode_link(at: usize, word: usize) -> usize {
    encode_link(at, word)
}

/// True when bytes `[from, to)` of block `b` all hold the canary (`to` a
/// multiple of 8): word by word after the first unaligned bytes.
///
/// # Safety
/// The bytes are inside block `b`, which is ours to read.
unsafe fn canary_intact(b: usize, from: usize, to: usize) -> bool {
    let c = canary();
    let mut i = from;
    while i < to && !i.is_multiple_of(8) {
        // SAFETY: caller contract.
        if unsafe { *((b + i) as *const u8) } != c {
            return false;
        }
        i += 1;
    }
    let pat = u64::from_ne_bytes([c; 8]);
    let mut diff = 0;
    while i < to {
        // SAFETY: caller contract; `b + i` is 8-aligned (`b` is 16-aligned).
        diff |= unsafe { word(b + i, 0) } ^ pat;
        i += 8;
    }
    diff == 0
}

/// True when words `[2, stride / 8)` of block `b` are all zero: what a
/// freed block must still hold (four accumulators, so the loop runs as
/// vector ORs).
///
/// # Safety
/// `b` is a block of `stride` bytes (a multiple of 16) that is ours.
unsafe fn still_zero(b: usize, stride: usize) -> bool {
    // SAFETY: caller contract.
    let words = unsafe { core::slice::from_raw_parts((b + 16) as *const u64, (stride - 16) / 8) };
    let mut acc = [0u64; 4];
    let mut chunks = words.chunks_exact(4);
    for c in &mut chunks {
        for k in 0..4 {
            acc[k] |= c[k];
        }
    }
    let rest = chunks.remainder().iter().fold(0, |a, &w| a | w);
    (acc[0] | acc[1] | acc[2] | acc[3] | rest) == 0
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
    let class = s.class();
    if s.state() == slab_state::FREE || class >= NUM_CLASSES {
        return None;
    }
    let start = s.data_start();
    let stride = CLASS_STRIDE[class] as usize;
    let off = a.checked_sub(start)?;
    let carved = s.carved() as usize * stride;
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
    if !unsafe { canary_intact(l.block, from, l.stride) } {
        diag::fatal(call, "buffer overflow past the end of block", p)
    }
    (l, n)
}

/// The secure free's check of span `p`: the canary bytes between its
/// requested end and its guard page are intact (a write past the end that
/// did not reach the guard page, which faults at once). A pointer that is
/// not a live span is left to the free, which reports it.
pub(crate) fn check_span(p: *mut u8) {
    if let Some(h) = hakmem_superslab_backend::span_header(p) {
        if !hakmem_superslab_backend::span_pad_intact(h) {
            diag::fatal("free()", "buffer overflow past the end of block", p)
        }
    }
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
        let b = unsafe { refill(t, class) };
        if b.is_null() {
            crate::set_enomem();
            return b;
        }
        b as usize
    } else {
        cached as usize
    };
    let stride = CLASS_STRIDE[class] as usize;
    // SAFETY: the block is ours now, `stride` bytes, a multiple of 16.
    if !unsafe { has_free_mark(b as *mut u8) && still_zero(b, stride) } {
        diag::fatal("malloc()", "write after free into block", b as *const u8)
    }
    // SAFETY: as above.
    let words = unsafe { core::slice::from_raw_parts_mut(b as *mut u64, 2) };
    words[0] = size_word(b, n, h);
    words[1] = live_word(b);
    // SAFETY: as above.
    let bytes = unsafe { core::slice::from_raw_parts_mut(b as *mut u8, stride) };
    bytes[h + n.max(USER_MIN)..].fill(canary());
    (b + h) as *mut u8
}

/// Blocks a secure refill takes from the slabs at once (into the
/// thread's checked cache), so that the slab round trip is paid once per
/// batch, not per allocation.
const REFILL_BATCH: u32 = 16;

/// A miss of the secure cache of `class`: takes a batch of blocks from the
/// thread's slabs, checks each (a block start of its slab carrying the
/// free mark; the slab list's next link too, before the next refill
/// follows it), keeps all but the first in the secure cache (links
/// encoded) and returns the first, or null when memory is exhausted.
///
/// # Safety
/// `t` is the calling thread's state; no reference into it is live.
#[cold]
unsafe fn refill(t: *mut ThreadState, class: usize) -> *mut u8 {
    // SAFETY: caller contract.
    let ts = unsafe { &mut *t };
    if ts.local.lifecycle() == Lifecycle::Exited {
        // The exit hook already ran: one block, through the facade's
        // temporary heap (nothing is kept for this thread).
        // SAFETY: forwarded contract.
        let b = unsafe { crate::refill_block(t, class) };
        if !b.is_null() {
            check_taken(b);
        }
        return b;
    }
    let room = default_cap(class).saturating_sub(ts.quarantine.cached[class] as u32);
    let want = room.clamp(1, REFILL_BATCH);
    // SAFETY: our registered heap.
    let c = unsafe {
        hakmem_refill_engine::take_chain(ts.local.parts_mut().0, class, want, check_taken)
    };
    crate::stats::tick(ts);
    if c.n == 0 {
        return ptr::null_mut();
    }
    // Every block was checked by `check_taken` as the engine took it
    // (carved ones are fresh).
    let first = c.head;
    // SAFETY: `first` heads the chain we took; its link is in clear.
    let mut b = unsafe { hakmem_ptr_bridge::block_next(first) };
    for _ in 1..c.n {
        // SAFETY: as above.
        let next = unsafe { hakmem_ptr_bridge::block_next(b) };
        if !ts.quarantine.cache_push(class, b) {
            // SAFETY: a free block of our slab; no room after all (cannot
            // happen: `want` fits), so back to the slab.
            unsafe { give_back(t, b as usize) };
        }
        b = next;
    }
    first
}

/// Stops the program unless `b`, a block a refill is about to take from a
/// slab's free list (or the exited-thread path took), is a block start of
/// a live slab that carries the free mark: a corrupted link is reported,
/// not followed.
fn check_taken(b: *mut u8) {
    if !is_free_block(b) {
        diag::fatal("malloc()", "corrupted free-list link to", b)
    }
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
    let (mut c, _) = unsafe { (*t).local.front_mut().take(class, u32::MAX) };
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
    if ts.local.lifecycle() == Lifecycle::Exited {
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
        q.bytes -= CLASS_STRIDE[unsafe { slab_meta_of(e as *mut u8) }.class()] as usize;
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
    let class = s.class();
    let mine = s.owner() == ts.local.id();
    if mine && ts.local.lifecycle() != Lifecycle::Exited && ts.quarantine.cache_push(class, bp) {
        return;
    }
    if mine {
        // SAFETY: a free block of our slab: through the cache's flush, which
        // returns it to the slab's local list.
        unsafe {
            ts.local.front_mut().push_chain(class, bp, bp, 1);
            if let Err(bad) = ts.local.flush(class) {
                diag::invalid_pointer("free()", bad);
            }
        }
        return;
    }
    // SAFETY: `b` is a freed block start of a live superslab.
    match unsafe { hakmem_refill_engine::free_remote(ts.local.parts_mut().0, bp) } {
        FreeOutcome::Remote => {}
        FreeOutcome::NotAllocated => diag::invalid_pointer("free()", bp),
        FreeOutcome::Adopted { class } => {
            // SAFETY: we own the block's slab now.
            unsafe {
                ts.local.front_mut().push_chain(class, bp, bp, 1);
                if let Err(bad) = ts.local.flush(class) {
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
        unsafe { spill(t, class) };
    }
}

/// Returns every block of the secure cache of `class` to its slab, with
/// one pass of the thread cache's flush (not one per block).
///
/// # Safety
/// `t` is the calling thread's state; no reference into it is live.
unsafe fn spill(t: *mut ThreadState, class: usize) {
    // SAFETY: caller contract.
    let ts = unsafe { &mut *t };
    let head = core::mem::replace(&mut ts.quarantine.cache[class], ptr::null_mut());
    ts.quarantine.cached[class] = 0;
    // Re-link the chain in clear, as the thread cache links it.
    let mut b = head;
    let mut tail = ptr::null_mut();
    let mut n = 0;
    while !b.is_null() {
        tail = b;
        n += 1;
        // SAFETY: a cached free block: its first word is the encoded
        // link, rewritten in clear.
        unsafe {
            let next = decode_link(b as usize, word(b as usize, 0) as usize) as *mut u8;
            if !next.is_null() && !is_free_block(next) {
                diag::fatal("free()", "corrupted free-list link to", next)
            }
            hakmem_ptr_bridge::set_block_next(b, next);
            b = next;
        }
    }
    if n > 0 {
        // The chain goes through the thread cache's flush, which
        // returns each block to its slab (locally or remotely).
        // SAFETY: a chain of `n` free blocks of `class` we hold.
        unsafe {
            ts.local.front_mut().push_chain(class, head, tail, n);
            if let Err(bad) = ts.local.flush(class) {
                diag::invalid_pointer("free()", bad);
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
