//! The [`Channel`] trait: a bidirectional, ordered, message-oriented connection to one
//! peer process, whatever carries the bytes.
//!
//! Contract every backend keeps (the conformance suite in `testkit` checks it):
//! - frames arrive whole, in order, exactly once; an empty frame is a frame;
//! - `recv` returns `Ok(None)` only after the peer called `close` (or dropped its channel
//!   with nothing left to flush); a peer that crashed or was killed gives an error;
//! - a slow receiver makes `send` wait: no unbounded queue anywhere;
//! - one bad frame (too large, undecodable) is an error for that frame only.

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::Result;

/// What a channel knows about itself and its peer.
///
/// ```
/// let info = ipc_core::ChannelInfo::new("uds", 8 << 20);
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
    /// Largest payload this channel sends or accepts.
    pub max_frame: usize,
    /// The peer's address as text, when there is one (`127.0.0.1:51234`).
    pub peer_addr: Option<String>,
    /// Frames may hold any bytes; when false each frame must be one JSON text (the
    /// transport's [`Capabilities::binary_frames`](crate::transport::Capabilities)).
    /// [`rpc`](crate::rpc) picks its envelope by it.
    pub binary_frames: bool,
}

impl ChannelInfo {
    /// Info with only the transport name and frame limit known.
    pub fn new(transport: &'static str, max_frame: usize) -> Self {
        ChannelInfo {
            transport,
            peer_pid: None,
            peer_uid: None,
            max_frame,
            peer_addr: None,
            binary_frames: true,
        }
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
    /// let info = ipc_core::ChannelInfo::new("node", 1 << 20).with_binary_frames(false);
    /// assert!(!info.binary_frames);
    /// ```
    pub fn with_binary_frames(mut self, binary: bool) -> Self {
        self.binary_frames = binary;
        self
    }
}

/// A bidirectional message channel to one peer.
///
/// Object safe: backends are used as `Box<dyn Channel>` when the transport is chosen at
/// run time, or as their concrete type (`UdsChannel`, ...) otherwise.
///
/// ```no_run
/// # async fn demo(mut ch: Box<dyn ipc_core::Channel>) -> ipc_core::Result<()> {
/// use bytes::Bytes;
/// ch.send(Bytes::from_static(b"ping")).await?;
/// while let Some(frame) = ch.recv().await? {
///     println!("got {} bytes", frame.len());
/// }
/// ch.close().await?; // the peer's recv now returns Ok(None)
/// # Ok(()) }
/// ```
#[async_trait]
pub trait Channel: Send + 'static {
    /// Send one frame. Returns when the frame is handed to the OS (or the peer's queue),
    /// waiting while the peer is slow to read.
    async fn send(&mut self, frame: Bytes) -> Result<()>;

    /// Receive the next frame; `Ok(None)` once the peer has closed cleanly.
    async fn recv(&mut self) -> Result<Option<Bytes>>;

    /// Tell the peer we are done sending (its `recv` returns `Ok(None)`) and release the
    /// sending side. Idempotent.
    async fn close(&mut self) -> Result<()>;

    /// Transport name, peer identity and limits.
    fn info(&self) -> ChannelInfo;

    /// Split into halves that two tasks can use at once.
    fn split(self: Box<Self>) -> (Box<dyn SendHalf>, Box<dyn RecvHalf>);
}

/// The sending half of a split [`Channel`].
///
/// ```no_run
/// # async fn demo(ch: Box<dyn ipc_core::Channel>) -> ipc_core::Result<()> {
/// let (mut tx, mut rx) = ch.split();
/// let writer = tokio::spawn(async move { tx.send("hello".into()).await });
/// let reply = rx.recv().await?;
/// # let _ = (writer, reply); Ok(()) }
/// ```
#[async_trait]
pub trait SendHalf: Send + 'static {
    /// Send one frame (see [`Channel::send`]).
    async fn send(&mut self, frame: Bytes) -> Result<()>;
    /// Close the sending direction (see [`Channel::close`]).
    async fn close(&mut self) -> Result<()>;
    /// Channel info.
    fn info(&self) -> ChannelInfo;
}

/// The receiving half of a split [`Channel`].
///
/// ```no_run
/// # async fn demo(mut rx: Box<dyn ipc_core::RecvHalf>) -> ipc_core::Result<()> {
/// while let Some(frame) = rx.recv().await? { let _ = frame; }
/// # Ok(()) }
/// ```
#[async_trait]
pub trait RecvHalf: Send + 'static {
    /// Receive the next frame (see [`Channel::recv`]).
    async fn recv(&mut self) -> Result<Option<Bytes>>;
    /// Channel info.
    fn info(&self) -> ChannelInfo;
}

#[async_trait]
impl Channel for Box<dyn Channel> {
    async fn send(&mut self, frame: Bytes) -> Result<()> {
        (**self).send(frame).await
    }
    async fn recv(&mut self) -> Result<Option<Bytes>> {
        (**self).recv().await
    }
    async fn close(&mut self) -> Result<()> {
        (**self).close().await
    }
    fn info(&self) -> ChannelInfo {
        (**self).info()
    }
    fn split(self: Box<Self>) -> (Box<dyn SendHalf>, Box<dyn RecvHalf>) {
        (*self).split()
    }
}

/// Join a split pair back into one [`Channel`].
///
/// ```no_run
/// # fn demo(ch: Box<dyn ipc_core::Channel>) {
/// let (tx, rx) = ch.split();
/// let whole: Box<dyn ipc_core::Channel> = Box::new(ipc_core::Joined::new(tx, rx));
/// # let _ = whole; }
/// ```
pub struct Joined {
    tx: Box<dyn SendHalf>,
    rx: Box<dyn RecvHalf>,
}

impl Joined {
    /// Put two halves together.
    pub fn new(tx: Box<dyn SendHalf>, rx: Box<dyn RecvHalf>) -> Self {
        Joined { tx, rx }
    }
}

#[async_trait]
impl Channel for Joined {
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
        self.tx.info()
    }
    fn split(self: Box<Self>) -> (Box<dyn SendHalf>, Box<dyn RecvHalf>) {
        (self.tx, self.rx)
    }
}
