//! The environment contract between a parent and the child it spawns.
//!
//! A transport's `spawn` sets, in the child's environment:
//!
//! | variable | meaning |
//! |---|---|
//! | `IPC_ENDPOINT` | the child's end, as an [`Endpoint`] string (`uds:fd=3`, `tcp://127.0.0.1:41234`, ...) |
//! | `IPC_TOKEN` | a secret the child presents in the handshake (TCP only) |
//! | `IPC_MAX_FRAME` | the frame limit in bytes the parent chose (both ends should agree) |
//!
//! The child calls `connect_from_env()` (in the `ipc` facade, which knows the
//! transports) and never needs to know which transport it got. A program that
//! re-executes itself asks [`role()`] which side it is, like Node's `cluster.isPrimary`.
//!
//! ```
//! use ipc_core::env::{role, Role};
//! // In a test process nobody spawned us as a child:
//! if std::env::var_os("IPC_ENDPOINT").is_none() {
//!     assert_eq!(role(), Role::Parent);
//! }
//! ```

use crate::endpoint::Endpoint;
use crate::error::{Error, Result};

/// Names the child's end of the channel.
pub const IPC_ENDPOINT: &str = "IPC_ENDPOINT";
/// The handshake secret, for transports that need one.
pub const IPC_TOKEN: &str = "IPC_TOKEN";

/// Set by Node.js's `child_process.fork()`: the fd of its IPC channel.
pub const NODE_CHANNEL_FD: &str = "NODE_CHANNEL_FD";

/// Which side of a spawned channel this process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Nobody gave us a channel: we are the parent (primary).
    Parent,
    /// `IPC_ENDPOINT` is set: a parent spawned us.
    Child,
}

/// [`Role::Child`] when `IPC_ENDPOINT` (or Node's `NODE_CHANNEL_FD`) is set, else
/// [`Role::Parent`].
pub fn role() -> Role {
    if std::env::var_os(IPC_ENDPOINT).is_some() || std::env::var_os(NODE_CHANNEL_FD).is_some() {
        Role::Child
    } else {
        Role::Parent
    }
}

/// The endpoint the parent named in `IPC_ENDPOINT`; failing that, `node:fd=N` when a
/// Node.js parent forked us (`NODE_CHANNEL_FD=N`).
///
/// ```
/// if std::env::var_os("IPC_ENDPOINT").is_none() {
///     assert!(ipc_core::env::endpoint_from_env().is_err());
/// }
/// ```
pub fn endpoint_from_env() -> Result<Endpoint> {
    if std::env::var_os(IPC_ENDPOINT).is_none() {
        if let Ok(fd) = std::env::var(NODE_CHANNEL_FD) {
            return format!("node:fd={fd}").parse();
        }
    }
    let raw = std::env::var(IPC_ENDPOINT).map_err(|_| {
        Error::NotAChild(format!(
            "{IPC_ENDPOINT} is not set: this process was not spawned by an ipc parent \
             (start it through Transport::spawn, or set {IPC_ENDPOINT}=ENDPOINT by hand)"
        ))
    })?;
    raw.parse()
}

/// The token from `IPC_TOKEN`, if set.
pub fn token_from_env() -> Option<String> {
    std::env::var(IPC_TOKEN).ok().filter(|t| !t.is_empty())
}

pub use crate::options::IPC_MAX_FRAME;
