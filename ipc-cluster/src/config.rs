//! [`Config`]: how a process is supervised, with pm2's defaults.

use std::time::Duration;

use ipc_core::Signal;

/// When a process that exited on its own is started again (pm2's `autorestart` and
/// `stop_exit_codes`).
///
/// ```
/// use ipc_cluster::Restart;
/// assert_eq!(Restart::default(), Restart::Always);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Restart {
    /// Whatever the exit (pm2's default).
    #[default]
    Always,
    /// Only when it failed: a non-zero exit code or a signal.
    OnFailure,
    /// Never (pm2's `autorestart: false`).
    Never,
}

/// How the process is told to stop gracefully before `kill_timeout` runs out.
///
/// ```
/// use ipc_cluster::StopWith;
/// assert_eq!(StopWith::default(), StopWith::Signal(ipc_core::Signal::SIGINT));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopWith {
    /// A signal to its process group (pm2's `kill_signal`, SIGINT by default).
    Signal(Signal),
    /// The JSON string `"shutdown"` on the control channel (pm2's
    /// `shutdown_with_message`); falls back to SIGINT when there is no channel.
    Message,
}

impl Default for StopWith {
    fn default() -> Self {
        StopWith::Signal(Signal::SIGINT)
    }
}

/// The control channel a managed process gets.
///
/// ```
/// use ipc_cluster::ControlChannel;
/// assert_eq!(ControlChannel::default(), ControlChannel::Uds);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ControlChannel {
    /// A socketpair at fd 3 (`IPC_ENDPOINT=uds:fd=3`): the toolkit's own, with fd
    /// passing. A cluster needs it.
    #[default]
    Uds,
    /// Node's `fork()` channel (`NODE_CHANNEL_FD`), so a Node program's
    /// `process.send('ready')` reaches us.
    Node,
    /// No channel: any program; it can still report ready through `NOTIFY_SOCKET`.
    None,
}

/// What tells the supervisor a started process is ready (pm2's `wait_ready`).
///
/// ```
/// use ipc_cluster::WaitReady;
/// assert_eq!(WaitReady::default(), WaitReady::No);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WaitReady {
    /// Ready as soon as it started (pm2's default).
    #[default]
    No,
    /// The ready message on the control channel: the JSON string `"ready"`, what
    /// [`worker::ready`](crate::worker::ready), `ipc_node::send_ready` and Node's
    /// `process.send('ready')` send.
    Message,
    /// systemd's protocol: `READY=1` written to the datagram socket named by
    /// `NOTIFY_SOCKET` (a private one per process; see [`notify`](crate::notify)).
    Notify,
    /// Whichever of the two comes first.
    Any,
}

/// How one process is supervised: pm2's settings with pm2's defaults; every
/// duration can be changed (tests use short ones).
///
/// ```
/// use std::time::Duration;
/// use ipc_cluster::{Config, Restart};
/// let config = Config::builder()
///     .restart(Restart::OnFailure)
///     .stop_exit_codes([0, 3])
///     .exp_backoff(Duration::from_millis(100))
///     .build();
/// assert_eq!(config.max_restarts, 16);
/// assert_eq!(config.min_uptime, Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// When to restart (default [`Restart::Always`]).
    pub restart: Restart,
    /// Exit codes after which the process is not restarted (pm2's `stop_exit_codes`).
    pub stop_exit_codes: Vec<i32>,
    /// An exit sooner than this after the start is an unstable restart (1 s).
    pub min_uptime: Duration,
    /// Unstable restarts allowed; one more unstable exit and the process is errored (16).
    pub max_restarts: u32,
    /// Fixed wait before each restart (pm2's `restart_delay`, 0).
    pub restart_delay: Duration,
    /// First delay of the exponential backoff (pm2's `exp_backoff_restart_delay`; off
    /// by default). Each restart waits 1.5 times longer, at most [`Config::backoff_max`],
    /// and the delay starts over once the process stayed up [`Config::backoff_reset`].
    pub exp_backoff: Option<Duration>,
    /// Cap of the exponential backoff (15 s).
    pub backoff_max: Duration,
    /// Uptime after which the exponential backoff starts over (30 s).
    pub backoff_reset: Duration,
    /// What says the process is ready (default: nothing, ready at once).
    pub wait_ready: WaitReady,
    /// How long to wait for ready before the start counts as failed (3 s).
    pub listen_timeout: Duration,
    /// How the process is asked to stop (SIGINT to its group).
    pub stop_with: StopWith,
    /// How long a graceful stop may take before SIGKILL to the whole group (1.6 s).
    pub kill_timeout: Duration,
    /// The control channel the process gets (default [`ControlChannel::Uds`]).
    pub control: ControlChannel,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            restart: Restart::Always,
            stop_exit_codes: Vec::new(),
            min_uptime: Duration::from_secs(1),
            max_restarts: 16,
            restart_delay: Duration::ZERO,
            exp_backoff: None,
            backoff_max: Duration::from_secs(15),
            backoff_reset: Duration::from_secs(30),
            wait_ready: WaitReady::No,
            listen_timeout: Duration::from_secs(3),
            stop_with: StopWith::default(),
            kill_timeout: Duration::from_millis(1600),
            control: ControlChannel::Uds,
        }
    }
}

impl Config {
    /// A builder starting from pm2's defaults.
    ///
    /// ```
    /// let config = ipc_cluster::Config::builder().max_restarts(3).build();
    /// assert_eq!(config.max_restarts, 3);
    /// ```
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder {
            config: Config::default(),
        }
    }
}

/// Builds a [`Config`]; every setting starts at pm2's default.
///
/// ```
/// use std::time::Duration;
/// let config = ipc_cluster::Config::builder()
///     .min_uptime(Duration::from_millis(200))
///     .kill_timeout(Duration::from_millis(300))
///     .build();
/// assert_eq!(config.kill_timeout, Duration::from_millis(300));
/// ```
#[derive(Debug, Clone)]
pub struct ConfigBuilder {
    config: Config,
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty),* $(,)?) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, value: $ty) -> Self {
                self.config.$name = value;
                self
            }
        )*
    };
}

impl ConfigBuilder {
    setters! {
        /// When to restart.
        restart: Restart,
        /// Unstable exits are those sooner than this after the start.
        min_uptime: Duration,
        /// Unstable restarts before the process is errored.
        max_restarts: u32,
        /// Fixed wait before each restart.
        restart_delay: Duration,
        /// Cap of the exponential backoff.
        backoff_max: Duration,
        /// Uptime after which the exponential backoff starts over.
        backoff_reset: Duration,
        /// What says the process is ready.
        wait_ready: WaitReady,
        /// How long to wait for ready.
        listen_timeout: Duration,
        /// How the process is asked to stop.
        stop_with: StopWith,
        /// Time between the graceful stop and SIGKILL.
        kill_timeout: Duration,
        /// The control channel the process gets.
        control: ControlChannel,
    }

    /// Exit codes after which the process is not restarted.
    pub fn stop_exit_codes(mut self, codes: impl IntoIterator<Item = i32>) -> Self {
        self.config.stop_exit_codes = codes.into_iter().collect();
        self
    }

    /// Turn on exponential backoff, starting at `first`.
    pub fn exp_backoff(mut self, first: Duration) -> Self {
        self.config.exp_backoff = Some(first);
        self
    }

    /// The finished [`Config`].
    pub fn build(self) -> Config {
        self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_pm2s() {
        let config = Config::default();
        assert_eq!(config.restart, Restart::Always);
        assert!(config.stop_exit_codes.is_empty());
        assert_eq!(config.min_uptime, Duration::from_secs(1));
        assert_eq!(config.max_restarts, 16);
        assert_eq!(config.restart_delay, Duration::ZERO);
        assert_eq!(config.exp_backoff, None);
        assert_eq!(config.backoff_max, Duration::from_secs(15));
        assert_eq!(config.backoff_reset, Duration::from_secs(30));
        assert_eq!(config.wait_ready, WaitReady::No);
        assert_eq!(config.listen_timeout, Duration::from_secs(3));
        assert_eq!(config.stop_with, StopWith::Signal(Signal::SIGINT));
        assert_eq!(config.kill_timeout, Duration::from_millis(1600));
    }
}
