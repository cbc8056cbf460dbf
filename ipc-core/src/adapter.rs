//! [`FrameSink`] and [`FrameStream`]: the [`SendHalf`] and [`RecvHalf`] of a backend
//! whose I/O is naturally written as `async fn`s (one frame sent, one frame received)
//! rather than as poll functions. The backend implements [`SendFrames`] /
//! [`RecvFrames`]; the adapter keeps the one operation in flight as a boxed future and
//! turns it into `Sink` and `Stream`.
//!
//! An operation the caller stops waiting for (a dropped `send` or `next` future) is not
//! lost: it stays in the adapter and the next call finishes it first. Dropping the
//! adapter drops that operation, and with it the backend's half, whose `Drop` decides
//! what the peer sees.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
//! use bytes::Bytes;
//! use ipc_core::adapter::{FrameSink, FrameStream, RecvFrames, SendFrames};
//! use ipc_core::prelude::*;
//! use ipc_core::{ChannelInfo, Duplex, Result};
//! use tokio::sync::mpsc;
//!
//! // A toy backend: frames over a tokio channel.
//! struct Out(Option<mpsc::Sender<Bytes>>);
//! struct In(mpsc::Receiver<Bytes>);
//! impl SendFrames for Out {
//!     async fn send_frame(&mut self, frame: Bytes) -> Result<()> {
//!         let tx = self.0.as_ref().ok_or(ipc_core::Error::Closed)?;
//!         tx.send(frame).await.map_err(|_| ipc_core::Error::PeerLost("gone".into()))
//!     }
//!     async fn close_sending(&mut self) -> Result<()> {
//!         self.0 = None;
//!         Ok(())
//!     }
//!     fn info(&self) -> ChannelInfo { ChannelInfo::new("toy") }
//! }
//! impl RecvFrames for In {
//!     async fn recv_frame(&mut self) -> Result<Option<Bytes>> { Ok(self.0.recv().await) }
//!     fn info(&self) -> ChannelInfo { ChannelInfo::new("toy") }
//! }
//!
//! let (tx, rx) = mpsc::channel(4);
//! let mut ch = Duplex::new(FrameSink::new(Out(Some(tx))), FrameStream::new(In(rx)));
//! ch.send("hi".into()).await?;
//! ch.close().await?;
//! assert_eq!(ch.recv().await?.as_deref(), Some(&b"hi"[..]));
//! assert_eq!(ch.recv().await?, None);
//! # Ok(()) }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, Sink, Stream};

use crate::channel::{ChannelInfo, RecvHalf, SendHalf};
use crate::error::{Error, RecvError, Result, SendError};

/// A sending half written as `async fn`s; [`FrameSink`] makes it a [`SendHalf`].
pub trait SendFrames: Send + 'static {
    /// Send one frame; return once it is handed to the OS (or the peer's queue). A
    /// frame over the limit fails with [`Error::FrameTooLarge`] and nothing is sent.
    fn send_frame(&mut self, frame: Bytes) -> impl Future<Output = Result<()>> + Send;

    /// Tell the peer goodbye and release the sending direction. Idempotent.
    fn close_sending(&mut self) -> impl Future<Output = Result<()>> + Send;

    /// Channel info (asked once, when the adapter is made).
    fn info(&self) -> ChannelInfo;
}

/// A receiving half written as an `async fn`; [`FrameStream`] makes it a [`RecvHalf`].
pub trait RecvFrames: Send + 'static {
    /// The next frame; `Ok(None)` once the peer closed cleanly; an error that becomes
    /// [`RecvError::Rejected`] (too large, undecodable) concerns one frame only.
    fn recv_frame(&mut self) -> impl Future<Output = Result<Option<Bytes>>> + Send;

    /// Channel info (asked once, when the adapter is made).
    fn info(&self) -> ChannelInfo;
}

/// The half itself, or the one operation in flight (which owns it meanwhile).
enum Slot<T, R> {
    Idle(T),
    Busy(BoxFuture<'static, (T, R)>),
    /// Only while switching from one to the other (or if an operation panicked).
    Empty,
}

impl<T, R> Slot<T, R> {
    /// Finish the operation in flight, if any: `Some(result)` when one just finished.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<Option<R>> {
        match self {
            Slot::Idle(_) => Poll::Ready(None),
            Slot::Busy(op) => {
                let (half, result) = ready!(op.poll_unpin(cx));
                *self = Slot::Idle(half);
                Poll::Ready(Some(result))
            }
            Slot::Empty => Poll::Ready(None),
        }
    }

    /// Start an operation on the idle half.
    fn start<F>(&mut self, op: impl FnOnce(T) -> F) -> Result<()>
    where
        F: Future<Output = (T, R)> + Send + 'static,
    {
        match std::mem::replace(self, Slot::Empty) {
            Slot::Idle(half) => {
                *self = Slot::Busy(Box::pin(op(half)));
                Ok(())
            }
            busy @ Slot::Busy(_) => {
                *self = busy;
                Err(Error::Io(std::io::Error::other(
                    "an operation was started while another was in flight (Sink::start_send \
                     without poll_ready returning Ready first)",
                )))
            }
            Slot::Empty => Err(lost()),
        }
    }
}

fn lost() -> Error {
    Error::Io(std::io::Error::other(
        "this channel half panicked during an earlier operation; open a new channel",
    ))
}

/// A [`SendFrames`] as a [`Sink`] of frames ([`SendHalf`]).
///
/// `start_send` starts sending the frame; `poll_ready` and `poll_flush` wait for it;
/// `poll_close` then closes. One frame is in flight at a time (a backend that can
/// batch writes implements `Sink` itself, as [`StreamSender`](crate::stream::StreamSender)
/// does).
pub struct FrameSink<T> {
    slot: Slot<T, Result<()>>,
    info: ChannelInfo,
    closed: bool,
}

impl<T: SendFrames> FrameSink<T> {
    /// Wrap a sending half.
    pub fn new(half: T) -> Self {
        FrameSink {
            info: half.info(),
            slot: Slot::Idle(half),
            closed: false,
        }
    }

    /// The wrapped half, unless an operation is in flight.
    pub fn get_ref(&self) -> Option<&T> {
        match &self.slot {
            Slot::Idle(half) => Some(half),
            _ => None,
        }
    }

    fn poll_done(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        match ready!(self.slot.poll_idle(cx)) {
            Some(result) => Poll::Ready(result),
            None if matches!(self.slot, Slot::Empty) => Poll::Ready(Err(lost())),
            None => Poll::Ready(Ok(())),
        }
    }
}

// The half is moved in and out of the operation, never pinned in place.
impl<T> Unpin for FrameSink<T> {}

impl<T> std::fmt::Debug for FrameSink<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameSink")
            .field("info", &self.info)
            .field("busy", &matches!(self.slot, Slot::Busy(_)))
            .field("closed", &self.closed)
            .finish()
    }
}

impl<T: SendFrames> FrameSink<T> {
    fn sink_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.get_mut().poll_done(cx)
    }

    fn sink_start(self: Pin<&mut Self>, frame: Bytes) -> Result<()> {
        self.get_mut().slot.start(|mut half| async move {
            let result = half.send_frame(frame).await;
            (half, result)
        })
    }

    fn sink_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.get_mut().poll_done(cx)
    }

    fn sink_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        loop {
            let result = ready!(this.poll_done(cx));
            if this.closed || result.is_err() {
                // The close finished (or an earlier send failed: report that first).
                return Poll::Ready(result);
            }
            this.closed = true;
            this.slot.start(|mut half| async move {
                let result = half.close_sending().await;
                (half, result)
            })?;
        }
    }
}

impl<T: SendFrames> Sink<Bytes> for FrameSink<T> {
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

impl<T: SendFrames> SendHalf for FrameSink<T> {
    fn info(&self) -> ChannelInfo {
        self.info.clone()
    }
}

/// A [`RecvFrames`] as a [`Stream`] of frames ([`RecvHalf`]): a clean close ends the
/// stream, a [`RecvError::Rejected`] is one item and the stream goes on, any other
/// error is the last item.
pub struct FrameStream<T> {
    slot: Slot<T, Result<Option<Bytes>>>,
    info: ChannelInfo,
    ended: bool,
}

impl<T: RecvFrames> FrameStream<T> {
    /// Wrap a receiving half.
    pub fn new(half: T) -> Self {
        FrameStream {
            info: half.info(),
            slot: Slot::Idle(half),
            ended: false,
        }
    }

    /// The wrapped half, unless a receive is in flight.
    pub fn get_ref(&self) -> Option<&T> {
        match &self.slot {
            Slot::Idle(half) => Some(half),
            _ => None,
        }
    }
}

// The half is moved in and out of the operation, never pinned in place.
impl<T> Unpin for FrameStream<T> {}

impl<T> std::fmt::Debug for FrameStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameStream")
            .field("info", &self.info)
            .field("busy", &matches!(self.slot, Slot::Busy(_)))
            .field("ended", &self.ended)
            .finish()
    }
}

impl<T: RecvFrames> Stream for FrameStream<T> {
    type Item = Result<Bytes, RecvError>;

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, RecvError>>> {
        let this = self.get_mut();
        loop {
            if this.ended {
                return Poll::Ready(None);
            }
            let Some(result) = ready!(this.slot.poll_idle(cx)) else {
                if let Err(e) = this.slot.start(|mut half| async move {
                    let result = half.recv_frame().await;
                    (half, result)
                }) {
                    this.ended = true;
                    return Poll::Ready(Some(Err(e.into())));
                }
                continue;
            };
            return Poll::Ready(match result {
                Ok(Some(frame)) => Some(Ok(frame)),
                Ok(None) => {
                    this.ended = true;
                    None
                }
                Err(e) => {
                    let e = RecvError::from(e);
                    this.ended = !e.is_rejected();
                    Some(Err(e))
                }
            });
        }
    }
}

impl<T: RecvFrames> RecvHalf for FrameStream<T> {
    fn info(&self) -> ChannelInfo {
        self.info.clone()
    }
}
