//! `ipc-bench --pm` end to end with tiny counts: the ipcm half always (pm2 only when it
//! is on PATH; never installed here), a row for every figure, the targets, the JSON
//! report, and no daemon or app left behind. Shape only, never speed.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The directory of this profile's binaries (`target/debug`, `target/release`).
fn profile_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_ipc-bench"))
        .parent()
        .expect("the bench binary's directory")
        .to_path_buf()
}

/// `ipcm` of the same profile. `cargo test -p ipc-bench` does not build another
/// package's binaries, so it is built here (a no-op after `cargo test --workspace`).
fn ipcm() -> PathBuf {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "-p", "ipc-pm", "--bin", "ipcm"])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
    if profile_dir().ends_with("release") {
        cmd.arg("--release");
    }
    let out = cmd.output().expect("run cargo build -p ipc-pm");
    assert!(
        out.status.success(),
        "building ipcm failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = profile_dir().join("ipcm");
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// Processes whose environment mentions `needle` (the bench's temp dirs are unique).
fn environments_mentioning(needle: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
            let text = String::from_utf8_lossy(&environ).into_owned();
            text.contains(needle).then(|| format!("{pid}"))
        })
        .collect()
}

#[test]
fn pm_report_has_every_row_for_ipcm_and_leaves_nothing_running() {
    let ipcm = ipcm();
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("pm.json");
    let out = Command::new(env!("CARGO_BIN_EXE_ipc-bench"))
        .args(["--pm", "--quick", "--pm-apps", "3", "--pm-rounds", "2"])
        .arg("--ipcm")
        .arg(&ipcm)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run ipc-bench --pm");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}\n{stdout}\n{stderr}", out.status);
    for row in [
        "daemon start (first command)",
        "daemon RSS idle",
        "daemon RSS with 3 apps",
        "start p50",
        "list p50 (3 apps)",
        "crash-to-restart p50",
        "floor: app start p50",
        "idle daemon < 10 MB RSS",
        "crash-to-restart p50 < 50 ms + delay (0 ms)",
    ] {
        assert!(stdout.contains(row), "no {row:?} row:\n{stdout}");
    }
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("report");
    let managers = report["managers"].as_array().expect("managers");
    let ipcm_row = &managers[0];
    assert_eq!(ipcm_row["manager"], "ipcm", "{report}");
    assert!(
        ipcm_row["rss_idle_bytes"].as_u64().unwrap_or(0) > 0,
        "{report}"
    );
    assert!(
        ipcm_row["rss_apps_bytes"].as_u64().unwrap_or(0) > 0,
        "{report}"
    );
    assert_eq!(ipcm_row["start"]["count"], 3, "{report}");
    assert_eq!(ipcm_row["list"]["count"], 2, "{report}");
    assert_eq!(ipcm_row["crash_to_restart"]["count"], 2, "{report}");
    if managers.len() == 2 {
        assert_eq!(managers[1]["manager"], "pm2", "{report}");
        assert!(stdout.contains("ipcm/pm2"), "{stdout}");
    } else {
        assert!(
            stdout.contains("pm2: skipped (not installed; pass --install-pm2)"),
            "{stdout}"
        );
    }
    // Every daemon and app the run started had its private home in a temp dir named
    // after the bench; none may outlive it.
    let left = environments_mentioning("ipc-bench-ipcm-");
    assert!(left.is_empty(), "processes left behind: {left:?}");
}
