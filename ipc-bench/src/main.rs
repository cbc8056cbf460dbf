//! `ipc-bench`: which transport, at what cost, on this machine.
//!
//! For every transport in `ipc::registry()` a real parent and a real child process (this
//! binary, re-executed) talk over the toolkit's `Channel`; in the same run, raw
//! baselines written with `std` only (socketpair, pipe pair, FIFO pair, TCP loopback,
//! stdin/stdout lines) give the OS floor, Node.js `child_process.fork()` IPC (json
//! and advanced serialization) gives the number users come from, and a Rust parent
//! with a Node child and a Node parent with a Rust child measure the interop. Round trips (unpinned
//! and pinned to one CPU) and one-way streaming at 64 B, 1 KiB and 64 KiB; a table on
//! stdout with ratios, and `--json`, `--csv`, `--svg` files.
//!
//! ```text
//! cargo run --release -p ipc-bench                      # full run (minutes)
//! cargo run --release -p ipc-bench -- --quick           # seconds
//! cargo run --release -p ipc-bench -- --json out.json --csv out.csv --svg out.svg
//! cargo run --release -p ipc-bench -- --repeat 5 --only shm,raw-shm   # median of 5 runs per cell
//! cargo run --release -p ipc-bench -- --cluster         # ipc-cluster against Node's cluster
//! cargo run --release -p ipc-bench -- --cluster --split-cpus  # generator on CPU 0, servers on the rest
//! cargo build --release -p ipc-pm && cargo run --release -p ipc-bench -- --pm --install-pm2
//! ```
//!
//! Modules: [`cli`] options, [`workload`] cells and payloads, [`runner`] the run,
//! [`toolkit`] / [`raw`] / [`node`] / [`interop`] the four kinds of runner, [`roles`]
//! the child side, [`pin`] CPU affinity, [`stats`] histograms, [`report`] table,
//! JSON/CSV, SVG and target checks, [`machine`] the machine description;
//! [`cluster_bench`] (`--cluster`, with [`proc_cpu`] for the CPU time of process trees)
//! and [`pm_bench`] (`--pm`, ipcm against pm2) are separate runs.

mod cli;
mod cluster_bench;
mod iceoryx2;
mod interop;
mod machine;
mod node;
mod peers;
mod pin;
mod pm_bench;
mod proc_cpu;
mod raw;
mod report;
mod roles;
mod runner;
mod stats;
mod toolkit;
mod workload;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;

use anyhow::{anyhow, Context, Result};

use crate::cli::Args;
use crate::interop::Interop;
use crate::machine::Machine;
use crate::node::{Node, Serialization};
use crate::report::{Report, Skipped};
use crate::runner::RunContext;
use crate::workload::Plan;

/// Process-wide setup that must happen before any thread exists (threads and child
/// processes inherit the signal mask): the signal transport's real-time signals are
/// blocked so they queue for its `signalfd` instead of killing the process. This is
/// why `main` builds its tokio runtime by hand instead of using `#[tokio::main]`.
fn prepare_process() -> Result<()> {
    ipc::signal::block_transport_signals().context("blocking the signal transport's signals")
}

fn main() -> ExitCode {
    if let Err(e) = prepare_process() {
        eprintln!("ipc-bench: {e:#}");
        return ExitCode::FAILURE;
    }
    if let Err(e) = cluster_bench::pin_and_exec_from_env() {
        eprintln!("ipc-bench cluster server: {e:#}");
        return ExitCode::FAILURE;
    }
    if cluster_bench::is_primary() {
        return match cluster_bench::primary_main() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ipc-bench cluster primary: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    if cluster_bench::is_worker() {
        return match cluster_bench::worker_main() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ipc-bench cluster worker: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    match roles::role_from_env() {
        Ok(Some(role)) => match roles::run_child(role) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ipc-bench child ({}): {e:#}", role.env_value());
                ExitCode::FAILURE
            }
        },
        Ok(None) => match parent(Args::parse()) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("ipc-bench: {e:#}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("ipc-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The parent: run every cell, print the table, write the files. `Ok(false)` when a
/// cell failed (the report is still printed and written).
fn parent(args: Args) -> Result<bool> {
    if args.cluster {
        return cluster_run(&args);
    }
    if args.pm {
        return pm_run(&args);
    }
    if let Some(bad) = args.sizes.iter().find(|s| **s < 2) {
        return Err(anyhow!(format!(
            "--sizes: {bad} is too small (payloads are JSON strings of at least 2 bytes)"
        )));
    }
    let node = Node::probe(&args.node);
    let iceoryx2 = if args.iceoryx2 && !args.list {
        Some(iceoryx2::build()?)
    } else {
        None
    };
    let mut runners = runner::runners(node.as_ref().ok(), args.iceoryx2, &args.only);
    // The io_uring floors need io_uring: without it (a container's seccomp filter, say)
    // they are skipped with the reason, as Node's rows are without Node. Probed only
    // when one of them is to run.
    let is_uring = |r: &runner::Runner| matches!(r.kind, runner::Kind::Raw(kind) if kind.wiring().1 == raw::Wait::Uring);
    let mut uring_skipped = Vec::new();
    if !args.list && runners.iter().any(is_uring) {
        if let Err(reason) = raw::uring::probe() {
            uring_skipped = runners
                .iter()
                .filter(|r| is_uring(r))
                .map(|r| Skipped {
                    name: r.name.clone(),
                    reason: reason.clone(),
                })
                .collect();
            runners.retain(|r| !is_uring(r));
            eprintln!("ipc-bench: io_uring floors skipped: {reason}");
        }
    }
    if args.list {
        for r in &runners {
            let about = match r.kind {
                runner::Kind::Raw(kind) => kind.about(),
                _ => String::new(),
            };
            println!("{:<22} {:<14} {about}", r.name, r.kind.label());
        }
        return Ok(true);
    }
    let mut skipped = uring_skipped;
    if let Err(reason) = &node {
        let names = Serialization::ALL
            .iter()
            .map(|s| s.name())
            .chain(Interop::ALL.iter().map(|i| i.name()));
        for name in names {
            if args.only.is_empty() || args.only.iter().any(|o| o == name) {
                skipped.push(Skipped {
                    name: name.to_string(),
                    reason: reason.clone(),
                });
            }
        }
        eprintln!("ipc-bench: Node.js rows skipped: {reason}");
    }
    let allowed = pin::allowed_cpus()?;
    let cpu = match args.cpu {
        Some(cpu) if allowed.contains(&cpu) => cpu,
        Some(cpu) => {
            return Err(anyhow!(format!(
                "--cpu {cpu}: this process may only run on CPUs {allowed:?}"
            )))
        }
        None => *allowed.first().context("no CPU is allowed")?,
    };
    let stream_cpus = match args.stream_cpus.as_deref() {
        None => None,
        Some(&[parent, child]) => {
            for c in [parent, child] {
                if !allowed.contains(&c) {
                    return Err(anyhow!(format!(
                        "--stream-cpus: this process may only run on CPUs {allowed:?}, not {c}"
                    )));
                }
            }
            Some((parent, child))
        }
        Some(other) => {
            return Err(anyhow!(format!(
                "--stream-cpus takes two CPUs, the parent's and the child's (`0,1`), not {other:?}"
            )))
        }
    };
    let plan = Plan::from_args(&args);
    let mut machine =
        Machine::describe(&args, allowed.len(), plan.pin.then_some(cpu), args.runtime);
    machine.stream_cpus = stream_cpus;
    let runtime = args.runtime.build().context("building the tokio runtime")?;
    let started = Instant::now();
    let ctx = RunContext {
        plan: &plan,
        runtime: &runtime,
        flavor: args.runtime,
        cpu,
        stream_cpus,
        node: node.as_ref().ok(),
        iceoryx2: iceoryx2.as_deref(),
    };
    let results = runner::run_all(&ctx, &runners);
    machine.duration_s = started.elapsed().as_secs_f64();
    machine.load_after = machine::load_average();
    machine.node = node.as_ref().ok().map(|n| n.version.clone());
    let report = Report::build(machine, &results, skipped);
    print!("{}", report::table::render(&report));
    if let Some(path) = &args.json {
        report::export::write_json(&report, path)?;
    }
    if let Some(path) = &args.csv {
        report::export::write_csv(&report, path)?;
    }
    if let Some(path) = &args.svg {
        report::svg::write(&report, path)?;
    }
    Ok(!report.has_errors())
}

/// `--cluster`: the HTTP cluster comparison; rows to `--json` when asked.
fn cluster_run(args: &Args) -> Result<bool> {
    let options = cluster_bench::Options {
        workers: args
            .cluster_workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        connections: args.cluster_connections,
        requests: args
            .cluster_requests
            .unwrap_or(if args.quick { 5_000 } else { 50_000 }),
        node: args.node.clone(),
        split_cpus: args.split_cpus,
    };
    let machine = Machine::describe(args, pin::allowed_cpus()?.len(), None, args.runtime);
    println!(
        "machine: {} CPUs, {}, {}, kernel {}, load {}; command: {}",
        machine.cpus,
        machine.cpu_model,
        machine.os,
        machine.kernel,
        machine.load_before,
        machine.command
    );
    let rows = cluster_bench::run(&options)?;
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&rows)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(rows.iter().all(|r| r.errors == 0))
}

/// `--pm`: ipcm against pm2; the report to `--json` when asked.
fn pm_run(args: &Args) -> Result<bool> {
    let options = pm_bench::Options {
        ipcm: args.ipcm.clone(),
        install_pm2: args.install_pm2,
        apps: args.pm_apps,
        rounds: args
            .pm_rounds
            .unwrap_or(if args.quick { 5 } else { 20 })
            .max(1),
        settle: Duration::from_millis(if args.quick { 200 } else { 1000 }),
    };
    let (report, ok) = pm_bench::run(&options)?;
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ok)
}
