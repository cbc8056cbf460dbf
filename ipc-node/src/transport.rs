//! [`NodeTransport`]: Node's `fork()` channel as a [`Backend`].

use std::process::Command;

use ipc_core::{
    Backend, Capabilities, Child, ConnectError, Endpoint, Error, ListenError, NoListener, Options,
    SpawnError,
};

use crate::channel::NAME;
use crate::{connect, spawn, NodeChannel};

/// Node.js's `child_process` channel as a [`Backend`] (and so an
/// [`ipc_core::Transport`]): name `"node"`, endpoint scheme `node:` (`node:fd=N`,
/// inherited).
///
/// - [`connect`](ipc_core::Transport::connect)`(node:fd=N)`: this process is a child
///   of Node (see [`connect`](crate::connect)). A child finds it through
///   `connect_from_env()`, since `NODE_CHANNEL_FD=N` names `node:fd=N` when
///   `IPC_ENDPOINT` is unset.
/// - [`spawn`](ipc_core::Transport::spawn)`(command)`: start a Node child (or any
///   child that speaks the protocol, a Rust one included) as `fork()` would (see
///   [`spawn`](crate::spawn)).
/// - [`listen`](ipc_core::Transport::listen): [`Error::Unsupported`]; Node's channel
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

impl Backend for NodeTransport {
    const NAME: &'static str = NAME;
    const SCHEMES: &'static [&'static str] = &["node"];
    const FORMS: &'static [&'static str] = crate::address::FORMS;
    type Channel = NodeChannel;
    type Listener = NoListener<NodeChannel>;

    /// Spawn only; every frame must be one JSON text, and nothing can listen.
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE.with_spawn(true)
    }

    fn check_endpoint(&self, endpoint: &Endpoint) -> ipc_core::Result<()> {
        crate::NodeAddress::try_from(endpoint).map(drop)
    }

    /// `node:fd=N` when a Node.js parent forked this process (`NODE_CHANNEL_FD=N`).
    fn endpoint_from_env(&self) -> Option<Endpoint> {
        crate::connect::endpoint_from_env()
    }

    async fn connect(
        &self,
        endpoint: &Endpoint,
        options: &Options,
    ) -> Result<NodeChannel, ConnectError> {
        connect(endpoint, options).await
    }

    /// Refused: Node's channel exists only between a parent and the child it forked.
    async fn listen(
        &self,
        endpoint: &Endpoint,
        _options: &Options,
    ) -> Result<Self::Listener, ListenError> {
        Err(Error::unsupported(
            NAME,
            format!(
                "listening (on {endpoint}): Node's channel exists only between a parent \
                 and the child it forked; use spawn, or connect in the child"
            ),
        )
        .into())
    }

    async fn spawn(
        &self,
        command: Command,
        options: &Options,
    ) -> Result<(Child, NodeChannel), SpawnError> {
        spawn(command, options).await
    }
}
