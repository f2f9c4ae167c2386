//! The workloads. Each is a parameter struct with a `run` method generic
//! over the allocator; [`Workload`] wraps them for the command line.
//!
//! Conventions shared by all of them:
//! - An *op* is one allocator call: one `alloc` or one `dealloc`. A
//!   malloc+free pair is two ops. Throughput is ops per second.
//! - Blocks are requested with alignment 8 (what `malloc` gives at least), so
//!   every binding takes its plain `malloc` path.
//! - Every block is stamped when allocated (its first word, and for the
//!   non-tiny workloads its last byte) and checked before it is freed: a
//!   corrupted or overlapping block panics (aborts in release).
//! - Bookkeeping (slot arrays, queues, threads) uses the process's global
//!   allocator, which is the system one, and is set up before the clock
//!   starts where the workload allows it.

mod cache_scratch;
mod glibc_simple;
mod large_churn;
mod larson;
mod mid_mt;
mod phases;
mod producer_consumer;
mod random_mixed;
mod rss_return;
mod scenario;
mod tiny_hot;

use std::alloc::{handle_alloc_error, GlobalAlloc, Layout};
use std::collections::HashMap;
use std::time::Duration;

use crate::allocators::Trim;

pub use cache_scratch::CacheScratch;
pub use glibc_simple::GlibcSimple;
pub use large_churn::LargeChurn;
pub use larson::Larson;
pub use mid_mt::MidMt;
pub use phases::Phases;
pub use producer_consumer::ProducerConsumer;
pub use random_mixed::RandomMixed;
pub use rss_return::RssReturn;
pub use scenario::Scenario;
pub use tiny_hot::TinyHot;

/// The alignment every block is requested with.
pub const ALIGN: usize = 8;
/// Smallest size a stamped block may have (first word + a distinct last byte).
pub const MIN_STAMPED: usize = 16;
/// Largest block size any workload accepts (keeps `Layout` trivially valid).
pub const MAX_SIZE: usize = 1 << 30;

/// What one run of a workload measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Allocator calls made in the timed region.
    pub ops: u64,
    /// Wall-clock time of the timed region.
    pub elapsed: Duration,
    /// A checksum of values read back from the blocks (keeps the work live).
    pub check: u64,
    /// `rss-return` only: resident memory after everything was freed (and
    /// trimmed) minus resident memory at the start, in KiB.
    pub rss_after_free_kib: Option<i64>,
    /// `phases` only: each phase's time and ACE decisions.
    pub phases: Option<PhaseTimes>,
}

/// Phases of the `phases` workload (the idle one included).
pub const PHASES: usize = 5;

/// `phases` only: per phase (tiny churn, mid bursts, large spans, idle,
/// tiny churn), its wall time and the ACE policy decisions made during it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PhaseTimes {
    pub ns: [u64; PHASES],
    pub decisions: [u64; PHASES],
}

impl Outcome {
    /// Millions of ops per second.
    pub fn mops(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9) / 1e6
    }
}

/// One workload with its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Workload {
    TinyHot(TinyHot),
    RandomMixed(RandomMixed),
    Larson(Larson),
    ProducerConsumer(ProducerConsumer),
    CacheScratch(CacheScratch),
    MidMt(MidMt),
    RssReturn(RssReturn),
    LargeChurn(LargeChurn),
    Scenario(Scenario),
    Phases(Phases),
    GlibcSimple(GlibcSimple),
}

/// The workload families, as named on the command line.
pub const FAMILIES: [&str; 11] = [
    "tiny-hot",
    "random-mixed",
    "larson",
    "producer-consumer",
    "cache-scratch",
    "mid-mt",
    "rss-return",
    "large-churn",
    "scenario",
    "phases",
    "glibc-simple",
];

impl Workload {
    /// The family name (`tiny-hot`, `random-mixed`, ...).
    pub fn family(&self) -> &'static str {
        match self {
            Workload::TinyHot(_) => "tiny-hot",
            Workload::RandomMixed(_) => "random-mixed",
            Workload::Larson(_) => "larson",
            Workload::ProducerConsumer(_) => "producer-consumer",
            Workload::CacheScratch(_) => "cache-scratch",
            Workload::MidMt(_) => "mid-mt",
            Workload::RssReturn(_) => "rss-return",
            Workload::LargeChurn(_) => "large-churn",
            Workload::Scenario(_) => "scenario",
            Workload::Phases(_) => "phases",
            Workload::GlibcSimple(_) => "glibc-simple",
        }
    }

    /// The parameters as `(key, value)` pairs, in a fixed order.
    pub fn params(&self) -> Vec<(&'static str, u64)> {
        match self {
            Workload::TinyHot(w) => w.params(),
            Workload::RandomMixed(w) => w.params(),
            Workload::Larson(w) => w.params(),
            Workload::ProducerConsumer(w) => w.params(),
            Workload::CacheScratch(w) => w.params(),
            Workload::MidMt(w) => w.params(),
            Workload::RssReturn(w) => w.params(),
            Workload::LargeChurn(w) => w.params(),
            Workload::Scenario(w) => w.params(),
            Workload::Phases(w) => w.params(),
            Workload::GlibcSimple(w) => w.params(),
        }
    }

    /// The parameters as `key=value` arguments (what `run-one` parses).
    pub fn args(&self) -> Vec<String> {
        self.params()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }

    /// The parameters as one `key=value key=value` string.
    pub fn describe(&self) -> String {
        self.args().join(" ")
    }

    /// Parses a family name and `key=value` arguments; keys not given take
    /// the family's default.
    pub fn parse(family: &str, args: &[String]) -> Result<Workload, String> {
        let mut kv = Params::parse(args)?;
        let w = match family {
            "tiny-hot" => Workload::TinyHot(TinyHot::from_params(&mut kv)?),
            "random-mixed" => Workload::RandomMixed(RandomMixed::from_params(&mut kv)?),
            "larson" => Workload::Larson(Larson::from_params(&mut kv)?),
            "producer-consumer" => {
                Workload::ProducerConsumer(ProducerConsumer::from_params(&mut kv)?)
            }
            "cache-scratch" => Workload::CacheScratch(CacheScratch::from_params(&mut kv)?),
            "mid-mt" => Workload::MidMt(MidMt::from_params(&mut kv)?),
            "rss-return" => Workload::RssReturn(RssReturn::from_params(&mut kv)?),
            "large-churn" => Workload::LargeChurn(LargeChurn::from_params(&mut kv)?),
            "scenario" => Workload::Scenario(Scenario::from_params(&mut kv)?),
            "phases" => Workload::Phases(Phases::from_params(&mut kv)?),
            "glibc-simple" => Workload::GlibcSimple(GlibcSimple::from_params(&mut kv)?),
            other => return Err(format!("unknown workload `{other}`")),
        };
        kv.finish(family)?;
        Ok(w)
    }

    /// Threads the workload runs (besides the main thread, which waits).
    pub fn threads(&self) -> usize {
        match self {
            Workload::TinyHot(_)
            | Workload::RandomMixed(_)
            | Workload::LargeChurn(_)
            | Workload::Scenario(_)
            | Workload::GlibcSimple(_) => 1,
            Workload::Larson(w) => w.threads,
            Workload::ProducerConsumer(w) => 2 * w.pairs,
            Workload::CacheScratch(w) => w.threads,
            Workload::MidMt(w) => w.threads,
            Workload::RssReturn(w) => w.threads,
            Workload::Phases(w) => w.threads,
        }
    }

    /// Runs the workload against allocator `a`.
    pub fn run<A: GlobalAlloc + Trim + Sync + 'static>(&self, a: &'static A) -> Outcome {
        match self {
            Workload::TinyHot(w) => w.run(a),
            Workload::RandomMixed(w) => w.run(a),
            Workload::Larson(w) => w.run(a),
            Workload::ProducerConsumer(w) => w.run(a),
            Workload::CacheScratch(w) => w.run(a),
            Workload::MidMt(w) => w.run(a),
            Workload::RssReturn(w) => w.run(a),
            Workload::LargeChurn(w) => w.run(a),
            Workload::Scenario(w) => w.run(a),
            Workload::Phases(w) => w.run(a),
            Workload::GlibcSimple(w) => w.run(a),
        }
    }
}

/// `key=value` parameters being parsed; [`Params::finish`] rejects leftovers.
pub(crate) struct Params(HashMap<String, u64>);

impl Params {
    fn parse(args: &[String]) -> Result<Params, String> {
        let mut m = HashMap::new();
        for a in args {
            let (k, v) = a
                .split_once('=')
                .ok_or_else(|| format!("expected key=value, got `{a}`"))?;
            let v = parse_u64(v).ok_or_else(|| format!("bad number in `{a}`"))?;
            m.insert(k.to_string(), v);
        }
        Ok(Params(m))
    }

    /// Takes `key`, or `default` when absent.
    pub(crate) fn take(&mut self, key: &str, default: u64) -> u64 {
        self.0.remove(key).unwrap_or(default)
    }

    /// Takes `key` as a `usize` in `lo..=hi`.
    pub(crate) fn take_in(
        &mut self,
        key: &str,
        default: usize,
        lo: usize,
        hi: usize,
    ) -> Result<usize, String> {
        let v = self.take(key, default as u64);
        if v < lo as u64 || v > hi as u64 {
            return Err(format!("{key}={v} is outside {lo}..={hi}"));
        }
        Ok(v as usize)
    }

    fn finish(self, family: &str) -> Result<(), String> {
        match self.0.keys().next() {
            None => Ok(()),
            Some(k) => Err(format!("{family} has no parameter `{k}`")),
        }
    }
}

/// Parses `123`, `2000000`, `2_000_000`, `64k`, `2m` (k/m = ×1024/×1024², for
/// sizes) or `2M` (= ×10⁶, for counts).
fn parse_u64(s: &str) -> Option<u64> {
    let s: String = s.chars().filter(|&c| c != '_').collect();
    let (num, mul) = match s.chars().last()? {
        'k' | 'K' => (&s[..s.len() - 1], 1024),
        'm' => (&s[..s.len() - 1], 1024 * 1024),
        'M' => (&s[..s.len() - 1], 1_000_000),
        _ => (&s[..], 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mul)
}

/// The layout of a block of `size` bytes.
#[inline(always)]
pub(crate) fn layout(size: usize) -> Layout {
    debug_assert!(size > 0 && size <= MAX_SIZE);
    // SAFETY: ALIGN is a power of two and every size is at most MAX_SIZE
    // (checked when parameters are parsed), far below isize::MAX.
    unsafe { Layout::from_size_align_unchecked(size, ALIGN) }
}

/// Allocates `size` bytes (at least [`MIN_STAMPED`]) and stamps them with
/// `stamp`: the first word and the last byte.
#[inline(always)]
pub(crate) fn alloc_stamped<A: GlobalAlloc>(a: &A, size: usize, stamp: u64) -> *mut u8 {
    debug_assert!(size >= MIN_STAMPED);
    let l = layout(size);
    // SAFETY: the layout has a non-zero size.
    let p = unsafe { a.alloc(l) };
    if p.is_null() {
        handle_alloc_error(l);
    }
    // SAFETY: `p` is a fresh block of `size` ≥ 16 bytes aligned to 8, so the
    // first word and the last byte are in bounds and do not overlap.
    unsafe {
        p.cast::<u64>().write(stamp);
        p.add(size - 1).write(stamp as u8 ^ 0xA5);
    }
    p
}

/// Checks the stamp of a block and frees it; returns the first word.
///
/// # Safety
/// `p` was returned by `alloc_stamped(a, size, _)` and not freed since.
#[inline(always)]
pub(crate) unsafe fn free_stamped<A: GlobalAlloc>(
    a: &A,
    p: *mut u8,
    size: usize,
    stamp: u64,
) -> u64 {
    // SAFETY: caller contract: `p` is a live block of `size` ≥ 16 bytes.
    let (w, b) = unsafe { (p.cast::<u64>().read(), p.add(size - 1).read()) };
    if w != stamp || b != stamp as u8 ^ 0xA5 {
        corrupt(p, size, stamp, w);
    }
    // SAFETY: caller contract: `p` came from `a` with this layout.
    unsafe { a.dealloc(p, layout(size)) };
    w
}

/// A block did not hold what was written to it.
#[cold]
#[inline(never)]
pub(crate) fn corrupt(p: *mut u8, size: usize, expected: u64, found: u64) -> ! {
    panic!("block {p:p} ({size} B) corrupted: expected stamp {expected:#x}, found {found:#x}");
}

/// Raw block pointers handed between threads.
///
/// `*mut u8` is not `Send`; the blocks inside are owned exclusively by
/// whoever holds the `Blocks`, so moving them to another thread is sound.
pub(crate) struct Blocks {
    pub(crate) ptrs: Vec<*mut u8>,
    pub(crate) sizes: Vec<u32>,
}

// SAFETY: see the type's documentation: the holder owns every block it
// points to, and no other thread keeps a reference to them.
unsafe impl Send for Blocks {}

impl Blocks {
    pub(crate) fn new(n: usize) -> Blocks {
        Blocks {
            ptrs: vec![std::ptr::null_mut(); n],
            sizes: vec![0; n],
        }
    }

    /// Frees every live block (stamp = slot index).
    pub(crate) fn free_all<A: GlobalAlloc>(&mut self, a: &A) -> u64 {
        let mut frees = 0;
        for (i, p) in self.ptrs.iter_mut().enumerate() {
            if !p.is_null() {
                // SAFETY: live slots hold blocks allocated from `a` with the
                // recorded size and the slot index as stamp (see users).
                unsafe { free_stamped(a, *p, self.sizes[i] as usize, stamp_of(i)) };
                *p = std::ptr::null_mut();
                frees += 1;
            }
        }
        frees
    }
}

/// The page size assumed by the workloads that touch every page of a block.
pub const PAGE: usize = 4096;

/// How the large-block workloads write a block after allocating it (the
/// `touch` parameter). Every mode writes every 4 KiB page the block spans,
/// so a page that is not resident is faulted in; they differ in how much
/// else they cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Touch {
    /// `touch=0`: one byte per page, at the same offset in every page
    /// (block start + k × 4096). Cheap; but the bytes of one block all fall
    /// into the same L1 cache set, as do those of other blocks with the same
    /// alignment, so page- or 64 KiB-aligned blocks pay set conflicts.
    Page = 0,
    /// `touch=1`: every byte (a `memset`, what `make_unique<char[]>`'s
    /// zero-initialisation does). The memset then dominates the time.
    Fill = 1,
    /// `touch=2`: one byte per page, at offset 64 × (k mod 64) in page k, so
    /// that the touched bytes spread over all 64 L1 sets: the page-fault
    /// cost without the cache-set conflicts of `touch=0`.
    Stagger = 2,
}

impl Touch {
    pub(crate) fn from_param(p: &mut Params) -> Result<Touch, String> {
        match p.take_in("touch", 0, 0, 2)? {
            0 => Ok(Touch::Page),
            1 => Ok(Touch::Fill),
            _ => Ok(Touch::Stagger),
        }
    }

    /// The offset of the byte written in page `k` (k ≥ 1) of a block.
    #[inline(always)]
    fn offset(self, k: usize) -> usize {
        match self {
            Touch::Page | Touch::Fill => k * PAGE,
            Touch::Stagger => k * PAGE + 64 * (k % 64),
        }
    }
}

/// Touches block `p` of `size` bytes as `mode` says, writing `mark`. The
/// first word and the last byte are left for the stamp (written after).
///
/// # Safety
/// `p` is a live block of `size` ≥ [`MIN_STAMPED`] bytes.
#[inline]
pub(crate) unsafe fn touch(p: *mut u8, size: usize, mark: u8, mode: Touch) {
    // SAFETY: the caller's contract; every offset written is below `size`.
    unsafe {
        if mode == Touch::Fill {
            p.write_bytes(mark, size);
            return;
        }
        let mut k = 1;
        loop {
            let off = mode.offset(k);
            if off >= size {
                break;
            }
            p.add(off).write_volatile(mark);
            k += 1;
        }
    }
}

/// Reads back the byte [`touch`] wrote in the middle page of block `p`
/// (none when the block spans fewer than two pages).
///
/// # Safety
/// `p` is a live block of `size` ≥ [`MIN_STAMPED`] bytes.
#[inline]
pub(crate) unsafe fn middle_mark(p: *mut u8, size: usize, mode: Touch) -> Option<u8> {
    let pages = size / PAGE;
    if pages < 2 {
        return None;
    }
    // k = pages/2 ∈ 1..pages, so offset(k) < (k + 1) × PAGE ≤ size.
    let off = mode.offset(pages / 2);
    debug_assert!(off < size);
    // SAFETY: `off` < `size` (above).
    Some(unsafe { p.add(off).read_volatile() })
}

/// The byte [`touch`] writes into the pages of a block stamped `stamp`.
#[inline(always)]
fn mark_of(stamp: u64) -> u8 {
    (stamp >> 8) as u8
}

/// Allocates `size` bytes (at least [`MIN_STAMPED`]), touches every page
/// as `mode` says (see [`Touch`]) and stamps the block: the large-block
/// counterpart of [`alloc_stamped`].
#[inline]
pub(crate) fn alloc_touched<A: GlobalAlloc>(
    a: &A,
    size: usize,
    stamp: u64,
    mode: Touch,
) -> *mut u8 {
    debug_assert!(size >= MIN_STAMPED);
    let l = layout(size);
    // SAFETY: the layout has a non-zero size.
    let p = unsafe { a.alloc(l) };
    if p.is_null() {
        handle_alloc_error(l);
    }
    // SAFETY: `p` is a fresh block of `size` ≥ 16 bytes aligned to 8; the
    // stamp is written after the pages so that it overwrites them.
    unsafe {
        touch(p, size, mark_of(stamp), mode);
        p.cast::<u64>().write(stamp);
        p.add(size - 1).write(stamp as u8 ^ 0xA5);
    }
    p
}

/// Checks a block of [`alloc_touched`] (stamp and middle page) and frees
/// it; returns the first word plus the middle page's byte.
///
/// # Safety
/// `p` was returned by `alloc_touched(a, size, stamp, mode)` and not freed
/// since.
#[inline]
pub(crate) unsafe fn free_touched<A: GlobalAlloc>(
    a: &A,
    p: *mut u8,
    size: usize,
    stamp: u64,
    mode: Touch,
) -> u64 {
    // SAFETY: caller contract: `p` is a live block of `size` ≥ 16 bytes.
    let m = unsafe { middle_mark(p, size, mode) }.unwrap_or(mark_of(stamp));
    if m != mark_of(stamp) {
        // The middle page lost its byte: report mark expected / found.
        corrupt(p, size, u64::from(mark_of(stamp)), u64::from(m));
    }
    // SAFETY: forwarded caller contract.
    let w = unsafe { free_stamped(a, p, size, stamp) };
    w.wrapping_add(u64::from(m))
}

/// The stamp of slot `i` (any value whose low byte varies with `i`).
#[inline(always)]
pub(crate) fn stamp_of(i: usize) -> u64 {
    (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocators::{HAKMEM, JEMALLOC, MIMALLOC, MI_DIRECT, SNMALLOC, SYSTEM};

    /// Every workload with tiny parameters.
    fn tiny() -> Vec<Workload> {
        let p = |f: &str, a: &[&str]| {
            let a: Vec<String> = a.iter().map(|s| s.to_string()).collect();
            Workload::parse(f, &a).unwrap()
        };
        vec![
            p("tiny-hot", &["size=64", "batch=100", "rounds=50"]),
            p("tiny-hot", &["size=16", "batch=7", "rounds=3"]),
            p("random-mixed", &["ops=20000", "slots=400", "seed=42"]),
            p("random-mixed", &["ops=5000", "slots=50", "max=64k"]),
            p(
                "larson",
                &["threads=2", "slots=100", "gen_ops=500", "generations=3"],
            ),
            p(
                "larson",
                &["threads=1", "slots=10", "gen_ops=50", "generations=2"],
            ),
            p(
                "producer-consumer",
                &["pairs=1", "objects=20000", "queue=64"],
            ),
            p(
                "cache-scratch",
                &["threads=2", "iterations=20", "repetitions=10"],
            ),
            p("mid-mt", &["threads=2", "ops=2000", "slots=32"]),
            p("rss-return", &["threads=2", "total=1m", "cross=1"]),
            p(
                "rss-return",
                &["threads=1", "total=64k", "small=32", "large=256", "trim=0"],
            ),
            p(
                "large-churn",
                &["slots=3", "iterations=12", "min=64k", "max=3m"],
            ),
            p("scenario", &["size=64k", "rounds=50"]),
            p("scenario", &["size=2m", "window=2", "rounds=9", "touch=1"]),
            p("scenario", &["size=256k", "rounds=20", "touch=2"]),
            p(
                "phases",
                &["steps=200", "bursts=20", "spans=20", "idle_ms=1"],
            ),
            p("glibc-simple", &["size=16", "allocs=3200"]),
            p("glibc-simple", &["size=4096", "allocs=1600"]),
        ]
    }

    #[test]
    fn every_workload_runs_on_every_allocator() {
        for w in tiny() {
            let runs = [
                ("hakmem", w.run(&HAKMEM)),
                ("system", w.run(&SYSTEM)),
                ("mimalloc", w.run(&MIMALLOC)),
                ("mi-direct", w.run(&MI_DIRECT)),
                ("jemalloc", w.run(&JEMALLOC)),
                ("snmalloc", w.run(&SNMALLOC)),
            ];
            for (name, o) in runs {
                assert!(o.ops > 0, "{} on {name}: no ops", w.family());
                // Same parameters, same sequence: same op count and checksum.
                assert_eq!(o.ops, runs[0].1.ops, "{} on {name}", w.describe());
                assert_eq!(o.check, runs[0].1.check, "{} on {name}", w.describe());
                let rss_return = matches!(w, Workload::RssReturn(_));
                assert_eq!(o.rss_after_free_kib.is_some(), rss_return, "{name}");
                let phases = matches!(w, Workload::Phases(_));
                assert_eq!(o.phases.is_some(), phases, "{name}");
            }
        }
    }

    #[test]
    fn parameters_round_trip() {
        for w in tiny() {
            let back = Workload::parse(w.family(), &w.args()).unwrap();
            assert_eq!(back, w);
        }
        assert!(Workload::parse("tiny-hot", &["bogus=1".into()]).is_err());
        assert!(Workload::parse("tiny-hot", &["size=0".into()]).is_err());
        assert!(Workload::parse("nope", &[]).is_err());
        assert!(Workload::parse("rss-return", &["large=100".into()]).is_err());
        assert!(Workload::parse("rss-return", &["cross=2".into()]).is_err());
        assert!(Workload::parse("large-churn", &["min=2m".into(), "max=1m".into()]).is_err());
        assert_eq!(parse_u64("64k"), Some(65536));
        assert_eq!(parse_u64("2M"), Some(2_000_000));
        assert_eq!(parse_u64("2_000"), Some(2000));
    }
}
