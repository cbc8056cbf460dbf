//! The worker side: what a process started by a [`Supervisor`](crate::Supervisor) or
//! a [`Cluster`](crate::Cluster) calls.
//!
//! A cluster worker opens its control channel with [`Worker::connect`], asks for its
//! [`WorkerListener`] (the same code in every [`Mode`]: it yields
//! `tokio::net::TcpStream`s), says [`ready`](Worker::ready), and serves until the
//! listener ends (the primary asked it to drain or stop); then it finishes its open
//! connections and exits.
//!
//! ```no_run
//! # async fn demo() -> ipc_cluster::Result<()> {
//! use tokio::io::AsyncWriteExt;
//! let worker = ipc_cluster::Worker::connect().await?;
//! let mut listener = worker.listener().await?;
//! worker.ready().await?;
//! while let Some(stream) = listener.accept().await {
//!     let mut stream = stream?;
//!     tokio::spawn(async move { let _ = stream.write_all(b"hello\n").await; });
//! }
//! worker.close().await // messages sent before are delivered
//! # }
//! ```

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::SinkExt;
use ipc_core::Channel;
use ipc_uds::{RecvFds, UdsSender};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};

use crate::error::{Error, Result};
use crate::messenger::{Envelope, To};
use crate::protocol::{Ctl, Mode};

/// The worker's index in its cluster (0-based), also in `NODE_APP_INSTANCE` as pm2 sets it.
pub const IPC_WORKER_INDEX: &str = "IPC_WORKER_INDEX";
/// pm2's name for the worker index.
pub const NODE_APP_INSTANCE: &str = "NODE_APP_INSTANCE";
/// `worker` or `agent` in a process a [`Cluster`](crate::Cluster) started.
pub const IPC_CLUSTER_ROLE: &str = "IPC_CLUSTER_ROLE";

/// True in the agent process of a cluster (`IPC_CLUSTER_ROLE=agent`).
///
/// ```
/// if std::env::var_os("IPC_CLUSTER_ROLE").is_none() {
///     assert!(!ipc_cluster::worker::is_agent());
/// }
/// ```
pub fn is_agent() -> bool {
    std::env::var(IPC_CLUSTER_ROLE).as_deref() == Ok("agent")
}

/// Tell the supervisor (or a Node parent, or pm2) this process is ready: sends the
/// JSON string `"ready"` on `channel` (what `process.send('ready')` sends).
///
/// ```no_run
/// # async fn demo() -> ipc_cluster::Result<()> {
/// let mut parent = ipc_uds::connect(&ipc_core::env::endpoint_from_env()?, &ipc_core::Options::from_env()).await?;
/// ipc_cluster::worker::ready(&mut parent).await?;
/// # Ok(()) }
/// ```
pub async fn ready<C: Channel + ?Sized>(channel: &mut C) -> Result<()> {
    channel.send(Ctl::Ready.encode()).await?;
    Ok(())
}

/// Tell the supervisor this process is about to exit on purpose, because of `error`
/// (sends the `fatal` control message on `channel`): its exit is then reported as
/// [`ExitCause::Announced`](crate::ExitCause::Announced), told apart from a crash or a
/// kill. A cluster worker calls [`Worker::fatal`] instead, which also waits for its
/// replacement.
///
/// ```no_run
/// # async fn demo() -> ipc_cluster::Result<()> {
/// let mut parent = ipc_uds::connect(&ipc_core::env::endpoint_from_env()?, &ipc_core::Options::from_env()).await?;
/// ipc_cluster::worker::announce_exit(&mut parent, "the database is gone").await?;
/// std::process::exit(1);
/// # }
/// ```
pub async fn announce_exit<C: Channel + ?Sized>(
    channel: &mut C,
    error: impl std::fmt::Display,
) -> Result<()> {
    let fatal = Ctl::Fatal {
        error: error.to_string(),
    };
    channel.send(fatal.encode()).await?;
    Ok(())
}

/// This worker's index (from `IPC_WORKER_INDEX`, else `NODE_APP_INSTANCE`), if it has one.
///
/// ```
/// if std::env::var_os("IPC_WORKER_INDEX").is_none() && std::env::var_os("NODE_APP_INSTANCE").is_none() {
///     assert_eq!(ipc_cluster::worker::index(), None);
/// }
/// ```
pub fn index() -> Option<usize> {
    [IPC_WORKER_INDEX, NODE_APP_INSTANCE]
        .iter()
        .find_map(|var| std::env::var(var).ok()?.parse().ok())
}

/// One frame to write (`None`: close the channel), and who waits for it to be written.
type Outgoing = (Option<Bytes>, Option<oneshot::Sender<Result<()>>>);

/// Where the connections come from, as the primary said.
#[derive(Debug)]
enum ListenSpec {
    Shared(OwnedFd),
    ReusePort(String),
    Handed(mpsc::UnboundedReceiver<TcpStream>),
}

/// State shared between the worker's handle and its reader task.
#[derive(Debug, Default)]
struct Shared {
    /// The `listen` instruction, until the listener is made.
    listen: Mutex<Option<ListenSpec>>,
    /// Handed connections go here (round-robin), while the listener takes them.
    handed: Mutex<Option<mpsc::UnboundedSender<TcpStream>>>,
    /// Requests waiting for their response, by id.
    pending: Mutex<HashMap<u64, oneshot::Sender<Envelope>>>,
}

/// The worker's end of its cluster's control channel; see the [module docs](self).
#[derive(Debug)]
pub struct Worker {
    index: usize,
    out: mpsc::UnboundedSender<Outgoing>,
    shared: Arc<Shared>,
    listen_set: watch::Receiver<bool>,
    stop: watch::Receiver<bool>,
    release: watch::Receiver<bool>,
    members: watch::Receiver<Members>,
    /// The announcements [`Worker::members_changed`] has returned so far.
    members_seen: tokio::sync::Mutex<watch::Receiver<Members>>,
    inbox: tokio::sync::Mutex<mpsc::UnboundedReceiver<Envelope>>,
    next_request: AtomicU64,
    writer: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// The processes of a cluster, as the primary last announced them.
///
/// ```
/// let members = ipc_cluster::worker::Members::default();
/// assert!(members.workers.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Members {
    /// The workers' pids.
    pub workers: Vec<u32>,
    /// The agent's pid, if there is one.
    pub agent: Option<u32>,
}

impl Worker {
    /// Open the control channel the primary gave this process (`IPC_ENDPOINT`, fd 3)
    /// and start reading it. Must be called within a tokio runtime, once. Fails with
    /// [`Error::Connect`] when this process was not started by a
    /// cluster or supervisor, or the channel cannot be opened.
    pub async fn connect() -> Result<Worker> {
        let endpoint = ipc_core::env::endpoint_from_env().map_err(ipc_core::ConnectError::from)?;
        let options = ipc_core::Options::from_env();
        let channel = ipc_uds::connect(&endpoint, &options).await?;
        let (tx, mut rx) = channel.into_split();
        let (out, queue) = mpsc::unbounded_channel();
        let writer = tokio::spawn(write_loop(tx, queue));
        let shared = Arc::new(Shared::default());
        let (listen_tx, listen_set) = watch::channel(false);
        let (stop_tx, stop) = watch::channel(false);
        let (release_tx, release) = watch::channel(false);
        let (members_tx, members) = watch::channel(Members::default());
        let (inbox_tx, inbox) = mpsc::unbounded_channel();
        let reader_shared = shared.clone();
        let reader_out = out.clone();
        tokio::spawn(async move {
            let senders = ReaderSenders {
                listen: listen_tx,
                stop: stop_tx,
                release: release_tx,
                members: members_tx,
                inbox: inbox_tx,
                out: reader_out,
            };
            loop {
                match rx.recv_with_fds().await {
                    Ok(Some((frame, fds))) => on_frame(&reader_shared, &senders, &frame, fds),
                    Ok(None) => break,
                    Err(e) if e.is_rejected() => tracing::warn!("control channel: {e}"),
                    Err(e) => {
                        tracing::debug!("control channel ended: {e}");
                        break;
                    }
                }
            }
            // The primary is gone or closed: nothing more to serve for it.
            let _ = senders.stop.send(true);
            let _ = senders.release.send(true);
        });
        Ok(Worker {
            index: index().unwrap_or(0),
            out,
            shared,
            listen_set,
            stop,
            release,
            members_seen: tokio::sync::Mutex::new(members.clone()),
            members,
            inbox: tokio::sync::Mutex::new(inbox),
            next_request: AtomicU64::new(1),
            writer: Mutex::new(Some(writer)),
        })
    }

    /// This worker's index in the cluster (0-based).
    pub fn index(&self) -> usize {
        self.index
    }

    async fn send_ctl(&self, ctl: &Ctl) -> Result<()> {
        let (done, written) = oneshot::channel();
        self.out
            .send((Some(ctl.encode()), Some(done)))
            .map_err(|_| closed())?;
        written.await.map_err(|_| closed())?
    }

    /// Tell the primary this worker is ready (after it got its listener).
    pub async fn ready(&self) -> Result<()> {
        self.send_ctl(&Ctl::Ready).await
    }

    /// Wait for the primary's `listen` instruction and make the listener from it.
    pub async fn listener(&self) -> Result<WorkerListener> {
        let mut set = self.listen_set.clone();
        set.wait_for(|set| *set)
            .await
            .map_err(|_| Error::Protocol("the control channel ended before `listen`".into()))?;
        let spec = self
            .shared
            .listen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or_else(|| Error::State("the listener was already taken".into()))?;
        let source = match spec {
            ListenSpec::Shared(fd) => {
                let std = std::net::TcpListener::from(fd);
                std.set_nonblocking(true)?;
                Source::Listener(tokio::net::TcpListener::from_std(std)?)
            }
            ListenSpec::ReusePort(addr) => Source::ReusePort(bind_reuseport(&addr)?),
            ListenSpec::Handed(rx) => Source::Handed(rx),
        };
        Ok(WorkerListener {
            source: Some(source),
            stop: self.stop.clone(),
            out: self.out.clone(),
            accepted: 0,
            drained: 0,
        })
    }

    /// Resolves once the primary asked this worker to stop taking connections (a
    /// drain, a reload, a shutdown) or went away.
    pub async fn stopping(&self) {
        let mut stop = self.stop.clone();
        let _ = stop.wait_for(|s| *s).await;
    }

    /// Report a fatal error (Node's "suicide" pattern): the primary starts this
    /// worker's replacement and returns here once the replacement is ready (or the
    /// primary is gone); then stop taking connections, finish, and exit.
    pub async fn fatal(&self, error: impl std::fmt::Display) -> Result<()> {
        self.send_ctl(&Ctl::Fatal {
            error: error.to_string(),
        })
        .await?;
        let mut release = self.release.clone();
        let _ = release.wait_for(|r| *r).await;
        Ok(())
    }

    /// Send a message through the primary (see [`messenger`](crate::messenger)).
    ///
    /// ```no_run
    /// # async fn demo(worker: ipc_cluster::Worker) -> ipc_cluster::Result<()> {
    /// use ipc_cluster::messenger::To;
    /// worker.send(To::Primary, "request-served", serde_json::json!({"n": 1})).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send(&self, to: To, action: &str, data: serde_json::Value) -> Result<()> {
        self.send_ctl(&Ctl::Msg(Envelope::new(to, action, data)))
            .await
    }

    /// Send a request through the primary and wait for its response's data.
    pub async fn request(
        &self,
        to: To,
        action: &str,
        data: serde_json::Value,
    ) -> Result<serde_json::Value> {
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        let mut envelope = Envelope::new(to, action, data);
        envelope.request = Some(id);
        self.send_ctl(&Ctl::Msg(envelope)).await?;
        let response = rx.await.map_err(|_| closed())?;
        Ok(response.data)
    }

    /// Answer `request` (a message that carries a request id) with `data`.
    pub async fn respond(&self, request: &Envelope, data: serde_json::Value) -> Result<()> {
        let mut envelope = Envelope::new(To::Pid(request.from), &request.action, data);
        envelope.response = request.request;
        self.send_ctl(&Ctl::Msg(envelope)).await
    }

    /// The next message routed to this process; `None` once the primary is gone.
    pub async fn recv(&self) -> Option<Envelope> {
        self.inbox.lock().await.recv().await
    }

    /// The cluster's members as last announced; wait for a change with
    /// [`members_changed`](Self::members_changed).
    pub fn members(&self) -> Members {
        self.members.borrow().clone()
    }

    /// Wait until the members differ from those this call returned last time (the
    /// first call: from none; it returns at once if the primary announced them
    /// already), and return them. Once the primary is gone it returns at once, with
    /// the last members known ([`stopping`](Self::stopping) has resolved by then).
    ///
    /// ```no_run
    /// # async fn demo(worker: ipc_cluster::Worker) {
    /// loop {
    ///     let members = worker.members_changed().await;
    ///     println!("workers now: {:?}", members.workers);
    /// }
    /// # }
    /// ```
    pub async fn members_changed(&self) -> Members {
        let mut seen = self.members_seen.lock().await;
        let _ = seen.changed().await;
        let now = seen.borrow_and_update().clone();
        now
    }

    /// Close the control channel cleanly once everything sent before is written: the
    /// primary reads every message, then the end.
    pub async fn close(self) -> Result<()> {
        let (done, closed) = oneshot::channel();
        if self.out.send((None, Some(done))).is_ok() {
            if let Ok(result) = closed.await {
                result?;
            }
        }
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(writer) = writer {
            let _ = writer.await;
        }
        Ok(())
    }
}

fn closed() -> Error {
    Error::State("the control channel to the primary is closed".into())
}

/// The senders the reader task fills.
struct ReaderSenders {
    listen: watch::Sender<bool>,
    stop: watch::Sender<bool>,
    release: watch::Sender<bool>,
    members: watch::Sender<Members>,
    inbox: mpsc::UnboundedSender<Envelope>,
    out: mpsc::UnboundedSender<Outgoing>,
}

fn on_frame(shared: &Shared, senders: &ReaderSenders, frame: &[u8], mut fds: Vec<OwnedFd>) {
    let Some(ctl) = Ctl::decode(frame) else {
        tracing::debug!("a frame that is no control message, ignored");
        return;
    };
    let ack = |seq, taken| {
        let _ = senders
            .out
            .send((Some(Ctl::Ack { seq, taken }.encode()), None));
    };
    match ctl {
        Ctl::Listen { seq, mode, addr } => {
            let spec = match mode {
                Mode::Shared => match fds.pop() {
                    Some(fd) => ListenSpec::Shared(fd),
                    None => {
                        tracing::error!("`listen` in shared mode came without the socket");
                        ack(seq, false);
                        return;
                    }
                },
                Mode::ReusePort => ListenSpec::ReusePort(addr),
                Mode::RoundRobin => {
                    let (tx, rx) = mpsc::unbounded_channel();
                    *shared.handed.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
                    ListenSpec::Handed(rx)
                }
            };
            *shared.listen.lock().unwrap_or_else(|e| e.into_inner()) = Some(spec);
            let _ = senders.listen.send(true);
            ack(seq, true);
        }
        Ctl::Conn { seq } => {
            let taken = match (fds.pop(), *senders.stop.borrow()) {
                (Some(fd), false) => {
                    let handed = shared.handed.lock().unwrap_or_else(|e| e.into_inner());
                    let stream = std::net::TcpStream::from(fd);
                    match (handed.as_ref(), stream.set_nonblocking(true)) {
                        (Some(tx), Ok(())) => match TcpStream::from_std(stream) {
                            Ok(stream) => tx.send(stream).is_ok(),
                            Err(_) => false,
                        },
                        _ => false,
                    }
                }
                // Draining, or no fd: the primary gives it to another worker.
                _ => false,
            };
            ack(seq, taken);
        }
        Ctl::Drain | Ctl::Shutdown => {
            let _ = senders.stop.send(true);
        }
        Ctl::Release => {
            // The replacement serves: this worker stops taking connections and leaves.
            let _ = senders.release.send(true);
            let _ = senders.stop.send(true);
        }
        Ctl::Members { workers, agent } => {
            // The primary announces after every start and exit; only a change wakes
            // `members_changed`.
            let announced = Members { workers, agent };
            senders.members.send_if_modified(|members| {
                let changed = *members != announced;
                *members = announced;
                changed
            });
        }
        Ctl::Msg(envelope) => {
            if let Some(id) = envelope.response {
                let waiter = shared
                    .pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
                if let Some(waiter) = waiter {
                    let _ = waiter.send(envelope);
                    return;
                }
            }
            let _ = senders.inbox.send(envelope);
        }
        other => tracing::debug!(?other, "control message not meant for a worker"),
    }
}

async fn write_loop(mut tx: UdsSender, mut queue: mpsc::UnboundedReceiver<Outgoing>) {
    while let Some((frame, done)) = queue.recv().await {
        let Some(frame) = frame else {
            // Asked to close: everything queued before is written; the goodbye follows.
            let result = tx.close().await.map_err(Error::from);
            if let Some(done) = done {
                let _ = done.send(result);
            }
            return;
        };
        let result = tx.send(frame).await.map_err(Error::from);
        if let Some(done) = done {
            let _ = done.send(result);
        }
    }
    // Every handle is gone: end the conversation cleanly.
    let _ = tx.close().await;
}

/// Bind `addr` with `SO_REUSEPORT` (and `SO_REUSEADDR`) and listen.
pub(crate) fn bind_reuseport(addr: &str) -> Result<tokio::net::TcpListener> {
    let addr: std::net::SocketAddr = addr
        .parse()
        .map_err(|e| Error::Protocol(format!("bad address {addr:?} in `listen`: {e}")))?;
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    Ok(socket.listen(1024)?)
}

/// Where a [`WorkerListener`] gets its connections.
#[derive(Debug)]
enum Source {
    /// The listening socket the primary shares with every worker.
    Listener(tokio::net::TcpListener),
    /// This worker's own `SO_REUSEPORT` socket.
    ReusePort(tokio::net::TcpListener),
    /// This worker's `SO_REUSEPORT` socket after the stop: the connections already
    /// in its accept queue are taken (the kernel hashed them to this socket, and
    /// closing it would reset them unless `net.ipv4.tcp_migrate_req` is 1), then it
    /// is closed.
    Draining(std::net::TcpListener),
    /// Connections the primary hands over (round-robin).
    Handed(mpsc::UnboundedReceiver<TcpStream>),
}

/// The most connections a stopping worker takes from its reuseport socket's accept
/// queue before it closes the socket (the queue's own limit, the `listen` backlog).
const DRAIN_AT_MOST: u64 = 1024;

/// The connections of a cluster worker, whatever the cluster's mode: `accept` yields
/// `tokio::net::TcpStream`s until the primary asks the worker to stop taking
/// connections (then `None`).
///
/// ```no_run
/// # async fn demo(worker: ipc_cluster::Worker) -> ipc_cluster::Result<()> {
/// let mut listener = worker.listener().await?;
/// while let Some(stream) = listener.accept().await {
///     let stream = stream?;
///     println!("connection from {:?}", stream.peer_addr());
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct WorkerListener {
    source: Option<Source>,
    stop: watch::Receiver<bool>,
    out: mpsc::UnboundedSender<Outgoing>,
    accepted: u64,
    /// Connections taken from the accept queue after the stop (reuseport).
    drained: u64,
}

impl WorkerListener {
    /// The next connection; `None` once the primary asked this worker to stop taking
    /// connections (connections already handed to it, or already queued on its own
    /// reuseport socket, are yielded first). Closing the listener then is this
    /// worker's part; the primary's socket keeps the others'.
    pub async fn accept(&mut self) -> Option<std::io::Result<TcpStream>> {
        let stream = loop {
            if *self.stop.borrow() {
                match self.source.take() {
                    // Handed connections that arrived before the stop are ours to serve.
                    Some(Source::Handed(mut rx)) => {
                        if let Ok(stream) = rx.try_recv() {
                            self.source = Some(Source::Handed(rx));
                            break Ok(stream);
                        }
                    }
                    // So are those queued on our reuseport socket: take them, then
                    // close it.
                    Some(Source::ReusePort(listener)) => {
                        if let Ok(listener) = listener.into_std() {
                            self.source = Some(Source::Draining(listener));
                            continue;
                        }
                    }
                    Some(Source::Draining(listener)) if self.drained < DRAIN_AT_MOST => {
                        if let Ok((stream, _)) = listener.accept() {
                            self.drained += 1;
                            self.source = Some(Source::Draining(listener));
                            break stream
                                .set_nonblocking(true)
                                .and_then(|()| TcpStream::from_std(stream));
                        }
                    }
                    _ => {}
                }
                // Dropped: closed.
                return None;
            }
            let source = self.source.as_mut()?;
            let mut stop = self.stop.clone();
            tokio::select! {
                biased;
                got = accept_from(source) => match got {
                    Some(got) => break got,
                    None => {
                        self.source = None;
                        return None;
                    }
                },
                _ = stop.wait_for(|s| *s) => continue,
            }
        };
        if stream.is_ok() {
            self.accepted += 1;
            let report = Ctl::Accepted {
                total: self.accepted,
            };
            let _ = self.out.send((Some(report.encode()), None));
        }
        Some(stream)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted
    }
}

async fn accept_from(source: &mut Source) -> Option<std::io::Result<TcpStream>> {
    match source {
        Source::Listener(listener) | Source::ReusePort(listener) => {
            Some(listener.accept().await.map(|(s, _)| s))
        }
        // Only after the stop, which `accept` checks first.
        Source::Draining(_) => None,
        Source::Handed(rx) => rx.recv().await.map(Ok),
    }
}
