//! [`StreamSender`]: the sending half of a [`StreamChannel`](super::StreamChannel), a
//! `Sink` of frames that batches small frames and writes large ones without a copy.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Sink, SinkExt};
use tokio::io::AsyncWrite;

use super::{classify_write_error, PeerClosed};
use crate::channel::{ChannelInfo, SendHalf};
use crate::error::{Error, Result, SendError};
use crate::frame::{FrameCodec, Outbound, Wrapping, LARGE_FRAME};

/// Frames a [`StreamSender`] queues without writing for one unit of the tokio task's
/// cooperative budget (a write costs one unit too).
const FRAMES_PER_BUDGET_UNIT: u8 = 32;

/// How many bytes of small frames [`StreamSender`] queues before `feed` writes them.
pub(super) const BATCH: usize = 64 * 1024;

/// The first size of a [`StreamSender`]'s buffer (it grows to a batch and more as
/// frames are queued).
const WRITE_BUFFER: usize = 8 * 1024;

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

/// The sending half of a [`StreamChannel`](super::StreamChannel): a [`Sink`] of frames.
///
/// `feed` (`start_send`) encodes a small frame into a buffer, and keeps a large one
/// (16 KiB or more, with the toolkit's own codecs) as its `Bytes`;
/// `flush` writes them all, the large ones straight from their payload with `writev`
/// (prefix, payload, suffix: no copy), the buffer before them in the same call. Once
/// 64 KiB of small frames are queued, `feed` writes them before taking more, and after
/// a large frame it writes before taking the next; so memory stays bounded. `send`
/// (`feed` + `flush`) writes one frame at once.
///
/// Each write (a `flush`, so each `send`; a `feed` that finds 64 KiB queued), and every
/// 32nd frame queued without one, counts against the tokio task's cooperative budget,
/// so a loop of sends or feeds that never waits (the peer keeps up) still lets other
/// tasks and signal handlers run.
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
    writer: W,
    codec: C,
    /// Small frames encoded and not yet written (before `direct`, if there is one).
    buffer: BytesMut,
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
    /// A full batch is being written: no frame is queued until all of it is written.
    /// (Queuing more as soon as part of it is written would keep a window of 64 KiB
    /// sliding through the buffer, and making room at its end would move that window
    /// to the front: a copy of every byte sent while the peer is slower.)
    draining: bool,
    /// Frames queued since the cooperative budget was last charged.
    unbudgeted: u8,
    /// The receiving half of this channel has seen the peer's goodbye.
    peer_closed: PeerClosed,
}

impl<W: AsyncWrite + Unpin, C: FrameCodec> std::fmt::Debug for StreamSender<W, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSender")
            .field("info", &self.info)
            .field("queued", &self.buffer.len())
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
    /// Wrap a writer. (Made by [`channel`](super::channel), it also knows whether the channel's
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

    pub(super) fn linked(writer: W, codec: C, info: ChannelInfo, peer_closed: PeerClosed) -> Self {
        let info = info.with_max_frame(codec.max_frame());
        StreamSender {
            writer,
            codec,
            buffer: BytesMut::with_capacity(WRITE_BUFFER),
            direct: None,
            info,
            phase: Phase::Open,
            failed: None,
            torn: false,
            draining: false,
            unbudgeted: 0,
            peer_closed,
        }
    }

    /// The underlying writer (for backends that need the socket, e.g. fd passing).
    pub fn writer(&self) -> &W {
        &self.writer
    }

    /// The codec (its limits).
    pub fn codec(&self) -> &C {
        &self.codec
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
        Ok(&self.writer)
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
        let _ = Pin::new(&mut self.writer).poll_shutdown(&mut Context::from_waker(&waker));
        self.failed = Some(e.for_later_sends());
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
        let _ = Pin::new(&mut self.writer).poll_shutdown(&mut cx);
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
            return Err(e.for_later_sends());
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
        let queued = &mut self.buffer;
        while let Some(direct) = &mut self.direct {
            let polled = {
                let [prefix, payload, suffix] = direct.rest();
                let slices = [IoSlice::new(queued), prefix, payload, suffix];
                Pin::new(&mut self.writer).poll_write_vectored(cx, &slices)
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
            ready!(step)?;
        }
        // The buffer is one slice: a plain `write` (a pipe's `writev` of one slice costs
        // the kernel more for the same bytes).
        let step = loop {
            if queued.is_empty() {
                break Poll::Ready(Ok(()));
            }
            match Pin::new(&mut self.writer).poll_write(cx, queued) {
                Poll::Ready(Ok(0)) => break Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                // All of it written (the usual case): emptied in place, the next frame
                // goes where this one began (`advance` would move the start, and
                // check the buffer's kind to do it). Not the end of a batch written in
                // parts: its start moved, and `try_reclaim` below puts it back.
                Poll::Ready(Ok(n)) if n == queued.len() && !self.draining => queued.clear(),
                Poll::Ready(Ok(n)) => queued.advance(n),
                Poll::Ready(Err(e)) => break Poll::Ready(Err(e)),
                Poll::Pending => break Poll::Pending,
            }
        };
        if self.draining && queued.is_empty() {
            self.draining = false;
            // A whole batch written: the next one goes at the start of the buffer again.
            // Left where this write ended, a buffer with room for two batches fills its
            // second half before a batch is complete, and making room then moves that
            // whole part to the front: a copy of every byte sent. (No allocation here:
            // a buffer too small for a batch is left as it is. After a smaller write,
            // `BytesMut` makes room by itself, moving at most what it just wrote.)
            let _reclaimed = queued.try_reclaim(BATCH);
        }
        ready!(step)?;
        ready!(Pin::new(&mut self.writer).poll_flush(cx))?;
        Poll::Ready(Ok(()))
    }
}

impl<W: AsyncWrite + Unpin, C: FrameCodec> StreamSender<W, C> {
    fn sink_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        this.check()?;
        if this.direct.is_some() || this.draining || this.buffer.len() >= BATCH {
            this.draining = true;
            ready!(this.poll_write_budgeted(cx)).map_err(|e| this.abandon(e))?;
        } else if this.unbudgeted >= FRAMES_PER_BUDGET_UNIT {
            // Frames queued without a write still count: a loop of `feed`s must yield
            // now and then, but the budget's thread-local look-up is paid once per
            // several frames, not for each.
            ready!(tokio::task::coop::poll_proceed(cx)).made_progress();
            this.unbudgeted = 0;
        }
        this.unbudgeted += 1;
        Poll::Ready(Ok(()))
    }

    /// [`poll_write_queued`](Self::poll_write_queued), for one unit of the task's
    /// cooperative budget: sends that never wait (the peer keeps up) must still let
    /// other tasks and signal handlers run. Charged per write; frames queued without
    /// one are charged a unit per [`FRAMES_PER_BUDGET_UNIT`] (each would pay the
    /// budget's thread-local look-up for no system call).
    fn poll_write_budgeted(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let coop = ready!(tokio::task::coop::poll_proceed(cx));
        ready!(self.poll_write_queued(cx))?;
        coop.made_progress();
        self.unbudgeted = 0;
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
            if let Some(wrap) = this.codec.wrapping(&frame) {
                this.direct = Some(DirectWrite {
                    wrap: wrap?,
                    payload: frame,
                    done: 0,
                });
                return Ok(());
            }
        }
        // An encoding error (too large, not a line, ...) concerns this frame alone.
        this.codec.encode(Outbound::Data(frame), &mut this.buffer)
    }

    fn sink_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        if this.phase == Phase::Closed {
            return Poll::Ready(Ok(()));
        }
        if let Some(e) = &this.failed {
            return Poll::Ready(Err(e.for_later_sends()));
        }
        if this.torn {
            this.torn = false;
            return Poll::Ready(Err(this.abandon(Error::Io(io::Error::other(TORN)))));
        }
        this.poll_write_budgeted(cx).map_err(|e| this.abandon(e))
    }

    fn sink_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        if this.phase == Phase::Open {
            this.check()?;
            ready!(this.poll_write_queued(cx)).map_err(|e| this.abandon(e))?;
            this.codec
                .encode(Outbound::Goodbye, &mut this.buffer)
                .map_err(|e| this.abandon(e))?;
            this.phase = Phase::Closing;
        }
        if this.phase == Phase::Closing {
            if let Some(e) = &this.failed {
                return Poll::Ready(Err(e.for_later_sends()));
            }
            ready!(this.poll_write_queued(cx)).map_err(|e| this.abandon(e))?;
            match ready!(Pin::new(&mut this.writer).poll_shutdown(cx)) {
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

#[cfg(test)]
mod tests {
    use futures_util::SinkExt;

    use super::*;
    use crate::frame::LengthCodec;

    #[tokio::test]
    async fn each_batch_is_encoded_from_the_start_of_the_buffer_never_moved() {
        let codec = LengthCodec::new(Default::default());
        // A pipe that takes part of a batch at a time, drained by another task.
        let (writer, mut reader) = tokio::io::duplex(3000);
        tokio::spawn(async move { tokio::io::copy(&mut reader, &mut tokio::io::sink()).await });
        let mut tx = StreamSender::new(writer, codec, ChannelInfo::new("mem"));
        let frame = Bytes::from(vec![7u8; 64]);
        let mut starts = Vec::new();
        for _ in 0..20 * BATCH / 68 {
            tx.feed(frame.clone()).await.expect("feed");
            let queued = &tx.buffer;
            if queued.len() == 68 {
                starts.push(queued.as_ptr());
            }
        }
        // Once the buffer has grown to its size, every batch starts at the same place.
        assert!(starts.len() >= 15, "{} batches", starts.len());
        let settled = &starts[3..];
        assert!(
            settled.iter().all(|&p| p == settled[0]),
            "batches started at {} different places",
            settled
                .iter()
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        );
    }

    /// How many frames a loop of `feed` (or `send`) that never waits made before a
    /// task spawned at its start got to run, on a single-threaded runtime.
    async fn frames_before_another_task_runs(flush_each: bool) -> usize {
        let codec = LengthCodec::new(Default::default());
        let mut tx = StreamSender::new(tokio::io::sink(), codec, ChannelInfo::new("mem"));
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ran.clone();
        tokio::spawn(async move { flag.store(true, std::sync::atomic::Ordering::SeqCst) });
        let frame = Bytes::from_static(b"tick");
        for n in 0..1_000_000 {
            if ran.load(std::sync::atomic::Ordering::SeqCst) {
                return n;
            }
            if flush_each {
                tx.send(frame.clone()).await.expect("send");
            } else {
                tx.feed(frame.clone()).await.expect("feed");
            }
        }
        panic!("a million frames without letting another task run");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_loop_of_sends_or_feeds_that_never_waits_lets_other_tasks_run() {
        let sends = frames_before_another_task_runs(true).await;
        assert!(sends <= 200, "{sends} sends before another task ran");
        let feeds = frames_before_another_task_runs(false).await;
        assert!(feeds <= 8_000, "{feeds} feeds before another task ran");
    }
}
