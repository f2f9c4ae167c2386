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
//!   keeps; links encoded with the secret and authenticated by a keyed
//!   check in word 2, see `cache.rs`) before they go back to their slab;
//!   a block handed out again must still be zero there (a write after
//!   free is caught) and carry the free mark; a cache link must pass its
//!   check, and a slab-list link (as `take_chain` walks it) must name a
//!   marked block start, before it is followed (a corrupted free-list link
//!   is caught, not followed);
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

use hakmem_ace_learning::POLICY;
use hakmem_ptr_bridge::{
    class_for, has_free_mark, set_free_mark, slab_meta_of, CLASS_STRIDE, MIN_ALIGN, NUM_CLASSES,
};
use hakmem_refill_engine::{FreeOutcome, Lifecycle};

mod block;
mod cache;
mod zero;
use block::{check_live, fill_canary, is_free_block, live_fast, still_zero, zero_contents};
pub(crate) use cache::Quarantine;
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
    // getrandom, or (no entropy yet, early boot) an address and the clock,
    // so the secret still differs from run to run.
    let s = hakmem_superslab_backend::os::random_u64();
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

/// Reads word `i` of block `b`.
///
/// # Safety
/// `b` is a carved block of at least `8 * (i + 1)` bytes.
#[inline]
unsafe fn word(b: usize, i: usize) -> u64 {
    // SAFETY: caller contract.
    unsafe { *((b + 8 * i) as *const u64) }
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
    // Words the block must still hold zero from: 3 for a cached block
    // (word 2 is its link check, authenticated by the pop), 2 otherwise.
    let (b, zero_from) = if cached.is_null() {
        // SAFETY: forwarded contract.
        let b = unsafe { refill(t, class) };
        if b.is_null() {
            crate::set_enomem();
            return b;
        }
        (b as usize, 2)
    } else {
        (cached as usize, 3)
    };
    let stride = CLASS_STRIDE[class] as usize;
    // SAFETY: the block is ours now, `stride` bytes, a multiple of 16.
    if !unsafe { has_free_mark(b as *mut u8) && still_zero(b, zero_from, stride) } {
        diag::fatal("malloc()", "write after free into block", b as *const u8)
    }
    // SAFETY: as above.
    unsafe {
        let w = b as *mut u64;
        *w = size_word(b, n, h);
        *w.add(1) = live_word(b);
        *w.add(2) = 0;
        fill_canary(b, h + n.max(USER_MIN), stride);
    }
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
    let room = ts.quarantine.cache_room(class);
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
            unsafe { give_back(t, b as usize, class) };
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
        // SAFETY: forwarded contract; `c` was pushed on the cache of
        // `class` by the free path, which found it in a slab of `class`.
        unsafe { free_block(t, c, class) };
        c = next;
    }
}

/// Secure free of user pointer `p` (any thread), which the free path found
/// in a live slab of class `class`: check it, zero it, and put it in
/// quarantine.
///
/// # Safety
/// `t` is the calling thread's state; no reference into it is live; `p`
/// lies in a live superslab, in a slab of class `class`.
pub(crate) unsafe fn free_block(t: *mut ThreadState, p: *mut u8, class: usize) {
    // SAFETY: caller contract.
    let (l, _) = match unsafe { live_fast(p, class) } {
        Some(found) => found,
        None => check_live("free()", p),
    };
    let (b, stride) = (l.block, l.stride);
    // SAFETY: the block is being freed: ours to write.
    unsafe {
        zero_contents(b, stride);
        *(b as *mut usize) = 0;
        set_free_mark(b as *mut u8);
    }
    // SAFETY: our own state, no reference into it is live.
    let ts = unsafe { &mut *t };
    if ts.local.lifecycle() == Lifecycle::Exited {
        // No exit hook will drain a quarantine: back at once.
        // SAFETY: as above.
        unsafe { give_back(t, b, class) };
        return;
    }
    ts.quarantine.put(b, class, stride);
    // SAFETY: our own state (no reference kept across the calls).
    while let Some((e, c)) = unsafe { (*t).quarantine.pop_due(false) } {
        // SAFETY: a block we quarantined: free, marked, in a live slab.
        unsafe { give_back(t, e, c) };
    }
}

/// Returns quarantined block `b` of `class` (free, marked, zeroed) to the
/// thread's secure cache, or to its slab.
///
/// # Safety
/// `t` is the calling thread's state; no reference into it is live.
unsafe fn give_back(t: *mut ThreadState, b: usize, class: usize) {
    // SAFETY: caller contract.
    let ts = unsafe { &mut *t };
    let bp = b as *mut u8;
    // SAFETY: `b` is a block of a live slab.
    let s = unsafe { slab_meta_of(bp) };
    let mine = s.owner() == ts.local.id();
    if mine && ts.local.lifecycle() != Lifecycle::Exited && ts.quarantine.cache_push(class, bp) {
        return;
    }
    if mine {
        // SAFETY: a free block of our slab: through the cache's flush, which
        // returns it to the slab's local list.
        unsafe { to_slabs(ts, class, bp, bp, 1) };
        return;
    }
    // SAFETY: `b` is a freed block start of a live superslab.
    match unsafe { hakmem_refill_engine::free_remote(ts.local.parts_mut().0, bp) } {
        FreeOutcome::Remote => {}
        FreeOutcome::NotAllocated => diag::invalid_pointer("free()", bp),
        FreeOutcome::Adopted { class } => {
            // SAFETY: we own the block's slab now.
            unsafe { to_slabs(ts, class, bp, bp, 1) };
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
    while let Some((b, class)) = unsafe { (*t).quarantine.pop_due(true) } {
        // SAFETY: as above.
        unsafe { give_back(t, b, class) };
    }
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
    // The chain re-linked in clear, as the thread cache links it.
    let (head, tail, n) = ts.quarantine.cache_take(class);
    if n > 0 {
        // The chain goes through the thread cache's flush, which
        // returns each block to its slab (locally or remotely).
        // SAFETY: a chain of `n` free blocks of `class` we hold.
        unsafe { to_slabs(ts, class, head, tail, n) };
    }
}

/// Returns a chain of `n` free blocks of `class` (`head` to `tail`, linked
/// in clear) to their slabs through the thread cache's flush (locally, or
/// remotely for another thread's slab).
///
/// # Safety
/// The blocks are free blocks of `class` that the caller holds, linked as
/// the thread cache links them.
unsafe fn to_slabs(ts: &mut ThreadState, class: usize, head: *mut u8, tail: *mut u8, n: u32) {
    // SAFETY: caller contract.
    unsafe { ts.local.front_mut().push_chain(class, head, tail, n) };
    // SAFETY: our own cache, just pushed.
    if let Err(bad) = unsafe { ts.local.flush(class) } {
        diag::invalid_pointer("free()", bad);
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
