//! The shared-memory listener: handshakes run side by side, so a silent client delays
//! nobody; a client that speaks something else is refused with a reason.

use std::time::Duration;

use ipc_core::prelude::*;
use ipc_core::{ConnectError, Endpoint, Error, ListenError, Options, SpawnError, Transport};
use ipc_shm::ShmAddress;
use ipc_uds::UdsAddress;

const GUARD: Duration = Duration::from_secs(30);

fn endpoint() -> (tempfile::TempDir, Endpoint) {
    let dir = tempfile::Builder::new()
        .prefix("ipc-shm-test-")
        .tempdir()
        .expect("temp dir");
    let endpoint = ShmAddress::Path(dir.path().join("sock")).into();
    (dir, endpoint)
}

#[tokio::test(flavor = "current_thread")]
async fn a_silent_client_does_not_delay_the_next_one() {
    let (_dir, endpoint) = endpoint();
    let mut listener = ipc_shm::ShmListener::bind(&endpoint, &Options::default()).expect("bind");
    let ShmAddress::Path(path) = ShmAddress::try_from(&endpoint).expect("an shm endpoint") else {
        unreachable!()
    };
    // Connects, then says nothing (its hello never comes).
    let _silent = tokio::net::UnixStream::connect(path)
        .await
        .expect("raw connect");
    let server = tokio::spawn(async move {
        let mut ch = listener.accept().await.expect("accept the good client");
        let frame = ch.recv().await.expect("recv").expect("a frame");
        ch.send(frame).await.expect("echo");
        ch.close().await.expect("close");
        listener
    });
    let mut client = tokio::time::timeout(GUARD, ipc_shm::connect(&endpoint, &Options::default()))
        .await
        .expect("connect must not wait for the silent client")
        .expect("connect");
    assert_eq!(client.info().transport, "shm");
    assert_eq!(client.info().peer_pid, Some(std::process::id()));
    client.send("hi".into()).await.expect("send");
    let echoed = tokio::time::timeout(GUARD, client.recv())
        .await
        .expect("the echo")
        .expect("recv");
    assert_eq!(echoed.as_deref(), Some(&b"hi"[..]));
    assert_eq!(client.recv().await.expect("the close"), None);
    tokio::time::timeout(GUARD, server)
        .await
        .expect("server")
        .expect("server task");
}

#[tokio::test(flavor = "current_thread")]
async fn a_client_that_speaks_something_else_is_refused_with_a_reason() {
    use tokio::io::AsyncWriteExt;
    let (_dir, endpoint) = endpoint();
    let mut listener = ipc_shm::ShmTransport::default()
        .listen(&endpoint, &Options::default())
        .await
        .expect("listen");
    let ShmAddress::Path(path) = ShmAddress::try_from(&endpoint).expect("an shm endpoint") else {
        unreachable!()
    };
    let mut stranger = tokio::net::UnixStream::connect(path)
        .await
        .expect("raw connect");
    stranger.write_all(b"\0\0\0\x05hello").await.expect("write");
    match tokio::time::timeout(GUARD, listener.accept())
        .await
        .expect("accept")
    {
        Err(Error::Handshake(why)) => assert!(why.contains("\"hello\""), "{why}"),
        other => panic!(
            "expected a handshake error, got {:?}",
            other.map(|_| "a channel")
        ),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn connecting_where_nobody_listens_says_so() {
    let (_dir, endpoint) = endpoint();
    let err = ipc_shm::connect(&endpoint, &Options::default())
        .await
        .expect_err("nobody listens");
    assert!(matches!(err, ConnectError::NotListening(_)), "{err}");
    assert!(err.to_string().contains("no socket file there"), "{err}");
    let err = ipc_shm::connect(&"unix:/x".parse().expect("endpoint"), &Options::default())
        .await
        .expect_err("not an shm endpoint");
    assert!(matches!(err, ConnectError::BadEndpoint { .. }), "{err}");
}

#[tokio::test(flavor = "current_thread")]
async fn accepted_channels_share_the_listener_budget() {
    use ipc_core::RecvError;
    let (_dir, endpoint) = endpoint();
    let options = Options::default().listener_budget(1 << 20);
    let mut listener = ipc_shm::ShmListener::bind(&endpoint, &options).expect("bind");
    let server = tokio::spawn(async move {
        let mut ch = listener.accept().await.expect("accept");
        ch.recv().await
    });
    let mut client = ipc_shm::connect(&endpoint, &Options::default())
        .await
        .expect("connect");
    // A 2 MiB frame: more than the listener's whole budget for partly received frames.
    let big = bytes::Bytes::from(vec![1u8; 2 << 20]);
    let sending = tokio::spawn(async move { client.send(big).await });
    let got = tokio::time::timeout(GUARD, server)
        .await
        .expect("the server's verdict")
        .expect("server task");
    match got {
        Err(e @ RecvError::BudgetExceeded(Error::BudgetExceeded { .. })) => {
            assert!(e.to_string().contains("listener_budget("), "{e}");
        }
        other => panic!("expected BudgetExceeded, got {other:?}"),
    }
    let sent = tokio::time::timeout(GUARD, sending)
        .await
        .expect("the client's send ends once the server is gone")
        .expect("client task");
    assert!(sent.is_err(), "the server dropped the channel mid-frame");
}

#[tokio::test(flavor = "current_thread")]
async fn a_rendezvous_that_is_not_an_shm_listener_is_a_handshake_error() {
    let (_dir, endpoint) = endpoint();
    let ShmAddress::Path(path) = ShmAddress::try_from(&endpoint).expect("an shm endpoint") else {
        unreachable!()
    };
    // A uds echo server where the shm listener should be: it sends our hello back.
    let mut uds =
        ipc_uds::UdsListener::bind(&UdsAddress::Path(path.clone()).into(), &Options::default())
            .expect("bind uds");
    tokio::spawn(async move {
        let mut ch = uds.accept().await.expect("accept");
        while let Ok(Some(frame)) = ch.recv().await {
            if ch.send(frame).await.is_err() {
                break;
            }
        }
    });
    let err = tokio::time::timeout(GUARD, ipc_shm::connect(&endpoint, &Options::default()))
        .await
        .expect("connect gives up")
        .expect_err("an echo server offers no segment");
    match err {
        ConnectError::Handshake(why) => assert!(why.contains("ipc-shm/1 hello"), "{why}"),
        other => panic!("expected a handshake error, got {other:?}"),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_rendezvous_that_never_answers_is_a_timeout_after_the_handshake_timeout() {
    let (_dir, endpoint) = endpoint();
    let ShmAddress::Path(path) = ShmAddress::try_from(&endpoint).expect("an shm endpoint") else {
        unreachable!()
    };
    // Accepts connections (the backlog does), reads nothing, answers nothing.
    let _mute = std::os::unix::net::UnixListener::bind(&path).expect("bind");
    let options = Options::default().handshake_timeout(Duration::from_millis(200));
    let err = tokio::time::timeout(GUARD, ipc_shm::connect(&endpoint, &options))
        .await
        .expect("connect gives up by itself")
        .expect_err("nobody offers a segment");
    match &err {
        ConnectError::Timeout { after, during } => {
            assert_eq!(*after, Duration::from_millis(200));
            assert!(during.contains("segment"), "{during}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(err.to_string().contains("timed out after"), "{err}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_client_silent_past_the_listeners_handshake_timeout_is_dropped() {
    let (_dir, endpoint) = endpoint();
    let options = Options::default().handshake_timeout(Duration::from_millis(200));
    let mut listener = ipc_shm::ShmListener::bind(&endpoint, &options).expect("bind");
    let ShmAddress::Path(path) = ShmAddress::try_from(&endpoint).expect("an shm endpoint") else {
        unreachable!()
    };
    let _silent = tokio::net::UnixStream::connect(path)
        .await
        .expect("raw connect");
    let err = tokio::time::timeout(GUARD, listener.accept())
        .await
        .expect("accept gives up on the silent client")
        .expect_err("it never said hello");
    assert!(err.to_string().contains("nothing within 200ms"), "{err}");
}

#[tokio::test(flavor = "current_thread")]
async fn listening_fails_with_the_listen_error_that_says_why() {
    let (_dir, taken) = endpoint();
    let _first = ipc_shm::ShmListener::bind(&taken, &Options::default()).expect("bind");
    let err = ipc_shm::ShmListener::bind(&taken, &Options::default())
        .expect_err("the rendezvous socket is taken");
    assert!(matches!(err, ListenError::InUse(_)), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("pid {}", std::process::id())),
        "{err}"
    );

    let (_other_dir, other) = endpoint();
    let err = ipc_shm::ShmListener::bind_with_ring_size(&other, &Options::default(), 5000)
        .expect_err("not a power of two");
    assert!(matches!(err, ListenError::Io(_)), "{err}");
    assert!(err.to_string().contains("power of two"), "{err}");

    let err =
        ipc_shm::ShmListener::bind(&"unix:/x".parse().expect("endpoint"), &Options::default())
            .expect_err("not an shm endpoint");
    assert!(matches!(err, ListenError::BadEndpoint { .. }), "{err}");
}

#[tokio::test(flavor = "current_thread")]
async fn spawning_a_program_that_does_not_exist_is_start_naming_it() {
    let command = std::process::Command::new("./no-such-shm-worker");
    let err = ipc_shm::spawn(command, &Options::default())
        .await
        .expect_err("nothing to start");
    match &err {
        SpawnError::Start { program, .. } => assert_eq!(program, "./no-such-shm-worker"),
        other => panic!("expected Start, got {other:?}"),
    }
    let command = std::process::Command::new("./no-such-shm-worker");
    let err = ipc_shm::spawn_with_ring_size(command, &Options::default(), 5000)
        .await
        .expect_err("not a power of two");
    assert!(matches!(err, SpawnError::Io(_)), "{err}");
}

#[tokio::test(flavor = "current_thread")]
async fn the_frame_limit_of_the_options_is_the_channels() {
    let (_dir, endpoint) = endpoint();
    let options = Options::default().max_frame(4096);
    let mut listener = ipc_shm::ShmListener::bind(&endpoint, &options).expect("bind");
    let server = tokio::spawn(async move { listener.accept().await.expect("accept") });
    let client = tokio::time::timeout(GUARD, ipc_shm::connect(&endpoint, &options))
        .await
        .expect("connect in time")
        .expect("connect");
    let server = tokio::time::timeout(GUARD, server)
        .await
        .expect("accept in time")
        .expect("server task");
    assert_eq!(client.info().max_frame, 4096);
    assert_eq!(server.info().max_frame, 4096);
    let (a, b) = ipc_shm::pair(&options).expect("pair");
    assert_eq!((a.info().max_frame, b.info().max_frame), (4096, 4096));
}
