//! PROTOCOL.md §3, "how a process knows it is a child": `ipc::role()` reads only
//! whether `IPC_ENDPOINT` is set or a built-in transport finds its own channel in the
//! environment (the node transport: `NODE_CHANNEL_FD`), even to an empty or unusable
//! value; it never opens anything. Checked in real processes: this test binary re-runs itself
//! with a chosen environment.

use std::process::Command;

use ipc::{role, Role};

const PROBE: &str = "IPC_FACADE_ROLE_PROBE";

/// Run in a child process (by [`role_follows_the_environment`]): prints the role.
#[test]
fn probe() {
    if std::env::var_os(PROBE).is_some() {
        println!("ROLE={:?}", role());
    }
}

/// The role a fresh process sees with exactly `vars` set among the two variables.
fn role_with(vars: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args(["--exact", "probe", "--nocapture", "--test-threads=1"])
        .env(PROBE, "1")
        .env_remove("IPC_ENDPOINT")
        .env_remove("NODE_CHANNEL_FD");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("re-run the test binary");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.split("ROLE=").nth(1))
        .unwrap_or_else(|| panic!("no ROLE line in {text}"))
        .trim()
        .to_string()
}

#[test]
fn role_follows_the_environment() {
    assert_eq!(role_with(&[]), format!("{:?}", Role::Parent));
    for vars in [
        &[("IPC_ENDPOINT", "uds:fd=3")][..],
        &[("IPC_ENDPOINT", "")],
        &[("IPC_ENDPOINT", "not an endpoint")],
        #[cfg(feature = "node")]
        &[("NODE_CHANNEL_FD", "3")],
        &[("IPC_ENDPOINT", "stdio:"), ("NODE_CHANNEL_FD", "3")],
    ] {
        assert_eq!(role_with(vars), format!("{:?}", Role::Child), "{vars:?}");
    }
    // IPC_TOKEN or IPC_MAX_FRAME alone do not make a child.
    assert_eq!(
        role_with(&[("IPC_TOKEN", "x"), ("IPC_MAX_FRAME", "1024")]),
        format!("{:?}", Role::Parent)
    );
}
