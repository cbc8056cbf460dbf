//! [`ChildWatch`]: how the parent's channel tells a child that disconnected from one that
//! died.
//!
//! Node's channel has no goodbye marker, so end-of-stream alone cannot say whether the
//! child called `process.disconnect()` or crashed. When the channel belongs to a child
//! we spawned, the receiver looks at the child's exit status at end-of-stream, without
//! reaping it (`waitid(.., WNOWAIT)`), so [`Child::wait`](ipc_core::Child::wait) still
//! gets it. On Linux a pidfd (`pidfd_open`, 5.3+) says when the child has exited; where
//! there is none, the status is polled every few milliseconds within the same bound.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// How often the status is polled when there is no pidfd.
const POLL_EVERY: Duration = Duration::from_millis(5);

/// Watches one child process we spawned.
#[derive(Debug)]
pub(crate) struct ChildWatch {
    pid: u32,
    pidfd: Option<AsyncFd<OwnedFd>>,
}

impl ChildWatch {
    /// Watch `pid`, which must be our child and not yet reaped.
    pub(crate) fn new(pid: u32) -> Self {
        let pidfd = match pidfd_open(pid) {
            // SAFETY: the OwnedFd moves into the AsyncFd, which keeps it open, unchanged,
            // for its whole life.
            Ok(fd) => match unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) } {
                Ok(fd) => Some(fd),
                Err(e) => {
                    tracing::debug!(pid, "pidfd not pollable ({e}); polling the exit status");
                    None
                }
            },
            Err(e) => {
                tracing::debug!(pid, "no pidfd ({e}); polling the exit status");
                None
            }
        };
        ChildWatch { pid, pidfd }
    }

    /// The child's pid.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// The child's exit status if it exits within `grace`; `None` if it is still
    /// running then, or its status is gone (someone reaped it already).
    pub(crate) async fn exited_within(&self, grace: Duration) -> Option<ExitStatus> {
        match &self.pidfd {
            Some(pidfd) => {
                // Readable once the process has exited.
                let _ = tokio::time::timeout(grace, pidfd.readable()).await;
                self.peek()
            }
            None => {
                let deadline = tokio::time::Instant::now() + grace;
                loop {
                    if let Some(status) = self.peek() {
                        return Some(status);
                    }
                    if tokio::time::Instant::now() >= deadline {
                        return None;
                    }
                    tokio::time::sleep(POLL_EVERY).await;
                }
            }
        }
    }

    /// The exit status, if the child has exited, leaving it waitable.
    fn peek(&self) -> Option<ExitStatus> {
        #[cfg(target_os = "linux")]
        if let Some(pidfd) = &self.pidfd {
            match waitid_nowait(libc::P_PIDFD, pidfd.get_ref().as_raw_fd() as libc::id_t) {
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {} // kernel < 5.4
                result => return result.ok().flatten(),
            }
        }
        waitid_nowait(libc::P_PID, self.pid as libc::id_t)
            .ok()
            .flatten()
    }
}

/// `pidfd_open(pid, 0)`, close-on-exec by definition.
#[cfg(target_os = "linux")]
fn pidfd_open(pid: u32) -> std::io::Result<OwnedFd> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    Ok(rustix::process::pidfd_open(
        pid,
        rustix::process::PidfdFlags::empty(),
    )?)
}

/// No pidfds outside Linux: the status is polled.
#[cfg(not(target_os = "linux"))]
fn pidfd_open(_pid: u32) -> std::io::Result<OwnedFd> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

/// `waitid(idtype, id, WEXITED | WNOHANG | WNOWAIT)`: `Ok(None)` while the child runs.
fn waitid_nowait(idtype: libc::idtype_t, id: libc::id_t) -> std::io::Result<Option<ExitStatus>> {
    // SAFETY: siginfo_t is plain data; all-zero is a valid value (si_pid 0 = no child).
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid only writes `info`; WNOWAIT leaves the child waitable.
    let rc = unsafe {
        libc::waitid(
            idtype,
            id,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: waitid filled `info` for a SIGCHLD-style event (or left it zeroed).
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 {
        return Ok(None);
    }
    // Rebuild the wait(2) status word that `ExitStatus` is made of.
    Ok(match info.si_code {
        libc::CLD_EXITED => Some(ExitStatus::from_raw((status & 0xff) << 8)),
        libc::CLD_KILLED => Some(ExitStatus::from_raw(status & 0x7f)),
        libc::CLD_DUMPED => Some(ExitStatus::from_raw((status & 0x7f) | 0x80)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sees_exit_code_and_signal_without_reaping() {
        let mut child = tokio::process::Command::new("sh")
            .args(["-c", "exit 3"])
            .spawn()
            .expect("sh");
        let watch = ChildWatch::new(child.id().expect("pid"));
        let status = watch
            .exited_within(Duration::from_secs(10))
            .await
            .expect("exited");
        assert_eq!(status.code(), Some(3));
        // Still waitable by its owner.
        assert_eq!(child.wait().await.expect("wait").code(), Some(3));

        let mut child = tokio::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        let watch = ChildWatch::new(child.id().expect("pid"));
        assert!(watch
            .exited_within(Duration::from_millis(20))
            .await
            .is_none());
        child.start_kill().expect("kill");
        let status = watch
            .exited_within(Duration::from_secs(10))
            .await
            .expect("killed");
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        assert!(child.wait().await.expect("wait").signal().is_some());
    }
}
