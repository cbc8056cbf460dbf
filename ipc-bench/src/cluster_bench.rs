//! `ipc-bench --cluster`: HTTP requests per second and p99 latency of a hello-world
//! server on one port, for 1 and N workers, in each of `ipc-cluster`'s modes (shared,
//! rr, reuseport) and in Node's `cluster` (rr and shared), in one run, driven by the
//! bench's own bounded load generator: a hyper HTTP/1.1 client with C keep-alive
//! connections sending a fixed number of requests.
//!
//! The Rust workers are this binary re-executed with [`WORKER_ENV`] set; they serve
//! through `ipc::cluster::Worker`, as an application would.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use ipc::cluster::{Cluster, ClusterConfig, Mode, Worker};
use serde::Serialize;
use tokio::io::AsyncBufReadExt;

/// Set in a Rust cluster worker of this bench.
pub(crate) const WORKER_ENV: &str = "IPC_BENCH_CLUSTER_WORKER";

/// The Node.js cluster script.
const NODE_SCRIPT: &str = include_str!("../node/cluster_server.js");

/// What one cluster cell measures.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    /// `ipc-cluster` or `node-cluster`.
    pub server: &'static str,
    /// `shared`, `rr` or `reuseport`.
    pub mode: String,
    /// Worker processes.
    pub workers: usize,
    /// Client connections (keep-alive).
    pub connections: usize,
    /// Timed requests.
    pub requests: u64,
    /// Requests that failed (must be 0).
    pub errors: u64,
    /// Requests per second.
    pub rps: f64,
    /// Median latency, µs.
    pub p50_us: f64,
    /// 99th percentile latency, µs.
    pub p99_us: f64,
}

/// The options of a cluster run.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub workers: usize,
    pub connections: usize,
    pub requests: u64,
    pub node: String,
}

/// True in a re-executed Rust cluster worker.
pub(crate) fn is_worker() -> bool {
    std::env::var_os(WORKER_ENV).is_some()
}

/// A Rust cluster worker: hello world over HTTP/1.1 with keep-alive.
pub(crate) fn worker_main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let worker = Worker::connect().await?;
        let mut listener = worker.listener().await?;
        worker.ready().await?;
        let http = hyper::server::conn::http1::Builder::new();
        while let Some(stream) = listener.accept().await {
            let Ok(stream) = stream else { continue };
            let _ = stream.set_nodelay(true);
            let service =
                hyper::service::service_fn(|_req: Request<hyper::body::Incoming>| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                        b"hello world\n",
                    ))))
                });
            let conn = http.serve_connection(TokioIo::new(stream), service);
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
        worker.close().await?;
        Ok::<(), anyhow::Error>(())
    })
}

/// Run every cell; print the table; return the rows.
pub(crate) fn run(options: &Options) -> Result<Vec<Row>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut counts = vec![1];
    if options.workers > 1 {
        counts.push(options.workers);
    }
    let node_dir = tempfile::Builder::new()
        .prefix("ipc-bench-cluster-")
        .tempdir()?;
    let script = node_dir.path().join("cluster_server.js");
    std::fs::write(&script, NODE_SCRIPT)?;
    let node_ok = std::process::Command::new(&options.node)
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !node_ok {
        eprintln!(
            "ipc-bench: Node.js cluster rows skipped: `{}` did not run",
            options.node
        );
    }
    let mut rows = Vec::new();
    for &workers in &counts {
        for mode in [Mode::Shared, Mode::RoundRobin, Mode::ReusePort] {
            let row = runtime
                .block_on(rust_cell(mode, workers, options))
                .with_context(|| format!("ipc-cluster {mode} x{workers}"))?;
            print_row(&row);
            rows.push(row);
        }
        if node_ok {
            for mode in ["rr", "shared"] {
                let row = runtime
                    .block_on(node_cell(&options.node, &script, mode, workers, options))
                    .with_context(|| format!("node cluster {mode} x{workers}"))?;
                print_row(&row);
                rows.push(row);
            }
        }
    }
    print_ratios(&rows);
    Ok(rows)
}

fn print_row(row: &Row) {
    println!(
        "{:<13} {:<9} workers {:>2}  conns {:>3}  {:>10.0} req/s  p50 {:>8.1} µs  p99 {:>8.1} µs  errors {}",
        row.server, row.mode, row.workers, row.connections, row.rps, row.p50_us, row.p99_us, row.errors
    );
}

/// Each Rust row against the best Node row at the same worker count.
fn print_ratios(rows: &[Row]) {
    for row in rows.iter().filter(|r| r.server == "ipc-cluster") {
        let best_node = rows
            .iter()
            .filter(|n| n.server == "node-cluster" && n.workers == row.workers)
            .map(|n| n.rps)
            .fold(0.0, f64::max);
        if best_node > 0.0 {
            println!(
                "ratio: ipc-cluster {} x{} = {:.2}x Node's best at {} workers",
                row.mode,
                row.workers,
                row.rps / best_node,
                row.workers
            );
        }
    }
}

async fn rust_cell(mode: Mode, workers: usize, options: &Options) -> Result<Row> {
    let config = ClusterConfig::builder()
        .workers(workers)
        .mode(mode)
        .socket_activation(false)
        .build();
    let exe = std::env::current_exe()?;
    let cluster = Cluster::start(config, move |_| {
        let mut command = std::process::Command::new(&exe);
        command.env(WORKER_ENV, "1");
        command
    })
    .await?;
    let measured = load(cluster.local_addr(), options).await;
    cluster.shutdown().await;
    let (rps, p50, p99, errors) = measured?;
    Ok(Row {
        server: "ipc-cluster",
        mode: mode.to_string(),
        workers,
        connections: options.connections,
        requests: options.requests,
        errors,
        rps,
        p50_us: p50,
        p99_us: p99,
    })
}

async fn node_cell(
    node: &str,
    script: &std::path::Path,
    mode: &str,
    workers: usize,
    options: &Options,
) -> Result<Row> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut child = tokio::process::Command::new(node)
        .arg(script)
        .arg(workers.to_string())
        .arg(port.to_string())
        .arg(mode)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting node")?;
    let stdout = child.stdout.take().context("node's stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await? {
            if line.starts_with("listening") {
                return Ok(());
            }
        }
        Err(anyhow!("node exited before its workers listened"))
    })
    .await
    .map_err(|_| anyhow!("node's workers did not listen within 30 s"))??;
    let measured = load(SocketAddr::from(([127, 0, 0, 1], port)), options).await;
    if let Some(pid) = child.id() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    let (rps, p50, p99, errors) = measured?;
    Ok(Row {
        server: "node-cluster",
        mode: mode.to_string(),
        workers,
        connections: options.connections,
        requests: options.requests,
        errors,
        rps,
        p50_us: p50,
        p99_us: p99,
    })
}

/// The load generator: `connections` keep-alive HTTP/1.1 connections share
/// `requests` timed requests (after a tenth as many for warm-up); returns requests
/// per second, p50 and p99 in µs, and the error count.
async fn load(addr: SocketAddr, options: &Options) -> Result<(f64, f64, f64, u64)> {
    let warmup = (options.requests / 10).max(1);
    drive(addr, options.connections, warmup).await?;
    let started = Instant::now();
    let (hist, errors) = drive(addr, options.connections, options.requests).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let done = hist.len() as f64;
    Ok((
        done / elapsed.max(1e-9),
        hist.value_at_quantile(0.5) as f64 / 1000.0,
        hist.value_at_quantile(0.99) as f64 / 1000.0,
        errors,
    ))
}

/// Send `total` requests over `connections` connections; latencies in ns.
async fn drive(
    addr: SocketAddr,
    connections: usize,
    total: u64,
) -> Result<(hdrhistogram::Histogram<u64>, u64)> {
    let left = Arc::new(AtomicU64::new(total));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections.max(1) {
        let left = left.clone();
        tasks.spawn(async move {
            let mut hist = hdrhistogram::Histogram::<u64>::new(3).expect("histogram");
            let mut errors = 0u64;
            let mut sender = None;
            while left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
            {
                if sender.is_none() {
                    sender = connect(addr).await.ok();
                }
                let Some(tx) = sender.as_mut() else {
                    errors += 1;
                    continue;
                };
                let request = Request::get("/")
                    .header("host", "localhost")
                    .body(Empty::<Bytes>::new())
                    .expect("a request");
                let start = Instant::now();
                let ok = match tx.send_request(request).await {
                    Ok(response) => {
                        let status = response.status();
                        response.into_body().collect().await.is_ok() && status.is_success()
                    }
                    Err(_) => false,
                };
                if ok {
                    let _ = hist.record(start.elapsed().as_nanos() as u64);
                } else {
                    errors += 1;
                    sender = None;
                }
            }
            (hist, errors)
        });
    }
    let mut all = hdrhistogram::Histogram::<u64>::new(3)?;
    let mut errors = 0;
    while let Some(done) = tasks.join_next().await {
        let (hist, e) = done?;
        all.add(hist)?;
        errors += e;
    }
    Ok((all, errors))
}

async fn connect(
    addr: SocketAddr,
) -> Result<hyper::client::conn::http1::SendRequest<Empty<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}
