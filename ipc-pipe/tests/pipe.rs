//! Anonymous pipes: in-process pairs, spawned children, and the child-side checks.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use ipc_core::prelude::*;
use ipc_core::ListenError;
use ipc_core::{Error, RecvError, SendError, Transport};
use ipc_pipe::{connect_inherited, pipe_pair, spawn_pipe, PipeTransport};

const LIMIT: Duration = Duration::from_secs(20);

async fn within<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, fut).await.expect("timed out")
}

/// The error of a result whose success value has no `Debug` (channels).
fn err_of<T>(result: ipc_core::Result<T>, what: &str) -> Error {
    match result {
        Err(e) => e,
        Ok(_) => panic!("expected an error: {what}"),
    }
}

fn sh(script: &str) -> Command {
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", script]);
    cmd
}

/// A raw pipe made with libc, close-on-exec: (read end, write end).
fn raw_pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two fds into the array, which we then own.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: both fds were just created and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

#[tokio::test(flavor = "current_thread")]
async fn pair_ping_pong() {
    let (mut a, mut b) = pipe_pair(&Default::default()).expect("pair");
    assert_eq!(a.info().transport, "pipe");
    assert_eq!(a.info().peer_pid, Some(std::process::id()));
    for i in 0..100 {
        let msg = Bytes::from(format!("ping {i}"));
        a.send(msg.clone()).await.expect("send");
        let got = within(b.recv()).await.expect("recv").expect("frame");
        assert_eq!(got, msg);
        b.send(got).await.expect("echo");
        assert_eq!(within(a.recv()).await.expect("recv").expect("frame"), msg);
    }
    a.close().await.expect("close");
    assert_eq!(within(b.recv()).await.expect("recv"), None);
    assert_eq!(b.recv().await.expect("recv again"), None);
}

#[tokio::test(flavor = "current_thread")]
async fn pair_carries_a_1_mib_frame() {
    let (a, mut b) = pipe_pair(&Default::default()).expect("pair");
    let big: Bytes = (0..1 << 20)
        .map(|i: u32| (i % 251) as u8)
        .collect::<Vec<_>>()
        .into();
    let expected = big.clone();
    // 1 MiB is 16 times a pipe's capacity: the send completes only while we read.
    let (mut tx, _rx_unused) = (Box::new(a) as Box<dyn Channel>).split();
    let sender = tokio::spawn(async move {
        tx.send(big).await?;
        tx.send(Bytes::from_static(b"after")).await?;
        tx.close().await
    });
    let got = within(b.recv()).await.expect("recv").expect("frame");
    assert_eq!(got.len(), 1 << 20);
    assert!(got == expected, "the 1 MiB frame arrived changed");
    assert_eq!(
        within(b.recv()).await.expect("recv").as_deref(),
        Some(&b"after"[..])
    );
    assert_eq!(within(b.recv()).await.expect("recv"), None);
    within(sender).await.expect("task").expect("sender");
}

#[tokio::test(flavor = "current_thread")]
async fn spawned_child_finds_pipes_at_fds_3_and_4() {
    let script =
        r#"test -p /dev/fd/3 && test -p /dev/fd/4 && test "$IPC_ENDPOINT" = "pipe:fd=3,4""#;
    let (mut child, ch) = spawn_pipe(sh(script), &Default::default())
        .await
        .expect("spawn");
    assert_eq!(ch.info().peer_pid, Some(child.pid()));
    let status = within(child.wait()).await.expect("wait");
    assert!(
        status.success(),
        "the child did not see its pipes: {status}"
    );

    // The same through the Transport trait.
    let (mut child, _ch) = PipeTransport
        .spawn(sh(script), &Default::default())
        .await
        .expect("spawn");
    assert!(within(child.wait()).await.expect("wait").success());
}

#[tokio::test(flavor = "current_thread")]
async fn child_sees_eof_when_we_drop_the_channel() {
    // `cat` echoes raw bytes and exits at end-of-file on fd 3: that only comes if no
    // copy of our write end leaked into the child.
    let (mut child, mut ch) = spawn_pipe(sh("exec cat <&3 >&4"), &Default::default())
        .await
        .expect("spawn");
    ch.send(Bytes::from_static(b"echo")).await.expect("send");
    assert_eq!(
        within(ch.recv()).await.expect("recv").as_deref(),
        Some(&b"echo"[..])
    );
    ch.close().await.expect("close");
    // Our own goodbye, echoed: a clean end.
    assert_eq!(within(ch.recv()).await.expect("recv"), None);
    drop(ch);
    let status = within(child.wait()).await.expect("wait");
    assert!(
        status.success(),
        "cat did not end cleanly at end-of-file: {status}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn child_killed_is_peer_lost_for_reads_and_writes() {
    let (mut child, mut ch) = spawn_pipe(sh("kill -9 $$"), &Default::default())
        .await
        .expect("spawn");
    let status = within(child.wait()).await.expect("wait");
    assert!(!status.success());
    match within(ch.recv()).await {
        Err(RecvError::PeerLost(why)) => assert!(why.contains("without a goodbye"), "{why}"),
        other => panic!("expected PeerLost, got {other:?}"),
    }
    // EPIPE (SIGPIPE ignored) from a peer that never said goodbye: lost, not closed.
    match ch.send(Bytes::from_static(b"anyone?")).await {
        Err(SendError::PeerLost(_)) => {}
        other => panic!("expected PeerLost, got {other:?}"),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn connect_refuses_fds_that_are_not_pipes() {
    let mut file = tempfile::tempfile().expect("temp file");
    let other = tempfile::tempfile().expect("temp file");
    let err = err_of(
        connect_inherited(file.as_raw_fd(), other.as_raw_fd(), &Default::default())
            .map_err(ipc_core::Error::from),
        "a regular file is not a pipe",
    );
    let msg = err.to_string();
    assert!(
        msg.contains("not a pipe") && msg.contains("regular file"),
        "{msg}"
    );
    // The fd was left alone: still ours, still open.
    file.write_all(b"still open")
        .expect("the file fd was closed by the failed connect");

    let err = err_of(
        connect_inherited(900, 901, &Default::default()).map_err(ipc_core::Error::from),
        "fds not open",
    );
    assert!(err.to_string().contains("fd 900 is not open"), "{err}");
}

#[tokio::test(flavor = "current_thread")]
async fn connect_refuses_swapped_ends() {
    let (r1, w1) = raw_pipe();
    let (r2, w2) = raw_pipe();
    // Given as (write end, read end): the wrong way round.
    let err = err_of(
        connect_inherited(w1.as_raw_fd(), r2.as_raw_fd(), &Default::default())
            .map_err(ipc_core::Error::from),
        "swapped ends",
    );
    assert!(err.to_string().contains("wrong end"), "{err}");
    let err = err_of(
        connect_inherited(r1.as_raw_fd(), r1.as_raw_fd(), &Default::default())
            .map_err(ipc_core::Error::from),
        "one fd for both",
    );
    assert!(matches!(err, Error::BadEndpoint { .. }), "{err}");
    drop((r1, w1, r2, w2));
}

#[tokio::test(flavor = "current_thread")]
async fn an_inherited_fd_is_taken_once() {
    let (ours_read, their_write) = raw_pipe();
    let (their_read, ours_write) = raw_pipe();
    // Hand the child-side ends over as raw numbers, as an inherited pair would be.
    let read = std::os::fd::IntoRawFd::into_raw_fd(their_read);
    let write = std::os::fd::IntoRawFd::into_raw_fd(their_write);
    let mut child_side = connect_inherited(read, write, &Default::default()).expect("first take");
    let err = err_of(
        connect_inherited(read, write, &Default::default()).map_err(ipc_core::Error::from),
        "second take",
    );
    assert!(err.to_string().contains("already taken"), "{err}");

    // The first channel works against plain ends.
    let mut theirs = File::from(ours_write);
    let mut payload = 5u32.to_be_bytes().to_vec();
    payload.extend_from_slice(b"hello");
    theirs.write_all(&payload).expect("write");
    assert_eq!(
        within(child_side.recv()).await.expect("recv").as_deref(),
        Some(&b"hello"[..])
    );
    child_side
        .send(Bytes::from_static(b"hi"))
        .await
        .expect("send");
    let mut back = [0u8; 6];
    std::io::Read::read_exact(&mut File::from(ours_read), &mut back).expect("read");
    assert_eq!(&back, b"\0\0\0\x02hi");
}

#[tokio::test(flavor = "current_thread")]
async fn pipe_transport_cannot_listen() {
    assert!(PipeTransport.example_endpoint().is_none());
    let endpoint = "fifo:/tmp/x".parse().expect("endpoint");
    match PipeTransport.listen(&endpoint, &Default::default()).await {
        Err(ListenError::Unsupported { transport, what }) => {
            assert_eq!(transport, "pipe");
            assert!(
                what.contains("fifo"),
                "should point to the fifo transport: {what}"
            );
        }
        Err(other) => panic!("expected Unsupported, got {other:?}"),
        Ok(_) => panic!("expected Unsupported, got a listener"),
    }
}
