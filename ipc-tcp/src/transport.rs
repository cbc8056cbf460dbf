//! [`TcpTransport`]: this crate behind the [`Transport`] trait, for run-time choice.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use async_trait::async_trait;
use ipc_core::{
    Capabilities, Channel, Child, Endpoint, Error, FrameConfig, Listener, Result, Transport,
};

use crate::options::{TcpOptions, DEFAULT_HANDSHAKE_TIMEOUT};

/// The TCP transport: name `"tcp"`, scheme `tcp://HOST:PORT`.
///
/// Through the trait the token comes from the environment: a listener requires the
/// token in `IPC_TOKEN` when that is set and otherwise accepts clients presenting none;
/// a client presents `IPC_TOKEN` when set, else none. A child started by
/// [`spawn`](Transport::spawn) finds both `IPC_ENDPOINT` and `IPC_TOKEN` in its
/// environment, so its `connect_with` just works. Use [`bind`](crate::bind) and
/// [`connect`](crate::connect) to pass a token explicitly.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// use ipc_core::Transport;
/// # if std::env::var_os("IPC_TOKEN").is_some() { return Ok(()); }
/// let tcp = ipc_tcp::TcpTransport::default();
/// let mut listener = tcp.listen(&tcp.example_endpoint().expect("tcp can listen")).await?;
/// let endpoint = listener.endpoint(); // tcp://127.0.0.1:PORT, the real port
/// let (server, client) = tokio::join!(listener.accept(), tcp.connect(&endpoint));
/// let (mut server, mut client) = (server?, client?);
/// client.send("ping".into()).await?;
/// assert_eq!(server.recv().await?.as_deref(), Some(&b"ping"[..]));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TcpTransport {
    handshake_timeout: Duration,
}

impl Default for TcpTransport {
    fn default() -> Self {
        TcpTransport {
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }
}

impl TcpTransport {
    /// The transport with a different handshake timeout (default 5 s), which also bounds
    /// how long [`spawn`](Transport::spawn) waits for the child to connect.
    ///
    /// ```
    /// let tcp = ipc_tcp::TcpTransport::default()
    ///     .with_handshake_timeout(std::time::Duration::from_secs(30));
    /// # let _ = tcp;
    /// ```
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    fn options(&self, config: FrameConfig) -> TcpOptions {
        TcpOptions::default()
            .token_from_env()
            .handshake_timeout(self.handshake_timeout)
            .frame(config)
    }
}

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

    async fn listen_with(
        &self,
        endpoint: &Endpoint,
        config: FrameConfig,
    ) -> Result<Box<dyn Listener>> {
        let listener = crate::bind(tcp_addr(endpoint)?, self.options(config)).await?;
        Ok(Box::new(listener))
    }

    async fn connect_with(
        &self,
        endpoint: &Endpoint,
        config: FrameConfig,
    ) -> Result<Box<dyn Channel>> {
        let channel = crate::connect(tcp_addr(endpoint)?, self.options(config)).await?;
        Ok(Box::new(channel))
    }

    async fn spawn_with(
        &self,
        command: Command,
        config: FrameConfig,
    ) -> Result<(Child, Box<dyn Channel>)> {
        let options = TcpOptions::default()
            .handshake_timeout(self.handshake_timeout)
            .frame(config);
        let (child, channel) = crate::spawn_with_options(command, options).await?;
        Ok((child, Box::new(channel)))
    }
}
