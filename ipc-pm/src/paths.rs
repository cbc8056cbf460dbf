//! Where the daemon keeps its socket, logs and saved list: `IPCM_HOME`, else
//! `$XDG_RUNTIME_DIR/ipcm`, else `/tmp/ipcm-UID`; a directory of our own, mode 0700.

use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The environment variable that overrides the daemon's directory.
pub(crate) const IPCM_HOME: &str = "IPCM_HOME";

/// The daemon's directory and the files in it.
#[derive(Debug, Clone)]
pub(crate) struct Home {
    pub(crate) dir: PathBuf,
}

impl Home {
    /// The directory from the environment (not created).
    pub(crate) fn from_env() -> Home {
        let dir = match std::env::var_os(IPCM_HOME) {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => match std::env::var_os("XDG_RUNTIME_DIR") {
                Some(run) if !run.is_empty() => Path::new(&run).join("ipcm"),
                _ => PathBuf::from(format!("/tmp/ipcm-{}", rustix::process::geteuid().as_raw())),
            },
        };
        Home { dir }
    }

    /// Create the directory (0700) and its `logs` folder; refuse one that belongs to
    /// another user or that others can enter.
    pub(crate) fn prepare(&self) -> io::Result<()> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("could not create {}: {e}", self.dir.display()),
                )
            })?;
        let meta = std::fs::metadata(&self.dir)?;
        let uid = rustix::process::geteuid().as_raw();
        if meta.uid() != uid {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} belongs to uid {}, not to us (uid {uid}); set {IPCM_HOME} to a directory of your own",
                    self.dir.display(),
                    meta.uid()
                ),
            ));
        }
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))?;
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(self.logs())?;
        Ok(())
    }

    /// The daemon's socket.
    pub(crate) fn socket(&self) -> PathBuf {
        self.dir.join("ipcm.sock")
    }

    /// The folder of the apps' log files.
    pub(crate) fn logs(&self) -> PathBuf {
        self.dir.join("logs")
    }

    /// The daemon's own log (when started in the background).
    pub(crate) fn daemon_log(&self) -> PathBuf {
        self.dir.join("daemon.log")
    }

    /// The list `save` writes and `resurrect` reads.
    pub(crate) fn dump(&self) -> PathBuf {
        self.dir.join("dump.json")
    }
}
