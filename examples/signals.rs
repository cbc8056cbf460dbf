//! signals: graceful shutdown, and noticing a crash.
//!
//! Mirrors the seeds' `process.on('SIGINT', ...)` / `process.kill(pid, 'SIGTERM')`
//! section: the parent hands jobs to a child over any transport, then signals it.
//! - SIGTERM or SIGINT: the child finishes the job in hand, takes no new one, reports
//!   how many it did, closes the channel and exits 0; the parent sees every reply and
//!   the status, and checks that no job was started after the signal.
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
use ipc::prelude::*;
use ipc::signal::ShutdownSignals;
use ipc::{Capabilities, Error, Role, Signal};

/// What this demo needs of a transport: it spawns a child and sends it raw bytes.
const NEEDS: Capabilities = Capabilities::NONE.with_binary_frames(true).with_spawn(true);

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
    /// Transport between parent and child (any that spawns and carries raw bytes:
    /// not `node`).
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
        // A job being worked on is never interrupted: signals are looked at between
        // jobs only. Jobs still queued in the channel were never accepted.
        let job = tokio::select! {
            biased;
            sig = signals.recv() => return stop(parent, sig?, done).await,
            job = parent.recv() => job?,
        };
        let Some(job) = job else {
            return Ok(parent.close().await?);
        };
        // The jobs run without awaiting, so the runtime has not looked at its signals
        // since the last one: a signal sent before this job arrived is seen now, and
        // the job is not started.
        if let Some(sig) = arrived(&mut signals).await {
            return stop(parent, sig?, done).await;
        }
        let n: u64 = std::str::from_utf8(&job)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Error::decode("job", "not a number"))?;
        let answer = fib(n);
        done += 1;
        parent
            .send(Bytes::from(format!("fib({n}) = {answer}")))
            .await?;
    }
}

/// A shutdown signal that has already arrived, if any, without waiting for one.
async fn arrived(signals: &mut ShutdownSignals) -> Option<ipc::Result<Signal>> {
    // One turn for the runtime: it notices signals when it looks at its I/O.
    tokio::task::yield_now().await;
    tokio::select! {
        biased;
        sig = signals.recv() => Some(sig),
        () = std::future::ready(()) => None,
    }
}

/// Report, close the channel, and return: the graceful stop.
async fn stop(mut parent: Box<dyn Channel>, sig: Signal, done: u64) -> ipc::Result<()> {
    let report = format!("stopping on {sig:?} after {done} jobs");
    parent.send(Bytes::from(report)).await?;
    parent.close().await?;
    eprintln!("child: cleaned up, exiting 0");
    Ok(())
}

async fn parent(args: Args) -> ipc::Result<bool> {
    let transport = ipc::registry().get_with(&args.transport, NEEDS)?;
    let exe = std::env::current_exe()?;
    let (mut child, mut ch) = transport
        .spawn(Command::new(exe), &ipc::Options::default())
        .await?;
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
    // Jobs the child reports done when it stops; replies seen when we signalled.
    let (mut stopped_after, mut replies_at_signal) = (None::<u32>, 0u32);
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
                    replies_at_signal = replies;
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
                let report = String::from_utf8_lossy(&report);
                println!("parent: child says {report:?}");
                stopped_after = report
                    .strip_suffix(" jobs")
                    .and_then(|r| r.rsplit(' ').next())
                    .and_then(|n| n.parse().ok());
            }
            Ok(None) => break "the child closed the channel cleanly".to_string(),
            Err(e) => break format!("the channel failed: {e}"),
        }
    };
    let status = child.wait().await?;
    println!("parent: {outcome}; {replies} replies to {sent} jobs; child {status}");
    Ok(match args.signal {
        Sig::Kill => outcome.contains("failed") && status.code().is_none(),
        Sig::Term | Sig::Int => {
            // When we signalled, the child had finished `replies_at_signal` jobs and
            // had at most one more in hand: it must take no new job after that.
            let in_hand = match stopped_after {
                Some(done) => {
                    let late = done.saturating_sub(replies_at_signal);
                    println!(
                        "parent: the child finished {late} job(s) after the signal \
                         (at most the one in hand is allowed)"
                    );
                    late <= 1
                }
                None => {
                    println!("parent: the child did not say how many jobs it did");
                    false
                }
            };
            outcome.contains("cleanly") && status.success() && in_hand
        }
    })
}

fn main() -> ExitCode {
    ipc::run(run())
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
