//! # ipc-cluster
//!
//! Process management for the ipc toolkit: what Node's `cluster`, pm2 and
//! egg-cluster do for Node programs, for any program.
//!
//! - [`Supervisor`]: keep one program running with pm2's semantics and defaults
//!   (restart policy, `min_uptime` and `max_restarts`, `restart_delay` or exponential
//!   backoff, `wait_ready` with `listen_timeout`, graceful stop then SIGKILL after
//!   `kill_timeout` to the whole process tree), reporting [`Event`]s.
//! - [`Cluster`]: N workers (default: the CPUs) sharing one listening port, in one of
//!   three [`Mode`]s: `shared` (the primary binds and passes the listening socket to
//!   every worker over `SCM_RIGHTS`), `rr` (the primary accepts and hands each
//!   connection to the next worker that acknowledged its previous one, like Node's
//!   `SCHED_RR`; a refused connection goes to another worker, the refusing worker stays
//!   in the rotation, and a connection every ready worker refused is closed) and
//!   `reuseport` (each
//!   worker binds with `SO_REUSEPORT`). Dead workers are replaced (with the
//!   supervisor's restart policy), a worker that reports a fatal error leaves only
//!   once its replacement is ready, [`Cluster::reload`] replaces every worker with no
//!   downtime, and SIGINT/SIGTERM drain and stop it ([`Cluster::run_until_signal`]).
//!   It takes a socket from systemd socket activation (`LISTEN_FDS`) and says
//!   `READY=1` to `NOTIFY_SOCKET` once every worker is ready.
//! - [`Worker`]: the worker's side. Its [`WorkerListener`] yields
//!   `tokio::net::TcpStream`s in every mode, so worker code does not change with it;
//!   each worker knows its index (`IPC_WORKER_INDEX`, and pm2's `NODE_APP_INSTANCE`).
//! - [`messenger`]: egg-cluster's master/agent/worker messages, routed by the primary,
//!   with an optional agent process started before the workers.
//! - [`notify`]: systemd's `NOTIFY_SOCKET` readiness protocol, both sides;
//!   [`systemd`]: taking socket-activated fds.
//!
//! # Reloads in reuseport mode
//!
//! Each worker has a socket of its own there, and the kernel picks the socket of a
//! new connection by its hash. A retired worker takes the connections already queued
//! on its socket before closing it, but one the kernel queues there in between is
//! reset on close unless `net.ipv4.tcp_migrate_req` is 1 (Linux 5.14 and later, per
//! network namespace), which moves it to another worker's socket. A reload in
//! reuseport mode warns through `tracing` when it is not; shared and rr modes have no
//! such window.
//!
//! # Handle passing
//!
//! A control frame carries at most one fd, and after a frame with an fd the primary
//! writes nothing else to that worker until the worker acknowledged it. If the channel
//! dies before the acknowledgement, the hand-off is an error: the primary still owns
//! the fd (a connection goes to another worker), nothing crashes and no fd leaks.
//!
//! Every managed process runs in a process group of its own and dies with this
//! process, even when this process is SIGKILLed: its direct child by
//! `PR_SET_PDEATHSIG`, everything it started by a guard process that SIGKILLs the
//! groups once this process is gone.
//!
//! ```no_run
//! # async fn demo() {
//! use ipc_cluster::{Config, Supervisor};
//! let mut sup = Supervisor::start(Config::default(), || std::process::Command::new("./server"));
//! while let Some(event) = sup.next_event().await {
//!     println!("{event:?}");
//! }
//! # }
//! ```

mod cluster;
mod config;
mod error;
mod events;
mod launch;
pub mod messenger;
pub mod notify;
mod policy;
mod process;
mod protocol;
mod supervisor;
pub mod systemd;
mod tree_guard;
pub mod worker;

pub use cluster::{
    Cluster, ClusterConfig, ClusterConfigBuilder, ClusterEvent, WorkerFactory, WorkerInfo,
};
pub use config::{Config, ConfigBuilder, ControlChannel, Restart, StopWith, WaitReady};
pub use error::{Error, Result};
pub use events::{Event, ExitCause, ExitStatus, ReadyVia};
pub use protocol::Mode;
pub use supervisor::{CommandFactory, Supervisor};
pub use worker::{Worker, WorkerListener};
