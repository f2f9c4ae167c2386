//! A cache miss: a batch of blocks from the thread's slabs.

use core::ptr;
use core::sync::atomic::Ordering::Relaxed;

use hakmem_ace_learning::{EventKind, POLICY};
use hakmem_ptr_bridge::{block_next, set_block_next, set_free_mark, SlabMeta, CLASS_SIZE};
use hakmem_tls_front::Front;

use crate::heap::{event, give_up_exhausted, obtain, Heap, UNREGISTERED};

/// When set, blocks are zeroed as they are carved (the facade's secure
/// mode sets it once, before the first allocation, so that every block it
/// hands out is zero past its list words whatever the slab served before,
/// and a non-zero byte there means a write after free).
static SCRUB_CARVED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Turns on (or off) the zeroing of blocks as they are carved.
pub fn set_scrub_carved(on: bool) {
    SCRUB_CARVED.store(on, Relaxed);
}

/// Cache miss for `class`: returns one block and leaves up to
/// `refill_count - 1` more in the thread cache. Null when memory is
/// exhausted (nothing was changed then).
///
/// # Safety
/// `heap` and `front` are the calling thread's, and the heap is registered.
#[cold]
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
pub unsafe fn refill(heap: &mut Heap, front: &mut Front, class: usize) -> *mut u8 {
    // One load: the class's refill count, cap and prefill budget together.
    let policy = POLICY.class_policy(class);
    // The policy's cap plus what the slow start added (see `grow.rs`).
    let cap = heap.grow[class].at_refill(class, policy.cap as u32, &mut heap.grown);
    front.set_cap(class, cap);
    // A warm-pool prefill budget (set by the learner after an idle trim)
    // may ask for more than the refill count; the cache cap bounds both.
    // The thread's first refills of the class bring less (`ramp`); a
    // budget the learner set on purpose is not ramped.
    let want = (policy.refill.max(1) as u32)
        .min(ramp(class, heap.grow[class].ramp_step()))
        .max(policy.prefill as u32)
        .min(front.cap(class).max(1));
    // SAFETY: forwarded contract.
    let c = unsafe { take_chain(heap, class, want, |_| {}) };
    if c.n == 0 {
        return ptr::null_mut();
    }
    let first = c.head;
    // SAFETY: `first` heads our private chain of `n` blocks.
    let rest = unsafe { block_next(first) };
    if c.n > 1 {
        // SAFETY: `rest..=tail` is the remaining chain of n-1 blocks.
        unsafe { front.push_chain(class, rest, c.tail, c.n - 1) };
    }
    first
}

/// Bytes the first refill of a class in a thread brings at most: a page.
const FIRST_REFILL_BYTES: u32 = 4096;

/// The most blocks the refill of `class` brings after `done` refills of
/// it by this thread: a page's worth at first (one block for a class above
/// 4 KiB), doubling with each refill, so the policy's count (about 16 KiB
/// worth) is reached by the third or fourth.
/// Carving writes a list link into every block it hands to the cache, so
/// a program that uses a class for a few blocks would otherwise have
/// 16 KiB of it resident: about 10 KiB per class used, over the twenty or
/// thirty classes of a shell or an interpreter (docs/benchmarks.md,
/// "the first refill of a class"). `done` is [`Grow::ramp_step`]: the
/// statistics' refill counter is reset at every publication and would
/// restart the ramp.
///
/// Mid classes were left out at first: with them ramped the test
/// `idle_memory_goes_back_with_the_background_purge` kept 20–28 MiB. The
/// cause was the test's choice of blocks to keep (one at every change of
/// superslab in allocation order): after a ramp of 1 + 2 blocks the
/// 4-block refills of 4 KiB blocks straddle slab ends, the cache hands out
/// the two superslabs' blocks interleaved, and the test kept 587 blocks
/// instead of 186, each pinning a slab (docs/benchmarks.md, fifth session).
///
/// [`Grow::ramp_step`]: crate::grow::Grow::ramp_step
#[inline]
fn ramp(class: usize, done: u32) -> u32 {
    // `done` is at most `RAMP_STEPS` (16) and the first count at most 256
    // (4096 / 16): the shift stays below 2^25.
    (FIRST_REFILL_BYTES / CLASS_SIZE[class]).max(1) << done
}

/// A chain of free blocks of one class that [`take_chain`] took: `n`
/// blocks from `head` to `tail`, linked through their first words (in
/// clear), each carrying its free mark and counted as used by its slab.
#[derive(Debug)]
pub struct Chain {
    /// First block (null when `n == 0`).
    pub head: *mut u8,
    /// Last block.
    pub tail: *mut u8,
    /// Number of blocks.
    pub n: u32,
}

/// Takes up to `want` (at least 1) free blocks of `class` from the
/// calling thread's slabs, as [`refill`] does, and hands them to the
/// caller as a chain instead of the thread cache (the secure mode keeps
/// them in its own checked cache). `n == 0` when memory is exhausted.
///
/// `check` sees every block taken from a free list (local or remote)
/// before its link is read: the secure mode's check that stops the
/// program on a corrupted link instead of following it. [`refill`] passes
/// a closure that does nothing, which compiles away.
///
/// # Safety
/// `heap` is the calling thread's, and it is registered.
#[cold]
#[inline]
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
pub unsafe fn take_chain(
    heap: &mut Heap,
    class: usize,
    want: u32,
    check: impl Fn(*mut u8),
) -> Chain {
    debug_assert!(heap.id != UNREGISTERED);
    let want = want.max(1);
    let mut head: *mut u8 = ptr::null_mut();
    let mut tail: *mut u8 = ptr::null_mut();
    let mut n = 0u32;
    while n < want {
        let s: &SlabMeta = if heap.partial[class].is_null() {
            match obtain(heap, class) {
                Some(s) => s,
                None => break,
            }
        } else {
            // SAFETY: linked slabs are live records owned by this heap.
            unsafe { &*heap.partial[class] }
        };
        let mut taken = 0u32;
        // Free blocks before never-used ones: the local list, and when it
        // runs short the remote stack too, so that carving (which grows the
        // set of blocks in circulation, and the cache footprint) only
        // happens when nothing freed is left.
        let mut f = s.free_head();
        let mut took_remote = false;
        while n < want {
            if f.is_null() {
                if took_remote {
                    break;
                }
                took_remote = true;
                f = hakmem_remote_queue::take_remote(s);
                if f.is_null() {
                    break;
                }
            }
            // Take a prefix of the list as it is: walk (reading only) to its
            // last block, cut the list there and splice the prefix in front
            // of our chain — one write for the whole prefix.
            let first = f;
            let mut last = f;
            let mut k = 1;
            check(last);
            // SAFETY: `last` is a free block of a slab we own.
            let mut nx = unsafe { block_next(last) };
            while k < want - n && !nx.is_null() {
                check(nx);
                last = nx;
                // SAFETY: as above.
                nx = unsafe { block_next(last) };
                k += 1;
            }
            // SAFETY: `last` ends the prefix, which becomes our chain's head.
            unsafe { set_block_next(last, head) };
            if tail.is_null() {
                tail = last;
            }
            head = first;
            f = nx;
            taken += k;
            n += k;
        }
        s.set_free_head(f);
        if n < want {
            let cap = s.capacity();
            let mut carved = s.carved();
            if carved < cap {
                let bs = s.block_size() as usize;
                let start = s.data_start();
                let scrub = SCRUB_CARVED.load(Relaxed);
                while n < want && carved < cap {
                    let b = (start + carved as usize * bs) as *mut u8;
                    if scrub {
                        // SAFETY: a never-used block of `bs` bytes inside
                        // the slab we own.
                        unsafe { ptr::write_bytes(b, 0, bs) };
                    }
                    // SAFETY: a never-used block inside the slab we own.
                    // It enters a free structure, so it carries the free
                    // mark like every other free block.
                    unsafe {
                        set_block_next(b, head);
                        set_free_mark(b);
                    }
                    if tail.is_null() {
                        tail = b;
                    }
                    head = b;
                    carved += 1;
                    taken += 1;
                    n += 1;
                }
                s.set_carved(carved);
            }
        }
        if taken > 0 {
            s.add_used(taken);
            s.set_spared(false);
        }
        if n < want && s.is_exhausted() {
            if !s.spared() && heap.move_to_tail(class, s) {
                // A second chance: its blocks are in use or in this
                // thread's cache, and the thread's own frees of them stay
                // on the fast path only while it owns the slab. Given up
                // now, each of those frees would adopt it back
                // (`free_remote`) just for the next refill to give it up
                // again. Kept, it waits at the end of the list; a refill
                // that finds it exhausted a second time gives it up (so
                // does one that finds it alone in the list).
                s.set_spared(true);
            } else {
                give_up_exhausted(heap, class, s);
            }
        }
    }
    if n > 0 {
        heap.grow[class].ramp_done();
        heap.counters.class[class].refills += 1;
        heap.counters.class[class].refill_blocks += n as u64;
        event(EventKind::Refill, class, n, heap);
    }
    Chain { head, tail, n }
}
