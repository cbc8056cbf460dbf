//! Node.js interop end to end, with real `node`: the examples in both directions
//! (`node_child` forked by `examples/node/parent.js`, `node_parent` forking
//! `examples/node/child.js`), the facade's node transport against Node children
//! that crash, send garbage, or send Node's internal messages, and rpc in its JSON
//! envelope with a Node server and a Node client (`tests/rpc_peer.js`).
//!
//! `node` must be on PATH: without it these tests fail (CI installs nodejs).

use ipc::testkit::built_example;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use bytes::Bytes;
use ipc::prelude::*;
use ipc::{Error, RecvError};

/// Fail clearly when `node` is missing: never skip.
fn require_node() {
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "`node --version` failed ({}): these tests need Node.js",
            out.status
        ),
        Err(e) => panic!("cannot run `node` ({e}): these tests need Node.js on PATH (v20+)"),
    }
}

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Run a command, failing the test after `secs` seconds instead of hanging.
async fn output_within(secs: u64, command: Command) -> Output {
    let mut command = tokio::process::Command::from(command);
    command.kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(secs), command.output())
        .await
        .unwrap_or_else(|_| panic!("no result within {secs} s (hang)"))
        .expect("run command")
}

fn assert_ok(what: &str, out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what}: {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test]
async fn node_parent_js_forks_the_rust_child_built_example() {
    require_node();
    for flag in [None, Some("--spawn")] {
        let mut command = Command::new("node");
        command.arg(repo_file("examples/node/parent.js"));
        command.args(flag);
        command.arg(built_example("node_child"));
        let out = output_within(120, command).await;
        let stdout = assert_ok(&format!("parent.js {flag:?}"), &out);
        assert!(
            stdout.contains(
                "3 requests answered, 10000 messages echoed in order, Rust child exited 0"
            ),
            "{stdout}"
        );
        let how = if flag.is_some() { "spawn(" } else { "fork(" };
        assert!(stdout.contains(how), "{stdout}");
    }
}

#[tokio::test]
async fn rust_parent_example_forks_the_node_child() {
    require_node();
    let mut command = Command::new(built_example("node_parent"));
    command
        .arg("--script")
        .arg(repo_file("examples/node/child.js"));
    let out = output_within(120, command).await;
    let stdout = assert_ok("node_parent", &out);
    assert!(
        stdout.contains(
            "3 requests answered, 10000 messages echoed in order, child exited: exit status: 0"
        ),
        "{stdout}"
    );
}

#[tokio::test]
async fn node_child_example_explains_itself_when_not_forked_by_node() {
    let out = output_within(30, Command::new(built_example("node_child"))).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("forked by Node.js"));
}

/// A Node child (`node -e SCRIPT`) through the facade's registry.
async fn spawn_node(script: &str) -> (ipc::Child, Box<dyn Channel>) {
    spawn_node_with_stderr(script, std::process::Stdio::inherit()).await
}

/// [`spawn_node`] with the child's stderr sent to `stderr`.
async fn spawn_node_with_stderr(
    script: &str,
    stderr: std::process::Stdio,
) -> (ipc::Child, Box<dyn Channel>) {
    require_node();
    let mut command = Command::new("node");
    command.arg("-e").arg(script).stderr(stderr);
    ipc::registry()
        .get("node")
        .expect("the facade registers the node transport")
        .spawn(command, &Default::default())
        .await
        .expect("spawn node")
}

async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no result within 60 s (hang)"))
}

#[tokio::test]
async fn node_child_crashing_mid_stream_is_an_error_not_a_hang() {
    within("crash", async {
        let script = "let n = 0;\
                      process.on('message', (m) => { if (++n === 500) throw new Error('boom'); process.send(m); });";
        // The crash's stack trace goes to a file, checked below, not to the test's stderr.
        let trace = tempfile::NamedTempFile::new().expect("temp file");
        let stderr = trace.reopen().expect("reopen temp file");
        let (mut child, ch) = spawn_node_with_stderr(script, stderr.into()).await;
        let (mut tx, mut rx) = ch.split();
        let sender = tokio::spawn(async move {
            for i in 0..10_000u32 {
                if tx.send(Bytes::from(i.to_string())).await.is_err() {
                    break;
                }
            }
        });
        let mut echoed = 0u32;
        let err = loop {
            match rx.recv().await {
                Ok(Some(frame)) => {
                    assert_eq!(frame, Bytes::from(echoed.to_string()), "order");
                    echoed += 1;
                }
                Ok(None) => panic!("a crash must not look like a clean end"),
                Err(e) => break e,
            }
        };
        // Node's process.send is asynchronous: echoes still queued inside Node when it
        // throws are never written. What did arrive is checked above, in order.
        assert!(echoed <= 499, "{echoed} echoes from a child that crashed at 500");
        match err {
            RecvError::PeerLost(why) => assert!(why.contains("exit status: 1"), "{why}"),
            other => panic!("expected PeerLost, got {other:?}"),
        }
        sender.await.expect("sender");
        assert_eq!(child.wait().await.expect("wait").code(), Some(1));
        let trace = std::fs::read_to_string(trace.path()).expect("read the stack trace");
        assert!(trace.contains("Error: boom"), "node's stderr: {trace}");
    })
    .await;
}

#[tokio::test]
async fn malformed_line_is_a_decode_error_then_the_valid_message() {
    within("malformed", async {
        // Node deletes NODE_CHANNEL_FD from process.env at startup; process.channel.fd
        // is the same fd.
        let script = "require('fs').writeSync(process.channel.fd, 'not json\\n');\
                      process.send({ cmd: 'NODE_CUSTOM', internal: true });\
                      process.send({ valid: 'message' });";
        let (mut child, mut ch) = spawn_node(script).await;
        match ch.recv().await {
            Err(RecvError::Rejected(Error::Decode { context, .. })) => {
                assert!(context.contains("not json"), "{context}")
            }
            other => panic!("expected a decode error, got {other:?}"),
        }
        // The internal NODE_ message is not surfaced: the valid message is next.
        assert_eq!(
            ch.recv().await.expect("recv"),
            Some(Bytes::from_static(br#"{"valid":"message"}"#))
        );
        assert_eq!(ch.recv().await.expect("clean end"), None);
        assert!(child.wait().await.expect("wait").success());
    })
    .await;
}

#[tokio::test]
async fn node_child_disconnecting_is_a_clean_end() {
    within("disconnect", async {
        let (mut child, mut ch) =
            spawn_node("process.send('bye', () => process.disconnect());").await;
        assert_eq!(
            ch.recv().await.expect("recv"),
            Some(Bytes::from_static(b"\"bye\""))
        );
        assert_eq!(ch.recv().await.expect("clean end"), None);
        assert!(child.wait().await.expect("wait").success());
    })
    .await;
}

/// A Node child running `tests/rpc_peer.js MODE`.
async fn spawn_rpc_peer(mode: &str) -> (ipc::Child, Box<dyn Channel>) {
    require_node();
    let mut command = Command::new("node");
    command.arg(repo_file("tests/rpc_peer.js")).arg(mode);
    ipc::registry()
        .get("node")
        .expect("the facade registers the node transport")
        .spawn(command, &Default::default())
        .await
        .expect("spawn node")
}

#[tokio::test]
async fn rpc_client_calls_a_node_server() {
    within("rpc to node", async {
        let (mut child, channel) = spawn_rpc_peer("serve").await;
        let client = ipc::rpc::RpcClient::new(channel);
        let timeout = Duration::from_secs(30);
        let sum = client
            .call(r#"{"op":"add","a":2,"b":3}"#.into(), timeout)
            .await
            .expect("add");
        assert_eq!(sum, "5");
        match client.call(r#"{"op":"sub"}"#.into(), timeout).await {
            Err(Error::Remote(why)) => assert!(why.contains("unknown op \"sub\""), "{why}"),
            other => panic!("expected Remote, got {other:?}"),
        }
        // A request that is not JSON cannot travel on node: refused here, up front.
        match client.call("not json".into(), timeout).await {
            Err(e @ Error::Decode { .. }) => assert!(e.to_string().contains("JSON"), "{e}"),
            other => panic!("expected a decode error, got {other:?}"),
        }
        client.close().await.expect("close");
        assert!(child.wait().await.expect("wait").success());
    })
    .await;
}

#[tokio::test]
async fn a_node_client_calls_rpc_serve() {
    within("rpc from node", async {
        let (mut child, channel) = spawn_rpc_peer("call").await;
        ipc::rpc::serve(channel, |request: Bytes| async move {
            let v: serde_json::Value =
                serde_json::from_slice(&request).map_err(|e| e.to_string())?;
            match v["op"].as_str() {
                Some("mul") => {
                    let product = v["a"].as_i64().unwrap_or(0) * v["b"].as_i64().unwrap_or(0);
                    Ok(Bytes::from(product.to_string()))
                }
                other => Err(format!("unknown op {other:?}")),
            }
        })
        .await
        .expect("serve until the Node client disconnects");
        assert!(child.wait().await.expect("wait").success());
    })
    .await;
}
