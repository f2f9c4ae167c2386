//! Issue 6's value measurement: the `phases` workload run with hakmem's
//! default static configuration, with ACE on, and with a grid of other
//! static configurations, side by side (`hakmem-bench sweep`); and ACE's
//! warm start from a saved profile (`hakmem-bench warm`).
//!
//! A static configuration `static:R:C:D:S` is applied in the child before
//! the workload: every class's refill count = R/4 × its default and its
//! cache cap = C refills (written to `hakmem_ace_learning::POLICY` with the
//! configuration-time setters, which is what `HAKMEM_REFILL` and
//! `HAKMEM_CACHE_CAP` use, but per class), decay delay D ms
//! (`HAKMEM_DECAY_MS`) and pool/span threshold S KiB
//! (`HAKMEM_SPAN_THRESHOLD`). The parent passes it through the child's
//! environment.
//!
//! Figure of merit: throughput ÷ peak RSS (ops/s per MiB), per run, median
//! over the repetitions; higher is better.

use std::fmt::Write as _;
use std::time::Duration;

use crate::allocators::Allocator;
use plotters::prelude::*;

use crate::report::median;
use crate::runner::{run_child, Measured, POLICY_VAR};
use crate::suite::{phases, Size};
use crate::workloads::{Workload, PHASES};

/// One configuration of the sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Config {
    /// hakmem as shipped, no learning.
    Default,
    /// hakmem with ACE on from the start (from the defaults).
    Ace,
    /// A static configuration.
    Static(Static),
}

/// A static policy (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Static {
    pub refill_x4: u32, // refill count in quarters of the class default
    pub cap: u32,       // cache cap in refills
    pub decay_ms: u32,  // decay delay
    pub span_kib: u32,  // pool/span threshold
}

impl Config {
    pub fn name(&self) -> String {
        match self {
            Config::Default => "default".into(),
            Config::Ace => "ace".into(),
            Config::Static(s) => format!(
                "static:{}:{}:{}:{}",
                s.refill_x4, s.cap, s.decay_ms, s.span_kib
            ),
        }
    }

    pub fn parse(s: &str) -> Result<Config, String> {
        match s {
            "default" => return Ok(Config::Default),
            "ace" => return Ok(Config::Ace),
            _ => {}
        }
        let bad = || format!("bad configuration `{s}` (default, ace or static:R:C:D:S)");
        let f: Vec<u32> = s
            .strip_prefix("static:")
            .ok_or_else(bad)?
            .split(':')
            .map(|v| v.parse().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        match f[..] {
            [refill_x4 @ 1..=64, cap @ 1..=16, decay_ms, span_kib @ 1..=64] => {
                Ok(Config::Static(Static {
                    refill_x4,
                    cap,
                    decay_ms,
                    span_kib,
                }))
            }
            _ => Err(bad()),
        }
    }

    fn allocator(&self) -> Allocator {
        match self {
            Config::Ace => Allocator::HakmemAce,
            _ => Allocator::Hakmem,
        }
    }

    /// The child's extra environment.
    fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Config::Static(s) => vec![
                (POLICY_VAR, format!("{}:{}", s.refill_x4, s.cap)),
                ("HAKMEM_DECAY_MS", s.decay_ms.to_string()),
                ("HAKMEM_SPAN_THRESHOLD", (s.span_kib << 10).to_string()),
            ],
            _ => Vec::new(),
        }
    }
}

/// The grid: refill ×1, ×2, ×4 of the default; cap 2 or 4 refills; decay
/// 50 or 500 ms; span threshold 32 or 64 KiB (24 configurations; `quick`:
/// 4), after `default` and `ace`.
pub fn grid(quick: bool) -> Vec<Config> {
    let mut v = vec![Config::Default, Config::Ace];
    let (refills, decays, spans): (&[u32], &[u32], &[u32]) = if quick {
        (&[4, 8], &[500], &[64])
    } else {
        (&[4, 8, 16], &[50, 500], &[32, 64])
    };
    for &refill_x4 in refills {
        for cap in [2, 4] {
            for &decay_ms in decays {
                for &span_kib in spans {
                    v.push(Config::Static(Static {
                        refill_x4,
                        cap,
                        decay_ms,
                        span_kib,
                    }));
                }
            }
        }
    }
    v
}

/// Options of `sweep` and `warm`.
#[derive(Clone, Debug)]
pub struct Options {
    pub size: Size,
    pub reps: usize,
    pub configs: Vec<Config>,
    pub timeout: Duration,
    pub out: std::path::PathBuf,
}

/// The medians of one configuration.
#[derive(Clone, Debug)]
pub struct Point {
    pub config: Config,
    pub ok: usize,
    pub mops: f64,
    pub rss_mib: f64,
    pub merit: f64,                   // median over runs of ops/s per MiB of peak RSS
    pub ace: Option<(f64, f64, f64)>, // decisions, worker CPU %, drop rate
}

fn med(v: impl Iterator<Item = f64>) -> f64 {
    median(&mut v.collect::<Vec<_>>()).unwrap_or(f64::NAN)
}

/// Runs the sweep; returns the points in configuration order.
pub fn sweep(o: &Options) -> Result<Vec<Point>, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let w = Workload::Phases(phases(o.size));
    let n = o.configs.len();
    let mut runs: Vec<Vec<Measured>> = vec![Vec::new(); n];
    let progress = crate::progress::Progress::new(n * o.reps, "sweep");
    for rep in 0..o.reps {
        for k in 0..n {
            let i = (k + rep) % n;
            let c = &o.configs[i];
            let env = c.env();
            match run_child(&exe, c.allocator(), &w, &env, o.timeout) {
                Ok(m) => {
                    progress.line(&format!(
                        "rep {}/{} {:<24} {:>8.2} Mops/s {:>7.1} MiB  merit {:>8.0}",
                        rep + 1,
                        o.reps,
                        c.name(),
                        m.mops(),
                        m.rss_mib(),
                        merit(&m)
                    ));
                    runs[i].push(m);
                }
                Err(e) => progress.line(&format!("rep {} {}: FAILED: {e}", rep + 1, c.name())),
            }
            progress.inc();
        }
    }
    Ok(o.configs
        .iter()
        .zip(runs)
        .map(|(&config, r)| Point {
            config,
            ok: r.len(),
            mops: med(r.iter().map(Measured::mops)),
            rss_mib: med(r.iter().map(Measured::rss_mib)),
            merit: med(r.iter().map(merit)),
            ace: (config == Config::Ace && !r.is_empty()).then(|| {
                let a = |f: fn(&crate::runner::AceRun) -> f64| {
                    med(r.iter().filter_map(|m| m.ace.as_ref().map(f)))
                };
                (
                    a(|x| x.decisions as f64),
                    a(|x| x.worker_cpu_pct()),
                    a(|x| x.drop_rate()),
                )
            }),
        })
        .collect())
}

/// Ops per second per MiB of peak RSS.
fn merit(m: &Measured) -> f64 {
    m.mops() * 1e6 / m.rss_mib().max(1e-9)
}

/// The comparison lines: ACE against the default and the best static.
pub fn verdict(points: &[Point]) -> String {
    let get = |c: Config| points.iter().find(|p| p.config == c);
    let best = points
        .iter()
        .filter(|p| matches!(p.config, Config::Static(_)) && p.merit.is_finite())
        .max_by(|a, b| a.merit.total_cmp(&b.merit));
    let mut s = String::new();
    if let (Some(ace), Some(def)) = (get(Config::Ace), get(Config::Default)) {
        let r = ace.merit / def.merit - 1.0;
        let _ = writeln!(
            s,
            "ACE vs default static: merit {:+.1} % ({}; target > 0) — throughput {:+.1} %, peak RSS {:+.1} %",
            r * 100.0,
            if r > 0.0 { "ok" } else { "NOT MET" },
            (ace.mops / def.mops - 1.0) * 100.0,
            (ace.rss_mib / def.rss_mib - 1.0) * 100.0
        );
        if let Some(b) = best {
            let r = ace.merit / b.merit - 1.0;
            let _ = writeln!(
                s,
                "ACE vs best static ({}): merit {:+.1} % ({}; target ≥ −3 %)",
                b.config.name(),
                r * 100.0,
                if r >= -0.03 { "ok" } else { "NOT MET" }
            );
        }
        if let Some((dec, cpu, drop)) = ace.ace {
            let _ = writeln!(
                s,
                "ACE worker: {dec:.0} decisions, CPU {cpu:.2} % of one core, drop rate {:.3} % (median)",
                drop * 100.0
            );
        }
    }
    s
}

/// The table printed on stdout.
pub fn table(points: &[Point]) -> String {
    let rows: Vec<Vec<String>> = points
        .iter()
        .map(|p| {
            vec![
                p.config.name(),
                format!("{:.2}", p.mops),
                format!("{:.1}", p.rss_mib),
                format!("{:.0}", p.merit),
                p.ok.to_string(),
            ]
        })
        .collect();
    crate::report::tables::text(
        &["configuration", "Mops/s", "peak MiB", "merit", "runs"],
        &rows,
        &[1, 2, 3, 4],
    )
}

/// `ace_sweep.csv`.
pub fn csv(points: &[Point], reps: usize) -> String {
    let mut s = String::from(
        "config,refill_x4,cap_refills,decay_ms,span_kib,runs,reps,mops,peak_rss_mib,\
         merit_ops_per_s_per_mib,ace_decisions,ace_worker_cpu_pct,ace_drop_rate\n",
    );
    for p in points {
        let st = match p.config {
            Config::Static(x) => format!("{},{},{},{}", x.refill_x4, x.cap, x.decay_ms, x.span_kib),
            _ => ",,,".into(),
        };
        let ace = p
            .ace
            .map_or(",,".into(), |(d, c, r)| format!("{d:.0},{c:.3},{r:.6}"));
        let _ = writeln!(
            s,
            "{},{st},{},{reps},{:.4},{:.2},{:.1},{ace}",
            p.config.name(),
            p.ok,
            p.mops,
            p.rss_mib,
            p.merit
        );
    }
    s
}

/// The scatter of the sweep (plotters): throughput against peak RSS, one
/// point per configuration; `ace` and `default` labelled, the static grid
/// in grey; axes, a legend and the note under the chart.
fn draw_scatter<DB: DrawingBackend>(
    points: &[Point],
    note: &str,
    root: DrawingArea<DB, plotters::coord::Shift>,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| format!("chart: {e}");
    let pts: Vec<&Point> = points
        .iter()
        .filter(|p| p.mops.is_finite() && p.rss_mib.is_finite())
        .collect();
    let xmax = pts.iter().map(|p| p.rss_mib).fold(1.0f64, f64::max) * 1.1;
    let ymax = pts.iter().map(|p| p.mops).fold(0.1f64, f64::max) * 1.1;
    root.fill(&WHITE).map_err(e)?;
    let (body, foot) = root.split_vertically(root.dim_in_pixel().1 - 22);
    foot.draw_text(
        &format!("grey: static configurations; {note}"),
        &("sans-serif", 10)
            .into_font()
            .color(&RGBColor(0x55, 0x55, 0x55)),
        (8, 4),
    )
    .map_err(e)?;
    let mut chart = ChartBuilder::on(&body)
        .caption(
            "phases: throughput vs peak RSS (median; up and left is better)",
            ("sans-serif", 15).into_font().style(FontStyle::Bold),
        )
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..xmax, 0.0..ymax)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("peak RSS, MiB")
        .y_desc("Mops/s")
        .draw()
        .map_err(e)?;
    let groups: [PointGroup; 3] = [
        ("static", RGBColor(0x99, 0x99, 0x99), 4, |c| {
            matches!(c, Config::Static(_))
        }),
        ("default", RGBColor(0x1f, 0x77, 0xb4), 5, |c| {
            *c == Config::Default
        }),
        ("ace", RGBColor(0xd6, 0x27, 0x28), 6, |c| *c == Config::Ace),
    ];
    for (name, colour, r, pick) in groups {
        let labelled = name != "static";
        chart
            .draw_series(pts.iter().filter(|p| pick(&p.config)).map(|p| {
                let label = if labelled {
                    p.config.name()
                } else {
                    String::new()
                };
                EmptyElement::at((p.rss_mib, p.mops))
                    + Circle::new((0, 0), r, colour.filled())
                    + Text::new(
                        label,
                        (8, -6),
                        ("sans-serif", 12).into_font().color(&colour),
                    )
            }))
            .map_err(e)?
            .label(name)
            .legend(move |(x, y)| Circle::new((x + 5, y), r, colour.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 11))
        .draw()
        .map_err(e)?;
    root.present().map_err(e)
}

const SCATTER_SIZE: (u32, u32) = (640, 480);

/// A legend entry of the scatter: name, colour, radius, which points.
type PointGroup = (&'static str, RGBColor, i32, fn(&Config) -> bool);

/// The scatter as an SVG document.
pub fn scatter(points: &[Point], note: &str) -> Result<String, String> {
    crate::report::charts::font()?;
    let mut s = String::new();
    draw_scatter(
        points,
        note,
        SVGBackend::with_string(&mut s, SCATTER_SIZE).into_drawing_area(),
    )?;
    Ok(s)
}

/// Writes `ace_sweep.svg` and `ace_sweep.png` to `dir`.
pub fn scatter_files(
    points: &[Point],
    note: &str,
    dir: &std::path::Path,
) -> Result<Vec<std::path::PathBuf>, String> {
    let svg = scatter(points, note)?;
    let p = crate::report::write(dir, "ace_sweep.svg", &svg)
        .map_err(|e| format!("ace_sweep.svg: {e}"))?;
    let png = dir.join("ace_sweep.png");
    draw_scatter(
        points,
        note,
        BitMapBackend::new(&png, SCATTER_SIZE).into_drawing_area(),
    )
    .map_err(|e| format!("ace_sweep.png: {e}"))?;
    Ok(vec![p, png])
}

/// One cold/warm pair of `warm`.
#[derive(Clone, Copy, Debug)]
pub struct WarmPair {
    pub cold: Measured,
    pub warm: Measured,
}

/// Runs ACE with a fresh profile file twice per repetition: the second
/// run (warm) loads what the first (cold) saved.
pub fn warm(o: &Options) -> Result<Vec<WarmPair>, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let w = Workload::Phases(phases(o.size));
    let mut pairs = Vec::new();
    let progress = crate::progress::Progress::new(o.reps, "warm");
    for rep in 0..o.reps {
        let path = std::env::temp_dir().join(format!(
            "hakmem-bench-warm-{}-{rep}.prof",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        let env = [("HAKMEM_ACE_PROFILE", path.display().to_string())];
        let run = || run_child(&exe, Allocator::HakmemAce, &w, &env, o.timeout);
        let cold = run();
        let warm = run();
        let _ = std::fs::remove_file(&path);
        let (cold, warm) = (cold?, warm?);
        progress.line(&format!(
            "rep {}/{}: {}",
            rep + 1,
            o.reps,
            warm_line(&cold, &warm)
        ));
        progress.inc();
        pairs.push(WarmPair { cold, warm });
    }
    Ok(pairs)
}

fn phase_s(m: &Measured, k: usize) -> f64 {
    m.phases.map_or(f64::NAN, |t| t.ns[k] as f64 / 1e9)
}

fn phase_dec(m: &Measured, k: usize) -> f64 {
    m.phases.map_or(f64::NAN, |t| t.decisions[k] as f64)
}

fn warm_line(c: &Measured, w: &Measured) -> String {
    format!(
        "phase 1 {:.3} → {:.3} s, {:.0} → {:.0} decisions; all phases {:.2} → {:.2} Mops/s",
        phase_s(c, 0),
        phase_s(w, 0),
        phase_dec(c, 0),
        phase_dec(w, 0),
        c.mops(),
        w.mops()
    )
}

/// The summary of `warm`: medians, cold → warm.
pub fn warm_summary(pairs: &[WarmPair]) -> String {
    let m = |f: &dyn Fn(&WarmPair) -> f64| med(pairs.iter().map(f));
    let mut s = String::new();
    let names = [
        "tiny churn",
        "mid bursts",
        "large spans",
        "idle",
        "tiny again",
    ];
    let _ = writeln!(
        s,
        "{:<12} {:>9} {:>9} {:>10} {:>10}",
        "phase", "cold s", "warm s", "cold dec", "warm dec"
    );
    for (k, name) in names.iter().enumerate().take(PHASES) {
        let _ = writeln!(
            s,
            "{:<12} {:>9.3} {:>9.3} {:>10.0} {:>10.0}",
            name,
            m(&|p| phase_s(&p.cold, k)),
            m(&|p| phase_s(&p.warm, k)),
            m(&|p| phase_dec(&p.cold, k)),
            m(&|p| phase_dec(&p.warm, k)),
        );
    }
    let faster = pairs
        .iter()
        .filter(|p| phase_s(&p.warm, 0) < phase_s(&p.cold, 0))
        .count();
    let _ = writeln!(
        s,
        "throughput (busy phases) {:.2} → {:.2} Mops/s; phase 1 faster warm in {faster} of {} pairs",
        m(&|p| p.cold.mops()),
        m(&|p| p.warm.mops()),
        pairs.len()
    );
    s
}

/// `ace_warm.csv`: one line per run.
pub fn warm_csv(pairs: &[WarmPair]) -> String {
    let mut s = String::from("rep,run,mops,peak_rss_mib");
    for k in 1..=PHASES {
        let _ = write!(s, ",p{k}_s,p{k}_decisions");
    }
    s.push('\n');
    for (i, p) in pairs.iter().enumerate() {
        for (name, m) in [("cold", &p.cold), ("warm", &p.warm)] {
            let _ = write!(s, "{},{name},{:.4},{:.2}", i + 1, m.mops(), m.rss_mib());
            for k in 0..PHASES {
                let _ = write!(s, ",{:.4},{:.0}", phase_s(m, k), phase_dec(m, k));
            }
            s.push('\n');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurations_round_trip() {
        for c in grid(false).into_iter().chain(grid(true)) {
            assert_eq!(Config::parse(&c.name()), Ok(c));
        }
        assert_eq!(grid(false).len(), 26);
        assert_eq!(grid(true).len(), 6);
        assert!(Config::parse("static:4:2").is_err());
        assert!(Config::parse("static:0:2:50:64").is_err());
        assert!(Config::parse("bogus").is_err());
        let s = Config::parse("static:8:4:50:32").unwrap();
        assert_eq!(
            s.env(),
            [
                (POLICY_VAR, "8:4".to_string()),
                ("HAKMEM_DECAY_MS", "50".to_string()),
                ("HAKMEM_SPAN_THRESHOLD", "32768".to_string()),
            ]
        );
        assert_eq!(Config::Ace.allocator(), Allocator::HakmemAce);
    }

    #[test]
    fn verdict_csv_and_scatter() {
        let p = |config, mops: f64, rss: f64| Point {
            config,
            ok: 1,
            mops,
            rss_mib: rss,
            merit: mops * 1e6 / rss,
            ace: (config == Config::Ace).then_some((10.0, 0.4, 0.0)),
        };
        let pts = vec![
            p(Config::Default, 5.0, 50.0),
            p(Config::Ace, 6.0, 40.0),
            p(Config::parse("static:8:4:50:64").unwrap(), 8.0, 60.0),
        ];
        let v = verdict(&pts);
        assert!(v.contains("merit +50.0 % (ok"), "{v}");
        assert!(v.contains("static:8:4:50:64): merit +12.5 % (ok"), "{v}");
        let c = csv(&pts, 3);
        let cols = c.lines().next().unwrap().split(',').count();
        assert!(c.lines().all(|l| l.split(',').count() == cols), "{c}");
        if crate::report::charts::font().is_ok() {
            let s = scatter(&pts, "note").unwrap();
            assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
            assert!(s.matches("<circle").count() >= 3, "{s}");
            assert!(s.contains("peak RSS, MiB") && s.contains("ace"));
        }
    }
}
