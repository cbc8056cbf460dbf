//! `ipc-bench --cluster` end to end with tiny counts: a row per mode and worker count
//! (and Node's when `node` is there), no failed request, CPU per request present, with
//! and without `--split-cpus`. Shape only, never speed.

use std::process::Command;

use serde_json::Value;

#[test]
fn cluster_rows_for_every_mode_and_worker_count() {
    check_cluster_run(&[], "shared");
}

/// `--split-cpus` needs two CPUs; on one it must refuse, which is checked too.
#[test]
fn cluster_rows_with_split_cpus() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus >= 2 {
        check_cluster_run(&["--split-cpus"], "split");
    } else {
        let out = Command::new(env!("CARGO_BIN_EXE_ipc-bench"))
            .args(["--cluster", "--split-cpus", "--cluster-requests", "10"])
            .output()
            .expect("run ipc-bench --cluster --split-cpus");
        assert!(!out.status.success());
    }
}

fn check_cluster_run(extra: &[&str], placement: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("cluster.json");
    let out = Command::new(env!("CARGO_BIN_EXE_ipc-bench"))
        .args(extra)
        .args([
            "--cluster",
            "--cluster-workers",
            "2",
            "--cluster-connections",
            "2",
            "--cluster-requests",
            "40",
        ])
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run ipc-bench --cluster");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("rows");
    for workers in [1, 2] {
        for mode in ["shared", "rr", "reuseport"] {
            let row = rows
                .iter()
                .find(|r| {
                    r["server"] == "ipc-cluster" && r["mode"] == mode && r["workers"] == workers
                })
                .unwrap_or_else(|| panic!("no row for {mode} x{workers}: {stdout}"));
            assert_eq!(row["errors"], 0, "{row}");
            assert!(row["rps"].as_f64().unwrap_or(0.0) > 0.0, "{row}");
            assert!(
                row["server_cpu_us_per_req"].as_f64().unwrap_or(0.0) > 0.0,
                "{row}"
            );
            assert!(
                row["loadgen_cpu_us_per_req"].as_f64().unwrap_or(0.0) > 0.0,
                "{row}"
            );
            assert_eq!(row["placement"], placement, "{row}");
        }
    }
    let node_rows = rows
        .iter()
        .filter(|r| r["server"] == "node-cluster")
        .count();
    let has_node = Command::new("node").arg("--version").output().is_ok();
    assert_eq!(node_rows, if has_node { 4 } else { 0 }, "{stdout}");
    if has_node {
        assert!(stdout.contains("ratio: ipc-cluster"), "{stdout}");
        assert!(stdout.contains("less server CPU per request"), "{stdout}");
    }
}
