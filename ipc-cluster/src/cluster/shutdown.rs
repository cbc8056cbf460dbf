//! Graceful shutdown of the whole cluster: stop accepting, drain every member
//! (bounded by `drain_timeout`, then SIGKILL), and answer once all are gone.

use tokio::sync::oneshot;

use super::actor::Actor;
use super::slots::State;
use crate::events::ExitCause;
use crate::protocol::Ctl;

impl Actor {
    /// Stop accepting and ask every member to drain; `reply` once all are gone.
    pub(super) fn begin_shutdown(&mut self, reply: oneshot::Sender<()>) {
        let waiters = self.shutdown.get_or_insert_with(Vec::new);
        waiters.push(reply);
        // Stop accepting: our copy of the listener goes, and so does the acceptor's
        // (round-robin), so new connections are refused, not accepted and dropped.
        self.listener = None;
        self._hold = None;
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.abort();
        }
        self.queued.clear();
        let deadline = self.config.drain_timeout;
        let ids: Vec<u64> = self.slots.keys().copied().collect();
        for id in ids {
            if !matches!(
                self.slots.get(&id).map(|s| s.state),
                Some(State::Leaving(_))
            ) {
                self.make_leave(id, Ctl::Drain, ExitCause::Stopped, deadline);
            }
        }
    }

    /// During a shutdown, once every member is gone: answer the waiters. True when
    /// the cluster's task is done.
    pub(super) fn shutdown_finished(&mut self) -> bool {
        let Some(waiters) = &mut self.shutdown else {
            return false;
        };
        if !self.slots.is_empty() {
            return false;
        }
        for waiter in waiters.drain(..) {
            let _ = waiter.send(());
        }
        true
    }
}
