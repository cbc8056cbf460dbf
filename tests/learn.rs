//! The "Learn IPC" demos, run as the README's tour runs them: each built example, over
//! every transport its `--help` lists, scaled down, checking the exit status and the
//! lines a reader is told to watch for (never timings). `cargo test` builds the examples
//! next to this test binary.

use std::process::{Command, Output};

use ipc::testkit::built_example;

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

fn run(demo: &str, args: &[&str]) -> Output {
    Command::new(built_example(demo))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {demo}: {e}"))
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
