//! Is it safe to send the transport signals to a process we did not start?
//!
//! Their default action terminates the process. A program that uses this transport
//! blocks both signals in every thread (so they queue for its signalfd); a program that
//! catches or ignores them is not killed either. Anything else — most programs — dies
//! of the first one, so `connect` reads `/proc/PID/task/*/status` and refuses before
//! sending anything.

use std::os::fd::BorrowedFd;

use ipc_core::{Error, Result};

use crate::mask::{CONTROL_SIGNAL, DATA_SIGNAL};
use crate::pidfd;

/// A signal's bit in the hexadecimal masks of `/proc/PID/status`.
fn bit(signo: libc::c_int) -> u64 {
    1 << (signo - 1)
}

/// One hexadecimal mask field (`SigBlk:` ...) of a status file; 0 if absent.
fn mask(status: &str, field: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0)
}

/// The status files of every thread of `pid` (the process's own if its task list
/// cannot be read).
fn thread_statuses(pid: u32) -> std::io::Result<Vec<String>> {
    let mut statuses = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            // A thread that exits between the listing and the read does not matter.
            if let Ok(s) = std::fs::read_to_string(task.path().join("status")) {
                statuses.push(s);
            }
        }
    }
    if statuses.is_empty() {
        statuses.push(std::fs::read_to_string(format!("/proc/{pid}/status"))?);
    }
    Ok(statuses)
}

/// Signals among the transport's two that would take their default action (kill)
/// in `statuses`: neither caught nor ignored (process-wide), and not blocked in every
/// thread (a process-directed signal goes to any thread that does not block it).
fn unsafe_signals(statuses: &[String]) -> Vec<libc::c_int> {
    [DATA_SIGNAL, CONTROL_SIGNAL]
        .into_iter()
        .filter(|&signo| {
            let b = bit(signo);
            let handled = statuses
                .iter()
                .any(|s| (mask(s, "SigCgt:") | mask(s, "SigIgn:")) & b != 0);
            let blocked_everywhere = statuses.iter().all(|s| mask(s, "SigBlk:") & b != 0);
            !handled && !blocked_everywhere
        })
        .collect()
}

fn refused(pid: u32, why: String) -> Error {
    Error::Handshake(format!(
        "refusing to open a signal channel to process {pid}: {why}; nothing was sent to it. \
         Connect only to a program that opened its end with this toolkit (it blocks \
         signals {DATA_SIGNAL} and {CONTROL_SIGNAL} with ipc_signal::block_transport_signals), \
         and check the pid"
    ))
}

/// Refuse unless process `pid` (the one `pidfd` refers to) blocks, catches or ignores
/// both transport signals.
pub(crate) fn ensure_safe(pid: u32, pidfd: BorrowedFd<'_>) -> Result<()> {
    let statuses = thread_statuses(pid).map_err(|e| {
        refused(
            pid,
            format!("its signal mask cannot be read from /proc/{pid}/status ({e})"),
        )
    })?;
    // The pid could have changed hands between pidfd_open and the read: if the
    // pidfd's process still exists, it held the pid all along, so we read its status.
    pidfd::probe(pidfd, pid)?;
    let bad = unsafe_signals(&statuses);
    if !bad.is_empty() {
        let list = bad
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(" and ");
        return Err(refused(
            pid,
            format!(
                "it neither blocks nor handles real-time signal(s) {list} (SigBlk/SigCgt in \
                 /proc/{pid}/status), so the first one would kill it: it is not a program \
                 using this transport"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(blk: u64, cgt: u64, ign: u64) -> String {
        format!("Name:\tx\nSigBlk:\t{blk:016x}\nSigIgn:\t{ign:016x}\nSigCgt:\t{cgt:016x}\n")
    }

    #[test]
    fn blocked_everywhere_caught_or_ignored_is_safe() {
        let both = bit(DATA_SIGNAL) | bit(CONTROL_SIGNAL);
        assert!(unsafe_signals(&[status(both, 0, 0), status(both, 0, 0)]).is_empty());
        assert!(unsafe_signals(&[status(0, both, 0), status(0, both, 0)]).is_empty());
        assert!(unsafe_signals(&[status(0, 0, both)]).is_empty());
        assert!(unsafe_signals(&[status(bit(DATA_SIGNAL), bit(CONTROL_SIGNAL), 0)]).is_empty());
    }

    #[test]
    fn default_action_anywhere_is_unsafe() {
        let both = bit(DATA_SIGNAL) | bit(CONTROL_SIGNAL);
        assert_eq!(
            unsafe_signals(&[status(0, 0, 0)]),
            [DATA_SIGNAL, CONTROL_SIGNAL]
        );
        // One thread that does not block them is enough to kill the process.
        assert_eq!(
            unsafe_signals(&[status(both, 0, 0), status(bit(DATA_SIGNAL), 0, 0)]),
            [CONTROL_SIGNAL]
        );
    }
}
