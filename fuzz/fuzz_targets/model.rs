//! The fuzz model shared by both targets: the input bytes are read as
//! allocator operations over three threads; every result is checked
//! against a model of the live blocks.
//!
//! - live blocks never overlap (a shared interval map);
//! - a block's contents survive until it is freed (each block is filled
//!   with a byte derived from its id, checked at free and after realloc);
//! - alignment and usable size hold;
//! - calloc and the secure mode hand out zeroed memory.
//!
//! Blocks are handed between threads through a shared pool, so frees are
//! local and remote. Misuse is never generated: these targets look for
//! corruption under correct use, and for checks that fire on correct use.

use std::alloc::{GlobalAlloc, Layout};
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Clone, Copy)]
pub struct Block {
    addr: usize,
    size: usize,
    align: usize,
    fill: u8,
}

/// Live blocks by address (start → end) for the overlap check, and the
/// pool of blocks any thread may free.
pub struct Model {
    ranges: Mutex<BTreeMap<usize, usize>>,
    pool: Mutex<Vec<Block>>,
}

impl Model {
    pub fn new() -> Self {
        Model {
            ranges: Mutex::new(BTreeMap::new()),
            pool: Mutex::new(Vec::new()),
        }
    }

    fn insert(&self, b: &Block) {
        let end = b.addr + b.size.max(1);
        let mut r = self.ranges.lock().unwrap();
        if let Some((&s, &e)) = r.range(..end).next_back() {
            assert!(e <= b.addr || s >= end, "overlap: {:#x}+{} with {s:#x}..{e:#x}", b.addr, b.size);
        }
        assert!(r.insert(b.addr, end).is_none(), "address {:#x} handed out twice", b.addr);
    }

    fn remove(&self, b: &Block) {
        assert!(self.ranges.lock().unwrap().remove(&b.addr).is_some());
    }
}

fn check(b: &Block, what: &str) {
    // SAFETY: `b` is live with `size` bytes.
    let s = unsafe { std::slice::from_raw_parts(b.addr as *const u8, b.size) };
    if let Some(i) = s.iter().position(|&x| x != b.fill) {
        panic!("{what}: block {:#x}+{} byte {i} is {:#x}, want {:#x}", b.addr, b.size, s[i], b.fill);
    }
}

fn fill(b: &Block) {
    // SAFETY: `b` is live with `size` bytes.
    unsafe { std::ptr::write_bytes(b.addr as *mut u8, b.fill, b.size) };
}

/// Runs one thread's operations.
pub fn run_thread<A: GlobalAlloc>(a: &A, m: &Model, ops: &[u8], zeroed: bool, seed: u8) {
    let mut mine: Vec<Block> = Vec::new();
    let mut i = 0;
    let mut next_fill = seed;
    while i + 3 <= ops.len() {
        let (op, x, y) = (ops[i], ops[i + 1] as usize, ops[i + 2] as usize);
        i += 3;
        // Sizes: mostly small, sometimes mid or span.
        let size = match x % 8 {
            0..=4 => y % 300,
            5 | 6 => (y * 97) % 20_000,
            _ => 60_000 + y * 1500,
        };
        let align = [8usize, 16, 32, 64, 256, 4096][x % 6];
        next_fill = next_fill.wrapping_add(1) | 1;
        match op % 7 {
            0 | 1 => {
                let l = Layout::from_size_align(size.max(1), align).unwrap();
                let calloc = op % 7 == 1;
                // SAFETY: non-zero size.
                let p = unsafe { if calloc { a.alloc_zeroed(l) } else { a.alloc(l) } };
                assert!(!p.is_null(), "alloc({size}, {align}) failed");
                assert_eq!(p as usize % align, 0, "alignment {align}");
                let b = Block { addr: p as usize, size: size.max(1), align, fill: next_fill };
                if calloc || zeroed {
                    // SAFETY: live block.
                    let s = unsafe { std::slice::from_raw_parts(p, b.size) };
                    assert!(s.iter().all(|&c| c == 0), "not zeroed ({size}, {align})");
                }
                assert!(hakmem::usable_size(p) >= b.size, "usable size");
                m.insert(&b);
                fill(&b);
                mine.push(b);
            }
            2 | 3 if !mine.is_empty() => {
                let b = mine.swap_remove(y % mine.len());
                check(&b, "before free");
                m.remove(&b);
                let l = Layout::from_size_align(b.size, b.align).unwrap();
                // SAFETY: a live block of this allocator with this layout.
                unsafe { a.dealloc(b.addr as *mut u8, l) };
            }
            4 if !mine.is_empty() => {
                let k = y % mine.len();
                let b = mine[k];
                check(&b, "before realloc");
                m.remove(&b);
                let l = Layout::from_size_align(b.size, b.align).unwrap();
                let new = size.max(1);
                // SAFETY: live block, non-zero new size.
                let q = unsafe { a.realloc(b.addr as *mut u8, l, new) };
                assert!(!q.is_null(), "realloc failed");
                assert_eq!(q as usize % b.align, 0, "realloc alignment");
                let kept = Block { addr: q as usize, size: b.size.min(new), align: b.align, fill: b.fill };
                check(&kept, "after realloc");
                let nb = Block { addr: q as usize, size: new, align: b.align, fill: next_fill };
                m.insert(&nb);
                fill(&nb);
                mine[k] = nb;
            }
            5 if !mine.is_empty() => {
                // Hand a block to whichever thread takes it next.
                let b = mine.swap_remove(y % mine.len());
                m.pool.lock().unwrap().push(b);
            }
            6 => {
                let b = m.pool.lock().unwrap().pop();
                if let Some(b) = b {
                    mine.push(b);
                }
            }
            _ => {}
        }
    }
    for b in mine.drain(..) {
        check(&b, "at the end");
        m.remove(&b);
        let l = Layout::from_size_align(b.size, b.align).unwrap();
        // SAFETY: live block.
        unsafe { a.dealloc(b.addr as *mut u8, l) };
    }
}

/// Runs a whole input: three threads, each on a third of the bytes, then
/// frees what is left in the pool.
pub fn run<A: GlobalAlloc + Sync>(a: &'static A, data: &[u8], zeroed: bool) {
    let m = Model::new();
    let third = (data.len() / 3) / 3 * 3;
    std::thread::scope(|s| {
        for t in 0..3 {
            let ops = &data[t * third..(t + 1) * third];
            let m = &m;
            s.spawn(move || run_thread(a, m, ops, zeroed, t as u8 * 80));
        }
    });
    for b in m.pool.lock().unwrap().drain(..) {
        check(&b, "in the pool");
        let l = Layout::from_size_align(b.size, b.align).unwrap();
        // SAFETY: live block.
        unsafe { a.dealloc(b.addr as *mut u8, l) };
    }
}
