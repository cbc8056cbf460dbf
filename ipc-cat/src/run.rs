//! The three ways to get a channel (connect, listen, spawn a child) and what each
//! does with it, down to the exit code.

use std::ffi::OsString;
use std::process::{Command, Stdio};
use std::time::Duration;

use ipc::{Endpoint, Error, Options};
use tokio::io::AsyncWrite;

use crate::bridge::bridge;
use crate::exit::{self, Ended};
use crate::input::InputQueue;
use crate::output::Output;

/// How long a child whose channel was lost may take to exit before it is killed.
const LOST_CHILD_GRACE: Duration = Duration::from_secs(5);

/// A failure before any channel existed, with its exit code.
pub(crate) struct SetupError {
    /// [`exit::USAGE`] or [`exit::FAILED`].
    pub code: u8,
    /// What to print.
    pub message: String,
}

impl SetupError {
    fn new(context: &str, e: impl Into<Error>) -> SetupError {
        let e = e.into();
        let code = match e {
            Error::UnknownTransport { .. } => exit::USAGE,
            _ => exit::FAILED,
        };
        SetupError {
            code,
            message: format!("{context}: {e}"),
        }
    }
}

/// `ipc-cat ENDPOINT`
pub(crate) async fn connect<W: AsyncWrite + Unpin>(
    endpoint: &Endpoint,
    options: &Options,
    input: &mut InputQueue,
    output: &mut Output<W>,
) -> Result<u8, SetupError> {
    if *endpoint == Endpoint::Stdio {
        return Err(SetupError {
            code: exit::USAGE,
            message: "stdio: would make ipc-cat's own stdin/stdout the channel, but they \
                      carry the bridged frames; to run a stdio child use --spawn stdio -- CMD"
                .into(),
        });
    }
    let connecting = format!("cannot connect to {endpoint}");
    let transport = ipc::registry()
        .for_endpoint(endpoint)
        .map_err(|e| SetupError::new(&connecting, e))?;
    let channel = transport
        .connect(endpoint, options)
        .await
        .map_err(|e| SetupError::new(&connecting, e))?;
    Ok(bridge(channel, input, output).await.code())
}

/// `ipc-cat --listen ENDPOINT [-k]`: one client, or (`keep`) one after another until
/// the input ends (checked while no client is connected). The exit code is the last
/// client's.
pub(crate) async fn listen<W: AsyncWrite + Unpin>(
    endpoint: &Endpoint,
    keep: bool,
    options: &Options,
    input: &mut InputQueue,
    output: &mut Output<W>,
) -> Result<u8, SetupError> {
    let listening = format!("cannot listen on {endpoint}");
    let transport = ipc::registry()
        .for_endpoint(endpoint)
        .map_err(|e| SetupError::new(&listening, e))?;
    let mut listener = transport
        .listen(endpoint, options)
        .await
        .map_err(|e| SetupError::new(&listening, e))?;
    // Scripts and tests wait for this line (it carries the real port for port 0).
    eprintln!("ipc-cat: listening on {}", listener.endpoint());
    let mut last: Option<u8> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            // Between clients of -k: stop once the input has ended.
            ended = input.wait_ready(), if last.is_some() && !input.has_pending() => {
                if ended {
                    return Ok(last.unwrap_or(exit::OK));
                }
                continue;
            }
        };
        let channel = match accepted {
            Ok(channel) => channel,
            Err(e) if e.is_fatal() && is_listener_broken(&e) => {
                return Err(SetupError::new("the listener failed", e))
            }
            Err(e) => {
                eprintln!("ipc-cat: refused a client: {e}");
                continue;
            }
        };
        let info = channel.info();
        eprintln!(
            "ipc-cat: client connected (pid {}, address {})",
            info.peer_pid.map_or("unknown".into(), |p| p.to_string()),
            info.peer_addr.as_deref().unwrap_or("none")
        );
        let code = bridge(channel, input, output).await.code();
        if !keep || input.is_over() {
            return Ok(code);
        }
        eprintln!("ipc-cat: the client left; waiting for the next one");
        last = Some(code);
    }
}

/// Errors from `accept` that are about the listener, not one client: stop then.
fn is_listener_broken(e: &Error) -> bool {
    matches!(e, Error::Closed | Error::Unsupported { .. })
}

/// `ipc-cat --spawn TRANSPORT -- CMD ARGS...`
pub(crate) async fn spawn<W: AsyncWrite + Unpin>(
    transport: &str,
    command: &[OsString],
    options: &Options,
    input: &mut InputQueue,
    output: &mut Output<W>,
) -> Result<u8, SetupError> {
    let Some((program, args)) = command.split_first() else {
        return Err(SetupError {
            code: exit::USAGE,
            message: "--spawn needs a command after --".into(),
        });
    };
    let starting = format!(
        "cannot start {} as a child over {transport}",
        program.to_string_lossy()
    );
    let transport = ipc::registry()
        .get(transport)
        .map_err(|e| SetupError::new(&starting, e))?;
    let mut cmd = Command::new(program);
    cmd.args(args);
    // ipc-cat's stdin and stdout carry frames; the child must not read or write them.
    // (Over stdio the transport replaces both with the channel's pipes.)
    cmd.stdin(Stdio::null());
    let stderr = std::io::stderr();
    let to_stderr = std::os::fd::AsFd::as_fd(&stderr)
        .try_clone_to_owned()
        .map_err(|e| SetupError::new(&starting, e))?;
    cmd.stdout(Stdio::from(to_stderr));
    let (mut child, channel) = transport
        .spawn(cmd, options)
        .await
        .map_err(|e| SetupError::new(&starting, e))?;
    let ended = bridge(channel, input, output).await;
    let status = match ended {
        Ended::Clean => child.wait().await,
        _ => match tokio::time::timeout(LOST_CHILD_GRACE, child.wait()).await {
            Ok(status) => status,
            Err(_) => {
                eprintln!(
                    "ipc-cat: the child (pid {}) is still running {LOST_CHILD_GRACE:?} after \
                     its channel ended; killing it",
                    child.pid()
                );
                let _ = child.kill();
                child.wait().await
            }
        },
    }
    .map_err(|e| SetupError::new("cannot wait for the child", e))?;
    Ok(ended.code_with_child(status))
}
