//! The guard that kills the process groups of managed processes when this process
//! dies, whichever way it dies (clean exit, panic, SIGKILL).
//!
//! `PR_SET_PDEATHSIG` (set by the core's spawner) kills a direct child when we die,
//! but not what that child started. So every managed process's group is also handed
//! to a small guard process (`/bin/sh`, started detached, in a group of its own) that
//! reads group ids from a pipe whose only writer is this process. When we die the
//! kernel closes the pipe, the guard reads end-of-file at once and SIGKILLs every
//! group still on its list. A group is taken off the list once we swept it ourselves,
//! so a reused id is never signalled.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// The guard's script: keep the list of groups, kill them all at end of input.
const SCRIPT: &str = r#"trap '' INT TERM HUP QUIT
groups=' '
while read -r op pg; do
  case "$op" in
    add) groups="$groups$pg " ;;
    del) kept=' '; for g in $groups; do [ "$g" = "$pg" ] || kept="$kept$g "; done; groups="$kept" ;;
  esac
done
for g in $groups; do kill -s KILL -- "-$g" 2>/dev/null; done
"#;

/// The write end of the guard's pipe; `None` if the guard could not be started.
static GUARD: OnceLock<Option<Mutex<std::fs::File>>> = OnceLock::new();

fn start() -> Option<Mutex<std::fs::File>> {
    match try_start() {
        Ok(writer) => Some(Mutex::new(writer)),
        Err(e) => {
            tracing::warn!(
                "could not start the process-tree guard ({e}); if this process is \
                 SIGKILLed, the processes its workers started may outlive it"
            );
            None
        }
    }
}

fn try_start() -> ipc_core::Result<std::fs::File> {
    let (read, write): (OwnedFd, OwnedFd) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)?;
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(SCRIPT)
        .stdin(Stdio::from(read))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // Detached: it must outlive us (no parent-death signal), that is its whole job.
    ipc_core::spawn::detached(&mut command);
    let child = ipc_core::spawn::spawn_child(command)?;
    tracing::debug!(pid = child.pid(), "process-tree guard started");
    child.detach();
    Ok(std::fs::File::from(write))
}

fn tell(line: String) {
    if let Some(Some(writer)) = GUARD.get().map(Option::as_ref) {
        let mut writer = writer.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = writer.write_all(line.as_bytes()) {
            tracing::warn!("process-tree guard: {e}");
        }
    }
}

/// Put the group `pgid` under the guard. Must be called within a tokio runtime (the
/// first call starts the guard).
pub(crate) fn watch(pgid: u32) {
    GUARD.get_or_init(start);
    tell(format!("add {pgid}\n"));
}

/// SIGKILL what is left of the group `pgid` (after its leader was reaped) and take it
/// off the guard's list.
pub(crate) fn sweep(pgid: u32) {
    let pid = nix::unistd::Pid::from_raw(pgid as i32);
    match nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL) {
        Ok(()) => tracing::debug!(pgid, "killed processes left in the group"),
        Err(nix::errno::Errno::ESRCH) => {}
        Err(e) => tracing::warn!(pgid, "could not sweep the process group: {e}"),
    }
    tell(format!("del {pgid}\n"));
}
