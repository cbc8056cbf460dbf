//! signals: graceful shutdown, and noticing a crash.
//!
//! Mirrors the seeds' `process.on('SIGINT', ...)` / `process.kill(pid, 'SIGTERM')`
//! section: the parent hands jobs to a child over any transport, then signals it.
//! - SIGTERM or SIGINT: the child finishes the job in hand, reports how many it did,
//!   closes the channel and exits 0; the parent sees every reply and the status.
//! - SIGKILL: the child cannot react; the parent's `recv` fails (`PeerLost`) instead of
//!   hanging, and the exit status says "signal: 9".
//!
//! ```text
//! cargo run --example signals                                 # SIGTERM over uds
//! cargo run --example signals -- --signal int --transport tcp
//! cargo run --example signals -- --signal kill                # the parent notices the crash
//! ```

use std::process::{Command, ExitCode};

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use ipc::signal::ShutdownSignals;
use ipc::{Channel, Error, Role, Signal};

/// Which signal the parent sends.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Sig {
    /// SIGTERM: graceful stop (what pm2 and service managers send).
    Term,
    /// SIGINT: graceful stop (Ctrl-C).
    Int,
    /// SIGKILL: no chance to react.
    Kill,
}

/// Hand jobs to a child, then stop it with a signal.
#[derive(Parser, Debug)]
struct Args {
    /// Signal to send after some jobs are done.
    #[arg(long, value_enum, default_value = "term")]
    signal: Sig,
    /// Transport between parent and child.
    #[arg(long, default_value = "uds")]
    transport: String,
    /// Jobs to see finished before signalling.
    #[arg(long, default_value_t = 5)]
    after: u32,
}

/// A job that takes a moment: the n-th Fibonacci number, the slow way.
fn fib(n: u64) -> u64 {
    if n < 2 {
        n
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

async fn child() -> ipc::Result<()> {
    // Install the handlers before saying ready: from here SIGTERM no longer kills us.
    let mut signals = ShutdownSignals::new()?;
    let mut parent = ipc::connect_from_env().await?;
    parent.send(Bytes::from_static(b"ready")).await?;
    let mut done = 0u64;
    loop {
        tokio::select! {
            biased;
            sig = signals.recv() => {
                let sig = sig?;
                // A job being worked on is never interrupted: this branch only runs
                // between jobs. Jobs still queued in the channel were never accepted.
                let report = format!("stopping on {sig:?} after {done} jobs");
                parent.send(Bytes::from(report)).await?;
                parent.close().await?;
                eprintln!("child: cleaned up, exiting 0");
                return Ok(());
            }
            job = parent.recv() => {
                let Some(job) = job? else { return parent.close().await };
                let n: u64 = std::str::from_utf8(&job)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| Error::decode("job", "not a number"))?;
                let answer = fib(n);
                done += 1;
                parent.send(Bytes::from(format!("fib({n}) = {answer}"))).await?;
            }
        }
    }
}

async fn parent(args: Args) -> ipc::Result<bool> {
    let transport = ipc::registry().get(&args.transport)?;
    let exe = std::env::current_exe()?;
    let (mut child, mut ch) = transport.spawn(Command::new(exe)).await?;
    match ch.recv().await? {
        Some(ready) if ready == "ready" => {}
        other => {
            return Err(Error::Handshake(format!(
                "child did not say ready: {other:?}"
            )))
        }
    }
    let sig = match args.signal {
        Sig::Term => Signal::SIGTERM,
        Sig::Int => Signal::SIGINT,
        Sig::Kill => Signal::SIGKILL,
    };
    // Keep two jobs queued so one is always in hand when the signal lands.
    let (mut sent, mut replies) = (0u32, 0u32);
    for _ in 0..2 {
        ch.send(Bytes::from(format!("{}", 24 + sent % 5))).await?;
        sent += 1;
    }
    let outcome = loop {
        match ch.recv().await {
            Ok(Some(msg)) if msg.starts_with(b"fib(") => {
                replies += 1;
                println!("parent: {}", String::from_utf8_lossy(&msg));
                if replies == args.after {
                    println!("parent: sending {sig:?} to child {}", child.pid());
                    child.signal(sig)?;
                }
                // After a SIGKILL the send may fail: the recv below reports why.
                if ch
                    .send(Bytes::from(format!("{}", 24 + sent % 5)))
                    .await
                    .is_ok()
                {
                    sent += 1;
                }
            }
            Ok(Some(report)) => {
                println!("parent: child says {:?}", String::from_utf8_lossy(&report))
            }
            Ok(None) => break "the child closed the channel cleanly".to_string(),
            Err(e) => break format!("the channel failed: {e}"),
        }
    };
    let status = child.wait().await?;
    println!("parent: {outcome}; {replies} replies to {sent} jobs; child {status}");
    Ok(match args.signal {
        Sig::Kill => outcome.contains("failed") && status.code().is_none(),
        Sig::Term | Sig::Int => outcome.contains("cleanly") && status.success(),
    })
}

fn main() -> ExitCode {
    ipc::run(run()).unwrap_or_else(|e| {
        eprintln!("cannot start: {e}");
        ExitCode::FAILURE
    })
}

async fn run() -> ExitCode {
    if ipc::role() == Role::Child {
        return match child().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("signals child: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match parent(Args::parse()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("signals: the child did not behave as expected");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("signals: {e}");
            ExitCode::FAILURE
        }
    }
}
