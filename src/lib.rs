//! # ipc: talk to child processes and other processes, over the transport you choose
//!
//! The facade of the ipc toolkit. It re-exports [`ipc_core`] (the [`Channel`] trait,
//! framing, codecs, endpoints, child processes) and each backend behind a default-on
//! cargo feature:
//!
//! | feature | module | transport | endpoints |
//! |---|---|---|---|
//! | `uds` | [`uds`] | Unix domain sockets, fd passing | `unix:/path`, `unix:@name`, `uds:fd=3` |
//! | `tcp` | [`tcp`] | TCP loopback with a token handshake | `tcp://127.0.0.1:7000` |
//!
//! Pick a transport at run time through [`registry()`]; a child finds its channel with
//! [`connect_from_env()`] without knowing which transport the parent chose.
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> ipc::Result<()> {
//! use ipc::{Channel, Role};
//! if ipc::role() == Role::Child {
//!     let mut ch = ipc::connect_from_env().await?;
//!     while let Some(msg) = ch.recv().await? { ch.send(msg).await?; } // echo
//!     return ch.close().await;
//! }
//! let transport = ipc::registry().get("uds")?; // or "tcp", from --transport
//! let exe = std::env::current_exe()?;
//! let (mut child, mut ch) = transport.spawn(std::process::Command::new(exe)).await?;
//! ch.send("ping".into()).await?;
//! assert_eq!(ch.recv().await?.unwrap(), "ping");
//! ch.close().await?;
//! child.wait().await?;
//! # Ok(()) }
//! ```

use std::sync::OnceLock;

pub use ipc_core::*;

#[cfg(feature = "tcp")]
pub use ipc_tcp as tcp;
#[cfg(feature = "uds")]
pub use ipc_uds as uds;

/// Every transport this build includes, by name and scheme.
///
/// ```
/// let names = ipc::registry().names();
/// # #[cfg(all(feature = "uds", feature = "tcp"))]
/// assert!(names.contains(&"uds") && names.contains(&"tcp"));
/// ```
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        #[allow(unused_mut)]
        let mut registry = Registry::new();
        #[cfg(feature = "uds")]
        registry.register(uds::UdsTransport);
        #[cfg(feature = "tcp")]
        registry.register(tcp::TcpTransport::default());
        registry
    })
}

/// In a child started by a transport's `spawn`: open the channel to the parent named by
/// `IPC_ENDPOINT` (see [`env`]).
///
/// ```no_run
/// # async fn demo() -> ipc::Result<()> {
/// let mut parent = ipc::connect_from_env().await?;
/// parent.send("ready".into()).await?;
/// # Ok(()) }
/// ```
pub async fn connect_from_env() -> Result<Box<dyn Channel>> {
    registry().connect_from_env().await
}
