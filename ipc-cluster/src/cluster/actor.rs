//! The cluster's task: one loop that owns every worker's slot and reacts to
//! [`Input`]s (the workers' messages and exits, accepted connections, hand-off
//! outcomes, timers and the handle's commands) one at a time.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;

use tokio::sync::{mpsc, oneshot};

use super::handoff::{Handoff, Waiting};
use super::listen::Port;
use super::reload::ReloadStep;
use super::slots::{Slot, State};
use super::{ClusterConfig, ClusterEvent, WorkerFactory, WorkerInfo};
use crate::error::Result;
use crate::events::{ExitCause, ExitStatus};
use crate::messenger::Envelope;
use crate::policy::RestartState;
use crate::process::Inbound;
use crate::protocol::{Ctl, Mode};

/// Commands from the handle and helper tasks.
pub(super) enum Cmd {
    Spawn {
        index: usize,
        /// The reload's old worker this start replaces.
        replacing: Option<u64>,
        reply: oneshot::Sender<Result<u64>>,
    },
    SpawnAgent(oneshot::Sender<Result<u64>>),
    Agent(oneshot::Sender<Option<u32>>),
    Retire {
        id: u64,
        reply: oneshot::Sender<()>,
    },
    Info(oneshot::Sender<Vec<(u64, WorkerInfo)>>),
    Reload(oneshot::Sender<Result<()>>),
    ReloadDone,
    Scale {
        workers: usize,
        reply: oneshot::Sender<Result<()>>,
    },
    ScaleDone,
    Shutdown(oneshot::Sender<()>),
    Send(Envelope),
}

/// Everything the cluster's task reacts to.
pub(super) enum Input {
    Worker(u64, Inbound),
    Exited {
        id: u64,
        status: ExitStatus,
        killed: bool,
    },
    Conn(std::net::TcpStream),
    /// Worker `id`'s answer to the frame `seq`.
    Handoff(u64, u64, Handoff),
    ReadyTimeout(u64),
    RestartDue(usize),
    AgentRestartDue,
    Cmd(Cmd),
}

/// The cluster's task's state: every member's slot and what the cluster is doing.
pub(super) struct Actor {
    pub(super) config: ClusterConfig,
    pub(super) workers_wanted: usize,
    pub(super) command: WorkerFactory,
    pub(super) agent: Option<crate::CommandFactory>,
    pub(super) listener: Option<std::net::TcpListener>,
    pub(super) _hold: Option<tokio::net::TcpSocket>,
    /// The task accepting connections (round-robin); aborted to stop accepting.
    pub(super) acceptor: Option<tokio::task::AbortHandle>,
    pub(super) addr: SocketAddr,
    pub(super) slots: BTreeMap<u64, Slot>,
    pub(super) next_id: u64,
    pub(super) next_seq: u64,
    pub(super) restarts: HashMap<usize, RestartState>,
    pub(super) inputs: mpsc::UnboundedSender<Input>,
    pub(super) events: mpsc::UnboundedSender<ClusterEvent>,
    /// Round-robin: ready workers with no hand-off in flight, in turn order.
    pub(super) free: VecDeque<u64>,
    /// Round-robin: accepted connections waiting for a free worker.
    pub(super) queued: VecDeque<Waiting>,
    /// Round-robin: the workers that refused each connection in flight (by the
    /// hand-off's sequence number), for those some worker refused already.
    pub(super) offered: HashMap<u64, Vec<u64>>,
    pub(super) reloading: bool,
    /// A [`scale`](super::Cluster::scale) runs.
    pub(super) scaling: bool,
    pub(super) shutdown: Option<Vec<oneshot::Sender<()>>>,
    /// Index -> the fatal worker its next start replaces.
    pub(super) pending_replaces: HashMap<usize, u64>,
    /// The reload's current step: old worker `old` is being replaced by `new`.
    pub(super) reload_step: Option<ReloadStep>,
    pub(super) told_systemd: bool,
}

impl Drop for Actor {
    fn drop(&mut self) {
        // A dropped cluster stops accepting at once, not at the next connection.
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.abort();
        }
    }
}

impl Actor {
    /// The task's state for a cluster on `port`, before any member is started.
    pub(super) fn new(
        config: ClusterConfig,
        command: WorkerFactory,
        agent: Option<crate::CommandFactory>,
        port: Port,
        acceptor: Option<tokio::task::AbortHandle>,
        inputs: mpsc::UnboundedSender<Input>,
        events: mpsc::UnboundedSender<ClusterEvent>,
    ) -> Actor {
        Actor {
            workers_wanted: config.workers,
            config: ClusterConfig {
                mode: port.mode,
                ..config
            },
            command,
            agent,
            listener: port.listener,
            _hold: port.hold,
            acceptor,
            addr: port.addr,
            slots: BTreeMap::new(),
            next_id: 1,
            next_seq: 1,
            restarts: HashMap::new(),
            inputs,
            events,
            free: VecDeque::new(),
            queued: VecDeque::new(),
            offered: HashMap::new(),
            reloading: false,
            scaling: false,
            shutdown: None,
            pending_replaces: HashMap::new(),
            reload_step: None,
            told_systemd: false,
        }
    }

    /// Handle inputs until the cluster has shut down (or every sender is gone).
    pub(super) async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Input>) {
        while let Some(input) = inbox.recv().await {
            match input {
                Input::Worker(id, msg) => self.on_worker(id, msg),
                Input::Exited { id, status, killed } => self.on_exit(id, status, killed),
                Input::Conn(stream) => {
                    if self.shutdown.is_none() {
                        self.queued.push_back(Waiting::new(stream));
                        self.dispatch();
                    }
                }
                Input::Handoff(id, seq, outcome) => self.on_handoff(id, seq, outcome),
                Input::ReadyTimeout(id) => self.on_ready_timeout(id),
                Input::RestartDue(index) => {
                    // An index the cluster scaled away meanwhile is not restarted.
                    if self.shutdown.is_none() && index < self.workers_wanted {
                        let replaces = self.pending_replaces.remove(&index);
                        if let Err(e) = self.spawn(index, None, replaces).await {
                            tracing::error!(index, "could not restart worker: {e}");
                            self.emit(ClusterEvent::Errored { index });
                        }
                    }
                }
                Input::AgentRestartDue => {
                    if self.shutdown.is_none() {
                        if let Err(e) = self.spawn_member(0, None, None, true).await {
                            tracing::error!("could not restart the agent: {e}");
                        }
                    }
                }
                Input::Cmd(cmd) => self.on_cmd(cmd).await,
            }
            if self.shutdown_finished() {
                return;
            }
        }
    }

    pub(super) fn emit(&self, event: ClusterEvent) {
        match &event {
            // Logged where they are handled.
            ClusterEvent::Message(_) | ClusterEvent::Fatal { .. } => {}
            ClusterEvent::Exited { cause, .. } if *cause == ExitCause::Crashed => {
                tracing::warn!(?event, "cluster")
            }
            _ => tracing::info!(?event, "cluster"),
        }
        let _ = self.events.send(event);
    }

    pub(super) fn on_worker(&mut self, id: u64, msg: Inbound) {
        let Inbound::Ctl(ctl) = msg else {
            tracing::debug!(id, "a frame that is no control message, ignored");
            return;
        };
        match ctl {
            Ctl::Ready => self.on_ready(id),
            // Round-robin: the primary counts the hand-offs the worker took; its own
            // report of the same connections would count them twice.
            Ctl::Accepted { total } if self.config.mode != Mode::RoundRobin => {
                if let Some(slot) = self.slots.get_mut(&id) {
                    slot.connections = total;
                }
            }
            Ctl::Accepted { .. } => {}
            Ctl::Fatal { error } => self.on_fatal(id, error),
            Ctl::Msg(envelope) => self.route(id, envelope),
            other => tracing::debug!(id, ?other, "unexpected control message from a worker"),
        }
    }

    pub(super) async fn on_cmd(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Spawn {
                index,
                replacing,
                reply,
            } => self.start_replacement(index, replacing, reply).await,
            Cmd::SpawnAgent(reply) => {
                let _ = self.spawn_member(0, Some(reply), None, true).await;
            }
            Cmd::Agent(reply) => {
                let _ = reply.send(self.agent_pid());
            }
            Cmd::Retire { id, reply } => self.retire(id, reply),
            Cmd::Info(reply) => {
                let _ = reply.send(self.info());
            }
            Cmd::Reload(reply) => self.begin_reload(reply),
            Cmd::ReloadDone => self.end_reload(),
            Cmd::Scale { workers, reply } => self.begin_scale(workers, reply).await,
            Cmd::ScaleDone => self.end_scale(),
            Cmd::Shutdown(reply) => self.begin_shutdown(reply),
            Cmd::Send(envelope) => self.deliver(envelope),
        }
    }

    /// The live workers (not leaving, not the agent), by slot id.
    fn info(&self) -> Vec<(u64, WorkerInfo)> {
        self.slots
            .iter()
            .filter(|(_, s)| !matches!(s.state, State::Leaving(_)) && !s.agent)
            .map(|(id, s)| {
                (
                    *id,
                    WorkerInfo {
                        index: s.index,
                        pid: s.pid,
                        ready: s.state == State::Ready,
                        connections: s.connections,
                        refused: s.refused,
                    },
                )
            })
            .collect()
    }
}
