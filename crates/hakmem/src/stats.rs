//! Process-wide statistics, kept with thread-local batching: each thread
//! counts on its own (frees in the cache front, refills and flushes in its
//! heap) and publishes to the global atomics here every
//! [`PUBLISH_EVERY`](hakmem_refill_engine::PUBLISH_EVERY) slow-path events, at exit, and when it calls
//! [`stats`] itself. Other live threads' figures are therefore at most one
//! batch behind.
//!
//! Per class, with every quantity counted since the start:
//! `allocs = refill_blocks + cache_pushes - flushed_blocks - cached`
//! (a block leaves a thread cache either to the program or back to its
//! slab), `frees = cache_pushes + remote_frees`, `live = allocs - frees`.
//!
//! The `HAKMEM_STATS` exit report goes to the descriptor [`sink`] takes when
//! the environment is read (`HAKMEM_STATS_FILE`, or a duplicate of stderr),
//! so that it survives a program closing its stderr before it exits.

use core::fmt::Write;
use core::sync::atomic::Ordering::Relaxed;
use core::sync::atomic::{AtomicI64, AtomicU64};

use hakmem_ptr_bridge::{CLASS_SIZE, NUM_CLASSES, SUPERSLAB_SIZE};

use crate::thread::ThreadState;

mod sink;

pub(crate) use sink::open as open_report_sink;

struct ClassTotals {
    pushes: AtomicU64,
    refills: AtomicU64,
    refill_blocks: AtomicU64,
    flushes: AtomicU64,
    flushed_blocks: AtomicU64,
    remote_frees: AtomicU64,
    cached: AtomicI64,
}

#[link_section = ".bss.hakmem_cold"] // written when counters are published: see crates/preload/layout.ld
static TOTALS: [ClassTotals; NUM_CLASSES] = [const {
    ClassTotals {
        pushes: AtomicU64::new(0),
        refills: AtomicU64::new(0),
        refill_blocks: AtomicU64::new(0),
        flushes: AtomicU64::new(0),
        flushed_blocks: AtomicU64::new(0),
        remote_frees: AtomicU64::new(0),
        cached: AtomicI64::new(0),
    }
}; NUM_CLASSES];

static ADOPTED: AtomicU64 = AtomicU64::new(0);
/// Span requests served by threads' span stashes (published in batches).
static STASH_ALLOCS: AtomicU64 = AtomicU64::new(0);
/// Span frees kept in threads' stashes (published in batches).
static STASH_FREES: AtomicU64 = AtomicU64::new(0);

/// Statistics of one size class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ClassStats {
    /// Block size in bytes.
    pub size: u32,
    /// Blocks handed to the program.
    pub allocs: u64,
    /// Blocks the program freed (any thread).
    pub frees: u64,
    /// Frees of blocks whose slab belonged to another thread (or none).
    pub remote_frees: u64,
    /// Thread-cache refills.
    pub refills: u64,
    /// Thread-cache flushes.
    pub flushes: u64,
    /// Bytes in blocks the program holds.
    pub live_bytes: u64,
    /// Bytes in blocks sitting in thread caches.
    pub cached_bytes: u64,
    /// Policy now: blocks the next refill of this class brings.
    pub refill_count: u32,
    /// Policy now: most blocks a thread caches in this class.
    pub cache_cap: u32,
}

/// A snapshot of allocator statistics.
///
/// New figures may be added in any release (`#[non_exhaustive]`): read the
/// fields, and get a value from [`stats`] (or `Stats::default()`, all zero).
/// [`Stats::write_json`] writes it as JSON without allocating; the `serde`
/// feature derives `serde::Serialize` (field names as keys, `classes` as an
/// array, `tiers` as `[hot, draining, free]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Stats {
    /// Blocks and spans handed out.
    pub allocs: u64,
    /// Blocks and spans freed.
    pub frees: u64,
    /// Frees through the remote path.
    pub remote_frees: u64,
    /// Cache refills.
    pub refills: u64,
    /// Cache flushes.
    pub flushes: u64,
    /// Ownerless slabs adopted.
    pub adopted_slabs: u64,
    /// Superslabs currently mapped.
    pub superslabs: usize,
    /// Large spans currently mapped.
    pub large_spans: usize,
    /// Bytes mapped for large spans.
    pub large_bytes: usize,
    /// Large spans mapped since the start.
    pub large_allocs: u64,
    /// Large spans freed since the start.
    pub large_frees: u64,
    /// Span requests served from the span cache.
    pub span_cache_hits: u64,
    /// Bytes of freed spans kept in the span cache.
    pub span_cache_bytes: usize,
    /// Superslabs per tier: HOT with free slabs, DRAINING, FREE (empty).
    pub tiers: (usize, usize, usize),
    /// Peak resident set size of the process, in bytes: `getrusage`'s
    /// `ru_maxrss`, or [`Stats::rss_bytes`] when that is higher (the
    /// kernel updates its high-water mark lazily).
    pub peak_rss_bytes: u64,
    /// Resident set size of the process now, in bytes: the resident pages
    /// of `/proc/self/statm` times the page size (0 when it cannot be
    /// read). The whole process, not only hakmem's memory.
    pub rss_bytes: u64,
    /// Bytes hakmem has mapped from the OS and not unmapped: superslabs
    /// (2 MiB each, including the pages of free slabs already discarded
    /// with `MADV_DONTNEED`), live large spans (those kept in threads'
    /// span stashes included) and the span cache. Address space, not
    /// resident memory: compare with [`Stats::rss_bytes`].
    pub committed_bytes: u64,
    /// Learning events recorded.
    pub ace_events: u64,
    /// Learning events dropped because the ring was full.
    pub ace_dropped: u64,
    /// Learning decisions applied to the policy table.
    pub ace_decisions: u64,
    /// Whether the learning worker was running.
    pub ace_running: bool,
    /// Per size class, smallest first (every class, used or not).
    #[cfg_attr(feature = "serde", serde(serialize_with = "serialize_classes"))]
    pub classes: [ClassStats; NUM_CLASSES],
}

impl Default for Stats {
    /// All zero (and no class sizes).
    fn default() -> Self {
        Stats {
            allocs: 0,
            frees: 0,
            remote_frees: 0,
            refills: 0,
            flushes: 0,
            adopted_slabs: 0,
            superslabs: 0,
            large_spans: 0,
            large_bytes: 0,
            large_allocs: 0,
            large_frees: 0,
            span_cache_hits: 0,
            span_cache_bytes: 0,
            tiers: (0, 0, 0),
            peak_rss_bytes: 0,
            rss_bytes: 0,
            committed_bytes: 0,
            ace_events: 0,
            ace_dropped: 0,
            ace_decisions: 0,
            ace_running: false,
            classes: [ClassStats::default(); NUM_CLASSES],
        }
    }
}

/// serde implements `Serialize` for arrays of up to 32 elements only.
#[cfg(feature = "serde")]
fn serialize_classes<S: serde::Serializer>(
    classes: &[ClassStats; NUM_CLASSES],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(classes.iter())
}

impl Stats {
    /// Share of learning events dropped because the ring was full:
    /// `ace_dropped / (ace_events + ace_dropped)`.
    pub fn ace_drop_rate(&self) -> f64 {
        crate::ace::snapshot::drop_rate(self.ace_events, self.ace_dropped)
    }

    /// Writes the snapshot as one JSON object, without allocating and
    /// without a trailing newline: the format of `HAKMEM_STATS=json`
    /// (see `docs/ENV_VARS.md`). Keys are the field names, except that the
    /// learning figures sit in an `"ace"` object (`events`, `dropped`,
    /// `decisions`, `drop_rate`, `running`), `tiers` is an object (`hot`,
    /// `draining`, `free`), and per class `refill_count` and `cache_cap`
    /// are `"refill"` and `"cap"`. `classes` is an array of every class,
    /// smallest first.
    pub fn write_json(&self, w: &mut impl Write) -> core::fmt::Result {
        write_json(w, self)
    }
}

/// Publishes the counters of one class of thread `ts` (its own thread).
fn publish_class(ts: &mut ThreadState, class: usize) {
    let c = ts.local.counters_mut().take_class(class);
    let total = ts.local.front().pushes(class);
    let pushes = total.wrapping_sub(ts.published_pushes[class]);
    ts.published_pushes[class] = total;
    let cached = ts.local.front().count(class);
    let delta = cached as i64 - ts.published_cached[class] as i64;
    ts.published_cached[class] = cached;
    if c == Default::default() && pushes == 0 && delta == 0 {
        return;
    }
    let t = &TOTALS[class];
    t.pushes.fetch_add(pushes, Relaxed);
    t.refills.fetch_add(c.refills, Relaxed);
    t.refill_blocks.fetch_add(c.refill_blocks, Relaxed);
    t.flushes.fetch_add(c.flushes, Relaxed);
    t.flushed_blocks.fetch_add(c.flushed_blocks, Relaxed);
    t.remote_frees.fetch_add(c.remote_frees, Relaxed);
    t.cached.fetch_add(delta, Relaxed);
}

/// Publishes every class of the calling thread.
pub(crate) fn publish_all(ts: &mut ThreadState) {
    publish_counts(ts);
    ts.local.published();
}

/// Publishes every class of the calling thread, leaving the engine's
/// maintenance cadence alone.
fn publish_counts(ts: &mut ThreadState) {
    for c in 0..NUM_CLASSES {
        publish_class(ts, c);
    }
    ADOPTED.fetch_add(
        core::mem::take(&mut ts.local.counters_mut().adopted),
        Relaxed,
    );
    let (allocs, frees) = ts.local.take_stash_counts();
    STASH_ALLOCS.fetch_add(allocs, Relaxed);
    STASH_FREES.fetch_add(frees, Relaxed);
}

/// Called on every slow-path event of a thread that the engine did not
/// tick itself: the engine's maintenance
/// ([`LocalHeap::tick`](hakmem_refill_engine::LocalHeap::tick)), then the
/// counters are published when due.
#[inline]
pub(crate) fn tick(ts: &mut ThreadState) {
    ts.local.tick();
    publish_if_due(ts);
}

/// Publishes the thread's counters when the engine says they are due
/// (every [`PUBLISH_EVERY`](hakmem_refill_engine::PUBLISH_EVERY) slow events), after a slow call that ticked.
#[inline]
pub(crate) fn publish_if_due(ts: &mut ThreadState) {
    if ts.local.take_publish_due() {
        publish_counts(ts);
    }
}

fn peak_rss() -> u64 {
    crate::sys::rusage_self().ru_maxrss as u64 * 1024
}

/// Current statistics (publishes the calling thread's counters first).
pub fn stats() -> Stats {
    // The backend's counters are read under its locks.
    crate::install_fork_handlers();
    if let Some(t) = crate::thread::peek() {
        // SAFETY: our own thread's state, outside any allocator call.
        unsafe { publish_all(&mut *t) };
    }
    let b = hakmem_superslab_backend::stats();
    let committed = b
        .superslabs
        .saturating_mul(SUPERSLAB_SIZE)
        .saturating_add(b.live_span_bytes)
        .saturating_add(b.span_cache_bytes);
    let rss = crate::sys::resident_bytes();
    let mut s = Stats {
        allocs: b.span_allocs + STASH_ALLOCS.load(Relaxed),
        frees: b.span_frees + STASH_FREES.load(Relaxed),
        remote_frees: 0,
        refills: 0,
        flushes: 0,
        adopted_slabs: ADOPTED.load(Relaxed),
        superslabs: b.superslabs,
        large_spans: b.live_spans,
        large_bytes: b.live_span_bytes,
        large_allocs: b.span_allocs + STASH_ALLOCS.load(Relaxed),
        large_frees: b.span_frees + STASH_FREES.load(Relaxed),
        span_cache_hits: b.span_cache_hits + STASH_ALLOCS.load(Relaxed),
        span_cache_bytes: b.span_cache_bytes,
        tiers: hakmem_superslab_backend::tier_counts(),
        peak_rss_bytes: peak_rss().max(rss),
        rss_bytes: rss,
        committed_bytes: committed as u64,
        ace_events: hakmem_ace_learning::EVENTS.pushed(),
        ace_dropped: hakmem_ace_learning::EVENTS.dropped(),
        ace_decisions: crate::ace::snapshot::decisions(),
        ace_running: crate::ace::snapshot::is_running(),
        classes: [ClassStats::default(); NUM_CLASSES],
    };
    for c in 0..NUM_CLASSES {
        let t = &TOTALS[c];
        let pushes = t.pushes.load(Relaxed);
        let cached = t.cached.load(Relaxed).max(0) as u64;
        let allocs = (t.refill_blocks.load(Relaxed) + pushes)
            .saturating_sub(t.flushed_blocks.load(Relaxed) + cached);
        let remote = t.remote_frees.load(Relaxed);
        let frees = pushes + remote;
        let size = CLASS_SIZE[c];
        s.classes[c] = ClassStats {
            size,
            allocs,
            frees,
            remote_frees: remote,
            refills: t.refills.load(Relaxed),
            flushes: t.flushes.load(Relaxed),
            live_bytes: allocs.saturating_sub(frees) * size as u64,
            cached_bytes: cached * size as u64,
            refill_count: hakmem_ace_learning::POLICY.refill_count(c),
            cache_cap: hakmem_ace_learning::POLICY.cache_cap(c),
        };
        s.allocs += allocs;
        s.frees += frees;
        s.remote_frees += remote;
        s.refills += s.classes[c].refills;
        s.flushes += s.classes[c].flushes;
    }
    s
}

/// A fixed buffer that `core::fmt` writes into; output goes to a file
/// descriptor in chunks, so printing never allocates.
struct FdBuf {
    fd: libc::c_int,
    buf: [u8; 512],
    len: usize,
}

impl FdBuf {
    fn new(fd: libc::c_int) -> Self {
        FdBuf {
            fd,
            buf: [0; 512],
            len: 0,
        }
    }

    fn flush(&mut self) {
        crate::sys::write_all(self.fd, &self.buf[..self.len]);
        self.len = 0;
    }
}

impl Write for FdBuf {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &b in s.as_bytes() {
            if self.len == self.buf.len() {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

/// Output format of [`print_report`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportFormat {
    /// A human-readable table.
    Table,
    /// One JSON object on one line.
    Json,
}

/// Prints the statistics to stderr now (no allocation). The `HAKMEM_STATS`
/// exit report goes elsewhere: see [`crate::report_at_exit`].
pub fn print_report(format: ReportFormat) {
    report_to(2, format);
}

/// The exit report: to the descriptor taken when the environment was read
/// (`HAKMEM_STATS_FILE` or the duplicate of stderr), or fd 2 without one.
pub(crate) fn write_exit_report(format: ReportFormat) {
    report_to(sink::report_fd(), format);
}

fn report_to(fd: libc::c_int, format: ReportFormat) {
    // Read before `stats()`, whose locks register the fork handlers in a
    // process with a second thread: the line says what the program did.
    let fork_handlers = crate::fork_handlers_registered();
    let s = stats();
    let mut w = FdBuf::new(fd);
    let _ = match format {
        ReportFormat::Table => write_table(&mut w, &s, fork_handlers),
        ReportFormat::Json => write_json(&mut w, &s).and_then(|()| w.write_str("\n")),
    };
    w.flush();
}

fn write_table(w: &mut impl Write, s: &Stats, fork_handlers: bool) -> core::fmt::Result {
    writeln!(w, "hakmem statistics")?;
    writeln!(
        w,
        "{:>6} {:>12} {:>12} {:>12} {:>10} {:>14} {:>14}",
        "class", "allocs", "frees", "remote", "refills", "live bytes", "cached bytes"
    )?;
    for c in s
        .classes
        .iter()
        .filter(|c| c.allocs + c.frees + c.refills > 0)
    {
        writeln!(
            w,
            "{:>6} {:>12} {:>12} {:>12} {:>10} {:>14} {:>14}",
            c.size, c.allocs, c.frees, c.remote_frees, c.refills, c.live_bytes, c.cached_bytes
        )?;
    }
    writeln!(
        w,
        "{:>6} {:>12} {:>12} {:>12} {:>10}",
        "spans", s.large_allocs, s.large_frees, "-", "-"
    )?;
    writeln!(
        w,
        "{:>6} {:>12} {:>12} {:>12} {:>10}",
        "total", s.allocs, s.frees, s.remote_frees, s.refills
    )?;
    writeln!(
        w,
        "superslabs {} ({} MiB; hot {}, draining {}, free {}), spans {} ({} bytes), \
         span cache {} bytes ({} hits), adopted slabs {}, committed {} bytes, \
         RSS {} bytes (peak {} bytes)",
        s.superslabs,
        s.superslabs * 2,
        s.tiers.0,
        s.tiers.1,
        s.tiers.2,
        s.large_spans,
        s.large_bytes,
        s.span_cache_bytes,
        s.span_cache_hits,
        s.adopted_slabs,
        s.committed_bytes,
        s.rss_bytes,
        s.peak_rss_bytes
    )?;
    writeln!(
        w,
        "ace: {}, events {}, dropped {} ({:.3} %), decisions {}",
        if s.ace_running { "running" } else { "off" },
        s.ace_events,
        s.ace_dropped,
        s.ace_drop_rate() * 100.0,
        s.ace_decisions
    )?;
    writeln!(
        w,
        "fork handlers: {}",
        if fork_handlers {
            "registered"
        } else {
            "not registered yet (no second thread so far, docs/fork.md)"
        }
    )
}

/// A finite `f64` for JSON (NaN and infinities are not JSON numbers).
fn json_f64(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

fn write_json(w: &mut impl Write, s: &Stats) -> core::fmt::Result {
    write!(
        w,
        "{{\"allocs\":{},\"frees\":{},\"remote_frees\":{},\"refills\":{},\"flushes\":{},\
         \"adopted_slabs\":{},\"superslabs\":{},\"large_spans\":{},\"large_bytes\":{},\
         \"large_allocs\":{},\"large_frees\":{},\"span_cache_hits\":{},\
         \"span_cache_bytes\":{},\"tiers\":{{\"hot\":{},\"draining\":{},\"free\":{}}},\
         \"peak_rss_bytes\":{},\"rss_bytes\":{},\"committed_bytes\":{},\"classes\":[",
        s.allocs,
        s.frees,
        s.remote_frees,
        s.refills,
        s.flushes,
        s.adopted_slabs,
        s.superslabs,
        s.large_spans,
        s.large_bytes,
        s.large_allocs,
        s.large_frees,
        s.span_cache_hits,
        s.span_cache_bytes,
        s.tiers.0,
        s.tiers.1,
        s.tiers.2,
        s.peak_rss_bytes,
        s.rss_bytes,
        s.committed_bytes
    )?;
    for (i, c) in s.classes.iter().enumerate() {
        if i > 0 {
            w.write_str(",")?;
        }
        write!(
            w,
            "{{\"size\":{},\"allocs\":{},\"frees\":{},\"remote_frees\":{},\"refills\":{},\
             \"flushes\":{},\"live_bytes\":{},\"cached_bytes\":{},\"refill\":{},\"cap\":{}}}",
            c.size,
            c.allocs,
            c.frees,
            c.remote_frees,
            c.refills,
            c.flushes,
            c.live_bytes,
            c.cached_bytes,
            c.refill_count,
            c.cache_cap
        )?;
    }
    write!(
        w,
        "],\"ace\":{{\"events\":{},\"dropped\":{},\"decisions\":{},\"drop_rate\":{:.6},\
         \"running\":{}}}}}",
        s.ace_events,
        s.ace_dropped,
        s.ace_decisions,
        json_f64(s.ace_drop_rate()),
        s.ace_running
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Buf(std::string::String);
    impl Write for Buf {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            self.0.push_str(s);
            Ok(())
        }
    }

    #[test]
    fn json_is_one_line_with_required_keys() {
        let s = stats();
        let mut b = Buf(std::string::String::new());
        s.write_json(&mut b).unwrap();
        assert_eq!(b.0.matches('\n').count(), 0);
        for k in [
            "\"allocs\"",
            "\"frees\"",
            "\"remote_frees\"",
            "\"refills\"",
            "\"peak_rss_bytes\"",
            "\"rss_bytes\"",
            "\"committed_bytes\"",
            "\"tiers\":{\"hot\"",
            "\"classes\":[",
            "\"ace\":{\"events\"",
            "\"dropped\"",
            "\"decisions\"",
        ] {
            assert!(b.0.contains(k), "missing {k}");
        }
        assert_eq!(b.0.matches('{').count(), b.0.matches('}').count());
    }
}
