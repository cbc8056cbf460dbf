//! Listening beyond loopback without a token prints a warning a person sees: on
//! stderr, once per listener, saying what to do. Checked in a child process (this test
//! binary run again), whose stderr is read as a user would see it.

use std::net::SocketAddr;

use ipc_core::testkit;
use ipc_core::Options;

ipc_core::child_roles! {
    /// Which listener the re-executed child binds (then drops).
    enum Role {
        /// All interfaces, no token: warns.
        PublicOpen,
        /// All interfaces with a token: quiet.
        PublicWithToken,
        /// Loopback, no token: quiet.
        LoopbackOpen,
    }
}

/// The children's entry point: binds the listener its role names. Does nothing in the
/// parent's test run.
#[tokio::test]
async fn child() {
    let Some(role) = testkit::role::<Role>() else {
        return;
    };
    let (addr, opts): (SocketAddr, _) = match role {
        Role::PublicOpen => (([0, 0, 0, 0], 0).into(), Options::default()),
        Role::PublicWithToken => (([0, 0, 0, 0], 0).into(), Options::default().token("t")),
        Role::LoopbackOpen => (([127, 0, 0, 1], 0).into(), Options::default()),
    };
    let listener = ipc_tcp::bind(addr, &opts).await.expect("bind");
    drop(listener);
}

/// Run this test binary again as a child binding what `role` names; return its stderr.
fn stderr_of_binding(role: Role) -> String {
    let out = testkit::child_command(role)
        .output()
        .expect("run the test binary as a child");
    assert!(out.status.success(), "child failed: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn all_interfaces_without_a_token_warns_on_stderr_once() {
    let stderr = stderr_of_binding(Role::PublicOpen);
    assert_eq!(
        stderr.matches("warning:").count(),
        1,
        "one warning on stderr, got: {stderr:?}"
    );
    assert!(stderr.contains("0.0.0.0:"), "names the address: {stderr}");
    assert!(
        stderr.contains("without a token"),
        "says what is wrong: {stderr}"
    );
    assert!(
        stderr.contains("127.0.0.1") && stderr.contains("token("),
        "says what to do: {stderr}"
    );
}

#[tokio::test]
async fn a_token_or_loopback_prints_nothing() {
    for role in [Role::PublicWithToken, Role::LoopbackOpen] {
        let stderr = stderr_of_binding(role);
        assert!(!stderr.contains("warning:"), "{role:?}: {stderr:?}");
    }
}
