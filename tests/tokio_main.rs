//! A tokio application adopts any default transport without changing `main`: the
//! `tokio_main` example (a plain `#[tokio::main]`, multi-threaded) pings a copy of
//! itself, and in-process `#[tokio::test]` parents of both flavors spawn that example as
//! their child. The signal transport, which needs its signals blocked before any thread
//! starts, refuses such programs with an error that says so instead of letting a frame
//! kill them. Real processes; `cargo test` builds the example next to this test binary.

use ipc::testkit::built_example;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use ipc::prelude::*;

/// Every transport of the facade's default features that spawns a child.
const DEFAULT_TRANSPORTS: &[&str] = &["uds", "tcp", "pipe", "fifo", "stdio", "node"];

/// Longest one ping may take before it counts as a hang.
const GUARD: Duration = Duration::from_secs(20);

/// The ping, a JSON text so that every transport carries it (`node` frames are JSON).
const PING: &[u8] = br#""ping""#;

#[test]
fn the_tokio_main_example_pings_its_child_over_every_default_transport() {
    for transport in DEFAULT_TRANSPORTS {
        let out = Command::new(built_example("tokio_main"))
            .args(["--transport", transport])
            .output()
            .expect("run tokio_main");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "tokio_main over {transport}: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains(&format!(
                "answered the ping over {transport} (runtime: MultiThread)"
            )),
            "{stdout}"
        );
    }
}

/// Spawn the `tokio_main` example as a child over `transport` from this process's
/// runtime, ping it, close, and check it exited cleanly.
async fn ping_a_tokio_main_child(transport: &str) {
    let run = async {
        let t = ipc::registry().get(transport)?;
        let (mut child, mut ch) = t
            .spawn(
                Command::new(built_example("tokio_main")),
                &Default::default(),
            )
            .await?;
        ch.send(Bytes::from_static(PING)).await?;
        let pong = ch.recv().await?;
        ch.close().await?;
        let status = child.wait().await?;
        Ok::<_, ipc::Error>((pong, status))
    };
    let (pong, status) = tokio::time::timeout(GUARD, run)
        .await
        .unwrap_or_else(|_| panic!("{transport}: no pong within {GUARD:?}"))
        .unwrap_or_else(|e| panic!("{transport}: {e}"));
    assert_eq!(pong.as_deref(), Some(PING), "{transport}");
    assert!(status.success(), "{transport}: the child exited: {status}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_current_thread_test_spawns_a_tokio_main_child_over_every_default_transport() {
    for transport in DEFAULT_TRANSPORTS {
        ping_a_tokio_main_child(transport).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_thread_test_spawns_a_tokio_main_child_over_every_default_transport() {
    for transport in DEFAULT_TRANSPORTS {
        ping_a_tokio_main_child(transport).await;
    }
}

// The signal transport is the facade's opt-in feature `signal`: `cargo test --workspace`
// builds with it (ipc-cat and ipc-bench ask for it), `cargo test -p ipc-kit` without.

/// The signal transport's refusal names the call that fixes it.
#[cfg(feature = "signal")]
fn says_what_to_call(message: &str) -> bool {
    message.contains("not blocked") && message.contains("block_transport_signals()")
}

#[cfg(feature = "signal")]
#[test]
fn the_tokio_main_example_over_signal_gets_a_clear_error_not_a_kill() {
    let out = Command::new(built_example("tokio_main"))
        .args(["--transport", "signal"])
        .output()
        .expect("run tokio_main");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // An exit code (not a death by signal 37 or 38), and the reason.
    assert_eq!(out.status.code(), Some(1), "{}: {stderr}", out.status);
    assert!(says_what_to_call(&stderr), "{stderr}");
}

#[cfg(feature = "signal")]
#[tokio::test(flavor = "current_thread")]
async fn the_signal_transport_refuses_a_tokio_test_that_did_not_block_its_signals() {
    let t = ipc::registry().get("signal").expect("signal is built");
    match t
        .spawn(
            Command::new(built_example("tokio_main")),
            &Default::default(),
        )
        .await
    {
        Err(e @ ipc::SpawnError::Unsupported { .. }) => {
            assert!(says_what_to_call(&e.to_string()), "{e}")
        }
        Err(e) => panic!("expected Unsupported, got {e}"),
        Ok(_) => panic!("the signal transport spawned with its signals unblocked"),
    }
}
