//! compute_offload: an HTTP server with a slow `/compute?n=42` (Fibonacci) and a fast
//! `/ping`, run three ways, to show what a long computation does to a server's event
//! loop and how a thread or a worker process keeps the server answering.
//!
//! The idea: an event-loop server handles every request on one thread. A handler that
//! computes for seconds holds that thread, so every other request, even `/ping`, waits
//! for it. In Node, `app.get('/compute', (req, res) => res.send(fib(n)))` stalls the whole
//! server; the fixes are a `worker_threads` `Worker` (another thread in the same
//! process) or a `child_process.fork()`ed worker that gets `{ n }` by message and
//! answers with the result (another process).
//!
//! Here the server runs on its own thread with a single-threaded tokio runtime: one
//! event loop, like Node's. `--mode` picks how `/compute` runs:
//! - `inline`: in the handler, on the event loop (the blocking mistake);
//! - `thread`: `tokio::task::spawn_blocking`, on a thread pool (like `worker_threads`);
//! - `process`: a worker process, asked over `--transport` with `ipc::rpc` (like `fork`).
//!
//! The demo is its own client (hyper, no external tools): it sends `/compute`, waits
//! until the server says the computation has started, then times a `/ping`.
//!
//! What to watch for:
//! - `inline`: `/ping` takes about as long as `/compute`, and its answer says no
//!   computation was running any more: it could only be answered after.
//! - `thread` and `process`: `/ping` comes back in a millisecond or so, answered while the
//!   computation was still running (unless `--n` is so small that it had already ended).
//! - `process` also names the worker's pid and transport. A process costs more to start
//!   than a thread but shares nothing: if it crashes the server lives on.
//!
//! ```text
//! cargo run --example compute_offload                 # fib(42), all three modes
//! cargo run --example compute_offload -- --mode process --transport tcp --n 35
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::builder::PossibleValuesParser;
use clap::{Parser, ValueEnum};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use indicatif::ProgressBar;
use ipc::codec::{Codec, Json};
use ipc::human;
use ipc::rpc::RpcClient;
use ipc::{Capabilities, Role};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, Notify};

/// What the process mode needs of a transport: spawning the worker. Its messages are
/// JSON numbers, so every spawning transport carries them, `node` included.
const NEEDS: Capabilities = Capabilities::NONE.with_spawn(true);

/// How long the process mode waits for the worker's answer.
const WORKER_TIMEOUT: Duration = Duration::from_secs(600);

/// Where `/compute` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// In the request handler, blocking the event loop.
    Inline,
    /// On tokio's blocking thread pool (`spawn_blocking`), like Node's `worker_threads`.
    Thread,
    /// In a worker process over `--transport`, like Node's `fork()`.
    Process,
}

/// A slow /compute and a fast /ping, with the computation inline, on a thread, or in a
/// worker process.
#[derive(Parser, Debug)]
struct Args {
    /// Modes to run, one after another (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',',
          default_values_t = [Mode::Inline, Mode::Thread, Mode::Process])]
    mode: Vec<Mode>,
    /// Transport to the worker process (`--mode process`).
    #[arg(long, default_value = "uds",
          value_parser = PossibleValuesParser::new(ipc::registry().names_with(NEEDS)))]
    transport: String,
    /// The Fibonacci number `/compute` asks for (each step up is ~1.6x the work).
    #[arg(long, default_value_t = 42, value_parser = clap::value_parser!(u32).range(1..=60))]
    n: u32,
}

/// The n-th Fibonacci number, the slow way on purpose: a request that keeps a CPU busy.
fn fib(n: u32) -> u64 {
    if n < 2 {
        u64::from(n)
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

/// What the server's handlers share.
struct App {
    mode: Mode,
    /// The worker process, in `process` mode.
    worker: Option<RpcClient>,
    /// Computations running right now (what `/ping` reports).
    running: AtomicU32,
    /// Told when a computation starts, so the client times `/ping` during it.
    started: Arc<Notify>,
}

fn reply(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response
}

/// The `n` of a `/compute?n=42` query.
fn query_n(req: &Request<Incoming>) -> Option<u32> {
    req.uri()
        .query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("n="))?
        .parse()
        .ok()
}

async fn handle(
    app: Arc<App>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(match req.uri().path() {
        "/ping" => {
            let running = app.running.load(Ordering::SeqCst);
            reply(
                StatusCode::OK,
                format!("pong ({running} computation(s) running)"),
            )
        }
        "/compute" => match query_n(&req) {
            Some(n) if n <= 60 => {
                app.running.fetch_add(1, Ordering::SeqCst);
                app.started.notify_one();
                let result = compute(&app, n).await;
                app.running.fetch_sub(1, Ordering::SeqCst);
                match result {
                    Ok(value) => reply(StatusCode::OK, format!("fib({n}) = {value}")),
                    Err(e) => reply(StatusCode::INTERNAL_SERVER_ERROR, e),
                }
            }
            _ => reply(
                StatusCode::BAD_REQUEST,
                "use /compute?n=N with N <= 60".into(),
            ),
        },
        _ => reply(StatusCode::NOT_FOUND, "try /compute?n=42 or /ping".into()),
    })
}

/// fib(n), wherever this server's mode says.
async fn compute(app: &App, n: u32) -> Result<u64, String> {
    match (app.mode, &app.worker) {
        // Runs right here: nothing else on this event loop runs until it returns.
        (Mode::Inline, _) => Ok(fib(n)),
        (Mode::Thread, _) => tokio::task::spawn_blocking(move || fib(n))
            .await
            .map_err(|e| format!("the computing thread failed: {e}")),
        (Mode::Process, Some(worker)) => worker
            .call_typed::<Json, u32, u64>(&n, WORKER_TIMEOUT)
            .await
            .map_err(|e| format!("the worker process failed: {e}")),
        (Mode::Process, None) => Err("no worker process".into()),
    }
}

/// The server's event loop: accept connections and serve them until `stop`. Returns a
/// line about the worker process, if there was one.
async fn serve(
    mode: Mode,
    transport: String,
    started: Arc<Notify>,
    ready: oneshot::Sender<Result<(SocketAddr, Option<String>), String>>,
    mut stop: oneshot::Receiver<()>,
) -> Result<(), String> {
    let setup = async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let (worker, child) = if mode == Mode::Process {
            let transport = ipc::registry().get_with(&transport, NEEDS)?;
            let exe = std::env::current_exe()?;
            let (child, ch) = transport
                .spawn(std::process::Command::new(exe), &ipc::Options::default())
                .await?;
            (Some(RpcClient::new(ch)), Some(child))
        } else {
            (None, None)
        };
        Ok((listener, worker, child))
    };
    let setup: ipc::Result<_> = setup.await;
    let (listener, worker, mut child) = match setup {
        Ok(parts) => parts,
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            return Err(e.to_string());
        }
    };
    let about_worker = child
        .as_ref()
        .map(|c| format!("worker pid {} over {transport}", c.pid()));
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let _ = ready.send(Ok((addr, about_worker)));
    let app = Arc::new(App {
        mode,
        worker,
        running: AtomicU32::new(0),
        started,
    });
    loop {
        let stream = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => return Err(format!("accept failed: {e}")),
            },
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |req| handle(app.clone(), req));
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
    if let (Some(worker), Some(child)) = (&app.worker, &mut child) {
        worker.close().await.map_err(|e| e.to_string())?;
        let status = child.wait().await.map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("the worker process exited: {status}"));
        }
    }
    Ok(())
}

/// One HTTP GET on a fresh connection: (status, body).
async fn get(addr: SocketAddr, path: &str) -> Result<(StatusCode, String), String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let request = Request::get(path)
        .header(hyper::header::HOST, addr.to_string())
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// What one mode showed.
struct Outcome {
    compute: String,
    compute_time: Duration,
    ping: String,
    ping_time: Duration,
    worker: Option<String>,
}

/// Start a server in `mode` on its own thread, fire `/compute`, time `/ping` during it.
async fn run_mode(mode: Mode, args: &Args) -> Result<Outcome, String> {
    let started = Arc::new(Notify::new());
    let (ready_tx, ready_rx) = oneshot::channel();
    let (stop_tx, stop_rx) = oneshot::channel();
    let server = {
        let (started, transport) = (started.clone(), args.transport.clone());
        std::thread::spawn(move || {
            // The server's one event loop, like Node's.
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot build the server's runtime: {e}"))?;
            runtime.block_on(serve(mode, transport, started, ready_tx, stop_rx))
        })
    };
    let (addr, worker) = ready_rx
        .await
        .map_err(|_| "the server thread ended before listening".to_string())??;

    let spinner = ProgressBar::new_spinner();
    spinner.set_message(format!("{mode:?}: computing fib({})", args.n));
    spinner.enable_steady_tick(Duration::from_millis(100));
    let compute_start = Instant::now();
    let path = format!("/compute?n={}", args.n);
    let compute = tokio::spawn(async move {
        let answer = get(addr, &path).await;
        (answer, compute_start.elapsed())
    });
    started.notified().await; // the server has begun computing
    let ping_start = Instant::now();
    let (ping_status, ping) = get(addr, "/ping").await?;
    let ping_time = ping_start.elapsed();
    let (answer, compute_time) = compute.await.map_err(|e| e.to_string())?;
    let (compute_status, compute) = answer?;
    spinner.finish_and_clear();

    let _ = stop_tx.send(());
    server
        .join()
        .map_err(|_| "the server thread panicked".to_string())??;
    if !compute_status.is_success() || !ping_status.is_success() {
        return Err(format!(
            "/compute: {compute_status} {compute}; /ping: {ping_status} {ping}"
        ));
    }
    Ok(Outcome {
        compute,
        compute_time,
        ping,
        ping_time,
        worker,
    })
}

async fn parent(args: Args) -> Result<(), String> {
    println!(
        "GET /compute?n={}, then GET /ping while it computes, once per mode:",
        args.n
    );
    let expected = format!("fib({}) = {}", args.n, fib(args.n));
    for &mode in &args.mode {
        let outcome = run_mode(mode, &args).await?;
        let when = if outcome.ping.starts_with("pong (0 ") {
            "after the computation ended"
        } else {
            "while the computation ran"
        };
        let worker = outcome
            .worker
            .map(|w| format!(" ({w})"))
            .unwrap_or_default();
        println!(
            "{:<8} /compute: {} in {}; /ping: {} in {}, answered {when}{worker}",
            format!("{mode:?}").to_lowercase(),
            outcome.compute,
            human::duration(outcome.compute_time),
            outcome.ping,
            human::duration(outcome.ping_time),
        );
        if outcome.compute != expected {
            return Err(format!("expected {expected:?}, got {:?}", outcome.compute));
        }
    }
    Ok(())
}

/// The worker process: answer `n` with fib(n) until the server closes the channel.
async fn worker() -> ipc::Result<()> {
    let server = ipc::connect_from_env().await?;
    ipc::rpc::serve(server, |request: Bytes| async move {
        let n: u32 = Json::decode(&request).map_err(|e| e.to_string())?;
        Json::encode(&fib(n)).map_err(|e| e.to_string())
    })
    .await
}

fn main() -> ExitCode {
    ipc::run(run())
}

async fn run() -> ExitCode {
    if ipc::role() == Role::Child {
        return match worker().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("compute_offload worker: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match parent(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("compute_offload: {e}");
            ExitCode::FAILURE
        }
    }
}
