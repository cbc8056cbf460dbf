//! Path and abstract listeners on real sockets: permissions, stale and live socket
//! files, peer uid checks, oversize frames from a client.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;
use ipc_core::prelude::*;
use ipc_core::testkit;
use ipc_core::ConnectError;
use ipc_core::ListenError;
use ipc_core::Options;
use ipc_core::{Endpoint, Error, Listener, RecvError};
use ipc_uds::{connect, UdsListener};

const HELPER_ENV: &str = "IPC_UDS_TEST_HELPER_ENDPOINT";
const NOBODY: u32 = 65534;

/// Held by the tests that start processes, and by the stale-file test while its "dead"
/// listener exists: a fork in another thread copies every open fd into the child until
/// it execs, which would keep that listener alive (correctly reported as in use).
static FORKS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .expect("stat")
        .permissions()
        .mode()
        & 0o777
}

fn unique_abstract_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "ipc-uds-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

async fn ping_pong(client: &mut impl Channel, server: &mut impl Channel, text: &str) {
    client
        .send(Bytes::from(text.to_owned()))
        .await
        .expect("send");
    let got = server.recv().await.expect("recv").expect("frame");
    assert_eq!(got, text);
    server.send(got).await.expect("echo");
    assert_eq!(client.recv().await.expect("recv").expect("frame"), text);
}

#[tokio::test]
async fn path_listener_serves_two_clients_with_credentials() {
    let dir = tempfile::tempdir().expect("tempdir");
    let endpoint = Endpoint::UnixPath(dir.path().join("app.sock"));
    let mut listener = UdsListener::bind(&endpoint, &Default::default()).expect("bind");
    assert_eq!(Listener::endpoint(&listener), endpoint);

    let mut first = connect(&endpoint, &Default::default())
        .await
        .expect("connect 1");
    let mut second = connect(&endpoint, &Default::default())
        .await
        .expect("connect 2");
    let mut served_first = listener.accept().await.expect("accept 1");
    let mut served_second = listener.accept().await.expect("accept 2");
    ping_pong(&mut second, &mut served_second, "second").await;
    ping_pong(&mut first, &mut served_first, "first").await;

    let me = std::process::id();
    let uid = nix::unistd::geteuid().as_raw();
    for info in [served_first.info(), first.info()] {
        assert_eq!(info.transport, "uds");
        assert_eq!(info.peer_pid, Some(me));
        assert_eq!(info.peer_uid, Some(uid));
    }
    assert_eq!(first.info().peer_addr, Some(endpoint.to_string()));
}

#[tokio::test]
async fn socket_is_0600_and_created_parents_are_0700() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outer = dir.path().join("a");
    let inner = outer.join("b");
    let path = inner.join("s.sock");
    let listener =
        UdsListener::bind(&Endpoint::UnixPath(path.clone()), &Default::default()).expect("bind");
    assert!(fs::symlink_metadata(&path)
        .expect("stat")
        .file_type()
        .is_socket());
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&inner), 0o700);
    assert_eq!(mode(&outer), 0o700);
    // Only the socket is left in its directory (the staging directory is gone).
    let entries: Vec<_> = fs::read_dir(&inner).expect("read_dir").collect();
    assert_eq!(entries.len(), 1);

    drop(listener);
    assert!(!path.exists(), "socket file removed on drop");
    assert!(
        !outer.exists(),
        "directories the listener created are removed on drop"
    );
    assert!(dir.path().exists(), "directories it did not create stay");
}

#[tokio::test]
async fn stale_socket_file_is_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("stale.sock");
    let no_forks = FORKS.lock().await;
    drop(std::os::unix::net::UnixListener::bind(&path).expect("std bind"));
    drop(no_forks);
    assert!(fs::symlink_metadata(&path)
        .expect("stale file")
        .file_type()
        .is_socket());

    let endpoint = Endpoint::UnixPath(path.clone());
    let mut listener = UdsListener::bind(&endpoint, &Default::default()).expect("rebind");
    assert_eq!(mode(&path), 0o600);
    let mut client = connect(&endpoint, &Default::default())
        .await
        .expect("connect");
    let mut server = listener.accept().await.expect("accept");
    ping_pong(&mut client, &mut server, "fresh").await;
}

#[tokio::test]
async fn live_socket_file_is_not_taken_over() {
    let dir = tempfile::tempdir().expect("tempdir");
    let endpoint = Endpoint::UnixPath(dir.path().join("live.sock"));
    let mut live = UdsListener::bind(&endpoint, &Default::default()).expect("bind");

    let err = UdsListener::bind(&endpoint, &Default::default()).expect_err("in use");
    let ListenError::InUse(io) = &err else {
        panic!("expected InUse, got {err:?}");
    };
    assert_eq!(io.kind(), std::io::ErrorKind::AddrInUse);
    let msg = err.to_string();
    assert!(msg.contains("live server"), "{msg}");
    assert!(
        msg.contains(&format!("pid {}", std::process::id())),
        "{msg}"
    );

    // The probe was a polite client: connected, said goodbye.
    let mut probe = live.accept().await.expect("accept the probe");
    assert_eq!(probe.recv().await.expect("probe closes cleanly"), None);

    // The live server still owns its path and serves.
    let mut client = connect(&endpoint, &Default::default())
        .await
        .expect("connect");
    let mut server = live.accept().await.expect("accept");
    ping_pong(&mut client, &mut server, "still alive").await;
}

#[tokio::test]
async fn a_file_that_is_not_a_socket_is_never_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("precious.txt");
    fs::write(&path, b"keep me").expect("write");
    let err = UdsListener::bind(&Endpoint::UnixPath(path.clone()), &Default::default())
        .expect_err("not a socket");
    assert!(err.to_string().contains("not a socket"), "{err}");
    assert_eq!(fs::read(&path).expect("still there"), b"keep me");
}

#[tokio::test]
async fn dropping_a_listener_spares_a_socket_file_that_replaced_ours() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("swap.sock");
    let listener =
        UdsListener::bind(&Endpoint::UnixPath(path.clone()), &Default::default()).expect("bind");
    fs::remove_file(&path).expect("remove ours");
    let other = std::os::unix::net::UnixListener::bind(&path).expect("someone else binds");
    drop(listener);
    assert!(path.exists(), "the other socket file must survive our drop");
    drop(other);
}

#[tokio::test]
async fn abstract_name_listen_and_connect() {
    let endpoint = Endpoint::UnixAbstract(unique_abstract_name());
    let mut listener = UdsListener::bind(&endpoint, &Default::default()).expect("bind");
    let mut client = connect(&endpoint, &Default::default())
        .await
        .expect("connect");
    let mut server = listener.accept().await.expect("accept");
    ping_pong(&mut client, &mut server, "abstract").await;
    assert_eq!(server.info().peer_pid, Some(std::process::id()));

    let err = UdsListener::bind(&endpoint, &Default::default()).expect_err("name taken");
    assert!(
        matches!(&err, ListenError::InUse(e) if e.kind() == std::io::ErrorKind::AddrInUse),
        "{err}"
    );

    drop((listener, server, client));
    let err = connect(&endpoint, &Default::default())
        .await
        .expect_err("name gone");
    assert!(err.to_string().contains("nobody listens"), "{err}");
}

#[tokio::test]
async fn huge_length_prefix_is_rejected_and_the_listener_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("huge.sock");
    let endpoint = Endpoint::UnixPath(path.clone());
    let mut listener = UdsListener::bind(&endpoint, &Default::default()).expect("bind");

    let mut rogue = std::os::unix::net::UnixStream::connect(&path).expect("raw connect");
    rogue
        .write_all(&0xFFFF_FF00u32.to_be_bytes())
        .expect("write prefix");
    let mut served = listener.accept().await.expect("accept rogue");
    let err = served.recv().await.expect_err("too large");
    assert!(
        matches!(err, RecvError::Rejected(Error::FrameTooLarge { len: 0xFFFF_FF00, max }) if max == 8 << 20),
        "{err}"
    );
    drop(rogue);

    let mut client = connect(&endpoint, &Default::default())
        .await
        .expect("connect");
    let mut server = listener.accept().await.expect("accept next");
    ping_pong(&mut client, &mut server, "after the rogue").await;
}

/// Run this test binary again as `nobody`, connecting to `endpoint`; returns its exit
/// code (0: connected and sent a frame, 2: permission denied, 1: other failure).
async fn connect_as_nobody(endpoint: &Endpoint) -> i32 {
    let mut command = testkit::child_command(Role::ConnectFromEnv);
    command
        .env(HELPER_ENV, endpoint.to_string())
        .uid(NOBODY)
        .gid(NOBODY);
    let forking = FORKS.lock().await;
    let mut child = tokio::process::Command::from(command)
        .spawn()
        .expect("run helper");
    drop(forking); // exec is done: the child holds none of our fds now
    let status = child.wait().await.expect("helper exit");
    status.code().expect("exit code")
}

ipc_core::child_roles! {
    /// What this binary does when re-executed as a child.
    enum Role {
        /// The client half of the other-uid tests, started by `connect_as_nobody` as
        /// another user: connect to the endpoint in `HELPER_ENV`, send a frame, wait
        /// for an answer or the end.
        ConnectFromEnv,
    }
}

/// The children's entry point: does nothing in the parent's test run.
#[tokio::test]
async fn child() {
    let Some(Role::ConnectFromEnv) = testkit::role::<Role>() else {
        return;
    };
    let endpoint = std::env::var(HELPER_ENV).expect("the endpoint to connect to");
    let endpoint: Endpoint = endpoint.parse().expect("endpoint");
    match connect(&endpoint, &Default::default()).await {
        Ok(mut channel) => {
            // A refusing server may have hung up already: then send and recv fail.
            let _ = channel.send("hello from nobody".into()).await;
            // The answer (or the server's refusal, as an end of stream) ends the helper.
            let _ = channel.recv().await;
            std::process::exit(0);
        }
        Err(ConnectError::Io(e)) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            std::process::exit(2)
        }
        Err(e) => {
            eprintln!("helper: {e}");
            std::process::exit(1)
        }
    }
}

#[tokio::test]
async fn other_uids_are_refused_unless_allowed() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: switching to another uid needs root");
        return;
    }
    // Abstract names have no permissions: only the SO_PEERCRED check stands guard.
    let endpoint = Endpoint::UnixAbstract(unique_abstract_name());
    let mut listener = UdsListener::bind(&endpoint, &Default::default()).expect("bind");
    let (refused, code) = tokio::join!(listener.accept(), connect_as_nobody(&endpoint));
    assert_eq!(code, 0, "the helper could connect");
    let err = refused.expect_err("other uid refused");
    let msg = err.to_string();
    assert!(matches!(err, Error::Auth(_)), "{msg}");
    assert!(
        msg.contains(&format!("uid {NOBODY}")) && msg.contains("own uid 0"),
        "{msg}"
    );

    // The listener keeps serving our own uid.
    let mut client = connect(&endpoint, &Default::default())
        .await
        .expect("connect");
    let mut server = listener.accept().await.expect("accept");
    ping_pong(&mut client, &mut server, "same uid").await;

    // Allowed explicitly.
    let endpoint = Endpoint::UnixAbstract(unique_abstract_name());
    let mut listener =
        UdsListener::bind(&endpoint, &Options::default().allow_uid(NOBODY)).expect("bind");
    let (accepted, code) = tokio::join!(
        async {
            let mut channel = listener.accept().await.expect("allowed uid accepted");
            let frame = channel.recv().await.expect("recv").expect("frame");
            channel.send(frame.clone()).await.expect("reply");
            (channel.info().peer_uid, frame)
        },
        connect_as_nobody(&endpoint)
    );
    assert_eq!(code, 0);
    assert_eq!(accepted, (Some(NOBODY), Bytes::from("hello from nobody")));
}

#[tokio::test]
async fn the_socket_file_mode_keeps_other_users_out() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: switching to another uid needs root");
        return;
    }
    // A world-searchable directory, so only the socket's own mode can refuse.
    let dir = tempfile::tempdir().expect("tempdir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    let endpoint = Endpoint::UnixPath(dir.path().join("private.sock"));
    let listener = UdsListener::bind(&endpoint, &Options::default().allow_any_uid()).expect("bind");
    assert_eq!(connect_as_nobody(&endpoint).await, 2, "nobody gets EACCES");
    drop(listener);
}

/// PROTOCOL.md §2: an existing directory is used as it is, unless others could replace
/// the socket file in it (group/world-writable without the sticky bit): then `listen`
/// refuses with `PermissionDenied` naming the directory and its mode.
#[tokio::test]
async fn an_existing_directory_others_can_write_is_refused_unless_sticky() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for (bits, accepted) in [
        (0o755, true),
        (0o700, true),
        (0o1777, true),
        (0o777, false),
        (0o770, false),
        (0o702, false),
    ] {
        let dir = tmp.path().join(format!("d{bits:o}"));
        fs::create_dir(&dir).expect("mkdir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(bits)).expect("chmod");
        let path = dir.join("s.sock");
        match UdsListener::bind(&Endpoint::UnixPath(path.clone()), &Default::default()) {
            Ok(listener) => {
                assert!(accepted, "{bits:04o} was accepted");
                assert_eq!(mode(&path), 0o600);
                drop(listener);
            }
            Err(ListenError::Io(e)) => {
                assert!(!accepted, "{bits:04o} refused: {e}");
                assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}");
                let msg = e.to_string();
                assert!(msg.contains(&format!("{bits:04o}")), "{msg}");
                assert!(msg.contains(&dir.display().to_string()), "{msg}");
                assert!(!path.exists(), "nothing was created");
            }
            Err(e) => panic!("{bits:04o}: unexpected error {e}"),
        }
        // The directory's own mode is never changed.
        let now = fs::metadata(&dir).expect("stat").permissions().mode() & 0o7777;
        assert_eq!(now, bits);
    }
}
