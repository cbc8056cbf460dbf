//! Helpers for backends that spawn a child wired to them: put inherited fds at fixed
//! numbers in the child, set the env contract (see [`crate::env`]), and start the child
//! tied to this process ([`spawn_child`]).
//!
//! Everything a backend opens is close-on-exec; only the fds named here survive `exec`,
//! at the numbers the child's `IPC_ENDPOINT` names.
//!
//! # A child does not outlive its parent
//!
//! Every child started through a transport's `spawn` is killed (SIGKILL) when this
//! process dies, however it dies — a panic, `exit`, or a SIGKILL nobody can catch — on
//! Linux through the parent-death signal (`PR_SET_PDEATHSIG`). Linux ties that signal
//! to the *thread* that forked the child, so the toolkit forks every child from one
//! thread that lives as long as the process; which thread or runtime calls `spawn`
//! does not matter. Only the child itself is covered: the signal is not inherited, so
//! a grandchild it starts lives on unless the child arranges otherwise (while this
//! process lives, `kill` and drop reach the child's whole process group: see
//! [`Child`](crate::Child#process-group)).
//!
//! A child meant to outlive this process (a daemon, a long job) is spawned with
//! [`detached`]: no parent-death signal, and its [`Child`](crate::Child) is not killed
//! on drop.
//!
//! ```no_run
//! # async fn demo(transport: &dyn ipc_core::Transport) -> ipc_core::Result<()> {
//! let mut command = std::process::Command::new("/usr/local/bin/indexer");
//! ipc_core::spawn::detached(&mut command);
//! let (child, channel) = transport.spawn(command, &ipc_core::Options::default()).await?;
//! // This process may now exit or be killed: the indexer carries on.
//! # let _ = (child, channel); Ok(()) }
//! ```

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::env::{IPC_ENDPOINT, IPC_MAX_FRAME, IPC_TOKEN, NODE_CHANNEL_FD};

/// First fd number used for the temporary copies made while placing fds.
const SCRATCH_FD_BASE: RawFd = 100;

/// Make `fds[i].0` appear as fd number `fds[i].1` in the child, inheritable; all other
/// fds stay close-on-exec. The parent's copies are untouched (drop them after spawn).
///
/// Works even when a source number equals another pair's target (fds are first copied
/// above fd 100, then placed).
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
/// let opts = ipc_core::Options::default();
/// ipc_core::spawn::set_child_env(&mut cmd, &"uds:fd=3".parse().unwrap(), None, &opts);
/// ```
pub fn set_child_env(
    command: &mut Command,
    endpoint: &crate::Endpoint,
    token: Option<&str>,
    options: &crate::Options,
) {
    command.env(IPC_ENDPOINT, endpoint.to_string());
    command.env(IPC_MAX_FRAME, options.get_max_frame().to_string());
    command.env_remove(NODE_CHANNEL_FD);
    match token {
        Some(t) => command.env(IPC_TOKEN, t),
        None => command.env_remove(IPC_TOKEN),
    };
}

/// Marks a command as [`detached`]; removed before the child starts, so the child never
/// sees it.
const DETACHED_MARK: &str = "IPC_SPAWN_DETACHED";

/// Let the child `command` will start outlive this process: no parent-death signal,
/// and the [`Child`](crate::Child) a transport's `spawn` returns is not killed on drop
/// (as if [`Child::detach`](crate::Child::detach)ed). The choice travels with the
/// command to whichever transport spawns it.
///
/// ```
/// let mut command = std::process::Command::new("/usr/local/bin/indexer");
/// ipc_core::spawn::detached(&mut command).arg("--full");
/// ```
pub fn detached(command: &mut Command) -> &mut Command {
    command.env(DETACHED_MARK, "1")
}

fn is_detached(command: &Command) -> bool {
    command
        .get_envs()
        .any(|(key, value)| key == DETACHED_MARK && value.is_some())
}

/// Spawn `command` and wrap it in a [`crate::Child`], tied to this process as the
/// [module docs](self) say (unless [`detached`]), in a process group of its own (see
/// [`Child`](crate::Child#process-group); a group set on `command` is replaced). Must be
/// called within a tokio runtime.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// let mut child = ipc_core::spawn::spawn_child(std::process::Command::new("true"))?;
/// assert!(child.wait().await?.success());
/// # Ok(()) }
/// ```
pub fn spawn_child(mut command: Command) -> Result<crate::Child, crate::SpawnError> {
    let detached = is_detached(&command);
    command.env_remove(DETACHED_MARK);
    if !detached {
        crate::spawner::die_with_parent(&mut command);
    }
    // A group of its own, so kill() and the kill on drop reach what the child starts.
    command.process_group(0);
    let program = command.get_program().to_string_lossy().into_owned();
    let child = crate::spawner::spawn(tokio::process::Command::from(command))
        .map_err(|source| crate::SpawnError::Start { program, source })?;
    let mut child = crate::Child::new(child)?;
    child.set_own_group(true);
    if detached {
        child.set_kill_on_drop(false);
    }
    Ok(child)
}
