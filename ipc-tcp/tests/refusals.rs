//! Bad, slow and silent clients are refused one by one; the listener keeps serving.

use std::net::SocketAddr;
use std::time::Duration;

use ipc_core::prelude::*;
use ipc_core::ConnectError;
use ipc_core::Error;
use ipc_core::Options;
use ipc_tcp::TcpListener;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Safety net for awaits that must finish well before any handshake timeout here.
const SOON: Duration = Duration::from_secs(10);

async fn listener(opts: &Options) -> TcpListener {
    ipc_tcp::bind(SocketAddr::from(([127, 0, 0, 1], 0)), opts)
        .await
        .expect("bind")
}

/// Accept one good client and exchange a frame with it.
async fn serves_a_good_client(l: &mut TcpListener, opts: &Options) {
    let addr = l.local_addr();
    let (server, client) = tokio::time::timeout(SOON, async {
        tokio::join!(l.accept(), ipc_tcp::connect(addr, opts))
    })
    .await
    .expect("a good client is served promptly");
    let (mut server, mut client) = (server.expect("accept"), client.expect("connect"));
    client.send("still here?".into()).await.expect("send");
    assert_eq!(
        server.recv().await.expect("recv").as_deref(),
        Some(&b"still here?"[..])
    );
}

async fn read_all(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    // A reset instead of a clean end is fine too: either way nothing was answered.
    let _ = tokio::time::timeout(SOON, s.read_to_end(&mut out))
        .await
        .expect("the server closes the connection");
    out
}

#[tokio::test]
async fn wrong_token_is_refused_on_both_sides() {
    let good = Options::default().token("right");
    let mut l = listener(&good).await;
    let addr = l.local_addr();

    let client_opts = Options::default().token("wrong");
    let (server, client) = tokio::join!(l.accept(), ipc_tcp::connect(addr, &client_opts));
    match client {
        Err(ConnectError::Auth(msg)) => assert!(msg.contains("refused our token"), "{msg}"),
        other => panic!("client: expected Auth, got {other:?}"),
    }
    match server {
        Err(Error::Auth(msg)) => assert!(msg.contains("wrong token"), "{msg}"),
        other => panic!("server: expected Auth, got {other:?}"),
    }

    // No token at all, to a server that wants one.
    let client_opts = Options::default();
    let (server, client) = tokio::join!(l.accept(), ipc_tcp::connect(addr, &client_opts));
    assert!(matches!(client, Err(ConnectError::Auth(_))), "{client:?}");
    assert!(matches!(server, Err(Error::Auth(_))), "{server:?}");

    serves_a_good_client(&mut l, &good).await;
}

#[tokio::test]
async fn a_token_is_refused_by_a_server_that_expects_none() {
    let mut l = listener(&Default::default()).await;
    let addr = l.local_addr();
    let client_opts = Options::default().token("unexpected");
    let (server, client) = tokio::join!(l.accept(), ipc_tcp::connect(addr, &client_opts));
    assert!(matches!(client, Err(ConnectError::Auth(_))), "{client:?}");
    assert!(matches!(server, Err(Error::Auth(_))), "{server:?}");
    serves_a_good_client(&mut l, &Default::default()).await;
}

#[tokio::test]
async fn a_garbage_client_gets_no_reply_and_does_not_stop_the_listener() {
    let mut l = listener(&Options::default().token("t")).await;
    let addr = l.local_addr();
    let mut http = TcpStream::connect(addr).await.expect("connect");
    http.write_all(b"GET / HTTP/1.1\r\n\r\n")
        .await
        .expect("write");

    match tokio::time::timeout(SOON, l.accept())
        .await
        .expect("prompt")
    {
        Err(Error::Handshake(msg)) => {
            assert!(msg.contains("47 45 54 20"), "hex of what came: {msg}");
            assert!(msg.contains("not an ipc client"), "{msg}");
        }
        other => panic!("expected Handshake, got {other:?}"),
    }
    assert!(
        read_all(&mut http).await.is_empty(),
        "no reply to a non-ipc client"
    );

    serves_a_good_client(&mut l, &Options::default().token("t")).await;
}

#[tokio::test]
async fn a_silent_client_does_not_block_a_good_one() {
    // A long timeout: the good client must not wait for the silent one to time out.
    let opts = Options::default().handshake_timeout(Duration::from_secs(60));
    let mut l = listener(&opts).await;
    let addr = l.local_addr();

    // Connected first, so the listener takes it from the kernel first; never speaks.
    // (A std socket: loopback connects complete at once, and `read` below asks the
    // kernel directly.)
    let mut silent = std::net::TcpStream::connect(addr).expect("connect");
    serves_a_good_client(&mut l, &opts).await;

    // The silent client is still pending: the server has neither answered nor closed.
    silent.set_nonblocking(true).expect("nonblocking");
    let mut byte = [0u8; 1];
    match std::io::Read::read(&mut silent, &mut byte) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the silent client should still be waiting, got {other:?}"),
    }
}

#[tokio::test]
async fn a_silent_client_times_out_on_the_server() {
    let opts = Options::default().handshake_timeout(Duration::from_millis(200));
    let mut l = listener(&opts).await;
    let addr = l.local_addr();
    let mut silent = TcpStream::connect(addr).await.expect("connect");

    match tokio::time::timeout(SOON, l.accept())
        .await
        .expect("prompt")
    {
        Err(Error::Timeout { after, .. }) => assert_eq!(after, Duration::from_millis(200)),
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(read_all(&mut silent).await.is_empty());
    serves_a_good_client(&mut l, &opts).await;
}

#[tokio::test]
async fn an_unknown_version_gets_status_2() {
    let mut l = listener(&Default::default()).await;
    let addr = l.local_addr();
    let mut future = TcpStream::connect(addr).await.expect("connect");
    future
        .write_all(b"IPCT\x02\x00some-new-fields")
        .await
        .expect("write");

    match tokio::time::timeout(SOON, l.accept())
        .await
        .expect("prompt")
    {
        Err(Error::Handshake(msg)) => assert!(msg.contains("version 2"), "{msg}"),
        other => panic!("expected Handshake, got {other:?}"),
    }
    assert_eq!(read_all(&mut future).await, b"IPCT\x01\x02");
    serves_a_good_client(&mut l, &Default::default()).await;
}

#[tokio::test]
async fn a_client_that_hangs_up_mid_handshake_is_one_error() {
    let mut l = listener(&Default::default()).await;
    let addr = l.local_addr();
    let mut quitter = TcpStream::connect(addr).await.expect("connect");
    quitter.write_all(b"IP").await.expect("write");
    drop(quitter);
    match tokio::time::timeout(SOON, l.accept())
        .await
        .expect("prompt")
    {
        Err(Error::Handshake(msg)) => assert!(msg.contains("after 2 bytes"), "{msg}"),
        other => panic!("expected Handshake, got {other:?}"),
    }
    serves_a_good_client(&mut l, &Default::default()).await;
}

/// A raw server that reads the hello and answers `reply`, then closes.
async fn raw_server(reply: &'static [u8]) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.expect("accept");
        let mut hello = [0u8; 6];
        s.read_exact(&mut hello).await.expect("hello");
        s.write_all(reply).await.expect("reply");
        let _ = s.shutdown().await;
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest).await;
    });
    (addr, task)
}

#[tokio::test]
async fn the_client_reports_what_a_bad_server_did() {
    let (addr, task) = raw_server(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
    match ipc_tcp::connect(addr, &Default::default()).await {
        Err(ConnectError::Handshake(msg)) => {
            assert!(msg.contains("not an ipc-tcp listener"), "{msg}")
        }
        other => panic!("expected Handshake, got {other:?}"),
    }
    task.await.expect("server");

    let (addr, task) = raw_server(b"").await;
    assert!(matches!(
        ipc_tcp::connect(addr, &Default::default()).await,
        Err(ConnectError::Handshake(_))
    ));
    task.await.expect("server");

    let (addr, task) = raw_server(b"IPCT\x01\x02").await;
    match ipc_tcp::connect(addr, &Default::default()).await {
        Err(ConnectError::Handshake(msg)) => assert!(msg.contains("version"), "{msg}"),
        other => panic!("expected Handshake, got {other:?}"),
    }
    task.await.expect("server");
}

#[tokio::test]
async fn a_silent_server_times_out_on_the_client() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    // The kernel completes the TCP connection; nobody ever answers the hello.
    let opts = Options::default().handshake_timeout(Duration::from_millis(200));
    match ipc_tcp::connect(addr, &opts).await {
        Err(ConnectError::Timeout { after, .. }) => assert_eq!(after, Duration::from_millis(200)),
        other => panic!("expected Timeout, got {other:?}"),
    }
    drop(l);
}

#[tokio::test]
async fn dropping_the_listener_ends_pending_handshakes() {
    let opts = Options::default().handshake_timeout(Duration::from_secs(60));
    let mut l = listener(&opts).await;
    let addr = l.local_addr();
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    // Serving a later client proves the silent one was taken into a handshake task.
    serves_a_good_client(&mut l, &opts).await;

    drop(l);
    // Closed long before the 60 s handshake timeout, and the port is gone.
    assert!(read_all(&mut silent).await.is_empty());
    assert!(TcpStream::connect(addr).await.is_err());
}
