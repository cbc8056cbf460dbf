//! The command line (pm2's command names and options).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::proto::{Control, ExecMode};

/// ipcm: keep any program running (Rust, Node, Python, a shell script), run N
/// instances on one port, reload without downtime, read logs. A daemon starts on
/// first use; its directory is $IPCM_HOME, else $XDG_RUNTIME_DIR/ipcm.
#[derive(Debug, Parser)]
#[command(name = "ipcm", version)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Cmd,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Cmd {
    /// Start a program (`ipcm start [OPTIONS] PROGRAM [ARGS...]`), a config file
    /// (`ipcm start ipcm.toml`), or a stopped app by name.
    Start(Box<StartArgs>),
    /// Stop an app (name, id or `all`); it stays in the list.
    Stop { target: String },
    /// Stop and start an app again.
    Restart { target: String },
    /// Rolling reload: each instance is replaced once its replacement is ready; one
    /// that never gets ready aborts the reload and the old one keeps serving.
    Reload { target: String },
    /// Stop an app and remove it from the list.
    #[command(alias = "del")]
    Delete { target: String },
    /// The apps: name, id, mode, pid, status, uptime, restarts, CPU, memory.
    #[command(aliases = ["ls", "status"])]
    List {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Everything about an app.
    #[command(alias = "show")]
    Describe {
        target: String,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// An app's (or every app's) stdout and stderr.
    Logs {
        /// App name or id (default: all).
        target: Option<String>,
        /// How many past lines of each log.
        #[arg(long, default_value_t = 15)]
        lines: usize,
        /// Keep printing new lines.
        #[arg(short, long)]
        follow: bool,
    },
    /// Remember the apps, for `resurrect`.
    Save,
    /// Start the saved apps again.
    Resurrect,
    /// Send a signal to every process of an app (`ipcm signal SIGUSR2 web`).
    #[command(alias = "sendSignal")]
    Signal { signal: String, target: String },
    /// Run N instances of an app.
    Scale { target: String, instances: usize },
    /// Stop every app and the daemon.
    Kill,
    /// Run the daemon in the foreground (systemd `Type=notify`, containers).
    Daemon {
        /// How often memory and CPU are sampled and `max_memory_restart` checked.
        #[arg(long, default_value = "1s", value_parser = parse_duration_ms, env = "IPCM_MONITOR_INTERVAL")]
        monitor_interval: u64,
        /// Detach from the terminal (used when a client starts the daemon).
        #[arg(long, hide = true)]
        background: bool,
    },
}

/// `ipcm start`'s options (pm2's names).
#[derive(Debug, Args)]
pub(crate) struct StartArgs {
    /// The app's name (default: the program's file name).
    #[arg(long, short = 'n')]
    pub(crate) name: Option<String>,
    /// Instances to run: a number or `max` (the CPUs).
    #[arg(long, short = 'i')]
    pub(crate) instances: Option<String>,
    /// fork, shared (one socket for all, at fd 3 with LISTEN_FDS), reuseport (one
    /// SO_REUSEPORT socket each) or rr (the daemon accepts and hands each connection
    /// to the next instance; for workers using ipc_cluster::Worker).
    #[arg(long)]
    pub(crate) mode: Option<ExecMode>,
    /// The port the cluster modes listen on (all interfaces).
    #[arg(long)]
    pub(crate) port: Option<u16>,
    /// HOST:PORT the cluster modes listen on.
    #[arg(long)]
    pub(crate) listen: Option<String>,
    /// An environment variable for the app (repeatable).
    #[arg(long = "env", value_name = "K=V")]
    pub(crate) env: Vec<String>,
    /// With a config file: use each app's `env_NAME` table too.
    #[arg(long)]
    pub(crate) env_name: Option<String>,
    /// The app's working directory (default: here).
    #[arg(long)]
    pub(crate) cwd: Option<PathBuf>,
    /// Wait for the app's ready signal (NOTIFY_SOCKET READY=1, the toolkit's ready
    /// message, or Node's process.send('ready')).
    #[arg(long)]
    pub(crate) wait_ready: bool,
    /// How long to wait for ready (ms or e.g. 3s).
    #[arg(long, value_parser = parse_duration_ms)]
    pub(crate) listen_timeout: Option<u64>,
    /// Graceful stop time before SIGKILL (ms or e.g. 1600ms).
    #[arg(long, value_parser = parse_duration_ms)]
    pub(crate) kill_timeout: Option<u64>,
    /// The graceful stop signal (default SIGINT).
    #[arg(long)]
    pub(crate) kill_signal: Option<String>,
    /// Unstable restarts before the app is errored (16).
    #[arg(long)]
    pub(crate) max_restarts: Option<u32>,
    /// An exit sooner than this is an unstable restart (1s).
    #[arg(long, value_parser = parse_duration_ms)]
    pub(crate) min_uptime: Option<u64>,
    /// Wait before each restart.
    #[arg(long, value_parser = parse_duration_ms)]
    pub(crate) restart_delay: Option<u64>,
    /// Exponential backoff, starting at this delay.
    #[arg(long, alias = "exp-backoff-restart-delay", value_parser = parse_duration_ms)]
    pub(crate) exp_backoff: Option<u64>,
    /// Do not restart the app when it exits.
    #[arg(long)]
    pub(crate) no_autorestart: bool,
    /// Exit codes after which the app is not restarted (repeatable).
    #[arg(long = "stop-exit-code")]
    pub(crate) stop_exit_codes: Vec<i32>,
    /// Restart an instance whose process tree's RSS exceeds this (e.g. 200M).
    #[arg(long, value_parser = crate::monitor::parse_bytes)]
    pub(crate) max_memory_restart: Option<u64>,
    /// Rotate a log file above this size (default 10M).
    #[arg(long, value_parser = crate::monitor::parse_bytes)]
    pub(crate) log_max_size: Option<u64>,
    /// Rotated log files kept (default 5).
    #[arg(long)]
    pub(crate) log_files: Option<usize>,
    /// The control channel (auto: Node's for node, the toolkit's otherwise; at fd 4 in
    /// the shared and reuseport modes, where fd 3 is the socket).
    #[arg(long, value_enum)]
    pub(crate) control: Option<ControlArg>,
    /// Print the list as JSON afterwards.
    #[arg(long)]
    pub(crate) json: bool,
    /// The program and its arguments, or a config file (.toml), or an app's name.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub(crate) cmd: Vec<String>,
}

/// `--control` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum ControlArg {
    Auto,
    Uds,
    Node,
    None,
}

impl From<ControlArg> for Control {
    fn from(c: ControlArg) -> Control {
        match c {
            ControlArg::Auto => Control::Auto,
            ControlArg::Uds => Control::Uds,
            ControlArg::Node => Control::Node,
            ControlArg::None => Control::None,
        }
    }
}

/// `1500` (ms) or `1.5s`, `200ms`, `2m` -> milliseconds.
pub(crate) fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if let Ok(ms) = t.parse::<u64>() {
        return Ok(ms);
    }
    humantime::parse_duration(t)
        .map(|d| d.as_millis() as u64)
        .map_err(|e| {
            format!("{text:?} is not a duration ({e}); write milliseconds or e.g. 1s, 200ms")
        })
}
