//! hakmem against the targets of issues 3, 5 and 6: one line per workload,
//! the suite-wide peak-RSS geometric mean, and ACE on against off.

use std::fmt::Write as _;

use super::{opt, ratio, Row};
use crate::allocators::Allocator;

/// The issue-5 bound on `rss-return`: RSS after free, above the start.
pub const RSS_AFTER_FREE_MAX_MIB: f64 = 16.0;
/// The issue-5 bound on the suite's geometric-mean peak RSS ÷ mimalloc's.
pub const SUITE_RSS_MAX: f64 = 0.9;

/// What hakmem's throughput is held against on one workload.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Goal {
    /// At least this many times mimalloc's median.
    Mimalloc(f64),
    /// At least this many times mimalloc 2.x's median (the `mimalloc2`
    /// column) when the run has one, else mimalloc's, said so.
    Mimalloc2(f64),
    /// At least the median of the fastest other allocator in the run.
    FastestOther,
}

/// The throughput target of a workload family: issue 3 (tiny-hot and
/// random-mixed ≥ 1.1× mimalloc, larson and producer-consumer ≥ 1.0×,
/// anything else ≥ 0.8×), issue 5 (large-churn ≥ 3× mimalloc; the seeds'
/// scenarios at least as fast as the fastest other allocator).
fn goal(family: &str) -> Goal {
    match family {
        "tiny-hot" | "random-mixed" => Goal::Mimalloc(1.1),
        "larson" | "producer-consumer" => Goal::Mimalloc(1.0),
        "large-churn" => Goal::Mimalloc2(3.0),
        "scenario" => Goal::FastestOther,
        _ => Goal::Mimalloc(0.8),
    }
}

/// The geometric mean of hakmem's peak RSS ÷ mimalloc's over the
/// workloads where both have a median, and the number of those workloads.
pub fn suite_rss_geomean(rows: &[Row]) -> Option<(f64, usize)> {
    let logs: Vec<f64> = rows
        .iter()
        .filter(|r| r.alloc == Allocator::Hakmem)
        .filter_map(|r| r.rss_ratio)
        .filter(|&x| x > 0.0)
        .map(f64::ln)
        .collect();
    if logs.is_empty() {
        return None;
    }
    Some((
        (logs.iter().sum::<f64>() / logs.len() as f64).exp(),
        logs.len(),
    ))
}

/// hakmem against the targets of issues 3 and 5: one line per workload
/// (throughput, peak RSS, and for `rss-return` the RSS after free), then the
/// suite-wide peak-RSS geometric mean.
pub fn targets(rows: &[Row]) -> String {
    let mut s = String::new();
    for r in rows.iter().filter(|r| r.alloc == Allocator::Hakmem) {
        let (ratio, want) = match goal(r.family) {
            Goal::Mimalloc(x) => (r.mops_ratio, (x, format!("{x:.1}× mimalloc"))),
            Goal::Mimalloc2(x) => {
                let mi2 = rows
                    .iter()
                    .find(|o| o.name == r.name && o.alloc == Allocator::Mimalloc2)
                    .and_then(|o| o.mops);
                match mi2 {
                    Some(m) => (ratio(r.mops, Some(m)), (x, format!("{x:.1}× mimalloc2"))),
                    None => (
                        r.mops_ratio,
                        (x, format!("{x:.1}× mimalloc; the target names 2.x")),
                    ),
                }
            }
            Goal::FastestOther => {
                let best = rows
                    .iter()
                    // hakmem+ace is hakmem too, not another allocator.
                    .filter(|o| {
                        o.name == r.name
                            && !matches!(o.alloc, Allocator::Hakmem | Allocator::HakmemAce)
                    })
                    .filter_map(|o| o.mops.map(|m| (m, o.alloc)))
                    .max_by(|a, b| a.0.total_cmp(&b.0));
                match best {
                    Some((m, a)) => (
                        ratio(r.mops, Some(m)),
                        (1.0, format!("the fastest, {}", a.name())),
                    ),
                    None => (None, (1.0, "the fastest other".into())),
                }
            }
        };
        let t = match ratio {
            Some(x) if x >= want.0 => format!("{x:.2}× ok"),
            Some(x) => format!("{x:.2}× BELOW"),
            None => "n/a".into(),
        };
        let m = match r.rss_ratio {
            Some(x) if x <= 1.1 => format!("{x:.2}× ok"),
            Some(x) => format!("{x:.2}× ABOVE"),
            None => "n/a".into(),
        };
        let _ = write!(
            s,
            "  {:<20} throughput {:<13} {:<33} peak RSS {:<13} (target ≤ 1.1×)",
            r.name,
            t,
            format!("(target ≥ {})", want.1),
            m
        );
        if r.family == "rss-return" {
            let a = match r.rss_after_free_mib {
                Some(x) if x < RSS_AFTER_FREE_MAX_MIB => format!("{x:+.1} MiB ok"),
                Some(x) => format!("{x:+.1} MiB ABOVE"),
                None => "n/a".into(),
            };
            let _ = write!(
                s,
                "   RSS after free {a} (target < {RSS_AFTER_FREE_MAX_MIB:.0} MiB above start)"
            );
        }
        s.push('\n');
    }
    if let Some((g, n)) = suite_rss_geomean(rows) {
        let v = if g <= SUITE_RSS_MAX { "ok" } else { "ABOVE" };
        let _ = writeln!(
            s,
            "  suite peak RSS: geometric mean of hakmem ÷ mimalloc over {n} workload(s) {g:.2}× {v} \
             (target ≤ {SUITE_RSS_MAX:.1}×)"
        );
    }
    s
}

/// The issue-6 overhead targets: ACE on vs off within 2 % on tiny-hot and
/// random-mixed, worker CPU under 1 % of one core, drop rate under 0.1 %
/// on every workload.
pub const ACE_ON_OFF_MIN: f64 = 0.98;
/// Worker CPU time, % of one core.
pub const ACE_CPU_MAX_PCT: f64 = 1.0;
/// Events dropped by the ring.
pub const ACE_DROP_MAX: f64 = 0.001;

/// ACE on (`hakmem+ace`) against off (`hakmem`), one line per workload
/// where both ran: the throughput ratio (medians), the worker's CPU time
/// and the drop rate; then the geometric mean of the ratios.
pub fn ace_overhead(rows: &[Row]) -> String {
    let mut s = String::new();
    let mut logs = Vec::new();
    for on in rows.iter().filter(|r| r.alloc == Allocator::HakmemAce) {
        let off = rows
            .iter()
            .find(|r| r.name == on.name && r.alloc == Allocator::Hakmem);
        let r = ratio(on.mops, off.and_then(|o| o.mops));
        // Ops per CPU-second (the worker's CPU time counts against ACE):
        // steadier than wall time on a loaded machine.
        let rc = ratio(on.mops_cpu, off.and_then(|o| o.mops_cpu));
        if let Some(x) = r.filter(|&x| x > 0.0) {
            logs.push(x.ln());
        }
        let targeted = matches!(on.family, "tiny-hot" | "random-mixed");
        let t = match r {
            Some(x) if !targeted => format!("{x:.3}×"),
            Some(x) if x >= ACE_ON_OFF_MIN => format!("{x:.3}× ok"),
            Some(x) => format!("{x:.3}× BELOW"),
            None => "n/a".into(),
        };
        let cpu = match on.ace_cpu_pct {
            Some(c) if c < ACE_CPU_MAX_PCT => format!("{c:.2} % ok"),
            Some(c) => format!("{c:.2} % ABOVE"),
            None => "n/a".into(),
        };
        let drop = match on.ace_drop_rate {
            Some(d) if d < ACE_DROP_MAX => format!("{:.3} % ok", d * 100.0),
            Some(d) => format!("{:.3} % ABOVE", d * 100.0),
            None => "n/a".into(),
        };
        let _ = writeln!(
            s,
            "  {:<20} on/off {:<12} per CPU-s {:<7} worker CPU {:<12} drops {:<12}",
            on.name,
            t,
            opt(rc, 3),
            cpu,
            drop
        );
    }
    if !logs.is_empty() {
        let g = (logs.iter().sum::<f64>() / logs.len() as f64).exp();
        let _ = writeln!(
            s,
            "  geometric mean of on/off over {} workload(s): {g:.3}× (targets: on/off ≥ {ACE_ON_OFF_MIN} on tiny-hot and random-mixed, \
             worker CPU < {ACE_CPU_MAX_PCT:.0} % of one core, drops < {:.1} %)",
            logs.len(),
            ACE_DROP_MAX * 100.0
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::super::{csv, markdown, mops_str, summarize, table};
    use super::*;
    use crate::runner::{Measured, Sample};
    use crate::suite::{all, Size};

    #[test]
    fn issue5_targets() {
        let specs = all(Size {
            quick: true,
            threads: 2,
            scale: 1.0,
        });
        let idx = |n: &str| specs.iter().position(|s| s.name == n).unwrap();
        let (churn, json, own) = (
            idx("large-churn"),
            idx("scenario/json"),
            idx("rss-return/own"),
        );
        let m = |mops: f64, rss_kib: u64, after: Option<i64>| Measured {
            ops: (mops * 1e6) as u64,
            secs: 1.0,
            cpu_secs: 1.0,
            hwm_kib: rss_kib,
            maxrss_kib: rss_kib,
            check: 0,
            rss_after_free_kib: after,
            phases: None,
            ace: None,
        };
        let mut samples = Vec::new();
        let mut add = |spec, alloc, r| {
            samples.push(Sample {
                spec,
                alloc,
                rep: 0,
                result: Ok(r),
            })
        };
        // large-churn: 2.5× mimalloc (below 3×); json: 1.2× mimalloc but
        // below jemalloc; rss-return: 3 MiB left after free.
        add(churn, Allocator::Hakmem, m(2.5, 800, None));
        add(churn, Allocator::Mimalloc, m(1.0, 1000, None));
        add(churn, Allocator::Jemalloc, m(0.5, 1000, None));
        add(json, Allocator::Hakmem, m(1.2, 1000, None));
        add(json, Allocator::Mimalloc, m(1.0, 1000, None));
        add(json, Allocator::Jemalloc, m(1.5, 1000, None));
        add(own, Allocator::Hakmem, m(1.0, 1000, Some(3 << 10)));
        add(own, Allocator::Mimalloc, m(1.0, 1000, Some(40 << 10)));
        add(own, Allocator::Jemalloc, m(1.0, 1000, None));
        let allocs = [Allocator::Hakmem, Allocator::Mimalloc, Allocator::Jemalloc];
        let rows = summarize(&specs, &samples, &allocs);
        let t = targets(&rows);
        let line = |n: &str| {
            t.lines()
                .find(|l| l.trim_start().starts_with(&format!("{n} ")))
                .unwrap_or_else(|| panic!("no {n} in\n{t}"))
                .to_string()
        };
        assert!(line("large-churn").contains("2.50× BELOW"), "{t}");
        assert!(line("large-churn").contains("3.0× mimalloc"), "{t}");
        assert!(line("scenario/json").contains("0.80× BELOW"), "{t}");
        assert!(line("scenario/json").contains("jemalloc"), "{t}");
        assert!(line("rss-return/own").contains("+3.0 MiB ok"), "{t}");
        // Peak RSS ratios 0.8, 1.0, 1.0: geometric mean 0.928.
        let (g, n) = suite_rss_geomean(&rows).unwrap();
        assert_eq!(n, 3);
        assert!((g - 0.8f64.cbrt()).abs() < 1e-9);
        assert!(t.contains("over 3 workload(s) 0.93× ABOVE"), "{t}");
        let tab = table(&rows);
        assert!(
            tab.contains("RSS after free MiB") && tab.contains("40.0"),
            "{tab}"
        );
        assert!(
            markdown(&rows).contains(" **3.0** |"),
            "{}",
            markdown(&rows)
        );
        let c = csv(&specs, &samples, &rows);
        let cols = c.lines().next().unwrap().split(',').count();
        assert!(c.lines().all(|l| l.split(',').count() == cols), "{c}");
        assert!(c.contains(",3072,,,ok"), "{c}");
        assert_eq!(mops_str(Some(0.00123)), "0.00123");
        assert_eq!(mops_str(Some(0.0177)), "0.0177");
    }
}
