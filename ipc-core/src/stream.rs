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

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{Sink, SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::channel::{Channel, ChannelInfo, RecvHalf, SendHalf};
use crate::error::{Error, Result};
use crate::frame::{Decoded, FrameCodec, Outbound};

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

/// The sending half of a [`StreamChannel`].
///
/// Dropping it without [`close`](SendHalf::close) still tries, without blocking, to flush
/// what is buffered and send the goodbye, so a peer usually sees a clean close; call
/// `close().await` to be sure.
pub struct StreamSender<W: AsyncWrite + Unpin, C: FrameCodec> {
    framed: FramedWrite<W, C>,
    info: ChannelInfo,
    closed: bool,
}

impl<W: AsyncWrite + Send + Unpin + 'static, C: FrameCodec> StreamSender<W, C> {
    /// Wrap a writer.
    pub fn new(writer: W, codec: C, info: ChannelInfo) -> Self {
        StreamSender {
            framed: FramedWrite::new(writer, codec),
            info,
            closed: false,
        }
    }

    /// The underlying writer (for backends that need the socket, e.g. fd passing).
    pub fn writer(&self) -> &W {
        self.framed.get_ref()
    }

    /// Flush buffered frames to the writer.
    pub async fn flush(&mut self) -> Result<()> {
        self.framed.flush().await.map_err(classify)
    }

    /// Send one frame and flush it.
    pub async fn send(&mut self, frame: Bytes) -> Result<()> {
        if self.closed {
            return Err(Error::Closed);
        }
        self.framed
            .send(Outbound::Data(frame))
            .await
            .map_err(classify)
    }

    /// Send the goodbye and shut the writer down. Idempotent.
    pub async fn close(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        self.framed
            .send(Outbound::Goodbye)
            .await
            .map_err(classify)?;
        match self.framed.get_mut().shutdown().await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            Err(e) => Err(classify(Error::Io(e))),
        }
    }
}

impl<W: AsyncWrite + Unpin, C: FrameCodec> Drop for StreamSender<W, C> {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        // Best effort, never blocking: flush what is buffered plus a goodbye.
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut framed = Pin::new(&mut self.framed);
        if let Poll::Ready(Ok(())) = framed.as_mut().poll_ready(&mut cx) {
            if framed.as_mut().start_send(Outbound::Goodbye).is_ok() {
                let _ = framed.as_mut().poll_flush(&mut cx);
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecvState {
    Open,
    Finished,
    Failed,
}

/// The receiving half of a [`StreamChannel`].
pub struct StreamReceiver<R, C> {
    framed: FramedRead<R, C>,
    info: ChannelInfo,
    state: RecvState,
}

impl<R: AsyncRead + Send + Unpin + 'static, C: FrameCodec> StreamReceiver<R, C> {
    /// Wrap a reader.
    pub fn new(reader: R, codec: C, info: ChannelInfo) -> Self {
        StreamReceiver {
            framed: FramedRead::with_capacity(reader, codec, 64 * 1024),
            info,
            state: RecvState::Open,
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
        match self.framed.next().await {
            Some(Ok(Decoded::Frame(frame))) => Ok(Some(frame)),
            Some(Ok(Decoded::Rejected(e))) => Err(e),
            Some(Ok(Decoded::Goodbye)) => {
                self.state = RecvState::Finished;
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
        StreamChannel {
            rx: StreamReceiver::new(reader, codec.clone(), info.clone()),
            tx: StreamSender::new(writer, codec, info),
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
