//! Channels over real sockets: socketpairs, spawned children, inherited fds, the
//! `Transport` impl.

use std::os::fd::{AsRawFd, IntoRawFd};
use std::process::Command;

use bytes::Bytes;
use ipc_core::prelude::*;
use ipc_core::ConnectError;
use ipc_core::ListenError;
use ipc_core::Options;
use ipc_core::{Endpoint, Error, RecvError, SendError, Transport};
use ipc_uds::{connect, pair, spawn, UdsTransport};

fn our_uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

#[tokio::test]
async fn pair_ping_pong_and_peer_credentials() {
    let config = Options::default().max_frame(1 << 20);
    let (mut a, mut b) = pair(&config).expect("pair");
    for i in 0..100u32 {
        a.send(Bytes::from(format!("ping {i}")))
            .await
            .expect("send");
        let got = b.recv().await.expect("recv").expect("frame");
        assert_eq!(got, format!("ping {i}"));
        b.send(Bytes::from(format!("pong {i}")))
            .await
            .expect("send");
        let got = a.recv().await.expect("recv").expect("frame");
        assert_eq!(got, format!("pong {i}"));
    }
    a.send(Bytes::new()).await.expect("empty frame");
    assert_eq!(b.recv().await.expect("recv"), Some(Bytes::new()));

    let info = a.info();
    assert_eq!(info.transport, "uds");
    assert_eq!(info.peer_pid, Some(std::process::id()));
    assert_eq!(info.peer_uid, Some(our_uid()));
    assert_eq!(info.max_frame, 1 << 20);

    a.close().await.expect("close");
    a.close().await.expect("close is idempotent");
    assert!(matches!(
        a.send("late".into()).await,
        Err(SendError::Closed)
    ));
    assert_eq!(b.recv().await.expect("recv"), None);
    assert_eq!(b.recv().await.expect("recv"), None);
}

#[tokio::test]
async fn oversize_send_is_refused_and_the_channel_lives_on() {
    let config = Options::default().max_frame(1024);
    let (mut a, mut b) = pair(&config).expect("pair");
    let err = a
        .send(Bytes::from(vec![0u8; 1025]))
        .await
        .expect_err("too large");
    assert!(
        matches!(
            err,
            SendError::Rejected(Error::FrameTooLarge {
                len: 1025,
                max: 1024
            })
        ),
        "{err}"
    );
    a.send(Bytes::from(vec![7u8; 1024]))
        .await
        .expect("max size");
    assert_eq!(b.recv().await.expect("recv").expect("frame").len(), 1024);
}

#[tokio::test]
async fn dropped_peer_is_an_abort_a_closed_one_a_clean_end_and_a_killed_one_an_error() {
    let (a, mut b) = pair(&Default::default()).expect("pair");
    drop(a); // without close: no goodbye
    let end = b.recv().await;
    assert!(matches!(end, Err(RecvError::PeerLost(_))), "{end:?}");
    let (mut a, mut b) = pair(&Default::default()).expect("pair");
    a.close().await.expect("close");
    assert_eq!(b.recv().await.expect("recv"), None);

    let mut sleeper = Command::new("sleep");
    sleeper.arg("1000");
    let (mut child, mut channel) = spawn(sleeper, &Default::default()).await.expect("spawn");
    child.kill().expect("kill");
    let err = channel.recv().await.expect_err("killed child");
    assert!(matches!(err, RecvError::PeerLost(_)), "{err}");
    child.wait().await.expect("wait");
}

/// Ten thousand frames each way, sender and receiver halves in separate tasks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_halves_work_concurrently() {
    const N: u32 = 10_000;
    let (a, b) = pair(&Default::default()).expect("pair");

    // Concrete halves on one side, boxed halves on the other.
    let (mut a_tx, mut a_rx) = a.into_split();
    let (mut b_tx, mut b_rx) = (Box::new(b) as Box<dyn Channel>).split();

    let sender_a = tokio::spawn(async move {
        for i in 0..N {
            a_tx.send(Bytes::from(i.to_be_bytes().repeat(1 + (i % 50) as usize)))
                .await
                .expect("send");
        }
        a_tx.close().await.expect("close");
    });
    let sender_b = tokio::spawn(async move {
        for i in 0..N {
            b_tx.send(Bytes::from(i.to_string())).await.expect("send");
        }
        b_tx.close().await.expect("close");
    });
    let receiver_b = tokio::spawn(async move {
        let mut i = 0u32;
        while let Some(frame) = b_rx.recv().await.expect("recv") {
            assert_eq!(frame.len(), 4 * (1 + (i % 50) as usize));
            assert_eq!(frame[..4], i.to_be_bytes());
            i += 1;
        }
        assert_eq!(i, N);
    });
    let mut i = 0u32;
    while let Some(frame) = a_rx.recv().await.expect("recv") {
        assert_eq!(frame, i.to_string());
        i += 1;
    }
    assert_eq!(i, N);
    sender_a.await.expect("task");
    sender_b.await.expect("task");
    receiver_b.await.expect("task");
}

#[tokio::test]
async fn spawned_child_finds_a_socket_at_fd_3_and_its_endpoint_in_env() {
    let mut command = Command::new("/bin/sh");
    command.args([
        "-c",
        r#"test -S /dev/fd/3 && test "$IPC_ENDPOINT" = uds:fd=3 && test "$IPC_MAX_FRAME" = 4096"#,
    ]);
    let config = Options::default().max_frame(4096);
    let (mut child, channel) = spawn(command, &config).await.expect("spawn");
    assert_eq!(channel.info().peer_pid, Some(child.pid()));
    assert_eq!(channel.info().peer_uid, Some(our_uid()));
    let status = child.wait().await.expect("wait");
    assert!(status.success(), "child checks failed: {status}");
}

/// `cat` copies fd 3 to itself: every byte comes back, goodbye included, and our only
/// other copy of the child's end is gone (else the read would never end).
#[tokio::test]
async fn spawned_child_echoes_frames_back() {
    let mut command = Command::new("/bin/sh");
    command.args(["-c", "exec cat <&3 >&3 3>&-"]);
    let (mut child, channel) = UdsTransport
        .spawn(command, &Default::default())
        .await
        .expect("spawn through the Transport trait");
    let big = Bytes::from((0..300_000u32).map(|i| i as u8).collect::<Vec<u8>>());
    let (mut tx, mut rx) = channel.split();
    let sent = big.clone();
    let writer = tokio::spawn(async move {
        tx.send("hello".into()).await.expect("send");
        tx.send(sent).await.expect("send big");
        tx.close().await.expect("close");
    });
    assert_eq!(rx.recv().await.expect("recv").expect("frame"), "hello");
    assert_eq!(rx.recv().await.expect("recv").expect("frame"), big);
    assert_eq!(rx.recv().await.expect("recv"), None);
    writer.await.expect("task");
    assert!(child.wait().await.expect("wait").success());
}

/// All `uds:fd=N` cases in one test: they share the process-wide set of taken fds.
#[tokio::test]
async fn inherited_fd_is_checked_and_taken_once() {
    // Not a socket.
    let file = tempfile::tempfile().expect("tempfile");
    let fd = file.as_raw_fd();
    let err = connect(&Endpoint::UdsFd(fd), &Default::default())
        .await
        .expect_err("a file is not a socket");
    let msg = err.to_string();
    assert!(msg.contains(&format!("fd {fd} is not a socket")), "{msg}");
    assert!(msg.contains("UdsTransport::spawn"), "{msg}");
    // The file was not taken over (closed) by the failed attempt.
    assert!(file.metadata().is_ok());

    // Not open at all.
    let err = connect(&Endpoint::UdsFd(999), &Default::default())
        .await
        .expect_err("fd 999 is not open");
    assert!(err.to_string().contains("not open"), "{err}");

    // A TCP socket is a socket, but not ours.
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("tcp");
    let err = connect(&Endpoint::UdsFd(tcp.as_raw_fd()), &Default::default())
        .await
        .expect_err("not AF_UNIX");
    assert!(
        err.to_string().contains("not a Unix stream socket"),
        "{err}"
    );

    // A real inherited-style socket: taken once, then refused.
    let (theirs, ours) = std::os::unix::net::UnixStream::pair().expect("socketpair");
    let raw = theirs.into_raw_fd();
    let endpoint: Endpoint = format!("uds:fd={raw}").parse().expect("endpoint");
    let mut channel = UdsTransport
        .connect(&endpoint, &Default::default())
        .await
        .expect("connect to inherited fd");
    let flags = nix::fcntl::fcntl(
        // The channel owns `raw` now; only look at its flags.
        // SAFETY: `channel` keeps `raw` open for the whole borrow, which ends at `fcntl`.
        unsafe { std::os::fd::BorrowedFd::borrow_raw(raw) },
        nix::fcntl::FcntlArg::F_GETFD,
    )
    .expect("F_GETFD");
    assert!(
        flags & libc::FD_CLOEXEC != 0,
        "inherited fd must become CLOEXEC"
    );
    let err = connect(&endpoint, &Default::default())
        .await
        .expect_err("second take");
    assert!(err.to_string().contains("already taken"), "{err}");

    // The first channel still works.
    let ours = tokio::net::UnixStream::from_std({
        ours.set_nonblocking(true).expect("nonblocking");
        ours
    })
    .expect("tokio");
    let mut peer = ipc_uds::from_stream(ours, &Default::default()).expect("wrap");
    peer.send("still here".into()).await.expect("send");
    assert_eq!(
        channel.recv().await.expect("recv").expect("frame"),
        "still here"
    );
}

#[tokio::test]
async fn transport_names_and_bad_endpoints() {
    let t = UdsTransport;
    assert_eq!(t.name(), "uds");
    assert_eq!(t.schemes(), &["unix", "uds"]);
    let Some(Endpoint::UnixPath(path)) = t.example_endpoint() else {
        panic!("example endpoint is a path");
    };
    assert!(!path.exists(), "the example socket does not exist yet");
    let dir = path.parent().expect("parent");
    assert!(dir.is_dir());
    {
        let _listener = t
            .listen(&Endpoint::UnixPath(path.clone()), &Default::default())
            .await
            .expect("listen");
        assert!(path.exists());
    }
    assert!(!path.exists(), "socket removed on drop");
    assert!(!dir.exists(), "the example's private dir removed on drop");

    let tcp: Endpoint = "tcp://127.0.0.1:1".parse().expect("endpoint");
    assert!(matches!(
        t.connect(&tcp, &Default::default()).await,
        Err(ConnectError::BadEndpoint { .. })
    ));
    assert!(matches!(
        t.listen(&tcp, &Default::default()).await,
        Err(ListenError::BadEndpoint { .. })
    ));
    assert!(matches!(
        t.listen(&Endpoint::UdsFd(3), &Default::default()).await,
        Err(ListenError::BadEndpoint { .. })
    ));
    let missing = Endpoint::UnixPath(dir.join("nobody-here.sock"));
    let Err(err) = t.connect(&missing, &Default::default()).await else {
        panic!("connected with no server");
    };
    assert!(err.to_string().contains("is the server running"), "{err}");
}
