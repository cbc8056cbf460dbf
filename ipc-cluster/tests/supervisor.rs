//! The supervisor with real child processes: this test binary re-executed in a
//! [`Role`]. Short configured timings; assertions on the events (the delays they
//! report), never on the wall clock.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use ipc_cluster::{
    Config, ControlChannel, Event, ExitCause, ExitStatus, ReadyVia, Restart, StopWith, Supervisor,
    WaitReady,
};
use ipc_core::prelude::*;
use ipc_core::testkit::{child_command, role};
use support::{all_gone, group_members, GUARD};

ipc_core::child_roles! {
    /// What a re-executed copy of this test binary does.
    enum Role {
        /// Exit 1 at once.
        Crash,
        /// Exit with the code in `CODE` at once.
        ExitWith,
        /// Say ready on the control channel; exit 0 on the `"shutdown"` message or when
        /// the channel ends; SIGINT's default action otherwise.
        ReadyMessage,
        /// Say `READY=1` to `NOTIFY_SOCKET`, then wait for SIGINT.
        ReadyNotify,
        /// Never say ready.
        NeverReady,
        /// Announce its exit on the control channel, then exit 1 at once.
        AnnounceExit,
        /// Start a [`Role::Grandchild`], say ready, ignore SIGINT.
        Stubborn,
        /// Ignore SIGINT and wait forever.
        Grandchild,
        /// Supervise a [`Role::Stubborn`], print its pid once ready, wait to be killed.
        SupervisorParent,
        /// As [`Role::SupervisorParent`], then panic once the child is ready.
        SupervisorParentPanics,
        /// As [`Role::SupervisorParent`], then `std::process::exit(0)` once the child is
        /// ready: no destructor runs.
        SupervisorParentExits,
    }
}

/// The children's entry point: does nothing in the parent's test run.
#[test]
fn child() {
    if let Some(role) = role::<Role>() {
        support::exit_with(run_child(role));
    }
}

async fn parent_channel() -> ipc_uds::UdsChannel {
    let endpoint = ipc_core::env::endpoint_from_env().expect("IPC_ENDPOINT");
    ipc_uds::connect(&endpoint, &ipc_core::Options::from_env())
        .await
        .expect("connect to the supervisor")
}

async fn run_child(role: Role) -> i32 {
    match role {
        Role::Crash => 1,
        Role::ExitWith => std::env::var("CODE")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(99),
        Role::ReadyMessage => {
            let mut ch = parent_channel().await;
            ipc_cluster::worker::ready(&mut ch).await.expect("ready");
            while let Ok(Some(frame)) = ch.recv().await {
                if frame == "\"shutdown\"" {
                    break;
                }
            }
            0
        }
        Role::ReadyNotify => {
            assert!(ipc_cluster::notify::notify_ready().expect("notify"));
            std::future::pending::<i32>().await
        }
        Role::NeverReady => std::future::pending::<i32>().await,
        Role::AnnounceExit => {
            let mut ch = parent_channel().await;
            ipc_cluster::worker::announce_exit(&mut ch, "done on purpose")
                .await
                .expect("announce");
            1
        }
        Role::Stubborn => {
            let _sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                .expect("catch SIGINT");
            let mut grandchild = tokio::process::Command::from(child_command(Role::Grandchild))
                .stdout(Stdio::piped())
                .spawn()
                .expect("start the grandchild");
            // Ready only once the grandchild ignores SIGINT too.
            let stdout = grandchild.stdout.take().expect("stdout");
            let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("armed") {
                    break;
                }
            }
            let mut ch = parent_channel().await;
            ipc_cluster::worker::ready(&mut ch).await.expect("ready");
            let _ = grandchild.wait().await; // until killed
            std::future::pending::<i32>().await
        }
        Role::Grandchild => {
            let _sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                .expect("catch SIGINT");
            println!("armed");
            std::future::pending::<i32>().await
        }
        Role::SupervisorParent | Role::SupervisorParentPanics | Role::SupervisorParentExits => {
            use std::io::Write;
            let config = Config::builder().wait_ready(WaitReady::Message).build();
            let mut sup = Supervisor::start(config, || child_command(Role::Stubborn));
            while let Some(event) = sup.next_event().await {
                if let Event::Ready { pid, .. } = event {
                    println!("pid {pid}");
                    std::io::stdout().flush().expect("flush");
                    if role != Role::SupervisorParent {
                        // Wait for the test to have seen the process tree.
                        let mut go = String::new();
                        std::io::stdin().read_line(&mut go).expect("stdin");
                    }
                    match role {
                        Role::SupervisorParentPanics => panic!("the supervisor panics"),
                        Role::SupervisorParentExits => std::process::exit(0),
                        _ => {}
                    }
                }
            }
            0
        }
    }
}

/// Timings short enough for tests; the semantics are pm2's.
fn fast() -> ipc_cluster::ConfigBuilder {
    Config::builder()
        .min_uptime(Duration::from_secs(5))
        .listen_timeout(Duration::from_secs(10))
        .kill_timeout(Duration::from_secs(10))
}

/// Whether `program` runs; if not, say on stderr that the test is skipped and why.
fn on_path(program: &str) -> bool {
    let found = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok();
    if !found {
        eprintln!("SKIPPED: `{program}` is not on PATH (.ci/run installs it); nothing was tested");
    }
    found
}

/// Wait until the child is ready (failing if it exits first) and check how it said so.
async fn ready_via(sup: &mut Supervisor, via: ReadyVia) {
    let events = events_until(sup, |e| {
        matches!(e, Event::Ready { .. } | Event::Exited { .. })
    })
    .await;
    assert!(
        matches!(events.last(), Some(Event::Ready { via: v, .. }) if *v == via),
        "ready via {via:?}: {events:#?}"
    );
}

/// Check that `events` are the child's exit (with `status`, when given, and `cause`)
/// and then `Stopped`.
fn assert_stopped_after_exit(events: &[Event], status: Option<ExitStatus>, cause: ExitCause) {
    let ok = match events {
        [Event::Exited {
            status: s,
            cause: c,
            ..
        }, Event::Stopped] => *c == cause && status.map_or(true, |status| *s == status),
        _ => false,
    };
    assert!(
        ok,
        "expected an exit ({status:?}, {cause:?}), then Stopped: {events:#?}"
    );
}

/// Every event until the supervisor finishes (bounded by [`GUARD`]).
async fn all_events(sup: &mut Supervisor) -> Vec<Event> {
    let mut events = Vec::new();
    let collect = async {
        while let Some(event) = sup.next_event().await {
            events.push(event);
        }
    };
    tokio::time::timeout(GUARD, collect)
        .await
        .expect("the supervisor did not finish in time");
    events
}

/// Events until one matches `stop` (included).
async fn events_until(sup: &mut Supervisor, stop: impl Fn(&Event) -> bool) -> Vec<Event> {
    let mut events = Vec::new();
    let collect = async {
        while let Some(event) = sup.next_event().await {
            let done = stop(&event);
            events.push(event);
            if done {
                break;
            }
        }
    };
    tokio::time::timeout(GUARD, collect)
        .await
        .expect("the event did not come in time");
    events
}

#[tokio::test]
async fn crash_loop_backs_off_by_half_and_errors_after_the_limit() {
    let config = fast()
        .max_restarts(4)
        .exp_backoff(Duration::from_millis(10))
        .build();
    let mut sup = Supervisor::start(config, || child_command(Role::Crash));
    let events = all_events(&mut sup).await;
    let delays: Vec<Duration> = events
        .iter()
        .filter_map(|e| match e {
            Event::Restarting { delay, .. } => Some(*delay),
            _ => None,
        })
        .collect();
    assert_eq!(
        delays,
        [10_000, 15_000, 22_500, 33_750].map(Duration::from_micros),
        "{events:#?}"
    );
    let starts = events
        .iter()
        .filter(|e| matches!(e, Event::Starting { .. }))
        .count();
    assert_eq!(starts, 5, "the first start and 4 restarts: {events:#?}");
    assert!(events.iter().all(|e| !matches!(
        e,
        Event::Exited { status, cause, .. } if *status != ExitStatus::Code(1) || *cause != ExitCause::Crashed
    )));
    assert_eq!(
        events.last(),
        Some(&Event::Errored {
            unstable_restarts: 4
        })
    );
}

#[tokio::test]
async fn fixed_restart_delay_is_reported() {
    let config = fast()
        .max_restarts(1)
        .restart_delay(Duration::from_millis(20))
        .build();
    let mut sup = Supervisor::start(config, || child_command(Role::Crash));
    let events = all_events(&mut sup).await;
    assert!(events.contains(&Event::Restarting {
        delay: Duration::from_millis(20),
        unstable_restarts: 1
    }));
    assert_eq!(
        events.last(),
        Some(&Event::Errored {
            unstable_restarts: 1
        })
    );
}

#[tokio::test]
async fn a_stop_exit_code_is_not_restarted() {
    let config = fast().stop_exit_codes([3]).build();
    let mut sup = Supervisor::start(config, || {
        let mut command = child_command(Role::ExitWith);
        command.env("CODE", "3");
        command
    });
    let events = all_events(&mut sup).await;
    assert!(
        matches!(
            &events[..],
            [
                Event::Starting { restarts: 0, .. },
                Event::Ready {
                    via: ReadyVia::Started,
                    ..
                },
                Event::Exited {
                    status: ExitStatus::Code(3),
                    cause: ExitCause::Crashed,
                    ..
                },
                Event::Stopped,
            ]
        ),
        "{events:#?}"
    );
}

#[tokio::test]
async fn on_failure_does_not_restart_a_clean_exit() {
    let config = fast().restart(Restart::OnFailure).build();
    let mut sup = Supervisor::start(config, || {
        let mut command = child_command(Role::ExitWith);
        command.env("CODE", "0");
        command
    });
    let events = all_events(&mut sup).await;
    assert_eq!(events.last(), Some(&Event::Stopped), "{events:#?}");
    assert_eq!(events.len(), 4, "{events:#?}");
}

#[tokio::test]
async fn ready_via_the_control_channel_and_stop_by_message() {
    let config = fast()
        .wait_ready(WaitReady::Message)
        .stop_with(StopWith::Message)
        .build();
    let mut sup = Supervisor::start(config, || child_command(Role::ReadyMessage));
    ready_via(&mut sup, ReadyVia::Message).await;
    sup.stop().await;
    let events = all_events(&mut sup).await;
    assert_stopped_after_exit(&events, Some(ExitStatus::Code(0)), ExitCause::Stopped);
}

#[tokio::test]
async fn ready_via_notify_socket_and_stop_by_sigint() {
    let config = fast()
        .wait_ready(WaitReady::Notify)
        .control(ControlChannel::None)
        .build();
    let mut sup = Supervisor::start(config, || child_command(Role::ReadyNotify));
    ready_via(&mut sup, ReadyVia::Notify).await;
    sup.stop().await;
    let events = all_events(&mut sup).await;
    assert_stopped_after_exit(&events, Some(ExitStatus::Signal(2)), ExitCause::Stopped);
}

#[tokio::test]
async fn ready_via_node_process_send() {
    if !on_path("node") {
        return;
    }
    let config = fast()
        .wait_ready(WaitReady::Message)
        .control(ControlChannel::Node)
        .build();
    let mut sup = Supervisor::start(config, || {
        let mut command = Command::new("node");
        command.arg("-e").arg(
            "process.send('ready'); process.on('message', (m) => { if (m === 'shutdown') process.exit(0) }); setInterval(() => {}, 1000)",
        );
        command
    });
    ready_via(&mut sup, ReadyVia::Message).await;
    sup.stop().await;
    let events = all_events(&mut sup).await;
    assert_stopped_after_exit(&events, None, ExitCause::Stopped);
}

#[tokio::test]
async fn not_ready_in_time_is_a_failed_start() {
    let config = fast()
        .wait_ready(WaitReady::Any)
        .listen_timeout(Duration::from_millis(300))
        .restart(Restart::Never)
        .build();
    let mut sup = Supervisor::start(config, || child_command(Role::NeverReady));
    let events = all_events(&mut sup).await;
    assert!(
        matches!(
            &events[..],
            [
                Event::Starting { .. },
                Event::Exited {
                    status: ExitStatus::Signal(2),
                    cause: ExitCause::NotReady,
                    ..
                },
                Event::Stopped
            ]
        ),
        "{events:#?}"
    );
}

#[tokio::test]
async fn not_ready_counts_as_unstable_until_errored() {
    let config = fast()
        .wait_ready(WaitReady::Message)
        .listen_timeout(Duration::from_millis(100))
        .max_restarts(1)
        .build();
    let mut sup = Supervisor::start(config, || child_command(Role::NeverReady));
    let events = all_events(&mut sup).await;
    assert_eq!(
        events.last(),
        Some(&Event::Errored {
            unstable_restarts: 1
        }),
        "{events:#?}"
    );
}

#[tokio::test]
async fn an_exit_the_process_announced_is_told_apart_from_a_kill() {
    // It announces its exit and exits at once: the announcement is read before the
    // exit is reported.
    let config = fast().restart(Restart::Never).build();
    let mut sup = Supervisor::start(config, || child_command(Role::AnnounceExit));
    let events = all_events(&mut sup).await;
    assert!(
        matches!(
            &events[..],
            [
                Event::Starting { .. },
                Event::Ready { .. },
                Event::Exited {
                    status: ExitStatus::Code(1),
                    cause: ExitCause::Announced,
                    ..
                },
                Event::Stopped
            ]
        ),
        "{events:#?}"
    );
    // Killed from outside: a crash, not asked for.
    let mut sup = Supervisor::start(config_never(), || child_command(Role::NeverReady));
    let started = events_until(&mut sup, |e| matches!(e, Event::Ready { .. })).await;
    let Some(Event::Ready { pid, .. }) = started.last() else {
        panic!("{started:#?}")
    };
    support::signal(*pid, nix::sys::signal::Signal::SIGKILL);
    let events = all_events(&mut sup).await;
    assert_stopped_after_exit(&events, Some(ExitStatus::Signal(9)), ExitCause::Crashed);
    assert!(!ExitCause::Crashed.was_asked() && !ExitCause::Announced.was_asked());
}

/// [`fast`] timings, never restarted.
fn config_never() -> Config {
    fast().restart(Restart::Never).build()
}

#[tokio::test]
async fn a_child_ignoring_the_stop_signal_is_killed_with_its_grandchild() {
    let config = fast()
        .wait_ready(WaitReady::Message)
        .kill_timeout(Duration::from_millis(300))
        .build();
    let mut sup = Supervisor::start(config, || child_command(Role::Stubborn));
    let events = events_until(&mut sup, |e| matches!(e, Event::Ready { .. })).await;
    let Some(Event::Ready { pid, .. }) = events.last() else {
        panic!("{events:#?}")
    };
    let tree = group_members(*pid);
    assert_eq!(tree.len(), 2, "the child and its grandchild: {tree:?}");
    sup.stop().await;
    let events = all_events(&mut sup).await;
    assert_stopped_after_exit(&events, Some(ExitStatus::Signal(9)), ExitCause::Killed);
    all_gone(&tree).await.expect("the whole tree is gone");
    assert_eq!(group_members(*pid), Vec::<u32>::new());
}

/// Start a supervisor process in `role`, wait for its supervised child (which started a
/// grandchild) to be ready, let `end` end the supervisor, and check that neither the
/// child nor the grandchild is left.
async fn nothing_outlives_the_supervisor(role: Role, end: Ending) {
    use tokio::io::AsyncBufReadExt;
    let mut parent = tokio::process::Command::new(std::env::current_exe().expect("exe"));
    parent
        .args(child_command(role).get_args())
        .env(ipc_core::testkit::ROLE_VAR, format!("{role:?}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut parent = parent.spawn().expect("start the supervisor process");
    let mut go = parent.stdin.take().expect("stdin");
    let stdout = parent.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(GUARD, async {
        loop {
            let line = lines.next_line().await.expect("read").expect("a line");
            // libtest prints "test child ... " on the same line first.
            if let Some((_, pid)) = line.split_once("pid ") {
                return pid.trim().parse::<u32>().expect("a pid");
            }
        }
    })
    .await
    .expect("the supervised child became ready");
    let tree = group_members(line);
    assert_eq!(tree.len(), 2, "the child and its grandchild: {tree:?}");
    match end {
        Ending::Sigkill => parent.start_kill().expect("SIGKILL the supervisor"),
        Ending::ByItself { .. } => {
            use tokio::io::AsyncWriteExt;
            go.write_all(b"go\n")
                .await
                .expect("tell the supervisor to end");
        }
    }
    let status = tokio::time::timeout(GUARD, parent.wait())
        .await
        .expect("the supervisor process ended")
        .expect("reap");
    match end {
        Ending::Sigkill => assert!(!status.success(), "{status}"),
        // libtest reports the panic of the `child` test: exit code 101.
        Ending::ByItself { code } => assert_eq!(status.code(), Some(code), "{status}"),
    }
    all_gone(&tree).await.expect("no process left behind");
}

/// How the supervisor process ends in [`nothing_outlives_the_supervisor`].
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ending {
    /// The test SIGKILLs it.
    Sigkill,
    /// It ends on its own with this exit code.
    ByItself { code: i32 },
}

#[tokio::test]
async fn nothing_outlives_a_sigkilled_supervisor() {
    nothing_outlives_the_supervisor(Role::SupervisorParent, Ending::Sigkill).await;
}

#[tokio::test]
async fn nothing_outlives_a_panicking_supervisor() {
    nothing_outlives_the_supervisor(Role::SupervisorParentPanics, Ending::ByItself { code: 101 })
        .await;
}

#[tokio::test]
async fn nothing_outlives_a_supervisor_that_exits_without_destructors() {
    nothing_outlives_the_supervisor(Role::SupervisorParentExits, Ending::ByItself { code: 0 })
        .await;
}

#[tokio::test]
async fn a_python_worker_says_ready_and_stops_on_the_shutdown_message() {
    if !on_path("python3") {
        return;
    }
    let peers = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../peers/python");
    let config = fast()
        .wait_ready(WaitReady::Message)
        .stop_with(StopWith::Message)
        .build();
    let mut sup = Supervisor::start(config, move || {
        let mut command = Command::new("python3");
        command
            .arg(peers.join("examples/supervised_worker.py"))
            .env("PYTHONPATH", &peers);
        command
    });
    ready_via(&mut sup, ReadyVia::Message).await;
    sup.stop().await;
    let events = all_events(&mut sup).await;
    assert_stopped_after_exit(&events, Some(ExitStatus::Code(0)), ExitCause::Stopped);
}
