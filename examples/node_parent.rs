//! node_parent: a Rust parent forking a Node.js child (`examples/node/child.js`) over
//! Node's own `child_process` IPC channel; the child uses plain `process.send` and
//! `process.on('message')`.
//!
//! Mirrors the seeds' `child_process.fork()` demo, with the parent in Rust: it waits
//! for the child's `'ready'`, sends request/response messages
//! (`{"id":N,"op":"add","a":1,"b":2}` -> `{"id":N,"result":3}`) and a burst of
//! 10 000 messages checked in order, then closes the channel (the child's
//! `'disconnect'`) and expects exit code 0.
//!
//! ```text
//! cargo run --example node_parent
//! cargo run --example node_parent -- --script examples/node/child.js --count 100000
//! ```

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use clap::Parser;
use ipc::codec::Json;
use ipc::node::NodeTransport;
use ipc::prelude::*;
use ipc::{Error, Transport, TypedChannel};

/// Fork a Node.js child over Node's IPC channel and exchange messages with it.
#[derive(Parser, Debug)]
struct Args {
    /// The Node script to fork.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/node/child.js"))]
    script: PathBuf,
    /// The `node` executable.
    #[arg(long, default_value = "node")]
    node: PathBuf,
    /// Messages in the ordered burst.
    #[arg(long, default_value_t = 10_000)]
    count: u64,
}

/// What we send: requests, burst messages, and the child's replies are all JSON.
#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
#[serde(untagged)]
enum Message {
    Add { id: u64, op: String, a: i64, b: i64 },
    Sum { id: u64, result: i64 },
    Seq { seq: u64, text: String },
    Text(String),
}

fn protocol(why: String) -> Error {
    Error::Io(std::io::Error::other(why))
}

async fn run(args: Args) -> ipc::Result<()> {
    let mut command = Command::new(&args.node);
    command.arg(&args.script);
    let (mut child, channel) = NodeTransport
        .spawn(command, &ipc::Options::default())
        .await?;
    println!(
        "node_parent: forked {} as pid {}",
        args.script.display(),
        child.pid()
    );
    let mut ch: TypedChannel<Message, Message, Json> = TypedChannel::new(channel);

    match ch.recv().await? {
        Some(Message::Text(t)) if t == "ready" => {}
        other => return Err(protocol(format!("expected 'ready', got {other:?}"))),
    }

    // Request/response.
    for (id, (a, b)) in [(1, 2), (40, 2), (-5, 5)].into_iter().enumerate() {
        let id = id as u64 + 1;
        let op = "add".to_string();
        ch.send(Message::Add { id, op, a, b }).await?;
        match ch.recv().await? {
            Some(Message::Sum { id: got, result }) if got == id && result == a + b => {}
            other => return Err(protocol(format!("request {id}: got {other:?}"))),
        }
    }

    // The ordered burst: one task sends while this one reads the echoes.
    let (mut tx, mut rx) = ch.split();
    let count = args.count;
    let sender = tokio::spawn(async move {
        for seq in 0..count {
            let text = format!("message {seq}");
            tx.send(Message::Seq { seq, text }).await?;
        }
        Ok::<_, Error>(tx)
    });
    for seq in 0..count {
        match rx.recv().await? {
            Some(Message::Seq { seq: got, text })
                if got == seq && text == format!("message {seq}") => {}
            other => {
                return Err(protocol(format!(
                    "burst: expected message {seq}, got {other:?}"
                )))
            }
        }
    }
    let mut tx = sender.await.map_err(|e| protocol(e.to_string()))??;

    // Close: Node emits 'disconnect', closes its end and exits.
    tx.close().await?;
    if let Some(extra) = rx.recv().await? {
        return Err(protocol(format!(
            "unexpected message after close: {extra:?}"
        )));
    }
    let status = child.wait().await?;
    println!(
        "node_parent: 3 requests answered, {count} messages echoed in order, child exited: {status}"
    );
    if status.success() {
        Ok(())
    } else {
        Err(Error::ChildExited(status))
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match ipc::run(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("node_parent: {e}");
            ExitCode::FAILURE
        }
    }
}
