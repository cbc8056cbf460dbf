//! [`ShmChannel`]: the toolkit's framed channel over a pair of shared-memory rings.

use ipc_core::frame::{FrameCodec, FrameConfig, LengthCodec};
use ipc_core::{ChannelInfo, Duplex, Options, Result};

use crate::offer::{self, Side};
use crate::receiver::ShmReceiver;
use crate::sender::{PeerClosed, ShmSender};

/// Transport name reported in [`ChannelInfo::transport`].
pub(crate) const NAME: &str = "shm";

/// Bytes of each ring unless chosen otherwise (1 MiB per direction): a frame of any size
/// up to the frame limit passes through in pieces, so this only bounds how far a
/// sender may run ahead of its receiver.
///
/// ```
/// assert_eq!(ipc_shm::DEFAULT_RING_SIZE, 1 << 20);
/// ```
pub const DEFAULT_RING_SIZE: usize = 1 << 20;

/// A message channel over shared memory: frames go through one ring per direction of a
/// sealed `memfd` both processes map.
///
/// The frames are the toolkit's length-prefixed frames, so everything about them
/// (limits, the goodbye of `close`, an abort on drop, `feed`/`flush` batching, a frame
/// cut by a cancelled send) behaves as on a Unix socket; but they are copied straight
/// into and out of the rings, with no socket framing layer in between (see
/// [`ShmSender`] and [`ShmReceiver`]).
///
/// Get one from [`spawn`](crate::spawn), [`connect`](crate::connect),
/// [`ShmListener::accept`](crate::ShmListener::accept) or [`pair`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// let (mut a, mut b) = ipc_shm::pair(&ipc_core::Options::default())?;
/// a.send("through shared memory".into()).await?;
/// assert_eq!(b.recv().await?.unwrap(), "through shared memory");
/// # Ok(()) }
/// ```
pub type ShmChannel = Duplex<ShmSender, ShmReceiver>;

/// The channel over our side of a segment (in a tokio runtime).
pub(crate) fn from_side(side: Side, config: FrameConfig, info: ChannelInfo) -> Result<ShmChannel> {
    from_side_with_codec(side, LengthCodec::new(config), info)
}

/// [`from_side`] with a codec set up by the caller (a listener's, charging its budget).
pub(crate) fn from_side_with_codec(
    side: Side,
    codec: LengthCodec,
    info: ChannelInfo,
) -> Result<ShmChannel> {
    let ends = side.into_ends()?;
    let peer_closed = PeerClosed::default();
    let sender = ShmSender::new(
        ends.tx,
        ends.tx_bell,
        codec.max_frame(),
        peer_closed.clone(),
        info.clone(),
    );
    let receiver = ShmReceiver::new(ends.rx, ends.rx_bell, codec, peer_closed, info);
    Ok(Duplex::new(sender, receiver))
}

/// The info of a channel whose peer is `peer`'s (the frame limit is filled in from the
/// codec).
pub(crate) fn info(peer: &ChannelInfo) -> ChannelInfo {
    ChannelInfo::new(NAME)
        .with_peer_pid(peer.peer_pid)
        .with_peer_uid(peer.peer_uid)
        .with_peer_addr(peer.peer_addr.clone())
}

/// Two connected channels in this process, over one new segment with rings of
/// [`DEFAULT_RING_SIZE`] bytes (e.g. for tests, or to hand one end to a thread). Call it
/// inside a tokio runtime. Both report this process as the peer.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// let (mut a, mut b) = ipc_shm::pair(&ipc_core::Options::default())?;
/// b.send("pong".into()).await?;
/// assert_eq!(a.recv().await?.unwrap(), "pong");
/// a.close().await?;
/// assert_eq!(b.recv().await?, None);
/// # Ok(()) }
/// ```
pub fn pair(options: &Options) -> Result<(ShmChannel, ShmChannel)> {
    pair_with_ring_size(options, DEFAULT_RING_SIZE)
}

/// [`pair`] with rings of `ring_size` bytes (a power of two from 4 KiB to 1 GiB).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// let (a, b) = ipc_shm::pair_with_ring_size(&ipc_core::Options::default(), 64 * 1024)?;
/// # let _ = (a, b); Ok(()) }
/// ```
pub fn pair_with_ring_size(
    options: &Options,
    ring_size: usize,
) -> Result<(ShmChannel, ShmChannel)> {
    let config = options.frame_config();
    let (creator, offer) = offer::create(ring_size)?;
    let opener = offer::open(offer)?;
    let info = ChannelInfo::new(NAME)
        .with_peer_pid(Some(std::process::id()))
        .with_peer_uid(Some(nix::unistd::geteuid().as_raw()));
    Ok((
        from_side(creator, config, info.clone())?,
        from_side(opener, config, info)?,
    ))
}
