//! Anonymous pipes between a parent and the child it spawns: [`spawn_pipe`] (parent
//! side) and [`connect_inherited`] (child side, `pipe:fd=R,W`).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::process::Command;
use std::sync::Mutex;

use ipc_core::frame::FrameConfig;
use ipc_core::spawn::{inherit_fds, set_child_env, spawn_child};
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
/// use ipc_core::Channel;
/// // `cat` echoes the raw bytes, frames and goodbye included.
/// let mut cmd = std::process::Command::new("/bin/sh");
/// cmd.args(["-c", "exec cat <&3 >&4"]);
/// let (mut child, mut ch) = ipc_pipe::spawn_pipe(cmd, Default::default()).await?;
/// assert_eq!(ch.info().peer_pid, Some(child.pid()));
/// ch.send("echo me".into()).await?;
/// assert_eq!(ch.recv().await?.as_deref(), Some(&b"echo me"[..]));
/// ch.close().await?;
/// assert_eq!(ch.recv().await?, None); // our own goodbye, echoed
/// drop(ch); // cat sees end-of-file and exits
/// assert!(child.wait().await?.success());
/// # Ok(()) }
/// ```
pub async fn spawn_pipe(mut command: Command, config: FrameConfig) -> Result<(Child, PipeChannel)> {
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
        config,
    );
    let child = spawn_child(command)?;
    // Only the child may hold its ends: then its exit is our end-of-file, and our
    // writes fail with EPIPE instead of filling a pipe nobody reads.
    drop(child_read);
    drop(child_write);
    tracing::debug!(pid = child.pid(), "spawned child over anonymous pipes");
    let info = ChannelInfo::new(PIPE, config.max_frame()).with_peer_pid(Some(child.pid()));
    let channel = wrap(parent_read, parent_write, config, info, None)?;
    Ok((child, channel))
}

/// Inherited fds already wrapped in this process (each may be taken once).
static TAKEN: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());

/// What `fstat` says an fd is, for error messages.
fn describe(mode: libc::mode_t) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFREG => "a regular file",
        libc::S_IFDIR => "a directory",
        libc::S_IFCHR => "a character device (a terminal or /dev/null?)",
        libc::S_IFBLK => "a block device",
        libc::S_IFSOCK => "a socket",
        libc::S_IFLNK => "a symbolic link",
        _ => "not a pipe",
    }
}

/// Check that `fd` is an open pipe with the access we need, without taking it.
fn check_pipe_fd(fd: RawFd, writing: bool) -> Result<()> {
    let role = if writing { "write" } else { "read" };
    // SAFETY: all-zero is a valid `stat`; fstat only writes into it, and an fd that is
    // not open gives EBADF (nothing is dereferenced through the fd number).
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        let e = io::Error::last_os_error();
        return Err(Error::Io(io::Error::new(
            e.kind(),
            format!(
                "pipe:fd: the {role} fd {fd} is not usable ({e}); was this process started \
                 by an ipc parent with the pipe transport (it passes fds 3 and 4)?"
            ),
        )));
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFIFO {
        return Err(Error::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "pipe:fd: the {role} fd {fd} is {}, not a pipe; the pipe transport needs \
                 the pipe ends its parent passed (IPC_ENDPOINT=pipe:fd=R,W)",
                describe(st.st_mode)
            ),
        )));
    }
    // SAFETY: F_GETFL on an fd we just checked is open; no memory is involved.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(Error::Io(io::Error::last_os_error()));
    }
    let mode = flags & libc::O_ACCMODE;
    let ok = if writing {
        mode == libc::O_WRONLY || mode == libc::O_RDWR
    } else {
        mode == libc::O_RDONLY || mode == libc::O_RDWR
    };
    if !ok {
        return Err(Error::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "pipe:fd: fd {fd} is the wrong end of its pipe: it cannot be used to {role} \
                 (is the endpoint pipe:fd=READ,WRITE in the right order?)"
            ),
        )));
    }
    Ok(())
}

/// Take ownership of inherited fd numbers, once per process.
fn take(read: RawFd, write: RawFd) -> Result<(OwnedFd, OwnedFd)> {
    let mut taken = TAKEN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(fd) = [read, write].into_iter().find(|fd| taken.contains(fd)) {
        return Err(Error::Io(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "pipe:fd: fd {fd} was already taken by an earlier connect in this process; \
                 an inherited pipe can be wrapped once (keep the first channel, or split it \
                 to use it from two tasks)"
            ),
        )));
    }
    for fd in [read, write] {
        // SAFETY: FD_CLOEXEC on an fd checked open; no memory is involved.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
            return Err(Error::Io(io::Error::last_os_error()));
        }
    }
    taken.extend([read, write]);
    // SAFETY: the fds are open pipes (checked) that the parent passed to this process
    // for the channel, per the environment contract; TAKEN guarantees this is the only
    // place that ever makes an `OwnedFd` of these numbers in this process.
    Ok(unsafe { (OwnedFd::from_raw_fd(read), OwnedFd::from_raw_fd(write)) })
}

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
/// use ipc_core::Channel;
/// // In a child started by ipc_pipe::spawn_pipe (IPC_ENDPOINT=pipe:fd=3,4):
/// let mut ch = ipc_pipe::connect_inherited(3, 4, ipc_core::env::frame_config_from_env())?;
/// while let Some(msg) = ch.recv().await? {
///     ch.send(msg).await?;
/// }
/// ch.close().await?;
/// # Ok(()) }
/// ```
pub fn connect_inherited(read: RawFd, write: RawFd, config: FrameConfig) -> Result<PipeChannel> {
    require_runtime("ipc_pipe::connect_inherited")?;
    if read == write {
        return Err(Error::BadEndpoint {
            input: Endpoint::Pipe { read, write }.to_string(),
            reason: "the read and write fds must differ (two pipes make one channel)".into(),
        });
    }
    check_pipe_fd(read, false)?;
    check_pipe_fd(write, true)?;
    let (read, write) = take(read, write)?;
    let ppid = u32::try_from(nix::unistd::getppid().as_raw()).ok();
    let info = ChannelInfo::new(PIPE, config.max_frame()).with_peer_pid(ppid);
    wrap(read, write, config, info, None)
}
