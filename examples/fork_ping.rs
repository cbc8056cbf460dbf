//! fork_ping: a parent re-executes itself as a child over the transport you choose,
//! sends N pings, and prints the round-trip times.
//!
//! Mirrors the seeds' `child_process.fork()` demo (parent `send`s, child answers on
//! `process.on('message')`), with the transport picked at run time.
//!
//! ```text
//! cargo run --example fork_ping                       # over Unix sockets
//! cargo run --example fork_ping -- --transport tcp --count 10000 --size 1024
//! ```

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use hdrhistogram::Histogram;
use ipc::human;
use ipc::prelude::*;
use ipc::{Capabilities, Role};

/// What fork_ping needs of a transport: it spawns a child and sends it raw bytes.
const NEEDS: Capabilities = Capabilities::NONE.with_binary_frames(true).with_spawn(true);

/// Ping a child process over an ipc transport and report round-trip times.
#[derive(Parser, Debug)]
struct Args {
    /// Transport to use (see `--list`; `node` cannot carry raw bytes).
    #[arg(long, default_value = "uds")]
    transport: String,
    /// Number of timed round trips.
    #[arg(long, default_value_t = 2000)]
    count: u32,
    /// Payload size in bytes.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// List the transports fork_ping can run over, and exit.
    #[arg(long)]
    list: bool,
}

/// The child: answer every ping with the same bytes until the parent closes. A frame
/// the transport rejects (too large; over stdio, a stray non-JSON line) is one error,
/// not the end of the channel: it is logged and skipped.
async fn child() -> ipc::Result<()> {
    let mut parent = ipc::connect_from_env().await?;
    loop {
        match parent.recv().await {
            Ok(Some(ping)) => parent.send(ping).await?,
            Ok(None) => break,
            Err(e @ ipc::RecvError::Rejected(_)) => {
                eprintln!("fork_ping child: skipped a frame: {e}")
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(parent.close().await?)
}

async fn parent(args: Args) -> ipc::Result<bool> {
    let transport = ipc::registry().get_with(&args.transport, NEEDS)?;
    let exe = std::env::current_exe()?;
    let (mut child, mut ch) = transport
        .spawn(Command::new(exe), &ipc::Options::default())
        .await?;
    println!(
        "parent {} spawned child {} over {}",
        std::process::id(),
        child.pid(),
        ch.info().transport
    );
    let payload = Bytes::from(vec![0x5A; args.size]);
    let warmup = (args.count / 10).max(10);
    // 1 ns to 60 s at 3 significant digits; slower round trips are clamped to 60 s.
    let mut rtt = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    for i in 0..warmup + args.count {
        let start = Instant::now();
        ch.send(payload.clone()).await?;
        let pong = ch
            .recv()
            .await?
            .ok_or_else(|| std::io::Error::other("child closed early"))?;
        let took = start.elapsed();
        if pong != payload {
            return Err(std::io::Error::other("child answered with different bytes").into());
        }
        if i >= warmup {
            rtt.saturating_record(took.as_nanos() as u64);
        }
    }
    ch.close().await?;
    let closed = ch.recv().await?.is_none();
    let status = child.wait().await?;
    let size = human::bytes(args.size as u64);
    if args.count == 0 {
        println!(
            "nothing was measured: --count 0 asked for no timed round trips \
             ({warmup} warm-up round trips of {size} over {} did run)",
            args.transport
        );
    } else {
        let t = |ns: u64| human::duration(Duration::from_nanos(ns));
        println!(
            "{} round trips of {size} over {}: min {}  p50 {}  p99 {}  max {}",
            args.count,
            args.transport,
            t(rtt.min()),
            t(rtt.value_at_quantile(0.50)),
            t(rtt.value_at_quantile(0.99)),
            t(rtt.max()),
        );
    }
    println!("child exited: {status}");
    Ok(closed && status.success())
}

fn main() -> ExitCode {
    ipc::run(run())
}

async fn run() -> ExitCode {
    if ipc::role() == Role::Child {
        return match child().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("fork_ping child: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let args = Args::parse();
    if args.list {
        println!("{}", ipc::registry().names_with(NEEDS).join("\n"));
        return ExitCode::SUCCESS;
    }
    match parent(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("fork_ping: {e}");
            ExitCode::FAILURE
        }
    }
}
