//! [`Duplex`]: one [`Channel`] made of a sending half and a receiving half. Every
//! backend's channel is one (`UdsChannel = Duplex<UdsSender, UdsReceiver>`, ...), and
//! [`Joined`] puts two boxed halves back together.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::{Sink, Stream};

use crate::channel::{Channel, ChannelInfo, RecvHalf, SendHalf};
use crate::error::RecvError;

/// A [`Channel`] made of a sending half `Tx` and a receiving half `Rx`: frames sent go
/// to `Tx` (it is the [`Sink`]), frames received come from `Rx` (it is the
/// [`Stream`]), and [`info`](Channel::info) is the sending half's.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// use ipc_core::{frame::{FrameConfig, LengthCodec}, stream, ChannelInfo, Duplex};
/// let (a, b) = tokio::io::duplex(1024);
/// let (ar, aw) = tokio::io::split(a);
/// let codec = LengthCodec::new(FrameConfig::default());
/// let info = ChannelInfo::new("mem");
/// let tx = stream::StreamSender::new(aw, codec.clone(), info.clone());
/// let rx = stream::StreamReceiver::new(ar, codec, info);
/// let mut ch = Duplex::new(tx, rx);
/// ch.send("into the pipe".into()).await?;
/// let (tx, rx) = ch.into_split();
/// # let _ = (tx, rx, b); Ok(()) }
/// ```
#[derive(Debug)]
pub struct Duplex<Tx, Rx> {
    tx: Tx,
    rx: Rx,
}

/// Two boxed halves joined back into one [`Channel`] (what
/// [`Channel::split`] gave apart).
///
/// ```no_run
/// # fn demo(ch: Box<dyn ipc_core::Channel>) {
/// let (tx, rx) = ch.split();
/// let whole: Box<dyn ipc_core::Channel> = Box::new(ipc_core::Joined::new(tx, rx));
/// # let _ = whole; }
/// ```
pub type Joined = Duplex<Box<dyn SendHalf>, Box<dyn RecvHalf>>;

impl<Tx, Rx> Duplex<Tx, Rx> {
    /// Put two halves together.
    pub fn new(tx: Tx, rx: Rx) -> Self {
        Duplex { tx, rx }
    }

    /// The sending half.
    pub fn sender(&self) -> &Tx {
        &self.tx
    }

    /// The sending half, mutably.
    pub fn sender_mut(&mut self) -> &mut Tx {
        &mut self.tx
    }

    /// The receiving half.
    pub fn receiver(&self) -> &Rx {
        &self.rx
    }

    /// The receiving half, mutably.
    pub fn receiver_mut(&mut self) -> &mut Rx {
        &mut self.rx
    }

    /// Split into the concrete halves (no boxing), for a sending and a receiving task.
    pub fn into_split(self) -> (Tx, Rx) {
        (self.tx, self.rx)
    }
}

// A field is only ever pinned through `Pin::new`, which requires it to be `Unpin`.
impl<Tx, Rx> Unpin for Duplex<Tx, Rx> {}

impl<Tx, Rx: Stream + Unpin> Stream for Duplex<Tx, Rx> {
    type Item = Rx::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.get_mut().rx).poll_next(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.rx.size_hint()
    }
}

impl<Item, Tx: Sink<Item> + Unpin, Rx> Sink<Item> for Duplex<Tx, Rx> {
    type Error = Tx::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.get_mut().tx).poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Item) -> Result<(), Self::Error> {
        Pin::new(&mut self.get_mut().tx).start_send(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.get_mut().tx).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.get_mut().tx).poll_close(cx)
    }
}

impl<Tx: SendHalf, Rx: RecvHalf> Channel for Duplex<Tx, Rx> {
    fn info(&self) -> ChannelInfo {
        self.tx.info()
    }

    fn split(self: Box<Self>) -> (Box<dyn SendHalf>, Box<dyn RecvHalf>) {
        let Duplex { tx, rx } = *self;
        (tx.into_box(), rx.into_box())
    }

    fn poll_recv_many(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut Vec<Bytes>,
        max: usize,
    ) -> Poll<Result<usize, RecvError>> {
        self.rx.poll_recv_many(cx, out, max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_channel<C: Channel>() {}

    #[test]
    fn joined_and_boxed_channels_are_channels() {
        is_channel::<Joined>();
        is_channel::<Box<dyn Channel>>();
    }
}
