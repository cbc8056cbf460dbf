//! Scaling a running cluster: more workers (new indexes, each started and awaited
//! until ready, like the cluster's start) or fewer (the highest indexes retire,
//! drained like a reload's old worker). One change at a time: no scaling during a
//! reload or another scale.

use std::collections::BTreeSet;

use tokio::sync::{mpsc, oneshot};

use super::actor::{Actor, Cmd, Input};
use super::gone;
use super::slots::State;
use crate::error::{Error, Result};
use crate::events::ExitCause;
use crate::protocol::Ctl;

impl Actor {
    /// Go to `workers` workers; `reply` once the new ones are ready and the retired
    /// ones are gone (or with the first new worker's failure).
    pub(super) async fn begin_scale(&mut self, workers: usize, reply: oneshot::Sender<Result<()>>) {
        if workers == 0 {
            let _ = reply.send(Err(Error::State(
                "a cluster keeps at least one worker: scale to 1 or more, or shut it down".into(),
            )));
            return;
        }
        if self.shutdown.is_some() {
            let _ = reply.send(Err(gone()));
            return;
        }
        if self.reloading || self.scaling {
            let _ = reply.send(Err(Error::State(
                "a reload or another scale is running: scale again once it is done".into(),
            )));
            return;
        }
        self.scaling = true;
        let before = self.workers_wanted;
        self.workers_wanted = workers;
        let live: BTreeSet<usize> = self
            .slots
            .values()
            .filter(|s| !s.agent && !matches!(s.state, State::Leaving(_)))
            .map(|s| s.index)
            .collect();
        // Fewer: the highest indexes drain and leave; nobody restarts them.
        let mut gone_waits = Vec::new();
        let retiring: Vec<u64> = self
            .slots
            .iter()
            .filter(|(_, s)| {
                !s.agent && s.index >= workers && !matches!(s.state, State::Leaving(_))
            })
            .map(|(id, _)| *id)
            .collect();
        self.pending_replaces.retain(|index, _| *index < workers);
        self.restarts.retain(|index, _| *index < workers);
        let deadline = self.config.drain_timeout;
        for id in retiring {
            let (gone_tx, gone_rx) = oneshot::channel();
            if let Some(slot) = self.slots.get_mut(&id) {
                slot.gone_reply = Some(gone_tx);
            }
            gone_waits.push(gone_rx);
            self.make_leave(id, Ctl::Drain, ExitCause::Stopped, deadline);
        }
        // More: the new indexes start; the scale waits until they are ready.
        let mut ready_waits = Vec::new();
        for index in before..workers {
            if live.contains(&index) {
                continue;
            }
            let (ready_tx, ready_rx) = oneshot::channel();
            ready_waits.push(ready_rx);
            // A start that fails answers `ready_tx` itself.
            let _ = self.spawn(index, Some(ready_tx), None).await;
        }
        tracing::info!(from = before, to = workers, "scaling the cluster");
        // Connections some workers refused may now have nobody else to go to.
        self.dispatch();
        tokio::spawn(finish_scale(
            ready_waits,
            gone_waits,
            self.inputs.clone(),
            reply,
        ));
    }

    /// The scale finished (or failed).
    pub(super) fn end_scale(&mut self) {
        self.scaling = false;
    }
}

/// Wait for every new worker to be ready and every retired one to be gone, then
/// tell the cluster's task and the caller.
async fn finish_scale(
    ready_waits: Vec<oneshot::Receiver<Result<u64>>>,
    gone_waits: Vec<oneshot::Receiver<()>>,
    inputs: mpsc::UnboundedSender<Input>,
    reply: oneshot::Sender<Result<()>>,
) {
    let mut failure = None;
    for ready in ready_waits {
        match ready.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(_) => failure = failure.or(Some(gone())),
        }
    }
    for gone_rx in gone_waits {
        let _ = gone_rx.await;
    }
    let _ = inputs.send(Input::Cmd(Cmd::ScaleDone));
    let _ = reply.send(failure.map_or(Ok(()), Err));
}
