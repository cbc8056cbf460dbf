//! [`Error`]: what went wrong while supervising processes or running a cluster.

use std::time::Duration;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong while starting, supervising or talking to a managed process.
///
/// ```
/// use std::time::Duration;
/// let e = ipc_cluster::Error::NotReady { pid: 42, waited: Duration::from_secs(3) };
/// assert!(e.to_string().contains("listen_timeout"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A channel or process operation of the toolkit failed.
    #[error(transparent)]
    Ipc(#[from] ipc_core::Error),

    /// Starting a managed process failed (the program could not be started, or its
    /// control channel could not be set up).
    #[error(transparent)]
    Spawn(#[from] ipc_core::SpawnError),

    /// A worker could not open the control channel its primary gave it (not started by
    /// a cluster or supervisor, or the primary is gone).
    #[error(transparent)]
    Connect(#[from] ipc_core::ConnectError),

    /// An operating-system call failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),

    /// A process did not say it was ready in time, so its start counts as failed.
    #[error(
        "process {pid} did not report ready within {waited:?} (listen_timeout); it must \
         send the ready message, write READY=1 to NOTIFY_SOCKET or process.send('ready'), \
         or raise listen_timeout"
    )]
    NotReady {
        /// The process that was started.
        pid: u32,
        /// How long we waited.
        waited: Duration,
    },

    /// A process exited before it said it was ready.
    #[error("process {pid} exited before it was ready ({status})")]
    ExitedBeforeReady {
        /// The process that was started.
        pid: u32,
        /// How it ended, in words.
        status: String,
    },

    /// A message on a control channel did not follow the protocol.
    #[error("control protocol: {0}")]
    Protocol(String),

    /// The operation is not possible in the cluster's current state.
    #[error("{0}")]
    State(String),

    /// A reload was refused or aborted; the workers that served before still serve.
    #[error("reload aborted: {0}; the old workers keep serving")]
    ReloadAborted(String),

    /// The agent process failed while the cluster was starting.
    #[error("the agent failed during start-up: {0}; the cluster did not start")]
    AgentFailed(String),
}

impl From<ipc_core::RecvError> for Error {
    fn from(e: ipc_core::RecvError) -> Self {
        Error::Ipc(e.into())
    }
}

impl From<ipc_core::SendError> for Error {
    fn from(e: ipc_core::SendError) -> Self {
        Error::Ipc(e.into())
    }
}

impl From<nix::errno::Errno> for Error {
    fn from(e: nix::errno::Errno) -> Self {
        Error::Io(e.into())
    }
}
