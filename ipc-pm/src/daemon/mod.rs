//! The daemon: owns the apps, answers the client on its socket (peer uid checked),
//! samples memory and CPU, and stops everything on `kill`, SIGINT or SIGTERM.

mod activation;
mod app;
mod history;
mod instance;
mod listen;
mod rr;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use ipc_core::codec::Json;
use ipc_core::{Endpoint, ListenError, Options, TypedChannel};
use ipc_uds::{UdsAddress, UdsChannel, UdsListener};
use tokio::sync::Notify;

pub(crate) use app::human_uptime;
use app::{not_ready, parse_signal, App};
use instance::lock;

use crate::paths::Home;
use crate::proto::{AppSpec, LogLine, Request, Response};

/// The daemon's channel to one client.
type Conn = TypedChannel<Request, Response, Json, UdsChannel>;

/// Everything the daemon runs.
#[derive(Debug)]
struct Daemon {
    home: Home,
    apps: Mutex<BTreeMap<String, Arc<App>>>,
    next_id: AtomicU32,
    /// Told when `kill` asked the daemon to exit.
    quit: Notify,
    /// Told once the socket is closed and removed (the `kill` answer waits for it).
    closed: Notify,
    /// Told once the `kill` answer is sent (the daemon exits then).
    answered: Notify,
}

/// Run the daemon in the foreground until `kill`, SIGINT or SIGTERM; says `READY=1`
/// to `NOTIFY_SOCKET` once it accepts clients.
pub(crate) async fn run(home: Home, monitor_interval: Duration) -> Result<(), String> {
    home.prepare().map_err(|e| e.to_string())?;
    let _low_fds = activation::reserve_low_fds();
    let endpoint: Endpoint = UdsAddress::Path(home.socket()).into();
    let mut listener = match UdsListener::bind(&endpoint, &Options::default()) {
        Ok(listener) => listener,
        Err(ListenError::InUse(e)) => {
            // Another client started a daemon at the same moment: it serves.
            let _ = ipc_cluster::notify::notify_ready();
            return Err(format!(
                "a daemon already runs on {}: {e}",
                home.socket().display()
            ));
        }
        Err(e) => {
            return Err(format!(
                "could not listen on {}: {e}",
                home.socket().display()
            ))
        }
    };
    let daemon = Arc::new(Daemon {
        home,
        apps: Mutex::new(BTreeMap::new()),
        next_id: AtomicU32::new(0),
        quit: Notify::new(),
        closed: Notify::new(),
        answered: Notify::new(),
    });
    tokio::spawn(monitor(daemon.clone(), monitor_interval));
    let mut killed = false;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| e.to_string())?;
    match ipc_cluster::notify::notify_ready() {
        Ok(_) => {}
        Err(e) => tracing::warn!("could not tell NOTIFY_SOCKET we are ready: {e}"),
    }
    // Said once. An rr cluster says READY=1 when its workers are: not to our starter.
    // (No other thread runs yet: the runtime is single-threaded and nothing blocked.)
    std::env::remove_var(ipc_cluster::notify::NOTIFY_SOCKET);
    tracing::info!(pid = std::process::id(), socket = %daemon.home.socket().display(), "ipcm daemon ready");
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(channel) => {
                    let daemon = daemon.clone();
                    tokio::spawn(async move { serve(daemon, TypedChannel::new(channel)).await });
                }
                Err(e) => tracing::warn!("a client could not connect: {e}"),
            },
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = daemon.quit.notified() => {
                killed = true;
                break;
            }
        }
    }
    drop(listener);
    daemon.stop_everything().await;
    if killed {
        // The client of `kill` hears back only now that the socket is gone.
        daemon.closed.notify_one();
        let _ = tokio::time::timeout(Duration::from_secs(5), daemon.answered.notified()).await;
    }
    tracing::info!("ipcm daemon stopped");
    Ok(())
}

/// Answer one client.
async fn serve(daemon: Arc<Daemon>, conn: Conn) {
    let (mut tx, mut rx) = conn.split();
    let request = match rx.next().await {
        Some(Ok(request)) => request,
        Some(Err(e)) => {
            let _ = tx
                .send(Response::Error(format!("could not read the request: {e}")))
                .await;
            return;
        }
        None => return,
    };
    tracing::debug!(?request, "request");
    if let Request::Logs {
        target,
        lines,
        follow,
    } = request
    {
        let (backlog, mut follow_rx) = match daemon.logs(target.as_deref(), lines, follow) {
            Ok(x) => x,
            Err(e) => {
                let _ = tx.send(Response::Error(e)).await;
                return;
            }
        };
        for line in backlog {
            if tx.feed(Response::Log(line)).await.is_err() {
                return;
            }
        }
        if tx.flush().await.is_err() {
            return;
        }
        if follow_rx.is_empty() {
            let _ = tx.send(Response::Done(String::new())).await;
            return;
        }
        let mut merged = futures_util::stream::select_all(
            follow_rx.drain(..).map(|r| Box::pin(tokio_stream_of(r))),
        );
        loop {
            tokio::select! {
                line = merged.next() => match line {
                    Some(line) => if tx.send(Response::Log(line)).await.is_err() { return },
                    None => return,
                },
                // The client went away (or sent something): stop following.
                _ = rx.next() => return,
            }
        }
    }
    let kill = matches!(request, Request::Kill);
    let response = daemon.handle(request).await;
    if kill {
        daemon.quit.notify_one();
        daemon.closed.notified().await;
    }
    let _ = tx.send(response).await;
    if kill {
        daemon.answered.notify_one();
    }
}

/// A broadcast receiver as a stream of lines (lagging skips lost lines).
fn tokio_stream_of(
    rx: tokio::sync::broadcast::Receiver<LogLine>,
) -> impl futures_util::Stream<Item = LogLine> {
    futures_util::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(line) => return Some((line, rx)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

impl Daemon {
    fn apps(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<App>>> {
        self.apps.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The apps `target` names: `all`, a name, or an id.
    fn find(&self, target: &str) -> Result<Vec<Arc<App>>, String> {
        let apps = self.apps();
        if target == "all" {
            return Ok(apps.values().cloned().collect());
        }
        if let Some(app) = apps.get(target) {
            return Ok(vec![app.clone()]);
        }
        if let Ok(id) = target.parse::<u32>() {
            if let Some(app) = apps.values().find(|a| a.id == id) {
                return Ok(vec![app.clone()]);
            }
        }
        Err(format!(
            "no app named or numbered {target:?}; `ipcm list` shows them"
        ))
    }

    async fn handle(&self, request: Request) -> Response {
        let result = match request {
            Request::Start(specs) => self.start(specs).await,
            Request::StartExisting(target) => {
                self.each(&target, "started", |app| async move {
                    let _op = app.ops.lock().await;
                    let failed = app.start().await?;
                    not_ready(&app.name, &failed)
                })
                .await
            }
            Request::Stop(target) => {
                self.each(&target, "stopped", |app| async move {
                    let _op = app.ops.lock().await;
                    app.stop_all().await;
                    Ok(())
                })
                .await
            }
            Request::Restart(target) => {
                self.each(&target, "restarted", |app| async move {
                    let _op = app.ops.lock().await;
                    let failed = app.restart().await?;
                    not_ready(&app.name, &failed)
                })
                .await
            }
            Request::Reload(target) => {
                self.each(&target, "reloaded", |app| async move {
                    let _op = app.ops.lock().await;
                    app.reload().await
                })
                .await
            }
            Request::Delete(target) => match self.find(&target) {
                Ok(apps) => {
                    for app in &apps {
                        let _op = app.ops.lock().await;
                        app.stop_all().await;
                        self.apps().remove(&app.name);
                    }
                    Ok(format!("deleted {}", names(&apps)))
                }
                Err(e) => Err(e),
            },
            Request::List => {
                return Response::Apps(self.apps().values().map(|a| a.info()).collect())
            }
            Request::Describe(target) => {
                return match self.find(&target) {
                    Ok(apps) => Response::Apps(apps.iter().map(|a| a.info()).collect()),
                    Err(e) => Response::Error(e),
                }
            }
            Request::Logs { .. } => Err("logs are answered as a stream".to_string()),
            Request::Save => self.save(),
            Request::Resurrect => self.resurrect().await,
            Request::Signal { target, signal } => match (parse_signal(&signal), self.find(&target))
            {
                (Ok(sig), Ok(apps)) => {
                    let mut sent = 0;
                    let mut result = Ok(());
                    for app in &apps {
                        match app.signal(sig) {
                            Ok(n) => sent += n,
                            Err(e) => result = Err(e),
                        }
                    }
                    result.map(|()| format!("sent {sig} to {sent} process(es) of {}", names(&apps)))
                }
                (Err(e), _) | (_, Err(e)) => Err(e),
            },
            Request::Scale { target, instances } => {
                self.each(&target, "scaled", |app| async move {
                    let _op = app.ops.lock().await;
                    app.scale(instances).await
                })
                .await
            }
            Request::Kill => {
                let n = self.apps().len();
                self.stop_everything().await;
                Ok(format!("stopped {n} app(s); the daemon exits"))
            }
        };
        match result {
            Ok(message) => Response::Done(message),
            Err(e) => Response::Error(e),
        }
    }

    /// Run `op` on every app `target` names, one after the other.
    async fn each<F, Fut>(&self, target: &str, done: &str, op: F) -> Result<String, String>
    where
        F: Fn(Arc<App>) -> Fut,
        Fut: std::future::Future<Output = Result<(), String>>,
    {
        let apps = self.find(target)?;
        let mut errors = Vec::new();
        for app in &apps {
            if let Err(e) = op(app.clone()).await {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            Ok(format!("{done} {}", names(&apps)))
        } else {
            Err(errors.join("\n"))
        }
    }

    /// Add and start `specs`; a name the daemon knows is started again if stopped.
    async fn start(&self, specs: Vec<AppSpec>) -> Result<String, String> {
        let mut errors = Vec::new();
        let mut started = Vec::new();
        for spec in specs {
            let name = spec.name.clone();
            let existing = self.apps().get(&name).cloned();
            let app = match existing {
                Some(app) if app.is_running() => {
                    errors.push(format!(
                        "{name} already runs; use `ipcm restart {name}` or `ipcm reload {name}`, \
                         or --name to start another copy"
                    ));
                    continue;
                }
                Some(app) => {
                    *app.spec.lock().unwrap_or_else(|e| e.into_inner()) = spec;
                    app
                }
                None => {
                    if spec.cmd.is_empty() {
                        errors.push(format!("{name}: no command to run"));
                        continue;
                    }
                    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                    match App::new(id, spec, &self.home.logs()) {
                        Ok(app) => {
                            let app = Arc::new(app);
                            self.apps().insert(name.clone(), app.clone());
                            app
                        }
                        Err(e) => {
                            errors.push(e);
                            continue;
                        }
                    }
                }
            };
            let _op = app.ops.lock().await;
            match app.start().await {
                Ok(failed) => match not_ready(&name, &failed) {
                    Ok(()) => started.push(name),
                    Err(e) => errors.push(e),
                },
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(format!("started {}", started.join(", ")))
        } else {
            Err(errors.join("\n"))
        }
    }

    /// The last `lines` lines of each app's logs, and the live lines to follow.
    #[allow(clippy::type_complexity)]
    fn logs(
        &self,
        target: Option<&str>,
        lines: usize,
        follow: bool,
    ) -> Result<(Vec<LogLine>, Vec<tokio::sync::broadcast::Receiver<LogLine>>), String> {
        let apps = self.find(target.unwrap_or("all"))?;
        let mut backlog = Vec::new();
        let mut receivers = Vec::new();
        for app in &apps {
            if follow {
                receivers.push(app.logs.subscribe());
            }
            backlog.extend(app.logs.tail(lines));
        }
        crate::logs::merge_by_time(&mut backlog);
        Ok((backlog, receivers))
    }

    /// Write the apps' specs to `dump.json`.
    fn save(&self) -> Result<String, String> {
        let specs: Vec<AppSpec> = self.apps().values().map(|a| a.spec()).collect();
        let path = self.home.dump();
        let text = serde_json::to_string_pretty(&specs).map_err(|e| e.to_string())?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| format!("could not write {}: {e}", path.display()))?;
        Ok(format!(
            "saved {} app(s) to {}",
            specs.len(),
            path.display()
        ))
    }

    /// Start the apps of `dump.json` that do not run.
    async fn resurrect(&self) -> Result<String, String> {
        let path = self.home.dump();
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "could not read {} ({e}); run `ipcm save` first",
                path.display()
            )
        })?;
        let specs: Vec<AppSpec> = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a saved app list: {e}", path.display()))?;
        let specs: Vec<AppSpec> = specs
            .into_iter()
            .filter(|s| !self.apps().get(&s.name).is_some_and(|a| a.is_running()))
            .collect();
        if specs.is_empty() {
            return Ok("nothing to resurrect: every saved app runs".into());
        }
        self.start(specs).await
    }

    async fn stop_everything(&self) {
        let apps: Vec<Arc<App>> = self.apps().values().cloned().collect();
        futures_util::future::join_all(apps.iter().map(|app| async move {
            let _op = app.ops.lock().await;
            app.stop_all().await;
        }))
        .await;
    }
}

fn names(apps: &[Arc<App>]) -> String {
    if apps.is_empty() {
        return "no app".into();
    }
    apps.iter()
        .map(|a| a.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every `interval`: the memory and CPU of every instance's process tree, and the
/// memory restarts.
async fn monitor(daemon: Arc<Daemon>, interval: Duration) {
    // The first sample one interval after the start (no app runs before).
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let apps: Vec<Arc<App>> = daemon.apps().values().cloned().collect();
        if apps.is_empty() {
            continue;
        }
        let groups = tokio::task::spawn_blocking(crate::monitor::sample)
            .await
            .unwrap_or_default();
        let now = Instant::now();
        for app in apps {
            let limit = app.spec().max_memory_restart;
            let mut over = Vec::new();
            app.each_status(|index, status| {
                let mut s = lock(status);
                let Some(pid) = s.pid else { return };
                let usage = groups.get(&pid).copied().unwrap_or_default();
                s.memory = Some(usage.rss);
                s.cpu = s.meter.update(now, usage.ticks);
                if let Some(limit) = limit {
                    if usage.rss > limit && s.state == "online" && !s.memory_restart {
                        s.memory_restart = true;
                        tracing::warn!(app = %app.name, index, pid, rss = usage.rss, limit, "over max_memory_restart: restarting");
                        app.history.record(
                            index,
                            Some(pid),
                            crate::proto::RestartReason::MemoryLimit {
                                rss: usage.rss,
                                limit,
                            },
                        );
                        over.push(index);
                    }
                }
            });
            for index in over {
                let app = app.clone();
                tokio::spawn(async move {
                    let _op = app.ops.lock().await;
                    if let Err(e) = app.restart_instance(index).await {
                        tracing::warn!("{e}");
                    }
                });
            }
        }
    }
}

/// `Ok` when `text` names a signal.
pub(crate) fn check_signal(text: &str) -> Result<(), String> {
    parse_signal(text).map(|_| ())
}
