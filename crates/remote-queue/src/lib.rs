//! remote-queue: frees from threads that do not own the block, and the
//! hand-over of ownerless slabs to threads that adopt them.
//!
//! Three pieces, all lock-free or spin-locked, none allocating:
//! - the per-slab **remote stack** ([`push_remote`] / [`take_remote`]): a
//!   Treiber stack that any thread pushes to and only the owner empties, with
//!   one swap, so there is no ABA;
//! - the per-class **reclaim lists** ([`publish`] / [`adopt`]): ownerless
//!   slabs that still have (or will have) free blocks, waiting for a thread
//!   that needs that class;
//! - [`remote_free`]: the whole protocol for a non-owner free, which ties
//!   the two together (see `docs/remote-free.md`).
//!
//! Concurrency primitives (the spin lock, the atomic operations on a slab
//! record) live in [`primitive`] so that a model checker can replace them:
//! the protocol's functions come in a generic form (`*_on`, over
//! [`SlabRecord`]) that `tests/model.rs` runs under shuttle.
#![no_std]

pub mod fork;
pub mod primitive;

use core::ptr;
use core::sync::atomic::Ordering::{Acquire, Relaxed, SeqCst};
use core::sync::atomic::{AtomicPtr, AtomicUsize};

use hakmem_ptr_bridge::{block_next, set_block_next, slab_state, SlabMeta, NO_OWNER, NUM_CLASSES};
use primitive::{AtomicCell, SpinLock};

/// The shared fields of a slab record and the bodies of its transitions,
/// defined in `hakmem-ptr-bridge` beside [`SlabMeta`] and re-exported
/// here: the protocol functions (`*_on`) are generic over it, and
/// `tests/model.rs` implements it for a record of shuttle atomics (see
/// `docs/remote-free.md`, "Model tests").
pub use hakmem_ptr_bridge::SlabRecord;

/// Pushes `block` onto the slab's remote stack. Returns true when the stack
/// was empty before.
///
/// # Safety
/// `block` must be a block of `meta`'s slab that the caller owns (it is
/// being freed) and that nobody else references.
#[inline]
pub unsafe fn push_remote(meta: &SlabMeta, block: *mut u8) -> bool {
    // SAFETY: forwarded contract; a chain of one block.
    unsafe { push_remote_chain_on(meta, block, block) }
}

/// Pushes the chain `head..=tail` (linked through the blocks' first words)
/// onto the slab's remote stack with one CAS. Returns true when the stack
/// was empty before.
///
/// # Safety
/// The chain holds blocks of `meta`'s slab that the caller is freeing and
/// that nobody else references.
pub unsafe fn push_remote_chain(meta: &SlabMeta, head: *mut u8, tail: *mut u8) -> bool {
    // SAFETY: forwarded contract.
    unsafe { push_remote_chain_on(meta, head, tail) }
}

/// [`push_remote_chain`] on any [`SlabRecord`].
///
/// # Safety
/// As for [`push_remote_chain`].
#[inline(always)]
pub unsafe fn push_remote_chain_on<S: SlabRecord + ?Sized>(
    meta: &S,
    head: *mut u8,
    tail: *mut u8,
) -> bool {
    let remote = meta.remote_cell();
    let mut h = remote.load(Relaxed);
    loop {
        // SAFETY: the chain is ours until the CAS publishes it.
        unsafe { set_block_next(tail, h) };
        match remote.compare_exchange_weak(h, head, SeqCst, Relaxed) {
            Ok(_) => return h.is_null(),
            Err(x) => h = x,
        }
    }
}

/// Takes the whole remote stack (owner only). Returns the head of a
/// null-terminated chain linked through each block's first word.
#[inline]
pub fn take_remote(meta: &SlabMeta) -> *mut u8 {
    take_remote_on(meta)
}

/// [`take_remote`] on any [`SlabRecord`].
#[inline(always)]
pub fn take_remote_on<S: SlabRecord + ?Sized>(meta: &S) -> *mut u8 {
    let remote = meta.remote_cell();
    if remote.load(Relaxed).is_null() {
        return ptr::null_mut();
    }
    remote.swap(ptr::null_mut(), SeqCst)
}

/// Counts a chain and returns `(count, tail)`.
///
/// # Safety
/// `head` must be a valid null-terminated block chain.
pub unsafe fn chain_len(head: *mut u8) -> (u32, *mut u8) {
    let mut n = 0;
    let mut tail = head;
    let mut cur = head;
    while !cur.is_null() {
        n += 1;
        tail = cur;
        // SAFETY: every element of a valid chain is a free block.
        cur = unsafe { block_next(cur) };
    }
    (n, tail)
}

/// An intrusive list of ownerless slabs of one class (linked by
/// `SlabMeta::next`), guarded by a spin lock.
pub struct ReclaimList {
    lock: SpinLock,
    head: AtomicPtr<SlabMeta>,
    len: AtomicUsize,
}

impl ReclaimList {
    /// An empty list.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        ReclaimList {
            lock: SpinLock::new(),
            head: AtomicPtr::new(ptr::null_mut()),
            len: AtomicUsize::new(0),
        }
    }

    /// Number of slabs waiting (racy snapshot).
    pub fn len(&self) -> usize {
        self.len.load(Relaxed)
    }

    /// True when no slab waits (racy snapshot).
    pub fn is_empty(&self) -> bool {
        self.head.load(Relaxed).is_null()
    }

    fn push(&self, meta: &SlabMeta) {
        let _g = self.lock.lock();
        meta.set_next(self.head.load(Relaxed));
        self.head.store(meta as *const _ as *mut _, Relaxed);
        self.len.fetch_add(1, Relaxed);
    }

    fn pop(&self) -> Option<&'static SlabMeta> {
        if self.is_empty() {
            return None;
        }
        let _g = self.lock.lock();
        let h = self.head.load(Relaxed);
        if h.is_null() {
            return None;
        }
        // SAFETY: only slab records (which live as long as their superslab,
        // and a QUEUED slab's superslab is never released) are linked here.
        let m: &'static SlabMeta = unsafe { &*h };
        self.head.store(m.next(), Relaxed);
        m.set_next(ptr::null_mut());
        self.len.fetch_sub(1, Relaxed);
        Some(m)
    }

    /// Unlinks every published slab whose blocks have all been freed
    /// (`used == 0`) and returns them as a chain through `next`. Such a slab
    /// cannot gain blocks again (only an adopter hands blocks out) and no
    /// remote free is still touching it (`used` is decremented last), so the
    /// caller may release it.
    pub fn take_empty(&self) -> *mut SlabMeta {
        if self.is_empty() {
            return ptr::null_mut();
        }
        let _g = self.lock.lock();
        let mut out: *mut SlabMeta = ptr::null_mut();
        let mut prev: *mut SlabMeta = ptr::null_mut();
        let mut cur = self.head.load(Relaxed);
        while !cur.is_null() {
            // SAFETY: linked records are live (see `pop`).
            let m = unsafe { &*cur };
            let next = m.next();
            if m.used() == 0 {
                if prev.is_null() {
                    self.head.store(next, Relaxed);
                } else {
                    // SAFETY: `prev` is a linked, live record.
                    unsafe { (*prev).set_next(next) };
                }
                self.len.fetch_sub(1, Relaxed);
                m.set_next(out);
                out = cur;
            } else {
                prev = cur;
            }
            cur = next;
        }
        out
    }

    /// Lock for fork: held across `fork()` by the prepare handler.
    pub fn lock_for_fork(&self) {
        core::mem::forget(self.lock.lock());
    }

    /// Unlock after fork (parent and child).
    ///
    /// # Safety
    /// Only after [`ReclaimList::lock_for_fork`] on this list.
    pub unsafe fn unlock_after_fork(&self) {
        // SAFETY: forwarded contract.
        unsafe { self.lock.force_unlock() };
    }
}

/// One reclaim list per size class.
#[link_section = ".bss.hakmem_cold"] // written at the first remote free: see crates/preload/layout.ld
pub static RECLAIM: [ReclaimList; NUM_CLASSES] = [const { ReclaimList::new() }; NUM_CLASSES];

/// Publishes an ownerless slab for adoption: the slab must already have
/// `owner == NO_OWNER` and the caller must have won the right to link it (it set
/// the state to QUEUED).
pub fn publish(meta: &SlabMeta) {
    debug_assert_eq!(meta.state(), slab_state::QUEUED);
    debug_assert_eq!(meta.owner(), NO_OWNER);
    RECLAIM[meta.class()].push(meta);
}

/// Adopts a published slab of `class`: pops it from the reclaim list and
/// makes `heap_id` its owner, QUEUED → ACTIVE
/// ([`SlabMeta::claim_queued`]). The caller then drains its remote stack.
pub fn adopt(class: usize, heap_id: usize) -> Option<&'static SlabMeta> {
    let m = RECLAIM[class].pop()?;
    m.claim_queued(heap_id);
    Some(m)
}

/// Pushes a chain of `n` blocks of `meta`'s slab (`head..=tail`, linked
/// through their first words) on the slab's remote stack with one CAS, then
/// finishes like [`remote_free`]: publish a FULL slab, and decrement `used`
/// by `n` as the very last step (the release guard).
///
/// # Safety
/// The chain holds `n` distinct blocks of `meta`'s slab that the program
/// freed, and the slab is not FREE (they are counted in `used`).
pub unsafe fn remote_free_chain(meta: &SlabMeta, head: *mut u8, tail: *mut u8, n: u32) {
    // SAFETY: forwarded contract.
    unsafe { remote_free_chain_on(meta, head, tail, n, publish) }
}

/// [`remote_free_chain`] on any [`SlabRecord`]; `publish` links the slab
/// into its reclaim list (called at most once, by the thread that won the
/// FULL→QUEUED CAS).
///
/// # Safety
/// As for [`remote_free_chain`].
#[inline(always)]
pub unsafe fn remote_free_chain_on<S: SlabRecord + ?Sized>(
    meta: &S,
    head: *mut u8,
    tail: *mut u8,
    n: u32,
    publish: impl FnOnce(&S),
) {
    // SAFETY: forwarded contract.
    unsafe { push_remote_chain_on(meta, head, tail) };
    // FULL -> QUEUED for the one winner, which links the slab.
    if meta.queue_if_full() {
        publish(meta);
    }
    // The release guard: the last touch of the record.
    meta.end_remote_free(n);
}

/// Outcome of [`remote_free`].
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum RemoteFree {
    /// The block is on the slab's remote stack.
    Queued,
    /// The slab is FREE: the pointer was not allocated (double or bad free).
    /// Nothing was written.
    NotAllocated,
}

/// A free by a thread that does not own the block's slab.
///
/// Steps:
/// 1. reject a slab in the FREE state (nothing is written);
/// 2. push the block on the slab's remote stack;
/// 3. if the slab is FULL (ownerless and unlisted), move it to QUEUED and
///    publish it, so that its blocks are not stranded;
/// 4. last, decrement `used`: the owner only releases a slab once `used`
///    is 0, so no remote free can still be touching the record then (the
///    release guard for slabs).
///
/// # Safety
/// `block` must be a block of `meta`'s slab that the program is freeing.
pub unsafe fn remote_free(meta: &SlabMeta, block: *mut u8) -> RemoteFree {
    // SAFETY: forwarded contract.
    unsafe { remote_free_on(meta, block, publish) }
}

/// [`remote_free`] on any [`SlabRecord`], with `publish` as in
/// [`remote_free_chain_on`].
///
/// # Safety
/// As for [`remote_free`].
#[inline(always)]
pub unsafe fn remote_free_on<S: SlabRecord + ?Sized>(
    meta: &S,
    block: *mut u8,
    publish: impl FnOnce(&S),
) -> RemoteFree {
    if meta.state_cell().load(Acquire) == slab_state::FREE {
        return RemoteFree::NotAllocated;
    }
    // SAFETY: forwarded contract; a chain of one block.
    unsafe { remote_free_chain_on(meta, block, block, 1, publish) };
    RemoteFree::Queued
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::boxed::Box;
    use std::vec::Vec;

    #[repr(align(16))]
    struct Blk([u8; 16]);

    #[test]
    fn remote_stack_is_lifo_and_take_empties() {
        let meta = SlabMeta::new();
        let mut blocks: Vec<Box<Blk>> = (0..4).map(|_| Box::new(Blk([0; 16]))).collect();
        let ptrs: Vec<*mut u8> = blocks.iter_mut().map(|b| b.0.as_mut_ptr()).collect();
        // SAFETY: the boxes outlive the test and are only used as blocks.
        unsafe {
            assert!(push_remote(&meta, ptrs[0]));
            assert!(!push_remote(&meta, ptrs[1]));
        }
        let head = take_remote(&meta);
        assert_eq!(head, ptrs[1]);
        // SAFETY: the chain was built above.
        let (n, tail) = unsafe { chain_len(head) };
        assert_eq!((n, tail), (2, ptrs[0]));
        assert!(take_remote(&meta).is_null());
    }

    #[test]
    fn concurrent_pushes_lose_nothing() {
        const T: usize = 4;
        const N: usize = 2000;
        let meta: &'static SlabMeta = Box::leak(Box::new(SlabMeta::new()));
        let mut handles = Vec::new();
        for _ in 0..T {
            handles.push(std::thread::spawn(move || {
                for _ in 0..N {
                    let b = Box::leak(Box::new(Blk([0; 16])));
                    // SAFETY: a fresh leaked block.
                    unsafe { push_remote(meta, b.0.as_mut_ptr()) };
                }
            }));
        }
        let mut total = 0;
        while total < T * N {
            // SAFETY: chains come from take_remote.
            total += unsafe { chain_len(take_remote(meta)).0 } as usize;
        }
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(total, T * N);
        assert!(take_remote(meta).is_null());
    }

    #[test]
    fn remote_free_publishes_full_slab_once() {
        let meta: &'static SlabMeta = Box::leak(Box::new(SlabMeta::new()));
        // An ACTIVE slab of class 3 with two blocks out, let go of by its
        // owner with nothing on the remote stack: FULL.
        meta.activate(1, 3, hakmem_ptr_bridge::CLASS_STRIDE[3], 4);
        meta.add_used(2);
        assert!(!meta.go_full(slab_state::QUEUED));
        assert_eq!(meta.state(), slab_state::FULL);
        let a = Box::leak(Box::new(Blk([0; 16]))).0.as_mut_ptr();
        let b = Box::leak(Box::new(Blk([0; 16]))).0.as_mut_ptr();
        // SAFETY: fresh blocks.
        unsafe {
            assert_eq!(remote_free(meta, a), RemoteFree::Queued);
            assert_eq!(remote_free(meta, b), RemoteFree::Queued);
        }
        assert_eq!(meta.used(), 0);
        assert_eq!(meta.state(), slab_state::QUEUED);
        let m = adopt(3, 77).expect("published");
        assert!(ptr::eq(m, meta));
        assert!(adopt(3, 77).is_none(), "published twice");
        assert_eq!(m.owner(), 77);
        assert_eq!(m.state(), slab_state::ACTIVE);
    }

    #[test]
    fn remote_free_rejects_free_slab() {
        let meta = SlabMeta::new();
        let a = Box::leak(Box::new(Blk([7; 16]))).0.as_mut_ptr();
        // SAFETY: a fresh block; the call must not write it.
        assert_eq!(unsafe { remote_free(&meta, a) }, RemoteFree::NotAllocated);
        // SAFETY: reading back our own block.
        assert_eq!(unsafe { *a }, 7);
        assert!(meta.remote_head().is_null());
    }
}
