//! [`TcpListener`] and [`bind`]: accept connections, handshaking with many clients at
//! once so that a slow or hostile one never holds up the others.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ipc_core::frame::FrameBudget;
use ipc_core::ListenError;
use ipc_core::{Channel, Endpoint, Error, Listener, Options, Result};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::channel::{self, TcpChannel};
use crate::handshake::{self, PaddedToken};
use crate::options::token_bytes;
use crate::pending::PendingHandshakes;

/// The outcome of one connection's handshake: an authenticated stream, or why not.
type Handshaken = Result<(TcpStream, SocketAddr)>;

/// Listens for ipc-tcp clients. Create with [`bind`].
///
/// Each connection is handshaken in its own task, bounded by the handshake timeout, so a
/// silent, slow or hostile client never delays the others: a good client is served at
/// once however many idle connections are open. At most
/// [`max_pending_handshakes`](Options::max_pending_handshakes) handshakes (4096 by
/// default) are in progress at once; when a new connection arrives at that bound, the
/// oldest handshake in progress is closed to make room, and the same happens when the
/// process runs out of file descriptors. [`accept`](Self::accept) returns results in the
/// order the handshakes finish.
///
/// An `Err` from `accept` concerns one client (wrong token, not an ipc client, too slow)
/// or a transient OS condition (out of file descriptors): that client is already
/// closed, the listener keeps serving, and the next `accept` works. Log it and loop.
///
/// Dropping the listener closes the listening socket at once and ends every handshake
/// still in progress.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// let opts = ipc_core::Options::default();
/// let mut listener = ipc_tcp::bind(([127, 0, 0, 1], 0).into(), &opts).await?;
/// let addr = listener.local_addr();
/// let (server, client) = tokio::join!(listener.accept(), ipc_tcp::connect(addr, &opts));
/// let (mut server, mut client) = (server?, client?);
/// client.send("hi".into()).await?;
/// assert_eq!(server.recv().await?.as_deref(), Some(&b"hi"[..]));
/// # Ok(()) }
/// ```
///
/// # Platform-specific behavior
///
/// On Unix the listening socket has `SO_REUSEADDR` (tokio's default), so a port left in
/// `TIME_WAIT` by a previous run can be bound again; two live listeners still cannot
/// share a port. Sockets are close-on-exec.
pub struct TcpListener {
    listener: tokio::net::TcpListener,
    local_addr: SocketAddr,
    options: Options,
    expected: Arc<PaddedToken>,
    /// Shared by the accepted channels for their partly received frames.
    budget: FrameBudget,
    pending: PendingHandshakes,
    /// Finished handshakes. Unbounded, yet never longer than the number of handshake
    /// tasks: each sends at most one result, and `accept` takes the results before it
    /// takes new connections.
    tx: mpsc::UnboundedSender<Handshaken>,
    rx: mpsc::UnboundedReceiver<Handshaken>,
    /// Whether a full set of pending handshakes has been reported yet.
    warned_full: bool,
}

impl std::fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpListener")
            .field("local_addr", &self.local_addr)
            .field("options", &self.options)
            .finish()
    }
}

/// Listen on exactly `addr` (use `127.0.0.1:0` for a free loopback port).
///
/// Clients must present the [token](Options::token) of `options` (or no token, when
/// none is set; `IPC_TOKEN` is not looked at here). Binding
/// anything but a loopback address logs a warning: other machines can then reach the
/// port, and the token is all that keeps them out. Without a token that warning is also
/// printed on stderr (once, from `bind`), since then nothing keeps them out.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// let opts = ipc_core::Options::default().token("s3cret");
/// let listener = ipc_tcp::bind(([127, 0, 0, 1], 0).into(), &opts).await?;
/// assert_ne!(listener.local_addr().port(), 0);
/// # Ok(()) }
/// ```
pub async fn bind(addr: SocketAddr, options: &Options) -> Result<TcpListener, ListenError> {
    let expected = Arc::new(PaddedToken::new(token_bytes(options))?);
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        Error::Io(io::Error::new(
            e.kind(),
            format!("could not listen on tcp://{addr}: {e}"),
        ))
    })?;
    let local_addr = listener.local_addr()?;
    if let Some(warning) = exposure_warning(local_addr, options.get_token().is_some()) {
        // On stderr, where a person sees it, not only as a tracing event that nobody
        // may be subscribed to.
        eprintln!("{warning}");
        tracing::warn!(%local_addr, "{warning}");
    } else if !local_addr.ip().is_loopback() {
        tracing::warn!(
            %local_addr,
            "ipc-tcp listening on a non-loopback address: other hosts can connect; \
             only the token keeps them out, and it travels unencrypted"
        );
    }
    let (tx, rx) = mpsc::unbounded_channel();
    Ok(TcpListener {
        listener,
        local_addr,
        pending: PendingHandshakes::new(options.get_max_pending_handshakes()),
        budget: FrameBudget::for_listener(&options.frame_config()),
        options: options.clone(),
        expected,
        tx,
        rx,
        warned_full: false,
    })
}

/// The warning for a listener that any host can reach without a token, or `None` when
/// it is on loopback or requires a token.
fn exposure_warning(local_addr: SocketAddr, has_token: bool) -> Option<String> {
    if local_addr.ip().is_loopback() || has_token {
        return None;
    }
    Some(format!(
        "warning: ipc-tcp is listening on tcp://{local_addr} without a token: any host \
         that can reach this port can connect and exchange frames with this program. \
         Listen on 127.0.0.1 if only this machine should connect, or require a token \
         (Options::default().token(..), or IPC_TOKEN when listening through the \
         Transport API); tokens and frames travel unencrypted either way."
    ))
}

/// What one turn of the accept loop produced.
enum Step {
    Done(Handshaken),
    Incoming(io::Result<(TcpStream, SocketAddr)>),
}

impl TcpListener {
    /// The address clients connect to (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The next authenticated channel. See the [type docs](Self) for what an `Err`
    /// means: one refused client, after which the listener keeps serving.
    ///
    /// Cancel safe: dropping the future loses no connection.
    pub async fn accept(&mut self) -> Result<TcpChannel> {
        let (stream, peer) = self.accept_stream().await?;
        channel::from_stream(
            stream,
            peer,
            None,
            self.options.frame_config(),
            Some(&self.budget),
        )
    }

    /// The budget the accepted channels share for partly received frames (its size is
    /// the [`listener_budget`](Options::listener_budget) of its options).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
    /// let opts = ipc_core::Options::default().listener_budget(64 << 20);
    /// let listener = ipc_tcp::bind(([127, 0, 0, 1], 0).into(), &opts).await?;
    /// assert_eq!(listener.frame_budget().limit(), 64 << 20);
    /// # Ok(()) }
    /// ```
    pub fn frame_budget(&self) -> &FrameBudget {
        &self.budget
    }

    /// Like [`accept`](Self::accept), returning the raw authenticated stream.
    pub(crate) async fn accept_stream(&mut self) -> Result<(TcpStream, SocketAddr)> {
        loop {
            // Finished handshakes first, so their results never pile up.
            let step = tokio::select! {
                biased;
                Some(done) = self.rx.recv() => Step::Done(done),
                conn = self.listener.accept() => Step::Incoming(conn),
            };
            match step {
                Step::Done(result) => return result,
                Step::Incoming(Ok((stream, peer))) => self.start_handshake(stream, peer),
                Step::Incoming(Err(e)) => match e.kind() {
                    // The client gave up before we took its connection: nothing to report.
                    io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::Interrupted => {
                        tracing::debug!(error = %e, "a client vanished before accept");
                    }
                    _ if is_resource_exhaustion(&e) => {
                        // The connection still waits in the kernel's queue. Free the
                        // descriptor of the oldest pending handshake and take it.
                        if self.pending.evict_oldest_and_wait().await {
                            tracing::warn!(
                                local_addr = %self.local_addr,
                                error = %e,
                                "ipc-tcp: out of file descriptors; closed the oldest \
                                 pending handshake to take a new connection"
                            );
                            continue;
                        }
                        // Nothing of ours to free: report it, after a pause so that a
                        // caller that retries at once does not spin.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        return Err(Error::Io(io::Error::new(
                            e.kind(),
                            format!(
                                "accepting on tcp://{}: {e}; raise the limit on open \
                                 files (ulimit -n) or close unused connections",
                                self.local_addr
                            ),
                        )));
                    }
                    _ => {
                        return Err(Error::Io(io::Error::new(
                            e.kind(),
                            format!("accepting on tcp://{}: {e}", self.local_addr),
                        )))
                    }
                },
            }
        }
    }

    /// Run one connection's handshake in its own task; its result comes back through
    /// the queue `accept` reads.
    fn start_handshake(&mut self, mut stream: TcpStream, peer: SocketAddr) {
        let tx = self.tx.clone();
        let expected = Arc::clone(&self.expected);
        let timeout = self.options.get_handshake_timeout();
        let evicted = self.pending.spawn(async move {
            let outcome = async {
                stream.set_nodelay(true)?;
                tokio::time::timeout(timeout, handshake::server(&mut stream, &expected, peer))
                    .await
                    .map_err(|_| Error::Timeout {
                        after: timeout,
                        during: "waiting for a client's handshake",
                    })?
            }
            .await;
            match outcome {
                // A closed queue means the listener is gone; the stream just closes.
                Ok(()) => {
                    let _ = tx.send(Ok((stream, peer)));
                }
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "ipc-tcp handshake refused");
                    let timed_out = matches!(e, Error::Timeout { .. });
                    let _ = tx.send(Err(e));
                    if !timed_out {
                        handshake::linger(&mut stream).await;
                    }
                }
            }
        });
        if evicted > 0 {
            if !self.warned_full {
                self.warned_full = true;
                tracing::warn!(
                    local_addr = %self.local_addr,
                    max = self.options.get_max_pending_handshakes(),
                    "ipc-tcp: too many handshakes in progress (idle or slow clients); \
                     closing the oldest to make room for new connections"
                );
            }
            tracing::debug!(%peer, evicted, "closed the oldest pending handshakes");
        }
    }

    /// The next finished handshake, without taking new connections from the kernel;
    /// `None` once no handshake is in progress and no result waits to be taken.
    pub(crate) async fn next_finished(&mut self) -> Option<Handshaken> {
        loop {
            if let Ok(done) = self.rx.try_recv() {
                return Some(done);
            }
            self.pending.reap();
            if self.pending.len() == 0 {
                // A task may have sent its result just before it ended.
                return self.rx.try_recv().ok();
            }
            tokio::select! {
                biased;
                Some(done) = self.rx.recv() => return Some(done),
                () = self.pending.next_ended() => {}
            }
        }
    }
}

fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

#[async_trait]
impl Listener for TcpListener {
    async fn accept(&mut self) -> Result<Box<dyn Channel>> {
        Ok(Box::new(TcpListener::accept(self).await?))
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint::Tcp(self.local_addr)
    }
}

#[cfg(test)]
mod tests {
    use super::exposure_warning;

    #[test]
    fn only_a_reachable_listener_without_a_token_is_warned_about() {
        let public = ([0, 0, 0, 0], 7000).into();
        let warning = exposure_warning(public, false).expect("a warning");
        assert!(
            warning.contains("tcp://0.0.0.0:7000 without a token"),
            "{warning}"
        );
        assert!(exposure_warning(public, true).is_none());
        assert!(exposure_warning(([127, 0, 0, 1], 7000).into(), false).is_none());
        assert!(exposure_warning("[::1]:7000".parse().expect("addr"), false).is_none());
        assert!(exposure_warning("[::]:7000".parse().expect("addr"), false).is_some());
    }
}
