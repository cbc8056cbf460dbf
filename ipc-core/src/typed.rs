//! [`TypedChannel`]: send and receive serde values over any [`Channel`], as a
//! [`Stream`] of received values and a [`Sink`] of values to send.
//!
//! ```no_run
//! # async fn demo(ch: Box<dyn ipc_core::Channel>) -> ipc_core::Result<()> {
//! use ipc_core::prelude::*;
//! use ipc_core::{codec::Json, TypedChannel};
//! #[derive(serde::Serialize, serde::Deserialize)]
//! enum Msg { Ping(u32), Pong(u32) }
//! let mut typed: TypedChannel<Msg, Msg, Json> = TypedChannel::new(ch);
//! typed.send(Msg::Ping(1)).await?;
//! if let Some(Msg::Pong(n)) = typed.recv().await? { println!("pong {n}"); }
//! # Ok(()) }
//! ```

use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::{Sink, Stream};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::channel::{Channel, ChannelInfo, RecvHalf, SendHalf};
use crate::codec::{Codec, Postcard};
use crate::error::{RecvError, Result, SendError};

/// A channel that receives `In` and sends `Out`, serialized with codec `K`, over the
/// channel `C` (any [`Channel`]; by default a `Box<dyn Channel>`).
///
/// It is a [`Stream`] of `Result<In, RecvError>` and a [`Sink`] of `Out`. A frame
/// that does not decode as `In` is one [`RecvError::Rejected`] ([`Error::Decode`](crate::Error::Decode))
/// item and the stream goes on.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// use ipc_core::{codec::Json, frame::LengthCodec, stream, ChannelInfo, TypedChannel};
/// # let (a, b) = tokio::io::duplex(1024);
/// # let (ar, aw) = tokio::io::split(a);
/// # let (br, bw) = tokio::io::split(b);
/// # let codec = LengthCodec::new(Default::default());
/// # let info = ChannelInfo::new("mem");
/// let left = stream::channel(ar, aw, codec.clone(), info.clone());
/// let right = stream::channel(br, bw, codec, info);
/// // Over the concrete channel type, no boxing:
/// let mut left: TypedChannel<u32, String, Json, _> = TypedChannel::new(left);
/// let mut right: TypedChannel<String, u32, Json, _> = TypedChannel::new(right);
/// left.send("seven".to_string()).await?;
/// assert_eq!(right.recv().await?.as_deref(), Some("seven"));
/// right.send(7).await?;
/// assert_eq!(left.next().await.transpose()?, Some(7));
/// # Ok(()) }
/// ```
pub struct TypedChannel<In, Out, K: Codec = Postcard, C = Box<dyn Channel>> {
    inner: C,
    _types: PhantomData<fn(Out) -> (In, K)>,
}

impl<In, Out, K: Codec, C> TypedChannel<In, Out, K, C> {
    /// Wrap a channel.
    pub fn new(channel: C) -> Self {
        TypedChannel {
            inner: channel,
            _types: PhantomData,
        }
    }

    /// The untyped channel.
    pub fn get_ref(&self) -> &C {
        &self.inner
    }

    /// The untyped channel, mutably.
    pub fn get_mut(&mut self) -> &mut C {
        &mut self.inner
    }

    /// The untyped channel back.
    pub fn into_inner(self) -> C {
        self.inner
    }
}

impl<In, Out, K: Codec, C: Channel> TypedChannel<In, Out, K, C> {
    /// Channel info.
    pub fn info(&self) -> ChannelInfo {
        self.inner.info()
    }

    /// Split into typed halves usable from two tasks.
    pub fn split(self) -> (TypedSender<Out, K>, TypedReceiver<In, K>) {
        let (tx, rx) = Box::new(self.inner).split();
        (TypedSender::new(tx), TypedReceiver::new(rx))
    }
}

impl<In, Out, K: Codec, C> std::fmt::Debug for TypedChannel<In, Out, K, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedChannel")
            .field("in", &std::any::type_name::<In>())
            .field("out", &std::any::type_name::<Out>())
            .field("codec", &K::NAME)
            .finish_non_exhaustive()
    }
}

/// Sending half of a [`TypedChannel`]: a [`Sink`] of `Out` over the sending half `Tx`.
pub struct TypedSender<Out, K: Codec = Postcard, Tx = Box<dyn SendHalf>> {
    inner: Tx,
    _types: PhantomData<fn(Out) -> K>,
}

impl<Out, K: Codec, Tx> TypedSender<Out, K, Tx> {
    /// Wrap a sending half.
    pub fn new(half: Tx) -> Self {
        TypedSender {
            inner: half,
            _types: PhantomData,
        }
    }

    /// The untyped half back.
    pub fn into_inner(self) -> Tx {
        self.inner
    }
}

impl<Out, K: Codec, Tx> std::fmt::Debug for TypedSender<Out, K, Tx> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedSender")
            .field("out", &std::any::type_name::<Out>())
            .field("codec", &K::NAME)
            .finish_non_exhaustive()
    }
}

/// Receiving half of a [`TypedChannel`]: a [`Stream`] of `Result<In>` over the
/// receiving half `Rx`.
pub struct TypedReceiver<In, K: Codec = Postcard, Rx = Box<dyn RecvHalf>> {
    inner: Rx,
    _types: PhantomData<fn() -> (In, K)>,
}

impl<In, K: Codec, Rx> TypedReceiver<In, K, Rx> {
    /// Wrap a receiving half.
    pub fn new(half: Rx) -> Self {
        TypedReceiver {
            inner: half,
            _types: PhantomData,
        }
    }

    /// The untyped half back.
    pub fn into_inner(self) -> Rx {
        self.inner
    }
}

impl<In, K: Codec, Rx> std::fmt::Debug for TypedReceiver<In, K, Rx> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedReceiver")
            .field("in", &std::any::type_name::<In>())
            .field("codec", &K::NAME)
            .finish_non_exhaustive()
    }
}

/// The next frame of `inner`, decoded as a `T`.
fn poll_decoded<T: DeserializeOwned, K: Codec, S>(
    inner: &mut S,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<T, RecvError>>>
where
    S: Stream<Item = Result<Bytes, RecvError>> + Unpin,
{
    Pin::new(inner).poll_next(cx).map(|item| {
        item.map(|frame| frame.and_then(|frame| K::decode(&frame).map_err(RecvError::from)))
    })
}

impl<In: DeserializeOwned, Out, K: Codec, C> Stream for TypedChannel<In, Out, K, C>
where
    C: Stream<Item = Result<Bytes, RecvError>> + Unpin,
{
    type Item = Result<In, RecvError>;

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<In, RecvError>>> {
        poll_decoded::<In, K, C>(&mut self.get_mut().inner, cx)
    }
}

impl<In: DeserializeOwned, K: Codec, Rx> Stream for TypedReceiver<In, K, Rx>
where
    Rx: Stream<Item = Result<Bytes, RecvError>> + Unpin,
{
    type Item = Result<In, RecvError>;

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<In, RecvError>>> {
        poll_decoded::<In, K, Rx>(&mut self.get_mut().inner, cx)
    }
}

/// `Sink<Out>` for a typed wrapper whose field `inner` is a sink of
/// frames: each value is encoded with `K` as it is queued.
macro_rules! typed_sink {
    ($ty:ident < $($param:ident),* >, $inner:ident) => {
        impl<$($param),*> Sink<Out> for $ty<$($param),*>
        where
            Out: Serialize,
            K: Codec,
            $inner: Sink<Bytes, Error = SendError> + Unpin,
        {
            type Error = SendError;

            fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SendError>> {
                Pin::new(&mut self.get_mut().inner).poll_ready(cx)
            }

            fn start_send(self: Pin<&mut Self>, value: Out) -> Result<(), SendError> {
                let frame = K::encode(&value)?;
                Pin::new(&mut self.get_mut().inner).start_send(frame)
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SendError>> {
                Pin::new(&mut self.get_mut().inner).poll_flush(cx)
            }

            fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SendError>> {
                Pin::new(&mut self.get_mut().inner).poll_close(cx)
            }
        }
    };
}

typed_sink!(TypedChannel<In, Out, K, C>, C);
typed_sink!(TypedSender<Out, K, Tx>, Tx);
