//! `ipc-bench --cluster`: HTTP requests per second and p99 latency of a hello-world
//! server on one port, for 1 and N workers, in each of `ipc-cluster`'s modes (shared,
//! rr, reuseport) and in Node's `cluster` (rr and shared), in one run, driven by the
//! bench's own bounded load generator: a hyper HTTP/1.1 client with C keep-alive
//! connections sending a fixed number of requests.
//!
//! The Rust primary is this binary re-executed with [`PRIMARY_ENV`] set (a process of
//! its own, like Node's primary), and its workers are this binary re-executed with
//! [`WORKER_ENV`] set; they serve through `ipc::cluster::Worker`, as an application
//! would.
//!
//! Requests per second on a small machine mostly measure how the load generator and
//! the servers share the CPUs, so every cell also reports the server side's CPU time
//! per request (the primary and all its workers, from `/proc`, over the timed window)
//! and the load generator's: an efficiency comparison that does not depend on that
//! sharing. `--split-cpus` pins the generator to the first allowed CPU and the server
//! side (the primary before it starts its workers, which inherit it) to the others.

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

/// Set in the Rust cluster primary of this bench: `MODE:WORKERS`.
pub(crate) const PRIMARY_ENV: &str = "IPC_BENCH_CLUSTER_PRIMARY";

/// With `--split-cpus`, the CPUs of the server side (`1,2,...`): a server process
/// pins itself to them first thing in `main`.
pub(crate) const SERVER_CPUS_ENV: &str = "IPC_BENCH_CLUSTER_CPUS";

/// Set when this binary only pins itself (see [`SERVER_CPUS_ENV`]) and then executes
/// its arguments (Node's primary, which cannot pin itself).
pub(crate) const EXEC_ENV: &str = "IPC_BENCH_CLUSTER_EXEC";

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
    /// On-CPU time of the server side (primary and all workers) over the timed
    /// window, per request, µs.
    pub server_cpu_us_per_req: f64,
    /// On-CPU time of the load generator over the timed window, per request, µs.
    pub loadgen_cpu_us_per_req: f64,
    /// Where the processes ran: `shared` (anywhere) or `split` (generator on one CPU,
    /// servers on the others).
    pub placement: &'static str,
}

/// Where the load generator and the servers run.
#[derive(Debug, Clone)]
pub(crate) enum Placement {
    /// Everything may run on every allowed CPU.
    Shared,
    /// The generator on `generator`; the server side on `servers`.
    Split {
        generator: usize,
        servers: Vec<usize>,
    },
}

impl Placement {
    fn name(&self) -> &'static str {
        match self {
            Placement::Shared => "shared",
            Placement::Split { .. } => "split",
        }
    }

    fn describe(&self) -> String {
        match self {
            Placement::Shared => {
                "shared: load generator and servers on any CPU (not pinned)".to_string()
            }
            Placement::Split { generator, servers } => format!(
                "split: load generator pinned to CPU {generator}, server side (primary and workers) to CPUs {servers:?}"
            ),
        }
    }

    /// The command that starts a server process: `program args` itself, or this binary
    /// pinning itself to the server CPUs and then executing it.
    fn server_command(&self, program: &std::ffi::OsStr) -> Result<tokio::process::Command> {
        match self {
            Placement::Shared => Ok(tokio::process::Command::new(program)),
            Placement::Split { servers, .. } => {
                let mut command = tokio::process::Command::new(std::env::current_exe()?);
                command
                    .env(SERVER_CPUS_ENV, cpu_list(servers))
                    .env(EXEC_ENV, "1")
                    .arg(program);
                Ok(command)
            }
        }
    }
}

fn cpu_list(cpus: &[usize]) -> String {
    cpus.iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// In a server process started with `--split-cpus`: pin to the server CPUs (before
/// any thread or child exists, so all inherit it); then, if asked, execute the
/// arguments in place of this process (same pid). Returns only when there is nothing
/// to execute.
pub(crate) fn pin_and_exec_from_env() -> Result<()> {
    let Some(list) = std::env::var_os(SERVER_CPUS_ENV) else {
        return Ok(());
    };
    let list = list.to_string_lossy().into_owned();
    let cpus = list
        .split(',')
        .map(|c| c.parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{SERVER_CPUS_ENV}={list}: expected CPU numbers like 1,2"))?;
    crate::pin::pin_process_to(&cpus)?;
    if std::env::var_os(EXEC_ENV).is_some() {
        use std::os::unix::process::CommandExt;
        let mut args = std::env::args_os().skip(1);
        let program = args
            .next()
            .with_context(|| format!("{EXEC_ENV} is set but there is no program to run"))?;
        let err = std::process::Command::new(&program)
            .args(args)
            .env_remove(SERVER_CPUS_ENV)
            .env_remove(EXEC_ENV)
            .exec();
        return Err(err).with_context(|| format!("executing {}", program.to_string_lossy()));
    }
    Ok(())
}

/// The options of a cluster run.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub workers: usize,
    pub connections: usize,
    pub requests: u64,
    pub node: String,
    pub split_cpus: bool,
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

/// True in the re-executed Rust cluster primary.
pub(crate) fn is_primary() -> bool {
    std::env::var_os(PRIMARY_ENV).is_some()
}

/// The Rust cluster primary: start the cluster in the mode and with the workers of
/// [`PRIMARY_ENV`], print `listening PORT` when every worker is ready, shut the
/// cluster down on SIGTERM or when stdin closes.
pub(crate) fn primary_main() -> Result<()> {
    let spec = std::env::var(PRIMARY_ENV)?;
    let (mode, workers) = spec
        .split_once(':')
        .with_context(|| format!("{PRIMARY_ENV}={spec}: expected MODE:WORKERS"))?;
    let mode: Mode = match mode {
        "shared" => Mode::Shared,
        "rr" => Mode::RoundRobin,
        "reuseport" => Mode::ReusePort,
        other => return Err(anyhow!("{PRIMARY_ENV}: unknown mode {other}")),
    };
    let workers: usize = workers
        .parse()
        .with_context(|| format!("{PRIMARY_ENV}={spec}: bad worker count"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let config = ClusterConfig::builder()
            .workers(workers)
            .mode(mode)
            .socket_activation(false)
            .build();
        let exe = std::env::current_exe()?;
        let cluster = Cluster::start(config, move |_| {
            let mut command = std::process::Command::new(&exe);
            command
                .env(WORKER_ENV, "1")
                .env_remove(PRIMARY_ENV)
                .env_remove(SERVER_CPUS_ENV);
            command
        })
        .await?;
        println!("listening {}", cluster.local_addr().port());
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        tokio::select! {
            _ = term.recv() => {}
            _ = async { while let Ok(Some(_)) = stdin.next_line().await {} } => {}
        }
        cluster.shutdown().await;
        Ok(())
    })
}

/// Run every cell; print the table; return the rows.
pub(crate) fn run(options: &Options) -> Result<Vec<Row>> {
    let placement = if options.split_cpus {
        let allowed = crate::pin::allowed_cpus()?;
        let Some((&generator, servers)) = allowed.split_first().filter(|(_, s)| !s.is_empty())
        else {
            return Err(anyhow!(
                "--split-cpus needs at least 2 CPUs; this process may only run on {allowed:?}"
            ));
        };
        // Before the runtime exists, so all its threads inherit the pin.
        crate::pin::pin_process(generator)?;
        Placement::Split {
            generator,
            servers: servers.to_vec(),
        }
    } else {
        Placement::Shared
    };
    println!("placement: {}", placement.describe());
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
                .block_on(rust_cell(mode, workers, options, &placement))
                .with_context(|| format!("ipc-cluster {mode} x{workers}"))?;
            print_row(&row);
            rows.push(row);
        }
        if node_ok {
            for mode in ["rr", "shared"] {
                let row = runtime
                    .block_on(node_cell(
                        &options.node,
                        &script,
                        mode,
                        workers,
                        options,
                        &placement,
                    ))
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
        "{:<13} {:<9} workers {:>2}  conns {:>3}  {:>10.0} req/s  p50 {:>8.1} µs  p99 {:>8.1} µs  server CPU {:>6.2} µs/req  loadgen CPU {:>6.2} µs/req  errors {}",
        row.server,
        row.mode,
        row.workers,
        row.connections,
        row.rps,
        row.p50_us,
        row.p99_us,
        row.server_cpu_us_per_req,
        row.loadgen_cpu_us_per_req,
        row.errors
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
    let mut counts: Vec<usize> = rows.iter().map(|r| r.workers).collect();
    counts.dedup();
    for workers in counts {
        let least = |server: &str| {
            rows.iter()
                .filter(|r| {
                    r.server == server && r.workers == workers && r.server_cpu_us_per_req > 0.0
                })
                .min_by(|a, b| a.server_cpu_us_per_req.total_cmp(&b.server_cpu_us_per_req))
        };
        if let (Some(rust), Some(node)) = (least("ipc-cluster"), least("node-cluster")) {
            println!(
                "cpu ratio: ipc-cluster needs {:.2}x less server CPU per request than Node's best at {} workers ({} {:.2} µs/req vs node {} {:.2} µs/req)",
                node.server_cpu_us_per_req / rust.server_cpu_us_per_req,
                workers,
                rust.mode,
                rust.server_cpu_us_per_req,
                node.mode,
                node.server_cpu_us_per_req
            );
        }
    }
}

async fn rust_cell(
    mode: Mode,
    workers: usize,
    options: &Options,
    placement: &Placement,
) -> Result<Row> {
    let exe = std::env::current_exe()?;
    let mut command = placement.server_command(exe.as_os_str())?;
    command
        .env(PRIMARY_ENV, format!("{mode}:{workers}"))
        .stdin(Stdio::piped());
    let measured = serve_and_load(command, "the ipc-cluster primary", options).await?;
    Ok(measured.row("ipc-cluster", mode.to_string(), workers, options, placement))
}

async fn node_cell(
    node: &str,
    script: &std::path::Path,
    mode: &str,
    workers: usize,
    options: &Options,
    placement: &Placement,
) -> Result<Row> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut command = placement.server_command(node.as_ref())?;
    command
        .arg(script)
        .arg(workers.to_string())
        .arg(port.to_string())
        .arg(mode);
    let measured = serve_and_load(command, "node's cluster", options).await?;
    Ok(measured.row(
        "node-cluster",
        mode.to_string(),
        workers,
        options,
        placement,
    ))
}

/// What the timed window of one cell gave.
struct Measured {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    errors: u64,
    server_cpu_us_per_req: f64,
    loadgen_cpu_us_per_req: f64,
}

impl Measured {
    fn row(
        self,
        server: &'static str,
        mode: String,
        workers: usize,
        options: &Options,
        placement: &Placement,
    ) -> Row {
        Row {
            server,
            mode,
            workers,
            connections: options.connections,
            requests: options.requests,
            errors: self.errors,
            rps: self.rps,
            p50_us: self.p50_us,
            p99_us: self.p99_us,
            server_cpu_us_per_req: self.server_cpu_us_per_req,
            loadgen_cpu_us_per_req: self.loadgen_cpu_us_per_req,
            placement: placement.name(),
        }
    }
}

/// Start a server (a primary that prints `listening PORT` once its workers listen),
/// load it, stop it with SIGTERM.
async fn serve_and_load(
    mut command: tokio::process::Command,
    what: &str,
    options: &Options,
) -> Result<Measured> {
    let mut child = command
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {what}"))?;
    let pid = child.id().context("the server's pid")?;
    let stdout = child.stdout.take().context("the server's stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let port = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(port) = line.strip_prefix("listening ") {
                return port
                    .trim()
                    .parse::<u16>()
                    .with_context(|| format!("{what} printed a bad port: {line}"));
            }
        }
        Err(anyhow!("{what} exited before its workers listened"))
    })
    .await
    .map_err(|_| anyhow!("{what}: workers did not listen within 30 s"))??;
    let measured = load(SocketAddr::from(([127, 0, 0, 1], port)), pid, options).await;
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    if tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
    measured
}

/// The load generator: `connections` keep-alive HTTP/1.1 connections share
/// `requests` timed requests (after a tenth as many for warm-up). Over the timed
/// window it also takes the CPU time of the server process tree rooted at
/// `server_pid` and of this process (the generator).
async fn load(addr: SocketAddr, server_pid: u32, options: &Options) -> Result<Measured> {
    let warmup = (options.requests / 10).max(1);
    drive(addr, options.connections, warmup).await?;
    let server_before = crate::proc_cpu::tree_cpu_ns(server_pid);
    let loadgen_before = crate::proc_cpu::self_cpu_ns();
    let started = Instant::now();
    let (hist, errors) = drive(addr, options.connections, options.requests).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let loadgen_ns = crate::proc_cpu::self_cpu_ns().saturating_sub(loadgen_before);
    let server_ns = crate::proc_cpu::tree_cpu_ns(server_pid).saturating_sub(server_before);
    let done = hist.len() as f64;
    let per_request_us = |ns: u64| ns as f64 / 1000.0 / done.max(1.0);
    Ok(Measured {
        rps: done / elapsed.max(1e-9),
        p50_us: hist.value_at_quantile(0.5) as f64 / 1000.0,
        p99_us: hist.value_at_quantile(0.99) as f64 / 1000.0,
        errors,
        server_cpu_us_per_req: per_request_us(server_ns),
        loadgen_cpu_us_per_req: per_request_us(loadgen_ns),
    })
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
