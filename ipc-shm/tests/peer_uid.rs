//! The shared-memory listener with clients in other processes: one that hangs up as soon
//! as it has its segment is served all the same, and a client of another user is
//! refused unless the listener's options allow its uid (`Options::allow_uid`), as on a
//! uds listener (that part needs root, the client runs as `nobody`; skipped otherwise).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::time::Duration;

use ipc_core::prelude::*;
use ipc_core::testkit;
use ipc_core::{ConnectError, Endpoint, Error, Options};
use ipc_shm::ShmListener;

const HELPER_ENV: &str = "IPC_SHM_TEST_HELPER_ENDPOINT";
const NOBODY: u32 = 65534;
const GUARD: Duration = Duration::from_secs(30);

/// Exit codes of the helper.
const ECHOED: i32 = 0;
const FAILED: i32 = 1;
const REFUSED: i32 = 3;

ipc_core::child_roles! {
    /// What this binary does when re-executed as a child.
    enum Role {
        /// Started as `nobody` by `connect_as_nobody`: connect to the endpoint in
        /// `HELPER_ENV`, send a frame and wait for it to come back.
        ConnectFromEnv,
    }
}

/// The children's entry point: does nothing in the parent's test run.
#[tokio::test]
async fn child() {
    let Some(Role::ConnectFromEnv) = testkit::role::<Role>() else {
        return;
    };
    let endpoint: Endpoint = std::env::var(HELPER_ENV)
        .expect("the endpoint to connect to")
        .parse()
        .expect("endpoint");
    let code = match ipc_shm::connect(&endpoint, &Options::default()).await {
        Ok(mut channel) => {
            let echoed = async {
                channel.send("hello from nobody".into()).await.ok()?;
                channel.recv().await.ok()?
            };
            match echoed.await {
                Some(frame) if frame == "hello from nobody" => ECHOED,
                _ => FAILED,
            }
        }
        // The listener hung up on us instead of offering a segment.
        Err(ConnectError::Handshake(_)) => REFUSED,
        Err(e) => {
            eprintln!("helper: {e}");
            FAILED
        }
    };
    std::process::exit(code);
}

/// Run this test binary again as `nobody`, connecting to `endpoint`; its exit code.
async fn connect_as_nobody(endpoint: &Endpoint) -> i32 {
    connect_from_process(endpoint, Some(NOBODY)).await
}

/// Run this test binary again (as `uid`, or as we are), connecting to `endpoint`; its
/// exit code.
async fn connect_from_process(endpoint: &Endpoint, uid: Option<u32>) -> i32 {
    let mut command = testkit::child_command(Role::ConnectFromEnv);
    command.env(HELPER_ENV, endpoint.to_string());
    if let Some(uid) = uid {
        command.uid(uid).gid(uid);
    }
    let mut child = tokio::process::Command::from(command)
        .spawn()
        .expect("run helper");
    let status = tokio::time::timeout(GUARD, child.wait())
        .await
        .expect("the helper ends")
        .expect("helper exit");
    status.code().expect("exit code")
}

/// Serve one client: echo its frame, then wait for it to hang up (so the echo is not
/// cut by our drop). Its uid.
async fn echo_one(listener: &mut ShmListener) -> Option<u32> {
    let mut channel = tokio::time::timeout(GUARD, listener.accept())
        .await
        .expect("accept in time")
        .expect("the client is served");
    let frame = channel.recv().await.expect("recv").expect("a frame");
    channel.send(frame).await.expect("echo");
    let _ = tokio::time::timeout(GUARD, channel.recv()).await;
    channel.info().peer_uid
}

#[tokio::test]
async fn a_client_that_hangs_up_once_it_has_its_segment_is_served() {
    // The client may close the rendezvous socket before the listener's goodbye on it
    // is written (PROTOCOL.md 12.1): that is no failure of the handshake. A race, so
    // several rounds.
    let (_dir, endpoint, mut listener) = open_listener(&Options::default());
    for round in 0..20 {
        let (uid, code) = tokio::join!(
            echo_one(&mut listener),
            connect_from_process(&endpoint, None)
        );
        assert_eq!(code, ECHOED, "round {round}");
        assert_eq!(uid, Some(nix::unistd::geteuid().as_raw()));
    }
}

/// A listener in a fresh directory whose socket file other users may open, so that
/// only the listener's uid check stands between them and a channel.
fn open_listener(options: &Options) -> (tempfile::TempDir, Endpoint, ShmListener) {
    let dir = tempfile::Builder::new()
        .prefix("ipc-shm-uid-")
        .tempdir()
        .expect("temp dir");
    let path = dir.path().join("sock");
    let endpoint = Endpoint::ShmPath(path.clone());
    let listener = ShmListener::bind(&endpoint, options).expect("bind");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod dir");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).expect("chmod socket");
    (dir, endpoint, listener)
}

#[tokio::test]
async fn other_uids_are_refused_unless_the_options_allow_them() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: switching to another uid needs root");
        return;
    }
    let own = nix::unistd::geteuid().as_raw();

    let (_dir, endpoint, mut listener) = open_listener(&Options::default());
    let (refused, code) = tokio::join!(
        tokio::time::timeout(GUARD, listener.accept()),
        connect_as_nobody(&endpoint)
    );
    let err = refused
        .expect("accept in time")
        .expect_err("nobody refused");
    let msg = err.to_string();
    assert!(matches!(err, Error::Auth(_)), "{msg}");
    assert!(
        msg.contains(&format!("uid {NOBODY}")) && msg.contains(&format!("own uid {own}")),
        "{msg}"
    );
    assert_eq!(
        code, REFUSED,
        "the helper saw the refusal as a handshake error"
    );

    let allowed = Options::default().allow_uid(NOBODY);
    let (_dir, endpoint, mut listener) = open_listener(&allowed);
    let (served, code) = tokio::join!(echo_one(&mut listener), connect_as_nobody(&endpoint));
    assert_eq!(code, ECHOED);
    assert_eq!(served, Some(NOBODY));
}
