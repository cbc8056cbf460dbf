//! The `iceoryx2` runner (`--iceoryx2`): eclipse-iceoryx's shared-memory
//! publish-subscribe, the transport issue 15 names as the frontier, measured in the
//! same run as `shm` and its floor `raw-shm`.
//!
//! iceoryx2 takes a minute or two to build and needs a newer Rust than the toolkit, so
//! it lives in its own crate outside the workspace (`ipc-bench/iceoryx2/`, which also
//! documents its set-up: two `[u8]` services, busy-polling subscribers, the payload
//! copied in and out once each way). [`build`] compiles it with cargo on demand, into
//! the target directory this binary runs from; each cell then runs that binary, which
//! starts its own peer process and prints the nanoseconds of each timed round trip (or
//! each timed stream phase) on stdout.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};

use crate::pin::Placement;
use crate::stats::{self, Measurement};
use crate::workload::{Cell, Workload};

/// The runner's name in the report.
pub(crate) const NAME: &str = "iceoryx2";
/// The runner crate's directory, from this crate's.
const CRATE_DIR: &str = "iceoryx2";
/// Its binary's name.
const BINARY: &str = "ipc-bench-iceoryx2";

/// Build the runner (`cargo build --release`) next to this binary's target directory
/// and return its path. Cargo's progress goes to stderr.
pub(crate) fn build() -> Result<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(CRATE_DIR)
        .join("Cargo.toml");
    if !manifest.exists() {
        return Err(anyhow!(format!(
            "--iceoryx2 needs the source checkout this binary was built from: {} is gone",
            manifest.display()
        )));
    }
    // This binary is <target>/<profile>/ipc-bench: build beside it, sharing nothing
    // with the workspace's artifacts but the directory.
    let exe = std::env::current_exe().context("locating this binary")?;
    let target = exe
        .parent()
        .and_then(Path::parent)
        .context("this binary is not inside a cargo target directory")?
        .join("iceoryx2");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("ipc-bench: building the iceoryx2 runner (a minute or two the first time)");
    let status = Command::new(cargo)
        .args(["build", "--release", "--locked", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target)
        .stdout(Stdio::null())
        .status()
        .context("running cargo to build the iceoryx2 runner")?;
    if !status.success() {
        return Err(anyhow!(format!(
            "building the iceoryx2 runner failed ({status}); it needs Rust 1.89 or newer \
             and crates.io: build it by hand with `cargo build --release --manifest-path {}`",
            manifest.display()
        )));
    }
    Ok(target.join("release").join(BINARY))
}

/// Measure one cell with the runner at `bin`, its two processes placed as `placement`
/// says.
pub(crate) fn run_cell(bin: &Path, cell: &Cell, placement: Placement) -> Result<Measurement> {
    let mut cmd = Command::new(bin);
    let size = cell.size.to_string();
    match cell.workload {
        Workload::RoundTrip { .. } => {
            cmd.args(["round-trip", "--size", &size])
                .args(["--warmup", &cell.warmup.to_string()])
                .args(["--count", &cell.count.to_string()]);
        }
        Workload::Stream | Workload::StreamBatched => {
            let phases: Vec<String> = cell.stream_phases().iter().map(u64::to_string).collect();
            cmd.args(["stream", "--size", &size, "--phases", &phases.join(",")]);
        }
    }
    if let Some(cpu) = placement.parent {
        cmd.args(["--pin", &cpu.to_string()]);
    }
    if let Some(cpu) = placement.child {
        cmd.args(["--peer-pin", &cpu.to_string()]);
    }
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .context(format!("running {}", bin.display()))?;
    if !out.status.success() {
        return Err(anyhow!(format!(
            "the iceoryx2 runner failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let nanos = parse_nanos(&String::from_utf8_lossy(&out.stdout))?;
    Ok(match cell.workload {
        Workload::RoundTrip { .. } => {
            if nanos.len() as u64 != cell.count {
                return Err(anyhow!(format!(
                    "the iceoryx2 runner timed {} round trips, not {}",
                    nanos.len(),
                    cell.count
                )));
            }
            let mut h = stats::histogram()?;
            for ns in nanos {
                stats::record(&mut h, Duration::from_nanos(ns))?;
            }
            Measurement::Latency(h)
        }
        Workload::Stream | Workload::StreamBatched => {
            let phases = cell.stream_phases();
            if nanos.len() + 1 != phases.len() {
                return Err(anyhow!(
                    "the iceoryx2 runner timed another number of phases"
                ));
            }
            Measurement::Throughput {
                batch: phases[1],
                size: cell.size,
                batches: nanos.into_iter().map(Duration::from_nanos).collect(),
            }
        }
    })
}

/// One number of nanoseconds per line.
fn parse_nanos(stdout: &str) -> Result<Vec<u64>> {
    stdout
        .lines()
        .map(|l| {
            l.trim()
                .parse()
                .map_err(|_| anyhow!(format!("the iceoryx2 runner printed {l:?}, not a number")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_number_per_line_and_refuses_anything_else() {
        assert_eq!(parse_nanos("12\n345\n").expect("numbers"), vec![12, 345]);
        assert_eq!(parse_nanos("").expect("nothing"), Vec::<u64>::new());
        let err = parse_nanos("12\nready\n").expect_err("a word").to_string();
        assert!(err.contains("\"ready\""), "{err}");
    }
}
