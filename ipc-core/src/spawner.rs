//! Where children are forked, and what ties their life to ours.
//!
//! Linux sends a child's parent-death signal (`PR_SET_PDEATHSIG`) when the *thread*
//! that forked it exits, not the process. A tokio blocking-pool thread retires after
//! a few idle seconds, and `block_in_place` can turn a worker into one: a child forked
//! there would be killed long before its parent exits. So every child is forked by one
//! dedicated thread that lives as long as the process, and a caller on any thread (or
//! runtime) hands it the command and waits for the result, as long as a direct
//! `spawn` would block it. The child still starts with the caller's signal mask.

use std::io;
use std::sync::mpsc::{channel, sync_channel, Sender, SyncSender};
use std::sync::{Mutex, OnceLock};

use nix::sys::signal::SigSet;
use tokio::runtime::Handle;

/// A command to fork, the runtime its child belongs to, the caller's signal mask, and
/// where to send the result.
struct Job {
    command: tokio::process::Command,
    runtime: Handle,
    mask: SigSet,
    reply: SyncSender<io::Result<tokio::process::Child>>,
}

/// The forking thread's queue; `None` if the thread could not be started.
static SPAWNER: OnceLock<Option<Mutex<Sender<Job>>>> = OnceLock::new();

fn start() -> Option<Mutex<Sender<Job>>> {
    let (jobs, queue) = channel::<Job>();
    let started = std::thread::Builder::new()
        .name("ipc-spawner".into())
        .spawn(move || {
            // Between jobs, process-directed signals (the signal transport's, those
            // tokio handles) are for the threads that wait for them.
            let _ = SigSet::all().thread_set_mask();
            for job in queue {
                let _entered = job.runtime.enter();
                let mut command = job.command;
                // A child inherits the forking thread's signal mask (the signal
                // transport relies on it): fork with the caller's, as it would have.
                let result = match job.mask.thread_set_mask() {
                    Ok(()) => command.spawn(),
                    Err(e) => Err(io::Error::from(e)),
                };
                let _ = SigSet::all().thread_set_mask();
                let _ = job.reply.send(result);
            }
        });
    match started {
        Ok(_) => Some(Mutex::new(jobs)),
        Err(e) => {
            tracing::warn!(
                "could not start the ipc-spawner thread ({e}); children are forked by the \
                 calling thread, and a parent-death signal follows that thread"
            );
            None
        }
    }
}

/// Spawn `command` from the long-lived forking thread, registering the child with the
/// caller's tokio runtime. Must be called within a tokio runtime.
pub(crate) fn spawn(mut command: tokio::process::Command) -> io::Result<tokio::process::Child> {
    let runtime = Handle::try_current().map_err(|_| {
        io::Error::other("children must be spawned from within a tokio runtime (no runtime here)")
    })?;
    let Some(queue) = SPAWNER.get_or_init(start) else {
        return command.spawn();
    };
    let mask = SigSet::thread_get_mask().map_err(io::Error::from)?;
    let (reply, result) = sync_channel(1);
    let job = Job {
        command,
        runtime,
        mask,
        reply,
    };
    let sent = queue
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .send(job);
    if let Err(returned) = sent {
        // The thread is gone (it never exits on its own): fork here instead.
        let Job { mut command, .. } = returned.0;
        return command.spawn();
    }
    result
        .recv()
        .map_err(|_| io::Error::other("the ipc-spawner thread stopped before answering"))?
}

/// Make the child die (SIGKILL) when this process dies, even by SIGKILL. Linux only;
/// elsewhere nothing is set.
///
/// The signal is armed in the child before `exec` and survives it (except into a
/// set-user-ID or set-group-ID program, where Linux clears it). If this process died
/// between `fork` and arming it, the child notices (its parent is no longer us) and
/// kills itself.
pub(crate) fn die_with_parent(command: &mut std::process::Command) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use std::os::unix::process::CommandExt;
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: the closure runs in the forked child before exec and only calls
        // async-signal-safe functions (prctl, getppid, getpid, kill, _exit) on integers
        // captured by value; it allocates nothing.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                if libc::getppid() != parent {
                    // We died before the signal was armed: do what it would have done.
                    libc::kill(libc::getpid(), libc::SIGKILL);
                    libc::_exit(137);
                }
                Ok(())
            });
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = command;
}
