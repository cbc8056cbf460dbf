//! The [`Channel`] trait: a bidirectional, ordered, message-oriented connection to one
//! peer process, whatever carries the bytes; and its halves, [`SendHalf`] and
//! [`RecvHalf`].
//!
//! A channel is a [`Stream`] of received frames and a [`Sink`] of frames to send, so
//! everything written for streams and sinks works on it (`StreamExt`, `SinkExt`,
//! `forward`, `select!`, tokio-stream's adaptors). Import [`crate::prelude`] for the
//! methods: `send`, `feed`, `flush` and `close` come from `SinkExt`, `recv`,
//! `send_json` and `recv_json` from [`ChannelExt`](crate::ChannelExt).
//!
//! Contract every backend keeps (the conformance suite in `testkit` checks it):
//! - frames arrive whole, in order, exactly once; an empty frame is a frame;
//! - the stream ends (`None`, `recv` gives `Ok(None)`) only after the peer closed (or
//!   dropped its channel with nothing left to flush); a peer that crashed or was
//!   killed gives one `Err` item ([`RecvError::PeerLost`]), then
//!   the end;
//! - one bad frame (too large, undecodable) is one [`RecvError::Rejected`] item and the
//!   stream goes on;
//! - a slow receiver makes sending wait: no unbounded queue anywhere;
//! - `feed` queues a frame, `flush` writes everything queued, `close` flushes, tells
//!   the peer goodbye and shuts the sending direction down.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::{Sink, Stream};

use crate::error::{RecvError, Result, SendError};

/// What a channel knows about itself and its peer.
///
/// ```
/// let info = ipc_core::ChannelInfo::new("uds");
/// assert_eq!(info.transport, "uds");
/// assert_eq!(info.peer_pid, None);
/// assert!(info.binary_frames);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelInfo {
    /// Transport name (`"uds"`, `"tcp"`, ...).
    pub transport: &'static str,
    /// The peer's process id, when the OS tells it (`SO_PEERCRED`) or we spawned it.
    pub peer_pid: Option<u32>,
    /// The peer's user id, when the OS tells it.
    pub peer_uid: Option<u32>,
    /// Largest payload this channel sends or accepts: its codec's limit, filled in by
    /// the [`stream`](crate::stream) layer (or by a backend that frames by itself, with
    /// [`with_max_frame`](ChannelInfo::with_max_frame)).
    pub max_frame: usize,
    /// The peer's address as text, when there is one (`127.0.0.1:51234`).
    pub peer_addr: Option<String>,
    /// Frames may hold any bytes; when false each frame must be one JSON text (the
    /// transport's [`Capabilities::binary_frames`](crate::transport::Capabilities)).
    /// [`rpc`](crate::rpc) picks its envelope by it.
    pub binary_frames: bool,
}

impl ChannelInfo {
    /// Info with only the transport name known. The frame limit is the codec's: the
    /// [`stream`](crate::stream) layer sets it (until then it is the default, 8 MiB).
    pub fn new(transport: &'static str) -> Self {
        ChannelInfo {
            transport,
            peer_pid: None,
            peer_uid: None,
            max_frame: crate::frame::DEFAULT_MAX_FRAME,
            peer_addr: None,
            binary_frames: true,
        }
    }

    /// Set the frame limit, for a backend that frames without the
    /// [`stream`](crate::stream) layer (which sets it from the codec): state it where
    /// the codec is made, once.
    ///
    /// ```
    /// let info = ipc_core::ChannelInfo::new("signal").with_max_frame(64 * 1024);
    /// assert_eq!(info.max_frame, 65536);
    /// ```
    pub fn with_max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
        self
    }

    /// Set the peer pid.
    pub fn with_peer_pid(mut self, pid: Option<u32>) -> Self {
        self.peer_pid = pid;
        self
    }

    /// Set the peer uid.
    pub fn with_peer_uid(mut self, uid: Option<u32>) -> Self {
        self.peer_uid = uid;
        self
    }

    /// Set the peer address text.
    pub fn with_peer_addr(mut self, addr: Option<String>) -> Self {
        self.peer_addr = addr;
        self
    }

    /// Say whether frames may hold any bytes (true unless set; see
    /// [`binary_frames`](Self::binary_frames)).
    ///
    /// ```
    /// let info = ipc_core::ChannelInfo::new("node").with_binary_frames(false);
    /// assert!(!info.binary_frames);
    /// ```
    pub fn with_binary_frames(mut self, binary: bool) -> Self {
        self.binary_frames = binary;
        self
    }
}

/// A bidirectional message channel to one peer: a [`Stream`] of the frames it
/// receives and a [`Sink`] of the frames it sends.
///
/// Object safe: backends are used as `Box<dyn Channel>` when the transport is chosen at
/// run time (itself a `Channel`, `Stream` and `Sink`), or as their concrete type
/// (`UdsChannel`, ...) otherwise. Every backend's channel is a
/// [`Duplex`](crate::Duplex) of its two halves.
///
/// ```no_run
/// # async fn demo(mut ch: Box<dyn ipc_core::Channel>) -> ipc_core::Result<()> {
/// use bytes::Bytes;
/// use ipc_core::prelude::*;
/// ch.send(Bytes::from_static(b"ping")).await?;
/// // Or batch: queue frames, then write them with as few system calls as possible.
/// for n in 0..10 {
///     ch.feed(Bytes::from(n.to_string())).await?;
/// }
/// ch.flush().await?;
/// while let Some(frame) = ch.recv().await? {
///     println!("got {} bytes", frame.len());
/// }
/// ch.close().await?; // the peer's stream now ends
/// # Ok(()) }
/// ```
pub trait Channel:
    Stream<Item = Result<Bytes, RecvError>> + Sink<Bytes, Error = SendError> + Send + Unpin + 'static
{
    /// Transport name, peer identity and limits.
    fn info(&self) -> ChannelInfo;

    /// Split into halves that two tasks can use at once.
    fn split(self: Box<Self>) -> (Box<dyn SendHalf>, Box<dyn RecvHalf>);

    /// Poll for a batch of received frames: see [`RecvHalf::poll_recv_many`], which a
    /// [`Duplex`](crate::Duplex) forwards this to. Call it through
    /// [`RecvManyExt::recv_many`](crate::RecvManyExt::recv_many).
    ///
    /// ```no_run
    /// # async fn demo(mut ch: Box<dyn ipc_core::Channel>) -> ipc_core::Result<()> {
    /// let mut frames = Vec::new();
    /// let n = std::future::poll_fn(|cx| ch.poll_recv_many(cx, &mut frames, 100)).await?;
    /// # let _ = n; Ok(()) }
    /// ```
    fn poll_recv_many(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut Vec<Bytes>,
        max: usize,
    ) -> Poll<Result<usize, RecvError>> {
        poll_recv_one(self, cx, out, max)
    }
}

/// The fallback of [`RecvHalf::poll_recv_many`] and [`Channel::poll_recv_many`]: one
/// item of the stream, as a batch of at most one frame.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use ipc_core::{channel::poll_recv_one, Bytes, RecvError};
/// let mut items = futures_util::stream::iter([Ok::<Bytes, RecvError>("a".into()), Ok("b".into())]);
/// let mut out = Vec::new();
/// let n = std::future::poll_fn(|cx| poll_recv_one(&mut items, cx, &mut out, 10)).await;
/// assert_eq!((n.ok(), out), (Some(1), vec![Bytes::from("a")]));
/// # }
/// ```
pub fn poll_recv_one<S>(
    stream: &mut S,
    cx: &mut Context<'_>,
    out: &mut Vec<Bytes>,
    max: usize,
) -> Poll<Result<usize, RecvError>>
where
    S: Stream<Item = Result<Bytes, RecvError>> + Unpin + ?Sized,
{
    if max == 0 {
        return Poll::Ready(Ok(0));
    }
    Pin::new(stream).poll_next(cx).map(|next| match next {
        Some(Ok(frame)) => {
            out.push(frame);
            Ok(1)
        }
        Some(Err(e)) => Err(e),
        None => Ok(0),
    })
}

/// The sending half of a [`Channel`]: a [`Sink`] of frames.
///
/// `start_send` queues a frame (checking its size: a frame over the limit is refused
/// at once, and the half stays usable); `poll_flush` writes every queued frame;
/// `poll_close` flushes, sends the goodbye and shuts the sending direction down
/// (idempotent). A frame whose write was cancelled half-way is finished by the next
/// call: frames on the wire are never cut by a dropped future.
///
/// ```no_run
/// # async fn demo(ch: Box<dyn ipc_core::Channel>) -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// let (mut tx, mut rx) = ch.split();
/// let writer = tokio::spawn(async move { tx.send("hello".into()).await });
/// let reply = rx.recv().await?;
/// # let _ = (writer, reply); Ok(()) }
/// ```
pub trait SendHalf: Sink<Bytes, Error = SendError> + Send + Unpin + 'static {
    /// Channel info.
    fn info(&self) -> ChannelInfo;

    /// This half as a trait object (a half that already is one is returned as is).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
    /// use ipc_core::SendHalf;
    /// # let (a, _b) = tokio::io::duplex(64);
    /// # let codec = ipc_core::frame::LengthCodec::new(Default::default());
    /// # let info = ipc_core::ChannelInfo::new("mem");
    /// let tx = ipc_core::stream::StreamSender::new(a, codec, info);
    /// let boxed: Box<dyn SendHalf> = tx.into_box();
    /// # let _ = boxed; Ok(()) }
    /// ```
    fn into_box(self) -> Box<dyn SendHalf>
    where
        Self: Sized,
    {
        Box::new(self)
    }
}

/// The receiving half of a [`Channel`]: a [`Stream`] of frames.
///
/// A clean close by the peer ends the stream; a frame that is rejected (too large,
/// undecodable) is one `Err` item and the stream goes on; a lost peer is one `Err`
/// item, then the end.
///
/// ```no_run
/// # async fn demo(mut rx: Box<dyn ipc_core::RecvHalf>) -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// while let Some(frame) = rx.next().await {
///     match frame {
///         Ok(frame) => println!("{} bytes", frame.len()),
///         Err(e) => eprintln!("{e}"), // the stream ends after a fatal error
///     }
/// }
/// # Ok(()) }
/// ```
pub trait RecvHalf: Stream<Item = Result<Bytes, RecvError>> + Send + Unpin + 'static {
    /// Channel info.
    fn info(&self) -> ChannelInfo;

    /// This half as a trait object (a half that already is one is returned as is).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
    /// use ipc_core::RecvHalf;
    /// # let (a, _b) = tokio::io::duplex(64);
    /// # let codec = ipc_core::frame::LengthCodec::new(Default::default());
    /// # let info = ipc_core::ChannelInfo::new("mem");
    /// let rx = ipc_core::stream::StreamReceiver::new(a, codec, info);
    /// let boxed: Box<dyn RecvHalf> = rx.into_box();
    /// # let _ = boxed; Ok(()) }
    /// ```
    fn into_box(self) -> Box<dyn RecvHalf>
    where
        Self: Sized,
    {
        Box::new(self)
    }

    /// Poll for a batch of received frames: wait for the next item, then append to
    /// `out` it and every further frame that is already received (at most `max`
    /// frames). `Ready(Ok(n))` with `n >= 1` frames appended; `Ready(Ok(0))` at the end
    /// of the stream (or when `max` is 0); `Ready(Err(_))` for an error item, exactly
    /// where [`poll_next`](Stream::poll_next) would give it: an error met after some
    /// frames of a batch is kept for the next call.
    ///
    /// The byte-stream halves ([`StreamReceiver`](crate::stream::StreamReceiver) and
    /// those built on it) hand out every whole frame of one read at once, as slices
    /// of one read buffer (no copy per frame, no read while frames are left). The
    /// default takes one item of the stream. Call it through
    /// [`RecvManyExt::recv_many`](crate::RecvManyExt::recv_many).
    ///
    /// ```no_run
    /// # async fn demo(mut rx: Box<dyn ipc_core::RecvHalf>) -> ipc_core::Result<()> {
    /// let mut frames = Vec::new();
    /// let n = std::future::poll_fn(|cx| rx.poll_recv_many(cx, &mut frames, 100)).await?;
    /// # let _ = n; Ok(()) }
    /// ```
    fn poll_recv_many(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut Vec<Bytes>,
        max: usize,
    ) -> Poll<Result<usize, RecvError>> {
        poll_recv_one(self, cx, out, max)
    }
}

impl<C: Channel + ?Sized> Channel for Box<C> {
    fn info(&self) -> ChannelInfo {
        (**self).info()
    }
    fn split(self: Box<Self>) -> (Box<dyn SendHalf>, Box<dyn RecvHalf>) {
        (*self).split()
    }
    fn poll_recv_many(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut Vec<Bytes>,
        max: usize,
    ) -> Poll<Result<usize, RecvError>> {
        (**self).poll_recv_many(cx, out, max)
    }
}

impl SendHalf for Box<dyn SendHalf> {
    fn info(&self) -> ChannelInfo {
        (**self).info()
    }
    fn into_box(self) -> Box<dyn SendHalf> {
        self
    }
}

impl RecvHalf for Box<dyn RecvHalf> {
    fn info(&self) -> ChannelInfo {
        (**self).info()
    }
    fn into_box(self) -> Box<dyn RecvHalf> {
        self
    }
    fn poll_recv_many(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut Vec<Bytes>,
        max: usize,
    ) -> Poll<Result<usize, RecvError>> {
        (**self).poll_recv_many(cx, out, max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;
    use crate::RecvManyExt;

    /// A receiving half that is not a byte stream: a list of items.
    struct Items(futures_util::stream::Iter<std::vec::IntoIter<Result<Bytes, RecvError>>>);

    impl Stream for Items {
        type Item = Result<Bytes, RecvError>;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            Pin::new(&mut self.0).poll_next(cx)
        }
    }

    impl RecvHalf for Items {
        fn info(&self) -> ChannelInfo {
            ChannelInfo::new("items")
        }
    }

    #[tokio::test]
    async fn recv_many_elsewhere_gives_the_items_one_at_a_time() {
        let items = vec![
            Ok(Bytes::from("a")),
            Err(RecvError::PeerLost("gone".into())),
            Ok(Bytes::from("b")),
        ];
        let mut rx: Box<dyn RecvHalf> = Box::new(Items(futures_util::stream::iter(items)));
        let mut out = Vec::new();
        assert_eq!(rx.recv_many(&mut out, 10).await.expect("a"), 1);
        assert!(matches!(
            rx.recv_many(&mut out, 10).await,
            Err(RecvError::PeerLost(_))
        ));
        assert_eq!(rx.recv_many(&mut out, 10).await.expect("b"), 1);
        assert_eq!(rx.recv_many(&mut out, 10).await.expect("end"), 0);
        assert_eq!(out, ["a", "b"]);
        assert!(rx.next().await.is_none());
    }
}
