//! [`spawn_fifo`]: start a child wired to us by a FIFO pair in a private directory.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ipc_core::spawn::{set_child_env, spawn_child};
use ipc_core::Options;
use ipc_core::SpawnError;
use ipc_core::{Child, Error, Result};

use super::dir::DIR_MODE;
use super::listener::FifoListener;
use crate::channel::PipeChannel;

/// How long [`spawn_fifo`] waits for the child to connect.
pub const CHILD_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A fresh, unpredictable path for a FIFO directory under the temp dir
/// (`$TMPDIR/ipc-fifo-PID-N-RANDOM`); it does not exist yet, so a listener bound there
/// creates it and removes it when dropped. (A [`TempDir`](tempfile::TempDir) cannot name
/// a directory someone else will create; [`spawn_fifo`] uses one.)
pub(crate) fn fresh_dir() -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // RandomState is seeded from the OS's randomness.
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(n);
    std::env::temp_dir().join(format!(
        "ipc-fifo-{}-{n}-{:016x}",
        std::process::id(),
        hasher.finish()
    ))
}

/// A new private directory `$TMPDIR/ipc-fifo-RANDOM` (mode 0700, created with
/// `mkdir`, which fails rather than reuse an existing path), removed with what is
/// left in it when dropped.
fn temp_dir() -> Result<tempfile::TempDir> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("ipc-fifo-")
        .rand_bytes(16)
        .permissions(std::fs::Permissions::from_mode(DIR_MODE))
        .tempdir()
        .map_err(|e| {
            Error::Io(std::io::Error::new(
                e.kind(),
                format!("cannot create a private FIFO directory under the temp dir: {e}"),
            ))
        })?;
    // The umask may have removed bits we need; set exactly 0700.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(DIR_MODE))?;
    Ok(dir)
}

/// Start `command` as a child connected to the returned channel by a FIFO pair.
///
/// The parent binds a [`FifoListener`] on a fresh private directory
/// (`$TMPDIR/ipc-fifo-*`, mode 0700), gives the child `IPC_ENDPOINT=fifo:DIR` and
/// `IPC_MAX_FRAME`, and waits for it to connect (`connect_from_env()` /
/// [`connect_fifo`](crate::connect_fifo)). The directory is removed as soon as the
/// child has connected: the channel lives on in the open FIFOs, and nothing is left on
/// disk.
///
/// Errors: [`SpawnError::ChildExited`](ipc_core::SpawnError::ChildExited) when the child exits without connecting,
/// [`SpawnError::Timeout`](ipc_core::SpawnError::Timeout) when it has not connected within [`CHILD_CONNECT_TIMEOUT`] (the
/// child is then killed, as the dropped [`Child`] is). A misbehaving client that
/// reaches the directory first is dropped and logged; the wait goes on.
///
/// The channel's `peer_pid` is the pid the child reports in its hello (the child's pid,
/// unless it connects from a process of its own).
///
/// ```no_run
/// # async fn demo() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// let cmd = std::process::Command::new("/usr/local/bin/worker");
/// let (mut child, mut ch) = ipc_pipe::spawn_fifo(cmd, &ipc_core::Options::default()).await?;
/// ch.send("job".into()).await?;
/// let answer = ch.recv().await?;
/// ch.close().await?;
/// child.wait().await?;
/// # let _ = answer; Ok(()) }
/// ```
pub async fn spawn_fifo(
    mut command: Command,
    options: &Options,
) -> Result<(Child, PipeChannel), SpawnError> {
    // Declared before the listener, so dropped after it: the listener removes its
    // files, then the directory goes.
    let dir = temp_dir()?;
    let mut listener = FifoListener::bind(dir.path(), options)?;
    set_child_env(&mut command, &listener.endpoint(), None, options);
    let mut child = spawn_child(command)?;
    let deadline = tokio::time::sleep(CHILD_CONNECT_TIMEOUT);
    tokio::pin!(deadline);
    let status = loop {
        tokio::select! {
            biased;
            accepted = listener.accept() => match accepted {
                Ok(channel) => return Ok((child, channel)),
                // About one misbehaving client, which was dropped: keep waiting.
                Err(e @ (Error::Handshake(_) | Error::PeerLost(_) | Error::Timeout { .. })) => {
                    tracing::warn!(
                        error = %e,
                        "a client of the spawn directory was dropped; still waiting for the child"
                    )
                }
                // The directory itself failed (no new FIFO pair): give up.
                Err(e) => return Err(e.into()),
            },
            status = child.wait() => break status?,
            () = &mut deadline => {
                return Err(Error::Timeout {
                    after: CHILD_CONNECT_TIMEOUT,
                    during: "waiting for the spawned child to connect to its FIFO pair",
                }.into())
            }
        }
    };
    // The child is gone; it may have connected (and written its hello) just before.
    while listener.client_waiting() {
        match listener.accept().await {
            Ok(channel) => return Ok((child, channel)),
            Err(e) => tracing::debug!(error = %e, "the exited child's connection was dropped"),
        }
    }
    Err(Error::ChildExited(status).into())
}
