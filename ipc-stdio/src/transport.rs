//! [`StdioTransport`]: the stdio [`Backend`].

use std::process::Command;

use ipc_core::{
    Backend, Capabilities, Child, ConnectError, Endpoint, Error, NoListener, Options, SpawnError,
};

use crate::channel::NAME;
use crate::{from_stdio, spawn, StdioAddress, StdioChannel};

/// JSON lines over stdin/stdout as a [`Backend`] (and so an [`ipc_core::Transport`]):
/// name `"stdio"`, endpoint scheme `stdio:` (this process's stdin/stdout, in a child).
///
/// - [`spawn`](ipc_core::Transport::spawn): [`spawn`](crate::spawn), the child's
///   stdin/stdout piped to the new channel.
/// - [`connect`](ipc_core::Transport::connect)`(stdio:)`:
///   [`from_stdio`](crate::from_stdio), in the child. Any other endpoint is
///   [`Error::BadEndpoint`].
/// - [`listen`](ipc_core::Transport::listen): [`Error::Unsupported`]; stdio joins
///   exactly one parent and one child, and
///   [`example_endpoint`](ipc_core::Transport::example_endpoint) is `None`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// use ipc_core::Transport;
/// let transport = ipc_stdio::StdioTransport;
/// assert_eq!(transport.name(), "stdio");
/// assert!(transport.listen(&"stdio:".parse()?, &Default::default()).await.is_err());
///
/// let (mut child, mut channel) = transport.spawn(std::process::Command::new("cat"), &Default::default()).await?;
/// channel.send("not JSON, so it travels as base64".into()).await?;
/// assert_eq!(channel.recv().await?.as_deref(), Some(&b"not JSON, so it travels as base64"[..]));
/// channel.close().await?;
/// assert_eq!(channel.recv().await?, None);
/// drop(channel);
/// assert!(child.wait().await?.success());
/// # Ok(()) }
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct StdioTransport;

impl Backend for StdioTransport {
    const NAME: &'static str = NAME;
    const SCHEMES: &'static [&'static str] = &["stdio"];
    const FORMS: &'static [&'static str] = crate::address::FORMS;
    type Channel = StdioChannel;
    type Listener = NoListener<StdioChannel>;

    /// Binary frames (as `{"$bytes": BASE64}` lines), spawn; stdio cannot listen.
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE.with_binary_frames(true).with_spawn(true)
    }

    fn check_endpoint(&self, endpoint: &Endpoint) -> ipc_core::Result<()> {
        StdioAddress::try_from(endpoint).map(drop)
    }

    async fn connect(
        &self,
        endpoint: &Endpoint,
        options: &Options,
    ) -> Result<StdioChannel, ConnectError> {
        StdioAddress::try_from(endpoint)?;
        from_stdio(options)
    }

    /// Refused: stdio connects exactly one parent and one child.
    async fn listen(
        &self,
        _endpoint: &Endpoint,
        _options: &Options,
    ) -> Result<Self::Listener, ipc_core::ListenError> {
        Err(Error::unsupported(
            NAME,
            "listening: stdio connects exactly one parent and one child; use uds/tcp/fifo \
             to listen",
        )
        .into())
    }

    async fn spawn(
        &self,
        command: Command,
        options: &Options,
    ) -> Result<(Child, StdioChannel), SpawnError> {
        spawn(command, options).await
    }
}
