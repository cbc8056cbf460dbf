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

mod receiver;
mod sender;
#[cfg(test)]
mod tests;

use std::io;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::channel::ChannelInfo;
use crate::duplex::Duplex;
use crate::error::Error;
use crate::frame::FrameCodec;

pub use receiver::StreamReceiver;
pub use sender::StreamSender;

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
