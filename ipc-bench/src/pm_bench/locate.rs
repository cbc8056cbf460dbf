//! Where the two managers' programs are: `ipcm` next to this binary or on `PATH`;
//! `pm2` on `PATH`, or `npm install`ed into a temp dir when asked.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{anyhow, Context, Result};
use tempfile::TempDir;

/// `explicit`, else `ipcm` next to this executable (a `cargo build -p ipc-pm` of the
/// same profile puts it there), else `ipcm` on `PATH`.
pub(crate) fn ipcm(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(anyhow!("--ipcm {}: no such file", path.display()))
        };
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("ipcm")))
        .filter(|p| p.is_file());
    beside.or_else(|| on_path("ipcm")).ok_or_else(|| {
        anyhow!(
            "ipcm not found next to ipc-bench nor on PATH: build it with \
             `cargo build --release -p ipc-pm`, or pass --ipcm PATH"
        )
    })
}

/// pm2, and how it was found.
#[derive(Debug)]
pub(crate) struct Pm2 {
    /// `bin/pm2` (a Node script run through its `#!/usr/bin/env node` line).
    pub program: PathBuf,
    /// The `npm install` directory, when the bench installed it.
    pub install: Option<TempDir>,
}

/// pm2 on `PATH`; else, with `install`, `npm install pm2` into a temp dir; else
/// `Err(reason)` for the "skipped" line.
pub(crate) fn pm2(install: bool) -> Result<Pm2, String> {
    if let Some(program) = on_path("pm2") {
        return Ok(Pm2 {
            program,
            install: None,
        });
    }
    if !install {
        return Err("not installed; pass --install-pm2".into());
    }
    npm_install().map_err(|e| format!("--install-pm2 failed: {e:#}"))
}

fn npm_install() -> Result<Pm2> {
    let dir = tempfile::Builder::new()
        .prefix("ipc-bench-pm2-install-")
        .tempdir()?;
    eprintln!(
        "ipc-bench: installing pm2 with npm into {} ...",
        dir.path().display()
    );
    let out = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
        .arg("--prefix")
        .arg(dir.path())
        .arg("pm2")
        .stdin(Stdio::null())
        .output()
        .context("running npm (is Node.js installed?)")?;
    if !out.status.success() {
        return Err(anyhow!(
            "npm install pm2 failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        ));
    }
    let program = dir.path().join("node_modules/.bin/pm2");
    if !program.is_file() {
        return Err(anyhow!(
            "npm installed pm2 but {} is missing",
            program.display()
        ));
    }
    Ok(Pm2 {
        program,
        install: Some(dir),
    })
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}
