//! What the supervisor and the cluster do with one started process: read its control
//! channel into a queue, wait until it says it is ready, stop it gracefully (then
//! SIGKILL its whole group), and sweep its group once it is gone.

use std::time::Duration;

use futures_util::StreamExt;
use ipc_core::{Child, RecvHalf, Signal};
use tokio::sync::mpsc;

use crate::config::{StopWith, WaitReady};
use crate::events::{ExitCause, ExitStatus, ReadyVia};
use crate::launch::ControlSender;
use crate::notify::NotifySocket;
use crate::protocol::Ctl;

/// What the reader of a control channel passes on.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A control message.
    Ctl(Ctl),
    /// A frame that is no control message (the program's own).
    Other(bytes::Bytes),
}

/// Read `rx` until it ends, passing every frame on; the queue closes at the end.
pub(crate) fn spawn_reader(mut rx: Box<dyn RecvHalf>) -> mpsc::UnboundedReceiver<Inbound> {
    let (tx, queue) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(item) = rx.next().await {
            match item {
                Ok(frame) => {
                    let inbound = match Ctl::decode(&frame) {
                        Some(ctl) => Inbound::Ctl(ctl),
                        None => Inbound::Other(frame),
                    };
                    if tx.send(inbound).is_err() {
                        return;
                    }
                }
                Err(e) if e.is_rejected() => tracing::warn!("control channel: {e}"),
                Err(e) => {
                    tracing::debug!("control channel ended: {e}");
                    break;
                }
            }
        }
    });
    queue
}

/// Wait for the first ready signal `wait` accepts, from the notify socket or the
/// control messages (other control messages are handed to `other`). `None` when no
/// source can say it any more.
pub(crate) async fn wait_ready(
    wait: WaitReady,
    notify: Option<&mut NotifySocket>,
    inbound: &mut Option<mpsc::UnboundedReceiver<Inbound>>,
    mut other: impl FnMut(Inbound),
) -> Option<ReadyVia> {
    let wants_message = matches!(wait, WaitReady::Message | WaitReady::Any);
    let mut notify = notify.filter(|_| matches!(wait, WaitReady::Notify | WaitReady::Any));
    loop {
        let reading = wants_message && inbound.is_some();
        if !reading && notify.is_none() {
            // Nothing left that could say ready; wait forever (the caller's timeout
            // and exit watch decide).
            std::future::pending::<()>().await;
        }
        tokio::select! {
            got = async { notify.as_mut().map(|n| n.ready()) .expect("guarded").await }, if notify.is_some() => {
                match got {
                    Ok(()) => return Some(ReadyVia::Notify),
                    Err(e) => {
                        tracing::warn!("notify socket: {e}");
                        notify = None;
                    }
                }
            }
            msg = async { inbound.as_mut().expect("guarded").recv().await }, if reading => {
                match msg {
                    Some(Inbound::Ctl(Ctl::Ready)) => return Some(ReadyVia::Message),
                    Some(other_msg) => other(other_msg),
                    None => *inbound = None,
                }
            }
        }
    }
}

/// Ask `child` to stop (`stop_with`), give it `kill_timeout`, then SIGKILL its group.
/// Returns how it ended and whether it had to be killed.
pub(crate) async fn stop(
    child: &mut Child,
    tx: Option<&mut ControlSender>,
    stop_with: StopWith,
    kill_timeout: Duration,
) -> (ExitStatus, ExitCause) {
    let pid = child.pid();
    let asked = match (stop_with, tx) {
        (StopWith::Message, Some(tx)) => tx.send(Ctl::Shutdown.encode(), None).await.is_ok(),
        _ => false,
    };
    if !asked {
        let signal = match stop_with {
            StopWith::Signal(signal) => signal,
            StopWith::Message => Signal::SIGINT,
        };
        tracing::debug!(pid, signal = signal.as_str(), "asking to stop");
        if let Err(e) = child.signal_group(signal) {
            tracing::warn!(pid, "could not signal: {e}");
        }
    }
    let (status, cause) = match tokio::time::timeout(kill_timeout, child.wait()).await {
        Ok(Ok(status)) => (ExitStatus::from_std(status), ExitCause::Stopped),
        Ok(Err(e)) => {
            tracing::warn!(pid, "waiting for the process: {e}");
            (ExitStatus::Code(-1), ExitCause::Stopped)
        }
        Err(_) => {
            tracing::warn!(
                pid,
                "did not stop within kill_timeout ({kill_timeout:?}): SIGKILL to its group"
            );
            let _ = child.kill();
            let status = child
                .wait()
                .await
                .map(ExitStatus::from_std)
                .unwrap_or(ExitStatus::Signal(9));
            (status, ExitCause::Killed)
        }
    };
    crate::tree_guard::sweep(pid);
    (status, cause)
}

/// Wait for `child` to exit on its own; then sweep what is left of its group.
pub(crate) async fn exited(child: &mut Child) -> ExitStatus {
    let status = child
        .wait()
        .await
        .map(ExitStatus::from_std)
        .unwrap_or(ExitStatus::Code(-1));
    crate::tree_guard::sweep(child.pid());
    status
}
