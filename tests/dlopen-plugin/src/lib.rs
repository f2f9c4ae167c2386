//! A plugin as users write them (a Python extension, a loadable module):
//! a Rust cdylib whose `#[global_allocator]` is `hakmem::HakMem`, loaded
//! late with `dlopen` by a C host (tests/host.c). Before the thread state
//! moved out of static TLS, loading it failed with "cannot allocate memory
//! in static TLS block".
//!
//! The exported functions allocate with ordinary Rust collections, so every
//! allocation goes through hakmem; the host calls them from several threads
//! and hands blocks between threads.

use std::collections::BTreeMap;

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

/// Builds and checks a mix of tiny, mid and span allocations seeded by
/// `seed`; returns a checksum the host compares across runs (0 means a
/// check failed).
#[no_mangle]
pub extern "C" fn plugin_work(seed: u64, rounds: u32) -> u64 {
    let mut x = seed | 1;
    let mut sum = 0u64;
    let mut live: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    for i in 0..rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = match x % 16 {
            0 => 100_000 + (x >> 8) as usize % 200_000, // span
            1..=3 => 2000 + (x >> 8) as usize % 30_000, // mid
            _ => 1 + (x >> 8) as usize % 500,           // tiny
        };
        let fill = (x >> 40) as u8;
        live.insert(i, vec![fill; n]);
        if live.len() > 64 {
            let k = *live.keys().next().unwrap();
            let v = live.remove(&k).unwrap();
            if v.iter().any(|&b| b != v[0]) {
                return 0;
            }
            sum = sum.wrapping_add(v.len() as u64 * 31 + v[0] as u64);
        }
    }
    let s: String = live.values().map(|v| v.len().to_string()).collect();
    sum.wrapping_add(s.len() as u64).max(1)
}

/// Allocates `n` bytes filled with `fill` (the host frees it with
/// [`plugin_free`], possibly on another thread).
#[no_mangle]
pub extern "C" fn plugin_alloc(n: usize, fill: u8) -> *mut u8 {
    let b = vec![fill; n.max(1)].into_boxed_slice();
    Box::into_raw(b) as *mut u8
}

/// Checks and frees a block of [`plugin_alloc`]; returns 1 when its bytes
/// were intact.
///
/// # Safety
/// `p` came from `plugin_alloc(n, fill)` and is freed once.
#[no_mangle]
pub unsafe extern "C" fn plugin_free(p: *mut u8, n: usize, fill: u8) -> i32 {
    // SAFETY: caller contract: `p` is the boxed slice of `n.max(1)` bytes.
    let b = unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, n.max(1))) };
    b.iter().all(|&c| c == fill) as i32
}

/// Whether the allocator behind this plugin is hakmem (the host checks the
/// plugin really allocates through it).
#[no_mangle]
pub extern "C" fn plugin_owns(p: *const u8) -> i32 {
    hakmem::owns(p) as i32
}
