//! [`StreamChannel`]: a [`Channel`](crate::Channel) over any byte stream
//! (`AsyncRead` + `AsyncWrite`), framed by a [`FrameCodec`]. Unix sockets, TCP and
//! pipes are all this type with different readers and writers; no backend writes its
//! own framing loop.
//!
//! [`StreamSender`] is a `Sink` of frames that batches: `feed` encodes small frames into
//! one buffer and keeps large ones as they are, `flush` writes it all with as few
//! system calls as possible (one `writev` for a buffer and a large frame).
//! [`StreamReceiver`] is a `Stream` of frames.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
//! use ipc_core::prelude::*;
//! use ipc_core::{ChannelInfo, frame::{FrameConfig, LengthCodec}, stream};
//! let (a, b) = tokio::io::duplex(64 * 1024);
//! let codec = LengthCodec::new(FrameConfig::default());
//! let (ar, aw) = tokio::io::split(a);
//! let (br, bw) = tokio::io::split(b);
//! let mut left = stream::channel(ar, aw, codec.clone(), ChannelInfo::new("duplex"));
//! let mut right = stream::channel(br, bw, codec, ChannelInfo::new("duplex"));
//! left.send("hi".into()).await?;
//! assert_eq!(right.recv().await?.as_deref(), Some(&b"hi"[..]));
//! for n in 0..3 {
//!     left.feed(n.to_string().into()).await?; // queued, not written yet
//! }
//! left.close().await?; // flushes the three, then says goodbye
//! let rest: Vec<_> = right.map(|frame| frame.expect("a frame")).collect().await;
//! assert_eq!(rest, ["0", "1", "2"]);
//! # Ok(()) }
//! ```

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::channel::{ChannelInfo, RecvHalf, SendHalf};
use crate::duplex::Duplex;
use crate::error::{Error, RecvError, Result, SendError};
use crate::frame::{Decoded, FrameCodec, Outbound, Wrapping, LARGE_FRAME};
use crate::spin::{LowLatency, Spinner};

/// How many bytes of small frames [`StreamSender`] queues before `feed` writes them.
const BATCH: usize = 64 * 1024;

/// Map an I/O error on a live stream to the toolkit's meaning of it.
fn classify(e: Error) -> Error {
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

/// Map a failed write to the toolkit's meaning of it: the peer's end is gone
/// (`EPIPE`, reset, ...) means [`Error::Closed`] if the peer said goodbye first
/// (`peer_closed`), [`Error::PeerLost`] if it did not; other errors are kept.
///
/// ```
/// use std::io;
/// use ipc_core::{stream::classify_write_error, Error};
/// let gone = || Error::Io(io::ErrorKind::BrokenPipe.into());
/// assert!(matches!(classify_write_error(gone(), false), Error::PeerLost(_)));
/// assert!(matches!(classify_write_error(gone(), true), Error::Closed));
/// ```
pub fn classify_write_error(e: Error, peer_closed: bool) -> Error {
    match e {
        Error::Io(io)
            if matches!(
                io.kind(),
                io::ErrorKind::BrokenPipe
                    | io::ErrorKind::NotConnected
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
            ) =>
        {
            if peer_closed {
                Error::Closed
            } else {
                Error::PeerLost(format!("writing to it failed: {io}"))
            }
        }
        other => other,
    }
}

/// Set by a [`StreamReceiver`] when it decodes the peer's goodbye, read by the
/// [`StreamSender`] of the same channel to tell a peer that closed from one that was
/// lost.
type PeerClosed = Arc<AtomicBool>;

/// A [`Channel`](crate::Channel) over a reader and a writer, framed by a
/// [`FrameCodec`]: the [`Duplex`] of a [`StreamSender`] and a [`StreamReceiver`]. Make
/// one with [`channel`].
pub type StreamChannel<R, W, C> = Duplex<StreamSender<W, C>, StreamReceiver<R, C>>;

/// Build a [`StreamChannel`] from the two directions of a stream. Its sending half
/// knows when the receiving half has seen the peer's goodbye (a failed write is then
/// [`Error::Closed`], not [`Error::PeerLost`]).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// use ipc_core::{frame::LengthCodec, stream, ChannelInfo};
/// let (a, _b) = tokio::io::duplex(1024);
/// let (read, write) = tokio::io::split(a);
/// let codec = LengthCodec::new(Default::default());
/// let ch = stream::channel(read, write, codec, ChannelInfo::new("mem"));
/// let (tx, rx) = ch.into_split();
/// # let _ = (tx, rx); Ok(()) }
/// ```
pub fn channel<R, W, C>(reader: R, writer: W, codec: C, info: ChannelInfo) -> StreamChannel<R, W, C>
where
    R: AsyncRead + Send + Unpin + 'static,
    W: AsyncWrite + Send + Unpin + 'static,
    C: FrameCodec,
{
    let peer_closed = PeerClosed::default();
    Duplex::new(
        StreamSender::linked(writer, codec.clone(), info.clone(), peer_closed.clone()),
        StreamReceiver::linked(reader, codec, info, peer_closed),
    )
}

/// Where a [`StreamSender`] is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Sending frames.
    Open,
    /// `close` began: the goodbye is queued; frames are refused.
    Closing,
    /// Closed, or shut down without a goodbye: frames are refused.
    Closed,
}

/// The sending half of a [`StreamChannel`]: a [`Sink`] of frames.
///
/// `feed` (`start_send`) encodes a small frame into a buffer, and keeps a large one
/// (16 KiB or more, with the toolkit's own codecs) as its `Bytes`;
/// `flush` writes them all, the large ones straight from their payload with `writev`
/// (prefix, payload, suffix: no copy), the buffer before them in the same call. Once
/// 64 KiB of small frames are queued, `feed` writes them before taking more, and after
/// a large frame it writes before taking the next; so memory stays bounded. `send`
/// (`feed` + `flush`) writes one frame at once.
///
/// Each frame counts against the tokio task's cooperative budget, so a loop of sends
/// that never waits (the peer keeps up) still lets other tasks and signal handlers run.
///
/// A `send`, `flush` or `close` future dropped part way loses nothing: what was queued
/// stays queued and the next call finishes it, so frames on the wire stay whole.
///
/// [`close`](SinkExt::close) is the only clean end: it writes what is queued, then the
/// goodbye, and the peer's `recv` gives `Ok(None)`. Dropping the half without `close`
/// is an abort: no goodbye, frames fed but not yet flushed are discarded, and the write
/// direction is shut down at once, so the peer's `recv` gives [`Error::PeerLost`] (it
/// never waits for the rest of a frame cut by the drop), even while this process keeps
/// the receiving half.
pub struct StreamSender<W: AsyncWrite + Unpin, C: FrameCodec> {
    framed: FramedWrite<W, C>,
    /// A large frame, written from its payload after what the codec's buffer holds
    /// (frames queued before it). While it is `Some`, no frame is queued after it.
    direct: Option<DirectWrite>,
    info: ChannelInfo,
    phase: Phase,
    /// A write failed: the stream may end inside a frame, so it was shut down; later
    /// sends fail the same way.
    failed: Option<Error>,
    /// A frame written by the backend itself ([`write_own_frame`](Self::write_own_frame))
    /// was left half-written by a cancelled future.
    torn: bool,
    /// The receiving half of this channel has seen the peer's goodbye.
    peer_closed: PeerClosed,
}

impl<W: AsyncWrite + Unpin, C: FrameCodec> std::fmt::Debug for StreamSender<W, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSender")
            .field("info", &self.info)
            .field("queued", &self.framed.write_buffer().len())
            .field("phase", &self.phase)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

/// A frame written without copying its payload: `wrap.prefix`, `payload`,
/// `wrap.suffix`, of which `done` bytes are written.
struct DirectWrite {
    wrap: Wrapping,
    payload: Bytes,
    done: usize,
}

impl DirectWrite {
    fn total(&self) -> usize {
        self.wrap.prefix().len() + self.payload.len() + self.wrap.suffix().len()
    }

    /// The unwritten rest as (at most) three slices.
    fn rest(&self) -> [IoSlice<'_>; 3] {
        let parts = [self.wrap.prefix(), &self.payload[..], self.wrap.suffix()];
        let mut skip = self.done;
        parts.map(|part| {
            let from = skip.min(part.len());
            skip -= from;
            IoSlice::new(&part[from..])
        })
    }
}

/// Why a sender refuses to write after a frame of its own was cut.
const TORN: &str = "a frame the transport wrote itself (e.g. one with file descriptors, from \
                    send_with_fds) was cancelled half-way, so the stream was shut down there";

impl<W: AsyncWrite + Send + Unpin + 'static, C: FrameCodec> StreamSender<W, C> {
    /// Wrap a writer. (Made by [`channel`], it also knows whether the channel's
    /// receiving half has seen the peer's goodbye; see [`Error::Closed`].)
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
    /// use ipc_core::prelude::*;
    /// use ipc_core::{frame::LengthCodec, stream::StreamSender, ChannelInfo};
    /// let (a, _b) = tokio::io::duplex(1024);
    /// let mut tx = StreamSender::new(a, LengthCodec::new(Default::default()), ChannelInfo::new("mem"));
    /// tx.send("hello".into()).await?;
    /// # Ok(()) }
    /// ```
    pub fn new(writer: W, codec: C, info: ChannelInfo) -> Self {
        Self::linked(writer, codec, info, PeerClosed::default())
    }

    fn linked(writer: W, codec: C, info: ChannelInfo, peer_closed: PeerClosed) -> Self {
        let info = info.with_max_frame(codec.max_frame());
        let mut framed = FramedWrite::new(writer, codec);
        framed.set_backpressure_boundary(BATCH);
        StreamSender {
            framed,
            direct: None,
            info,
            phase: Phase::Open,
            failed: None,
            torn: false,
            peer_closed,
        }
    }

    /// The underlying writer (for backends that need the socket, e.g. fd passing).
    pub fn writer(&self) -> &W {
        self.framed.get_ref()
    }

    /// The codec (its limits).
    pub fn codec(&self) -> &C {
        self.framed.encoder()
    }

    /// Begin writing one frame by other means than this sender's codec (e.g. `sendmsg`
    /// with file descriptors attached), in order with the frames sent through it:
    /// everything queued is written first, then the writer is handed out. Write the
    /// whole frame with it, then call [`finish_own_frame`](Self::finish_own_frame)
    /// with the outcome.
    ///
    /// Until then the frame counts as cut: if the write is cancelled (its future
    /// dropped) or fails, part of the frame may be on the wire, so the write direction
    /// is shut down (by `finish_own_frame` on failure, else at the next call on this
    /// sender or when it is dropped): the peer sees the stream end inside that frame,
    /// and later sends fail.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
    /// use ipc_core::prelude::*;
    /// use ipc_core::{frame::LengthCodec, stream, ChannelInfo};
    /// let (a, b) = tokio::net::UnixStream::pair()?;
    /// let (ar, aw) = a.into_split();
    /// let (br, bw) = b.into_split();
    /// let codec = LengthCodec::new(Default::default());
    /// let info = ChannelInfo::new("mem");
    /// let (mut tx, _) = stream::channel(ar, aw, codec.clone(), info.clone()).into_split();
    /// let (_, mut rx) = stream::channel(br, bw, codec, info).into_split();
    /// tx.feed("queued first".into()).await?;
    /// let writer = tx.start_own_frame().await?;
    /// let written = writer.as_ref().try_write(b"\0\0\0\x02hi").map(drop);
    /// tx.finish_own_frame(written)?;
    /// assert_eq!(rx.recv().await?.as_deref(), Some(&b"queued first"[..]));
    /// assert_eq!(rx.recv().await?.as_deref(), Some(&b"hi"[..]));
    /// # Ok(()) }
    /// ```
    pub async fn start_own_frame(&mut self) -> Result<&W> {
        self.check()?;
        self.flush().await?;
        self.torn = true;
        Ok(self.framed.get_ref())
    }

    /// End what [`start_own_frame`](Self::start_own_frame) began: `written` is the
    /// outcome of writing the frame. A failure shuts the write direction down (see
    /// [`abandon`](Self::abandon)) and is returned as what it means for the channel.
    pub fn finish_own_frame(&mut self, written: io::Result<()>) -> Result<()> {
        self.torn = false;
        written.map_err(|e| self.abandon(Error::Io(e)))
    }
}

impl<W: AsyncWrite + Unpin, C: FrameCodec> StreamSender<W, C> {
    /// Record that a write failed with `e`, and return what it means for this channel
    /// (see [`classify_write_error`]). Unless `e` is about that
    /// frame alone (too large, not encodable: nothing was written), part of a frame
    /// may be on the wire: the write direction is shut down so the peer sees the
    /// stream end there (`PeerLost`) instead of waiting for the rest, and later sends
    /// fail with the same kind of error. For backends that write some frames
    /// themselves (e.g. frames carrying fds).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use ipc_core::prelude::*;
    /// use ipc_core::{ChannelInfo, Error, SendError, frame::{FrameConfig, LengthCodec}};
    /// use ipc_core::stream::StreamSender;
    /// let (a, _b) = tokio::io::duplex(1024);
    /// let codec = LengthCodec::new(FrameConfig::default());
    /// let mut tx = StreamSender::new(a, codec, ChannelInfo::new("duplex"));
    /// let e = tx.abandon(Error::PeerLost("reset".into()));
    /// assert!(matches!(e, Error::PeerLost(_)));
    /// assert!(matches!(tx.send("more".into()).await, Err(SendError::PeerLost(_))));
    /// # }
    /// ```
    pub fn abandon(&mut self, e: Error) -> Error {
        let e = classify_write_error(e, self.peer_closed.load(Ordering::Acquire));
        if !e.is_fatal() {
            return e;
        }
        self.direct = None;
        let waker = futures_util::task::noop_waker();
        let _ = Pin::new(self.framed.get_mut()).poll_shutdown(&mut Context::from_waker(&waker));
        self.failed = Some(again(&e));
        e
    }

    /// Shut the write direction down now, without a goodbye and without waiting: the
    /// peer's stream ends (`PeerLost`, since there was no goodbye), even while this
    /// process still holds the receiving half. Later sends fail with
    /// [`Error::Closed`].
    ///
    /// For a backend that wrote part of a frame behind this sender's back and cannot
    /// finish it: anything else written after it would be read as the rest of that
    /// frame.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
    /// use ipc_core::prelude::*;
    /// use ipc_core::{ChannelInfo, RecvError, SendError, frame::{FrameConfig, LengthCodec}};
    /// use ipc_core::stream::{StreamReceiver, StreamSender};
    /// let (a, b) = tokio::io::duplex(1024);
    /// let codec = LengthCodec::new(FrameConfig::default());
    /// let info = ChannelInfo::new("duplex");
    /// let mut tx = StreamSender::new(a, codec.clone(), info.clone());
    /// let mut rx = StreamReceiver::new(b, codec, info);
    /// tx.shut_down_now();
    /// assert!(matches!(rx.recv().await, Err(RecvError::PeerLost(_))));
    /// assert!(matches!(tx.send("late".into()).await, Err(SendError::Closed)));
    /// # Ok(()) }
    /// ```
    pub fn shut_down_now(&mut self) {
        self.phase = Phase::Closed;
        self.direct = None;
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let _ = Pin::new(self.framed.get_mut()).poll_shutdown(&mut cx);
    }

    /// Refuse to write after `close`, after a failed write, or after a frame of the
    /// backend's own was cut (which shuts the stream down now). Inlined: it runs twice
    /// per frame (`poll_ready`, `start_send`), and the usual answer is yes.
    #[inline]
    fn check(&mut self) -> Result<()> {
        if self.phase == Phase::Open && self.failed.is_none() && !self.torn {
            return Ok(());
        }
        self.refusal()
    }

    /// Why [`check`](Self::check) refuses.
    #[cold]
    fn refusal(&mut self) -> Result<()> {
        if self.phase != Phase::Open {
            return Err(Error::Closed);
        }
        if let Some(e) = &self.failed {
            return Err(again(e));
        }
        if self.torn {
            self.torn = false;
            return Err(self.abandon(Error::Io(io::Error::other(TORN))));
        }
        Ok(())
    }

    /// Write everything queued: the codec's buffer, then the large frame if there is
    /// one (both in one `writev` where the writer takes it).
    fn poll_write_queued(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        while let Some(direct) = &mut self.direct {
            // The buffer is taken out so that it and the writer can be used at once.
            let mut queued = std::mem::take(self.framed.write_buffer_mut());
            let polled = {
                let [prefix, payload, suffix] = direct.rest();
                let slices = [IoSlice::new(&queued), prefix, payload, suffix];
                Pin::new(self.framed.get_mut()).poll_write_vectored(cx, &slices)
            };
            let step = match polled {
                Poll::Ready(Ok(0)) => Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    let from_queue = n.min(queued.len());
                    queued.advance(from_queue);
                    direct.done += n - from_queue;
                    if direct.done >= direct.total() {
                        self.direct = None;
                    }
                    Poll::Ready(Ok(()))
                }
                other => other.map_ok(drop),
            };
            *self.framed.write_buffer_mut() = queued;
            ready!(step)?;
        }
        // The buffer is one slice: a plain `write` (a pipe's `writev` of one slice costs
        // the kernel more for the same bytes).
        let mut queued = std::mem::take(self.framed.write_buffer_mut());
        let step = loop {
            if queued.is_empty() {
                break Poll::Ready(Ok(()));
            }
            match Pin::new(self.framed.get_mut()).poll_write(cx, &queued) {
                Poll::Ready(Ok(0)) => break Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => queued.advance(n),
                Poll::Ready(Err(e)) => break Poll::Ready(Err(e)),
                Poll::Pending => break Poll::Pending,
            }
        };
        *self.framed.write_buffer_mut() = queued;
        ready!(step)?;
        ready!(Pin::new(self.framed.get_mut()).poll_flush(cx))?;
        Poll::Ready(Ok(()))
    }
}

/// The error to give again for a send after a write failed with `e`.
fn again(e: &Error) -> Error {
    match e {
        Error::Closed => Error::Closed,
        Error::PeerLost(why) => Error::PeerLost(why.clone()),
        other => Error::Io(io::Error::other(format!(
            "an earlier send failed ({other}), possibly in the middle of a frame, so this \
             channel can send no more; open a new channel"
        ))),
    }
}

impl<W: AsyncWrite + Unpin, C: FrameCodec> StreamSender<W, C> {
    fn sink_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        this.check()?;
        // One unit of the task's cooperative budget per frame: a send that never waits
        // (the peer keeps up) must still let other tasks and signal handlers run.
        let coop = ready!(tokio::task::coop::poll_proceed(cx));
        if this.direct.is_some() || this.framed.write_buffer().len() >= BATCH {
            ready!(this.poll_write_queued(cx)).map_err(|e| this.abandon(e))?;
        }
        coop.made_progress();
        Poll::Ready(Ok(()))
    }

    fn sink_start(self: Pin<&mut Self>, frame: Bytes) -> Result<()> {
        let this = self.get_mut();
        this.check()?;
        if this.direct.is_some() {
            return Err(Error::Io(io::Error::other(
                "a frame was queued behind a large one still being written \
                 (Sink::start_send without poll_ready returning Ready first)",
            )));
        }
        if frame.len() >= LARGE_FRAME {
            if let Some(wrap) = this.framed.encoder().wrapping(&frame) {
                this.direct = Some(DirectWrite {
                    wrap: wrap?,
                    payload: frame,
                    done: 0,
                });
                return Ok(());
            }
        }
        // An encoding error (too large, not a line, ...) concerns this frame alone.
        Pin::new(&mut this.framed).start_send(Outbound::Data(frame))
    }

    fn sink_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        if this.phase == Phase::Closed {
            return Poll::Ready(Ok(()));
        }
        if let Some(e) = &this.failed {
            return Poll::Ready(Err(again(e)));
        }
        if this.torn {
            this.torn = false;
            return Poll::Ready(Err(this.abandon(Error::Io(io::Error::other(TORN)))));
        }
        this.poll_write_queued(cx).map_err(|e| this.abandon(e))
    }

    fn sink_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        if this.phase == Phase::Open {
            this.check()?;
            ready!(this.poll_write_queued(cx)).map_err(|e| this.abandon(e))?;
            Pin::new(&mut this.framed)
                .start_send(Outbound::Goodbye)
                .map_err(|e| this.abandon(e))?;
            this.phase = Phase::Closing;
        }
        if this.phase == Phase::Closing {
            if let Some(e) = &this.failed {
                return Poll::Ready(Err(again(e)));
            }
            ready!(Pin::new(&mut this.framed).poll_flush(cx)).map_err(|e| this.abandon(e))?;
            match ready!(Pin::new(this.framed.get_mut()).poll_shutdown(cx)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
                Err(e) => return Poll::Ready(Err(this.abandon(Error::Io(e)))),
            }
            this.phase = Phase::Closed;
        }
        Poll::Ready(Ok(()))
    }
}

impl<W: AsyncWrite + Unpin, C: FrameCodec> Sink<Bytes> for StreamSender<W, C> {
    type Error = SendError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SendError>> {
        self.sink_ready(cx).map_err(SendError::from)
    }

    fn start_send(self: Pin<&mut Self>, frame: Bytes) -> Result<(), SendError> {
        self.sink_start(frame).map_err(SendError::from)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SendError>> {
        self.sink_flush(cx).map_err(SendError::from)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SendError>> {
        self.sink_close(cx).map_err(SendError::from)
    }
}

impl<W: AsyncWrite + Send + Unpin + 'static, C: FrameCodec> SendHalf for StreamSender<W, C> {
    fn info(&self) -> ChannelInfo {
        self.info.clone()
    }
}

impl<W: AsyncWrite + Unpin, C: FrameCodec> Drop for StreamSender<W, C> {
    fn drop(&mut self) {
        if self.phase == Phase::Closed || self.failed.is_some() {
            return;
        }
        // Dropped without `close`: an abort. No goodbye (only `close` says one), and
        // nothing more is written: frames fed but not flushed are discarded, a frame
        // under way stays cut. The write direction is shut down, so the peer sees the
        // stream end without a goodbye (`PeerLost`) even if this process keeps the
        // receiving half, whose socket would otherwise stay open.
        self.shut_down_now();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecvState {
    Open,
    Finished,
}

/// The receiving half of a [`StreamChannel`]: a [`Stream`] of frames.
///
/// The peer's goodbye ends the stream; a rejected frame (too large: skipped without
/// being buffered; undecodable) is one `Err` item and the stream goes on; the stream
/// ending without a goodbye, or breaking, is one `Err` item
/// ([`RecvError::PeerLost`], ...), then the end.
///
/// Each frame received, like each frame sent by [`StreamSender`], uses one unit of the
/// tokio task's cooperative budget: a loop that receives frames which are always
/// already there yields to the runtime now and then, so other tasks and signal
/// handlers run.
///
/// In low-latency mode ([`set_low_latency`](Self::set_low_latency), or
/// [`IPC_LOW_LATENCY`](crate::spin::LOW_LATENCY_ENV) in the environment when it is
/// made) a receive that finds nothing polls for a bounded, adaptive time before the
/// task parks, at a CPU cost (see [`spin`](crate::spin)).
pub struct StreamReceiver<R, C> {
    framed: FramedRead<R, C>,
    info: ChannelInfo,
    state: RecvState,
    peer_closed: PeerClosed,
    spin: Option<Spinner>,
}

impl<R, C> std::fmt::Debug for StreamReceiver<R, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamReceiver")
            .field("info", &self.info)
            .field("buffered", &self.framed.read_buffer().len())
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<R: AsyncRead + Send + Unpin + 'static, C: FrameCodec> StreamReceiver<R, C> {
    /// Wrap a reader.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
    /// use ipc_core::prelude::*;
    /// use ipc_core::{frame::LengthCodec, stream::StreamReceiver, ChannelInfo};
    /// let wire: &[u8] = b"\0\0\0\x02hi\xff\xff\xff\xff"; // "hi", then goodbye
    /// let mut rx = StreamReceiver::new(wire, LengthCodec::new(Default::default()), ChannelInfo::new("mem"));
    /// assert_eq!(rx.recv().await?.as_deref(), Some(&b"hi"[..]));
    /// assert_eq!(rx.recv().await?, None);
    /// # Ok(()) }
    /// ```
    pub fn new(reader: R, codec: C, info: ChannelInfo) -> Self {
        Self::linked(reader, codec, info, PeerClosed::default())
    }

    fn linked(reader: R, codec: C, info: ChannelInfo, peer_closed: PeerClosed) -> Self {
        let info = info.with_max_frame(codec.max_frame());
        StreamReceiver {
            framed: FramedRead::with_capacity(reader, codec, 64 * 1024),
            info,
            state: RecvState::Open,
            peer_closed,
            spin: LowLatency::for_new_channels().map(Spinner::new),
        }
    }

    /// Turn low-latency mode on (`Some`) or off (`None`): see [`spin`](crate::spin)
    /// for what it does and costs.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
    /// use std::time::Duration;
    /// use ipc_core::prelude::*;
    /// use ipc_core::{frame::LengthCodec, spin::LowLatency, stream::StreamReceiver, ChannelInfo};
    /// let wire: &[u8] = b"\0\0\0\x02hi\xff\xff\xff\xff";
    /// let mut rx = StreamReceiver::new(wire, LengthCodec::new(Default::default()), ChannelInfo::new("mem"));
    /// rx.set_low_latency(Some(LowLatency::new(Duration::from_micros(50))));
    /// assert_eq!(rx.recv().await?.as_deref(), Some(&b"hi"[..]));
    /// # Ok(()) }
    /// ```
    pub fn set_low_latency(&mut self, mode: Option<LowLatency>) {
        self.spin = mode.map(Spinner::new);
    }

    /// The underlying reader (for backends that keep state in it, e.g. received fds).
    pub fn reader_mut(&mut self) -> &mut R {
        self.framed.get_mut()
    }

    /// Bytes read from the stream but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.framed.read_buffer().len()
    }
}

impl<R: AsyncRead + Unpin, C: FrameCodec> Stream for StreamReceiver<R, C> {
    type Item = Result<Bytes, RecvError>;

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, RecvError>>> {
        let this = self.get_mut();
        if this.state == RecvState::Finished {
            return Poll::Ready(None);
        }
        // One unit of the task's cooperative budget per frame: frames decoded from the
        // read buffer never touch the reactor, and a receive that is always ready must
        // still let other tasks (a signal handler, ...) run now and then.
        let coop = ready!(tokio::task::coop::poll_proceed(cx));
        let next = match this.framed.poll_next_unpin(cx) {
            Poll::Ready(next) => next,
            Poll::Pending => {
                if let Some(spin) = &mut this.spin {
                    spin.on_pending(cx);
                }
                return Poll::Pending;
            }
        };
        if let Some(spin) = &mut this.spin {
            spin.on_ready();
        }
        coop.made_progress();
        Poll::Ready(match next {
            Some(Ok(Decoded::Frame(frame))) => Some(Ok(frame)),
            Some(Ok(Decoded::Rejected(e))) => Some(Err(e.into())),
            Some(Ok(Decoded::Goodbye)) => {
                this.state = RecvState::Finished;
                this.peer_closed.store(true, Ordering::Release);
                None
            }
            Some(Err(e)) => {
                this.state = RecvState::Finished;
                Some(Err(match classify(e) {
                    Error::Closed => RecvError::PeerLost("the connection was reset".into()),
                    other => other.into(),
                }))
            }
            None => {
                this.state = RecvState::Finished;
                Some(Err(RecvError::PeerLost(
                    "the stream ended without a goodbye frame".into(),
                )))
            }
        })
    }
}

impl<R: AsyncRead + Send + Unpin + 'static, C: FrameCodec> RecvHalf for StreamReceiver<R, C> {
    fn info(&self) -> ChannelInfo {
        self.info.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{FrameConfig, LengthCodec, LineCodec};
    use crate::prelude::*;
    use std::future::Future;
    use std::sync::Mutex;

    fn pair<C: FrameCodec>(
        codec: C,
        capacity: usize,
    ) -> (
        StreamSender<tokio::io::DuplexStream, C>,
        StreamReceiver<tokio::io::DuplexStream, C>,
    ) {
        let (a, b) = tokio::io::duplex(capacity);
        let info = ChannelInfo::new("duplex");
        (
            StreamSender::new(a, codec.clone(), info.clone()),
            StreamReceiver::new(b, codec, info),
        )
    }

    fn frame(len: usize, seed: u8) -> Bytes {
        (0..len)
            .map(|i| b'a' + ((i + seed as usize) % 26) as u8)
            .collect()
    }

    async fn send_and_read_back<C: FrameCodec>(codec: C, frames: Vec<Bytes>) -> Vec<Bytes> {
        let (mut tx, mut rx) = pair(codec, 4096);
        let reading = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(f) = rx.recv().await.expect("recv") {
                got.push(f);
            }
            got
        });
        for f in frames {
            tx.send(f).await.expect("send");
        }
        tx.close().await.expect("close");
        reading.await.expect("join")
    }

    #[tokio::test]
    async fn small_and_large_frames_arrive_whole_and_in_order() {
        let sizes = [1, LARGE_FRAME - 1, LARGE_FRAME, 5, 70_000, 3, 200_000, 2];
        let frames: Vec<Bytes> = sizes.iter().map(|&n| frame(n, n as u8)).collect();
        let length = LengthCodec::new(FrameConfig::default());
        assert_eq!(send_and_read_back(length, frames.clone()).await, frames);
        let line = LineCodec::new(FrameConfig::default());
        assert_eq!(send_and_read_back(line, frames.clone()).await, frames);
    }

    #[tokio::test]
    async fn a_large_send_dropped_part_way_is_finished_by_the_next_call() {
        let (mut tx, mut rx) = pair(LengthCodec::new(FrameConfig::default()), 1024);
        let big = frame(100_000, 7);
        {
            let send = tx.send(big.clone());
            tokio::pin!(send);
            // The pipe holds 1 KiB: the first poll writes part of the frame and waits.
            let waker = futures_util::task::noop_waker();
            let mut cx = Context::from_waker(&waker);
            assert!(send.as_mut().poll(&mut cx).is_pending());
        } // dropped with the frame half written
        let reading = tokio::spawn(async move {
            let first = rx.recv().await.expect("recv").expect("frame");
            let second = rx.recv().await.expect("recv").expect("frame");
            let end = rx.recv().await.expect("recv");
            (first, second, end)
        });
        tx.send(Bytes::from_static(b"after")).await.expect("send");
        tx.close().await.expect("close");
        let (first, second, end) = reading.await.expect("join");
        assert_eq!(first, big);
        assert_eq!(second, "after");
        assert_eq!(end, None);
    }

    /// A writer that takes `left` bytes, then fails every write.
    struct FailAfter {
        inner: tokio::io::DuplexStream,
        left: usize,
    }

    impl AsyncWrite for FailAfter {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            if self.left == 0 {
                return Poll::Ready(Err(io::Error::other("the disk is on fire")));
            }
            let n = buf.len().min(self.left);
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &buf[..n]))?;
            self.left -= n;
            Poll::Ready(Ok(n))
        }
        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }
        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    #[tokio::test]
    async fn a_write_failing_mid_frame_ends_the_stream_for_the_peer() {
        for (size, left) in [(100, 50), (LARGE_FRAME * 2, LARGE_FRAME)] {
            let (a, b) = tokio::io::duplex(1 << 20);
            let codec = LengthCodec::new(FrameConfig::default());
            let info = ChannelInfo::new("duplex");
            let writer = FailAfter { inner: a, left };
            let mut tx = StreamSender::new(writer, codec.clone(), info.clone());
            let mut rx = StreamReceiver::new(b, codec, info);
            let err = tx.send(frame(size, 1)).await.expect_err("the write fails");
            assert!(err.to_string().contains("on fire"), "{err}");
            // The sender still exists: the peer must not wait for the rest of the frame.
            let end = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
                .await
                .expect("the peer hung on a frame cut by a failed write");
            assert!(matches!(end, Err(RecvError::PeerLost(_))), "{end:?}");
            let again = tx
                .send(frame(3, 0))
                .await
                .expect_err("the stream is broken");
            assert!(again.to_string().contains("on fire"), "{again}");
        }
    }

    #[tokio::test]
    async fn oversize_large_frame_is_refused_before_writing() {
        let codec = LengthCodec::new(FrameConfig::builder().max_frame(LARGE_FRAME).build());
        let (mut tx, mut rx) = pair(codec, 1 << 20);
        let err = tx
            .send(frame(LARGE_FRAME + 1, 0))
            .await
            .expect_err("too big");
        assert!(
            matches!(err, SendError::Rejected(Error::FrameTooLarge { .. })),
            "{err:?}"
        );
        tx.send(Bytes::from_static(b"ok")).await.expect("send");
        assert_eq!(rx.recv().await.expect("recv").as_deref(), Some(&b"ok"[..]));
    }

    /// A writer that keeps what is written and counts the write calls.
    #[derive(Clone, Default)]
    struct Recorder {
        wire: Arc<Mutex<(Vec<u8>, usize)>>,
    }

    impl Recorder {
        fn writes(&self) -> usize {
            self.wire.lock().expect("lock").1
        }
        fn bytes(&self) -> Vec<u8> {
            self.wire.lock().expect("lock").0.clone()
        }
    }

    impl AsyncWrite for Recorder {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let mut wire = self.wire.lock().expect("lock");
            wire.0.extend_from_slice(buf);
            wire.1 += 1;
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_write_vectored(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let mut wire = self.wire.lock().expect("lock");
            for buf in bufs {
                wire.0.extend_from_slice(buf);
            }
            wire.1 += 1;
            Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum()))
        }
        fn is_write_vectored(&self) -> bool {
            true
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    async fn read_all(wire: Vec<u8>) -> Vec<Bytes> {
        let codec = LengthCodec::new(FrameConfig::default());
        let rx = StreamReceiver::new(io::Cursor::new(wire), codec, ChannelInfo::new("mem"));
        rx.map(|frame| frame.expect("a frame")).collect().await
    }

    #[tokio::test]
    async fn fed_frames_go_out_in_one_write_on_flush() {
        let wire = Recorder::default();
        let codec = LengthCodec::new(FrameConfig::default());
        let mut tx = StreamSender::new(wire.clone(), codec, ChannelInfo::new("mem"));
        let mut frames: Vec<Bytes> = (0..100u8).map(|n| frame(1 + n as usize, n)).collect();
        // Small frames queued, then a large one (kept as it is) and one more small one.
        for f in &frames {
            tx.feed(f.clone()).await.expect("feed");
        }
        assert_eq!(wire.writes(), 0, "feed wrote before the batch was full");
        frames.push(frame(LARGE_FRAME * 4, 9));
        tx.feed(frames[100].clone()).await.expect("feed");
        tx.flush().await.expect("flush");
        assert_eq!(
            wire.writes(),
            1,
            "the queued frames and the large one in one writev"
        );
        frames.push(frame(3, 1));
        tx.send(frames[101].clone()).await.expect("send");
        tx.close().await.expect("close");
        assert_eq!(read_all(wire.bytes()).await, frames);
    }

    #[tokio::test]
    async fn send_many_writes_small_frames_in_one_write_and_large_ones_without_a_copy() {
        let wire = Recorder::default();
        let codec = LengthCodec::new(FrameConfig::default());
        let mut tx = StreamSender::new(wire.clone(), codec, ChannelInfo::new("mem"));
        let small: Vec<Bytes> = (0..500u32).map(|n| frame(64, n as u8)).collect();
        tx.send_many(&small).await.expect("send_many");
        assert_eq!(wire.writes(), 1, "500 frames of 64 B in one write");
        // 64 KiB of small frames fill the batch: one write per batch, not per frame.
        let many: Vec<Bytes> = (0..5000u32).map(|n| frame(64, n as u8)).collect();
        tx.send_many(&many).await.expect("send_many");
        let batches = (5000 * 68usize).div_ceil(BATCH);
        assert!(wire.writes() <= 1 + batches + 1, "{} writes", wire.writes());
        // A large frame between small ones: one writev with the buffer before it.
        let mixed = [frame(10, 1), frame(LARGE_FRAME * 2, 2), frame(10, 3)];
        let before = wire.writes();
        tx.send_many(&mixed).await.expect("send_many");
        assert_eq!(
            wire.writes() - before,
            2,
            "buffer + large frame, then the rest"
        );
        // A frame refused on its own stops the batch; the ones before it are sent.
        let limited = LengthCodec::new(FrameConfig::builder().max_frame(100).build());
        let wire2 = Recorder::default();
        let mut tx2 = StreamSender::new(wire2.clone(), limited, ChannelInfo::new("mem"));
        let batch = [frame(5, 0), frame(101, 0), frame(6, 0)];
        let e = tx2.send_many(&batch).await.expect_err("too large");
        assert!(matches!(e, SendError::Rejected(_)), "{e:?}");
        tx2.close().await.expect("close");
        assert_eq!(read_all(wire2.bytes()).await, [frame(5, 0)]);
        tx.close().await.expect("close");
        let mut all = small.clone();
        all.extend(many);
        all.extend(mixed);
        assert_eq!(read_all(wire.bytes()).await, all);
    }

    /// A reader that counts how often it is read.
    struct CountingReader {
        inner: io::Cursor<Vec<u8>>,
        reads: Arc<Mutex<usize>>,
    }

    impl AsyncRead for CountingReader {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            *self.reads.lock().expect("lock") += 1;
            Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    #[tokio::test]
    async fn every_whole_frame_of_one_read_is_decoded_before_reading_again() {
        let mut wire = Vec::new();
        for n in 0..300u32 {
            wire.extend_from_slice(&4u32.to_be_bytes());
            wire.extend_from_slice(&n.to_be_bytes());
        }
        let reads = Arc::new(Mutex::new(0));
        let reader = CountingReader {
            inner: io::Cursor::new(wire),
            reads: reads.clone(),
        };
        let codec = LengthCodec::new(FrameConfig::default());
        let mut rx = StreamReceiver::new(reader, codec, ChannelInfo::new("mem"));
        for n in 0..300u32 {
            let got = rx.recv().await.expect("recv").expect("a frame");
            assert_eq!(got[..], n.to_be_bytes());
        }
        assert_eq!(*reads.lock().expect("lock"), 1, "300 frames from one read");
    }

    #[tokio::test]
    async fn the_stream_goes_on_after_a_rejected_frame_and_ends_after_a_lost_peer() {
        let mut wire = Vec::new();
        wire.extend_from_slice(&100u32.to_be_bytes());
        wire.extend_from_slice(&[0; 100]); // over the limit of 10 bytes
        wire.extend_from_slice(b"\0\0\0\x02ok");
        wire.extend_from_slice(b"\0\0\0\x09cut"); // ends inside a frame
        let codec = LengthCodec::new(FrameConfig::builder().max_frame(10).build());
        let mut rx = StreamReceiver::new(io::Cursor::new(wire), codec, ChannelInfo::new("mem"));
        assert!(matches!(
            rx.next().await,
            Some(Err(RecvError::Rejected(Error::FrameTooLarge {
                len: 100,
                ..
            })))
        ));
        assert_eq!(
            rx.next().await.transpose().expect("ok"),
            Some(Bytes::from("ok"))
        );
        assert!(matches!(rx.next().await, Some(Err(RecvError::PeerLost(_)))));
        assert!(rx.next().await.is_none());
        assert_eq!(rx.recv().await.expect("ended"), None);
    }
}
