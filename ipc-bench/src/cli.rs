//! Command-line options of `ipc-bench`.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// Compare every ipc transport with raw OS baselines (std only, blocking) and with
/// Node.js `fork()` IPC: round-trip latency (unpinned and pinned to one CPU) and one-way
/// streaming throughput for 64 B, 1 KiB and 64 KiB messages.
#[derive(Parser, Debug, Clone)]
#[command(name = "ipc-bench", version)]
pub(crate) struct Args {
    /// CI mode: about a tenth of the default counts (the whole run takes seconds).
    #[arg(long)]
    pub quick: bool,

    /// Timed round trips per latency cell, for every size (overrides the defaults).
    #[arg(long, value_name = "N")]
    pub rounds: Option<u64>,

    /// Timed messages per streaming cell, for every size (overrides the defaults).
    #[arg(long, value_name = "N")]
    pub stream_messages: Option<u64>,

    /// Warm-up round trips / messages before each cell (default: a tenth of the count).
    #[arg(long, value_name = "N")]
    pub warmup: Option<u64>,

    /// Run every cell of the transport table (not `--cluster` or `--pm`) N times, each
    /// with fresh processes, in N passes over the whole run (so each runner is sampled across the run's stretches of machine speed, not
    /// N times back to back). A stream cell's figure is then the median run's, with the
    /// slowest and fastest in the "Stream detail" block and the JSON; a round-trip
    /// cell's histogram holds the round trips of all N runs.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,

    /// Message sizes in bytes (at least 2: payloads are JSON strings).
    #[arg(long, value_delimiter = ',', default_values_t = [64, 1024, 65536])]
    pub sizes: Vec<usize>,

    /// Run only these runners (names as printed by `--list`: `uds`, `raw-socketpair`,
    /// `node-json`, ...). Baselines of the chosen transports are not added implicitly.
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub only: Vec<String>,

    /// Run only these workloads (default: all; `--no-pin` still drops `rtt-pinned`).
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "NAMES",
        value_parser = ["rtt", "rtt-pinned", "stream", "stream-batched"]
    )]
    pub workloads: Vec<String>,

    /// Skip the pinned round-trip cells.
    #[arg(long)]
    pub no_pin: bool,

    /// The CPU that pinned cells run on (default: the first CPU this process may use).
    #[arg(long, value_name = "N")]
    pub cpu: Option<usize>,

    /// Run the stream cells with the parent pinned to CPU P and the child to CPU C
    /// (`P,C`), so both always have a CPU of their own (unpinned, the scheduler may
    /// put both on one CPU for a while and halve a spinning transport's rate). Applies
    /// to the toolkit, raw, peer and iceoryx2 rows; Node's run unpinned.
    #[arg(long, value_name = "P,C", value_delimiter = ',')]
    pub stream_cpus: Option<Vec<usize>>,

    /// Tokio runtime flavour for the toolkit's parent and child processes.
    #[arg(long, value_enum, default_value_t = Flavor::CurrentThread)]
    pub runtime: Flavor,

    /// The `node` executable for the Node.js rows.
    #[arg(long, default_value = "node", value_name = "PATH")]
    pub node: String,

    /// Write every measurement as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Write every measurement as CSV to this file.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,

    /// Write a bar chart (pinned p50 RTT and MB/s per runner) as SVG to this file.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,

    /// List the runners (toolkit transports, raw baselines, Node) and exit.
    #[arg(long)]
    pub list: bool,

    /// Also run the `iceoryx2` runner (shared-memory publish-subscribe, beside `shm`):
    /// builds `ipc-bench/iceoryx2` with cargo first (release; needs Rust 1.89+, a minute
    /// or two the first time).
    #[arg(long)]
    pub iceoryx2: bool,

    /// Instead of the transport table: HTTP requests/s and p99 of `ipc-cluster` (shared,
    /// rr, reuseport) against Node's `cluster`, for 1 and N workers.
    #[arg(long)]
    pub cluster: bool,

    /// Workers of the larger cluster cells (default: the CPUs).
    #[arg(long, value_name = "N")]
    pub cluster_workers: Option<usize>,

    /// Keep-alive client connections of the cluster load generator.
    #[arg(long, value_name = "C", default_value_t = 32)]
    pub cluster_connections: usize,

    /// Timed requests per cluster cell (default 50 000; 5 000 with --quick).
    #[arg(long, value_name = "N")]
    pub cluster_requests: Option<u64>,

    /// With --cluster: pin the load generator to the first allowed CPU and the server
    /// side (each primary and, by inheritance, its workers; Node's too) to the others,
    /// so a 1-worker server has a CPU of its own. Needs 2 CPUs or more.
    #[arg(long)]
    pub split_cpus: bool,

    /// Instead of the transport table: the `ipcm` process manager against pm2 (daemon
    /// RSS idle and with N apps, start and list latency, crash-to-restart), each with a
    /// private home in a temp dir. pm2 runs when it is on PATH (or with --install-pm2).
    #[arg(long)]
    pub pm: bool,

    /// The `ipcm` binary for --pm (default: next to ipc-bench, else on PATH).
    #[arg(long, value_name = "PATH")]
    pub ipcm: Option<PathBuf>,

    /// With --pm and no pm2 on PATH: `npm install pm2` into a temp dir and use it.
    #[arg(long)]
    pub install_pm2: bool,

    /// Apps each manager runs for the "with N apps" figures of --pm.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub pm_apps: usize,

    /// `list` runs and crashes per manager in --pm (default 20; 5 with --quick).
    #[arg(long, value_name = "N")]
    pub pm_rounds: Option<usize>,
}

/// Which tokio runtime the toolkit's processes use.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// `Builder::new_current_thread()`: what `ipc::run` builds; one thread does all I/O.
    CurrentThread,
    /// `Builder::new_multi_thread()`: what `#[tokio::main]` builds.
    MultiThread,
}

impl Flavor {
    /// The name used on the command line and in the child's environment.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Flavor::CurrentThread => "current-thread",
            Flavor::MultiThread => "multi-thread",
        }
    }

    /// Parse [`as_str`](Self::as_str)'s output.
    pub(crate) fn parse(s: &str) -> Option<Flavor> {
        match s {
            "current-thread" => Some(Flavor::CurrentThread),
            "multi-thread" => Some(Flavor::MultiThread),
            _ => None,
        }
    }

    /// Build a runtime of this flavour with every driver enabled.
    pub(crate) fn build(self) -> std::io::Result<tokio::runtime::Runtime> {
        match self {
            Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build(),
            Flavor::MultiThread => tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build(),
        }
    }
}
