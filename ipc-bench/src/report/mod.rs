//! The results of a run as data: one [`Row`] per runner and size with its ratios to the
//! raw baseline and to Node, the machine description, the skipped runners and the
//! target checks. [`table`] prints it, [`export`] writes JSON and CSV, [`svg`] draws it.

pub(crate) mod export;
pub(crate) mod svg;
pub(crate) mod table;
pub(crate) mod targets;

use serde::Serialize;

use crate::machine::Machine;
use crate::runner::{RunnerResult, Summary};
use crate::stats::{Latency, Throughput};
use crate::workload::Workload;

/// Everything a run produced.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    /// The machine and the run's settings.
    pub machine: Machine,
    /// Every runner that ran, with its caveats and errors.
    pub runners: Vec<RunnerInfo>,
    /// One row per runner and size.
    pub rows: Vec<Row>,
    /// Runners that could not run, and why (e.g. Node when `node` is not on PATH).
    pub skipped: Vec<Skipped>,
    /// The targets, checked against this run.
    pub targets: Vec<targets::Check>,
}

/// A runner as listed in the report.
#[derive(Debug, Serialize)]
pub(crate) struct RunnerInfo {
    /// `uds`, `raw-socketpair`, `node-json`, ...
    pub name: String,
    /// `toolkit`, `raw`, `node` or `interop`.
    pub kind: &'static str,
    /// The raw baseline a toolkit transport is compared with.
    pub baseline: Option<String>,
    /// Caveats.
    pub notes: Vec<String>,
    /// Cells that failed, as `"<cell>: <error>"`.
    pub errors: Vec<String>,
}

/// A runner that did not run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Skipped {
    /// Its name.
    pub name: String,
    /// Why.
    pub reason: String,
}

/// `this / other` for each figure (`None` where either side is missing). RTT ratios
/// below 1 and throughput ratios above 1 mean "this is faster".
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub(crate) struct Ratios {
    /// Unpinned p50 RTT.
    pub rtt_p50: Option<f64>,
    /// Unpinned p99 RTT.
    pub rtt_p99: Option<f64>,
    /// Pinned p50 RTT.
    pub pinned_p50: Option<f64>,
    /// Pinned p99 RTT.
    pub pinned_p99: Option<f64>,
    /// Streaming messages per second.
    pub msgs_per_s: Option<f64>,
    /// Streaming MB/s.
    pub mb_per_s: Option<f64>,
    /// Batched streaming messages per second (against Node: Node's one-way rate,
    /// Node has no batching).
    pub batched_msgs_per_s: Option<f64>,
}

/// One runner at one size.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    /// Runner name.
    pub runner: String,
    /// `toolkit`, `raw`, `node` or `interop`.
    pub kind: &'static str,
    /// Payload bytes.
    pub size: usize,
    /// Round trips, unpinned.
    pub rtt: Option<Latency>,
    /// Round trips, parent and child pinned to one CPU.
    pub rtt_pinned: Option<Latency>,
    /// One-way streaming.
    pub stream: Option<Throughput>,
    /// One-way streaming, batched (`feed` + `flush`; a 64 KiB buffer for raw rows).
    pub batched: Option<Throughput>,
    /// The raw baseline compared with (toolkit rows).
    pub baseline: Option<String>,
    /// Ratios to that baseline.
    pub vs_raw: Ratios,
    /// Ratios to Node's faster serialization for each figure (non-Node rows, when
    /// Node ran).
    pub vs_node: Ratios,
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// The figures of a row, as optional floats, for ratio arithmetic.
#[derive(Clone, Copy, Default)]
struct Figures {
    rtt_p50: Option<f64>,
    rtt_p99: Option<f64>,
    pinned_p50: Option<f64>,
    pinned_p99: Option<f64>,
    msgs_per_s: Option<f64>,
    mb_per_s: Option<f64>,
    batched_msgs_per_s: Option<f64>,
}

impl Figures {
    fn of(row: &Row) -> Figures {
        Figures {
            rtt_p50: row.rtt.map(|l| l.p50_ns as f64),
            rtt_p99: row.rtt.map(|l| l.p99_ns as f64),
            pinned_p50: row.rtt_pinned.map(|l| l.p50_ns as f64),
            pinned_p99: row.rtt_pinned.map(|l| l.p99_ns as f64),
            msgs_per_s: row.stream.map(|t| t.msgs_per_s),
            mb_per_s: row.stream.map(|t| t.mb_per_s),
            batched_msgs_per_s: row.batched.map(|t| t.msgs_per_s),
        }
    }

    /// The best of several: lowest latencies, highest rates.
    fn best(all: &[Figures]) -> Figures {
        let min = |f: fn(&Figures) -> Option<f64>| all.iter().filter_map(f).reduce(f64::min);
        let max = |f: fn(&Figures) -> Option<f64>| all.iter().filter_map(f).reduce(f64::max);
        Figures {
            rtt_p50: min(|f| f.rtt_p50),
            rtt_p99: min(|f| f.rtt_p99),
            pinned_p50: min(|f| f.pinned_p50),
            pinned_p99: min(|f| f.pinned_p99),
            msgs_per_s: max(|f| f.msgs_per_s),
            mb_per_s: max(|f| f.mb_per_s),
            batched_msgs_per_s: max(|f| f.batched_msgs_per_s),
        }
    }

    fn ratios(self, other: Figures) -> Ratios {
        Ratios {
            rtt_p50: ratio(self.rtt_p50, other.rtt_p50),
            rtt_p99: ratio(self.rtt_p99, other.rtt_p99),
            pinned_p50: ratio(self.pinned_p50, other.pinned_p50),
            pinned_p99: ratio(self.pinned_p99, other.pinned_p99),
            msgs_per_s: ratio(self.msgs_per_s, other.msgs_per_s),
            mb_per_s: ratio(self.mb_per_s, other.mb_per_s),
            batched_msgs_per_s: ratio(self.batched_msgs_per_s, other.batched_msgs_per_s),
        }
    }
}

impl Report {
    /// Turn the runners' results into rows with ratios, and check the targets.
    pub(crate) fn build(
        machine: Machine,
        results: &[RunnerResult],
        skipped: Vec<Skipped>,
    ) -> Report {
        let mut rows = Vec::new();
        let mut runners = Vec::new();
        for result in results {
            let r = &result.runner;
            let mut errors = Vec::new();
            let mut sizes: Vec<usize> = result.cells.iter().map(|c| c.cell.size).collect();
            sizes.dedup();
            for size in sizes {
                let mut row = Row {
                    runner: r.name.clone(),
                    kind: r.kind.label(),
                    size,
                    rtt: None,
                    rtt_pinned: None,
                    stream: None,
                    batched: None,
                    baseline: r.baseline.map(str::to_string),
                    vs_raw: Ratios::default(),
                    vs_node: Ratios::default(),
                };
                for c in result.cells.iter().filter(|c| c.cell.size == size) {
                    match (&c.outcome, c.cell.workload) {
                        (Ok(Summary::Latency(l)), Workload::RoundTrip { pinned: false }) => {
                            row.rtt = Some(*l)
                        }
                        (Ok(Summary::Latency(l)), Workload::RoundTrip { pinned: true }) => {
                            row.rtt_pinned = Some(*l)
                        }
                        (Ok(Summary::Throughput(t)), Workload::Stream) => row.stream = Some(*t),
                        (Ok(Summary::Throughput(t)), Workload::StreamBatched) => {
                            row.batched = Some(*t)
                        }
                        (Ok(_), _) => {}
                        (Err(e), _) => errors.push(format!("{}: {e}", c.cell)),
                    }
                }
                rows.push(row);
            }
            runners.push(RunnerInfo {
                name: r.name.clone(),
                kind: r.kind.label(),
                baseline: r.baseline.map(str::to_string),
                notes: r.notes.clone(),
                errors,
            });
        }
        let figures: Vec<Figures> = rows.iter().map(Figures::of).collect();
        for i in 0..rows.len() {
            let size = rows[i].size;
            if let Some(base) = rows[i].baseline.clone() {
                if let Some(j) = rows.iter().position(|r| r.runner == base && r.size == size) {
                    rows[i].vs_raw = figures[i].ratios(figures[j]);
                }
            }
            if rows[i].kind != "node" {
                let node: Vec<Figures> = rows
                    .iter()
                    .zip(&figures)
                    .filter(|(r, _)| r.kind == "node" && r.size == size)
                    .map(|(_, f)| *f)
                    .collect();
                if !node.is_empty() {
                    let best = Figures::best(&node);
                    rows[i].vs_node = figures[i].ratios(best);
                    // Node has no batched figure: batched rows are compared with
                    // its one-way rate.
                    rows[i].vs_node.batched_msgs_per_s =
                        ratio(figures[i].batched_msgs_per_s, best.msgs_per_s);
                }
            }
        }
        let targets = targets::check_rows(&rows);
        Report {
            machine,
            runners,
            rows,
            skipped,
            targets,
        }
    }

    /// Whether any cell failed.
    pub(crate) fn has_errors(&self) -> bool {
        self.runners.iter().any(|r| !r.errors.is_empty())
    }
}
