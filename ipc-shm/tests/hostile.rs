//! A hostile peer process: it takes the segment it is offered like any child, but
//! instead of speaking the protocol it writes garbage positions into the rings' control
//! blocks (with `pwrite` on the `memfd`, from its own process). Our side must report a
//! clean error that says what happened, never hang, crash or touch memory outside the
//! segment.

use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::time::Duration;

use bytes::Bytes;
use ipc_core::prelude::*;
use ipc_core::testkit::{child_command, role};
use ipc_core::{Endpoint, RecvError, SendError};
use ipc_uds::RecvFds;

ipc_core::child_roles! {
    /// What a re-executed child of this test binary does.
    enum Role {
        /// Take the offer, scribble garbage positions into both rings, say so on
        /// stdout, then wait (alive: its doorbells stay open) until killed.
        Scribble,
    }
}

/// Where ring `r`'s `write` and `read` positions are (docs/PROTOCOL.md).
const CONTROL: u64 = 1024;
const CONTROL_SIZE: u64 = 512;
const READ_AT: u64 = 128;

/// The children's entry point: does nothing in the parent's test run.
#[test]
fn child() {
    let Some(role) = role::<Role>() else { return };
    match role {
        Role::Scribble => scribble(),
    }
}

fn scribble() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let fd = 3;
        let stream = ipc_core::inherit::claim_unix_stream(&Endpoint::ShmFd(fd), fd, "")
            .expect("the inherited socket");
        let stream = tokio::net::UnixStream::from_std(stream).expect("tokio socket");
        let mut rendezvous = ipc_uds::from_stream(stream, Default::default()).expect("uds");
        let (_offer, fds) = rendezvous
            .recv_with_fds()
            .await
            .expect("the offer")
            .expect("an offer frame");
        let [memfd, bells @ ..]: [OwnedFd; 3] = fds.try_into().expect("three fds");
        let segment = std::fs::File::from(memfd);
        // Ring 0 (parent -> us): claim to have read far more than was written.
        segment
            .write_all_at(&u64::MAX.to_ne_bytes(), CONTROL + READ_AT)
            .expect("pwrite ring 0 read");
        // Ring 1 (us -> parent): claim to have written 1 TiB.
        segment
            .write_all_at(&(1u64 << 40).to_ne_bytes(), CONTROL + CONTROL_SIZE)
            .expect("pwrite ring 1 write");
        // Straight to fd 1: libtest captures `println!` in a test function.
        use std::io::Write;
        let mut out = std::io::stdout();
        writeln!(out, "scribbled").expect("stdout");
        out.flush().expect("stdout");
        // Stay alive with the doorbells open: the parent must find the garbage, not
        // our death.
        let _keep = bells;
        std::future::pending::<()>().await;
    });
}

#[tokio::test(flavor = "current_thread")]
async fn garbage_positions_from_a_peer_process_are_a_clean_error() {
    use tokio::io::AsyncBufReadExt;
    let mut command = child_command(Role::Scribble);
    command.stdout(std::process::Stdio::piped());
    let (mut child, ch) = ipc_shm::spawn(command, Default::default())
        .await
        .expect("spawn");
    let stdout = child.inner_mut().stdout.take().expect("the child's stdout");
    // Wait until the garbage is in place (a message, not a sleep; libtest prints its
    // own lines first).
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("read the child's stdout") {
            if line.ends_with("scribbled") {
                return;
            }
        }
        panic!("the child ended without scribbling");
    })
    .await
    .expect("the child's report");
    let (mut tx, mut rx) = ch.into_split();
    // Receiving: the write position of ring 1 is 1 TiB ahead of ours.
    let got = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("recv must not hang on garbage positions");
    match got {
        Err(RecvError::Io(e)) => {
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{e}");
            assert!(
                e.to_string().contains("broke the shared-memory protocol"),
                "{e}"
            );
        }
        other => panic!("expected an InvalidData error, got {other:?}"),
    }
    // Sending: more than the ring holds makes the sender look at the read position,
    // which claims more was read than was ever written.
    let big = Bytes::from(vec![7u8; ipc_shm::DEFAULT_RING_SIZE + 1]);
    let sent = tokio::time::timeout(Duration::from_secs(30), tx.send(big))
        .await
        .expect("send must not hang on garbage positions");
    match &sent {
        Err(e) => assert!(
            e.to_string().contains("broke the shared-memory protocol"),
            "{e}"
        ),
        Ok(()) => panic!("a send over a corrupt ring succeeded"),
    }
    assert!(
        !matches!(sent, Err(SendError::PeerLost(_))),
        "the peer is alive"
    );
    child.kill().expect("kill");
    child.wait().await.expect("wait");
}
