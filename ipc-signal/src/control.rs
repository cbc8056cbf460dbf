//! Signals as process control: wait for a shutdown request, signal another process.

use std::io;

use ipc_core::{Error, Result, Signal};
use nix::errno::Errno;
use nix::unistd::Pid;
use tokio::signal::unix::{signal, SignalKind};

/// Listens for the three shutdown signals: SIGINT (Ctrl-C), SIGTERM (`kill`, service
/// managers, pm2's graceful stop) and SIGQUIT.
///
/// The handlers are installed by [`new`](Self::new) and stay installed for the life of the
/// process (tokio never uninstalls them): from then on these signals no longer end the
/// process by themselves, so the program must act on them. A signal that arrives while
/// nobody is waiting is remembered and returned by the next [`recv`](Self::recv).
///
/// ```no_run
/// # async fn demo() -> ipc_core::Result<()> {
/// let mut signals = ipc_signal::ShutdownSignals::new()?;
/// let first = signals.recv().await?;
/// println!("{first:?}: shutting down; press Ctrl-C again to force");
/// let second = signals.recv().await?;
/// # let _ = second; Ok(()) }
/// ```
#[derive(Debug)]
pub struct ShutdownSignals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    quit: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    /// Install the handlers now. Must be called inside a tokio runtime with I/O enabled.
    pub fn new() -> Result<Self> {
        Ok(ShutdownSignals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            quit: signal(SignalKind::quit())?,
        })
    }

    /// The next shutdown signal. Fails with [`Error::Closed`] only if the runtime's signal
    /// driver has shut down.
    pub async fn recv(&mut self) -> Result<Signal> {
        tokio::select! {
            Some(()) = self.int.recv() => Ok(Signal::SIGINT),
            Some(()) = self.term.recv() => Ok(Signal::SIGTERM),
            Some(()) = self.quit.recv() => Ok(Signal::SIGQUIT),
            else => Err(Error::Closed),
        }
    }
}

/// Resolve on the first SIGINT, SIGTERM or SIGQUIT and say which.
///
/// The handlers are installed when the future is first polled, and stay installed (see
/// [`ShutdownSignals`], which also waits for a second signal). Must run inside a tokio
/// runtime with I/O enabled.
///
/// ```no_run
/// # async fn demo() -> ipc_core::Result<()> {
/// let server = std::future::pending::<()>(); // your accept loop
/// tokio::select! {
///     () = server => {}
///     sig = ipc_signal::shutdown_signal() => println!("stopping on {:?}", sig?),
/// }
/// # Ok(()) }
/// ```
pub async fn shutdown_signal() -> Result<Signal> {
    ShutdownSignals::new()?.recv().await
}

/// Send `sig` to process `pid`.
///
/// Errors say which process: [`io::ErrorKind::NotFound`] if there is none (it exited,
/// or was never there), [`io::ErrorKind::PermissionDenied`] if it belongs to another
/// user. `pid` 0 and values above `i32::MAX` are refused ([`io::ErrorKind::InvalidInput`]):
/// `kill(2)` would read them as "my process group" or "every process I may signal".
///
/// ```
/// use ipc_signal::{kill, Signal};
/// // SIGCONT to ourselves is harmless.
/// kill(std::process::id(), Signal::SIGCONT)?;
/// assert!(kill(0, Signal::SIGTERM).is_err());
/// # Ok::<(), ipc_core::Error>(())
/// ```
pub fn kill(pid: u32, sig: Signal) -> Result<()> {
    let raw = i32::try_from(pid).ok().filter(|p| *p > 0).ok_or_else(|| {
        Error::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{pid} is not a process id (kill would signal a process group or everyone)"),
        ))
    })?;
    let nix_sig = nix::sys::signal::Signal::try_from(sig.as_raw()).map_err(std::io::Error::from)?;
    nix::sys::signal::kill(Pid::from_raw(raw), nix_sig).map_err(|e| match e {
        Errno::ESRCH => Error::Io(io::Error::new(
            io::ErrorKind::NotFound,
            format!("cannot send {sig:?} to process {pid}: there is no such process"),
        )),
        Errno::EPERM => Error::Io(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("not allowed to send {sig:?} to process {pid} (another user's process?)"),
        )),
        other => Error::Io(io::Error::from(other)),
    })
}
