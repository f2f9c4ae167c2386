//! Thread exit and trim: every cached block and owned slab is handed
//! back; ownerless empty slabs are swept back to the backend.

use core::ptr;

use hakmem_ptr_bridge::{block_next, slab_state, SlabMeta, NUM_CLASSES};
use hakmem_tls_front::Front;

use crate::flush::return_block;
use crate::heap::Heap;
use crate::remote::{drain_remote, flush_remote_batches};

/// Thread exit: empties every cache, then for each owned slab releases it
/// when empty or publishes it for adoption. Afterwards the heap owns
/// nothing and the front is empty.
///
/// # Safety
/// `heap` and `front` are the calling thread's.
#[cold]
pub unsafe fn abandon_all(heap: &mut Heap, front: &mut Front) {
    flush_remote_batches(heap);
    for class in 0..NUM_CLASSES {
        heap.grow[class].reset(front, class, &mut heap.grown);
        let (mut b, k) = front.take(class, u32::MAX);
        heap.counters.class[class].flushed_blocks += k as u64;
        while !b.is_null() {
            // SAFETY: a block from our cache chain.
            let nx = unsafe { block_next(b) };
            // SAFETY: blocks in our cache are allocated.
            unsafe { return_block(heap, class, b) };
            b = nx;
        }
    }
    for class in 0..NUM_CLASSES {
        while !heap.partial[class].is_null() {
            // SAFETY: linked slabs are live records owned by this heap.
            let s: &SlabMeta = unsafe { &*heap.partial[class] };
            heap.unlink(class, s);
            drain_remote(s);
            if s.used() == 0 {
                // SAFETY: owned, empty, unlinked.
                unsafe { hakmem_superslab_backend::release_slab(s) };
            } else if !s.free_head().is_null() || s.carved() < s.capacity() {
                s.go_queued();
                hakmem_remote_queue::publish(s);
            } else if s.go_full(slab_state::QUEUED) {
                hakmem_remote_queue::publish(s);
            }
        }
    }
}

/// Releases every published slab whose blocks have all been freed (for
/// example by other threads after its owner exited). Returns the number of
/// slabs released. Any thread may call it; it takes no ownership.
#[cold]
pub fn sweep_empty() -> usize {
    let mut released = 0;
    for list in hakmem_remote_queue::RECLAIM.iter() {
        let mut chain = list.take_empty();
        while !chain.is_null() {
            // SAFETY: `take_empty` returns live, unlinked, empty records.
            let s: &SlabMeta = unsafe { &*chain };
            chain = s.next();
            s.set_next(ptr::null_mut());
            // SAFETY: empty (used == 0), unlinked, no remote free in flight;
            // nobody else can reach it since it left the reclaim list.
            unsafe { hakmem_superslab_backend::release_slab(s) };
            released += 1;
        }
    }
    released
}

/// Trim: hands back the calling thread's caches and slabs (as at thread
/// exit, but the thread stays usable), then releases every ownerless slab
/// whose blocks have all been freed ([`sweep_empty`]). Returns the number of
/// slabs the sweep released.
///
/// # Safety
/// `heap` and `front` are the calling thread's.
#[cold]
pub unsafe fn trim(heap: &mut Heap, front: &mut Front) -> usize {
    // SAFETY: forwarded contract.
    unsafe { abandon_all(heap, front) };
    sweep_empty()
}
