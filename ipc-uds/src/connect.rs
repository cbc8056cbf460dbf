//! Client side: [`connect`] to a socket path, an abstract name, or an inherited fd.

use std::io;

use std::os::unix::net::{SocketAddr, UnixStream as StdUnixStream};
use std::path::Path;

use ipc_core::frame::FrameConfig;
use ipc_core::ConnectError;
use ipc_core::{ChannelInfo, Endpoint, Error, Options, Result};
use tokio::net::UnixStream;

use crate::channel::{peer_cred, UdsChannel, NAME};

/// What to tell someone whose `uds:fd=N` is not the socket we expect.
const INHERIT_HINT: &str = "was this process started by UdsTransport::spawn (or ipc_uds::spawn)?";

/// Connect to a Unix socket endpoint: `unix:/path`, `unix:@name` (Linux abstract name)
/// or `uds:fd=N` (the connected socket a parent passed us, see [`spawn`](crate::spawn)).
///
/// The peer's pid and uid (from `SO_PEERCRED`) are in [`info()`](ipc_core::Channel::info);
/// a client that must only talk to a server of its own user checks `peer_uid` there
/// (this matters for abstract names, which anyone may bind).
///
/// ```no_run
/// # async fn demo() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// let endpoint = "unix:/run/user/1000/app.sock".parse()?;
/// let mut channel = ipc_uds::connect(&endpoint, &ipc_core::Options::default()).await?;
/// channel.send("hello".into()).await?;
/// # Ok(()) }
/// ```
///
/// An inherited `uds:fd=N` can be taken once per process: a second `connect` to the
/// same fd number is an error, never a second owner of the fd.
pub async fn connect(endpoint: &Endpoint, options: &Options) -> Result<UdsChannel, ConnectError> {
    let config = options.frame_config();
    match endpoint {
        Endpoint::UnixPath(path) => {
            let addr = path_addr(path)?;
            let stream = connect_addr(addr).await.map_err(|e| {
                let hint = match e.kind() {
                    io::ErrorKind::NotFound => "no socket file there: is the server running?",
                    io::ErrorKind::ConnectionRefused => {
                        "the socket file exists but no server is accepting (a stale file?)"
                    }
                    io::ErrorKind::PermissionDenied => {
                        "permission denied: the socket belongs to another user"
                    }
                    _ => "could not connect",
                };
                Error::Io(io::Error::new(
                    e.kind(),
                    format!("connect to {}: {hint} ({e})", path.display()),
                ))
            })?;
            Ok(finish(stream, config, endpoint)?)
        }
        Endpoint::UnixAbstract(name) => {
            let addr = abstract_addr(name)?;
            let stream = connect_addr(addr).await.map_err(|e| {
                let hint = if e.kind() == io::ErrorKind::ConnectionRefused {
                    "nobody listens on this abstract name: is the server running?"
                } else {
                    "could not connect"
                };
                Error::Io(io::Error::new(
                    e.kind(),
                    format!("connect to unix:@{name}: {hint} ({e})"),
                ))
            })?;
            Ok(finish(stream, config, endpoint)?)
        }
        Endpoint::UdsFd(fd) => {
            let stream = ipc_core::inherit::claim_unix_stream(endpoint, *fd, INHERIT_HINT)?;
            let stream = UnixStream::from_std(stream)?;
            Ok(crate::channel::from_stream(stream, options)?)
        }
        other => Err(Error::BadEndpoint {
            input: other.to_string(),
            reason: "the uds transport serves unix:/PATH, unix:@NAME and uds:fd=N".into(),
        }
        .into()),
    }
}

fn finish(stream: UnixStream, config: FrameConfig, endpoint: &Endpoint) -> Result<UdsChannel> {
    let cred = peer_cred(&stream)?;
    let info = ChannelInfo::new(NAME)
        .with_peer_pid(cred.pid)
        .with_peer_uid(Some(cred.uid))
        .with_peer_addr(Some(endpoint.to_string()));
    crate::channel::with_info(stream, config, info)
}

/// A filesystem socket address, with a clear error when the path is too long.
pub(crate) fn path_addr(path: &Path) -> Result<SocketAddr> {
    SocketAddr::from_pathname(path).map_err(|e| {
        Error::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} cannot be a Unix socket address ({e}); socket paths are limited to \
                 about 100 bytes: use a shorter path",
                path.display()
            ),
        ))
    })
}

/// An abstract-namespace socket address (Linux).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn abstract_addr(name: &str) -> Result<SocketAddr> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name.as_bytes()).map_err(|e| {
        Error::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unix:@{name} cannot be an abstract socket name ({e}); use a shorter name"),
        ))
    })
}

/// Abstract names exist on Linux only.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn abstract_addr(name: &str) -> Result<SocketAddr> {
    Err(Error::unsupported(
        NAME,
        format!("abstract socket names (unix:@{name}) outside Linux; use unix:/PATH"),
    ))
}

/// Connect without blocking the runtime. A blocking `connect` on a worker thread waits
/// while the server's backlog is full, where a non-blocking one would fail with EAGAIN.
async fn connect_addr(addr: SocketAddr) -> io::Result<UnixStream> {
    let stream = tokio::task::spawn_blocking(move || StdUnixStream::connect_addr(&addr))
        .await
        .map_err(io::Error::other)??;
    stream.set_nonblocking(true)?;
    UnixStream::from_std(stream)
}
