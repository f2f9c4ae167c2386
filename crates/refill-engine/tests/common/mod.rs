//! Helpers shared by the engine's test binaries: the facade's malloc and
//! free by the owner, over the engine's public API.

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
