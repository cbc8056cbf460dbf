//! The primary's slot for each member process (a worker or the agent): starting
//! it with its reader, writer and lifecycle tasks, writing to it, asking it to leave.

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::actor::{Actor, Input};
use super::handoff::{write_loop, Outgoing};
use super::ClusterEvent;
use crate::config::ControlChannel;
use crate::error::{Error, Result};
use crate::events::{ExitCause, ExitStatus};
use crate::launch::launch;
use crate::process::{self, Inbound};
use crate::protocol::{Ctl, Mode};
use crate::worker::{IPC_WORKER_INDEX, NODE_APP_INSTANCE};

/// Where a member is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    Starting,
    Ready,
    /// Reported a fatal error; its replacement is on its way.
    Fatal,
    /// Asked to drain (reload, shutdown) or to exit (released after a fatal error,
    /// not ready in time): it goes away.
    Leaving(ExitCause),
}

/// What the primary holds for one member process.
pub(super) struct Slot {
    /// The agent (not a worker: no connections, no index).
    pub(super) agent: bool,
    pub(super) index: usize,
    pub(super) pid: u32,
    pub(super) out: mpsc::UnboundedSender<Outgoing>,
    pub(super) state: State,
    pub(super) connections: u64,
    /// Connections it refused (round-robin).
    pub(super) refused: u64,
    pub(super) started: Instant,
    pub(super) stop: Option<oneshot::Sender<Duration>>,
    /// The worker this one replaces once ready (a fatal error's replacement).
    pub(super) replaces: Option<u64>,
    /// Someone waits for this worker to be ready.
    pub(super) ready_reply: Option<oneshot::Sender<Result<u64>>>,
    /// Someone waits for this worker to be gone.
    pub(super) gone_reply: Option<oneshot::Sender<()>>,
    /// The task that owns the worker's `Child`.
    pub(super) lifecycle: tokio::task::AbortHandle,
}

impl Drop for Slot {
    fn drop(&mut self) {
        // A slot goes away once its process exited, or when the cluster is dropped:
        // then the `Child` goes with the task, which kills its group.
        self.lifecycle.abort();
    }
}

impl Actor {
    /// Start worker `index`; `reply` gets its id once it is ready (or the failure).
    pub(super) async fn spawn(
        &mut self,
        index: usize,
        reply: Option<oneshot::Sender<Result<u64>>>,
        replaces: Option<u64>,
    ) -> Result<u64> {
        self.spawn_member(index, reply, replaces, false).await
    }

    /// Start worker `index`, or the agent.
    pub(super) async fn spawn_member(
        &mut self,
        index: usize,
        reply: Option<oneshot::Sender<Result<u64>>>,
        replaces: Option<u64>,
        agent: bool,
    ) -> Result<u64> {
        let command = match (&self.agent, agent) {
            (Some(factory), true) => {
                let mut command = factory();
                command
                    .env(crate::worker::IPC_CLUSTER_ROLE, "agent")
                    .env_remove(IPC_WORKER_INDEX)
                    .env_remove(NODE_APP_INSTANCE);
                command
            }
            _ => {
                let mut command = (self.command)(index);
                command
                    .env(crate::worker::IPC_CLUSTER_ROLE, "worker")
                    .env(IPC_WORKER_INDEX, index.to_string())
                    .env(NODE_APP_INSTANCE, index.to_string());
                command
            }
        };
        let launched = match launch(command, ControlChannel::Uds, false).await {
            Ok(launched) => launched,
            Err(e) => {
                if let Some(reply) = reply {
                    let _ = reply.send(Err(Error::State(format!(
                        "could not start worker {index}: {e}"
                    ))));
                }
                return Err(e);
            }
        };
        let crate::launch::Launched {
            mut child,
            tx,
            rx,
            started,
            ..
        } = launched;
        let id = self.next_id;
        self.next_id += 1;
        let pid = child.pid();
        let (Some(tx), Some(rx)) = (tx, rx) else {
            return Err(Error::State(
                "a cluster worker needs a control channel".into(),
            ));
        };
        // Reader: acknowledgements go to the writer, the rest to us.
        let (ack_tx, acks) = mpsc::unbounded_channel();
        let mut inbound = process::spawn_reader(rx);
        let inputs = self.inputs.clone();
        // Dropped when the channel has been read to its end.
        let (read_all, channel_done) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _read_all = read_all;
            while let Some(msg) = inbound.recv().await {
                if let Inbound::Ctl(Ctl::Ack { seq, taken }) = msg {
                    let _ = ack_tx.send((seq, taken));
                } else if inputs.send(Input::Worker(id, msg)).is_err() {
                    return;
                }
            }
        });
        let (out, queue) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(id, tx, queue, acks, self.inputs.clone()));
        // Lifecycle: wait for the exit, or for a stop with a deadline, then SIGKILL.
        let (stop, stop_rx) = oneshot::channel::<Duration>();
        let inputs = self.inputs.clone();
        let lifecycle = tokio::spawn(async move {
            let (status, killed) = tokio::select! {
                status = process::exited(&mut child) => (status, false),
                Ok(deadline) = stop_rx => {
                    match tokio::time::timeout(deadline, child.wait()).await {
                        Ok(status) => {
                            crate::tree_guard::sweep(child.pid());
                            (status.map(ExitStatus::from_std).unwrap_or(ExitStatus::Code(-1)), false)
                        }
                        Err(_) => {
                            tracing::warn!(pid = child.pid(), "did not exit within {deadline:?}: SIGKILL to its group");
                            let _ = child.kill();
                            (process::exited(&mut child).await, true)
                        }
                    }
                }
            };
            // Messages sent just before the exit come first: the channel is read to
            // its end (bounded, a grandchild may hold the worker's end open).
            let _ = tokio::time::timeout(Duration::from_secs(1), channel_done).await;
            let _ = inputs.send(Input::Exited { id, status, killed });
        })
        .abort_handle();
        // Where its connections come from.
        let seq = self.seq();
        let listen = Ctl::Listen {
            seq,
            mode: self.config.mode,
            addr: self.addr.to_string(),
        };
        let fd = match (&self.listener, self.config.mode) {
            (Some(listener), Mode::Shared) => Some(OwnedFd::from(listener.try_clone()?)),
            _ => None,
        };
        if !agent {
            let _ = out.send(Outgoing {
                frame: listen.encode(),
                seq,
                fd,
                report: false,
            });
        }
        let timeout = self.config.supervise.listen_timeout;
        let inputs = self.inputs.clone();
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            let _ = inputs.send(Input::ReadyTimeout(id));
        });
        self.slots.insert(
            id,
            Slot {
                agent,
                index,
                pid,
                out,
                state: State::Starting,
                connections: 0,
                refused: 0,
                started,
                stop: Some(stop),
                replaces,
                ready_reply: reply,
                gone_reply: None,
                lifecycle,
            },
        );
        if !agent {
            self.emit(ClusterEvent::Starting { index, pid });
        }
        Ok(id)
    }

    pub(super) fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    pub(super) fn send_to(&self, id: u64, ctl: &Ctl) {
        if let Some(slot) = self.slots.get(&id) {
            let _ = slot.out.send(Outgoing {
                frame: ctl.encode(),
                seq: 0,
                fd: None,
                report: false,
            });
        }
    }

    /// Ask worker `id` to go: `ctl` (drain, shutdown or release), then SIGKILL after
    /// `deadline`. A worker that reported a fatal error is released instead of
    /// drained (its `fatal` call returns), and its exit counts as the one it asked for.
    pub(super) fn make_leave(&mut self, id: u64, ctl: Ctl, cause: ExitCause, deadline: Duration) {
        let fatal = self.slots.get(&id).map(|s| s.state) == Some(State::Fatal);
        let (ctl, cause) = match ctl {
            Ctl::Drain if fatal => (Ctl::Release, ExitCause::Announced),
            ctl => (ctl, cause),
        };
        self.send_to(id, &ctl);
        self.free.retain(|f| *f != id);
        if let Some(slot) = self.slots.get_mut(&id) {
            slot.state = State::Leaving(cause);
            if let Some(stop) = slot.stop.take() {
                let _ = stop.send(deadline);
            }
        }
    }
}
