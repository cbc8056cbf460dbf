//! Killing the client (SIGKILL) in the middle of a command disturbs neither the daemon
//! nor the apps: the daemon finishes what it was asked and keeps serving.

mod support;

use std::process::{Child, Stdio};

use support::{alive, fixture, processes_of, wait_gone, Ipcm};

/// `ipcm ARGS` in the background.
fn spawn(ipcm: &Ipcm, args: &[&str]) -> Child {
    ipcm.command(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ipcm")
}

/// SIGKILL the client and reap it.
fn kill(mut client: Child) {
    client.kill().expect("SIGKILL the client");
    let _ = client.wait();
}

/// `ipcm start` of the gated app, which is ready once `gate` exists.
fn start_args<'a>(gate: &'a str, script: &'a str, mark: &'a str) -> Vec<&'a str> {
    vec![
        "start",
        "--name",
        "gated",
        "--wait-ready",
        "--listen-timeout",
        "60s",
        mark,
        "python3",
        script,
        gate,
    ]
}

#[test]
fn killing_the_client_during_start_leaves_the_start_to_finish() {
    let ipcm = Ipcm::new();
    let gate = ipcm.home().join("gate");
    let gate = gate.to_str().expect("utf-8");
    let script = fixture("gate.py");
    let script = script.to_str().expect("utf-8");
    let mark = format!("--env=IPCM_TEST_MARK=start-{}", std::process::id());
    let client = spawn(&ipcm, &start_args(gate, script, &mark));
    ipcm.wait_for("the start under way", |i| {
        i.requests_read("Start") == 1 && i.statuses("gated") == ["launching"]
    });
    let daemon = ipcm.daemon_pid();
    kill(client);
    std::fs::write(gate, "open").expect("open the gate");
    ipcm.wait_for("gated online", |i| i.statuses("gated") == ["online"]);
    assert!(alive(daemon), "the daemon runs");
    assert!(alive(ipcm.pids("gated")[0]));
    assert_eq!(
        ipcm.app("gated").expect("gated")["instances"][0]["restarts"],
        0
    );
}

#[test]
fn killing_the_client_during_list_disturbs_nothing() {
    let ipcm = Ipcm::new();
    ipcm.ok(&["start", "--name", "napper", "-i", "2", "sleep", "1000"]);
    ipcm.wait_for("napper online", |i| {
        i.statuses("napper") == ["online", "online"]
    });
    let pids = ipcm.pids("napper");
    let daemon = ipcm.daemon_pid();
    for _ in 0..5 {
        let read = ipcm.requests_read("List");
        let client = spawn(&ipcm, &["list"]);
        // Killed once the daemon has the request: while it answers, or just after.
        ipcm.wait_for("the list request read", |i| i.requests_read("List") > read);
        kill(client);
    }
    assert!(alive(daemon), "the daemon runs");
    assert_eq!(ipcm.pids("napper"), pids);
    assert_eq!(ipcm.statuses("napper"), ["online", "online"]);
}

#[test]
fn killing_the_client_during_reload_leaves_the_reload_to_finish() {
    let ipcm = Ipcm::new();
    let gate_path = ipcm.home().join("gate");
    let gate = gate_path.to_str().expect("utf-8");
    let script = fixture("gate.py");
    let script = script.to_str().expect("utf-8");
    let mark_env = format!("IPCM_TEST_MARK=reload-{}", std::process::id());
    let mark = format!("--env={mark_env}");
    std::fs::write(gate, "open").expect("open the gate");
    ipcm.ok(&start_args(gate, script, &mark));
    let old = ipcm.pids("gated");
    assert_eq!(old.len(), 1);
    // The replacement waits at the closed gate: the reload is held in the middle.
    std::fs::remove_file(gate).expect("close the gate");
    let client = spawn(&ipcm, &["reload", "gated"]);
    ipcm.wait_for("the replacement started", |i| {
        i.requests_read("Reload") == 1 && processes_of(&mark_env).len() == 2
    });
    let daemon = ipcm.daemon_pid();
    kill(client);
    assert_eq!(ipcm.pids("gated"), old, "the old one serves meanwhile");
    std::fs::write(gate, "open").expect("open the gate");
    ipcm.wait_for("the replacement online", |i| {
        let pids = i.pids("gated");
        pids.len() == 1 && pids != old && i.statuses("gated") == ["online"]
    });
    wait_gone(old[0]);
    assert!(alive(daemon), "the daemon runs");
    let history = &ipcm.app("gated").expect("gated")["history"];
    assert_eq!(history[0]["reason"]["kind"], "reload", "{history}");
}
