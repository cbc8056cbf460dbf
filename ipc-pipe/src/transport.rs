//! [`PipeTransport`] and [`FifoTransport`]: the two backends behind the
//! [`Transport`] trait.

use std::process::Command;

use async_trait::async_trait;
use ipc_core::ConnectError;
use ipc_core::ListenError;
use ipc_core::SpawnError;
use ipc_core::{
    Capabilities, Channel, Child, Endpoint, Error, Listener, Options, Result, Transport,
};

use crate::channel::{FIFO, PIPE};
use crate::{connect_fifo, connect_inherited, fresh_dir, spawn_fifo, spawn_pipe, FifoListener};

fn wrong_endpoint(endpoint: &Endpoint, transport: &str, expected: &str) -> Error {
    Error::BadEndpoint {
        input: endpoint.to_string(),
        reason: format!("the {transport} transport serves {expected} endpoints only"),
    }
}

/// Anonymous pipes as an [`ipc_core::Transport`]: name `"pipe"`, scheme `pipe:`
/// (`pipe:fd=R,W`, the ends a child inherits).
///
/// [`spawn`](Transport::spawn) wires a child by two pipes
/// ([`spawn_pipe`](crate::spawn_pipe)); the child connects with
/// [`connect`](Transport::connect) on the `pipe:fd=3,4` it finds in
/// `IPC_ENDPOINT` ([`connect_inherited`](crate::connect_inherited)). Anonymous pipes
/// have no name, so nothing can listen: [`listen`](Transport::listen)
/// returns [`Error::Unsupported`] and points to [`FifoTransport`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// use ipc_core::Transport;
/// let transport = ipc_pipe::PipeTransport;
/// assert!(transport.example_endpoint().is_none());
/// let mut cmd = std::process::Command::new("/bin/sh");
/// cmd.args(["-c", r#"test "$IPC_ENDPOINT" = pipe:fd=3,4"#]);
/// let (mut child, _channel) = transport.spawn(cmd, &Default::default()).await?;
/// assert!(child.wait().await?.success());
/// # Ok(()) }
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct PipeTransport;

#[async_trait]
impl Transport for PipeTransport {
    fn name(&self) -> &'static str {
        PIPE
    }

    /// Binary frames, spawn; anonymous pipes cannot listen.
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE.with_binary_frames(true).with_spawn(true)
    }

    fn schemes(&self) -> &'static [&'static str] {
        &["pipe"]
    }

    /// `None`: anonymous pipes cannot listen.
    fn example_endpoint(&self) -> Option<Endpoint> {
        None
    }

    async fn listen(
        &self,
        _endpoint: &Endpoint,
        _options: &Options,
    ) -> Result<Box<dyn Listener>, ListenError> {
        Err(Error::unsupported(
            PIPE,
            "listening: anonymous pipes only join a parent and the child it spawns; \
             use the fifo transport (fifo:/DIR, a FIFO pair in a directory) to serve \
             clients that connect by name",
        )
        .into())
    }

    async fn connect(
        &self,
        endpoint: &Endpoint,
        options: &Options,
    ) -> Result<Box<dyn Channel>, ConnectError> {
        match endpoint {
            Endpoint::Pipe { read, write } => {
                Ok(Box::new(connect_inherited(*read, *write, options)?))
            }
            other => Err(wrong_endpoint(
                other,
                PIPE,
                "inherited pipe:fd=R,W (for a FIFO directory use the fifo transport)",
            )
            .into()),
        }
    }

    async fn spawn(
        &self,
        command: Command,
        options: &Options,
    ) -> Result<(Child, Box<dyn Channel>), SpawnError> {
        let (child, channel) = spawn_pipe(command, options).await?;
        Ok((child, Box::new(channel)))
    }
}

/// FIFO pairs in a private directory as an [`ipc_core::Transport`]: name `"fifo"`,
/// scheme `fifo:` (`fifo:/DIR`).
///
/// [`listen`](Transport::listen) binds a [`FifoListener`],
/// [`connect`](Transport::connect) is [`connect_fifo`](crate::connect_fifo),
/// and [`spawn`](Transport::spawn) is [`spawn_fifo`](crate::spawn_fifo)
/// (a fresh private directory per child, removed once the child has connected).
/// A directory serves one client at a time.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// use ipc_core::Transport;
/// let transport = ipc_pipe::FifoTransport;
/// let endpoint = transport.example_endpoint().expect("a temp path");
/// let opts = ipc_core::Options::default();
/// let mut listener = transport.listen(&endpoint, &opts).await?;
/// let mut client = transport.connect(&endpoint, &opts).await?;
/// let mut server = listener.accept().await?;
/// client.send("hi".into()).await?;
/// assert_eq!(server.recv().await?.as_deref(), Some(&b"hi"[..]));
/// # Ok(()) }
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct FifoTransport;

#[async_trait]
impl Transport for FifoTransport {
    fn name(&self) -> &'static str {
        FIFO
    }

    /// Binary frames, listen (one client at a time), spawn.
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
            .with_binary_frames(true)
            .with_listen(true)
            .with_spawn(true)
    }

    fn schemes(&self) -> &'static [&'static str] {
        &["fifo"]
    }

    /// `fifo:$TMPDIR/ipc-fifo-PID-N-RANDOM`: a fresh path that does not exist yet; the
    /// listener bound there creates it (0700) and removes it on drop.
    fn example_endpoint(&self) -> Option<Endpoint> {
        Some(Endpoint::Fifo(fresh_dir()))
    }

    async fn listen(
        &self,
        endpoint: &Endpoint,
        options: &Options,
    ) -> Result<Box<dyn Listener>, ListenError> {
        match endpoint {
            Endpoint::Fifo(dir) => Ok(Box::new(FifoListener::bind(dir, options)?)),
            other => Err(wrong_endpoint(other, FIFO, "fifo:/DIR").into()),
        }
    }

    async fn connect(
        &self,
        endpoint: &Endpoint,
        options: &Options,
    ) -> Result<Box<dyn Channel>, ConnectError> {
        match endpoint {
            Endpoint::Fifo(dir) => Ok(Box::new(connect_fifo(dir, options).await?)),
            other => Err(wrong_endpoint(other, FIFO, "fifo:/DIR").into()),
        }
    }

    async fn spawn(
        &self,
        command: Command,
        options: &Options,
    ) -> Result<(Child, Box<dyn Channel>), SpawnError> {
        let (child, channel) = spawn_fifo(command, options).await?;
        Ok((child, Box::new(channel)))
    }
}
