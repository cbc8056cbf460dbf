//! `shutdown_signal()` and `ShutdownSignals` with real signals sent to this very process,
//! and `kill`'s errors. A plain `fn main()` (harness = false): no test threads around.
//!
//! `cargo test -p ipc-signal --test shutdown_signal`

use std::future::Future;
use std::io;
use std::task::Poll;
use std::time::Duration;

use ipc_core::{Error, Result};
use ipc_signal::{kill, shutdown_signal, ShutdownSignals, Signal};

fn fail(msg: impl Into<String>) -> Error {
    Error::Io(io::Error::other(msg.into()))
}

async fn within<T>(fut: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .map_err(|_| fail("no signal arrived within 10 s"))?
}

fn expect_kind(result: Result<()>, kind: io::ErrorKind, what: &str) -> Result<()> {
    match result {
        Err(Error::Io(e)) if e.kind() == kind => Ok(()),
        other => Err(fail(format!("{what}: expected {kind:?}, got {other:?}"))),
    }
}

async fn checks() -> Result<()> {
    let me = std::process::id();

    // The first poll installs the handlers; a SIGTERM to ourselves then resolves it.
    let mut first = Box::pin(shutdown_signal());
    let polled = std::future::poll_fn(|cx| Poll::Ready(first.as_mut().poll(cx))).await;
    if polled.is_ready() {
        return Err(fail(format!("resolved before any signal: {polled:?}")));
    }
    kill(me, Signal::SIGTERM)?;
    let got = within(first).await?;
    if got != Signal::SIGTERM {
        return Err(fail(format!("expected SIGTERM, got {got:?}")));
    }
    println!("shutdown_signal::sigterm_to_self ... ok");

    // Several signals, each reported, in order, even when sent before recv is called.
    let mut signals = ShutdownSignals::new()?;
    kill(me, Signal::SIGINT)?;
    let got = within(signals.recv()).await?;
    if got != Signal::SIGINT {
        return Err(fail(format!("expected SIGINT, got {got:?}")));
    }
    kill(me, Signal::SIGQUIT)?;
    let got = within(signals.recv()).await?;
    if got != Signal::SIGQUIT {
        return Err(fail(format!("expected SIGQUIT, got {got:?}")));
    }
    println!("shutdown_signal::sigint_then_sigquit ... ok");

    expect_kind(
        kill(0, Signal::SIGTERM),
        io::ErrorKind::InvalidInput,
        "pid 0",
    )?;
    expect_kind(
        kill(u32::MAX, Signal::SIGTERM),
        io::ErrorKind::InvalidInput,
        "pid -1",
    )?;
    expect_kind(
        kill(i32::MAX as u32, Signal::SIGTERM),
        io::ErrorKind::NotFound,
        "a pid above pid_max",
    )?;
    println!("shutdown_signal::kill_errors ... ok");
    Ok(())
}

fn main() {
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::from)
        .and_then(|runtime| runtime.block_on(checks()));
    if let Err(e) = outcome {
        println!("shutdown_signal ... FAILED: {e}");
        std::process::exit(1);
    }
}
