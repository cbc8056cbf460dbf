//! [`ShmTransport`]: the shm backend behind the [`Transport`] trait.

use std::process::Command;

use async_trait::async_trait;
use ipc_core::{
    Capabilities, Channel, Child, ConnectError, Endpoint, ListenError, Listener, Options,
    SpawnError, Transport,
};

use crate::channel::{DEFAULT_RING_SIZE, NAME};
use crate::listener::example_dir;
use crate::{connect, spawn_with_ring_size, ShmListener};

/// Shared memory as an [`ipc_core::Transport`]: name `"shm"`, endpoint scheme `shm:`
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

#[async_trait]
impl Transport for ShmTransport {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Binary frames, listen and spawn.
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
            .with_binary_frames(true)
            .with_listen(true)
            .with_spawn(true)
    }

    fn schemes(&self) -> &'static [&'static str] {
        &["shm"]
    }

    /// `shm:/tmp/ipc-shm-XXXXXX/sock`: a not-yet-existing rendezvous socket in a fresh
    /// 0700 directory, which the listener bound there removes on drop.
    fn example_endpoint(&self) -> Option<Endpoint> {
        match example_dir() {
            Ok(dir) => Some(Endpoint::ShmPath(dir.join("sock"))),
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
        Ok(Box::new(ShmListener::bind_with_ring_size(
            endpoint,
            options,
            self.ring_size,
        )?))
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
        let (child, channel) = spawn_with_ring_size(command, options, self.ring_size).await?;
        Ok((child, Box::new(channel)))
    }
}
