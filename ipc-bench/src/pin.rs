//! CPU pinning with `sched_setaffinity`: the pinned round-trip cells put the parent and
//! the child on one CPU, so a round trip costs two context switches on that CPU instead
//! of two cross-CPU wake-ups (which on a VM can cost tens of microseconds each and hide
//! what framing and the async runtime cost).
//!
//! The parent pins every thread it has for the duration of a cell ([`PinGuard`]); a
//! child pins itself first thing in `main`, before its runtime starts, from the
//! environment variable [`PIN_ENV`](crate::roles::PIN_ENV).

use std::fs;

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

use anyhow::{Context, Result};

/// The tids of this process's threads.
fn threads() -> Result<Vec<Pid>> {
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc/self/task").context("listing /proc/self/task")? {
        let entry = entry.context("listing /proc/self/task")?;
        if let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) {
            out.push(Pid::from_raw(tid));
        }
    }
    Ok(out)
}

fn set_all(set: &CpuSet) -> Result<()> {
    for tid in threads()? {
        match sched_setaffinity(tid, set) {
            // A thread that exited since we listed it.
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => return Err(e).context(format!("sched_setaffinity(thread {tid})")),
        }
    }
    Ok(())
}

/// Pin every thread of this process to `cpu` (threads started later inherit it).
pub(crate) fn pin_process(cpu: usize) -> Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu).context(format!("CPU {cpu} is out of range"))?;
    set_all(&set).context(format!("pinning to CPU {cpu}"))
}

/// Pin every thread of this process to the CPUs `cpus` (threads and children started
/// later inherit it).
pub(crate) fn pin_process_to(cpus: &[usize]) -> Result<()> {
    let mut set = CpuSet::new();
    for &cpu in cpus {
        set.set(cpu).context(format!("CPU {cpu} is out of range"))?;
    }
    set_all(&set).context(format!("pinning to CPUs {cpus:?}"))
}

/// The CPUs this process may run on.
pub(crate) fn allowed_cpus() -> Result<Vec<usize>> {
    let set = sched_getaffinity(Pid::from_raw(0)).context("sched_getaffinity")?;
    Ok((0..CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect())
}

/// Where a cell's two processes run: the parent pins itself for the cell
/// ([`Placement::pin_parent`]), a child started by the bench pins itself first thing
/// (its command gets [`child`](Self::child) as [`PIN_ENV`](crate::roles::PIN_ENV)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Placement {
    /// The parent's CPU, if it is pinned.
    pub parent: Option<usize>,
    /// The child's CPU, if it is pinned.
    pub child: Option<usize>,
}

impl Placement {
    /// Both processes on `cpu` (the pinned round trips).
    pub(crate) fn together(cpu: usize) -> Placement {
        Placement {
            parent: Some(cpu),
            child: Some(cpu),
        }
    }

    /// The parent on `parent`, the child on `child` (`--stream-cpus`).
    pub(crate) fn apart(parent: usize, child: usize) -> Placement {
        Placement {
            parent: Some(parent),
            child: Some(child),
        }
    }

    /// Pin this process as placed, until the guard drops (nothing if unpinned).
    pub(crate) fn pin_parent(&self) -> Result<Option<PinGuard>> {
        self.parent.map(PinGuard::new).transpose()
    }
}

/// Pins the whole process to one CPU while alive; restores the previous affinity of
/// every thread on drop.
pub(crate) struct PinGuard {
    previous: CpuSet,
}

impl PinGuard {
    /// Pin every thread to `cpu`.
    pub(crate) fn new(cpu: usize) -> Result<PinGuard> {
        let previous = sched_getaffinity(Pid::from_raw(0)).context("sched_getaffinity")?;
        pin_process(cpu)?;
        Ok(PinGuard { previous })
    }
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        // Best effort: failing to unpin only makes later unpinned cells pinned.
        if let Err(e) = set_all(&self.previous) {
            eprintln!("ipc-bench: could not restore the CPU affinity: {e}");
        }
    }
}
