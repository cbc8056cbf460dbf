//! Listen, connect and exchange frames over real loopback sockets.

use std::net::SocketAddr;
use std::time::Duration;

use ipc_core::prelude::*;
use ipc_core::ConnectError;
use ipc_core::ListenError;
use ipc_core::{Endpoint, Error, Options, RecvError, SendError, Transport};
use ipc_tcp::{TcpChannelExt, TcpListener, TcpTransport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LOOPBACK: ([u8; 4], u16) = ([127, 0, 0, 1], 0);

async fn listener(opts: &Options) -> TcpListener {
    ipc_tcp::bind(SocketAddr::from(LOOPBACK), opts)
        .await
        .expect("bind")
}

/// A raw client that does the handshake by hand and then writes `after` bytes.
async fn raw_client(addr: SocketAddr, token: &[u8], after: &[u8]) -> tokio::net::TcpStream {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut hello = b"IPCT\x01".to_vec();
    hello.push(token.len() as u8);
    hello.extend_from_slice(token);
    s.write_all(&hello).await.expect("hello");
    let mut reply = [0u8; 6];
    s.read_exact(&mut reply).await.expect("reply");
    assert_eq!(&reply, b"IPCT\x01\x00");
    s.write_all(after).await.expect("write");
    s
}

#[tokio::test]
async fn ping_pong_and_clean_close() {
    let opts = Options::default().token("t0ken");
    let mut l = listener(&opts).await;
    let addr = l.local_addr();
    let (server, client) = tokio::join!(l.accept(), ipc_tcp::connect(addr, &opts));
    let (mut server, mut client) = (server.expect("accept"), client.expect("connect"));

    for i in 0..100u32 {
        client.send(i.to_string().into()).await.expect("send");
        let got = server.recv().await.expect("recv").expect("frame");
        assert_eq!(got, i.to_string());
        server.send(got).await.expect("echo");
        let back = client.recv().await.expect("recv").expect("frame");
        assert_eq!(back, i.to_string());
    }
    client.send("".into()).await.expect("empty frame");
    assert_eq!(
        server.recv().await.expect("recv").as_deref(),
        Some(&b""[..])
    );

    let info = server.info();
    assert_eq!(info.transport, "tcp");
    assert_eq!(
        info.peer_addr,
        Some(client.local_addr().expect("addr").to_string())
    );
    assert_eq!(info.peer_pid, None);
    assert_eq!(info.max_frame, 8 << 20);
    assert_eq!(client.info().peer_addr, Some(addr.to_string()));
    assert_eq!(client.peer_addr().expect("addr"), addr);

    client.close().await.expect("close");
    assert_eq!(server.recv().await.expect("recv"), None);
    server.close().await.expect("close");
    assert_eq!(client.recv().await.expect("recv"), None);
}

#[tokio::test]
async fn two_clients_at_once() {
    let mut l = listener(&Default::default()).await;
    let addr = l.local_addr();
    let client = |name: &'static str| async move {
        let mut ch = ipc_tcp::connect(addr, &Default::default())
            .await
            .expect("connect");
        ch.send(name.into()).await.expect("send");
        let reply = ch.recv().await.expect("recv").expect("frame");
        assert_eq!(reply, format!("hello {name}"));
        ch.close().await.expect("close");
    };
    let a = tokio::spawn(client("a"));
    let b = tokio::spawn(client("b"));
    let mut servers = Vec::new();
    for _ in 0..2 {
        let mut ch = l.accept().await.expect("accept");
        let name = ch.recv().await.expect("recv").expect("frame");
        servers.push((ch, name));
    }
    let mut names: Vec<_> = servers.iter().map(|(_, n)| n.clone()).collect();
    names.sort();
    assert_eq!(names, ["a", "b"]);
    for (ch, name) in &mut servers {
        let reply = format!("hello {}", String::from_utf8_lossy(name));
        ch.send(reply.into()).await.expect("send");
    }
    a.await.expect("client a");
    b.await.expect("client b");
    for (ch, _) in &mut servers {
        assert_eq!(ch.recv().await.expect("recv"), None);
    }
}

#[tokio::test]
async fn nodelay_is_on_both_sides() {
    use nix::sys::socket::{getsockopt, sockopt::TcpNoDelay};
    let mut l = listener(&Default::default()).await;
    let addr = l.local_addr();
    let client_opts = Options::default();
    let (server, client) = tokio::join!(l.accept(), ipc_tcp::connect(addr, &client_opts));
    let (server, client) = (server.expect("accept"), client.expect("connect"));
    for ch in [&server, &client] {
        assert!(ch.nodelay().expect("nodelay"));
        assert!(getsockopt(&ch.socket_fd(), TcpNoDelay).expect("getsockopt"));
    }
}

#[tokio::test]
async fn oversize_frames_are_rejected_and_the_listener_goes_on() {
    let frame = Options::default().max_frame(1024);
    let mut l = listener(&frame).await;
    let addr = l.local_addr();

    // A 4 GiB length prefix: rejected before any allocation.
    let (server, raw) = tokio::join!(l.accept(), raw_client(addr, b"", &[0xFF, 0xFF, 0xFF, 0xFE]));
    let mut server = server.expect("accept");
    match server.recv().await {
        Err(RecvError::Rejected(Error::FrameTooLarge { len, max })) => {
            assert_eq!((len, max), (0xFFFF_FFFE, 1024))
        }
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }
    drop(raw);

    // A frame just over the limit is skipped; the next one arrives.
    let mut wire = 2000u32.to_be_bytes().to_vec();
    wire.extend_from_slice(&[7u8; 2000]);
    wire.extend_from_slice(&2u32.to_be_bytes());
    wire.extend_from_slice(b"ok");
    let (server, _raw) = tokio::join!(l.accept(), raw_client(addr, b"", &wire));
    let mut server = server.expect("the listener still accepts");
    assert!(matches!(
        server.recv().await,
        Err(RecvError::Rejected(Error::FrameTooLarge {
            len: 2000,
            max: 1024
        }))
    ));
    assert_eq!(
        server.recv().await.expect("recv").as_deref(),
        Some(&b"ok"[..])
    );

    // Sending too much is refused locally, and nothing is written.
    assert!(matches!(
        server.send(vec![0u8; 1025].into()).await,
        Err(SendError::Rejected(Error::FrameTooLarge {
            len: 1025,
            max: 1024
        }))
    ));
}

#[tokio::test]
async fn split_halves_work_from_two_tasks() {
    let mut l = listener(&Default::default()).await;
    let addr = l.local_addr();
    let client_opts = Options::default();
    let (server, client) = tokio::join!(l.accept(), ipc_tcp::connect(addr, &client_opts));
    let (server, client) = (server.expect("accept"), client.expect("connect"));
    let (mut stx, mut srx) = server.into_split();
    let echo = tokio::spawn(async move {
        while let Some(frame) = srx.recv().await.expect("recv") {
            stx.send(frame).await.expect("send");
        }
        stx.close().await.expect("close");
    });
    let (mut ctx, mut crx) = client.into_split();
    let writer = tokio::spawn(async move {
        for i in 0..1000u32 {
            ctx.send(i.to_be_bytes().to_vec().into())
                .await
                .expect("send");
        }
        ctx.close().await.expect("close");
    });
    for i in 0..1000u32 {
        let frame = crx.recv().await.expect("recv").expect("frame");
        assert_eq!(&frame[..], i.to_be_bytes());
    }
    assert_eq!(crx.recv().await.expect("recv"), None);
    writer.await.expect("writer");
    echo.await.expect("echo");
}

#[tokio::test]
async fn through_the_transport_trait() {
    if std::env::var_os("IPC_TOKEN").is_some() {
        return; // the trait takes the token from the environment
    }
    let tcp = TcpTransport;
    let opts = Options::default().handshake_timeout(Duration::from_secs(10));
    assert_eq!(tcp.name(), "tcp");
    assert_eq!(tcp.schemes(), ["tcp"]);
    let example = tcp.example_endpoint().expect("an example");
    assert_eq!(example.to_string(), "tcp://127.0.0.1:0");

    let mut l = tcp.listen(&example, &opts).await.expect("listen");
    let endpoint = l.endpoint();
    let Endpoint::Tcp(addr) = endpoint else {
        panic!("not a tcp endpoint: {endpoint}")
    };
    assert!(addr.ip().is_loopback());
    assert_ne!(addr.port(), 0);

    let (server, client) = tokio::join!(l.accept(), tcp.connect(&endpoint, &opts));
    let (mut server, mut client) = (server.expect("accept"), client.expect("connect"));
    client.send("ping".into()).await.expect("send");
    assert_eq!(
        server.recv().await.expect("recv").as_deref(),
        Some(&b"ping"[..])
    );
    assert_eq!(server.info().transport, "tcp");

    let wrong: Endpoint = "unix:/tmp/x.sock".parse().expect("endpoint");
    assert!(matches!(
        tcp.listen(&wrong, &opts).await,
        Err(ListenError::BadEndpoint { .. })
    ));
    assert!(matches!(
        tcp.connect(&wrong, &opts).await,
        Err(ConnectError::BadEndpoint { .. })
    ));
}

#[tokio::test]
async fn connect_to_a_closed_port_is_an_io_error() {
    let addr = listener(&Default::default()).await.local_addr();
    // The listener is dropped: its port is closed at once.
    match ipc_tcp::connect(addr, &Default::default()).await {
        Err(ConnectError::NotListening(e)) => {
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
            assert!(e.to_string().contains(&addr.to_string()), "{e}");
        }
        other => panic!("expected a refused connection, got {other:?}"),
    }
}

#[tokio::test]
async fn tokens_longer_than_255_bytes_are_refused_up_front() {
    let long = "x".repeat(256);
    let addr = SocketAddr::from(LOOPBACK);
    assert!(matches!(
        ipc_tcp::bind(addr, &Options::default().token(long.clone())).await,
        Err(ListenError::Other(Error::Handshake(_)))
    ));
    assert!(matches!(
        ipc_tcp::connect(addr, &Options::default().token(long)).await,
        Err(ConnectError::Handshake(_))
    ));
}
