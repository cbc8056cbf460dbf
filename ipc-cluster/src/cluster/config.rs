//! [`ClusterConfig`]: how a cluster runs, and its builder.

use std::net::SocketAddr;
use std::time::Duration;

use crate::config::Config;
use crate::protocol::Mode;

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
    /// Where to listen (default `127.0.0.1:0`, a free port; see [`Cluster::local_addr`](crate::Cluster::local_addr)).
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
