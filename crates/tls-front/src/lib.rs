//! hakmem-tls-front: the per-thread block caches of hakmem — one singly
//! linked list per size class, popped by malloc and pushed by free. This is
//! the hot path.
//!
//! ```
//! use hakmem_tls_front::Front;
//!
//! let mut f = Front::new();
//! f.set_cap(3, 2);
//! let mut blocks = [[0u64; 2]; 3]; // free blocks are at least 16 bytes
//! let p: Vec<*mut u8> = blocks.iter_mut().map(|b| b.as_mut_ptr().cast()).collect();
//! // SAFETY: each block is 16 bytes, ours, and in no list.
//! let over: Vec<bool> = p.iter().map(|&b| unsafe { f.push(3, b) }).collect();
//! assert_eq!(over, [false, false, true]); // the third push is over the cap
//! assert_eq!(f.pop(3), p[2]); // LIFO
//! ```
//!
//! The front knows nothing about slabs, refills, learning or the OS: a miss
//! returns null and an overflow returns true, and the caller (the facade,
//! which then calls the refill engine) decides what to do.
//!
//! **Architecture Invariant:** nothing in this crate takes a lock, touches an
//! atomic or calls another box on the pop/push path.
#![no_std]

use core::ptr;

use hakmem_ptr_bridge::{block_next, clear_free_mark, set_block_next, NUM_CLASSES, NUM_ROUTES};

/// One thread's caches. Lives in a thread-local; never shared.
///
/// Invariant per class `c`: the list at `heads[c]` is null-terminated and
/// has exactly `caps[c] - room[c]` blocks; between calls `room[c] >= -1`
/// (a push may go one over, reporting the overflow). Keeping the *room*
/// left rather than a count lets the push test the cap with one decrement.
///
/// The all-zero value is a valid, empty front with every cap 0, so the
/// struct can live in zero-initialised TLS (`.tbss`).
#[repr(C)]
pub struct Front {
    heads: [*mut u8; NUM_ROUTES], // list heads; span twins stay null
    room: [i32; NUM_CLASSES],     // cap minus length; < 0 means overfull
    caps: [u32; NUM_CLASSES],     // most blocks kept before a flush
    pushes: [u64; NUM_CLASSES],   // frees pushed so far (statistics, slow start)
}

impl Front {
    /// Empty caches with every cap 0 (each free overflows until the caps
    /// are set by [`Front::set_cap`]).
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Front {
            heads: [ptr::null_mut(); NUM_ROUTES],
            room: [0; NUM_CLASSES],
            caps: [0; NUM_CLASSES],
            pushes: [0; NUM_CLASSES],
        }
    }

    /// Pops a block of `class`, its free mark erased; null on a miss.
    ///
    /// Cost (x86-64, after inlining): load head, test, load link, store
    /// head, increment room, clear the free mark — 6 instructions and one
    /// branch. (The mark is what lets `free` tell a double free exactly;
    /// see [`hakmem_ptr_bridge::FREE_MARK_OFFSET`].)
    #[inline(always)]
    pub fn pop(&mut self, class: usize) -> *mut u8 {
        debug_assert!(class < NUM_ROUTES);
        // SAFETY: class < NUM_CLASSES is the caller's contract, checked in
        // debug builds; the list only holds free blocks (of at least 16
        // bytes) we own, and the popped one is ours to write.
        unsafe {
            let head = *self.heads.get_unchecked(class);
            if !head.is_null() {
                *self.heads.get_unchecked_mut(class) = block_next(head);
                *self.room.get_unchecked_mut(class) += 1;
                clear_free_mark(head);
            }
            head
        }
    }

    /// Pushes a freed block; returns true when the list is now over its cap
    /// (the caller should flush).
    ///
    /// Cost: load head, store link, store head, count the free, decrement
    /// room and branch on its sign — 6 instructions.
    ///
    /// # Safety
    /// `block` is a free block of `class`, at least 16 bytes, owned by the
    /// calling thread and not in any list.
    #[inline(always)]
    pub unsafe fn push(&mut self, class: usize, block: *mut u8) -> bool {
        debug_assert!(class < NUM_CLASSES);
        // SAFETY: caller contract.
        unsafe {
            set_block_next(block, *self.heads.get_unchecked(class));
            *self.heads.get_unchecked_mut(class) = block;
            *self.pushes.get_unchecked_mut(class) += 1;
            let r = self.room.get_unchecked_mut(class);
            *r -= 1;
            *r < 0
        }
    }

    /// Pushes a chain of `n` blocks whose last element is `tail`.
    ///
    /// # Safety
    /// `head..=tail` is a valid chain of `n` free blocks of `class` owned by
    /// the calling thread.
    pub unsafe fn push_chain(&mut self, class: usize, head: *mut u8, tail: *mut u8, n: u32) {
        if n == 0 {
            return;
        }
        // SAFETY: caller contract.
        unsafe { set_block_next(tail, self.heads[class]) };
        self.heads[class] = head;
        self.room[class] -= n as i32;
    }

    /// Detaches up to `n` blocks of `class` and returns the chain head
    /// (null-terminated) with its length.
    pub fn take(&mut self, class: usize, n: u32) -> (*mut u8, u32) {
        let head = self.heads[class];
        let mut cur = head;
        let mut prev = ptr::null_mut();
        let mut k = 0;
        while k < n && !cur.is_null() {
            prev = cur;
            // SAFETY: every element of the list is a free block we own.
            cur = unsafe { block_next(cur) };
            k += 1;
        }
        if k == 0 {
            return (ptr::null_mut(), 0);
        }
        // SAFETY: `prev` is the k-th block, a free block we own.
        unsafe { set_block_next(prev, ptr::null_mut()) };
        self.heads[class] = cur;
        self.room[class] += k as i32;
        (head, k)
    }

    /// Removes every cached block of `class` for which `pred` holds and
    /// returns them as a null-terminated chain with its length (used by slab
    /// migration to flush the blocks of one slab).
    pub fn extract_if(
        &mut self,
        class: usize,
        mut pred: impl FnMut(*mut u8) -> bool,
    ) -> (*mut u8, u32) {
        let mut out: *mut u8 = ptr::null_mut();
        let mut n = 0u32;
        let mut keep_head: *mut u8 = ptr::null_mut();
        let mut keep_tail: *mut u8 = ptr::null_mut();
        let mut cur = self.heads[class];
        while !cur.is_null() {
            // SAFETY: every element of the list is a free block we own.
            let next = unsafe { block_next(cur) };
            if pred(cur) {
                // SAFETY: as above; it moves to the output chain.
                unsafe { set_block_next(cur, out) };
                out = cur;
                n += 1;
            } else {
                if keep_tail.is_null() {
                    keep_head = cur;
                } else {
                    // SAFETY: as above.
                    unsafe { set_block_next(keep_tail, cur) };
                }
                keep_tail = cur;
            }
            cur = next;
        }
        if !keep_tail.is_null() {
            // SAFETY: as above.
            unsafe { set_block_next(keep_tail, ptr::null_mut()) };
        }
        self.heads[class] = keep_head;
        self.room[class] += n as i32;
        (out, n)
    }

    /// Number of cached blocks of `class`.
    #[inline]
    pub fn count(&self, class: usize) -> u32 {
        (self.caps[class] as i64 - self.room[class] as i64) as u32
    }

    /// The cap of `class`.
    #[inline]
    pub fn cap(&self, class: usize) -> u32 {
        self.caps[class]
    }

    /// Sets the cap of `class`. Takes effect at the next push; blocks above
    /// the new cap stay until that push reports the overflow.
    #[inline]
    pub fn set_cap(&mut self, class: usize, cap: u32) {
        let cap = cap.min(i32::MAX as u32 / 2);
        self.room[class] += cap as i32 - self.caps[class] as i32;
        self.caps[class] = cap;
    }

    /// The number of frees pushed for `class` so far (it only grows,
    /// wrapping; the statistics publish differences of it, and the refill
    /// engine's slow start compares it between flushes).
    #[inline]
    pub fn pushes(&self, class: usize) -> u64 {
        self.pushes[class]
    }

    /// Total cached blocks over all classes.
    pub fn total(&self) -> u64 {
        (0..NUM_CLASSES).map(|c| self.count(c) as u64).sum()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    fn blocks(n: usize) -> Vec<[u64; 2]> {
        std::vec![[0u64; 2]; n]
    }

    #[test]
    fn pop_returns_pushed_blocks_lifo() {
        let mut f = Front::new();
        f.set_cap(2, 10);
        let mut b = blocks(3);
        let ptrs: Vec<*mut u8> = b.iter_mut().map(|x| x.as_mut_ptr() as *mut u8).collect();
        for &p in &ptrs {
            // SAFETY: test blocks of 16 bytes we own.
            assert!(!unsafe { f.push(2, p) });
        }
        assert_eq!(f.count(2), 3);
        assert_eq!(f.pop(2), ptrs[2]);
        assert_eq!(f.pop(2), ptrs[1]);
        assert_eq!(f.pop(2), ptrs[0]);
        assert!(f.pop(2).is_null());
        assert_eq!(f.count(2), 0);
    }

    #[test]
    fn overflow_is_reported_and_take_detaches() {
        let mut f = Front::new();
        f.set_cap(0, 2);
        let mut b = blocks(4);
        let ptrs: Vec<*mut u8> = b.iter_mut().map(|x| x.as_mut_ptr() as *mut u8).collect();
        // SAFETY: test blocks we own.
        let over: Vec<bool> = ptrs.iter().map(|&p| unsafe { f.push(0, p) }).collect();
        assert_eq!(over, [false, false, true, true]);
        let (h, n) = f.take(0, 3);
        assert_eq!((h, n), (ptrs[3], 3));
        assert_eq!(f.count(0), 1);
        assert_eq!(f.pop(0), ptrs[0]);
        let (h2, n2) = f.take(0, 5);
        assert!(h2.is_null() && n2 == 0);
    }

    #[test]
    fn extract_if_keeps_order_of_the_rest() {
        let mut f = Front::new();
        f.set_cap(1, 10);
        let mut b = blocks(5);
        let ptrs: Vec<*mut u8> = b.iter_mut().map(|x| x.as_mut_ptr() as *mut u8).collect();
        for &p in &ptrs {
            // SAFETY: test blocks we own.
            unsafe { f.push(1, p) };
        }
        let (chain, n) = f.extract_if(1, |p| p == ptrs[1] || p == ptrs[3]);
        assert_eq!(n, 2);
        assert_eq!(f.count(1), 3);
        assert!(chain == ptrs[1] || chain == ptrs[3]);
        assert_eq!(f.pop(1), ptrs[4]);
        assert_eq!(f.pop(1), ptrs[2]);
        assert_eq!(f.pop(1), ptrs[0]);
        assert!(f.pop(1).is_null());
    }

    #[test]
    fn push_chain_appends_all() {
        let mut f = Front::new();
        let mut b = blocks(3);
        let ptrs: Vec<*mut u8> = b.iter_mut().map(|x| x.as_mut_ptr() as *mut u8).collect();
        // SAFETY: build a chain of our own blocks.
        unsafe {
            set_block_next(ptrs[0], ptrs[1]);
            set_block_next(ptrs[1], ptrs[2]);
            f.push_chain(5, ptrs[0], ptrs[2], 3);
        }
        assert_eq!(f.count(5), 3);
        assert_eq!(f.total(), 3);
        assert_eq!(f.pop(5), ptrs[0]);
        assert_eq!(f.pop(5), ptrs[1]);
        assert_eq!(f.pop(5), ptrs[2]);
    }
}
