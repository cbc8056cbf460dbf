//! [`Supervisor`]: keep one program running the way pm2 does (restart policy,
//! crash-loop limit, backoff, readiness, graceful stop), reporting what happens as a
//! stream of [`Event`]s.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::config::{Config, WaitReady};
use crate::events::{Event, ExitCause, ExitStatus, ReadyVia};
use crate::launch::launch;
use crate::policy::{Decision, RestartState};
use crate::process::{self, Inbound};
use crate::protocol::Ctl;

/// Makes the command of each start (a fresh `Command` every time).
pub type CommandFactory = Arc<dyn Fn() -> Command + Send + Sync>;

/// Keeps one program running with pm2's semantics; see [`Config`] for the settings
/// and their defaults.
///
/// The program is started in a process group of its own, with a control channel
/// ([`ControlChannel`](crate::ControlChannel)), and is killed with its whole group
/// when the supervisor is dropped or this process dies, however it dies.
///
/// ```no_run
/// # async fn demo() {
/// use std::time::Duration;
/// use ipc_cluster::{Config, Event, Supervisor, WaitReady};
/// let config = Config::builder()
///     .wait_ready(WaitReady::Notify)
///     .exp_backoff(Duration::from_millis(100))
///     .build();
/// let mut sup = Supervisor::start(config, || std::process::Command::new("./my-daemon"));
/// while let Some(event) = sup.next_event().await {
///     println!("{event:?}");
///     if matches!(event, Event::Errored { .. } | Event::Stopped) {
///         break;
///     }
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct Supervisor {
    events: mpsc::UnboundedReceiver<Event>,
    stop: Option<mpsc::Sender<oneshot::Sender<()>>>,
    pid: watch::Receiver<Option<u32>>,
    task: JoinHandle<()>,
}

impl Supervisor {
    /// Start supervising the program `command` makes (called for each start). Must be
    /// called within a tokio runtime.
    pub fn start(config: Config, command: impl Fn() -> Command + Send + Sync + 'static) -> Self {
        Self::start_with(config, Arc::new(command))
    }

    /// [`start`](Self::start) with a shared factory.
    ///
    /// ```no_run
    /// # async fn demo() {
    /// use std::sync::Arc;
    /// let factory: ipc_cluster::CommandFactory = Arc::new(|| std::process::Command::new("true"));
    /// let sup = ipc_cluster::Supervisor::start_with(Default::default(), factory);
    /// # drop(sup); }
    /// ```
    pub fn start_with(config: Config, command: CommandFactory) -> Self {
        let (events_tx, events) = mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = mpsc::channel(1);
        let (pid_tx, pid) = watch::channel(None);
        let task = tokio::spawn(run(config, command, events_tx, stop_rx, pid_tx));
        Supervisor {
            events,
            stop: Some(stop_tx),
            pid,
            task,
        }
    }

    /// The next event; `None` once the supervisor has finished (after `Stopped` or
    /// `Errored`) and every event was read.
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// The pid of the running process, if one runs.
    pub fn pid(&self) -> Option<u32> {
        *self.pid.borrow()
    }

    /// Stop the process gracefully (its stop signal or message, then SIGKILL after
    /// `kill_timeout`) and do not restart it; returns once it is gone. The remaining
    /// events stay readable.
    ///
    /// ```no_run
    /// # async fn demo(mut sup: ipc_cluster::Supervisor) {
    /// sup.stop().await;
    /// while let Some(event) = sup.next_event().await { println!("{event:?}"); }
    /// # }
    /// ```
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let (done_tx, done) = oneshot::channel();
            if stop.send(done_tx).await.is_ok() {
                let _ = done.await;
            }
        }
    }

    /// Wait until the supervisor finishes on its own (`Stopped` or `Errored`), reading
    /// no events.
    pub async fn wait(&mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        // Dropping the task drops the process's `Child`, which kills its group.
        self.task.abort();
    }
}

fn emit(events: &mpsc::UnboundedSender<Event>, event: Event) {
    match &event {
        Event::Exited { status, cause, .. } if *cause == ExitCause::Crashed => {
            tracing::warn!(?event, "process exited: {status}")
        }
        Event::Errored { .. } => tracing::error!(?event, "process errored: not restarted"),
        _ => tracing::info!(?event, "supervisor"),
    }
    let _ = events.send(event);
}

/// How long the control channel of a process that exited is still read for the
/// messages it sent before its exit.
const READ_TO_END: Duration = Duration::from_secs(1);

/// How one run of the process ended.
struct RunEnd {
    status: ExitStatus,
    cause: ExitCause,
    uptime: Duration,
    /// Someone asked to stop: answer once the stop is complete.
    stop: Option<oneshot::Sender<()>>,
}

async fn run(
    config: Config,
    command: CommandFactory,
    events: mpsc::UnboundedSender<Event>,
    mut stop_rx: mpsc::Receiver<oneshot::Sender<()>>,
    pid: watch::Sender<Option<u32>>,
) {
    let mut state = RestartState::default();
    let notify = matches!(config.wait_ready, WaitReady::Notify | WaitReady::Any);
    loop {
        let launched = match launch(command(), config.control, notify).await {
            Ok(launched) => launched,
            Err(e) => {
                tracing::error!("could not start the process: {e}");
                emit(
                    &events,
                    Event::Errored {
                        unstable_restarts: state.unstable,
                    },
                );
                return;
            }
        };
        pid.send_replace(Some(launched.child.pid()));
        emit(
            &events,
            Event::Starting {
                pid: launched.child.pid(),
                restarts: state.restarts,
            },
        );
        let end = run_once(&config, launched, &mut stop_rx, &events).await;
        pid.send_replace(None);
        if let Some(done) = end.stop {
            emit(&events, Event::Stopped);
            let _ = done.send(());
            return;
        }
        match state.decide(&config, end.status, end.cause, end.uptime) {
            Decision::Restart { delay, unstable } => {
                emit(
                    &events,
                    Event::Restarting {
                        delay,
                        unstable_restarts: unstable,
                    },
                );
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    asked = stop_rx.recv() => {
                        emit(&events, Event::Stopped);
                        if let Some(done) = asked {
                            let _ = done.send(());
                        }
                        return;
                    }
                }
            }
            Decision::Errored { unstable } => {
                emit(
                    &events,
                    Event::Errored {
                        unstable_restarts: unstable,
                    },
                );
                return;
            }
            Decision::Stop => {
                emit(&events, Event::Stopped);
                return;
            }
        }
    }
}

/// Run one started process until it exits or we are asked to stop.
async fn run_once(
    config: &Config,
    launched: crate::launch::Launched,
    stop_rx: &mut mpsc::Receiver<oneshot::Sender<()>>,
    events: &mpsc::UnboundedSender<Event>,
) -> RunEnd {
    let crate::launch::Launched {
        mut child,
        mut tx,
        rx,
        mut notify,
        started,
    } = launched;
    let pid = child.pid();
    let mut inbound = rx.map(process::spawn_reader);
    let mut announced = false;
    let mut note = |msg: Inbound| {
        if let Inbound::Ctl(Ctl::Fatal { error }) = &msg {
            tracing::warn!(pid, "the process reports a fatal error: {error}");
            announced = true;
        } else if let Inbound::Other(frame) = &msg {
            tracing::debug!(pid, len = frame.len(), "a frame that is no control message");
        }
    };
    let ended = |status, cause, stop| RunEnd {
        status,
        cause,
        uptime: started.elapsed(),
        stop,
    };

    if config.wait_ready == WaitReady::No {
        emit(
            events,
            Event::Ready {
                pid,
                via: ReadyVia::Started,
            },
        );
    } else {
        let ready = tokio::select! {
            via = process::wait_ready(config.wait_ready, notify.as_mut(), &mut inbound, &mut note) => via,
            status = process::exited(&mut child) => {
                let end = ended(status, ExitCause::Crashed, None);
                emit_exit(events, pid, &end);
                return end;
            }
            asked = stop_rx.recv() => {
                let (status, cause) = process::stop(&mut child, tx.as_mut(), config.stop_with, config.kill_timeout).await;
                let end = ended(status, cause, Some(asked_or_dummy(asked)));
                emit_exit(events, pid, &end);
                return end;
            }
            _ = tokio::time::sleep(config.listen_timeout) => None,
        };
        match ready {
            Some(via) => emit(events, Event::Ready { pid, via }),
            None => {
                tracing::warn!(
                    pid,
                    "not ready within listen_timeout ({:?}): a failed start",
                    config.listen_timeout
                );
                let (status, _) = process::stop(
                    &mut child,
                    tx.as_mut(),
                    config.stop_with,
                    config.kill_timeout,
                )
                .await;
                let end = ended(status, ExitCause::NotReady, None);
                emit_exit(events, pid, &end);
                return end;
            }
        }
    }

    let end = loop {
        tokio::select! {
            status = process::exited(&mut child) => {
                // A message sent just before the exit (an announced exit) comes first:
                // the channel is read to its end (bounded, a grandchild may hold the
                // process's end open).
                if let Some(inbound) = inbound.as_mut() {
                    let read_to_end = async {
                        while let Some(msg) = inbound.recv().await {
                            note(msg);
                        }
                    };
                    let _ = tokio::time::timeout(READ_TO_END, read_to_end).await;
                }
                let cause = if announced { ExitCause::Announced } else { ExitCause::Crashed };
                break ended(status, cause, None);
            }
            asked = stop_rx.recv() => {
                let (status, cause) = process::stop(&mut child, tx.as_mut(), config.stop_with, config.kill_timeout).await;
                break ended(status, cause, Some(asked_or_dummy(asked)));
            }
            msg = async { inbound.as_mut().expect("guarded").recv().await }, if inbound.is_some() => {
                match msg {
                    Some(msg) => note(msg),
                    None => inbound = None,
                }
            }
        }
    };
    emit_exit(events, pid, &end);
    end
}

/// The answer channel of a stop request; a closed request queue (the `Supervisor` was
/// dropped) stops too, answering nobody.
fn asked_or_dummy(asked: Option<oneshot::Sender<()>>) -> oneshot::Sender<()> {
    asked.unwrap_or_else(|| oneshot::channel().0)
}

fn emit_exit(events: &mpsc::UnboundedSender<Event>, pid: u32, end: &RunEnd) {
    emit(
        events,
        Event::Exited {
            pid,
            status: end.status,
            cause: end.cause,
            uptime: end.uptime,
        },
    );
}
