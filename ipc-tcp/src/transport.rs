//! [`TcpTransport`]: the tcp [`Backend`], for run-time choice.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;

use ipc_core::{
    Backend, Capabilities, Child, ConnectError, Endpoint, ListenError, Options, Result, SpawnError,
};

use crate::options::with_env_token;
use crate::{TcpAddress, TcpChannel, TcpListener};

/// The TCP transport: name `"tcp"`, scheme `tcp://HOST:PORT`.
///
/// Through the trait, the token is the [options'](Options::token) when set, else the
/// environment's: a listener requires the token in `IPC_TOKEN` when that is set and
/// otherwise accepts clients presenting none; a client presents `IPC_TOKEN` when set,
/// else none. A child started by [`spawn`](ipc_core::Transport::spawn) finds both
/// `IPC_ENDPOINT` and `IPC_TOKEN` in its environment, so its `connect` just works. The
/// handshake timeout is [`Options::handshake_timeout`].
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
    TcpAddress::try_from(endpoint).map(|address| address.0)
}

impl Backend for TcpTransport {
    const NAME: &'static str = "tcp";
    const SCHEMES: &'static [&'static str] = &["tcp"];
    const FORMS: &'static [&'static str] = crate::address::FORMS;
    type Channel = TcpChannel;
    type Listener = TcpListener;

    /// Binary frames, listen, spawn.
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
            .with_binary_frames(true)
            .with_listen(true)
            .with_spawn(true)
    }

    fn check_endpoint(&self, endpoint: &Endpoint) -> Result<()> {
        tcp_addr(endpoint).map(drop)
    }

    fn example_endpoint(&self) -> Option<Endpoint> {
        Some(TcpAddress(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).into())
    }

    async fn connect(
        &self,
        endpoint: &Endpoint,
        options: &Options,
    ) -> Result<TcpChannel, ConnectError> {
        crate::connect(tcp_addr(endpoint)?, &with_env_token(options)).await
    }

    async fn listen(
        &self,
        endpoint: &Endpoint,
        options: &Options,
    ) -> Result<TcpListener, ListenError> {
        crate::bind(tcp_addr(endpoint)?, &with_env_token(options)).await
    }

    async fn spawn(
        &self,
        command: Command,
        options: &Options,
    ) -> Result<(Child, TcpChannel), SpawnError> {
        crate::spawn(command, options).await
    }
}
