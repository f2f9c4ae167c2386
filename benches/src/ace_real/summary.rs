//! The summary of an `ace-real` run: per program the on ÷ off ratios and
//! their per-pair ranges, the verdict against the targets, the
//! tables (comfy-table), the CSV and the chart (plotters).

use std::fmt::Write as _;

use plotters::style::RGBColor;

use super::{on_first, on_off, Measured, Run, PROGRAM_MAX, RSS_GEOMEAN_MAX, TIME_GEOMEAN_MAX};
use crate::report;

/// A program's summary.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub name: String,
    pub pairs: usize,
    pub wall_off: f64,
    pub wall_on: f64,
    pub time: f64,              // median(on) / median(off)
    pub time_range: (f64, f64), // min, max of the per-pair ratios
    pub cpu: f64,               // median CPU on / off
    pub rss_off_mib: f64,
    pub rss_on_mib: f64,
    pub rss: f64,
    pub rss_range: (f64, f64),
    pub ace_cpu_ms: f64, // median over the on runs
    pub ace_pct: f64,    // of the median on wall time
    pub ace_seen: usize, // on runs where a hakmem-ace thread was seen
}

fn med(v: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = v.collect();
    report::median(&mut v).unwrap_or(f64::NAN)
}

fn range(v: impl Iterator<Item = f64>) -> (f64, f64) {
    v.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    })
}

/// The summary of one program (None without a complete pair).
pub fn summarize(m: &Measured) -> Option<Line> {
    let n = m.on.len().min(m.off.len());
    if n == 0 {
        return None;
    }
    let (on, off) = (&m.on[..n], &m.off[..n]);
    let kib = |r: &Run| r.maxrss_kib as f64;
    let wall_on = med(on.iter().map(|r| r.wall_s));
    let wall_off = med(off.iter().map(|r| r.wall_s));
    let rss_on = med(on.iter().map(kib));
    let rss_off = med(off.iter().map(kib));
    let ace_cpu_ms = med(on.iter().map(|r| r.ace_cpu_ns as f64 * 1e-6));
    Some(Line {
        name: m.name.clone(),
        pairs: n,
        wall_off,
        wall_on,
        time: wall_on / wall_off,
        time_range: range(on.iter().zip(off).map(|(a, b)| a.wall_s / b.wall_s)),
        cpu: med(on.iter().map(|r| r.cpu_s)) / med(off.iter().map(|r| r.cpu_s)),
        rss_off_mib: rss_off / 1024.0,
        rss_on_mib: rss_on / 1024.0,
        rss: rss_on / rss_off,
        rss_range: range(on.iter().zip(off).map(|(a, b)| kib(a) / kib(b))),
        ace_cpu_ms,
        ace_pct: ace_cpu_ms / (wall_on * 1e3) * 100.0,
        ace_seen: on.iter().filter(|r| r.ace_threads > 0).count(),
    })
}

/// The geometric mean (None for an empty list).
pub fn geomean(v: impl Iterator<Item = f64>) -> Option<f64> {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x.ln(), n + 1));
    (n > 0).then(|| (s / n as f64).exp())
}

/// A program worse than [`PROGRAM_MAX`] beyond its spread: its median
/// ratio is above the limit and no pair came out at or below 1.0 (ACE on
/// was never as good as off in any repetition).
pub fn worse_beyond_spread(ratio: f64, range: (f64, f64)) -> bool {
    ratio > PROGRAM_MAX && range.0 > 1.0
}

/// The table's header and cells (one row per program, then the failures).
fn cells(
    lines: &[Line],
    failed: &[(String, String)],
    md: bool,
) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let header = if md {
        vec![
            "program",
            "pairs",
            "off s",
            "on s",
            "time on/off",
            "pair range",
            "CPU on/off",
            "off MiB",
            "on MiB",
            "RSS on/off",
            "pair range",
            "worker CPU",
        ]
    } else {
        vec![
            "program",
            "pairs",
            "off s",
            "on s",
            "time",
            "pair range",
            "CPU",
            "off MiB",
            "on MiB",
            "RSS",
            "pair range",
            "worker CPU",
        ]
    };
    let mut rows: Vec<Vec<String>> = lines
        .iter()
        .map(|l| {
            vec![
                l.name.clone(),
                l.pairs.to_string(),
                format!("{:.3}", l.wall_off),
                format!("{:.3}", l.wall_on),
                format!("{:.3}", l.time),
                format!("{:.3}–{:.3}", l.time_range.0, l.time_range.1),
                format!("{:.3}", l.cpu),
                format!("{:.1}", l.rss_off_mib),
                format!("{:.1}", l.rss_on_mib),
                format!("{:.3}", l.rss),
                format!("{:.3}–{:.3}", l.rss_range.0, l.rss_range.1),
                worker(l),
            ]
        })
        .collect();
    for (name, e) in failed {
        let mut r = vec![String::new(); header.len()];
        r[0] = name.clone();
        r[1] = format!(
            "failed: {}",
            if md { e.replace('|', "/") } else { e.clone() }
        );
        rows.push(r);
    }
    (header, rows)
}

/// The numeric columns.
const RIGHT: [usize; 11] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];

/// The plain-text table (comfy-table).
pub fn table(lines: &[Line], failed: &[(String, String)]) -> String {
    let (h, r) = cells(lines, failed, false);
    report::tables::text(&h, &r, &RIGHT)
}

fn worker(l: &Line) -> String {
    if l.ace_seen == 0 {
        "not seen".into()
    } else {
        format!("{:.1} ms {:.2}%", l.ace_cpu_ms, l.ace_pct)
    }
}

/// The verdict against the targets.
pub fn verdict(lines: &[Line]) -> String {
    let mut s = String::new();
    let gt = geomean(lines.iter().map(|l| l.time));
    let gr = geomean(lines.iter().map(|l| l.rss));
    let gc = geomean(lines.iter().map(|l| l.cpu));
    let met = |v: Option<f64>, max: f64| match v {
        Some(v) if v <= max => "met",
        Some(_) => "NOT met",
        None => "no data",
    };
    let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
    // The band: geomeans of the programs' lowest and highest pair ratios
    // (a difference inside it is not resolved by this run).
    let band = |lo: fn(&Line) -> f64, hi: fn(&Line) -> f64| match (
        geomean(lines.iter().map(lo)),
        geomean(lines.iter().map(hi)),
    ) {
        (Some(a), Some(b)) => format!(" [pair band {a:.3}–{b:.3}]"),
        _ => String::new(),
    };
    let _ = writeln!(
        s,
        "geomean over {} programs, ACE on ÷ off: time {}{} (target ≤ {TIME_GEOMEAN_MAX}: {}), \
         peak RSS {}{} (target ≤ {RSS_GEOMEAN_MAX}: {}), CPU time {}",
        lines.len(),
        f(gt),
        band(|l| l.time_range.0, |l| l.time_range.1),
        met(gt, TIME_GEOMEAN_MAX),
        f(gr),
        band(|l| l.rss_range.0, |l| l.rss_range.1),
        met(gr, RSS_GEOMEAN_MAX),
        f(gc)
    );
    let _ = writeln!(
        s,
        "pair band = geomeans of the programs' lowest and highest per-pair ratios: \
         a geomean inside a band that straddles its target is not a resolved verdict"
    );
    // With fewer than 3 pairs a range is no spread: not judged.
    let judged: Vec<&Line> = lines.iter().filter(|l| l.pairs >= 3).collect();
    let worse: Vec<String> = judged
        .iter()
        .flat_map(|l| {
            let mut v = Vec::new();
            if worse_beyond_spread(l.time, l.time_range) {
                v.push(format!("{} time {:.3}", l.name, l.time));
            }
            if worse_beyond_spread(l.rss, l.rss_range) {
                v.push(format!("{} RSS {:.3}", l.name, l.rss));
            }
            v
        })
        .collect();
    let _ = writeln!(
        s,
        "programs worse than {PROGRAM_MAX}× beyond their spread (median above it and no pair ≤ 1.0): {}",
        if judged.is_empty() {
            "not judged (fewer than 3 pairs)".to_string()
        } else if worse.is_empty() {
            "none".to_string()
        } else {
            worse.join(", ")
        }
    );
    s
}

/// The Markdown table (comfy-table).
pub fn markdown(lines: &[Line], failed: &[(String, String)]) -> String {
    let (h, r) = cells(lines, failed, true);
    report::tables::markdown_table(&h, &r, &RIGHT)
}

/// One CSV row per run, then the summary.
pub fn csv(ms: &[Measured], lines: &[Line]) -> String {
    let mut s =
        String::from("program,rep,ace,first,wall_s,cpu_s,maxrss_kib,ace_threads,ace_cpu_ms\n");
    for m in ms {
        for (rep, (on, off)) in m.on.iter().zip(&m.off).enumerate() {
            for (ace, r) in [(true, on), (false, off)] {
                let _ = writeln!(
                    s,
                    "{},{rep},{},{},{:.6},{:.6},{},{},{:.3}",
                    m.name,
                    on_off(ace),
                    on_first(rep) == ace,
                    r.wall_s,
                    r.cpu_s,
                    r.maxrss_kib,
                    r.ace_threads,
                    r.ace_cpu_ns as f64 * 1e-6
                );
            }
        }
    }
    s.push_str("\nprogram,pairs,wall_off_s,wall_on_s,time_ratio,time_pair_min,time_pair_max,cpu_ratio,rss_off_mib,rss_on_mib,rss_ratio,rss_pair_min,rss_pair_max,ace_cpu_ms,ace_cpu_pct\n");
    for l in lines {
        let _ = writeln!(
            s,
            "{},{},{:.6},{:.6},{:.4},{:.4},{:.4},{:.4},{:.2},{:.2},{:.4},{:.4},{:.4},{:.3},{:.3}",
            l.name,
            l.pairs,
            l.wall_off,
            l.wall_on,
            l.time,
            l.time_range.0,
            l.time_range.1,
            l.cpu,
            l.rss_off_mib,
            l.rss_on_mib,
            l.rss,
            l.rss_range.0,
            l.rss_range.1,
            l.ace_cpu_ms,
            l.ace_pct
        );
    }
    s
}

/// A bar chart (plotters, [`report::Bars`]): per program, the time and
/// peak-RSS ratio (on ÷ off, median) with the per-pair range as a whisker,
/// a dashed line at 1.0.
pub fn chart(lines: &[Line], note: &str) -> report::Bars {
    let series = |name: &str, colour, v: fn(&Line) -> (f64, (f64, f64))| report::Series {
        name: name.to_string(),
        colour,
        values: lines.iter().map(|l| Some(v(l).0)).collect(),
        whiskers: lines.iter().map(|l| Some(v(l).1)).collect(),
    };
    report::Bars {
        title:
            "hakmem-bench ace-real: ACE on ÷ off (median; whisker: per-pair range; lower is better)"
                .into(),
        note: note.to_string(),
        y_label: "on ÷ off".into(),
        groups: lines.iter().map(|l| l.name.clone()).collect(),
        series: vec![
            series("wall time", RGBColor(0x1f, 0x77, 0xb4), |l| {
                (l.time, l.time_range)
            }),
            series("peak RSS", RGBColor(0xff, 0x7f, 0x0e), |l| {
                (l.rss, l.rss_range)
            }),
        ],
        reference: Some((1.0, "on = off".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_ratios_ranges_and_verdict() {
        let run = |w: f64, k: u64| Run {
            wall_s: w,
            cpu_s: w,
            maxrss_kib: k,
            ace_threads: 1,
            ace_cpu_ns: 1_000_000,
        };
        let m = Measured {
            name: "p".into(),
            what: String::new(),
            on: vec![run(0.9, 900), run(1.0, 950), run(1.1, 1000)],
            off: vec![run(1.0, 1000), run(1.0, 1000), run(1.0, 1000)],
            error: None,
        };
        let l = summarize(&m).unwrap();
        assert_eq!(l.pairs, 3);
        assert!((l.time - 1.0).abs() < 1e-12 && (l.rss - 0.95).abs() < 1e-12);
        assert!((l.time_range.0 - 0.9).abs() < 1e-12 && (l.time_range.1 - 1.1).abs() < 1e-12);
        assert_eq!(l.ace_seen, 3);
        assert!((geomean([0.5, 2.0].into_iter()).unwrap() - 1.0).abs() < 1e-12);
        assert!(worse_beyond_spread(1.05, (1.01, 1.1)));
        assert!(!worse_beyond_spread(1.05, (0.99, 1.1)));
        assert!(!worse_beyond_spread(1.01, (1.01, 1.01)));
        let v = verdict(std::slice::from_ref(&l));
        assert!(
            v.contains("time 1.000 [pair band 0.900–1.100] (target ≤ 0.97: NOT met)"),
            "{v}"
        );
        assert!(
            v.contains("peak RSS 0.950 [pair band 0.900–1.000] (target ≤ 0.95: met)"),
            "{v}"
        );
        assert!(table(std::slice::from_ref(&l), &[]).contains("0.900–1.100"));
        let one = Line {
            pairs: 1,
            time: 1.5,
            time_range: (1.5, 1.5),
            ..l.clone()
        };
        assert!(verdict(&[one]).contains("not judged (fewer than 3 pairs)"));
        let c = chart(&[l], "n");
        assert_eq!(c.series.len(), 2);
        assert_eq!(c.series[0].whiskers[0], Some((0.9, 1.1)));
    }
}
