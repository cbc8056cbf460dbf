//! Run the process-management demos as a user would (`cargo test` builds the examples
//! next to this test binary) and check what they print.

#![cfg(feature = "cluster")]

use ipc::testkit::built_example;
use std::process::Command;

fn run(example: &str, args: &[&str]) -> String {
    let out = Command::new(built_example(example))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {example}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{example} {args:?}: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn cluster_serves_http_in_every_mode_and_counts_requests_per_worker() {
    for mode in ["shared", "rr", "reuseport"] {
        let stdout = run(
            "cluster",
            &["--mode", mode, "--workers", "2", "--requests", "60"],
        );
        assert!(
            stdout.contains(&format!("({mode} mode, 2 workers)")),
            "{stdout}"
        );
        assert!(stdout.contains("total 60 requests"), "{mode}: {stdout}");
        let per_worker: u64 = stdout
            .lines()
            .filter_map(|l| l.strip_prefix("worker pid "))
            .filter_map(|l| l.split(": ").nth(1)?.split(' ').next()?.parse::<u64>().ok())
            .sum();
        assert_eq!(per_worker, 60, "{mode}: {stdout}");
    }
}

#[test]
fn handle_passing_both_children_serve_on_the_masters_socket() {
    let stdout = run("handle_passing", &[]);
    assert!(stdout.contains("master closed its listener"), "{stdout}");
    assert!(stdout.contains("2 different children answered"), "{stdout}");
    assert_eq!(
        stdout.matches("exited: exit status: 0").count(),
        2,
        "{stdout}"
    );
}

#[test]
fn supervisor_backs_off_and_gives_up_after_the_limit() {
    let stdout = run("supervisor", &["--max-restarts", "3", "--backoff-ms", "20"]);
    for delay in [
        "restarting in 20ms",
        "restarting in 30ms",
        "restarting in 45ms",
    ] {
        assert!(stdout.contains(delay), "{delay}: {stdout}");
    }
    assert_eq!(stdout.matches("starting pid").count(), 4, "{stdout}");
    assert!(
        stdout.contains("errored after 3 unstable restarts: not restarted"),
        "{stdout}"
    );
}

#[test]
fn master_agent_worker_routes_every_kind_of_message() {
    let stdout = run("master_agent_worker", &[]);
    assert_eq!(stdout.matches("got hello-everyone").count(), 3, "{stdout}");
    assert!(stdout.contains("got agent-only"), "{stdout}");
    assert!(stdout.contains("got worker-only"), "{stdout}");
    assert!(stdout.contains("\"agent-answered\""), "{stdout}");
    assert!(stdout.contains("answers"), "{stdout}");
    assert!(stdout.trim_end().ends_with("done"), "{stdout}");
}
