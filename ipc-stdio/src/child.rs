//! [`from_stdio`]: the child's side, this process's own fd 0 and 1 as a channel.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use ipc_core::frame::FrameConfig;
use ipc_core::ConnectError;
use ipc_core::Options;
use ipc_core::{ChannelInfo, Error, Result};
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::stat::fstat;
use tokio::net::unix::pipe;

use crate::channel::NAME;
use crate::io::{StdioReader, StdioWriter};
use crate::{JsonLinesCodec, StdioChannel};

/// Set once fd 0/1 belong to a channel: a process has one stdin and one stdout.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// What an fd 0 or 1 is, for choosing how to drive it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A pipe or FIFO: non-blocking, reactor-driven.
    Pipe,
    /// A socket (e.g. Node's `spawn` gives socketpairs): reactor-driven too.
    Socket,
    /// A regular file, a terminal, `/dev/null`, ...: the blocking pool.
    Other,
}

struct Stat {
    kind: Kind,
    id: (u64, u64),
}

fn stat(fd: BorrowedFd<'_>, name: &str) -> Result<Stat> {
    let st = fstat(fd).map_err(|e| {
        Error::Io(io::Error::new(
            io::Error::from(e).kind(),
            format!("{name} is not usable for the stdio channel ({e}); start this process with its stdin and stdout connected to the parent"),
        ))
    })?;
    let kind = match st.st_mode & libc::S_IFMT {
        libc::S_IFIFO => Kind::Pipe,
        libc::S_IFSOCK => Kind::Socket,
        _ => Kind::Other,
    };
    // dev_t and ino_t are u64 on Linux but not everywhere.
    #[allow(clippy::unnecessary_cast)]
    let id = (st.st_dev as u64, st.st_ino as u64);
    Ok(Stat { kind, id })
}

/// This process's stdin and stdout as a channel: the child's side of
/// [`spawn`](crate::spawn) (what `connect_from_env()` calls for `IPC_ENDPOINT=stdio:`).
///
/// What it does, in order:
///
/// 1. Duplicates fd 0 and fd 1 (close-on-exec copies, numbered 3 or above).
/// 2. If a copy is a **pipe or a socket**, sets `O_NONBLOCK` on it and drives it by
///    the reactor (`tokio::net::unix::pipe`), like any socket. Otherwise — a
///    **regular file, a terminal** (`child < input.jsonl`, or typing lines by hand) —
///    it falls back to `tokio::fs::File` over the copy, whose reads and writes run on
///    tokio's blocking thread pool, the same mechanism as `tokio::io::stdin()`
///    (slower, and a read pending on a terminal can delay runtime shutdown until a
///    line is typed; see the [crate docs](crate#platform-specific-behavior)).
/// 3. Points fd 0 at `/dev/null` and fd 1 at stderr (fd 2; `/dev/null` if fd 2 is
///    closed). From then on a stray `println!`, a library writing to stdout, or a
///    grandchild inheriting stdio cannot corrupt or steal the channel's bytes: output
///    lands in stderr, reads see end-of-file. Printing to stdout in a stdio child is
///    still a bug (that output belongs in logs); this only makes it harmless. Should
///    the redirection fail (no `/dev/null`), it is logged with `tracing` and the
///    channel works anyway.
///
/// `O_NONBLOCK` belongs to the open file description, which another process may share
/// (a sibling started on the same pipe, the shell that ran us with `sh -c 'child;
/// next'`); the original flags are put back when the channel's halves are dropped
/// (unless fd 0 and fd 1 are one and the same socket, where the other half still needs
/// them).
///
/// # Errors
///
/// - [`Error::Unsupported`] when called a second time in the process: fd 0/1 are taken
///   at most once, even after the first channel was dropped.
/// - [`Error::Io`] when fd 0 or fd 1 is closed, cannot be duplicated, or when called
///   outside a tokio runtime (a runtime with I/O enabled is required).
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// let mut parent = ipc_stdio::from_stdio(&ipc_core::Options::from_env())?;
/// println!("this goes to stderr now, not into the channel");
/// parent.send(r#"{"ready":true}"#.into()).await?;
/// assert!(ipc_stdio::from_stdio(&ipc_core::Options::default()).is_err(), "only once per process");
/// # Ok(()) }
/// ```
pub fn from_stdio(options: &Options) -> Result<StdioChannel, ConnectError> {
    let config = options.frame_config();
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(Error::Io(io::Error::other(
            "ipc_stdio::from_stdio must be called inside a tokio runtime with I/O enabled",
        ))
        .into());
    }
    if TAKEN.swap(true, Ordering::SeqCst) {
        return Err(Error::unsupported(
            NAME,
            "connecting twice in one process: fd 0/1 were already taken by an earlier \
             stdio connect (a process has exactly one stdin/stdout; keep and share that \
             channel, or split it)",
        )
        .into());
    }
    let channel = take_stdio(config).inspect_err(|_| TAKEN.store(false, Ordering::SeqCst))?;
    redirect_stdio();
    Ok(channel)
}

fn take_stdio(config: FrameConfig) -> Result<StdioChannel> {
    let stdin = io::stdin();
    let stdout = io::stdout();
    let (stdin, stdout) = (stdin.as_fd(), stdout.as_fd());
    let in_stat = stat(stdin, "stdin (fd 0)")?;
    let out_stat = stat(stdout, "stdout (fd 1)")?;
    // One socket on both fds shares its flags between the halves: leave them set.
    let restore = in_stat.id != out_stat.id;

    let reader = match in_stat.kind {
        Kind::Pipe | Kind::Socket => {
            let (fd, old) = nonblocking_copy(stdin)?;
            let rx = pipe::Receiver::from_owned_fd_unchecked(fd)
                .inspect_err(|_| put_back(stdin, old))?;
            StdioReader::pipe(rx, old.filter(|_| restore))
        }
        Kind::Other => StdioReader::blocking(blocking_copy(stdin)?),
    };
    let writer = match out_stat.kind {
        Kind::Pipe | Kind::Socket => {
            let (fd, old) = nonblocking_copy(stdout)?;
            let tx =
                pipe::Sender::from_owned_fd_unchecked(fd).inspect_err(|_| put_back(stdout, old))?;
            StdioWriter::pipe(tx, old.filter(|_| restore))
        }
        Kind::Other => StdioWriter::blocking(blocking_copy(stdout)?),
    };
    tracing::debug!(
        stdin = ?in_stat.kind,
        stdout = ?out_stat.kind,
        "took stdin/stdout for the stdio channel"
    );

    let codec = JsonLinesCodec::new(config);
    let mut info = ChannelInfo::new(NAME);
    if in_stat.kind == Kind::Socket {
        if let Some((pid, uid)) = socket_peer(stdin) {
            info = info.with_peer_pid(pid).with_peer_uid(Some(uid));
        }
    }
    Ok(ipc_core::stream::channel(reader, writer, codec, info))
}

/// A close-on-exec copy of `fd` in non-blocking mode, and the flags to restore when
/// we changed them.
fn nonblocking_copy(fd: BorrowedFd<'_>) -> Result<(OwnedFd, Option<OFlag>)> {
    let copy = fd.try_clone_to_owned()?;
    let flags =
        OFlag::from_bits_retain(fcntl(&copy, FcntlArg::F_GETFL).map_err(std::io::Error::from)?);
    if flags.contains(OFlag::O_NONBLOCK) {
        return Ok((copy, None));
    }
    fcntl(&copy, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map_err(std::io::Error::from)?;
    Ok((copy, Some(flags)))
}

fn put_back(fd: BorrowedFd<'_>, flags: Option<OFlag>) {
    if let Some(flags) = flags {
        let _ = fcntl(fd, FcntlArg::F_SETFL(flags));
    }
}

/// A copy of `fd` for the blocking pool.
fn blocking_copy(fd: BorrowedFd<'_>) -> Result<tokio::fs::File> {
    let copy = fd.try_clone_to_owned()?;
    Ok(tokio::fs::File::from_std(std::fs::File::from(copy)))
}

/// The kernel's word on who is at the other end of a socket on fd 0.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn socket_peer(fd: BorrowedFd<'_>) -> Option<(Option<u32>, u32)> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    let cred = getsockopt(&fd, PeerCredentials).ok()?;
    let pid = u32::try_from(cred.pid()).ok().filter(|pid| *pid > 0);
    Some((pid, cred.uid()))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn socket_peer(_fd: BorrowedFd<'_>) -> Option<(Option<u32>, u32)> {
    None
}

/// fd 0 -> `/dev/null`, fd 1 -> stderr (or `/dev/null`). Best effort, logged.
fn redirect_stdio() {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null");
    match &null {
        Ok(null) => {
            if let Err(e) = nix::unistd::dup2_stdin(null) {
                tracing::warn!("stdio channel: could not point fd 0 at /dev/null: {e}");
            }
        }
        Err(e) => tracing::warn!("stdio channel: cannot open /dev/null to replace fd 0: {e}"),
    }
    let stderr = io::stderr();
    if nix::unistd::dup2_stdout(stderr.as_fd()).is_ok() {
        return;
    }
    match &null {
        Ok(null) => {
            if let Err(e) = nix::unistd::dup2_stdout(null) {
                tracing::warn!(
                    "stdio channel: could not point fd 1 elsewhere ({e}); anything printed \
                     to stdout now goes to the parent and is reported there as a bad line"
                );
            }
        }
        Err(_) => tracing::warn!(
            "stdio channel: fd 2 is closed and /dev/null cannot be opened; anything \
             printed to stdout now goes to the parent and is reported there as a bad line"
        ),
    }
}
