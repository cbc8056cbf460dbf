//! [`TcpChannel`]: a [`Channel`] over an authenticated TCP connection, and
//! [`connect`].

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};

use async_trait::async_trait;
use bytes::Bytes;
use ipc_core::frame::{FrameBudget, LengthCodec};
use ipc_core::stream::{StreamChannel, StreamReceiver, StreamSender};
use ipc_core::{Channel, ChannelInfo, Error, FrameConfig, RecvHalf, Result, SendHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::handshake;
use crate::options::TcpOptions;

/// The sending half of a [`TcpChannel`] (see [`TcpChannel::into_split`]).
pub type TcpSender = StreamSender<OwnedWriteHalf, LengthCodec>;

/// The receiving half of a [`TcpChannel`] (see [`TcpChannel::into_split`]).
pub type TcpReceiver = StreamReceiver<OwnedReadHalf, LengthCodec>;

/// A channel over one TCP connection that passed the [handshake](crate::handshake):
/// length-prefixed frames ([`ipc_core::frame`]) in both directions, `TCP_NODELAY` on.
///
/// Returned by [`connect`], [`TcpListener::accept`](crate::TcpListener::accept) and
/// [`spawn`](crate::spawn). Use it directly, or as `Box<dyn Channel>`.
///
/// ```no_run
/// # async fn demo() -> ipc_core::Result<()> {
/// use ipc_core::Channel;
/// let addr = "127.0.0.1:7000".parse().expect("an address");
/// let mut ch = ipc_tcp::connect(addr, ipc_tcp::TcpOptions::default()).await?;
/// ch.send("ping".into()).await?;
/// println!("{:?} from {}", ch.recv().await?, ch.peer_addr());
/// ch.close().await?;
/// # Ok(()) }
/// ```
///
/// # Platform-specific behavior
///
/// `peer_pid` in [`info`](Channel::info) is known only on the parent side of
/// [`spawn`](crate::spawn) (it is the child's pid); TCP itself does not tell who the
/// peer process is, on any OS.
pub struct TcpChannel {
    tx: TcpSender,
    rx: TcpReceiver,
    info: ChannelInfo,
    local_addr: SocketAddr,
    peer_addr: SocketAddr,
}

impl std::fmt::Debug for TcpChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpChannel")
            .field("local_addr", &self.local_addr)
            .field("peer_addr", &self.peer_addr)
            .field("peer_pid", &self.info.peer_pid)
            .finish()
    }
}

impl TcpChannel {
    /// Wrap a stream whose handshake is done; partly received frames are charged to
    /// `budget` when there is one (a listener's channels).
    pub(crate) fn from_stream(
        stream: TcpStream,
        peer_addr: SocketAddr,
        peer_pid: Option<u32>,
        config: FrameConfig,
        budget: Option<&FrameBudget>,
    ) -> Result<Self> {
        let local_addr = stream.local_addr()?;
        let info = ChannelInfo::new("tcp", config.max_frame())
            .with_peer_pid(peer_pid)
            .with_peer_addr(Some(peer_addr.to_string()));
        let (reader, writer) = stream.into_split();
        let mut codec = LengthCodec::new(config);
        if let Some(budget) = budget {
            codec = codec.with_budget(budget.clone());
        }
        let (tx, rx) = StreamChannel::new(reader, writer, codec, info.clone()).into_split();
        Ok(TcpChannel {
            tx,
            rx,
            info,
            local_addr,
            peer_addr,
        })
    }

    /// This end's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The other end's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer_addr
    }

    /// Whether `TCP_NODELAY` is on (it always is; this asks the kernel).
    ///
    /// ```no_run
    /// # async fn demo(ch: ipc_tcp::TcpChannel) -> ipc_core::Result<()> {
    /// assert!(ch.nodelay()?);
    /// # Ok(()) }
    /// ```
    pub fn nodelay(&self) -> Result<bool> {
        Ok(self.tx.writer().as_ref().nodelay()?)
    }

    /// Split into concrete halves that two tasks can use at once, without boxing.
    ///
    /// ```no_run
    /// # async fn demo(ch: ipc_tcp::TcpChannel) -> ipc_core::Result<()> {
    /// let (mut tx, mut rx) = ch.into_split();
    /// let writer = tokio::spawn(async move { tx.send("hello".into()).await });
    /// let reply = rx.recv().await?;
    /// # let _ = (writer, reply); Ok(()) }
    /// ```
    pub fn into_split(self) -> (TcpSender, TcpReceiver) {
        (self.tx, self.rx)
    }
}

/// The socket, for `getsockopt` and the like. Reading or writing it directly would
/// corrupt the framing.
impl AsFd for TcpChannel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.tx.writer().as_ref().as_fd()
    }
}

#[async_trait]
impl Channel for TcpChannel {
    async fn send(&mut self, frame: Bytes) -> Result<()> {
        self.tx.send(frame).await
    }

    async fn recv(&mut self) -> Result<Option<Bytes>> {
        self.rx.recv().await
    }

    async fn close(&mut self) -> Result<()> {
        self.tx.close().await
    }

    fn info(&self) -> ChannelInfo {
        self.info.clone()
    }

    fn split(self: Box<Self>) -> (Box<dyn SendHalf>, Box<dyn RecvHalf>) {
        let (tx, rx) = (*self).into_split();
        (Box::new(tx), Box::new(rx))
    }
}

/// Connect to an ipc-tcp listener at `addr` and handshake, presenting `options.token`
/// (an empty token when `None`). Connecting and handshaking together are bounded by
/// `options.handshake_timeout`.
///
/// Errors: [`Error::Auth`] when the server refuses the token, [`Error::Handshake`] when
/// the peer is not an ipc-tcp listener or speaks another version, [`Error::Timeout`]
/// when it does not answer in time, [`Error::Io`] when nothing listens there.
///
/// ```no_run
/// # async fn demo() -> ipc_core::Result<()> {
/// use ipc_tcp::TcpOptions;
/// let addr = "127.0.0.1:7000".parse().expect("an address");
/// let ch = ipc_tcp::connect(addr, TcpOptions::default().token("s3cret")).await?;
/// # let _ = ch; Ok(()) }
/// ```
pub async fn connect(addr: SocketAddr, options: TcpOptions) -> Result<TcpChannel> {
    let token = options.token_bytes();
    if token.len() > handshake::MAX_TOKEN_LEN {
        return Err(handshake::too_long(token.len()));
    }
    let attempt = async {
        let mut stream = TcpStream::connect(addr).await.map_err(|e| {
            Error::Io(io::Error::new(
                e.kind(),
                format!("could not connect to tcp://{addr}: {e}"),
            ))
        })?;
        stream.set_nodelay(true)?;
        handshake::client(&mut stream, token).await?;
        Ok::<_, Error>(stream)
    };
    let stream = tokio::time::timeout(options.handshake_timeout, attempt)
        .await
        .map_err(|_| Error::Timeout {
            after: options.handshake_timeout,
            during: "connecting to an ipc-tcp listener and waiting for its handshake reply",
        })??;
    TcpChannel::from_stream(stream, addr, None, options.frame, None)
}
