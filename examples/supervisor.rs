//! supervisor: pm2's restart semantics on a child that crashes on a schedule. It
//! crashes at once, is restarted with exponential backoff (x1.5), and after the limit
//! of unstable restarts the supervisor gives up; then the event log is printed.
//!
//! ```text
//! cargo run --example supervisor                      # 5 restarts, backoff from 100 ms
//! cargo run --example supervisor -- --max-restarts 3 --backoff-ms 20
//! ```

use std::process::Command;
use std::time::Duration;

use clap::Parser;
use ipc::cluster::{Config, Event, Supervisor};

/// Supervise a crashing child the way pm2 would.
#[derive(Parser, Debug)]
struct Args {
    /// Unstable restarts before giving up (pm2's max_restarts).
    #[arg(long, default_value_t = 5)]
    max_restarts: u32,
    /// First backoff delay in milliseconds (pm2's exp_backoff_restart_delay).
    #[arg(long, default_value_t = 100)]
    backoff_ms: u64,
}

/// Set in the child: it crashes after this many milliseconds.
const CRASH_AFTER: &str = "SUPERVISOR_DEMO_CRASH_AFTER_MS";

#[tokio::main]
async fn main() {
    if let Ok(ms) = std::env::var(CRASH_AFTER) {
        let ms: u64 = ms.parse().unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        eprintln!("child {}: crashing on schedule", std::process::id());
        std::process::exit(1);
    }
    let args = Args::parse();
    let config = Config::builder()
        .max_restarts(args.max_restarts)
        .exp_backoff(Duration::from_millis(args.backoff_ms))
        .build();
    let exe = std::env::current_exe().expect("the path of this program");
    let mut sup = Supervisor::start(config, move || {
        let mut command = Command::new(&exe);
        command.env(CRASH_AFTER, "10");
        command
    });
    let mut log = Vec::new();
    while let Some(event) = sup.next_event().await {
        log.push(event);
    }
    println!("event log:");
    for event in &log {
        let line = match event {
            Event::Starting { pid, restarts } => {
                format!("starting pid {pid} (restarts {restarts})")
            }
            Event::Ready { pid, via } => format!("ready pid {pid} ({via:?})"),
            Event::Exited {
                pid, status, cause, ..
            } => {
                format!("exited pid {pid}: {status} ({cause:?})")
            }
            Event::Restarting {
                delay,
                unstable_restarts,
            } => {
                format!("restarting in {delay:?} (unstable restarts {unstable_restarts})")
            }
            Event::Errored { unstable_restarts } => {
                format!("errored after {unstable_restarts} unstable restarts: not restarted")
            }
            Event::Stopped => "stopped".to_string(),
        };
        println!("  {line}");
    }
}
