//! The secure mode's per-thread holding areas for freed slab blocks: the
//! quarantine (a FIFO ring) and, after it, a per-class cache whose links
//! are encoded and authenticated.
//!
//! A block in the secure cache:
//!
//! ```text
//! word 0          word 1      word 2               words 3..
//! | encoded link | free mark | check of the link | zero ... |
//! ```
//!
//! The link is the next block's address XORed with the secret and the
//! slot's address; word 2 is a keyed check of word 0 (a multiply by the
//! odd secret). A stray write into either word fails the check, and a
//! forged link needs the secret: the cache stops the program instead of
//! following a corrupted link, without a registry lookup per pop. A block
//! in the quarantine holds 0, the mark and zeros.

use core::ptr;

use hakmem_ace_learning::default_cap;
use hakmem_ptr_bridge::NUM_CLASSES;

use super::{secret, word};
use crate::diag;

/// Blocks the quarantine holds at most.
const Q_SLOTS: usize = 64;
/// Bytes the quarantine holds at most.
const Q_BYTES: usize = 256 * 1024;

/// The secure cache's size per class: as many blocks as the default
/// mode's thread cache keeps (`default_cap`), computed once.
const CACHE_CAP: [u16; NUM_CLASSES] = {
    let mut t = [0u16; NUM_CLASSES];
    let mut c = 0;
    while c < NUM_CLASSES {
        let cap = default_cap(c);
        t[c] = if cap > u16::MAX as u32 {
            u16::MAX
        } else {
            cap as u16
        };
        c += 1;
    }
    t
};

/// A quarantine entry: the block address (below 2^56) with its class in
/// the top byte, so that leaving the quarantine needs no slab-record read.
#[inline]
fn entry(b: usize, class: usize) -> usize {
    b | class << 56
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

    /// Room left in the secure cache of `class`.
    pub(super) fn cache_room(&self, class: usize) -> u32 {
        CACHE_CAP[class].saturating_sub(self.cached[class]) as u32
    }

    /// Takes a cached block of `class`, or null. The head is trusted (our
    /// own state holds it); its link word is authenticated by word 2
    /// before the cache follows it.
    #[inline]
    pub(super) fn cache_pop(&mut self, class: usize) -> *mut u8 {
        let b = self.cache[class];
        if b.is_null() {
            return b;
        }
        // SAFETY: a free block of ours of at least 32 bytes (the secure
        // layout's smallest class): words 0 and 2 are the link and check.
        let (w0, w2) = unsafe { (word(b as usize, 0), word(b as usize, 2)) };
        let next = decode_link(b as usize, w0 as usize) as *mut u8;
        if w2 != link_check(b as usize, w0) {
            corrupted_link(next)
        }
        self.cache[class] = next;
        self.cached[class] -= 1;
        b
    }

    /// Keeps free block `b` of `class` if there is room. Its word 2 must
    /// still be zero (the check is written there).
    #[inline]
    pub(super) fn cache_push(&mut self, class: usize, b: *mut u8) -> bool {
        if self.cached[class] >= CACHE_CAP[class] {
            return false;
        }
        // SAFETY: a free block of ours of at least 32 bytes.
        unsafe {
            if word(b as usize, 2) != 0 {
                diag::fatal("malloc()", "write after free into block", b)
            }
            let link = encode_link(b as usize, self.cache[class] as usize);
            let w = b as *mut u64;
            *w = link as u64;
            *w.add(2) = link_check(b as usize, link as u64);
        }
        self.cache[class] = b;
        self.cached[class] += 1;
        true
    }

    /// Empties the cache of `class` and returns its chain with every link
    /// authenticated, decoded and rewritten in clear (as the thread cache
    /// links blocks), word 2 zeroed again: `(head, tail, count)`.
    pub(super) fn cache_take(&mut self, class: usize) -> (*mut u8, *mut u8, u32) {
        let head = core::mem::replace(&mut self.cache[class], ptr::null_mut());
        self.cached[class] = 0;
        let (mut b, mut tail, mut n) = (head, ptr::null_mut(), 0);
        while !b.is_null() {
            // SAFETY: a cached free block: words 0 and 2 are ours.
            unsafe {
                let (w0, w2) = (word(b as usize, 0), word(b as usize, 2));
                let next = decode_link(b as usize, w0 as usize) as *mut u8;
                if w2 != link_check(b as usize, w0) {
                    corrupted_link(next)
                }
                hakmem_ptr_bridge::set_block_next(b, next);
                *(b as *mut u64).add(2) = 0;
                tail = b;
                n += 1;
                b = next;
            }
        }
        (head, tail, n)
    }

    /// Puts freed block `b` (stride `stride`, class `class`) at the tail.
    /// The caller then takes [`Quarantine::pop_due`] entries until it
    /// says none is due.
    #[inline]
    pub(super) fn put(&mut self, b: usize, class: usize, stride: usize) {
        let tail = (self.head as usize + self.len as usize) % Q_SLOTS;
        self.ring[tail] = entry(b, class);
        self.len += 1;
        self.bytes += stride;
    }

    /// The oldest block and its class when the quarantine is over its
    /// limits (or `all`), else `None`.
    #[inline]
    pub(super) fn pop_due(&mut self, all: bool) -> Option<(usize, usize)> {
        if self.len == 0 || !(all || self.len as usize == Q_SLOTS || self.bytes > Q_BYTES) {
            return None;
        }
        let e = self.ring[self.head as usize];
        self.head = (self.head + 1) % Q_SLOTS as u32;
        self.len -= 1;
        let (b, class) = (e & ((1 << 56) - 1), e >> 56);
        self.bytes = self
            .bytes
            .saturating_sub(hakmem_ptr_bridge::CLASS_STRIDE[class] as usize);
        Some((b, class))
    }
}

#[cold]
#[inline(never)]
fn corrupted_link(next: *mut u8) -> ! {
    diag::fatal("malloc()", "corrupted free-list link to", next)
}

/// The secure cache's link word in free block `at`: the next block's
/// address XORed with the secret and `at` (XOR: its own inverse).
#[inline]
fn encode_link(at: usize, next: usize) -> usize {
    next ^ secret() as usize ^ at.rotate_left(23)
}

/// The inverse of [`encode_link`].
#[inline]
fn decode_link(at: usize, word: usize) -> usize {
    encode_link(at, word)
}

/// The keyed check of link word `link` in block `at` (word 2): a multiply
/// by the odd secret mixes every bit of the link and the address into the
/// high bits, which the rotation brings down. Not a cryptographic MAC: it
/// makes a blind or stray write to the link fail, which is the threat
/// model's promise (docs/security.md).
#[inline]
fn link_check(at: usize, link: u64) -> u64 {
    (link ^ (at as u64).rotate_left(41))
        .wrapping_mul(secret())
        .rotate_left(29)
}
