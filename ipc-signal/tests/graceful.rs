//! The graceful-shutdown helper's exit paths, in real child processes (this binary
//! re-executed; `GRACEFUL_ROLE` names the scenario) stopped with real signals. The child
//! reports progress on stdout; the parent waits for those lines, never on timers.
//!
//! `cargo test -p ipc-signal --test graceful`

use std::io::{self, BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ipc_core::{Error, Result};
use ipc_signal::{kill, GracefulShutdown, ShutdownHandle, Signal, StopReason};

const ROLE: &str = "GRACEFUL_ROLE";

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

async fn child(role: &str) -> ExitCode {
    let grace = match role {
        "stuck" => Duration::from_millis(200),
        "forced" => Duration::from_secs(60),
        _ => Duration::from_secs(10),
    };
    let role = role.to_string();
    let cleanup = |reason: StopReason| async move { println!("cleanup {reason:?}") };
    let work = |handle: ShutdownHandle| async move {
        match role.as_str() {
            "graceful" | "sigint" => spawn_finishing_task(&handle),
            "stuck" | "forced" => spawn_stuck_task(&handle),
            "finished_ok" => return Ok(()),
            "finished_err" => return Err(fail("the work failed")),
            "requested" => handle.shutdown(),
            _ => return Err(fail(format!("unknown role {role}"))),
        }
        println!("ready");
        handle.wait().await;
        println!("draining");
        if handle.spawn(async {}).is_none() {
            println!("refused new work");
        }
        Ok(())
    };
    let outcome = if role_is_default() {
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

fn role_is_default() -> bool {
    std::env::var(ROLE).is_ok_and(|r| r == "sigint")
}

// ---------------------------------------------------------------- parent side

struct Run {
    code: Option<i32>,
    lines: Vec<String>,
    took: Duration,
}

/// Run scenario `role`; each time the child prints `line`, send it `sig`.
fn run(role: &str, script: &[(&str, Signal)]) -> Result<Run> {
    let started = Instant::now();
    let mut child = Command::new(std::env::current_exe()?)
        .env(ROLE, role)
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
    role: &str,
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
    if let Ok(role) = std::env::var(ROLE) {
        return match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(child(&role)),
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
            "graceful",
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
            "sigint",
            &[("ready", Signal::SIGINT)],
            0,
            &["task finished", "cleanup Signal(SIGINT)"],
        ),
        check(
            "grace_period_runs_out_exit_143",
            "stuck",
            &term,
            143,
            &["cleanup Signal(SIGTERM)", "outcome graceful=false code=143"],
        ),
        check(
            "second_signal_forces_exit_130",
            "forced",
            &[("ready", Signal::SIGTERM), ("draining", Signal::SIGINT)],
            130,
            &["cleanup Signal(SIGTERM)"],
        ),
        check(
            "work_finishes_exit_0",
            "finished_ok",
            &[],
            0,
            &["cleanup Finished"],
        ),
        check(
            "work_fails_exit_1",
            "finished_err",
            &[],
            1,
            &["cleanup Finished"],
        ),
        check(
            "shutdown_requested_exit_0",
            "requested",
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
