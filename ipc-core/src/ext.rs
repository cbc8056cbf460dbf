//! [`ChannelExt`]: `recv` and `recv_json` on every channel, receiving half and typed
//! channel (anything that is a [`Stream`] of `Result` items), and [`SinkJsonExt`]:
//! `send_json` on every channel and sending half (anything that is a [`Sink`] of
//! frames), [`SendManyExt`]: `send_many`, a batch of frames in as few system calls
//! as the transport allows, and [`RecvManyExt`]: `recv_many`, every frame already
//! received in one call.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::{Sink, SinkExt, Stream};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::channel::{Channel, RecvHalf, SendHalf};
use crate::codec::{Codec, Json};
use crate::duplex::Duplex;
use crate::error::{Error, RecvError, SendError};

/// Conveniences on every channel and receiving half, in the shape of the rest of the
/// toolkit: `recv` gives `Result<Option<_>>` so a loop reads
/// `while let Some(frame) = ch.recv().await? { .. }`.
///
/// Implemented for every [`Stream`]; the methods apply where the items are
/// `Result<T>`. The sending side's conveniences are [`SinkJsonExt::send_json`] and
/// `send`, `feed`, `flush`, `close` from [`SinkExt`]; import them all with
/// [`crate::prelude`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// # let (a, b) = tokio::io::duplex(1024);
/// # let (ar, aw) = tokio::io::split(a);
/// # let (br, bw) = tokio::io::split(b);
/// # let codec = ipc_core::frame::LengthCodec::new(Default::default());
/// # let info = ipc_core::ChannelInfo::new("mem");
/// # let mut left = ipc_core::stream::channel(ar, aw, codec.clone(), info.clone());
/// # let mut right = ipc_core::stream::channel(br, bw, codec, info);
/// left.send_json(&serde_json::json!({"op": "add", "a": 1})).await?;
/// let msg: serde_json::Value = right.recv_json().await?.expect("a message");
/// assert_eq!(msg["op"], "add");
/// left.close().await?;
/// assert_eq!(right.recv().await?, None);
/// # Ok(()) }
/// ```
pub trait ChannelExt: Stream {
    /// The next item: `Ok(Some(_))`, `Err(_)` for an error item, `Ok(None)` once the
    /// stream has ended: after the peer closed cleanly, or after an error that ended
    /// it (a lost peer; that error was the previous item). Cancel-safe.
    ///
    /// ```no_run
    /// # async fn demo(mut ch: Box<dyn ipc_core::Channel>) -> ipc_core::Result<()> {
    /// use ipc_core::prelude::*;
    /// while let Some(frame) = ch.recv().await? {
    ///     println!("{} bytes", frame.len());
    /// }
    /// # Ok(()) }
    /// ```
    fn recv<T, E>(&mut self) -> Recv<'_, Self>
    where
        Self: Stream<Item = Result<T, E>> + Unpin,
    {
        Recv { stream: self }
    }

    /// Receive the next frame as a JSON `T` (`serde_json::Value` for anything);
    /// `Ok(None)` at the end of the stream. A frame that is not a `T` gives
    /// [`RecvError::Rejected`] ([`Error::Decode`]) and the channel stays usable.
    ///
    /// ```no_run
    /// # async fn demo(mut ch: Box<dyn ipc_core::Channel>) -> ipc_core::Result<()> {
    /// use ipc_core::prelude::*;
    /// while let Some(msg) = ch.recv_json::<serde_json::Value>().await? {
    ///     println!("{msg}");
    /// }
    /// # Ok(()) }
    /// ```
    fn recv_json<T: DeserializeOwned>(
        &mut self,
    ) -> impl Future<Output = Result<Option<T>, RecvError>> + Send + '_
    where
        Self: Stream<Item = Result<Bytes, RecvError>> + Unpin + Send,
    {
        async move {
            match self.recv().await? {
                Some(frame) => Ok(Some(Json::decode(&frame)?)),
                None => Ok(None),
            }
        }
    }
}

impl<S: Stream + ?Sized> ChannelExt for S {}

/// `send_json` on every channel and sending half (every [`Sink`] of frames), the
/// counterpart of [`ChannelExt::recv_json`]. (A trait of its own because a sending half
/// is a `Sink` but not a `Stream`.)
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// # let (a, b) = tokio::io::duplex(1024);
/// # let (ar, aw) = tokio::io::split(a);
/// # let (br, bw) = tokio::io::split(b);
/// # let codec = ipc_core::frame::LengthCodec::new(Default::default());
/// # let info = ipc_core::ChannelInfo::new("mem");
/// # let left = ipc_core::stream::channel(ar, aw, codec.clone(), info.clone());
/// # let mut right = ipc_core::stream::channel(br, bw, codec, info);
/// let (mut tx, _rx) = left.into_split();
/// tx.send_json(&[1, 2, 3]).await?;
/// assert_eq!(right.recv_json::<Vec<u8>>().await?, Some(vec![1, 2, 3]));
/// # Ok(()) }
/// ```
pub trait SinkJsonExt: Sink<Bytes, Error = SendError> {
    /// Serialize `value` as compact JSON and send it as one frame (the JSON text).
    ///
    /// ```no_run
    /// # async fn demo(mut ch: Box<dyn ipc_core::Channel>) -> ipc_core::Result<()> {
    /// use ipc_core::prelude::*;
    /// ch.send_json(&serde_json::json!({"id": 1, "result": 3})).await?;
    /// # Ok(()) }
    /// ```
    fn send_json<T: Serialize + ?Sized>(
        &mut self,
        value: &T,
    ) -> impl Future<Output = Result<(), SendError>> + Send + '_
    where
        Self: Unpin + Send,
    {
        let frame = serde_json::to_vec(value).map(Bytes::from).map_err(|e| {
            SendError::from(Error::refused(
                format!("{} as json", std::any::type_name::<T>()),
                e,
            ))
        });
        async move { self.send(frame?).await }
    }
}

impl<S: Sink<Bytes, Error = SendError> + ?Sized> SinkJsonExt for S {}

/// `send_many` on every channel and sending half: many frames, as few system calls
/// as the transport allows.
///
/// On the byte-stream transports (uds, tcp, pipe, fifo, stdio) small frames are
/// encoded into one buffer and written with one `write` per 64 KiB; a large frame
/// (16 KiB or more) goes out from its own `Bytes` with `writev`, without a copy. The
/// receiving side decodes every whole frame of one read before reading again, so a
/// batch costs a few system calls on each side instead of one or two per frame. The
/// same as `feed` for each frame and one `flush`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// # let (a, b) = tokio::io::duplex(64 * 1024);
/// # let (ar, aw) = tokio::io::split(a);
/// # let (br, bw) = tokio::io::split(b);
/// # let codec = ipc_core::frame::LengthCodec::new(Default::default());
/// # let info = ipc_core::ChannelInfo::new("mem");
/// # let mut left = ipc_core::stream::channel(ar, aw, codec.clone(), info.clone());
/// # let mut right = ipc_core::stream::channel(br, bw, codec, info);
/// use ipc_core::Bytes;
/// let frames: Vec<Bytes> = (0..100).map(|n: u32| Bytes::from(n.to_string())).collect();
/// left.send_many(&frames).await?;
/// for n in 0..100 {
///     assert_eq!(right.recv().await?, Some(Bytes::from(n.to_string())));
/// }
/// # Ok(()) }
/// ```
pub trait SendManyExt: Sink<Bytes, Error = SendError> {
    /// Send `frames` in order, then flush. A frame refused on its own
    /// ([`SendError::Rejected`]: too large, ...) stops the batch: the frames before it
    /// are sent, it and the ones after it are not, and the error says why. Any other
    /// error ends sending, as for `send`.
    ///
    /// ```no_run
    /// # async fn demo(mut ch: Box<dyn ipc_core::Channel>) -> ipc_core::Result<()> {
    /// use ipc_core::prelude::*;
    /// use ipc_core::Bytes;
    /// let ticks: Vec<Bytes> = (0..1000u32).map(|n| Bytes::from(n.to_be_bytes().to_vec())).collect();
    /// ch.send_many(&ticks).await?; // about one write for the thousand frames
    /// # Ok(()) }
    /// ```
    fn send_many<'a>(
        &'a mut self,
        frames: &'a [Bytes],
    ) -> impl Future<Output = Result<(), SendError>> + Send + 'a
    where
        Self: Unpin + Send,
    {
        async move {
            for frame in frames {
                if let Err(e) = self.feed(frame.clone()).await {
                    if matches!(e, SendError::Rejected(_)) {
                        self.flush().await?;
                    }
                    return Err(e);
                }
            }
            self.flush().await
        }
    }
}

impl<S: Sink<Bytes, Error = SendError> + ?Sized> SendManyExt for S {}

/// `recv_many` on every channel and receiving half: the frames that are already
/// received, in one call, the counterpart of [`SendManyExt::send_many`].
///
/// On the byte-stream transports (uds, tcp, pipe, fifo, stdio, shm) one call hands out
/// every whole frame of one read (up to `max`), each a slice of the one read buffer
/// (no copy per frame), without the per-frame cost of the stream layers or a read
/// while frames are left. Elsewhere it gives one frame per call, like `recv`. See
/// [`RecvHalf::poll_recv_many`] for the exact rules.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// # let (a, b) = tokio::io::duplex(64 * 1024);
/// # let (ar, aw) = tokio::io::split(a);
/// # let (br, bw) = tokio::io::split(b);
/// # let codec = ipc_core::frame::LengthCodec::new(Default::default());
/// # let info = ipc_core::ChannelInfo::new("mem");
/// # let mut left = ipc_core::stream::channel(ar, aw, codec.clone(), info.clone());
/// # let mut right = ipc_core::stream::channel(br, bw, codec, info);
/// use ipc_core::Bytes;
/// let frames: Vec<Bytes> = (0..100).map(|n: u32| Bytes::from(n.to_string())).collect();
/// left.send_many(&frames).await?;
/// left.close().await?;
/// let mut got = Vec::new();
/// while right.recv_many(&mut got, 1000).await? > 0 {}
/// assert_eq!(got, frames);
/// # Ok(()) }
/// ```
pub trait RecvManyExt {
    /// Wait for the next item, then append it and every further frame already
    /// received to `out`, `max` frames at most. `Ok(n)`: `n >= 1` frames appended;
    /// `Ok(0)`: the stream has ended (the peer closed; or `max` is 0); `Err(_)`: the
    /// next item is an error, in the same place [`ChannelExt::recv`] would give it
    /// (an error met after some frames of a batch is given by the next call). A
    /// rejected frame lets the stream go on, as for `recv`. Cancel-safe: a dropped
    /// call loses no frame.
    ///
    /// ```no_run
    /// # async fn demo(mut ch: Box<dyn ipc_core::Channel>) -> ipc_core::Result<()> {
    /// use ipc_core::prelude::*;
    /// let mut frames = Vec::with_capacity(1024);
    /// while ch.recv_many(&mut frames, 1024).await? > 0 {
    ///     for frame in frames.drain(..) {
    ///         println!("{} bytes", frame.len());
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    fn recv_many<'a>(
        &'a mut self,
        out: &'a mut Vec<Bytes>,
        max: usize,
    ) -> impl Future<Output = Result<usize, RecvError>> + Send + 'a;
}

impl<R: RecvHalf + ?Sized> RecvManyExt for R {
    fn recv_many<'a>(
        &'a mut self,
        out: &'a mut Vec<Bytes>,
        max: usize,
    ) -> impl Future<Output = Result<usize, RecvError>> + Send + 'a {
        std::future::poll_fn(move |cx| RecvHalf::poll_recv_many(self, cx, out, max))
    }
}

impl RecvManyExt for dyn Channel {
    fn recv_many<'a>(
        &'a mut self,
        out: &'a mut Vec<Bytes>,
        max: usize,
    ) -> impl Future<Output = Result<usize, RecvError>> + Send + 'a {
        std::future::poll_fn(move |cx| Channel::poll_recv_many(self, cx, out, max))
    }
}

impl RecvManyExt for Box<dyn Channel> {
    fn recv_many<'a>(
        &'a mut self,
        out: &'a mut Vec<Bytes>,
        max: usize,
    ) -> impl Future<Output = Result<usize, RecvError>> + Send + 'a {
        std::future::poll_fn(move |cx| Channel::poll_recv_many(&mut **self, cx, out, max))
    }
}

impl<Tx: SendHalf, Rx: RecvHalf> RecvManyExt for Duplex<Tx, Rx> {
    fn recv_many<'a>(
        &'a mut self,
        out: &'a mut Vec<Bytes>,
        max: usize,
    ) -> impl Future<Output = Result<usize, RecvError>> + Send + 'a {
        std::future::poll_fn(move |cx| self.receiver_mut().poll_recv_many(cx, out, max))
    }
}

/// The future of [`ChannelExt::recv`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Recv<'a, S: ?Sized> {
    stream: &'a mut S,
}

impl<T, E, S: Stream<Item = Result<T, E>> + Unpin + ?Sized> Future for Recv<'_, S> {
    type Output = Result<Option<T>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut *self.get_mut().stream)
            .poll_next(cx)
            .map(Option::transpose)
    }
}
