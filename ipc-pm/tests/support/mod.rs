//! A real `ipcm` daemon in a temporary `IPCM_HOME`, driven through the real binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a condition may take before the test fails (a guard against hangs; the
/// machine is shared and noisy).
pub(crate) const GUARD: Duration = Duration::from_secs(30);

/// A daemon of our own; `ipcm kill` on drop.
pub(crate) struct Ipcm {
    pub(crate) home: tempfile::TempDir,
    /// `IPCM_MONITOR_INTERVAL` for the daemon the first command starts.
    monitor_interval: &'static str,
}

impl Ipcm {
    pub(crate) fn new() -> Ipcm {
        Ipcm::with_monitor_interval("100ms")
    }

    /// A daemon that samples memory and CPU every `interval`.
    pub(crate) fn with_monitor_interval(interval: &'static str) -> Ipcm {
        Ipcm {
            home: tempfile::Builder::new()
                .prefix("ipcm-test-")
                .tempdir()
                .expect("temp dir"),
            monitor_interval: interval,
        }
    }

    pub(crate) fn home(&self) -> &Path {
        self.home.path()
    }

    /// `ipcm ARGS` with our home; the output, whatever the exit status.
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run ipcm")
    }

    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ipcm"));
        c.args(args)
            .env("IPCM_HOME", self.home())
            .env("IPCM_MONITOR_INTERVAL", self.monitor_interval)
            // The daemon logs each request it reads (`request=List`, ...).
            .env("IPCM_LOG", "info,ipcm::daemon=debug");
        c
    }

    /// `ipcm ARGS`, which must succeed; its stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "ipcm {args:?} failed: {}\n{}\ndaemon log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout),
            self.daemon_log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `ipcm ARGS`, which must fail; its stderr.
    pub(crate) fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "ipcm {args:?} should have failed");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// How many requests of `kind` (`List`, `Start`, `Reload`...) the daemon read.
    pub(crate) fn requests_read(&self, kind: &str) -> usize {
        self.daemon_log()
            .matches(&format!("request={kind}"))
            .count()
    }

    pub(crate) fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.home().join("daemon.log")).unwrap_or_default()
    }

    /// `list --json`.
    pub(crate) fn list(&self) -> Vec<Value> {
        let text = self.ok(&["list", "--json"]);
        serde_json::from_str::<Value>(&text)
            .expect("json list")
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The app named `name` in `list --json`.
    pub(crate) fn app(&self, name: &str) -> Option<Value> {
        self.list().into_iter().find(|a| a["name"] == name)
    }

    /// The instances of `name`.
    pub(crate) fn instances(&self, name: &str) -> Vec<Value> {
        self.app(name)
            .and_then(|a| a["instances"].as_array().cloned())
            .unwrap_or_default()
    }

    /// Statuses of `name`'s instances.
    pub(crate) fn statuses(&self, name: &str) -> Vec<String> {
        self.instances(name)
            .iter()
            .map(|i| i["status"].as_str().unwrap_or("").to_string())
            .collect()
    }

    /// Pids of `name`'s instances that run.
    pub(crate) fn pids(&self, name: &str) -> Vec<u32> {
        self.instances(name)
            .iter()
            .filter_map(|i| i["pid"].as_u64().map(|p| p as u32))
            .collect()
    }

    /// Wait until `cond` holds on the list (polled), or fail after [`GUARD`].
    pub(crate) fn wait_for(&self, what: &str, mut cond: impl FnMut(&Ipcm) -> bool) {
        let start = Instant::now();
        while !cond(self) {
            assert!(
                start.elapsed() < GUARD,
                "timed out waiting for {what}; list: {:?}\ndaemon log:\n{}",
                self.list(),
                self.daemon_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The daemon's pid, from the socket's owner (`/proc/net/unix` is not needed: the
    /// daemon log names it).
    pub(crate) fn daemon_pid(&self) -> u32 {
        let log = self.daemon_log();
        let at = log
            .find("ipcm daemon ready pid=")
            .expect("daemon log names its pid")
            + "ipcm daemon ready pid=".len();
        log[at..]
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .expect("pid")
    }
}

impl Drop for Ipcm {
    fn drop(&mut self) {
        let _ = self.run(&["kill"]);
    }
}

/// True while `pid` exists (and is not a zombie).
pub(crate) fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

/// Wait until `pid` is gone, or fail after [`GUARD`].
pub(crate) fn wait_gone(pid: u32) {
    let start = Instant::now();
    while alive(pid) {
        assert!(start.elapsed() < GUARD, "pid {pid} still runs");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The fixtures folder.
pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Pids of every process whose environment holds `IPCM_APP_NAME=name` (ours only:
/// the value is unique per test).
pub(crate) fn processes_of(marker: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) {
            if env.split(|b| *b == 0).any(|kv| kv == marker.as_bytes()) && alive(pid) {
                pids.push(pid);
            }
        }
    }
    pids
}
