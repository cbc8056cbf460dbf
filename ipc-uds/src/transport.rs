//! [`UdsTransport`]: the uds backend behind the [`Transport`] trait.

use std::process::Command;

use async_trait::async_trait;
use ipc_core::frame::FrameConfig;
use ipc_core::{Capabilities, Channel, Child, Endpoint, Listener, Result, Transport};

use crate::channel::NAME;
use crate::socket_file::register_example_dir;
use crate::{connect, spawn, UdsListener};

/// Unix domain sockets as an [`ipc_core::Transport`]: name `"uds"`, endpoint schemes
/// `unix:` (`unix:/path`, `unix:@name`) and `uds:` (`uds:fd=N`, inherited).
///
/// ```no_run
/// # async fn demo() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// use ipc_core::Transport;
/// let transport = ipc_uds::UdsTransport;
/// let endpoint = transport.example_endpoint().expect("a temp dir");
/// let mut listener = transport.listen(&endpoint).await?;
/// let mut client = transport.connect(&endpoint).await?;
/// let mut server = listener.accept().await?;
/// client.send("hi".into()).await?;
/// assert_eq!(server.recv().await?.as_deref(), Some(&b"hi"[..]));
/// # Ok(()) }
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct UdsTransport;

#[async_trait]
impl Transport for UdsTransport {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Binary frames, listen, spawn, and fd passing (through [`UdsChannel`](crate::UdsChannel)).
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
            .with_binary_frames(true)
            .with_listen(true)
            .with_spawn(true)
            .with_fd_passing(true)
    }

    fn schemes(&self) -> &'static [&'static str] {
        &["unix", "uds"]
    }

    /// `unix:/tmp/ipc-uds-XXXXXX/sock`: a not-yet-existing socket in a fresh 0700
    /// directory, which the listener bound there removes (with the socket) on drop.
    fn example_endpoint(&self) -> Option<Endpoint> {
        match tempfile::Builder::new().prefix("ipc-uds-").tempdir() {
            Ok(dir) => {
                let dir = dir.keep();
                let path = dir.join("sock");
                register_example_dir(dir);
                Some(Endpoint::UnixPath(path))
            }
            Err(e) => {
                tracing::warn!("no example endpoint: cannot create a temp directory: {e}");
                None
            }
        }
    }

    async fn listen_with(
        &self,
        endpoint: &Endpoint,
        config: FrameConfig,
    ) -> Result<Box<dyn Listener>> {
        Ok(Box::new(UdsListener::bind(endpoint, config)?))
    }

    async fn connect_with(
        &self,
        endpoint: &Endpoint,
        config: FrameConfig,
    ) -> Result<Box<dyn Channel>> {
        Ok(Box::new(connect(endpoint, config).await?))
    }

    async fn spawn_with(
        &self,
        command: Command,
        config: FrameConfig,
    ) -> Result<(Child, Box<dyn Channel>)> {
        let (child, channel) = spawn(command, config).await?;
        Ok((child, Box::new(channel)))
    }
}
