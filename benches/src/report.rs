//! Turns samples into results: medians and ratios to mimalloc, the table
//! printed on stdout, `results.csv`, `results.md` and the SVG charts.

use std::fmt::Write as _;
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

/// The plain-text table (with an `after free` column, RSS after free in
/// MiB, when an `rss-return` workload ran).
pub fn table(rows: &[Row]) -> String {
    let w = rows.iter().map(|r| r.name.len()).max().unwrap_or(8).max(8);
    let after = has_rss_after_free(rows);
    let mut s = String::new();
    let _ = write!(
        s,
        "{:<w$}  {:<10} {:>10} {:>9} {:>9} {:>9} {:>9} {:>7}  runs",
        "workload", "allocator", "Mops/s", "×mimalloc", "CPU ×mi", "RSS MiB", "×mimalloc", "spread"
    );
    if after {
        let _ = write!(s, "  RSS after free MiB");
    }
    s.push('\n');
    let mut last = "";
    for r in rows {
        if r.name != last && !last.is_empty() {
            s.push('\n');
        }
        last = &r.name;
        let _ = write!(
            s,
            "{:<w$}  {:<10} {:>10} {:>9} {:>9} {:>9} {:>9} {:>7}  {:>4}",
            r.name,
            r.alloc.name(),
            mops_str(r.mops),
            opt(r.mops_ratio, 2),
            opt(r.cpu_ratio, 2),
            opt(r.rss_mib, 1),
            opt(r.rss_ratio, 2),
            r.spread
                .map_or("-".into(), |v| format!("{:.1}%", v * 100.0)),
            format!("{}/{}", r.ok, r.runs),
        );
        if after {
            let _ = write!(s, "  {:>18}", opt(r.rss_after_free_mib, 1));
        }
        if let Some(e) = &r.error {
            let _ = write!(s, "  ({e})");
        }
        s.push('\n');
    }
    s
}

/// The same table in Markdown.
pub fn markdown(rows: &[Row]) -> String {
    let after = has_rss_after_free(rows);
    let mut s = String::from(
        "| workload | allocator | Mops/s | × mimalloc | CPU-time × mimalloc | peak RSS MiB | × mimalloc | spread |",
    );
    s.push_str(if after {
        " RSS after free MiB |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
    } else {
        "\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n"
    });
    for r in rows {
        let bold = r.alloc == Allocator::Hakmem;
        let b = if bold { "**" } else { "" };
        let _ = write!(
            s,
            "| {} | {b}{}{b} | {} | {b}{}{b} | {} | {} | {b}{}{b} | {} |",
            r.name,
            r.alloc.name(),
            mops_str(r.mops),
            opt(r.mops_ratio, 2),
            opt(r.cpu_ratio, 2),
            opt(r.rss_mib, 1),
            opt(r.rss_ratio, 2),
            r.spread
                .map_or("-".into(), |v| format!("{:.1}%", v * 100.0)),
        );
        if after {
            match r.rss_after_free_mib {
                Some(v) => {
                    let _ = write!(s, " {b}{v:.1}{b} |");
                }
                None => s.push_str(" - |"),
            }
        }
        s.push('\n');
    }
    s
}

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

/// `results.csv`: one line per run, then one `median` line per row.
pub fn csv(specs: &[Spec], samples: &[Sample], rows: &[Row]) -> String {
    let mut s = String::from(
        "kind,workload,family,params,allocator,rep,threads,ops,seconds,cpu_seconds,mops,\
         mops_cpu,best_mops,peak_rss_kib,maxrss_kib,mops_ratio_mimalloc,rss_ratio_mimalloc,\
         rss_after_free_kib,ace_worker_cpu_pct,ace_drop_rate,status\n",
    );
    for smp in samples {
        let spec = &specs[smp.spec];
        let w = &spec.workload;
        let head = format!(
            "run,{},{},{},{},{},{}",
            spec.name,
            w.family(),
            w.describe(),
            smp.alloc.name(),
            smp.rep + 1,
            w.threads()
        );
        match &smp.result {
            Ok(m) => {
                let _ = writeln!(
                    s,
                    "{head},{},{:.6},{:.6},{:.4},{:.4},,{},{},,,{},{},{},ok",
                    m.ops,
                    m.secs,
                    m.cpu_secs,
                    m.mops(),
                    m.mops_cpu(),
                    m.hwm_kib,
                    m.maxrss_kib,
                    m.rss_after_free_kib
                        .map_or(String::new(), |k| k.to_string()),
                    m.ace
                        .map_or(String::new(), |a| format!("{:.4}", a.worker_cpu_pct())),
                    m.ace
                        .map_or(String::new(), |a| format!("{:.6}", a.drop_rate())),
                );
            }
            Err(e) => {
                let e = e.replace([',', '\n', '"'], " ");
                let _ = writeln!(s, "{head},,,,,,,,,,,,,,{e}");
            }
        }
    }
    for r in rows {
        let spec = specs
            .iter()
            .find(|s| s.name == r.name)
            .expect("row of a spec");
        let w = &spec.workload;
        let _ = writeln!(
            s,
            "median,{},{},{},{},median,{},,,,{},{},{},{},,{},{},{},{},{},{}/{} ok",
            r.name,
            w.family(),
            w.describe(),
            r.alloc.name(),
            w.threads(),
            opt(r.mops, 4),
            opt(r.mops_cpu, 4),
            opt(r.best, 4),
            r.rss_mib
                .map_or(String::new(), |m| format!("{:.0}", m * 1024.0)),
            opt(r.mops_ratio, 4),
            opt(r.rss_ratio, 4),
            r.rss_after_free_mib
                .map_or(String::new(), |m| format!("{:.0}", m * 1024.0)),
            r.ace_cpu_pct.map_or(String::new(), |c| format!("{c:.4}")),
            r.ace_drop_rate.map_or(String::new(), |d| format!("{d:.6}")),
            r.ok,
            r.runs
        );
    }
    s
}

/// The bar colour of an allocator.
fn colour(a: Allocator) -> &'static str {
    match a {
        Allocator::Hakmem => "#d62728",
        Allocator::HakmemAce => "#ff9896",
        Allocator::HakmemSecure => "#8c564b",
        Allocator::Mimalloc => "#1f77b4",
        Allocator::Mimalloc2 => "#6baed6",
        Allocator::MiDirect => "#9ecae1",
        Allocator::Jemalloc => "#2ca02c",
        Allocator::System => "#7f7f7f",
        Allocator::Tcmalloc => "#9467bd",
        Allocator::Snmalloc => "#17becf",
        Allocator::Scudo => "#bcbd22",
    }
}

/// Escapes text for SVG.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The start of an SVG document of `width` × `height` on a white
/// background, with `title` at (`left`, 20).
pub fn svg_open(width: f64, height: f64, left: f64, title: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="20" font-size="14" font-weight="bold">{}</text>"#,
        esc(title)
    );
    s
}

/// A grouped bar chart, hand-written SVG: one group per workload, one bar
/// per allocator, `value(row)` as height, a dashed line at 1.0 (= mimalloc).
pub fn svg(
    rows: &[Row],
    allocators: &[Allocator],
    title: &str,
    note: &str,
    value: fn(&Row) -> Option<f64>,
) -> String {
    let mut names: Vec<&str> = Vec::new();
    for r in rows {
        if !names.contains(&r.name.as_str()) {
            names.push(&r.name);
        }
    }
    let bar = 14.0;
    let gap = 18.0;
    let group = bar * allocators.len() as f64 + gap;
    let (left, right, top, bottom) = (60.0, 20.0, 60.0, 110.0);
    let plot_h = 300.0;
    let width = left + right + group * names.len().max(1) as f64;
    let height = top + plot_h + bottom;
    let vmax = rows.iter().filter_map(value).fold(1.2f64, f64::max);
    let ymax = (vmax * 2.0).ceil() / 2.0; // round up to 0.5
    let y = |v: f64| top + plot_h - v / ymax * plot_h;
    let mut s = svg_open(width, height, left, title);
    // Legend.
    for (i, a) in allocators.iter().enumerate() {
        let x = left + i as f64 * 90.0;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="32" width="10" height="10" fill="{}"/><text x="{}" y="41">{}</text>"#,
            colour(*a),
            x + 14.0,
            a.name()
        );
    }
    // Axis and grid.
    let mut t = 0.0;
    while t <= ymax + 1e-9 {
        let yy = y(t);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{t:.1}×</text>"##,
            width - right,
            left - 6.0,
            yy + 4.0
        );
        t += if ymax > 4.0 { 1.0 } else { 0.5 };
    }
    let _ = writeln!(
        s,
        r##"<line x1="{left}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#1f77b4" stroke-dasharray="4 3"/>"##,
        y(1.0),
        width - right,
        y(1.0)
    );
    // Bars.
    for (gi, name) in names.iter().enumerate() {
        let gx = left + gap / 2.0 + gi as f64 * group;
        for (ai, a) in allocators.iter().enumerate() {
            let row = rows.iter().find(|r| r.name == *name && r.alloc == *a);
            let x = gx + ai as f64 * bar;
            match row.and_then(value) {
                Some(v) => {
                    let _ = writeln!(
                        s,
                        r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{} {}: {v:.2}×</title></rect>"#,
                        y(v),
                        bar - 1.0,
                        (top + plot_h - y(v)).max(0.5),
                        colour(*a),
                        esc(name),
                        a.name()
                    );
                }
                None => {
                    let _ = writeln!(
                        s,
                        r##"<text x="{:.1}" y="{:.1}" fill="#c00" text-anchor="middle">×</text>"##,
                        x + bar / 2.0,
                        top + plot_h - 3.0
                    );
                }
            }
        }
        let lx = gx + group / 2.0 - gap / 2.0;
        let ly = top + plot_h + 12.0;
        let _ = writeln!(
            s,
            r#"<text x="{lx:.1}" y="{ly:.1}" text-anchor="end" transform="rotate(-40 {lx:.1} {ly:.1})">{}</text>"#,
            esc(name)
        );
    }
    let _ = writeln!(
        s,
        r##"<line x1="{left}" y1="{top}" x2="{left}" y2="{:.1}" stroke="#333"/>"##,
        top + plot_h
    );
    let _ = writeln!(
        s,
        r##"<text x="{left}" y="{:.1}" fill="#555" font-size="10">{}</text>"##,
        height - 10.0,
        esc(note)
    );
    s.push_str("</svg>\n");
    s
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
        let s = svg(&rows, &allocs, "t", "n", |r| r.mops_ratio);
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
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
        assert!(c.contains(",0.5000,0.000000,ok"), "{c}");
    }

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
        assert!(markdown(&rows).contains("| **3.0** |"));
        let c = csv(&specs, &samples, &rows);
        let cols = c.lines().next().unwrap().split(',').count();
        assert!(c.lines().all(|l| l.split(',').count() == cols), "{c}");
        assert!(c.contains(",3072,,,ok"), "{c}");
        assert_eq!(mops_str(Some(0.00123)), "0.00123");
        assert_eq!(mops_str(Some(0.0177)), "0.0177");
    }
}
