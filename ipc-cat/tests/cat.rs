//! ipc-cat as a user runs it, against the Rust programs: the `echo` example as server
//! and client, `fork_ping` as a spawned child over every transport, and itself. Real
//! processes, real sockets; each waits on output or exit, never on a sleep.

mod common;

use common::{ipc_cat, run, start_listener, workspace_example, Proc};

/// ipc-cat's exit codes (see `ipc-cat --help`).
const PEER_LOST: i32 = 1;
const USAGE: i32 = 2;
const FAILED: i32 = 3;

fn echo_server(listen: &str, token: Option<&str>) -> (Proc, String) {
    let mut cmd = std::process::Command::new(workspace_example("echo"));
    cmd.args(["--listen", listen]);
    match token {
        Some(t) => cmd.env("IPC_TOKEN", t),
        None => cmd.env_remove("IPC_TOKEN"),
    };
    start_listener(&mut cmd, true)
}

fn cat_to(endpoint: &str, token: Option<&str>, args: &[&str]) -> std::process::Command {
    let mut cmd = ipc_cat();
    cmd.args(args).arg(endpoint);
    match token {
        Some(t) => cmd.env("IPC_TOKEN", t),
        None => cmd.env_remove("IPC_TOKEN"),
    };
    cmd
}

fn every_mode_against_echo(endpoint: &str, token: Option<&str>) {
    // --lines (the default): a line is a frame, CRLF accepted, an empty line is a frame.
    let out = run(&mut cat_to(endpoint, token, &[]), b"hello\r\n\nworld\n");
    out.expect_code(0, "lines");
    assert_eq!(out.stdout_text(), "hello\n\nworld\n");

    // --json: a bad line is reported and skipped; the run goes on and ends cleanly.
    let out = run(
        &mut cat_to(endpoint, token, &["--json"]),
        b"{\"a\":1}\nnot json\n\n[2, 3]\n{\"$bytes\":\"AAEC\"}\n",
    );
    out.expect_code(0, "json");
    assert_eq!(
        out.stdout_text(),
        "{\"a\":1}\n[2, 3]\n{\"$bytes\":\"AAEC\"}\n"
    );
    assert!(
        out.stderr.contains("stdin line 2 skipped") && out.stderr.contains("not one JSON value"),
        "{}",
        out.stderr
    );

    // --raw: the wire framing both ways, with the goodbye after a clean close.
    let mut input = b"\x00\x00\x00\x02hi\x00\x00\x00\x00".to_vec();
    input.extend_from_slice(b"\xff\xff\xff\xff");
    let out = run(&mut cat_to(endpoint, token, &["--raw"]), &input);
    out.expect_code(0, "raw");
    assert_eq!(out.stdout, input);
}

#[test]
fn bridges_the_echo_server_over_a_unix_socket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_server, endpoint) = echo_server(
        &format!("unix:{}", dir.path().join("echo.sock").display()),
        None,
    );
    every_mode_against_echo(&endpoint, None);
}

#[test]
fn bridges_the_echo_server_over_tcp_with_its_token() {
    let (_server, endpoint) = echo_server("tcp://127.0.0.1:0", Some("s3cret"));
    every_mode_against_echo(&endpoint, Some("s3cret"));
    let out = run(&mut cat_to(&endpoint, Some("wrong"), &[]), b"hi\n");
    out.expect_code(FAILED, "wrong token");
    assert!(out.stderr.contains("token"), "{}", out.stderr);
}

#[test]
fn listens_for_the_echo_client() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = format!("unix:{}", dir.path().join("cat.sock").display());
    let (mut server, endpoint) = start_listener(ipc_cat().args(["--listen", &listen]), false);
    // The server's stdin lines are the echo client's "replies", one per line it sends.
    server.write(b"reply one\nreply two\n");
    server.close_stdin();
    let client = run(
        std::process::Command::new(workspace_example("echo")).args(["--connect", &endpoint]),
        b"a\nb\n",
    );
    client.expect_code(0, "echo client");
    assert_eq!(client.stdout_text(), "reply one\nreply two\n");
    let server = server.finish(b"");
    server.expect_code(0, "ipc-cat --listen");
    assert_eq!(server.stdout_text(), "a\nb\n");
    assert!(
        server.stderr.contains("client connected"),
        "{}",
        server.stderr
    );
}

#[test]
fn keep_listening_serves_clients_one_after_another() {
    let (mut server, endpoint) = start_listener(
        ipc_cat()
            .args(["--listen", "tcp://127.0.0.1:0", "-k"])
            .env_remove("IPC_TOKEN"),
        false,
    );
    for word in ["one", "two"] {
        let client = run(
            &mut cat_to(&endpoint, None, &[]),
            format!("{word}\n").as_bytes(),
        );
        client.expect_code(0, word);
        server.wait_stderr("waiting for the next one");
    }
    let server = server.finish(b""); // stdin ends while no client is connected: done
    server.expect_code(0, "ipc-cat --listen -k");
    assert_eq!(server.stdout_text(), "one\ntwo\n");
}

#[test]
fn a_peer_killed_without_goodbye_is_exit_code_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = format!("unix:{}", dir.path().join("lost.sock").display());
    let (mut server, endpoint) = start_listener(ipc_cat().args(["--listen", &listen]), false);
    let mut client = Proc::start(ipc_cat().arg(&endpoint));
    client.write(b"are you there?\n");
    server.wait_stderr("client connected");
    server.kill();
    // The client's stdin stays open: the lost peer alone ends the run.
    client.wait_stderr("without a goodbye");
    let client = client.finish(b"");
    client.expect_code(PEER_LOST, "lost peer");
    assert!(
        client.stderr.contains("without a goodbye"),
        "{}",
        client.stderr
    );
}

#[test]
fn spawns_fork_ping_as_a_child_over_every_transport() {
    let fork_ping = workspace_example("fork_ping");
    for transport in ["uds", "tcp", "pipe", "fifo", "stdio", "signal"] {
        let out = run(
            ipc_cat().args(["--spawn", transport, "--"]).arg(&fork_ping),
            b"ping\n{\"json\":true}\n",
        );
        out.expect_code(0, transport);
        assert_eq!(out.stdout_text(), "ping\n{\"json\":true}\n", "{transport}");
    }
}

#[test]
fn usage_and_setup_errors_have_their_own_codes() {
    let out = run(&mut ipc_cat(), b"");
    out.expect_code(USAGE, "no arguments");
    let out = run(
        ipc_cat().args(["--spawn", "carrier-pigeon", "--", "true"]),
        b"",
    );
    out.expect_code(USAGE, "unknown transport");
    assert!(out.stderr.contains("unknown transport"), "{}", out.stderr);
    let out = run(ipc_cat().args(["--lines", "--raw", "unix:/x"]), b"");
    out.expect_code(USAGE, "two modes");
    let out = run(ipc_cat().arg("stdio:"), b"");
    out.expect_code(USAGE, "stdio: is ipc-cat's own stdin/stdout");
    assert!(out.stderr.contains("--spawn stdio"), "{}", out.stderr);

    let dir = tempfile::tempdir().expect("tempdir");
    let nowhere = format!("unix:{}", dir.path().join("nobody.sock").display());
    let out = run(ipc_cat().arg(&nowhere), b"");
    out.expect_code(FAILED, "nobody listens");
    assert!(out.stderr.contains("cannot connect"), "{}", out.stderr);
    let out = run(
        ipc_cat().args(["--spawn", "uds", "--", "/nonexistent/program"]),
        b"",
    );
    out.expect_code(FAILED, "no such program");
    assert!(out.stderr.contains("cannot start"), "{}", out.stderr);
}
