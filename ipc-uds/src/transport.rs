//! [`UdsTransport`]: the uds backend behind the [`Transport`] trait.

use std::process::Command;

use async_trait::async_trait;
use ipc_core::{
    Capabilities, Channel, Child, ConnectError, Endpoint, ListenError, Listener, Options, Result,
    SpawnError, Transport,
};

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
/// let opts = ipc_core::Options::default();
/// let mut listener = transport.listen(&endpoint, &opts).await?;
/// let mut client = transport.connect(&endpoint, &opts).await?;
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

    async fn listen(
        &self,
        endpoint: &Endpoint,
        options: &Options,
    ) -> Result<Box<dyn Listener>, ListenError> {
        Ok(Box::new(UdsListener::bind(endpoint, options)?))
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
