//! The worker thread's loop: every tick, drain the event ring into the
//! learner (observe), let it decide, apply what it wrote (decay delay,
//! span threshold, idle trim), and publish the state for
//! [`super::state`]. Sampling of the slow paths' events adapts to their
//! rate.

use core::sync::atomic::Ordering::{Acquire, Relaxed};
use std::time::Duration;

use hakmem_ace_learning::{Knob, Learner, PolicyWriter, Sample, EVENTS, POLICY};

use super::config::AceConfig;
use super::lifecycle::STOP;
use super::log::log_change;
use super::probe::{minor_faults, rss_bytes, thread_cpu_ns};
use super::snapshot::{
    publish_state, DRAINED, DROP_WARNINGS, RUNNING_FLAG, SAMPLE_SHIFT, TICKS, TRIMMED_BYTES,
    WORKER_CPU_NS, WORKER_WALL_MS,
};
use crate::sys::now_ms;

/// Events per second the worker wants to see in the ring; above it the
/// slow paths sample (a power of two).
const SAMPLED_PER_S: f64 = 50_000.0;
/// Sampling shift the worker starts with.
pub(super) const INITIAL_SAMPLE_SHIFT: u32 = 4;
/// Sampling never goes below one event in 4: a process that wakes up from
/// idleness at full speed then fills at most a quarter of the ring's
/// worth per tick at 650 000 slow-path events a second, before the
/// producers' own back-off and the next tick adapt.
const MIN_SAMPLE_SHIFT: u32 = 2;

pub(super) fn worker(
    cfg: AceConfig,
    mut learner: Box<Learner>,
    w: PolicyWriter<'static>,
) -> (Box<Learner>, PolicyWriter<'static>) {
    RUNNING_FLAG.store(true, Relaxed);
    let started = now_ms();
    let cpu0 = thread_cpu_ns();
    let tick = Duration::from_millis(cfg.tick_ms.clamp(5, 1000) as u64);
    let cap = EVENTS.capacity();
    // A short first sleep: the ring may be filling fast before sampling
    // has adapted to the event rate.
    let mut sleep = Duration::from_millis(5);
    let mut last_tick = started;
    let mut last_offered = EVENTS.pushed() + EVENTS.dropped();
    let mut rate_ema = 0.0f64;
    let mut window_pushed = EVENTS.pushed();
    let mut window_dropped = EVENTS.dropped();
    let mut window_start = started;
    let mut last_warning: Option<u64> = None;
    let mut decay_applied = hakmem_superslab_backend::decay_ms();
    loop {
        std::thread::park_timeout(sleep);
        if STOP.load(Acquire) {
            break;
        }
        // Observe: drain what the slow paths pushed (bounded, so that a
        // flood cannot keep the worker here). With sampling on, each event
        // stands for 2^shift of them.
        let shift = w.table().sample_shift();
        let n = EVENTS.drain(2 * cap, |ev| learner.record_weighted(&ev, 1 << shift));
        DRAINED.fetch_add(n as u64, Relaxed);
        let now = now_ms();
        // Adapt the sampling so that about SAMPLED_PER_S events a second
        // reach the ring, whatever the slow paths' rate.
        let offered = EVENTS.pushed() + EVENTS.dropped();
        let dt = now.saturating_sub(last_tick).max(1) as f64;
        let rate = ((offered - last_offered) << shift) as f64 * 1000.0 / dt;
        rate_ema = rate.max(rate_ema * 0.7 + rate * 0.3);
        let mut want = MIN_SAMPLE_SHIFT;
        while want < hakmem_ace_learning::MAX_SAMPLE_SHIFT
            && rate_ema / (1u64 << want) as f64 > SAMPLED_PER_S
        {
            want += 1;
        }
        w.set_sample_shift(want);
        SAMPLE_SHIFT.store(want as u8, Relaxed);
        last_offered = offered;
        last_tick = now;
        // Decide and apply.
        let sample = Sample {
            now_ms: now,
            rss_bytes: rss_bytes(),
            minor_faults: minor_faults(),
        };
        let log = cfg.log;
        let res = learner.tick(&sample, &w, &mut |c| {
            if log {
                log_change(&c)
            }
        });
        let d = w.table().knob(Knob::DecayMs);
        if d != 0 && d != decay_applied {
            hakmem_superslab_backend::set_decay_ms(d);
            decay_applied = d;
        }
        apply_span_knob(&w);
        if res.trim {
            let freed = crate::trim_idle();
            TRIMMED_BYTES.fetch_add(freed as u64, Relaxed);
            if log {
                eprintln!("hakmem ace: idle trim returned {freed} bytes");
            }
        }
        // The background purge's step, when it is on and due (one thread
        // does both jobs while the worker runs).
        crate::background::ace_tick();
        publish_state(&learner);
        TICKS.fetch_add(1, Relaxed);
        WORKER_CPU_NS.store(thread_cpu_ns().saturating_sub(cpu0), Relaxed);
        WORKER_WALL_MS.store(now - started, Relaxed);
        // Contract A's alarm: more than 1 % of the events of the last
        // second dropped (at most one warning per 10 s).
        if now - window_start >= 1000 {
            let p = EVENTS.pushed();
            let dr = EVENTS.dropped();
            let (dp, dd) = (p - window_pushed, dr - window_dropped);
            if dd * 100 > dp + dd && last_warning.is_none_or(|t| now - t >= 10_000) {
                last_warning = Some(now);
                DROP_WARNINGS.fetch_add(1, Relaxed);
                eprintln!(
                    "hakmem ace: warning: the event ring dropped {dd} of {} events ({:.1} %) in the last second",
                    dp + dd,
                    dd as f64 * 100.0 / (dp + dd) as f64
                );
            }
            window_pushed = p;
            window_dropped = dr;
            window_start = now;
        }
        // Busy ring: drain sooner. (A quiet process is still polled every
        // tick: it may wake up at full speed.)
        sleep = if n > cap / 4 {
            (tick / 2).max(Duration::from_millis(5))
        } else {
            tick
        };
    }
    POLICY.set_observing(false);
    w.set_auto_sampling(false);
    w.set_sample_shift(0);
    SAMPLE_SHIFT.store(0, Relaxed);
    while EVENTS.pop().is_some() {}
    WORKER_CPU_NS.store(thread_cpu_ns().saturating_sub(cpu0), Relaxed);
    WORKER_WALL_MS.store(now_ms() - started, Relaxed);
    RUNNING_FLAG.store(false, Relaxed);
    (learner, w)
}

/// Hands the threshold knob to the route table when it differs from the
/// threshold in force (0: never written). Requests see the new route from
/// their next `malloc`; blocks already allocated are freed by what the
/// registry says they are, whatever the threshold is now.
pub(super) fn apply_span_knob(w: &PolicyWriter<'_>) {
    let t = w.table().knob(Knob::SpanThreshold) as usize;
    if t != 0 && t != crate::span_threshold() {
        crate::set_span_threshold(t);
    }
}
