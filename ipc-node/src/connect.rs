//! Child side: [`connect`] to the channel a Node.js parent gave us (`NODE_CHANNEL_FD`).

use ipc_core::env::NODE_CHANNEL_FD;
use ipc_core::ConnectError;
use ipc_core::Options;
use ipc_core::{Endpoint, Error, Result};
use tokio::net::UnixStream;

use crate::channel::{NodeChannel, NAME};

/// Set by Node next to `NODE_CHANNEL_FD`: `json` (the default) or `advanced`.
pub const NODE_CHANNEL_SERIALIZATION_MODE: &str = "NODE_CHANNEL_SERIALIZATION_MODE";

/// What to tell someone whose process was not forked by Node.
const HINT: &str = "was this process started by Node's child_process.fork() (or spawn() \
                    with an 'ipc' stdio entry), or by ipc_node::spawn?";

/// In a process forked by Node: open the channel named by `NODE_CHANNEL_FD`.
///
/// Same as [`connect`] on `node:fd=$NODE_CHANNEL_FD`; `IPC_ENDPOINT` is not looked at
/// (the `ipc` facade's `connect_from_env()` looks at both).
///
/// ```no_run
/// # async fn demo() -> ipc_core::Result<()> {
/// let mut parent = ipc_node::connect_from_env(&ipc_core::Options::from_env()).await?;
/// ipc_node::send_ready(&mut parent).await?; // process.send('ready')
/// # Ok(()) }
/// ```
pub async fn connect_from_env(options: &Options) -> Result<NodeChannel, ConnectError> {
    let fd = std::env::var(NODE_CHANNEL_FD)
        .map_err(|_| Error::NotAChild(format!("{NODE_CHANNEL_FD} is not set: {HINT}")))?;
    let endpoint: Endpoint = format!("node:fd={fd}").parse()?;
    connect(&endpoint, options).await
}

/// Open `node:fd=N`: the channel socket a Node.js parent passed us.
///
/// - The fd is taken at most once per process (a second `connect` is an error, never
///   a second owner), checked to be a Unix stream socket, and made close-on-exec, so
///   processes we start do not inherit it.
/// - `NODE_CHANNEL_SERIALIZATION_MODE` must be `json` or unset. `advanced` (V8
///   serialization, `fork(.., { serialization: 'advanced' })`) is refused with
///   [`Error::Unsupported`] before the fd is taken: fork the binary with the default
///   `serialization: 'json'`.
///
/// Node deletes `NODE_CHANNEL_FD` from its own environment at startup so its children
/// do not believe they have a channel. This function does not (changing the
/// environment of a running multi-threaded process is unsound): start children with
/// [`scrub_env`](crate::scrub_env), or the `ipc` spawn helpers which already do.
///
/// ```no_run
/// # async fn demo() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// let mut parent = ipc_node::connect(&"node:fd=3".parse()?, &ipc_core::Options::default()).await?;
/// while let Some(msg) = parent.recv().await? {
///     parent.send(msg).await?; // echo: Node's 'message' event gets the same value
/// }
/// # Ok(()) }
/// ```
pub async fn connect(endpoint: &Endpoint, options: &Options) -> Result<NodeChannel, ConnectError> {
    let Endpoint::Node(fd) = endpoint else {
        return Err(Error::BadEndpoint {
            input: endpoint.to_string(),
            reason: "the node transport connects only to node:fd=N (Node's fork channel)".into(),
        }
        .into());
    };
    check_serialization_mode()?;
    let stream = UnixStream::from_std(ipc_core::inherit::claim_unix_stream(endpoint, *fd, HINT)?)?;
    Ok(crate::channel::from_stream(stream, options))
}

/// Refuse any serialization mode but `json`.
fn check_serialization_mode() -> Result<()> {
    match std::env::var(NODE_CHANNEL_SERIALIZATION_MODE) {
        Err(std::env::VarError::NotPresent) => Ok(()),
        Ok(mode) if mode == "json" || mode.is_empty() => Ok(()),
        Ok(mode) if mode == "advanced" => Err(Error::unsupported(
            NAME,
            format!(
                "{NODE_CHANNEL_SERIALIZATION_MODE}=advanced (V8 structured-clone \
                 serialization); fork this binary with serialization: 'json' (Node's default)"
            ),
        )),
        other => Err(Error::unsupported(
            NAME,
            format!(
                "{NODE_CHANNEL_SERIALIZATION_MODE}={:?}; only 'json' is supported",
                other.unwrap_or_default()
            ),
        )),
    }
}
