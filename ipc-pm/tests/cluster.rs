//! Cluster modes: instances of any program sharing one port through systemd socket
//! activation (`LISTEN_FDS` at fd 3), Rust workers in `rr` mode, rolling reload gated
//! on ready, scale.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use support::{fixture, wait_gone, Ipcm, GUARD};

/// One HTTP/1.0 GET; the body, or why it failed.
fn get(port: u16) -> Result<String, String> {
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(GUARD))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut reply = String::new();
    stream
        .read_to_string(&mut reply)
        .map_err(|e| format!("read: {e}"))?;
    if reply.split_whitespace().nth(1) != Some("200") {
        return Err(format!("bad reply: {reply:?}"));
    }
    Ok(reply
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or("")
        .trim()
        .to_string())
}

/// Start `name` with two instances of the Python fixture in `mode`; its port.
fn start_server(ipcm: &Ipcm, name: &str, mode: &str, broken_marker: &std::path::Path) -> u16 {
    let script = fixture("server.py");
    start_two(
        ipcm,
        name,
        mode,
        &[
            "python3",
            script.to_str().expect("utf-8 path"),
            broken_marker.to_str().expect("utf-8 path"),
        ],
    )
}

/// Start `name` with two instances of `program` in `mode`, ready-gated; its port.
fn start_two(ipcm: &Ipcm, name: &str, mode: &str, program: &[&str]) -> u16 {
    let mut args = vec![
        "start",
        "--name",
        name,
        "-i",
        "2",
        "--mode",
        mode,
        "--listen",
        "127.0.0.1:0",
        "--wait-ready",
        "--listen-timeout",
        "3s",
        "--kill-timeout",
        "5s",
    ];
    args.extend_from_slice(program);
    ipcm.ok(&args);
    assert_eq!(ipcm.statuses(name), ["online", "online"]);
    let app = ipcm.app(name).expect("listed");
    let address = app["address"].as_str().expect("bound address").to_string();
    address
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port")
}

/// The Rust worker of `rr` mode (`examples/rr_worker.rs`).
fn rr_worker() -> String {
    ipc_core::testkit::built_example("rr_worker")
        .to_str()
        .expect("utf-8 path")
        .to_string()
}

/// Requests until both instances answered (bounded).
fn both_instances_answer(port: u16) {
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..2000 {
        let body = get(port).expect("request");
        let instance = body
            .split("instance=")
            .nth(1)
            .expect("instance")
            .to_string();
        seen.insert(instance);
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["0", "1"]);
}

#[test]
fn two_python_instances_share_one_port_through_listen_fds() {
    for mode in ["shared", "reuseport"] {
        let ipcm = Ipcm::new();
        let marker = ipcm.home().join("broken");
        let port = start_server(&ipcm, "web", mode, &marker);
        both_instances_answer(port);
        let pids = ipcm.pids("web");
        ipcm.ok(&["stop", "web"]);
        for pid in pids {
            wait_gone(pid);
        }
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "{mode}: the port is released"
        );
    }
}

#[test]
fn reload_under_continuous_load_fails_no_request() {
    let ipcm = Ipcm::new();
    let marker = ipcm.home().join("broken");
    let port = start_server(&ipcm, "web", "shared", &marker);
    reload_twice_under_load(&ipcm, "web", port);
}

#[test]
fn rr_hands_connections_to_both_rust_workers_and_reloads_under_load() {
    let ipcm = Ipcm::new();
    let worker = rr_worker();
    let port = start_two(&ipcm, "web", "rr", &[&worker]);
    assert_eq!(ipcm.app("web").expect("listed")["mode"], "rr");
    both_instances_answer(port);
    reload_twice_under_load(&ipcm, "web", port);
    assert_eq!(ipcm.instances("web")[0]["restarts"], 2);
    let history = ipcm.app("web").expect("web")["history"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(history.len(), 4, "two reloads of two workers: {history:?}");
    assert!(history.iter().all(|e| e["reason"]["kind"] == "reload"));
    let pids = ipcm.pids("web");
    ipcm.ok(&["stop", "web"]);
    for pid in pids {
        wait_gone(pid);
    }
    assert_eq!(ipcm.statuses("web"), ["stopped", "stopped"]);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the port is released"
    );
}

#[test]
fn node_instances_clustered_on_one_port_say_ready_with_process_send() {
    let ipcm = Ipcm::new();
    let script = fixture("cluster_ready.js");
    let script = script.to_str().expect("utf-8 path");
    // --wait-ready: `start` returns once both said ready over Node's channel (fd 4; fd 3
    // is the socket).
    let port = start_two(&ipcm, "node-web", "shared", &[script]);
    both_instances_answer(port);
    let before = ipcm.pids("node-web");
    ipcm.ok(&["reload", "node-web"]);
    let after = ipcm.pids("node-web");
    assert_eq!(after.len(), 2);
    assert!(after.iter().all(|p| !before.contains(p)), "replaced");
    both_instances_answer(port);
}

/// Two rolling reloads of `name` while four clients send requests: none fails, and
/// every instance is replaced.
fn reload_twice_under_load(ipcm: &Ipcm, name: &str, port: u16) {
    let before = ipcm.pids(name);
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (stop, ok) = (stop.clone(), ok.clone());
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    match get(port) {
                        Ok(_) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => failures.push(e),
                    }
                }
                failures
            })
        })
        .collect();
    ipcm.wait_for("load running", |_| ok.load(Ordering::Relaxed) > 20);
    ipcm.ok(&["reload", name]);
    ipcm.ok(&["reload", name]);
    let served = ok.load(Ordering::Relaxed);
    ipcm.wait_for("load after the reloads", |_| {
        ok.load(Ordering::Relaxed) > served + 20
    });
    stop.store(true, Ordering::Relaxed);
    let failures: Vec<String> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("client"))
        .collect();
    assert!(
        failures.is_empty(),
        "{} failed requests: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    let after = ipcm.pids(name);
    assert_eq!(after.len(), 2);
    assert!(
        after.iter().all(|p| !before.contains(p)),
        "every instance was replaced"
    );
    assert_eq!(ipcm.statuses(name), ["online", "online"]);
}

#[test]
fn a_new_version_that_never_gets_ready_leaves_the_old_one_serving() {
    let ipcm = Ipcm::new();
    let marker = ipcm.home().join("broken");
    let port = start_server(&ipcm, "web", "shared", &marker);
    let before = ipcm.pids("web");
    std::fs::write(&marker, "broken").expect("marker");
    let err = ipcm.fails(&["reload", "web"]);
    assert!(
        err.contains("did not become ready") && err.contains("old one keeps running"),
        "{err}"
    );
    assert_eq!(ipcm.pids("web"), before);
    assert_eq!(ipcm.statuses("web"), ["online", "online"]);
    for _ in 0..20 {
        let body = get(port).expect("the old version serves");
        assert!(
            before.iter().any(|p| body.contains(&format!("pid={p} "))),
            "{body}"
        );
    }
    let logs = ipcm.ok(&["logs", "web", "--lines", "50"]);
    assert!(logs.contains("broken version"), "{logs}");
}

#[test]
fn scale_up_and_down() {
    let ipcm = Ipcm::new();
    let marker = ipcm.home().join("broken");
    let port = start_server(&ipcm, "web", "shared", &marker);
    ipcm.ok(&["scale", "web", "3"]);
    assert_eq!(ipcm.statuses("web"), ["online", "online", "online"]);
    let pids = ipcm.pids("web");
    ipcm.ok(&["scale", "web", "1"]);
    assert_eq!(ipcm.statuses("web"), ["online"]);
    for pid in &pids[1..] {
        wait_gone(*pid);
    }
    get(port).expect("one instance serves");
}

/// Requests from four clients until `stop`; the failures.
fn load(
    port: u16,
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
) -> Vec<std::thread::JoinHandle<Vec<String>>> {
    (0..4)
        .map(|_| {
            let (stop, ok) = (stop.clone(), ok.clone());
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    match get(port) {
                        Ok(_) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => failures.push(e),
                    }
                }
                failures
            })
        })
        .collect()
}

#[test]
fn rr_scale_up_and_down_under_load_keeps_the_serving_workers_and_fails_nothing() {
    let ipcm = Ipcm::new();
    let worker = rr_worker();
    let port = start_two(&ipcm, "web", "rr", &[&worker]);
    let before = ipcm.pids("web");
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let clients = load(port, stop.clone(), ok.clone());
    ipcm.wait_for("load running", |_| ok.load(Ordering::Relaxed) > 20);
    ipcm.ok(&["scale", "web", "3"]);
    assert_eq!(ipcm.statuses("web"), ["online", "online", "online"]);
    let three = ipcm.pids("web");
    assert_eq!(&three[..2], &before[..], "scaling up restarts nobody");
    ipcm.ok(&["scale", "web", "1"]);
    assert_eq!(ipcm.statuses("web"), ["online"]);
    assert_eq!(
        ipcm.pids("web"),
        [before[0]],
        "scaling down keeps instance 0"
    );
    for pid in &three[1..] {
        wait_gone(*pid);
    }
    let served = ok.load(Ordering::Relaxed);
    ipcm.wait_for("load after the scale", |_| {
        ok.load(Ordering::Relaxed) > served + 20
    });
    stop.store(true, Ordering::Relaxed);
    let failures: Vec<String> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("client"))
        .collect();
    assert!(
        failures.is_empty(),
        "{} failed requests: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(ipcm.instances("web")[0]["restarts"], 0);
}

#[test]
fn an_rr_app_that_fails_to_start_shows_errored() {
    let ipcm = Ipcm::new();
    // `true` exits at once, before it is ready: no cluster.
    let err = ipcm.fails(&[
        "start",
        "--name",
        "web",
        "-i",
        "2",
        "--mode",
        "rr",
        "--listen",
        "127.0.0.1:0",
        "true",
    ]);
    assert!(err.contains("did not start"), "{err}");
    assert_eq!(ipcm.statuses("web"), ["errored", "errored"]);
}

#[test]
fn list_during_an_rr_reload_follows_the_cluster() {
    let ipcm = Ipcm::new();
    let worker = rr_worker();
    let marker = ipcm.home().join("broken");
    let marker = marker.to_str().expect("utf-8 path");
    ipcm.ok(&[
        "start",
        "--name",
        "web",
        "-i",
        "2",
        "--mode",
        "rr",
        "--listen",
        "127.0.0.1:0",
        "--listen-timeout",
        "10s",
        "--kill-timeout",
        "5s",
        &worker,
        marker,
    ]);
    assert_eq!(ipcm.statuses("web"), ["online", "online"]);
    let victim = ipcm.pids("web")[1];
    // The new version never gets ready: the reload waits (listen_timeout) at
    // instance 0 while instance 1 is killed and restarted.
    std::fs::write(marker, "broken").expect("marker");
    let reload = {
        let mut command = ipcm.command(&["reload", "web"]);
        std::thread::spawn(move || command.output().expect("run ipcm reload"))
    };
    ipcm.wait_for("the reload started", |i| i.requests_read("Reload") > 0);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(victim as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9 instance 1");
    ipcm.wait_for("instance 1 no longer shown as the killed worker", |i| {
        let instances = i.instances("web");
        instances[1]["pid"].as_u64() != Some(u64::from(victim))
    });
    assert!(
        !reload.is_finished(),
        "list showed the change while the reload ran"
    );
    let out = reload.join().expect("reload");
    assert!(
        !out.status.success(),
        "the broken version aborts the reload"
    );
}
