//! One app under the daemon: its instances, its listening socket in the cluster
//! modes, its log pipes; and what the commands do to it (start, stop, restart,
//! rolling reload, scale, signal).

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipc_cluster::{Config, ControlChannel, Restart, StopWith, WaitReady};
use ipc_core::Signal;

use super::activation;
use super::history::History;
use super::instance::{lock, Instance, SharedStatus};
use super::listen;
use super::rr::RrCluster;
use crate::logs::{AppLogs, InstanceLogs, Rotation};
use crate::proto::{AppInfo, AppSpec, Control, ExecMode, InstanceInfo, RestartReason};

/// An app the daemon runs.
#[derive(Debug)]
pub(crate) struct App {
    pub(crate) id: u32,
    pub(crate) name: String,
    pub(crate) spec: Mutex<AppSpec>,
    instances: Mutex<Vec<Instance>>,
    /// The cluster that runs the instances in `rr` mode (then `instances` is empty).
    rr: Mutex<Option<Arc<RrCluster>>>,
    /// The log files of the `rr` cluster's workers, by index (more as it scales up).
    rr_logs: Arc<Mutex<Vec<Arc<InstanceLogs>>>>,
    /// One command at a time per app (a reload, a restart, a scale...).
    pub(crate) ops: tokio::sync::Mutex<()>,
    /// The socket every instance shares (`shared` mode) while the app runs.
    shared: Mutex<Option<Arc<OwnedFd>>>,
    /// Where the cluster modes listen, once bound.
    address: Mutex<Option<SocketAddr>>,
    /// Its log files, per instance.
    pub(crate) logs: AppLogs,
    /// Its instances' last restarts.
    pub(crate) history: History,
}

/// `what` failed for `name`: a message for the client.
fn failed(name: &str, what: &str, e: impl std::fmt::Display) -> String {
    format!("{name}: {what}: {e}")
}

impl App {
    /// An app (not started) with its log files under `logs_dir`.
    pub(crate) fn new(id: u32, spec: AppSpec, logs_dir: &std::path::Path) -> Result<App, String> {
        let name = spec.name.clone();
        let logs = AppLogs::new(logs_dir, &name);
        // Open the files now: a directory we cannot write to fails the start early.
        logs.open(spec.instances.max(1), rotation(&spec))?;
        Ok(App {
            id,
            name,
            spec: Mutex::new(spec),
            instances: Mutex::new(Vec::new()),
            rr: Mutex::new(None),
            rr_logs: Arc::new(Mutex::new(Vec::new())),
            ops: tokio::sync::Mutex::new(()),
            shared: Mutex::new(None),
            address: Mutex::new(None),
            logs,
            history: History::default(),
        })
    }

    pub(crate) fn spec(&self) -> AppSpec {
        self.spec.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn instances(&self) -> std::sync::MutexGuard<'_, Vec<Instance>> {
        self.instances.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn rr(&self) -> Option<Arc<RrCluster>> {
        self.rr.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Every instance's index and status, in index order.
    fn statuses(&self) -> Vec<(usize, SharedStatus)> {
        if let Some(rr) = self.rr() {
            return rr.statuses().into_iter().enumerate().collect();
        }
        self.instances()
            .iter()
            .map(|i| (i.index, i.status.clone()))
            .collect()
    }

    /// True when some instance runs or is about to.
    pub(crate) fn is_running(&self) -> bool {
        self.statuses()
            .iter()
            .any(|(_, s)| !matches!(lock(s).state, "stopped" | "errored"))
    }

    /// What `list` shows.
    pub(crate) fn info(&self) -> AppInfo {
        let spec = self.spec();
        let files = self.logs.files();
        let instances = self
            .statuses()
            .iter()
            .map(|(index, status)| {
                let log = files.get(*index);
                let s = lock(status);
                InstanceInfo {
                    index: *index,
                    pid: s.pid,
                    status: s.state.to_string(),
                    uptime_ms: s.started.map_or(0, |t| t.elapsed().as_millis() as u64),
                    restarts: s.restarts,
                    cpu_percent: s.cpu,
                    memory: s.memory,
                    out_log: log.map(|(out, _)| out.clone()),
                    err_log: log.map(|(_, err)| err.clone()),
                }
            })
            .collect();
        AppInfo {
            id: self.id,
            name: self.name.clone(),
            mode: spec.mode,
            address: self
                .address
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .map(|a| a.to_string()),
            spec,
            instances,
            history: self.history.events(),
        }
    }

    /// Apply `f` to each instance's pid and status (the monitor).
    pub(crate) fn each_status(&self, mut f: impl FnMut(usize, &SharedStatus)) {
        for (index, status) in self.statuses() {
            f(index, &status);
        }
    }

    /// Start every instance (the app must not run) and wait until each is ready or
    /// failed. Returns the instances that did not become ready.
    pub(crate) async fn start(&self) -> Result<Vec<usize>, String> {
        let spec = self.spec();
        let base: Vec<u32> = self
            .statuses()
            .iter()
            .map(|(_, s)| lock(s).restarts)
            .collect();
        self.stop_all().await;
        *self.rr.lock().unwrap_or_else(|e| e.into_inner()) = None;
        if spec.mode == ExecMode::RoundRobin {
            return self.start_rr(&spec, &base).await.map(|()| Vec::new());
        }
        let mut started = Vec::new();
        for index in 0..spec.instances.max(1) {
            let restarts = base.get(index).copied().unwrap_or(0);
            started.push(self.launch(&spec, index, restarts)?);
        }
        let waits: Vec<_> = started
            .iter_mut()
            .map(|i| (i.index, i.take_outcome()))
            .collect();
        *self.instances() = started;
        let mut failed = Vec::new();
        for (index, wait) in waits {
            if !guarded(&spec, wait).await {
                failed.push(index);
            }
        }
        Ok(failed)
    }

    /// Stop every instance (gracefully, then SIGKILL after `kill_timeout`).
    pub(crate) async fn stop_all(&self) {
        let stoppers: Vec<_> = self.instances().iter().map(Instance::stopper).collect();
        futures_util::future::join_all(stoppers.iter().map(|s| s.stop())).await;
        *self.shared.lock().unwrap_or_else(|e| e.into_inner()) = None;
        if let Some(rr) = self.rr() {
            // It stays, stopped, for `list`, until the app starts again.
            rr.shutdown().await;
        }
    }

    /// Stop, then start again (restarts counted).
    pub(crate) async fn restart(&self) -> Result<Vec<usize>, String> {
        for (index, status) in self.statuses() {
            let mut s = lock(&status);
            s.restarts += 1;
            self.history.record(index, s.pid, RestartReason::Restart);
        }
        self.start().await
    }

    /// Start the `rr` cluster: the daemon accepts on the app's address and hands each
    /// connection to the next worker; returns once every worker is ready.
    async fn start_rr(&self, spec: &AppSpec, restarts: &[u32]) -> Result<(), String> {
        let addr = listen::resolve(&self.listen_addr(spec)?)
            .map_err(|e| failed(&self.name, "could not listen", e))?;
        let workers = spec.instances.max(1);
        *self.rr_logs.lock().unwrap_or_else(|e| e.into_inner()) =
            self.logs.open(workers, rotation(spec))?;
        let rr = RrCluster::start(
            workers,
            addr,
            supervision(spec),
            Duration::from_millis(spec.kill_timeout_ms),
            Arc::new(rr_command_factory(spec, self.rr_logs.clone())),
            restarts,
            self.history.clone(),
        )
        .await;
        let rr = match rr {
            Ok(rr) => rr,
            Err(e) => {
                // `list` shows its instances errored (not an app with none).
                let failed = RrCluster::failed(workers, addr, restarts);
                *self.rr.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(failed));
                return Err(format!(
                    "{}: the rr cluster did not start: {e}. Its workers must use \
                     ipc_cluster::Worker (connect, listener, ready); see `ipcm logs {}`",
                    self.name, self.name
                ));
            }
        };
        *self.address.lock().unwrap_or_else(|e| e.into_inner()) = Some(rr.addr);
        *self.rr.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(rr));
        Ok(())
    }

    /// Replace instance `index` with a new process (a memory restart).
    pub(crate) async fn restart_instance(&self, index: usize) -> Result<(), String> {
        let spec = self.spec();
        if let Some(rr) = self.rr() {
            // The cluster replaces a worker that exits: stop this one the way `kill`
            // does (the stop signal, SIGKILL after kill_timeout).
            let Some(status) = rr.statuses().get(index).cloned() else {
                return Ok(());
            };
            let Some(pid) = lock(&status).pid else {
                return Ok(());
            };
            let signal = parse_signal(&spec.kill_signal)?;
            let _ = killpg(pid, signal);
            let deadline = Duration::from_millis(spec.kill_timeout_ms);
            tokio::spawn(async move {
                tokio::time::sleep(deadline).await;
                if lock(&status).pid == Some(pid) {
                    let _ = killpg(pid, nix::sys::signal::Signal::SIGKILL);
                }
            });
            return Ok(());
        }
        let old = {
            let mut list = self.instances();
            let Some(at) = list.iter().position(|i| i.index == index) else {
                return Ok(());
            };
            list.remove(at)
        };
        old.stopper().stop().await;
        let fresh = self.launch(&spec, index, old.restarts() + 1)?;
        let mut list = self.instances();
        list.push(fresh);
        list.sort_by_key(|i| i.index);
        Ok(())
    }

    /// Rolling reload: for each instance in turn, start its replacement and wait until
    /// it is ready; only then stop the old one. A replacement that does not become
    /// ready is stopped, the old one keeps running, and the reload stops there.
    pub(crate) async fn reload(&self) -> Result<(), String> {
        if !self.is_running() {
            return self
                .start()
                .await
                .and_then(|failed| not_ready(&self.name, &failed));
        }
        if let Some(rr) = self.rr() {
            let before: Vec<(usize, Option<u32>)> = self
                .statuses()
                .iter()
                .map(|(index, s)| (*index, lock(s).pid))
                .collect();
            rr.reload().await.map_err(|e| {
                format!(
                    "{}: reload aborted: {e}; the old workers keep running. See `ipcm logs {}`",
                    self.name, self.name
                )
            })?;
            for (index, pid) in before {
                self.history.record(index, pid, RestartReason::Reload);
            }
            return Ok(());
        }
        let spec = self.spec();
        let indexes: Vec<(usize, u32)> = self
            .instances()
            .iter()
            .map(|i| (i.index, i.restarts()))
            .collect();
        for (index, restarts) in indexes {
            let mut fresh = self.launch(&spec, index, restarts + 1)?;
            let ready = guarded(&spec, fresh.take_outcome()).await;
            if !ready {
                fresh.stopper().stop().await;
                return Err(format!(
                    "{}: reload aborted: the new instance {index} did not become ready \
                     (within listen_timeout {} ms, or it exited); the old one keeps running. \
                     See `ipcm logs {}`",
                    self.name, spec.listen_timeout_ms, self.name
                ));
            }
            let old = {
                let mut list = self.instances();
                match list.iter().position(|i| i.index == index) {
                    Some(at) => Some(std::mem::replace(&mut list[at], fresh)),
                    None => {
                        list.push(fresh);
                        None
                    }
                }
            };
            if let Some(old) = old {
                self.history
                    .record(index, lock(&old.status).pid, RestartReason::Reload);
                old.stopper().stop().await;
            }
        }
        Ok(())
    }

    /// Run `n` instances: start new ones (ready-gated) or stop the highest ones.
    pub(crate) async fn scale(&self, n: usize) -> Result<(), String> {
        let n = n.max(1);
        let spec = {
            let mut spec = self.spec.lock().unwrap_or_else(|e| e.into_inner());
            spec.instances = n;
            spec.clone()
        };
        if spec.mode == ExecMode::RoundRobin {
            let Some(rr) = self.rr().filter(|_| self.is_running()) else {
                // Not running: the next start runs n workers.
                return Ok(());
            };
            let logs = self.logs.open(n, rotation(&spec))?;
            *self.rr_logs.lock().unwrap_or_else(|e| e.into_inner()) = logs;
            return rr
                .scale(n)
                .await
                .map_err(|e| format!("{}: scale to {n}: {e}", self.name));
        }
        let now = self.instances().len();
        if n > now {
            for index in now..n {
                let mut fresh = self.launch(&spec, index, 0)?;
                let wait = fresh.take_outcome();
                self.instances().push(fresh);
                if !guarded(&spec, wait).await {
                    return Err(format!(
                        "{}: the new instance {index} did not become ready",
                        self.name
                    ));
                }
            }
        } else {
            let gone: Vec<Instance> = {
                let mut list = self.instances();
                list.split_off(n)
            };
            futures_util::future::join_all(
                gone.iter().map(|i| async move { i.stopper().stop().await }),
            )
            .await;
        }
        Ok(())
    }

    /// Send `signal` to every instance's process group.
    pub(crate) fn signal(&self, signal: nix::sys::signal::Signal) -> Result<usize, String> {
        let mut sent = 0;
        for (_, status) in self.statuses() {
            let pid = lock(&status).pid;
            if let Some(pid) = pid {
                killpg(pid, signal)
                    .map_err(|e| failed(&self.name, &format!("could not signal pid {pid}"), e))?;
                sent += 1;
            }
        }
        Ok(sent)
    }

    /// Start instance `index` of `spec` (binding its socket in the cluster modes).
    fn launch(&self, spec: &AppSpec, index: usize, restarts: u32) -> Result<Instance, String> {
        let socket = match spec.mode {
            ExecMode::Fork | ExecMode::RoundRobin => None,
            ExecMode::Shared => {
                let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
                if shared.is_none() {
                    let (fd, addr) = listen::bind(&self.listen_addr(spec)?, false)
                        .map_err(|e| failed(&self.name, "could not listen", e))?;
                    *self.address.lock().unwrap_or_else(|e| e.into_inner()) = Some(addr);
                    *shared = Some(Arc::new(fd));
                }
                shared.clone()
            }
            ExecMode::Reuseport => {
                let (fd, addr) = listen::bind(&self.listen_addr(spec)?, true)
                    .map_err(|e| failed(&self.name, "could not listen", e))?;
                *self.address.lock().unwrap_or_else(|e| e.into_inner()) = Some(addr);
                Some(Arc::new(fd))
            }
        };
        let logs = self.logs.open(index + 1, rotation(spec))?;
        let factory = command_factory(spec, socket, logs);
        Ok(Instance::start(
            index,
            restarts,
            supervision(spec),
            Arc::new(move || factory(index)),
            self.history.clone(),
        ))
    }

    /// The address to bind: the one bound before (so a restart keeps a port chosen
    /// with `:0`, and `reuseport` instances share it), else the spec's.
    fn listen_addr(&self, spec: &AppSpec) -> Result<String, String> {
        if let Some(addr) = *self.address.lock().unwrap_or_else(|e| e.into_inner()) {
            if spec.mode == ExecMode::Reuseport || self.is_running() {
                return Ok(addr.to_string());
            }
        }
        spec.listen.clone().ok_or_else(|| {
            format!(
                "{}: mode {} needs --port PORT or --listen HOST:PORT",
                self.name, spec.mode
            )
        })
    }
}

/// `Err` naming the instances that did not become ready, if any.
pub(crate) fn not_ready(name: &str, failed: &[usize]) -> Result<(), String> {
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{name}: instance(s) {failed:?} did not become ready (see `ipcm logs {name}`)"
        ))
    }
}

/// Wait for an instance's first outcome, bounded by its readiness timeout plus its
/// stop time (a guard: the supervisor itself decides).
async fn guarded(spec: &AppSpec, outcome: impl std::future::Future<Output = bool>) -> bool {
    let guard = Duration::from_millis(spec.listen_timeout_ms + spec.kill_timeout_ms)
        + Duration::from_secs(10);
    tokio::time::timeout(guard, outcome).await.unwrap_or(false)
}

/// The supervisor settings of `spec`.
pub(crate) fn supervision(spec: &AppSpec) -> Config {
    let ms = Duration::from_millis;
    let control = control_of(spec);
    let wait_ready = match (spec.wait_ready, control) {
        (false, _) => WaitReady::No,
        (true, ControlChannel::None) => WaitReady::Notify,
        (true, _) => WaitReady::Any,
    };
    let signal = parse_signal(&spec.kill_signal)
        .ok()
        .and_then(|s| Signal::try_from(s as i32).ok());
    let mut config = Config::builder()
        .restart(if spec.autorestart {
            Restart::Always
        } else {
            Restart::Never
        })
        .stop_exit_codes(spec.stop_exit_codes.iter().copied())
        .min_uptime(ms(spec.min_uptime_ms))
        .max_restarts(spec.max_restarts)
        .restart_delay(ms(spec.restart_delay_ms))
        .wait_ready(wait_ready)
        .listen_timeout(ms(spec.listen_timeout_ms))
        .kill_timeout(ms(spec.kill_timeout_ms))
        .stop_with(StopWith::Signal(signal.unwrap_or(Signal::SIGINT)))
        .control(control);
    if let Some(first) = spec.exp_backoff_ms {
        config = config.exp_backoff(ms(first));
    }
    config.build()
}

/// The control channel: Node's for a Node program, the toolkit's otherwise (in the
/// cluster modes at fd 4, next to the socket at fd 3; `rr` always the toolkit's).
fn control_of(spec: &AppSpec) -> ControlChannel {
    if spec.mode == ExecMode::RoundRobin {
        return ControlChannel::Uds;
    }
    match spec.control {
        Control::Uds => ControlChannel::Uds,
        Control::Node => ControlChannel::Node,
        Control::None => ControlChannel::None,
        Control::Auto if is_node(spec) => ControlChannel::Node,
        Control::Auto => ControlChannel::Uds,
    }
}

fn is_node(spec: &AppSpec) -> bool {
    spec.cmd.first().is_some_and(|p| {
        std::path::Path::new(p)
            .file_name()
            .is_some_and(|n| n == "node" || n == "nodejs")
    })
}

/// `SIGTERM`, `TERM`, `15` -> the signal.
pub(crate) fn parse_signal(text: &str) -> Result<nix::sys::signal::Signal, String> {
    use std::str::FromStr;
    let t = text.trim().to_ascii_uppercase();
    if let Ok(n) = t.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(n)
            .map_err(|_| format!("{text}: no such signal number"));
    }
    let name = if t.starts_with("SIG") {
        t
    } else {
        format!("SIG{t}")
    };
    nix::sys::signal::Signal::from_str(&name)
        .map_err(|_| format!("{text:?} is not a signal name; use e.g. SIGINT, SIGTERM, SIGUSR2"))
}

/// Makes the command of an instance (by index) each time it starts.
fn command_factory(
    spec: &AppSpec,
    socket: Option<Arc<OwnedFd>>,
    logs: Vec<Arc<InstanceLogs>>,
) -> impl Fn(usize) -> Command + Send + Sync + 'static {
    let spec = spec.clone();
    move |index: usize| {
        let mut command = match &socket {
            Some(socket) => activation::command(&spec.cmd, socket, control_of(&spec)),
            None => {
                let mut c = Command::new(&spec.cmd[0]);
                c.args(&spec.cmd[1..]);
                c
            }
        };
        command
            .current_dir(&spec.cwd)
            .env_clear()
            .envs(&spec.env)
            .env("IPCM_APP_NAME", &spec.name)
            .env(ipc_cluster::worker::NODE_APP_INSTANCE, index.to_string())
            .env(ipc_cluster::worker::IPC_WORKER_INDEX, index.to_string())
            .stdin(Stdio::null());
        match logs.get(index) {
            Some(log) => command
                .stdout(pipe_end(&log.out))
                .stderr(pipe_end(&log.err)),
            None => command.stdout(Stdio::null()).stderr(Stdio::null()),
        };
        if socket.is_some() {
            command
                .env(ipc_cluster::systemd::LISTEN_FDS, "1")
                .env(ipc_cluster::systemd::LISTEN_FDNAMES, &spec.name);
        }
        command
    }
}

/// [`command_factory`] for the `rr` cluster: each worker's output goes to its index's
/// log files in `logs`, read at each start (a scale up adds files).
fn rr_command_factory(
    spec: &AppSpec,
    logs: Arc<Mutex<Vec<Arc<InstanceLogs>>>>,
) -> impl Fn(usize) -> Command + Send + Sync + 'static {
    let base = command_factory(spec, None, Vec::new());
    move |index: usize| {
        let mut command = base(index);
        let log = logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(index)
            .cloned();
        if let Some(log) = log {
            command
                .stdout(pipe_end(&log.out))
                .stderr(pipe_end(&log.err));
        }
        command
    }
}

/// How `spec`'s log files rotate.
fn rotation(spec: &AppSpec) -> Rotation {
    Rotation {
        max_size: spec.log_max_size.max(1),
        files: spec.log_files,
    }
}

/// Send `signal` to the process group `pid` leads.
fn killpg(pid: u32, signal: nix::sys::signal::Signal) -> nix::Result<()> {
    nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid as i32), signal)
}

fn pipe_end(fd: &OwnedFd) -> Stdio {
    match fd.try_clone() {
        Ok(fd) => Stdio::from(fd),
        Err(e) => {
            tracing::warn!("could not pass the log pipe: {e}");
            Stdio::null()
        }
    }
}

/// Uptime of a started instance, for display.
pub(crate) fn human_uptime(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86399 => format!("{}h", s / 3600),
        _ => format!("{}D", s / 86400),
    }
}
