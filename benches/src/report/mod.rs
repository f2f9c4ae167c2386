//! Turns samples into results: medians and ratios to mimalloc (here), the
//! tables printed on stdout and written to `results.md` ([`tables`],
//! comfy-table), hakmem against the issue targets ([`targets`]),
//! `results.csv` ([`results`], csv + serde) and the charts ([`charts`],
//! plotters: SVG and PNG).

pub mod charts;
pub mod results;
pub mod tables;
pub mod targets;

pub use charts::{bars, Bars, Series};
pub use results::csv;
pub use tables::{markdown, table};
pub use targets::{ace_overhead, suite_rss_geomean, targets};

use std::path::Path;

use crate::allocators::Allocator;
use crate::runner::Sample;
use crate::suite::Spec;

/// The median result of one (workload, allocator).
#[derive(Clone, Debug)]
pub struct Row {
    pub name: String,
    pub family: &'static str, // the workload family (`scenario`, …)
    pub alloc: Allocator,
    pub ok: usize,                       // successful repetitions
    pub runs: usize,                     // repetitions attempted
    pub mops: Option<f64>,               // median throughput
    pub best: Option<f64>,               // highest throughput (least disturbed run)
    pub mops_cpu: Option<f64>,           // median ops per CPU-second
    pub cpu_ratio: Option<f64>,          // mops_cpu / mimalloc's mops_cpu
    pub rss_mib: Option<f64>,            // median peak RSS (VmHWM)
    pub mops_ratio: Option<f64>,         // mops / mimalloc's mops
    pub rss_ratio: Option<f64>,          // rss / mimalloc's rss
    pub spread: Option<f64>,             // (max - min) / median of throughput
    pub error: Option<String>,           // the first failure, if any
    pub rss_after_free_mib: Option<f64>, // rss-return: median RSS(end) − RSS(start)
    pub ace_cpu_pct: Option<f64>,        // hakmem+ace: median worker CPU, % of one core
    pub ace_drop_rate: Option<f64>,      // hakmem+ace: median event drop rate
}

/// The median of `v` (the mean of the middle two for even lengths).
pub fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// One row per (workload, allocator), in spec order then `allocators` order.
pub fn summarize(specs: &[Spec], samples: &[Sample], allocators: &[Allocator]) -> Vec<Row> {
    let mut rows = Vec::new();
    for (si, spec) in specs.iter().enumerate() {
        let first = rows.len();
        for &alloc in allocators {
            let mine: Vec<&Sample> = samples
                .iter()
                .filter(|s| s.spec == si && s.alloc == alloc)
                .collect();
            let ok: Vec<_> = mine.iter().filter_map(|s| s.result.as_ref().ok()).collect();
            let mut mops: Vec<f64> = ok.iter().map(|m| m.mops()).collect();
            let mut rss: Vec<f64> = ok.iter().map(|m| m.rss_mib()).collect();
            let med = median(&mut mops);
            let spread = med.map(|m| (mops[mops.len() - 1] - mops[0]) / m);
            let best = mops.last().copied();
            let mut cpu: Vec<f64> = ok
                .iter()
                .map(|m| m.mops_cpu())
                .filter(|&v| v > 0.0)
                .collect();
            let mut after: Vec<f64> = ok.iter().filter_map(|m| m.rss_after_free_mib()).collect();
            let mut ace_cpu: Vec<f64> = ok
                .iter()
                .filter_map(|m| m.ace.map(|a| a.worker_cpu_pct()))
                .collect();
            let mut ace_drop: Vec<f64> = ok
                .iter()
                .filter_map(|m| m.ace.map(|a| a.drop_rate()))
                .collect();
            rows.push(Row {
                name: spec.name.clone(),
                family: spec.workload.family(),
                alloc,
                ok: ok.len(),
                runs: mine.len(),
                mops: med,
                best,
                mops_cpu: median(&mut cpu),
                cpu_ratio: None,
                rss_mib: median(&mut rss),
                mops_ratio: None,
                rss_ratio: None,
                spread,
                error: mine.iter().find_map(|s| s.result.as_ref().err().cloned()),
                rss_after_free_mib: median(&mut after),
                ace_cpu_pct: median(&mut ace_cpu),
                ace_drop_rate: median(&mut ace_drop),
            });
        }
        let base = rows[first..]
            .iter()
            .find(|r| r.alloc == Allocator::BASELINE)
            .map(|r| (r.mops, r.rss_mib, r.mops_cpu));
        if let Some((bm, br, bc)) = base {
            for r in &mut rows[first..] {
                r.mops_ratio = ratio(r.mops, bm);
                r.cpu_ratio = ratio(r.mops_cpu, bc);
                r.rss_ratio = ratio(r.rss_mib, br);
            }
        }
    }
    rows
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn opt(v: Option<f64>, prec: usize) -> String {
    match v {
        Some(v) => format!("{v:.prec$}"),
        None => "-".into(),
    }
}

/// Throughput with three significant digits at least.
fn mops_str(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 100.0 => format!("{v:.1}"),
        Some(v) if v >= 1.0 => format!("{v:.2}"),
        Some(v) if v > 0.0 => {
            // 0.0177 → 4 decimals, 0.00123 → 5.
            let prec = (2.0 - v.log10().floor()).clamp(3.0, 9.0) as usize;
            format!("{v:.prec$}")
        }
        Some(v) => format!("{v}"),
        None => "-".into(),
    }
}

/// Whether any row has the `rss-return` metric (the tables then get its
/// column).
fn has_rss_after_free(rows: &[Row]) -> bool {
    rows.iter().any(|r| r.rss_after_free_mib.is_some())
}

/// Workloads whose runs disagree on the checksum of the values read back
/// (every allocator sees the same operation sequence, so they must agree).
pub fn checksum_mismatches(specs: &[Spec], samples: &[Sample]) -> Vec<String> {
    let mut out = Vec::new();
    for (si, spec) in specs.iter().enumerate() {
        let mut seen: Vec<(u64, Allocator)> = Vec::new();
        for s in samples.iter().filter(|s| s.spec == si) {
            if let Ok(m) = &s.result {
                if !seen.iter().any(|&(c, _)| c == m.check) {
                    seen.push((m.check, s.alloc));
                }
            }
        }
        if seen.len() > 1 {
            let v: Vec<String> = seen
                .iter()
                .map(|(c, a)| format!("{}={c:#x}", a.name()))
                .collect();
            out.push(format!("{}: checksums differ: {}", spec.name, v.join(" ")));
        }
    }
    out
}

/// Writes `text` to `dir/name`, creating `dir`; returns the path written.
pub fn write(dir: &Path, name: &str, text: &str) -> std::io::Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir)?;
    let p = dir.join(name);
    std::fs::write(&p, text)?;
    Ok(p)
}

/// A one-line description of this machine and the date (UTC).
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU".to_string(), |(_, m)| m.trim().to_string());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{}, {}, {model}, {cpus} logical CPUs, {mem_gib:.0} GiB RAM, Linux {}, \
         mimalloc {}, load average {}",
        today(),
        revision(),
        kernel.trim(),
        crate::allocators::mimalloc_version(),
        load_average()
    )
}

/// The workspace's git revision (`abc1234`, `+dirty` when `crates/` has
/// uncommitted changes), or `unknown revision`.
pub fn revision() -> String {
    let root = crate::workspace_root();
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(&root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(rev) => {
            let dirty =
                git(&["status", "--porcelain", "--", "crates"]).is_some_and(|s| !s.is_empty());
            format!("hakmem {rev}{}", if dirty { "+dirty" } else { "" })
        }
        None => "unknown revision".into(),
    }
}

/// The 1-minute load average (other work on the machine skews timings).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(String::from))
        .unwrap_or_else(|| "?".into())
}

/// Today's date (UTC) as `YYYY-MM-DD`.
pub fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 → (year, month, day) (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::Measured;
    use crate::suite::{all, Size};

    #[test]
    fn medians_and_dates() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
    }

    #[test]
    fn ratios_csv_and_svg() {
        let specs = all(Size {
            quick: true,
            threads: 2,
            scale: 1.0,
        });
        let allocs = [Allocator::Hakmem, Allocator::Mimalloc];
        let m = |mops: f64| Measured {
            ops: (mops * 1e6) as u64,
            secs: 1.0,
            cpu_secs: 1.0,
            hwm_kib: 2048,
            maxrss_kib: 4096,
            check: 0,
            rss_after_free_kib: None,
            phases: None,
            ace: None,
        };
        let samples = vec![
            Sample {
                spec: 0,
                alloc: Allocator::Hakmem,
                rep: 0,
                result: Ok(m(300.0)),
            },
            Sample {
                spec: 0,
                alloc: Allocator::Mimalloc,
                rep: 0,
                result: Ok(m(200.0)),
            },
            Sample {
                spec: 1,
                alloc: Allocator::Hakmem,
                rep: 0,
                result: Err("boom".into()),
            },
            Sample {
                spec: 1,
                alloc: Allocator::Mimalloc,
                rep: 0,
                result: Ok(m(100.0)),
            },
        ];
        let rows = summarize(&specs[..2], &samples, &allocs);
        assert_eq!(rows.len(), 4);
        assert!((rows[0].mops_ratio.unwrap() - 1.5).abs() < 1e-9);
        assert!((rows[0].rss_ratio.unwrap() - 1.0).abs() < 1e-9);
        assert_eq!(rows[2].mops, None);
        assert_eq!(rows[2].error.as_deref(), Some("boom"));
        let c = csv(&specs, &samples, &rows);
        assert_eq!(c.lines().count(), 1 + 4 + 4);
        let header_cols = c.lines().next().unwrap().split(',').count();
        assert!(
            c.lines().all(|l| l.split(',').count() == header_cols),
            "{c}"
        );
        let chart = charts::suite(&rows, &allocs, "t", "n", |r| r.mops_ratio);
        assert_eq!(chart.groups.len(), 2);
        assert_eq!(chart.series[0].values, [Some(1.5), None]);
        let back = results::parse(&c, "results.csv").unwrap();
        assert_eq!(back.len(), 8);
        assert_eq!(back[2].status, "boom");
        assert_eq!(back[4].rep, "median");
        assert!(table(&rows).contains("boom"));
        assert!(targets(&rows).contains("1.50× ok"));
        assert_eq!(ace_overhead(&rows), "", "no hakmem+ace rows");
        let ace = |mops: f64, cpu_ns: u64, dropped: u64| Measured {
            ace: Some(crate::runner::AceRun {
                events: 10_000,
                dropped,
                decisions: 4,
                worker_cpu_ns: cpu_ns,
                worker_wall_ms: 1000,
            }),
            ..m(mops)
        };
        let mut with_ace = samples.clone();
        with_ace.push(Sample {
            spec: 0,
            alloc: Allocator::HakmemAce,
            rep: 0,
            result: Ok(ace(297.0, 5_000_000, 0)),
        });
        let allocs = [Allocator::Hakmem, Allocator::HakmemAce, Allocator::Mimalloc];
        let rows = summarize(&specs[..2], &with_ace, &allocs);
        let o = ace_overhead(&rows);
        assert!(o.contains("on/off 0.990× ok"), "{o}");
        assert!(o.contains("worker CPU 0.50 % ok"), "{o}");
        assert!(o.contains("drops 0.000 % ok"), "{o}");
        let c = csv(&specs, &with_ace, &rows);
        assert!(c.contains(",0.5,0.0,ok"), "{c}");
    }
}
