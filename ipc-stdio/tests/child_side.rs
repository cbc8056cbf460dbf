//! The child's side: this test binary re-executes itself as a stdio child (selected by
//! an environment variable) and checks, from the parent, what the child does with its
//! own fd 0/1 — reactor-driven pipes, the fallback for regular files, the redirection
//! of stray stdout output, one connection per process, flags put back.
//!
//! The conformance suite runs against stdio from the workspace's `tests/conformance.rs`,
//! with every other transport.
//!
//! `harness = false` (libtest-mimic): `main` must check for the child roles before
//! anything prints to stdout, which libtest's own harness would do.

use ipc_core::ConnectError;
use ipc_core::Options;
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use ipc_core::frame::Decoded;
use ipc_core::prelude::*;
use ipc_core::testkit::{self, ChildRole};
use ipc_core::{RecvError, Registry};
use ipc_stdio::{JsonLinesCodec, StdioTransport};
use libtest_mimic::{Arguments, Failed, Trial};

ipc_core::child_roles! {
    /// What this binary does when re-executed as a child.
    enum Role {
        /// Say how fd 0/1 are driven, then echo until the parent closes.
        ReportEcho,
        /// Print to stdout by mistake, and start a grandchild that does the same.
        Println,
        /// Take the channel twice, as a transport and directly.
        Twice,
    }
}

/// A parent-side test of this file.
type ChildTest = fn() -> Result<(), Failed>;

const LIMIT: Duration = Duration::from_secs(30);

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry.register(StdioTransport);
    registry
}

fn main() {
    if let Some(role) = testkit::role::<Role>() {
        std::process::exit(child_role(role));
    }
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    let tests: [(&str, ChildTest); 6] = [
        ("child::pipes_are_reactor_driven", pipes_are_reactor_driven),
        (
            "child::regular_files_use_the_fallback",
            regular_files_use_the_fallback,
        ),
        (
            "child::file_stdin_with_pipe_stdout",
            file_stdin_with_pipe_stdout,
        ),
        (
            "child::stray_stdout_output_goes_to_stderr",
            stray_stdout_output_goes_to_stderr,
        ),
        (
            "child::a_second_connect_is_an_error",
            a_second_connect_is_an_error,
        ),
        (
            "child::nonblocking_flag_is_put_back",
            nonblocking_flag_is_put_back,
        ),
    ];
    for (name, test) in tests {
        trials.push(Trial::test(name, test));
    }
    libtest_mimic::run(&args, trials).exit();
}

// ---------------------------------------------------------------------------------
// Child roles

fn child_role(role: Role) -> i32 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("no runtime: {e}");
            return 70;
        }
    };
    match runtime.block_on(run_role(role)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("child role {role:?} failed: {e}");
            1
        }
    }
}

async fn run_role(role: Role) -> ipc_core::Result<()> {
    let config = Options::from_env();
    match role {
        // Say how fd 0/1 are driven, then echo until the parent closes.
        Role::ReportEcho => {
            let (mut tx, mut rx) = ipc_stdio::from_stdio(&config)?.into_split();
            let report = format!(
                r#"{{"reader_reactor":{},"writer_reactor":{}}}"#,
                rx.reader_mut().is_reactor_driven(),
                tx.writer().is_reactor_driven()
            );
            tx.send(Bytes::from(report)).await?;
            loop {
                match rx.recv().await {
                    Ok(Some(frame)) => tx.send(frame).await?,
                    Ok(None) => break,
                    Err(e @ RecvError::Rejected(_)) => {
                        tx.send(Bytes::from(format!("error: {e}"))).await?
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(tx.close().await?)
        }
        // Print to stdout by mistake, and start a grandchild that does the same.
        Role::Println => {
            let mut ch = ipc_stdio::from_stdio(&config)?;
            println!("stray println from the child");
            ch.send(Bytes::from_static(br#"{"after":"println"}"#))
                .await?;
            let status = Command::new("/bin/sh")
                .arg("-c")
                .arg("echo from-grandchild; cat; echo grandchild-saw-eof >&2")
                .status()?;
            ch.send(Bytes::from(format!(
                r#"{{"grandchild":{}}}"#,
                status.success()
            )))
            .await?;
            ch.close().await?;
            while ch.recv().await?.is_some() {}
            Ok(())
        }
        Role::Twice => {
            let mut ch = ipc_stdio::from_stdio(&config)?;
            let again = match ipc_stdio::from_stdio(&config) {
                Err(e @ ConnectError::Unsupported { .. }) => e.to_string(),
                Err(e) => format!("wrong error: {e}"),
                Ok(_) => "a second channel".to_string(),
            };
            let via_transport = match registry().connect_from_env(&config).await {
                Err(e @ ConnectError::Unsupported { .. }) => e.to_string(),
                Err(e) => format!("wrong error: {e}"),
                Ok(_) => "a second channel".to_string(),
            };
            ch.send(Bytes::from(again)).await?;
            ch.send(Bytes::from(via_transport)).await?;
            ch.close().await?;
            while ch.recv().await?.is_some() {}
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------
// Parent side

fn check(cond: bool, msg: impl Into<String>) -> Result<(), Failed> {
    if cond {
        Ok(())
    } else {
        Err(Failed::from(msg.into()))
    }
}

fn fail(e: impl std::fmt::Display) -> Failed {
    Failed::from(e.to_string())
}

fn runtime() -> Result<tokio::runtime::Runtime, Failed> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(fail)
}

async fn bounded<T>(what: &str, fut: impl std::future::Future<Output = T>) -> Result<T, Failed> {
    tokio::time::timeout(LIMIT, fut)
        .await
        .map_err(|_| Failed::from(format!("hung: {what}")))
}

fn child_command(role: Role) -> Command {
    testkit::child_command(role)
}

async fn expect(ch: &mut dyn Channel, expected: &[u8]) -> Result<(), Failed> {
    let got = bounded("a frame", ch.recv()).await?.map_err(fail)?;
    check(
        got.as_deref() == Some(expected),
        format!(
            "expected {:?}, got {:?}",
            String::from_utf8_lossy(expected),
            got.map(|g| String::from_utf8_lossy(&g).into_owned())
        ),
    )
}

fn pipes_are_reactor_driven() -> Result<(), Failed> {
    runtime()?.block_on(async {
        let (mut child, mut ch) =
            ipc_stdio::spawn(child_command(Role::ReportEcho), &Default::default())
                .await
                .map_err(fail)?;
        expect(&mut ch, br#"{"reader_reactor":true,"writer_reactor":true}"#).await?;
        for frame in [&b"\x00binary\xff"[..], b"{\"json\":[1,2]}", b""] {
            ch.send(Bytes::copy_from_slice(frame)).await.map_err(fail)?;
            expect(&mut ch, frame).await?;
        }
        ch.close().await.map_err(fail)?;
        check(
            bounded("close", ch.recv()).await?.map_err(fail)?.is_none(),
            "expected close",
        )?;
        let status = bounded("exit", child.wait()).await?.map_err(fail)?;
        check(status.success(), format!("child: {status}"))
    })
}

/// `IPC_ENDPOINT=stdio: child < requests.jsonl > replies.jsonl`: both fds are regular
/// files, so both go through the blocking-pool fallback.
fn regular_files_use_the_fallback() -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(fail)?;
    let input = dir.path().join("in.jsonl");
    let output = dir.path().join("out.jsonl");
    std::fs::write(
        &input,
        "{\"a\":1}\n\n{\"$bytes\":\"AAEC\"}\r\nnot json\n{\"$ipc\":\"goodbye\"}\n",
    )
    .map_err(fail)?;
    let status = child_command(Role::ReportEcho)
        .env("IPC_ENDPOINT", "stdio:")
        .stdin(std::fs::File::open(&input).map_err(fail)?)
        .stdout(std::fs::File::create(&output).map_err(fail)?)
        .status()
        .map_err(fail)?;
    check(status.success(), format!("child: {status}"))?;
    let out = std::fs::read_to_string(&output).map_err(fail)?;
    let lines: Vec<&str> = out.lines().collect();
    check(lines.len() == 5, format!("unexpected output:\n{out}"))?;
    check(
        lines[0] == r#"{"reader_reactor":false,"writer_reactor":false}"#,
        format!("report: {}", lines[0]),
    )?;
    check(lines[1] == r#"{"a":1}"#, lines[1])?;
    check(lines[2] == r#"{"$bytes":"AAEC"}"#, lines[2])?;
    // The bad line was reported back by the echo role, as base64 text.
    let err: serde_json::Value = serde_json::from_str(lines[3]).map_err(fail)?;
    let text = err["$bytes"].as_str().unwrap_or_default();
    check(
        text.starts_with("ZXJyb3I6"),
        format!("error report: {}", lines[3]),
    )?; // "error:"
    check(lines[4] == r#"{"$ipc":"goodbye"}"#, lines[4])
}

/// stdin from a file (fallback), stdout a pipe (reactor), read back with the codec.
fn file_stdin_with_pipe_stdout() -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(fail)?;
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "[1]\n{\"$ipc\":\"goodbye\"}\n").map_err(fail)?;
    runtime()?.block_on(async {
        let mut child = tokio::process::Command::from(child_command(Role::ReportEcho))
            .env("IPC_ENDPOINT", "stdio:")
            .stdin(std::fs::File::open(&input).map_err(fail)?)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(fail)?;
        let stdout = child.stdout.take().ok_or_else(|| fail("no stdout"))?;
        let mut lines =
            tokio_util::codec::FramedRead::new(stdout, JsonLinesCodec::new(Default::default()));
        let mut got = Vec::new();
        while let Some(item) = bounded("a line", lines.next()).await? {
            match item.map_err(fail)? {
                Decoded::Frame(f) => got.push(String::from_utf8_lossy(&f).into_owned()),
                Decoded::Goodbye => break,
                Decoded::Rejected(e) => return Err(fail(e)),
            }
        }
        check(
            got == [r#"{"reader_reactor":false,"writer_reactor":true}"#, "[1]"],
            format!("{got:?}"),
        )?;
        let status = bounded("exit", child.wait()).await?.map_err(fail)?;
        check(status.success(), format!("child: {status}"))
    })
}

fn stray_stdout_output_goes_to_stderr() -> Result<(), Failed> {
    runtime()?.block_on(async {
        let mut cmd = child_command(Role::Println);
        cmd.stderr(Stdio::piped());
        let (mut child, mut ch) = ipc_stdio::spawn(cmd, &Default::default())
            .await
            .map_err(fail)?;
        // No decode error first: the println! did not reach the channel.
        expect(&mut ch, br#"{"after":"println"}"#).await?;
        expect(&mut ch, br#"{"grandchild":true}"#).await?;
        check(
            bounded("close", ch.recv()).await?.map_err(fail)?.is_none(),
            "expected close",
        )?;
        ch.close().await.map_err(fail)?;
        let status = bounded("exit", child.wait()).await?.map_err(fail)?;
        check(status.success(), format!("child: {status}"))?;
        let stderr = read_stderr(&mut child).await?;
        for needle in [
            "stray println from the child",
            "from-grandchild",
            "grandchild-saw-eof",
        ] {
            check(
                stderr.contains(needle),
                format!("{needle:?} not in stderr:\n{stderr}"),
            )?;
        }
        Ok(())
    })
}

fn a_second_connect_is_an_error() -> Result<(), Failed> {
    runtime()?.block_on(async {
        let (mut child, mut ch) = ipc_stdio::spawn(child_command(Role::Twice), &Default::default())
            .await
            .map_err(fail)?;
        for _ in 0..2 {
            let msg = bounded("report", ch.recv()).await?.map_err(fail)?;
            let msg = String::from_utf8_lossy(msg.as_deref().unwrap_or_default()).into_owned();
            check(msg.contains("connecting twice in one process"), msg)?;
        }
        check(
            bounded("close", ch.recv()).await?.map_err(fail)?.is_none(),
            "expected close",
        )?;
        ch.close().await.map_err(fail)?;
        let status = bounded("exit", child.wait()).await?.map_err(fail)?;
        check(status.success(), format!("child: {status}"))
    })
}

/// A shell runs the child, then shows the flags of its own fd 0/1, which share their
/// open file descriptions with the child's: `O_NONBLOCK` must be gone again.
fn nonblocking_flag_is_put_back() -> Result<(), Failed> {
    runtime()?.block_on(async {
        let exe = std::env::current_exe().map_err(fail)?;
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            // Read the flags inside $(...): a redirection like `grep ... >&2` may be
            // applied to the shell's own fds while grep runs (dash does).
            .arg(r#""$0"; f=$(grep flags /proc/$$/fdinfo/0 /proc/$$/fdinfo/1); echo "$f" >&2"#)
            .arg(exe)
            .env(testkit::ROLE_VAR, Role::ReportEcho.name())
            .stderr(Stdio::piped());
        let (mut child, mut ch) = ipc_stdio::spawn(cmd, &Default::default())
            .await
            .map_err(fail)?;
        expect(&mut ch, br#"{"reader_reactor":true,"writer_reactor":true}"#).await?;
        ch.close().await.map_err(fail)?;
        check(
            bounded("close", ch.recv()).await?.map_err(fail)?.is_none(),
            "expected close",
        )?;
        drop(ch);
        let status = bounded("exit", child.wait()).await?.map_err(fail)?;
        check(status.success(), format!("shell: {status}"))?;
        let stderr = read_stderr(&mut child).await?;
        let flags: Vec<u32> = stderr
            .lines()
            .filter_map(|l| l.rsplit('\t').next()?.trim().parse::<String>().ok())
            .filter_map(|octal| u32::from_str_radix(&octal, 8).ok())
            .collect();
        check(flags.len() == 2, format!("no flags in:\n{stderr}"))?;
        check(
            flags.iter().all(|f| f & libc::O_NONBLOCK as u32 == 0),
            format!("O_NONBLOCK left set:\n{stderr}"),
        )
    })
}

/// All the child's stderr (it has exited, so this ends).
async fn read_stderr(child: &mut ipc_core::Child) -> Result<String, Failed> {
    let mut pipe = child
        .inner_mut()
        .stderr
        .take()
        .ok_or_else(|| fail("stderr was not piped"))?;
    let mut text = String::new();
    bounded(
        "stderr",
        tokio::io::AsyncReadExt::read_to_string(&mut pipe, &mut text),
    )
    .await?
    .map_err(fail)?;
    Ok(text)
}
