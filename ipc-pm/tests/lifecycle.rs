//! Restart limits, memory restarts, the daemon's death, save/resurrect, config files
//! and Node's `process.send('ready')`, on a real daemon.

mod support;

use support::{fixture, processes_of, wait_gone, Ipcm};

#[test]
fn a_crash_loop_ends_errored_after_max_restarts() {
    let ipcm = Ipcm::new();
    let _ = ipcm.run(&[
        "start",
        "--name",
        "crasher",
        "--max-restarts",
        "3",
        "--min-uptime",
        "10s",
        "sh",
        "-c",
        "echo crashing; exit 1",
    ]);
    ipcm.wait_for("crasher errored", |i| i.statuses("crasher") == ["errored"]);
    assert_eq!(ipcm.instances("crasher")[0]["restarts"], 3);
    let logs = ipcm.ok(&["logs", "crasher", "--lines", "10"]);
    assert_eq!(logs.matches("crashing").count(), 4, "{logs}");
    // Each exit is in the restart history, with its exit code.
    let described: serde_json::Value =
        serde_json::from_str(&ipcm.ok(&["describe", "crasher", "--json"])).expect("json");
    let history = described[0]["history"].as_array().expect("history").clone();
    assert_eq!(history.len(), 4, "{history:?}");
    for event in &history {
        assert_eq!(event["reason"]["kind"], "crash", "{event}");
        assert_eq!(event["reason"]["status"], "exit code 1", "{event}");
        assert!(event["at"].as_str().is_some_and(|t| t.ends_with('Z')));
    }
    let text = ipcm.ok(&["describe", "crasher"]);
    assert_eq!(text.matches("crash (exit code 1)").count(), 4, "{text}");
}

#[test]
fn daemon_sigkill_leaves_no_app_process_and_resurrect_brings_the_saved_list_back() {
    let ipcm = Ipcm::new();
    let mark = format!("IPCM_TEST_MARK={}", std::process::id());
    let env = format!("--env={mark}");
    ipcm.ok(&[
        "start",
        "--name",
        "tree",
        &env,
        "sh",
        "-c",
        "sleep 1000 & sleep 1000 & wait",
    ]);
    ipcm.ok(&["start", "--name", "plain", "-i", "2", &env, "sleep", "1000"]);
    ipcm.wait_for("all processes up", |_| processes_of(&mark).len() >= 5);
    ipcm.ok(&["save"]);
    let daemon = ipcm.daemon_pid();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("SIGKILL the daemon");
    wait_gone(daemon);
    ipcm.wait_for("no app process left", |_| processes_of(&mark).is_empty());

    ipcm.ok(&["resurrect"]);
    assert_eq!(ipcm.statuses("tree"), ["online"]);
    assert_eq!(ipcm.statuses("plain"), ["online", "online"]);
    ipcm.wait_for("the apps run again", |_| processes_of(&mark).len() >= 5);
}

#[test]
fn max_memory_restart_restarts_an_app_whose_tree_grows() {
    let ipcm = Ipcm::new();
    // The shell stays small; its child grows: only the tree's RSS is over the limit.
    let grow = "import time\nheap = []\nfor _ in range(200):\n    heap.append(bytearray(1 << 20)); time.sleep(0.005)\ntime.sleep(1000)\n";
    ipcm.ok(&[
        "start",
        "--name",
        "grower",
        "--max-memory-restart",
        "60M",
        "sh",
        "-c",
        &format!("python3 -c '{grow}'; true"),
    ]);
    ipcm.wait_for("a memory restart", |i| {
        i.instances("grower")
            .first()
            .is_some_and(|x| x["restarts"].as_u64() >= Some(1))
    });
    assert!(ipcm.daemon_log().contains("over max_memory_restart"));
    let history = &ipcm.app("grower").expect("grower")["history"];
    assert_eq!(history[0]["reason"]["kind"], "memory_limit", "{history}");
    assert_eq!(history[0]["reason"]["limit"], 60 << 20, "{history}");
}

#[test]
fn a_config_file_starts_several_apps_with_the_chosen_environment() {
    let ipcm = Ipcm::new();
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("ipcm.toml");
    std::fs::write(
        &config,
        r#"
[[apps]]
name = "greeter"
cmd = ["sh", "-c", "echo greeting=$GREETING; exec sleep 1000"]
[apps.env]
GREETING = "hello"
[apps.env_production]
GREETING = "good-day"

[[apps]]
name = "counter"
cmd = "sleep 1000"
instances = 2
kill_timeout = "500ms"
"#,
    )
    .expect("write config");
    // pm2's order: the file, then the environment.
    ipcm.ok(&[
        "start",
        config.to_str().expect("utf-8"),
        "--env-name",
        "production",
    ]);
    assert_eq!(ipcm.statuses("greeter"), ["online"]);
    assert_eq!(ipcm.statuses("counter"), ["online", "online"]);
    assert_eq!(
        ipcm.app("counter").expect("counter")["spec"]["kill_timeout_ms"],
        500
    );
    ipcm.wait_for("the production greeting", |i| {
        i.ok(&["logs", "greeter", "--lines", "5"])
            .contains("greeting=good-day")
    });
    let err = ipcm.fails(&[
        "start",
        "--env-name",
        "staging",
        config.to_str().expect("utf-8"),
    ]);
    assert!(err.contains("env_staging"), "{err}");
}

#[test]
fn a_node_app_says_ready_with_process_send() {
    let ipcm = Ipcm::new();
    let script = fixture("ready.js");
    let script = script.to_str().expect("utf-8");
    ipcm.ok(&["start", "--name", "node-ready", "--wait-ready", script]);
    assert_eq!(ipcm.statuses("node-ready"), ["online"]);
    ipcm.wait_for("its log", |i| {
        i.ok(&["logs", "node-ready", "--lines", "5"])
            .contains("ready sent")
    });

    let err = ipcm.fails(&[
        "start",
        "--name",
        "node-silent",
        "--wait-ready",
        "--listen-timeout",
        "500ms",
        "--max-restarts",
        "0",
        script,
        "never",
    ]);
    assert!(err.contains("did not become ready"), "{err}");
    ipcm.wait_for("node-silent errored", |i| {
        i.statuses("node-silent") == ["errored"]
    });
}
