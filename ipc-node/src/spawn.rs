//! Parent side: [`spawn`] a Node.js child wired to us the way `child_process.fork()`
//! wires one; [`pair`] for two connected channels in one process.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::process::Command;

use ipc_core::env::{IPC_ENDPOINT, IPC_MAX_FRAME, IPC_TOKEN, NODE_CHANNEL_FD};
use ipc_core::spawn::{inherit_fds, spawn_child};
use ipc_core::Options;
use ipc_core::SpawnError;
use ipc_core::{ChannelInfo, Child, Result};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use tokio::net::UnixStream;

use crate::channel::{peer_cred, NodeChannel, NAME};
use crate::connect::NODE_CHANNEL_SERIALIZATION_MODE;
use crate::exit::ChildWatch;

/// The fd number the child finds the channel at (`NODE_CHANNEL_FD=3`), as with
/// `child_process.fork()`.
pub const CHILD_FD: RawFd = 3;

/// Set by Node's `cluster` in its workers; a child of ours is no cluster worker.
const NODE_UNIQUE_ID: &str = "NODE_UNIQUE_ID";

/// Start `command` (typically `node script.js`) as a child connected to the returned
/// channel, as `child_process.fork()` would: in the child, `process.send()` and
/// `process.on('message')` work.
///
/// The child's end of a close-on-exec `socketpair` is inherited as fd 3 (nothing else
/// we hold is inherited); its environment gets `NODE_CHANNEL_FD=3`,
/// `NODE_CHANNEL_SERIALIZATION_MODE=json` and `IPC_MAX_FRAME`, and loses
/// `IPC_ENDPOINT`, `IPC_TOKEN` and `NODE_UNIQUE_ID`. A Rust child finds the channel
/// with `connect_from_env()` just the same. Node needs no more than this: it sends
/// nothing at startup, and it does need a socket (a pipe at `NODE_CHANNEL_FD` reads
/// as an immediate disconnect).
///
/// The channel's `peer_pid` is the child's, and at end-of-stream its receiver consults
/// the child's exit status: see [End of the channel](NodeChannel#end-of-the-channel).
///
/// ```no_run
/// # async fn demo() -> ipc_core::Result<()> {
/// use std::process::Command;
/// use ipc_core::prelude::*;
/// let mut command = Command::new("node");
/// command.arg("child.js");
/// let (mut child, mut channel) = ipc_node::spawn(command, &ipc_core::Options::default()).await?;
/// channel.send_json(&serde_json::json!({"id": 1, "op": "add", "a": 1, "b": 2})).await?;
/// let reply: Option<serde_json::Value> = channel.recv_json().await?;
/// channel.close().await?; // the child's 'disconnect' event
/// let status = child.wait().await?;
/// # let _ = (reply, status); Ok(()) }
/// ```
pub async fn spawn(
    mut command: Command,
    options: &Options,
) -> Result<(Child, NodeChannel), SpawnError> {
    let config = options.frame_config();
    let (ours, theirs) = stream_pair()?;
    inherit_fds(&mut command, &[(&theirs, CHILD_FD)]);
    command
        .env(NODE_CHANNEL_FD, CHILD_FD.to_string())
        .env(NODE_CHANNEL_SERIALIZATION_MODE, "json")
        .env(IPC_MAX_FRAME, config.max_frame().to_string())
        .env_remove(IPC_ENDPOINT)
        .env_remove(IPC_TOKEN)
        .env_remove(NODE_UNIQUE_ID);
    let child = spawn_child(command)?;
    // Only the child may hold its end: then its exit is our end-of-stream.
    drop(theirs);
    tracing::debug!(
        pid = child.pid(),
        fd = ours.as_raw_fd(),
        "spawned a child over Node's channel"
    );
    let stream = into_tokio(ours)?;
    let (_, uid) = peer_cred(&stream);
    let info = ChannelInfo::new(NAME)
        .with_peer_pid(Some(child.pid()))
        .with_peer_uid(uid);
    let watch = ChildWatch::new(child.pid());
    Ok((
        child,
        crate::channel::with_parts(stream, config, info, Some(watch)),
    ))
}

/// Two connected channels in this process (a `socketpair`), for tests and examples.
/// Must be called within a tokio runtime.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// let (mut a, mut b) = ipc_node::pair(&ipc_core::Options::default())?;
/// a.send_json("ready").await?;
/// assert_eq!(b.recv_json::<String>().await?.as_deref(), Some("ready"));
/// # Ok(()) }
/// ```
pub fn pair(options: &Options) -> Result<(NodeChannel, NodeChannel)> {
    let (a, b) = stream_pair()?;
    Ok((
        crate::channel::from_stream(into_tokio(a)?, options),
        crate::channel::from_stream(into_tokio(b)?, options),
    ))
}

/// Remove Node's channel variables (`NODE_CHANNEL_FD`,
/// `NODE_CHANNEL_SERIALIZATION_MODE`, `NODE_UNIQUE_ID`) from a command's environment.
///
/// A process forked by Node still has them in its environment, but its channel fd is
/// close-on-exec once [`connect`](crate::connect)ed: a Node grandchild started with
/// plain `Command::new("node")` would take whatever has fd 3 for its channel and
/// misbehave (Node v20 aborts). Node itself deletes the variables at startup; a Rust
/// program cannot safely change its own environment once threads run, so scrub each
/// command instead.
///
/// ```
/// let mut command = std::process::Command::new("node");
/// ipc_node::scrub_env(&mut command).arg("tool.js");
/// ```
pub fn scrub_env(command: &mut Command) -> &mut Command {
    command
        .env_remove(NODE_CHANNEL_FD)
        .env_remove(NODE_CHANNEL_SERIALIZATION_MODE)
        .env_remove(NODE_UNIQUE_ID)
}

/// A close-on-exec Unix stream socketpair.
fn stream_pair() -> Result<(OwnedFd, OwnedFd)> {
    Ok(socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(std::io::Error::from)?)
}

/// A socket as a tokio stream.
fn into_tokio(fd: OwnedFd) -> Result<UnixStream> {
    let stream = std::os::unix::net::UnixStream::from(fd);
    stream.set_nonblocking(true)?;
    Ok(UnixStream::from_std(stream)?)
}
