//! [`spawn`]: start a child process whose stdin/stdout carry the channel.

use std::process::{Command, Stdio};

use ipc_core::spawn::{set_child_env, spawn_child};
use ipc_core::Options;
use ipc_core::SpawnError;
use ipc_core::{ChannelInfo, Child, Endpoint, Error, Result};

use crate::channel::NAME;
use crate::io::{StdioReader, StdioWriter};
use crate::{JsonLinesCodec, StdioChannel};

/// Start `command` as a child whose stdin and stdout are the returned channel.
///
/// The child's stdin and stdout become pipes to us; its stderr is left as `command`
/// has it (inherited unless you set it), so the child's logs reach the terminal. The
/// environment gets `IPC_ENDPOINT=stdio:` and `IPC_MAX_FRAME`, so the child connects
/// with `connect_from_env()` or [`from_stdio`](crate::from_stdio) — or is any program
/// that reads and writes JSON lines (a Node script, `cat`). The channel's `peer_pid` is
/// the child's pid.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// // `cat` echoes every line, so we read our own frames back, goodbye included.
/// let (mut child, mut channel) =
///     ipc_stdio::spawn(std::process::Command::new("cat"), &ipc_core::Options::default()).await?;
/// channel.send(r#"{"ping":1}"#.into()).await?;
/// assert_eq!(channel.recv().await?.as_deref(), Some(&br#"{"ping":1}"#[..]));
/// channel.close().await?; // writes {"$ipc":"goodbye"} and closes cat's stdin
/// assert_eq!(channel.recv().await?, None);
/// assert!(child.wait().await?.success());
/// # Ok(()) }
/// ```
pub async fn spawn(
    mut command: Command,
    options: &Options,
) -> Result<(Child, StdioChannel), SpawnError> {
    let config = options.frame_config();
    command.stdin(Stdio::piped()).stdout(Stdio::piped());
    set_child_env(&mut command, &Endpoint::Stdio, None, options);
    let mut child = spawn_child(command)?;
    let pid = child.pid();
    let stdin = child.inner_mut().stdin.take();
    let stdout = child.inner_mut().stdout.take();
    let (Some(stdin), Some(stdout)) = (stdin, stdout) else {
        return Err(Error::Io(std::io::Error::other(
            "the child was started without piped stdin/stdout",
        ))
        .into());
    };
    tracing::debug!(pid, "spawned child over stdio");
    let codec = JsonLinesCodec::new(config);
    let info = ChannelInfo::new(NAME).with_peer_pid(Some(pid));
    let channel = ipc_core::stream::channel(
        StdioReader::child(stdout),
        StdioWriter::child(stdin),
        codec,
        info,
    );
    Ok((child, channel))
}
