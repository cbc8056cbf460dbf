//! [`spawn`]: start a child process that finds its shared-memory segment offered on an
//! inherited socket.

use std::os::fd::OwnedFd;
use std::process::Command;

use ipc_core::spawn::{inherit_fds, set_child_env, spawn_child};
use ipc_core::{Channel, ChannelInfo, Child, Endpoint, Options, Result, SpawnError};

use crate::channel::{self, ShmChannel, DEFAULT_RING_SIZE};
use crate::offer::{self, rendezvous_options};

/// The fd number the child finds the offer on (`IPC_ENDPOINT=shm:fd=3`).
///
/// ```
/// assert_eq!(ipc_shm::CHILD_FD, 3);
/// ```
pub const CHILD_FD: i32 = 3;

/// Start `command` as a child connected to the returned channel, over a new segment
/// with rings of [`DEFAULT_RING_SIZE`] bytes.
///
/// The child inherits one end of a socket pair as fd 3, on which the segment and its
/// doorbells are offered, and finds `IPC_ENDPOINT=shm:fd=3` and `IPC_MAX_FRAME` in its
/// environment, so it connects with `connect_from_env()` (or [`connect`](crate::connect)).
/// Frames sent before the child connects wait in the ring.
///
/// ```no_run
/// # async fn demo() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// let command = std::process::Command::new("/usr/local/bin/worker");
/// let (mut child, mut channel) = ipc_shm::spawn(command, &ipc_core::Options::default()).await?;
/// channel.send("job 1".into()).await?;
/// let answer = channel.recv().await?;
/// channel.close().await?;
/// let status = child.wait().await?;
/// # let _ = (answer, status); Ok(()) }
/// ```
pub async fn spawn(command: Command, options: &Options) -> Result<(Child, ShmChannel), SpawnError> {
    spawn_with_ring_size(command, options, DEFAULT_RING_SIZE).await
}

/// [`spawn`] with rings of `ring_size` bytes (a power of two from 4 KiB to 1 GiB).
///
/// ```no_run
/// # async fn demo() -> ipc_core::Result<()> {
/// let command = std::process::Command::new("/usr/local/bin/worker");
/// let (child, channel) =
///     ipc_shm::spawn_with_ring_size(command, &ipc_core::Options::default(), 8 << 20).await?;
/// # let _ = (child, channel); Ok(()) }
/// ```
pub async fn spawn_with_ring_size(
    mut command: Command,
    options: &Options,
    ring_size: usize,
) -> Result<(Child, ShmChannel), SpawnError> {
    let (side, offer) = offer::create(ring_size)?;
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
    let theirs = OwnedFd::from(theirs);
    inherit_fds(&mut command, &[(&theirs, CHILD_FD)]);
    set_child_env(&mut command, &Endpoint::ShmFd(CHILD_FD), None, options);
    let child = spawn_child(command)?;
    // Only the child may hold its end.
    drop(theirs);
    ours.set_nonblocking(true)?;
    let rendezvous = ipc_uds::from_stream(
        tokio::net::UnixStream::from_std(ours)?,
        &rendezvous_options(),
    )?;
    let uid = rendezvous.info().peer_uid;
    offer::send_offer(rendezvous, offer).await?;
    tracing::debug!(pid = child.pid(), ring_size, "spawned child over shm");
    // A socket pair names its creator (us) as the peer; the peer is the child.
    let peer = ChannelInfo::new(channel::NAME)
        .with_peer_pid(Some(child.pid()))
        .with_peer_uid(uid);
    let channel = channel::from_side(side, options.frame_config(), channel::info(&peer))?;
    Ok((child, channel))
}
