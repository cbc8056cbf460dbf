//! [`TcpChannel`]: a [`Channel`] over an authenticated TCP connection, and
//! [`connect`].

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};

use ipc_core::frame::{FrameBudget, LengthCodec};
use ipc_core::stream::{self, StreamChannel, StreamReceiver, StreamSender};
use ipc_core::ConnectError;
use ipc_core::{ChannelInfo, Error, FrameConfig, Options, Result};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::handshake;
use crate::options::token_bytes;

/// The sending half of a [`TcpChannel`] (see [`Duplex::into_split`](ipc_core::Duplex::into_split)).
pub type TcpSender = StreamSender<OwnedWriteHalf, LengthCodec>;

/// The receiving half of a [`TcpChannel`] (see [`Duplex::into_split`](ipc_core::Duplex::into_split)).
pub type TcpReceiver = StreamReceiver<OwnedReadHalf, LengthCodec>;

/// A channel over one TCP connection that passed the [handshake](crate::handshake):
/// length-prefixed frames ([`ipc_core::frame`]) in both directions, `TCP_NODELAY` on.
/// [`TcpChannelExt`] adds the socket's addresses.
///
/// Returned by [`connect`], [`TcpListener::accept`](crate::TcpListener::accept) and
/// [`spawn`](crate::spawn). Use it directly, or as `Box<dyn Channel>`.
///
/// ```no_run
/// # async fn demo() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// use ipc_tcp::TcpChannelExt;
/// let addr = "127.0.0.1:7000".parse().expect("an address");
/// let mut ch = ipc_tcp::connect(addr, &ipc_core::Options::default()).await?;
/// ch.send("ping".into()).await?;
/// println!("{:?} from {}", ch.recv().await?, ch.peer_addr()?);
/// ch.close().await?;
/// # Ok(()) }
/// ```
///
/// # Platform-specific behavior
///
/// `peer_pid` in [`info`](ipc_core::Channel::info) is known only on the parent side of
/// [`spawn`](crate::spawn) (it is the child's pid); TCP itself does not tell who the
/// peer process is, on any OS.
pub type TcpChannel = StreamChannel<OwnedReadHalf, OwnedWriteHalf, LengthCodec>;

/// Wrap a stream whose handshake is done; partly received frames are charged to
/// `budget` when there is one (a listener's channels).
pub(crate) fn from_stream(
    stream: TcpStream,
    peer_addr: SocketAddr,
    peer_pid: Option<u32>,
    config: FrameConfig,
    budget: Option<&FrameBudget>,
) -> Result<TcpChannel> {
    let info = ChannelInfo::new("tcp")
        .with_peer_pid(peer_pid)
        .with_peer_addr(Some(peer_addr.to_string()));
    let (reader, writer) = stream.into_split();
    let mut codec = LengthCodec::new(config);
    if let Some(budget) = budget {
        codec = codec.with_budget(budget.clone());
    }
    Ok(stream::channel(reader, writer, codec, info))
}

/// What a [`TcpChannel`] adds to a [`Channel`](ipc_core::Channel): the socket's
/// addresses and options.
///
/// ```no_run
/// # async fn demo(ch: ipc_tcp::TcpChannel) -> ipc_core::Result<()> {
/// use ipc_tcp::TcpChannelExt;
/// println!("{} -> {}", ch.local_addr()?, ch.peer_addr()?);
/// assert!(ch.nodelay()?);
/// # Ok(()) }
/// ```
pub trait TcpChannelExt {
    /// This end's address.
    fn local_addr(&self) -> Result<SocketAddr>;

    /// The other end's address (as the kernel tells it; the address recorded at
    /// connect or accept time is in [`ChannelInfo::peer_addr`]).
    fn peer_addr(&self) -> Result<SocketAddr>;

    /// Whether `TCP_NODELAY` is on (it always is; this asks the kernel).
    fn nodelay(&self) -> Result<bool>;

    /// The socket, for `getsockopt` and the like. Reading or writing it directly would
    /// corrupt the framing.
    fn socket_fd(&self) -> BorrowedFd<'_>;
}

impl TcpChannelExt for TcpChannel {
    fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.sender().writer().local_addr()?)
    }

    fn peer_addr(&self) -> Result<SocketAddr> {
        Ok(self.sender().writer().peer_addr()?)
    }

    fn nodelay(&self) -> Result<bool> {
        Ok(self.sender().writer().as_ref().nodelay()?)
    }

    fn socket_fd(&self) -> BorrowedFd<'_> {
        self.sender().writer().as_ref().as_fd()
    }
}

/// Connect to an ipc-tcp listener at `addr` and handshake, presenting the
/// [token](Options::token) of `options` (an empty token when none is set; `IPC_TOKEN`
/// is not looked at here). Connecting and handshaking together are bounded by the
/// [handshake timeout](Options::handshake_timeout).
///
/// Errors ([`ConnectError`]): `Auth` when the server refuses the token, `Handshake`
/// when the peer is not an ipc-tcp listener or speaks another version, `Timeout` when
/// it does not answer in time, `NotListening` when nothing listens there.
///
/// ```no_run
/// # async fn demo() -> ipc_core::Result<()> {
/// use ipc_core::Options;
/// let addr = "127.0.0.1:7000".parse().expect("an address");
/// let ch = ipc_tcp::connect(addr, &Options::default().token("s3cret")).await?;
/// # let _ = ch; Ok(()) }
/// ```
pub async fn connect(addr: SocketAddr, options: &Options) -> Result<TcpChannel, ConnectError> {
    let token = token_bytes(options);
    if token.len() > handshake::MAX_TOKEN_LEN {
        return Err(handshake::too_long(token.len()).into());
    }
    let attempt = async {
        let mut stream = TcpStream::connect(addr).await.map_err(|e| {
            let hint = if e.kind() == io::ErrorKind::ConnectionRefused {
                ": nothing listens on that port: is the server running?"
            } else {
                ""
            };
            Error::Io(io::Error::new(
                e.kind(),
                format!("could not connect to tcp://{addr}: {e}{hint}"),
            ))
        })?;
        stream.set_nodelay(true)?;
        handshake::client(&mut stream, token).await?;
        Ok::<_, Error>(stream)
    };
    let timeout = options.get_handshake_timeout();
    let stream = tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| Error::Timeout {
            after: timeout,
            during: "connecting to an ipc-tcp listener and waiting for its handshake reply",
        })??;
    Ok(from_stream(
        stream,
        addr,
        None,
        options.frame_config(),
        None,
    )?)
}
