//! Real Node.js parents forking a Rust child: this test binary, re-executed by Node
//! with `child_process.fork(.., { execPath })` or `spawn(.., { stdio: [.., 'ipc'] })`,
//! runs the `child` test as the child, playing [`Role::ForkedByNode`].

mod common;

use std::process::Stdio;

use common::{require_node, within};
use ipc_core::prelude::*;
use ipc_core::testkit::{self, ChildRole};
use ipc_core::ConnectError;
use ipc_core::{Error, RecvError};
use serde_json::{json, Value};

ipc_core::child_roles! {
    /// What this binary does when re-executed (by a Node parent) as a child.
    enum Role {
        /// Send `"ready"` and argv, answer `{op: 'add'}`, report decode errors, exit
        /// with `{op: 'exit', code}`, echo anything else; exit 0 when Node disconnects.
        ForkedByNode,
    }
}

/// Exit code of the child when the channel was refused as `advanced`.
const REFUSED_ADVANCED: i32 = 42;

/// Not a test on its own: the Rust child the Node parents below start (it returns at
/// once unless started as a child); see [`Role::ForkedByNode`].
#[test]
fn child() {
    let Some(Role::ForkedByNode) = testkit::role::<Role>() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    std::process::exit(runtime.block_on(child_main()));
}

async fn child_main() -> i32 {
    let mut parent = match ipc_node::connect_from_env(&Default::default()).await {
        Ok(parent) => parent,
        Err(ConnectError::Unsupported { what, .. }) if what.contains("advanced") => {
            eprintln!("refused as expected: {what}");
            return REFUSED_ADVANCED;
        }
        Err(e) => {
            eprintln!("connect: {e}");
            return 1;
        }
    };
    let argv: Vec<String> = std::env::args().collect();
    let started = async {
        ipc_node::send_ready(&mut parent).await?;
        let peer_pid = ipc_core::Channel::info(&parent).peer_pid;
        parent
            .send_json(&json!({ "argv": argv, "peerPid": peer_pid }))
            .await
    };
    if let Err(e) = started.await {
        eprintln!("send: {e}");
        return 1;
    }
    loop {
        let reply = match parent.recv_json::<Value>().await {
            Ok(Some(m)) if m["op"] == "add" => {
                json!({"id": m["id"], "result": m["a"].as_i64().unwrap_or(0) + m["b"].as_i64().unwrap_or(0)})
            }
            Ok(Some(m)) if m["op"] == "exit" => return m["code"].as_i64().unwrap_or(1) as i32,
            Ok(Some(m)) => m,
            Ok(None) => return 0,
            Err(RecvError::Rejected(Error::Decode { context, .. })) => {
                json!({ "decodeError": context })
            }
            Err(e) => {
                eprintln!("recv: {e}");
                return 1;
            }
        };
        if let Err(e) = parent.send_json(&reply).await {
            eprintln!("send: {e}");
            return 1;
        }
    }
}

/// The Node parent: starts the Rust child as `HOW` says, checks everything, prints OK.
const PARENT_JS: &str = r#"
const { fork, spawn } = require('child_process');
const net = require('net');
const exe = process.env.RUST_EXE, how = process.env.HOW;
// The Rust side set the child's role variable in our environment: pass it on.
const env = { ...process.env };
delete env.RUST_EXE; delete env.HOW;
const harness = ['--exact', '--nocapture', '--test-threads=1'];
// The test harness prints to stdout; only this script's verdict goes there.
const stdio = ['inherit', 'ignore', 'inherit', 'ipc'];
let child;
if (how === 'fork') {
  child = fork('child', harness, { execPath: exe, execArgv: [], env, stdio });
} else if (how === 'advanced') {
  child = fork('child', harness, { execPath: exe, execArgv: [], env, stdio, serialization: 'advanced' });
} else {
  child = spawn(exe, ['child', ...harness], { stdio, env });
}
const fail = (why) => { console.error('FAIL: ' + why); child.kill(); process.exit(1); };
const timer = setTimeout(() => fail('timed out'), 60000);

// Each step waits for the next message with `expect(check)`.
const inbox = [];
let waiting = null;
child.on('message', (m) => { if (waiting) { const w = waiting; waiting = null; w(m); } else inbox.push(m); });
const next = () => new Promise((resolve) => inbox.length ? resolve(inbox.shift()) : (waiting = resolve));
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

async function talk() {
  let m = await next();
  if (m !== 'ready') fail('first message ' + JSON.stringify(m));
  m = await next();
  if (!m.argv || m.argv[1] !== 'child' || m.argv[0] !== exe) fail('argv ' + JSON.stringify(m));
  if (m.peerPid !== process.pid) fail('peer pid ' + m.peerPid + ', expected ' + process.pid);
  for (let id = 1; id <= 3; id++) {
    child.send({ id, op: 'add', a: id, b: 2 });
    m = await next();
    if (!same(m, { id, result: id + 2 })) fail('add ' + id + ': ' + JSON.stringify(m));
  }
  const N = 10000;
  for (let seq = 0; seq < N; seq++) child.send({ seq });
  for (let seq = 0; seq < N; seq++) {
    m = await next();
    if (!m || m.seq !== seq) fail('burst: expected seq ' + seq + ', got ' + JSON.stringify(m));
  }
  // A raw line that is not JSON: the child reports a decode error and goes on.
  require('fs').writeSync(child.channel.fd, 'not json\n');
  child.send({ after: 'garbage' });
  m = await next();
  if (!m.decodeError || !m.decodeError.includes('not json')) fail('decode error: ' + JSON.stringify(m));
  m = await next();
  if (!same(m, { after: 'garbage' })) fail('after garbage: ' + JSON.stringify(m));
  // A handle: the Rust child cannot take it and NACKs; later messages still flow.
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  child.send({ with: 'a server' }, server);
  child.send({ after: 'handle' });
  m = await next();
  if (!same(m, { after: 'handle' })) fail('after handle: ' + JSON.stringify(m));
  server.close();
  child.on('exit', (code, signal) => {
    clearTimeout(timer);
    if (code !== 0) fail('child exit ' + code + ' ' + signal);
    console.log('OK');
  });
  child.disconnect();
}

if (how === 'advanced') {
  child.on('exit', (code) => {
    clearTimeout(timer);
    if (code !== 42) fail('expected exit code 42, got ' + code);
    console.log('OK');
  });
} else {
  talk();
}
"#;

async fn run_parent(how: &str) {
    require_node();
    let exe = std::env::current_exe().expect("test exe");
    let out = within(
        90,
        how,
        tokio::process::Command::new("node")
            .arg("-e")
            .arg(PARENT_JS)
            .env("RUST_EXE", &exe)
            .env("HOW", how)
            .env(testkit::ROLE_VAR, Role::ForkedByNode.name())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.lines().any(|l| l == "OK"),
        "node parent ({how}): {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
}

#[tokio::test]
async fn node_forks_rust_child_with_exec_path() {
    run_parent("fork").await;
}

#[tokio::test]
async fn node_spawns_rust_child_with_ipc_stdio() {
    run_parent("spawn").await;
}

#[tokio::test]
async fn advanced_serialization_is_refused_clearly() {
    run_parent("advanced").await;
}
