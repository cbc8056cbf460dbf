//! The run: which runners there are, and every cell of each, with a progress bar.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::runtime::Runtime;

use anyhow::{anyhow, Result};

use crate::cli::Flavor;
use crate::interop::{self, Interop};
use crate::node::{Node, Serialization};
use crate::peers::Peer;
use crate::pin::Placement;
use crate::raw::{self, RawKind};
use crate::stats::{merge_latency, Latency, Measurement, Throughput};
use crate::toolkit;
use crate::workload::{Budget, Cell, Plan, Workload};

/// Transports also measured in low-latency mode, with their spinning raw baseline.
const LOW_LATENCY_RUNNERS: [(&str, RawKind); 2] = [
    ("uds", RawKind::SocketpairSpin),
    ("pipe", RawKind::PipeSpin),
];
/// Appended to the transport's name for its low-latency runner.
const LOW_LATENCY_SUFFIX: &str = "-lowlat";

/// Longest a toolkit cell may take before it counts as hung.
const TOOLKIT_CELL_TIMEOUT: Duration = Duration::from_secs(300);

/// What kind of thing a runner measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A transport from `ipc::registry()`.
    Toolkit,
    /// A transport from `ipc::registry()` in low-latency mode (`ipc::spin`), parent
    /// and child; the runner is named `<transport>-lowlat`.
    LowLatency,
    /// A raw `std` baseline.
    Raw(RawKind),
    /// Node.js `fork()` IPC.
    Node(Serialization),
    /// A Rust process and a Node.js process over Node's channel.
    Interop(Interop),
    /// A peer crate (`interprocess`, `ipc-channel`).
    Peer(Peer),
    /// `iceoryx2`, built on demand (`--iceoryx2`).
    Iceoryx2,
}

impl Kind {
    /// Whether it measures `workload`: [`Workload::StreamBatched`] only the toolkit and
    /// the raw baselines (Node's `send` has no batching to compare); the epoll and tokio
    /// floors round trips only (see [`RawKind::round_trips_only`]).
    pub(crate) fn measures(self, workload: Workload) -> bool {
        match (self, workload) {
            (Kind::Raw(kind), Workload::Stream | Workload::StreamBatched)
                if kind.round_trips_only() =>
            {
                false
            }
            (_, Workload::StreamBatched) => matches!(self, Kind::Toolkit | Kind::Raw(_)),
            _ => true,
        }
    }

    /// `toolkit`, `raw`, `node` or `interop`.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Kind::Toolkit => "toolkit",
            Kind::LowLatency => "toolkit-lowlat",
            Kind::Raw(_) => "raw",
            Kind::Node(_) => "node",
            Kind::Interop(_) => "interop",
            Kind::Peer(_) | Kind::Iceoryx2 => "peer",
        }
    }
}

/// One row group of the report: a toolkit transport, a raw baseline, a Node variant or
/// a Rust <-> Node pairing.
#[derive(Debug, Clone)]
pub(crate) struct Runner {
    /// `uds`, `raw-socketpair`, `node-json`, ...
    pub name: String,
    /// What it measures.
    pub kind: Kind,
    /// The raw baseline it is compared with (toolkit transports and Rust <-> Node).
    pub baseline: Option<&'static str>,
    /// Caveats shown with the results.
    pub notes: Vec<String>,
    /// How much work it gets.
    pub budget: Budget,
}

/// Every runner of this build, toolkit transports first (from the registry), then the
/// raw baselines, then Node and the Rust <-> Node rows when Node can run; filtered by
/// `only` when not empty. `iceoryx2`: include the `iceoryx2` runner.
pub(crate) fn runners(node: Option<&Node>, iceoryx2: bool, only: &[String]) -> Vec<Runner> {
    let mut out = Vec::new();
    for name in ipc::registry().names() {
        let (base, note) = RawKind::baseline_for(name);
        let budget = Budget::for_transport(name);
        out.push(Runner {
            name: name.to_string(),
            kind: Kind::Toolkit,
            baseline: Some(base.name()),
            notes: note
                .map(str::to_string)
                .into_iter()
                .chain(budget.note())
                .collect(),
            budget,
        });
    }
    for (transport, base) in LOW_LATENCY_RUNNERS {
        if ipc::registry().get(transport).is_ok() {
            out.push(Runner {
                name: format!("{transport}{LOW_LATENCY_SUFFIX}"),
                kind: Kind::LowLatency,
                baseline: Some(base.name()),
                notes: vec![format!(
                    "low-latency mode (IPC_LOW_LATENCY={}): receives poll up to {} µs \
                     before parking",
                    toolkit::LOW_LATENCY_MICROS,
                    toolkit::LOW_LATENCY_MICROS
                )],
                budget: Budget::Normal,
            });
        }
    }
    for peer in Peer::ALL {
        out.push(Runner {
            name: peer.name().to_string(),
            kind: Kind::Peer(peer),
            baseline: Some(RawKind::Socketpair.name()),
            notes: Vec::new(),
            budget: Budget::Normal,
        });
    }
    if iceoryx2 {
        out.push(Runner {
            name: crate::iceoryx2::NAME.to_string(),
            kind: Kind::Iceoryx2,
            baseline: Some(RawKind::Shm.name()),
            notes: vec![
                "iceoryx2 0.10 publish-subscribe, busy-polling (see ipc-bench/iceoryx2)".into(),
            ],
            budget: Budget::Normal,
        });
    }
    for kind in RawKind::ALL {
        let tokio = matches!(kind.wiring().1, raw::Wait::Tokio(_));
        let notes = [
            (
                raw::tokio_floor::io_only(),
                format!(
                    "tokio runtimes with the I/O driver only ({}=1), no time driver",
                    raw::tokio_floor::IO_ONLY_ENV
                ),
            ),
            (
                raw::tokio_floor::spin(),
                format!(
                    "reads spin as in low-latency mode, unbounded ({}=1)",
                    raw::tokio_floor::SPIN_ENV
                ),
            ),
        ];
        out.push(Runner {
            name: kind.name().to_string(),
            kind: Kind::Raw(kind),
            baseline: None,
            notes: notes
                .into_iter()
                .filter(|(on, _)| tokio && *on)
                .map(|(_, note)| note)
                .collect(),
            budget: Budget::Normal,
        });
    }
    if node.is_some() {
        for ser in Serialization::ALL {
            out.push(Runner {
                name: ser.name().to_string(),
                kind: Kind::Node(ser),
                baseline: None,
                notes: Vec::new(),
                budget: Budget::Normal,
            });
        }
        for side in Interop::ALL {
            out.push(Runner {
                name: side.name().to_string(),
                kind: Kind::Interop(side),
                baseline: Some(RawKind::Socketpair.name()),
                notes: vec![side.note().to_string()],
                budget: Budget::Normal,
            });
        }
    }
    out.retain(|r| only.is_empty() || only.contains(&r.name));
    out
}

/// A cell's figures.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Summary {
    /// Round-trip latency.
    Latency(Latency),
    /// Streaming throughput.
    Throughput(Throughput),
}

/// One measured (or failed) cell.
#[derive(Debug, Clone)]
pub(crate) struct CellResult {
    /// What was measured.
    pub cell: Cell,
    /// The figures, or why there are none.
    pub outcome: std::result::Result<Summary, String>,
}

/// Everything one runner measured.
#[derive(Debug, Clone)]
pub(crate) struct RunnerResult {
    /// The runner.
    pub runner: Runner,
    /// Its cells, in run order.
    pub cells: Vec<CellResult>,
}

/// What a run needs besides the list of runners.
pub(crate) struct RunContext<'a> {
    /// Sizes and counts.
    pub plan: &'a Plan,
    /// The parent's runtime, for toolkit cells.
    pub runtime: &'a Runtime,
    /// The toolkit processes' runtime flavour.
    pub flavor: Flavor,
    /// The CPU pinned cells run on.
    pub cpu: usize,
    /// With `--stream-cpus`: the parent's and the child's CPU for stream cells.
    pub stream_cpus: Option<(usize, usize)>,
    /// Node.js, when it can run.
    pub node: Option<&'a Node>,
    /// The `iceoryx2` runner's binary, when built.
    pub iceoryx2: Option<&'a std::path::Path>,
}

impl RunContext<'_> {
    /// Where `cell`'s processes run: both on [`cpu`](Self::cpu) for a pinned round
    /// trip, apart for a stream with `--stream-cpus`, else wherever the scheduler puts
    /// them.
    pub(crate) fn placement(&self, cell: &Cell) -> Placement {
        match (cell.workload, self.stream_cpus) {
            (Workload::RoundTrip { pinned: true }, _) => Placement::together(self.cpu),
            (Workload::Stream | Workload::StreamBatched, Some((parent, child))) => {
                Placement::apart(parent, child)
            }
            _ => Placement::default(),
        }
    }
}

fn run_one(ctx: &RunContext<'_>, runner: &Runner, cell: &Cell) -> Result<Measurement> {
    let placement = ctx.placement(cell);
    match runner.kind {
        Kind::Toolkit => ctx.runtime.block_on(async {
            tokio::time::timeout(
                TOOLKIT_CELL_TIMEOUT,
                toolkit::run_cell(&runner.name, cell, placement, ctx.flavor, false),
            )
            .await
            .map_err(|_| anyhow!(format!("timed out after {TOOLKIT_CELL_TIMEOUT:?}")))?
        }),
        Kind::LowLatency => ctx.runtime.block_on(async {
            let transport = runner
                .name
                .strip_suffix(LOW_LATENCY_SUFFIX)
                .unwrap_or(&runner.name);
            tokio::time::timeout(
                TOOLKIT_CELL_TIMEOUT,
                toolkit::run_cell(transport, cell, placement, ctx.flavor, true),
            )
            .await
            .map_err(|_| anyhow!(format!("timed out after {TOOLKIT_CELL_TIMEOUT:?}")))?
        }),
        Kind::Raw(kind) => raw::run_cell(kind, cell, placement),
        Kind::Peer(peer) => crate::peers::run_cell(peer, cell, placement, ctx.runtime),
        Kind::Iceoryx2 => match ctx.iceoryx2 {
            Some(bin) => crate::iceoryx2::run_cell(bin, cell, placement),
            None => Err(anyhow!("the iceoryx2 runner was not built")),
        },
        Kind::Node(ser) => match ctx.node {
            Some(node) => node.run_cell(ser, cell, ctx.cpu),
            None => Err(anyhow!("node is not available")),
        },
        Kind::Interop(side) => {
            let node = ctx.node.ok_or_else(|| anyhow!("node is not available"))?;
            match side {
                Interop::RustParentNodeChild => ctx.runtime.block_on(async {
                    tokio::time::timeout(
                        TOOLKIT_CELL_TIMEOUT,
                        interop::rust_parent_node_child(node, cell, ctx.cpu),
                    )
                    .await
                    .map_err(|_| anyhow!(format!("timed out after {TOOLKIT_CELL_TIMEOUT:?}")))?
                }),
                Interop::NodeParentRustChild => {
                    interop::node_parent_rust_child(node, cell, ctx.cpu, ctx.flavor)
                }
            }
        }
    }
}

/// Order in which cells run: by size, then workload, then runner. A transport and its
/// raw baseline (and Node) are then measured minutes apart at most, never a whole run
/// apart, so load that drifts during the run (other builds on the machine) skews their
/// ratios less.
fn cell_major_order(plans: &[Vec<Cell>]) -> Vec<(usize, usize)> {
    let mut order: Vec<(usize, usize)> = plans
        .iter()
        .enumerate()
        .flat_map(|(r, cells)| (0..cells.len()).map(move |c| (r, c)))
        .collect();
    order.sort_by_key(|&(r, c)| {
        let cell = &plans[r][c];
        let workload = match cell.workload {
            Workload::RoundTrip { pinned: false } => 0,
            Workload::RoundTrip { pinned: true } => 1,
            Workload::Stream => 2,
            Workload::StreamBatched => 3,
        };
        (cell.size, workload, r)
    });
    order
}

/// One cell's runs (`--repeat`) as one figure: round trips merged into one histogram,
/// streams as the median run with the range. A cell with a failed run is an error
/// (the first failure's, and which run it was).
fn summarize(runs: Vec<Result<Measurement>>, repeat: u32) -> std::result::Result<Summary, String> {
    let mut histograms = Vec::new();
    let mut rates = Vec::new();
    for (i, run) in runs.into_iter().enumerate() {
        match run {
            Ok(Measurement::Latency(h)) => histograms.push(h),
            Ok(Measurement::Throughput {
                batch,
                size,
                batches,
            }) => rates.push(Throughput::from_batches(batch, size, &batches)),
            Err(e) if repeat > 1 => return Err(format!("run {} of {repeat}: {e}", i + 1)),
            Err(e) => return Err(e.to_string()),
        }
    }
    if let Some(all) = merge_latency(&histograms) {
        return Ok(Summary::Latency(Latency::from_histogram(&all)));
    }
    Throughput::of_runs(&rates)
        .map(Summary::Throughput)
        .ok_or_else(|| "no run measured anything".to_string())
}

/// Run every cell of every runner (in [`cell_major_order`], once per `--repeat` pass),
/// showing progress on stderr (hidden when stderr is not a terminal). A failed cell is
/// recorded and the run goes on.
pub(crate) fn run_all(ctx: &RunContext<'_>, runners: &[Runner]) -> Vec<RunnerResult> {
    let plans: Vec<Vec<Cell>> = runners
        .iter()
        .map(|r| {
            let mut cells = ctx.plan.cells(r.budget);
            cells.retain(|c| r.kind.measures(c.workload));
            cells
        })
        .collect();
    let order = cell_major_order(&plans);
    let repeat = ctx.plan.repeat.max(1);
    let bar = ProgressBar::with_draw_target(
        Some(order.len() as u64 * u64::from(repeat)),
        ProgressDrawTarget::stderr(),
    );
    if let Ok(style) =
        ProgressStyle::with_template("{elapsed_precise} [{bar:32}] {pos}/{len} {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    let mut runs: Vec<Vec<Vec<Result<Measurement>>>> = plans
        .iter()
        .map(|cells| cells.iter().map(|_| Vec::new()).collect())
        .collect();
    for pass in 1..=repeat {
        for &(r, c) in &order {
            let (runner, cell) = (&runners[r], plans[r][c]);
            let run = if repeat > 1 {
                format!(" (run {pass} of {repeat})")
            } else {
                String::new()
            };
            bar.set_message(format!("{} {cell}{run}", runner.name));
            let measured = run_one(ctx, runner, &cell);
            if let Err(e) = &measured {
                bar.suspend(|| eprintln!("ipc-bench: {} {cell}{run}: {e}", runner.name));
            }
            runs[r][c].push(measured);
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    runners
        .iter()
        .zip(plans.iter().zip(runs))
        .map(|(runner, (cells, runs))| RunnerResult {
            runner: runner.clone(),
            cells: cells
                .iter()
                .zip(runs)
                .map(|(&cell, runs)| CellResult {
                    cell,
                    outcome: summarize(runs, repeat),
                })
                .collect(),
        })
        .collect()
}
