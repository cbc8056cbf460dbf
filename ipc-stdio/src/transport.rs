//! [`StdioTransport`]: the stdio backend behind the [`Transport`] trait.

use std::process::Command;

use async_trait::async_trait;
use ipc_core::ConnectError;
use ipc_core::ListenError;
use ipc_core::SpawnError;
use ipc_core::{
    Capabilities, Channel, Child, Endpoint, Error, Listener, Options, Result, Transport,
};

use crate::channel::NAME;
use crate::{from_stdio, spawn};

/// JSON lines over stdin/stdout as an [`ipc_core::Transport`]: name `"stdio"`, endpoint
/// scheme `stdio:` (this process's stdin/stdout, in a child).
///
/// - [`spawn`](Transport::spawn): [`spawn`](crate::spawn), the child's
///   stdin/stdout piped to the new channel.
/// - [`connect`](Transport::connect)`(&Endpoint::Stdio, ..)`:
///   [`from_stdio`](crate::from_stdio), in the child. Any other endpoint is
///   [`Error::BadEndpoint`].
/// - [`listen`](Transport::listen): [`Error::Unsupported`]; stdio joins exactly
///   one parent and one child, and [`example_endpoint`](Transport::example_endpoint) is
///   `None`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// use ipc_core::Transport;
/// let transport = ipc_stdio::StdioTransport;
/// assert_eq!(transport.name(), "stdio");
/// assert!(transport.listen(&ipc_core::Endpoint::Stdio, &Default::default()).await.is_err());
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

#[async_trait]
impl Transport for StdioTransport {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Binary frames (as `{"$bytes": BASE64}` lines), spawn; stdio cannot listen.
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE.with_binary_frames(true).with_spawn(true)
    }

    fn schemes(&self) -> &'static [&'static str] {
        &["stdio"]
    }

    /// `None`: stdio cannot listen.
    fn example_endpoint(&self) -> Option<Endpoint> {
        None
    }

    async fn listen(
        &self,
        _endpoint: &Endpoint,
        _options: &Options,
    ) -> Result<Box<dyn Listener>, ListenError> {
        Err(Error::unsupported(
            NAME,
            "listening: stdio connects exactly one parent and one child; use uds/tcp/fifo \
             to listen",
        )
        .into())
    }

    async fn connect(
        &self,
        endpoint: &Endpoint,
        options: &Options,
    ) -> Result<Box<dyn Channel>, ConnectError> {
        match endpoint {
            Endpoint::Stdio => Ok(Box::new(from_stdio(options)?)),
            other => Err(Error::BadEndpoint {
                input: other.to_string(),
                reason: "the stdio transport only connects to stdio: (this process's \
                         stdin/stdout)"
                    .into(),
            }
            .into()),
        }
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
