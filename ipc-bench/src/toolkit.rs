//! Toolkit runs: the parent spawns this binary as a child over one registered
//! transport (`transport.spawn(..)`) and measures through `Box<dyn Channel>`, exactly
//! as an application that picks its transport at run time would.

use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ipc::prelude::*;
use ipc::spin::LowLatency;
use ipc::Transport;

use anyhow::{anyhow, Context, Result};

use crate::cli::Flavor;
use crate::pin::Placement;
use crate::roles::{child_command, job_for, Role};
use crate::stats::{self, Measurement};
use crate::workload::{payload, Cell, Workload};

/// The spin bound of the low-latency runners, in microseconds.
pub(crate) const LOW_LATENCY_MICROS: u64 = 50;

/// Measure one cell over the registered transport `name`, in low-latency mode
/// (`ipc::spin`, parent and child) when `low_latency`.
pub(crate) async fn run_cell(
    name: &str,
    cell: &Cell,
    placement: Placement,
    flavor: Flavor,
    low_latency: bool,
) -> Result<Measurement> {
    let transport = ipc::registry().get(name)?;
    let _guard = placement.pin_parent()?;
    let mut cmd = child_command(Role::Toolkit, &job_for(cell), placement.child, flavor)?;
    let mode = low_latency.then(|| LowLatency::new(Duration::from_micros(LOW_LATENCY_MICROS)));
    if low_latency {
        cmd.env(ipc::spin::LOW_LATENCY_ENV, LOW_LATENCY_MICROS.to_string());
    } else {
        cmd.env_remove(ipc::spin::LOW_LATENCY_ENV);
    }
    // The parent's end is made by `spawn`: set the mode for it, and back after.
    LowLatency::set_for_new_channels(mode);
    let measured = drive(transport.as_ref(), cmd, cell, name).await;
    LowLatency::set_for_new_channels(None);
    measured
}

/// Spawn `cmd` over `transport` and measure `cell` through the channel. The child must
/// serve the cell's job (see [`crate::roles`]): echo every message for a round trip,
/// acknowledge every phase when streaming. `what` names the child in errors. The
/// caller pins, if the cell is pinned, before calling.
pub(crate) async fn drive(
    transport: &dyn Transport,
    cmd: Command,
    cell: &Cell,
    what: &str,
) -> Result<Measurement> {
    let (mut child, mut ch) = transport
        .spawn(cmd, &Default::default())
        .await
        .context(format!("spawning a child over {what}"))?;
    // Static bytes: the loop's clone of the message is then a copy of two words. A
    // clone of reference-counted bytes is a locked instruction, which on shm would
    // drain the sender's store buffer like a fence on every send (up to 64 KiB per cell,
    // leaked for the life of the bench).
    let msg = Bytes::from_static(Box::leak(payload(cell.size).into_boxed_slice()));
    let measured = match cell.workload {
        Workload::RoundTrip { .. } => {
            let mut h = stats::histogram()?;
            for i in 0..cell.warmup + cell.count {
                let start = Instant::now();
                ch.send(msg.clone()).await.context("sending")?;
                let pong = ch
                    .recv()
                    .await
                    .context("receiving")?
                    .context("the child closed early")?;
                let took = start.elapsed();
                if pong.len() != msg.len() || (i < cell.warmup && pong != msg) {
                    return Err(anyhow!("the child answered with other bytes"));
                }
                if i >= cell.warmup {
                    stats::record(&mut h, took)?;
                }
            }
            Measurement::Latency(h)
        }
        Workload::Stream | Workload::StreamBatched => {
            let batched = cell.workload == Workload::StreamBatched;
            let phases = cell.stream_phases();
            stream_phase(&mut ch, &msg, phases[0], batched).await?;
            let mut batches = Vec::new();
            for &n in &phases[1..] {
                let start = Instant::now();
                stream_phase(&mut ch, &msg, n, batched).await?;
                batches.push(start.elapsed());
            }
            Measurement::Throughput {
                batch: phases[1],
                size: cell.size,
                batches,
            }
        }
    };
    ch.close().await.context("closing")?;
    if ch
        .recv()
        .await
        .context("waiting for the child's close")?
        .is_some()
    {
        return Err(anyhow!("the child sent more than it should"));
    }
    let status = child.wait().await.context("waiting for the child")?;
    if !status.success() {
        return Err(anyhow!(format!("the child failed: {status}")));
    }
    Ok(measured)
}

/// Send `n` messages back to back (`send` each, or `feed` each and `flush` once when
/// `batched`), then wait for the child's acknowledgement.
async fn stream_phase(ch: &mut Box<dyn Channel>, msg: &Bytes, n: u64, batched: bool) -> Result<()> {
    if batched {
        for _ in 0..n {
            ch.feed(msg.clone()).await.context("sending")?;
        }
        ch.flush().await.context("sending")?;
    } else {
        for _ in 0..n {
            ch.send(msg.clone()).await.context("sending")?;
        }
    }
    ch.recv()
        .await
        .context("waiting for the ack")?
        .context("the child closed before its ack")?;
    Ok(())
}
