//! The cluster's port: bind it (or take the socket from systemd socket activation)
//! in the way the mode needs, and accept connections in round-robin mode.

use std::net::SocketAddr;

use tokio::sync::mpsc;

use super::actor::Input;
use super::ClusterConfig;
use crate::error::Result;
use crate::protocol::Mode;

/// The cluster's port, bound.
pub(super) struct Port {
    /// The primary's listening socket (shared, rr).
    pub(super) listener: Option<std::net::TcpListener>,
    /// A bound, never listening socket that holds the port (reuseport).
    pub(super) hold: Option<tokio::net::TcpSocket>,
    /// The address the workers serve.
    pub(super) addr: SocketAddr,
    /// The mode in effect (socket activation turns reuseport into shared).
    pub(super) mode: Mode,
}

/// Bind the cluster's port as `config` says (or take the socket-activated one).
pub(super) fn bind(config: &ClusterConfig) -> Result<Port> {
    if config.socket_activation {
        if let Some(listener) = crate::systemd::tcp_listener()? {
            let addr = listener.local_addr()?;
            let mode = if config.mode == Mode::ReusePort {
                tracing::warn!("socket activation gives one socket: reuseport mode runs as shared");
                Mode::Shared
            } else {
                config.mode
            };
            tracing::info!(%addr, "using the socket passed by socket activation");
            return Ok(Port {
                listener: Some(listener),
                hold: None,
                addr,
                mode,
            });
        }
    }
    match config.mode {
        Mode::Shared | Mode::RoundRobin => {
            let listener = std::net::TcpListener::bind(config.addr).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("could not listen on {}: {e}", config.addr),
                )
            })?;
            let addr = listener.local_addr()?;
            Ok(Port {
                listener: Some(listener),
                hold: None,
                addr,
                mode: config.mode,
            })
        }
        Mode::ReusePort => {
            // Hold the port with a bound, never listening, SO_REUSEPORT socket: it
            // gets no connections, and the workers bind the very port.
            let socket = if config.addr.is_ipv4() {
                tokio::net::TcpSocket::new_v4()?
            } else {
                tokio::net::TcpSocket::new_v6()?
            };
            socket.set_reuseaddr(true)?;
            socket.set_reuseport(true)?;
            socket.bind(config.addr)?;
            let addr = socket.local_addr()?;
            Ok(Port {
                listener: None,
                hold: Some(socket),
                addr,
                mode: Mode::ReusePort,
            })
        }
    }
}

/// Accept connections (round-robin mode) and pass them to the cluster's task, until
/// the task is aborted (which closes its listener) or the cluster's task is gone. The
/// [`Cluster`](super::Cluster) awaits the returned handle when it shuts down, so the
/// port is free when `shutdown` returns.
pub(super) fn spawn_acceptor(
    listener: std::net::TcpListener,
    inputs: mpsc::UnboundedSender<Input>,
) -> Result<tokio::task::JoinHandle<()>> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let task = tokio::spawn(async move {
        loop {
            // Also ends when the cluster's task is gone, whatever the abort handle's fate.
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = inputs.closed() => return,
            };
            match accepted {
                Ok((stream, _)) => {
                    let Ok(stream) = stream.into_std() else {
                        continue;
                    };
                    if inputs.send(Input::Conn(stream)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    if inputs.is_closed() {
                        return;
                    }
                    // EMFILE and friends: let the situation change before retrying.
                    tokio::task::yield_now().await;
                }
            }
        }
    });
    Ok(task)
}

/// The sysctl by which the kernel moves the connections queued on a closing
/// `SO_REUSEPORT` socket to another socket of its group (Linux 5.14 and later).
const TCP_MIGRATE_REQ: &str = "/proc/sys/net/ipv4/tcp_migrate_req";

/// Whether connections queued on a closing reuseport socket move to another one:
/// `net.ipv4.tcp_migrate_req` in this network namespace (`None`: no such sysctl).
pub(super) fn reuseport_migration() -> Option<bool> {
    let value = std::fs::read_to_string(TCP_MIGRATE_REQ).ok()?;
    Some(value.trim() == "1")
}

/// In reuseport mode, warn when a reload may reset connections: a retired worker
/// takes what is queued on its socket when it stops, but a connection the kernel
/// queues there after that and before the socket is closed is reset unless
/// `net.ipv4.tcp_migrate_req` is 1.
pub(super) fn warn_if_reuseport_reload_may_reset() {
    match reuseport_migration() {
        Some(true) => {}
        Some(false) => tracing::warn!(
            "reuseport reload: net.ipv4.tcp_migrate_req is 0, so a connection that reaches \
             a retired worker's socket just before it closes is reset; \
             run `sysctl -w net.ipv4.tcp_migrate_req=1` (per network namespace) for a \
             reload that drops nothing"
        ),
        None => tracing::warn!(
            "reuseport reload: this kernel has no net.ipv4.tcp_migrate_req (Linux 5.14+), so \
             a connection that reaches a retired worker's socket just before it closes is \
             reset; use shared or rr mode for a reload that drops nothing"
        ),
    }
}
