//! rr_worker: a tiny HTTP server written as an `ipc_cluster::Worker`, so `ipcm` can
//! run it in every cluster mode, `rr` included (the daemon accepts and hands each
//! connection to the next worker). It answers every request with its pid and index,
//! and when the daemon asks it to stop taking connections it finishes the open ones
//! and exits.
//!
//! ```text
//! cargo build -p ipc-pm --example rr_worker
//! ipcm start --name web -i 2 --mode rr --port 8080 target/debug/examples/rr_worker
//! curl http://127.0.0.1:8080/      # pid=... instance=0, then instance=1, ...
//! ```
//!
//! If the file named by its first argument exists when it starts, it plays a broken
//! new version that never says ready.

use std::time::Duration;

use ipc_cluster::Worker;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ipc_cluster::Result<()> {
    let worker = Worker::connect().await?;
    let mut listener = worker.listener().await?;
    let broken = std::env::args_os()
        .nth(1)
        .is_some_and(|marker| std::path::Path::new(&marker).exists());
    if broken {
        println!("broken version: never ready");
        worker.stopping().await;
        return Ok(());
    }
    worker.ready().await?;
    println!("serving, pid {}", std::process::id());
    let mut open = tokio::task::JoinSet::new();
    while let Some(stream) = listener.accept().await {
        let Ok(stream) = stream else { continue };
        let index = worker.index();
        open.spawn(async move {
            if let Err(e) = answer(stream, index).await {
                eprintln!("a request failed: {e}");
            }
        });
    }
    // Asked to stop: finish the requests in hand (bounded), then leave.
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while open.join_next().await.is_some() {}
    })
    .await;
    worker.close().await
}

/// Read one request head and answer `pid=... instance=...`.
async fn answer(mut stream: TcpStream, index: usize) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let body = format!("pid={} instance={index}\n", std::process::id());
    let reply = format!(
        "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(reply.as_bytes()).await?;
    stream.shutdown().await
}
