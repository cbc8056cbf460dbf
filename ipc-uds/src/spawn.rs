//! [`spawn`]: start a child process wired to us by a socketpair inherited as fd 3.

use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Command;

use ipc_core::spawn::{inherit_fds, set_child_env, spawn_child};
use ipc_core::SpawnError;
use ipc_core::{ChannelInfo, Child, Endpoint, Options, Result};
use tokio::net::UnixStream;

use crate::channel::{peer_cred, UdsChannel, NAME};

/// The fd number the child finds its end at (`IPC_ENDPOINT=uds:fd=3`).
pub const CHILD_FD: i32 = 3;

/// Start `command` as a child connected to the returned channel.
///
/// The child's end of a `socketpair` is inherited as fd 3 (every other fd we hold stays
/// close-on-exec), and the child's environment gets `IPC_ENDPOINT=uds:fd=3` and
/// `IPC_MAX_FRAME`, so it connects with `connect_from_env()` (or
/// [`connect`](crate::connect) on that endpoint). The channel's `peer_pid` is the child's.
///
/// ```no_run
/// # async fn demo() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// let command = std::process::Command::new("/usr/local/bin/worker");
/// let (mut child, mut channel) = ipc_uds::spawn(command, &ipc_core::Options::default()).await?;
/// channel.send("job 1".into()).await?;
/// let answer = channel.recv().await?;
/// channel.close().await?;
/// let status = child.wait().await?;
/// # let _ = (answer, status); Ok(()) }
/// ```
pub async fn spawn(
    mut command: Command,
    options: &Options,
) -> Result<(Child, UdsChannel), SpawnError> {
    // socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC): both ends close-on-exec.
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
    let theirs = OwnedFd::from(theirs);
    inherit_fds(&mut command, &[(&theirs, CHILD_FD)]);
    set_child_env(&mut command, &Endpoint::UdsFd(CHILD_FD), None, options);
    let child = spawn_child(command)?;
    // Only the child may hold its end: then its exit is our end-of-stream.
    drop(theirs);
    tracing::debug!(
        pid = child.pid(),
        fd = ours.as_raw_fd(),
        "spawned child over uds"
    );
    ours.set_nonblocking(true)?;
    let stream = UnixStream::from_std(ours)?;
    // SO_PEERCRED on a socketpair names its creator (us); the peer is the child.
    let uid = peer_cred(&stream)?.uid;
    let info = ChannelInfo::new(NAME)
        .with_peer_pid(Some(child.pid()))
        .with_peer_uid(Some(uid));
    Ok((
        child,
        crate::channel::with_info(stream, options.frame_config(), info)?,
    ))
}
