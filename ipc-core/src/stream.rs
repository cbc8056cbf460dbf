//! [`StreamChannel`]: a [`Channel`] over any byte stream (`AsyncRead` + `AsyncWrite`),
//! framed by a [`FrameCodec`]. Unix sockets, TCP and pipes are all this type with
//! different readers and writers; no backend writes its own framing loop.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
//! use ipc_core::{Channel, ChannelInfo, frame::{FrameConfig, LengthCodec}, stream::StreamChannel};
//! let (a, b) = tokio::io::duplex(64 * 1024);
//! let codec = LengthCodec::new(FrameConfig::default());
//! let (ar, aw) = tokio::io::split(a);
//! let (br, bw) = tokio::io::split(b);
//! let mut left = StreamChannel::new(ar, aw, codec.clone(), ChannelInfo::new("duplex", 8 << 20));
//! let mut right = StreamChannel::new(br, bw, codec, ChannelInfo::new("duplex", 8 << 20));
//! left.send("hi".into()).await?;
//! assert_eq!(right.recv().await?.as_deref(), Some(&b"hi"[..]));
//! left.close().await?;
//! assert_eq!(right.recv().await?, None);
//! # Ok(()) }
//! ```

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{Sink, SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::channel::{Channel, ChannelInfo, RecvHalf, SendHalf};
use crate::error::{Error, Result};
use crate::frame::{Decoded, FrameCodec, Outbound, Wrapping, LARGE_FRAME};

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

/// The sending half of a [`StreamChannel`].
///
/// Dropping it without [`close`](SendHalf::close) still tries, without blocking, to flush
/// what is buffered and send the goodbye, so a peer usually sees a clean close; call
/// `close().await` to be sure. Either way the write direction is shut down on drop: a
/// peer never waits for the rest of a frame cut by a cancelled `send` (it gets
/// [`Error::PeerLost`]), even while this process keeps the receiving half.
///
/// Small frames are encoded into a buffer and written with one write. A large frame
/// ([`LARGE_FRAME`] bytes or more) with the toolkit's own codecs is written straight
/// from its `Bytes` with `writev` (prefix, payload, suffix): no copy of the payload.
/// Either way a frame whose `send` future is dropped part way is finished by the next
/// call (`send`, `flush`, `close`), so frames on the wire stay whole.
pub struct StreamSender<W: AsyncWrite + Unpin, C: FrameCodec> {
    framed: FramedWrite<W, C>,
    /// A large frame being written from its payload; while it is `Some`, the codec's
    /// buffer is empty (it was flushed before the frame started).
    direct: Option<DirectWrite>,
    info: ChannelInfo,
    closed: bool,
    /// A write failed: the stream may end inside a frame, so it was shut down; later
    /// sends fail the same way.
    failed: Option<Error>,
    /// The receiving half of this channel has seen the peer's goodbye.
    peer_closed: PeerClosed,
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

impl<W: AsyncWrite + Send + Unpin + 'static, C: FrameCodec> StreamSender<W, C> {
    /// Wrap a writer. (Made by [`StreamChannel::new`], it also knows whether the
    /// channel's receiving half has seen the peer's goodbye; see [`Error::Closed`].)
    pub fn new(writer: W, codec: C, info: ChannelInfo) -> Self {
        Self::linked(writer, codec, info, PeerClosed::default())
    }

    fn linked(writer: W, codec: C, info: ChannelInfo, peer_closed: PeerClosed) -> Self {
        StreamSender {
            framed: FramedWrite::new(writer, codec),
            direct: None,
            info,
            closed: false,
            failed: None,
            peer_closed,
        }
    }

    /// The underlying writer (for backends that need the socket, e.g. fd passing).
    pub fn writer(&self) -> &W {
        self.framed.get_ref()
    }

    /// Flush buffered frames to the writer.
    pub async fn flush(&mut self) -> Result<()> {
        self.check()?;
        let flushed = async {
            self.finish_direct().await?;
            self.framed.flush().await
        }
        .await;
        flushed.map_err(|e| self.abandon(e))
    }

    /// Send one frame and flush it.
    pub async fn send(&mut self, frame: Bytes) -> Result<()> {
        self.check()?;
        // A send that never waits (the peer keeps up) still counts against the task's
        // cooperative budget, so a loop of sends lets other tasks and signal handlers run.
        tokio::task::coop::consume_budget().await;
        let sent = self.write_frame(frame).await;
        sent.map_err(|e| self.abandon(e))
    }

    async fn write_frame(&mut self, frame: Bytes) -> Result<()> {
        self.finish_direct().await?;
        if frame.len() >= LARGE_FRAME {
            if let Some(wrap) = self.framed.encoder().wrapping(&frame) {
                let wrap = wrap?;
                // Whatever a dropped `send` left in the codec's buffer goes first.
                self.framed.flush().await?;
                self.direct = Some(DirectWrite {
                    wrap,
                    payload: frame,
                    done: 0,
                });
                return self.finish_direct().await;
            }
        }
        self.framed.send(Outbound::Data(frame)).await
    }

    /// Refuse to write after `close` or after a failed write.
    fn check(&self) -> Result<()> {
        if self.closed {
            return Err(Error::Closed);
        }
        match &self.failed {
            Some(e) => Err(again(e)),
            None => Ok(()),
        }
    }

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
    /// use ipc_core::{ChannelInfo, Error, frame::{FrameConfig, LengthCodec}};
    /// use ipc_core::stream::StreamSender;
    /// let (a, _b) = tokio::io::duplex(1024);
    /// let codec = LengthCodec::new(FrameConfig::default());
    /// let mut tx = StreamSender::new(a, codec, ChannelInfo::new("duplex", 8 << 20));
    /// let e = tx.abandon(Error::PeerLost("reset".into()));
    /// assert!(matches!(e, Error::PeerLost(_)));
    /// assert!(matches!(tx.send("more".into()).await, Err(Error::PeerLost(_))));
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

    /// Finish writing a large frame, if one is under way.
    async fn finish_direct(&mut self) -> Result<()> {
        if self.direct.is_none() {
            return Ok(());
        }
        std::future::poll_fn(|cx| self.poll_direct(cx))
            .await
            .map_err(Error::Io)
    }

    fn poll_direct(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(direct) = &mut self.direct {
            let writer = Pin::new(self.framed.get_mut());
            let n = ready!(writer.poll_write_vectored(cx, &direct.rest()))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            direct.done += n;
            if direct.done >= direct.total() {
                self.direct = None;
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Send the goodbye and shut the writer down. Idempotent.
    pub async fn close(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.check()?;
        self.closed = true;
        let closed = async {
            self.finish_direct().await?;
            self.framed.send(Outbound::Goodbye).await?;
            match self.framed.get_mut().shutdown().await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
                Err(e) => Err(Error::Io(e)),
            }
        }
        .await;
        closed.map_err(|e| self.abandon(e))
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
    /// Shut the write direction down now, without a goodbye and without waiting: the
    /// peer's `recv` sees the stream end (`PeerLost`, since there was no goodbye), even
    /// while this process still holds the receiving half. Later sends fail with
    /// [`Error::Closed`].
    ///
    /// For a backend that wrote part of a frame behind this sender's back (e.g. a frame
    /// carrying fds) and cannot finish it: anything else written after it would be
    /// read as the rest of that frame.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
    /// use ipc_core::{ChannelInfo, Error, frame::{FrameConfig, LengthCodec}};
    /// use ipc_core::stream::{StreamReceiver, StreamSender};
    /// let (a, b) = tokio::io::duplex(1024);
    /// let codec = LengthCodec::new(FrameConfig::default());
    /// let info = ChannelInfo::new("duplex", 8 << 20);
    /// let mut tx = StreamSender::new(a, codec.clone(), info.clone());
    /// let mut rx = StreamReceiver::new(b, codec, info);
    /// tx.shut_down_now();
    /// assert!(matches!(rx.recv().await, Err(Error::PeerLost(_))));
    /// assert!(matches!(tx.send("late".into()).await, Err(Error::Closed)));
    /// # Ok(()) }
    /// ```
    pub fn shut_down_now(&mut self) {
        self.closed = true;
        self.direct = None;
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let _ = Pin::new(self.framed.get_mut()).poll_shutdown(&mut cx);
    }
}

impl<W: AsyncWrite + Unpin, C: FrameCodec> Drop for StreamSender<W, C> {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        // Best effort, never blocking: finish a large frame under way, then flush what
        // is buffered plus a goodbye. A goodbye after half a frame would corrupt the
        // stream, so a frame that cannot be finished now is left cut. Either way the
        // write direction is then shut down, so the peer sees the end of the stream
        // (a cut frame or no goodbye: `PeerLost`) even if this process keeps the
        // receiving half, whose socket would otherwise stay open.
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut whole = true;
        while let Some(direct) = &mut self.direct {
            let writer = Pin::new(self.framed.get_mut());
            match writer.poll_write_vectored(&mut cx, &direct.rest()) {
                Poll::Ready(Ok(n)) if n > 0 => {
                    direct.done += n;
                    if direct.done >= direct.total() {
                        self.direct = None;
                    }
                }
                _ => {
                    whole = false;
                    break;
                }
            }
        }
        if whole {
            let mut framed = Pin::new(&mut self.framed);
            if let Poll::Ready(Ok(())) = framed.as_mut().poll_ready(&mut cx) {
                if framed.as_mut().start_send(Outbound::Goodbye).is_ok() {
                    let _ = framed.as_mut().poll_flush(&mut cx);
                }
            }
        }
        self.shut_down_now();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecvState {
    Open,
    Finished,
    Failed,
}

/// The receiving half of a [`StreamChannel`].
///
/// Each frame received, like each frame sent by [`StreamSender`], uses one unit of the
/// tokio task's cooperative budget: a loop that receives frames which are always
/// already there yields to the runtime now and then, so other tasks and signal
/// handlers run.
pub struct StreamReceiver<R, C> {
    framed: FramedRead<R, C>,
    info: ChannelInfo,
    state: RecvState,
    peer_closed: PeerClosed,
}

impl<R: AsyncRead + Send + Unpin + 'static, C: FrameCodec> StreamReceiver<R, C> {
    /// Wrap a reader.
    pub fn new(reader: R, codec: C, info: ChannelInfo) -> Self {
        Self::linked(reader, codec, info, PeerClosed::default())
    }

    fn linked(reader: R, codec: C, info: ChannelInfo, peer_closed: PeerClosed) -> Self {
        StreamReceiver {
            framed: FramedRead::with_capacity(reader, codec, 64 * 1024),
            info,
            state: RecvState::Open,
            peer_closed,
        }
    }

    /// The underlying reader (for backends that keep state in it, e.g. received fds).
    pub fn reader_mut(&mut self) -> &mut R {
        self.framed.get_mut()
    }

    /// Bytes read from the stream but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.framed.read_buffer().len()
    }

    /// Receive the next frame. See [`Channel::recv`].
    pub async fn recv(&mut self) -> Result<Option<Bytes>> {
        match self.state {
            RecvState::Finished => return Ok(None),
            RecvState::Failed => return Err(Error::Closed),
            RecvState::Open => {}
        }
        // One unit of the task's cooperative budget per frame: frames decoded from the
        // read buffer never touch the reactor, and a receive that is always ready must
        // still let other tasks (a signal handler, ...) run now and then.
        let next = std::future::poll_fn(|cx| {
            let coop = ready!(tokio::task::coop::poll_proceed(cx));
            let next = ready!(self.framed.poll_next_unpin(cx));
            coop.made_progress();
            Poll::Ready(next)
        })
        .await;
        match next {
            Some(Ok(Decoded::Frame(frame))) => Ok(Some(frame)),
            Some(Ok(Decoded::Rejected(e))) => Err(e),
            Some(Ok(Decoded::Goodbye)) => {
                self.state = RecvState::Finished;
                self.peer_closed.store(true, Ordering::Release);
                Ok(None)
            }
            Some(Err(e)) => {
                self.state = RecvState::Failed;
                Err(match classify(e) {
                    Error::Closed => Error::PeerLost("the connection was reset".into()),
                    other => other,
                })
            }
            None => {
                self.state = RecvState::Failed;
                Err(Error::PeerLost(
                    "the stream ended without a goodbye frame".into(),
                ))
            }
        }
    }
}

/// A [`Channel`] over a reader and a writer, framed by a [`FrameCodec`].
pub struct StreamChannel<R, W: AsyncWrite + Unpin, C: FrameCodec> {
    rx: StreamReceiver<R, C>,
    tx: StreamSender<W, C>,
}

impl<R, W, C> StreamChannel<R, W, C>
where
    R: AsyncRead + Send + Unpin + 'static,
    W: AsyncWrite + Send + Unpin + 'static,
    C: FrameCodec,
{
    /// Build a channel from the two directions of a stream.
    pub fn new(reader: R, writer: W, codec: C, info: ChannelInfo) -> Self {
        let peer_closed = PeerClosed::default();
        StreamChannel {
            rx: StreamReceiver::linked(reader, codec.clone(), info.clone(), peer_closed.clone()),
            tx: StreamSender::linked(writer, codec, info, peer_closed),
        }
    }

    /// Split into the concrete halves (no boxing).
    pub fn into_split(self) -> (StreamSender<W, C>, StreamReceiver<R, C>) {
        (self.tx, self.rx)
    }

    /// The sending half.
    pub fn sender(&mut self) -> &mut StreamSender<W, C> {
        &mut self.tx
    }

    /// The receiving half.
    pub fn receiver(&mut self) -> &mut StreamReceiver<R, C> {
        &mut self.rx
    }
}

#[async_trait]
impl<R, W, C> Channel for StreamChannel<R, W, C>
where
    R: AsyncRead + Send + Unpin + 'static,
    W: AsyncWrite + Send + Unpin + 'static,
    C: FrameCodec,
{
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
        self.tx.info.clone()
    }
    fn split(self: Box<Self>) -> (Box<dyn SendHalf>, Box<dyn RecvHalf>) {
        let (tx, rx) = (*self).into_split();
        (Box::new(tx), Box::new(rx))
    }
}

#[async_trait]
impl<W: AsyncWrite + Send + Unpin + 'static, C: FrameCodec> SendHalf for StreamSender<W, C> {
    async fn send(&mut self, frame: Bytes) -> Result<()> {
        StreamSender::send(self, frame).await
    }
    async fn close(&mut self) -> Result<()> {
        StreamSender::close(self).await
    }
    fn info(&self) -> ChannelInfo {
        self.info.clone()
    }
}

#[async_trait]
impl<R: AsyncRead + Send + Unpin + 'static, C: FrameCodec> RecvHalf for StreamReceiver<R, C> {
    async fn recv(&mut self) -> Result<Option<Bytes>> {
        StreamReceiver::recv(self).await
    }
    fn info(&self) -> ChannelInfo {
        self.info.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{FrameConfig, LengthCodec, LineCodec};
    use std::future::Future;

    fn pair<C: FrameCodec>(
        codec: C,
        capacity: usize,
    ) -> (
        StreamSender<tokio::io::DuplexStream, C>,
        StreamReceiver<tokio::io::DuplexStream, C>,
    ) {
        let (a, b) = tokio::io::duplex(capacity);
        let info = ChannelInfo::new("duplex", 8 << 20);
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
            let info = ChannelInfo::new("duplex", 8 << 20);
            let writer = FailAfter { inner: a, left };
            let mut tx = StreamSender::new(writer, codec.clone(), info.clone());
            let mut rx = StreamReceiver::new(b, codec, info);
            let err = tx.send(frame(size, 1)).await.expect_err("the write fails");
            assert!(err.to_string().contains("on fire"), "{err}");
            // The sender still exists: the peer must not wait for the rest of the frame.
            let end = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
                .await
                .expect("the peer hung on a frame cut by a failed write");
            assert!(matches!(end, Err(Error::PeerLost(_))), "{end:?}");
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
        assert!(matches!(err, Error::FrameTooLarge { .. }), "{err:?}");
        tx.send(Bytes::from_static(b"ok")).await.expect("send");
        assert_eq!(rx.recv().await.expect("recv").as_deref(), Some(&b"ok"[..]));
    }
}
