//! The Python peer package (`peers/python`, `ipc_peer`) against the real Rust programs:
//! Python children of Rust parents (ipc-cat and the registry) over every transport it
//! claims, Rust children of a Python parent, Python clients and servers of the Rust
//! echo/ipc-cat, and rpc both ways. Skipped (with a printed reason) only when python3
//! is missing; CI installs it.

mod common;

use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use common::{ipc_cat, own_example, peers_python, python, run, start_listener, workspace_example};

/// ipc-cat's exit code for a child that failed.
const CHILD_FAILED: i32 = 4;

/// Every transport the Python package implements as a child.
const CHILD_TRANSPORTS: &[&str] = &["uds", "tcp", "pipe", "fifo", "stdio"];

fn worker(python: &str, mode: &[&str]) -> Vec<String> {
    let mut argv = vec![
        python.to_string(),
        peers_python("examples/worker.py").display().to_string(),
    ];
    argv.extend(mode.iter().map(|s| s.to_string()));
    argv
}

#[test]
fn python_child_of_ipc_cat_over_every_transport() {
    let Some(py) = python() else { return };
    for transport in CHILD_TRANSPORTS {
        let out = run(
            ipc_cat()
                .args(["--spawn", transport, "--"])
                .args(worker(py, &["info"])),
            b"hello\n\nworld\n",
        );
        out.expect_code(0, transport);
        let text = out.stdout_text();
        let mut lines = text.lines();
        let info: serde_json::Value =
            serde_json::from_str(lines.next().expect("info line")).expect("info is JSON");
        assert_eq!(info["transport"], *transport, "{info}");
        assert_eq!(info["max_frame"], 8 << 20, "{info}");
        assert_eq!(info["token_set"], *transport == "tcp", "{info}");
        // The inherited fds are close-on-exec once taken (grandchildren do not get them).
        for (fd, inheritable) in info["inheritable"].as_object().expect("fds") {
            assert_eq!(*inheritable, false, "fd {fd} over {transport}: {info}");
        }
        assert_eq!(
            lines.collect::<Vec<_>>(),
            ["HELLO", "", "WORLD"],
            "{transport}"
        );
        // The child's stray print() went to stderr, never into the channel.
        assert!(out.stderr.contains("a stray print()"), "{}", out.stderr);
    }
}

#[test]
fn python_child_over_stdio_with_json_lines() {
    let Some(py) = python() else { return };
    let out = run(
        ipc_cat()
            .args(["--json", "--spawn", "stdio", "--"])
            .args(worker(py, &[])),
        "{\"greeting\":\"hi\"}\n\"你好吖\"\n{\"$bytes\":\"AAEC\"}\n".as_bytes(),
    );
    out.expect_code(0, "json over stdio");
    assert_eq!(
        out.stdout_text(),
        "{\"GREETING\":\"HI\"}\n\"你好吖\"\n{\"$bytes\":\"AAEC\"}\n"
    );
}

#[test]
fn a_failing_python_child_gives_exit_code_4() {
    let Some(py) = python() else { return };
    for transport in ["uds", "pipe", "stdio"] {
        let out = run(
            ipc_cat()
                .args(["--spawn", transport, "--"])
                .args(worker(py, &["exit", "3"])),
            b"hi\nnever answered\n",
        );
        out.expect_code(CHILD_FAILED, transport);
        assert_eq!(out.stdout_text(), "HI\n");
        assert!(
            out.stderr.contains("the child exited with status 3"),
            "{}",
            out.stderr
        );

        let out = run(
            ipc_cat()
                .args(["--spawn", transport, "--"])
                .args(worker(py, &["kill"])),
            b"hi\n",
        );
        out.expect_code(CHILD_FAILED, transport);
        assert!(
            out.stderr.contains("killed by signal 9 (SIGKILL)"),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains("without a goodbye"), "{}", out.stderr);
    }
}

/// A Rust parent through the registry (exactly what `Transport::spawn` does), calling a
/// Python rpc server: ids, error responses, clean end.
#[test]
fn rust_rpc_client_calls_a_python_child_over_every_transport() {
    let Some(py) = python() else { return };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for transport in CHILD_TRANSPORTS {
        runtime.block_on(async {
            let argv = worker(py, &["rpc"]);
            let mut cmd = Command::new(&argv[0]);
            cmd.args(&argv[1..]);
            let (mut child, channel) = ipc::registry()
                .get(transport)
                .expect("transport")
                .spawn(cmd, &Default::default())
                .await
                .unwrap_or_else(|e| panic!("spawn over {transport}: {e}"));
            let client = ipc::rpc::RpcClient::new(channel);
            let wait = Duration::from_secs(20);
            for i in 0..20 {
                let reply = client
                    .call(Bytes::from(format!("call {i}")), wait)
                    .await
                    .unwrap_or_else(|e| panic!("call over {transport}: {e}"));
                assert_eq!(reply, format!("CALL {i}"), "{transport}");
            }
            match client.call(Bytes::from_static(b"fail"), wait).await {
                Err(ipc::Error::Remote(msg)) => assert!(msg.contains("asked to fail"), "{msg}"),
                other => panic!("expected the handler's error over {transport}, got {other:?}"),
            }
            client.close().await.expect("close");
            let status = tokio::time::timeout(wait, child.wait())
                .await
                .expect("child exits")
                .expect("wait");
            assert!(
                status.success(),
                "python rpc child over {transport}: {status}"
            );
        });
    }
}

/// A Python parent (ipc_peer.spawn) with Rust children: the fork_ping child role and
/// rust_worker, echo and rpc.
#[test]
fn rust_children_of_a_python_parent() {
    let Some(py) = python() else { return };
    let parent = peers_python("examples/parent.py");
    let fork_ping = workspace_example("fork_ping");
    let rust_worker = own_example("rust_worker");
    for transport in ["uds", "tcp", "pipe", "stdio"] {
        let runs: [(&[&str], &std::path::Path, &[&str]); 3] = [
            (&[], &fork_ping, &[]),
            (&[], &rust_worker, &[]),
            (&["--rpc"], &rust_worker, &["rpc"]),
        ];
        for (flags, child, child_args) in runs {
            let out = run(
                Command::new(py)
                    .arg(&parent)
                    .args(["--transport", transport, "--count", "50"])
                    .args(flags)
                    .arg("--")
                    .arg(child)
                    .args(child_args),
                b"",
            );
            out.expect_code(0, &format!("{transport} {}", child.display()));
            let text = out.stdout_text();
            assert!(text.contains(&format!("over {transport}")), "{text}");
            assert!(text.contains("child closed cleanly"), "{text}");
            assert!(text.contains("child exited: 0"), "{text}");
        }
    }
}

#[test]
fn python_client_of_the_echo_server_over_unix_and_tcp() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    for (listen, token) in [
        (
            format!("unix:{}", dir.path().join("echo.sock").display()),
            None,
        ),
        ("tcp://127.0.0.1:0".to_string(), Some("s3cret")),
    ] {
        let mut cmd = Command::new(workspace_example("echo"));
        cmd.args(["--listen", &listen]);
        match token {
            Some(t) => cmd.env("IPC_TOKEN", t),
            None => cmd.env_remove("IPC_TOKEN"),
        };
        let (mut server, endpoint) = start_listener(&mut cmd, true);
        let mut client = Command::new(py);
        client
            .arg(peers_python("examples/client.py"))
            .args([&endpoint, "hello", "wörld", ""]);
        match token {
            Some(t) => client.env("IPC_TOKEN", t),
            None => client.env_remove("IPC_TOKEN"),
        };
        let out = run(&mut client, b"");
        out.expect_code(0, &endpoint);
        assert_eq!(out.stdout_text(), "hello\nwörld\n\n");
        assert!(out.stderr.contains("closed cleanly"), "{}", out.stderr);
        server.wait_stderr("closed after 3 frames");

        if let Some(t) = token {
            let out = run(client.env("IPC_TOKEN", format!("not-{t}")), b"");
            out.expect_code(1, "wrong token");
            assert!(out.stderr.contains("token"), "{}", out.stderr);
        }
    }
}

#[test]
fn rust_clients_of_a_python_server() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    for (listen, token) in [
        (
            format!("unix:{}", dir.path().join("py.sock").display()),
            None,
        ),
        (format!("unix:@ipc-cat-test-{}", std::process::id()), None),
        ("tcp://127.0.0.1:0".to_string(), Some("py-token")),
    ] {
        let mut cmd = Command::new(py);
        cmd.arg(peers_python("examples/echo_server.py"))
            .arg(&listen);
        match token {
            Some(t) => cmd.env("IPC_TOKEN", t),
            None => cmd.env_remove("IPC_TOKEN"),
        };
        let (mut server, endpoint) = start_listener(&mut cmd, true);
        let mut cat = ipc_cat();
        cat.arg(&endpoint);
        if let Some(t) = token {
            cat.env("IPC_TOKEN", t);
        }
        let out = run(&mut cat, b"from rust\n\n");
        out.expect_code(0, &endpoint);
        assert_eq!(out.stdout_text(), "from rust\n\n");
        server.wait_stderr("closed after 2 frames");
        // The Rust echo client too, whose frames are lines.
        let mut echo = Command::new(workspace_example("echo"));
        echo.args(["--connect", &endpoint]);
        if let Some(t) = token {
            echo.env("IPC_TOKEN", t);
        }
        let out = run(&mut echo, b"one\ntwo\n");
        out.expect_code(0, &endpoint);
        assert_eq!(out.stdout_text(), "one\ntwo\n");
    }
}
