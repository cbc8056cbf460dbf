//! Run the examples as a user would, over every transport they support, so they never
//! rot. `cargo test` builds the examples next to this test binary (`target/*/examples`).

use ipc::testkit::built_example;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};

/// Transports whose parent/child wiring the demos must run over, in registration
/// order: all of them but `node`, whose frames must be JSON (it has its own examples and tests/node.rs).
/// `signal` is the facade's opt-in feature: on in `cargo test --workspace` (ipc-cat and
/// ipc-bench ask for it), off in `cargo test -p ipc-kit`, where fork_ping must not
/// offer it.
const SPAWN_TRANSPORTS: &[&str] = &[
    "uds",
    "tcp",
    "pipe",
    "fifo",
    "stdio",
    #[cfg(feature = "signal")]
    "signal",
    "shm",
];

#[test]
fn fork_ping_runs_over_every_transport() {
    for transport in SPAWN_TRANSPORTS {
        let out = Command::new(built_example("fork_ping"))
            .args(["--transport", transport, "--count", "200"])
            .output()
            .expect("run fork_ping");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "fork_ping over {transport}: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains(&format!("200 round trips of 64 B over {transport}")),
            "{stdout}"
        );
        let p50: f64 = stdout
            .split("p50 ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no p50 in {stdout}"));
        assert!(p50 > 0.0, "a round trip cannot take 0 µs: {stdout}");
        assert!(stdout.contains("p99"), "{stdout}");
        assert!(stdout.contains("child exited: exit status: 0"), "{stdout}");
    }
}

#[test]
fn fork_ping_with_count_zero_says_nothing_was_measured() {
    let out = Command::new(built_example("fork_ping"))
        .args(["--count", "0", "--size", "1048576"])
        .output()
        .expect("run fork_ping");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}", out.status);
    assert!(
        stdout.contains("nothing was measured: --count 0") && stdout.contains("1.0 MiB"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("p50"),
        "no statistics of nothing: {stdout}"
    );
}

// The `signals` example needs the facade's opt-in feature `signal` (required-features).
#[cfg(feature = "signal")]
#[test]
fn signals_graceful_stop_over_every_transport() {
    for transport in SPAWN_TRANSPORTS {
        for (signal, name) in [("term", "SIGTERM"), ("int", "SIGINT")] {
            let out = Command::new(built_example("signals"))
                .args(["--transport", transport, "--signal", signal, "--after", "3"])
                .output()
                .expect("run signals");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "signals {signal} over {transport}: {}\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                stdout.contains(&format!("stopping on {name} after")),
                "{stdout}"
            );
            assert!(stdout.contains("closed the channel cleanly"), "{stdout}");
            assert!(stdout.contains("exit status: 0"), "{stdout}");
            // It stops after the job in hand, taking no new one.
            assert!(
                stdout.contains("finished 0 job(s) after the signal")
                    || stdout.contains("finished 1 job(s) after the signal"),
                "signals {signal} over {transport} did not stop after the job in hand:\n{stdout}"
            );
        }
    }
}

// The `signals` example needs the facade's opt-in feature `signal` (required-features).
#[cfg(feature = "signal")]
#[test]
fn signals_kill_is_noticed_over_every_transport() {
    for transport in SPAWN_TRANSPORTS {
        let out = Command::new(built_example("signals"))
            .args(["--transport", transport, "--signal", "kill", "--after", "3"])
            .output()
            .expect("run signals");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "signals kill over {transport}: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("the channel failed"), "{stdout}");
        assert!(stdout.contains("signal: 9"), "{stdout}");
    }
}

#[test]
fn fork_ping_lists_only_the_transports_that_can_carry_it() {
    let out = Command::new(built_example("fork_ping"))
        .arg("--list")
        .output()
        .expect("run fork_ping --list");
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let listed: Vec<&str> = stdout.lines().collect();
    assert_eq!(listed, SPAWN_TRANSPORTS, "{stdout}");
}

#[test]
fn fork_ping_and_signals_refuse_node_and_name_the_transports_that_work() {
    let demos: &[(&str, &[&str])] = &[
        ("fork_ping", &["--transport", "node", "--count", "1"]),
        // Built only with the facade's opt-in feature `signal` (required-features).
        #[cfg(feature = "signal")]
        ("signals", &["--transport", "node"]),
    ];
    for &(demo, args) in demos {
        let out = Command::new(built_example(demo))
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run {demo}: {e}"));
        assert!(!out.status.success(), "{demo} must refuse node");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("the node transport does not support binary frames")
                && stderr.contains(&format!(
                    "transports that do: {}",
                    SPAWN_TRANSPORTS.join(", ")
                )),
            "{demo}: {stderr}"
        );
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("spawned child"),
            "{demo} refused before spawning"
        );
    }
}

#[test]
fn echo_refuses_a_transport_that_cannot_listen() {
    for endpoint in ["pipe:fd=3,4", "stdio:"] {
        let out = Command::new(built_example("echo"))
            .args(["--listen", endpoint])
            .output()
            .expect("run echo");
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("does not support listen")
                && stderr.contains("transports that do: uds, tcp, fifo"),
            "{endpoint}: {stderr}"
        );
    }
}

#[test]
fn fork_ping_rejects_an_unknown_transport() {
    let out = Command::new(built_example("fork_ping"))
        .args(["--transport", "carrier-pigeon"])
        .output()
        .expect("run fork_ping");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown transport") && stderr.contains("uds"),
        "{stderr}"
    );
}

/// Kills the server when the test ends, pass or fail.
struct Server {
    child: Child,
    endpoint: String,
    stderr: std::sync::mpsc::Receiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(listen: &str, token: Option<&str>) -> Server {
        let mut cmd = Command::new(built_example("echo"));
        cmd.args(["--listen", listen])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match token {
            Some(t) => cmd.env("IPC_TOKEN", t),
            None => cmd.env_remove("IPC_TOKEN"),
        };
        let mut child = cmd.spawn().expect("start echo server");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("server's first line");
        let endpoint = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        let (tx, stderr) = std::sync::mpsc::channel();
        let err = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Server {
            child,
            endpoint,
            stderr,
        }
    }

    /// Wait for a server log line containing `needle` (bounded).
    fn wait_log(&self, needle: &str) -> String {
        self.wait_log_any(&[needle])
    }

    /// Wait for a server log line containing any of `needles` (bounded).
    fn wait_log_any(&self, needles: &[&str]) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if needles.iter().any(|n| line.contains(n)) => return line,
                Ok(_) => continue,
                Err(_) => panic!("server never logged any of {needles:?}"),
            }
        }
    }

    fn client(&self, lines: &str, token: Option<&str>) -> std::process::Output {
        run_client(&self.endpoint, lines, token)
    }
}

/// Run `echo --connect ENDPOINT` with `lines` on stdin.
fn run_client(endpoint: &str, lines: &str, token: Option<&str>) -> std::process::Output {
    {
        let mut cmd = Command::new(built_example("echo"));
        cmd.args(["--connect", endpoint])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match token {
            Some(t) => cmd.env("IPC_TOKEN", t),
            None => cmd.env_remove("IPC_TOKEN"),
        };
        let mut child = cmd.spawn().expect("start echo client");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(lines.as_bytes())
            .expect("write lines");
        child.wait_with_output().expect("client output")
    }
}

/// Send `bytes` on a raw connection, then read until the server ends it: what it sent.
fn raw_send(endpoint: &str, bytes: &[u8]) -> Vec<u8> {
    let mut stream: Box<dyn ReadWrite> = if let Some(addr) = endpoint.strip_prefix("tcp://") {
        Box::new(std::net::TcpStream::connect(addr).expect("raw tcp connect"))
    } else {
        let path = endpoint.strip_prefix("unix:").expect("unix endpoint");
        Box::new(std::os::unix::net::UnixStream::connect(path).expect("raw unix connect"))
    };
    stream.write_all(bytes).expect("raw write");
    // The server drops us: EOF or reset, never a hang.
    let mut sink = Vec::new();
    let _ = stream.read_to_end(&mut sink);
    sink
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn echo_serves_clients_and_survives_bad_ones(listen: &str, token: Option<&str>) {
    let server = Server::start(listen, token);
    // Two good clients at once.
    let endpoint = server.endpoint.as_str();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| run_client(endpoint, "one\ntwo\n", token));
        let b = s.spawn(|| run_client(endpoint, "three\n", token));
        (a.join().expect("client a"), b.join().expect("client b"))
    });
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert_eq!(String::from_utf8_lossy(&a.stdout), "one\ntwo\n");
    assert_eq!(String::from_utf8_lossy(&b.stdout), "three\n");

    // Garbage: an HTTP request where a frame (or handshake) should be.
    let _ = raw_send(&server.endpoint, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let why = server.wait_log_any(&["refused", "dropped"]);
    assert!(
        why.contains("not an ipc client") || why.contains("exceeds the limit"),
        "the log should say why: {why}"
    );

    // A huge length prefix after a valid start (for TCP after a good handshake, the
    // echo client is used for that; here raw): 0x7fffffff bytes announced.
    if listen.starts_with("unix:") {
        let reply = raw_send(&server.endpoint, &[0x7f, 0xff, 0xff, 0xff, 1, 2, 3]);
        let why = server.wait_log("exceeds the limit");
        assert!(why.contains("2147483647"), "{why}");
        // The client is told why, in a last frame, before the server drops it (no
        // goodbye: the end is an abort).
        let text = String::from_utf8_lossy(reply.get(4..).unwrap_or_default());
        assert!(
            reply.len() > 4 && text.starts_with("error: ") && text.contains("exceeds the limit"),
            "the dropped client should get an error frame saying why, got {reply:?}"
        );
        assert_eq!(
            u32::from_be_bytes(reply[..4].try_into().expect("a length prefix")) as usize,
            reply.len() - 4,
            "one whole frame and no goodbye: {reply:?}"
        );
    }

    // Still serving.
    let c = server.client("still alive\n", token);
    assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stderr));
    assert_eq!(String::from_utf8_lossy(&c.stdout), "still alive\n");
}

#[test]
fn echo_over_unix_socket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = format!("unix:{}", dir.path().join("echo.sock").display());
    echo_serves_clients_and_survives_bad_ones(&listen, None);
}

#[test]
fn echo_over_tcp_with_token() {
    echo_serves_clients_and_survives_bad_ones("tcp://127.0.0.1:0", Some("s3cret-token"));
}

#[test]
fn echo_over_tcp_refuses_a_wrong_token() {
    let server = Server::start("tcp://127.0.0.1:0", Some("right"));
    let out = server.client("hi\n", Some("wrong"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("token"));
    let why = server.wait_log("refused");
    assert!(why.contains("token"), "{why}");
    let ok = server.client("hi\n", Some("right"));
    assert_eq!(String::from_utf8_lossy(&ok.stdout), "hi\n");
}

/// The README promises that over stdio a stray non-JSON line is one `Decode` error, not
/// fatal: fork_ping's child skips it and keeps answering.
#[test]
fn fork_ping_child_survives_a_stray_non_json_line_over_stdio() {
    let mut child = Command::new(built_example("fork_ping"))
        .env("IPC_ENDPOINT", "stdio:")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start fork_ping as a stdio child");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"this is not json\n\"ping\"\n{\"$ipc\":\"goodbye\"}\n")
        .expect("write lines");
    let out = child.wait_with_output().expect("child output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the child died: {stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "\"ping\"\n{\"$ipc\":\"goodbye\"}\n",
        "{stderr}"
    );
    assert!(
        stderr.contains("skipped"),
        "the child should log the skipped line: {stderr}"
    );
}
