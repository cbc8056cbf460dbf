//! The parent side against real child processes that are not ipc programs: `cat`
//! (which echoes every line, goodbye included) and small shell scripts playing a
//! misbehaving child. Every wait is bounded; nothing sleeps for readiness.

use ipc_core::ConnectError;
use ipc_core::ListenError;
use ipc_core::Options;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use ipc_core::frame::FrameConfig;
use ipc_core::prelude::*;
use ipc_core::{Endpoint, Error, RecvError, Transport};
use ipc_stdio::{JsonLinesCodec, StdioTransport};

const LIMIT: Duration = Duration::from_secs(30);

async fn bounded<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(LIMIT, fut).await {
        Ok(v) => v,
        Err(_) => panic!("hung: {what}"),
    }
}

fn sh(script: &str) -> Command {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(script);
    cmd
}

#[tokio::test]
async fn cat_echoes_json_binary_and_big_frames() -> ipc_core::Result<()> {
    let (mut child, ch) = ipc_stdio::spawn(Command::new("/bin/cat"), &Default::default()).await?;
    let info = ch.info();
    assert_eq!(info.transport, "stdio");
    assert_eq!(info.peer_pid, Some(child.pid()));
    assert_eq!(info.max_frame, 8 << 20);

    let mut big_json = b"{\"blob\":\"".to_vec();
    big_json.extend_from_slice(&vec![b'j'; 1 << 20]);
    big_json.extend_from_slice(b"\"}");
    let frames: Vec<Bytes> = vec![
        Bytes::from_static(r#"{"type":"handshake","payload":"你好吖"}"#.as_bytes()),
        Bytes::from_static(b"\x00\x01\xfe\xff binary"),
        Bytes::new(),
        Bytes::from_static(b"not json at all"),
        Bytes::from_static(br#"{"$bytes":"looks reserved"}"#),
        Bytes::from(
            (0..1u32 << 20)
                .map(|i| (i * 7 + i / 251) as u8)
                .collect::<Vec<u8>>(),
        ),
        Bytes::from(big_json),
        Bytes::from_static(b"[1,2,3]"),
    ];
    // cat writes back while we write: for frames bigger than the pipe buffers, send and
    // receive must run at the same time, or both sides wait on full pipes.
    let (mut tx, mut rx) = ch.into_split();
    for (i, frame) in frames.iter().enumerate() {
        let (sent, got) = bounded("round trip", async {
            tokio::join!(tx.send(frame.clone()), rx.recv())
        })
        .await;
        sent?;
        assert_eq!(got?.as_ref(), Some(frame), "frame {i}");
    }
    // Pipelined: a writer task sends everything while we read.
    let sent = frames.clone();
    let writer = tokio::spawn(async move {
        for f in sent {
            tx.send(f).await?;
        }
        tx.close().await
    });
    for frame in &frames {
        assert_eq!(
            bounded("pipelined echo", rx.recv()).await?.as_ref(),
            Some(frame)
        );
    }
    assert_eq!(bounded("the echoed goodbye", rx.recv()).await?, None);
    writer.await.expect("writer task")?;
    drop(rx);
    // close() closed cat's stdin, so it exits on its own.
    assert!(bounded("cat exit", child.wait()).await?.success());
    Ok(())
}

#[tokio::test]
async fn a_child_printing_garbage_is_reported_line_by_line() -> ipc_core::Result<()> {
    let script = r#"echo hello-not-json; echo '{"a":1}'; echo '{"$ipc":"goodbye"}'"#;
    let (mut child, mut ch) = ipc_stdio::spawn(sh(script), &Default::default()).await?;
    match bounded("the bad line", ch.recv()).await {
        Err(e @ RecvError::Rejected(Error::Decode { .. })) => {
            assert!(e.to_string().contains("\"hello-not-json\""), "{e}");
            assert!(e.is_rejected());
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    assert_eq!(
        bounded("frame", ch.recv()).await?.as_deref(),
        Some(&b"{\"a\":1}"[..])
    );
    assert_eq!(bounded("goodbye", ch.recv()).await?, None);
    assert_eq!(ch.recv().await?, None, "None again");
    assert!(bounded("exit", child.wait()).await?.success());
    Ok(())
}

#[tokio::test]
async fn a_killed_child_is_an_error_not_a_hang() -> ipc_core::Result<()> {
    let script = r#"echo '{"a":1}'; exec sleep 1000"#;
    let (mut child, mut ch) = ipc_stdio::spawn(sh(script), &Default::default()).await?;
    assert_eq!(
        bounded("first frame", ch.recv()).await?.as_deref(),
        Some(&b"{\"a\":1}"[..])
    );
    child.kill()?;
    match bounded("recv after kill", ch.recv()).await {
        Err(RecvError::PeerLost(why)) => assert!(why.contains("goodbye"), "{why}"),
        other => panic!("expected PeerLost, got {other:?}"),
    }
    assert!(!bounded("reap", child.wait()).await?.success());
    // Sending to a dead child fails too (EPIPE), it does not kill us with SIGPIPE.
    let mut failed = false;
    for _ in 0..64 {
        if ch.send(Bytes::from(vec![b'x'; 4096])).await.is_err() {
            failed = true;
            break;
        }
    }
    assert!(failed, "sending to a dead child kept succeeding");
    Ok(())
}

#[tokio::test]
async fn an_over_long_line_is_skipped_and_the_next_one_delivered() -> ipc_core::Result<()> {
    let max = 1000;
    // The line a peer with a bigger limit would send for 4000 bytes: 5349 characters.
    let mut line = bytes::BytesMut::new();
    tokio_util::codec::Encoder::encode(
        &mut JsonLinesCodec::new(FrameConfig::builder().max_frame(1 << 20).build()),
        ipc_core::frame::Outbound::Data(Bytes::from(vec![7u8; 4000])),
        &mut line,
    )?;
    let line = String::from_utf8(line.to_vec()).expect("utf-8");
    let mut cmd = sh(r#"printf '%s' "$1"; printf '%s\n' "$2" '{"next":1}' '{"$ipc":"goodbye"}'"#);
    cmd.arg("sh").arg(line.as_str()).arg("x".repeat(100_000));
    let config = Options::default().max_frame(max);
    let (mut child, mut ch) = ipc_stdio::spawn(cmd, &config).await?;
    for expected_len in [4000, 100_000] {
        match bounded("rejection", ch.recv()).await {
            Err(RecvError::Rejected(Error::FrameTooLarge { len, max: m })) => {
                assert_eq!((len, m), (expected_len, max))
            }
            other => panic!("expected FrameTooLarge, got {other:?}"),
        }
    }
    assert_eq!(
        bounded("next", ch.recv()).await?.as_deref(),
        Some(&b"{\"next\":1}"[..])
    );
    assert_eq!(bounded("goodbye", ch.recv()).await?, None);
    assert!(bounded("exit", child.wait()).await?.success());
    Ok(())
}

#[tokio::test]
async fn the_transport_spawns_and_refuses_to_listen() -> ipc_core::Result<()> {
    let t = StdioTransport;
    assert_eq!((t.name(), t.schemes()), ("stdio", &["stdio"][..]));
    assert!(t.example_endpoint().is_none());
    match t.listen(&Endpoint::Stdio, &Default::default()).await {
        Err(e @ ListenError::Unsupported { .. }) => {
            assert!(e.to_string().contains("use uds/tcp/fifo to listen"), "{e}")
        }
        Err(e) => panic!("expected Unsupported, got {e}"),
        Ok(_) => panic!("expected Unsupported, got a listener"),
    }
    match t.connect(&"uds:fd=3".parse()?, &Default::default()).await {
        Err(ConnectError::BadEndpoint { .. }) => {}
        Err(e) => panic!("expected BadEndpoint, got {e}"),
        Ok(_) => panic!("expected BadEndpoint, got a channel"),
    }
    let (mut child, mut ch) = t
        .spawn(Command::new("/bin/cat"), &Default::default())
        .await?;
    ch.send(Bytes::from_static(b"via the registry path"))
        .await?;
    assert_eq!(
        bounded("echo", ch.recv()).await?.as_deref(),
        Some(&b"via the registry path"[..])
    );
    ch.close().await?;
    assert_eq!(bounded("goodbye", ch.recv()).await?, None);
    drop(ch);
    assert!(bounded("exit", child.wait()).await?.success());
    Ok(())
}

#[tokio::test]
async fn the_child_sees_the_env_contract() -> ipc_core::Result<()> {
    let script = r#"printf '{"endpoint":"%s","max":"%s"}\n' "$IPC_ENDPOINT" "$IPC_MAX_FRAME"; echo '{"$ipc":"goodbye"}'"#;
    let config = Options::default().max_frame(4096);
    let (mut child, mut ch) = ipc_stdio::spawn(sh(script), &config).await?;
    assert_eq!(
        bounded("env", ch.recv()).await?.as_deref(),
        Some(&br#"{"endpoint":"stdio:","max":"4096"}"#[..])
    );
    assert_eq!(bounded("goodbye", ch.recv()).await?, None);
    assert!(bounded("exit", child.wait()).await?.success());
    Ok(())
}
