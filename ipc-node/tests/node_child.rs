//! A Rust parent and real Node.js children (`node -e SCRIPT`) started with
//! `ipc_node::spawn`: the child's `process.send` / `process.on('message')` are the
//! other end.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{require_node, within};
use ipc_core::codec::Json;
use ipc_core::prelude::*;
use ipc_core::ListenError;
use ipc_core::{Child, Endpoint, Error, RecvError, Registry, SendError, Transport, TypedChannel};
use ipc_node::{NodeChannel, NodeTransport};
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

/// Echoes every message; answers `{op: 'add'}` requests.
const ECHO: &str = r#"
process.on('message', (m) => {
  if (m && m.op === 'add') process.send({ id: m.id, result: m.a + m.b });
  else process.send(m);
});
"#;

fn node(script: &str) -> Command {
    require_node();
    let mut command = Command::new("node");
    command.arg("-e").arg(script);
    command
}

async fn spawn_node(script: &str) -> (Child, NodeChannel) {
    ipc_node::spawn(node(script), &Default::default())
        .await
        .expect("spawn node")
}

async fn recv_value(ch: &mut NodeChannel) -> Value {
    ch.recv_json::<Value>()
        .await
        .expect("recv")
        .expect("a message, not the end")
}

/// Round trips with real Node objects. (Ordering under load, both ways at once, is the
/// conformance suite's `node::ordered_10k_both_ways`, and the examples' 10 000-message
/// echo with real Node in tests/node.rs.)
#[tokio::test]
async fn request_response_with_node() {
    within(60, "round trips", async {
        let (mut child, mut ch) = spawn_node(ECHO).await;
        assert_eq!(ch.info().transport, "node");
        assert_eq!(ch.info().peer_pid, Some(child.pid()));
        for id in 1..=3 {
            ch.send_json(&json!({"id": id, "op": "add", "a": id, "b": 2}))
                .await
                .expect("send");
            assert_eq!(
                recv_value(&mut ch).await,
                json!({"id": id, "result": id + 2})
            );
        }
        ch.close().await.expect("close");
        // Our close made Node disconnect; it exits 0: a clean end.
        assert_eq!(ch.recv().await.expect("clean end"), None);
        assert!(child.wait().await.expect("wait").success());
    })
    .await;
}

#[tokio::test]
async fn typed_json_channel_works_unchanged() {
    #[derive(serde::Serialize)]
    struct Add {
        id: u32,
        op: &'static str,
        a: i64,
        b: i64,
    }
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Sum {
        id: u32,
        result: i64,
    }
    within(30, "typed channel", async {
        let (mut child, ch) = spawn_node(ECHO).await;
        let mut typed: TypedChannel<Sum, Add, Json, _> = TypedChannel::new(ch);
        typed
            .send(Add {
                id: 9,
                op: "add",
                a: 40,
                b: 2,
            })
            .await
            .expect("send");
        assert_eq!(
            typed.recv().await.expect("recv"),
            Some(Sum { id: 9, result: 42 })
        );
        typed.close().await.expect("close");
        assert_eq!(typed.recv().await.expect("end"), None);
        assert!(child.wait().await.expect("wait").success());
    })
    .await;
}

#[tokio::test]
async fn child_crash_mid_stream_is_peer_lost_not_a_hang() {
    within(30, "crash mid-stream", async {
        // The child dies (exit code 3) after 100 messages of a 10 000-message burst.
        let script = "let n = 0; process.on('message', (m) => { if (++n === 100) process.exit(3); process.send(m); });";
        let (mut child, ch) = spawn_node(script).await;
        let (mut tx, mut rx) = ch.into_split();
        let sender = tokio::spawn(async move {
            for seq in 0..10_000u32 {
                if tx.send_json(&seq).await.is_err() {
                    return seq; // the child is gone
                }
            }
            10_000
        });
        let mut echoed = 0u32;
        let err = loop {
            match rx.recv_json::<u32>().await {
                Ok(Some(seq)) => {
                    assert_eq!(seq, echoed);
                    echoed += 1;
                }
                Ok(None) => panic!("a crash must not look like a clean end"),
                Err(e) => break e,
            }
        };
        assert_eq!(echoed, 99);
        match &err {
            RecvError::PeerLost(why) => assert!(why.contains("exit status: 3"), "{why}"),
            other => panic!("expected PeerLost, got {other:?}"),
        }
        // One PeerLost item, then the stream ends.
        assert!(rx.next().await.is_none(), "the stream ends after PeerLost");
        let _ = sender.await.expect("join");
        assert_eq!(child.wait().await.expect("wait").code(), Some(3));

        // An uncaught exception (exit code 1) right after a message. Node's stack trace
        // goes to a file that is checked, not to the test run's stderr.
        let trace = tempfile::NamedTempFile::new().expect("temp file");
        let mut command =
            node("process.send('last words', () => { throw new Error('boom'); });");
        command.stderr(trace.reopen().expect("reopen temp file"));
        let (mut child, mut ch) = ipc_node::spawn(command, &Default::default())
            .await
            .expect("spawn node");
        assert_eq!(ch.recv_json::<String>().await.expect("recv").as_deref(), Some("last words"));
        assert!(matches!(ch.recv().await, Err(RecvError::PeerLost(_))));
        assert_eq!(child.wait().await.expect("wait").code(), Some(1));
        let trace = std::fs::read_to_string(trace.path()).expect("read the stack trace");
        assert!(trace.contains("Error: boom"), "node's stderr: {trace}");
    })
    .await;
}

#[tokio::test]
async fn killed_child_is_peer_lost() {
    within(30, "killed child", async {
        let (mut child, mut ch) = spawn_node(ECHO).await;
        ch.send_json(&"ping").await.expect("send");
        assert_eq!(recv_value(&mut ch).await, json!("ping"));
        child.kill().expect("kill");
        match ch.recv().await {
            Err(RecvError::PeerLost(why)) => assert!(why.contains("SIGKILL"), "{why}"),
            other => panic!("expected PeerLost, got {other:?}"),
        }
        assert!(child.wait().await.expect("wait").code().is_none());
    })
    .await;
}

#[tokio::test]
async fn disconnect_is_a_clean_end() {
    within(30, "disconnect", async {
        // Disconnect then exit 0.
        let (mut child, mut ch) =
            spawn_node("process.send('bye', () => process.disconnect());").await;
        assert_eq!(recv_value(&mut ch).await, json!("bye"));
        assert_eq!(ch.recv().await.expect("clean end"), None);
        assert_eq!(ch.recv().await.expect("still the end"), None);
        assert!(child.wait().await.expect("wait").success());

        // Disconnect and keep running: the end is clean once the grace period passes.
        let (mut child, mut ch) = spawn_node(
            "process.send('bye', () => process.disconnect()); setTimeout(() => {}, 60000);",
        )
        .await;
        assert_eq!(recv_value(&mut ch).await, json!("bye"));
        let started = Instant::now();
        assert_eq!(ch.recv().await.expect("clean end"), None);
        assert!(started.elapsed() < ipc_node::EXIT_GRACE + Duration::from_secs(5));
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "still running"
        );
        child.kill().expect("kill");
        child.wait().await.expect("wait");
    })
    .await;
}

#[tokio::test]
async fn close_makes_node_emit_disconnect() {
    within(30, "close", async {
        let mut command = node(
            "process.on('message', (m) => process.send(m));\
             process.on('disconnect', () => require('fs').writeSync(1, 'disconnected\\n'));",
        );
        command.stdout(Stdio::piped());
        let (mut child, mut ch) = ipc_node::spawn(command, &Default::default())
            .await
            .expect("spawn");
        ch.send_json(&[1, 2]).await.expect("send");
        assert_eq!(recv_value(&mut ch).await, json!([1, 2]));
        ch.close().await.expect("close");
        ch.close().await.expect("close is idempotent");
        assert!(matches!(ch.send_json(&1).await, Err(SendError::Closed)));
        assert_eq!(ch.recv().await.expect("clean end"), None);
        let mut stdout = String::new();
        child
            .inner_mut()
            .stdout
            .take()
            .expect("piped stdout")
            .read_to_string(&mut stdout)
            .await
            .expect("read stdout");
        assert_eq!(stdout, "disconnected\n");
        assert!(child.wait().await.expect("wait").success());
    })
    .await;
}

#[tokio::test]
async fn malformed_line_is_a_decode_error_then_the_next_message() {
    within(30, "malformed line", async {
        let script = "require('fs').writeSync(process.channel.fd, 'not json\\n');\
                      process.send({ ok: true });";
        let (mut child, mut ch) = spawn_node(script).await;
        match ch.recv().await {
            Err(RecvError::Rejected(Error::Decode { context, .. })) => {
                assert!(context.contains("not json"), "{context}")
            }
            other => panic!("expected a decode error, got {other:?}"),
        }
        assert_eq!(recv_value(&mut ch).await, json!({"ok": true}));
        assert_eq!(ch.recv().await.expect("clean end"), None);
        assert!(child.wait().await.expect("wait").success());
    })
    .await;
}

#[tokio::test]
async fn internal_messages_are_not_surfaced() {
    within(30, "internal messages", async {
        let script = "process.send({ cmd: 'NODE_CUSTOM', x: 1 });\
                      process.send({ cmd: 'NODE_CLUSTER', act: 'online' });\
                      process.send({ cmd: 'NODE_' });\
                      process.send('after');";
        let (mut child, mut ch) = spawn_node(script).await;
        // `NODE_` alone is not internal for Node either.
        assert_eq!(recv_value(&mut ch).await, json!({"cmd": "NODE_"}));
        assert_eq!(recv_value(&mut ch).await, json!("after"));
        assert_eq!(ch.recv().await.expect("clean end"), None);
        assert!(child.wait().await.expect("wait").success());
    })
    .await;
}

#[tokio::test]
async fn handles_are_nacked_and_later_messages_flow() {
    within(30, "NODE_HANDLE", async {
        // A server handle: one NACK releases the messages Node queued behind it.
        // A socket handle: Node retries after each NACK, gives up after the fourth
        // with a warning, then sends what it queued. Without our NACKs neither
        // 'after ...' message would ever be sent.
        let script = r#"
            const net = require('net');
            process.on('warning', (w) => {
              if (w.name === 'SentHandleNotReceivedWarning') process.send({ warning: w.name });
            });
            let client;
            const server = net.createServer((socket) => {
              process.send({ with: 'a socket' }, socket);
              process.send('after socket');
            });
            server.listen(0, '127.0.0.1', () => {
              process.send({ with: 'a server' }, server);
              process.send('after server');
              client = net.connect(server.address().port, '127.0.0.1');
              client.on('error', () => {});
            });
            process.on('message', () => { client.destroy(); server.close(); process.disconnect(); });
        "#;
        // The warning is checked through process.on('warning'); --no-warnings only keeps
        // Node from also printing it on the test run's stderr.
        require_node();
        let mut command = Command::new("node");
        command.args(["--no-warnings", "-e", script]);
        let (mut child, mut ch) = ipc_node::spawn(command, &Default::default())
            .await
            .expect("spawn node");
        assert_eq!(recv_value(&mut ch).await, json!("after server"));
        assert_eq!(recv_value(&mut ch).await, json!("after socket"));
        assert_eq!(
            recv_value(&mut ch).await,
            json!({"warning": "SentHandleNotReceivedWarning"})
        );
        ch.send_json(&"done").await.expect("send");
        assert_eq!(ch.recv().await.expect("clean end"), None);
        assert!(child.wait().await.expect("wait").success());
    })
    .await;
}

#[tokio::test]
async fn frames_node_cannot_parse_are_refused_not_sent() {
    within(30, "refused frames", async {
        let (mut child, mut ch) = spawn_node(ECHO).await;
        for bad in [
            &b"not json"[..],
            b"",
            b"{\"a\":1}\n{\"b\":2}",
            b"\"raw\nnewline\"",
            b"\xff\xfe",
            br#"{"cmd":"NODE_HANDLE_ACK"}"#,
        ] {
            match ch.send(Bytes::copy_from_slice(bad)).await {
                Err(SendError::Rejected(Error::Refused { .. })) => {}
                other => panic!(
                    "{:?} was not refused: {other:?}",
                    String::from_utf8_lossy(bad)
                ),
            }
        }
        // Pretty JSON and non-ASCII text arrive as the same value.
        ch.send(Bytes::from_static(
            "{\n  \"a\": [1,\n 2],\n  \"s\": \"你好\\n\u{2028}\"\n}".as_bytes(),
        ))
        .await
        .expect("pretty json");
        assert_eq!(
            recv_value(&mut ch).await,
            json!({"a": [1, 2], "s": "你好\n\u{2028}"})
        );
        // A line that is our core's goodbye line is ordinary data here.
        ch.send(Bytes::from_static(br#"{"$ipc":"goodbye"}"#))
            .await
            .expect("send");
        assert_eq!(recv_value(&mut ch).await, json!({"$ipc": "goodbye"}));
        ch.close().await.expect("close");
        assert_eq!(ch.recv().await.expect("clean end"), None);
        assert!(child.wait().await.expect("wait").success());
    })
    .await;
}

#[tokio::test]
async fn child_environment_is_what_node_expects() {
    within(30, "environment", async {
        let mut command = node(
            "process.send({ endpoint: process.env.IPC_ENDPOINT ?? null,\
                            token: process.env.IPC_TOKEN ?? null,\
                            fd: process.channel.fd,\
                            max: process.env.IPC_MAX_FRAME ?? null });\
             process.disconnect();",
        );
        command
            .env("IPC_ENDPOINT", "uds:fd=9")
            .env("IPC_TOKEN", "secret");
        let (mut child, mut ch) = ipc_node::spawn(command, &Default::default())
            .await
            .expect("spawn");
        assert_eq!(
            recv_value(&mut ch).await,
            json!({"endpoint": null, "token": null, "fd": 3, "max": (8 << 20).to_string()})
        );
        assert_eq!(ch.recv().await.expect("clean end"), None);
        assert!(child.wait().await.expect("wait").success());
    })
    .await;
}

#[tokio::test]
async fn transport_trait_and_registry() {
    within(30, "transport", async {
        let transport = NodeTransport;
        assert_eq!(transport.name(), "node");
        assert_eq!(transport.schemes(), ["node"]);
        assert!(transport.example_endpoint().is_none());
        let endpoint: Endpoint = "node:fd=3".parse().expect("endpoint");
        assert!(matches!(
            transport.listen(&endpoint, &Default::default()).await.err(),
            Some(ListenError::Unsupported {
                transport: "node",
                ..
            })
        ));
        let mut registry = Registry::new();
        registry.register(NodeTransport);
        assert_eq!(
            registry.for_endpoint(&endpoint).expect("by scheme").name(),
            "node"
        );

        let (mut child, mut ch) = registry
            .get("node")
            .expect("by name")
            .spawn(node(ECHO), &Default::default())
            .await
            .expect("spawn");
        assert_eq!(ch.info().peer_pid, Some(child.pid()));
        ipc_node::send_ready(&mut ch).await.expect("ready");
        assert_eq!(
            ch.recv().await.expect("recv").as_deref(),
            Some(&b"\"ready\""[..])
        );
        ch.close().await.expect("close");
        assert_eq!(ch.recv().await.expect("clean end"), None);
        assert!(child.wait().await.expect("wait").success());
    })
    .await;
}
