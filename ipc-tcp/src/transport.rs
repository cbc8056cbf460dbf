//! [`TcpTransport`]: this crate behind the [`Transport`] trait, for run-time choice.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;

use async_trait::async_trait;
use ipc_core::ConnectError;
use ipc_core::ListenError;
use ipc_core::SpawnError;
use ipc_core::{
    Capabilities, Channel, Child, Endpoint, Error, Listener, Options, Result, Transport,
};

use crate::options::with_env_token;

/// The TCP transport: name `"tcp"`, scheme `tcp://HOST:PORT`.
///
/// Through the trait, the token is the [options'](Options::token) when set, else the
/// environment's: a listener requires the token in `IPC_TOKEN` when that is set and
/// otherwise accepts clients presenting none; a client presents `IPC_TOKEN` when set,
/// else none. A child started by [`spawn`](Transport::spawn) finds both `IPC_ENDPOINT`
/// and `IPC_TOKEN` in its environment, so its `connect` just works. The handshake
/// timeout is [`Options::handshake_timeout`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// use ipc_core::Transport;
/// # if std::env::var_os("IPC_TOKEN").is_some() { return Ok(()); }
/// let tcp = ipc_tcp::TcpTransport;
/// let opts = ipc_core::Options::default();
/// let mut listener = tcp.listen(&tcp.example_endpoint().expect("tcp can listen"), &opts).await?;
/// let endpoint = listener.endpoint(); // tcp://127.0.0.1:PORT, the real port
/// let (server, client) = tokio::join!(listener.accept(), tcp.connect(&endpoint, &opts));
/// let (mut server, mut client) = (server?, client?);
/// client.send("ping".into()).await?;
/// assert_eq!(server.recv().await?.as_deref(), Some(&b"ping"[..]));
/// # Ok(()) }
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct TcpTransport;

fn tcp_addr(endpoint: &Endpoint) -> Result<SocketAddr> {
    match endpoint {
        Endpoint::Tcp(addr) => Ok(*addr),
        other => Err(Error::BadEndpoint {
            input: other.to_string(),
            reason: "the tcp transport serves tcp://HOST:PORT endpoints only".to_string(),
        }),
    }
}

#[async_trait]
impl Transport for TcpTransport {
    fn name(&self) -> &'static str {
        "tcp"
    }

    /// Binary frames, listen, spawn.
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
            .with_binary_frames(true)
            .with_listen(true)
            .with_spawn(true)
    }

    fn schemes(&self) -> &'static [&'static str] {
        &["tcp"]
    }

    fn example_endpoint(&self) -> Option<Endpoint> {
        Some(Endpoint::Tcp(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))))
    }

    async fn listen(
        &self,
        endpoint: &Endpoint,
        options: &Options,
    ) -> Result<Box<dyn Listener>, ListenError> {
        let listener = crate::bind(tcp_addr(endpoint)?, &with_env_token(options)).await?;
        Ok(Box::new(listener))
    }

    async fn connect(
        &self,
        endpoint: &Endpoint,
        options: &Options,
    ) -> Result<Box<dyn Channel>, ConnectError> {
        let channel = crate::connect(tcp_addr(endpoint)?, &with_env_token(options)).await?;
        Ok(Box::new(channel))
    }

    async fn spawn(
        &self,
        command: Command,
        options: &Options,
    ) -> Result<(Child, Box<dyn Channel>), SpawnError> {
        let (child, channel) = crate::spawn(command, options).await?;
        Ok((child, Box::new(channel)))
    }
}
