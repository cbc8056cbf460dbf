//! [`TypedChannel`]: send and receive serde values over any [`Channel`].
//!
//! ```no_run
//! # async fn demo(ch: Box<dyn ipc_core::Channel>) -> ipc_core::Result<()> {
//! use ipc_core::{codec::Json, TypedChannel};
//! #[derive(serde::Serialize, serde::Deserialize)]
//! enum Msg { Ping(u32), Pong(u32) }
//! let mut typed: TypedChannel<Msg, Msg, Json> = TypedChannel::new(ch);
//! typed.send(&Msg::Ping(1)).await?;
//! if let Some(Msg::Pong(n)) = typed.recv().await? { println!("pong {n}"); }
//! # Ok(()) }
//! ```

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::channel::{Channel, ChannelInfo, RecvHalf, SendHalf};
use crate::codec::{Codec, Postcard};
use crate::error::Result;

/// A channel that receives `In` and sends `Out`, serialized with codec `K`.
///
/// A frame that does not decode as `In` gives [`Error::Decode`](crate::Error::Decode)
/// and the channel stays usable.
pub struct TypedChannel<In, Out, K: Codec = Postcard> {
    inner: Box<dyn Channel>,
    _types: PhantomData<fn(Out) -> (In, K)>,
}

impl<In, Out, K> TypedChannel<In, Out, K>
where
    In: DeserializeOwned,
    Out: Serialize,
    K: Codec,
{
    /// Wrap a channel.
    pub fn new(channel: impl Channel) -> Self {
        TypedChannel {
            inner: Box::new(channel),
            _types: PhantomData,
        }
    }

    /// Send one value.
    pub async fn send(&mut self, value: &Out) -> Result<()> {
        let frame = K::encode(value)?;
        self.inner.send(frame).await
    }

    /// Receive one value; `Ok(None)` when the peer closed cleanly.
    pub async fn recv(&mut self) -> Result<Option<In>> {
        match self.inner.recv().await? {
            Some(frame) => K::decode(&frame).map(Some),
            None => Ok(None),
        }
    }

    /// Close the sending direction.
    pub async fn close(&mut self) -> Result<()> {
        self.inner.close().await
    }

    /// Channel info.
    pub fn info(&self) -> ChannelInfo {
        self.inner.info()
    }

    /// The untyped channel back.
    pub fn into_inner(self) -> Box<dyn Channel> {
        self.inner
    }

    /// Split into typed halves usable from two tasks.
    pub fn split(self) -> (TypedSender<Out, K>, TypedReceiver<In, K>) {
        let (tx, rx) = self.inner.split();
        (
            TypedSender {
                inner: tx,
                _types: PhantomData,
            },
            TypedReceiver {
                inner: rx,
                _types: PhantomData,
            },
        )
    }
}

/// Sending half of a [`TypedChannel`].
pub struct TypedSender<Out, K: Codec = Postcard> {
    inner: Box<dyn SendHalf>,
    _types: PhantomData<fn(Out) -> K>,
}

impl<Out: Serialize, K: Codec> TypedSender<Out, K> {
    /// Send one value.
    pub async fn send(&mut self, value: &Out) -> Result<()> {
        let frame = K::encode(value)?;
        self.inner.send(frame).await
    }

    /// Close the sending direction.
    pub async fn close(&mut self) -> Result<()> {
        self.inner.close().await
    }
}

/// Receiving half of a [`TypedChannel`].
pub struct TypedReceiver<In, K: Codec = Postcard> {
    inner: Box<dyn RecvHalf>,
    _types: PhantomData<fn() -> (In, K)>,
}

impl<In: DeserializeOwned, K: Codec> TypedReceiver<In, K> {
    /// Receive one value; `Ok(None)` when the peer closed cleanly.
    pub async fn recv(&mut self) -> Result<Option<In>> {
        match self.inner.recv().await? {
            Some(frame) => K::decode(&frame).map(Some),
            None => Ok(None),
        }
    }
}
