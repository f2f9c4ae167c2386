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

pub mod primitive;

use core::ptr;
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU8, AtomicUsize};

use hakmem_ptr_bridge::{block_next, set_block_next, slab_state, SlabMeta, NO_OWNER, NUM_CLASSES};
use primitive::{AtomicCell, AtomicCount, SpinLock};

/// The fields of a slab record that the remote-free protocol shares
/// between threads, as [`primitive`] atomics.
///
/// [`SlabMeta`] is the production record; a model test implements this
/// trait for a record built from its checker's atomics and runs the
/// protocol's own code (the `*_on` functions) on it. The production entry
/// points ([`push_remote`], [`remote_free`], ...) are thin wrappers that
/// call the `*_on` functions with `SlabMeta`, which compile to the same
/// code as before the split.
pub trait SlabRecord {
    /// `remote`: the head of the remote stack.
    type Ptr: AtomicCell<*mut u8>;
    /// `owner`: a heap id or [`NO_OWNER`].
    type Word: AtomicCell<usize>;
    /// `used`: blocks handed out and not yet returned.
    type Count: AtomicCount;
    /// `state`: one of [`slab_state`].
    type State: AtomicCell<u8>;
    /// The remote stack head.
    fn remote(&self) -> &Self::Ptr;
    /// The owner's heap id.
    fn owner(&self) -> &Self::Word;
    /// The count of blocks out.
    fn used(&self) -> &Self::Count;
    /// The life-cycle state.
    fn state(&self) -> &Self::State;
}

impl SlabRecord for SlabMeta {
    type Ptr = AtomicPtr<u8>;
    type Word = AtomicUsize;
    type Count = AtomicU32;
    type State = AtomicU8;
    #[inline(always)]
    fn remote(&self) -> &AtomicPtr<u8> {
        &self.remote
    }
    #[inline(always)]
    fn owner(&self) -> &AtomicUsize {
        &self.owner
    }
    #[inline(always)]
    fn used(&self) -> &AtomicU32 {
        &self.used
    }
    #[inline(always)]
    fn state(&self) -> &AtomicU8 {
        &self.state
    }
}

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
    let remote = meta.remote();
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
    let remote = meta.remote();
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
        meta.next.store(self.head.load(Relaxed), Relaxed);
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
        self.head.store(m.next.load(Relaxed), Relaxed);
        m.next.store(ptr::null_mut(), Relaxed);
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
            let next = m.next.load(Relaxed);
            if m.used.load(SeqCst) == 0 {
                if prev.is_null() {
                    self.head.store(next, Relaxed);
                } else {
                    // SAFETY: `prev` is a linked, live record.
                    unsafe { (*prev).next.store(next, Relaxed) };
                }
                self.len.fetch_sub(1, Relaxed);
                m.next.store(out, Relaxed);
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
pub static RECLAIM: [ReclaimList; NUM_CLASSES] = [const { ReclaimList::new() }; NUM_CLASSES];

/// Publishes an ownerless slab for adoption: the slab must already have
/// `owner == NO_OWNER` and the caller must have won the right to link it (it set
/// the state to QUEUED).
pub fn publish(meta: &SlabMeta) {
    debug_assert_eq!(meta.state.load(Relaxed), slab_state::QUEUED);
    debug_assert_eq!(meta.owner.load(Relaxed), NO_OWNER);
    RECLAIM[meta.class.load(Relaxed) as usize].push(meta);
}

/// Adopts a published slab of `class`: makes `heap_id` its owner and the
/// slab ACTIVE. The caller then drains its remote stack.
pub fn adopt(class: usize, heap_id: usize) -> Option<&'static SlabMeta> {
    let m = RECLAIM[class].pop()?;
    claim_adopted(m, heap_id);
    Some(m)
}

/// The second half of [`adopt`], on any [`SlabRecord`]: the slab `meta`,
/// just unlinked from a reclaim list, becomes `heap_id`'s and ACTIVE.
#[inline(always)]
pub fn claim_adopted<S: SlabRecord + ?Sized>(meta: &S, heap_id: usize) {
    meta.owner().store(heap_id, SeqCst);
    meta.state().store(slab_state::ACTIVE, SeqCst);
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
    let state = meta.state();
    if state.load(SeqCst) == slab_state::FULL
        && state
            .compare_exchange(slab_state::FULL, slab_state::QUEUED, SeqCst, Relaxed)
            .is_ok()
    {
        publish(meta);
    }
    meta.used().fetch_sub(n, Release);
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
    if meta.state().load(Acquire) == slab_state::FREE {
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
        meta.class.store(3, Relaxed);
        meta.used.store(2, Relaxed);
        meta.state.store(slab_state::FULL, Relaxed);
        let a = Box::leak(Box::new(Blk([0; 16]))).0.as_mut_ptr();
        let b = Box::leak(Box::new(Blk([0; 16]))).0.as_mut_ptr();
        // SAFETY: fresh blocks.
        unsafe {
            assert_eq!(remote_free(meta, a), RemoteFree::Queued);
            assert_eq!(remote_free(meta, b), RemoteFree::Queued);
        }
        assert_eq!(meta.used.load(Relaxed), 0);
        assert_eq!(meta.state.load(Relaxed), slab_state::QUEUED);
        let m = adopt(3, 77).expect("published");
        assert!(ptr::eq(m, meta));
        assert!(adopt(3, 77).is_none(), "published twice");
        assert_eq!(m.owner.load(Relaxed), 77);
    }

    #[test]
    fn remote_free_rejects_free_slab() {
        let meta = SlabMeta::new();
        let a = Box::leak(Box::new(Blk([7; 16]))).0.as_mut_ptr();
        // SAFETY: a fresh block; the call must not write it.
        assert_eq!(unsafe { remote_free(&meta, a) }, RemoteFree::NotAllocated);
        // SAFETY: reading back our own block.
        assert_eq!(unsafe { *a }, 7);
        assert!(meta.remote.load(Relaxed).is_null());
    }
}
