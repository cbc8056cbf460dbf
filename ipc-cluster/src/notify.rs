//! systemd's readiness protocol (`sd_notify`): a process writes `READY=1` (and other
//! `KEY=VALUE` lines) as one datagram to the Unix socket named by `NOTIFY_SOCKET`.
//!
//! Both sides are here: [`NotifySocket`] is the receiving end a supervisor makes for
//! each process it starts (a private socket file in a 0700 temp dir), and
//! [`notify_ready`] / [`notify`] are what the process calls, in any program (it is
//! also how a process tells systemd itself, when systemd set `NOTIFY_SOCKET`). Paths
//! and Linux abstract names (`@name`) are understood.
//!
//! ```no_run
//! // In a worker, once it serves:
//! ipc_cluster::notify::notify_ready()?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io;
use std::os::unix::net::UnixDatagram as StdDatagram;
use std::path::PathBuf;

use tokio::net::UnixDatagram;

/// The environment variable naming the notification socket.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Send `state` (newline-separated `KEY=VALUE` lines, e.g. `"READY=1"`) to the socket
/// named by `NOTIFY_SOCKET`. Returns `Ok(false)` when the variable is not set (nobody
/// listens: not an error, as with `sd_notify`).
///
/// ```no_run
/// ipc_cluster::notify::notify("STATUS=warming caches")?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn notify(state: &str) -> io::Result<bool> {
    let Some(target) = std::env::var_os(NOTIFY_SOCKET) else {
        return Ok(false);
    };
    let target = target.to_string_lossy().into_owned();
    let socket = StdDatagram::unbound()?;
    if let Some(name) = target.strip_prefix('@') {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            #[cfg(target_os = "android")]
            use std::os::android::net::SocketAddrExt;
            #[cfg(target_os = "linux")]
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
            socket.send_to_addr(state.as_bytes(), &addr)?;
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            let _ = name;
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{NOTIFY_SOCKET}={target}: abstract socket names exist on Linux only"),
            ));
        }
    } else {
        socket.send_to(state.as_bytes(), &target).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("could not notify {NOTIFY_SOCKET}={target}: {e}"),
            )
        })?;
    }
    Ok(true)
}

/// Say `READY=1` to `NOTIFY_SOCKET` ([`notify`] with that state).
///
/// ```no_run
/// if !ipc_cluster::notify::notify_ready()? {
///     eprintln!("no NOTIFY_SOCKET: not started by a supervisor that waits for it");
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn notify_ready() -> io::Result<bool> {
    notify("READY=1")
}

/// The receiving end of `NOTIFY_SOCKET` for one process: a datagram socket in a
/// private directory, removed when this is dropped.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// let mut socket = ipc_cluster::notify::NotifySocket::new()?;
/// let mut command = std::process::Command::new("my-daemon");
/// command.env(ipc_cluster::notify::NOTIFY_SOCKET, socket.path());
/// // ... start it, then:
/// socket.ready().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl NotifySocket {
    /// Bind a fresh socket (`notify.sock` in a new 0700 temp dir). Must be called
    /// within a tokio runtime.
    pub fn new() -> io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("ipc-notify-").tempdir()?;
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path)?;
        Ok(NotifySocket {
            socket,
            path,
            _dir: dir,
        })
    }

    /// The path to put in the process's `NOTIFY_SOCKET`.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The next datagram, as text (`KEY=VALUE` lines).
    pub async fn recv(&mut self) -> io::Result<String> {
        let mut buf = vec![0u8; 4096];
        let n = self.socket.recv(&mut buf).await?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// Wait for a datagram holding the line `READY=1` (other states are skipped).
    pub async fn ready(&mut self) -> io::Result<()> {
        loop {
            let state = self.recv().await?;
            if state.lines().any(|line| line.trim() == "READY=1") {
                return Ok(());
            }
            tracing::debug!(state = %state, "notify socket: not READY=1, skipped");
        }
    }
}
