//! Anonymous pipes between a parent and the child it spawns: [`spawn_pipe`] (parent
//! side) and [`connect_inherited`] (child side, `pipe:fd=R,W`).

use std::io;
use std::os::fd::RawFd;
use std::process::Command;

use ipc_core::inherit::FdKind;
use ipc_core::spawn::{inherit_fds, set_child_env, spawn_child};
use ipc_core::ConnectError;
use ipc_core::Options;
use ipc_core::SpawnError;
use ipc_core::{ChannelInfo, Child, Endpoint, Error, Result};

use crate::channel::{new_pipe, require_runtime, wrap, PipeChannel, PIPE};

/// The fd the child reads from (`IPC_ENDPOINT=pipe:fd=3,4`).
pub const CHILD_READ_FD: RawFd = 3;
/// The fd the child writes to (`IPC_ENDPOINT=pipe:fd=3,4`).
pub const CHILD_WRITE_FD: RawFd = 4;

/// Start `command` as a child connected to the returned channel by two anonymous pipes.
///
/// Two `pipe2(O_CLOEXEC)` pairs make one full-duplex channel. The child's read end is
/// placed at fd 3 and its write end at fd 4 (every other fd we hold stays
/// close-on-exec), and its environment gets `IPC_ENDPOINT=pipe:fd=3,4` and
/// `IPC_MAX_FRAME`, so it connects with `connect_from_env()` (or
/// [`connect_inherited`]). Our copies of the child's ends are closed right after the
/// spawn: the child's exit is then our end-of-stream, reported as
/// [`Error::PeerLost`] when it did not close the channel first.
///
/// The channel's `peer_pid` is the child's pid. Must be called inside a tokio runtime.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// // `cat` echoes the raw bytes, frames and goodbye included.
/// let mut cmd = std::process::Command::new("/bin/sh");
/// cmd.args(["-c", "exec cat <&3 >&4"]);
/// let (mut child, mut ch) = ipc_pipe::spawn_pipe(cmd, &ipc_core::Options::default()).await?;
/// assert_eq!(ch.info().peer_pid, Some(child.pid()));
/// ch.send("echo me".into()).await?;
/// assert_eq!(ch.recv().await?.as_deref(), Some(&b"echo me"[..]));
/// ch.close().await?;
/// assert_eq!(ch.recv().await?, None); // our own goodbye, echoed
/// drop(ch); // cat sees end-of-file and exits
/// assert!(child.wait().await?.success());
/// # Ok(()) }
/// ```
pub async fn spawn_pipe(
    mut command: Command,
    options: &Options,
) -> Result<(Child, PipeChannel), SpawnError> {
    let config = options.frame_config();
    require_runtime("ipc_pipe::spawn_pipe")?;
    let (child_read, parent_write) = new_pipe()?;
    let (parent_read, child_write) = new_pipe()?;
    inherit_fds(
        &mut command,
        &[(&child_read, CHILD_READ_FD), (&child_write, CHILD_WRITE_FD)],
    );
    set_child_env(
        &mut command,
        &Endpoint::Pipe {
            read: CHILD_READ_FD,
            write: CHILD_WRITE_FD,
        },
        None,
        options,
    );
    let child = spawn_child(command)?;
    // Only the child may hold its ends: then its exit is our end-of-file, and our
    // writes fail with EPIPE instead of filling a pipe nobody reads.
    drop(child_read);
    drop(child_write);
    tracing::debug!(pid = child.pid(), "spawned child over anonymous pipes");
    let info = ChannelInfo::new(PIPE).with_peer_pid(Some(child.pid()));
    let channel = wrap(parent_read, parent_write, config, info, None)?;
    Ok((child, channel))
}

/// What to tell someone whose `pipe:fd=R,W` are not the pipe ends we expect.
const INHERIT_HINT: &str = "the pipe transport needs the pipe ends its parent passed \
                            (IPC_ENDPOINT=pipe:fd=R,W); was this process started by an ipc \
                            parent with the pipe transport?";

/// In a child: wrap the pipe ends the parent passed (`IPC_ENDPOINT=pipe:fd=R,W`).
///
/// Each fd is checked with `fstat` to be a pipe with the right access mode (a clear
/// error otherwise, and the fd is left alone), made close-on-exec (so our own children
/// do not inherit it), and registered with the runtime's reactor (no blocking thread).
/// An fd number can be taken once per process: a second call with the same numbers is
/// an error, since two channels on one pipe would tear each other's frames.
///
/// The channel's `peer_pid` is our parent's pid (`getppid`). Must be called inside a
/// tokio runtime.
///
/// ```no_run
/// # async fn demo() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// // In a child started by ipc_pipe::spawn_pipe (IPC_ENDPOINT=pipe:fd=3,4):
/// let mut ch = ipc_pipe::connect_inherited(3, 4, &ipc_core::Options::from_env())?;
/// while let Some(msg) = ch.recv().await? {
///     ch.send(msg).await?;
/// }
/// ch.close().await?;
/// # Ok(()) }
/// ```
pub fn connect_inherited(
    read: RawFd,
    write: RawFd,
    options: &Options,
) -> Result<PipeChannel, ConnectError> {
    let config = options.frame_config();
    require_runtime("ipc_pipe::connect_inherited")?;
    if read == write {
        return Err(Error::BadEndpoint {
            input: Endpoint::Pipe { read, write }.to_string(),
            reason: "the read and write fds must differ (two pipes make one channel)".into(),
        }
        .into());
    }
    let endpoint = Endpoint::Pipe { read, write };
    let mut fds = ipc_core::inherit::claim(
        &endpoint,
        &[(read, FdKind::PipeReadEnd), (write, FdKind::PipeWriteEnd)],
        INHERIT_HINT,
    )?
    .into_iter();
    let (Some(read), Some(write)) = (fds.next(), fds.next()) else {
        return Err(Error::Io(io::Error::other("claim returned fewer fds")).into());
    };
    let ppid = u32::try_from(nix::unistd::getppid().as_raw()).ok();
    let info = ChannelInfo::new(PIPE).with_peer_pid(ppid);
    Ok(wrap(read, write, config, info, None)?)
}
