//! [`PipeTransport`] and [`FifoTransport`]: the two [`Backend`]s.

use std::process::Command;

use ipc_core::{
    Backend, Capabilities, Child, ConnectError, Endpoint, Error, ListenError, NoListener, Options,
    Result, SpawnError,
};

use crate::channel::{FIFO, PIPE};
use crate::{
    connect_fifo, connect_inherited, fresh_dir, spawn_fifo, spawn_pipe, FifoAddress, FifoListener,
    PipeAddress, PipeChannel,
};

/// Anonymous pipes as a [`Backend`] (and so an [`ipc_core::Transport`]): name
/// `"pipe"`, scheme `pipe:` (`pipe:fd=R,W`, the ends a child inherits).
///
/// [`spawn`](ipc_core::Transport::spawn) wires a child by two pipes
/// ([`spawn_pipe`](crate::spawn_pipe)); the child connects with
/// [`connect`](ipc_core::Transport::connect) on the `pipe:fd=3,4` it finds in
/// `IPC_ENDPOINT` ([`connect_inherited`](crate::connect_inherited)). Anonymous pipes
/// have no name, so nothing can listen: [`listen`](ipc_core::Transport::listen)
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

impl Backend for PipeTransport {
    const NAME: &'static str = PIPE;
    const SCHEMES: &'static [&'static str] = &["pipe"];
    const FORMS: &'static [&'static str] = crate::address::PIPE_FORMS;
    type Channel = PipeChannel;
    type Listener = NoListener<PipeChannel>;

    /// Binary frames, spawn; anonymous pipes cannot listen.
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE.with_binary_frames(true).with_spawn(true)
    }

    fn check_endpoint(&self, endpoint: &Endpoint) -> Result<()> {
        PipeAddress::try_from(endpoint).map(drop)
    }

    async fn connect(
        &self,
        endpoint: &Endpoint,
        options: &Options,
    ) -> Result<PipeChannel, ConnectError> {
        let PipeAddress { read, write } = PipeAddress::try_from(endpoint)?;
        connect_inherited(read, write, options)
    }

    /// Refused: anonymous pipes have no name; the error points to the fifo transport.
    async fn listen(
        &self,
        _endpoint: &Endpoint,
        _options: &Options,
    ) -> Result<Self::Listener, ListenError> {
        Err(Error::unsupported(
            PIPE,
            "listening: anonymous pipes only join a parent and the child it spawns; \
             use the fifo transport (fifo:/DIR, a FIFO pair in a directory) to serve \
             clients that connect by name",
        )
        .into())
    }

    async fn spawn(
        &self,
        command: Command,
        options: &Options,
    ) -> Result<(Child, PipeChannel), SpawnError> {
        spawn_pipe(command, options).await
    }
}

/// FIFO pairs in a private directory as a [`Backend`] (and so an
/// [`ipc_core::Transport`]): name `"fifo"`, scheme `fifo:` (`fifo:/DIR`).
///
/// [`listen`](ipc_core::Transport::listen) binds a [`FifoListener`],
/// [`connect`](ipc_core::Transport::connect) is [`connect_fifo`](crate::connect_fifo),
/// and [`spawn`](ipc_core::Transport::spawn) is [`spawn_fifo`](crate::spawn_fifo)
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

impl Backend for FifoTransport {
    const NAME: &'static str = FIFO;
    const SCHEMES: &'static [&'static str] = &["fifo"];
    const FORMS: &'static [&'static str] = crate::address::FIFO_FORMS;
    type Channel = PipeChannel;
    type Listener = FifoListener;

    /// Binary frames, listen (one client at a time), spawn.
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
            .with_binary_frames(true)
            .with_listen(true)
            .with_spawn(true)
    }

    fn check_endpoint(&self, endpoint: &Endpoint) -> Result<()> {
        FifoAddress::try_from(endpoint).map(drop)
    }

    /// `fifo:$TMPDIR/ipc-fifo-PID-N-RANDOM`: a fresh path that does not exist yet; the
    /// listener bound there creates it (0700) and removes it on drop.
    fn example_endpoint(&self) -> Option<Endpoint> {
        Some(FifoAddress(fresh_dir()).into())
    }

    async fn connect(
        &self,
        endpoint: &Endpoint,
        options: &Options,
    ) -> Result<PipeChannel, ConnectError> {
        connect_fifo(&FifoAddress::try_from(endpoint)?.0, options).await
    }

    async fn listen(
        &self,
        endpoint: &Endpoint,
        options: &Options,
    ) -> Result<FifoListener, ListenError> {
        FifoListener::bind(FifoAddress::try_from(endpoint)?.0, options)
    }

    async fn spawn(
        &self,
        command: Command,
        options: &Options,
    ) -> Result<(Child, PipeChannel), SpawnError> {
        spawn_fifo(command, options).await
    }
}
