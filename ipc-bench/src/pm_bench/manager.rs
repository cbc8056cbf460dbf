//! The two process managers, driven through their command lines as a user would, each
//! with a private home directory (`IPCM_HOME`, `PM2_HOME`) in a temp dir so nothing
//! touches the user's own daemon. Dropping a [`Manager`] stops its daemon (`ipcm kill`,
//! `pm2 kill`, then SIGKILL if it is still there) and any app instance left behind;
//! on SIGINT, SIGTERM or SIGHUP, [`interrupt`] does the first and removes the temp dirs.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tempfile::TempDir;

use super::apps::SLEEP_ARG;
use super::{interrupt, probe};

/// How long one CLI command may take before the bench gives up on it.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Which manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// This workspace's `ipcm`.
    Ipcm,
    /// Node's pm2.
    Pm2,
}

impl Kind {
    /// `ipcm` or `pm2`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Ipcm => "ipcm",
            Kind::Pm2 => "pm2",
        }
    }

    fn home_var(self) -> &'static str {
        match self {
            Kind::Ipcm => "IPCM_HOME",
            Kind::Pm2 => "PM2_HOME",
        }
    }
}

/// One manager with a private home, stopped on drop.
#[derive(Debug)]
pub(crate) struct Manager {
    kind: Kind,
    program: PathBuf,
    home: PathBuf,
    /// The bench's scratch files for this manager: home, the app, the FIFO, outputs.
    scratch: TempDir,
    /// pm2's `npm install` directory (with `--install-pm2`); removed after the daemon.
    _install: Option<TempDir>,
    /// App pids seen; those still running `sleep` after the kill are killed.
    app_pids: Vec<i32>,
    /// This manager's entry in the signal thread's clean-up list.
    interrupt_id: u64,
    runtime: tokio::runtime::Runtime,
}

impl Manager {
    /// `program` is `ipcm`'s binary or pm2's `bin/pm2`; `install` the directory pm2
    /// was installed into, kept until the daemon is gone.
    pub(crate) fn new(kind: Kind, program: PathBuf, install: Option<TempDir>) -> Result<Self> {
        let scratch = tempfile::Builder::new()
            .prefix(&format!("ipc-bench-{}-", kind.name()))
            .tempdir()
            .context("making a temp dir")?;
        let home = scratch.path().join("home");
        let mut dirs = vec![scratch.path().to_path_buf()];
        dirs.extend(install.as_ref().map(|d| d.path().to_path_buf()));
        let interrupt_id = interrupt::remember(interrupt::Cleanup {
            program: program.clone(),
            home_var: kind.home_var(),
            home: home.clone(),
            dirs,
        });
        Ok(Manager {
            kind,
            program,
            home,
            scratch,
            _install: install,
            app_pids: Vec::new(),
            interrupt_id,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
        })
    }

    /// Which manager this is.
    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    /// The program run (`ipcm`, or pm2's `bin/pm2`).
    pub(crate) fn program(&self) -> &Path {
        &self.program
    }

    /// The bench's scratch directory for this manager.
    pub(crate) fn scratch(&self) -> &Path {
        self.scratch.path()
    }

    /// The first command, which starts the daemon (`ipcm list`, `pm2 ping`); its time.
    pub(crate) fn boot(&self) -> Result<Duration> {
        match self.kind {
            Kind::Ipcm => self.run(["list", "--json"]),
            Kind::Pm2 => self.run(["ping"]),
        }
        .map(|(took, _)| took)
    }

    /// The daemon's pid (pm2's "God Daemon").
    pub(crate) fn daemon_pid(&self) -> Result<i32> {
        match self.kind {
            Kind::Ipcm => probe::ipcm_daemon(&self.home).ok_or_else(|| {
                anyhow!(
                    "no `ipcm daemon` process with IPCM_HOME={} found in /proc",
                    self.home.display()
                )
            }),
            Kind::Pm2 => {
                let file = self.home.join("pm2.pid");
                std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?
                    .trim()
                    .parse()
                    .with_context(|| format!("{} does not hold a pid", file.display()))
            }
        }
    }

    /// Start `script FIFO NAME` as the app `name`, restart delay 0, restarts unlimited
    /// in practice; the command's time.
    pub(crate) fn start(&self, name: &str, script: &Path, fifo: &Path) -> Result<Duration> {
        let (script, fifo) = (script.as_os_str(), fifo.as_os_str());
        let never_errored = "1000000";
        match self.kind {
            Kind::Ipcm => self.run([
                OsStr::new("start"),
                "--name".as_ref(),
                name.as_ref(),
                "--restart-delay".as_ref(),
                "0".as_ref(),
                "--max-restarts".as_ref(),
                never_errored.as_ref(),
                script,
                fifo,
                name.as_ref(),
            ]),
            Kind::Pm2 => self.run([
                OsStr::new("start"),
                script,
                "--interpreter".as_ref(),
                "none".as_ref(),
                "--name".as_ref(),
                name.as_ref(),
                "--restart-delay".as_ref(),
                "0".as_ref(),
                "--max-restarts".as_ref(),
                never_errored.as_ref(),
                "--".as_ref(),
                fifo,
                name.as_ref(),
            ]),
        }
        .map(|(took, _)| took)
    }

    /// `ipcm list --json` / `pm2 jlist`; its time.
    pub(crate) fn list(&self) -> Result<Duration> {
        match self.kind {
            Kind::Ipcm => self.run(["list", "--json"]),
            Kind::Pm2 => self.run(["jlist"]),
        }
        .map(|(took, _)| took)
    }

    /// The manager's version (`ipcm --version`, `pm2 --version` once the daemon runs:
    /// without one, pm2 would start one).
    pub(crate) fn version(&self) -> String {
        self.run(["--version"])
            .ok()
            .and_then(|(_, out)| {
                out.lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .map(|l| l.trim().to_string())
            })
            .unwrap_or_else(|| "unknown version".into())
    }

    /// Remember an app instance, for the clean-up.
    pub(crate) fn remember(&mut self, pid: i32) {
        self.app_pids.push(pid);
    }

    /// Run the manager's CLI with `args`, stdout and stderr to files (a daemon that
    /// inherited a pipe would keep the command from ending); its time and stdout.
    fn run<I, S>(&self, args: I) -> Result<(Duration, String)>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let shown = format!(
            "{} {}",
            self.kind.name(),
            args.iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ")
        );
        let out_path = self.scratch.path().join("cli.out");
        let err_path = self.scratch.path().join("cli.err");
        let out = std::fs::File::create(&out_path)?;
        let err = std::fs::File::create(&err_path)?;
        let mut command = tokio::process::Command::new(&self.program);
        command
            .args(&args)
            .env(self.kind.home_var(), &self.home)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true);
        let permit =
            interrupt::command().ok_or_else(|| anyhow!("interrupted: `{shown}` not run"))?;
        let status = self.runtime.block_on(async {
            let started = Instant::now();
            let mut child = command
                .spawn()
                .with_context(|| format!("running {}", self.program.display()))?;
            interrupt::running(child.id().unwrap_or(0));
            let status = tokio::time::timeout(COMMAND_TIMEOUT, child.wait())
                .await
                .map_err(|_| anyhow!("`{shown}` did not finish within {COMMAND_TIMEOUT:?}"))??;
            Ok::<_, anyhow::Error>((started.elapsed(), status))
        });
        interrupt::running(0);
        drop(permit);
        let (took, status) = status?;
        let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
        if !status.success() {
            let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
            return Err(anyhow!(
                "`{shown}` failed ({status}):\n{}\n{}",
                stdout.trim_end(),
                stderr.trim_end()
            ));
        }
        Ok((took, stdout))
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        let daemon = self.daemon_pid().ok();
        if let Err(e) = self.run(["kill"]) {
            if !interrupt::interrupted() {
                eprintln!("ipc-bench: stopping {}: {e:#}", self.kind.name());
            }
        }
        if let Some(pid) = daemon {
            let deadline = Instant::now() + Duration::from_secs(10);
            while probe::alive(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if probe::alive(pid) {
                eprintln!(
                    "ipc-bench: the {} daemon {pid} outlived `kill`; sending SIGKILL",
                    self.kind.name()
                );
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        let left: Vec<i32> = self
            .app_pids
            .iter()
            .copied()
            .filter(|&pid| probe::alive(pid) && probe::cmdline(pid) == ["sleep", SLEEP_ARG])
            .collect();
        for &pid in &left {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while left.iter().any(|&pid| probe::alive(pid)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        interrupt::forget(self.interrupt_id);
    }
}
