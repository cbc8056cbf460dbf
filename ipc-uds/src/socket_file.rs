//! The socket file of a path listener: created race-free with mode 0600, stale files
//! replaced only when nothing answers, removed on drop only if it is still ours.
//!
//! Binding happens inside a fresh 0700 directory next to the target (so nobody else
//! can connect while the mode is being set), then the socket is hard-linked onto the
//! final path. `link(2)` never replaces an existing file, so a file that appeared at the
//! path meanwhile is never clobbered.
//!
//! Missing directories are created 0700. An existing directory is used as it is (its
//! mode is never changed), unless other users could remove or replace the socket file
//! in it: a group- or world-writable directory without the sticky bit is refused
//! (`PermissionDenied`). A sticky one such as `/tmp` is accepted: there only the owner
//! may remove the file, and the socket's own 0600 mode keeps others from connecting.

use std::collections::BTreeSet;
use std::fs::{self, DirBuilder, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener as StdUnixListener;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ipc_core::{Error, Result};

use crate::connect::path_addr;

/// Private directories made by `UdsTransport::example_endpoint`: the listener that binds
/// inside one removes it (when empty) on drop.
static EXAMPLE_DIRS: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// Note a private directory whose listener should remove it on drop.
pub(crate) fn register_example_dir(dir: PathBuf) {
    EXAMPLE_DIRS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(dir);
}

fn io_err(kind: io::ErrorKind, msg: String) -> Error {
    Error::Io(io::Error::new(kind, msg))
}

/// A bound socket file, removed on drop if the path still holds the same inode, with
/// the (then empty) directories created for it.
#[derive(Debug)]
pub(crate) struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
    /// Directories to remove (if empty) after the socket, innermost first.
    dirs: Vec<PathBuf>,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if let Ok(meta) = fs::symlink_metadata(&self.path) {
            if meta.dev() == self.dev && meta.ino() == self.ino {
                let _ = fs::remove_file(&self.path);
            }
        }
        for dir in &self.dirs {
            if fs::remove_dir(dir).is_err() {
                break;
            }
        }
    }
}

/// Bind a listening socket at `path`. See the [module docs](self).
pub(crate) fn bind_path(path: &Path) -> Result<(StdUnixListener, SocketFile)> {
    path_addr(path)?;
    if path.file_name().is_none() {
        return Err(io_err(
            io::ErrorKind::InvalidInput,
            format!(
                "{} does not name a file; give a path like /run/app.sock",
                path.display()
            ),
        ));
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut dirs = create_private_dirs(&parent)?;
    if !dirs.contains(&parent) {
        check_existing_dir(&parent)?;
    }
    clear_stale(path)?;

    let staging = tempfile::Builder::new()
        .prefix(".ipc-uds-")
        .permissions(Permissions::from_mode(0o700))
        .tempdir_in(&parent)
        .map_err(|e| {
            io_err(
                e.kind(),
                format!(
                    "could not create a private directory in {} to bind the socket: {e}",
                    parent.display()
                ),
            )
        })?;
    let staged = staging.path().join("s");
    path_addr(&staged).map_err(|_| {
        io_err(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is too long: binding needs a temporary name {} bytes long next to it; \
                 use a shorter path",
                path.display(),
                staged.as_os_str().len()
            ),
        )
    })?;
    let listener = StdUnixListener::bind(&staged)?;
    fs::set_permissions(&staged, Permissions::from_mode(0o600))?;
    let meta = fs::symlink_metadata(&staged)?;
    fs::hard_link(&staged, path).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            io_err(
                io::ErrorKind::AddrInUse,
                format!(
                    "{} was created by someone else while we were binding it",
                    path.display()
                ),
            )
        } else {
            io_err(
                e.kind(),
                format!("could not create the socket file {}: {e}", path.display()),
            )
        }
    })?;
    // `staging` (the temporary link and its directory) is removed here.
    drop(staging);

    let mut examples = EXAMPLE_DIRS.lock().unwrap_or_else(|e| e.into_inner());
    if examples.remove(&parent) {
        dirs.insert(0, parent);
    }
    drop(examples);
    Ok((
        listener,
        SocketFile {
            path: path.to_path_buf(),
            dev: meta.dev(),
            ino: meta.ino(),
            dirs,
        },
    ))
}

/// Create the missing directories of `dir` with mode 0700; returns them innermost first.
fn create_private_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    let mut current = Some(dir);
    while let Some(d) = current.filter(|d| !d.as_os_str().is_empty()) {
        match fs::symlink_metadata(d) {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::NotFound => missing.push(d.to_path_buf()),
            Err(e) => {
                return Err(io_err(
                    e.kind(),
                    format!("cannot inspect {}: {e}", d.display()),
                ))
            }
        }
        current = d.parent();
    }
    let mut created = Vec::new();
    for d in missing.into_iter().rev() {
        match DirBuilder::new().mode(0o700).create(&d) {
            Ok(()) => {
                // The umask may have cleared bits; make it exactly 0700.
                fs::set_permissions(&d, Permissions::from_mode(0o700))?;
                created.push(d);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(io_err(
                    e.kind(),
                    format!("could not create directory {}: {e}", d.display()),
                ))
            }
        }
    }
    created.reverse();
    Ok(created)
}

/// Refuse an existing directory in which other users could remove or replace our
/// socket file: writable by group or others, without the sticky bit.
fn check_existing_dir(dir: &Path) -> Result<()> {
    let meta = fs::metadata(dir).map_err(|e| {
        io_err(
            e.kind(),
            format!("cannot inspect the directory {}: {e}", dir.display()),
        )
    })?;
    let mode = meta.mode() & 0o7777;
    let sticky = mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !sticky {
        return Err(io_err(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} has mode {mode:04o}: other users could remove or replace the socket \
                 file in it; use a directory only you can write to (e.g. chmod 700 it), \
                 or a path whose directory does not exist yet (it is created 0700)",
                dir.display()
            ),
        ));
    }
    Ok(())
}

/// What answered at a socket path.
enum Probe {
    /// A server accepted (or its backlog is full): it is alive. Its pid when known.
    Live(Option<u32>),
    /// Nobody listens: the file is stale.
    Refused,
    /// The file vanished meanwhile.
    Gone,
}

/// Make way for a new socket at `path`: nothing there, or a stale socket (removed).
fn clear_stale(path: &Path) -> Result<()> {
    let before = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(io_err(
                e.kind(),
                format!("cannot inspect {}: {e}", path.display()),
            ))
        }
        Ok(meta) => meta,
    };
    if !before.file_type().is_socket() {
        return Err(io_err(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} exists and is not a socket; refusing to replace it (remove it yourself \
                 or choose another path)",
                path.display()
            ),
        ));
    }
    let probe = probe(path).map_err(|e| {
        io_err(
            e.kind(),
            format!(
                "{} is a socket file we cannot probe ({e}); leaving it alone",
                path.display()
            ),
        )
    })?;
    match probe {
        Probe::Live(pid) => {
            let pid = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
            Err(io_err(
                io::ErrorKind::AddrInUse,
                format!(
                    "{} is held by a live server{pid}; stop that server or choose another path",
                    path.display()
                ),
            ))
        }
        Probe::Gone => Ok(()),
        Probe::Refused => {
            // Remove only the very file we probed, not one that replaced it since.
            if let Ok(now) = fs::symlink_metadata(path) {
                if now.dev() == before.dev() && now.ino() == before.ino() {
                    tracing::debug!(path = %path.display(), "removing stale socket file");
                    match fs::remove_file(path) {
                        Err(e) if e.kind() != io::ErrorKind::NotFound => {
                            return Err(io_err(
                                e.kind(),
                                format!(
                                    "could not remove the stale socket {}: {e}",
                                    path.display()
                                ),
                            ))
                        }
                        _ => {}
                    }
                }
            }
            Ok(())
        }
    }
}

/// Try a non-blocking connect to `path`. A server that accepts it sees a client that
/// says goodbye at once (a clean close), as any short-lived client would.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn probe(path: &Path) -> io::Result<Probe> {
    use nix::errno::Errno;
    use nix::sys::socket::{
        connect, socket, AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr,
    };
    use std::os::fd::AsRawFd;

    let sock = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    let addr = UnixAddr::new(path)?;
    match connect(sock.as_raw_fd(), &addr) {
        Ok(()) => {
            // A raw socket outside tokio: SO_PEERCRED directly (Linux only, as here).
            let pid =
                nix::sys::socket::getsockopt(&sock, nix::sys::socket::sockopt::PeerCredentials)
                    .ok()
                    .and_then(|c| u32::try_from(c.pid()).ok())
                    .filter(|pid| *pid > 0);
            let goodbye = ipc_core::frame::GOODBYE.to_be_bytes();
            let _ = nix::sys::socket::send(sock.as_raw_fd(), &goodbye, MsgFlags::MSG_NOSIGNAL);
            Ok(Probe::Live(pid))
        }
        Err(Errno::EAGAIN) | Err(Errno::EINPROGRESS) => Ok(Probe::Live(None)),
        Err(Errno::ECONNREFUSED) => Ok(Probe::Refused),
        Err(Errno::ENOENT) => Ok(Probe::Gone),
        Err(e) => Err(e.into()),
    }
}

/// Try a connect to `path` (blocking: a full backlog makes it wait).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn probe(path: &Path) -> io::Result<Probe> {
    use std::io::Write;
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(mut stream) => {
            let _ = stream.write_all(&ipc_core::frame::GOODBYE.to_be_bytes());
            Ok(Probe::Live(None))
        }
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Ok(Probe::Refused),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Probe::Gone),
        Err(e) => Err(e),
    }
}
