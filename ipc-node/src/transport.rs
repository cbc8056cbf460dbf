//! [`NodeTransport`]: Node's `fork()` channel behind the [`Transport`] trait.

use std::process::Command;

use async_trait::async_trait;
use ipc_core::ConnectError;
use ipc_core::ListenError;
use ipc_core::SpawnError;
use ipc_core::{
    Capabilities, Channel, Child, Endpoint, Error, Listener, Options, Result, Transport,
};

use crate::channel::NAME;
use crate::{connect, spawn};

/// Node.js's `child_process` channel as an [`ipc_core::Transport`]: name `"node"`,
/// endpoint scheme `node:` (`node:fd=N`, inherited).
///
/// - [`connect`](Transport::connect)`(node:fd=N)`: this process is a child
///   of Node (see [`connect`](crate::connect)). A child finds it through
///   `connect_from_env()`, since `NODE_CHANNEL_FD=N` names `node:fd=N` when
///   `IPC_ENDPOINT` is unset.
/// - [`spawn`](Transport::spawn)`(command)`: start a Node child (or any
///   child that speaks the protocol, a Rust one included) as `fork()` would (see
///   [`spawn`](crate::spawn)).
/// - [`listen`](Transport::listen): [`Error::Unsupported`]; Node's channel
///   exists only between a parent and the child it started.
///
/// ```no_run
/// # async fn demo() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// use ipc_core::Transport;
/// let mut command = std::process::Command::new("node");
/// command.arg("child.js");
/// let (mut child, mut channel) = ipc_node::NodeTransport.spawn(command, &Default::default()).await?;
/// channel.send(r#"{"id":1,"op":"add","a":1,"b":2}"#.into()).await?;
/// let reply = channel.recv().await?; // Some(b"{\"id\":1,\"result\":3}")
/// channel.close().await?;
/// child.wait().await?;
/// # let _ = reply; Ok(()) }
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct NodeTransport;

#[async_trait]
impl Transport for NodeTransport {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Spawn only; every frame must be one JSON text, and nothing can listen.
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE.with_spawn(true)
    }

    fn schemes(&self) -> &'static [&'static str] {
        &["node"]
    }

    /// `None`: there is nothing to listen on.
    fn example_endpoint(&self) -> Option<Endpoint> {
        None
    }

    async fn listen(
        &self,
        endpoint: &Endpoint,
        _options: &Options,
    ) -> Result<Box<dyn Listener>, ListenError> {
        Err(Error::unsupported(
            NAME,
            format!(
                "listening (on {endpoint}): Node's channel exists only between a parent \
                 and the child it forked; use spawn, or connect in the child"
            ),
        )
        .into())
    }

    async fn connect(
        &self,
        endpoint: &Endpoint,
        options: &Options,
    ) -> Result<Box<dyn Channel>, ConnectError> {
        Ok(Box::new(connect(endpoint, options).await?))
    }

    async fn spawn(
        &self,
        command: Command,
        options: &Options,
    ) -> Result<(Child, Box<dyn Channel>), SpawnError> {
        let (child, channel) = spawn(command, options).await?;
        Ok((child, Box::new(channel)))
    }
}
