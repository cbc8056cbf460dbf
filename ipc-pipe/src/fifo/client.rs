//! [`connect_fifo`]: the client side of a FIFO directory.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use ipc_core::ConnectError;
use ipc_core::Options;
use ipc_core::{ChannelInfo, Error, Result};

use crate::FifoAddress;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::dir::{check_private_dir, open_fifo, suffixed, End, C2S, CLAIMED, LOCK, S2C};
use super::hello;
use crate::channel::{require_runtime, wrap, PipeChannel, FIFO};

/// How many times a client re-opens the pair when the listener replaced it meanwhile.
const CLAIM_ATTEMPTS: usize = 3;
/// How long `connect_fifo` keeps looking for a free lock before calling the listener busy.
const BUSY_GRACE: std::time::Duration = std::time::Duration::from_millis(200);
/// How often it looks during that time.
const BUSY_POLL: std::time::Duration = std::time::Duration::from_millis(5);

/// Why one attempt to claim the pair did not work.
enum Attempt {
    /// The listener replaced the pair meanwhile: try the new one.
    Retry(Error),
    /// Give up.
    Fail(Error),
}

impl From<io::Error> for Attempt {
    fn from(e: io::Error) -> Self {
        Attempt::Fail(Error::Io(e))
    }
}

/// Connect to the listener serving the FIFO directory `dir` (`fifo:DIR`).
///
/// Holds an exclusive `flock` on `DIR/lock` for as long as the channel (either half)
/// lives, so a second client gets a clear error while we are connected. Returns as
/// soon as our hello is written; the listener's [`accept`](crate::FifoListener::accept)
/// may come later (frames sent meanwhile wait in the pipe, within its capacity).
///
/// The exact sequence is in the [crate docs](crate#fifo-pairs-fifodir).
///
/// Errors:
/// - [`Error::Unsupported`]: another client is connected ("a FIFO pair serves one peer
///   at a time"); connect again once it has disconnected;
/// - `Io` of kind `WouldBlock`: the listener has not yet accepted the previous client,
///   so no free pair is in place; `ConnectionRefused`: no listener reads the FIFOs
///   (it died without removing the directory); `NotFound`: no listener at `DIR`;
///   `PermissionDenied`: `DIR` is not a private directory of ours.
///
/// The channel's `peer_pid` is the listener's pid (read from `DIR/lock`).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// use ipc_core::ConnectError;
/// # let tmp = tempfile::tempdir()?;
/// # let dir = tmp.path().join("svc");
/// let mut listener = ipc_pipe::FifoListener::bind(&dir, &ipc_core::Options::default())?;
/// let mut client = ipc_pipe::connect_fifo(&dir, &ipc_core::Options::default()).await?;
/// // One client at a time:
/// let second = ipc_pipe::connect_fifo(&dir, &ipc_core::Options::default()).await;
/// assert!(matches!(second, Err(ConnectError::Unsupported { .. })));
/// let mut server = listener.accept().await?;
/// server.send("welcome".into()).await?;
/// assert_eq!(client.recv().await?.as_deref(), Some(&b"welcome"[..]));
/// # Ok(()) }
/// ```
pub async fn connect_fifo(
    dir: impl AsRef<Path>,
    options: &Options,
) -> Result<PipeChannel, ConnectError> {
    let config = options.frame_config();
    require_runtime("ipc_pipe::connect_fifo")?;
    let dir = dir.as_ref();
    let endpoint = FifoAddress(dir.to_path_buf()).to_string();
    check_private_dir(dir, &endpoint).map_err(|e| match e {
        Error::Io(io) if io.kind() == io::ErrorKind::NotFound => Error::Io(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no fifo listener at {endpoint}: the directory does not exist: is the server running?"),
        )),
        other => other,
    })?;
    let mut lock_file = File::open(dir.join(LOCK)).map_err(|e| {
        Error::Io(io::Error::new(
            e.kind(),
            format!("no fifo listener at {endpoint} ({LOCK}: {e})"),
        ))
    })?;
    // A client that has just left can hold the lock a little longer than its process
    // does: a process that forks (any process that spawns a child, before the child's
    // exec closes the fd) keeps a copy of its lock fd. Look again briefly before
    // calling the listener busy.
    let mut waited = std::time::Duration::ZERO;
    let lock = loop {
        match Flock::lock(lock_file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => break lock,
            Err((file, Errno::EWOULDBLOCK)) if waited < BUSY_GRACE => {
                lock_file = file;
                tokio::time::sleep(BUSY_POLL).await;
                waited += BUSY_POLL;
            }
            Err((_, Errno::EWOULDBLOCK)) => {
                return Err(Error::unsupported(
                    FIFO,
                    format!(
                        "a second concurrent client: {endpoint} already serves a client; a \
                         FIFO pair serves one peer at a time (connect again once it has \
                         disconnected)"
                    ),
                )
                .into())
            }
            Err((_, e)) => return Err(io::Error::from(e).into()),
        }
    };
    let mut content = String::new();
    let listener_pid = match (&*lock).read_to_string(&mut content) {
        Ok(_) => content.trim().parse::<u32>().ok(),
        Err(_) => None,
    };
    let hello = hello::encode(std::process::id())?;
    let mut last = None;
    for _ in 0..CLAIM_ATTEMPTS {
        match claim_pair(dir, &endpoint, &hello) {
            Ok((c2s, s2c)) => {
                let info = ChannelInfo::new(FIFO)
                    .with_peer_pid(listener_pid)
                    .with_peer_addr(Some(endpoint.clone()));
                return Ok(wrap(
                    s2c.into(),
                    c2s.into(),
                    config,
                    info,
                    Some(Arc::new(lock)),
                )?);
            }
            Err(Attempt::Retry(e)) => {
                tracing::debug!(%endpoint, error = %e, "fifo pair replaced meanwhile, retrying");
                last = Some(e);
            }
            Err(Attempt::Fail(e)) => return Err(e.into()),
        }
    }
    Err(last.unwrap_or(Error::Closed).into())
}

fn no_free_pair(endpoint: &str) -> Error {
    Error::Io(io::Error::new(
        io::ErrorKind::WouldBlock,
        format!(
            "{endpoint} has no free FIFO pair: its listener has not accepted the previous \
             client yet (or has stopped); connect again after it calls accept"
        ),
    ))
}

/// Open the pair in place, claim it (take its names away), write the hello.
fn claim_pair(dir: &Path, endpoint: &str, hello: &[u8]) -> Result<(File, File), Attempt> {
    let c2s = match open_fifo(&dir.join(C2S), End::Write) {
        Ok(file) => file,
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
            return Err(Attempt::Fail(Error::Io(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!(
                    "no listener is reading {endpoint}: it exited without removing the \
                     directory"
                ),
            ))))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Attempt::Fail(no_free_pair(endpoint)))
        }
        Err(e) => return Err(e.into()),
    };
    let s2c = match open_fifo(&dir.join(S2C), End::Read) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Attempt::Retry(no_free_pair(endpoint)))
        }
        Err(e) => return Err(e.into()),
    };
    claim(dir, C2S, &c2s, endpoint)?;
    claim(dir, S2C, &s2c, endpoint)?;
    // At most 68 bytes into an empty pipe: one atomic write (PIPE_BUF >= 512).
    match (&c2s).write(hello) {
        Ok(n) if n == hello.len() => Ok((c2s, s2c)),
        Ok(n) => Err(Attempt::Fail(Error::Io(io::Error::other(format!(
            "{endpoint}: the hello was written partly ({n} of {} bytes)",
            hello.len()
        ))))),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            Err(Attempt::Retry(Error::Io(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("the listener of {endpoint} dropped the FIFO pair before our hello"),
            ))))
        }
        Err(e) => Err(e.into()),
    }
}

/// Take the name `DIR/NAME` away (rename to `NAME.claimed`, then unlink), after making
/// sure it names the FIFO we opened; give it back otherwise.
fn claim(dir: &Path, name: &str, opened: &File, endpoint: &str) -> Result<(), Attempt> {
    let public = dir.join(name);
    let claimed = suffixed(dir, name, CLAIMED);
    match fs::rename(&public, &claimed) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Attempt::Retry(no_free_pair(endpoint)))
        }
        Err(e) => return Err(e.into()),
    }
    let ours = opened.metadata()?;
    let named = fs::symlink_metadata(&claimed)?;
    if (ours.dev(), ours.ino()) == (named.dev(), named.ino()) {
        fs::remove_file(&claimed)?;
        return Ok(());
    }
    // The listener put a new pair in place between our open and our rename: that name
    // is not ours. Give it back (unless an even newer one took its place).
    match fs::hard_link(&claimed, &public) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e.into()),
    }
    fs::remove_file(&claimed)?;
    Err(Attempt::Retry(Error::Io(io::Error::new(
        io::ErrorKind::ConnectionRefused,
        format!("the listener of {endpoint} replaced the FIFO pair while we opened it"),
    ))))
}
