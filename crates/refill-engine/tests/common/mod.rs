//! Helpers shared by the engine's test binaries: the facade's malloc and
//! free by the owner, over the engine's public API.

use hakmem_ptr_bridge::CLASS_SIZE;
use hakmem_refill_engine::{flush, refill, Heap};
use hakmem_tls_front::Front;

/// The program's malloc as the facade does it: a cache pop, else a refill.
pub fn alloc(heap: &mut Heap, front: &mut Front, class: usize) -> *mut u8 {
    let b = front.pop(class);
    if !b.is_null() {
        return b;
    }
    // SAFETY: `heap` and `front` are the caller's, and the heap is registered.
    let b = unsafe { refill(heap, front, class) };
    assert!(!b.is_null(), "refill of class {class} failed");
    b
}

/// The program's free by the owner: a cache push, and a flush on overflow.
pub fn free(heap: &mut Heap, front: &mut Front, class: usize, b: *mut u8) {
    // SAFETY: an allocated block of `class` the caller holds, in no list.
    if unsafe { front.push(class, b) } {
        // SAFETY: the caller's heap and front.
        unsafe { flush(heap, front, class) }.expect("only valid blocks were cached");
    }
}

/// Rounds of glibc's bench-malloc-simple shape: `n` blocks allocated and
/// written, then freed, half in order and half in reverse. Returns the
/// refills and flushes of the last round. Every block is value-checked.
pub fn batch_rounds(
    heap: &mut Heap,
    front: &mut Front,
    class: usize,
    n: usize,
    rounds: usize,
) -> (u64, u64) {
    let size = CLASS_SIZE[class] as usize;
    let mut last = (0, 0);
    for r in 0..rounds {
        let before = heap.counters.class[class];
        let blocks: Vec<*mut u8> = (0..n).map(|_| alloc(heap, front, class)).collect();
        for (i, &b) in blocks.iter().enumerate() {
            // SAFETY: `b` is a live block of `size` bytes the test holds.
            unsafe { std::ptr::write_bytes(b, (i + r) as u8, size) };
        }
        for (i, &b) in blocks.iter().enumerate() {
            // SAFETY: as above; no other live block overlaps it.
            let ok = unsafe { std::slice::from_raw_parts(b, size) }
                .iter()
                .all(|&x| x == (i + r) as u8);
            assert!(ok, "block {i} of round {r} was overwritten");
        }
        let (first, second) = blocks.split_at(n / 2);
        for &b in first.iter().chain(second.iter().rev()) {
            free(heap, front, class, b);
        }
        let after = heap.counters.class[class];
        last = (
            after.refills - before.refills,
            after.flushes - before.flushes,
        );
    }
    last
}
