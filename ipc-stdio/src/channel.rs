//! [`StdioChannel`]: JSON lines over a stdin/stdout pair.

use async_trait::async_trait;
use bytes::Bytes;
use ipc_core::stream::{StreamChannel, StreamReceiver, StreamSender};
use ipc_core::{Channel, ChannelInfo, RecvHalf, Result, SendHalf};

use crate::io::{StdioReader, StdioWriter};
use crate::JsonLinesCodec;

/// Transport name reported in [`ChannelInfo::transport`].
pub(crate) const NAME: &str = "stdio";

/// The sending half of a [`StdioChannel`] (see [`StdioChannel::into_split`]).
pub type StdioSender = StreamSender<StdioWriter, JsonLinesCodec>;

/// The receiving half of a [`StdioChannel`] (see [`StdioChannel::into_split`]).
pub type StdioReceiver = StreamReceiver<StdioReader, JsonLinesCodec>;

/// A [`Channel`] of JSON lines over a child's stdin/stdout (parent side, from
/// [`spawn`](crate::spawn)) or this process's own (child side, from
/// [`from_stdio`](crate::from_stdio)).
///
/// Frames are mapped to lines by [`JsonLinesCodec`]; see the [crate docs](crate) for
/// the wire format.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// use ipc_core::Channel;
/// // A child started by a stdio parent (IPC_ENDPOINT=stdio:):
/// let mut parent = ipc_stdio::from_stdio(ipc_core::env::frame_config_from_env())?;
/// while let Some(request) = parent.recv().await? {
///     eprintln!("got {} bytes", request.len()); // logs go to stderr, never stdout
///     parent.send(request).await?;
/// }
/// parent.close().await?;
/// # Ok(()) }
/// ```
pub struct StdioChannel {
    inner: StreamChannel<StdioReader, StdioWriter, JsonLinesCodec>,
    info: ChannelInfo,
}

impl std::fmt::Debug for StdioChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdioChannel")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl StdioChannel {
    pub(crate) fn new(
        reader: StdioReader,
        writer: StdioWriter,
        codec: JsonLinesCodec,
        info: ChannelInfo,
    ) -> Self {
        StdioChannel {
            inner: StreamChannel::new(reader, writer, codec, info.clone()),
            info,
        }
    }

    /// Split into the concrete halves, for a sending and a receiving task without
    /// boxing.
    ///
    /// ```no_run
    /// # async fn demo(channel: ipc_stdio::StdioChannel) -> ipc_core::Result<()> {
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
    pub fn into_split(self) -> (StdioSender, StdioReceiver) {
        self.inner.into_split()
    }
}

#[async_trait]
impl Channel for StdioChannel {
    async fn send(&mut self, frame: Bytes) -> Result<()> {
        self.inner.send(frame).await
    }

    async fn recv(&mut self) -> Result<Option<Bytes>> {
        self.inner.recv().await
    }

    async fn close(&mut self) -> Result<()> {
        self.inner.close().await
    }

    fn info(&self) -> ChannelInfo {
        self.info.clone()
    }

    fn split(self: Box<Self>) -> (Box<dyn SendHalf>, Box<dyn RecvHalf>) {
        let (tx, rx) = self.inner.into_split();
        (Box::new(tx), Box::new(rx))
    }
}
