//! The app both managers run, and how the bench learns that an instance of it started.
//!
//! The app is a `/bin/sh` script: its first statement writes `NAME PID` to a FIFO the
//! bench reads, then it `exec`s `sleep` (same pid). A thread of the bench blocks on the
//! FIFO and timestamps each line the moment it arrives, so "the app is up" is an event
//! the bench receives, not something it polls the manager for.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};

/// What the app `exec`s into after reporting: `sleep` with this argument, which is
/// also how the clean-up recognises a leftover instance.
pub(crate) const SLEEP_ARG: &str = "86400";

/// The app: report `NAME PID` (`$2 $$`) to the FIFO `$1`, then idle.
const SCRIPT: &str = "#!/bin/sh\n\
# ipc-bench --pm's app: tell the bench this instance runs, then idle.\n\
echo \"$2 $$\" > \"$1\"\n\
exec sleep 86400\n";

/// The line the bench writes to its own FIFO to stop the reader thread.
const STOP: &str = "\0stop";

/// Write the app script into `dir`; return its path.
pub(crate) fn write_script(dir: &Path) -> Result<PathBuf> {
    let path = dir.join("app.sh");
    std::fs::write(&path, SCRIPT).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(path)
}

/// One instance that reported it runs.
#[derive(Debug, Clone)]
pub(crate) struct Started {
    /// The app name it was given.
    pub name: String,
    /// Its pid.
    pub pid: i32,
    /// When the bench read its line.
    pub at: Instant,
}

/// The FIFO the apps report to, and the thread reading it.
#[derive(Debug)]
pub(crate) struct Reports {
    path: PathBuf,
    /// Held open read-write so that the FIFO always has a reader (an app never blocks
    /// on `open`) and never reports end of file; also how [`STOP`] is written.
    fifo: File,
    received: Receiver<Started>,
    /// Reports read while waiting for another app's.
    pending: VecDeque<Started>,
    reader: Option<JoinHandle<()>>,
}

impl Reports {
    /// Make the FIFO `dir/started` and start reading it.
    pub(crate) fn open(dir: &Path) -> Result<Reports> {
        let path = dir.join("started");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .with_context(|| format!("making the FIFO {}", path.display()))?;
        let fifo = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        let input = fifo.try_clone()?;
        let (tx, received) = std::sync::mpsc::channel();
        let reader = std::thread::Builder::new()
            .name("pm-bench-reports".into())
            .spawn(move || {
                for line in BufReader::new(input).lines() {
                    let at = Instant::now();
                    let Ok(line) = line else { return };
                    if line == STOP {
                        return;
                    }
                    let Some((name, pid)) = line.split_once(' ') else {
                        continue;
                    };
                    let Ok(pid) = pid.trim().parse() else {
                        continue;
                    };
                    let started = Started {
                        name: name.to_string(),
                        pid,
                        at,
                    };
                    if tx.send(started).is_err() {
                        return;
                    }
                }
            })?;
        Ok(Reports {
            path,
            fifo,
            received,
            pending: VecDeque::new(),
            reader: Some(reader),
        })
    }

    /// The FIFO's path (the app's first argument).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The next report of the app `name` (others are kept for later), within `timeout`.
    pub(crate) fn next(&mut self, name: &str, timeout: Duration) -> Result<Started> {
        if let Some(i) = self.pending.iter().position(|s| s.name == name) {
            return Ok(self.pending.remove(i).expect("a position found just now"));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.received.recv_timeout(left) {
                Ok(s) if s.name == name => return Ok(s),
                Ok(other) => self.pending.push_back(other),
                Err(RecvTimeoutError::Timeout) => {
                    return Err(anyhow!(
                        "app {name} did not report that it runs within {timeout:?} \
                         (is its manager restarting it?)"
                    ))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(anyhow!("the FIFO reader stopped"))
                }
            }
        }
    }
}

impl Drop for Reports {
    fn drop(&mut self) {
        let _ = writeln!(self.fifo, "{STOP}");
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}
