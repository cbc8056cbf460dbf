//! The signal transport must never hurt a process that is not its peer: `connect` to a
//! process that would die of the transport's signals is refused before anything is
//! sent, `connect` to one that never answers gives up, and once a peer has exited
//! nothing is sent to whatever process gets its pid next.
//!
//! A plain `fn main()` (harness = false): the transport signals are blocked before any
//! thread exists. Targets are real processes (`sleep`, and this binary re-executed as
//! a channel child).
//!
//! `cargo test -p ipc-signal --test target_safety [-- NAME_FILTER...]`

use std::future::Future;
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ipc_core::prelude::*;
use ipc_core::testkit;
use ipc_core::Options;
use ipc_core::{Endpoint, Error, Result, SendError, Transport};
use ipc_signal::{SignalTransport, CONTROL_SIGNAL, DATA_SIGNAL};

/// Longest a check may take (a hang guard, not a timing assertion).
const CHECK_TIMEOUT: Duration = Duration::from_secs(60);

fn fail(msg: impl Into<String>) -> Error {
    Error::Io(io::Error::other(msg.into()))
}

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(fail(format!($($msg)+)));
        }
    };
}

/// Run `check` on a fresh current-thread runtime, bounded by [`CHECK_TIMEOUT`].
fn on_runtime<F: Future<Output = Result<()>>>(check: F) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        tokio::time::timeout(CHECK_TIMEOUT, check)
            .await
            .map_err(|_| fail("the check hung"))?
    })
}

fn transport_sigset() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, DATA_SIGNAL);
        libc::sigaddset(&mut set, CONTROL_SIGNAL);
        set
    }
}

/// `sleep 30`, with the transport signals unblocked (`blocked = false`: an ordinary
/// program that their default action kills) or blocked (inherited from this process:
/// a program where they wait in the queue). Killed when dropped.
fn sleeper(blocked: bool) -> Result<tokio::process::Child> {
    let mut cmd = std::process::Command::new("sleep");
    cmd.arg("30").stdin(Stdio::null());
    if !blocked {
        let set = transport_sigset();
        // SAFETY: runs between fork and exec and only calls pthread_sigmask
        // (async-signal-safe) on a set copied in before the fork.
        unsafe {
            cmd.pre_exec(move || {
                let rc = libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
                if rc != 0 {
                    return Err(io::Error::from_raw_os_error(rc));
                }
                Ok(())
            });
        }
    }
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(true);
    Ok(cmd.spawn()?)
}

/// The transport signals queued for `pid` as a process (`ShdPnd` in its status).
fn pending_transport_signals(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("ShdPnd:"))
        .ok_or_else(|| fail("no ShdPnd line"))?
        .trim();
    let pending = u64::from_str_radix(hex, 16).map_err(|e| fail(e.to_string()))?;
    Ok(pending & ((1 << (DATA_SIGNAL - 1)) | (1 << (CONTROL_SIGNAL - 1))))
}

/// SIGKILL `target` and check that SIGKILL is what ended it: had a transport signal
/// reached it first, that signal would be its exit status.
async fn kill_and_expect_untouched(target: &mut tokio::process::Child, what: &str) -> Result<()> {
    ensure!(
        target.try_wait()?.is_none(),
        "{what}: the target died: {:?}",
        target.try_wait()?
    );
    target.start_kill()?;
    let status = target.wait().await?;
    ensure!(
        status.signal() == Some(libc::SIGKILL),
        "{what}: the target was killed by {status}, not by our SIGKILL"
    );
    Ok(())
}

fn expect_refused<T>(what: &str, result: Result<T>, pid: u32) -> Result<()> {
    match result {
        Err(Error::Handshake(why))
            if why.contains(&pid.to_string())
                && why.contains(&DATA_SIGNAL.to_string())
                && why.contains("nothing was sent") =>
        {
            Ok(())
        }
        Err(e) => Err(fail(format!("{what}: wrong error: {e}"))),
        Ok(_) => Err(fail(format!(
            "{what}: connected to process {pid}, which neither blocks nor handles the \
             transport signals"
        ))),
    }
}

fn expect_no_answer<T>(what: &str, result: Result<T>, pid: u32) -> Result<()> {
    match result {
        Err(Error::Handshake(why))
            if why.contains(&pid.to_string()) && why.contains("did not answer") =>
        {
            Ok(())
        }
        Err(e) => Err(fail(format!("{what}: wrong error: {e}"))),
        Ok(_) => Err(fail(format!(
            "{what}: connected to process {pid}, which never opened a channel"
        ))),
    }
}

// ---------------------------------------------------------------- checks

/// `connect` to an ordinary program (`sleep`, signals not blocked, no handler) is
/// refused before any signal goes out, and the program lives on.
async fn unprepared_target_is_refused_and_lives() -> Result<()> {
    let mut target = sleeper(false)?;
    let pid = target.id().ok_or_else(|| fail("no pid"))?;
    expect_refused(
        "connect",
        ipc_signal::connect(pid, &Default::default())
            .await
            .map_err(ipc_core::Error::from),
        pid,
    )?;
    expect_refused(
        "SignalTransport::connect",
        SignalTransport
            .connect(&Endpoint::Signal { pid }, &Default::default())
            .await
            .map_err(ipc_core::Error::from),
        pid,
    )?;
    kill_and_expect_untouched(&mut target, "unprepared target").await
}

/// `connect` to a process that blocks the signals but never opens a channel (a
/// toolkit program not talking to us) gives up after the default timeout, or the one
/// given, naming it.
async fn silent_target_times_out() -> Result<()> {
    let mut target = sleeper(true)?;
    let pid = target.id().ok_or_else(|| fail("no pid"))?;
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        ipc_signal::connect(pid, &Default::default()),
    )
    .await
    .map_err(|_| fail("connect to a silent process hung"))?;
    expect_no_answer("connect", result.map_err(ipc_core::Error::from), pid)?;
    // The wait is configurable (and the failed attempt left no channel behind).
    let result = ipc_signal::connect(
        pid,
        &Options::default().handshake_timeout(Duration::from_millis(200)),
    )
    .await;
    expect_no_answer(
        "connect_with_timeout",
        result.map_err(ipc_core::Error::from),
        pid,
    )?;
    kill_and_expect_untouched(&mut target, "silent target").await
}

/// A peer that exited and was reaped gets nothing more: `send` fails with `PeerLost`,
/// and a process that took over its pid receives no signal (the pid is reused on
/// purpose through `/proc/sys/kernel/ns_last_pid` when this process may write it).
async fn reaped_peer_reused_pid_gets_nothing() -> Result<()> {
    let cmd = testkit::child_command(Role::Echo);
    let (mut child, mut ch) = ipc_signal::spawn(cmd, &Default::default()).await?;
    ch.send(Bytes::from_static(b"ping")).await?;
    ensure!(ch.recv().await?.as_deref() == Some(&b"ping"[..]), "no echo");
    let old = child.pid();
    child.kill()?;
    child.wait().await?; // reaped: the pid is free for anyone
    let mut newcomer = None;
    for _ in 0..50 {
        if std::fs::write("/proc/sys/kernel/ns_last_pid", (old - 1).to_string()).is_err() {
            println!("  (cannot write ns_last_pid: the pid is not reused on purpose)");
            break;
        }
        // Blocked signals: a signal sent to it waits in its queue, where we see it.
        let candidate = sleeper(true)?;
        if candidate.id() == Some(old) {
            newcomer = Some(candidate);
            break;
        }
    }
    if newcomer.is_none() {
        println!("  (pid {old} was not reused; checking the send alone)");
    }
    match ch.send(Bytes::from_static(b"anyone there?")).await {
        Err(SendError::PeerLost(why)) if why.contains(&old.to_string()) => {}
        other => return Err(fail(format!("send to a reaped peer: {other:?}"))),
    }
    if let Some(mut newcomer) = newcomer {
        let pending = pending_transport_signals(old)?;
        ensure!(
            pending == 0,
            "process {old} (the newcomer on the dead peer's pid) was sent transport \
             signals: pending mask {pending:#x}"
        );
        kill_and_expect_untouched(&mut newcomer, "newcomer").await?;
    }
    Ok(())
}

// ---------------------------------------------------------------- child

ipc_core::child_roles! {
    /// What a re-executed child does.
    enum Role {
        /// Echo every frame until the parent closes.
        Echo,
    }
}

async fn run_child(role: Role) -> Result<()> {
    let mut ch = ipc_signal::connect_from_env(&ipc_core::Options::from_env()).await?;
    match role {
        Role::Echo => {
            while let Some(frame) = ch.recv().await? {
                ch.send(frame).await?;
            }
            Ok(ch.close().await?)
        }
    }
}

// ---------------------------------------------------------------- runner

type Check = (&'static str, fn() -> Result<()>);

fn main() {
    if let Err(e) = ipc_signal::block_transport_signals() {
        eprintln!("{e}");
        std::process::exit(2);
    }
    if let Some(role) = testkit::role::<Role>() {
        let code = match on_runtime(run_child(role)) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("child {role:?} failed: {e}");
                1
            }
        };
        std::process::exit(code);
    }
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let selected =
        |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
    // One at a time: the pid-reuse check steers the next pid, and no other check of
    // this process may take it.
    let checks: &[Check] = &[
        ("unprepared_target_is_refused_and_lives", || {
            on_runtime(unprepared_target_is_refused_and_lives())
        }),
        ("silent_target_times_out", || {
            on_runtime(silent_target_times_out())
        }),
        ("reaped_peer_reused_pid_gets_nothing", || {
            on_runtime(reaped_peer_reused_pid_gets_nothing())
        }),
    ];
    let started = Instant::now();
    let mut failed = 0;
    let mut ran = 0;
    for (name, check) in checks.iter().filter(|(n, _)| selected(n)) {
        let t = Instant::now();
        ran += 1;
        match check() {
            Ok(()) => println!("target_safety::{name} ... ok ({:.2?})", t.elapsed()),
            Err(e) => {
                failed += 1;
                println!(
                    "target_safety::{name} ... FAILED ({:.2?}): {e}",
                    t.elapsed()
                );
            }
        }
    }
    println!(
        "\n{} passed, {failed} failed, in {:.2?}",
        ran - failed,
        started.elapsed()
    );
    if failed > 0 {
        std::process::exit(1);
    }
}
