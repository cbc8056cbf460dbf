//! echo: the seeds' socket server and client. `--listen` serves any number of clients
//! and echoes every frame; `--connect` sends each line of stdin and prints the replies.
//!
//! A client that speaks garbage (or announces a huge frame) is dropped with the reason
//! logged, and the server keeps serving. The client is told why first: its last frame
//! from the server is `error: REASON`, then the server drops the channel without
//! closing it (an abort, no goodbye), so the client's next `recv` gives `PeerLost`.
//! A client that closes cleanly gets the server's `close` (a goodbye) in return.
//!
//! ```text
//! cargo run --example echo -- --listen unix:/tmp/echo.sock
//! echo hello | cargo run --example echo -- --connect unix:/tmp/echo.sock
//!
//! # TCP: the listener requires IPC_TOKEN when it is set; clients present it.
//! IPC_TOKEN=s3cret cargo run --example echo -- --listen tcp://127.0.0.1:7000
//! echo hi | IPC_TOKEN=s3cret cargo run --example echo -- --connect tcp://127.0.0.1:7000
//! ```

use std::process::ExitCode;

use bytes::Bytes;
use clap::Parser;
use ipc::prelude::*;
use ipc::{Capabilities, Endpoint};

/// What echo needs of a transport: clients connect to the server by name and send
/// lines of any text.
const NEEDS: Capabilities = Capabilities::NONE
    .with_binary_frames(true)
    .with_listen(true);

/// The transport serving `endpoint`, if it can carry echo.
fn transport_for(endpoint: &Endpoint) -> ipc::Result<std::sync::Arc<dyn ipc::Transport>> {
    let registry = ipc::registry();
    let transport = registry.for_endpoint(endpoint)?;
    registry.check(transport.as_ref(), NEEDS)?;
    Ok(transport)
}
use tokio::io::AsyncBufReadExt;

/// Echo server / client over any ipc endpoint.
#[derive(Parser, Debug)]
#[command(group(clap::ArgGroup::new("mode").required(true).args(["listen", "connect"])))]
struct Args {
    /// Serve clients on this endpoint (tcp://127.0.0.1:0 picks a free port).
    #[arg(long)]
    listen: Option<Endpoint>,
    /// Connect to this endpoint and echo stdin lines through it.
    #[arg(long)]
    connect: Option<Endpoint>,
}

async fn serve(endpoint: Endpoint) -> ipc::Result<()> {
    let mut listener = transport_for(&endpoint)?
        .listen(&endpoint, &ipc::Options::default())
        .await?;
    // Tests and scripts wait for this line before connecting.
    println!("listening on {}", listener.endpoint());
    let mut next_id = 0u64;
    loop {
        let mut client = match listener.accept().await {
            Ok(client) => client,
            Err(e) => {
                eprintln!("refused a client: {e}");
                continue;
            }
        };
        next_id += 1;
        let id = next_id;
        let info = client.info();
        let from = match (info.peer_pid, &info.peer_addr) {
            (Some(pid), _) => format!("pid {pid}"),
            (None, Some(addr)) => format!("from {addr}"),
            (None, None) => "peer unknown".to_string(),
        };
        eprintln!("client {id} connected ({from})");
        tokio::spawn(async move {
            let mut frames = 0u64;
            loop {
                match client.recv().await {
                    Ok(Some(frame)) => {
                        frames += 1;
                        if let Err(e) = client.send(frame).await {
                            eprintln!("client {id}: dropped, cannot reply: {e}");
                            return;
                        }
                    }
                    Ok(None) => {
                        let _ = client.close().await;
                        eprintln!("client {id} closed after {frames} frames");
                        return;
                    }
                    Err(e) => {
                        eprintln!("client {id}: dropped: {e}");
                        // A rejected frame (too large, undecodable) leaves the client
                        // there to be told why; then the drop aborts the channel.
                        if e.is_rejected() {
                            let _ = client.send(Bytes::from(format!("error: {e}"))).await;
                        }
                        return;
                    }
                }
            }
        });
    }
}

async fn client(endpoint: Endpoint) -> ipc::Result<()> {
    let mut ch = transport_for(&endpoint)?
        .connect(&endpoint, &ipc::Options::default())
        .await?;
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        ch.send(Bytes::from(line)).await?;
        match ch.recv().await? {
            Some(reply) => println!("{}", String::from_utf8_lossy(&reply)),
            None => return Err(std::io::Error::other("server closed").into()),
        }
    }
    ch.close().await?;
    while ch.recv().await?.is_some() {}
    Ok(())
}

fn main() -> ExitCode {
    ipc::run(run())
}

async fn run() -> ExitCode {
    let args = Args::parse();
    let result = match (args.listen, args.connect) {
        (Some(ep), _) => serve(ep).await,
        (_, Some(ep)) => client(ep).await,
        _ => unreachable!("clap requires one of --listen / --connect"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo: {e}");
            ExitCode::FAILURE
        }
    }
}
