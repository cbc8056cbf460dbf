//! What `/proc` says about a process: its resident memory, whether it still runs, and
//! which process is the `ipcm` daemon of a given home directory.

use std::path::Path;

use anyhow::{anyhow, Context, Result};

/// The resident set size (`VmRSS` in `/proc/PID/status`) of the whole process, bytes.
pub(crate) fn rss_bytes(pid: i32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .ok_or_else(|| anyhow!("{path} has no VmRSS line (is process {pid} a zombie?)"))?;
    Ok(kib * 1024)
}

/// True while `pid` exists and is not a zombie.
pub(crate) fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// The arguments of `pid` (`/proc/PID/cmdline`), empty when unreadable.
pub(crate) fn cmdline(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            raw.split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The `ipcm daemon` process whose environment has `IPCM_HOME=home`, if one runs.
pub(crate) fn ipcm_daemon(home: &Path) -> Option<i32> {
    let mut wanted = b"IPCM_HOME=".to_vec();
    wanted.extend_from_slice(home.as_os_str().as_encoded_bytes());
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .find(|&pid| {
            cmdline(pid).get(1).is_some_and(|a| a == "daemon")
                && alive(pid)
                && std::fs::read(format!("/proc/{pid}/environ"))
                    .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == wanted.as_slice()))
        })
}
