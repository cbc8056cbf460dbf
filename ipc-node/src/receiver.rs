//! [`NodeReceiver`] and [`NodeInbox`]: the receiving half of a [`NodeChannel`](crate::NodeChannel):
//! Node's internal messages, and what end-of-stream means.

use std::io;
use std::task::{ready, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use ipc_core::adapter::{FrameStream, RecvFrames};
use ipc_core::{ChannelInfo, Error, Result};
use tokio::io::AsyncWriteExt;
use tokio::net::unix::OwnedReadHalf;
use tokio_util::codec::FramedRead;

use crate::channel::{classify, PeerClosed, Shared, ABORT_CMD};
use crate::codec::{Inbound, InboundCodec};
use crate::exit::ChildWatch;

/// How long the parent's receiver waits, at end-of-stream, for the child's exit status
/// to tell a clean disconnect from a crash.
pub const EXIT_GRACE: Duration = Duration::from_secs(1);

/// What we answer to a `NODE_HANDLE` (we never take handles).
const HANDLE_NACK: &[u8] = b"{\"cmd\":\"NODE_HANDLE_NACK\"}\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecvState {
    Open,
    Finished,
    Failed,
}

/// The receiving half of a [`NodeChannel`](crate::NodeChannel): a `Stream` of messages
/// over a [`NodeInbox`].
pub type NodeReceiver = FrameStream<NodeInbox>;

/// The receiving side of a Node channel, as an `async fn` (its `Stream` is
/// [`NodeReceiver`]). It answers Node's internal messages through the shared socket
/// (see [`NodeChannel`](crate::NodeChannel#nodes-internal-messages)).
pub struct NodeInbox {
    framed: FramedRead<OwnedReadHalf, InboundCodec>,
    shared: Shared,
    peer_closed: PeerClosed,
    watch: Option<ChildWatch>,
    info: ChannelInfo,
    state: RecvState,
    /// The peer's sending half was dropped without `close` (it said `NODE_IPC_ABORT`).
    aborted: bool,
}

impl std::fmt::Debug for NodeInbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeInbox")
            .field("info", &self.info)
            .field("state", &self.state)
            .field("watches_child", &self.watch.is_some())
            .finish_non_exhaustive()
    }
}

impl NodeInbox {
    /// Wrap the read half; `watch` is the child whose exit status decides end-of-stream.
    pub(crate) fn new(
        read: OwnedReadHalf,
        codec: crate::NodeCodec,
        shared: Shared,
        peer_closed: PeerClosed,
        watch: Option<ChildWatch>,
        info: ChannelInfo,
    ) -> Self {
        NodeInbox {
            framed: FramedRead::with_capacity(read, InboundCodec(codec), 64 * 1024),
            shared,
            peer_closed,
            watch,
            info,
            state: RecvState::Open,
            aborted: false,
        }
    }
}

impl RecvFrames for NodeInbox {
    /// Receive the next message (one JSON text); `Ok(None)` at the end of the channel.
    /// See [`NodeChannel`](crate::NodeChannel) for what ends it and what is an error.
    async fn recv_frame(&mut self) -> Result<Option<Bytes>> {
        loop {
            match self.state {
                RecvState::Finished => return Ok(None),
                RecvState::Failed => return Err(Error::Closed),
                RecvState::Open => {}
            }
            // One unit of the task's cooperative budget per message: messages decoded
            // from the read buffer never touch the reactor, and a receive that is
            // always ready must still let other tasks (a signal handler, ...) run.
            let next = std::future::poll_fn(|cx| {
                let coop = ready!(tokio::task::coop::poll_proceed(cx));
                let next = ready!(self.framed.poll_next_unpin(cx));
                coop.made_progress();
                Poll::Ready(next)
            })
            .await;
            match next {
                Some(Ok(Inbound::Message(frame))) => return Ok(Some(frame)),
                Some(Ok(Inbound::Rejected(e))) => return Err(e),
                Some(Ok(Inbound::Internal(cmd))) if cmd == ABORT_CMD => self.aborted = true,
                Some(Ok(Inbound::Internal(cmd))) => self.answer(&cmd).await,
                // Node closed its end with our messages unread: still a disconnect.
                Some(Err(Error::Io(e)))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
                    ) =>
                {
                    return self.end().await;
                }
                Some(Err(e)) => {
                    self.state = RecvState::Failed;
                    return Err(self.with_exit_status(classify(e)).await);
                }
                None => return self.end().await,
            }
        }
    }

    fn info(&self) -> ChannelInfo {
        self.info.clone()
    }
}

impl NodeInbox {
    /// Answer one of Node's internal messages, if it needs an answer.
    async fn answer(&mut self, cmd: &str) {
        if cmd != "NODE_HANDLE" {
            tracing::debug!(cmd, "ignoring Node's internal message");
            return;
        }
        let mut side = self.shared.lock().await;
        if side.shut {
            tracing::debug!("NODE_HANDLE after our close: no NACK can be sent");
            return;
        }
        let written = async {
            side.framed.flush().await?;
            side.framed.get_mut().write_all(HANDLE_NACK).await?;
            Ok::<_, Error>(())
        }
        .await;
        match written {
            Ok(()) => tracing::debug!("answered NODE_HANDLE with NODE_HANDLE_NACK"),
            // Like Node, failing to answer is not the user's error.
            Err(e) => tracing::debug!("could not answer NODE_HANDLE: {e}"),
        }
    }

    /// The peer closed: `Ok(None)`, unless it is our child and it died abnormally.
    async fn end(&mut self) -> Result<Option<Bytes>> {
        if self.aborted {
            self.state = RecvState::Failed;
            return Err(Error::PeerLost(
                "the peer dropped the channel without closing it (it sent NODE_IPC_ABORT)".into(),
            ));
        }
        if let Some(watch) = &self.watch {
            if let Some(status) = watch.exited_within(EXIT_GRACE).await {
                if !status.success() {
                    self.state = RecvState::Failed;
                    return Err(Error::PeerLost(format!(
                        "the child (pid {}) closed the channel by exiting with {status}",
                        watch.pid()
                    )));
                }
            }
        }
        self.state = RecvState::Finished;
        self.peer_closed
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(None)
    }

    /// Add our child's exit status, if it died, to a fatal read error.
    async fn with_exit_status(&self, e: Error) -> Error {
        let Some(watch) = &self.watch else { return e };
        match watch.exited_within(EXIT_GRACE).await {
            Some(status) if !status.success() => Error::PeerLost(format!(
                "the child (pid {}) exited with {status} ({e})",
                watch.pid()
            )),
            _ => e,
        }
    }
}
