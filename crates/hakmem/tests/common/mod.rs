//! Helpers shared by the integration tests: a deterministic RNG, value
//! patterns derived from a per-block seed and the byte offset, and checks
//! that report the first differing byte.
//!
//! Every function here only reads or writes the memory range it is given,
//! so the tests can use them on blocks from any allocator.
#![allow(dead_code)]

use std::ptr;

/// SplitMix64 finaliser: a good 64-bit mix of `seed` and `word`.
#[inline]
pub fn mix(seed: u64, word: u64) -> u64 {
    let mut z = seed ^ word.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A small deterministic generator (SplitMix64).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5DEE_CE66_D1CE_F00D)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0, 0)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// Multiplier of the per-word pattern: word `w` of a block with `seed`
/// holds `seed ^ (w + 1) * PATTERN_STEP` (wrapping), so that every word of
/// every block differs and a shifted, swapped or foreign word is caught.
/// (Cheap on purpose: debug-mode tests fill and check many megabytes.)
const PATTERN_STEP: u64 = 0x9E37_79B9_7F4A_7C15;

/// The pattern word `w` of a block with `seed`.
#[inline]
pub fn pattern_word(seed: u64, w: usize) -> u64 {
    seed ^ (w as u64 + 1).wrapping_mul(PATTERN_STEP)
}

/// The pattern byte at `offset` of a block with `seed`.
#[inline]
pub fn pattern_byte(seed: u64, offset: usize) -> u8 {
    pattern_word(seed, offset / 8).to_ne_bytes()[offset % 8]
}

/// Fills `len` bytes at `p` with the pattern of `seed`.
///
/// # Safety
/// `p..p+len` must be writable.
pub unsafe fn fill(p: *mut u8, len: usize, seed: u64) {
    let words = len / 8;
    let base = p as usize;
    let mut acc = 0u64;
    let mut w = 0;
    if base & 7 == 0 {
        while w < words {
            acc = acc.wrapping_add(PATTERN_STEP);
            // SAFETY: `w*8 + 8 <= len`: inside the caller's range; aligned.
            unsafe { *((base + w * 8) as *mut u64) = seed ^ acc };
            w += 1;
        }
    } else {
        while w < words {
            acc = acc.wrapping_add(PATTERN_STEP);
            // SAFETY: inside the caller's range.
            unsafe { ((base + w * 8) as *mut u64).write_unaligned(seed ^ acc) };
            w += 1;
        }
    }
    let tail = len % 8;
    if tail != 0 {
        let b = pattern_word(seed, words).to_ne_bytes();
        // SAFETY: the last `tail` bytes of the caller's range.
        unsafe { ptr::copy_nonoverlapping(b.as_ptr(), p.add(words * 8), tail) };
    }
}

/// The first offset in `0..len` where `p` does not hold the pattern of
/// `seed`, with the byte found there.
///
/// # Safety
/// `p..p+len` must be readable.
pub unsafe fn find_mismatch(p: *const u8, len: usize, seed: u64) -> Option<(usize, u8)> {
    let words = len / 8;
    let base = p as usize;
    let mut acc = 0u64;
    let mut w = 0;
    while w < words {
        acc = acc.wrapping_add(PATTERN_STEP);
        let a = base + w * 8;
        // SAFETY: inside the caller's range (aligned read when possible).
        let got = unsafe {
            if a & 7 == 0 {
                *(a as *const u64)
            } else {
                (a as *const u64).read_unaligned()
            }
        };
        if got != seed ^ acc {
            break;
        }
        w += 1;
    }
    let mut off = w * 8;
    while off < len {
        // SAFETY: inside the caller's range.
        let got = unsafe { *p.add(off) };
        if got != pattern_byte(seed, off) {
            return Some((off, got));
        }
        off += 1;
    }
    None
}

/// Panics with a precise message when `p..p+len` does not hold the
/// pattern of `seed`.
///
/// # Safety
/// `p..p+len` must be readable.
pub unsafe fn assert_pattern(p: *const u8, len: usize, seed: u64, what: &str) {
    // SAFETY: forwarded contract.
    if let Some((off, got)) = unsafe { find_mismatch(p, len, seed) } {
        panic!(
            "{what}: block {p:p} (len {len}, seed {seed:#x}) corrupted at offset {off}: \
             found {got:#04x}, expected {:#04x}",
            pattern_byte(seed, off)
        );
    }
}

/// The first non-zero byte in `p..p+len`.
///
/// # Safety
/// `p..p+len` must be readable.
pub unsafe fn find_nonzero(p: *const u8, len: usize) -> Option<(usize, u8)> {
    let words = len / 8;
    let mut w = 0;
    while w < words {
        // SAFETY: inside the caller's range.
        if unsafe { (p.add(w * 8) as *const u64).read_unaligned() } != 0 {
            break;
        }
        w += 1;
    }
    let mut off = w * 8;
    while off < len {
        // SAFETY: inside the caller's range.
        let got = unsafe { *p.add(off) };
        if got != 0 {
            return Some((off, got));
        }
        off += 1;
    }
    None
}

/// Every size-class boundary ±1 (16 B .. 64 KiB), the tier edges, and the
/// span edges, restricted to `1..=max` and sorted.
pub fn boundary_sizes(max: usize) -> Vec<usize> {
    let mut v = vec![1, 2, 7, 8, 9, 15];
    for &c in hakmem_ptr_bridge::CLASS_SIZE.iter() {
        let c = c as usize;
        v.extend([c - 1, c, c + 1]);
    }
    // Spans: 64-byte header, mappings in 2 MiB steps.
    for k in 1..=4usize {
        let edge = (k << 21) - 64;
        v.extend([edge - 1, edge, edge + 1]);
    }
    v.retain(|&s| s >= 1 && s <= max);
    v.sort_unstable();
    v.dedup();
    v
}

/// Runs the test `case` of the calling test binary again, alone, in a child
/// process with `marker=1` set (so the test knows it is the child), with
/// `env` and no `HAKMEM_*` variable inherited from this process; asserts
/// that the child succeeded and returns its output.
pub fn run_child(marker: &str, case: &str, env: &[(&str, &str)]) -> std::process::Output {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["--exact", case, "--nocapture", "--test-threads=1"])
        .env(marker, "1");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("HAKMEM_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{case}: child failed: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
