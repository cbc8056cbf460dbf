//! The graceful-shutdown helper's exit paths, in real child processes (this binary
//! re-executed as a child playing a [`Role`], the scenario) stopped with real signals. The child
//! reports progress on stdout; the parent waits for those lines, never on timers.
//!
//! `cargo test -p ipc-signal --test graceful`

use std::io::{self, BufRead, BufReader};
use std::process::{ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ipc_core::testkit;
use ipc_core::{Error, Result};
use ipc_signal::{kill, GracefulShutdown, ShutdownHandle, Signal, StopReason};

ipc_core::child_roles! {
    /// The scenario a re-executed child plays.
    enum Role {
        /// A task that finishes once shutdown begins.
        Graceful,
        /// The same, under `run_until_shutdown` (SIGINT).
        Sigint,
        /// A task that never finishes, a short grace period.
        Stuck,
        /// A task that never finishes, a long grace period.
        Forced,
        /// The work returns `Ok` by itself.
        FinishedOk,
        /// The work returns an error by itself.
        FinishedErr,
        /// The work asks for shutdown itself.
        Requested,
    }
}

fn fail(msg: impl Into<String>) -> Error {
    Error::Io(io::Error::other(msg.into()))
}

// ---------------------------------------------------------------- child side

/// A tracked task that finishes a moment after shutdown begins.
fn spawn_finishing_task(handle: &ShutdownHandle) {
    let watcher = handle.clone();
    handle.spawn(async move {
        watcher.wait().await;
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        println!("task finished");
    });
}

/// A tracked task that never finishes.
fn spawn_stuck_task(handle: &ShutdownHandle) {
    handle.spawn(std::future::pending::<()>());
}

async fn child(role: Role) -> ExitCode {
    let grace = match role {
        Role::Stuck => Duration::from_millis(200),
        Role::Forced => Duration::from_secs(60),
        _ => Duration::from_secs(10),
    };
    let cleanup = |reason: StopReason| async move { println!("cleanup {reason:?}") };
    let work = |handle: ShutdownHandle| async move {
        match role {
            Role::Graceful | Role::Sigint => spawn_finishing_task(&handle),
            Role::Stuck | Role::Forced => spawn_stuck_task(&handle),
            Role::FinishedOk => return Ok(()),
            Role::FinishedErr => return Err(fail("the work failed")),
            Role::Requested => handle.shutdown(),
        }
        println!("ready");
        handle.wait().await;
        println!("draining");
        if handle.spawn(async {}).is_none() {
            println!("refused new work");
        }
        Ok(())
    };
    let outcome = if role == Role::Sigint {
        ipc_signal::run_until_shutdown(work, cleanup).await
    } else {
        GracefulShutdown::new()
            .grace_period(grace)
            .run(work, cleanup)
            .await
    };
    println!(
        "outcome graceful={} code={}",
        outcome.graceful,
        outcome.code()
    );
    outcome.exit_code()
}

// ---------------------------------------------------------------- parent side

struct Run {
    code: Option<i32>,
    lines: Vec<String>,
    took: Duration,
}

/// Run scenario `role`; each time the child prints `line`, send it `sig`.
fn run(role: Role, script: &[(&str, Signal)]) -> Result<Run> {
    let started = Instant::now();
    let mut child = testkit::child_command(role)
        .stdout(Stdio::piped())
        .spawn()?;
    let pid = child.id();
    // A watchdog, so a hung child fails the test instead of hanging it.
    let (done, watch) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if watch.recv_timeout(Duration::from_secs(30)).is_err() {
            let _ = kill(pid, Signal::SIGKILL);
        }
    });
    let stdout = child.stdout.take().ok_or_else(|| fail("no stdout"))?;
    let mut lines = Vec::new();
    let mut script = script.iter();
    let mut next = script.next();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if let Some((wanted, sig)) = next {
            if line == *wanted {
                kill(pid, *sig)?;
                next = script.next();
            }
        }
        lines.push(line);
    }
    let status = child.wait()?;
    let _ = done.send(());
    let _ = watchdog.join();
    Ok(Run {
        code: status.code(),
        lines,
        took: started.elapsed(),
    })
}

fn check(
    name: &str,
    role: Role,
    script: &[(&str, Signal)],
    code: i32,
    must_print: &[&str],
) -> bool {
    let verdict = run(role, script).and_then(|run| {
        if run.code != Some(code) {
            return Err(fail(format!(
                "exit {:?}, expected {code}; output: {:?}",
                run.code, run.lines
            )));
        }
        for wanted in must_print {
            if !run.lines.iter().any(|l| l == wanted) {
                return Err(fail(format!("no line {wanted:?} in {:?}", run.lines)));
            }
        }
        Ok(run.took)
    });
    match verdict {
        Ok(took) => {
            println!("graceful::{name} ... ok ({took:.2?})");
            true
        }
        Err(e) => {
            println!("graceful::{name} ... FAILED: {e}");
            false
        }
    }
}

fn main() -> ExitCode {
    if let Some(role) = testkit::role::<Role>() {
        return match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(child(role)),
            Err(e) => {
                eprintln!("no runtime: {e}");
                ExitCode::from(70)
            }
        };
    }
    let term = [("ready", Signal::SIGTERM)];
    let results = [
        check(
            "sigterm_lets_work_finish_then_exit_0",
            Role::Graceful,
            &term,
            0,
            &[
                "draining",
                "refused new work",
                "task finished",
                "cleanup Signal(SIGTERM)",
            ],
        ),
        check(
            "sigint_with_run_until_shutdown_exit_0",
            Role::Sigint,
            &[("ready", Signal::SIGINT)],
            0,
            &["task finished", "cleanup Signal(SIGINT)"],
        ),
        check(
            "grace_period_runs_out_exit_143",
            Role::Stuck,
            &term,
            143,
            &["cleanup Signal(SIGTERM)", "outcome graceful=false code=143"],
        ),
        check(
            "second_signal_forces_exit_130",
            Role::Forced,
            &[("ready", Signal::SIGTERM), ("draining", Signal::SIGINT)],
            130,
            &["cleanup Signal(SIGTERM)"],
        ),
        check(
            "work_finishes_exit_0",
            Role::FinishedOk,
            &[],
            0,
            &["cleanup Finished"],
        ),
        check(
            "work_fails_exit_1",
            Role::FinishedErr,
            &[],
            1,
            &["cleanup Finished"],
        ),
        check(
            "shutdown_requested_exit_0",
            Role::Requested,
            &[],
            0,
            &["draining", "cleanup Requested"],
        ),
    ];
    let failed = results.iter().filter(|ok| !**ok).count();
    println!("\n{} passed, {failed} failed", results.len() - failed);
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
