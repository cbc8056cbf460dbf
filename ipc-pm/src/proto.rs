//! The typed messages between the `ipcm` client and its daemon (JSON frames over the
//! toolkit's uds framing), and the app description both sides share.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How the instances of an app get their connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ExecMode {
    /// Each instance is a plain process (pm2's `fork` mode).
    #[default]
    Fork,
    /// The daemon binds one socket and hands it to every instance at fd 3
    /// (`LISTEN_FDS`); the kernel spreads connections over their `accept` calls.
    Shared,
    /// The daemon binds one `SO_REUSEPORT` socket per instance and hands each its own
    /// at fd 3; the kernel hashes connections over them.
    Reuseport,
    /// The daemon accepts and hands each connection to the next instance that took its
    /// previous one (`ipc_cluster::Cluster` in round-robin mode): for workers that
    /// speak the toolkit's channel (`ipc_cluster::Worker`).
    #[serde(rename = "rr")]
    RoundRobin,
}

impl std::fmt::Display for ExecMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ExecMode::Fork => "fork",
            ExecMode::Shared => "shared",
            ExecMode::Reuseport => "reuseport",
            ExecMode::RoundRobin => "rr",
        })
    }
}

impl std::str::FromStr for ExecMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fork" | "fork_mode" => Ok(ExecMode::Fork),
            "shared" | "cluster" | "cluster_mode" => Ok(ExecMode::Shared),
            "reuseport" => Ok(ExecMode::Reuseport),
            "rr" | "round-robin" | "roundrobin" => Ok(ExecMode::RoundRobin),
            other => Err(format!(
                "unknown mode {other:?}: use fork, shared, reuseport or rr"
            )),
        }
    }
}

/// The control channel an instance gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Control {
    /// Node's channel for a Node program (`process.send('ready')`), the toolkit's uds
    /// channel for others (at fd 3, or fd 4 in the cluster modes, where fd 3 is the
    /// socket).
    #[default]
    Auto,
    /// The toolkit's channel (`IPC_ENDPOINT`).
    Uds,
    /// Node's `NODE_CHANNEL_FD`.
    Node,
    /// No channel (ready only through `NOTIFY_SOCKET`).
    None,
}

/// Everything the daemon needs to run one app; what `save` writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AppSpec {
    pub(crate) name: String,
    /// Program and arguments.
    pub(crate) cmd: Vec<String>,
    pub(crate) cwd: PathBuf,
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) instances: usize,
    pub(crate) mode: ExecMode,
    /// Where cluster modes listen (`HOST:PORT`).
    pub(crate) listen: Option<String>,
    pub(crate) control: Control,
    pub(crate) wait_ready: bool,
    pub(crate) listen_timeout_ms: u64,
    pub(crate) kill_timeout_ms: u64,
    pub(crate) kill_signal: String,
    pub(crate) autorestart: bool,
    pub(crate) max_restarts: u32,
    pub(crate) min_uptime_ms: u64,
    pub(crate) restart_delay_ms: u64,
    pub(crate) exp_backoff_ms: Option<u64>,
    pub(crate) stop_exit_codes: Vec<i32>,
    /// Restart an instance whose process tree uses more (bytes).
    pub(crate) max_memory_restart: Option<u64>,
    /// Rotate a log file once it is larger (bytes).
    pub(crate) log_max_size: u64,
    /// Rotated log files kept besides the live one.
    pub(crate) log_files: usize,
}

impl AppSpec {
    /// pm2's defaults for `cmd`.
    pub(crate) fn new(name: String, cmd: Vec<String>, cwd: PathBuf) -> Self {
        AppSpec {
            name,
            cmd,
            cwd,
            env: BTreeMap::new(),
            instances: 1,
            mode: ExecMode::Fork,
            listen: None,
            control: Control::Auto,
            wait_ready: false,
            listen_timeout_ms: 3000,
            kill_timeout_ms: 1600,
            kill_signal: "SIGINT".into(),
            autorestart: true,
            max_restarts: 16,
            min_uptime_ms: 1000,
            restart_delay_ms: 0,
            exp_backoff_ms: None,
            stop_exit_codes: Vec::new(),
            max_memory_restart: None,
            log_max_size: 10 << 20,
            log_files: 5,
        }
    }
}

/// What the client asks. A target is an app name, an app id, or `all`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Request {
    /// Start new apps (or start again stopped ones of the same name).
    Start(Vec<AppSpec>),
    /// Start an app the daemon knows (stopped or errored).
    StartExisting(String),
    Stop(String),
    Restart(String),
    Reload(String),
    Delete(String),
    List,
    Describe(String),
    Logs {
        target: Option<String>,
        lines: usize,
        follow: bool,
    },
    Save,
    Resurrect,
    Signal {
        target: String,
        signal: String,
    },
    Scale {
        target: String,
        instances: usize,
    },
    /// Stop every app and the daemon.
    Kill,
}

/// What the daemon answers: one `Done`, `Apps` or `Error`, or for `logs` a stream of
/// `Log` ended by `Done` (never ended with `follow`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Response {
    Done(String),
    Apps(Vec<AppInfo>),
    Log(LogLine),
    Error(String),
}

/// One line of an app's output, as the log file has it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LogLine {
    pub(crate) app: String,
    /// The instance's index.
    pub(crate) instance: usize,
    /// `out` or `err`.
    pub(crate) stream: String,
    /// The timestamped line.
    pub(crate) line: String,
}

/// One app as `list` and `describe` show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AppInfo {
    pub(crate) id: u32,
    pub(crate) name: String,
    pub(crate) mode: ExecMode,
    /// The address the cluster modes listen on, once bound.
    pub(crate) address: Option<String>,
    pub(crate) spec: AppSpec,
    pub(crate) instances: Vec<InstanceInfo>,
    /// The last restarts of its instances, oldest first.
    pub(crate) history: Vec<RestartEvent>,
}

/// One restart of an instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RestartEvent {
    /// When (RFC 3339, UTC).
    pub(crate) at: String,
    pub(crate) instance: usize,
    /// The process that was replaced (or that exited).
    pub(crate) pid: Option<u32>,
    pub(crate) reason: RestartReason,
}

/// Why an instance was restarted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum RestartReason {
    /// It exited on its own (`status`: `exit code N` or `killed by SIGNAL`).
    Crash { status: String },
    /// It did not say ready within `listen_timeout`.
    NotReady,
    /// Its process tree's RSS went over `max_memory_restart`.
    MemoryLimit { rss: u64, limit: u64 },
    /// `ipcm restart`.
    Restart,
    /// `ipcm reload`.
    Reload,
}

impl std::fmt::Display for RestartReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RestartReason::Crash { status } => write!(f, "crash ({status})"),
            RestartReason::NotReady => f.write_str("not ready within listen_timeout"),
            RestartReason::MemoryLimit { rss, limit } => write!(
                f,
                "memory limit ({} over max_memory_restart {})",
                crate::monitor::human_bytes(*rss),
                crate::monitor::human_bytes(*limit)
            ),
            RestartReason::Restart => f.write_str("ipcm restart"),
            RestartReason::Reload => f.write_str("ipcm reload"),
        }
    }
}

/// One instance (process slot) of an app.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct InstanceInfo {
    pub(crate) index: usize,
    pub(crate) pid: Option<u32>,
    pub(crate) status: String,
    /// Milliseconds since the running process started.
    pub(crate) uptime_ms: u64,
    pub(crate) restarts: u32,
    /// CPU use of the whole process group since the previous sample (`None` until
    /// two samples were taken).
    pub(crate) cpu_percent: Option<f64>,
    /// RSS of the whole process group, bytes (`None` until the first sample).
    pub(crate) memory: Option<u64>,
    /// Its stdout log (`NAME-out-INDEX.log`), once it started.
    pub(crate) out_log: Option<PathBuf>,
    /// Its stderr log (`NAME-error-INDEX.log`), once it started.
    pub(crate) err_log: Option<PathBuf>,
}
