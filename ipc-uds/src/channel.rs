//! [`UdsChannel`]: a [`Channel`](ipc_core::Channel) over a connected Unix stream
//! socket, with fd passing ([`SendFds`], [`RecvFds`]).

use std::future::Future;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures_util::{SinkExt, Stream};
use ipc_core::frame::{FrameCodec, FrameConfig, LengthCodec};
use ipc_core::stream::{self, StreamReceiver, StreamSender};
use ipc_core::{ChannelInfo, Duplex, Error, Options, RecvError, RecvHalf, Result};
use tokio::net::UnixStream;

use crate::fdio::{send_frame_with_fds, FdReader, SockWriter, MAX_FDS_PER_FRAME};

/// Transport name reported in [`ChannelInfo::transport`].
pub(crate) const NAME: &str = "uds";

/// Bytes of the length prefix in front of every frame.
const PREFIX: u64 = 4;

/// The peer of a connected socket as the kernel reports it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerCred {
    pub(crate) pid: Option<u32>,
    pub(crate) uid: u32,
}

/// The peer's credentials as tokio reports them (`SO_PEERCRED` on Linux: pid and uid
/// as of `connect` or `socketpair`; `getpeereid` and friends elsewhere, where the pid
/// may be unknown).
pub(crate) fn peer_cred(stream: &UnixStream) -> io::Result<PeerCred> {
    let cred = stream.peer_cred()?;
    Ok(PeerCred {
        pid: cred
            .pid()
            .and_then(|pid| u32::try_from(pid).ok())
            .filter(|pid| *pid > 0),
        uid: cred.uid(),
    })
}

/// The sending half of a [`UdsChannel`] (see
/// [`Duplex::into_split`](ipc_core::Duplex::into_split)); [`SendFds`] adds
/// [`send_with_fds`](SendFds::send_with_fds).
///
/// `close` is the only clean end (the goodbye). Dropping it without `close` is an
/// abort: no goodbye, the socket shut down for writing at once, even while the
/// receiving half lives on, so the peer's `recv` gives `PeerLost` (never a wait for
/// the rest of a frame whose send was cancelled).
pub type UdsSender = StreamSender<SockWriter, LengthCodec>;

/// A message channel over a connected Unix stream socket.
///
/// Frames are length-prefixed (the shared [`LengthCodec`]); besides the
/// [`Channel`](ipc_core::Channel) methods it can pass open file descriptors with a
/// frame ([`SendFds::send_with_fds`] / [`RecvFds::recv_with_fds`], on the channel and
/// on its halves).
///
/// Get one from [`pair`](crate::pair), [`connect`](crate::connect),
/// [`UdsListener::accept`](crate::UdsListener::accept), [`spawn`](crate::spawn) or
/// [`from_stream`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// let (mut a, mut b) = ipc_uds::pair(&ipc_core::Options::default())?;
/// a.send("ping".into()).await?;
/// assert_eq!(b.recv().await?.as_deref(), Some(&b"ping"[..]));
/// assert_eq!(b.info().peer_pid, Some(std::process::id()));
/// # Ok(()) }
/// ```
///
/// # Passed fds and plain `recv`
///
/// A frame that carried fds, received as a plain frame (`recv`, `next`), comes without
/// them: the fds are **closed** (never leaked, and never given to a later frame). Use
/// [`RecvFds::recv_with_fds`] where fds are expected.
pub type UdsChannel = Duplex<UdsSender, UdsReceiver>;

/// The receiving half of a [`UdsChannel`] (see
/// [`Duplex::into_split`](ipc_core::Duplex::into_split)): a stream of frames;
/// [`RecvFds`] adds [`recv_with_fds`](RecvFds::recv_with_fds).
pub struct UdsReceiver {
    inner: StreamReceiver<FdReader, LengthCodec>,
}

impl std::fmt::Debug for UdsReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdsReceiver")
            .field("info", &RecvHalf::info(self))
            .finish()
    }
}

/// Wrap a connected tokio [`UnixStream`] into a [`UdsChannel`]; the peer's pid and uid
/// come from `SO_PEERCRED`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// let (a, b) = tokio::net::UnixStream::pair()?;
/// let a = ipc_uds::from_stream(a, &ipc_core::Options::default())?;
/// # let _ = (a, b); Ok(()) }
/// ```
pub fn from_stream(stream: UnixStream, options: &Options) -> Result<UdsChannel> {
    let cred = peer_cred(&stream)?;
    let info = ChannelInfo::new(NAME)
        .with_peer_pid(cred.pid)
        .with_peer_uid(Some(cred.uid));
    with_info(stream, options.frame_config(), info)
}

/// Wrap a connected stream with known info.
pub(crate) fn with_info(
    stream: UnixStream,
    config: FrameConfig,
    info: ChannelInfo,
) -> Result<UdsChannel> {
    with_codec(stream, LengthCodec::new(config), info)
}

/// Wrap a connected stream with known info and a codec set up by the caller (a
/// listener's, charging its budget).
pub(crate) fn with_codec(
    stream: UnixStream,
    codec: LengthCodec,
    info: ChannelInfo,
) -> Result<UdsChannel> {
    // Out of tokio's registration (readable and writable), into ours: readable for
    // the read half, writable only while a write waits for room.
    let read: OwnedFd = stream.into_std()?.into();
    let write = read.try_clone()?;
    let (tx, rx) =
        stream::channel(FdReader::new(read)?, SockWriter::new(write), codec, info).into_split();
    Ok(Duplex::new(tx, UdsReceiver { inner: rx }))
}

/// Sending a frame with open file descriptors attached: implemented by [`UdsChannel`]
/// and its sending half [`UdsSender`].
pub trait SendFds {
    /// Send `frame` with open file descriptors attached (`SCM_RIGHTS`). The receiver
    /// gets duplicates of them, on this very frame, from
    /// [`recv_with_fds`](RecvFds::recv_with_fds); ours stay open. At most 253 fds per
    /// frame. Frames queued before (`feed`) are written first.
    ///
    /// On the wire this is an ordinary frame (same bytes as a plain `send`); the fds
    /// ride on the first `sendmsg` of the frame as an `SCM_RIGHTS` control message, and
    /// the receiving side, which reads only with `recvmsg`, files them under the frame
    /// holding the last byte of the read that brought them (Linux returns from a read
    /// right after the buffer that carried fds).
    ///
    /// If this future is dropped before it completes, part of the frame may already be
    /// written: the stream is then shut down there (the peer's stream ends with
    /// `PeerLost`) and later sends fail, rather than corrupt the stream.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
    /// use std::os::fd::AsFd;
    /// use ipc_uds::{RecvFds, SendFds};
    /// let (mut a, mut b) = ipc_uds::pair(&ipc_core::Options::default())?;
    /// let file = std::fs::File::open("/dev/null")?;
    /// a.send_with_fds("here is a file".into(), &[file.as_fd()]).await?;
    /// let (frame, fds) = b.recv_with_fds().await?.expect("a frame");
    /// assert_eq!(frame, "here is a file");
    /// assert_eq!(fds.len(), 1);
    /// # Ok(()) }
    /// ```
    fn send_with_fds(
        &mut self,
        frame: Bytes,
        fds: &[BorrowedFd<'_>],
    ) -> impl Future<Output = Result<()>> + Send;
}

/// Receiving a frame with the file descriptors sent with it: implemented by
/// [`UdsChannel`] and its receiving half [`UdsReceiver`].
pub trait RecvFds {
    /// Receive the next frame and the fds that were sent with it (empty when none);
    /// `Ok(None)` once the peer closed cleanly (or after an error that ended the
    /// stream). The fds are close-on-exec.
    ///
    /// ```no_run
    /// # async fn demo(mut ch: ipc_uds::UdsChannel) -> ipc_core::Result<()> {
    /// use ipc_uds::RecvFds;
    /// while let Some((frame, fds)) = ch.recv_with_fds().await? {
    ///     for fd in fds {
    ///         let file = std::fs::File::from(fd);
    ///         # let _ = (&frame, file);
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    fn recv_with_fds(
        &mut self,
    ) -> impl Future<Output = Result<Option<(Bytes, Vec<OwnedFd>)>, RecvError>> + Send;
}

impl SendFds for UdsSender {
    async fn send_with_fds(&mut self, frame: Bytes, fds: &[BorrowedFd<'_>]) -> Result<()> {
        if fds.is_empty() {
            return Ok(self.send(frame).await?);
        }
        let max = self.codec().max_frame();
        if frame.len() > max {
            return Err(Error::FrameTooLarge {
                len: frame.len() as u64,
                max,
            });
        }
        if fds.len() > MAX_FDS_PER_FRAME {
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} fds in one frame; the kernel takes at most {MAX_FDS_PER_FRAME}: \
                     spread them over several frames",
                    fds.len()
                ),
            )));
        }
        let writer = self.start_own_frame().await?;
        let written = send_frame_with_fds(writer, &frame, fds).await;
        self.finish_own_frame(written)
    }
}

impl SendFds for UdsChannel {
    fn send_with_fds(
        &mut self,
        frame: Bytes,
        fds: &[BorrowedFd<'_>],
    ) -> impl Future<Output = Result<()>> + Send {
        self.sender_mut().send_with_fds(frame, fds)
    }
}

/// A frame and the fds that came with it.
type FrameWithFds = (Bytes, Vec<OwnedFd>);

impl UdsReceiver {
    /// The next frame and its fds; fds that came with nothing (before a goodbye) are
    /// closed.
    fn poll_with_fds(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<FrameWithFds, RecvError>>> {
        let next = ready!(Pin::new(&mut self.inner).poll_next(cx));
        // Everything before `end` has been consumed by frames (this one included).
        let end = self.inner.reader_mut().position() - self.inner.buffered() as u64;
        Poll::Ready(match next {
            Some(Ok(frame)) => {
                let start = end - PREFIX - frame.len() as u64;
                let fds = self.inner.reader_mut().take_fds(start, end);
                Some(Ok((frame, fds)))
            }
            Some(Err(e)) => Some(Err(e)),
            None => {
                // The end: fds still queued belong to nothing.
                self.inner.reader_mut().take_fds(end, end);
                None
            }
        })
    }
}

impl RecvFds for UdsReceiver {
    async fn recv_with_fds(&mut self) -> Result<Option<(Bytes, Vec<OwnedFd>)>, RecvError> {
        std::future::poll_fn(|cx| self.poll_with_fds(cx))
            .await
            .transpose()
    }
}

impl RecvFds for UdsChannel {
    fn recv_with_fds(
        &mut self,
    ) -> impl Future<Output = Result<Option<(Bytes, Vec<OwnedFd>)>, RecvError>> + Send {
        self.receiver_mut().recv_with_fds()
    }
}

/// Frames without their fds (which are closed).
impl Stream for UdsReceiver {
    type Item = Result<Bytes, RecvError>;

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, RecvError>>> {
        self.get_mut()
            .poll_with_fds(cx)
            .map(|next| next.map(|item| item.map(|(frame, _fds)| frame)))
    }
}

impl RecvHalf for UdsReceiver {
    fn info(&self) -> ChannelInfo {
        RecvHalf::info(&self.inner)
    }

    /// Every whole frame of one read, without their fds (which are closed, as by
    /// `recv`).
    fn poll_recv_many(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut Vec<Bytes>,
        max: usize,
    ) -> Poll<Result<usize, RecvError>> {
        let got = ready!(self.inner.poll_recv_many(cx, out, max));
        // Everything before `end` has been consumed; fds that came with it are closed.
        let end = self.inner.reader_mut().position() - self.inner.buffered() as u64;
        drop(self.inner.reader_mut().take_fds(end, end));
        Poll::Ready(got)
    }
}

/// A connected pair of channels in this process (a `socketpair`), e.g. for tests or to
/// hand one end to a thread. Both report this process as the peer.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// let (mut a, mut b) = ipc_uds::pair(&ipc_core::Options::default())?;
/// b.send("pong".into()).await?;
/// assert_eq!(a.recv().await?.as_deref(), Some(&b"pong"[..]));
/// # Ok(()) }
/// ```
pub fn pair(options: &Options) -> Result<(UdsChannel, UdsChannel)> {
    let (a, b) = UnixStream::pair()?;
    Ok((from_stream(a, options)?, from_stream(b, options)?))
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use ipc_core::prelude::*;

    use super::*;

    #[tokio::test]
    async fn recv_many_does_not_give_the_fds_of_its_frames_to_later_ones() {
        let (mut a, mut b) = pair(&Options::default()).expect("pair");
        let file = std::fs::File::open("/dev/null").expect("/dev/null");
        a.send_with_fds("one".into(), &[file.as_fd(), file.as_fd()])
            .await
            .expect("send");
        a.send("two".into()).await.expect("send");
        let mut got = Vec::new();
        while got.len() < 2 {
            b.recv_many(&mut got, 10).await.expect("recv_many");
        }
        assert_eq!(got, ["one", "two"]);
        a.send_with_fds("three".into(), &[file.as_fd()])
            .await
            .expect("send");
        let (frame, fds) = b.recv_with_fds().await.expect("recv").expect("a frame");
        assert_eq!(frame, "three");
        assert_eq!(fds.len(), 1, "fds of an earlier frame given to a later one");
    }
}
