//! [`Event`]: what happens to a supervised process, as a typed stream.

use std::fmt;
use std::time::Duration;

use ipc_core::Signal;

/// How a process ended: an exit code or a signal, told apart.
///
/// ```
/// use ipc_cluster::ExitStatus;
/// assert_eq!(ExitStatus::Code(3).to_string(), "exit code 3");
/// assert_eq!(ExitStatus::Signal(9).to_string(), "killed by SIGKILL");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i32),
    /// A signal (its number) ended it.
    Signal(i32),
}

impl ExitStatus {
    /// From the standard library's status.
    ///
    /// ```
    /// use std::os::unix::process::ExitStatusExt;
    /// let status = std::process::ExitStatus::from_raw(9);
    /// assert_eq!(ipc_cluster::ExitStatus::from_std(status), ipc_cluster::ExitStatus::Signal(9));
    /// ```
    pub fn from_std(status: std::process::ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => ExitStatus::Code(code),
            (None, Some(sig)) => ExitStatus::Signal(sig),
            (None, None) => ExitStatus::Code(-1),
        }
    }

    /// True for exit code 0.
    ///
    /// ```
    /// assert!(ipc_cluster::ExitStatus::Code(0).success());
    /// ```
    pub fn success(self) -> bool {
        self == ExitStatus::Code(0)
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(code) => write!(f, "exit code {code}"),
            ExitStatus::Signal(sig) => match Signal::try_from(*sig) {
                Ok(signal) => write!(f, "killed by {}", signal.as_str()),
                Err(_) => write!(f, "killed by signal {sig}"),
            },
        }
    }
}

/// Why a process exited.
///
/// ```
/// use ipc_cluster::ExitCause;
/// assert!(!ExitCause::Crashed.was_asked());
/// assert!(ExitCause::Stopped.was_asked());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCause {
    /// Nobody asked: it exited or crashed on its own.
    Crashed,
    /// It told us it would exit (a fatal error it reported, or a drain it finished).
    Announced,
    /// We asked it to stop and it did, within `kill_timeout`.
    Stopped,
    /// We asked it to stop, it did not within `kill_timeout`, and its group was
    /// SIGKILLed.
    Killed,
    /// It did not report ready within `listen_timeout` and was stopped.
    NotReady,
}

impl ExitCause {
    /// True when the exit followed a request of ours.
    pub fn was_asked(self) -> bool {
        matches!(
            self,
            ExitCause::Stopped | ExitCause::Killed | ExitCause::NotReady
        )
    }
}

/// What source told us a process is ready.
///
/// ```
/// assert_eq!(format!("{:?}", ipc_cluster::ReadyVia::Notify), "Notify");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadyVia {
    /// Nothing was awaited (`wait_ready` off).
    Started,
    /// The `"ready"` message on the control channel.
    Message,
    /// `READY=1` on `NOTIFY_SOCKET`.
    Notify,
}

/// One thing that happened to a supervised process (pm2's process events).
///
/// ```no_run
/// # async fn demo(mut sup: ipc_cluster::Supervisor) {
/// use ipc_cluster::Event;
/// while let Some(event) = sup.next_event().await {
///     if let Event::Errored { unstable_restarts } = event {
///         eprintln!("gave up after {unstable_restarts} unstable restarts");
///     }
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A process is being started (`restarts` before it).
    Starting {
        /// Its pid.
        pid: u32,
        /// Restarts so far.
        restarts: u32,
    },
    /// It is ready.
    Ready {
        /// Its pid.
        pid: u32,
        /// What told us.
        via: ReadyVia,
    },
    /// It exited.
    Exited {
        /// Its pid.
        pid: u32,
        /// Exit code or signal.
        status: ExitStatus,
        /// Why.
        cause: ExitCause,
        /// How long it ran.
        uptime: Duration,
    },
    /// It will be started again after `delay`.
    Restarting {
        /// The wait before the start.
        delay: Duration,
        /// Unstable restarts so far, this one included.
        unstable_restarts: u32,
    },
    /// Too many unstable restarts: it is not started again.
    Errored {
        /// Unstable restarts made before giving up.
        unstable_restarts: u32,
    },
    /// It is stopped and will not be started again (asked for, a stop exit code, or
    /// the restart policy).
    Stopped,
}
