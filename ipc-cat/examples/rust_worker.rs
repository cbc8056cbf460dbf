//! rust_worker: a Rust child for parents written in other languages (the Python
//! package's `ipc_peer.spawn`, `ipc-cat --spawn`, or any parent that sets up the env
//! contract of docs/PROTOCOL.md section 3).
//!
//! ```text
//! python3 peers/python/examples/parent.py --transport uds -- target/debug/examples/rust_worker
//! python3 peers/python/examples/parent.py --transport tcp --rpc -- target/debug/examples/rust_worker rpc
//! ```
//!
//! Modes (first argument): `echo` (default) answers every frame upper-cased until the
//! parent closes; `rpc` serves `ipc::rpc` requests the same way (the body `fail` gets
//! an error response).

use std::process::ExitCode;

use bytes::Bytes;
use ipc::prelude::*;

async fn echo(mut parent: Box<dyn Channel>) -> ipc::Result<()> {
    while let Some(frame) = parent.recv().await? {
        parent.send(Bytes::from(frame.to_ascii_uppercase())).await?;
    }
    Ok(parent.close().await?)
}

async fn rpc(parent: Box<dyn Channel>) -> ipc::Result<()> {
    ipc::rpc::serve(parent, |body: Bytes| async move {
        if body == "fail" {
            Err("asked to fail".to_string())
        } else {
            Ok(Bytes::from(body.to_ascii_uppercase()))
        }
    })
    .await
}

async fn run(mode: String) -> ipc::Result<()> {
    let parent = ipc::connect_from_env().await?;
    eprintln!(
        "rust_worker {}: connected over {}",
        std::process::id(),
        parent.info().transport
    );
    match mode.as_str() {
        "rpc" => rpc(parent).await,
        _ => echo(parent).await,
    }
}

fn main() -> ExitCode {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "echo".into());
    match ipc::run(run(mode)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rust_worker: {e}");
            ExitCode::FAILURE
        }
    }
}
