//! node_child: a Rust program forked by Node.js, talking over Node's own
//! `child_process` IPC channel (`process.send` on one side, `ipc::connect_from_env()`
//! on the other).
//!
//! Mirrors the seeds' `child_process.fork()` demo with the roles swapped: the parent is
//! Node (`examples/node/parent.js`), the child is this binary. It tells the parent it is
//! ready with `process.send('ready')`'s message (so it also runs under pm2 with
//! `wait_ready`), answers `{"id":N,"op":"add","a":1,"b":2}` with `{"id":N,"result":3}`,
//! echoes every other message, and exits 0 when Node disconnects.
//!
//! ```text
//! cargo build --example node_child
//! node examples/node/parent.js target/debug/examples/node_child           # fork() with execPath
//! node examples/node/parent.js --spawn target/debug/examples/node_child   # spawn() with 'ipc' stdio
//! ```
//!
//! Node runs it with `fork(bin, [], { execPath: bin, execArgv: [] })`, which makes the
//! "module path" `argv[1]` (this program ignores its arguments), or with
//! `spawn(bin, [], { stdio: ['inherit', 'inherit', 'inherit', 'ipc'] })`.

use std::process::ExitCode;

use ipc::codec::{Codec, Json};
use ipc::prelude::*;
use ipc::{Error, RecvError, Role};

/// `{"id":N,"op":"add","a":1,"b":2}`
#[derive(serde::Deserialize)]
struct Request {
    id: u64,
    op: String,
    a: i64,
    b: i64,
}

/// `{"id":N,"result":3}`, or `{"id":N,"error":"..."}` for an operation we do not know.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Response {
    Result { id: u64, result: i64 },
    Error { id: u64, error: String },
}

async fn serve() -> ipc::Result<()> {
    // NODE_CHANNEL_FD=3 names `node:fd=3`: the registry picks the node transport.
    let mut parent = ipc::connect_from_env().await?;
    ipc::node::send_ready(&mut parent).await?;
    loop {
        let message = match parent.recv().await {
            Ok(Some(message)) => message,
            // Node called disconnect() (or exited): end our side cleanly too (a drop
            // without close would be an abort).
            Ok(None) => return Ok(parent.close().await?),
            Err(e @ RecvError::Rejected(Error::Decode { .. })) => {
                eprintln!("node_child: skipping a bad message: {e}");
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        // Requests get an answer; anything else is echoed as it came.
        let reply = match Json::decode::<Request>(&message) {
            Ok(Request { id, op, a, b }) if op == "add" => {
                Json::encode(&Response::Result { id, result: a + b })?
            }
            Ok(Request { id, op, .. }) => Json::encode(&Response::Error {
                id,
                error: format!("unknown op {op:?}"),
            })?,
            Err(_) => message,
        };
        parent.send(reply).await?;
    }
}

fn main() -> ExitCode {
    if ipc::role() != Role::Child {
        eprintln!(
            "node_child is meant to be forked by Node.js, e.g.\n  \
             node examples/node/parent.js target/debug/examples/node_child"
        );
        return ExitCode::from(2);
    }
    match ipc::run(serve()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("node_child: {e}");
            ExitCode::FAILURE
        }
    }
}
