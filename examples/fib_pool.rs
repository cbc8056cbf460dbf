//! fib_pool: spread slow jobs over worker processes, collect the results by message, and
//! compare with doing them one after another.
//!
//! The idea: one process uses one CPU at a time for its computation; a pool of worker
//! processes uses them all. The primary keeps the job queue; each worker takes the next
//! job when it is free and sends back its result as a message. This is the seeds'
//! `cluster` demo: the primary `fork()`s workers and `worker.send({ n })`s them jobs
//! (fib(44), fib(42), fib(42), fib(43)), and each worker answers with
//! `process.send({ n, result })`.
//!
//! What to watch for:
//! - The per-job lines: which worker (pid) took which job, how long the worker computed
//!   it, and when it came back. A free worker takes the next job, so the long fib(44)
//!   does not hold up the others.
//! - The speed-up: the pool's wall time against the same jobs done one after another in
//!   the primary. It approaches the number of CPUs (printed) when there are at least as
//!   many jobs as CPUs; more workers than CPUs only share them. With `--smaller` the
//!   jobs become so short that starting and messaging cost more than they save.
//! - A progress bar on stderr while the jobs run (only on a terminal).
//!
//! ```text
//! cargo run --example fib_pool                       # fib(44), fib(42), fib(42), fib(43)
//! cargo run --example fib_pool -- --transport tcp --workers 2 --smaller 18
//! ```

use std::collections::VecDeque;
use std::process::{Command, ExitCode};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::builder::PossibleValuesParser;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use ipc::codec::Json;
use ipc::human;
use ipc::prelude::*;
use ipc::{Capabilities, Role, TypedChannel};
use serde::{Deserialize, Serialize};

/// What this demo needs of a transport: spawning workers. Its messages are JSON, so
/// every spawning transport carries them, `node` included.
const NEEDS: Capabilities = Capabilities::NONE.with_spawn(true);

/// The seeds' jobs: fib(44), fib(42), fib(42), fib(43).
const JOBS: [u32; 4] = [44, 42, 42, 43];

/// Spread fib jobs over worker processes and compare with one process.
#[derive(Parser, Debug)]
struct Args {
    /// Transport between the primary and each worker.
    #[arg(long, default_value = "uds",
          value_parser = PossibleValuesParser::new(ipc::registry().names_with(NEEDS)))]
    transport: String,
    /// Worker processes.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    workers: u32,
    /// Make every job smaller by this much: fib(44 - N), ... (each step is ~1.6x less work).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=40))]
    smaller: u32,
}

/// Primary to worker: compute fib(n).
#[derive(Debug, Serialize, Deserialize)]
struct Job {
    n: u32,
}

/// Worker to primary: the answer, and how long the worker spent on it.
#[derive(Debug, Serialize, Deserialize)]
struct Answer {
    n: u32,
    value: u64,
    micros: u64,
    pid: u32,
}

/// The n-th Fibonacci number, the slow way on purpose: a job that keeps a CPU busy.
fn fib(n: u32) -> u64 {
    if n < 2 {
        u64::from(n)
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

/// A worker: compute every job the primary sends until it closes the channel.
async fn worker() -> ipc::Result<()> {
    let ch = ipc::connect_from_env().await?;
    let mut primary: TypedChannel<Job, Answer, Json> = TypedChannel::new(ch);
    while let Some(Job { n }) = primary.recv().await? {
        let start = Instant::now();
        let value = fib(n);
        let micros = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        let pid = std::process::id();
        primary
            .send(Answer {
                n,
                value,
                micros,
                pid,
            })
            .await?;
    }
    Ok(primary.into_inner().close().await?)
}

/// One finished job, as the primary saw it.
#[derive(Debug)]
struct Finished {
    worker: u32,
    answer: Answer,
    /// From the start of the pool to this answer's arrival.
    at: Duration,
}

/// Drive one worker: take jobs from the shared queue until it is empty, then close.
async fn feed_worker(
    worker: u32,
    mut ch: TypedChannel<Answer, Job, Json>,
    queue: Arc<Mutex<VecDeque<u32>>>,
    start: Instant,
    done: tokio::sync::mpsc::UnboundedSender<Finished>,
) -> ipc::Result<()> {
    loop {
        let next = queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop_front();
        let Some(n) = next else { break };
        ch.send(Job { n }).await?;
        let answer = ch
            .recv()
            .await?
            .ok_or_else(|| ipc::Error::PeerLost(format!("worker {worker} closed mid-job")))?;
        let at = start.elapsed();
        let _ = done.send(Finished { worker, answer, at });
    }
    // No more jobs: say goodbye, and wait for the worker's goodbye in turn.
    let mut ch = ch.into_inner();
    ch.close().await?;
    while ch.recv().await?.is_some() {}
    Ok(())
}

fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {msg} [{bar:20}] {pos}/{len} jobs, {elapsed}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

async fn primary(args: &Args) -> ipc::Result<bool> {
    let jobs: Vec<u32> = JOBS
        .iter()
        .map(|n| n.saturating_sub(args.smaller).max(1))
        .collect();
    let transport = ipc::registry().get_with(&args.transport, NEEDS)?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let listed: Vec<String> = jobs.iter().map(|n| format!("fib({n})")).collect();
    println!(
        "jobs: {}; {} workers over {}; {cpus} CPUs",
        listed.join(", "),
        args.workers,
        args.transport
    );

    // Start the workers first, so the pool's time is the jobs' time.
    let mut children = Vec::new();
    let mut channels = Vec::new();
    for _ in 0..args.workers {
        let (child, ch) = transport
            .spawn(
                Command::new(std::env::current_exe()?),
                &ipc::Options::default(),
            )
            .await?;
        children.push(child);
        channels.push(TypedChannel::<Answer, Job, Json>::new(ch));
    }
    let queue = Arc::new(Mutex::new(jobs.iter().copied().collect::<VecDeque<_>>()));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let bar = progress(jobs.len() as u64, "pool");
    let start = Instant::now();
    let mut feeders = Vec::new();
    for (i, ch) in channels.into_iter().enumerate() {
        let worker = u32::try_from(i + 1).unwrap_or(u32::MAX);
        feeders.push(tokio::spawn(feed_worker(
            worker,
            ch,
            queue.clone(),
            start,
            done_tx.clone(),
        )));
    }
    drop(done_tx);
    let mut finished = Vec::new();
    while let Some(f) = done_rx.recv().await {
        bar.inc(1);
        bar.suspend(|| {
            println!(
                "worker {} (pid {}): fib({}) = {} computed in {}, back at {}",
                f.worker,
                f.answer.pid,
                f.answer.n,
                f.answer.value,
                human::duration(Duration::from_micros(f.answer.micros)),
                human::duration(f.at)
            )
        });
        finished.push(f);
    }
    let pool_time = start.elapsed();
    bar.finish_and_clear();
    let mut all_ok = true;
    for feeder in feeders {
        if let Err(e) = feeder.await.map_err(std::io::Error::other)? {
            println!("a worker failed: {e}");
            all_ok = false;
        }
    }
    for mut child in children {
        all_ok &= child.wait().await?.success();
    }
    for worker in 1..=args.workers {
        let mine: Vec<&Finished> = finished.iter().filter(|f| f.worker == worker).collect();
        let busy: u64 = mine.iter().map(|f| f.answer.micros).sum();
        println!(
            "worker {worker}: {} job(s), busy {}",
            mine.len(),
            human::duration(Duration::from_micros(busy))
        );
    }

    // The same jobs, one after another, in this process.
    let bar = progress(jobs.len() as u64, "sequential");
    let start = Instant::now();
    let mut expected = std::collections::HashMap::new();
    for &n in &jobs {
        expected.insert(n, fib(n));
        bar.inc(1);
    }
    let sequential_time = start.elapsed();
    bar.finish_and_clear();
    println!(
        "pool of {}: {}; one after another in the primary: {}; speed-up {:.2}x on {cpus} CPUs",
        args.workers,
        human::duration(pool_time),
        human::duration(sequential_time),
        sequential_time.as_secs_f64() / pool_time.as_secs_f64().max(1e-9)
    );
    let matching = finished
        .iter()
        .filter(|f| expected.get(&f.answer.n) == Some(&f.answer.value))
        .count();
    println!(
        "{matching} of {} results match the primary's; all workers exited 0: {all_ok}",
        jobs.len()
    );
    Ok(matching == jobs.len() && all_ok)
}

fn main() -> ExitCode {
    ipc::run(run())
}

async fn run() -> ExitCode {
    if ipc::role() == Role::Child {
        return match worker().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("fib_pool worker: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match primary(&Args::parse()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("fib_pool: {e}");
            ExitCode::FAILURE
        }
    }
}
