//! The environment contract between a parent and the child it spawns.
//!
//! A transport's `spawn` sets, in the child's environment:
//!
//! | variable | meaning |
//! |---|---|
//! | `IPC_ENDPOINT` | the child's end, as an [`Endpoint`] string (`uds:fd=3`, `tcp://127.0.0.1:41234`, ...) |
//! | `IPC_MAX_FRAME` | the frame limit in bytes the parent chose (both ends should agree) |
//!
//! A transport may add variables of its own (tcp its token); they are that
//! transport's business, and a backend that finds its channel another way (Node's
//! `fork()` channel) says so through
//! [`Backend::endpoint_from_env`](crate::Backend::endpoint_from_env).
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
/// Which side of a spawned channel this process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Nobody gave us a channel: we are the parent (primary).
    Parent,
    /// `IPC_ENDPOINT` is set: a parent spawned us.
    Child,
}

/// [`Role::Child`] when `IPC_ENDPOINT` is set (to any value), else [`Role::Parent`].
///
/// Only `IPC_ENDPOINT` is looked at; [`Registry::role`](crate::Registry::role) (the
/// `ipc` facade's `role()`) also asks each backend whether the environment gives this
/// process a channel of its own kind (a Node.js parent's `fork()` channel).
pub fn role() -> Role {
    if std::env::var_os(IPC_ENDPOINT).is_some() {
        Role::Child
    } else {
        Role::Parent
    }
}

/// The endpoint the parent named in `IPC_ENDPOINT` (checked only for its scheme: the
/// transport serving it parses the address). See
/// [`Registry::connect_from_env`](crate::Registry::connect_from_env) for the search
/// that also asks each backend.
///
/// ```
/// if std::env::var_os("IPC_ENDPOINT").is_none() {
///     assert!(ipc_core::env::endpoint_from_env().is_err());
/// }
/// ```
pub fn endpoint_from_env() -> Result<Endpoint> {
    let raw = std::env::var(IPC_ENDPOINT).map_err(|_| {
        Error::NotAChild(format!(
            "{IPC_ENDPOINT} is not set: this process was not spawned by an ipc parent \
             (start it through Transport::spawn, or set {IPC_ENDPOINT}=ENDPOINT by hand)"
        ))
    })?;
    raw.parse()
}

pub use crate::options::IPC_MAX_FRAME;
