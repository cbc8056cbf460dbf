//! An app in `rr` mode: an `ipc_cluster::Cluster` in round-robin mode (the daemon
//! accepts and hands each connection to the next worker that took its previous one),
//! driven by a task that keeps the instances' statuses current from the cluster's
//! events and runs the reload, scale and stop the app asks for. The events are
//! applied as they come, also while a reload or a scale runs, so `list` follows
//! them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use ipc_cluster::{Cluster, ClusterConfig, ClusterEvent, Config, Mode, WorkerFactory};
use tokio::sync::{mpsc, oneshot};

use super::history::{exit_reason, History};
use super::instance::{lock, SharedStatus, Status};

/// Each worker index's status, shared by the app (`list`) and the cluster's task.
type Statuses = Arc<Mutex<Vec<SharedStatus>>>;

/// What the app asks of its cluster's task.
enum Ask {
    Reload(oneshot::Sender<Result<(), String>>),
    Scale(usize, oneshot::Sender<Result<(), String>>),
    Shutdown(oneshot::Sender<()>),
}

/// A running round-robin cluster; dropping it kills every worker.
#[derive(Debug)]
pub(crate) struct RrCluster {
    asks: mpsc::UnboundedSender<Ask>,
    /// One per worker index (the list grows and shrinks with `scale`).
    statuses: Statuses,
    /// Where it listens.
    pub(crate) addr: SocketAddr,
}

impl std::fmt::Debug for Ask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Ask::Reload(_) => "Reload",
            Ask::Scale(..) => "Scale",
            Ask::Shutdown(_) => "Shutdown",
        })
    }
}

impl RrCluster {
    /// Bind `addr`, start `workers` workers and return once every one is ready (the
    /// toolkit's ready message); `restarts` are each index's restarts made before.
    pub(crate) async fn start(
        workers: usize,
        addr: SocketAddr,
        supervise: Config,
        drain_timeout: Duration,
        command: WorkerFactory,
        restarts: &[u32],
        history: History,
    ) -> Result<RrCluster, String> {
        let config = ClusterConfig::builder()
            .workers(workers)
            .mode(Mode::RoundRobin)
            .addr(addr)
            .supervise(supervise)
            .drain_timeout(drain_timeout)
            // The daemon's own environment names no socket for its apps.
            .socket_activation(false)
            .build();
        let mut cluster = Cluster::start_with(config, command)
            .await
            .map_err(|e| e.to_string())?;
        let statuses: Vec<SharedStatus> = (0..workers)
            .map(|index| {
                Arc::new(Mutex::new(Status::new(
                    restarts.get(index).copied().unwrap_or(0),
                )))
            })
            .collect();
        let statuses = Arc::new(Mutex::new(statuses));
        let mut tracker = Tracker {
            statuses: statuses.clone(),
            live: HashMap::new(),
            history,
        };
        // Every worker is ready: show it before the start is answered.
        tracker.drain(&mut cluster);
        let (asks, asked) = mpsc::unbounded_channel();
        let addr = cluster.local_addr();
        tokio::spawn(drive(cluster, tracker, asked));
        Ok(RrCluster {
            asks,
            statuses,
            addr,
        })
    }

    /// A cluster that did not start: `workers` indexes shown `errored`, nothing runs.
    pub(crate) fn failed(workers: usize, addr: SocketAddr, restarts: &[u32]) -> RrCluster {
        let statuses = (0..workers)
            .map(|index| {
                let mut status = Status::new(restarts.get(index).copied().unwrap_or(0));
                status.state = "errored";
                Arc::new(Mutex::new(status))
            })
            .collect();
        // Nobody reads the asks: a reload or a scale answers that it has stopped.
        let (asks, _) = mpsc::unbounded_channel();
        RrCluster {
            asks,
            statuses: Arc::new(Mutex::new(statuses)),
            addr,
        }
    }

    /// Each worker index's status, in index order.
    pub(crate) fn statuses(&self) -> Vec<SharedStatus> {
        lock_list(&self.statuses).clone()
    }

    /// Rolling reload (each worker replaced once its replacement is ready).
    pub(crate) async fn reload(&self) -> Result<(), String> {
        let (reply, done) = oneshot::channel();
        self.asks
            .send(Ask::Reload(reply))
            .map_err(|_| "the cluster has stopped".to_string())?;
        done.await
            .map_err(|_| "the cluster has stopped".to_string())?
    }

    /// Run `workers` workers: new indexes start (ready-gated), the highest ones are
    /// drained and stop.
    pub(crate) async fn scale(&self, workers: usize) -> Result<(), String> {
        let (reply, done) = oneshot::channel();
        self.asks
            .send(Ask::Scale(workers, reply))
            .map_err(|_| "the cluster has stopped".to_string())?;
        done.await
            .map_err(|_| "the cluster has stopped".to_string())?
    }

    /// Stop taking connections, let the workers finish theirs (within the drain
    /// timeout), and return once every worker is gone.
    pub(crate) async fn shutdown(&self) {
        let (reply, done) = oneshot::channel();
        if self.asks.send(Ask::Shutdown(reply)).is_ok() {
            let _ = done.await;
        }
    }
}

fn lock_list(statuses: &Statuses) -> std::sync::MutexGuard<'_, Vec<SharedStatus>> {
    statuses.lock().unwrap_or_else(|e| e.into_inner())
}

/// A reload or a scale in progress: its outcome, and what to do once it is there.
struct Running {
    outcome: BoxFuture<'static, ipc_cluster::Result<()>>,
    /// `Some(n)` for a scale to `n` workers (the statuses above `n` go at the end).
    scale_to: Option<usize>,
    reply: oneshot::Sender<Result<(), String>>,
}

/// Runs the cluster: applies its events as they come (also during a reload or a
/// scale), answers the app's asks one at a time.
async fn drive(
    mut cluster: Cluster,
    mut tracker: Tracker,
    mut asked: mpsc::UnboundedReceiver<Ask>,
) {
    let mut running: Option<Running> = None;
    loop {
        tokio::select! {
            event = cluster.next_event() => match event {
                Some(event) => tracker.apply(event),
                None => break,
            },
            outcome = async { (&mut running.as_mut().expect("running").outcome).await },
                if running.is_some() =>
            {
                let Some(done) = running.take() else { continue };
                // What came before the answer is shown before it.
                tracker.drain(&mut cluster);
                if let (Some(n), Ok(())) = (done.scale_to, &outcome) {
                    lock_list(&tracker.statuses).truncate(n);
                }
                let _ = done.reply.send(outcome.map_err(|e| e.to_string()));
            }
            ask = asked.recv(), if running.is_none() => match ask {
                Some(Ask::Reload(reply)) => {
                    running = Some(Running {
                        outcome: cluster.reload().boxed(),
                        scale_to: None,
                        reply,
                    });
                }
                Some(Ask::Scale(workers, reply)) => {
                    tracker.prepare_scale(workers);
                    running = Some(Running {
                        outcome: cluster.scale(workers).boxed(),
                        scale_to: Some(workers),
                        reply,
                    });
                }
                Some(Ask::Shutdown(reply)) => {
                    tracker.set_all("stopping");
                    cluster.shutdown().await;
                    tracker.set_all("stopped");
                    let _ = reply.send(());
                    return;
                }
                // The app is gone: dropping the cluster kills its workers.
                None => return,
            }
        }
    }
    tracker.set_all("stopped");
}

/// A worker process of the cluster, by pid.
#[derive(Debug, Clone, Copy)]
struct Live {
    index: usize,
    ready: bool,
    started: Instant,
}

/// Turns the cluster's events into the statuses `list` shows: per index, the newest
/// ready worker (a reload's replacement shows once it serves).
#[derive(Debug)]
struct Tracker {
    statuses: Statuses,
    live: HashMap<u32, Live>,
    history: History,
}

impl Tracker {
    /// Apply the events that are already there.
    fn drain(&mut self, cluster: &mut Cluster) {
        while let Some(Some(event)) = cluster.next_event().now_or_never() {
            self.apply(event);
        }
    }

    /// The status of worker `index`.
    fn status(&self, index: usize) -> Option<SharedStatus> {
        lock_list(&self.statuses).get(index).cloned()
    }

    /// Before a scale to `workers`: a status for each new index, and the indexes
    /// that go shown `stopping`.
    fn prepare_scale(&self, workers: usize) {
        let mut statuses = lock_list(&self.statuses);
        for (index, status) in statuses.iter().enumerate() {
            if index >= workers {
                lock(status).state = "stopping";
            }
        }
        while statuses.len() < workers {
            statuses.push(Arc::new(Mutex::new(Status::new(0))));
        }
    }

    fn set_all(&self, state: &'static str) {
        for status in lock_list(&self.statuses).iter() {
            let mut s = lock(status);
            s.state = state;
            if state == "stopped" {
                s.clear_process();
            }
        }
    }

    /// The newest other live worker of `index`.
    fn other(&self, index: usize, not: u32) -> Option<(u32, Live)> {
        self.live
            .iter()
            .filter(|(pid, w)| w.index == index && **pid != not)
            .max_by_key(|(_, w)| (w.ready, w.started))
            .map(|(pid, w)| (*pid, *w))
    }

    fn apply(&mut self, event: ClusterEvent) {
        match event {
            ClusterEvent::Starting { index, pid } => {
                let now = Instant::now();
                let replacing = self.other(index, pid).is_some();
                self.live.insert(
                    pid,
                    Live {
                        index,
                        ready: false,
                        started: now,
                    },
                );
                if !replacing {
                    if let Some(status) = self.status(index) {
                        lock(&status).show(pid, "launching", now);
                    }
                }
            }
            ClusterEvent::Ready { index, pid } => {
                let replacing = self.other(index, pid).is_some_and(|(_, w)| w.ready);
                let Some(worker) = self.live.get_mut(&pid) else {
                    return;
                };
                worker.ready = true;
                let started = worker.started;
                if let Some(status) = self.status(index) {
                    let mut s = lock(&status);
                    if replacing {
                        // A reload's (or a fatal worker's) replacement.
                        s.restarts += 1;
                    }
                    s.show(pid, "online", started);
                }
            }
            ClusterEvent::Exited {
                index,
                pid,
                status: exit,
                cause,
            } => {
                self.live.remove(&pid);
                let next = self.other(index, pid);
                if let Some(status) = self.status(index) {
                    let mut s = lock(&status);
                    // A memory restart was recorded when it was asked for.
                    let asked = s.pid == Some(pid) && s.memory_restart;
                    if let Some(reason) = exit_reason(exit, cause).filter(|_| !asked) {
                        self.history.record(index, Some(pid), reason);
                    }
                    if s.pid == Some(pid) {
                        match next {
                            Some((next, w)) => {
                                let state = if w.ready { "online" } else { "launching" };
                                s.show(next, state, w.started);
                            }
                            None => {
                                s.clear_process();
                                if s.state != "stopping" {
                                    s.state = "exited";
                                }
                            }
                        }
                    }
                }
            }
            ClusterEvent::Restarting { index, .. } => {
                if let Some(status) = self.status(index) {
                    let mut s = lock(&status);
                    s.restarts += 1;
                    if s.pid.is_none() {
                        s.state = "waiting restart";
                    }
                }
            }
            ClusterEvent::Errored { index } => {
                if let Some(status) = self.status(index) {
                    let mut s = lock(&status);
                    if s.pid.is_none() {
                        s.state = "errored";
                    }
                }
            }
            _ => {}
        }
    }
}
