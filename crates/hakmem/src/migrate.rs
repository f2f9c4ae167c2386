//! The internal controller API for slab migration and invariant scans,
//! used by the acceptance test (`cargo xtask acceptance`). Not a stable
//! public API.
//!
//! A controller obtains a [`ThreadHandle`] from each participating thread
//! (the thread calls [`ThreadHandle::current`]), chooses a slab with
//! [`owned_slabs`], and moves it with [`migrate_slab`] while both threads
//! are parked: that is the protocol's *quiesce* step, which only the
//! caller can provide. See `docs/migration.md`.

use core::sync::atomic::Ordering::Relaxed;

use hakmem_ptr_bridge::{block_next, slab_state, SlabMeta, SuperslabHeader, FIRST_SLAB, NO_OWNER};
pub use hakmem_refill_engine::migrate::{Migration, Step};
use hakmem_superslab_backend::registry;
pub use hakmem_superslab_backend::{set_node_spread, NODES};

use crate::thread::{self, ThreadState};

/// A participating thread's allocator state, usable by a controller while
/// that thread is parked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadHandle(*mut ThreadState);

// SAFETY: a handle is only dereferenced under the contract of the unsafe
// functions below (the owning thread is parked), never concurrently with
// its owner.
unsafe impl Send for ThreadHandle {}
// SAFETY: as above.
unsafe impl Sync for ThreadHandle {}

impl ThreadHandle {
    /// The calling thread's handle (registers the thread if needed).
    pub fn current() -> ThreadHandle {
        match thread::current() {
            Some(t) => ThreadHandle(t),
            None => crate::diag::fatal(
                "ThreadHandle::current()",
                "called after the thread's exit hook",
                core::ptr::null(),
            ),
        }
    }

    /// The heap id written in the records of the slabs this thread owns.
    ///
    /// # Safety
    /// The thread is alive and parked (or is the caller).
    pub unsafe fn heap_id(self) -> usize {
        // SAFETY: caller contract.
        unsafe { (*self.0).local.id() }
    }
}

/// Writes the addresses of the slab records `h` owns into `out`; returns
/// how many.
///
/// # Safety
/// The thread of `h` is alive and parked (or is the caller).
pub unsafe fn owned_slabs(h: ThreadHandle, out: &mut [usize]) -> usize {
    let mut tmp = [core::ptr::null::<SlabMeta>(); 64];
    // SAFETY: caller contract.
    let n = hakmem_refill_engine::migrate::owned_slabs(unsafe { (*h.0).local.heap() }, &mut tmp);
    let n = n.min(out.len());
    for i in 0..n {
        out[i] = tmp[i] as usize;
    }
    n
}

/// Moves the slab whose record is at `slab` from `from` to `to`.
///
/// # Safety
/// Both threads are alive and parked (or one is the caller) for the whole
/// call; `slab` came from [`owned_slabs`] of `from` during this pause.
pub unsafe fn migrate_slab(from: ThreadHandle, to: ThreadHandle, slab: usize) -> Option<Migration> {
    if from == to {
        return None;
    }
    // SAFETY: caller contract; distinct threads, so the borrows are disjoint.
    unsafe {
        let (fh, ff) = (*from.0).local.parts_mut();
        let (th, _) = (*to.0).local.parts_mut();
        hakmem_refill_engine::migrate::migrate_slab(fh, ff, th, &*(slab as *const SlabMeta))
    }
}

/// Checks the promises of a completed migration of `slab` away from
/// `from` (see `hakmem_refill_engine::migrate::audit_migrated`).
///
/// # Safety
/// Every thread that uses the allocator is parked (or is the caller).
pub unsafe fn audit_migrated(from: ThreadHandle, slab: usize) -> Result<(), &'static str> {
    // SAFETY: caller contract.
    unsafe {
        let (fh, ff) = (*from.0).local.parts_mut();
        hakmem_refill_engine::migrate::audit_migrated(fh, ff, &*(slab as *const SlabMeta))
    }
}

/// The home memory node of the superslab holding the slab record `slab`.
pub fn superslab_node(slab: usize) -> u8 {
    // SAFETY: a slab record lives in a superslab header (the caller got it
    // from `owned_slabs`, so the superslab is live).
    unsafe {
        (*(*(slab as *const SlabMeta)).superslab())
            .node
            .load(Relaxed)
    }
}

/// Moves the superslab holding slab record `slab` to memory node `node`
/// (see `hakmem_superslab_backend::move_superslab`). Live blocks stay where they
/// are; the superslab's free slabs now serve `node`'s threads.
///
/// # Safety
/// `slab` is a live slab record (its superslab is mapped).
pub unsafe fn move_superslab_of(slab: usize, node: u8) -> bool {
    // SAFETY: caller contract.
    unsafe {
        hakmem_superslab_backend::move_superslab((*(slab as *const SlabMeta)).superslab(), node)
    }
}

/// Makes later migrations skip one protocol step (fault injection).
#[cfg(feature = "fault-injection")]
pub fn inject_fault(step: Option<Step>) {
    hakmem_refill_engine::migrate::inject_fault(step);
}

/// Where a block lives: its slab record and its index in the slab.
pub fn block_location(p: *const u8) -> Option<(usize, usize)> {
    let k = registry::kind_of(p as usize);
    if !registry::is_superslab(k) {
        return None;
    }
    // SAFETY: inside a live superslab with slab shift `k`.
    let m = unsafe { hakmem_ptr_bridge::slab_meta_at(p as *mut u8, k) };
    let bs = m.block_size() as usize;
    if bs == 0 {
        return None;
    }
    Some((
        m as *const SlabMeta as usize,
        (p as usize - m.data_start()) / bs,
    ))
}

/// What [`scan_invariants`] saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanReport {
    /// Superslabs visited.
    pub superslabs: usize,
    /// Slabs not FREE.
    pub slabs_in_use: usize,
    /// Sum of `used` over those slabs.
    pub used_blocks: u64,
}

/// The slow invariant scan: for every slab of every superslab,
/// `used + local_free + remote_free + uncarved == capacity`, every listed
/// block is a distinct block start of that slab, and the owner matches the
/// state. Returns the first violation found.
///
/// # Safety
/// Every thread that uses the allocator is parked (or is the caller).
pub unsafe fn scan_invariants() -> Result<ScanReport, &'static str> {
    let mut rep = ScanReport::default();
    let mut err: Option<&'static str> = None;
    registry::for_each(|chunk, kind| {
        if err.is_some() || !registry::is_superslab(kind) {
            return;
        }
        rep.superslabs += 1;
        // SAFETY: the registry records a live superslab here.
        let h = unsafe { &*(chunk as *const SuperslabHeader) };
        for m in (FIRST_SLAB..h.slab_kind().slabs()).map(|i| h.slab(i)) {
            if let Err(e) = check_slab(m, &mut rep) {
                err = Some(e);
                return;
            }
        }
    });
    match err {
        Some(e) => Err(e),
        None => Ok(rep),
    }
}

fn check_slab(m: &SlabMeta, rep: &mut ScanReport) -> Result<(), &'static str> {
    let state = m.state();
    if state == slab_state::FREE {
        return Ok(());
    }
    let owner = m.owner();
    match state {
        slab_state::ACTIVE if owner == NO_OWNER => return Err("ACTIVE slab without an owner"),
        slab_state::FULL | slab_state::QUEUED if owner != NO_OWNER => {
            return Err("ownerless-state slab with an owner")
        }
        _ => {}
    }
    rep.slabs_in_use += 1;
    let cap = m.capacity() as usize;
    let bs = m.block_size() as usize;
    let start = m.data_start();
    let carved = m.carved() as usize;
    let used = m.used() as usize;
    rep.used_blocks += used as u64;
    if carved > cap || used > cap {
        return Err("slab counters out of range");
    }
    let mut seen = [0u64; 64]; // capacity <= 4096 blocks
    if cap > seen.len() * 64 {
        return Err("slab capacity above the scan's bitmap");
    }
    let mut count = 0usize;
    for head in [m.free_head(), m.remote_head()] {
        let mut cur = head;
        while !cur.is_null() {
            let a = cur as usize;
            if a < start || !(a - start).is_multiple_of(bs) || (a - start) / bs >= carved {
                return Err("a free list holds a pointer that is not a carved block of its slab");
            }
            let i = (a - start) / bs;
            if seen[i / 64] & (1 << (i % 64)) != 0 {
                return Err("a block is twice in the free lists of its slab");
            }
            seen[i / 64] |= 1 << (i % 64);
            count += 1;
            // SAFETY: a validated free block of the slab.
            cur = unsafe { block_next(cur) };
        }
    }
    if used + count + (cap - carved) != cap {
        return Err("used + local_free + remote_free + uncarved != capacity");
    }
    Ok(())
}
