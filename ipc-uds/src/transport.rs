//! [`UdsTransport`]: the uds [`Backend`].

use std::process::Command;

use ipc_core::{
    Backend, Capabilities, Child, ConnectError, Endpoint, ListenError, Options, SpawnError,
};

use crate::socket_file::register_example_dir;
use crate::{connect, spawn, UdsAddress, UdsChannel, UdsListener};

/// Unix domain sockets as a [`Backend`] (and so an [`ipc_core::Transport`]): name
/// `"uds"`, endpoint schemes `unix:` (`unix:/path`, `unix:@name`) and `uds:`
/// (`uds:fd=N`, inherited).
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

impl Backend for UdsTransport {
    const NAME: &'static str = crate::channel::NAME;
    const SCHEMES: &'static [&'static str] = &["unix", "uds"];
    const FORMS: &'static [&'static str] = crate::address::FORMS;
    type Channel = UdsChannel;
    type Listener = UdsListener;

    /// Binary frames, listen, spawn, and fd passing (through [`UdsChannel`]).
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
            .with_binary_frames(true)
            .with_listen(true)
            .with_spawn(true)
            .with_fd_passing(true)
    }

    fn check_endpoint(&self, endpoint: &Endpoint) -> ipc_core::Result<()> {
        UdsAddress::try_from(endpoint).map(drop)
    }

    /// `unix:/tmp/ipc-uds-XXXXXX/sock`: a not-yet-existing socket in a fresh 0700
    /// directory, which the listener bound there removes (with the socket) on drop.
    fn example_endpoint(&self) -> Option<Endpoint> {
        match tempfile::Builder::new().prefix("ipc-uds-").tempdir() {
            Ok(dir) => {
                let dir = dir.keep();
                let path = dir.join("sock");
                register_example_dir(dir);
                Some(UdsAddress::Path(path).into())
            }
            Err(e) => {
                tracing::warn!("no example endpoint: cannot create a temp directory: {e}");
                None
            }
        }
    }

    async fn connect(
        &self,
        endpoint: &Endpoint,
        options: &Options,
    ) -> Result<UdsChannel, ConnectError> {
        connect(endpoint, options).await
    }

    async fn listen(
        &self,
        endpoint: &Endpoint,
        options: &Options,
    ) -> Result<UdsListener, ListenError> {
        UdsListener::bind(endpoint, options)
    }

    async fn spawn(
        &self,
        command: Command,
        options: &Options,
    ) -> Result<(Child, UdsChannel), SpawnError> {
        spawn(command, options).await
    }
}
