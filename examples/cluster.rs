//! cluster: an HTTP hello-world server on one port across N workers (Node's `cluster`
//! demo). The primary counts the requests from its workers' messages (the `numReqs`
//! demo) and prints the count per worker when it stops.
//!
//! ```text
//! cargo run --example cluster -- --mode rr --workers 4 --port 8080    # Ctrl-C to stop
//! cargo run --example cluster -- --mode shared --requests 200         # self-test, then exit
//! ```

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper::{Request, Response};
use ipc::cluster::messenger::To;
use ipc::cluster::{Cluster, ClusterConfig, ClusterEvent, Mode, Worker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An HTTP server on one port across N worker processes.
#[derive(Parser, Debug)]
struct Args {
    /// How connections reach the workers: shared, rr or reuseport.
    #[arg(long, default_value = "shared")]
    mode: Mode,
    /// Number of workers (default: the CPUs).
    #[arg(long)]
    workers: Option<usize>,
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Send this many requests ourselves, print the counts and exit (a self-test).
    #[arg(long)]
    requests: Option<u64>,
}

#[tokio::main]
async fn main() -> ipc::cluster::Result<()> {
    if ipc::role() == ipc::Role::Child {
        return worker().await;
    }
    let args = Args::parse();
    let mut config = ClusterConfig::builder()
        .mode(args.mode)
        .addr(SocketAddr::from(([127, 0, 0, 1], args.port)));
    if let Some(n) = args.workers {
        config = config.workers(n);
    }
    let exe = std::env::current_exe()?;
    let mut cluster =
        Cluster::start(config.build(), move |_| std::process::Command::new(&exe)).await?;
    let addr = cluster.local_addr();
    let workers = cluster.workers().await?;
    println!(
        "listening on http://{addr} ({} mode, {} workers)",
        args.mode,
        workers.len()
    );
    let mut counts: BTreeMap<u32, u64> = BTreeMap::new();
    match args.requests {
        Some(n) => {
            for _ in 0..n {
                let body = get(addr).await?;
                assert!(body.starts_with("hello from worker"), "{body}");
            }
            // Every worker told us about its requests: wait for the messages.
            let counted = tokio::time::timeout(Duration::from_secs(20), async {
                while counts.values().sum::<u64>() < n {
                    match cluster.next_event().await {
                        Some(ClusterEvent::Message(msg)) if msg.action == "request" => {
                            *counts.entry(msg.from).or_default() += 1;
                        }
                        Some(_) => {}
                        None => break,
                    }
                }
            })
            .await;
            if counted.is_err() {
                eprintln!("not every request was reported within 20 s");
            }
            cluster.shutdown().await;
        }
        None => {
            use tokio::signal::unix::{signal, SignalKind};
            let mut int = signal(SignalKind::interrupt())?;
            let mut term = signal(SignalKind::terminate())?;
            loop {
                tokio::select! {
                    _ = int.recv() => break,
                    _ = term.recv() => break,
                    event = cluster.next_event() => match event {
                        Some(ClusterEvent::Message(msg)) if msg.action == "request" => {
                            *counts.entry(msg.from).or_default() += 1;
                        }
                        Some(other) => println!("{other:?}"),
                        None => break,
                    },
                }
            }
            cluster.shutdown().await;
        }
    }
    for (pid, count) in &counts {
        println!("worker pid {pid}: {count} requests");
    }
    println!("total {} requests", counts.values().sum::<u64>());
    Ok(())
}

/// One `GET /` on a fresh connection; the response body.
async fn get(addr: SocketAddr) -> std::io::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    if !response.starts_with("HTTP/1.1 200") {
        return Err(std::io::Error::other(format!(
            "unexpected response: {response}"
        )));
    }
    Ok(response
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, body)| body.to_string()))
}

/// A worker: serve HTTP on the connections the cluster gives us, tell the primary
/// about every request, and finish the open connections when asked to stop.
async fn worker() -> ipc::cluster::Result<()> {
    let worker = Arc::new(Worker::connect().await?);
    let mut listener = worker.listener().await?;
    worker.ready().await?;
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let http = hyper::server::conn::http1::Builder::new();
    while let Some(stream) = listener.accept().await {
        let Ok(stream) = stream else { continue };
        let worker = worker.clone();
        let service = hyper::service::service_fn(move |_req: Request<hyper::body::Incoming>| {
            let worker = worker.clone();
            async move {
                let body = format!(
                    "hello from worker {} (pid {})\n",
                    worker.index(),
                    std::process::id()
                );
                let _ = worker
                    .send(To::Primary, "request", serde_json::Value::Null)
                    .await;
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
            }
        });
        let conn = http.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    // Asked to stop: let the open connections finish their requests (bounded).
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
    if let Ok(worker) = Arc::try_unwrap(worker) {
        worker.close().await?;
    }
    Ok(())
}
