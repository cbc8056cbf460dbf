//! Helpers for backends that spawn a child wired to them: put inherited fds at fixed
//! numbers in the child and set the env contract (see [`crate::env`]).
//!
//! Everything a backend opens is close-on-exec; only the fds named here survive `exec`,
//! at the numbers the child's `IPC_ENDPOINT` names.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::env::{IPC_ENDPOINT, IPC_MAX_FRAME, IPC_TOKEN, NODE_CHANNEL_FD};
use crate::frame::FrameConfig;

/// First fd number used for the temporary copies made while placing fds.
const SCRATCH_FD_BASE: RawFd = 100;

/// Make `fds[i].0` appear as fd number `fds[i].1` in the child, inheritable; all other
/// fds stay close-on-exec. The parent's copies are untouched (drop them after spawn).
///
/// Works even when a source number equals another pair's target (fds are first copied
/// above [`SCRATCH_FD_BASE`], then placed).
///
/// ```no_run
/// # fn demo(child_end: std::os::fd::OwnedFd) {
/// let mut cmd = std::process::Command::new("child");
/// ipc_core::spawn::inherit_fds(&mut cmd, &[(&child_end, 3)]);
/// # }
/// ```
pub fn inherit_fds(command: &mut Command, fds: &[(&OwnedFd, RawFd)]) {
    let pairs: Vec<(RawFd, RawFd)> = fds.iter().map(|(fd, to)| (fd.as_raw_fd(), *to)).collect();
    // SAFETY: the closure runs in the forked child before exec and only calls
    // async-signal-safe functions (fcntl, dup2) on integers captured by value; it
    // allocates nothing (the Vec was built before fork and is only read).
    unsafe {
        command.pre_exec(move || {
            let mut scratch = [0 as RawFd; 16];
            if pairs.len() > scratch.len() {
                return Err(std::io::Error::other("too many inherited fds"));
            }
            for (i, (from, _)) in pairs.iter().enumerate() {
                let copy = libc::fcntl(*from, libc::F_DUPFD_CLOEXEC, SCRATCH_FD_BASE);
                if copy < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                scratch[i] = copy;
            }
            for (i, (_, to)) in pairs.iter().enumerate() {
                // dup2 clears close-on-exec on the target.
                if libc::dup2(scratch[i], *to) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Set the child's `IPC_ENDPOINT`, `IPC_MAX_FRAME`, and `IPC_TOKEN` (removed when `None`,
/// so a child never inherits its parent's own token by accident). `NODE_CHANNEL_FD` is
/// removed too: a child of ours is never a child of our Node.js parent.
///
/// ```
/// let mut cmd = std::process::Command::new("child");
/// ipc_core::spawn::set_child_env(&mut cmd, &"uds:fd=3".parse().unwrap(), None, Default::default());
/// ```
pub fn set_child_env(
    command: &mut Command,
    endpoint: &crate::Endpoint,
    token: Option<&str>,
    config: FrameConfig,
) {
    command.env(IPC_ENDPOINT, endpoint.to_string());
    command.env(IPC_MAX_FRAME, config.max_frame().to_string());
    command.env_remove(NODE_CHANNEL_FD);
    match token {
        Some(t) => command.env(IPC_TOKEN, t),
        None => command.env_remove(IPC_TOKEN),
    };
}

/// Spawn `command` through tokio and wrap it in a [`crate::Child`].
pub fn spawn_child(command: Command) -> crate::Result<crate::Child> {
    let mut command = tokio::process::Command::from(command);
    let child = command.spawn().map_err(|e| {
        crate::Error::Io(std::io::Error::new(
            e.kind(),
            format!("could not start the child process: {e}"),
        ))
    })?;
    crate::Child::new(child)
}
