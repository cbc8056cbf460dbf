//! tokio_main: a plain `#[tokio::main]` program (multi-threaded runtime, nothing done
//! before it starts) that re-executes itself as a child over the transport you choose,
//! pings it, and prints one line.
//!
//! Every default transport works in an existing tokio application as it is. The signal
//! transport (the facade's opt-in feature `signal`) needs its signals blocked before the
//! runtime's threads exist, which `#[tokio::main]` does not do: over `signal` this
//! program gets the transport's error saying what to call first (`ipc::run`, or
//! `ipc::signal::block_transport_signals()`), and is not killed.
//!
//! ```text
//! cargo run --example tokio_main                      # over Unix sockets
//! cargo run --example tokio_main -- --transport fifo
//! ```

use std::process::{Command, ExitCode};

use bytes::Bytes;
use clap::Parser;
use ipc::prelude::*;
use ipc::{Capabilities, Role};

/// The ping, a JSON text so that every transport carries it (`node` frames are JSON).
const PING: &[u8] = br#""ping""#;

/// Ping a copy of this program over an ipc transport, from a plain `#[tokio::main]`.
#[derive(Parser, Debug)]
struct Args {
    /// Transport to use (any that spawns: uds, tcp, pipe, fifo, stdio, node).
    #[arg(long, default_value = "uds")]
    transport: String,
}

/// The child: answer every frame with the same bytes until the parent closes.
async fn child() -> ipc::Result<()> {
    let mut parent = ipc::connect_from_env().await?;
    while let Some(frame) = parent.recv().await? {
        parent.send(frame).await?;
    }
    Ok(parent.close().await?)
}

/// The parent: spawn the child, ping it once, close, and describe what happened.
async fn parent(transport: &str) -> ipc::Result<String> {
    let needs = Capabilities::NONE.with_spawn(true);
    let transport = ipc::registry().get_with(transport, needs)?;
    let exe = std::env::current_exe()?;
    let (mut child, mut ch) = transport
        .spawn(Command::new(exe), &ipc::Options::default())
        .await?;
    ch.send(Bytes::from_static(PING)).await?;
    let pong = ch.recv().await?;
    ch.close().await?;
    let status = child.wait().await?;
    if pong.as_deref() != Some(PING) {
        return Err(std::io::Error::other(format!("the child answered {pong:?}")).into());
    }
    if !status.success() {
        return Err(std::io::Error::other(format!("the child exited: {status}")).into());
    }
    Ok(format!(
        "child {} answered the ping over {} (runtime: {:?})",
        child.pid(),
        ch.info().transport,
        tokio::runtime::Handle::current().runtime_flavor()
    ))
}

#[tokio::main]
async fn main() -> ExitCode {
    let (who, result) = if ipc::role() == Role::Child {
        ("tokio_main child", child().await)
    } else {
        let args = Args::parse();
        match parent(&args.transport).await {
            Ok(line) => {
                println!("{line}");
                ("tokio_main", Ok(()))
            }
            Err(e) => ("tokio_main", Err(e)),
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{who}: {e}");
            ExitCode::FAILURE
        }
    }
}
