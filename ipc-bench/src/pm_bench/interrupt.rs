//! Ctrl-C (SIGINT), SIGTERM or SIGHUP during a `--pm` run: the daemons are in sessions
//! of their own and would outlive the bench with their apps, so a thread waits for
//! these signals and does what the [`Manager`](super::manager::Manager) guards would
//! have done (`ipcm kill` / `pm2 kill`, remove the temp dirs) before exiting.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use anyhow::{Context, Result};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::unistd::Pid;

/// What to undo for one manager.
#[derive(Debug, Clone)]
pub(crate) struct Cleanup {
    /// The manager's CLI.
    pub program: PathBuf,
    /// `IPCM_HOME` or `PM2_HOME`.
    pub home_var: &'static str,
    /// Its value.
    pub home: PathBuf,
    /// Directories to remove afterwards.
    pub dirs: Vec<PathBuf>,
}

static ACTIVE: Mutex<Vec<(u64, Cleanup)>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// Held while a manager's CLI runs: the clean-up waits for it, so no command started
/// before the signal (an `ipcm list` starts a daemon when none runs) ends after it.
static COMMAND: Mutex<()> = Mutex::new(());
/// The pid of the CLI command running, 0 when none.
static COMMAND_PID: AtomicI32 = AtomicI32::new(0);

/// Permission to run one CLI command: `None` once a signal started the clean-up.
/// Hold the guard until the command has ended; report its pid with [`running`].
pub(crate) fn command() -> Option<MutexGuard<'static, ()>> {
    let guard = COMMAND.lock().unwrap_or_else(|e| e.into_inner());
    (!interrupted()).then_some(guard)
}

/// The command started under [`command`]'s guard has this pid (0: it ended).
pub(crate) fn running(pid: u32) {
    COMMAND_PID.store(pid as i32, Ordering::Relaxed);
}

/// True once a signal started the clean-up (the run's own errors after it are noise:
/// its daemon and temp dirs are going away under it).
pub(crate) fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

fn signals() -> SigSet {
    let mut set = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(signal);
    }
    set
}

/// Block the signals in this thread (threads started later inherit the mask; child
/// processes do not: `std::process::Command` resets it) and start the thread that
/// waits for them. Call before the run starts any other thread.
pub(crate) fn install() -> Result<()> {
    let set = signals();
    set.thread_block()
        .context("blocking SIGINT, SIGTERM and SIGHUP")?;
    std::thread::Builder::new()
        .name("pm-bench-signals".into())
        .spawn(move || {
            let Ok(signal) = set.wait() else { return };
            INTERRUPTED.store(true, Ordering::Relaxed);
            let pid = COMMAND_PID.load(Ordering::Relaxed);
            if pid > 0 {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            // No command of the run is in flight past this line, nor starts after it.
            let _no_more = COMMAND.lock().unwrap_or_else(|e| e.into_inner());
            eprintln!("ipc-bench: {signal}: stopping the daemons this run started");
            let active = ACTIVE.lock().map(|a| a.clone()).unwrap_or_default();
            for (_, c) in active {
                let _ = Command::new(&c.program)
                    .arg("kill")
                    .env(c.home_var, &c.home)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
                for dir in &c.dirs {
                    let _ = std::fs::remove_dir_all(dir);
                }
            }
            std::process::exit(128 + signal as i32);
        })
        .context("starting the signal thread")?;
    Ok(())
}

/// Remember `cleanup` until [`forget`] is called with the returned id.
pub(crate) fn remember(cleanup: Cleanup) -> u64 {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut active) = ACTIVE.lock() {
        active.push((id, cleanup));
    }
    id
}

/// The manager `id` cleaned up after itself.
pub(crate) fn forget(id: u64) {
    if let Ok(mut active) = ACTIVE.lock() {
        active.retain(|(i, _)| *i != id);
    }
}
