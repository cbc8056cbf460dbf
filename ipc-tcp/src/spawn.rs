//! [`spawn`]: start a child process wired to the parent over loopback TCP.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;

use ipc_core::spawn::{set_child_env, spawn_child};
use ipc_core::SpawnError;
use ipc_core::{Child, Endpoint, Error, Options, Result};

use crate::channel::{self, TcpChannel};
use crate::listener::bind;

/// Start `command` as a child connected to this process over loopback TCP.
///
/// The parent listens on `127.0.0.1:0`, generates a fresh random token (32 bytes from
/// the OS, hex encoded), and gives the child `IPC_ENDPOINT=tcp://127.0.0.1:PORT`,
/// `IPC_TOKEN` and `IPC_MAX_FRAME`. It then accepts exactly one authenticated
/// connection and closes the listening port. A child connects with
/// `TcpTransport.connect(..)` / `ipc::connect_from_env()`.
///
/// The [handshake timeout](Options::handshake_timeout) of `options` (5 s by default)
/// bounds the wait for the child to connect, its frame limit goes to the child in
/// `IPC_MAX_FRAME`, and its [token](Options::token), when set, replaces the random one
/// (leave it unset unless the child must know it in advance).
///
/// Errors: [`SpawnError::ChildExited`](ipc_core::SpawnError::ChildExited) as soon as the child exits without having connected,
/// [`SpawnError::Timeout`](ipc_core::SpawnError::Timeout) when it has not connected within the handshake timeout; the
/// child is then killed. Clients that connect with a wrong token meanwhile are refused
/// and logged, and the wait goes on.
///
/// The channel's [`info`](ipc_core::Channel::info) has the child's pid as `peer_pid`.
///
/// ```no_run
/// # async fn demo() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// use std::time::Duration;
/// let opts = ipc_core::Options::default().handshake_timeout(Duration::from_secs(30));
/// let cmd = std::process::Command::new("./my-child");
/// let (mut child, mut ch) = ipc_tcp::spawn(cmd, &opts).await?;
/// ch.send("hello".into()).await?;
/// let reply = ch.recv().await?;
/// ch.close().await?;
/// let status = child.wait().await?;
/// # let _ = (reply, status); Ok(()) }
/// ```
pub async fn spawn(
    mut command: Command,
    options: &Options,
) -> Result<(Child, TcpChannel), SpawnError> {
    let token = match options.get_token() {
        Some(token) => token.to_string(),
        None => random_token()?,
    };
    let timeout = options.get_handshake_timeout();
    let frame = options.frame_config();
    let mut listener = bind(
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        &options.clone().token(token.clone()),
    )
    .await?;
    let addr = listener.local_addr();
    set_child_env(&mut command, &Endpoint::Tcp(addr), Some(&token), options);
    let mut child = spawn_child(command)?;
    let pid = child.pid();

    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let timed_out = || Error::Timeout {
        after: timeout,
        during: "waiting for the spawned child to connect",
    };
    let status = loop {
        tokio::select! {
            biased;
            accepted = listener.accept_stream() => match accepted {
                Ok((stream, peer)) => {
                    let channel = channel::from_stream(stream, peer, Some(pid), frame, None)?;
                    return Ok((child, channel));
                }
                Err(e) => refused(&e),
            },
            status = child.wait() => break status?,
            () = &mut deadline => return Err(timed_out().into()),
        }
    };
    // The child is gone. A connection it made may still be finishing its handshake (the
    // child can read our OK, send, and exit before we take the result): take what is in
    // flight before reporting the exit. Nothing new is accepted.
    loop {
        tokio::select! {
            finished = listener.next_finished() => match finished {
                Some(Ok((stream, peer))) => {
                    let channel = channel::from_stream(stream, peer, Some(pid), frame, None)?;
                    return Ok((child, channel));
                }
                Some(Err(e)) => refused(&e),
                None => break,
            },
            () = &mut deadline => return Err(timed_out().into()),
        }
    }
    Err(Error::ChildExited(status).into())
}

fn refused(e: &Error) {
    tracing::warn!(
        error = %e,
        "a connection to the spawn listener was refused; still waiting for the child"
    );
}

/// 32 random bytes from the OS, as 64 hex digits.
fn random_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| {
        Error::Io(io::Error::other(format!(
            "could not get random bytes for the handshake token: {e}"
        )))
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_fresh_hex() {
        let a = super::random_token().expect("random");
        let b = super::random_token().expect("random");
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
