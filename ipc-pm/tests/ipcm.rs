//! `ipcm` on a real daemon in a temporary `IPCM_HOME`: real processes, real sockets.

mod support;

use std::os::unix::fs::PermissionsExt;

use support::{alive, wait_gone, Ipcm};

#[test]
fn start_list_stop_restart_delete_round_trip() {
    let ipcm = Ipcm::new();
    let out = ipcm.ok(&["start", "--name", "napper", "sleep", "1000"]);
    assert!(out.contains("napper"), "{out}");
    ipcm.wait_for("napper online", |i| i.statuses("napper") == ["online"]);
    let pid = ipcm.pids("napper")[0];
    assert!(alive(pid));
    ipcm.wait_for("memory and CPU sampled", |i| {
        let napper = &i.instances("napper")[0];
        napper["memory"].as_u64().is_some_and(|m| m > 0) && napper["cpu_percent"].is_f64()
    });

    let table = ipcm.ok(&["list"]);
    for column in [
        "name", "id", "mode", "pid", "status", "uptime", "restarts", "cpu", "mem",
    ] {
        assert!(table.contains(column), "{table}");
    }
    assert!(table.contains(&pid.to_string()), "{table}");

    ipcm.ok(&["stop", "napper"]);
    wait_gone(pid);
    assert_eq!(ipcm.statuses("napper"), ["stopped"]);

    ipcm.ok(&["restart", "napper"]);
    ipcm.wait_for("napper online again", |i| {
        i.statuses("napper") == ["online"]
    });
    let again = ipcm.pids("napper")[0];
    assert_ne!(again, pid);
    assert_eq!(ipcm.instances("napper")[0]["restarts"], 1);
    let history = &ipcm.app("napper").expect("napper")["history"];
    assert_eq!(history[0]["reason"]["kind"], "restart", "{history}");

    let described = ipcm.ok(&["describe", "napper", "--json"]);
    let described: serde_json::Value = serde_json::from_str(&described).expect("json");
    assert_eq!(described[0]["spec"]["cmd"][0], "sleep");

    ipcm.ok(&["delete", "napper"]);
    wait_gone(again);
    assert!(ipcm.app("napper").is_none());
    let err = ipcm.fails(&["stop", "napper"]);
    assert!(err.contains("no app named"), "{err}");

    let mode = std::fs::metadata(ipcm.home())
        .expect("home")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    ipcm.ok(&["kill"]);
    assert!(!ipcm.home().join("ipcm.sock").exists());
}

#[test]
fn a_stopped_app_starts_again_by_name_and_kill_stops_everything() {
    let ipcm = Ipcm::new();
    ipcm.ok(&["start", "--name", "a", "sleep", "1000"]);
    ipcm.ok(&["start", "--name", "b", "-i", "2", "sleep", "1000"]);
    ipcm.wait_for("three online", |i| {
        i.statuses("a") == ["online"] && i.statuses("b") == ["online", "online"]
    });
    ipcm.ok(&["stop", "a"]);
    ipcm.ok(&["start", "a"]);
    ipcm.wait_for("a online", |i| i.statuses("a") == ["online"]);
    let mut pids = ipcm.pids("a");
    pids.extend(ipcm.pids("b"));
    assert_eq!(pids.len(), 3);
    let err = ipcm.fails(&["start", "--name", "a", "sleep", "1"]);
    assert!(err.contains("already runs"), "{err}");
    ipcm.ok(&["kill"]);
    for pid in pids {
        wait_gone(pid);
    }
}

#[test]
fn memory_and_cpu_show_a_dash_until_they_are_sampled() {
    // The daemon samples for the first time an hour after its start.
    let ipcm = Ipcm::with_monitor_interval("1h");
    ipcm.ok(&["start", "--name", "napper", "sleep", "1000"]);
    ipcm.wait_for("napper online", |i| i.statuses("napper") == ["online"]);
    let instance = &ipcm.instances("napper")[0];
    assert!(instance["memory"].is_null(), "{instance}");
    assert!(instance["cpu_percent"].is_null(), "{instance}");
    let table = ipcm.ok(&["list"]);
    let row = table
        .lines()
        .find(|l| l.contains("napper"))
        .expect("napper's row");
    let last: Vec<&str> = row.split_whitespace().rev().take(2).collect();
    assert_eq!(last, ["-", "-"], "cpu and mem: {table}");
    let described = ipcm.ok(&["describe", "napper"]);
    assert!(described.contains("mem -"), "{described}");
}
