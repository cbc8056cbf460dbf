//! What a cluster tells its owner: [`ClusterEvent`]s and [`WorkerInfo`].

use std::time::Duration;

use crate::events::{ExitCause, ExitStatus};
use crate::messenger::Envelope;

/// One thing that happened in a cluster.
///
/// ```no_run
/// # async fn demo(mut cluster: ipc_cluster::Cluster) {
/// use ipc_cluster::ClusterEvent;
/// while let Some(event) = cluster.next_event().await {
///     if let ClusterEvent::Message(msg) = event {
///         println!("worker {} says {}: {}", msg.from, msg.action, msg.data);
///     }
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum ClusterEvent {
    /// A worker process is starting.
    Starting {
        /// Its index.
        index: usize,
        /// Its pid.
        pid: u32,
    },
    /// A worker is ready and gets connections.
    Ready {
        /// Its index.
        index: usize,
        /// Its pid.
        pid: u32,
    },
    /// A worker exited.
    Exited {
        /// Its index.
        index: usize,
        /// Its pid.
        pid: u32,
        /// Exit code or signal.
        status: ExitStatus,
        /// Why.
        cause: ExitCause,
    },
    /// A worker reported a fatal error ([`Worker::fatal`](crate::Worker::fatal)): its
    /// replacement is started, and it leaves once that one is ready.
    Fatal {
        /// Its index.
        index: usize,
        /// Its pid.
        pid: u32,
        /// The error it reported.
        error: String,
    },
    /// A worker will be started again after `delay`.
    Restarting {
        /// Its index.
        index: usize,
        /// The wait before the start.
        delay: Duration,
    },
    /// A worker had too many unstable restarts and is not started again.
    Errored {
        /// Its index.
        index: usize,
    },
    /// A message addressed to the primary.
    Message(Envelope),
    /// The agent is ready.
    AgentReady {
        /// Its pid.
        pid: u32,
    },
    /// The agent exited.
    AgentExited {
        /// Its pid.
        pid: u32,
        /// Exit code or signal.
        status: ExitStatus,
        /// Why.
        cause: ExitCause,
    },
    /// The agent will be started again after `delay`.
    AgentRestarting {
        /// The wait before the start.
        delay: Duration,
    },
}

/// What the primary knows about one worker.
///
/// ```no_run
/// # async fn demo(cluster: ipc_cluster::Cluster) -> ipc_cluster::Result<()> {
/// for w in cluster.workers().await? {
///     println!("worker {} (pid {}): {} connections", w.index, w.pid, w.connections);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerInfo {
    /// Its index.
    pub index: usize,
    /// Its pid.
    pub pid: u32,
    /// Ready and taking connections.
    pub ready: bool,
    /// Connections it took so far (handed by the primary in round-robin mode, as the
    /// worker reports in the others).
    pub connections: u64,
    /// Connections it refused (round-robin: handed to it, refused, and handed to
    /// another worker; a worker that refuses is offered no more).
    pub refused: u64,
}
