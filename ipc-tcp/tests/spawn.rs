//! Spawning a child wired over loopback TCP. The child is this test binary, re-run as
//! a child playing [`Role::Echo`] (only the `child` test does anything then).

use std::process::Command;
use std::time::{Duration, Instant};

use ipc_core::prelude::*;
use ipc_core::testkit;
use ipc_core::ConnectError;
use ipc_core::SpawnError;
use ipc_core::{Options, Transport};
use ipc_tcp::{TcpChannelExt, TcpTransport};

ipc_core::child_roles! {
    /// What this binary does when re-executed as a child.
    enum Role {
        /// Connect through the environment like any ipc child, echo every frame, close
        /// when the parent closes.
        Echo,
    }
}

/// The children's entry point: does nothing in the parent's test run.
#[tokio::test]
async fn child() {
    let Some(Role::Echo) = testkit::role::<Role>() else {
        return;
    };
    let endpoint = ipc_core::env::endpoint_from_env().expect("IPC_ENDPOINT");
    assert!(
        ipc_core::env::token_from_env().is_some(),
        "IPC_TOKEN is set"
    );
    let config = Options::from_env();
    let mut ch = TcpTransport
        .connect(&endpoint, &config)
        .await
        .expect("connect from env");
    while let Some(frame) = ch.recv().await.expect("recv") {
        ch.send(frame).await.expect("send");
    }
    ch.close().await.expect("close");
}

fn child_command() -> Command {
    testkit::child_command(Role::Echo)
}

#[tokio::test]
async fn spawned_child_echoes_and_the_port_is_closed() {
    let opts = Options::default()
        .max_frame(4096)
        .handshake_timeout(Duration::from_secs(30));
    let (mut child, mut ch) = ipc_tcp::spawn(child_command(), &opts).await.expect("spawn");

    let info = ch.info();
    assert_eq!(info.transport, "tcp");
    assert_eq!(info.peer_pid, Some(child.pid()));
    assert_eq!(info.max_frame, 4096);

    // The child got IPC_MAX_FRAME and uses the same limit.
    ch.send(vec![1u8; 4096].into()).await.expect("send max");
    assert_eq!(ch.recv().await.expect("recv").expect("frame").len(), 4096);
    ch.send("ping".into()).await.expect("send");
    assert_eq!(
        ch.recv().await.expect("recv").as_deref(),
        Some(&b"ping"[..])
    );

    // The listening port is gone as soon as spawn returned.
    match ipc_tcp::connect(ch.local_addr().expect("addr"), &Default::default()).await {
        Err(ConnectError::NotListening(e)) => {
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused)
        }
        other => panic!("the spawn listener should be closed, got {other:?}"),
    }

    ch.close().await.expect("close");
    assert_eq!(ch.recv().await.expect("recv"), None);
    assert!(child.wait().await.expect("wait").success());
}

#[tokio::test]
async fn spawn_through_the_transport_trait() {
    let tcp = TcpTransport;
    let opts = Options::default().handshake_timeout(Duration::from_secs(30));
    let (mut child, mut ch) = tcp.spawn(child_command(), &opts).await.expect("spawn");
    assert_eq!(ch.info().peer_pid, Some(child.pid()));
    ch.send("hello".into()).await.expect("send");
    assert_eq!(
        ch.recv().await.expect("recv").as_deref(),
        Some(&b"hello"[..])
    );
    ch.close().await.expect("close");
    assert_eq!(ch.recv().await.expect("recv"), None);
    assert!(child.wait().await.expect("wait").success());
}

#[tokio::test]
async fn a_child_that_exits_without_connecting_is_reported_promptly() {
    use std::os::unix::process::ExitStatusExt;
    let mut cmd = Command::new("/bin/sh");
    cmd.args([
        "-c",
        r#"test -n "$IPC_TOKEN" && case "$IPC_ENDPOINT" in tcp://127.0.0.1:*) exit 3;; esac; exit 1"#,
    ]);
    let started = Instant::now();
    match ipc_tcp::spawn(cmd, &Default::default()).await {
        Err(SpawnError::ChildExited(status)) => {
            assert_eq!(status.code(), Some(3), "env contract: {status:?}");
            assert_eq!(status.signal(), None);
        }
        other => panic!("expected ChildExited, got {:?}", other.map(|(c, _)| c)),
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "reported after {:?}, not promptly (the handshake timeout is 5 s)",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_child_that_never_connects_times_out_and_is_killed() {
    // The child's stdout is a pipe only it holds: EOF on our end means it is dead.
    let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe");
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", "exec sleep 60"]);
    cmd.stdout(std::process::Stdio::from(write_end));
    let opts = Options::default().handshake_timeout(Duration::from_millis(300));
    match ipc_tcp::spawn(cmd, &opts).await {
        Err(SpawnError::Timeout { after, .. }) => assert_eq!(after, Duration::from_millis(300)),
        other => panic!("expected Timeout, got {:?}", other.map(|(c, _)| c)),
    }
    let eof = tokio::task::spawn_blocking(move || {
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut std::fs::File::from(read_end), &mut rest)
    });
    tokio::time::timeout(Duration::from_secs(10), eof)
        .await
        .expect("the child was killed, not left running")
        .expect("join")
        .expect("read");
}

#[tokio::test]
async fn a_missing_program_is_a_start_error() {
    let cmd = Command::new("/nonexistent/ipc-tcp-test-child");
    match ipc_tcp::spawn(cmd, &Default::default()).await {
        Err(SpawnError::Start { program, source }) => {
            assert_eq!(program, "/nonexistent/ipc-tcp-test-child");
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected Start, got {:?}", other.map(|(c, _)| c)),
    }
}
