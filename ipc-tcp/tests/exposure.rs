//! Listening beyond loopback without a token prints a warning a person sees: on
//! stderr, once per listener, saying what to do. Checked in a child process (this test
//! binary run again), whose stderr is read as a user would see it.

use std::net::SocketAddr;
use std::process::Command;

use ipc_tcp::TcpOptions;

/// Set in the child: which listener to bind.
const CHILD: &str = "IPC_TCP_EXPOSURE_CHILD";

/// In the parent, run this test's binary again as a child binding `what`; return its
/// stderr. In the child (`CHILD` set), do the binding and return `None`.
async fn stderr_of_binding(test_name: &str, what: &str) -> Option<String> {
    if let Ok(what) = std::env::var(CHILD) {
        let (addr, opts): (SocketAddr, _) = match what.as_str() {
            "public-no-token" => (([0, 0, 0, 0], 0).into(), TcpOptions::default()),
            "public-token" => (([0, 0, 0, 0], 0).into(), TcpOptions::default().token("t")),
            "loopback-no-token" => (([127, 0, 0, 1], 0).into(), TcpOptions::default()),
            other => panic!("unknown case {other}"),
        };
        let listener = ipc_tcp::bind(addr, opts).await.expect("bind");
        drop(listener);
        return None;
    }
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, what)
        .output()
        .expect("run the test binary as a child");
    assert!(out.status.success(), "child failed: {out:?}");
    Some(String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test]
async fn all_interfaces_without_a_token_warns_on_stderr_once() {
    let Some(stderr) = stderr_of_binding(
        "all_interfaces_without_a_token_warns_on_stderr_once",
        "public-no-token",
    )
    .await
    else {
        return;
    };
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
    for case in ["public-token", "loopback-no-token"] {
        let Some(stderr) = stderr_of_binding("a_token_or_loopback_prints_nothing", case).await
        else {
            return;
        };
        assert!(!stderr.contains("warning:"), "{case}: {stderr:?}");
    }
}
