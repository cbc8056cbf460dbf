//! [`UdsChannel`]: a [`Channel`] over a connected Unix stream socket, with fd passing.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

use async_trait::async_trait;
use bytes::Bytes;
use ipc_core::frame::{FrameCodec, FrameConfig, LengthCodec};
use ipc_core::stream::{StreamChannel, StreamReceiver, StreamSender};
use ipc_core::{Channel, ChannelInfo, Error, RecvHalf, Result, SendHalf};
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

/// A message channel over a connected Unix stream socket.
///
/// Frames are length-prefixed (the shared [`LengthCodec`]); besides the [`Channel`]
/// methods it can pass open file descriptors with a frame
/// ([`send_with_fds`](Self::send_with_fds) / [`recv_with_fds`](Self::recv_with_fds)).
///
/// Get one from [`pair`](crate::pair), [`connect`](crate::connect),
/// [`UdsListener::accept`](crate::UdsListener::accept) or [`spawn`](crate::spawn).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// use ipc_core::Channel;
/// let (mut a, mut b) = ipc_uds::pair(Default::default())?;
/// a.send("ping".into()).await?;
/// assert_eq!(b.recv().await?.as_deref(), Some(&b"ping"[..]));
/// assert_eq!(b.info().peer_pid, Some(std::process::id()));
/// # Ok(()) }
/// ```
///
/// # Passed fds and plain `recv`
///
/// [`Channel::recv`] on a frame that carried fds returns the frame and **closes** the
/// fds (they are never leaked, and never given to a later frame). Use
/// [`recv_with_fds`](Self::recv_with_fds) where fds are expected.
#[derive(Debug)]
pub struct UdsChannel {
    tx: UdsSender,
    rx: UdsReceiver,
}

/// The sending half of a [`UdsChannel`] (see [`UdsChannel::into_split`]).
///
/// Dropping it shuts the socket down for writing (after a goodbye when it can be
/// written without waiting), even while the receiving half lives on: the peer never
/// waits for the rest of a frame whose send was cancelled.
pub struct UdsSender {
    inner: StreamSender<SockWriter, LengthCodec>,
    max_frame: usize,
    closed: bool,
    /// A `send_with_fds` was dropped mid-frame: the stream is out of step.
    torn: bool,
}

/// The receiving half of a [`UdsChannel`] (see [`UdsChannel::into_split`]).
pub struct UdsReceiver {
    inner: StreamReceiver<FdReader, LengthCodec>,
}

impl std::fmt::Debug for UdsSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdsSender")
            .field("info", &SendHalf::info(self))
            .field("closed", &self.closed)
            .finish()
    }
}

impl std::fmt::Debug for UdsReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdsReceiver")
            .field("info", &RecvHalf::info(self))
            .finish()
    }
}

impl UdsChannel {
    /// Wrap a connected tokio [`UnixStream`]; the peer's pid and uid come from
    /// `SO_PEERCRED`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
    /// let (a, b) = tokio::net::UnixStream::pair()?;
    /// let a = ipc_uds::UdsChannel::from_stream(a, Default::default())?;
    /// # let _ = (a, b); Ok(()) }
    /// ```
    pub fn from_stream(stream: UnixStream, config: FrameConfig) -> Result<Self> {
        let cred = peer_cred(&stream)?;
        let info = ChannelInfo::new(NAME, config.max_frame())
            .with_peer_pid(cred.pid)
            .with_peer_uid(Some(cred.uid));
        Self::with_info(stream, config, info)
    }

    /// Wrap a connected stream with known info.
    pub(crate) fn with_info(
        stream: UnixStream,
        config: FrameConfig,
        info: ChannelInfo,
    ) -> Result<Self> {
        Self::with_codec(stream, LengthCodec::new(config), info)
    }

    /// Wrap a connected stream with known info and a codec set up by the caller (a
    /// listener's, charging its budget).
    pub(crate) fn with_codec(
        stream: UnixStream,
        codec: LengthCodec,
        info: ChannelInfo,
    ) -> Result<Self> {
        let max_frame = codec.max_frame();
        // Out of tokio's registration (readable and writable), into ours: readable for
        // the read half, writable only while a write waits for room.
        let read: OwnedFd = stream.into_std()?.into();
        let write = read.try_clone()?;
        let (tx, rx) =
            StreamChannel::new(FdReader::new(read)?, SockWriter::new(write), codec, info)
                .into_split();
        Ok(UdsChannel {
            tx: UdsSender {
                inner: tx,
                max_frame,
                closed: false,
                torn: false,
            },
            rx: UdsReceiver { inner: rx },
        })
    }

    /// Send `frame` with open file descriptors attached (`SCM_RIGHTS`). The receiver
    /// gets duplicates of them, on this very frame, from
    /// [`recv_with_fds`](Self::recv_with_fds); ours stay open. At most 253 fds per frame.
    ///
    /// On the wire this is an ordinary frame (same bytes as [`Channel::send`]); the fds
    /// ride on the first `sendmsg` of the frame as an `SCM_RIGHTS` control message, and
    /// the receiving side, which reads only with `recvmsg`, files them under the frame
    /// holding the last byte of the read that brought them (Linux returns from a read
    /// right after the buffer that carried fds).
    ///
    /// If this future is dropped before it completes, part of the frame may already be
    /// written: later sends then fail rather than corrupt the stream.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
    /// use std::os::fd::AsFd;
    /// let (mut a, mut b) = ipc_uds::pair(Default::default())?;
    /// let file = std::fs::File::open("/dev/null")?;
    /// a.send_with_fds("here is a file".into(), &[file.as_fd()]).await?;
    /// let (frame, fds) = b.recv_with_fds().await?.expect("a frame");
    /// assert_eq!(frame, "here is a file");
    /// assert_eq!(fds.len(), 1);
    /// # Ok(()) }
    /// ```
    pub async fn send_with_fds(&mut self, frame: Bytes, fds: &[BorrowedFd<'_>]) -> Result<()> {
        self.tx.send_with_fds(frame, fds).await
    }

    /// Receive the next frame and the fds that were sent with it (empty when none);
    /// `Ok(None)` once the peer closed cleanly. The fds are close-on-exec.
    ///
    /// ```no_run
    /// # async fn demo(mut ch: ipc_uds::UdsChannel) -> ipc_core::Result<()> {
    /// while let Some((frame, fds)) = ch.recv_with_fds().await? {
    ///     for fd in fds {
    ///         let file = std::fs::File::from(fd);
    ///         # let _ = (&frame, file);
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn recv_with_fds(&mut self) -> Result<Option<(Bytes, Vec<OwnedFd>)>> {
        self.rx.recv_with_fds().await
    }

    /// Split into concrete halves that two tasks can use at once.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
    /// let (a, mut b) = ipc_uds::pair(Default::default())?;
    /// let (mut tx, mut rx) = a.into_split();
    /// let writer = tokio::spawn(async move { tx.send("hi".into()).await });
    /// use ipc_core::Channel;
    /// assert_eq!(b.recv().await?.as_deref(), Some(&b"hi"[..]));
    /// writer.await.expect("task")?;
    /// # drop(rx); Ok(()) }
    /// ```
    pub fn into_split(self) -> (UdsSender, UdsReceiver) {
        (self.tx, self.rx)
    }
}

impl UdsSender {
    /// Send one frame (see [`Channel::send`]).
    pub async fn send(&mut self, frame: Bytes) -> Result<()> {
        self.check()?;
        self.inner.send(frame).await
    }

    /// Send one frame with fds attached (see [`UdsChannel::send_with_fds`]).
    pub async fn send_with_fds(&mut self, frame: Bytes, fds: &[BorrowedFd<'_>]) -> Result<()> {
        if fds.is_empty() {
            return self.send(frame).await;
        }
        self.check()?;
        if frame.len() > self.max_frame {
            return Err(Error::FrameTooLarge {
                len: frame.len() as u64,
                max: self.max_frame,
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
        // Frames queued before this one must be on the wire first.
        self.inner.flush().await?;
        // Set while the frame is partly written; still set if this future is dropped
        // midway or the write fails, and then nothing may follow on this stream.
        self.torn = true;
        match send_frame_with_fds(self.inner.writer(), &frame, fds).await {
            Ok(()) => {
                self.torn = false;
                Ok(())
            }
            Err(e) => {
                // Part of the frame may be on the wire: the stream is ended there (the
                // peer gets an error instead of waiting for the rest), and later sends
                // give this error again.
                self.torn = false;
                Err(self.inner.abandon(Error::Io(e)))
            }
        }
    }

    /// Send the goodbye and shut down the sending direction (see [`Channel::close`]).
    pub async fn close(&mut self) -> Result<()> {
        self.closed = true;
        self.inner.close().await
    }

    fn check(&self) -> Result<()> {
        if self.closed {
            return Err(Error::Closed);
        }
        if self.torn {
            return Err(Error::Io(io::Error::other(
                "an earlier send_with_fds was cancelled in the middle of a frame, so the \
                 stream was shut down; open a new channel",
            )));
        }
        Ok(())
    }
}

impl Drop for UdsSender {
    fn drop(&mut self) {
        if self.torn {
            // A frame with fds is cut: no goodbye may follow it. Shut the socket down
            // for writing so the peer sees the stream end inside that frame.
            self.inner.shut_down_now();
        }
    }
}

impl UdsReceiver {
    /// Receive the next frame (see [`Channel::recv`]); fds sent with it are closed.
    pub async fn recv(&mut self) -> Result<Option<Bytes>> {
        Ok(self.recv_with_fds().await?.map(|(frame, _fds)| frame))
    }

    /// Receive the next frame and its fds (see [`UdsChannel::recv_with_fds`]).
    pub async fn recv_with_fds(&mut self) -> Result<Option<(Bytes, Vec<OwnedFd>)>> {
        let frame = self.inner.recv().await?;
        // Everything before `end` has been consumed by frames (this one included).
        let end = self.inner.reader_mut().position() - self.inner.buffered() as u64;
        let Some(frame) = frame else {
            // The goodbye: fds still queued belong to nothing.
            self.inner.reader_mut().take_fds(end, end);
            return Ok(None);
        };
        let start = end - PREFIX - frame.len() as u64;
        let fds = self.inner.reader_mut().take_fds(start, end);
        Ok(Some((frame, fds)))
    }
}

#[async_trait]
impl Channel for UdsChannel {
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
        SendHalf::info(&self.tx)
    }
    fn split(self: Box<Self>) -> (Box<dyn SendHalf>, Box<dyn RecvHalf>) {
        (Box::new(self.tx), Box::new(self.rx))
    }
}

#[async_trait]
impl SendHalf for UdsSender {
    async fn send(&mut self, frame: Bytes) -> Result<()> {
        UdsSender::send(self, frame).await
    }
    async fn close(&mut self) -> Result<()> {
        UdsSender::close(self).await
    }
    fn info(&self) -> ChannelInfo {
        SendHalf::info(&self.inner)
    }
}

#[async_trait]
impl RecvHalf for UdsReceiver {
    async fn recv(&mut self) -> Result<Option<Bytes>> {
        UdsReceiver::recv(self).await
    }
    fn info(&self) -> ChannelInfo {
        RecvHalf::info(&self.inner)
    }
}

/// A connected pair of channels in this process (a `socketpair`), e.g. for tests or to
/// hand one end to a thread. Both report this process as the peer.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// use ipc_core::Channel;
/// let (mut a, mut b) = ipc_uds::pair(Default::default())?;
/// b.send("pong".into()).await?;
/// assert_eq!(a.recv().await?.as_deref(), Some(&b"pong"[..]));
/// # Ok(()) }
/// ```
pub fn pair(config: FrameConfig) -> Result<(UdsChannel, UdsChannel)> {
    let (a, b) = UnixStream::pair()?;
    Ok((
        UdsChannel::from_stream(a, config)?,
        UdsChannel::from_stream(b, config)?,
    ))
}
