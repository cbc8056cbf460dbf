//! # ipc-cluster
//!
//! Process management for the ipc toolkit: what Node's `cluster`, pm2 and
//! egg-cluster do for Node programs, for any program.
//!
//! - [`Supervisor`]: keep one program running with pm2's semantics and defaults
//!   (restart policy, `min_uptime` and `max_restarts`, `restart_delay` or exponential
//!   backoff, `wait_ready` with `listen_timeout`, graceful stop then SIGKILL after
//!   `kill_timeout` to the whole process tree), reporting [`Event`]s.
//! - [`notify`]: systemd's `NOTIFY_SOCKET` readiness protocol, both sides.
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
mod tree_guard;
pub mod worker;

pub use config::{Config, ConfigBuilder, ControlChannel, Restart, StopWith, WaitReady};
pub use error::{Error, Result};
pub use events::{Event, ExitCause, ExitStatus, ReadyVia};
pub use protocol::Mode;
pub use supervisor::{CommandFactory, Supervisor};
