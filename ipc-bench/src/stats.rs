//! Latency histograms and throughput figures.
//!
//! Round-trip times go into an [`hdrhistogram`] spanning 1 ns to 60 s at three
//! significant digits (`Histogram::new_with_bounds(1, 60_000_000_000, 3)`); a value
//! outside that range is clamped to it, which at these bounds never happens for a round
//! trip that completed.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use anyhow::{anyhow, Result};

/// Largest latency the histogram holds: 60 s, in nanoseconds.
const MAX_NS: u64 = 60_000_000_000;

/// A fresh latency histogram (1 ns ..= 60 s, 3 significant digits).
pub(crate) fn histogram() -> Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, MAX_NS, 3)
        .map_err(|e| anyhow!(format!("creating the latency histogram: {e}")))
}

/// Record one round trip.
pub(crate) fn record(h: &mut Histogram<u64>, took: Duration) -> Result<()> {
    let ns = (took.as_nanos().min(u128::from(MAX_NS)) as u64).max(1);
    h.record(ns)
        .map_err(|e| anyhow!(format!("recording {ns} ns: {e}")))
}

/// What one cell measured.
#[derive(Debug, Clone)]
pub(crate) enum Measurement {
    /// Round-trip times.
    Latency(Histogram<u64>),
    /// One-way streaming: each batch of `batch` messages of `size` bytes took the time
    /// in `batches`, from its first send to the child's acknowledgement of its last.
    Throughput {
        /// Messages per batch.
        batch: u64,
        /// Payload bytes per message.
        size: usize,
        /// Time per batch.
        batches: Vec<Duration>,
    },
}

/// Round-trip latency percentiles, in nanoseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Latency {
    /// Timed round trips.
    pub count: u64,
    /// Median.
    pub p50_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Slowest round trip.
    pub max_ns: u64,
    /// Fastest round trip.
    pub min_ns: u64,
    /// Mean.
    pub mean_ns: f64,
}

impl Latency {
    /// Summarise a histogram.
    pub(crate) fn from_histogram(h: &Histogram<u64>) -> Latency {
        Latency {
            count: h.len(),
            p50_ns: h.value_at_quantile(0.50),
            p99_ns: h.value_at_quantile(0.99),
            p999_ns: h.value_at_quantile(0.999),
            max_ns: h.max(),
            min_ns: h.min(),
            mean_ns: h.mean(),
        }
    }
}

/// Streaming throughput: the median batch's rates (of the median run, with
/// `--repeat`).
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Throughput {
    /// Timed messages (all batches).
    pub messages: u64,
    /// Payload bytes per message.
    pub size: usize,
    /// Wall time of all batches, in nanoseconds.
    pub elapsed_ns: u64,
    /// Time of the median batch, in nanoseconds.
    pub median_batch_ns: u64,
    /// Messages per second.
    pub msgs_per_s: f64,
    /// Payload megabytes (10^6 bytes) per second.
    pub mb_per_s: f64,
    /// Runs of the cell, each with fresh processes (`--repeat`; 1 by default).
    pub runs: usize,
    /// The slowest run's messages per second (`msgs_per_s` when there was one run).
    pub min_msgs_per_s: f64,
    /// The fastest run's messages per second.
    pub max_msgs_per_s: f64,
}

impl Throughput {
    /// Rates of the median of `batches`, each of `batch` messages of `size` bytes.
    pub(crate) fn from_batches(batch: u64, size: usize, batches: &[Duration]) -> Throughput {
        let mut sorted = batches.to_vec();
        sorted.sort_unstable();
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or_default();
        let msgs_per_s = batch as f64 / median.as_secs_f64().max(1e-9);
        Throughput {
            messages: batch * batches.len() as u64,
            size,
            elapsed_ns: batches.iter().sum::<Duration>().as_nanos() as u64,
            median_batch_ns: median.as_nanos() as u64,
            msgs_per_s,
            mb_per_s: msgs_per_s * size as f64 / 1e6,
            runs: 1,
            min_msgs_per_s: msgs_per_s,
            max_msgs_per_s: msgs_per_s,
        }
    }

    /// Several runs of one cell as one figure: the median run's (the lower middle one
    /// for an even count), with the slowest and the fastest run's rates beside it.
    /// `None` for no runs.
    pub(crate) fn of_runs(runs: &[Throughput]) -> Option<Throughput> {
        let mut sorted = runs.to_vec();
        sorted.sort_unstable_by(|a, b| a.msgs_per_s.total_cmp(&b.msgs_per_s));
        let median = *sorted.get((sorted.len().checked_sub(1)?) / 2)?;
        Some(Throughput {
            runs: sorted.len(),
            min_msgs_per_s: sorted.first()?.msgs_per_s,
            max_msgs_per_s: sorted.last()?.msgs_per_s,
            ..median
        })
    }
}

/// Several runs of one round-trip cell as one histogram: every round trip of every
/// run. `None` for no runs (or histograms that cannot be added, which histograms made
/// by [`histogram`] always can).
pub(crate) fn merge_latency(runs: &[Histogram<u64>]) -> Option<Histogram<u64>> {
    let (first, rest) = runs.split_first()?;
    let mut all = first.clone();
    for h in rest {
        all.add(h).ok()?;
    }
    Some(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_keeps_microseconds() {
        let mut h = histogram().expect("histogram");
        for us in [10u64, 20, 30] {
            record(&mut h, Duration::from_micros(us)).expect("record");
        }
        let l = Latency::from_histogram(&h);
        assert_eq!(l.count, 3);
        assert!((19_980..=20_020).contains(&l.p50_ns), "{l:?}");
        assert!(l.max_ns >= 29_990);
    }

    #[test]
    fn several_runs_give_the_median_run_with_the_range() {
        let ms = Duration::from_millis;
        let runs: Vec<Throughput> = [ms(10), ms(40), ms(20)]
            .iter()
            .map(|&t| Throughput::from_batches(1000, 64, &[t]))
            .collect();
        let t = Throughput::of_runs(&runs).expect("runs");
        assert_eq!(t.runs, 3);
        assert!((t.msgs_per_s - 50_000.0).abs() < 1.0, "{t:?}");
        assert!((t.min_msgs_per_s - 25_000.0).abs() < 1.0, "{t:?}");
        assert!((t.max_msgs_per_s - 100_000.0).abs() < 1.0, "{t:?}");
        let two = Throughput::of_runs(&runs[..2]).expect("runs");
        assert!(
            (two.msgs_per_s - 25_000.0).abs() < 1.0,
            "the lower middle one: {two:?}"
        );
        assert!(Throughput::of_runs(&[]).is_none());
    }

    #[test]
    fn several_round_trip_runs_merge_into_one_histogram() {
        let run = |us: &[u64]| {
            let mut h = histogram().expect("histogram");
            for &us in us {
                record(&mut h, Duration::from_micros(us)).expect("record");
            }
            h
        };
        let all = merge_latency(&[run(&[10, 20]), run(&[30])]).expect("runs");
        let l = Latency::from_histogram(&all);
        assert_eq!(l.count, 3);
        assert!(l.max_ns >= 29_990 && l.min_ns <= 10_010, "{l:?}");
        assert!(merge_latency(&[]).is_none());
    }

    #[test]
    fn throughput_rates() {
        let ms = Duration::from_millis;
        let t = Throughput::from_batches(1000, 1_000, &[ms(10), ms(50), ms(9)]);
        assert_eq!(t.messages, 3000);
        assert!((t.msgs_per_s - 100_000.0).abs() < 1.0);
        assert!((t.mb_per_s - 100.0).abs() < 0.01);
    }
}
