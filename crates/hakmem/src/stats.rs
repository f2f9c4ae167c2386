//! Process-wide statistics, kept with thread-local batching: each thread
//! counts on its own (frees in the cache front, refills and flushes in its
//! heap) and publishes to the global atomics here every
//! [`PUBLISH_EVERY`] slow-path events, at exit, and when it calls
//! [`stats`] itself. Other live threads' figures are therefore at most one
//! batch behind.
//!
//! Per class, with every quantity counted since the start:
//! `allocs = refill_blocks + cache_pushes - flushed_blocks - cached`
//! (a block leaves a thread cache either to the program or back to its
//! slab), `frees = cache_pushes + remote_frees`, `live = allocs - frees`.

use core::fmt::Write;
use core::sync::atomic::Ordering::Relaxed;
use core::sync::atomic::{AtomicI64, AtomicU64};

use ptr_bridge::{CLASS_SIZE, NUM_CLASSES};

use crate::thread::ThreadState;

/// Slow-path events between two publications of a thread's counters.
pub(crate) const PUBLISH_EVERY: u32 = 4096;

struct ClassTotals {
    pushes: AtomicU64,
    refills: AtomicU64,
    refill_blocks: AtomicU64,
    flushes: AtomicU64,
    flushed_blocks: AtomicU64,
    remote_frees: AtomicU64,
    cached: AtomicI64,
}

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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    /// Peak resident set size of the process, in bytes.
    pub peak_rss_bytes: u64,
    /// Learning events recorded.
    pub ace_events: u64,
    /// Learning events dropped because the ring was full.
    pub ace_dropped: u64,
    /// Learning decisions applied to the policy table.
    pub ace_decisions: u64,
    /// Per size class.
    pub classes: [ClassStats; NUM_CLASSES],
}

impl Stats {
    /// Share of learning events dropped because the ring was full:
    /// `ace_dropped / (ace_events + ace_dropped)`.
    pub fn ace_drop_rate(&self) -> f64 {
        crate::ace::drop_rate(self.ace_events, self.ace_dropped)
    }
}

/// Publishes the counters of one class of thread `ts` (its own thread).
fn publish_class(ts: &mut ThreadState, class: usize) {
    let c = ts.heap.counters.take_class(class);
    let pushes = ts.front.drain_pushes(class);
    let cached = ts.front.count(class);
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
    for c in 0..NUM_CLASSES {
        publish_class(ts, c);
    }
    ADOPTED.fetch_add(core::mem::take(&mut ts.heap.counters.adopted), Relaxed);
    let (allocs, frees) = ts.span_stash.take_counts();
    STASH_ALLOCS.fetch_add(allocs, Relaxed);
    STASH_FREES.fetch_add(frees, Relaxed);
    ts.slow_events = 0;
}

/// Called on every slow-path event of a thread: publishes in batches.
#[inline]
pub(crate) fn tick(ts: &mut ThreadState) {
    ts.slow_events += 1;
    if ts.slow_events.is_multiple_of(32) {
        // Delayed return of memory to the OS (rate-limited inside).
        superslab_backend::decay(false);
    }
    if ts.slow_events.is_multiple_of(256) {
        // Ownerless slabs emptied by remote frees go back to the backend,
        // and batched remote frees must not wait for long either.
        refill_engine::sweep_empty();
        refill_engine::flush_remote_batches(&mut ts.heap);
    }
    if ts.slow_events >= PUBLISH_EVERY {
        publish_all(ts);
    }
}

fn peak_rss() -> u64 {
    // SAFETY: an all-zero rusage is valid; getrusage fills it.
    let mut ru: libc::rusage = unsafe { core::mem::zeroed() };
    // SAFETY: valid out-pointer.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } == 0 {
        ru.ru_maxrss as u64 * 1024
    } else {
        0
    }
}

/// Current statistics (publishes the calling thread's counters first).
pub fn stats() -> Stats {
    if let Some(t) = crate::thread::peek() {
        // SAFETY: our own thread's state, outside any allocator call.
        unsafe { publish_all(&mut *t) };
    }
    let b = superslab_backend::stats();
    let mut s = Stats {
        allocs: b.large_allocs + STASH_ALLOCS.load(Relaxed),
        frees: b.large_frees + STASH_FREES.load(Relaxed),
        remote_frees: 0,
        refills: 0,
        flushes: 0,
        adopted_slabs: ADOPTED.load(Relaxed),
        superslabs: b.superslabs,
        large_spans: b.large_spans,
        large_bytes: b.large_bytes,
        large_allocs: b.large_allocs + STASH_ALLOCS.load(Relaxed),
        large_frees: b.large_frees + STASH_FREES.load(Relaxed),
        span_cache_hits: b.span_cache_hits + STASH_ALLOCS.load(Relaxed),
        span_cache_bytes: b.span_cache_bytes,
        tiers: superslab_backend::tier_counts(),
        peak_rss_bytes: peak_rss(),
        ace_events: ace_learning::EVENTS.pushed(),
        ace_dropped: ace_learning::EVENTS.dropped(),
        ace_decisions: crate::ace::decisions(),
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
            refill_count: ace_learning::POLICY.refill_count(c),
            cache_cap: ace_learning::POLICY.cache_cap(c),
        };
        s.allocs += allocs;
        s.frees += frees;
        s.remote_frees += remote;
        s.refills += s.classes[c].refills;
        s.flushes += s.classes[c].flushes;
    }
    s
}

/// A fixed buffer that `core::fmt` writes into; output goes to stderr in
/// chunks, so printing never allocates.
struct StderrBuf {
    buf: [u8; 512],
    len: usize,
}

impl StderrBuf {
    fn flush(&mut self) {
        let mut off = 0;
        while off < self.len {
            // SAFETY: writing our own initialised buffer to fd 2.
            let n = unsafe {
                libc::write(
                    2,
                    self.buf[off..].as_ptr() as *const libc::c_void,
                    self.len - off,
                )
            };
            if n <= 0 {
                break;
            }
            off += n as usize;
        }
        self.len = 0;
    }
}

impl Write for StderrBuf {
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

/// Prints the statistics to stderr (no allocation).
pub fn print_report(format: ReportFormat) {
    let s = stats();
    let mut w = StderrBuf {
        buf: [0; 512],
        len: 0,
    };
    let _ = match format {
        ReportFormat::Table => write_table(&mut w, &s),
        ReportFormat::Json => write_json(&mut w, &s),
    };
    w.flush();
}

fn write_table(w: &mut impl Write, s: &Stats) -> core::fmt::Result {
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
         span cache {} bytes ({} hits), adopted slabs {}, peak RSS {} bytes",
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
        s.peak_rss_bytes
    )?;
    writeln!(
        w,
        "ace: {}, events {}, dropped {} ({:.3} %), decisions {}",
        if crate::ace::is_running() {
            "running"
        } else {
            "off"
        },
        s.ace_events,
        s.ace_dropped,
        s.ace_drop_rate() * 100.0,
        s.ace_decisions
    )
}

fn write_json(w: &mut impl Write, s: &Stats) -> core::fmt::Result {
    write!(
        w,
        "{{\"allocs\":{},\"frees\":{},\"remote_frees\":{},\"refills\":{},\"flushes\":{},\
         \"adopted_slabs\":{},\"superslabs\":{},\"large_spans\":{},\"large_bytes\":{},\
         \"large_allocs\":{},\"large_frees\":{},\"span_cache_hits\":{},\
         \"span_cache_bytes\":{},\"peak_rss_bytes\":{},\"classes\":[",
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
        s.peak_rss_bytes
    )?;
    let mut first = true;
    for c in s.classes.iter() {
        if !first {
            w.write_str(",")?;
        }
        first = false;
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
    writeln!(
        w,
        "],\"ace\":{{\"events\":{},\"dropped\":{},\"decisions\":{},\"drop_rate\":{:.6},\
         \"running\":{}}}}}",
        s.ace_events,
        s.ace_dropped,
        s.ace_decisions,
        s.ace_drop_rate(),
        crate::ace::is_running()
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
        write_json(&mut b, &s).unwrap();
        assert_eq!(b.0.matches('\n').count(), 1);
        for k in [
            "\"allocs\"",
            "\"frees\"",
            "\"remote_frees\"",
            "\"refills\"",
            "\"peak_rss_bytes\"",
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
