//! CPU time of a process tree from `/proc`: the sum, over a process and all its
//! descendants, of every thread's on-CPU time (`/proc/PID/task/TID/schedstat`, ns;
//! `utime + stime` of `/proc/PID/stat` in clock ticks where schedstat is missing).
//!
//! The cluster bench takes one [`tree_cpu_ns`] before and one after its timed window:
//! the difference is what the server side (a primary and its workers) spent, however
//! the CPUs were shared with the load generator.

use std::collections::HashMap;
use std::fs;

/// On-CPU nanoseconds of `pid` and all its descendants so far (threads that already
/// exited are not counted; the bench's servers keep their threads for the whole run).
pub(crate) fn tree_cpu_ns(pid: u32) -> u64 {
    tree(pid).into_iter().map(process_cpu_ns).sum()
}

/// On-CPU nanoseconds of this process's threads so far.
pub(crate) fn self_cpu_ns() -> u64 {
    process_cpu_ns(std::process::id())
}

/// `pid` and its descendants, from the parent pid of every process in `/proc`.
fn tree(pid: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(p) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            if let Some(parent) = stat_fields(p).and_then(|f| f.get(1)?.parse().ok()) {
                children.entry(parent).or_default().push(p);
            }
        }
    }
    let mut out = vec![pid];
    let mut next = 0;
    while next < out.len() {
        if let Some(kids) = children.get(&out[next]) {
            out.extend(kids);
        }
        next += 1;
    }
    out
}

/// The fields of `/proc/PID/stat` after the command name: state is `[0]`, ppid `[1]`,
/// utime `[11]`, stime `[12]`.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

fn process_cpu_ns(pid: u32) -> u64 {
    let mut total = 0u64;
    let mut any = false;
    if let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let path = task.path().join("schedstat");
            if let Some(ns) = fs::read_to_string(path)
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            {
                total += ns;
                any = true;
            }
        }
    }
    if any {
        return total;
    }
    // `/proc` reports in USER_HZ, which Linux fixes at 100 for user space.
    let ticks_per_s = 100u64;
    stat_fields(pid)
        .and_then(|f| Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?))
        .map_or(0, |ticks| ticks * 1_000_000_000 / ticks_per_s)
}
