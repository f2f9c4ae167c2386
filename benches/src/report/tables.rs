//! The suite's median table, printed on stdout and written to
//! `results.md`, laid out by comfy-table; and the two table styles the
//! other reports use ([`text`], [`markdown_table`]).

use comfy_table::{presets, CellAlignment, Table};

use super::{has_rss_after_free, mops_str, opt, Row};
use crate::allocators::Allocator;

/// A plain-text table: no borders, columns two spaces apart, the columns
/// in `right` right-aligned; an empty row is a blank separator line.
pub fn text(header: &[&str], rows: &[Vec<String>], right: &[usize]) -> String {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_header(header.iter().copied())
        .add_rows(rows.iter().cloned());
    layout(&mut t, header.len(), right);
    let out: Vec<String> = t.lines().map(|l| l.trim_end().to_string()).collect();
    let mut s = out.join("\n");
    s.push('\n');
    s
}

/// A Markdown (GitHub) table.
pub fn markdown_table(header: &[&str], rows: &[Vec<String>], right: &[usize]) -> String {
    let mut t = Table::new();
    t.load_preset(presets::ASCII_MARKDOWN)
        .set_header(header.iter().copied())
        .add_rows(rows.iter().cloned());
    layout(&mut t, header.len(), right);
    // The separator line says which columns are right-aligned (`---:`).
    let mut lines: Vec<String> = t.lines().collect();
    if let Some(sep) = lines.get_mut(1) {
        let cells: Vec<String> = sep
            .split('|')
            .enumerate()
            .map(|(i, c)| match i.checked_sub(1) {
                Some(col) if right.contains(&col) && c.ends_with('-') => {
                    format!("{}:", &c[..c.len() - 1])
                }
                _ => c.to_string(),
            })
            .collect();
        *sep = cells.join("|");
    }
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

fn layout(t: &mut Table, columns: usize, right: &[usize]) {
    for i in 0..columns {
        if let Some(c) = t.column_mut(i) {
            // (No width is set, so comfy-table never wraps a cell.)
            if right.contains(&i) {
                c.set_cell_alignment(CellAlignment::Right);
            }
        }
    }
}

/// The numeric columns of the median table.
const NUMERIC: [usize; 7] = [2, 3, 4, 5, 6, 7, 8];

fn spread(r: &Row) -> String {
    r.spread
        .map_or("-".into(), |v| format!("{:.1}%", v * 100.0))
}

/// The plain-text table (with an `RSS after free MiB` column when an
/// `rss-return` workload ran, and an `error` column when a run failed); a
/// blank line between workloads.
pub fn table(rows: &[Row]) -> String {
    let after = has_rss_after_free(rows);
    let errors = rows.iter().any(|r| r.error.is_some());
    let mut header = vec![
        "workload",
        "allocator",
        "Mops/s",
        "×mimalloc",
        "CPU ×mi",
        "RSS MiB",
        "×mimalloc",
        "spread",
        "runs",
    ];
    if after {
        header.push("RSS after free MiB");
    }
    if errors {
        header.push("error");
    }
    let mut body = Vec::new();
    let mut last = "";
    for r in rows {
        if r.name != last && !last.is_empty() {
            body.push(vec![String::new(); header.len()]);
        }
        last = &r.name;
        let mut cells = vec![
            r.name.clone(),
            r.alloc.name().to_string(),
            mops_str(r.mops),
            opt(r.mops_ratio, 2),
            opt(r.cpu_ratio, 2),
            opt(r.rss_mib, 1),
            opt(r.rss_ratio, 2),
            spread(r),
            format!("{}/{}", r.ok, r.runs),
        ];
        if after {
            cells.push(opt(r.rss_after_free_mib, 1));
        }
        if errors {
            cells.push(r.error.clone().unwrap_or_default());
        }
        body.push(cells);
    }
    let mut right = NUMERIC.to_vec();
    if after {
        right.push(9);
    }
    text(&header, &body, &right)
}

/// The same table in Markdown, hakmem's name and ratios in bold.
pub fn markdown(rows: &[Row]) -> String {
    let after = has_rss_after_free(rows);
    let mut header = vec![
        "workload",
        "allocator",
        "Mops/s",
        "× mimalloc",
        "CPU-time × mimalloc",
        "peak RSS MiB",
        "× mimalloc",
        "spread",
    ];
    if after {
        header.push("RSS after free MiB");
    }
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let b = if r.alloc == Allocator::Hakmem {
                "**"
            } else {
                ""
            };
            let mut cells = vec![
                r.name.clone(),
                format!("{b}{}{b}", r.alloc.name()),
                mops_str(r.mops),
                format!("{b}{}{b}", opt(r.mops_ratio, 2)),
                opt(r.cpu_ratio, 2),
                opt(r.rss_mib, 1),
                format!("{b}{}{b}", opt(r.rss_ratio, 2)),
                spread(r),
            ];
            if after {
                cells.push(match r.rss_after_free_mib {
                    Some(v) => format!("{b}{v:.1}{b}"),
                    None => "-".into(),
                });
            }
            cells
        })
        .collect();
    markdown_table(&header, &body, &[2, 3, 4, 5, 6, 7, 8])
}
