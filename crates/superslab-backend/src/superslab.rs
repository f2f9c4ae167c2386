//! Superslab pools: handing FREE slabs to threads, taking empty slabs back,
//! tiering superslabs HOT → DRAINING → FREE, and returning memory to the OS
//! after a delay (walk-through: `docs/memory.md`).
//!
//! Each slab kind has one pool with three lists, all under the pool lock:
//! `hot` (HOT superslabs with at least one FREE slab), `draining` (DRAINING
//! superslabs) and `empty` (FREE superslabs: every slab FREE). A HOT
//! superslab whose slabs are all in use is in no list.

use core::ptr;
use core::sync::atomic::Ordering::{Relaxed, SeqCst};
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize};

use hakmem_ptr_bridge::superslab_tier::{DRAINING, FREE, HOT, UNLISTED};
use hakmem_ptr_bridge::{
    slab_data_start, SlabKind, SlabMeta, SuperslabHeader, CLASS_STRIDE, FIRST_SLAB,
    SUPERSLAB_MAGIC, SUPERSLAB_SIZE,
};
use hakmem_remote_queue::primitive::{SpinGuard, SpinLock};

use crate::guard::guard;
use crate::{os, registry};

/// `in_use` bit of slab 0, which holds the header and is never handed out.
const HEADER_SLAB_BIT: u32 = (1 << FIRST_SLAB) - 1;

/// Superslabs unmapped and slabs discarded per round of [`decay`] (the
/// pool lock is dropped between rounds).
const DECAY_BATCH: usize = 32;

/// Empty superslabs kept per kind (beyond this they are unmapped at once;
/// those kept are unmapped when the decay delay has passed).
pub const MAX_EMPTY_SUPERSLABS: usize = 4;

struct List {
    head: AtomicPtr<SuperslabHeader>,
    len: AtomicUsize,
}

impl List {
    const fn new() -> Self {
        List {
            head: AtomicPtr::new(ptr::null_mut()),
            len: AtomicUsize::new(0),
        }
    }
}

struct Pool {
    lock: SpinLock,
    lists: [List; 3], // indexed by tier: HOT, DRAINING, FREE
}

/// Memory nodes. The machines this project runs on have one NUMA node, so
/// hakmem uses two *logical* nodes that split the address space: node 0
/// below 2^46, node 1 above. A superslab's home node (`SuperslabHeader::node`)
/// starts as the half its address lies in and can be changed by
/// [`move_superslab`]; each node has its own pools, and a thread takes slabs
/// from its own node's pools.
pub const NODES: usize = 2;
const NODE_SPLIT: usize = 1 << 46;

static POOLS: [[Pool; NODES]; SlabKind::COUNT] = [const {
    [const {
        Pool {
            lock: SpinLock::new(),
            lists: [List::new(), List::new(), List::new()],
        }
    }; NODES]
}; SlabKind::COUNT];

/// The start of each node's part of the address space for superslabs.
const NODE_BASE: [usize; NODES] = [0x2000_0000_0000, 0x6000_0000_0000];

/// How far past [`NODE_BASE`] a process's first superslab of a node is
/// asked to go: a per-process random multiple of the superslab size below
/// 16 TiB (2^23 choices), so the node halves stay apart (node 0 below
/// 0x3000_0000_0000, node 1 below 0x7000_0000_0000).
const HINT_SPREAD_SHIFT: u32 = 44;

/// Where the next superslab of each node is asked to go (mmap hint); 0
/// until [`seed_hints`] ran.
static NODE_HINT: [AtomicUsize; NODES] = [AtomicUsize::new(0), AtomicUsize::new(0)];

/// 0: hints not seeded; 1: being seeded; 2: seeded.
static HINTS_SEEDED: AtomicU32 = AtomicU32::new(0);

/// Gives each node's hint its per-process random start, once, before the
/// first superslab is mapped.
///
/// Why random: a free slab block carries its superslab's base address as
/// its free mark (`hakmem_ptr_bridge::free_mark`), and `free` reports a
/// block whose second word holds that value as a double free. With fixed
/// bases the first superslab sat at 0x2000_0000_0000 = 2^45 in every
/// process, a round number that programs store as plain data: gcc's cc1
/// wrote it into a live block (an `ipa_fn_summary` entry) and was stopped
/// with a false "double free". A random base makes the mark a value no
/// program computes by chance, at no cost to the free path.
#[cold]
#[inline(never)]
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
fn seed_hints() {
    match HINTS_SEEDED.compare_exchange(0, 1, SeqCst, SeqCst) {
        Ok(_) => {
            for (i, h) in NODE_HINT.iter().enumerate() {
                let r = os::random_u64() as usize;
                let off = r.wrapping_mul(SUPERSLAB_SIZE) & ((1usize << HINT_SPREAD_SHIFT) - 1);
                h.store(NODE_BASE[i] + off, Relaxed);
            }
            HINTS_SEEDED.store(2, SeqCst);
        }
        Err(_) => {
            while HINTS_SEEDED.load(SeqCst) != 2 {
                core::hint::spin_loop();
            }
        }
    }
}

/// The mmap hint for the next superslab of `node`.
#[inline]
fn next_hint(node: u8) -> usize {
    if HINTS_SEEDED.load(SeqCst) != 2 {
        seed_hints();
    }
    NODE_HINT[node as usize % NODES].fetch_add(2 * SUPERSLAB_SIZE, Relaxed)
}

/// 0 = not set: one node, or all real NUMA nodes (up to NODES).
static NODE_SPREAD: AtomicUsize = AtomicUsize::new(0);

/// Over how many nodes threads are spread (1..=NODES).
#[inline]
pub fn node_spread() -> usize {
    match NODE_SPREAD.load(Relaxed) {
        0 => {
            let n = os::numa_nodes().clamp(1, NODES);
            NODE_SPREAD.store(n, Relaxed);
            n
        }
        n => n,
    }
}

/// Spreads threads over `n` nodes (clamped to 1..=NODES). With one real
/// NUMA node the default is 1: every thread uses node 0's pools, and a
/// second logical node only costs memory; tests spread over both. With
/// several real nodes the default is all of them (see [`node_spread`]).
pub fn set_node_spread(n: usize) {
    NODE_SPREAD.store(n.clamp(1, NODES), Relaxed);
}

/// The node whose half of the address space holds `addr`.
pub fn node_of_address(addr: usize) -> u8 {
    u8::from(addr >= NODE_SPLIT)
}

/// While fewer superslabs than this are mapped, a new one is advised
/// `MADV_NOHUGEPAGE`; later ones keep the system's policy. With THP in
/// `always` mode the kernel backs the first touch of a 2 MiB-aligned range
/// with a 2 MiB page, so a program that allocates a few bytes would hold
/// 2 MiB per superslab; a heap past 16 MiB still gets huge pages for the
/// rest (docs/memory.md, "Huge pages and the registry").
pub const SMALL_HEAP_SUPERSLABS: usize = 8;

pub(crate) static SUPERSLABS_MAPPED: AtomicUsize = AtomicUsize::new(0);
static DECAY_MS: AtomicU32 = AtomicU32::new(500);
static LAST_DECAY_MS: AtomicU32 = AtomicU32::new(0);

fn pool(kind: SlabKind, node: u8) -> &'static Pool {
    &POOLS[kind as usize][node as usize % NODES]
}

fn all_pools() -> impl Iterator<Item = &'static Pool> {
    POOLS.iter().flat_map(|k| k.iter())
}

/// Links `ss` at the head of list `which` (pool lock held).
///
/// # Safety
/// `ss` is a live superslab of the pool's kind and in no list.
unsafe fn link(p: &Pool, which: u8, ss: *mut SuperslabHeader) {
    let l = &p.lists[which as usize];
    // SAFETY: caller contract; list fields are guarded by the pool lock.
    unsafe {
        debug_assert_eq!((*ss).listed.load(Relaxed), UNLISTED);
        let head = l.head.load(Relaxed);
        (*ss).prev.store(ptr::null_mut(), Relaxed);
        (*ss).next.store(head, Relaxed);
        if !head.is_null() {
            (*head).prev.store(ss, Relaxed);
        }
        (*ss).listed.store(which, Relaxed);
    }
    l.head.store(ss, Relaxed);
    l.len.fetch_add(1, Relaxed);
}

/// Unlinks `ss` from whatever list holds it (pool lock held); no-op when
/// it is in none.
///
/// # Safety
/// `ss` is a live superslab of the pool's kind.
unsafe fn unlink(p: &Pool, ss: *mut SuperslabHeader) {
    // SAFETY: caller contract; list fields are guarded by the pool lock.
    unsafe {
        let which = (*ss).listed.load(Relaxed);
        if which == UNLISTED {
            return;
        }
        let l = &p.lists[which as usize];
        let prev = (*ss).prev.load(Relaxed);
        let next = (*ss).next.load(Relaxed);
        if prev.is_null() {
            l.head.store(next, Relaxed);
        } else {
            (*prev).next.store(next, Relaxed);
        }
        if !next.is_null() {
            (*next).prev.store(prev, Relaxed);
        }
        (*ss).next.store(ptr::null_mut(), Relaxed);
        (*ss).prev.store(ptr::null_mut(), Relaxed);
        (*ss).listed.store(UNLISTED, Relaxed);
        l.len.fetch_sub(1, Relaxed);
    }
}

/// Maps and initialises a superslab of `kind` for `node` (zeroed memory,
/// so every slab record starts FREE): asked for in the node's half of the
/// address space; its home node is the half it really got. Null when the OS
/// refuses.
#[cold]
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
fn new_superslab(kind: SlabKind, node: u8) -> *mut SuperslabHeader {
    let hint = next_hint(node);
    let mut base = os::map_aligned_hint(SUPERSLAB_SIZE, SUPERSLAB_SIZE, hint);
    if base.is_null() {
        base = os::map_aligned(SUPERSLAB_SIZE, SUPERSLAB_SIZE);
    }
    if base.is_null() {
        return ptr::null_mut();
    }
    if !registry::covers(base as usize) {
        os::unmap(base, SUPERSLAB_SIZE);
        return ptr::null_mut();
    }
    if SUPERSLABS_MAPPED.load(Relaxed) < SMALL_HEAP_SUPERSLABS {
        os::advise_no_huge(base, SUPERSLAB_SIZE);
    }
    protect_slab_ends(base, kind);
    let ss = base as *mut SuperslabHeader;
    // SAFETY: fresh zeroed mapping large enough for the header; an all-zero
    // header is a valid value (atomics, FREE slab records); the owners are
    // set to NO_OWNER below before the superslab is published.
    let h = unsafe { &*ss };
    h.slab_shift.store(kind.shift() as u8, Relaxed);
    h.kind.store(kind as u8, Relaxed);
    // With real NUMA nodes the superslab is bound to the requested node;
    // with one node, its logical node is the address half it got.
    let home = if os::numa_nodes() > 1 {
        os::bind_to_node(base, SUPERSLAB_SIZE, node as usize, false);
        node % NODES as u8
    } else {
        node_of_address(base as usize)
    };
    h.node.store(home, Relaxed);
    h.listed.store(UNLISTED, Relaxed);
    h.tier.store(HOT, Relaxed);
    for (pos, m) in h.slabs.iter().enumerate() {
        // Positions no slab starts at get the index of the slab covering
        // them; they are never used.
        m.init_free((pos >> (kind.shift() - hakmem_ptr_bridge::SMALL_SLAB_SHIFT)) as u8);
    }
    h.in_use.store(HEADER_SLAB_BIT, Relaxed);
    h.magic.store(SUPERSLAB_MAGIC as usize, SeqCst);
    registry::set(base as usize, kind.record_mask() as registry::Kind);
    SUPERSLABS_MAPPED.fetch_add(1, Relaxed);
    ss
}

/// Unmaps an empty superslab (pool lock held, already unlinked).
///
/// # Safety
/// Every slab of `ss` is FREE: no thread holds a block or record of it.
unsafe fn unmap_superslab(ss: *mut SuperslabHeader) {
    // SAFETY: caller contract.
    let h = unsafe { &*ss };
    debug_assert_eq!(h.in_use.load(Relaxed), HEADER_SLAB_BIT);
    h.magic.store(0, Relaxed);
    registry::set(ss as usize, registry::KIND_NONE);
    SUPERSLABS_MAPPED.fetch_sub(1, Relaxed);
    os::unmap(ss as *mut u8, SUPERSLAB_SIZE);
}

/// The guard page at the end of each slab of `kind`, or 0: with guard
/// pages on (the facade's secure mode, [`set_guard_pages`](crate::set_guard_pages)),
/// every slab's last page is `PROT_NONE` and holds no block, so a write
/// that runs off the end of a slab faults at once instead of reaching the
/// next slab. None when the OS page is more than a sixteenth of the slab
/// (pages above 4 KiB for the 64 KiB slabs, above 32 KiB for the 512 KiB
/// ones), so that every class keeps the capacities ptr-bridge promises.
fn slab_guard(kind: SlabKind) -> usize {
    let g = guard();
    if g != 0 && g <= (1usize << kind.shift()) / 16 {
        g
    } else {
        0
    }
}

/// Blocks of stride `bs` a slab of `kind` holds: its bytes less its guard
/// page, if any, divided by the stride (`slab_capacity` without a guard).
fn slab_blocks(kind: SlabKind, bs: usize) -> u32 {
    (((1usize << kind.shift()) - slab_guard(kind)) / bs) as u32
}

/// Superslabs mapped at most for a new one to get guard pages: each guard
/// splits the superslab's mapping, so a small-slab superslab becomes 63
/// kernel mappings, and Linux allows 65530 per process by default
/// (`vm.max_map_count`); past 512 superslabs (1 GiB of slabs, about 32000
/// mappings) new ones go without, so that the limit never makes a `mmap`
/// fail.
const GUARDED_SUPERSLABS_MAX: usize = 512;

/// Makes the last page of every slab of a fresh superslab at `base`
/// inaccessible (with guard pages on, while fewer than
/// [`GUARDED_SUPERSLABS_MAX`] superslabs are mapped). A page the OS
/// refuses to protect stays accessible, and still holds no block.
fn protect_slab_ends(base: *mut u8, kind: SlabKind) {
    let g = slab_guard(kind);
    if g == 0 || SUPERSLABS_MAPPED.load(Relaxed) >= GUARDED_SUPERSLABS_MAX {
        return;
    }
    for idx in FIRST_SLAB..kind.slabs() {
        let end = slab_data_start(base as usize, idx + 1, kind.shift());
        os::protect_none((end - g) as *mut u8, g);
    }
}

fn slabs_in_use(h: &SuperslabHeader) -> u32 {
    (h.in_use.load(Relaxed) & !HEADER_SLAB_BIT).count_ones()
}

fn usable_slabs(kind: SlabKind) -> u32 {
    (kind.slabs() - FIRST_SLAB) as u32
}

/// Hands out a FREE slab for `class` from `node`'s pools, initialised and
/// owned by `owner` (state ACTIVE). Takes it from a HOT superslab, else a
/// DRAINING one (which becomes HOT again), else an empty one, else a new
/// mapping. `None` when the OS has no memory left.
pub fn acquire_slab(class: usize, owner: usize, node: u8) -> Option<&'static SlabMeta> {
    let kind = SlabKind::of_class(class);
    let mut p = pool(kind, node);
    let mut guard = p.lock.lock();
    let meta = {
        let mut ss = ptr::null_mut();
        for tier in [HOT, DRAINING, FREE] {
            ss = p.lists[tier as usize].head.load(Relaxed);
            if !ss.is_null() {
                break;
            }
        }
        if ss.is_null() {
            ss = new_superslab(kind, node);
            if ss.is_null() {
                return None;
            }
            // SAFETY: a fresh superslab.
            let home = unsafe { (*ss).node.load(Relaxed) };
            if home != node % NODES as u8 {
                // The OS placed it in the other half: it belongs to that
                // node's pool (lock order: the new pool after releasing ours).
                drop(guard);
                p = pool(kind, home);
                guard = p.lock.lock();
            }
        } else {
            // SAFETY: listed superslabs are live and of this kind.
            unsafe { unlink(p, ss) };
        }
        // SAFETY: a live superslab (listed, or fresh).
        let h = unsafe { &*ss };
        h.tier.store(HOT, Relaxed);
        let in_use = h.in_use.load(Relaxed);
        let idx = (!in_use).trailing_zeros() as usize;
        debug_assert!(idx >= FIRST_SLAB && idx < kind.slabs());
        let now = in_use | (1 << idx);
        h.in_use.store(now, Relaxed);
        h.dirty.fetch_and(!(1 << idx), Relaxed);
        if (now.count_ones() as usize) < kind.slabs() {
            // SAFETY: live, just unlinked (or fresh), of this kind and node.
            unsafe { link(p, HOT, ss) };
        }
        drop(guard);
        h.slab(idx)
    };
    let bs = CLASS_STRIDE[class];
    meta.activate(owner, class, bs, slab_blocks(kind, bs as usize));
    Some(meta)
}

/// Takes back an empty slab. Its pages are returned to the OS once the
/// decay delay has passed ([`decay`]); the superslab moves to DRAINING when
/// few of its slabs remain in use (and another HOT superslab has room), and
/// to FREE when none does.
///
/// # Safety
/// The caller owns `meta`, `used == 0`, it is in no list, and no thread can
/// reach its blocks (the release guard: see `hakmem_remote_queue::remote_free`).
pub unsafe fn release_slab(meta: &SlabMeta) {
    meta.release();
    let ss = meta.superslab();
    // SAFETY: a slab record's superslab is live while the slab is in use.
    let h = unsafe { &*ss };
    let kind = h.slab_kind();
    let idx = meta.slab_index();
    let now_ms = os::now_ms();
    let (p, _g) = lock_home_pool(h, kind);
    // SAFETY: pool lock held; `ss` is live, of this pool's kind, and slab
    // `idx` is in use (ours to give back).
    unsafe { put_back(p, ss, idx, true, now_ms) };
}

/// With the pool lock held: slab `idx` of `ss` is free again (`dirty`:
/// its pages may still be resident, time-stamped `now_ms`); moves the
/// superslab to the tier its count of slabs in use calls for — FREE when
/// none is (unmapped at once when enough empty ones are kept already),
/// DRAINING when few are and another superslab is HOT.
///
/// # Safety
/// `p` is `ss`'s home pool and its lock is held; slab `idx` is marked in
/// use and nothing uses it any more.
unsafe fn put_back(p: &Pool, ss: *mut SuperslabHeader, idx: usize, dirty: bool, now_ms: u32) {
    // SAFETY: caller contract.
    let h = unsafe { &*ss };
    let kind = h.slab_kind();
    h.in_use.fetch_and(!(1u32 << idx), Relaxed);
    if dirty {
        h.dirty.fetch_or(1u32 << idx, Relaxed);
        h.released_ms[idx].store(now_ms, Relaxed);
    }
    let used = slabs_in_use(h);
    // SAFETY: `ss` is live and of this pool's kind.
    unsafe { unlink(p, ss) };
    if used == 0 {
        if h.tier.load(Relaxed) != FREE || dirty {
            h.empty_since_ms.store(now_ms, Relaxed);
        }
        h.tier.store(FREE, Relaxed);
        if p.lists[FREE as usize].len.load(Relaxed) >= MAX_EMPTY_SUPERSLABS {
            // SAFETY: every slab is FREE and it is unlinked.
            unsafe { unmap_superslab(ss) };
        } else {
            // SAFETY: live and unlinked.
            unsafe { link(p, FREE, ss) };
        }
        return;
    }
    let tier = h.tier.load(Relaxed);
    let other_hot = !p.lists[HOT as usize].head.load(Relaxed).is_null();
    let next = if tier == HOT && other_hot && used * 4 <= usable_slabs(kind) {
        DRAINING
    } else {
        tier
    };
    h.tier.store(next, Relaxed);
    // SAFETY: live and unlinked.
    unsafe { link(p, next, ss) };
}

/// Sets the delay after which released memory goes back to the OS.
pub fn set_decay_ms(ms: u32) {
    DECAY_MS.store(ms, Relaxed);
}

/// The delay after which released memory goes back to the OS.
pub fn decay_ms() -> u32 {
    DECAY_MS.load(Relaxed)
}

/// Returns the pages of slabs released longer than the decay delay ago
/// (`MADV_DONTNEED`) and unmaps superslabs empty for that long; with
/// `force`, everything released or empty goes back now. Returns the bytes
/// given back. Rate-limited to a few runs per delay unless forced.
pub fn decay(force: bool) -> usize {
    let now = os::now_ms();
    let delay = DECAY_MS.load(Relaxed);
    if !force {
        let last = LAST_DECAY_MS.load(Relaxed);
        if now.wrapping_sub(last) < delay / 4 + 1
            || LAST_DECAY_MS
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_err()
        {
            return 0;
        }
    }
    let due = |t: u32| force || now.wrapping_sub(t) >= delay;
    let mut freed = 0;
    for (kind, node) in [SlabKind::Small, SlabKind::Medium]
        .into_iter()
        .flat_map(|k| (0..NODES as u8).map(move |n| (k, n)))
    {
        let p = pool(kind, node);
        // The system calls happen outside the pool lock, so that threads
        // acquiring and releasing slabs meanwhile do not wait for them:
        // under the lock, due empty superslabs are unlinked (nothing can
        // reach them then) and due released slabs are *borrowed* (marked
        // in use, so `acquire_slab` skips them and their superslab cannot
        // become empty); then the lock is dropped for `munmap` and
        // `madvise`; then the borrowed slabs are put back, clean. Batches
        // of DECAY_BATCH; a pool with more due goes round again.
        loop {
            let mut unmaps = [ptr::null_mut::<SuperslabHeader>(); DECAY_BATCH];
            let mut borrowed = [(ptr::null_mut::<SuperslabHeader>(), 0usize); DECAY_BATCH];
            let (mut nu, mut nb) = (0, 0);
            {
                let _g = p.lock.lock();
                let mut ss = p.lists[FREE as usize].head.load(Relaxed);
                while !ss.is_null() && nu < DECAY_BATCH {
                    // SAFETY: listed superslabs are live.
                    let h = unsafe { &*ss };
                    let next = h.next.load(Relaxed);
                    // (A concurrent decay may have borrowed one of its slabs.)
                    if due(h.empty_since_ms.load(Relaxed))
                        && h.in_use.load(Relaxed) == HEADER_SLAB_BIT
                    {
                        // SAFETY: listed and live; the lock is held.
                        unsafe { unlink(p, ss) };
                        unmaps[nu] = ss;
                        nu += 1;
                    }
                    ss = next;
                }
                'tiers: for tier in [HOT, DRAINING, FREE] {
                    let mut ss = p.lists[tier as usize].head.load(Relaxed);
                    while !ss.is_null() {
                        // SAFETY: listed superslabs are live.
                        let h = unsafe { &*ss };
                        let next = h.next.load(Relaxed);
                        let mut dirty = h.dirty.load(Relaxed) & !h.in_use.load(Relaxed);
                        while dirty != 0 && nb < DECAY_BATCH {
                            let i = dirty.trailing_zeros() as usize;
                            dirty &= dirty - 1;
                            if due(h.released_ms[i].load(Relaxed)) {
                                h.in_use.fetch_or(1u32 << i, Relaxed);
                                h.dirty.fetch_and(!(1u32 << i), Relaxed);
                                borrowed[nb] = (ss, i);
                                nb += 1;
                            }
                        }
                        if h.in_use.load(Relaxed).count_ones() as usize == kind.slabs() {
                            // No free slab left to hand out: off the lists
                            // until a put-back relinks it.
                            // SAFETY: listed and live; the lock is held.
                            unsafe { unlink(p, ss) };
                        }
                        if nb == DECAY_BATCH {
                            break 'tiers;
                        }
                        ss = next;
                    }
                }
            }
            for &ss in &unmaps[..nu] {
                // SAFETY: unlinked above with every slab FREE; no list,
                // thread or slab record can reach it any more.
                unsafe { unmap_superslab(ss) };
                freed += SUPERSLAB_SIZE;
            }
            for &(ss, i) in &borrowed[..nb] {
                let start = slab_data_start(ss as usize, i, kind.shift());
                os::discard(start as *mut u8, 1 << kind.shift());
                freed += 1 << kind.shift();
            }
            if nb > 0 {
                let t = os::now_ms();
                for &(ss, i) in &borrowed[..nb] {
                    // SAFETY: borrowed slabs keep their superslab live.
                    let h = unsafe { &*ss };
                    // Its home may have moved meanwhile (migration).
                    let (hp, _g) = lock_home_pool(h, kind);
                    // SAFETY: home pool locked; slab `i` is marked in use
                    // by us and nothing else uses it.
                    unsafe { put_back(hp, ss, i, false, t) };
                }
            }
            if nu < DECAY_BATCH && nb < DECAY_BATCH {
                break;
            }
        }
    }
    freed
}

/// Counts of superslabs per tier, for tests and statistics:
/// `(hot_listed, draining, empty)`.
pub fn tier_counts() -> (usize, usize, usize) {
    let mut t = (0, 0, 0);
    for p in all_pools() {
        t.0 += p.lists[HOT as usize].len.load(Relaxed);
        t.1 += p.lists[DRAINING as usize].len.load(Relaxed);
        t.2 += p.lists[FREE as usize].len.load(Relaxed);
    }
    t
}

/// Holds every pool lock (fork prepare handler).
pub fn lock_all_for_fork() {
    // No path takes a pool lock while holding the span cache lock, so the
    // cache lock first, then the pools in a fixed order.
    crate::span::lock_for_fork();
    for p in all_pools() {
        core::mem::forget(p.lock.lock());
    }
}

/// Releases what [`lock_all_for_fork`] took (parent and child handlers).
///
/// # Safety
/// Only after [`lock_all_for_fork`].
pub unsafe fn unlock_all_after_fork() {
    for p in all_pools() {
        // SAFETY: forwarded contract.
        unsafe { p.lock.force_unlock() };
    }
    // SAFETY: forwarded contract.
    unsafe { crate::span::unlock_after_fork() };
}

/// Locks the pool of `h`'s current home node. The home node can change
/// (by [`move_superslab`], under both pools' locks), so re-check after
/// locking.
fn lock_home_pool(h: &SuperslabHeader, kind: SlabKind) -> (&'static Pool, SpinGuard<'static>) {
    loop {
        let node = h.node.load(Relaxed);
        let p = pool(kind, node);
        let g = p.lock.lock();
        if h.node.load(Relaxed) == node {
            return (p, g);
        }
    }
}

/// Moves superslab `ss` to `node`: it leaves its pool's lists for the same
/// tier in the target node's pool, and its home node changes. Its slabs and
/// live blocks are untouched (addresses do not change; on a machine with
/// several NUMA nodes this is where its pages would follow with
/// `move_pages`). Returns false when it already lives there.
///
/// # Safety
/// `ss` is a live superslab of ours.
pub unsafe fn move_superslab(ss: *mut SuperslabHeader, node: u8) -> bool {
    // SAFETY: caller contract.
    let h = unsafe { &*ss };
    let kind = h.slab_kind();
    let to = node % NODES as u8;
    // Lock both pools in node order so two moves cannot deadlock.
    let (a, b) = (pool(kind, 0), pool(kind, 1));
    let _ga = a.lock.lock();
    let _gb = b.lock.lock();
    let from = h.node.load(Relaxed);
    if from == to {
        return false;
    }
    let which = h.listed.load(Relaxed);
    // SAFETY: live, of this kind, and both pools are locked.
    unsafe { unlink(pool(kind, from), ss) };
    h.node.store(to, Relaxed);
    if os::numa_nodes() > 1 {
        // Real NUMA: its pages follow (addresses do not change).
        os::bind_to_node(ss as *mut u8, SUPERSLAB_SIZE, to as usize, true);
    }
    if which != UNLISTED {
        // SAFETY: as above; back into the same tier's list, new node.
        unsafe { link(pool(kind, to), which, ss) };
    }
    true
}
