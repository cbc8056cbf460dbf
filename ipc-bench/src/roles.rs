//! The child side: the bench binary re-executes itself as the peer of each cell.
//!
//! The parent tells the child what to be through its environment:
//!
//! | variable | value |
//! |---|---|
//! | [`ROLE_ENV`] | `toolkit` (connect with `ipc::connect_from_env()`) or a raw baseline's name (`raw-socketpair`, ...) |
//! | [`JOB_ENV`] | `echo` (send every message back), `sink:W,N,...` (read W messages, acknowledge, read N, acknowledge, ...) or `sink-many:W,N,...` (the same, a toolkit child reading with `recv_many`) |
//! | [`PIN_ENV`] | a CPU number: pin this process to it before anything else starts |
//! | [`RUNTIME_ENV`] | the toolkit child's tokio runtime flavour (`current-thread`, `multi-thread`) |

use std::fmt;
use std::process::Command;

use anyhow::{Context, Result};
use bytes::Bytes;
use ipc::prelude::*;

use crate::cli::Flavor;
use crate::peers::Peer;
use crate::raw::{self, RawKind};
use crate::workload::{Cell, Workload, ACK};

/// Which child this process is.
pub(crate) const ROLE_ENV: &str = "IPC_BENCH_ROLE";
/// What the child does with the messages.
pub(crate) const JOB_ENV: &str = "IPC_BENCH_JOB";
/// The CPU to pin to, for pinned cells.
pub(crate) const PIN_ENV: &str = "IPC_BENCH_PIN";
/// The toolkit child's runtime flavour.
pub(crate) const RUNTIME_ENV: &str = "IPC_BENCH_RUNTIME";

/// Most frames a `sink-many` toolkit child takes with one `recv_many`.
const RECV_MANY: usize = 4096;

/// The toolkit child's role name.
const TOOLKIT_ROLE: &str = "toolkit";

/// What a child does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Job {
    /// Send every message back until the parent closes.
    Echo,
    /// For each phase: read that many messages, then send [`ACK`].
    Sink(Vec<u64>),
    /// [`Sink`](Job::Sink) for the batched workload: a toolkit child takes every
    /// frame of one read at once (`recv_many`); other children read as for `Sink`.
    SinkMany(Vec<u64>),
}

impl fmt::Display for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Job::Echo => f.write_str("echo"),
            Job::Sink(phases) | Job::SinkMany(phases) => {
                let list: Vec<String> = phases.iter().map(u64::to_string).collect();
                let name = if matches!(self, Job::SinkMany(_)) {
                    "sink-many"
                } else {
                    "sink"
                };
                write!(f, "{name}:{}", list.join(","))
            }
        }
    }
}

impl std::str::FromStr for Job {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Job> {
        if s == "echo" {
            return Ok(Job::Echo);
        }
        let (many, list) = match s.strip_prefix("sink-many:") {
            Some(list) => (true, list),
            None => (
                false,
                s.strip_prefix("sink:").context(format!(
                    "{JOB_ENV}={s:?}: expected `echo`, `sink:N,...` or `sink-many:N,...`"
                ))?,
            ),
        };
        let phases = list
            .split(',')
            .map(|n| n.parse::<u64>().context(format!("{JOB_ENV}={s:?}")))
            .collect::<Result<Vec<u64>>>()?;
        Ok(if many {
            Job::SinkMany(phases)
        } else {
            Job::Sink(phases)
        })
    }
}

/// What the parent asked this process to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The peer of a toolkit transport.
    Toolkit,
    /// The peer of a raw baseline.
    Raw(RawKind),
    /// The peer of a peer crate's runner.
    Peer(Peer),
}

impl Role {
    /// The value of [`ROLE_ENV`] for this role.
    pub(crate) fn env_value(self) -> &'static str {
        match self {
            Role::Toolkit => TOOLKIT_ROLE,
            Role::Raw(kind) => kind.name(),
            Role::Peer(peer) => peer.name(),
        }
    }
}

/// The role named by [`ROLE_ENV`], if this process is a bench child.
pub(crate) fn role_from_env() -> Result<Option<Role>> {
    let Ok(value) = std::env::var(ROLE_ENV) else {
        return Ok(None);
    };
    if value == TOOLKIT_ROLE {
        return Ok(Some(Role::Toolkit));
    }
    RawKind::from_name(&value)
        .map(Role::Raw)
        .or_else(|| Peer::from_name(&value).map(Role::Peer))
        .map(Some)
        .context(format!("{ROLE_ENV}={value:?} names no bench role"))
}

/// A command that re-executes this binary as a child of `role` doing `job`, pinned
/// to `pin` when given. Stdin and stdout are the null device (a raw stdio child and the
/// stdio transport set their own); stderr is inherited, for error messages.
pub(crate) fn child_command(
    role: Role,
    job: &Job,
    pin: Option<usize>,
    flavor: Flavor,
) -> Result<Command> {
    let exe = std::env::current_exe().context("finding this executable")?;
    let mut cmd = Command::new(exe);
    cmd.envs(child_env(role, job, pin, flavor))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    if pin.is_none() {
        cmd.env_remove(PIN_ENV);
    }
    Ok(cmd)
}

/// The environment that makes this binary the child `role` doing `job` (pinned to
/// `pin` when given), for a parent that starts it by other means (a Node parent).
pub(crate) fn child_env(
    role: Role,
    job: &Job,
    pin: Option<usize>,
    flavor: Flavor,
) -> Vec<(&'static str, String)> {
    let mut env = vec![
        (ROLE_ENV, role.env_value().to_string()),
        (JOB_ENV, job.to_string()),
        (RUNTIME_ENV, flavor.as_str().to_string()),
    ];
    if let Some(cpu) = pin {
        env.push((PIN_ENV, cpu.to_string()));
    }
    env
}

/// The job that serves `cell`: echo for round trips, acknowledged phases for streaming.
pub(crate) fn job_for(cell: &Cell) -> Job {
    match cell.workload {
        Workload::RoundTrip { .. } => Job::Echo,
        Workload::Stream => Job::Sink(cell.stream_phases()),
        Workload::StreamBatched => Job::SinkMany(cell.stream_phases()),
    }
}

/// Run this process as the child `role`: pin if asked, then serve the job.
pub(crate) fn run_child(role: Role) -> Result<()> {
    if let Ok(cpu) = std::env::var(PIN_ENV) {
        let cpu: usize = cpu.parse().context(format!("{PIN_ENV}={cpu:?}"))?;
        crate::pin::pin_process(cpu)?;
    }
    let job: Job = std::env::var(JOB_ENV)
        .context(format!("{JOB_ENV} is not set"))?
        .parse()?;
    match role {
        Role::Toolkit => {
            let flavor = std::env::var(RUNTIME_ENV)
                .ok()
                .and_then(|f| Flavor::parse(&f))
                .unwrap_or(Flavor::CurrentThread);
            let runtime = flavor.build().context("building the tokio runtime")?;
            runtime.block_on(toolkit_child(job))
        }
        Role::Raw(kind) => raw::serve_child(kind, &job),
        Role::Peer(peer) => crate::peers::serve_child(peer, &job),
    }
}

/// The toolkit child: open the channel the parent made and serve the job on it.
async fn toolkit_child(job: Job) -> Result<()> {
    let mut ch = ipc::connect_from_env()
        .await
        .context("connecting to the parent")?;
    match job {
        Job::Echo => {
            while let Some(msg) = ch.recv().await.context("receiving")? {
                ch.send(msg).await.context("echoing")?;
            }
        }
        Job::Sink(phases) => {
            for n in phases {
                for _ in 0..n {
                    ch.recv()
                        .await
                        .context("receiving")?
                        .context("the parent closed before the end of the phase")?;
                }
                ch.send(Bytes::from_static(ACK))
                    .await
                    .context("acknowledging")?;
            }
            // Wait for the parent's close, so our goodbye never races its last read.
            while ch.recv().await.context("waiting for close")?.is_some() {}
        }
        Job::SinkMany(phases) => {
            let mut frames = Vec::with_capacity(RECV_MANY);
            for n in phases {
                let mut left = n;
                while left > 0 {
                    frames.clear();
                    // Never past the phase: the parent sends nothing more before the ack.
                    let max = RECV_MANY.min(usize::try_from(left).unwrap_or(usize::MAX));
                    let got = ch.recv_many(&mut frames, max).await.context("receiving")?;
                    if got == 0 {
                        anyhow::bail!("the parent closed before the end of the phase");
                    }
                    left -= got as u64;
                }
                ch.send(Bytes::from_static(ACK))
                    .await
                    .context("acknowledging")?;
            }
            while ch.recv().await.context("waiting for close")?.is_some() {}
        }
    }
    ch.close().await.context("closing")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_read_back_what_they_print() {
        for job in [
            Job::Echo,
            Job::Sink(vec![10, 20]),
            Job::SinkMany(vec![3, 4, 5]),
        ] {
            let again: Job = job.to_string().parse().expect("parse");
            assert_eq!(again, job);
        }
        assert!("sink-many:".parse::<Job>().is_err());
    }
}
