//! Helpers shared by the integration tests: the children's entry point, signals,
//! the process table, pidfds, guards, and cluster chores.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::os::fd::OwnedFd;
use std::time::Duration;

use ipc_cluster::{Cluster, ClusterEvent};

/// Longest any wait may take before it counts as a hang.
pub const GUARD: Duration = Duration::from_secs(30);

/// Every live (not zombie) process whose process group is `pgid`, from /proc.
pub fn group_members(pgid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...: comm may hold spaces, so split after ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string() {
            out.push(pid);
        }
    }
    out
}

/// A pidfd for `pid` (readable once it exited), or `None` if it is already gone.
pub fn pidfd(pid: u32) -> Option<OwnedFd> {
    let pid = rustix::process::Pid::from_raw(pid as i32)?;
    rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
}

/// Wait (bounded by [`GUARD`]) until the process behind `fd` exited; false on timeout.
pub async fn gone(fd: OwnedFd) -> bool {
    use std::os::fd::AsRawFd;
    tokio::task::spawn_blocking(move || {
        let mut poll = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd (its fd is open: `fd` lives until the closure ends).
        let n = unsafe { libc::poll(&mut poll, 1, GUARD.as_millis() as i32) };
        n > 0
    })
    .await
    .unwrap_or(false)
}

/// Wait until every process in `pids` is gone.
pub async fn all_gone(pids: &[u32]) -> Result<(), String> {
    for &pid in pids {
        if let Some(fd) = pidfd(pid) {
            if !gone(fd).await {
                return Err(format!("process {pid} is still running after {GUARD:?}"));
            }
        }
    }
    Ok(())
}

/// A re-executed child's entry point: run `main` on a current-thread runtime and
/// exit with the code it returns.
pub fn exit_with(main: impl Future<Output = i32>) -> ! {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    std::process::exit(runtime.block_on(main))
}

/// Send `signal` to process `pid`.
pub fn signal(pid: u32, signal: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal)
        .unwrap_or_else(|e| panic!("{signal} to process {pid}: {e}"));
}

/// The next event of `cluster` (bounded by [`GUARD`]).
pub async fn next_event(cluster: &mut Cluster) -> ClusterEvent {
    tokio::time::timeout(GUARD, cluster.next_event())
        .await
        .expect("an event in time")
        .expect("the cluster runs")
}

/// The live workers' pids, by index.
pub async fn worker_pids(cluster: &Cluster) -> Vec<u32> {
    cluster
        .workers()
        .await
        .expect("workers")
        .iter()
        .map(|w| w.pid)
        .collect()
}

/// Shut `cluster` down gracefully (bounded by [`GUARD`]).
pub async fn shut_down(cluster: Cluster) {
    tokio::time::timeout(GUARD, cluster.shutdown())
        .await
        .expect("the cluster shut down in time");
}
