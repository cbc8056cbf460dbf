//! What is measured: the cells of a run (workload, size, counts) and the payloads.
//!
//! A *cell* is one measurement of one runner: round trips of one size (unpinned or
//! pinned to one CPU) or one-way streaming of one size. Each cell runs against a fresh
//! child process, after a warm-up that is not timed.

use std::fmt;

use crate::cli::Args;

/// Default timed round trips per size (full run).
const FULL_ROUNDS: [(usize, u64); 3] = [(64, 20_000), (1024, 20_000), (65_536, 5_000)];
/// Default timed streamed messages per size (full run).
const FULL_STREAM: [(usize, u64); 3] = [(64, 200_000), (1024, 100_000), (65_536, 4_096)];
/// `--quick` divides the defaults by this.
const QUICK_DIVISOR: u64 = 10;
/// A streaming cell's timed messages are sent in this many acknowledged batches; the
/// cell's rate is the median batch's, so a burst of load from elsewhere on the machine
/// spoils one batch, not the figure.
pub(crate) const STREAM_BATCHES: u64 = 5;

/// The two workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Workload {
    /// Ping-pong: send a message, wait for the same bytes back; latency per round trip.
    RoundTrip {
        /// Parent and child run on one CPU.
        pinned: bool,
    },
    /// One-way: send messages back to back, the child acknowledges the last one.
    Stream,
    /// One-way like [`Stream`](Workload::Stream), but batched: the toolkit `feed`s
    /// every message and flushes at the end of a phase (one write per 64 KiB); the raw
    /// baselines write through a 64 KiB buffer. Toolkit and raw runners only.
    StreamBatched,
}

impl Workload {
    /// `rtt`, `rtt-pinned` or `stream`.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Workload::RoundTrip { pinned: false } => "rtt",
            Workload::RoundTrip { pinned: true } => "rtt-pinned",
            Workload::Stream => "stream",
            Workload::StreamBatched => "stream-batched",
        }
    }

    /// Whether parent and child are pinned to one CPU.
    pub(crate) fn pinned(self) -> bool {
        matches!(self, Workload::RoundTrip { pinned: true })
    }
}

/// One measurement to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cell {
    /// Round trip or streaming.
    pub workload: Workload,
    /// Payload size in bytes.
    pub size: usize,
    /// Untimed round trips or messages first.
    pub warmup: u64,
    /// Timed round trips or messages.
    pub count: u64,
}

impl Cell {
    /// A streaming cell's phases: the warm-up, then [`STREAM_BATCHES`] timed batches.
    /// Each phase ends with the child's acknowledgement.
    pub(crate) fn stream_phases(&self) -> Vec<u64> {
        let mut phases = vec![self.warmup];
        phases.extend(std::iter::repeat(self.count / STREAM_BATCHES).take(STREAM_BATCHES as usize));
        phases
    }
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} B x{}",
            self.workload.label(),
            self.size,
            self.count
        )
    }
}

/// How much work a runner gets: the normal budget, or a reduced one for transports that
/// are slow by design.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Budget {
    /// Every size, the configured counts.
    Normal,
    /// Sizes up to `max_size`, counts divided by `divisor` (at least `min_count`).
    Reduced {
        /// Largest size measured.
        max_size: usize,
        /// Counts are divided by this.
        divisor: u64,
        /// But never below this.
        min_count: u64,
    },
}

impl Budget {
    /// The budget for a toolkit transport. The signal transport carries 8 bytes per
    /// signal (one `sigqueue` each): it gets 64 B and 1 KiB only, and a fiftieth of the
    /// counts, so a full run stays within minutes.
    pub(crate) fn for_transport(name: &str) -> Budget {
        match name {
            "signal" => Budget::Reduced {
                max_size: 1024,
                divisor: 50,
                min_count: 20,
            },
            _ => Budget::Normal,
        }
    }

    /// A sentence for the report, when the budget is reduced.
    pub(crate) fn note(self) -> Option<String> {
        match self {
            Budget::Normal => None,
            Budget::Reduced {
                max_size, divisor, ..
            } => Some(format!(
                "slow by design: sizes up to {max_size} B only, counts divided by {divisor}"
            )),
        }
    }
}

/// Sizes and counts for the whole run.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Message sizes in bytes.
    pub sizes: Vec<usize>,
    /// Whether pinned round-trip cells are run.
    pub pin: bool,
    /// Runs of every cell (`--repeat`, at least 1).
    pub repeat: u32,
    /// Workload labels to run (empty: all).
    workloads: Vec<String>,
    rounds: Option<u64>,
    stream: Option<u64>,
    warmup: Option<u64>,
    quick: bool,
}

impl Plan {
    /// The plan the command line asks for.
    pub(crate) fn from_args(args: &Args) -> Plan {
        Plan {
            sizes: args.sizes.clone(),
            pin: !args.no_pin,
            repeat: args.repeat.max(1),
            workloads: args.workloads.clone(),
            rounds: args.rounds,
            stream: args.stream_messages,
            warmup: args.warmup,
            quick: args.quick,
        }
    }

    fn default_count(&self, table: &[(usize, u64)], size: usize) -> u64 {
        // Sizes between the table's entries take the next larger entry's count.
        let count = table
            .iter()
            .find(|(s, _)| size <= *s)
            .or(table.last())
            .map_or(1_000, |(_, c)| *c);
        if self.quick {
            (count / QUICK_DIVISOR).max(1)
        } else {
            count
        }
    }

    /// Every cell for a runner with this budget, in run order.
    pub(crate) fn cells(&self, budget: Budget) -> Vec<Cell> {
        let mut out = Vec::new();
        let mut workloads = vec![Workload::RoundTrip { pinned: false }];
        if self.pin {
            workloads.push(Workload::RoundTrip { pinned: true });
        }
        workloads.push(Workload::Stream);
        workloads.push(Workload::StreamBatched);
        if !self.workloads.is_empty() {
            workloads.retain(|w| self.workloads.iter().any(|name| name == w.label()));
        }
        for &size in &self.sizes {
            if let Budget::Reduced { max_size, .. } = budget {
                if size > max_size {
                    continue;
                }
            }
            for &workload in &workloads {
                let base = match workload {
                    Workload::RoundTrip { .. } => self
                        .rounds
                        .unwrap_or_else(|| self.default_count(&FULL_ROUNDS, size)),
                    Workload::Stream | Workload::StreamBatched => self
                        .stream
                        .unwrap_or_else(|| self.default_count(&FULL_STREAM, size)),
                };
                let count = match budget {
                    Budget::Normal => base,
                    Budget::Reduced {
                        divisor, min_count, ..
                    } => (base / divisor).max(min_count.min(base)),
                };
                let count = match workload {
                    Workload::Stream | Workload::StreamBatched => {
                        count.div_ceil(STREAM_BATCHES) * STREAM_BATCHES
                    }
                    Workload::RoundTrip { .. } => count,
                };
                let warmup = self.warmup.unwrap_or((count / 10).max(1));
                out.push(Cell {
                    workload,
                    size,
                    warmup,
                    count,
                });
            }
        }
        out
    }
}

/// The message sent in every cell: a JSON string of exactly `size` bytes
/// (`"xxxx…"`), so line-based and JSON-only transports carry it unchanged.
pub(crate) fn payload(size: usize) -> Vec<u8> {
    let mut p = vec![b'x'; size.max(2)];
    p[0] = b'"';
    let last = p.len() - 1;
    p[last] = b'"';
    p
}

/// The acknowledgement a streaming child sends after each phase (valid JSON too).
pub(crate) const ACK: &[u8] = b"\"ok\"";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_a_json_string_of_the_size() {
        let p = payload(64);
        assert_eq!(p.len(), 64);
        let s: String = serde_json::from_slice(&p).expect("json");
        assert_eq!(s.len(), 62);
    }

    #[test]
    fn reduced_budget_drops_large_sizes() {
        let plan = Plan {
            sizes: vec![64, 1024, 65536],
            pin: true,
            repeat: 1,
            workloads: Vec::new(),
            rounds: None,
            stream: None,
            warmup: None,
            quick: false,
        };
        assert_eq!(plan.cells(Budget::Normal).len(), 12);
        let slow = plan.cells(Budget::for_transport("signal"));
        assert_eq!(slow.len(), 8);
        assert!(slow.iter().all(|c| c.size <= 1024 && c.count <= 4000));
        let only = Plan {
            workloads: vec!["stream-batched".into()],
            ..plan.clone()
        };
        let cells = only.cells(Budget::Normal);
        assert_eq!(cells.len(), 3);
        assert!(cells.iter().all(|c| c.workload == Workload::StreamBatched));
        assert!(slow
            .iter()
            .all(|c| c.stream_phases().iter().skip(1).sum::<u64>() == c.count
                || matches!(c.workload, Workload::RoundTrip { .. })));
    }
}
