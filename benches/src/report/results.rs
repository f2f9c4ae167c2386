//! `results.csv`, written and read with the csv crate and serde: one `run`
//! record per child process, then one `median` record per workload ×
//! allocator. Fields are quoted where needed (an error message keeps its
//! commas), and a malformed file is reported with its line number.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Row;
use crate::runner::Sample;
use crate::suite::Spec;

/// One record of `results.csv`; the field names are the header, in order.
/// Empty cells are `None`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// `run` or `median`.
    pub kind: String,
    pub workload: String,
    pub family: String,
    pub params: String,
    pub allocator: String,
    /// The repetition (1-based), or `median`.
    pub rep: String,
    pub threads: usize,
    pub ops: Option<u64>,
    pub seconds: Option<f64>,
    pub cpu_seconds: Option<f64>,
    pub mops: Option<f64>,
    pub mops_cpu: Option<f64>,
    pub best_mops: Option<f64>,
    pub peak_rss_kib: Option<u64>,
    pub maxrss_kib: Option<u64>,
    pub mops_ratio_mimalloc: Option<f64>,
    pub rss_ratio_mimalloc: Option<f64>,
    pub rss_after_free_kib: Option<i64>,
    pub ace_worker_cpu_pct: Option<f64>,
    pub ace_drop_rate: Option<f64>,
    /// `ok`, the error of a failed run, or `N/M ok` for a median.
    pub status: String,
}

/// `v` rounded to `digits` decimals (what the file keeps).
fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

/// The records of a suite run.
pub fn records(specs: &[Spec], samples: &[Sample], rows: &[Row]) -> Vec<Record> {
    let mut out = Vec::with_capacity(samples.len() + rows.len());
    for smp in samples {
        let spec = &specs[smp.spec];
        let w = &spec.workload;
        let head = Record {
            kind: "run".into(),
            workload: spec.name.clone(),
            family: w.family().into(),
            params: w.describe(),
            allocator: smp.alloc.name().into(),
            rep: (smp.rep + 1).to_string(),
            threads: w.threads(),
            ..Record::default()
        };
        out.push(match &smp.result {
            Ok(m) => Record {
                ops: Some(m.ops),
                seconds: Some(round(m.secs, 6)),
                cpu_seconds: Some(round(m.cpu_secs, 6)),
                mops: Some(round(m.mops(), 4)),
                mops_cpu: Some(round(m.mops_cpu(), 4)),
                peak_rss_kib: Some(m.hwm_kib),
                maxrss_kib: Some(m.maxrss_kib),
                rss_after_free_kib: m.rss_after_free_kib,
                ace_worker_cpu_pct: m.ace.map(|a| round(a.worker_cpu_pct(), 4)),
                ace_drop_rate: m.ace.map(|a| round(a.drop_rate(), 6)),
                status: "ok".into(),
                ..head
            },
            Err(e) => Record {
                status: e.clone(),
                ..head
            },
        });
    }
    for r in rows {
        let spec = specs
            .iter()
            .find(|s| s.name == r.name)
            .expect("row of a spec");
        let w = &spec.workload;
        out.push(Record {
            kind: "median".into(),
            workload: r.name.clone(),
            family: w.family().into(),
            params: w.describe(),
            allocator: r.alloc.name().into(),
            rep: "median".into(),
            threads: w.threads(),
            mops: r.mops.map(|v| round(v, 4)),
            mops_cpu: r.mops_cpu.map(|v| round(v, 4)),
            best_mops: r.best.map(|v| round(v, 4)),
            peak_rss_kib: r.rss_mib.map(|m| (m * 1024.0).round() as u64),
            mops_ratio_mimalloc: r.mops_ratio.map(|v| round(v, 4)),
            rss_ratio_mimalloc: r.rss_ratio.map(|v| round(v, 4)),
            rss_after_free_kib: r.rss_after_free_mib.map(|m| (m * 1024.0).round() as i64),
            ace_worker_cpu_pct: r.ace_cpu_pct.map(|v| round(v, 4)),
            ace_drop_rate: r.ace_drop_rate.map(|v| round(v, 6)),
            status: format!("{}/{} ok", r.ok, r.runs),
            ..Record::default()
        });
    }
    out
}

/// `records` as CSV text, header first.
pub fn to_csv(records: &[Record]) -> Result<String, String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in records {
        w.serialize(r).map_err(|e| format!("results.csv: {e}"))?;
    }
    let bytes = w.into_inner().map_err(|e| format!("results.csv: {e}"))?;
    String::from_utf8(bytes).map_err(|e| format!("results.csv: {e}"))
}

/// `results.csv` of a suite run.
pub fn csv(specs: &[Spec], samples: &[Sample], rows: &[Row]) -> String {
    to_csv(&records(specs, samples, rows)).expect("plain records serialise")
}

/// Parses `results.csv` text; an error names the line (`path:LINE: …`).
pub fn parse(text: &str, path: &str) -> Result<Vec<Record>, String> {
    let mut rd = csv::Reader::from_reader(text.as_bytes());
    let mut out = Vec::new();
    for r in rd.deserialize() {
        let r: Record = r.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            let what = match e.kind() {
                csv::ErrorKind::Deserialize { err, .. } => match err.field() {
                    Some(i) => format!("column {}: {}", i + 1, err.kind()),
                    None => err.kind().to_string(),
                },
                _ => e.to_string(),
            };
            format!("{path}:{line}: {what}")
        })?;
        out.push(r);
    }
    Ok(out)
}

/// Reads a `results.csv` file.
pub fn read(path: &Path) -> Result<Vec<Record>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(&text, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_quotes_errors() {
        let r = vec![
            Record {
                kind: "run".into(),
                workload: "tiny-hot/64".into(),
                allocator: "hakmem".into(),
                rep: "1".into(),
                threads: 1,
                ops: Some(20_000),
                seconds: Some(0.5),
                status: "ok".into(),
                ..Record::default()
            },
            Record {
                kind: "run".into(),
                status: "exit status 2, see \"stderr\"\nabove".into(),
                ..Record::default()
            },
        ];
        let text = to_csv(&r).unwrap();
        assert!(text.starts_with(
            "kind,workload,family,params,allocator,rep,threads,ops,seconds,cpu_seconds,mops,"
        ));
        assert_eq!(parse(&text, "results.csv").unwrap(), r);
    }

    #[test]
    fn a_bad_file_names_its_line_and_column() {
        let good = to_csv(&[Record::default()]).unwrap();
        let header = good.lines().next().unwrap();
        let bad = format!("{header}\nrun,w,f,p,a,1,2,x,,,,,,,,,,,,,ok\n");
        let e = parse(&bad, "results.csv").unwrap_err();
        assert!(e.starts_with("results.csv:2: column 8:"), "{e}");
        let short = format!("{header}\nrun,w\n");
        let e = parse(&short, "results.csv").unwrap_err();
        assert!(e.starts_with("results.csv:2: "), "{e}");
    }
}
