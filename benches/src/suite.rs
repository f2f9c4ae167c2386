//! Which workloads a suite run contains, with which parameters.
//!
//! Default mode sizes each run to roughly 0.2–1 s on a 2-core machine (for
//! the fast allocators); `--quick` shrinks every count so that the whole
//! suite is a smoke test of a few seconds; `--scale F` multiplies the op
//! counts of either mode.

use crate::workloads::{
    CacheScratch, GlibcSimple, LargeChurn, Larson, MidMt, Phases, ProducerConsumer, RandomMixed,
    RssReturn, Scenario, TinyHot, Touch, Workload,
};

/// One entry of the suite: a display name and the workload it runs.
#[derive(Clone, Debug)]
pub struct Spec {
    pub name: String,
    pub workload: Workload,
}

/// How big the suite is.
#[derive(Clone, Copy, Debug)]
pub struct Size {
    pub quick: bool,
    pub threads: usize,
    pub scale: f64,
}

/// The tiny-hot block sizes.
pub const TINY_SIZES: [usize; 5] = [16, 64, 128, 256, 1024];

/// The `glibc-simple` block sizes and allocations per batch size and
/// sweep (default, quick): more for the small sizes, whose runs are short
/// (glibc's benchmark makes 200,000, mimalloc-bench's 2,000,000).
pub const GLIBC_SIMPLE: [(usize, u64, u64); 4] = [
    (16, 2_000_000, 20_000),
    (256, 1_000_000, 10_000),
    (1024, 400_000, 4_000),
    (4096, 200_000, 2_000),
];

/// The seeds' scenarios: name, block size, default and quick rounds.
pub const SCENARIOS: [(&str, usize, u64, u64); 3] = [
    ("json", 64 << 10, 4_000_000, 20_000),
    ("mir", 256 << 10, 1_000_000, 10_000),
    ("vm", 2 << 20, 200_000, 2_000),
];

/// The `rss-return` variants: name, cross-thread frees, trim, wait (ms).
pub const RSS_RETURN: [(&str, bool, bool, u64); 3] = [
    ("own", false, true, 0),
    ("cross", true, true, 0),
    ("wait", false, false, 600),
];

/// Every workload of the suite, in report order.
pub fn all(sz: Size) -> Vec<Spec> {
    let q = sz.quick;
    // `n(default, quick)`: an op count for this mode, scaled.
    let n = |d: u64, quick: u64| (((if q { quick } else { d }) as f64) * sz.scale).max(1.0) as u64;
    let t = sz.threads.max(1);
    let mut v = Vec::new();
    for size in TINY_SIZES {
        v.push(Spec {
            name: format!("tiny-hot/{size}"),
            workload: Workload::TinyHot(TinyHot {
                size,
                batch: 100,
                rounds: n(500_000, 1_000),
            }),
        });
    }
    let rm = |ops, max| RandomMixed {
        ops,
        slots: 400,
        seed: 42,
        min: 16,
        max,
    };
    v.push(Spec {
        name: "random-mixed".into(),
        workload: Workload::RandomMixed(rm(n(20_000_000, 100_000), 1024)),
    });
    v.push(Spec {
        name: "random-mixed-64k".into(),
        workload: Workload::RandomMixed(rm(n(10_000_000, 50_000), 65536)),
    });
    let mut larson_threads = vec![1];
    if t > 1 {
        larson_threads.push(t);
    }
    for lt in larson_threads {
        v.push(Spec {
            name: format!("larson/{lt}t"),
            workload: Workload::Larson(Larson {
                threads: lt,
                slots: 1000,
                min: 16,
                max: 1000,
                gen_ops: n(100_000, 5_000),
                generations: if q { 3 } else { 150 },
                seed: 4141,
            }),
        });
    }
    v.push(Spec {
        name: "producer-consumer".into(),
        workload: Workload::ProducerConsumer(ProducerConsumer {
            pairs: (t / 2).max(1),
            objects: n(10_000_000, 20_000),
            min: 16,
            max: 512,
            queue: 1024,
            seed: 7,
        }),
    });
    v.push(Spec {
        name: "cache-scratch".into(),
        workload: Workload::CacheScratch(CacheScratch {
            threads: t,
            iterations: 1000,
            objsize: 8,
            repetitions: n(50_000, 100),
        }),
    });
    v.push(Spec {
        name: "mid-mt".into(),
        workload: Workload::MidMt(MidMt {
            threads: t,
            ops: n(8_000_000, 20_000),
            slots: 256,
            min: 2048,
            max: 65536,
            seed: 99,
        }),
    });
    // Issue 5: memory. rss-return is sized in bytes, not ops; --scale
    // scales it too.
    let total = if q { 16 << 20 } else { 512 << 20 };
    for (name, cross, trim, wait_ms) in RSS_RETURN {
        v.push(Spec {
            name: format!("rss-return/{name}"),
            workload: Workload::RssReturn(RssReturn {
                threads: 2,
                total: ((total as f64 * sz.scale) as usize).max(1 << 20),
                small: 64,
                large: 4096,
                cross,
                trim,
                wait_ms: if q { wait_ms.min(100) } else { wait_ms },
            }),
        });
    }
    v.push(Spec {
        name: "large-churn".into(),
        workload: Workload::LargeChurn(LargeChurn {
            slots: 20,
            iterations: n(2_000, 20),
            min: 5 << 20,
            max: 25 << 20,
            seed: 42,
            touch: Touch::Page,
        }),
    });
    for (name, size, rounds, quick) in SCENARIOS {
        v.push(Spec {
            name: format!("scenario/{name}"),
            workload: Workload::Scenario(Scenario {
                size,
                window: 4,
                rounds: n(rounds, quick),
                touch: Touch::Page,
            }),
        });
    }
    v.push(Spec {
        name: "phases".into(),
        workload: Workload::Phases(phases(sz)),
    });
    for (size, allocs, quick) in GLIBC_SIMPLE {
        v.push(Spec {
            name: format!("glibc-simple/{size}"),
            workload: Workload::GlibcSimple(GlibcSimple {
                size,
                allocs: n(allocs, quick),
            }),
        });
    }
    v
}

/// The `phases` workload of issue 6 at this size (also what
/// `hakmem-bench sweep` and `warm` run): about 4 s per run in default
/// mode on a 2-core machine (three busy phases of roughly 1 s each, the
/// idle one, the last tiny churn), a quarter of a second with `--quick`.
pub fn phases(sz: Size) -> Phases {
    let n = |d: u64, quick: u64| {
        (((if sz.quick { quick } else { d }) as f64) * sz.scale).max(1.0) as u64
    };
    Phases {
        threads: sz.threads.max(1),
        steps: n(60_000, 1_000),
        bursts: n(10_000, 100),
        spans: n(2_000, 100),
        // Longer than ACE's idle threshold (250 ms) plus a tick, so the
        // idle trim fires; not scaled.
        idle_ms: if sz.quick { 50 } else { 600 },
        seed: 6,
    }
}

/// The suite restricted to `only` (comma-separated): an entry selects the
/// workload of that exact name and every `name/variant` below it, so
/// `tiny-hot` selects all five sizes and `tiny-hot/64` one of them.
pub fn select(all: Vec<Spec>, only: &[String]) -> Result<Vec<Spec>, String> {
    if only.is_empty() {
        return Ok(all);
    }
    for o in only {
        if !all.iter().any(|s| matches(&s.name, o)) {
            let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
            return Err(format!("no workload `{o}`; known: {}", names.join(", ")));
        }
    }
    Ok(all
        .into_iter()
        .filter(|s| only.iter().any(|o| matches(&s.name, o)))
        .collect())
}

fn matches(name: &str, sel: &str) -> bool {
    name == sel || (name.starts_with(sel) && name[sel.len()..].starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection() {
        let sz = Size {
            quick: true,
            threads: 2,
            scale: 1.0,
        };
        let names = |v: Vec<Spec>| v.into_iter().map(|s| s.name).collect::<Vec<_>>();
        assert_eq!(
            names(select(all(sz), &["tiny-hot".into()]).unwrap()).len(),
            5
        );
        assert_eq!(
            names(select(all(sz), &["random-mixed".into()]).unwrap()),
            ["random-mixed"]
        );
        assert_eq!(
            names(select(all(sz), &["larson".into()]).unwrap()),
            ["larson/1t", "larson/2t"]
        );
        assert!(select(all(sz), &["tiny".into()]).is_err());
        assert_eq!(
            names(select(all(sz), &["scenario".into(), "large-churn".into()]).unwrap()),
            [
                "large-churn",
                "scenario/json",
                "scenario/mir",
                "scenario/vm"
            ]
        );
        assert_eq!(
            names(select(all(sz), &["rss-return".into()]).unwrap()).len(),
            3
        );
        assert_eq!(
            names(select(all(sz), &["glibc-simple".into()]).unwrap()),
            [
                "glibc-simple/16",
                "glibc-simple/256",
                "glibc-simple/1024",
                "glibc-simple/4096"
            ]
        );
    }
}
