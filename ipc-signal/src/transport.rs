//! [`SignalTransport`]: the signal [`Backend`].

use std::process::Command;

use ipc_core::{
    Backend, Capabilities, Child, ConnectError, Endpoint, Error, ListenError, NoListener, Options,
    SpawnError,
};

use crate::SignalAddress;

const NAME: &str = "signal";

/// Whether data channels exist on this platform.
const DATA: bool = cfg!(all(target_os = "linux", target_pointer_width = "64"));

/// The channel of the signal transport: [`SignalChannel`](crate::SignalChannel) where
/// data channels exist, a boxed channel (never made) elsewhere.
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
type Channel = crate::SignalChannel;
#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
type Channel = ipc_core::Joined;

/// Real-time signals as a [`Backend`] (and so an [`ipc_core::Transport`]): name
/// `"signal"`, endpoint scheme `signal:` (`signal:pid=N`).
///
/// It cannot listen (a signal has no address to listen on: [`Error::Unsupported`]);
/// it connects to a process id and spawns children wired to this process. Linux only
/// (elsewhere `connect` and `spawn` return [`Error::Unsupported`]). `connect` refuses a
/// process that neither blocks nor handles the transport's signals (they would kill
/// it) and waits for the peer to answer as long as [`Options::handshake_timeout`] says
/// (5 s by default).
///
/// ```no_run
/// # async fn demo() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// use ipc_core::Transport;
/// let transport = ipc_signal::SignalTransport;
/// assert!(transport.example_endpoint().is_none());
/// let cmd = std::process::Command::new("/path/to/child");
/// let (mut child, mut ch) = transport.spawn(cmd, &ipc_core::Options::default()).await?;
/// ch.send("ping".into()).await?;
/// let reply = ch.recv().await?;
/// ch.close().await?;
/// child.wait().await?;
/// # let _ = reply; Ok(()) }
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct SignalTransport;

impl Backend for SignalTransport {
    const NAME: &'static str = NAME;
    const SCHEMES: &'static [&'static str] = &["signal"];
    const FORMS: &'static [&'static str] = crate::address::FORMS;
    type Channel = Channel;
    type Listener = NoListener<Channel>;

    /// Binary frames and spawn on 64-bit Linux (nothing elsewhere); it cannot listen.
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE.with_binary_frames(DATA).with_spawn(DATA)
    }

    fn check_endpoint(&self, endpoint: &Endpoint) -> ipc_core::Result<()> {
        SignalAddress::try_from(endpoint).map(drop)
    }

    async fn connect(
        &self,
        endpoint: &Endpoint,
        options: &Options,
    ) -> Result<Channel, ConnectError> {
        let SignalAddress { pid } = SignalAddress::try_from(endpoint)?;
        connect(pid, options).await
    }

    /// Refused: signals go to a process id.
    async fn listen(
        &self,
        _endpoint: &Endpoint,
        _options: &Options,
    ) -> Result<Self::Listener, ListenError> {
        Err(Error::unsupported(
            NAME,
            "listening (signals go to a process id: connect to signal:pid=N, or spawn)",
        )
        .into())
    }

    async fn spawn(
        &self,
        command: Command,
        options: &Options,
    ) -> Result<(Child, Channel), SpawnError> {
        spawn(command, options).await
    }
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
use crate::{connect, spawn};

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
async fn connect(_pid: u32, _options: &Options) -> Result<Channel, ConnectError> {
    Err(Error::unsupported(NAME, "data channels outside 64-bit Linux").into())
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
async fn spawn(_command: Command, _options: &Options) -> Result<(Child, Channel), SpawnError> {
    Err(Error::unsupported(NAME, "data channels outside 64-bit Linux").into())
}
