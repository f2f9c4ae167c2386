//! hakmem: a two-speed memory allocator.
//!
//! As a Rust program's global allocator (a cdylib too: it loads with
//! `dlopen`, see docs/thread-state.md):
//!
//! ```
//! #[global_allocator]
//! static GLOBAL: hakmem::HakMem = hakmem::HakMem;
//!
//! fn main() {
//!     let v: Vec<u64> = (0..1000).collect();
//!     assert_eq!(v.iter().sum::<u64>(), 499_500);
//!     assert!(hakmem::owns(v.as_ptr().cast()));
//!     let s = hakmem::stats();
//!     assert!(s.rss_bytes > 0);
//! }
//! ```
//!
//! The C-style API is usable directly too:
//!
//! ```
//! let p = hakmem::malloc(100);
//! assert!(!p.is_null());
//! assert!(hakmem::usable_size(p) >= 100);
//! // SAFETY: `p` came from hakmem::malloc and is freed once.
//! unsafe { hakmem::free(p) };
//! ```
//!
//! `HakMemSecure` is the same allocator with the hardened checks of the
//! secure mode (docs/security.md); `libhakmem.so` (package
//! `hakmem-preload`) replaces `malloc` for any program with `LD_PRELOAD`.
//!
//! This crate is the facade: the route (tiny / mid / span) taken at every
//! malloc and free, the `GlobalAlloc` implementation, configuration and
//! statistics. The work is done by the boxes it calls:
//!
//! ```text
//! malloc(n) ─ n ≤ 64 KiB ─ route_of(n) ─ tls-front pop ── hit: return   (hot)
//!                                              └─ miss: refill-engine  (warm)
//!                                                   └─ superslab-backend (cold)
//!           └ n > 64 KiB ─ superslab-backend span (mmap)
//! free(p) ── registry: superslab ── slab owner == me ── tls-front push   (hot)
//!                                          └─ else: remote-queue         (warm)
//!         └ registry: span ── unmap;  unknown ── one-line diagnostic
//! ```
//!
//! **Architecture Invariant:** nothing reachable from [`malloc`] or [`free`]
//! allocates from the global heap: every box below is `no_std` without
//! `alloc`, and this crate only uses `core` APIs on those paths.

// The modules, bottom to top (docs/architecture.md, "The facade's
// modules"): sys, once, env, foreign, diag, then the rest.
pub mod ace;
mod diag;
mod env;
mod foreign;
mod once;
mod sys;
pub use ace::debug;
mod config;
mod fork;
/// The slab-migration controller API, for the acceptance test
/// (`cargo xtask acceptance`) only: behind the `migration-api` feature.
#[cfg(feature = "migration-api")]
pub mod migrate;
mod secure;
mod size;
mod stats;
mod thread;

use core::alloc::{GlobalAlloc, Layout};
use core::ptr;
use core::sync::atomic::Ordering::Relaxed;

use hakmem_ptr_bridge::{
    class_for, route_of, slab_meta_at, SlabMeta, CLASS_SIZE, MAX_ROUTED_SIZE, MIN_ALIGN,
    NUM_CLASSES,
};
pub use hakmem_ptr_bridge::{set_span_threshold, span_threshold};
use hakmem_refill_engine::FreeResult;
pub use hakmem_superslab_backend::page_size;
use hakmem_superslab_backend::registry;

pub use config::report_at_exit;
#[doc(hidden)]
pub use env::{name_cstr, nul_terminated};
pub use fork::{
    add_fork_handlers, defer_fork_registration, fork_child, fork_handlers_registered, fork_parent,
    fork_prepare, install_fork_handlers, libc_register_atfork, register_atfork,
    register_fork_handlers_now, AtforkHandler, RegisterFn,
};
pub use once::InitOnce;
pub use secure::{secure_mode, HakMemSecure};
pub use size::{foreign_pointer, realloc, realloc_aligned, usable_size};
pub use stats::{print_report, stats, ClassStats, ReportFormat, Stats};
pub use sys::write_stderr;
pub use thread::flush_thread;

/// The allocator, for `#[global_allocator]`.
#[derive(Clone, Copy, Debug, Default)]
pub struct HakMem;

/// Allocates from class `class` (hot path inlined into callers).
///
/// Call tree: pop the thread cache of the class and return; on a miss →
/// [`alloc_miss`] (cold); a thread with no state yet (its first call, or
/// after its exit hook) misses too, its TLS word pointing at a shared state
/// with empty lists. Cost of the whole `malloc` hit in `libhakmem.so`
/// (x86-64, objdump): 15 instructions to `ret` — size check 2, route
/// lookup 4 (`lea`, `shr`, `lea`, load), state pointer 2 (GOT load of the
/// TLS offset + `fs:` load), pop 7 (head load and test 3, link load and
/// head store 2, room, free-mark clear).
/// `cargo run --release -p hakmem-bench -- instructions --size 64,1024`
/// measures malloc+free pairs with callgrind: 64.08 per pair for the C
/// batch loop under LD_PRELOAD, loop included, and 60.18 in the Rust
/// harness, whose `dealloc` is [`free_sized_layout`] (55.17 with
/// [`free`]); see docs/benchmarks.md and docs/thread-state.md.
///
/// `size` and `align` are the request (the secure mode, whose cache is
/// always empty, lays its blocks out from them on the miss path).
#[inline(always)]
fn alloc_class(class: usize, size: usize, align: usize) -> *mut u8 {
    let t = thread::state();
    // SAFETY: `t` is this thread's state, or a never-written shared one
    // (FRESH or EXITED_STATE, whose lists are empty, so the pop misses
    // without writing); no other reference is live.
    let p = unsafe { (*t).local.front_mut().pop(class) };
    if !p.is_null() {
        return p;
    }
    alloc_miss(size, class, align)
}

/// Cache miss (or a thread's first call): create the thread's state if
/// needed, then refill (or, in the secure mode, take the secure path for
/// the request `size`/`align`). (`size` comes first: it is still in `rdi`
/// on the fast path, so the hit path needs no register move for it.)
#[cold]
#[inline(never)]
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
fn alloc_miss(size: usize, class: usize, align: usize) -> *mut u8 {
    // The mode must be known before the first block is handed out.
    config::init();
    if class >= NUM_CLASSES && !secure::on() {
        // A span twin: the size is above the span threshold.
        return alloc_span(CLASS_SIZE[class - NUM_CLASSES] as usize, MIN_ALIGN);
    }
    // SAFETY: `t` is the state `run` gives this call.
    thread::run(|t| unsafe { alloc_with(t, size, class, align) })
}

/// [`alloc_miss`] with the thread's state: the secure path, or a refill.
/// A named function rather than the closure's body, so that it can join
/// the start-up group of functions (docs/benchmarks.md, "Footprint cuts").
///
/// # Safety
/// `t` is the state [`thread::run`] gives the call; no reference into it
/// is live.
#[cold]
#[inline(never)]
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
unsafe fn alloc_with(
    t: *mut thread::ThreadState,
    size: usize,
    class: usize,
    align: usize,
) -> *mut u8 {
    if secure::on() {
        // SAFETY: caller contract.
        return unsafe { secure::alloc(t, size, align) };
    }
    // SAFETY: caller contract.
    hand_out(unsafe { refill_block(t, class) })
}

/// One block of `class` for the calling thread:
/// [`LocalHeap::alloc_slow`](hakmem_refill_engine::LocalHeap::alloc_slow)
/// (a refill, or the exited-thread hand-out), then the counters are
/// published when due. Null when memory is exhausted. The block still
/// carries its free mark.
///
/// # Safety
/// `t` is the state [`thread::run`] gives the call (registered, or the
/// temporary state of an exited thread); no reference into it is live.
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
unsafe fn refill_block(t: *mut thread::ThreadState, class: usize) -> *mut u8 {
    // SAFETY: caller contract.
    let ts = unsafe { &mut *t };
    // SAFETY: caller contract: our own state, registered or exited.
    let p = unsafe { ts.local.alloc_slow(class) };
    stats::publish_if_due(ts);
    p
}

/// The slow path's hand-out of a slab block: erases its free mark (the
/// fast path's pop does the same), or sets `errno` on a null.
#[inline]
fn hand_out(p: *mut u8) -> *mut u8 {
    if p.is_null() {
        set_enomem();
    } else {
        // SAFETY: `p` is a free slab block (at least 16 bytes) that the
        // refill just took for the caller.
        unsafe { hakmem_ptr_bridge::clear_free_mark(p) };
    }
    p
}

/// Sets `errno = ENOMEM` (the C API's failure report; harmless for Rust
/// callers), so that the C wrappers can return the facade's result as is.
#[cold]
fn set_enomem() {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() = libc::ENOMEM };
}

/// Allocates `size` bytes aligned to 16. Null (and `errno = ENOMEM`) when
/// memory is exhausted or `size` cannot be met.
#[inline(always)]
pub fn malloc(size: usize) -> *mut u8 {
    if size <= MAX_ROUTED_SIZE {
        return alloc_class(route_of(size), size, MIN_ALIGN);
    }
    alloc_span(size, MIN_ALIGN)
}

#[cold]
#[inline(never)]
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
fn alloc_span(size: usize, align: usize) -> *mut u8 {
    // The secure mode hands out only zeroed memory: a reused span is
    // cleared (fresh ones come zeroed from the OS).
    alloc_span_z(size, align, secure::on())
}

fn alloc_span_z(size: usize, align: usize, zero: bool) -> *mut u8 {
    // A thread without a state takes the span cache's lock below: the fork
    // handlers must be in the table first (a process's first call may be
    // this one).
    install_fork_handlers();
    let mut p = match thread::peek() {
        // SAFETY: our own state, no reference into it is live.
        Some(t) => unsafe { (*t).local.alloc_span(size, align, zero) },
        None => core::ptr::null_mut(),
    };
    if p.is_null() {
        p = hakmem_superslab_backend::span_alloc(size, align, zero);
    }
    if p.is_null() {
        set_enomem();
    }
    // A span event for the learning layer (one relaxed load when learning
    // is off).
    else if hakmem_ace_learning::POLICY.observing() {
        ace::span_event(hakmem_ace_learning::EventKind::SpanMap, size);
    }
    p
}

/// Allocates `size` bytes aligned to `align` (a power of two; any value a
/// `Layout` can carry). Null when the request cannot be met.
#[inline]
pub fn malloc_aligned(size: usize, align: usize) -> *mut u8 {
    debug_assert!(align.is_power_of_two());
    if align <= MIN_ALIGN {
        return malloc(size);
    }
    match class_for(size, align) {
        Some(c) => alloc_class(c, size, align),
        None => alloc_span(size, align),
    }
}

/// Allocates `size` zeroed bytes aligned to `align`.
pub fn calloc_aligned(size: usize, align: usize) -> *mut u8 {
    if class_for(size, align).is_none() {
        // Fresh spans come zeroed from the OS; cached ones are cleared.
        return alloc_span_z(size, align.max(MIN_ALIGN), true);
    }
    let p = malloc_aligned(size, align);
    if !p.is_null() {
        // SAFETY: `p` has at least `size` writable bytes.
        unsafe { ptr::write_bytes(p, 0, size) };
    }
    p
}

/// Allocates `size` zeroed bytes aligned to 16.
pub fn calloc(size: usize) -> *mut u8 {
    calloc_aligned(size, MIN_ALIGN)
}

/// Frees `p` (null is ignored). A double free, or a pointer into hakmem's
/// memory that is not a block it handed out, stops the program with a
/// one-line diagnostic (SIGABRT), as glibc does; a pointer outside every
/// hakmem mapping does too, unless `HAKMEM_FOREIGN_FREE` says otherwise.
///
/// Call tree: registry says superslab → slab record (mask + shift) →
/// free mark already set → [`free_marked`] (double free, abort); else set
/// it → owner is this thread → push on the thread cache; another owner (or
/// none) → [`free_remote_path`]; not a superslab → [`free_other`] (span,
/// null, or invalid pointer). Cost of the owner hit in `libhakmem.so`
/// (x86-64, objdump): 29 instructions to `ret` — registry 8 (the table's
/// mask and base are loaded, since the table is mapped on first use), free mark
/// check and store 5, record address 4, class and owner loads 2, state
/// pointer 2 (GOT load + `fs:` load), owner compare with the state's heap
/// id 2, push with statistics and cap test 6.
///
/// # Safety
/// `p` is null or was returned by this allocator and not freed since
/// (breaking this is what the checks catch, not undefined behaviour of
/// hakmem's: see docs/security.md).
#[inline(always)]
pub unsafe fn free(p: *mut u8) {
    let kind = registry::kind_of(p as usize);
    if registry::is_superslab(kind) {
        // SAFETY: the registry says `p` is inside a live superslab with
        // slab shift `kind`; a pointer of ours has 16 bytes behind it.
        unsafe {
            if hakmem_ptr_bridge::has_free_mark(p) {
                free_marked(p);
            }
            hakmem_ptr_bridge::set_free_mark(p);
        }
        // SAFETY: the registry says `p` is inside a live superslab with
        // slab shift `kind`.
        let m = unsafe { slab_meta_at(p, kind) };
        let class = m.class();
        let owner = m.owner();
        let t = thread::state();
        // SAFETY: `t` is this thread's state, or a never-written shared one
        // (fresh or exited thread) whose heap id (unregistered or exited)
        // is no slab's owner, so only a live state is pushed on; no other
        // reference into it is live.
        unsafe {
            if owner == (*t).local.id() {
                return push_owned(t, class, p);
            }
            return free_remote_path(p, m);
        }
    }
    // SAFETY: forwarded contract.
    unsafe { free_other(p) }
}

/// [`free`] of `p`, which the caller says holds `size` bytes at 16-byte
/// alignment (`GlobalAlloc::dealloc`'s layout, C++ sized `delete`,
/// `free_sized`): the thread cache's list is picked from the size, not
/// from the slab record, so the push's address does not wait for the
/// registry and record loads, and neither does the next `malloc`'s pop of
/// the same list (they still decide, beside it, whether the fast push is
/// right: the record's class must equal the size's, the slab must be this
/// thread's and the block must not carry the free mark; anything else —
/// a size of another class, as after an in-place `realloc`, another
/// thread's slab, a double free, a span, a foreign pointer — takes
/// [`free`]'s path, out of line). A free of one block that the next
/// `malloc` takes again ran at 4.7 ns per operation with [`free`] and 2.5
/// with this (tiny-hot batch=1, docs/benchmarks.md, "the sized free").
/// Cost: 60.18 instructions per malloc+free pair in the Rust harness
/// (`hakmem-bench instructions --size 64`), 55.17 with [`free`]: the
/// size's route (a `min`, shift and table load) and the class compare.
///
/// # Safety
/// As for [`free`].
#[inline(always)]
pub unsafe fn free_sized_layout(p: *mut u8, size: usize) {
    // No branch on the size (a `min`, not a test): a size above the table
    // gets the last class's route (or its span twin, with the span
    // threshold lowered), which a span never matches (spans are not in
    // superslabs) and a block of that class matches rightly whatever the
    // size says; a twin (`class + NUM_CLASSES`) never equals a record's
    // class, so such a size always takes `free`'s path.
    let route = route_of(size.min(MAX_ROUTED_SIZE));
    let kind = registry::kind_of(p as usize);
    if registry::is_superslab(kind) {
        // SAFETY: the registry says `p` is inside a live superslab with
        // slab shift `kind`, which is all `slab_meta_at` needs.
        let m = unsafe { slab_meta_at(p, kind) };
        let t = thread::state();
        // SAFETY: `t` is this thread's state, or a never-written shared one
        // (fresh or exited thread) whose heap id owns no slab, so the push
        // below only ever writes a live state, and no other reference into
        // it is live. `p` is inside a live superslab, and a pointer of ours
        // has 16 bytes behind it, so the mark's load is in bounds; when
        // the test passes, `p` is an unmarked block of this thread's slab
        // of class `route` being freed (the caller's contract), so writing
        // the mark and pushing it on the list of `route` is what `free`
        // does with it.
        unsafe {
            if m.class() == route
                && m.owner() == (*t).local.id()
                && !hakmem_ptr_bridge::has_free_mark(p)
            {
                hakmem_ptr_bridge::set_free_mark(p);
                return push_owned(t, route, p);
            }
        }
    }
    // SAFETY: forwarded contract.
    unsafe { free_out_of_line(p) }
}

/// [`free`], kept out of line: what [`free_sized_layout`] does not handle
/// itself (another class than the size's, another thread's slab, a double
/// free, a span, a foreign pointer), so that its inlined part stays small.
///
/// # Safety
/// As for [`free`].
#[inline(never)]
unsafe fn free_out_of_line(p: *mut u8) {
    // SAFETY: forwarded contract.
    unsafe { free(p) }
}

/// Frees `p`, which the caller says was allocated with `size` bytes (C++
/// sized `delete`, C23 `free_sized`). The default mode does not check it:
/// it uses it to pick the thread cache's list early
/// ([`free_sized_layout`]; a size of another class than the block's just
/// takes [`free`]'s path); the secure mode, which records every block's
/// exact size, stops the program with `hakmem: <call>: size mismatch for
/// 0x…` when it differs.
///
/// # Safety
/// As for [`free`].
#[inline]
pub unsafe fn free_with_size(p: *mut u8, size: usize, call: &str) {
    if secure::on() {
        sized_check(p, size, call);
    }
    // SAFETY: forwarded contract.
    unsafe { free_sized_layout(p, size) }
}

#[cold]
#[inline(never)]
fn sized_check(p: *mut u8, size: usize, call: &str) {
    if !p.is_null() && registry::is_superslab(registry::kind_of(p as usize)) {
        let n = secure::live_size(call, p);
        if n != size {
            diag::fatal(call, "size mismatch for", p);
        }
    }
}

/// A free of a block that carries its free mark: it is already free.
#[cold]
#[inline(never)]
fn free_marked(p: *mut u8) -> ! {
    diag::double_free("free()", p)
}

/// The owner's free of `p`, marked free, into its thread cache of `class`
/// (flushing when the list is over its cap): the last step of [`free`] and
/// [`free_sized_layout`].
///
/// # Safety
/// `t` is the calling thread's live state (no other reference into it is
/// live), and `p` a block of class `class` of a slab it owns, marked free.
#[inline(always)]
unsafe fn push_owned(t: *mut thread::ThreadState, class: usize, p: *mut u8) {
    // SAFETY: caller contract.
    unsafe {
        if (*t).local.front_mut().push(class, p) {
            flush_cold(t, class);
        }
    }
}

#[cold]
#[inline(never)]
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
unsafe fn flush_cold(t: *mut thread::ThreadState, class: usize) {
    config::init();
    if secure::on() {
        // SAFETY: forwarded contract.
        return unsafe { secure::free_cached(t, class) };
    }
    // SAFETY: `t` is this thread's state; no other reference is live.
    unsafe {
        let ts = &mut *t;
        if let Err(bad) = ts.local.flush_slow(class) {
            diag::invalid_pointer("free()", bad);
        }
        stats::publish_if_due(ts);
    }
}

/// A free of a block of another thread's slab (or of an ownerless one):
/// [`LocalHeap::free_slow`](hakmem_refill_engine::LocalHeap::free_slow)
/// does the rest down in the engine (the pending batch, the push to the
/// slab, adoption of a FULL slab and the push of the adopted block on the
/// cache, the tick) and says whether the pointer was valid; the counters
/// are published when due.
///
/// # Safety
/// `p` is being freed and `m` is its slab record (the registry said `p` is
/// in a live superslab); no reference into the thread state is live.
/// (The arguments are those [`free`] already holds in `rdi`/`rsi`, so its
/// owner-hit path needs no extra register move.)
#[cold]
#[inline(never)]
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
unsafe fn free_remote_path(p: *mut u8, m: &SlabMeta) {
    thread::run(|t| {
        if secure::on() {
            // SAFETY: forwarded contract; `t` is the state `run` gives.
            return unsafe { secure::free_block(t, p, m.class()) };
        }
        // SAFETY: `t` is the state `run` gives, with no live reference.
        let ts = unsafe { &mut *t };
        // SAFETY: caller contract.
        match unsafe { ts.local.free_slow(p, m) } {
            FreeResult::Invalid(bad) => diag::invalid_pointer("free()", bad),
            FreeResult::Done => stats::publish_if_due(ts),
        }
    })
}

/// [`free`] for what is not in a superslab: null, a span, or a
/// pointer that is not hakmem's.
///
/// # Safety
/// `p` is null or being freed.
#[cold]
#[inline(never)]
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
unsafe fn free_other(p: *mut u8) {
    if p.is_null() {
        return;
    }
    match registry::kind_of(p as usize) {
        registry::KIND_SPAN | registry::KIND_SPAN_ALIGNED => {
            // A span event for the learning layer.
            if hakmem_ace_learning::POLICY.observing() {
                let n = hakmem_superslab_backend::span_usable_size(p).unwrap_or(0);
                ace::span_event(hakmem_ace_learning::EventKind::SpanUnmap, n);
            }
            if secure::on() {
                secure::check_span(p);
            }
            // The stash is handed back by the exit hook; once that ran,
            // nothing may stay stashed.
            let freed = match thread::current() {
                // SAFETY: our own state, no reference into it is live.
                Some(t) => unsafe { (*t).local.free_span(p) },
                None => hakmem_superslab_backend::span_free(p),
            };
            if !freed {
                // A span kept in this thread's stash keeps its registry
                // entry (its header is invalid): a second free lands here.
                if freed_span(p) {
                    diag::double_free("free()", p);
                }
                diag::invalid_pointer("free()", p);
            }
        }
        _ => {
            if secure::is_zero_block(p) {
                // The secure mode's malloc(0) pointer: nothing to free.
                return;
            }
            let h = FOREIGN_FREE.load(Relaxed);
            if !h.is_null() {
                // SAFETY: only `set_foreign_free_handler` stores here, and it
                // stores a `ForeignFreeHandler` cast to a data pointer.
                let h: ForeignFreeHandler = unsafe { core::mem::transmute(h) };
                // SAFETY: the handler's contract is the caller's of `free`.
                if unsafe { h(p) } {
                    return;
                }
            }
            if freed_span(p) {
                diag::double_free("free()", p);
            }
            diag::foreign("free()", p)
        }
    }
}

/// True when `p` (which the registry no longer knows, or whose span
/// chunk has no valid header) lies in the mapping
/// of a span that was freed and is still kept for reuse (this thread's
/// stash, or the shared span cache): then `p` was ours and is already free.
/// A freed span whose mapping went back to the OS cannot be told from a
/// foreign pointer; it stops the program too, by default (see
/// docs/security.md).
#[cold]
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
fn freed_span(p: *mut u8) -> bool {
    // SAFETY: our own state, no reference into it is live.
    let stashed = thread::peek().is_some_and(|t| unsafe { (*t).local.stash_holds(p) });
    stashed || hakmem_superslab_backend::span_cache_holds(p)
}

/// A handler for frees of pointers hakmem did not allocate (for example
/// to forward them to the next allocator in the chain). Returns true when
/// it took care of the pointer.
pub type ForeignFreeHandler = unsafe fn(*mut u8) -> bool;

static FOREIGN_FREE: core::sync::atomic::AtomicPtr<()> =
    core::sync::atomic::AtomicPtr::new(ptr::null_mut());

/// Installs (or removes) the handler that [`free`] calls, on its slow path
/// and with no lock held, for a pointer that is not hakmem's. Without one,
/// such a pointer gets a one-line diagnostic and is left alone.
pub fn set_foreign_free_handler(h: Option<ForeignFreeHandler>) {
    let p = h.map_or(ptr::null_mut(), |f| f as *mut ());
    FOREIGN_FREE.store(p, Relaxed);
}

/// The value of environment variable `name`, as `getenv` would return it,
/// read without allocating (and, on glibc, without calling `getenv`: see
/// the facade's `env` module). For `libhakmem.so`'s own settings.
#[doc(hidden)]
pub fn env_var(name: &core::ffi::CStr) -> Option<&'static [u8]> {
    env::var(name)
}

/// Size of a superslab (for `mallinfo`-style reports).
pub const SUPERSLAB_SIZE: usize = hakmem_ptr_bridge::SUPERSLAB_SIZE;

/// Gives memory back to the OS now: the calling thread's caches and slabs
/// are handed back (it stays usable), ownerless slabs that have become
/// empty are released, the pages of free slabs are discarded, empty
/// superslabs and cached spans are unmapped. Other live threads' caches are
/// not touched (they are bounded by the cache caps). Returns the bytes given
/// back to the OS by the last step.
pub fn trim() -> usize {
    // The sweep adopts slabs, which needs an owner id: a fresh thread gets
    // its state.
    if let Some(t) = thread::current() {
        // SAFETY: called outside any allocator call on this thread; `trim`
        // sees no live reference into the state.
        unsafe {
            secure::drain(t);
            let ts = &mut *t;
            ts.local.trim();
            stats::publish_all(ts);
        }
    }
    hakmem_superslab_backend::decay(true)
}

/// Gives back to the OS what no thread holds, without touching any
/// thread's cache or slabs: ownerless slabs whose blocks have all been
/// freed are released (`hakmem_refill_engine::sweep_empty`), then the pages of
/// free slabs, empty superslabs and cached spans go back at once (a forced
/// decay). Any thread may call it, registered or not. Returns the bytes
/// given back by the decay.
pub fn trim_idle() -> usize {
    install_fork_handlers();
    hakmem_refill_engine::sweep_empty();
    hakmem_superslab_backend::decay(true)
}

/// Returns whether hakmem owns the memory at `p` (a block, a span, or any
/// address inside a superslab).
pub fn owns(p: *const u8) -> bool {
    registry::kind_of(p as usize) != registry::KIND_NONE || secure::is_zero_block(p)
}

// SAFETY: every method returns either null or a block of at least
// `layout.size()` bytes aligned to `layout.align()` that no other live
// allocation overlaps; `dealloc`/`realloc` accept exactly the blocks these
// methods returned.
unsafe impl GlobalAlloc for HakMem {
    #[inline(always)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MIN_ALIGN {
            malloc(layout.size())
        } else {
            malloc_aligned(layout.size(), layout.align())
        }
    }

    #[inline(always)]
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        // SAFETY: GlobalAlloc's contract: `p` came from this allocator.
        unsafe {
            if layout.align() <= MIN_ALIGN {
                free_sized_layout(p, layout.size())
            } else {
                free(p)
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        calloc_aligned(layout.size(), layout.align())
    }

    #[inline]
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: GlobalAlloc's contract: `p` is live with `layout`.
        unsafe { realloc_aligned(p, new_size, layout.align()) }
    }
}

pub mod background;
pub mod options;
