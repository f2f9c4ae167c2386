//! With the slow start off (`set_growth(false)`, what the facade does when
//! `HAKMEM_CACHE_CAP` fixes the caps), a batch larger than the cache
//! cycles through the slabs round after round and the cap stays where the
//! policy put it. In a process of its own: the switch is process-wide.

use hakmem_ace_learning::POLICY;
use hakmem_refill_engine::{abandon_all, grow_limit, set_growth, Heap};
use hakmem_tls_front::Front;

mod common;
use common::batch_rounds;

#[test]
fn a_cap_set_by_hand_does_not_grow() {
    let class = 1; // 32 bytes
    let base = POLICY.cache_cap(class);
    assert!(grow_limit(class, base) > 600 && base < 300);
    let mut heap = Heap::new();
    heap.set_id(9001);
    let mut front = Front::new();

    set_growth(false);
    let (refills, flushes) = batch_rounds(&mut heap, &mut front, class, 600, 4);
    assert!(refills > 1 && flushes > 1, "the batch keeps cycling");
    assert_eq!(front.cap(class), base);
    assert_eq!((heap.cap_boost(class), heap.grown_bytes()), (0, 0));

    // On again, the same batch grows the cap until it fits.
    set_growth(true);
    batch_rounds(&mut heap, &mut front, class, 600, 2);
    assert!(front.cap(class) > 600, "cap {}", front.cap(class));
    let (refills, flushes) = batch_rounds(&mut heap, &mut front, class, 600, 2);
    assert_eq!((refills, flushes), (0, 0));
    // SAFETY: this test's heap and front.
    unsafe { abandon_all(&mut heap, &mut front) };
}
