//! End to end: the bench binary in quick mode with tiny counts writes a JSON report with
//! a row for every registered transport, every raw baseline (the epoll, tokio and
//! io_uring floors with round trips only), Node and the Rust <-> Node pairings (or the
//! reason Node was skipped), and the floor lines beside the round-trip targets;
//! `--stream-cpus` places streams and refuses what it cannot do. Shape only, never
//! speed. The io_uring floors need io_uring (kernel 5.6+, not turned off, not
//! forbidden by seccomp): without it they are skipped, with the reason, as Node's rows
//! are without Node.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;

const RAW: [&str; 5] = [
    "raw-socketpair",
    "raw-pipe",
    "raw-fifo",
    "raw-tcp",
    "raw-stdio",
];
/// The epoll floors: round trips only (unpinned and pinned), every size.
const EPOLL: [&str; 5] = [
    "raw-socketpair-epoll",
    "raw-pipe-epoll",
    "raw-fifo-epoll",
    "raw-tcp-epoll",
    "raw-stdio-epoll",
];
/// The tokio floors, waiting and spinning: round trips only (unpinned and pinned),
/// every size.
const TOKIO: [&str; 6] = [
    "raw-socketpair-tokio",
    "raw-pipe-tokio",
    "raw-tcp-tokio",
    "raw-socketpair-tokio-fd",
    "raw-pipe-tokio-spin",
    "raw-socketpair-tokio-fd-spin",
];
/// The io_uring floors: round trips only (unpinned and pinned), every size.
const URING: [&str; 3] = ["raw-socketpair-uring", "raw-pipe-uring", "raw-tcp-uring"];
/// Node rows, and the Rust <-> Node rows: all need `node`.
const NODE: [&str; 4] = [
    "node-json",
    "node-advanced",
    "rust-parent-node-child",
    "node-parent-rust-child",
];

/// Run the bench with tiny counts plus `extra` arguments; return its JSON report.
fn run(extra: &[&str]) -> Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("report.json");
    let csv = dir.path().join("report.csv");
    let svg = dir.path().join("report.svg");
    let out = Command::new(env!("CARGO_BIN_EXE_ipc-bench"))
        .args([
            "--quick",
            "--rounds",
            "3",
            "--stream-messages",
            "4",
            "--warmup",
            "1",
        ])
        .arg("--json")
        .arg(&json)
        .arg("--csv")
        .arg(&csv)
        .arg("--svg")
        .arg(&svg)
        .args(extra)
        .output()
        .expect("run ipc-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ipc-bench failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("runner"), "no table on stdout:\n{stdout}");
    let csv = std::fs::read_to_string(&csv).expect("csv written");
    assert!(csv.starts_with("runner,kind,size,"), "csv header: {csv}");
    let svg = std::fs::read_to_string(&svg).expect("svg written");
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    serde_json::from_str(&std::fs::read_to_string(&json).expect("json written"))
        .expect("valid json")
}

/// (runner, size) pairs with both an RTT and a stream figure.
fn measured(report: &Value) -> BTreeSet<(String, u64)> {
    report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| !r["rtt"].is_null() && !r["rtt_pinned"].is_null() && !r["stream"].is_null())
        .map(|r| {
            (
                r["runner"].as_str().expect("runner").to_string(),
                r["size"].as_u64().expect("size"),
            )
        })
        .collect()
}

#[test]
fn every_transport_baseline_and_node_has_rows() {
    let report = run(&[]);
    let rows = measured(&report);
    let has = |name: &str, size: u64| rows.contains(&(name.to_string(), size));
    for name in ipc::registry().names() {
        assert!(has(name, 64), "no 64 B row for transport {name}: {rows:?}");
    }
    for name in RAW {
        for size in [64, 1024, 65536] {
            assert!(has(name, size), "no {size} B row for {name}: {rows:?}");
        }
    }
    let all_rows = report["rows"].as_array().expect("rows");
    let skipped = report["skipped"].as_array().expect("skipped");
    // Without io_uring (a container's seccomp filter, say) its floors are skipped,
    // each with the reason.
    let uring_skipped = URING.iter().all(|name| {
        skipped.iter().any(|s| {
            s["name"] == *name && s["reason"].as_str().is_some_and(|r| r.contains("io_uring"))
        })
    });
    let uring_rows: &[&str] = if uring_skipped { &[] } else { &URING };
    for name in EPOLL
        .into_iter()
        .chain(TOKIO)
        .chain(uring_rows.iter().copied())
    {
        for size in [64, 1024, 65536] {
            let row = all_rows
                .iter()
                .find(|r| r["runner"] == name && r["size"] == size)
                .unwrap_or_else(|| panic!("no {size} B row for {name}"));
            assert!(
                !row["rtt"].is_null() && !row["rtt_pinned"].is_null(),
                "{name} {size} B has no round trips: {row}"
            );
            assert!(row["stream"].is_null(), "{name} streamed: {row}");
        }
    }
    let targets = report["targets"].as_array().expect("targets");
    for (subject, epoll, tokio, uring) in [
        (
            "uds",
            "raw-socketpair-epoll",
            &["raw-socketpair-tokio", "raw-socketpair-tokio-fd"][..],
            Some("raw-socketpair-uring"),
        ),
        (
            "pipe",
            "raw-pipe-epoll",
            &["raw-pipe-tokio"][..],
            Some("raw-pipe-uring"),
        ),
        (
            "tcp",
            "raw-tcp-epoll",
            &["raw-tcp-tokio"][..],
            Some("raw-tcp-uring"),
        ),
        ("fifo", "raw-fifo-epoll", &[][..], None),
    ] {
        let floor = targets
            .iter()
            .filter(|t| t["subject"] == subject)
            .find(|t| {
                t["target"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("pinned p50"))
            })
            .map(|t| &t["floor"])
            .unwrap_or_else(|| panic!("no pinned p50 target for {subject}"));
        assert_eq!(floor["epoll"], epoll, "{subject}'s floor: {floor}");
        assert!(floor["epoll_vs_blocking"].as_f64().is_some(), "{floor}");
        assert!(floor["subject_vs_epoll"].as_f64().is_some(), "{floor}");
        let floors = floor["tokio"].as_array().map_or(&[][..], Vec::as_slice);
        let names: Vec<&str> = floors.iter().filter_map(|t| t["runner"].as_str()).collect();
        assert_eq!(names, tokio, "{subject}'s tokio floors: {floor}");
        for t in floors {
            assert!(t["vs_blocking"].as_f64().is_some(), "{floor}");
            assert!(t["subject_vs"].as_f64().is_some(), "{floor}");
        }
        match uring {
            Some(_) if uring_skipped => {
                let u = &floor["uring"];
                assert!(
                    u.is_null() || u["vs_blocking"].is_null(),
                    "{subject}: a skipped io_uring floor has figures: {floor}"
                );
            }
            Some(uring) => {
                let u = &floor["uring"];
                assert_eq!(u["runner"], uring, "{subject}'s io_uring floor: {floor}");
                assert!(u["vs_blocking"].as_f64().is_some(), "{floor}");
                assert!(u["subject_vs"].as_f64().is_some(), "{floor}");
            }
            None => assert!(floor["uring"].is_null(), "{subject}: {floor}"),
        }
    }
    for name in NODE {
        let skip = skipped.iter().find(|s| s["name"] == name);
        match skip {
            Some(s) => assert!(!s["reason"].as_str().unwrap_or("").is_empty()),
            None => assert!(has(name, 64), "neither rows nor a skip reason for {name}"),
        }
    }
    for row in report["rows"].as_array().expect("rows") {
        if row["kind"] == "interop" {
            assert_eq!(row["baseline"], "raw-socketpair", "interop row {row}");
        }
    }
    assert!(report["machine"]["cpus"].as_u64().expect("cpus") >= 1);
    assert!(!report["targets"].as_array().expect("targets").is_empty());
}

#[test]
fn missing_node_is_recorded_as_skipped() {
    let report = run(&[
        "--node",
        "/nonexistent/node",
        "--sizes",
        "64",
        "--only",
        "raw-pipe,node-json,node-advanced,rust-parent-node-child,node-parent-rust-child",
    ]);
    let skipped = report["skipped"].as_array().expect("skipped");
    for name in NODE {
        let s = skipped
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("{name} not recorded as skipped: {skipped:?}"));
        assert!(s["reason"]
            .as_str()
            .expect("reason")
            .contains("not on PATH"));
    }
    assert!(measured(&report).contains(&("raw-pipe".to_string(), 64)));
}

/// The CPUs this process may run on, from `/proc/self/status` (`0-1`, `0,2-3`, ...).
fn allowed_cpus() -> Vec<usize> {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .expect("Cpus_allowed_list")
        .trim()
        .to_string();
    let cpu = |s: &str| -> usize { s.parse().expect("a CPU number") };
    let mut cpus = Vec::new();
    for part in list.split(',') {
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(cpu(a)..=cpu(b)),
            None => cpus.push(cpu(part)),
        }
    }
    cpus
}

#[test]
fn streams_run_on_the_two_cpus_given() {
    let cpus = allowed_cpus();
    let [parent, child, ..] = cpus[..] else {
        eprintln!("one CPU only: --stream-cpus needs two");
        return;
    };
    let pair = format!("{parent},{child}");
    let report = run(&[
        "--stream-cpus",
        &pair,
        "--sizes",
        "64",
        "--only",
        "uds,shm,raw-socketpair,raw-shm",
        "--workloads",
        "stream,stream-batched",
    ]);
    assert_eq!(
        report["machine"]["stream_cpus"],
        serde_json::json!([parent, child])
    );
    let rows = report["rows"].as_array().expect("rows");
    for name in ["uds", "shm", "raw-socketpair", "raw-shm"] {
        let row = rows
            .iter()
            .find(|r| r["runner"] == name && r["size"] == 64)
            .unwrap_or_else(|| panic!("no {name} row: {rows:?}"));
        assert!(!row["stream"].is_null(), "{name}: no stream figure: {row}");
    }
}

#[test]
fn stream_cpus_must_be_two_allowed_cpus() {
    for (bad, says) in [
        ("0", "takes two CPUs"),
        ("0,100000", "may only run on CPUs"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_ipc-bench"))
            .args(["--quick", "--stream-cpus", bad])
            .output()
            .expect("run ipc-bench");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "--stream-cpus {bad} was accepted");
        assert!(stderr.contains(says), "--stream-cpus {bad}: {stderr}");
    }
}

#[test]
fn repeat_runs_every_cell_again_and_reports_the_range() {
    let report = run(&[
        "--repeat",
        "3",
        "--sizes",
        "64",
        "--only",
        "shm,raw-socketpair",
        "--workloads",
        "rtt,stream,stream-batched",
    ]);
    assert_eq!(report["machine"]["repeat"], 3);
    let rows = report["rows"].as_array().expect("rows");
    for name in ["shm", "raw-socketpair"] {
        let row = rows
            .iter()
            .find(|r| r["runner"] == name && r["size"] == 64)
            .unwrap_or_else(|| panic!("no {name} row: {rows:?}"));
        assert_eq!(
            row["rtt"]["count"], 9,
            "{name}: the round trips of all three runs (3 each): {row}"
        );
        for cell in ["stream", "batched"] {
            let t = &row[cell];
            assert_eq!(t["runs"], 3, "{name} {cell}: {t}");
            let rate = |field: &str| t[field].as_f64().expect(field);
            assert!(
                rate("min_msgs_per_s") <= rate("msgs_per_s")
                    && rate("msgs_per_s") <= rate("max_msgs_per_s"),
                "{name} {cell}: the median run lies between the slowest and the fastest: {t}"
            );
        }
    }
}

#[test]
fn repeat_must_be_at_least_one() {
    let out = Command::new(env!("CARGO_BIN_EXE_ipc-bench"))
        .args(["--quick", "--repeat", "0"])
        .output()
        .expect("run ipc-bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "--repeat 0 was accepted");
    assert!(stderr.contains("--repeat"), "{stderr}");
}
