//! Model-based property tests: random sequences of allocation operations
//! are applied to hakmem and to a model of the live blocks (layout, identity
//! and address range). Every block is filled with a pattern derived from its
//! identity and checked in full before it is freed, before and after a
//! realloc (the common prefix), and at the end of each case; zeroed
//! allocations are checked to be all-zero first. Every returned pointer is
//! checked for alignment, `usable_size >= size`, and that no two live blocks
//! overlap.

mod common;

use std::alloc::{GlobalAlloc, Layout};
use std::collections::BTreeMap;

use common::{assert_pattern, boundary_sizes, fill, find_nonzero};
use hakmem::HakMem;
use proptest::prelude::*;
use proptest::sample::Index;

const MAX_SIZE: usize = 300_000;
const MAX_ALIGN_SHIFT: u32 = 21; // 2 MiB

/// Sizes `1..=MAX_SIZE` weighted toward small, with class boundaries ±1.
fn size_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![
        8 => 1usize..=128,
        5 => 129usize..=1024,
        6 => proptest::sample::select(boundary_sizes(MAX_SIZE)),
        3 => 1025usize..=65536,
        1 => 65537usize..=MAX_SIZE,
    ]
}

/// Sizes as above, plus 0 (for the raw C-like API).
fn raw_size_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![1 => Just(0usize), 12 => size_strategy()]
}

/// Powers of two `1..=2 MiB`, weighted toward `<= 16`.
fn align_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![
        10 => (0u32..=4).prop_map(|s| 1usize << s),
        3 => (5u32..=12).prop_map(|s| 1usize << s),
        1 => (13u32..=MAX_ALIGN_SHIFT).prop_map(|s| 1usize << s),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    Alloc {
        size: usize,
        align: usize,
        zeroed: bool,
    },
    Dealloc {
        pick: Index,
    },
    Realloc {
        pick: Index,
        new_size: usize,
    },
}

fn op_strategy(size: fn() -> BoxedStrategy<usize>) -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (size(), align_strategy()).prop_map(|(size, align)| Op::Alloc { size, align, zeroed: false }),
        1 => (size(), align_strategy()).prop_map(|(size, align)| Op::Alloc { size, align, zeroed: true }),
        3 => any::<Index>().prop_map(|pick| Op::Dealloc { pick }),
        2 => (any::<Index>(), size()).prop_map(|(pick, new_size)| Op::Realloc { pick, new_size }),
    ]
}

fn boxed_size() -> BoxedStrategy<usize> {
    size_strategy().boxed()
}

fn boxed_raw_size() -> BoxedStrategy<usize> {
    raw_size_strategy().boxed()
}

/// One live block of the model.
#[derive(Debug)]
struct Block {
    ptr: *mut u8,
    size: usize,
    align: usize,
    seed: u64,
}

/// The model: live blocks and their address ranges `[ptr, ptr+usable)`.
#[derive(Default)]
struct Model {
    live: Vec<Block>,
    ranges: BTreeMap<usize, (usize, u64)>, // start -> (end, seed)
    next_seed: u64,
}

impl Model {
    fn new_seed(&mut self) -> u64 {
        self.next_seed += 1;
        common::mix(0xB10C_5EED, self.next_seed)
    }

    /// Checks a pointer just returned for a block of `size` at `align`, and
    /// records its range.
    fn admit(&mut self, p: *mut u8, size: usize, align: usize, seed: u64, what: &str) {
        assert!(!p.is_null(), "{what}: null for size {size} align {align}");
        assert_eq!(
            p as usize % align,
            0,
            "{what}: {p:p} (size {size}) is not aligned to {align}"
        );
        let usable = hakmem::usable_size(p);
        assert!(
            usable >= size,
            "{what}: usable_size({p:p}) = {usable} < requested {size} (align {align})"
        );
        assert!(
            hakmem::owns(p),
            "{what}: owns({p:p}) is false for a live block"
        );
        let start = p as usize;
        let end = start + usable.max(1);
        if let Some((&s, &(e, other))) = self.ranges.range(..=start).next_back() {
            assert!(
                e <= start,
                "{what}: new block [{start:#x}, {end:#x}) (size {size}, align {align}) overlaps \
                 live block [{s:#x}, {e:#x}) (seed {other:#x})"
            );
        }
        if let Some((&s, &(e, other))) = self.ranges.range(start..).next() {
            assert!(
                s >= end,
                "{what}: new block [{start:#x}, {end:#x}) (size {size}, align {align}) overlaps \
                 live block [{s:#x}, {e:#x}) (seed {other:#x})"
            );
        }
        self.ranges.insert(start, (end, seed));
    }

    fn forget_range(&mut self, p: *mut u8) {
        let r = self.ranges.remove(&(p as usize));
        assert!(r.is_some(), "model lost the range of {p:p}");
    }

    fn pick(&self, pick: &Index) -> Option<usize> {
        (!self.live.is_empty()).then(|| pick.index(self.live.len()))
    }
}

/// The operations under test: either `GlobalAlloc` or the raw API.
trait Api {
    /// # Safety
    /// As for `GlobalAlloc::alloc` / `alloc_zeroed`.
    unsafe fn alloc(&self, size: usize, align: usize, zeroed: bool) -> *mut u8;
    /// # Safety
    /// `p` is live with this size and alignment.
    unsafe fn dealloc(&self, p: *mut u8, size: usize, align: usize);
    /// # Safety
    /// `p` is live with this size and alignment.
    unsafe fn realloc(&self, p: *mut u8, size: usize, align: usize, new_size: usize) -> *mut u8;
}

struct Global;

impl Api for Global {
    unsafe fn alloc(&self, size: usize, align: usize, zeroed: bool) -> *mut u8 {
        let layout = Layout::from_size_align(size, align).unwrap();
        // SAFETY: size > 0 (the strategy never yields 0 here).
        unsafe {
            if zeroed {
                HakMem.alloc_zeroed(layout)
            } else {
                HakMem.alloc(layout)
            }
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, size: usize, align: usize) {
        let layout = Layout::from_size_align(size, align).unwrap();
        // SAFETY: forwarded contract.
        unsafe { HakMem.dealloc(p, layout) }
    }

    unsafe fn realloc(&self, p: *mut u8, size: usize, align: usize, new_size: usize) -> *mut u8 {
        let layout = Layout::from_size_align(size, align).unwrap();
        // SAFETY: forwarded contract; new_size > 0 and fits a Layout.
        unsafe { HakMem.realloc(p, layout, new_size) }
    }
}

struct Raw;

impl Api for Raw {
    unsafe fn alloc(&self, size: usize, align: usize, zeroed: bool) -> *mut u8 {
        match (zeroed, align <= 16) {
            (false, true) => hakmem::malloc(size),
            (true, true) => hakmem::calloc(size),
            (false, false) => hakmem::malloc_aligned(size, align),
            (true, false) => hakmem::calloc_aligned(size, align),
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, _size: usize, _align: usize) {
        // SAFETY: forwarded contract.
        unsafe { hakmem::free(p) }
    }

    unsafe fn realloc(&self, p: *mut u8, _size: usize, align: usize, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe {
            if align <= 16 {
                hakmem::realloc(p, new_size)
            } else {
                hakmem::realloc_aligned(p, new_size, align)
            }
        }
    }
}

fn run(api: &dyn Api, ops: &[Op]) {
    let mut m = Model::default();
    for (i, op) in ops.iter().enumerate() {
        match *op {
            Op::Alloc {
                size,
                align,
                zeroed,
            } => {
                let what = format!("op {i} alloc(size {size}, align {align}, zeroed {zeroed})");
                // SAFETY: a valid request for this API.
                let p = unsafe { api.alloc(size, align, zeroed) };
                let seed = m.new_seed();
                m.admit(p, size, align, seed, &what);
                if zeroed {
                    // SAFETY: `size` bytes of a live block.
                    if let Some((off, b)) = unsafe { find_nonzero(p, size) } {
                        panic!("{what}: zeroed block {p:p} has byte {b:#04x} at offset {off}");
                    }
                }
                // SAFETY: `size` bytes of a live block.
                unsafe { fill(p, size, seed) };
                m.live.push(Block {
                    ptr: p,
                    size,
                    align,
                    seed,
                });
            }
            Op::Dealloc { ref pick } => {
                let Some(k) = m.pick(pick) else { continue };
                let b = m.live.swap_remove(k);
                let what = format!("op {i} dealloc(size {}, align {})", b.size, b.align);
                // SAFETY: the live block holds `size` bytes.
                unsafe { assert_pattern(b.ptr, b.size, b.seed, &what) };
                m.forget_range(b.ptr);
                // SAFETY: live block of this API with this layout.
                unsafe { api.dealloc(b.ptr, b.size, b.align) };
            }
            Op::Realloc { ref pick, new_size } => {
                let Some(k) = m.pick(pick) else { continue };
                let b = &m.live[k];
                let (old, size, align, seed) = (b.ptr, b.size, b.align, b.seed);
                let what =
                    format!("op {i} realloc({old:p}, size {size} -> {new_size}, align {align})");
                // SAFETY: the live block holds `size` bytes.
                unsafe { assert_pattern(old, size, seed, &format!("{what} (before)")) };
                // SAFETY: live block of this API with this layout.
                let p = unsafe { api.realloc(old, size, align, new_size) };
                assert!(!p.is_null(), "{what}: returned null");
                m.forget_range(old);
                m.admit(p, new_size, align, seed, &what);
                // SAFETY: both sizes are at least this prefix.
                unsafe { assert_pattern(p, size.min(new_size), seed, &format!("{what} (after)")) };
                // SAFETY: `new_size` bytes of a live block.
                unsafe { fill(p, new_size, seed) };
                m.live[k] = Block {
                    ptr: p,
                    size: new_size,
                    align,
                    seed,
                };
            }
        }
    }
    // Final check of every survivor, then free them all.
    for b in std::mem::take(&mut m.live) {
        // SAFETY: live block.
        unsafe { assert_pattern(b.ptr, b.size, b.seed, "end of case") };
        m.forget_range(b.ptr);
        // SAFETY: live block of this API with this layout.
        unsafe { api.dealloc(b.ptr, b.size, b.align) };
    }
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        max_shrink_iters: 4096,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(128))]

    /// `<HakMem as GlobalAlloc>` against the model (sizes `1..=300_000`).
    #[test]
    fn global_alloc_matches_model(ops in proptest::collection::vec(op_strategy(boxed_size), 1..=300)) {
        run(&Global, &ops);
    }
}

proptest! {
    #![proptest_config(config(64))]

    /// The raw API (`malloc`, `calloc`, `malloc_aligned`, `calloc_aligned`,
    /// `realloc`, `realloc_aligned`, `free`) against the model, including
    /// zero-size requests, which must return unique, non-null blocks.
    #[test]
    fn raw_api_matches_model(ops in proptest::collection::vec(op_strategy(boxed_raw_size), 1..=300)) {
        run(&Raw, &ops);
    }
}

/// `malloc(0)` returns unique, non-null, 16-aligned pointers (checked
/// against each other while all are live).
#[test]
fn malloc_zero_returns_unique_pointers() {
    let mut seen = std::collections::HashSet::new();
    let ptrs: Vec<*mut u8> = (0..2000).map(|_| hakmem::malloc(0)).collect();
    for &p in &ptrs {
        assert!(!p.is_null(), "malloc(0) returned null");
        assert_eq!(p as usize % 16, 0, "malloc(0) = {p:p} not 16-aligned");
        assert!(seen.insert(p as usize), "malloc(0) returned {p:p} twice");
    }
    for p in ptrs {
        // SAFETY: each pointer is live and freed once.
        unsafe { hakmem::free(p) };
    }
}
