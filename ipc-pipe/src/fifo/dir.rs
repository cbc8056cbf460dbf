//! The FIFO directory: names, permission checks, and creating a fresh FIFO pair.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ipc_core::{Error, Result};
use nix::sys::stat::Mode;
use tokio::net::unix::pipe;

/// Client-to-server FIFO.
pub(crate) const C2S: &str = "c2s";
/// Server-to-client FIFO.
pub(crate) const S2C: &str = "s2c";
/// The file clients `flock` for the lifetime of their connection.
pub(crate) const LOCK: &str = "lock";
/// Suffix of a pair being created by the listener (renamed into place when ready).
pub(crate) const NEW: &str = "new";
/// Suffix of a pair name a client has claimed (removed right after).
pub(crate) const CLAIMED: &str = "claimed";

/// Mode of the directory a listener creates.
pub(crate) const DIR_MODE: u32 = 0o700;
/// Mode of the FIFOs and the lock file.
pub(crate) const FILE_MODE: u32 = 0o600;

/// `DIR/NAME.SUFFIX`
pub(crate) fn suffixed(dir: &Path, name: &str, suffix: &str) -> PathBuf {
    dir.join(format!("{name}.{suffix}"))
}

/// Every name a listener may leave in its directory.
pub(crate) fn all_entries(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for name in [C2S, S2C] {
        v.push(dir.join(name));
        v.push(suffixed(dir, name, NEW));
        v.push(suffixed(dir, name, CLAIMED));
    }
    v.push(dir.join(LOCK));
    v
}

/// Remove a file, ignoring "not there".
pub(crate) fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn permission_error(msg: String) -> Error {
    Error::Io(io::Error::new(io::ErrorKind::PermissionDenied, msg))
}

/// Check that `dir` is a real directory (not a symlink), owned by our effective uid,
/// with no group or other permissions: only then is a FIFO pair in it private.
pub(crate) fn check_private_dir(dir: &Path, endpoint: &str) -> Result<()> {
    let meta = fs::symlink_metadata(dir).map_err(|e| {
        Error::Io(io::Error::new(
            e.kind(),
            format!("{endpoint}: cannot inspect the directory: {e}"),
        ))
    })?;
    if !meta.file_type().is_dir() {
        return Err(permission_error(format!(
            "{endpoint}: {} is not a directory (symbolic links are refused)",
            dir.display()
        )));
    }
    let euid = nix::unistd::geteuid().as_raw();
    if meta.uid() != euid {
        return Err(permission_error(format!(
            "{endpoint}: the directory belongs to uid {}, not to us (uid {euid}); \
             FIFO pairs only live in a private directory of our own",
            meta.uid()
        )));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(permission_error(format!(
            "{endpoint}: the directory has mode {mode:04o}, open to other users; \
             use a fresh path (the listener creates it 0700) or chmod 700 it"
        )));
    }
    Ok(())
}

/// Create `dir` with mode 0700, or accept it if it already exists and is private.
/// Returns whether we created it.
pub(crate) fn create_private_dir(dir: &Path, endpoint: &str) -> Result<bool> {
    match fs::DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => {
            // The umask may have removed bits we need; set exactly 0700.
            fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE))?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            check_private_dir(dir, endpoint)?;
            Ok(false)
        }
        Err(e) => Err(Error::Io(io::Error::new(
            e.kind(),
            format!("{endpoint}: cannot create the directory: {e} (its parent must exist)"),
        ))),
    }
}

/// Which end of a FIFO to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    Read,
    Write,
}

/// Open a FIFO non-blocking and close-on-exec (std always adds `O_CLOEXEC`).
pub(crate) fn open_fifo(path: &Path, end: End) -> io::Result<File> {
    let mut options = OpenOptions::new();
    match end {
        End::Read => options.read(true),
        End::Write => options.write(true),
    };
    options.custom_flags(libc::O_NONBLOCK).open(path)
}

/// `mkfifo` with mode 0600 (set explicitly, whatever the umask).
fn make_fifo(path: &Path) -> Result<()> {
    nix::unistd::mkfifo(path, Mode::S_IRUSR | Mode::S_IWUSR).map_err(std::io::Error::from)?;
    fs::set_permissions(path, fs::Permissions::from_mode(FILE_MODE))?;
    Ok(())
}

/// A FIFO pair the listener created and holds open, waiting for a client's hello.
pub(crate) struct PendingPair {
    /// Our read end of `c2s` (`O_RDONLY`: when the client's write end closes, we see
    /// end-of-file).
    pub(crate) rx: pipe::Receiver,
    /// Our write end of `s2c` (`O_WRONLY`: when the client's read end closes, our
    /// writes fail with `EPIPE`).
    pub(crate) tx: OwnedFd,
    /// Hello bytes read so far (kept here so a cancelled `accept` loses nothing).
    pub(crate) hello: Vec<u8>,
    /// Set when the first hello byte arrives: the rest must follow by then.
    pub(crate) deadline: Option<tokio::time::Instant>,
}

/// Create a fresh FIFO pair and put it in place as `DIR/c2s` and `DIR/s2c`, holding
/// its server ends open.
///
/// The FIFOs are made under temporary names (`*.new`), opened, then renamed into
/// place, so a client never finds a pair whose server ends are not open: its
/// non-blocking opens succeed at once, and blocking opens would too.
pub(crate) fn create_pair(dir: &Path) -> Result<PendingPair> {
    let c2s_new = suffixed(dir, C2S, NEW);
    let s2c_new = suffixed(dir, S2C, NEW);
    remove_if_exists(&c2s_new)?;
    remove_if_exists(&s2c_new)?;
    make_fifo(&c2s_new)?;
    make_fifo(&s2c_new)?;
    let rx = open_fifo(&c2s_new, End::Read)?;
    // A FIFO's write end opens non-blocking only while a reader exists: hold a
    // throwaway reader for the moment of the open.
    let placeholder = open_fifo(&s2c_new, End::Read)?;
    let tx = open_fifo(&s2c_new, End::Write)?;
    drop(placeholder);
    let rx = pipe::Receiver::from_file(rx)?;
    fs::rename(&c2s_new, dir.join(C2S))?;
    fs::rename(&s2c_new, dir.join(S2C))?;
    Ok(PendingPair {
        rx,
        tx: tx.into(),
        hello: Vec::new(),
        deadline: None,
    })
}
