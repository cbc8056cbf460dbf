//! The targets, checked against a run (reported, never an exit status):
//!
//! - every toolkit transport's p50 RTT at 64 B within 1.25x of its raw baseline and
//!   p99 within 1.5x, unpinned; pinned, p50 within 1.15x for uds and tcp and 1.3x for
//!   pipe, fifo and stdio (1.25x for the others), p99 within 1.5x (issue 13, item 2);
//! - streaming at 64 KiB at least 0.8x of the raw baseline's MB/s;
//! - batched streaming at 64 B (`feed` + `flush`) at least 0.4x of the batched raw
//!   baseline on uds, pipe, fifo and tcp; on uds at least 10 M msg/s and 25x Node's
//!   one-way rate (issue 13, item 1);
//! - in low-latency mode (`uds-lowlat`, `pipe-lowlat`), unpinned p50 RTT at 64 B
//!   within 1.5x of the spinning raw baseline and p99 within 3x (issue 13, item 3);
//! - Unix sockets (`uds`) at least 2.5x lower RTT (p50, 64 B) and 5x the messages/s
//!   (64 B) of Node's `fork()` IPC (its faster serialization);
//! - shared memory (`shm`, issue 15), instead of the generic ones: p50 RTT at 64 B at
//!   most 1 µs and within 3x of the shared-memory floor (`raw-shm`), at least 80x below
//!   `raw-socketpair`; pinned p50 at most `raw-pipe`'s pinned p50; one-way 64 B at
//!   least 20 M msg/s and 64 KiB at least 8 GB/s.
//!
//! Beside each round-trip target of a transport whose baseline has an epoll floor
//! (`raw-pipe-epoll` for `raw-pipe`, ...), the check carries a [`Floor`]: information,
//! not a target — how far the epoll floor itself is from the blocking baseline in this
//! run, and how far the transport is from the epoll floor. A miss that the epoll floor
//! shares is the cost of waiting in `epoll_wait`, measured, not the toolkit's. Where the
//! baseline also has tokio floors (`raw-socketpair-tokio`, `raw-socketpair-tokio-fd`,
//! `raw-pipe-tokio`, `raw-tcp-tokio`), the same for each: a miss that the best tokio
//! floor shares is the cost of tokio itself, which no channel built on tokio can go
//! below. Where it has an io_uring floor (`raw-socketpair-uring`, `raw-pipe-uring`,
//! `raw-tcp-uring`), the same for it: whether a completion-based receive path (one
//! `io_uring_enter` per read, submitting and waiting) reaches the blocking baseline.

use serde::Serialize;

use super::Row;
use crate::raw::RawKind;

/// Smallest size: where latency targets apply.
const SMALL: usize = 64;
/// Largest size: where the throughput target applies.
const LARGE: usize = 65_536;

/// Whether a target is met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Status {
    /// Met.
    Met,
    /// Missed.
    Missed,
    /// A figure it needs was not measured.
    NotMeasured,
}

/// One target for one subject.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Check {
    /// The runner checked.
    pub subject: String,
    /// The target, in words.
    pub target: String,
    /// The measured ratio.
    pub value: Option<f64>,
    /// The bound it is checked against.
    pub limit: f64,
    /// `true` when `value` must be at most `limit`, `false` when at least.
    pub at_most: bool,
    /// The verdict.
    pub status: Status,
    /// What `value` and `limit` are in: `x` (a ratio) unless the target is absolute.
    pub unit: &'static str,
    /// For a round-trip target: the same figure's epoll floor (information only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor: Option<Floor>,
}

/// The epoll floor beside a round-trip target: not a target, the measured reason
/// for what the toolkit cannot go below with an `epoll_wait` before each read.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Floor {
    /// The figure compared (`pinned p50 RTT 64 B`).
    pub figure: String,
    /// The epoll floor's runner (`raw-pipe-epoll`).
    pub epoll: String,
    /// The blocking baseline (`raw-pipe`).
    pub blocking: String,
    /// The epoll floor's figure / the blocking baseline's.
    pub epoll_vs_blocking: Option<f64>,
    /// The transport's figure / the epoll floor's.
    pub subject_vs_epoll: Option<f64>,
    /// The baseline's tokio floors measured in this run (`raw-socketpair-tokio`,
    /// `raw-socketpair-tokio-fd`), in report order; empty when it has none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tokio: Vec<RunnerFloor>,
    /// The baseline's io_uring floor measured in this run (`raw-pipe-uring`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uring: Option<RunnerFloor>,
}

/// One tokio or io_uring floor beside a round-trip target.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RunnerFloor {
    /// The floor's runner (`raw-tcp-tokio`, `raw-tcp-uring`).
    pub runner: String,
    /// Its figure / the blocking baseline's.
    pub vs_blocking: Option<f64>,
    /// The transport's figure / its figure.
    pub subject_vs: Option<f64>,
}

fn check(subject: &str, target: String, value: Option<f64>, limit: f64, at_most: bool) -> Check {
    let status = match value {
        None => Status::NotMeasured,
        Some(v) if (at_most && v <= limit) || (!at_most && v >= limit) => Status::Met,
        Some(_) => Status::Missed,
    };
    Check {
        subject: subject.to_string(),
        target,
        value,
        limit,
        at_most,
        status,
        unit: "x",
        floor: None,
    }
}

/// An absolute target: `value` and `limit` in `unit`.
pub(crate) fn absolute(
    subject: &str,
    target: &str,
    value: Option<f64>,
    limit: f64,
    at_most: bool,
    unit: &'static str,
) -> Check {
    Check {
        unit,
        ..check(subject, target.to_string(), value, limit, at_most)
    }
}

/// Check every target that applies to `rows`.
pub(crate) fn check_rows(rows: &[Row]) -> Vec<Check> {
    let mut out = Vec::new();
    let find =
        |runner: &str, size: usize| rows.iter().find(|r| r.runner == runner && r.size == size);
    for row in rows
        .iter()
        .filter(|r| r.kind == "toolkit" && r.size == SMALL && r.runner != "shm")
    {
        let name = &row.runner;
        let base = row.baseline.as_deref().unwrap_or("raw");
        let r = row.vs_raw;
        let epoll = RawKind::from_name(base)
            .and_then(RawKind::epoll_floor)
            .and_then(|k| find(k.name(), SMALL));
        let tokio: Vec<&Row> = RawKind::from_name(base)
            .map(RawKind::tokio_floors)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|k| find(k.name(), SMALL))
            .collect();
        let uring = RawKind::from_name(base)
            .and_then(RawKind::uring_floor)
            .and_then(|k| find(k.name(), SMALL));
        let blocking = find(base, SMALL);
        let runner_floor = |figure: RttFigure, floor: &Row| RunnerFloor {
            runner: floor.runner.clone(),
            vs_blocking: ratio(figure.of(Some(floor)), figure.of(blocking)),
            subject_vs: ratio(figure.of(Some(row)), figure.of(Some(floor))),
        };
        let floor = |figure: RttFigure| {
            epoll.map(|epoll| Floor {
                figure: figure.label().to_string(),
                epoll: epoll.runner.clone(),
                blocking: base.to_string(),
                epoll_vs_blocking: ratio(figure.of(Some(epoll)), figure.of(blocking)),
                subject_vs_epoll: ratio(figure.of(Some(row)), figure.of(Some(epoll))),
                tokio: tokio.iter().map(|t| runner_floor(figure, t)).collect(),
                uring: uring.map(|u| runner_floor(figure, u)),
            })
        };
        out.push(Check {
            floor: floor(RttFigure::P50),
            ..check(
                name,
                format!("p50 RTT 64 B ≤ 1.25x {base}"),
                r.rtt_p50,
                1.25,
                true,
            )
        });
        out.push(Check {
            floor: floor(RttFigure::P99),
            ..check(
                name,
                format!("p99 RTT 64 B ≤ 1.5x {base}"),
                r.rtt_p99,
                1.5,
                true,
            )
        });
        let pinned_limit = match name.as_str() {
            "uds" | "tcp" => 1.15,
            "pipe" | "fifo" | "stdio" => 1.3,
            _ => 1.25,
        };
        out.push(Check {
            floor: floor(RttFigure::PinnedP50),
            ..check(
                name,
                format!("pinned p50 RTT 64 B ≤ {pinned_limit}x {base}"),
                r.pinned_p50,
                pinned_limit,
                true,
            )
        });
        out.push(Check {
            floor: floor(RttFigure::PinnedP99),
            ..check(
                name,
                format!("pinned p99 RTT 64 B ≤ 1.5x {base}"),
                r.pinned_p99,
                1.5,
                true,
            )
        });
        let large = find(name, LARGE).and_then(|l| l.vs_raw.mb_per_s);
        out.push(check(
            name,
            format!("MB/s 64 KiB ≥ 0.8x {base}"),
            large,
            0.8,
            false,
        ));
        if matches!(name.as_str(), "uds" | "pipe" | "fifo" | "tcp") {
            out.push(check(
                name,
                format!("batched msg/s 64 B ≥ 0.4x {base} batched"),
                r.batched_msgs_per_s,
                0.4,
                false,
            ));
        }
    }
    for row in rows
        .iter()
        .filter(|r| r.kind == "toolkit-lowlat" && r.size == SMALL)
    {
        let base = row.baseline.as_deref().unwrap_or("raw spin");
        out.push(check(
            &row.runner,
            format!("p50 RTT 64 B ≤ 1.5x {base}"),
            row.vs_raw.rtt_p50,
            1.5,
            true,
        ));
        out.push(check(
            &row.runner,
            format!("p99 RTT 64 B ≤ 3x {base}"),
            row.vs_raw.rtt_p99,
            3.0,
            true,
        ));
    }
    if let Some(shm) = find("shm", SMALL) {
        out.extend(shm_targets(shm, &find));
    }
    if let Some(uds) = find("uds", SMALL) {
        let inv = |v: Option<f64>| v.filter(|v| *v > 0.0).map(|v| 1.0 / v);
        let n = uds.vs_node;
        out.push(check(
            "uds",
            "p50 RTT 64 B ≥ 2.5x lower than Node".into(),
            inv(n.rtt_p50),
            2.5,
            false,
        ));
        out.push(check(
            "uds",
            "pinned p50 RTT 64 B ≥ 2.5x lower than Node".into(),
            inv(n.pinned_p50),
            2.5,
            false,
        ));
        out.push(check(
            "uds",
            "msg/s 64 B ≥ 5x Node".into(),
            n.msgs_per_s,
            5.0,
            false,
        ));
        out.push(check(
            "uds",
            "batched msg/s 64 B ≥ 10 M (value in M)".into(),
            uds.batched.map(|t| t.msgs_per_s / 1e6),
            10.0,
            false,
        ));
        out.push(check(
            "uds",
            "batched msg/s 64 B ≥ 25x Node's one-way msg/s".into(),
            n.batched_msgs_per_s,
            25.0,
            false,
        ));
    }
    out
}

/// `a / b` when both are measured and `b` is not zero.
fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// A round-trip figure of a row.
#[derive(Debug, Clone, Copy)]
enum RttFigure {
    P50,
    P99,
    PinnedP50,
    PinnedP99,
}

impl RttFigure {
    fn label(self) -> &'static str {
        match self {
            RttFigure::P50 => "p50 RTT 64 B",
            RttFigure::P99 => "p99 RTT 64 B",
            RttFigure::PinnedP50 => "pinned p50 RTT 64 B",
            RttFigure::PinnedP99 => "pinned p99 RTT 64 B",
        }
    }

    /// The figure in ns, when measured.
    fn of(self, row: Option<&Row>) -> Option<f64> {
        let row = row?;
        let ns = match self {
            RttFigure::P50 => row.rtt?.p50_ns,
            RttFigure::P99 => row.rtt?.p99_ns,
            RttFigure::PinnedP50 => row.rtt_pinned?.p50_ns,
            RttFigure::PinnedP99 => row.rtt_pinned?.p99_ns,
        };
        Some(ns as f64)
    }
}

/// Issue 15's targets for the shared-memory transport.
fn shm_targets<'a>(shm: &Row, find: &impl Fn(&str, usize) -> Option<&'a Row>) -> Vec<Check> {
    let p50 = |row: Option<&Row>| row.and_then(|r| r.rtt).map(|l| l.p50_ns as f64);
    let pinned = |row: Option<&Row>| row.and_then(|r| r.rtt_pinned).map(|l| l.p50_ns as f64);
    let large = find("shm", LARGE).and_then(|r| r.stream);
    vec![
        absolute(
            "shm",
            "p50 RTT 64 B ≤ 1 µs",
            p50(Some(shm)).map(|ns| ns / 1000.0),
            1.0,
            true,
            " µs",
        ),
        check(
            "shm",
            "p50 RTT 64 B ≤ 3x raw-shm".into(),
            ratio(p50(Some(shm)), p50(find("raw-shm", SMALL))),
            3.0,
            true,
        ),
        check(
            "shm",
            "p50 RTT 64 B ≥ 80x lower than raw-socketpair".into(),
            ratio(p50(find("raw-socketpair", SMALL)), p50(Some(shm))),
            80.0,
            false,
        ),
        check(
            "shm",
            "pinned p50 RTT 64 B ≤ 1x raw-pipe pinned".into(),
            ratio(pinned(Some(shm)), pinned(find("raw-pipe", SMALL))),
            1.0,
            true,
        ),
        absolute(
            "shm",
            "msg/s 64 B ≥ 20 M",
            shm.stream.map(|t| t.msgs_per_s / 1e6),
            20.0,
            false,
            " M msg/s",
        ),
        absolute(
            "shm",
            "64 KiB ≥ 8 GB/s",
            large.map(|t| t.mb_per_s / 1000.0),
            8.0,
            false,
            " GB/s",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        assert_eq!(
            check("x", "t".into(), Some(1.2), 1.25, true).status,
            Status::Met
        );
        assert_eq!(
            check("x", "t".into(), Some(1.3), 1.25, true).status,
            Status::Missed
        );
        assert_eq!(
            check("x", "t".into(), Some(0.9), 0.8, false).status,
            Status::Met
        );
        assert_eq!(
            check("x", "t".into(), None, 0.8, false).status,
            Status::NotMeasured
        );
    }
}
