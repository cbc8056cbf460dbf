//! Windows named pipes (`\\.\pipe\NAME`), framed like every other byte stream.
//!
//! **Not compiled or tested on this project's Linux CI**: this module exists only on
//! Windows (`cfg(windows)`) and is written against tokio's
//! [`named_pipe`](tokio::net::windows::named_pipe) API without having been built.
//! It has no [`Endpoint`](ipc_core::Endpoint) form and no transport in the registry;
//! use it directly.
//!
//! ```no_run
//! # async fn demo() -> ipc_core::Result<()> {
//! use ipc_core::prelude::*;
//! let name = r"\\.\pipe\my-app";
//! let mut listener = ipc_pipe::windows::NamedPipeListener::bind(name, &ipc_core::Options::default())?;
//! let client = tokio::spawn(async move {
//!     let mut ch = ipc_pipe::windows::connect_named_pipe(name, &ipc_core::Options::default()).await?;
//!     ch.send("hi".into()).await?;
//!     ch.close().await
//! });
//! let mut server = listener.accept().await?;
//! assert_eq!(server.recv().await?.as_deref(), Some(&b"hi"[..]));
//! # let _ = client; Ok(()) }
//! ```

use std::io;
use std::time::Duration;

use ipc_core::frame::{FrameConfig, LengthCodec};
use ipc_core::stream::{self, StreamChannel};
use ipc_core::{ChannelInfo, Error, Options, Result};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::windows::named_pipe::{
    ClientOptions, NamedPipeClient, NamedPipeServer, ServerOptions,
};

/// Transport name in [`ChannelInfo::transport`].
const NAME: &str = "named-pipe";

/// `ERROR_PIPE_BUSY`: every instance of the pipe is connected to a client.
const ERROR_PIPE_BUSY: i32 = 231;

/// How long [`connect_named_pipe`] keeps retrying a busy pipe.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The server side of a named-pipe connection.
pub type NamedPipeServerChannel =
    StreamChannel<ReadHalf<NamedPipeServer>, WriteHalf<NamedPipeServer>, LengthCodec>;

/// The client side of a named-pipe connection.
pub type NamedPipeClientChannel =
    StreamChannel<ReadHalf<NamedPipeClient>, WriteHalf<NamedPipeClient>, LengthCodec>;

fn check_name(name: &str) -> Result<()> {
    if name.starts_with(r"\\.\pipe\") && name.len() > r"\\.\pipe\".len() {
        Ok(())
    } else {
        Err(Error::BadEndpoint {
            input: name.to_string(),
            reason: r"named pipes are named \\.\pipe\NAME".into(),
        })
    }
}

/// Serves clients of a named pipe; each accepted client gets its own pipe instance,
/// so several clients are served at once.
pub struct NamedPipeListener {
    name: String,
    config: FrameConfig,
    next: NamedPipeServer,
}

impl NamedPipeListener {
    /// Create the first instance of pipe `name` (`\\.\pipe\NAME`). Fails if another
    /// server already owns that name. Remote (SMB) clients are rejected.
    pub fn bind(name: &str, options: &Options) -> Result<NamedPipeListener> {
        let config = options.frame_config();
        check_name(name)?;
        let next = ServerOptions::new()
            .first_pipe_instance(true)
            .reject_remote_clients(true)
            .create(name)?;
        Ok(NamedPipeListener {
            name: name.to_string(),
            config,
            next,
        })
    }

    /// Wait for a client, then create the next instance for the one after it.
    pub async fn accept(&mut self) -> Result<NamedPipeServerChannel> {
        self.next.connect().await?;
        let next = ServerOptions::new()
            .reject_remote_clients(true)
            .create(&self.name)?;
        let connected = std::mem::replace(&mut self.next, next);
        let (reader, writer) = tokio::io::split(connected);
        let info = ChannelInfo::new(NAME).with_peer_addr(Some(self.name.clone()));
        Ok(stream::channel(
            reader,
            writer,
            LengthCodec::new(self.config),
            info,
        ))
    }
}

/// Connect to the named pipe `name`, retrying for up to [`BUSY_TIMEOUT`] while every
/// instance is busy.
pub async fn connect_named_pipe(name: &str, options: &Options) -> Result<NamedPipeClientChannel> {
    let config = options.frame_config();
    check_name(name)?;
    let deadline = tokio::time::Instant::now() + BUSY_TIMEOUT;
    let client = loop {
        match ClientOptions::new().open(name) {
            Ok(client) => break client,
            Err(e) if e.raw_os_error() == Some(ERROR_PIPE_BUSY) => {
                if tokio::time::Instant::now() >= deadline {
                    return Err(Error::Timeout {
                        after: BUSY_TIMEOUT,
                        during: "waiting for a free instance of a busy named pipe",
                    });
                }
                // The OS offers no awaitable "instance free" event to tokio.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::Io(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no named pipe server at {name}"),
                )))
            }
            Err(e) => return Err(e.into()),
        }
    };
    let (reader, writer) = tokio::io::split(client);
    let info = ChannelInfo::new(NAME).with_peer_addr(Some(name.to_string()));
    Ok(stream::channel(
        reader,
        writer,
        LengthCodec::new(config),
        info,
    ))
}
