//! Model tests of the remote-free protocol under shuttle
//! (`docs/remote-free.md`, "Model tests").
//!
//! Each test runs remote-queue's own protocol code — the generic `*_on`
//! functions that the production `push_remote`, `take_remote`,
//! `remote_free`, `remote_free_chain` and `adopt` wrap — and the slab
//! record's own transitions — the provided methods of `SlabRecord`
//! (`go_full`, `go_queued`, `hand_to`, `try_adopt_full`, `queue_if_full`,
//! `claim_queued`, `sub_used`, `end_remote_free`) that `SlabMeta`'s methods
//! forward to — on
//! a slab record built from shuttle's atomics, and lets shuttle's
//! schedulers choose the interleavings (a scheduling point at every atomic
//! operation and lock). The sequencing of the slab owner's side (drain,
//! give up an exhausted slab, thread exit, release, sweep) lives in
//! `hakmem-refill-engine`, which this crate cannot depend on; it is
//! restated here step by step, calling those same transitions, and must
//! follow that code when it changes. `release` (which also resets the
//! owner-only fields the model does not have) is restated with its
//! orderings.
//!
//! Shuttle explores interleavings under sequential consistency: it finds
//! protocol bugs (a missing CAS or re-check, steps in the wrong order), not
//! bugs that need a weaker-than-SeqCst ordering to show.

use std::collections::HashSet;
use std::sync::atomic::Ordering::{self, SeqCst};
use std::sync::Arc;

use hakmem_ptr_bridge::{block_next, set_block_next, slab_state, NO_OWNER};
use hakmem_remote_queue::primitive::{AtomicCell, AtomicCount};
use hakmem_remote_queue::{
    chain_len, remote_free_chain_on, remote_free_on, take_remote_on, RemoteFree, SlabRecord,
};
use shuttle::scheduler::{DfsScheduler, PctScheduler, RandomScheduler};
use shuttle::sync::atomic;
use shuttle::sync::Mutex;
use shuttle::{thread, Config, Runner};

/// A `primitive` atomic over a shuttle atomic (the orphan rule wants a
/// local type).
macro_rules! model_cell {
    ($name:ident, $inner:ty, $t:ty) => {
        struct $name($inner);
        impl AtomicCell<$t> for $name {
            fn load(&self, o: Ordering) -> $t {
                self.0.load(o)
            }
            fn store(&self, v: $t, o: Ordering) {
                self.0.store(v, o)
            }
            fn swap(&self, v: $t, o: Ordering) -> $t {
                self.0.swap(v, o)
            }
            fn compare_exchange(&self, c: $t, n: $t, s: Ordering, f: Ordering) -> Result<$t, $t> {
                self.0.compare_exchange(c, n, s, f)
            }
            fn compare_exchange_weak(
                &self,
                c: $t,
                n: $t,
                s: Ordering,
                f: Ordering,
            ) -> Result<$t, $t> {
                self.0.compare_exchange_weak(c, n, s, f)
            }
        }
    };
}

model_cell!(MPtr, atomic::AtomicPtr<u8>, *mut u8);
model_cell!(MWord, atomic::AtomicUsize, usize);
model_cell!(MCount, atomic::AtomicU32, u32);
model_cell!(MState, atomic::AtomicU8, u8);

impl AtomicCount for MCount {
    fn fetch_add(&self, v: u32, o: Ordering) -> u32 {
        self.0.fetch_add(v, o)
    }
    fn fetch_sub(&self, v: u32, o: Ordering) -> u32 {
        self.0.fetch_sub(v, o)
    }
}

/// Heap ids of the model threads.
const OWNER: usize = 1;
const ADOPTER: usize = 2;

/// The model slab: the shared fields as shuttle atomics, plus what the
/// real record keeps elsewhere or implicitly.
struct Slab {
    remote: MPtr,
    owner: MWord,
    used: MCount,
    state: MState,
    /// *owner*: the local free list, as block indices (only the current
    /// owner touches it, as `SlabMeta::free`). A std mutex, never held
    /// across a shuttle operation: bookkeeping, not a scheduling point.
    local: std::sync::Mutex<Vec<usize>>,
    /// *owner*: blocks never carved (`capacity - carved`).
    uncarved: std::sync::Mutex<u32>,
    /// How many times the slab is linked in the reclaim list (0 or 1).
    listed: Mutex<u32>,
    /// Set when the slab went back to the backend; any protocol access
    /// after that is a use after release. A std atomic: bookkeeping of the
    /// model, not a scheduling point.
    released: std::sync::atomic::AtomicBool,
    /// The blocks' memory (16 bytes each, like the smallest class).
    blocks: *mut [usize; 2],
    nblocks: usize,
}

// SAFETY: `blocks` is only reached through the protocol, which hands each
// block to one thread at a time (the model checks exactly that).
unsafe impl Send for Slab {}
// SAFETY: as above.
unsafe impl Sync for Slab {}

impl SlabRecord for Slab {
    type Ptr = MPtr;
    type Word = MWord;
    type Count = MCount;
    type State = MState;
    fn remote_cell(&self) -> &MPtr {
        self.live();
        &self.remote
    }
    fn owner_cell(&self) -> &MWord {
        self.live();
        &self.owner
    }
    fn used_cell(&self) -> &MCount {
        self.live();
        &self.used
    }
    fn state_cell(&self) -> &MState {
        self.live();
        &self.state
    }
}

impl Slab {
    /// A slab of `nblocks` blocks in `state`, owned by `owner`, with `used`
    /// blocks out, `local` on the local free list and `uncarved` never
    /// carved.
    fn new(
        nblocks: usize,
        state: u8,
        owner: usize,
        used: u32,
        local: Vec<usize>,
        uncarved: u32,
    ) -> Arc<Slab> {
        let mem = vec![[0usize; 2]; nblocks].into_boxed_slice();
        let slab = Slab {
            remote: MPtr(atomic::AtomicPtr::new(std::ptr::null_mut())),
            owner: MWord(atomic::AtomicUsize::new(owner)),
            used: MCount(atomic::AtomicU32::new(used)),
            state: MState(atomic::AtomicU8::new(state)),
            local: std::sync::Mutex::new(local),
            uncarved: std::sync::Mutex::new(uncarved),
            listed: Mutex::new(u32::from(state == slab_state::QUEUED)),
            released: std::sync::atomic::AtomicBool::new(false),
            blocks: Box::into_raw(mem) as *mut [usize; 2],
            nblocks,
        };
        Arc::new(slab)
    }

    fn live(&self) {
        assert!(
            !self.released.load(SeqCst),
            "a protocol step touched the slab record after it was released"
        );
    }

    fn block(&self, i: usize) -> *mut u8 {
        assert!(i < self.nblocks);
        // SAFETY: in bounds of the allocation made in `new`.
        unsafe { self.blocks.add(i) as *mut u8 }
    }

    fn index(&self, p: *mut u8) -> usize {
        (p as usize - self.blocks as usize) / 16
    }

    /// Reclaim list push, as `publish` (with its debug assertions).
    fn publish(&self) {
        assert_eq!(self.state.load(SeqCst), slab_state::QUEUED);
        assert_eq!(self.owner.load(SeqCst), NO_OWNER);
        let mut l = self.listed.lock().unwrap();
        *l += 1;
        assert_eq!(*l, 1, "the slab was published twice");
    }

    /// `adopt`: reclaim list pop, then `claim_queued`; true if adopted.
    fn adopt(&self, heap: usize) -> bool {
        {
            let mut l = self.listed.lock().unwrap();
            if *l == 0 {
                return false;
            }
            *l -= 1;
        }
        self.claim_queued(heap);
        true
    }

    /// A remote free of block `i` through `remote_free_on`.
    fn remote_free(&self, i: usize) {
        // SAFETY: block `i` is held by the calling thread and counted in
        // `used`.
        let r = unsafe { remote_free_on(self, self.block(i), |s: &Slab| s.publish()) };
        assert_eq!(r, RemoteFree::Queued);
    }

    /// A remote free of the blocks `is` as one chain through
    /// `remote_free_chain_on` (a flushed pending batch).
    fn remote_free_chain(&self, is: &[usize]) {
        let head = self.block(is[0]);
        let mut tail = head;
        for &i in &is[1..] {
            let b = self.block(i);
            // SAFETY: the blocks are the caller's, being freed.
            unsafe { set_block_next(tail, b) };
            tail = b;
        }
        // SAFETY: a chain of blocks the caller holds, counted in `used`.
        unsafe { remote_free_chain_on(self, head, tail, is.len() as u32, |s: &Slab| s.publish()) };
    }

    /// The owner's drain (`drain_remote` in refill-engine, the remote half
    /// of `refill`): takes the remote stack onto the local list; returns
    /// how many blocks moved.
    fn drain(&self) -> u32 {
        let r = take_remote_on(self);
        if r.is_null() {
            return 0;
        }
        // SAFETY: `take_remote_on` returns a chain of freed blocks.
        let (n, _) = unsafe { chain_len(r) };
        let mut local = self.local.lock().unwrap();
        let mut cur = r;
        while !cur.is_null() {
            local.push(self.index(cur));
            // SAFETY: a block of the chain we took.
            cur = unsafe { block_next(cur) };
        }
        n
    }

    /// `SlabMeta::is_exhausted`.
    fn is_exhausted(&self) -> bool {
        // The std locks are released before the shuttle load: a task
        // switch while one is held could block the one OS thread that
        // shuttle runs every task on.
        let nothing_local = self.local.lock().unwrap().is_empty();
        let nothing_to_carve = *self.uncarved.lock().unwrap() == 0;
        nothing_local && nothing_to_carve && self.remote_cell().load(SeqCst).is_null()
    }

    /// `release_slab` (`SlabMeta::release`): back to the backend (the
    /// record is reset; it may be handed out again).
    fn release(&self) {
        assert_eq!(self.used_cell().load(SeqCst), 0);
        self.owner_cell().store(NO_OWNER, SeqCst);
        self.remote_cell().store(std::ptr::null_mut(), SeqCst);
        self.state_cell().store(slab_state::FREE, SeqCst);
        self.released.store(true, SeqCst);
    }

    /// refill-engine's `give_up_exhausted`; true when the slab was taken
    /// back.
    fn give_up_exhausted(&self, heap: usize) -> bool {
        if self.go_full(slab_state::ACTIVE) {
            self.hand_to(heap);
            return true;
        }
        false
    }

    /// One slab of refill-engine's `abandon_all` (thread exit).
    fn abandon(&self) {
        self.drain();
        if self.used_cell().load(SeqCst) == 0 {
            self.release();
        } else if !self.local.lock().unwrap().is_empty() || *self.uncarved.lock().unwrap() > 0 {
            self.go_queued();
            self.publish();
        } else if self.go_full(slab_state::QUEUED) {
            self.publish();
        }
    }

    /// refill-engine's `sweep_empty` for this slab (the `used == 0` test of
    /// `ReclaimList::take_empty`, under the list lock); true if released.
    fn sweep(&self) -> bool {
        let mut l = self.listed.lock().unwrap();
        if *l == 1 && self.used_cell().load(SeqCst) == 0 {
            *l = 0;
            drop(l);
            self.release();
            return true;
        }
        false
    }

    /// The blocks on the remote stack, without taking them (end of run).
    fn remote_blocks(&self) -> Vec<usize> {
        let mut v = Vec::new();
        let mut cur = self.remote.load(SeqCst);
        while !cur.is_null() {
            v.push(self.index(cur));
            // SAFETY: a block of the stack; every thread has finished.
            cur = unsafe { block_next(cur) };
        }
        v
    }

    /// End-of-run invariants: the state, owner and reclaim-list link agree,
    /// no free block is stranded, and the blocks in `freed` are each in
    /// exactly one free structure (local list or remote stack), unless the
    /// slab was released (then all its memory is free).
    fn check_end(&self, freed: &[usize]) {
        let state = self.state.load(SeqCst);
        let owner = self.owner.load(SeqCst);
        let listed = *self.listed.lock().unwrap();
        let remote = self.remote_blocks();
        let local = self.local.lock().unwrap().clone();
        if self.released.load(SeqCst) {
            assert_eq!(state, slab_state::FREE);
            assert!(remote.is_empty(), "a block was pushed on a released slab");
            assert_eq!(self.used.load(SeqCst), 0, "used changed after release");
            assert_eq!(listed, 0, "a released slab is still listed");
            return;
        }
        match state {
            slab_state::ACTIVE => {
                assert_ne!(owner, NO_OWNER, "ACTIVE without an owner");
                assert_eq!(listed, 0, "ACTIVE (owned) and published");
            }
            slab_state::QUEUED => {
                assert_eq!(owner, NO_OWNER, "QUEUED with an owner");
                assert_eq!(listed, 1, "QUEUED but not in the reclaim list");
            }
            slab_state::FULL => {
                assert_eq!(owner, NO_OWNER, "FULL with an owner");
                assert_eq!(listed, 0, "FULL and listed");
                assert!(
                    remote.is_empty() && local.is_empty(),
                    "free blocks stranded on a FULL slab nobody will drain: remote {remote:?} local {local:?}"
                );
            }
            s => panic!("unexpected state {s}"),
        }
        let mut seen = HashSet::new();
        for &b in remote.iter().chain(local.iter()) {
            assert!(seen.insert(b), "block {b} is free twice");
        }
        for b in freed {
            assert!(seen.contains(b), "block {b} was freed and is lost");
        }
        let free = seen.len() as u32 + *self.uncarved.lock().unwrap();
        assert_eq!(
            self.used.load(SeqCst) + free,
            self.nblocks as u32,
            "used + free + uncarved != capacity"
        );
    }
}

impl Drop for Slab {
    fn drop(&mut self) {
        // SAFETY: the allocation made in `new`, rebuilt with its length.
        drop(unsafe {
            Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                self.blocks,
                self.nblocks,
            ))
        });
    }
}

/// Schedules per scheduler in [`explore`]: enough to find every fault
/// recorded in `docs/remote-free.md` many times over in a release build,
/// and a smoke-sized run in a debug build (`cargo test --workspace`).
const ITERATIONS: usize = if cfg!(debug_assertions) {
    2_000
} else {
    500_000
};

/// Shuttle's configuration: its warning that it runs every atomic as
/// SeqCst is silenced, because the module documentation and
/// `docs/remote-free.md` say so and what it means.
fn config() -> Config {
    let mut c = Config::new();
    c.silence_warnings = true;
    c
}

/// Runs `f` under shuttle's PCT scheduler (depth 3) and its random
/// scheduler, [`ITERATIONS`] schedules each (fresh seeds every run; a
/// failure prints the schedule to replay).
fn explore(f: impl Fn() + Send + Sync + 'static) {
    let f = Arc::new(f);
    let g = f.clone();
    Runner::new(PctScheduler::new(3, ITERATIONS), config()).run(move || g());
    Runner::new(RandomScheduler::new(ITERATIONS), config()).run(move || f());
}

/// Runs `f` under every schedule (shuttle's DFS scheduler), for the tests
/// small enough to be explored exhaustively; returns how many there were.
fn explore_all(f: impl Fn() + Send + Sync + 'static) -> usize {
    Runner::new(DfsScheduler::new(None, false), config()).run(f)
}

/// (1) Two threads free remotely (single blocks, and a batch pushed as one
/// chain) while the owner drains: every block is drained exactly once and
/// `used` ends at zero.
#[test]
fn remote_pushes_and_owner_drain_lose_nothing() {
    explore(|| {
        let s = Slab::new(4, slab_state::ACTIVE, OWNER, 4, Vec::new(), 0);
        let a = {
            let s = s.clone();
            thread::spawn(move || {
                s.remote_free(0);
                s.remote_free(1);
            })
        };
        let b = {
            let s = s.clone();
            thread::spawn(move || s.remote_free_chain(&[2, 3]))
        };
        let mut drained = 0;
        for _ in 0..3 {
            drained += s.drain();
        }
        a.join().unwrap();
        b.join().unwrap();
        drained += s.drain();
        assert_eq!(drained, 4, "drained {drained} of 4 pushed blocks");
        assert_eq!(s.used.load(SeqCst), 0);
        s.check_end(&[0, 1, 2, 3]);
    });
}

/// (2) A remote free racing with the owner giving the slab up at thread
/// exit (`abandon_all`) and a third thread adopting it from the reclaim
/// list and draining it: the block is never lost and the slab ends with
/// exactly one owner, or published (QUEUED, in the list), or released.
/// Once with an exhausted slab (the FULL branch of `abandon_all`) and once
/// with a free block left (the QUEUED branch).
#[test]
fn remote_free_racing_publish_and_adopt() {
    for has_free in [false, true] {
        explore(move || {
            // Block 0 is held by the remote thread; with `has_free`, block
            // 1 is on the owner's local list, else it is out too.
            let (used, local) = if has_free { (1, vec![1]) } else { (2, vec![]) };
            let s = Slab::new(2, slab_state::ACTIVE, OWNER, used, local, 0);
            let remote = {
                let s = s.clone();
                thread::spawn(move || s.remote_free(0))
            };
            let owner = {
                let s = s.clone();
                thread::spawn(move || s.abandon())
            };
            let adopter = {
                let s = s.clone();
                thread::spawn(move || {
                    for _ in 0..2 {
                        if s.adopt(ADOPTER) {
                            s.drain();
                            assert_eq!(s.owner_cell().load(SeqCst), ADOPTER);
                            return;
                        }
                    }
                })
            };
            remote.join().unwrap();
            owner.join().unwrap();
            adopter.join().unwrap();
            s.check_end(&[0]);
        });
    }
}

/// (3) refill's "go FULL, re-check remote, CAS FULL→ACTIVE"
/// (`give_up_exhausted`) against two concurrent remote frees: no free is
/// stranded on a FULL slab, and the slab is never both taken back and
/// published.
#[test]
fn give_up_exhausted_against_remote_free() {
    explore(|| {
        let s = Slab::new(2, slab_state::ACTIVE, OWNER, 2, Vec::new(), 0);
        let frees: Vec<_> = (0..2)
            .map(|i| {
                let s = s.clone();
                thread::spawn(move || s.remote_free(i))
            })
            .collect();
        // The owner's refill: a last look finds nothing, so it lets go.
        if s.is_exhausted() {
            s.give_up_exhausted(OWNER);
        }
        for t in frees {
            t.join().unwrap();
        }
        s.check_end(&[0, 1]);
    });
}

/// (4) Release of an empty slab racing with a late remote free: the owner
/// frees its last block locally (`return_block_to`: release when `used`
/// drops to zero), or a sweeper releases a published slab
/// (`sweep_empty`), while another thread's remote free of the slab's other
/// block is in flight. The slab is released only after that free's last
/// touch of the record.
#[test]
fn release_racing_late_remote_free() {
    // The owner's local free of block 1 while block 0 is freed remotely.
    let schedules = explore_all(|| {
        let s = Slab::new(2, slab_state::ACTIVE, OWNER, 2, Vec::new(), 0);
        let remote = {
            let s = s.clone();
            thread::spawn(move || s.remote_free(0))
        };
        s.local.lock().unwrap().push(1);
        if s.sub_used(1) == 1 {
            s.release();
        }
        remote.join().unwrap();
        s.check_end(&[0, 1]);
    });
    assert!(schedules > 1, "{schedules}");
    // A published slab with one block out, swept while it comes back.
    let schedules = explore_all(|| {
        let s = Slab::new(2, slab_state::QUEUED, NO_OWNER, 1, vec![1], 0);
        let remote = {
            let s = s.clone();
            thread::spawn(move || s.remote_free(0))
        };
        let sweeper = {
            let s = s.clone();
            thread::spawn(move || {
                for _ in 0..2 {
                    if s.sweep() {
                        return;
                    }
                }
            })
        };
        remote.join().unwrap();
        sweeper.join().unwrap();
        s.check_end(&[0, 1]);
    });
    assert!(schedules > 1, "{schedules}");
}

/// (5) refill-engine's `free_remote` adopting a FULL slab on the spot
/// (`try_adopt_full`) against another thread's remote free of the same
/// slab, whose `queue_if_full` wants to publish it: the slab is adopted or
/// published, never both, and no freed block is lost. A freer that loses
/// the adoption frees its block remotely, as `free_remote` does.
#[test]
fn adopt_full_against_remote_free() {
    explore(|| {
        // Both blocks out and the owner let go of the slab: FULL.
        let s = Slab::new(2, slab_state::FULL, NO_OWNER, 2, Vec::new(), 0);
        let adopter = {
            let s = s.clone();
            thread::spawn(move || {
                if s.try_adopt_full(ADOPTER) {
                    // Block 0 goes to the adopter's thread cache: it stays
                    // counted in `used`.
                    return true;
                }
                s.remote_free(0);
                false
            })
        };
        let remote = {
            let s = s.clone();
            thread::spawn(move || s.remote_free(1))
        };
        let adopted = adopter.join().unwrap();
        remote.join().unwrap();
        if adopted {
            assert_eq!(s.owner.load(SeqCst), ADOPTER, "adopted without the owner");
            s.check_end(&[1]);
        } else {
            s.check_end(&[0, 1]);
        }
    });
}
