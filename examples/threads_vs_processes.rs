//! threads_vs_processes: the same workers as threads and as processes, measured side by
//! side: start-up cost, memory per worker, the same work, and what a crash takes down.
//!
//! The idea: threads share one process (one memory, cheap to start, and one fate),
//! processes share nothing (their own memory, dearer to start, and a crash stays
//! inside). Node's docs put it as `worker_threads` (for CPU work, sharing memory
//! through `SharedArrayBuffer`) against `child_process` / `cluster` (isolation, one
//! crash does not kill the server); this demo turns that comparison table into numbers.
//!
//! Threads get their jobs over `std::sync::mpsc`; processes over `--transport`, with the
//! same messages as JSON. Every worker computes fib(`--n`).
//!
//! What to watch for:
//! - start-up: a thread starts in microseconds; a process (fork, exec, a runtime, a
//!   channel handshake) in milliseconds.
//! - memory: a thread adds little to this process's RSS (its stack is touched lazily);
//!   each process has its own RSS. RSS counts shared library pages in every process;
//!   PSS (from `/proc/PID/smaps_rollup`) splits them between the processes that share
//!   them, so it is the fairer "cost per process".
//! - same work: about the same wall time, since the CPUs do the same computing either way.
//! - crash: worker 2 runs the same `panic!` in both. The panicking thread is caught when
//!   it is joined and this process lives on (a thread that segfaults or aborts would
//!   take every thread with it). The panicking process exits 101; its channel reports
//!   the peer lost; the other processes never notice.
//!
//! ```text
//! cargo run --example threads_vs_processes
//! cargo run --example threads_vs_processes -- --transport tcp --workers 2 --n 25
//! ```

use std::process::{Command, ExitCode};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::builder::PossibleValuesParser;
use clap::Parser;
use indicatif::ProgressBar;
use ipc::codec::Json;
use ipc::human;
use ipc::prelude::*;
use ipc::{Capabilities, Role, TypedChannel};
use serde::{Deserialize, Serialize};

/// What this demo needs of a transport: spawning workers. Its messages are JSON, so
/// every spawning transport carries them, `node` included.
const NEEDS: Capabilities = Capabilities::NONE.with_spawn(true);

/// The worker (counting from 1) that panics in the crash part.
const CRASHING_WORKER: usize = 2;

/// The same workers as threads and as processes, measured.
#[derive(Parser, Debug)]
struct Args {
    /// Transport between this process and each worker process.
    #[arg(long, default_value = "uds",
          value_parser = PossibleValuesParser::new(ipc::registry().names_with(NEEDS)))]
    transport: String,
    /// Workers of each kind.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(2..=64))]
    workers: u32,
    /// Each worker computes fib(N) (each step up is ~1.6x the work).
    #[arg(long, default_value_t = 34, value_parser = clap::value_parser!(u32).range(1..=50))]
    n: u32,
}

/// To a worker.
#[derive(Debug, Serialize, Deserialize)]
enum Job {
    /// Compute fib(n) and answer.
    Fib(u32),
    /// Panic, to show what a crash takes down.
    Panic,
}

/// From a worker.
#[derive(Debug, Serialize, Deserialize)]
enum Report {
    /// Started and waiting for jobs.
    Ready,
    /// fib(n) = value.
    Done(u32, u64),
}

/// The n-th Fibonacci number, the slow way on purpose: work that keeps a CPU busy.
fn fib(n: u32) -> u64 {
    if n < 2 {
        u64::from(n)
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

/// What a worker does with a job, thread or process alike.
fn work(worker: usize, job: Job) -> Report {
    match job {
        Job::Fib(n) => Report::Done(n, fib(n)),
        Job::Panic => panic!("worker {worker}: boom"),
    }
}

/// A `kB` field (`VmRSS:`, `Pss:`) of a `/proc` file, in bytes.
fn proc_kb(path: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Resident memory of process `pid` (RSS), in bytes.
fn rss(pid: u32) -> Option<u64> {
    proc_kb(&format!("/proc/{pid}/status"), "VmRSS:")
}

/// Proportional memory of process `pid` (PSS: shared pages split), in bytes.
fn pss(pid: u32) -> Option<u64> {
    proc_kb(&format!("/proc/{pid}/smaps_rollup"), "Pss:")
}

fn show(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "unknown".into(), human::bytes)
}

fn spinner(what: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_message(what.to_string());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// What one kind of worker measured.
struct Measured {
    startup_each: Duration,
    memory: String,
    work: Duration,
    answers: usize,
}

/// Threads: start `workers`, measure, give each fib(n), collect and check against
/// `expected`.
fn with_threads(workers: usize, n: u32, expected: u64) -> Result<Measured, String> {
    let me = std::process::id();
    let before = rss(me);
    let (reports_tx, reports) = mpsc::channel::<(usize, Report)>();
    let mut jobs = Vec::new();
    let mut handles = Vec::new();
    let start = Instant::now();
    for worker in 1..=workers {
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let reports_tx = reports_tx.clone();
        handles.push(std::thread::spawn(move || {
            let _ = reports_tx.send((worker, Report::Ready));
            for job in job_rx {
                let _ = reports_tx.send((worker, work(worker, job)));
            }
        }));
        jobs.push(job_tx);
    }
    for _ in 0..workers {
        reports
            .recv()
            .map_err(|_| "a thread ended before it was ready")?;
    }
    let startup_each = start.elapsed() / workers as u32;
    let after = rss(me);
    let per_thread = before
        .zip(after)
        .map(|(b, a)| a.saturating_sub(b) / workers as u64);
    let memory = format!("+{} each (this process's RSS)", show(per_thread));

    let start = Instant::now();
    for job in &jobs {
        job.send(Job::Fib(n)).map_err(|_| "a thread is gone")?;
    }
    let mut answers = 0;
    for _ in 0..workers {
        if let Ok((_, Report::Done(m, value))) = reports.recv() {
            answers += usize::from(m == n && value == expected);
        }
    }
    let work = start.elapsed();
    drop(jobs); // each thread's job loop ends
    for handle in handles {
        handle.join().map_err(|_| "a thread panicked")?;
    }
    Ok(Measured {
        startup_each,
        memory,
        work,
        answers,
    })
}

type Worker = (ipc::Child, TypedChannel<Report, Job, Json>);

/// Start `workers` processes over `transport` and wait until each says it is ready.
async fn start_processes(transport: &str, workers: usize) -> ipc::Result<Vec<Worker>> {
    let transport = ipc::registry().get_with(transport, NEEDS)?;
    let mut started = Vec::new();
    for worker in 1..=workers {
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.env("THREADS_VS_PROCESSES_WORKER", worker.to_string());
        let (child, ch) = transport.spawn(cmd, &ipc::Options::default()).await?;
        started.push((child, TypedChannel::new(ch)));
    }
    for (child, ch) in &mut started {
        match ch.recv().await? {
            Some(Report::Ready) => {}
            other => {
                return Err(ipc::Error::Handshake(format!(
                    "worker pid {} did not say ready: {other:?}",
                    child.pid()
                )))
            }
        }
    }
    Ok(started)
}

/// Close every worker's channel (waiting for its goodbye) and check it exited 0.
async fn stop_processes(started: Vec<Worker>) -> ipc::Result<bool> {
    let mut all_ok = true;
    for (mut child, ch) in started {
        let mut ch = ch.into_inner();
        ch.close().await?;
        while ch.recv().await?.is_some() {}
        all_ok &= child.wait().await?.success();
    }
    Ok(all_ok)
}

/// Processes: start `workers`, measure, give each fib(n), collect and check against
/// `expected`.
async fn with_processes(
    transport: &str,
    workers: usize,
    n: u32,
    expected: u64,
) -> ipc::Result<Measured> {
    let start = Instant::now();
    let mut started = start_processes(transport, workers).await?;
    let startup_each = start.elapsed() / workers as u32;
    let count = workers as u64;
    let sum = |f: fn(u32) -> Option<u64>| -> Option<u64> {
        started.iter().map(|(c, _)| f(c.pid())).sum::<Option<u64>>()
    };
    let memory = format!(
        "{} each (RSS), {} each (PSS)",
        show(sum(rss).map(|b| b / count)),
        show(sum(pss).map(|b| b / count))
    );

    let start = Instant::now();
    for (_, ch) in &mut started {
        ch.send(Job::Fib(n)).await?;
    }
    let mut answers = 0;
    for (_, ch) in &mut started {
        if let Some(Report::Done(m, value)) = ch.recv().await? {
            answers += usize::from(m == n && value == expected);
        }
    }
    let work = start.elapsed();
    if !stop_processes(started).await? {
        return Err(std::io::Error::other("a worker process did not exit 0").into());
    }
    Ok(Measured {
        startup_each,
        memory,
        work,
        answers,
    })
}

/// The crash part with threads: worker 2 panics; the others finish; we live on.
fn crash_threads(workers: usize, n: u32) -> String {
    let handles: Vec<_> = (1..=workers)
        .map(|worker| {
            std::thread::Builder::new()
                .name(format!("worker-{worker}"))
                .spawn(move || {
                    let job = if worker == CRASHING_WORKER {
                        Job::Panic
                    } else {
                        Job::Fib(n)
                    };
                    work(worker, job)
                })
        })
        .collect();
    let mut finished = 0;
    let mut caught = String::from("nothing");
    for handle in handles {
        match handle.map_err(|e| e.to_string()).and_then(|h| {
            h.join().map_err(|panic| {
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_else(|| "a panic".into())
            })
        }) {
            Ok(_) => finished += 1,
            Err(why) => caught = why,
        }
    }
    format!(
        "a panicking thread: caught at join ({caught:?}); {finished} of {} others finished; \
         this process lives on",
        workers - 1
    )
}

/// The crash part with processes: worker 2 panics and exits; the others never notice.
async fn crash_processes(transport: &str, workers: usize, n: u32) -> ipc::Result<String> {
    let mut started = start_processes(transport, workers).await?;
    for (i, (_, ch)) in started.iter_mut().enumerate() {
        let job = if i + 1 == CRASHING_WORKER {
            Job::Panic
        } else {
            Job::Fib(n)
        };
        ch.send(job).await?;
    }
    let (mut finished, mut seen) = (0, String::new());
    let mut crashed = started.remove(CRASHING_WORKER - 1);
    for (_, ch) in &mut started {
        if let Some(Report::Done(..)) = ch.recv().await? {
            finished += 1;
        }
    }
    match crashed.1.recv().await {
        Err(ipc::RecvError::PeerLost(_)) => seen.push_str("its channel reported the peer lost"),
        other => seen.push_str(&format!("its channel said {other:?}")),
    }
    let status = crashed.0.wait().await?;
    let others_ok = stop_processes(started).await?;
    Ok(format!(
        "a panicking process: {seen}, {status}; {finished} of {} others finished{}",
        workers - 1,
        if others_ok { " and exited 0" } else { "" }
    ))
}

/// A worker process: say ready, then do jobs until the parent closes.
async fn worker_process() -> ipc::Result<()> {
    let worker: usize = std::env::var("THREADS_VS_PROCESSES_WORKER")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(0);
    let ch = ipc::connect_from_env().await?;
    let mut parent: TypedChannel<Job, Report, Json> = TypedChannel::new(ch);
    parent.send(Report::Ready).await?;
    while let Some(job) = parent.recv().await? {
        // A Job::Panic unwinds out of here: the process exits 101 without closing.
        parent.send(work(worker, job)).await?;
    }
    Ok(parent.into_inner().close().await?)
}

async fn parent(args: Args) -> Result<bool, Box<dyn std::error::Error>> {
    let workers = args.workers as usize;
    let cpus = std::thread::available_parallelism().map_or(1, |c| c.get());
    println!(
        "{workers} threads vs {workers} processes (over {}), fib({}) each, {cpus} CPUs",
        args.transport, args.n
    );
    let expected = fib(args.n);
    let bar = spinner("threads");
    let threads = with_threads(workers, args.n, expected)?;
    bar.set_message("processes");
    let processes = with_processes(&args.transport, workers, args.n, expected).await?;
    bar.set_message("crashes");
    let thread_crash = crash_threads(workers, args.n);
    let process_crash = crash_processes(&args.transport, workers, args.n).await?;
    bar.finish_and_clear();
    let t = human::duration;
    println!(
        "start-up:  threads {} each; processes {} each",
        t(threads.startup_each),
        t(processes.startup_each)
    );
    println!(
        "memory:    threads {}; processes {}",
        threads.memory, processes.memory
    );
    println!(
        "same work: threads {} ({} of {workers} right); processes {} ({} of {workers} right)",
        t(threads.work),
        threads.answers,
        t(processes.work),
        processes.answers
    );
    println!("crash:     {thread_crash}");
    println!("crash:     {process_crash}");
    Ok(threads.answers == workers && processes.answers == workers)
}

fn main() -> ExitCode {
    // One line per panic (which thread, which process, what), not a backtrace: the
    // crash part panics on purpose.
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let why = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("a panic");
        eprintln!(
            "panic in thread {:?} of pid {}: {why}",
            thread.name().unwrap_or("unnamed"),
            std::process::id()
        );
    }));
    ipc::run(run())
}

async fn run() -> ExitCode {
    if ipc::role() == Role::Child {
        return match worker_process().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("threads_vs_processes worker: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match parent(Args::parse()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("threads_vs_processes: {e}");
            ExitCode::FAILURE
        }
    }
}
