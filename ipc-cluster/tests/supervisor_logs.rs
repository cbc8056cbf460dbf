//! What the supervisor logs through `tracing`, in a test binary of its own: `tracing`
//! caches per call site whether anyone listens, and a call site first reached by
//! another test's thread (with no subscriber) could be cached as unheard while this
//! test's subscriber is being set. Alone in its process, this test sets its subscriber
//! before any call site is reached.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipc_cluster::{Config, Event, ExitCause, Supervisor};
use ipc_core::testkit::{child_command, role};
use support::GUARD;

ipc_core::child_roles! {
    /// What a re-executed copy of this test binary does.
    enum Role {
        /// Exit 1 at once.
        Crash,
    }
}

/// The children's entry point: does nothing in the parent's test run.
#[test]
fn child() {
    if let Some(Role::Crash) = role::<Role>() {
        std::process::exit(1);
    }
}

/// What the supervisor logs, captured by the test's subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("the log buffer")
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every event is logged through `tracing` as it is reported, at a level that says how
/// bad it is: a crash is a warning, giving up is an error, the rest is information.
#[tokio::test(flavor = "current_thread")]
async fn every_event_is_logged_through_tracing_at_its_level() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    // The supervisor's task runs on this thread (current_thread runtime), so the
    // thread's default subscriber sees what it logs.
    let _default = tracing::subscriber::set_default(subscriber);
    let config = Config::builder()
        .min_uptime(Duration::from_secs(5))
        .max_restarts(1)
        .restart_delay(Duration::from_millis(1))
        .build();
    let mut sup = Supervisor::start(config, || child_command(Role::Crash));
    let mut events = Vec::new();
    tokio::time::timeout(GUARD, async {
        while let Some(event) = sup.next_event().await {
            events.push(event);
        }
    })
    .await
    .expect("the supervisor did not finish in time");
    let log = String::from_utf8(captured.0.lock().expect("the log buffer").clone())
        .expect("the log is text");
    let lines = |level: &str, text: &str| {
        log.lines()
            .filter(|l| l.contains(level) && l.contains(text))
            .count()
    };
    let crashes = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Exited {
                    cause: ExitCause::Crashed,
                    ..
                }
            )
        })
        .count();
    assert_eq!(crashes, 2, "{events:#?}");
    assert_eq!(
        lines("WARN", "process exited: exit code 1"),
        crashes,
        "{log}"
    );
    assert_eq!(lines("ERROR", "process errored: not restarted"), 1, "{log}");
    assert_eq!(lines("INFO", "Starting"), 2, "{log}");
    assert_eq!(lines("INFO", "Restarting"), 1, "{log}");
}
