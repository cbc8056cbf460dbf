//! [`Cluster`], the owner's handle: start, ask, reload, shut down. Every request
//! goes to the cluster's task ([`Actor`](super::actor::Actor)) as a command.

use std::future::Future;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::actor::{Actor, Cmd, Input};
use super::listen::{bind, spawn_acceptor};
use super::{gone, ClusterConfig, ClusterEvent, WorkerFactory, WorkerInfo};
use crate::error::{Error, Result};
use crate::messenger::{Envelope, To};
use crate::protocol::Mode;

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
    /// The round-robin acceptor, which holds the listening socket (the cluster's task
    /// aborts it when the shutdown begins; `shutdown` awaits its end).
    acceptor: Option<tokio::task::JoinHandle<()>>,
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
        let port = bind(&config)?;
        let addr = port.addr;
        let (inputs, inbox) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::unbounded_channel();
        let acceptor = match (&port.listener, port.mode) {
            (Some(listener), Mode::RoundRobin) => {
                Some(spawn_acceptor(listener.try_clone()?, inputs.clone())?)
            }
            _ => None,
        };
        let actor = Actor::new(
            config.clone(),
            command,
            agent.clone(),
            port,
            acceptor.as_ref().map(|task| task.abort_handle()),
            inputs.clone(),
            events_tx,
        );
        let task = tokio::spawn(actor.run(inbox));
        let cluster = Cluster {
            cmds: inputs,
            events,
            addr,
            task,
            acceptor,
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
    ///
    /// The reload is asked for when this is called; the future it returns does not
    /// borrow the cluster, so [`next_event`](Self::next_event) can follow the reload's
    /// events while it runs.
    ///
    /// ```no_run
    /// # async fn demo(mut cluster: ipc_cluster::Cluster) -> ipc_cluster::Result<()> {
    /// let reload = cluster.reload();
    /// tokio::pin!(reload);
    /// loop {
    ///     tokio::select! {
    ///         done = &mut reload => break done,
    ///         Some(event) = cluster.next_event() => println!("{event:?}"),
    ///     }
    /// }
    /// # }
    /// ```
    pub fn reload(&self) -> impl Future<Output = Result<()>> + Send + 'static {
        let (reply, done) = oneshot::channel();
        let asked = self.cmd(Cmd::Reload(reply));
        async move {
            asked?;
            done.await.map_err(|_| gone())?
        }
    }

    /// Change the number of workers to `workers` while the cluster serves. More: the
    /// new indexes start and this returns once each is ready (a new worker not ready
    /// within `listen_timeout`, or exited first, fails the scale with its error; the
    /// workers that served keep serving). Fewer: the highest indexes stop taking
    /// connections, finish their open ones (within `drain_timeout`) and exit; this
    /// returns once they are gone. Refused during a reload or another scale, and
    /// for 0 workers (use [`shutdown`](Self::shutdown)).
    ///
    /// ```no_run
    /// # async fn demo(cluster: ipc_cluster::Cluster) -> ipc_cluster::Result<()> {
    /// cluster.scale(4).await?; // four workers serve
    /// cluster.scale(1).await?; // workers 1..=3 drained and gone; worker 0 serves
    /// # Ok(()) }
    /// ```
    ///
    /// Like [`reload`](Self::reload), the change is asked for when this is called and
    /// the future does not borrow the cluster (its events can be read meanwhile).
    pub fn scale(&self, workers: usize) -> impl Future<Output = Result<()>> + Send + 'static {
        let (reply, done) = oneshot::channel();
        let asked = self.cmd(Cmd::Scale { workers, reply });
        async move {
            asked?;
            done.await.map_err(|_| gone())?
        }
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
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.abort();
            let _ = acceptor.await;
        }
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
