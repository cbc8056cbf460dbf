//! [`TcpListener`] and [`bind`]: accept connections, handshaking with many clients at
//! once so that a slow or hostile one never holds up the others.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ipc_core::{Channel, Endpoint, Error, Listener, Result};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::channel::TcpChannel;
use crate::handshake::{self, PaddedToken};
use crate::options::TcpOptions;

/// Most handshakes in progress (or finished and not yet taken by `accept`) at once.
/// Further connections wait in the kernel's backlog.
pub const MAX_PENDING_HANDSHAKES: usize = 64;

/// One finished handshake. The permit travels with it, so a permit is held from the
/// moment a connection is taken from the kernel until `accept` has taken its result.
struct Handshaken {
    result: Result<(TcpStream, SocketAddr)>,
    _permit: OwnedSemaphorePermit,
}

/// Listens for ipc-tcp clients. Create with [`bind`].
///
/// Each connection is handshaken in its own task (at most [`MAX_PENDING_HANDSHAKES`] at
/// once), each bounded by the handshake timeout, so a silent, slow or hostile client
/// never delays the others. [`accept`](Self::accept) returns results in the order the
/// handshakes finish.
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
/// use ipc_core::Channel;
/// use ipc_tcp::TcpOptions;
/// let mut listener = ipc_tcp::bind(([127, 0, 0, 1], 0).into(), TcpOptions::default()).await?;
/// let addr = listener.local_addr();
/// let (server, client) = tokio::join!(listener.accept(), ipc_tcp::connect(addr, TcpOptions::default()));
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
    options: TcpOptions,
    expected: Arc<PaddedToken>,
    permits: Arc<Semaphore>,
    tx: mpsc::Sender<Handshaken>,
    rx: mpsc::Receiver<Handshaken>,
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
/// Clients must present `options.token` (or no token, when it is `None`). Binding
/// anything but a loopback address logs a warning: other machines can then reach the
/// port, and the token is all that keeps them out.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// let opts = ipc_tcp::TcpOptions::default().token("s3cret");
/// let listener = ipc_tcp::bind(([127, 0, 0, 1], 0).into(), opts).await?;
/// assert_ne!(listener.local_addr().port(), 0);
/// # Ok(()) }
/// ```
pub async fn bind(addr: SocketAddr, options: TcpOptions) -> Result<TcpListener> {
    let expected = Arc::new(PaddedToken::new(options.token_bytes())?);
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        Error::Io(io::Error::new(
            e.kind(),
            format!("could not listen on tcp://{addr}: {e}"),
        ))
    })?;
    let local_addr = listener.local_addr()?;
    if !local_addr.ip().is_loopback() {
        tracing::warn!(
            %local_addr,
            "ipc-tcp listening on a non-loopback address: other hosts can connect; \
             only the token keeps them out, and it travels unencrypted"
        );
    }
    let (tx, rx) = mpsc::channel(MAX_PENDING_HANDSHAKES);
    Ok(TcpListener {
        listener,
        local_addr,
        options,
        expected,
        permits: Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES)),
        tx,
        rx,
    })
}

/// What one turn of the accept loop produced.
enum Step {
    Done(Result<(TcpStream, SocketAddr)>),
    Incoming(OwnedSemaphorePermit, io::Result<(TcpStream, SocketAddr)>),
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
        TcpChannel::from_stream(stream, peer, None, self.options.frame)
    }

    /// Like [`accept`](Self::accept), returning the raw authenticated stream.
    pub(crate) async fn accept_stream(&mut self) -> Result<(TcpStream, SocketAddr)> {
        loop {
            let incoming = async {
                let permit = match self.permits.clone().acquire_owned().await {
                    Ok(permit) => permit,
                    // The semaphore is never closed; wait for handshakes instead.
                    Err(_) => std::future::pending().await,
                };
                (permit, self.listener.accept().await)
            };
            let step = tokio::select! {
                biased;
                Some(done) = self.rx.recv() => Step::Done(done.result),
                (permit, conn) = incoming => Step::Incoming(permit, conn),
            };
            match step {
                Step::Done(result) => return result,
                Step::Incoming(permit, Ok((stream, peer))) => {
                    self.start_handshake(stream, peer, permit)
                }
                Step::Incoming(_, Err(e)) => match e.kind() {
                    // The client gave up before we took its connection: nothing to report.
                    io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::Interrupted => {
                        tracing::debug!(error = %e, "a client vanished before accept");
                    }
                    _ => {
                        if is_resource_exhaustion(&e) {
                            // Give descriptors a moment to free up so a caller that
                            // retries at once does not spin.
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        return Err(Error::Io(io::Error::new(
                            e.kind(),
                            format!("accepting on tcp://{}: {e}", self.local_addr),
                        )));
                    }
                },
            }
        }
    }

    /// Run one connection's handshake in its own task; its result comes back through
    /// the queue `accept` reads.
    fn start_handshake(
        &self,
        mut stream: TcpStream,
        peer: SocketAddr,
        permit: OwnedSemaphorePermit,
    ) {
        let tx = self.tx.clone();
        let expected = Arc::clone(&self.expected);
        let timeout = self.options.handshake_timeout;
        tokio::spawn(async move {
            let handshake = async {
                stream.set_nodelay(true)?;
                tokio::time::timeout(timeout, handshake::server(&mut stream, &expected, peer))
                    .await
                    .map_err(|_| Error::Timeout {
                        after: timeout,
                        during: "waiting for a client's handshake",
                    })?
            };
            let outcome = tokio::select! {
                outcome = handshake => outcome,
                // The listener was dropped: nobody wants this connection any more.
                _ = tx.closed() => return,
            };
            match outcome {
                Ok(()) => {
                    let _ = tx
                        .send(Handshaken {
                            result: Ok((stream, peer)),
                            _permit: permit,
                        })
                        .await;
                }
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "ipc-tcp handshake refused");
                    let timed_out = matches!(e, Error::Timeout { .. });
                    let _ = tx
                        .send(Handshaken {
                            result: Err(e),
                            _permit: permit,
                        })
                        .await;
                    if !timed_out {
                        tokio::select! {
                            () = handshake::linger(&mut stream) => {}
                            _ = tx.closed() => {}
                        }
                    }
                }
            }
        });
    }

    /// True when no handshake is in progress and no result waits to be taken.
    pub(crate) fn is_idle(&self) -> bool {
        self.permits.available_permits() == MAX_PENDING_HANDSHAKES
    }

    /// The next finished handshake, without taking new connections from the kernel.
    /// Waits forever when [`is_idle`](Self::is_idle).
    pub(crate) async fn next_finished(&mut self) -> Result<(TcpStream, SocketAddr)> {
        match self.rx.recv().await {
            Some(done) => done.result,
            // Unreachable while `self.tx` lives; report it as a closed listener.
            None => Err(Error::Closed),
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
