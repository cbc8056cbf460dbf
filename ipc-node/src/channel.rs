//! [`NodeChannel`]: a [`Channel`](ipc_core::Channel) over Node's `child_process` IPC
//! socket.

use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::{Sink, SinkExt};
use ipc_core::adapter::{FrameSink, FrameStream, SendFrames};
use ipc_core::frame::{FrameConfig, Outbound};
use ipc_core::Options;
use ipc_core::{ChannelInfo, Duplex, Error, Result};
use tokio::io::AsyncWriteExt;
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixStream;
use tokio::sync::Mutex;
use tokio_util::codec::FramedWrite;

use crate::codec::NodeCodec;
use crate::exit::ChildWatch;
use crate::receiver::{NodeInbox, NodeReceiver};

/// Transport name reported in [`ChannelInfo::transport`].
pub(crate) const NAME: &str = "node";

/// The `cmd` of the internal message a sending half dropped without `close` writes
/// before shutting the socket down. Node takes any `cmd` starting with `NODE_` for one
/// of its internal messages and ignores this one (its peer just sees 'disconnect'); a
/// toolkit peer tells the abort from a clean close by it.
pub(crate) const ABORT_CMD: &str = "NODE_IPC_ABORT";

/// [`ABORT_CMD`] as the line written.
const ABORT_LINE: &[u8] = b"{\"cmd\":\"NODE_IPC_ABORT\"}\n";

/// Map an I/O error of a live socket to the toolkit's meaning of it.
pub(crate) fn classify(e: Error) -> Error {
    match e {
        Error::Io(io) => match io.kind() {
            io::ErrorKind::BrokenPipe | io::ErrorKind::NotConnected => Error::Closed,
            io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
                Error::PeerLost(format!("connection reset: {io}"))
            }
            _ => Error::Io(io),
        },
        other => other,
    }
}

/// The writing side, shared by the sender and the receiver (which answers Node's
/// internal messages).
pub(crate) struct WriteSide {
    pub(crate) framed: FramedWrite<OwnedWriteHalf, NodeCodec>,
    /// Shut down for writing: nothing more may be written.
    pub(crate) shut: bool,
}

impl WriteSide {
    /// Shut the socket down for writing (Node's side sees end-of-stream: 'disconnect').
    async fn shutdown(&mut self) -> Result<()> {
        if self.shut {
            return Ok(());
        }
        self.shut = true;
        let flushed = self.framed.flush().await.map_err(classify);
        let shut = match self.framed.get_mut().shutdown().await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            Err(e) => Err(classify(Error::Io(e))),
        };
        match flushed {
            // A peer that is already gone cannot be told more; closing is still done.
            Err(Error::Closed | Error::PeerLost(_)) => shut,
            other => other.and(shut),
        }
    }
}

pub(crate) type Shared = Arc<Mutex<WriteSide>>;

/// Set by the receiver when Node ended the channel cleanly (`'disconnect'`, or exit 0),
/// read by the sender: a write that then fails means [`Error::Closed`], not
/// [`Error::PeerLost`].
pub(crate) type PeerClosed = Arc<AtomicBool>;

/// A message channel over Node's `child_process` IPC socket (`json` serialization:
/// one JSON text per line).
///
/// Frames are JSON texts: sending refuses a frame that is not one (see [`NodeCodec`]
/// for the exact rules) and every frame received is one, so
/// [`TypedChannel`](ipc_core::TypedChannel) with the [`Json`](ipc_core::codec::Json)
/// codec works over it unchanged, and
/// [`send_json`](ipc_core::SinkJsonExt::send_json) /
/// [`recv_json`](ipc_core::ChannelExt::recv_json) do the same in one call.
///
/// It is the [`Duplex`] of a [`NodeSender`] and a [`NodeReceiver`]. Get one from
/// [`connect`](crate::connect) / [`connect_from_env`](crate::connect_from_env) (this
/// process was forked by Node), [`spawn`](crate::spawn) (we start a Node child),
/// [`pair`](crate::pair) or [`from_stream`].
///
/// # Node's internal messages
///
/// Objects whose `"cmd"` starts with `NODE_` are Node's own (handle passing, cluster);
/// they are never returned by `recv`. A `NODE_HANDLE` (a socket or server sent with
/// `subprocess.send(msg, handle)`) is answered with `{"cmd":"NODE_HANDLE_NACK"}`: this
/// channel does not take handles, and without an answer Node would hold back every
/// later message waiting for one. Node retries three times, then drops the message
/// and warns `SentHandleNotReceivedWarning`. All other internal messages
/// (`NODE_HANDLE_ACK`, `NODE_HANDLE_NACK`, `NODE_CLUSTER`, ...) are ignored. Answers
/// are written only while the channel is being read.
///
/// # End of the channel
///
/// Node has no goodbye marker: a Node process ends the channel with
/// `process.disconnect()` / `subprocess.disconnect()`, or by exiting.
///
/// - `close` shuts the socket down for writing; Node emits `'disconnect'` and closes
///   its end, and our stream then ends (`recv` returns `Ok(None)`).
/// - When the peer closes, `recv` returns the messages it sent before, then `Ok(None)`
///   (a connection reset counts as a close too: Node drops unread messages on
///   disconnect).
/// - **Parent of a Node child** (from [`spawn`](crate::spawn)): at end-of-stream the
///   receiver waits up to [`EXIT_GRACE`](crate::EXIT_GRACE) for the child's exit
///   status (without reaping it). A child that exited with a non-zero code or was
///   killed by a signal gives [`Error::PeerLost`] naming the status; a child that
///   exited with 0, or is still running after `process.disconnect()`, gives
///   `Ok(None)`. If the child was already reaped when the stream ended (a concurrent
///   [`Child::wait`](ipc_core::Child::wait) finished first), its status is unknown here
///   and the end counts as clean.
/// - **Child of Node**: end-of-stream is always `Ok(None)`, as Node's own
///   `'disconnect'` event; the Node parent's fate is not known here.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// let (mut a, mut b) = ipc_node::pair(&ipc_core::Options::default())?;
/// a.send_json(&serde_json::json!({"id": 1, "op": "add", "a": 1, "b": 2})).await?;
/// let request: serde_json::Value = b.recv_json().await?.expect("a message");
/// assert_eq!(request["op"], "add");
/// assert!(a.send("not json".into()).await.is_err()); // Node would crash on it
/// a.close().await?;
/// assert_eq!(b.recv().await?, None);
/// # Ok(()) }
/// ```
pub type NodeChannel = Duplex<NodeSender, NodeReceiver>;

/// A channel over a connected Unix stream socket whose peer speaks Node's `json`
/// channel protocol. The peer's pid and uid come from `SO_PEERCRED` where the OS
/// has it. Must be called within a tokio runtime.
///
/// ```no_run
/// # async fn demo(stream: tokio::net::UnixStream) -> ipc_core::Result<()> {
/// let channel = ipc_node::from_stream(stream, &ipc_core::Options::default());
/// # let _ = channel; Ok(()) }
/// ```
pub fn from_stream(stream: UnixStream, options: &Options) -> NodeChannel {
    let config = options.frame_config();
    let (pid, uid) = peer_cred(&stream);
    let info = ChannelInfo::new(NAME).with_peer_pid(pid).with_peer_uid(uid);
    with_parts(stream, config, info, None)
}

/// Build from parts; `watch` is the child whose exit status decides end-of-stream.
pub(crate) fn with_parts(
    stream: UnixStream,
    config: FrameConfig,
    info: ChannelInfo,
    watch: Option<ChildWatch>,
) -> NodeChannel {
    // Node's frames are JSON texts; the codec's limit is the channel's.
    let info = info
        .with_binary_frames(false)
        .with_max_frame(config.max_frame());
    let (read, write) = stream.into_split();
    let codec = NodeCodec::new(config);
    let shared = Arc::new(Mutex::new(WriteSide {
        framed: FramedWrite::new(write, codec.clone()),
        shut: false,
    }));
    let peer_closed = PeerClosed::default();
    Duplex::new(
        FrameSink::new(NodeOutbox {
            shared: shared.clone(),
            info: info.clone(),
            peer_closed: peer_closed.clone(),
        }),
        FrameStream::new(NodeInbox::new(
            read,
            codec,
            shared,
            peer_closed,
            watch,
            info,
        )),
    )
}

/// The sending half of a [`NodeChannel`]: a `Sink` of messages over a [`NodeOutbox`].
pub type NodeSender = FrameSink<NodeOutbox>;

/// The sending side of a Node channel, as `async fn`s (its `Sink` is [`NodeSender`]).
///
/// `close` is the only clean end: it shuts the socket down for writing (Node sees
/// `'disconnect'`; a toolkit peer's `recv` gives `Ok(None)`). Dropping it without
/// `close` is an abort: without blocking, it writes the internal message
/// `{"cmd":"NODE_IPC_ABORT"}` (which Node ignores), then shuts down for writing; Node
/// still sees `'disconnect'`, a toolkit peer's `recv` gives
/// [`Error::PeerLost`](ipc_core::Error::PeerLost).
pub struct NodeOutbox {
    shared: Shared,
    info: ChannelInfo,
    peer_closed: PeerClosed,
}

impl std::fmt::Debug for NodeOutbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeOutbox")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl SendFrames for NodeOutbox {
    /// Send one frame: one JSON text (see [`NodeCodec`]); returns once it is written
    /// to the socket, waiting while Node is slow to read.
    async fn send_frame(&mut self, frame: Bytes) -> Result<()> {
        // Counts against the task's cooperative budget, like a receive.
        tokio::task::coop::consume_budget().await;
        let mut side = self.shared.lock().await;
        if side.shut {
            return Err(Error::Closed);
        }
        // The peer's end being gone is `PeerLost`, unless it ended the channel first.
        let peer_closed = &self.peer_closed;
        side.framed.send(Outbound::Data(frame)).await.map_err(|e| {
            ipc_core::stream::classify_write_error(e, peer_closed.load(Ordering::Acquire))
        })
    }

    /// Shut the socket down for writing: Node emits `'disconnect'`. Idempotent.
    async fn close_sending(&mut self) -> Result<()> {
        self.shared.lock().await.shutdown().await
    }

    fn info(&self) -> ChannelInfo {
        self.info.clone()
    }
}

impl Drop for NodeOutbox {
    fn drop(&mut self) {
        let Ok(mut side) = self.shared.try_lock() else {
            return; // the receiver is answering Node right now; it closes with the socket
        };
        if side.shut {
            return;
        }
        side.shut = true;
        // Dropped without `close`: an abort. Best effort, never blocking: finish what
        // is buffered (a message cut in the middle would otherwise stay cut), then the
        // internal ABORT message (Node ignores it; a Rust peer's `recv` then ends with
        // `PeerLost` instead of `Ok(None)`), then shut down: Node sees 'disconnect'.
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        if let Poll::Ready(Ok(())) = Pin::new(&mut side.framed).poll_flush(&mut cx) {
            let _ = side.framed.get_ref().try_write(ABORT_LINE);
        }
        let _ = nix::sys::socket::shutdown(
            side.framed.get_ref().as_ref().as_raw_fd(),
            nix::sys::socket::Shutdown::Write,
        );
    }
}

/// The peer's pid and uid as tokio reports them (`SO_PEERCRED` on Linux); unknown
/// when the OS does not say.
pub(crate) fn peer_cred(stream: &UnixStream) -> (Option<u32>, Option<u32>) {
    match stream.peer_cred() {
        Ok(cred) => (
            cred.pid()
                .and_then(|pid| u32::try_from(pid).ok())
                .filter(|pid| *pid > 0),
            Some(cred.uid()),
        ),
        Err(_) => (None, None),
    }
}
