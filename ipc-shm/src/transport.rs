//! [`ShmTransport`]: the shm [`Backend`].

use std::process::Command;

use ipc_core::{
    Backend, Capabilities, Child, ConnectError, Endpoint, ListenError, Options, SpawnError,
};

use crate::channel::{DEFAULT_RING_SIZE, NAME};
use crate::listener::example_dir;
use crate::{connect, spawn_with_ring_size, ShmAddress, ShmChannel, ShmListener};

/// Shared memory as a [`Backend`] (and so an [`ipc_core::Transport`]): name `"shm"`, endpoint scheme `shm:`
/// (`shm:/path`, a listener's rendezvous socket; `shm:fd=N`, inherited).
///
/// ```no_run
/// # async fn demo() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// use ipc_core::Transport;
/// let transport = ipc_shm::ShmTransport::default();
/// let cmd = std::process::Command::new("/path/to/child");
/// let (mut child, mut ch) = transport.spawn(cmd, &ipc_core::Options::default()).await?;
/// ch.send("hi".into()).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ShmTransport {
    ring_size: usize,
}

impl Default for ShmTransport {
    /// Rings of [`DEFAULT_RING_SIZE`] bytes.
    fn default() -> Self {
        ShmTransport {
            ring_size: DEFAULT_RING_SIZE,
        }
    }
}

impl ShmTransport {
    /// A transport whose segments have rings of `bytes` each (a power of two from 4 KiB
    /// to 1 GiB; a wrong size is reported when a segment is made).
    ///
    /// ```
    /// let transport = ipc_shm::ShmTransport::with_ring_size(8 << 20);
    /// assert_eq!(transport.ring_size(), 8 << 20);
    /// ```
    pub fn with_ring_size(bytes: usize) -> Self {
        ShmTransport { ring_size: bytes }
    }

    /// Bytes of each ring of the segments this transport makes.
    ///
    /// ```
    /// assert_eq!(ipc_shm::ShmTransport::default().ring_size(), ipc_shm::DEFAULT_RING_SIZE);
    /// ```
    pub fn ring_size(&self) -> usize {
        self.ring_size
    }
}

impl Backend for ShmTransport {
    const NAME: &'static str = NAME;
    const SCHEMES: &'static [&'static str] = &["shm"];
    const FORMS: &'static [&'static str] = crate::address::FORMS;
    type Channel = ShmChannel;
    type Listener = ShmListener;

    /// Binary frames, listen and spawn.
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
            .with_binary_frames(true)
            .with_listen(true)
            .with_spawn(true)
    }

    fn check_endpoint(&self, endpoint: &Endpoint) -> ipc_core::Result<()> {
        ShmAddress::try_from(endpoint).map(drop)
    }

    /// `shm:/tmp/ipc-shm-XXXXXX/sock`: a not-yet-existing rendezvous socket in a fresh
    /// 0700 directory, which the listener bound there removes on drop.
    fn example_endpoint(&self) -> Option<Endpoint> {
        match example_dir() {
            Ok(dir) => Some(ShmAddress::Path(dir.join("sock")).into()),
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
    ) -> Result<ShmChannel, ConnectError> {
        connect(endpoint, options).await
    }

    async fn listen(
        &self,
        endpoint: &Endpoint,
        options: &Options,
    ) -> Result<ShmListener, ListenError> {
        ShmListener::bind_with_ring_size(endpoint, options, self.ring_size)
    }

    async fn spawn(
        &self,
        command: Command,
        options: &Options,
    ) -> Result<(Child, ShmChannel), SpawnError> {
        spawn_with_ring_size(command, options, self.ring_size).await
    }
}
