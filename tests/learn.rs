//! The "Learn IPC" demos, run as the README's tour runs them: each built example, over
//! every transport its `--help` lists, scaled down, checking the exit status and the
//! lines a reader is told to watch for (never timings). `cargo test` builds the examples
//! next to this test binary.

use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use ipc::testkit::built_example;

/// How long a scaled-down demo may run before the test calls it hung (a guard, not a
/// timing: they take a second or two).
const HANG_GUARD: Duration = Duration::from_secs(120);

/// Run a built demo with `args`; panic with its output unless it exits 0. Returns
/// (stdout, stderr).
fn run_ok(demo: &str, args: &[&str]) -> (String, String) {
    let out = run(demo, args);
    let (stdout, stderr) = texts(&out);
    assert!(
        out.status.success(),
        "{demo} {args:?}: {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    (stdout, stderr)
}

/// Run a built demo with `args` and collect its output. A demo that has not finished
/// after [`HANG_GUARD`] is killed and the test fails: a hang is a bug, not a wait.
fn run(demo: &str, args: &[&str]) -> Output {
    let child = Command::new(built_example(demo))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {demo}: {e}"));
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (finished, finished_rx) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let hung = finished_rx.recv_timeout(HANG_GUARD).is_err();
        if hung {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
        hung
    });
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("wait for {demo}: {e}"));
    let _ = finished.send(());
    let hung = watchdog.join().expect("watchdog thread");
    assert!(
        !hung,
        "{demo} {args:?} did not finish within {HANG_GUARD:?} and was killed:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

fn texts(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The transports a demo's `--help` offers for `--transport` (clap prints them as
/// `[possible values: uds, tcp, ...]`): the ones the test must run it over.
fn transports_in_help(demo: &str) -> Vec<String> {
    let (help, _) = run_ok(demo, &["--help"]);
    let listed = help
        .split("--transport <TRANSPORT>")
        .nth(1)
        .and_then(|rest| rest.split("[possible values: ").nth(1))
        .and_then(|rest| rest.split(']').next())
        .unwrap_or_else(|| panic!("{demo} --help lists no transports:\n{help}"));
    let names: Vec<String> = listed.split(", ").map(str::to_string).collect();
    // Every spawning demo runs at least over the default transports.
    for needed in ["uds", "tcp", "pipe", "fifo", "stdio"] {
        assert!(
            names.iter().any(|n| n == needed),
            "{demo} should offer {needed}: {names:?}"
        );
    }
    names
}

/// Assert that `text` contains every one of `needles`.
fn assert_has(context: &str, text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(
            text.contains(needle),
            "{context}: expected {needle:?} in\n{text}"
        );
    }
}

#[test]
fn stdio_json_keeps_json_on_stdout_and_logs_on_stderr() {
    let (stdout, stderr) = run_ok("stdio_json", &["--count", "2"]);
    assert_has(
        "stdio_json stdout",
        &stdout,
        &[
            r#"parent <- {"type":"hello","pid":"#,
            r#"parent -> {"type":"welcome","protocol":1}"#,
            r#"parent <- {"type":"response","id":2,"result":6}"#,
            r#"parent -> {"type":"bye"}"#,
            "2 of 2 requests answered; child exited: exit status: 0",
        ],
    );
    // Every protocol line on the parent's stdout is JSON; the child's logs are not there.
    for line in stdout.lines().filter(|l| l.starts_with("parent <-")) {
        let json = line.trim_start_matches("parent <- ");
        serde_json::from_str::<serde_json::Value>(json)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
    assert!(!stdout.contains("child (stderr)"), "{stdout}");
    assert_has(
        "stdio_json stderr",
        &stderr,
        &[
            "child (stderr): started as pid",
            "child (stderr): handshake done, protocol 1",
            "child (stderr): bye received, exiting 0",
        ],
    );
}

/// One `cargo run --example NAME [--features F] [-- ARGS]` command of the README's
/// "Learn IPC" table.
#[derive(Debug)]
struct TourCommand {
    example: String,
    features: Vec<String>,
    args: Vec<String>,
}

/// The `cargo run --example ...` commands in the README's "Learn IPC" section.
fn tour_commands() -> Vec<TourCommand> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("read README.md");
    let section = readme
        .split("\n## Learn IPC\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README.md has a \"Learn IPC\" section");
    section
        .split('`')
        .filter_map(|code| code.strip_prefix("cargo run --example "))
        .map(|command| {
            let (cargo, args) = command.split_once(" -- ").unwrap_or((command, ""));
            let mut cargo = cargo.split_whitespace();
            let example = cargo.next().expect("an example name").to_string();
            let mut features = Vec::new();
            while let Some(flag) = cargo.next() {
                assert_eq!(flag, "--features", "unexpected cargo flag in {command:?}");
                features.push(cargo.next().expect("a feature").to_string());
            }
            TourCommand {
                example,
                features,
                args: args.split_whitespace().map(str::to_string).collect(),
            }
        })
        .collect()
}

/// Every command the tour shows runs as written and exits 0.
#[test]
fn every_tour_command_in_the_readme_runs_and_exits_0() {
    let commands = tour_commands();
    assert!(commands.len() >= 3, "{commands:?}");
    for command in commands {
        // `signals` is built only with the facade's opt-in feature `signal`.
        if command.features.iter().any(|f| f == "signal") && !cfg!(feature = "signal") {
            continue;
        }
        let args: Vec<&str> = command.args.iter().map(String::as_str).collect();
        run_ok(&command.example, &args);
    }
}

#[test]
fn spawn_exec_shows_every_way_to_start_a_program_over_every_transport() {
    for transport in transports_in_help("spawn_exec") {
        let (stdout, _) = run_ok(
            "spawn_exec",
            &[
                "--transport",
                &transport,
                "--lines",
                "2",
                "--timeout-ms",
                "100",
            ],
        );
        assert_has(
            &format!("spawn_exec over {transport}"),
            &stdout,
            &[
                "line 2 of 2",
                "2 lines streamed; child exited: exit status: 0",
                "printed 3",
                "no shell:   wc -c \"report.txt; rm -rf canary\" -> \"6 report.txt; rm -rf canary\"; canary still there",
                "canary GONE: the shell ran `rm -rf canary` from the file name",
                "signal: 15 (SIGTERM)",
                "sync, one after another",
                "async, all three at once",
                &format!("message channel over {transport}"),
                "got hello, child\"; child exited: exit status: 0",
                "all six parts behaved as described",
            ],
        );
    }
}

#[test]
fn named_pipe_shows_one_pipe_is_one_way_and_two_make_a_channel() {
    let (stdout, _) = run_ok("named_pipe", &["--count", "2"]);
    assert_has(
        "named_pipe",
        &stdout,
        &[
            "client: reading the answer from to-server fails: Bad file descriptor",
            "client: answer to the first line: \"HELLO OVER ONE PIPE\"",
            "client: sent \"ping 2\", got \"PING 2\"",
            "client: 2 of 2 answered; the server closed its pipe after ours",
            "server: a client opened both pipes",
            "server: got \"ping 1\" on to-server, answering on to-client",
            "server: end of file on to-server",
            "--- server exited: exit status: 0",
        ],
    );
}

/// The server and the client as two separate commands, as a reader would run them in
/// two terminals.
#[test]
fn named_pipe_server_and_client_run_as_separate_commands() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir_arg = dir.path().to_str().expect("a UTF-8 temp path").to_string();
    let server = {
        let dir_arg = dir_arg.clone();
        std::thread::spawn(move || run_ok("named_pipe", &["--serve", &dir_arg]))
    };
    // The server makes the FIFOs; the client makes any that are missing too, so the
    // order in which the two start does not matter.
    let (client, _) = run_ok("named_pipe", &["--connect", &dir_arg, "--count", "1"]);
    let (server, _) = server.join().expect("server thread");
    assert_has(
        "client",
        &client,
        &["client: sent \"ping 1\", got \"PING 1\""],
    );
    assert_has("server", &server, &["server: got \"ping 1\""]);
}

#[test]
fn shared_state_keeps_counter_and_sessions_in_the_primary_over_every_transport() {
    for transport in transports_in_help("shared_state") {
        let (stdout, _) = run_ok(
            "shared_state",
            &["--transport", &transport, "--workers", "3", "--ops", "20"],
        );
        assert_has(
            &format!("shared_state over {transport}"),
            &stdout,
            &[
                &format!("3 workers over {transport}"),
                "worker 0 (pid ",
                "found sess-1 = user-1 (written by worker 1)",
                "found sess-2 = user-2 (written by worker 2)",
                "found sess-0 = user-0 (written by worker 0)",
                "counter (one \"increment\" message each): 60 of 60, none lost",
                "racy counter (read, add one, write back): ",
                "sessions in the primary: 3; all workers exited 0: true",
                "Redis",
            ],
        );
    }
}

#[test]
fn fib_pool_spreads_jobs_over_workers_over_every_transport() {
    for transport in transports_in_help("fib_pool") {
        let (stdout, _) = run_ok(
            "fib_pool",
            &[
                "--transport",
                &transport,
                "--workers",
                "2",
                "--smaller",
                "18",
            ],
        );
        assert_has(
            &format!("fib_pool over {transport}"),
            &stdout,
            &[
                &format!("jobs: fib(26), fib(24), fib(24), fib(25); 2 workers over {transport}"),
                "fib(26) = 121393 computed in ",
                "fib(24) = 46368 computed in ",
                "fib(25) = 75025 computed in ",
                "worker 1: ",
                "worker 2: ",
                "pool of 2: ",
                "one after another in the primary: ",
                "speed-up ",
                "4 of 4 results match the primary's; all workers exited 0: true",
            ],
        );
        // Every job is reported once, by one of the two workers.
        let jobs = stdout
            .lines()
            .filter(|l| l.contains(" computed in "))
            .count();
        assert_eq!(jobs, 4, "{stdout}");
    }
}

#[test]
fn compute_offload_runs_inline_thread_and_process_over_every_transport() {
    for transport in transports_in_help("compute_offload") {
        let (stdout, _) = run_ok("compute_offload", &["--transport", &transport, "--n", "20"]);
        let context = format!("compute_offload over {transport}");
        assert_has(
            &context,
            &stdout,
            &["GET /compute?n=20, then GET /ping while it computes"],
        );
        let line = |mode: &str| {
            stdout
                .lines()
                .find(|l| l.starts_with(mode))
                .unwrap_or_else(|| panic!("{context}: no {mode} line in\n{stdout}"))
                .to_string()
        };
        // Inline, the event loop cannot answer /ping until the computation is over.
        assert_has(
            &context,
            &line("inline "),
            &[
                "/compute: fib(20) = 6765 in ",
                "/ping: pong (0 computation(s) running) in ",
                "answered after the computation ended",
            ],
        );
        assert_has(
            &context,
            &line("thread "),
            &["/compute: fib(20) = 6765 in ", "/ping: pong ("],
        );
        assert_has(
            &context,
            &line("process "),
            &[
                "/compute: fib(20) = 6765 in ",
                "/ping: pong (",
                &format!("over {transport})"),
            ],
        );
    }
}

#[test]
fn compute_offload_runs_one_mode_when_asked() {
    let (stdout, _) = run_ok("compute_offload", &["--mode", "thread", "--n", "15"]);
    assert_has(
        "compute_offload --mode thread",
        &stdout,
        &["thread   /compute: fib(15) = 610 in "],
    );
    assert!(!stdout.contains("inline"), "{stdout}");
    assert!(!stdout.contains("process"), "{stdout}");
}

#[test]
fn threads_vs_processes_measures_both_and_shows_crash_isolation_over_every_transport() {
    for transport in transports_in_help("threads_vs_processes") {
        let (stdout, stderr) = run_ok(
            "threads_vs_processes",
            &["--transport", &transport, "--workers", "3", "--n", "20"],
        );
        assert_has(
            &format!("threads_vs_processes over {transport}"),
            &stdout,
            &[
                &format!("3 threads vs 3 processes (over {transport}), fib(20) each"),
                "start-up:  threads ",
                "memory:    threads +",
                " each (RSS), ",
                " each (PSS)",
                "same work: threads ",
                "(3 of 3 right); processes ",
                "a panicking thread: caught at join (\"worker 2: boom\"); 2 of 2 others finished; \
                 this process lives on",
                "a panicking process: its channel reported the peer lost, exit status: 101; \
                 2 of 2 others finished and exited 0",
            ],
        );
        // The panics are reported in one line each, not as backtraces.
        assert_has(
            &format!("threads_vs_processes over {transport}, stderr"),
            &stderr,
            &[
                "panic in thread \"worker-2\" of pid ",
                "panic in thread \"main\" of pid ",
            ],
        );
    }
}
