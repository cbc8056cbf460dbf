//! Cluster modes: instances of any program sharing one port through systemd socket
//! activation (`LISTEN_FDS` at fd 3), rolling reload gated on `READY=1`, scale.

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
    if !reply.starts_with("HTTP/1.0 200") {
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
    ipcm.ok(&[
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
        "python3",
        script.to_str().expect("utf-8 path"),
        broken_marker.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(ipcm.statuses(name), ["online", "online"]);
    let app = ipcm.app(name).expect("listed");
    let address = app["address"].as_str().expect("bound address").to_string();
    address
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port")
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
    let before = ipcm.pids("web");

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
    ipcm.ok(&["reload", "web"]);
    ipcm.ok(&["reload", "web"]);
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
    let after = ipcm.pids("web");
    assert_eq!(after.len(), 2);
    assert!(
        after.iter().all(|p| !before.contains(p)),
        "every instance was replaced"
    );
    assert_eq!(ipcm.statuses("web"), ["online", "online"]);
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
