//! Grouped bar charts drawn with plotters, as SVG (`SVGBackend`) and PNG
//! (`BitMapBackend`): one group per workload (or program), one bar per
//! series, optional whiskers, a dashed reference line, axes with labels and
//! a legend.
//!
//! Text is laid out with ab_glyph from a TTF file read at run time (no
//! system library is linked): `$HAKMEM_BENCH_FONT`, else the first of
//! [`FONTS`] that exists (Debian: `fonts-dejavu-core`). Without one no
//! chart is drawn, and the caller gets an error naming the package.

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontTransform;

use super::Row;
use crate::allocators::Allocator;

/// Where a sans-serif TTF font is looked for, in order.
pub const FONTS: [&str; 5] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
];

/// Registers the font for plotters' "sans-serif" once; the error says what
/// to install.
pub fn font() -> Result<(), String> {
    static FONT: OnceLock<Result<(), String>> = OnceLock::new();
    FONT.get_or_init(|| {
        let candidates: Vec<String> = std::env::var("HAKMEM_BENCH_FONT")
            .ok()
            .into_iter()
            .chain(FONTS.iter().map(|s| s.to_string()))
            .collect();
        let path = candidates
            .iter()
            .find(|p| Path::new(p).exists())
            .ok_or_else(|| {
                "no TTF font for the charts (install fonts-dejavu-core, or name one in \
                 HAKMEM_BENCH_FONT): charts not drawn"
                    .to_string()
            })?;
        let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        for style in [FontStyle::Normal, FontStyle::Bold] {
            plotters::style::register_font("sans-serif", style, bytes)
                .map_err(|_| format!("{path}: not a usable TTF font"))?;
        }
        Ok(())
    })
    .clone()
}

/// One series of a bar chart: a name for the legend, a colour and one value
/// per group (`None`: no bar, a red × instead).
#[derive(Clone, Debug)]
pub struct Series {
    pub name: String,
    pub colour: RGBColor,
    pub values: Vec<Option<f64>>,
    /// Per group, the (low, high) of a whisker, if any.
    pub whiskers: Vec<Option<(f64, f64)>>,
}

/// A grouped bar chart.
#[derive(Clone, Debug)]
pub struct Bars {
    pub title: String,
    /// A line of small print under the chart (machine, command).
    pub note: String,
    pub y_label: String,
    pub groups: Vec<String>,
    pub series: Vec<Series>,
    /// A dashed horizontal line (1.0 = the baseline), with its legend text.
    pub reference: Option<(f64, String)>,
}

/// The bar colour of an allocator.
pub fn colour(a: Allocator) -> RGBColor {
    match a {
        Allocator::Hakmem => RGBColor(0xd6, 0x27, 0x28),
        Allocator::HakmemAce => RGBColor(0xff, 0x98, 0x96),
        Allocator::HakmemSecure => RGBColor(0x8c, 0x56, 0x4b),
        Allocator::Mimalloc => RGBColor(0x1f, 0x77, 0xb4),
        Allocator::Mimalloc2 => RGBColor(0x6b, 0xae, 0xd6),
        Allocator::MiDirect => RGBColor(0x9e, 0xca, 0xe1),
        Allocator::MimallocSecure => RGBColor(0x39, 0x3b, 0x79),
        Allocator::Jemalloc => RGBColor(0x2c, 0xa0, 0x2c),
        Allocator::System => RGBColor(0x7f, 0x7f, 0x7f),
        Allocator::Tcmalloc => RGBColor(0x94, 0x67, 0xbd),
        Allocator::Snmalloc => RGBColor(0x17, 0xbe, 0xcf),
        Allocator::Scudo => RGBColor(0xbc, 0xbd, 0x22),
    }
}

impl Bars {
    /// The pixel size: wide enough for every bar.
    fn size(&self) -> (u32, u32) {
        let per_group = 14 * self.series.len().max(1) as u32 + 18;
        let w = (120 + per_group * self.groups.len().max(1) as u32).clamp(640, 4000);
        // Taller as it gets wider, so that a wide suite stays readable.
        (w, (w / 3).clamp(560, 1100))
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, plotters::coord::Shift>,
    ) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        let e = |e: DrawingAreaErrorKind<DB::ErrorType>| format!("chart: {e}");
        root.fill(&WHITE).map_err(e)?;
        let (body, foot) = root.split_vertically(root.dim_in_pixel().1 - 22);
        foot.draw_text(
            &self.note,
            &("sans-serif", 11)
                .into_font()
                .color(&RGBColor(0x55, 0x55, 0x55)),
            (8, 4),
        )
        .map_err(e)?;
        let n = self.groups.len().max(1);
        let vmax = self
            .series
            .iter()
            .flat_map(|s| {
                s.values
                    .iter()
                    .flatten()
                    .copied()
                    .chain(s.whiskers.iter().flatten().map(|w| w.1))
            })
            .chain(self.reference.as_ref().map(|r| r.0))
            .fold(0.0f64, f64::max);
        let ymax = if vmax > 0.0 { vmax * 1.15 } else { 1.0 };
        // x in thousandths of a group (integer coordinates format their
        // key points; one key point, the label, at each group's centre).
        const U: i32 = 1000;
        let centres: Vec<i32> = (0..n as i32).map(|i| i * U + U / 2).collect();
        let label_h = 20
            + 11 * self
                .groups
                .iter()
                .map(|g| g.chars().count())
                .max()
                .unwrap_or(4) as u32;
        let mut chart = ChartBuilder::on(&body)
            .caption(
                &self.title,
                ("sans-serif", 16).into_font().style(FontStyle::Bold),
            )
            .margin(10)
            .x_label_area_size(label_h.min(260))
            .y_label_area_size(60)
            .build_cartesian_2d((0..n as i32 * U).with_key_points(centres), 0.0..ymax)
            .map_err(e)?;
        let groups = self.groups.clone();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_desc(&self.y_label)
            .x_label_formatter(&|x| {
                // plotters centres a rotated label on its tick: lead it
                // with as many spaces as it has characters (and two), so
                // that it starts just below the axis.
                let g = groups
                    .get((*x / U).max(0) as usize)
                    .map_or("", |g| g.as_str());
                format!("{}{g}", " ".repeat(g.chars().count() * 3 / 2 + 2))
            })
            .x_label_style(
                TextStyle::from(
                    ("sans-serif", 12)
                        .into_font()
                        .transform(FontTransform::Rotate90),
                )
                .pos(Pos::new(HPos::Right, VPos::Center)),
            )
            .y_label_formatter(&|y| format!("{y:.1}"))
            .draw()
            .map_err(e)?;
        let k = self.series.len().max(1) as i32;
        let w = U * 8 / 10 / k;
        for (si, s) in self.series.iter().enumerate() {
            let x0 = |g: usize| g as i32 * U + U / 10 + si as i32 * w;
            let colour = s.colour;
            chart
                .draw_series(s.values.iter().enumerate().filter_map(|(g, v)| {
                    v.map(|v| {
                        Rectangle::new([(x0(g), 0.0), (x0(g) + w * 9 / 10, v)], colour.filled())
                    })
                }))
                .map_err(e)?
                .label(&s.name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled())
                });
            chart
                .draw_series(s.whiskers.iter().enumerate().filter_map(|(g, r)| {
                    r.map(|(lo, hi)| {
                        let xm = x0(g) + w * 9 / 20;
                        PathElement::new(vec![(xm, lo), (xm, hi)], BLACK.stroke_width(1))
                    })
                }))
                .map_err(e)?;
            chart
                .draw_series(
                    s.values
                        .iter()
                        .enumerate()
                        .filter(|(_, v)| v.is_none())
                        .map(|(g, _)| {
                            Text::new(
                                "×",
                                (x0(g), ymax * 0.02),
                                ("sans-serif", 12).into_font().color(&RGBColor(0xcc, 0, 0)),
                            )
                        }),
                )
                .map_err(e)?;
        }
        if let Some((v, name)) = &self.reference {
            let style = ShapeStyle::from(&BLACK).stroke_width(1);
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(0, *v), (n as i32 * U, *v)],
                    6,
                    4,
                    style,
                ))
                .map_err(e)?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], style));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 11))
            .draw()
            .map_err(e)?;
        root.present().map_err(e)?;
        Ok(())
    }

    /// The chart as an SVG document.
    pub fn svg(&self) -> Result<String, String> {
        font()?;
        let mut s = String::new();
        self.draw(SVGBackend::with_string(&mut s, self.size()).into_drawing_area())?;
        // SVG collapses the leading spaces that push a rotated label below
        // the axis in the PNG: anchor those labels at their start instead.
        let s: Vec<String> = s
            .lines()
            .map(|l| {
                if l.starts_with("<text") && l.contains("transform=\"rotate(90,") {
                    l.replace("text-anchor=\"middle\"", "text-anchor=\"start\"")
                } else {
                    l.to_string()
                }
            })
            .collect();
        Ok(s.join("\n") + "\n")
    }

    /// The chart as a PNG file at `path`.
    pub fn png(&self, path: &Path) -> Result<(), String> {
        font()?;
        self.draw(BitMapBackend::new(path, self.size()).into_drawing_area())
    }
}

/// Writes `dir/<stem>.svg` and `dir/<stem>.png`; returns the paths
/// written, or the reason nothing was.
pub fn bars(chart: &Bars, dir: &Path, stem: &str) -> Result<Vec<std::path::PathBuf>, String> {
    let svg = chart.svg()?;
    let p =
        super::write(dir, &format!("{stem}.svg"), &svg).map_err(|e| format!("{stem}.svg: {e}"))?;
    let png = dir.join(format!("{stem}.png"));
    chart.png(&png).map_err(|e| format!("{stem}.png: {e}"))?;
    Ok(vec![p, png])
}

/// The suite's chart of `value(row)` (a ratio to mimalloc): one group per
/// workload, one bar per allocator, the dashed line at 1.0 = mimalloc.
pub fn suite(
    rows: &[Row],
    allocators: &[Allocator],
    title: &str,
    note: &str,
    value: fn(&Row) -> Option<f64>,
) -> Bars {
    let mut groups: Vec<String> = Vec::new();
    for r in rows {
        if !groups.contains(&r.name) {
            groups.push(r.name.clone());
        }
    }
    let series = allocators
        .iter()
        .map(|&a| Series {
            name: a.name().to_string(),
            colour: colour(a),
            values: groups
                .iter()
                .map(|g| {
                    rows.iter()
                        .find(|r| &r.name == g && r.alloc == a)
                        .and_then(value)
                })
                .collect(),
            whiskers: vec![None; groups.len()],
        })
        .collect();
    Bars {
        title: title.to_string(),
        note: note.to_string(),
        y_label: "× mimalloc (median)".into(),
        groups,
        series,
        reference: Some((1.0, "mimalloc = 1.0".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> Bars {
        Bars {
            title: "t".into(),
            note: "n".into(),
            y_label: "× mimalloc".into(),
            groups: vec!["tiny-hot/64".into(), "larson/2t".into()],
            series: vec![
                Series {
                    name: "hakmem".into(),
                    colour: colour(Allocator::Hakmem),
                    values: vec![Some(1.5), None],
                    whiskers: vec![Some((1.2, 1.7)), None],
                },
                Series {
                    name: "mimalloc".into(),
                    colour: colour(Allocator::Mimalloc),
                    values: vec![Some(1.0), Some(1.0)],
                    whiskers: vec![None, None],
                },
            ],
            reference: Some((1.0, "mimalloc = 1".into())),
        }
    }

    #[test]
    fn svg_and_png_with_axes_and_legend() {
        if font().is_err() {
            eprintln!("no font: {}", font().unwrap_err());
            return;
        }
        let s = chart().svg().unwrap();
        assert!(
            s.starts_with("<svg") && s.trim_end().ends_with("</svg>"),
            "{s}"
        );
        for text in [
            "hakmem",
            "mimalloc = 1",
            "tiny-hot/64",
            "larson/2t",
            "× mimalloc",
        ] {
            assert!(s.contains(text), "{text} missing");
        }
        assert!(s.contains("<rect"));
        let dir = std::env::temp_dir().join(format!("hakmem-bench-chart-{}", std::process::id()));
        let written = bars(&chart(), &dir, "c").unwrap();
        let png = std::fs::read(&written[1]).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
