//! The report as text tables for stdout (and for `docs/BENCHMARKS.md`, which embeds
//! the same text).

use std::fmt::Write as _;

use super::targets::{Check, Status};
use super::{Report, Row};
use crate::stats::Latency;

/// `21.5µs`, `1.25ms`, `2.00s`.
pub(crate) fn fmt_ns(ns: u64) -> String {
    let ns = ns as f64;
    if ns < 1_000.0 {
        format!("{ns:.0}ns")
    } else if ns < 1_000_000.0 {
        format!("{:.1}µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2}ms", ns / 1e6)
    } else {
        format!("{:.2}s", ns / 1e9)
    }
}

/// `512.3k`, `1.20M`, `950`.
pub(crate) fn fmt_rate(per_s: f64) -> String {
    if per_s >= 1e6 {
        format!("{:.2}M", per_s / 1e6)
    } else if per_s >= 1e3 {
        format!("{:.1}k", per_s / 1e3)
    } else {
        format!("{per_s:.0}")
    }
}

/// `64 B`, `1 KiB`, `64 KiB`.
pub(crate) fn fmt_size(size: usize) -> String {
    if size >= 1024 && size % 1024 == 0 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{r:.2}"))
}

fn pair(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (None, None) => "-".into(),
        _ => format!("{}/{}", fmt_ratio(a), fmt_ratio(b)),
    }
}

fn lat(l: Option<Latency>, f: fn(&Latency) -> u64) -> String {
    l.map_or_else(|| "-".into(), |l| fmt_ns(f(&l)))
}

fn summary_line(out: &mut String, row: &Row) {
    let s = row.stream;
    let _ = writeln!(
        out,
        "{:<22} {:>6} │ {:>8} {:>8} {:>11} │ {:>8} {:>8} {:>11} │ {:>9} │ {:>7} {:>8} {:>5} {:>6} │ {:>7} {:>5} {:>6}",
        row.runner,
        fmt_size(row.size),
        lat(row.rtt, |l| l.p50_ns),
        lat(row.rtt, |l| l.p99_ns),
        pair(row.vs_raw.rtt_p50, row.vs_raw.rtt_p99),
        lat(row.rtt_pinned, |l| l.p50_ns),
        lat(row.rtt_pinned, |l| l.p99_ns),
        pair(row.vs_raw.pinned_p50, row.vs_raw.pinned_p99),
        pair(row.vs_node.rtt_p50, row.vs_node.pinned_p50),
        s.map_or_else(|| "-".into(), |t| fmt_rate(t.msgs_per_s)),
        s.map_or_else(|| "-".into(), |t| format!("{:.1}", t.mb_per_s)),
        fmt_ratio(row.vs_raw.mb_per_s),
        fmt_ratio(row.vs_node.msgs_per_s),
        row.batched
            .map_or_else(|| "-".into(), |t| fmt_rate(t.msgs_per_s)),
        fmt_ratio(row.vs_raw.batched_msgs_per_s),
        fmt_ratio(row.vs_node.batched_msgs_per_s),
    );
}

/// The whole report as text: machine, main table, latency detail, targets, notes.
pub(crate) fn render(report: &Report) -> String {
    let m = &report.machine;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "ipc-bench on {} (kernel {}), {}, {} CPU(s); tokio runtime {}; pinned cells on {}; streams {}; load {} -> {}{}{}",
        m.os,
        m.kernel,
        m.cpu_model,
        m.cpus,
        m.runtime,
        m.pinned_cpu.map_or_else(|| "none (--no-pin)".into(), |c| format!("CPU {c}")),
        m.stream_cpus.map_or_else(
            || "unpinned".into(),
            |(p, c)| format!("parent on CPU {p}, child on CPU {c} (Node's unpinned)")
        ),
        m.load_before,
        m.load_after,
        if m.quick { "; --quick" } else { "" },
        if m.repeat > 1 {
            format!("; every cell run {} times (--repeat)", m.repeat)
        } else {
            String::new()
        },
    );
    out.push_str(
        "RTT = round trip, p50/p99; pinned = parent and child on one CPU. Stream = one way, \
         MB = 10^6 payload bytes.\nxraw = this / its raw baseline; xnode = this / Node's faster \
         serialization (RTT unpinned/pinned, stream msg/s). RTT ratio < 1 or rate ratio > 1 = faster.\n\
         batch = one way, batched: feed + flush (raw: a 64 KiB buffer); its xnode is against Node's one-way msg/s.\n\n",
    );
    let _ =
        writeln!(
        out,
        "{:<22} {:>6} │ {:>8} {:>8} {:>11} │ {:>8} {:>8} {:>11} │ {:>9} │ {:>7} {:>8} {:>5} {:>6} │ {:>7} {:>5} {:>6}",
        "runner", "size", "RTT p50", "p99", "xraw p50/99", "pin p50", "pin p99", "xraw p50/99",
        "xnode RTT", "msg/s", "MB/s", "xraw", "xnode", "batch/s", "xraw", "xnode",
    );
    let mut last_runner = "";
    for row in &report.rows {
        if !last_runner.is_empty() && last_runner != row.runner {
            out.push('\n');
        }
        last_runner = &row.runner;
        summary_line(&mut out, row);
    }

    out.push_str("\nLatency detail (hdrhistogram, 3 significant digits):\n");
    let _ = writeln!(
        out,
        "{:<22} {:>6} {:>8} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "runner", "size", "cell", "n", "p50", "p99", "p99.9", "max", "mean"
    );
    for row in &report.rows {
        for (label, l) in [("unpinned", row.rtt), ("pinned", row.rtt_pinned)] {
            if let Some(l) = l {
                let _ = writeln!(
                    out,
                    "{:<22} {:>6} {:>8} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}",
                    row.runner,
                    fmt_size(row.size),
                    label,
                    l.count,
                    fmt_ns(l.p50_ns),
                    fmt_ns(l.p99_ns),
                    fmt_ns(l.p999_ns),
                    fmt_ns(l.max_ns),
                    fmt_ns(l.mean_ns as u64),
                );
            }
        }
    }

    if report.machine.repeat > 1 {
        out.push_str(&render_stream_runs(report));
    }

    if !report.targets.is_empty() {
        out.push_str(&render_targets(&report.targets));
    }

    let notes: Vec<String> = report
        .runners
        .iter()
        .flat_map(|r| {
            r.notes
                .iter()
                .map(move |n| format!("  {}: {n}", r.name))
                .chain(
                    r.errors
                        .iter()
                        .map(move |e| format!("  {}: ERROR {e}", r.name)),
                )
        })
        .chain(
            report
                .skipped
                .iter()
                .map(|s| format!("  {}: skipped: {}", s.name, s.reason)),
        )
        .collect();
    if !notes.is_empty() {
        out.push_str("\nNotes:\n");
        for n in notes {
            out.push_str(&n);
            out.push('\n');
        }
    }
    out
}

/// With `--repeat`: every stream cell's median run beside its slowest and fastest.
fn render_stream_runs(report: &Report) -> String {
    let mut out = String::from(
        "\nStream detail (--repeat: msg/s of the median run, then the slowest and the fastest):\n",
    );
    let _ = writeln!(
        out,
        "{:<22} {:>6} {:>14} {:>5} {:>9} {:>9} {:>9}",
        "runner", "size", "cell", "runs", "median", "slowest", "fastest"
    );
    for row in &report.rows {
        for (label, t) in [("stream", row.stream), ("stream-batched", row.batched)] {
            if let Some(t) = t {
                let _ = writeln!(
                    out,
                    "{:<22} {:>6} {:>14} {:>5} {:>9} {:>9} {:>9}",
                    row.runner,
                    fmt_size(row.size),
                    label,
                    t.runs,
                    fmt_rate(t.msgs_per_s),
                    fmt_rate(t.min_msgs_per_s),
                    fmt_rate(t.max_msgs_per_s),
                );
            }
        }
    }
    out
}

/// The targets block: a heading, then one line per check.
pub(crate) fn render_targets(targets: &[Check]) -> String {
    let mut out = String::from("\nTargets (checked by this run, never an exit status):\n");
    if targets.iter().any(|t| t.floor.is_some()) {
        out.push_str(
            "  (a `floor` line is information, not a target: the same figure for the blocking \
             baseline's fds made non-blocking with an epoll_wait before each read, as an \
             async runtime waits; and, where there is one, for the smallest tokio program \
             doing the baseline's round trip, the tokio floor; and for the baseline \
             receiving through io_uring, one io_uring_enter per read, the io_uring floor)\n",
        );
    }
    for t in targets {
        let verdict = match t.status {
            Status::Met => "met",
            Status::Missed => "MISSED",
            Status::NotMeasured => "n/a",
        };
        let _ = writeln!(
            out,
            "  {verdict:<7} {:<7} {}: {}",
            t.subject,
            t.target,
            t.value
                .map_or_else(|| "not measured".into(), |v| format!("{v:.2}{}", t.unit)),
        );
        // A floor with no figure at all (its cells were not run): nothing to show.
        let floor = t.floor.as_ref().filter(|f| {
            f.epoll_vs_blocking.is_some()
                || f.subject_vs_epoll.is_some()
                || f.tokio
                    .iter()
                    .chain(&f.uring)
                    .any(|t| t.vs_blocking.is_some() || t.subject_vs.is_some())
        });
        if let Some(f) = floor {
            let x = |r: Option<f64>| r.map_or_else(|| "?".into(), |r| format!("{r:.2}x"));
            let _ = write!(
                out,
                "  {:<7} {:<7} {}: {} is {} {}; {} is {} {}",
                "floor",
                t.subject,
                f.figure,
                f.epoll,
                x(f.epoll_vs_blocking),
                f.blocking,
                t.subject,
                x(f.subject_vs_epoll),
                f.epoll,
            );
            for other in f.tokio.iter().chain(&f.uring) {
                let _ = write!(
                    out,
                    "; {} is {} {}; {} is {} {}",
                    other.runner,
                    x(other.vs_blocking),
                    f.blocking,
                    t.subject,
                    x(other.subject_vs),
                    other.runner,
                );
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(fmt_ns(21_500), "21.5µs");
        assert_eq!(fmt_ns(1_250_000), "1.25ms");
        assert_eq!(fmt_rate(512_300.0), "512.3k");
        assert_eq!(fmt_size(65_536), "64 KiB");
        assert_eq!(fmt_size(64), "64 B");
    }
}
