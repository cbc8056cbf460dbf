//! One instance of an app: a [`Supervisor`] owned by a task that keeps the
//! instance's status up to date from the supervisor's events and stops it on request.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use ipc_cluster::{CommandFactory, Config, Event, Supervisor};
use tokio::sync::{mpsc, oneshot};

use super::history::{exit_reason, History};
use crate::monitor::CpuMeter;

/// What `list` shows of an instance, kept current by its task and the monitor.
#[derive(Debug, Clone)]
pub(crate) struct Status {
    pub(crate) pid: Option<u32>,
    pub(crate) state: &'static str,
    pub(crate) started: Option<Instant>,
    pub(crate) restarts: u32,
    /// `None` until two samples of this process were taken.
    pub(crate) cpu: Option<f64>,
    /// `None` until this process was sampled.
    pub(crate) memory: Option<u64>,
    pub(crate) meter: CpuMeter,
    /// A memory restart is under way (the monitor does not ask twice).
    pub(crate) memory_restart: bool,
}

impl Status {
    /// Not started yet, with `restarts` made before.
    pub(crate) fn new(restarts: u32) -> Status {
        Status {
            pid: None,
            state: "launching",
            started: None,
            restarts,
            cpu: None,
            memory: None,
            meter: CpuMeter::new(),
            memory_restart: false,
        }
    }

    /// Show process `pid` (started at `started`) in `state`; a new process starts a new
    /// CPU and memory record.
    pub(crate) fn show(&mut self, pid: u32, state: &'static str, started: Instant) {
        if self.pid != Some(pid) {
            self.pid = Some(pid);
            self.started = Some(started);
            self.cpu = None;
            self.memory = None;
            self.meter = CpuMeter::new();
            self.memory_restart = false;
        }
        self.state = state;
    }

    /// No process runs.
    pub(crate) fn clear_process(&mut self) {
        self.pid = None;
        self.started = None;
        self.cpu = None;
        self.memory = None;
    }
}

/// A shared, lockable [`Status`].
pub(crate) type SharedStatus = Arc<Mutex<Status>>;

/// Lock a status, whatever a panicking holder left.
pub(crate) fn lock(status: &SharedStatus) -> std::sync::MutexGuard<'_, Status> {
    status.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running (or finished) instance.
#[derive(Debug)]
pub(crate) struct Instance {
    pub(crate) index: usize,
    pub(crate) status: SharedStatus,
    stop: mpsc::UnboundedSender<oneshot::Sender<()>>,
    /// True once it first became ready, false if it failed before.
    outcome: Option<oneshot::Receiver<bool>>,
}

/// Asks one instance to stop; usable without holding the app's instance list.
#[derive(Debug, Clone)]
pub(crate) struct Stopper(mpsc::UnboundedSender<oneshot::Sender<()>>);

impl Stopper {
    /// Stop gracefully (stop signal, SIGKILL after `kill_timeout`); returns once gone.
    pub(crate) async fn stop(&self) {
        let (done, gone) = oneshot::channel();
        if self.0.send(done).is_ok() {
            let _ = gone.await;
        }
    }
}

impl Instance {
    /// Start supervising instance `index`, counting `restarts` made before; its
    /// crashes go to `history`.
    pub(crate) fn start(
        index: usize,
        restarts: u32,
        config: Config,
        command: CommandFactory,
        history: History,
    ) -> Instance {
        let status = Arc::new(Mutex::new(Status::new(restarts)));
        let (stop, stop_rx) = mpsc::unbounded_channel();
        let (outcome_tx, outcome) = oneshot::channel();
        let supervisor = Supervisor::start_with(config, command);
        let track = Track {
            status: status.clone(),
            base: restarts,
            index,
            history,
        };
        tokio::spawn(run(supervisor, track, stop_rx, outcome_tx));
        Instance {
            index,
            status,
            stop,
            outcome: Some(outcome),
        }
    }

    /// The handle that stops it.
    pub(crate) fn stopper(&self) -> Stopper {
        Stopper(self.stop.clone())
    }

    /// Its restarts so far.
    pub(crate) fn restarts(&self) -> u32 {
        lock(&self.status).restarts
    }

    /// Take the wait for its first outcome: `true` once ready, `false` if it exited
    /// (or was not ready in time) before.
    pub(crate) fn take_outcome(&mut self) -> impl std::future::Future<Output = bool> {
        let outcome = self.outcome.take();
        async move {
            match outcome {
                Some(rx) => rx.await.unwrap_or(false),
                None => true,
            }
        }
    }
}

/// Where an instance's task records what happens.
struct Track {
    status: SharedStatus,
    /// Restarts made before this supervisor.
    base: u32,
    index: usize,
    history: History,
}

async fn run(
    mut supervisor: Supervisor,
    track: Track,
    mut stop_rx: mpsc::UnboundedReceiver<oneshot::Sender<()>>,
    outcome: oneshot::Sender<bool>,
) {
    let mut outcome = Some(outcome);
    let status = &track.status;
    loop {
        tokio::select! {
            event = supervisor.next_event() => match event {
                Some(event) => apply(&track, event, &mut outcome),
                None => break,
            },
            asked = stop_rx.recv() => {
                let Some(done) = asked else {
                    return; // the instance was dropped: dropping the supervisor kills
                };
                lock(status).state = "stopping";
                supervisor.stop().await;
                while let Some(event) = supervisor.next_event().await {
                    apply(&track, event, &mut outcome);
                }
                let _ = done.send(());
                break;
            }
        }
    }
    // Finished (stopped, errored): later stop requests have nothing to do.
    while let Some(done) = stop_rx.recv().await {
        let _ = done.send(());
    }
}

fn apply(track: &Track, event: Event, outcome: &mut Option<oneshot::Sender<bool>>) {
    let mut s = lock(&track.status);
    let mut settle = |ok: bool| {
        if let Some(tx) = outcome.take() {
            let _ = tx.send(ok);
        }
    };
    match event {
        Event::Starting { pid, restarts } => {
            s.show(pid, "launching", Instant::now());
            s.restarts = track.base + restarts;
        }
        Event::Ready { .. } => {
            s.state = "online";
            settle(true);
        }
        Event::Exited {
            pid, status, cause, ..
        } => {
            if let Some(reason) = exit_reason(status, cause) {
                track.history.record(track.index, Some(pid), reason);
            }
            s.clear_process();
            if s.state != "stopping" {
                s.state = "exited";
            }
            settle(false);
        }
        Event::Restarting { .. } => s.state = "waiting restart",
        Event::Errored { .. } => {
            s.state = "errored";
            settle(false);
        }
        Event::Stopped => {
            s.state = "stopped";
            settle(false);
        }
    }
}
