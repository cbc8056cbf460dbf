//! [`Child`]: a process spawned with a channel to it.
//!
//! Killed (SIGKILL) and reaped when dropped, unless [`Child::detach`]ed; and, when it
//! was started by a transport's `spawn`, killed when this process dies, even by SIGKILL
//! (Linux; see [`crate::spawn`], and [`crate::spawn::detached`] to opt out). So
//! neither a finished test nor a crashed parent leaves orphans behind.
//!
//! # Process group
//!
//! A transport's `spawn` starts the child in a process group of its own (its pid is the
//! group id), and [`Child::kill`] and the kill on drop signal that whole group: a
//! grandchild the child started (a shell's `sleep &`, a worker pool) goes too, unless
//! it moved to another group. [`Child::signal`] addresses the child alone,
//! [`Child::signal_group`] the group. The group is signalled only while the child is
//! not yet reaped (before [`Child::wait`] returns), when its id cannot name anyone else.
//!
//! Being in its own group, the child no longer gets what the terminal sends to the
//! foreground group: Ctrl-C (SIGINT) reaches this process only. If this process dies
//! of it, the children die with it (the parent-death signal, see [`crate::spawn`]);
//! if it handles it and drops its `Child`ren, they are killed; for a graceful stop,
//! forward the signal: `child.signal_group(Signal::SIGINT)`.
//!
//! ```no_run
//! # async fn demo(mut child: ipc_core::Child) -> ipc_core::Result<()> {
//! use ipc_core::Signal;
//! child.signal(Signal::SIGTERM)?;
//! let status = child.wait().await?;
//! println!("child {} exited: {status}", child.pid());
//! # Ok(()) }
//! ```

use std::any::Any;
use std::process::ExitStatus;

use crate::signal::Signal;
use nix::sys::signal::kill;
use nix::unistd::Pid;

use crate::error::{Error, Result};

/// A spawned child process.
pub struct Child {
    inner: tokio::process::Child,
    pid: u32,
    status: Option<ExitStatus>,
    kill_on_drop: bool,
    /// The child leads a process group of its own (started by [`crate::spawn`]).
    own_group: bool,
    /// Resources that must live as long as the child (temp dirs, parent-side fds).
    keep_alive: Vec<Box<dyn Any + Send>>,
}

impl std::fmt::Debug for Child {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.pid)
            .field("status", &self.status)
            .finish()
    }
}

impl Child {
    /// Wrap a tokio child. Fails if it has already been reaped (no pid).
    pub fn new(inner: tokio::process::Child) -> Result<Self> {
        let pid = inner.id().ok_or_else(|| {
            Error::Io(std::io::Error::other(
                "child was already reaped, it has no pid",
            ))
        })?;
        Ok(Child {
            inner,
            pid,
            status: None,
            kill_on_drop: true,
            own_group: false,
            keep_alive: Vec::new(),
        })
    }

    /// Keep `resource` alive until the child is dropped (e.g. a temp directory).
    pub fn keep_alive(&mut self, resource: impl Any + Send) {
        self.keep_alive.push(Box::new(resource));
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Access the tokio child (its stdin/stdout/stderr handles when piped).
    pub fn inner_mut(&mut self) -> &mut tokio::process::Child {
        &mut self.inner
    }

    /// True until the child has been reaped: its pid (and group id) are still ours.
    fn unreaped(&self) -> bool {
        self.status.is_none() && self.inner.id().is_some()
    }

    /// Send a signal to the child process alone. Sending to a child that already
    /// exited is not an error.
    pub fn signal(&self, sig: Signal) -> Result<()> {
        if !self.unreaped() {
            return Ok(());
        }
        match kill(Pid::from_raw(self.pid as i32), sig.to_nix()) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(e) => Err(std::io::Error::from(e).into()),
        }
    }

    /// Send a signal to the child's whole process group: the child and the processes
    /// it started (see [Process group](self#process-group)). A child that does not lead
    /// a group of its own (one wrapped with [`Child::new`]) gets it alone. Not an error
    /// once everyone exited.
    ///
    /// ```no_run
    /// # fn demo(child: ipc_core::Child) -> ipc_core::Result<()> {
    /// child.signal_group(ipc_core::Signal::SIGINT)?; // as Ctrl-C would have
    /// # Ok(()) }
    /// ```
    pub fn signal_group(&self, sig: Signal) -> Result<()> {
        if !self.own_group {
            return self.signal(sig);
        }
        if !self.unreaped() {
            return Ok(());
        }
        match nix::sys::signal::killpg(Pid::from_raw(self.pid as i32), sig.to_nix()) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(e) => Err(std::io::Error::from(e).into()),
        }
    }

    /// SIGKILL the child and its process group (they cannot catch it). Use
    /// [`wait`](Self::wait) to reap the child.
    pub fn kill(&self) -> Result<()> {
        self.signal_group(Signal::SIGKILL)
    }

    /// Wait for the child to exit and return its status (cached after the first call).
    pub async fn wait(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let status = self.inner.wait().await?;
        self.status = Some(status);
        Ok(status)
    }

    /// The exit status if the child has exited, without waiting.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self.inner.try_wait()?;
        }
        Ok(self.status)
    }

    /// Let the child outlive this handle: it is no longer killed on drop.
    ///
    /// It is still killed when this process dies (the parent-death signal is armed in
    /// the child at spawn time and cannot be undone from here); to let a child outlive
    /// the process, spawn it [`detached`](crate::spawn::detached).
    pub fn detach(mut self) {
        self.kill_on_drop = false;
    }

    pub(crate) fn set_kill_on_drop(&mut self, kill: bool) {
        self.kill_on_drop = kill;
    }

    pub(crate) fn set_own_group(&mut self, own: bool) {
        self.own_group = own;
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.kill_on_drop && self.unreaped() {
            // tokio reaps a killed child in the background, so no zombie is left.
            if self.kill().is_err() {
                let _ = self.inner.start_kill();
            }
        }
    }
}
