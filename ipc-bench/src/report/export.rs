//! `--json` and `--csv` output.
//!
//! The JSON is the whole [`Report`] (machine, runners with notes and errors, rows with
//! ratios, skipped runners with reasons, target checks). The CSV has one line per
//! runner and size with every figure as a plain number (latencies in ns); with
//! `--repeat`, its last columns give the runs of each cell and the slowest and fastest
//! run's rates.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

use super::Report;

/// Write the report as pretty JSON.
pub(crate) fn write_json(report: &Report, path: &Path) -> Result<()> {
    let text = serde_json::to_string_pretty(report).context("serializing the report")?;
    std::fs::write(path, text + "\n").context(format!("writing {}", path.display()))
}

const CSV_HEADER: &str = "runner,kind,size,baseline,\
rtt_p50_ns,rtt_p99_ns,rtt_p999_ns,rtt_max_ns,\
pinned_p50_ns,pinned_p99_ns,pinned_p999_ns,pinned_max_ns,\
msgs_per_s,mb_per_s,\
xraw_rtt_p50,xraw_rtt_p99,xraw_pinned_p50,xraw_pinned_p99,xraw_mb_per_s,\
xnode_rtt_p50,xnode_pinned_p50,xnode_msgs_per_s,\
batched_msgs_per_s,xraw_batched_msgs_per_s,xnode_batched_msgs_per_s,\
runs,min_msgs_per_s,max_msgs_per_s,min_batched_msgs_per_s,max_batched_msgs_per_s";

fn num<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(String::new, |v| v.to_string())
}

/// The report as CSV text.
pub(crate) fn csv(report: &Report) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for r in &report.rows {
        let lat = |l: Option<crate::stats::Latency>| {
            [
                num(l.map(|l| l.p50_ns)),
                num(l.map(|l| l.p99_ns)),
                num(l.map(|l| l.p999_ns)),
                num(l.map(|l| l.max_ns)),
            ]
            .join(",")
        };
        let ratio = |v: Option<f64>| num(v.map(|v| format!("{v:.4}")));
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.runner,
            r.kind,
            r.size,
            r.baseline.as_deref().unwrap_or(""),
            lat(r.rtt),
            lat(r.rtt_pinned),
            num(r.stream.map(|t| format!("{:.1}", t.msgs_per_s))),
            num(r.stream.map(|t| format!("{:.3}", t.mb_per_s))),
            ratio(r.vs_raw.rtt_p50),
            ratio(r.vs_raw.rtt_p99),
            ratio(r.vs_raw.pinned_p50),
            ratio(r.vs_raw.pinned_p99),
            ratio(r.vs_raw.mb_per_s),
            ratio(r.vs_node.rtt_p50),
            ratio(r.vs_node.pinned_p50),
            ratio(r.vs_node.msgs_per_s),
            num(r.batched.map(|t| format!("{:.1}", t.msgs_per_s))),
            ratio(r.vs_raw.batched_msgs_per_s),
            ratio(r.vs_node.batched_msgs_per_s),
            num(r.stream.or(r.batched).map(|t| t.runs)),
            num(r.stream.map(|t| format!("{:.1}", t.min_msgs_per_s))),
            num(r.stream.map(|t| format!("{:.1}", t.max_msgs_per_s))),
            num(r.batched.map(|t| format!("{:.1}", t.min_msgs_per_s))),
            num(r.batched.map(|t| format!("{:.1}", t.max_msgs_per_s))),
        );
    }
    out
}

/// Write the report as CSV.
pub(crate) fn write_csv(report: &Report, path: &Path) -> Result<()> {
    std::fs::write(path, csv(report)).context(format!("writing {}", path.display()))
}
