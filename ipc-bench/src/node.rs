//! Node.js rows: a Node parent forks a Node child with `child_process.fork()` and
//! measures its own IPC channel, with `serialization: 'json'` (Node's default) and
//! `'advanced'` (the structured-clone serializer).
//!
//! The scripts live in `ipc-bench/node/` and are compiled into the binary; each run
//! writes them to a private temp dir (the [`crate::interop`] rows use them too). One `node bench_parent.js CONFIG` process runs one
//! cell and prints one JSON line, parsed here. For a pinned cell the runner pins itself
//! before starting `node`, and the Node parent and its forked child inherit the
//! affinity. When `node` cannot be run, the rows are skipped with the reason.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::Deserialize;

use anyhow::{anyhow, Context, Result};

use crate::pin::PinGuard;
use crate::stats::{self, Measurement};
use crate::workload::{Cell, Workload};
use tempfile::TempDir;

const PARENT_JS: &str = include_str!("../node/bench_parent.js");
const CHILD_JS: &str = include_str!("../node/bench_child.js");
const TOOLKIT_CHILD_JS: &str = include_str!("../node/toolkit_child.js");

/// The Node child of a Rust parent (see [`crate::interop`]), written with the others.
pub(crate) const TOOLKIT_CHILD: &str = "toolkit_child.js";

/// Node's two IPC serializations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Serialization {
    /// `serialization: 'json'`, the default.
    Json,
    /// `serialization: 'advanced'` (V8 structured clone).
    Advanced,
}

impl Serialization {
    /// Both, in report order.
    pub(crate) const ALL: [Serialization; 2] = [Serialization::Json, Serialization::Advanced];

    /// The runner name (`node-json`, `node-advanced`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Serialization::Json => "node-json",
            Serialization::Advanced => "node-advanced",
        }
    }

    fn option(self) -> &'static str {
        match self {
            Serialization::Json => "json",
            Serialization::Advanced => "advanced",
        }
    }
}

/// A usable Node.js: its executable, version, and the scripts written out.
pub(crate) struct Node {
    exe: String,
    /// `node --version`.
    pub version: String,
    scripts: TempDir,
}

impl Node {
    /// Find `exe` and write the scripts; `Err` is the reason the Node rows are skipped.
    pub(crate) fn probe(exe: &str) -> std::result::Result<Node, String> {
        let out = Command::new(exe)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => format!("`{exe}` is not on PATH"),
                _ => format!("could not run `{exe} --version`: {e}"),
            })?;
        if !out.status.success() {
            return Err(format!("`{exe} --version` failed: {}", out.status));
        }
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let scripts = tempfile::Builder::new()
            .prefix("ipc-bench-node-")
            .tempdir()
            .map_err(|e| format!("creating a temporary directory for the Node scripts: {e}"))?;
        for (name, text) in [
            ("bench_parent.js", PARENT_JS),
            ("bench_child.js", CHILD_JS),
            (TOOLKIT_CHILD, TOOLKIT_CHILD_JS),
        ] {
            std::fs::write(scripts.path().join(name), text)
                .map_err(|e| format!("writing the Node script {name}: {e}"))?;
        }
        Ok(Node {
            exe: exe.to_string(),
            version,
            scripts,
        })
    }

    /// The `node` executable.
    pub(crate) fn exe(&self) -> &str {
        &self.exe
    }

    /// Where the script `name` (one of `ipc-bench/node/`) was written.
    pub(crate) fn script(&self, name: &str) -> PathBuf {
        self.scripts.path().join(name)
    }

    /// Measure one cell with Node's `fork()` IPC.
    pub(crate) fn run_cell(
        &self,
        ser: Serialization,
        cell: &Cell,
        cpu: usize,
    ) -> Result<Measurement> {
        self.run_parent(cell, cpu, ser.option(), None)
    }

    /// Measure one cell with `bench_parent.js` as the parent and `rust_child` (the
    /// `{"exe": .., "env": {..}}` of a Rust child) or, when `None`, a forked Node child
    /// as its peer, over Node's IPC channel in `serialization` mode.
    pub(crate) fn run_parent(
        &self,
        cell: &Cell,
        cpu: usize,
        serialization: &str,
        rust_child: Option<serde_json::Value>,
    ) -> Result<Measurement> {
        if cell.workload == Workload::StreamBatched {
            return Err(anyhow!("Node's send has no batching: not measured"));
        }
        let _guard = cell
            .workload
            .pinned()
            .then_some(cpu)
            .map(PinGuard::new)
            .transpose()?;
        let config = serde_json::json!({
            "mode": match cell.workload {
                Workload::RoundTrip { .. } => "rtt",
                Workload::Stream | Workload::StreamBatched => "stream",
            },
            "size": cell.size,
            "warmup": cell.warmup,
            "count": cell.count,
            "phases": cell.stream_phases(),
            "serialization": serialization,
            "rust_child": rust_child,
        });
        let out = Command::new(&self.exe)
            .arg(self.script("bench_parent.js"))
            .arg(config.to_string())
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .context(format!("running {} bench_parent.js", self.exe))?;
        let line = String::from_utf8_lossy(&out.stdout);
        let report: NodeReport = serde_json::from_str(line.trim()).context(format!(
            "reading the Node parent's report ({}, output {:?})",
            out.status,
            line.trim()
        ))?;
        if let Some(error) = report.error {
            return Err(anyhow!(format!("the Node parent failed: {error}")));
        }
        match cell.workload {
            Workload::RoundTrip { .. } => {
                let samples = report
                    .samples_ns
                    .context("the Node parent reported no samples")?;
                let mut h = stats::histogram()?;
                for ns in samples {
                    stats::record(&mut h, Duration::from_nanos(ns))?;
                }
                Ok(Measurement::Latency(h))
            }
            Workload::Stream | Workload::StreamBatched => {
                let batches = report
                    .batches_ns
                    .context("the Node parent reported no batch times")?;
                Ok(Measurement::Throughput {
                    batch: cell.stream_phases()[1],
                    size: cell.size,
                    batches: batches.into_iter().map(Duration::from_nanos).collect(),
                })
            }
        }
    }
}

/// The JSON line `bench_parent.js` prints.
#[derive(Deserialize)]
struct NodeReport {
    samples_ns: Option<Vec<u64>>,
    batches_ns: Option<Vec<u64>>,
    error: Option<String>,
}
