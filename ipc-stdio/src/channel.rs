//! [`StdioChannel`]: JSON lines over a stdin/stdout pair.

use ipc_core::stream::{StreamChannel, StreamReceiver, StreamSender};

use crate::io::{StdioReader, StdioWriter};
use crate::JsonLinesCodec;

/// Transport name reported in [`ChannelInfo::transport`](ipc_core::ChannelInfo::transport).
pub(crate) const NAME: &str = "stdio";

/// The sending half of a [`StdioChannel`] (see [`Duplex::into_split`](ipc_core::Duplex::into_split)).
pub type StdioSender = StreamSender<StdioWriter, JsonLinesCodec>;

/// The receiving half of a [`StdioChannel`] (see [`Duplex::into_split`](ipc_core::Duplex::into_split)).
pub type StdioReceiver = StreamReceiver<StdioReader, JsonLinesCodec>;

/// A [`Channel`](ipc_core::Channel) of JSON lines over a child's stdin/stdout (parent
/// side, from [`spawn`](crate::spawn)) or this process's own (child side, from
/// [`from_stdio`](crate::from_stdio)).
///
/// Frames are mapped to lines by [`JsonLinesCodec`]; see the [crate docs](crate) for
/// the wire format.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// // A child started by a stdio parent (IPC_ENDPOINT=stdio:):
/// let mut parent = ipc_stdio::from_stdio(&ipc_core::Options::from_env())?;
/// while let Some(request) = parent.recv().await? {
///     eprintln!("got {} bytes", request.len()); // logs go to stderr, never stdout
///     parent.send(request).await?;
/// }
/// parent.close().await?;
/// # Ok(()) }
/// ```
///
/// Split it with [`into_split`](ipc_core::Duplex::into_split) for a sending and a
/// receiving task without boxing:
///
/// ```no_run
/// # async fn demo(channel: ipc_stdio::StdioChannel) -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// let (mut tx, mut rx) = channel.into_split();
/// let writer = tokio::spawn(async move {
///     tx.send("{\"tick\":1}".into()).await?;
///     tx.close().await
/// });
/// while let Some(frame) = rx.recv().await? {
///     eprintln!("{}", String::from_utf8_lossy(&frame));
/// }
/// writer.await.expect("writer task")?;
/// # Ok(()) }
/// ```
pub type StdioChannel = StreamChannel<StdioReader, StdioWriter, JsonLinesCodec>;
