//! [`PipeChannel`]: a [`StreamChannel`] over two half-duplex pipes, and [`pipe_pair`].

use std::any::Any;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::pin::Pin;
use std::sync::{Arc, Once};
use std::task::{Context, Poll};

use ipc_core::frame::{FrameConfig, LengthCodec};
use ipc_core::stream::{self, StreamChannel};
use ipc_core::Options;
use ipc_core::{ChannelInfo, Error, Result};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::unix::pipe;

/// Transport name of anonymous-pipe channels ([`ChannelInfo::transport`]).
pub(crate) const PIPE: &str = "pipe";
/// Transport name of FIFO-pair channels.
pub(crate) const FIFO: &str = "fifo";

/// A message channel over two pipes: one we read, one we write.
///
/// This is the toolkit's shared [`StreamChannel`] with the length-prefixed
/// [`LengthCodec`] framing, over [`PipeReader`] / [`PipeWriter`] (thin wrappers around
/// tokio's reactor-driven [`pipe::Receiver`] and [`pipe::Sender`] that can keep a
/// connection resource alive, such as a FIFO client's lock). Every constructor of this
/// crate returns it: [`pipe_pair`], [`spawn_pipe`](crate::spawn_pipe),
/// [`connect_inherited`](crate::connect_inherited), [`connect_fifo`](crate::connect_fifo),
/// [`FifoListener::accept`](crate::FifoListener::accept) and
/// [`spawn_fifo`](crate::spawn_fifo).
///
/// Each pipe has exactly one writer, the channel's sending half (which is not `Clone`),
/// so frames never interleave even though writes larger than `PIPE_BUF` (4096 bytes on
/// Linux) are not atomic.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// let (mut a, mut b) = ipc_pipe::pipe_pair(&ipc_core::Options::default())?;
/// a.send("over a pipe".into()).await?;
/// assert_eq!(b.recv().await?.as_deref(), Some(&b"over a pipe"[..]));
/// assert_eq!(a.info().transport, "pipe");
/// # Ok(()) }
/// ```
pub type PipeChannel = StreamChannel<PipeReader, PipeWriter, LengthCodec>;

/// Something that must stay alive as long as either half of a channel (a FIFO client's
/// `flock`, ...).
pub(crate) type Guard = Arc<dyn Any + Send + Sync>;

/// The reading end of a [`PipeChannel`]: a tokio [`pipe::Receiver`], plus whatever the
/// connection needs kept alive while it is read.
pub struct PipeReader {
    inner: pipe::Receiver,
    _guard: Option<Guard>,
}

/// The writing end of a [`PipeChannel`]: a tokio [`pipe::Sender`], plus whatever the
/// connection needs kept alive while it is written.
pub struct PipeWriter {
    inner: pipe::Sender,
    _guard: Option<Guard>,
}

impl PipeReader {
    /// The tokio receiver (to check readiness or the fd).
    pub fn get_ref(&self) -> &pipe::Receiver {
        &self.inner
    }
}

impl PipeWriter {
    /// The tokio sender (to check readiness or the fd).
    pub fn get_ref(&self) -> &pipe::Sender {
        &self.inner
    }
}

impl std::fmt::Debug for PipeReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipeReader")
            .field("fd", &self.inner.as_raw_fd())
            .finish()
    }
}

impl std::fmt::Debug for PipeWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipeWriter")
            .field("fd", &self.inner.as_raw_fd())
            .finish()
    }
}

impl AsFd for PipeReader {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl AsFd for PipeWriter {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl AsyncRead for PipeReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for PipeWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Fail clearly (instead of tokio's panic) when called outside a tokio runtime.
pub(crate) fn require_runtime(what: &str) -> Result<()> {
    tokio::runtime::Handle::try_current()
        .map(|_| ())
        .map_err(|_| {
            Error::Io(io::Error::other(format!(
                "{what} must be called inside a tokio runtime with I/O enabled \
                 (pipes are registered with its reactor)"
            )))
        })
}

/// Warn once if SIGPIPE would kill this process: writing to a pipe whose reader is gone
/// raises SIGPIPE, and only an ignored SIGPIPE turns that into the `EPIPE` error that
/// the channel reports as [`Error::PeerLost`] (or [`Error::Closed`] after the peer's
/// goodbye).
pub(crate) fn warn_if_sigpipe_kills() {
    static CHECK: Once = Once::new();
    CHECK.call_once(|| {
        // SAFETY: `sigaction` is a plain C struct for which all-zero is a valid value.
        let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: a null new action only queries the current disposition, changing
        // nothing; `current` is a valid, writable `sigaction` for the old one.
        let rc = unsafe { libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut current) };
        if rc == 0 && current.sa_sigaction == libc::SIG_DFL {
            tracing::warn!(
                "SIGPIPE has its default action in this process: writing to a pipe whose \
                 reader died will kill it instead of returning an error. Rust binaries \
                 ignore SIGPIPE unless told otherwise; a host that is not a Rust binary \
                 should ignore SIGPIPE (signal(SIGPIPE, SIG_IGN)) before using pipes"
            );
        }
    });
}

/// Wrap a read end and a write end of pipes (or FIFOs) into a [`PipeChannel`].
///
/// Both must be pipes with the right access mode; they are made non-blocking and
/// registered with the current runtime's reactor.
pub(crate) fn wrap(
    read: OwnedFd,
    write: OwnedFd,
    config: FrameConfig,
    info: ChannelInfo,
    guard: Option<Guard>,
) -> Result<PipeChannel> {
    wrap_receiver(
        pipe::Receiver::from_owned_fd(read)?,
        write,
        LengthCodec::new(config),
        info,
        guard,
    )
}

/// [`wrap`] with a read end already registered with the reactor, and the codec given.
pub(crate) fn wrap_receiver(
    rx: pipe::Receiver,
    write: OwnedFd,
    codec: LengthCodec,
    info: ChannelInfo,
    guard: Option<Guard>,
) -> Result<PipeChannel> {
    warn_if_sigpipe_kills();
    let tx = pipe::Sender::from_owned_fd(write)?;
    Ok(stream::channel(
        PipeReader {
            inner: rx,
            _guard: guard.clone(),
        },
        PipeWriter {
            inner: tx,
            _guard: guard,
        },
        codec,
        info,
    ))
}

/// A new anonymous pipe, both ends close-on-exec: `(read end, write end)`.
#[cfg(not(target_vendor = "apple"))]
pub(crate) fn new_pipe() -> Result<(OwnedFd, OwnedFd)> {
    Ok(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)?)
}

/// A new anonymous pipe, both ends close-on-exec: `(read end, write end)`.
///
/// Apple systems have no `pipe2`: the flag is set right after `pipe`, so a child that
/// another thread spawns at that very instant could inherit the ends.
#[cfg(target_vendor = "apple")]
pub(crate) fn new_pipe() -> Result<(OwnedFd, OwnedFd)> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    let (read, write) = nix::unistd::pipe()?;
    for fd in [&read, &write] {
        fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    }
    Ok((read, write))
}

/// Two connected channels in this process, over two anonymous pipes (`pipe2` with
/// `O_CLOEXEC`): what one sends the other receives. Useful for tests and for handing
/// one end to a task.
///
/// Must be called inside a tokio runtime (the pipes are registered with its reactor).
/// Each channel's `peer_pid` is this process's pid.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// let (mut left, mut right) = ipc_pipe::pipe_pair(&ipc_core::Options::default())?;
/// left.send("ping".into()).await?;
/// assert_eq!(right.recv().await?.as_deref(), Some(&b"ping"[..]));
/// right.close().await?;
/// assert_eq!(left.recv().await?, None);
/// # Ok(()) }
/// ```
pub fn pipe_pair(options: &Options) -> Result<(PipeChannel, PipeChannel)> {
    let config = options.frame_config();
    require_runtime("ipc_pipe::pipe_pair")?;
    let (a_read, b_write) = new_pipe()?;
    let (b_read, a_write) = new_pipe()?;
    let info = ChannelInfo::new(PIPE).with_peer_pid(Some(std::process::id()));
    let a = wrap(a_read, a_write, config, info.clone(), None)?;
    let b = wrap(b_read, b_write, config, info, None)?;
    Ok((a, b))
}
