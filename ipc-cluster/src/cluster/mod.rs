//! [`Cluster`]: N workers sharing one listening port (Node's `cluster`, for any worker
//! binary that uses [`Worker`](crate::Worker)), with replacement of dead workers, the
//! "suicide" pattern, rolling reload and graceful shutdown.
//!
//! The owner's [`Cluster`] handle ([`handle`]) sends commands to one task, the
//! [`actor`], which owns every member's [slot](slots) and handles one input at a
//! time: [`lifecycle`] (ready, fatal, exit, restart), [`handoff`] (fds to workers,
//! round-robin dispatch), [`reload`], [`scale`], [`shutdown`] and messenger [`routing`].
//! [`listen`] binds the port (or takes systemd's socket) and accepts in round-robin
//! mode.

use std::process::Command;
use std::sync::Arc;

use crate::error::Error;

mod actor;
mod config;
mod events;
mod handle;
mod handoff;
mod lifecycle;
mod listen;
mod reload;
mod routing;
mod scale;
mod shutdown;
mod slots;

pub use config::{ClusterConfig, ClusterConfigBuilder};
pub use events::{ClusterEvent, WorkerInfo};
pub use handle::Cluster;

/// Makes the command of worker `index` (a fresh `Command` for each start).
pub type WorkerFactory = Arc<dyn Fn(usize) -> Command + Send + Sync>;

/// The error for a request to a cluster whose task has stopped.
fn gone() -> Error {
    Error::State("the cluster has stopped".into())
}
