//! shared_state: worker processes keep a counter and a session map in the primary,
//! through request/response messages.
//!
//! The idea: processes share no memory. A counter or a login session kept in a
//! worker's variable exists in that worker only, so the next request, served by another
//! worker, would not see it. One answer is to keep the state in one process (the
//! primary) and have workers ask it, one message per operation. In Node this is
//! egg-cluster's agent or a primary that `cluster.on('message')`s and answers with
//! `worker.send()`; here it is `ipc::rpc`: each worker calls, the primary serves every
//! worker's channel with one handler over one shared `State`.
//!
//! What to watch for:
//! - Each worker writes its own session, waits for the others (a barrier in the
//!   primary), then reads the session another worker wrote: a worker sees what another
//!   process stored.
//! - "increment" messages: the primary applies each one whole, so no increment is lost
//!   however the workers interleave.
//! - The racy counter: workers read the value, add one, and write it back, in two
//!   messages. Two workers can read the same value, and one increment overwrites the
//!   other: with several workers some updates are usually lost. Put the operation, not
//!   the value, in the message.
//!
//! When is an external store (Redis, a database) the right answer instead? When the
//! workers run on more than one machine, when the state must outlive the primary (a
//! restart here loses every session), or when the primary becomes the bottleneck: every
//! operation is a round trip through one process. A store like Redis gives the same
//! "one place, atomic operations" (`INCR`, `HSET`) to every process on every machine.
//!
//! ```text
//! cargo run --example shared_state
//! cargo run --example shared_state -- --transport tcp --workers 3 --ops 20
//! ```

use std::collections::HashMap;
use std::process::{Command, ExitCode};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use clap::builder::PossibleValuesParser;
use clap::Parser;
use ipc::codec::{Codec, Json};
use ipc::rpc::{serve, RpcClient};
use ipc::{Capabilities, Role};
use serde::{Deserialize, Serialize};

/// What this demo needs of a transport: spawning workers. Its messages are JSON, so
/// every spawning transport carries them, `node` included.
const NEEDS: Capabilities = Capabilities::NONE.with_spawn(true);

/// How long a worker waits for one answer from the primary before giving up.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Workers keep a counter and sessions in the primary.
#[derive(Parser, Debug)]
struct Args {
    /// Transport between the primary and each worker.
    #[arg(long, default_value = "uds",
          value_parser = PossibleValuesParser::new(ipc::registry().names_with(NEEDS)))]
    transport: String,
    /// Worker processes.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(2..=64))]
    workers: u32,
    /// Increments each worker makes on each counter.
    #[arg(long, default_value_t = 100)]
    ops: u32,
    /// Run as worker number N (the primary starts this program again with it).
    #[arg(long, hide = true)]
    worker: Option<u32>,
}

/// What a worker asks the primary.
#[derive(Debug, Serialize, Deserialize)]
enum Request {
    /// Add one to the counter, in the primary: one message, never lost.
    Increment,
    /// The racy counter's value.
    GetRacy,
    /// Overwrite the racy counter.
    SetRacy(u64),
    /// Store a session.
    PutSession { id: String, user: String },
    /// Look a session up.
    GetSession { id: String },
    /// Wait until every worker has asked this.
    WaitForAll,
    /// What the worker saw, for the primary to print.
    Report(String),
}

/// What the primary answers.
#[derive(Debug, Serialize, Deserialize)]
enum Response {
    Done,
    Value(u64),
    Session(Option<String>),
}

/// The state every worker shares, kept in the primary only.
#[derive(Debug, Default)]
struct State {
    counter: u64,
    racy: u64,
    sessions: HashMap<String, String>,
    reports: Vec<String>,
}

/// The primary's side: one handler for every worker's requests, one `State` for all.
async fn handle(
    state: Arc<Mutex<State>>,
    everyone: Arc<tokio::sync::Barrier>,
    request: Bytes,
) -> Result<Bytes, String> {
    let request: Request = Json::decode(&request).map_err(|e| e.to_string())?;
    let response = if let Request::WaitForAll = request {
        everyone.wait().await;
        Response::Done
    } else {
        // The lock is held for one operation and never across an await.
        let mut state = state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match request {
            Request::Increment => {
                state.counter += 1;
                Response::Value(state.counter)
            }
            Request::GetRacy => Response::Value(state.racy),
            Request::SetRacy(value) => {
                state.racy = value;
                Response::Done
            }
            Request::PutSession { id, user } => {
                state.sessions.insert(id, user);
                Response::Done
            }
            Request::GetSession { id } => Response::Session(state.sessions.get(&id).cloned()),
            Request::Report(text) => {
                state.reports.push(text);
                Response::Done
            }
            Request::WaitForAll => unreachable!("handled above"),
        }
    };
    Json::encode(&response).map_err(|e| e.to_string())
}

/// One worker: count, count racily, log in, wait for the others, look up a session
/// another worker wrote, report.
async fn worker(me: u32, workers: u32, ops: u32) -> ipc::Result<()> {
    let primary = RpcClient::new(ipc::connect_from_env().await?);
    let call = |request: Request| {
        let primary = &primary;
        async move {
            primary
                .call_typed::<Json, Request, Response>(&request, CALL_TIMEOUT)
                .await
        }
    };
    for _ in 0..ops {
        call(Request::Increment).await?;
    }
    for _ in 0..ops {
        // Read, add one, write back: two messages, with other workers in between.
        if let Response::Value(seen) = call(Request::GetRacy).await? {
            call(Request::SetRacy(seen + 1)).await?;
        }
    }
    call(Request::PutSession {
        id: format!("sess-{me}"),
        user: format!("user-{me}"),
    })
    .await?;
    call(Request::WaitForAll).await?;
    let other = (me + 1) % workers;
    let found = match call(Request::GetSession {
        id: format!("sess-{other}"),
    })
    .await?
    {
        Response::Session(Some(user)) => {
            format!("found sess-{other} = {user} (written by worker {other})")
        }
        _ => format!("did not find sess-{other}"),
    };
    let report = format!("worker {me} (pid {}): {found}", std::process::id());
    call(Request::Report(report)).await?;
    primary.close().await
}

async fn primary(args: &Args) -> ipc::Result<bool> {
    let transport = ipc::registry().get_with(&args.transport, NEEDS)?;
    let state = Arc::new(Mutex::new(State::default()));
    let everyone = Arc::new(tokio::sync::Barrier::new(args.workers as usize));
    println!(
        "primary {}: {} workers over {}, {} operations on each counter per worker",
        std::process::id(),
        args.workers,
        args.transport,
        args.ops
    );
    let mut children = Vec::new();
    let mut servers = Vec::new();
    for n in 0..args.workers {
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.args(["--workers", &args.workers.to_string()])
            .args(["--ops", &args.ops.to_string()])
            .args(["--worker", &n.to_string()]);
        let (child, ch) = transport.spawn(cmd, &ipc::Options::default()).await?;
        let (state, everyone) = (state.clone(), everyone.clone());
        servers.push(tokio::spawn(serve(ch, move |request| {
            handle(state.clone(), everyone.clone(), request)
        })));
        children.push(child);
    }
    let mut all_ok = true;
    for server in servers {
        if let Err(e) = server.await.map_err(std::io::Error::other)? {
            println!("primary: a worker's channel failed: {e}");
            all_ok = false;
        }
    }
    for mut child in children {
        let status = child.wait().await?;
        if !status.success() {
            println!("primary: worker {} exited: {status}", child.pid());
            all_ok = false;
        }
    }
    let state = state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut reports = state.reports.clone();
    reports.sort();
    for report in &reports {
        println!("{report}");
    }
    let expected = u64::from(args.workers) * u64::from(args.ops);
    println!(
        "counter (one \"increment\" message each): {} of {expected}, {}",
        state.counter,
        if state.counter == expected {
            "none lost".to_string()
        } else {
            format!("{} lost", expected - state.counter)
        }
    );
    println!(
        "racy counter (read, add one, write back): {} of {expected}, {} lost to overwrites",
        state.racy,
        expected.saturating_sub(state.racy)
    );
    println!(
        "sessions in the primary: {}; all workers exited 0: {all_ok}",
        state.sessions.len()
    );
    println!(
        "note: across machines, or to survive a primary restart, keep this state in an \
         external store such as Redis instead"
    );
    let everyone_found = reports.iter().filter(|r| r.contains(": found")).count();
    Ok(all_ok
        && state.counter == expected
        && state.sessions.len() == args.workers as usize
        && everyone_found == args.workers as usize)
}

fn main() -> ExitCode {
    ipc::run(run())
}

async fn run() -> ExitCode {
    let args = Args::parse();
    if ipc::role() == Role::Child {
        let me = args.worker.unwrap_or(0);
        return match worker(me, args.workers, args.ops).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("shared_state worker {me}: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match primary(&args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("shared_state: {e}");
            ExitCode::FAILURE
        }
    }
}
