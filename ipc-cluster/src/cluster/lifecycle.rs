//! A worker's life as the primary sees it: ready (or not in time), a fatal report
//! (the "suicide" pattern: replaced before it leaves), its exit, and the restart
//! policy's decision; the agent's exit and restart.

use super::actor::{Actor, Input};
use super::slots::{Slot, State};
use super::ClusterEvent;
use crate::error::Error;
use crate::events::{ExitCause, ExitStatus};
use crate::policy::Decision;
use crate::protocol::{Ctl, Mode};

impl Actor {
    pub(super) fn on_ready(&mut self, id: u64) {
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        if slot.state != State::Starting {
            return;
        }
        slot.state = State::Ready;
        let (index, pid, replaces) = (slot.index, slot.pid, slot.replaces.take());
        if let Some(reply) = slot.ready_reply.take() {
            let _ = reply.send(Ok(id));
        }
        if slot.agent {
            self.emit(ClusterEvent::AgentReady { pid });
            self.announce_members();
            return;
        }
        self.emit(ClusterEvent::Ready { index, pid });
        if self.config.mode == Mode::RoundRobin {
            self.free.push_back(id);
            self.dispatch();
        }
        if let Some(old) = replaces {
            // The fatal worker's replacement serves: now the old one may go.
            let deadline = self.config.drain_timeout;
            self.make_leave(old, Ctl::Release, ExitCause::Announced, deadline);
        }
        self.announce_members();
        let ready = self
            .slots
            .values()
            .filter(|s| s.state == State::Ready && !s.agent)
            .count();
        if !self.told_systemd && ready >= self.workers_wanted {
            self.told_systemd = true;
            match crate::notify::notify_ready() {
                Ok(true) => tracing::info!("told NOTIFY_SOCKET: READY=1"),
                Ok(false) => {}
                Err(e) => tracing::warn!("NOTIFY_SOCKET: {e}"),
            }
        }
    }

    pub(super) fn on_ready_timeout(&mut self, id: u64) {
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        if slot.state != State::Starting {
            return;
        }
        let waited = self.config.supervise.listen_timeout;
        tracing::warn!(
            pid = slot.pid,
            index = slot.index,
            "worker not ready within listen_timeout ({waited:?}): a failed start"
        );
        if let Some(reply) = slot.ready_reply.take() {
            let _ = reply.send(Err(Error::NotReady {
                pid: slot.pid,
                waited,
            }));
        }
        let deadline = self.config.supervise.kill_timeout;
        self.make_leave(id, Ctl::Shutdown, ExitCause::NotReady, deadline);
    }

    pub(super) fn on_fatal(&mut self, id: u64, error: String) {
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        let (index, pid) = (slot.index, slot.pid);
        match slot.state {
            State::Leaving(_) => {
                // Retired already (a reload or shutdown drains it; its replacement, if
                // any, is counted): it goes, nobody replaces it again. Released, so
                // its `fatal` call returns.
                tracing::warn!(
                    pid,
                    index,
                    "worker reports a fatal error ({error}) while it leaves: no replacement"
                );
                self.send_to(id, &Ctl::Release);
                return;
            }
            State::Fatal => {
                tracing::debug!(pid, index, "a second fatal report ({error}), ignored");
                return;
            }
            State::Starting | State::Ready => slot.state = State::Fatal,
        }
        tracing::warn!(
            pid,
            index,
            "worker reports a fatal error ({error}): starting its replacement"
        );
        self.emit(ClusterEvent::Fatal { index, pid, error });
        self.free.retain(|f| *f != id);
        if let Some(step) = &mut self.reload_step {
            if step.old == id && self.slots.contains_key(&step.new) {
                // The reload's replacement in flight replaces it (the reload retires it
                // once that one is ready); if that one fails, the policy replaces it.
                step.old_fatal = true;
                return;
            }
        }
        let inputs = self.inputs.clone();
        self.pending_replaces.insert(index, id);
        let _ = inputs.send(Input::RestartDue(index));
    }

    pub(super) fn on_exit(&mut self, id: u64, status: ExitStatus, killed: bool) {
        let Some(mut slot) = self.slots.remove(&id) else {
            return;
        };
        self.free.retain(|f| *f != id);
        let cause = match slot.state {
            State::Leaving(_) if killed => ExitCause::Killed,
            State::Leaving(cause) => cause,
            _ => ExitCause::Crashed,
        };
        let (index, pid) = (slot.index, slot.pid);
        if slot.agent {
            self.on_agent_exit(slot, status, cause);
            return;
        }
        self.emit(ClusterEvent::Exited {
            index,
            pid,
            status,
            cause,
        });
        // A start somebody waits for (the cluster's start, a reload) fails to them.
        let start_awaited = slot.ready_reply.is_some();
        if let Some(reply) = slot.ready_reply.take() {
            let _ = reply.send(Err(Error::ExitedBeforeReady {
                pid,
                status: status.to_string(),
            }));
        }
        if let Some(reply) = slot.gone_reply.take() {
            let _ = reply.send(());
        }
        self.announce_members();
        // During a reload step, the replacement takes the index over from an old
        // worker that dies; if the replacement then fails, the policy decides.
        let (mut taken_over, mut orphaned) = (false, false);
        if let Some(step) = &mut self.reload_step {
            if step.old == id {
                step.old_died = true;
                taken_over = self.slots.contains_key(&step.new);
            } else if step.new == id {
                orphaned = step.old_died || step.old_fatal;
                if step.old_fatal && !step.old_died {
                    // The fatal old worker still serves: the policy's start replaces it.
                    self.pending_replaces.insert(index, step.old);
                }
            }
        }
        if taken_over {
            tracing::info!(index, "the reload's replacement takes over: no restart");
        }
        let replace = self.shutdown.is_none()
            && !taken_over
            && match slot.state {
                _ if orphaned => true,
                // Crashed, or a fatal worker that died before its replacement was ready.
                State::Ready | State::Fatal => true,
                // A failed start that nobody waits for (a restart): the policy decides.
                // One that somebody waits for is theirs: an aborted reload keeps the
                // old worker, so restarting the index too would leave one too many.
                State::Starting => !start_awaited,
                State::Leaving(ExitCause::NotReady) => {
                    slot.ready_reply.is_none() && !self.reloading
                }
                State::Leaving(_) => false,
            };
        if !replace {
            return;
        }
        if let Some(old) = slot.replaces {
            self.pending_replaces.insert(index, old);
        }
        let state = self.restarts.entry(index).or_default();
        let decision = state.decide(
            &self.config.supervise,
            status,
            cause,
            slot.started.elapsed(),
        );
        match decision {
            Decision::Restart { delay, .. } => {
                self.emit(ClusterEvent::Restarting { index, delay });
                let inputs = self.inputs.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = inputs.send(Input::RestartDue(index));
                });
            }
            Decision::Errored { .. } => self.emit(ClusterEvent::Errored { index }),
            Decision::Stop => {}
        }
    }

    pub(super) fn on_agent_exit(&mut self, mut slot: Slot, status: ExitStatus, cause: ExitCause) {
        let pid = slot.pid;
        self.emit(ClusterEvent::AgentExited { pid, status, cause });
        if let Some(reply) = slot.ready_reply.take() {
            // Still starting: the cluster's start fails fast.
            let _ = reply.send(Err(Error::ExitedBeforeReady {
                pid,
                status: status.to_string(),
            }));
            return;
        }
        if let Some(reply) = slot.gone_reply.take() {
            let _ = reply.send(());
        }
        self.announce_members();
        if self.shutdown.is_some() || matches!(slot.state, State::Leaving(_)) {
            return;
        }
        let delay = self.config.agent_restart_delay;
        self.emit(ClusterEvent::AgentRestarting { delay });
        let inputs = self.inputs.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = inputs.send(Input::AgentRestartDue);
        });
    }
}
