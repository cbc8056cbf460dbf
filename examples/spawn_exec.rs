//! spawn_exec: the four ways Node starts a program (`spawn`, `exec`, `execFile`,
//! `fork`) side by side in Rust, plus why skipping the shell is safer, a timeout that
//! kills the child, and the sync and async forms.
//!
//! The idea: starting a program is one system call away, but *how* you start it
//! decides what you get back. Node's `spawn(cmd, args)` streams the child's output as
//! it comes; `exec("a | b")` hands a command line to a shell and buffers the output;
//! `execFile(file, args)` runs a program with arguments and no shell; `fork(module)`
//! starts a Node child with a message channel. Their `*Sync` twins block until the
//! child exits. In Rust all of them are `std::process::Command` (blocking) or
//! `tokio::process::Command` (async), plus a transport's `spawn` for the channel.
//!
//! What to watch for:
//! - spawn: each line is printed when the child writes it (see the growing times),
//!   not all at the end.
//! - exec vs execFile: the same file name, with `; rm -rf canary` in it, passed once
//!   through `sh -c` and once as a plain argument, in a throwaway temp dir. Through
//!   the shell the name is split and `rm` runs: the canary file is gone. As an
//!   argument it is just a (strange) file name, and nothing else runs.
//! - timeout: `sleep 30` is stopped with SIGTERM after `--timeout-ms` (Node's `exec`
//!   `timeout` option sends SIGTERM too); its exit status says so.
//! - sync vs async: three `sleep`s one after another (blocking, like `execFileSync`),
//!   then the same three at once (async, like three `execFile` callbacks).
//! - fork: a copy of this program started over `--transport`, answering one message.
//!
//! ```text
//! cargo run --example spawn_exec
//! cargo run --example spawn_exec -- --transport tcp --lines 5 --timeout-ms 500
//! ```

use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::builder::PossibleValuesParser;
use clap::Parser;
use ipc::human;
use ipc::prelude::*;
use ipc::{Capabilities, Role};
use tokio::io::{AsyncBufReadExt, BufReader};

/// What the fork part needs of a transport: only to spawn a child. Its messages are
/// JSON texts, so every spawning transport carries them, `node` included.
const NEEDS: Capabilities = Capabilities::NONE.with_spawn(true);

/// A file name an attacker might hand you, with a shell command in it.
const NASTY_NAME: &str = "report.txt; rm -rf canary";

/// Node's spawn / exec / execFile / fork, in Rust.
#[derive(Parser, Debug)]
struct Args {
    /// Transport for the fork part (a child of this program with a message channel).
    #[arg(long, default_value = "uds",
          value_parser = PossibleValuesParser::new(ipc::registry().names_with(NEEDS)))]
    transport: String,
    /// Lines the streamed child prints, 100 ms apart.
    #[arg(long, default_value_t = 3)]
    lines: u32,
    /// How long the timeout part lets `sleep 30` run before stopping it.
    #[arg(long, default_value_t = 300)]
    timeout_ms: u64,
}

type DemoResult<T> = Result<T, Box<dyn std::error::Error>>;

/// spawn: stream the child's stdout line by line while it runs.
async fn spawn_streaming(lines: u32) -> DemoResult<bool> {
    println!("spawn: stream a child's output line by line");
    let script =
        format!("for i in $(seq {lines}); do echo \"line $i of {lines}\"; sleep 0.1; done");
    let start = Instant::now();
    let mut child = tokio::process::Command::new("sh")
        .args(["-c", &script])
        .stdout(Stdio::piped())
        .spawn()?;
    let mut out = BufReader::new(child.stdout.take().ok_or("no stdout pipe")?).lines();
    let mut seen = 0;
    while let Some(line) = out.next_line().await? {
        seen += 1;
        println!("  at {:>8}: {line}", human::duration(start.elapsed()));
    }
    let status = child.wait().await?;
    println!("  {seen} lines streamed; child exited: {status}");
    Ok(seen == lines && status.success())
}

/// exec: a whole command line for the shell (pipes and all), output captured.
async fn exec_shell() -> DemoResult<bool> {
    println!("exec: a shell command line, output captured");
    let line = "echo one two three | wc -w";
    let out = tokio::process::Command::new("sh")
        .args(["-c", line])
        .output()
        .await?;
    let text = String::from_utf8_lossy(&out.stdout);
    println!("  sh -c \"{line}\" printed {}", text.trim());
    Ok(out.status.success() && text.trim() == "3")
}

/// execFile vs exec with an untrusted file name, in a throwaway directory.
async fn shell_injection(dir: &Path) -> DemoResult<bool> {
    println!("execFile vs exec: a file name containing {:?}", "; rm -rf");
    std::fs::write(dir.join(NASTY_NAME), "hello\n")?;
    std::fs::write(dir.join("canary"), "still here\n")?;
    let canary = dir.join("canary");

    // execFile: the program and its arguments, no shell. The name is one argument.
    let out = tokio::process::Command::new("wc")
        .args(["-c", NASTY_NAME])
        .current_dir(dir)
        .output()
        .await?;
    let safe_kept = canary.exists();
    println!(
        "  no shell:   wc -c {NASTY_NAME:?} -> {:?}; canary {}",
        String::from_utf8_lossy(&out.stdout).trim(),
        if safe_kept { "still there" } else { "GONE" }
    );

    // exec: the same name pasted into a shell command line. The shell splits it at `;`.
    let line = format!("wc -c {NASTY_NAME}");
    let out = tokio::process::Command::new("sh")
        .args(["-c", &line])
        .current_dir(dir)
        .stderr(Stdio::piped())
        .output()
        .await?;
    let shell_kept = canary.exists();
    println!(
        "  with shell: sh -c {line:?} -> {:?}; canary {}",
        String::from_utf8_lossy(&out.stderr).trim(),
        if shell_kept {
            "still there"
        } else {
            "GONE: the shell ran `rm -rf canary` from the file name"
        }
    );
    Ok(safe_kept && !shell_kept)
}

/// A timeout that stops the child with SIGTERM, as Node's `exec(cmd, { timeout })` does.
async fn timeout_kills(limit: Duration) -> DemoResult<bool> {
    println!(
        "timeout: `sleep 30` with a {} limit",
        human::duration(limit)
    );
    let start = Instant::now();
    let mut child = tokio::process::Command::new("sleep").arg("30").spawn()?;
    let status = match tokio::time::timeout(limit, child.wait()).await {
        Ok(status) => status?,
        Err(_elapsed) => {
            let pid = child.id().ok_or("the child has already been reaped")?;
            let pid = nix::unistd::Pid::from_raw(i32::try_from(pid)?);
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)?;
            child.wait().await?
        }
    };
    println!(
        "  stopped after {}: {status}",
        human::duration(start.elapsed())
    );
    Ok(status.code().is_none())
}

/// The blocking form (`execFileSync`) and the async form (`execFile` with a callback).
async fn sync_and_async() -> DemoResult<bool> {
    println!("sync vs async: three `sleep 0.2`");
    let start = Instant::now();
    for _ in 0..3 {
        // Blocks this thread until the child exits: nothing else runs meanwhile.
        std::process::Command::new("sleep").arg("0.2").status()?;
    }
    println!(
        "  sync, one after another: {}",
        human::duration(start.elapsed())
    );
    let start = Instant::now();
    let sleep = || tokio::process::Command::new("sleep").arg("0.2").status();
    let (a, b, c) = tokio::join!(sleep(), sleep(), sleep());
    println!(
        "  async, all three at once: {}",
        human::duration(start.elapsed())
    );
    Ok(a?.success() && b?.success() && c?.success())
}

/// fork: a copy of this program with a message channel over `transport`.
async fn fork(transport: &str) -> DemoResult<bool> {
    println!("fork: this program again, with a message channel over {transport}");
    let transport = ipc::registry().get_with(transport, NEEDS)?;
    let exe = std::env::current_exe()?;
    let (mut child, mut ch) = transport
        .spawn(std::process::Command::new(exe), &ipc::Options::default())
        .await?;
    ch.send(r#""hello, child""#.into()).await?;
    let reply = ch
        .recv()
        .await?
        .ok_or("the child closed without answering")?;
    ch.close().await?;
    let status = child.wait().await?;
    println!(
        "  child {} answered {}; child exited: {status}",
        child.pid(),
        String::from_utf8_lossy(&reply)
    );
    Ok(status.success())
}

/// The forked child: answer the first message, then wait for the parent's close.
async fn child() -> ipc::Result<()> {
    let mut parent = ipc::connect_from_env().await?;
    if let Some(hello) = parent.recv().await? {
        let text = String::from_utf8_lossy(&hello);
        let reply = format!(
            "\"pid {} got {}\"",
            std::process::id(),
            text.trim_matches('"')
        );
        parent.send(reply.into()).await?;
    }
    while parent.recv().await?.is_some() {}
    Ok(parent.close().await?)
}

async fn parent(args: Args) -> DemoResult<bool> {
    let dir = tempfile::tempdir()?;
    let results = [
        ("spawn", spawn_streaming(args.lines).await?),
        ("exec", exec_shell().await?),
        ("execFile vs exec", shell_injection(dir.path()).await?),
        (
            "timeout",
            timeout_kills(Duration::from_millis(args.timeout_ms)).await?,
        ),
        ("sync vs async", sync_and_async().await?),
        ("fork", fork(&args.transport).await?),
    ];
    let failed: Vec<&str> = results
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(name, _)| *name)
        .collect();
    if failed.is_empty() {
        println!("all six parts behaved as described");
    } else {
        println!(
            "these parts did not behave as described: {}",
            failed.join(", ")
        );
    }
    Ok(failed.is_empty())
}

fn main() -> ExitCode {
    ipc::run(run())
}

async fn run() -> ExitCode {
    if ipc::role() == Role::Child {
        return match child().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("spawn_exec child: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match parent(Args::parse()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("spawn_exec: {e}");
            ExitCode::FAILURE
        }
    }
}
