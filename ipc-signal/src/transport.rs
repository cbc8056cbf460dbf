//! [`SignalTransport`]: the signal backend behind the [`Transport`] trait.

use std::process::Command;

use async_trait::async_trait;
use ipc_core::ConnectError;
use ipc_core::ListenError;
use ipc_core::SpawnError;
use ipc_core::{
    Capabilities, Channel, Child, Endpoint, Error, Listener, Options, Result, Transport,
};

const NAME: &str = "signal";

/// Whether data channels exist on this platform.
const DATA: bool = cfg!(all(target_os = "linux", target_pointer_width = "64"));

/// Real-time signals as an [`ipc_core::Transport`]: name `"signal"`, endpoint scheme
/// `signal:` (`signal:pid=N`).
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

#[async_trait]
impl Transport for SignalTransport {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Binary frames and spawn on 64-bit Linux (nothing elsewhere); it cannot listen.
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE.with_binary_frames(DATA).with_spawn(DATA)
    }

    fn schemes(&self) -> &'static [&'static str] {
        &["signal"]
    }

    /// `None`: there is nothing to listen on.
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
            "listening (signals go to a process id: connect to signal:pid=N, or spawn)",
        )
        .into())
    }

    async fn connect(
        &self,
        endpoint: &Endpoint,
        options: &Options,
    ) -> Result<Box<dyn Channel>, ConnectError> {
        let Endpoint::Signal { pid } = endpoint else {
            return Err(Error::BadEndpoint {
                input: endpoint.to_string(),
                reason: "the signal transport serves signal:pid=N endpoints only".into(),
            }
            .into());
        };
        connect(*pid, options).await
    }

    async fn spawn(
        &self,
        command: Command,
        options: &Options,
    ) -> Result<(Child, Box<dyn Channel>), SpawnError> {
        spawn(command, options).await
    }
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
async fn connect(pid: u32, options: &Options) -> Result<Box<dyn Channel>, ConnectError> {
    Ok(Box::new(crate::connect(pid, options).await?))
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
async fn spawn(
    command: Command,
    options: &Options,
) -> Result<(Child, Box<dyn Channel>), SpawnError> {
    let (child, channel) = crate::spawn(command, options).await?;
    Ok((child, Box::new(channel)))
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
async fn connect(_pid: u32, _options: &Options) -> Result<Box<dyn Channel>, ConnectError> {
    Err(Error::unsupported(
        NAME,
        "data channels outside 64-bit Linux",
    ))
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
async fn spawn(
    _command: Command,
    _options: &Options,
) -> Result<(Child, Box<dyn Channel>), SpawnError> {
    Err(Error::unsupported(
        NAME,
        "data channels outside 64-bit Linux",
    ))
}
