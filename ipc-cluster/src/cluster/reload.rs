//! Rolling reload: for each worker in turn, its replacement is started and must be
//! ready before the old worker is retired (drained); a replacement that fails aborts
//! the reload and keeps the old worker. One reload at a time.

use tokio::sync::{mpsc, oneshot};

use super::actor::{Actor, Cmd, Input};
use super::gone;
use super::listen::warn_if_reuseport_reload_may_reset;
use super::slots::State;
use crate::error::{Error, Result};
use crate::events::ExitCause;
use crate::protocol::{Ctl, Mode};

/// One step of a rolling reload, as the cluster's task sees it.
#[derive(Clone, Copy)]
pub(super) struct ReloadStep {
    pub(super) old: u64,
    pub(super) new: u64,
    /// The old worker died while `new` was starting: `new` took its index over.
    pub(super) old_died: bool,
    /// The old worker reported a fatal error while `new` was starting: `new` is its
    /// replacement.
    pub(super) old_fatal: bool,
}

/// The rolling reload, worker after worker, through the cluster's task.
pub(super) async fn reload(
    plan: Vec<(usize, u64)>,
    inputs: mpsc::UnboundedSender<Input>,
    reply: oneshot::Sender<Result<()>>,
) {
    let result = async {
        for (index, old) in plan {
            let (ready_tx, ready) = oneshot::channel();
            inputs
                .send(Input::Cmd(Cmd::Spawn {
                    index,
                    replacing: Some(old),
                    reply: ready_tx,
                }))
                .map_err(|_| gone())?;
            match ready.await {
                // The old worker is gone already and the restart policy replaces it.
                Ok(Ok(new)) if new == old => continue,
                Ok(Ok(_new)) => {}
                Ok(Err(e)) => {
                    return Err(Error::ReloadAborted(format!(
                        "the replacement of worker {index} failed: {e}"
                    )))
                }
                Err(_) => return Err(gone()),
            }
            let (gone_tx, gone_rx) = oneshot::channel();
            inputs
                .send(Input::Cmd(Cmd::Retire {
                    id: old,
                    reply: gone_tx,
                }))
                .map_err(|_| gone())?;
            let _ = gone_rx.await;
        }
        Ok(())
    }
    .await;
    let _ = inputs.send(Input::Cmd(Cmd::ReloadDone));
    let _ = reply.send(result);
}

impl Actor {
    /// Start the replacement of worker `index`; during a reload (`replacing` the old
    /// worker's id), this is the reload's current step.
    pub(super) async fn start_replacement(
        &mut self,
        index: usize,
        replacing: Option<u64>,
        reply: oneshot::Sender<Result<u64>>,
    ) {
        if self.shutdown.is_some() {
            let _ = reply.send(Err(gone()));
            return;
        }
        if let Some(old) = replacing {
            if self.slots.get(&old).map(|s| s.state) != Some(State::Ready) {
                // The old worker crashed (or went fatal) before the reload got
                // here: the restart policy replaces it, with the new command.
                let _ = reply.send(Ok(old));
                return;
            }
        }
        let started = self.spawn(index, Some(reply), None).await;
        if let (Some(old), Ok(new)) = (replacing, started) {
            self.reload_step = Some(ReloadStep {
                old,
                new,
                old_died: false,
                old_fatal: false,
            });
        }
    }

    /// The reload's replacement of `id` is ready: `id` drains and leaves; `reply`
    /// once it is gone.
    pub(super) fn retire(&mut self, id: u64, reply: oneshot::Sender<()>) {
        if self.reload_step.is_some_and(|step| step.old == id) {
            self.reload_step = None;
        }
        let Some(slot) = self.slots.get_mut(&id) else {
            let _ = reply.send(());
            return;
        };
        slot.gone_reply = Some(reply);
        let deadline = self.config.drain_timeout;
        self.make_leave(id, Ctl::Drain, ExitCause::Stopped, deadline);
    }

    /// Start a rolling reload of the ready workers, in index order (refused while
    /// another one runs or the cluster shuts down).
    pub(super) fn begin_reload(&mut self, reply: oneshot::Sender<Result<()>>) {
        if self.reloading {
            let _ = reply.send(Err(Error::ReloadAborted(
                "another reload is running (one at a time)".into(),
            )));
            return;
        }
        if self.scaling {
            let _ = reply.send(Err(Error::ReloadAborted(
                "the cluster is scaling: reload once the scale is done".into(),
            )));
            return;
        }
        if self.shutdown.is_some() {
            let _ = reply.send(Err(gone()));
            return;
        }
        self.reloading = true;
        if self.config.mode == Mode::ReusePort {
            warn_if_reuseport_reload_may_reset();
        }
        let mut plan: Vec<(usize, u64)> = self
            .slots
            .iter()
            .filter(|(_, s)| s.state == State::Ready && !s.agent)
            .map(|(id, s)| (s.index, *id))
            .collect();
        plan.sort();
        tokio::spawn(reload(plan, self.inputs.clone(), reply));
    }

    /// The reload finished (or was aborted).
    pub(super) fn end_reload(&mut self) {
        self.reloading = false;
        self.reload_step = None;
    }
}
