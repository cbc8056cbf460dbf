//! [`Cluster`]: N workers sharing one listening port (Node's `cluster`, for any worker
//! binary that uses [`Worker`](crate::Worker)), with replacement of dead workers, the
//! "suicide" pattern, rolling reload and graceful shutdown.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::config::{Config, ControlChannel};
use crate::error::{Error, Result};
use crate::events::{ExitCause, ExitStatus};
use crate::launch::{launch, ControlSender};
use crate::messenger::{Envelope, To};
use crate::policy::{Decision, RestartState};
use crate::process::{self, Inbound};
use crate::protocol::{Ctl, Mode};
use crate::worker::{IPC_WORKER_INDEX, NODE_APP_INSTANCE};

/// Makes the command of worker `index` (a fresh `Command` for each start).
pub type WorkerFactory = Arc<dyn Fn(usize) -> Command + Send + Sync>;

/// How a cluster runs.
///
/// ```
/// use std::time::Duration;
/// use ipc_cluster::{ClusterConfig, Mode};
/// let config = ClusterConfig::builder()
///     .workers(4)
///     .mode(Mode::RoundRobin)
///     .addr("127.0.0.1:8080".parse().unwrap())
///     .drain_timeout(Duration::from_secs(5))
///     .build();
/// assert_eq!(config.workers, 4);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClusterConfig {
    /// Number of workers (default: the CPUs this process may run on).
    pub workers: usize,
    /// How connections reach the workers (default [`Mode::Shared`]).
    pub mode: Mode,
    /// Where to listen (default `127.0.0.1:0`, a free port; see [`Cluster::local_addr`]).
    pub addr: SocketAddr,
    /// Per-worker supervision: restart policy, crash-loop limit, backoff,
    /// `listen_timeout` (ready), `kill_timeout`. `wait_ready` and `control` are set
    /// by the cluster (the ready message, over uds).
    pub supervise: Config,
    /// How long a draining worker may take to finish its connections before SIGKILL
    /// (default 10 s).
    pub drain_timeout: Duration,
    /// Take a socket passed by systemd socket activation (`LISTEN_FDS`) instead of
    /// binding, when there is one (default true).
    pub socket_activation: bool,
    /// How long after the agent died (once started) it is started again (1 s, as
    /// egg-cluster does).
    pub agent_restart_delay: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            mode: Mode::Shared,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            supervise: Config::default(),
            drain_timeout: Duration::from_secs(10),
            socket_activation: true,
            agent_restart_delay: Duration::from_secs(1),
        }
    }
}

impl ClusterConfig {
    /// A builder starting from the defaults.
    ///
    /// ```
    /// let config = ipc_cluster::ClusterConfig::builder().workers(2).build();
    /// assert_eq!(config.workers, 2);
    /// ```
    pub fn builder() -> ClusterConfigBuilder {
        ClusterConfigBuilder {
            config: ClusterConfig::default(),
        }
    }
}

/// Builds a [`ClusterConfig`].
///
/// ```
/// let config = ipc_cluster::ClusterConfig::builder().mode(ipc_cluster::Mode::ReusePort).build();
/// assert_eq!(config.mode, ipc_cluster::Mode::ReusePort);
/// ```
#[derive(Debug, Clone)]
pub struct ClusterConfigBuilder {
    config: ClusterConfig,
}

impl ClusterConfigBuilder {
    /// Number of workers (at least 1).
    pub fn workers(mut self, n: usize) -> Self {
        self.config.workers = n.max(1);
        self
    }
    /// How connections reach the workers.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.config.mode = mode;
        self
    }
    /// Where to listen.
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.config.addr = addr;
        self
    }
    /// Per-worker supervision settings.
    pub fn supervise(mut self, config: Config) -> Self {
        self.config.supervise = config;
        self
    }
    /// How long a draining worker may take.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.config.drain_timeout = timeout;
        self
    }
    /// Whether to take a socket-activated listener.
    pub fn socket_activation(mut self, on: bool) -> Self {
        self.config.socket_activation = on;
        self
    }
    /// How long after the agent died it is started again.
    pub fn agent_restart_delay(mut self, delay: Duration) -> Self {
        self.config.agent_restart_delay = delay;
        self
    }
    /// The finished config.
    pub fn build(self) -> ClusterConfig {
        self.config
    }
}

/// One thing that happened in a cluster.
///
/// ```no_run
/// # async fn demo(mut cluster: ipc_cluster::Cluster) {
/// use ipc_cluster::ClusterEvent;
/// while let Some(event) = cluster.next_event().await {
///     if let ClusterEvent::Message(msg) = event {
///         println!("worker {} says {}: {}", msg.from, msg.action, msg.data);
///     }
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum ClusterEvent {
    /// A worker process is starting.
    Starting {
        /// Its index.
        index: usize,
        /// Its pid.
        pid: u32,
    },
    /// A worker is ready and gets connections.
    Ready {
        /// Its index.
        index: usize,
        /// Its pid.
        pid: u32,
    },
    /// A worker exited.
    Exited {
        /// Its index.
        index: usize,
        /// Its pid.
        pid: u32,
        /// Exit code or signal.
        status: ExitStatus,
        /// Why.
        cause: ExitCause,
    },
    /// A worker reported a fatal error ([`Worker::fatal`](crate::Worker::fatal)): its
    /// replacement is started, and it leaves once that one is ready.
    Fatal {
        /// Its index.
        index: usize,
        /// Its pid.
        pid: u32,
        /// The error it reported.
        error: String,
    },
    /// A worker will be started again after `delay`.
    Restarting {
        /// Its index.
        index: usize,
        /// The wait before the start.
        delay: Duration,
    },
    /// A worker had too many unstable restarts and is not started again.
    Errored {
        /// Its index.
        index: usize,
    },
    /// A message addressed to the primary.
    Message(Envelope),
    /// The agent is ready.
    AgentReady {
        /// Its pid.
        pid: u32,
    },
    /// The agent exited.
    AgentExited {
        /// Its pid.
        pid: u32,
        /// Exit code or signal.
        status: ExitStatus,
        /// Why.
        cause: ExitCause,
    },
    /// The agent will be started again after `delay`.
    AgentRestarting {
        /// The wait before the start.
        delay: Duration,
    },
}

/// What the primary knows about one worker.
///
/// ```no_run
/// # async fn demo(cluster: ipc_cluster::Cluster) -> ipc_cluster::Result<()> {
/// for w in cluster.workers().await? {
///     println!("worker {} (pid {}): {} connections", w.index, w.pid, w.connections);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerInfo {
    /// Its index.
    pub index: usize,
    /// Its pid.
    pub pid: u32,
    /// Ready and taking connections.
    pub ready: bool,
    /// Connections it took so far (handed by the primary in round-robin mode, as the
    /// worker reports in the others).
    pub connections: u64,
}

/// A primary running N workers that share one listening port; see the
/// [crate docs](crate) for the modes and the guarantees.
///
/// ```no_run
/// # async fn demo() -> ipc_cluster::Result<()> {
/// use ipc_cluster::{Cluster, ClusterConfig, Mode};
/// let config = ClusterConfig::builder().workers(4).mode(Mode::RoundRobin).build();
/// let exe = std::env::current_exe()?;
/// let cluster = Cluster::start(config, move |_index| std::process::Command::new(&exe)).await?;
/// println!("listening on {}", cluster.local_addr());
/// cluster.run_until_signal().await // SIGINT/SIGTERM: drain, stop the workers
/// # }
/// ```
#[derive(Debug)]
pub struct Cluster {
    cmds: mpsc::UnboundedSender<Input>,
    events: mpsc::UnboundedReceiver<ClusterEvent>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

/// Commands from the handle and helper tasks.
enum Cmd {
    Spawn {
        index: usize,
        /// The reload's old worker this start replaces.
        replacing: Option<u64>,
        reply: oneshot::Sender<Result<u64>>,
    },
    SpawnAgent(oneshot::Sender<Result<u64>>),
    Agent(oneshot::Sender<Option<u32>>),
    Retire {
        id: u64,
        reply: oneshot::Sender<()>,
    },
    Info(oneshot::Sender<Vec<(u64, WorkerInfo)>>),
    Reload(oneshot::Sender<Result<()>>),
    ReloadDone,
    Shutdown(oneshot::Sender<()>),
    Send(Envelope),
}

/// Everything the cluster's task reacts to.
enum Input {
    Worker(u64, Inbound),
    Exited {
        id: u64,
        status: ExitStatus,
        killed: bool,
    },
    Conn(std::net::TcpStream),
    Handoff(u64, Handoff),
    ReadyTimeout(u64),
    RestartDue(usize),
    AgentRestartDue,
    Cmd(Cmd),
}

/// How handing one fd to a worker ended.
enum Handoff {
    Taken,
    /// The worker said no (it is stopping): the fd comes back.
    Refused(OwnedFd),
    /// The channel died before the acknowledgement: the fd comes back.
    Failed(OwnedFd),
}

/// One frame for a worker's writer; with an fd, the writer waits for its
/// acknowledgement before writing anything else.
struct Outgoing {
    frame: Bytes,
    fd: Option<OwnedFd>,
    /// Report the hand-off to the cluster's task (connections), or not (the listener).
    report: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Starting,
    Ready,
    /// Reported a fatal error; its replacement is on its way.
    Fatal,
    /// Asked to drain (reload, shutdown) or to exit (released after a fatal error,
    /// not ready in time): it goes away.
    Leaving(ExitCause),
}

struct Slot {
    /// The agent (not a worker: no connections, no index).
    agent: bool,
    index: usize,
    pid: u32,
    out: mpsc::UnboundedSender<Outgoing>,
    state: State,
    connections: u64,
    started: Instant,
    stop: Option<oneshot::Sender<Duration>>,
    /// The worker this one replaces once ready (a fatal error's replacement).
    replaces: Option<u64>,
    /// Someone waits for this worker to be ready.
    ready_reply: Option<oneshot::Sender<Result<u64>>>,
    /// Someone waits for this worker to be gone.
    gone_reply: Option<oneshot::Sender<()>>,
    /// The task that owns the worker's `Child`.
    lifecycle: tokio::task::AbortHandle,
}

impl Drop for Slot {
    fn drop(&mut self) {
        // A slot goes away once its process exited, or when the cluster is dropped:
        // then the `Child` goes with the task, which kills its group.
        self.lifecycle.abort();
    }
}

impl Cluster {
    /// Bind (or take the socket-activated listener), start the workers and return
    /// once every one of them is ready. A worker that is not ready within the
    /// supervision's `listen_timeout` fails the start, and every worker is stopped.
    /// Must be called within a tokio runtime.
    pub async fn start(
        config: ClusterConfig,
        command: impl Fn(usize) -> Command + Send + Sync + 'static,
    ) -> Result<Cluster> {
        Self::start_with(config, Arc::new(command)).await
    }

    /// [`start`](Self::start) with a shared factory.
    pub async fn start_with(config: ClusterConfig, command: WorkerFactory) -> Result<Cluster> {
        Self::start_inner(config, command, None).await
    }

    /// Start the agent (egg-cluster's), wait until it is ready, then start the
    /// workers as [`start`](Self::start) does. The agent uses [`Worker`](crate::Worker)
    /// too (`connect`, `ready`, `recv`, `send`, ...) but gets no connections. If it
    /// fails before it is ready the cluster does not start
    /// ([`Error::AgentFailed`]); if it dies later it is started again after
    /// `agent_restart_delay`.
    ///
    /// ```no_run
    /// # async fn demo() -> ipc_cluster::Result<()> {
    /// use std::process::Command;
    /// let cluster = ipc_cluster::Cluster::start_with_agent(
    ///     Default::default(),
    ///     || Command::new("./agent"),
    ///     |_index| Command::new("./worker"),
    /// ).await?;
    /// # drop(cluster); Ok(()) }
    /// ```
    pub async fn start_with_agent(
        config: ClusterConfig,
        agent: impl Fn() -> Command + Send + Sync + 'static,
        command: impl Fn(usize) -> Command + Send + Sync + 'static,
    ) -> Result<Cluster> {
        let agent: crate::CommandFactory = Arc::new(agent);
        Self::start_inner(config, Arc::new(command), Some(agent)).await
    }

    async fn start_inner(
        config: ClusterConfig,
        command: WorkerFactory,
        agent: Option<crate::CommandFactory>,
    ) -> Result<Cluster> {
        let (listener, hold, addr, mode) = bind(&config)?;
        let (inputs, inbox) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::unbounded_channel();
        if mode == Mode::RoundRobin {
            if let Some(listener) = &listener {
                spawn_acceptor(listener.try_clone()?, inputs.clone())?;
            }
        }
        let actor = Actor {
            workers_wanted: config.workers,
            config: ClusterConfig { mode, ..config },
            command,
            agent: agent.clone(),
            listener,
            _hold: hold,
            addr,
            slots: BTreeMap::new(),
            next_id: 1,
            next_seq: 1,
            restarts: HashMap::new(),
            inputs: inputs.clone(),
            events: events_tx,
            free: VecDeque::new(),
            queued: VecDeque::new(),
            reloading: false,
            shutdown: None,
            pending_replaces: HashMap::new(),
            reload_step: None,
            told_systemd: false,
        };
        let task = tokio::spawn(actor.run(inbox));
        let cluster = Cluster {
            cmds: inputs,
            events,
            addr,
            task,
        };
        if agent.is_some() {
            let (reply, ready) = oneshot::channel();
            cluster.cmd(Cmd::SpawnAgent(reply))?;
            let outcome = ready.await.unwrap_or_else(|_| Err(gone()));
            if let Err(e) = outcome {
                cluster.shutdown().await;
                return Err(Error::AgentFailed(e.to_string()));
            }
        }
        let mut starts = Vec::new();
        for index in 0..cluster_size(&cluster, config.workers) {
            let (reply, ready) = oneshot::channel();
            cluster.cmd(Cmd::Spawn {
                index,
                replacing: None,
                reply,
            })?;
            starts.push(ready);
        }
        let mut failure = None;
        for ready in starts {
            match ready.await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => failure = failure.or(Some(e)),
                Err(_) => failure = failure.or(Some(gone())),
            }
        }
        if let Some(e) = failure {
            cluster.shutdown().await;
            return Err(e);
        }
        Ok(cluster)
    }

    fn cmd(&self, cmd: Cmd) -> Result<()> {
        self.cmds.send(Input::Cmd(cmd)).map_err(|_| gone())
    }

    /// The address the workers serve (the port chosen when `addr` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The next event; `None` once the cluster has stopped and every event was read.
    pub async fn next_event(&mut self) -> Option<ClusterEvent> {
        self.events.recv().await
    }

    /// The live workers, by index.
    pub async fn workers(&self) -> Result<Vec<WorkerInfo>> {
        let (reply, info) = oneshot::channel();
        self.cmd(Cmd::Info(reply))?;
        let mut workers: Vec<WorkerInfo> = info
            .await
            .map_err(|_| gone())?
            .into_iter()
            .map(|(_, w)| w)
            .collect();
        workers.sort_by_key(|w| (w.index, w.pid));
        Ok(workers)
    }

    /// Rolling reload with zero downtime: for each worker in turn, start its
    /// replacement and wait until it is ready; only then does the old worker stop
    /// taking connections, finish its open ones (within `drain_timeout`) and exit. A
    /// replacement that is not ready within `listen_timeout` aborts the reload and the
    /// old worker keeps serving (never a forced cut-over). One reload at a time: a
    /// second one while the first runs is refused.
    pub async fn reload(&self) -> Result<()> {
        let (reply, done) = oneshot::channel();
        self.cmd(Cmd::Reload(reply))?;
        done.await.map_err(|_| gone())?
    }

    /// The agent's pid, when there is one and it runs.
    pub async fn agent(&self) -> Result<Option<u32>> {
        let (reply, pid) = oneshot::channel();
        self.cmd(Cmd::Agent(reply))?;
        pid.await.map_err(|_| gone())
    }

    /// Send a message from the primary (see [`messenger`](crate::messenger)).
    pub fn send(&self, to: To, action: &str, data: serde_json::Value) -> Result<()> {
        self.cmd(Cmd::Send(Envelope::new(to, action, data)))
    }

    /// Graceful shutdown: stop accepting, let every worker finish its open
    /// connections (within `drain_timeout`, then SIGKILL), and return once all are gone.
    pub async fn shutdown(mut self) {
        let (reply, done) = oneshot::channel();
        if self.cmd(Cmd::Shutdown(reply)).is_ok() {
            let _ = done.await;
        }
        let _ = (&mut self.task).await;
    }

    /// Run until SIGINT or SIGTERM, then [`shutdown`](Self::shutdown). Events that
    /// are not read are dropped.
    pub async fn run_until_signal(self) -> Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let mut this = self;
        loop {
            tokio::select! {
                _ = int.recv() => break,
                _ = term.recv() => break,
                event = this.events.recv() => if event.is_none() { break },
            }
        }
        tracing::info!("signal received: shutting the cluster down");
        this.shutdown().await;
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Dropping the task drops every worker's slot, whose `Child` is killed with its
        // group.
        self.task.abort();
    }
}

fn cluster_size(_cluster: &Cluster, wanted: usize) -> usize {
    wanted.max(1)
}

fn gone() -> Error {
    Error::State("the cluster has stopped".into())
}

/// The primary's listening socket (shared, rr), a port-holding socket (reuseport),
/// the address, and the mode in effect.
type Bound = (
    Option<std::net::TcpListener>,
    Option<tokio::net::TcpSocket>,
    SocketAddr,
    Mode,
);

fn bind(config: &ClusterConfig) -> Result<Bound> {
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
            return Ok((Some(listener), None, addr, mode));
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
            Ok((Some(listener), None, addr, config.mode))
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
            Ok((None, Some(socket), addr, Mode::ReusePort))
        }
    }
}

/// Accept connections (round-robin mode) and pass them to the cluster's task.
fn spawn_acceptor(
    listener: std::net::TcpListener,
    inputs: mpsc::UnboundedSender<Input>,
) -> Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
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
    Ok(())
}

/// Write `queue` to the worker; after a frame with an fd, wait for its
/// acknowledgement (from `acks`) before writing anything else.
async fn write_loop(
    id: u64,
    mut tx: ControlSender,
    mut queue: mpsc::UnboundedReceiver<Outgoing>,
    mut acks: mpsc::UnboundedReceiver<(u64, bool)>,
    inputs: mpsc::UnboundedSender<Input>,
) {
    let mut broken = false;
    while let Some(Outgoing { frame, fd, report }) = queue.recv().await {
        let outcome = match fd {
            None => {
                if !broken && tx.send(frame, None).await.is_err() {
                    broken = true;
                }
                continue;
            }
            Some(fd) if broken => Handoff::Failed(fd),
            Some(fd) => match tx.send(frame, Some(fd.as_fd())).await {
                Err(e) => {
                    tracing::debug!(id, "handing an fd: {e}");
                    broken = true;
                    Handoff::Failed(fd)
                }
                Ok(()) => match acks.recv().await {
                    Some((_, true)) => Handoff::Taken,
                    Some((_, false)) => Handoff::Refused(fd),
                    None => {
                        broken = true;
                        Handoff::Failed(fd)
                    }
                },
            },
        };
        if report {
            let _ = inputs.send(Input::Handoff(id, outcome));
        }
        // Otherwise the fd (ours, a duplicate) is closed here.
    }
    let _ = tx.close().await;
}

/// One step of a rolling reload, as the cluster's task sees it.
#[derive(Clone, Copy)]
struct ReloadStep {
    old: u64,
    new: u64,
    /// The old worker died while `new` was starting: `new` took its index over.
    old_died: bool,
    /// The old worker reported a fatal error while `new` was starting: `new` is its
    /// replacement.
    old_fatal: bool,
}

struct Actor {
    config: ClusterConfig,
    workers_wanted: usize,
    command: WorkerFactory,
    agent: Option<crate::CommandFactory>,
    listener: Option<std::net::TcpListener>,
    _hold: Option<tokio::net::TcpSocket>,
    addr: SocketAddr,
    slots: BTreeMap<u64, Slot>,
    next_id: u64,
    next_seq: u64,
    restarts: HashMap<usize, RestartState>,
    inputs: mpsc::UnboundedSender<Input>,
    events: mpsc::UnboundedSender<ClusterEvent>,
    /// Round-robin: ready workers with no hand-off in flight, in turn order.
    free: VecDeque<u64>,
    /// Round-robin: accepted connections waiting for a free worker.
    queued: VecDeque<std::net::TcpStream>,
    reloading: bool,
    shutdown: Option<Vec<oneshot::Sender<()>>>,
    /// Index -> the fatal worker its next start replaces.
    pending_replaces: HashMap<usize, u64>,
    /// The reload's current step: old worker `old` is being replaced by `new`.
    reload_step: Option<ReloadStep>,
    told_systemd: bool,
}

impl Actor {
    async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Input>) {
        while let Some(input) = inbox.recv().await {
            match input {
                Input::Worker(id, msg) => self.on_worker(id, msg),
                Input::Exited { id, status, killed } => self.on_exit(id, status, killed),
                Input::Conn(stream) => {
                    if self.shutdown.is_none() {
                        self.queued.push_back(stream);
                        self.dispatch();
                    }
                }
                Input::Handoff(id, outcome) => self.on_handoff(id, outcome),
                Input::ReadyTimeout(id) => self.on_ready_timeout(id),
                Input::RestartDue(index) => {
                    if self.shutdown.is_none() {
                        let replaces = self.pending_replaces.remove(&index);
                        if let Err(e) = self.spawn(index, None, replaces).await {
                            tracing::error!(index, "could not restart worker: {e}");
                            self.emit(ClusterEvent::Errored { index });
                        }
                    }
                }
                Input::AgentRestartDue => {
                    if self.shutdown.is_none() {
                        if let Err(e) = self.spawn_member(0, None, None, true).await {
                            tracing::error!("could not restart the agent: {e}");
                        }
                    }
                }
                Input::Cmd(cmd) => self.on_cmd(cmd).await,
            }
            if let Some(waiters) = &mut self.shutdown {
                if self.slots.is_empty() {
                    for waiter in waiters.drain(..) {
                        let _ = waiter.send(());
                    }
                    return;
                }
            }
        }
    }

    fn emit(&self, event: ClusterEvent) {
        match &event {
            // Logged where they are handled.
            ClusterEvent::Message(_) | ClusterEvent::Fatal { .. } => {}
            ClusterEvent::Exited { cause, .. } if *cause == ExitCause::Crashed => {
                tracing::warn!(?event, "cluster")
            }
            _ => tracing::info!(?event, "cluster"),
        }
        let _ = self.events.send(event);
    }

    /// Start worker `index`; `reply` gets its id once it is ready (or the failure).
    async fn spawn(
        &mut self,
        index: usize,
        reply: Option<oneshot::Sender<Result<u64>>>,
        replaces: Option<u64>,
    ) -> Result<u64> {
        self.spawn_member(index, reply, replaces, false).await
    }

    /// Start worker `index`, or the agent.
    async fn spawn_member(
        &mut self,
        index: usize,
        reply: Option<oneshot::Sender<Result<u64>>>,
        replaces: Option<u64>,
        agent: bool,
    ) -> Result<u64> {
        let command = match (&self.agent, agent) {
            (Some(factory), true) => {
                let mut command = factory();
                command
                    .env(crate::worker::IPC_CLUSTER_ROLE, "agent")
                    .env_remove(IPC_WORKER_INDEX)
                    .env_remove(NODE_APP_INSTANCE);
                command
            }
            _ => {
                let mut command = (self.command)(index);
                command
                    .env(crate::worker::IPC_CLUSTER_ROLE, "worker")
                    .env(IPC_WORKER_INDEX, index.to_string())
                    .env(NODE_APP_INSTANCE, index.to_string());
                command
            }
        };
        let launched = match launch(command, ControlChannel::Uds, false).await {
            Ok(launched) => launched,
            Err(e) => {
                if let Some(reply) = reply {
                    let _ = reply.send(Err(Error::State(format!(
                        "could not start worker {index}: {e}"
                    ))));
                }
                return Err(e);
            }
        };
        let crate::launch::Launched {
            mut child,
            tx,
            rx,
            started,
            ..
        } = launched;
        let id = self.next_id;
        self.next_id += 1;
        let pid = child.pid();
        let (Some(tx), Some(rx)) = (tx, rx) else {
            return Err(Error::State(
                "a cluster worker needs a control channel".into(),
            ));
        };
        // Reader: acknowledgements go to the writer, the rest to us.
        let (ack_tx, acks) = mpsc::unbounded_channel();
        let mut inbound = process::spawn_reader(rx);
        let inputs = self.inputs.clone();
        // Dropped when the channel has been read to its end.
        let (read_all, channel_done) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _read_all = read_all;
            while let Some(msg) = inbound.recv().await {
                if let Inbound::Ctl(Ctl::Ack { seq, taken }) = msg {
                    let _ = ack_tx.send((seq, taken));
                } else if inputs.send(Input::Worker(id, msg)).is_err() {
                    return;
                }
            }
        });
        let (out, queue) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(id, tx, queue, acks, self.inputs.clone()));
        // Lifecycle: wait for the exit, or for a stop with a deadline, then SIGKILL.
        let (stop, stop_rx) = oneshot::channel::<Duration>();
        let inputs = self.inputs.clone();
        let lifecycle = tokio::spawn(async move {
            let (status, killed) = tokio::select! {
                status = process::exited(&mut child) => (status, false),
                Ok(deadline) = stop_rx => {
                    match tokio::time::timeout(deadline, child.wait()).await {
                        Ok(status) => {
                            crate::tree_guard::sweep(child.pid());
                            (status.map(ExitStatus::from_std).unwrap_or(ExitStatus::Code(-1)), false)
                        }
                        Err(_) => {
                            tracing::warn!(pid = child.pid(), "did not exit within {deadline:?}: SIGKILL to its group");
                            let _ = child.kill();
                            (process::exited(&mut child).await, true)
                        }
                    }
                }
            };
            // Messages sent just before the exit come first: the channel is read to
            // its end (bounded, a grandchild may hold the worker's end open).
            let _ = tokio::time::timeout(Duration::from_secs(1), channel_done).await;
            let _ = inputs.send(Input::Exited { id, status, killed });
        })
        .abort_handle();
        // Where its connections come from.
        let seq = self.seq();
        let listen = Ctl::Listen {
            seq,
            mode: self.config.mode,
            addr: self.addr.to_string(),
        };
        let fd = match (&self.listener, self.config.mode) {
            (Some(listener), Mode::Shared) => Some(OwnedFd::from(listener.try_clone()?)),
            _ => None,
        };
        if !agent {
            let _ = out.send(Outgoing {
                frame: listen.encode(),
                fd,
                report: false,
            });
        }
        let timeout = self.config.supervise.listen_timeout;
        let inputs = self.inputs.clone();
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            let _ = inputs.send(Input::ReadyTimeout(id));
        });
        self.slots.insert(
            id,
            Slot {
                agent,
                index,
                pid,
                out,
                state: State::Starting,
                connections: 0,
                started,
                stop: Some(stop),
                replaces,
                ready_reply: reply,
                gone_reply: None,
                lifecycle,
            },
        );
        if !agent {
            self.emit(ClusterEvent::Starting { index, pid });
        }
        Ok(id)
    }

    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn send_to(&self, id: u64, ctl: &Ctl) {
        if let Some(slot) = self.slots.get(&id) {
            let _ = slot.out.send(Outgoing {
                frame: ctl.encode(),
                fd: None,
                report: false,
            });
        }
    }

    /// Ask worker `id` to go: `ctl` (drain, shutdown or release), then SIGKILL after
    /// `deadline`. A worker that reported a fatal error is released instead of
    /// drained (its `fatal` call returns), and its exit counts as the one it asked for.
    fn make_leave(&mut self, id: u64, ctl: Ctl, cause: ExitCause, deadline: Duration) {
        let fatal = self.slots.get(&id).map(|s| s.state) == Some(State::Fatal);
        let (ctl, cause) = match ctl {
            Ctl::Drain if fatal => (Ctl::Release, ExitCause::Announced),
            ctl => (ctl, cause),
        };
        self.send_to(id, &ctl);
        self.free.retain(|f| *f != id);
        if let Some(slot) = self.slots.get_mut(&id) {
            slot.state = State::Leaving(cause);
            if let Some(stop) = slot.stop.take() {
                let _ = stop.send(deadline);
            }
        }
    }

    fn on_worker(&mut self, id: u64, msg: Inbound) {
        let Inbound::Ctl(ctl) = msg else {
            tracing::debug!(id, "a frame that is no control message, ignored");
            return;
        };
        match ctl {
            Ctl::Ready => self.on_ready(id),
            Ctl::Accepted { total } => {
                if let Some(slot) = self.slots.get_mut(&id) {
                    slot.connections = total;
                }
            }
            Ctl::Fatal { error } => self.on_fatal(id, error),
            Ctl::Msg(envelope) => self.route(id, envelope),
            other => tracing::debug!(id, ?other, "unexpected control message from a worker"),
        }
    }

    fn on_ready(&mut self, id: u64) {
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        if slot.state != State::Starting {
            return;
        }
        slot.state = State::Ready;
        let (index, pid, replaces) = (slot.index, slot.pid, slot.replaces.take());
        if let Some(reply) = slot.ready_reply.take() {
            let _ = reply.send(Ok(id));
        }
        if slot.agent {
            self.emit(ClusterEvent::AgentReady { pid });
            self.announce_members();
            return;
        }
        self.emit(ClusterEvent::Ready { index, pid });
        if self.config.mode == Mode::RoundRobin {
            self.free.push_back(id);
            self.dispatch();
        }
        if let Some(old) = replaces {
            // The fatal worker's replacement serves: now the old one may go.
            let deadline = self.config.drain_timeout;
            self.make_leave(old, Ctl::Release, ExitCause::Announced, deadline);
        }
        self.announce_members();
        let ready = self
            .slots
            .values()
            .filter(|s| s.state == State::Ready && !s.agent)
            .count();
        if !self.told_systemd && ready >= self.workers_wanted {
            self.told_systemd = true;
            match crate::notify::notify_ready() {
                Ok(true) => tracing::info!("told NOTIFY_SOCKET: READY=1"),
                Ok(false) => {}
                Err(e) => tracing::warn!("NOTIFY_SOCKET: {e}"),
            }
        }
    }

    fn on_ready_timeout(&mut self, id: u64) {
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        if slot.state != State::Starting {
            return;
        }
        let waited = self.config.supervise.listen_timeout;
        tracing::warn!(
            pid = slot.pid,
            index = slot.index,
            "worker not ready within listen_timeout ({waited:?}): a failed start"
        );
        if let Some(reply) = slot.ready_reply.take() {
            let _ = reply.send(Err(Error::NotReady {
                pid: slot.pid,
                waited,
            }));
        }
        let deadline = self.config.supervise.kill_timeout;
        self.make_leave(id, Ctl::Shutdown, ExitCause::NotReady, deadline);
    }

    fn on_fatal(&mut self, id: u64, error: String) {
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        let (index, pid) = (slot.index, slot.pid);
        match slot.state {
            State::Leaving(_) => {
                // Retired already (a reload or shutdown drains it; its replacement, if
                // any, is counted): it goes, nobody replaces it again. Released, so
                // its `fatal` call returns.
                tracing::warn!(
                    pid,
                    index,
                    "worker reports a fatal error ({error}) while it leaves: no replacement"
                );
                self.send_to(id, &Ctl::Release);
                return;
            }
            State::Fatal => {
                tracing::debug!(pid, index, "a second fatal report ({error}), ignored");
                return;
            }
            State::Starting | State::Ready => slot.state = State::Fatal,
        }
        tracing::warn!(
            pid,
            index,
            "worker reports a fatal error ({error}): starting its replacement"
        );
        self.emit(ClusterEvent::Fatal { index, pid, error });
        self.free.retain(|f| *f != id);
        if let Some(step) = &mut self.reload_step {
            if step.old == id && self.slots.contains_key(&step.new) {
                // The reload's replacement in flight replaces it (the reload retires it
                // once that one is ready); if that one fails, the policy replaces it.
                step.old_fatal = true;
                return;
            }
        }
        let inputs = self.inputs.clone();
        self.pending_replaces.insert(index, id);
        let _ = inputs.send(Input::RestartDue(index));
    }

    fn on_handoff(&mut self, id: u64, outcome: Handoff) {
        match outcome {
            Handoff::Taken => {
                if let Some(slot) = self.slots.get_mut(&id) {
                    slot.connections += 1;
                    if slot.state == State::Ready {
                        self.free.push_back(id);
                    }
                }
            }
            Handoff::Refused(fd) | Handoff::Failed(fd) => {
                tracing::debug!(id, "connection not taken: handing it to another worker");
                self.queued.push_front(std::net::TcpStream::from(fd));
            }
        }
        self.dispatch();
    }

    /// Round-robin: hand queued connections to free workers.
    fn dispatch(&mut self) {
        while !self.queued.is_empty() {
            let Some(id) = self.free.pop_front() else {
                return;
            };
            let Some(slot) = self.slots.get(&id).filter(|s| s.state == State::Ready) else {
                continue;
            };
            let Some(stream) = self.queued.pop_front() else {
                return;
            };
            let seq = {
                self.next_seq += 1;
                self.next_seq
            };
            let sent = slot.out.send(Outgoing {
                frame: Ctl::Conn { seq }.encode(),
                fd: Some(OwnedFd::from(stream)),
                report: true,
            });
            if let Err(mpsc::error::SendError(lost)) = sent {
                if let Some(fd) = lost.fd {
                    self.queued.push_front(std::net::TcpStream::from(fd));
                }
            }
        }
    }

    fn on_exit(&mut self, id: u64, status: ExitStatus, killed: bool) {
        let Some(mut slot) = self.slots.remove(&id) else {
            return;
        };
        self.free.retain(|f| *f != id);
        let cause = match slot.state {
            State::Leaving(_) if killed => ExitCause::Killed,
            State::Leaving(cause) => cause,
            _ => ExitCause::Crashed,
        };
        let (index, pid) = (slot.index, slot.pid);
        if slot.agent {
            self.on_agent_exit(slot, status, cause);
            return;
        }
        self.emit(ClusterEvent::Exited {
            index,
            pid,
            status,
            cause,
        });
        // A start somebody waits for (the cluster's start, a reload) fails to them.
        let start_awaited = slot.ready_reply.is_some();
        if let Some(reply) = slot.ready_reply.take() {
            let _ = reply.send(Err(Error::ExitedBeforeReady {
                pid,
                status: status.to_string(),
            }));
        }
        if let Some(reply) = slot.gone_reply.take() {
            let _ = reply.send(());
        }
        self.announce_members();
        // During a reload step, the replacement takes the index over from an old
        // worker that dies; if the replacement then fails, the policy decides.
        let (mut taken_over, mut orphaned) = (false, false);
        if let Some(step) = &mut self.reload_step {
            if step.old == id {
                step.old_died = true;
                taken_over = self.slots.contains_key(&step.new);
            } else if step.new == id {
                orphaned = step.old_died || step.old_fatal;
                if step.old_fatal && !step.old_died {
                    // The fatal old worker still serves: the policy's start replaces it.
                    self.pending_replaces.insert(index, step.old);
                }
            }
        }
        if taken_over {
            tracing::info!(index, "the reload's replacement takes over: no restart");
        }
        let replace = self.shutdown.is_none()
            && !taken_over
            && match slot.state {
                _ if orphaned => true,
                // Crashed, or a fatal worker that died before its replacement was ready.
                State::Ready | State::Fatal => true,
                // A failed start that nobody waits for (a restart): the policy decides.
                // One that somebody waits for is theirs: an aborted reload keeps the
                // old worker, so restarting the index too would leave one too many.
                State::Starting => !start_awaited,
                State::Leaving(ExitCause::NotReady) => {
                    slot.ready_reply.is_none() && !self.reloading
                }
                State::Leaving(_) => false,
            };
        if !replace {
            return;
        }
        if let Some(old) = slot.replaces {
            self.pending_replaces.insert(index, old);
        }
        let state = self.restarts.entry(index).or_default();
        let decision = state.decide(
            &self.config.supervise,
            status,
            cause,
            slot.started.elapsed(),
        );
        match decision {
            Decision::Restart { delay, .. } => {
                self.emit(ClusterEvent::Restarting { index, delay });
                let inputs = self.inputs.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = inputs.send(Input::RestartDue(index));
                });
            }
            Decision::Errored { .. } => self.emit(ClusterEvent::Errored { index }),
            Decision::Stop => {}
        }
    }

    fn on_agent_exit(&mut self, mut slot: Slot, status: ExitStatus, cause: ExitCause) {
        let pid = slot.pid;
        self.emit(ClusterEvent::AgentExited { pid, status, cause });
        if let Some(reply) = slot.ready_reply.take() {
            // Still starting: the cluster's start fails fast.
            let _ = reply.send(Err(Error::ExitedBeforeReady {
                pid,
                status: status.to_string(),
            }));
            return;
        }
        if let Some(reply) = slot.gone_reply.take() {
            let _ = reply.send(());
        }
        self.announce_members();
        if self.shutdown.is_some() || matches!(slot.state, State::Leaving(_)) {
            return;
        }
        let delay = self.config.agent_restart_delay;
        self.emit(ClusterEvent::AgentRestarting { delay });
        let inputs = self.inputs.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = inputs.send(Input::AgentRestartDue);
        });
    }

    fn agent_pid(&self) -> Option<u32> {
        self.slots
            .values()
            .find(|s| s.agent && s.state == State::Ready)
            .map(|s| s.pid)
    }

    fn announce_members(&self) {
        let workers: Vec<u32> = self
            .slots
            .values()
            .filter(|s| s.state == State::Ready && !s.agent)
            .map(|s| s.pid)
            .collect();
        let ctl = Ctl::Members {
            workers,
            agent: self.agent_pid(),
        };
        for id in self.slots.keys() {
            self.send_to(*id, &ctl);
        }
    }

    /// Route a messenger message from worker `from_id`.
    fn route(&mut self, from_id: u64, mut envelope: Envelope) {
        envelope.from = self.slots.get(&from_id).map_or(0, |s| s.pid);
        self.deliver(envelope);
    }

    fn deliver(&self, envelope: Envelope) {
        // Every live member (a fatal or leaving worker still gets its messages).
        let members: Vec<(u64, u32, bool)> = self
            .slots
            .iter()
            .filter(|(_, s)| s.state != State::Starting || s.agent)
            .map(|(id, s)| (*id, s.pid, s.agent))
            .collect();
        let ready: Vec<(u64, u32)> = self
            .slots
            .iter()
            .filter(|(_, s)| matches!(s.state, State::Ready | State::Fatal) && !s.agent)
            .map(|(id, s)| (*id, s.pid))
            .collect();
        let targets: Vec<u64> = match envelope.to {
            To::Primary | To::Pid(0) => {
                self.emit(ClusterEvent::Message(envelope));
                return;
            }
            To::Agent => members
                .iter()
                .filter(|(_, _, agent)| *agent)
                .map(|(id, _, _)| *id)
                .collect(),
            To::Workers => ready.iter().map(|(id, _)| *id).collect(),
            To::Broadcast => members
                .iter()
                .filter(|(_, pid, agent)| {
                    *pid != envelope.from && (*agent || ready.iter().any(|(_, p)| p == pid))
                })
                .map(|(id, _, _)| *id)
                .collect(),
            To::Pid(pid) => members
                .iter()
                .filter(|(_, p, _)| *p == pid)
                .map(|(id, _, _)| *id)
                .collect(),
            To::RandomWorker => {
                if ready.is_empty() {
                    Vec::new()
                } else {
                    let pick = random_index(ready.len());
                    vec![ready[pick].0]
                }
            }
        };
        if targets.is_empty() {
            tracing::debug!(to = ?envelope.to, action = %envelope.action, "message for nobody, dropped");
        }
        let ctl = Ctl::Msg(envelope);
        for id in targets {
            self.send_to(id, &ctl);
        }
    }

    async fn on_cmd(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Spawn {
                index,
                replacing,
                reply,
            } => {
                if self.shutdown.is_some() {
                    let _ = reply.send(Err(gone()));
                    return;
                }
                if let Some(old) = replacing {
                    if self.slots.get(&old).map(|s| s.state) != Some(State::Ready) {
                        // The old worker crashed (or went fatal) before the reload got
                        // here: the restart policy replaces it, with the new command.
                        let _ = reply.send(Ok(old));
                        return;
                    }
                }
                let started = self.spawn(index, Some(reply), None).await;
                if let (Some(old), Ok(new)) = (replacing, started) {
                    self.reload_step = Some(ReloadStep {
                        old,
                        new,
                        old_died: false,
                        old_fatal: false,
                    });
                }
            }
            Cmd::SpawnAgent(reply) => {
                let _ = self.spawn_member(0, Some(reply), None, true).await;
            }
            Cmd::Agent(reply) => {
                let _ = reply.send(self.agent_pid());
            }
            Cmd::Retire { id, reply } => {
                if self.reload_step.is_some_and(|step| step.old == id) {
                    self.reload_step = None;
                }
                if !self.slots.contains_key(&id) {
                    let _ = reply.send(());
                    return;
                }
                if let Some(slot) = self.slots.get_mut(&id) {
                    slot.gone_reply = Some(reply);
                }
                let deadline = self.config.drain_timeout;
                self.make_leave(id, Ctl::Drain, ExitCause::Stopped, deadline);
            }
            Cmd::Info(reply) => {
                let info = self
                    .slots
                    .iter()
                    .filter(|(_, s)| !matches!(s.state, State::Leaving(_)) && !s.agent)
                    .map(|(id, s)| {
                        (
                            *id,
                            WorkerInfo {
                                index: s.index,
                                pid: s.pid,
                                ready: s.state == State::Ready,
                                connections: s.connections,
                            },
                        )
                    })
                    .collect();
                let _ = reply.send(info);
            }
            Cmd::Reload(reply) => {
                if self.reloading {
                    let _ = reply.send(Err(Error::ReloadAborted(
                        "another reload is running (one at a time)".into(),
                    )));
                    return;
                }
                if self.shutdown.is_some() {
                    let _ = reply.send(Err(gone()));
                    return;
                }
                self.reloading = true;
                let mut plan: Vec<(usize, u64)> = self
                    .slots
                    .iter()
                    .filter(|(_, s)| s.state == State::Ready && !s.agent)
                    .map(|(id, s)| (s.index, *id))
                    .collect();
                plan.sort();
                tokio::spawn(reload(plan, self.inputs.clone(), reply));
            }
            Cmd::ReloadDone => {
                self.reloading = false;
                self.reload_step = None;
            }
            Cmd::Shutdown(reply) => {
                let waiters = self.shutdown.get_or_insert_with(Vec::new);
                waiters.push(reply);
                // Stop accepting: our copy of the listener goes (the acceptor task
                // holds its own until the task is dropped with the runtime).
                self.listener = None;
                self._hold = None;
                self.queued.clear();
                let deadline = self.config.drain_timeout;
                let ids: Vec<u64> = self.slots.keys().copied().collect();
                for id in ids {
                    if !matches!(
                        self.slots.get(&id).map(|s| s.state),
                        Some(State::Leaving(_))
                    ) {
                        self.make_leave(id, Ctl::Drain, ExitCause::Stopped, deadline);
                    }
                }
            }
            Cmd::Send(envelope) => self.deliver(envelope),
        }
    }
}

/// The rolling reload, worker after worker, through the cluster's task.
async fn reload(
    plan: Vec<(usize, u64)>,
    inputs: mpsc::UnboundedSender<Input>,
    reply: oneshot::Sender<Result<()>>,
) {
    let result = async {
        for (index, old) in plan {
            let (ready_tx, ready) = oneshot::channel();
            inputs
                .send(Input::Cmd(Cmd::Spawn {
                    index,
                    replacing: Some(old),
                    reply: ready_tx,
                }))
                .map_err(|_| gone())?;
            match ready.await {
                // The old worker is gone already and the restart policy replaces it.
                Ok(Ok(new)) if new == old => continue,
                Ok(Ok(_new)) => {}
                Ok(Err(e)) => {
                    return Err(Error::ReloadAborted(format!(
                        "the replacement of worker {index} failed: {e}"
                    )))
                }
                Err(_) => return Err(gone()),
            }
            let (gone_tx, gone_rx) = oneshot::channel();
            inputs
                .send(Input::Cmd(Cmd::Retire {
                    id: old,
                    reply: gone_tx,
                }))
                .map_err(|_| gone())?;
            let _ = gone_rx.await;
        }
        Ok(())
    }
    .await;
    let _ = inputs.send(Input::Cmd(Cmd::ReloadDone));
    let _ = reply.send(result);
}

/// A random index below `n` (`n` > 0), from the OS's random source.
fn random_index(n: usize) -> usize {
    let mut bytes = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .is_err()
    {
        // No /dev/urandom: the clock's nanoseconds are random enough to spread load.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        return nanos as usize % n;
    }
    (u64::from_le_bytes(bytes) % n as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipc_core::prelude::*;
    use ipc_uds::RecvFds;

    #[tokio::test]
    async fn a_channel_dying_mid_transfer_gives_the_fd_back() {
        let (ours, mut theirs) = ipc_uds::pair(&ipc_core::Options::default()).expect("pair");
        let (tx, _rx) = ours.into_split();
        let (out, queue) = mpsc::unbounded_channel();
        let (_ack_tx, acks) = mpsc::unbounded_channel();
        let (inputs, mut inbox) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(
            7,
            ControlSender::Uds(Box::new(tx)),
            queue,
            acks,
            inputs,
        ));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client = std::net::TcpStream::connect(addr).expect("connect");
        let local = client.local_addr().expect("local");
        out.send(Outgoing {
            frame: Ctl::Conn { seq: 1 }.encode(),
            fd: Some(OwnedFd::from(client)),
            report: true,
        })
        .expect("queue");
        // A second frame must wait for the acknowledgement of the first.
        out.send(Outgoing {
            frame: Bytes::from_static(b"later"),
            fd: None,
            report: false,
        })
        .expect("queue");
        let (frame, fds) = theirs.recv_with_fds().await.expect("recv").expect("frame");
        assert_eq!(Ctl::decode(&frame), Some(Ctl::Conn { seq: 1 }));
        assert_eq!(fds.len(), 1);
        // The worker dies before acknowledging: its end and the ack route go away.
        drop((theirs, fds, _ack_tx));
        match inbox.recv().await {
            Some(Input::Handoff(7, Handoff::Failed(fd))) => {
                let back = std::net::TcpStream::from(fd);
                assert_eq!(
                    back.local_addr().expect("addr"),
                    local,
                    "the same connection"
                );
            }
            _ => panic!("expected a failed hand-off with the fd back"),
        }
    }

    #[tokio::test]
    async fn the_next_frame_waits_for_the_acknowledgement() {
        let (ours, mut theirs) = ipc_uds::pair(&ipc_core::Options::default()).expect("pair");
        let (tx, _rx) = ours.into_split();
        let (out, queue) = mpsc::unbounded_channel();
        let (ack_tx, acks) = mpsc::unbounded_channel();
        let (inputs, mut inbox) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(
            1,
            ControlSender::Uds(Box::new(tx)),
            queue,
            acks,
            inputs,
        ));
        let file = std::fs::File::open("/dev/null").expect("open");
        for frame in [&b"with fd"[..], b"after"] {
            out.send(Outgoing {
                frame: Bytes::copy_from_slice(frame),
                fd: (frame == b"with fd").then(|| OwnedFd::from(file.try_clone().expect("dup"))),
                report: true,
            })
            .expect("queue");
        }
        let (first, fds) = theirs.recv_with_fds().await.expect("recv").expect("frame");
        assert_eq!((&first[..], fds.len()), (&b"with fd"[..], 1));
        let early = tokio::time::timeout(Duration::from_millis(50), theirs.recv()).await;
        assert!(
            early.is_err(),
            "nothing is written before the acknowledgement"
        );
        ack_tx.send((1, true)).expect("ack");
        assert_eq!(
            theirs.recv().await.expect("recv").as_deref(),
            Some(&b"after"[..])
        );
        assert!(matches!(
            inbox.recv().await,
            Some(Input::Handoff(1, Handoff::Taken))
        ));
    }
}
