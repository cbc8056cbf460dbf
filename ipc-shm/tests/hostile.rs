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
        /// Take the offer, say so on stdout, then ring both doorbells without pause
        /// until killed.
        Flood,
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
        Role::Flood => flood(),
    }
}

/// The offer's fds, taken from the inherited socket as a hostile peer would.
async fn take_offer() -> [OwnedFd; 3] {
    let fd = 3;
    let stream = ipc_core::inherit::claim_unix_stream(&Endpoint::ShmFd(fd), fd, "")
        .expect("the inherited socket");
    let stream = tokio::net::UnixStream::from_std(stream).expect("tokio socket");
    let mut rendezvous = ipc_uds::from_stream(stream, &ipc_core::Options::default()).expect("uds");
    let (_offer, fds) = rendezvous
        .recv_with_fds()
        .await
        .expect("the offer")
        .expect("an offer frame");
    fds.try_into().expect("three fds")
}

/// Say `word` on stdout, straight to fd 1 (libtest captures `println!`).
fn say(word: &str) {
    use std::io::Write;
    let mut out = std::io::stdout();
    writeln!(out, "{word}").expect("stdout");
    out.flush().expect("stdout");
}

fn flood() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let [_memfd, rx_bell, tx_bell] = runtime.block_on(take_offer());
    say("flooding");
    let bells = [rx_bell, tx_bell].map(std::os::unix::net::UnixStream::from);
    for bell in &bells {
        bell.set_nonblocking(true).expect("nonblocking");
    }
    loop {
        for mut bell in &bells {
            let _ = std::io::Write::write(&mut bell, &[0xEE; 4096]);
        }
        std::thread::yield_now();
    }
}

fn scribble() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let [memfd, bells @ ..] = take_offer().await;
        let segment = std::fs::File::from(memfd);
        // Ring 0 (parent -> us): claim to have read far more than was written.
        segment
            .write_all_at(&u64::MAX.to_ne_bytes(), CONTROL + READ_AT)
            .expect("pwrite ring 0 read");
        // Ring 1 (us -> parent): claim to have written 1 TiB.
        segment
            .write_all_at(&(1u64 << 40).to_ne_bytes(), CONTROL + CONTROL_SIZE)
            .expect("pwrite ring 1 write");
        say("scribbled");
        // Stay alive with the doorbells open: the parent must find the garbage, not
        // our death.
        let _keep = bells;
        std::future::pending::<()>().await;
    });
}

/// Wait until the child says `word` on its stdout (a message, not a sleep; libtest
/// prints its own lines first).
async fn wait_for_word(child: &mut ipc_core::Child, word: &str) {
    use tokio::io::AsyncBufReadExt;
    let stdout = child.inner_mut().stdout.take().expect("the child's stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("read the child's stdout") {
            if line.ends_with(word) {
                return;
            }
        }
        panic!("the child ended without saying {word:?}");
    })
    .await
    .expect("the child's report");
}

#[tokio::test(flavor = "current_thread")]
async fn a_peer_that_floods_the_doorbells_does_not_hold_the_runtime() {
    let mut command = child_command(Role::Flood);
    command.stdout(std::process::Stdio::piped());
    let (mut child, mut ch) = ipc_shm::spawn(command, &ipc_core::Options::default())
        .await
        .expect("spawn");
    wait_for_word(&mut child, "flooding").await;
    // On this one-threaded runtime, another task must still get to run while our
    // receive is woken again and again by the flood.
    let other = tokio::spawn(async {
        for _ in 0..1000 {
            tokio::task::yield_now().await;
        }
    });
    tokio::select! {
        got = ch.recv() => panic!("nothing was sent, yet recv gave {got:?}"),
        done = other => done.expect("the other task"),
        _ = tokio::time::sleep(Duration::from_secs(30)) => {
            panic!("a flooded receive held the runtime")
        }
    }
    // Sending still works (the ring has room), and so does seeing the peer die.
    ch.send(Bytes::from_static(b"still here"))
        .await
        .expect("send");
    child.kill().expect("kill");
    let end = tokio::time::timeout(Duration::from_secs(30), ch.recv())
        .await
        .expect("recv after the flooder died");
    assert!(matches!(end, Err(RecvError::PeerLost(_))), "{end:?}");
    child.wait().await.expect("wait");
}

#[tokio::test(flavor = "current_thread")]
async fn garbage_positions_from_a_peer_process_are_a_clean_error() {
    let mut command = child_command(Role::Scribble);
    command.stdout(std::process::Stdio::piped());
    let (mut child, ch) = ipc_shm::spawn(command, &ipc_core::Options::default())
        .await
        .expect("spawn");
    wait_for_word(&mut child, "scribbled").await;
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
