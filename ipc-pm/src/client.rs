//! The client side: connect to the daemon (starting it on first use), send one
//! request, read the answers.

use std::process::{Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use ipc_cluster::notify::{NotifySocket, NOTIFY_SOCKET};
use ipc_core::codec::Json;
use ipc_core::{Channel, ConnectError, Endpoint, Options, TypedChannel};
use ipc_uds::{UdsAddress, UdsChannel};

use crate::paths::{Home, IPCM_HOME};
use crate::proto::{Request, Response};

/// The client's channel to the daemon.
pub(crate) type Conn = TypedChannel<Response, Request, Json, UdsChannel>;

/// How long a daemon started by the client may take to say it is ready.
const DAEMON_START: Duration = Duration::from_secs(15);

/// Connect to the running daemon; `None` when none runs.
pub(crate) async fn connect_existing(home: &Home) -> Result<Option<Conn>, String> {
    let endpoint: Endpoint = UdsAddress::Path(home.socket()).into();
    match ipc_uds::connect(&endpoint, &Options::default()).await {
        Ok(channel) => {
            let ours = rustix::process::geteuid().as_raw();
            match channel.info().peer_uid {
                Some(uid) if uid != ours => Err(format!(
                    "the daemon socket {} is served by uid {uid}, not by us (uid {ours}); \
                     refusing to talk to it",
                    home.socket().display()
                )),
                _ => Ok(Some(TypedChannel::new(channel))),
            }
        }
        // No socket file, or a stale one nobody accepts on: no daemon runs.
        Err(ConnectError::NotListening(_)) => Ok(None),
        Err(e) => Err(format!("could not reach the ipcm daemon: {e}")),
    }
}

/// Connect to the daemon, starting it in the background first if none runs.
pub(crate) async fn connect(home: &Home) -> Result<Conn, String> {
    if let Some(conn) = connect_existing(home).await? {
        return Ok(conn);
    }
    start_daemon(home).await?;
    connect_existing(home)
        .await?
        .ok_or_else(|| "the daemon said it was ready but its socket is gone".to_string())
}

/// Start `ipcm daemon` detached (a session of its own, output to `daemon.log`) and
/// wait for its `READY=1`.
async fn start_daemon(home: &Home) -> Result<(), String> {
    home.prepare().map_err(|e| e.to_string())?;
    let log_path = home.daemon_log();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("could not open {}: {e}", log_path.display()))?;
    let log2 = log.try_clone().map_err(|e| e.to_string())?;
    let mut notify =
        NotifySocket::new().map_err(|e| format!("could not make a notify socket: {e}"))?;
    let exe = std::env::current_exe().map_err(|e| format!("where is ipcm itself? {e}"))?;
    Command::new(exe)
        .args(["daemon", "--background"])
        .env(IPCM_HOME, &home.dir)
        .env(NOTIFY_SOCKET, notify.path())
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .spawn()
        .map_err(|e| format!("could not start the ipcm daemon: {e}"))?;
    match tokio::time::timeout(DAEMON_START, notify.ready()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("waiting for the daemon: {e}")),
        Err(_) => Err(format!(
            "the ipcm daemon did not become ready within {DAEMON_START:?}; see {}",
            log_path.display()
        )),
    }
}

/// Send `request` and return the first answer.
pub(crate) async fn ask(conn: &mut Conn, request: Request) -> Result<Response, String> {
    conn.send(request)
        .await
        .map_err(|e| format!("could not send to the daemon: {e}"))?;
    next(conn)
        .await?
        .ok_or_else(|| "the daemon closed the connection without answering".to_string())
}

/// The next answer; `None` when the daemon closed the connection.
pub(crate) async fn next(conn: &mut Conn) -> Result<Option<Response>, String> {
    match conn.next().await {
        Some(Ok(response)) => Ok(Some(response)),
        Some(Err(e)) => Err(format!("reading the daemon's answer: {e}")),
        None => Ok(None),
    }
}
