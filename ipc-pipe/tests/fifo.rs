//! FIFO pairs: listener and clients, file modes, one client at a time, clients that die
//! or speak garbage, stale directories. Real FIFOs and real processes; nothing sleeps to
//! wait for readiness.
//!
//! Some tests re-execute this binary as a child process playing a [`Role`]; the `child`
//! test does nothing otherwise.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use ipc_core::prelude::*;
use ipc_core::testkit;
use ipc_core::ConnectError;
use ipc_core::ListenError;
use ipc_core::SpawnError;
use ipc_core::{Endpoint, Error, RecvError, Transport};
use ipc_pipe::{connect_fifo, spawn_fifo, FifoListener, FifoTransport};
use tokio::io::{AsyncBufReadExt, BufReader};

const LIMIT: Duration = Duration::from_secs(20);
const DIR: &str = "IPC_PIPE_TEST_DIR";

async fn within<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, fut).await.expect("timed out")
}

/// The error of a result whose success value has no `Debug` (channels).
fn err_of<T>(result: ipc_core::Result<T>, what: &str) -> Error {
    match result {
        Err(e) => e,
        Ok(_) => panic!("expected an error: {what}"),
    }
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .expect("stat")
        .permissions()
        .mode()
        & 0o7777
}

/// A raw client written with std only, following the documented opening sequence
/// (lock, c2s, s2c, optionally claim); the opens are blocking ones, which the
/// listener's held ends make return at once.
struct Raw {
    _lock: File,
    c2s: File,
    s2c: File,
}

fn raw_client(dir: &Path, claim: bool) -> io::Result<Raw> {
    let lock = File::open(dir.join("lock"))?;
    // SAFETY: flock on an fd we own.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let c2s = OpenOptions::new().write(true).open(dir.join("c2s"))?;
    let s2c = File::open(dir.join("s2c"))?;
    if claim {
        for name in ["c2s", "s2c"] {
            let claimed = dir.join(format!("{name}.claimed"));
            fs::rename(dir.join(name), &claimed)?;
            fs::remove_file(claimed)?;
        }
    }
    Ok(Raw {
        _lock: lock,
        c2s,
        s2c,
    })
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut v = (payload.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(payload);
    v
}

fn hello(pid: u32) -> Vec<u8> {
    frame(format!("ipc-fifo/1 pid={pid}").as_bytes())
}

/// A good client connects, is accepted, and echoes once.
async fn serve_one_good_client(listener: &mut FifoListener, dir: &Path) {
    let mut client = connect_fifo(dir, &Default::default())
        .await
        .expect("connect");
    let mut server = within(listener.accept()).await.expect("accept");
    client
        .send(Bytes::from_static(b"hello"))
        .await
        .expect("send");
    let got = within(server.recv()).await.expect("recv").expect("frame");
    server.send(got).await.expect("echo");
    assert_eq!(
        within(client.recv()).await.expect("recv").as_deref(),
        Some(&b"hello"[..])
    );
    client.close().await.expect("close");
    assert_eq!(within(server.recv()).await.expect("recv"), None);
    server.close().await.expect("close");
    assert_eq!(within(client.recv()).await.expect("recv"), None);
}

#[tokio::test(flavor = "current_thread")]
async fn listen_connect_ping_pong() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("svc");
    let mut listener = FifoListener::bind(&dir, &Default::default()).expect("bind");
    assert_eq!(listener.endpoint(), Endpoint::Fifo(dir.clone()));
    let mut client = connect_fifo(&dir, &Default::default())
        .await
        .expect("connect");
    let mut server = within(listener.accept()).await.expect("accept");
    assert_eq!(server.info().transport, "fifo");
    assert_eq!(server.info().peer_pid, Some(std::process::id()));
    assert_eq!(client.info().peer_pid, Some(std::process::id()));
    for i in 0..100 {
        let msg = Bytes::from(format!("ping {i}"));
        client.send(msg.clone()).await.expect("send");
        let got = within(server.recv()).await.expect("recv").expect("frame");
        assert_eq!(got, msg);
        server.send(got).await.expect("echo");
        assert_eq!(
            within(client.recv()).await.expect("recv").expect("frame"),
            msg
        );
    }
    client.close().await.expect("close");
    assert_eq!(within(server.recv()).await.expect("recv"), None);
    server.close().await.expect("close");
    assert_eq!(within(client.recv()).await.expect("recv"), None);
}

#[tokio::test(flavor = "current_thread")]
async fn connect_before_accept_and_through_the_transport() {
    let endpoint = FifoTransport.example_endpoint().expect("endpoint");
    let Endpoint::Fifo(dir) = &endpoint else {
        panic!("not a fifo endpoint: {endpoint}");
    };
    assert!(!dir.exists(), "example endpoints do not exist yet");
    let mut listener = FifoTransport
        .listen(&endpoint, &Default::default())
        .await
        .expect("listen");
    // connect does not wait for accept: frames wait in the pipe.
    let mut client = FifoTransport
        .connect(&endpoint, &Default::default())
        .await
        .expect("connect");
    client
        .send(Bytes::from_static(b"early"))
        .await
        .expect("send");
    let mut server = within(listener.accept()).await.expect("accept");
    assert_eq!(
        within(server.recv()).await.expect("recv").as_deref(),
        Some(&b"early"[..])
    );
    drop((client, server));
    drop(listener);
    assert!(
        !dir.exists(),
        "the listener removes the directory it created"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn files_are_private() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("svc");
    let listener = FifoListener::bind(&dir, &Default::default()).expect("bind");
    assert_eq!(mode(&dir), 0o700);
    for name in ["c2s", "s2c"] {
        let path = dir.join(name);
        assert!(
            fs::symlink_metadata(&path)
                .expect("stat")
                .file_type()
                .is_fifo(),
            "{name}"
        );
        assert_eq!(mode(&path), 0o600, "{name}");
    }
    assert_eq!(mode(&dir.join("lock")), 0o600);
    let pid: u32 = fs::read_to_string(dir.join("lock"))
        .expect("lock")
        .trim()
        .parse()
        .expect("pid");
    assert_eq!(pid, std::process::id());
    drop(listener);
    assert!(!dir.exists());
}

#[tokio::test(flavor = "current_thread")]
async fn bind_refuses_open_directories_and_a_second_listener() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let open = tmp.path().join("open");
    fs::create_dir(&open).expect("mkdir");
    fs::set_permissions(&open, fs::Permissions::from_mode(0o755)).expect("chmod");
    let err = FifoListener::bind(&open, &Default::default()).expect_err("0755 dir");
    assert!(err.to_string().contains("0755"), "{err}");
    assert!(matches!(&err, ListenError::Io(e) if e.kind() == io::ErrorKind::PermissionDenied));
    let err = err_of(
        connect_fifo(&open, &Default::default())
            .await
            .map_err(ipc_core::Error::from),
        "0755 dir",
    );
    assert!(matches!(&err, Error::Io(e) if e.kind() == io::ErrorKind::PermissionDenied));

    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(tmp.path(), &link).expect("symlink");
    let err = FifoListener::bind(&link, &Default::default()).expect_err("symlink");
    assert!(err.to_string().contains("not a directory"), "{err}");

    // An existing private directory is fine; it stays when the listener goes.
    let private = tmp.path().join("private");
    fs::create_dir(&private).expect("mkdir");
    fs::set_permissions(&private, fs::Permissions::from_mode(0o700)).expect("chmod");
    let listener = FifoListener::bind(&private, &Default::default()).expect("bind");
    let err = FifoListener::bind(&private, &Default::default()).expect_err("second listener");
    assert!(
        matches!(&err, ListenError::InUse(e) if e.kind() == io::ErrorKind::AddrInUse),
        "{err}"
    );
    drop(listener);
    assert!(private.exists());
    assert_eq!(
        fs::read_dir(&private).expect("ls").count(),
        0,
        "files left behind"
    );

    let err = err_of(
        connect_fifo(tmp.path().join("nothing"), &Default::default())
            .await
            .map_err(ipc_core::Error::from),
        "no dir",
    );
    assert!(err.to_string().contains("no fifo listener"), "{err}");
}

#[tokio::test(flavor = "current_thread")]
async fn one_client_at_a_time_then_the_next() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("svc");
    let mut listener = FifoListener::bind(&dir, &Default::default()).expect("bind");
    let mut first = connect_fifo(&dir, &Default::default())
        .await
        .expect("first");
    let mut server = within(listener.accept()).await.expect("accept first");

    match connect_fifo(&dir, &Default::default()).await {
        Err(ConnectError::Unsupported { transport, what }) => {
            assert_eq!(transport, "fifo");
            assert!(what.contains("already serves a client"), "{what}");
            assert!(what.contains("one peer at a time"), "{what}");
        }
        Err(other) => panic!("expected Unsupported, got {other:?}"),
        Ok(_) => panic!("a second concurrent client was let in"),
    }
    // The refused client disturbed nothing.
    first
        .send(Bytes::from_static(b"still mine"))
        .await
        .expect("send");
    assert_eq!(
        within(server.recv()).await.expect("recv").as_deref(),
        Some(&b"still mine"[..])
    );

    // While the first is connected, accept waits (the next pair has no client yet).
    let waiting = tokio::time::timeout(Duration::from_millis(50), listener.accept()).await;
    assert!(
        waiting.is_err(),
        "accept returned while the first client was connected"
    );

    first.close().await.expect("close");
    drop(first);
    assert_eq!(within(server.recv()).await.expect("recv"), None);
    // The server's old channel may live on: it cannot reach the next client. (A child
    // that another test of this binary is forking can hold a copy of the old FIFO's read
    // end until its exec closes it, so a send may still succeed for a moment: send until
    // the write fails, as it must once every reader is gone.)
    within(async {
        while server.send(Bytes::from_static(b"stale")).await.is_ok() {
            tokio::task::yield_now().await;
        }
    })
    .await;

    serve_one_good_client(&mut listener, &dir).await;
    serve_one_good_client(&mut listener, &dir).await;
}

#[tokio::test(flavor = "current_thread")]
async fn client_dropped_without_goodbye_is_peer_lost() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("svc");
    let mut listener = FifoListener::bind(&dir, &Default::default()).expect("bind");
    let mut raw = raw_client(&dir, true).expect("raw client");
    raw.c2s.write_all(&hello(4242)).expect("hello");
    raw.c2s.write_all(&frame(b"last words")).expect("frame");
    let mut server = within(listener.accept()).await.expect("accept");
    assert_eq!(server.info().peer_pid, Some(4242));
    assert_eq!(
        within(server.recv()).await.expect("recv").as_deref(),
        Some(&b"last words"[..])
    );
    drop(raw); // no goodbye
    match within(server.recv()).await {
        Err(RecvError::PeerLost(_)) => {}
        other => panic!("expected PeerLost, got {other:?}"),
    }
    serve_one_good_client(&mut listener, &dir).await;
}

#[tokio::test(flavor = "current_thread")]
async fn client_dying_mid_hello_is_dropped_and_the_next_served() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("svc");
    let mut listener = FifoListener::bind(&dir, &Default::default()).expect("bind");
    let mut raw = raw_client(&dir, true).expect("raw client");
    raw.c2s.write_all(&hello(1)[..6]).expect("half a hello");
    drop(raw);
    match within(listener.accept()).await {
        Err(Error::PeerLost(why)) => assert!(why.contains("middle of its hello"), "{why}"),
        Err(other) => panic!("expected PeerLost, got {other:?}"),
        Ok(_) => panic!("accepted half a hello"),
    }
    serve_one_good_client(&mut listener, &dir).await;
}

#[tokio::test(flavor = "current_thread")]
async fn accept_is_cancel_safe_mid_hello() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("svc");
    let mut listener = FifoListener::bind(&dir, &Default::default()).expect("bind");
    let mut raw = raw_client(&dir, true).expect("raw client");
    let greeting = hello(777);
    raw.c2s.write_all(&greeting[..3]).expect("start of hello");
    // An accept that gives up mid-hello loses nothing.
    let gave_up = tokio::time::timeout(Duration::from_millis(50), listener.accept()).await;
    assert!(gave_up.is_err(), "accept returned on three bytes");
    raw.c2s.write_all(&greeting[3..]).expect("rest of hello");
    let server = within(listener.accept()).await.expect("accept");
    assert_eq!(server.info().peer_pid, Some(777));
}

#[tokio::test(flavor = "current_thread")]
async fn garbage_client_is_dropped_and_the_next_served() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("svc");
    let mut listener = FifoListener::bind(&dir, &Default::default()).expect("bind");
    for claim in [true, false] {
        let raw_dir = dir.clone();
        let garbage = tokio::task::spawn_blocking(move || -> io::Result<usize> {
            let mut raw = raw_client(&raw_dir, claim)?;
            raw.c2s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")?;
            // Blocking read until the server drops us (end-of-file).
            let mut sink = Vec::new();
            raw.s2c.read_to_end(&mut sink)?;
            Ok(sink.len())
        });
        match within(listener.accept()).await {
            Err(Error::Handshake(why)) => {
                assert!(why.contains("1195725856") && why.contains("GET "), "{why}");
            }
            Err(other) => panic!("expected a handshake error, got {other:?}"),
            Ok(_) => panic!("a garbage client was accepted"),
        }
        let read = within(garbage).await.expect("task").expect("raw client");
        assert_eq!(read, 0, "the garbage client was sent something");
        serve_one_good_client(&mut listener, &dir).await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn listener_dir_is_removed_on_drop_even_with_clients() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("svc");
    let mut listener = FifoListener::bind(&dir, &Default::default()).expect("bind");
    let mut client = connect_fifo(&dir, &Default::default())
        .await
        .expect("connect");
    let mut server = within(listener.accept()).await.expect("accept");
    drop(listener);
    assert!(!dir.exists(), "the directory outlived its listener");
    // The connection lives on in its open FIFOs.
    client
        .send(Bytes::from_static(b"after"))
        .await
        .expect("send");
    assert_eq!(
        within(server.recv()).await.expect("recv").as_deref(),
        Some(&b"after"[..])
    );
}

ipc_core::child_roles! {
    /// What this binary does when re-executed as a child (on the directory in `DIR`).
    enum Role {
        /// Connect, say "ready", then hang until killed.
        ClientHangs,
        /// Bind, print "bound", then hang until killed (leaving a stale directory).
        ListenerHangs,
    }
}

/// Start this test binary as a child playing `role` with `DIR=dir`.
fn role_command(role: Role, dir: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::from(testkit::child_command(role));
    cmd.env(DIR, dir).stdout(Stdio::piped()).kill_on_drop(true);
    cmd
}

/// The children's entry point: does nothing in the parent's test run.
#[test]
fn child() {
    let Some(role) = testkit::role::<Role>() else {
        return;
    };
    let dir = PathBuf::from(std::env::var_os(DIR).expect("DIR"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    runtime.block_on(async {
        match role {
            Role::ClientHangs => {
                let mut ch = connect_fifo(&dir, &Default::default())
                    .await
                    .expect("connect");
                ch.send(Bytes::from_static(b"ready")).await.expect("send");
                std::future::pending::<()>().await;
            }
            Role::ListenerHangs => {
                let _listener = FifoListener::bind(&dir, &Default::default()).expect("bind");
                println!("bound");
                std::future::pending::<()>().await;
            }
        }
    });
}

#[tokio::test(flavor = "current_thread")]
async fn killed_client_process_is_an_error_then_the_next_is_served() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("svc");
    let mut listener = FifoListener::bind(&dir, &Default::default()).expect("bind");
    let mut child = role_command(Role::ClientHangs, &dir)
        .spawn()
        .expect("spawn");
    let mut server = within(listener.accept()).await.expect("accept");
    assert_eq!(server.info().peer_pid, child.id());
    assert_eq!(
        within(server.recv()).await.expect("recv").as_deref(),
        Some(&b"ready"[..])
    );
    child.start_kill().expect("kill");
    let got = within(server.recv()).await;
    assert!(
        matches!(got, Err(RecvError::PeerLost(_))),
        "expected PeerLost, got {got:?}"
    );
    within(child.wait()).await.expect("reap");
    serve_one_good_client(&mut listener, &dir).await;
}

#[tokio::test(flavor = "current_thread")]
async fn stale_directory_of_a_killed_listener() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("svc");
    let mut child = role_command(Role::ListenerHangs, &dir)
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = within(lines.next_line())
            .await
            .expect("read")
            .expect("child said bound");
        // libtest prints "test child ... " on the same line first.
        if line.ends_with("bound") {
            break;
        }
    }
    // While it lives, a second listener is refused.
    let err = FifoListener::bind(&dir, &Default::default()).expect_err("live listener");
    assert!(
        matches!(&err, ListenError::InUse(e) if e.kind() == io::ErrorKind::AddrInUse),
        "{err}"
    );
    child.start_kill().expect("kill");
    within(child.wait()).await.expect("reap");
    assert!(
        dir.join("c2s").exists(),
        "a killed listener cannot clean up"
    );

    let err = err_of(
        connect_fifo(&dir, &Default::default())
            .await
            .map_err(ipc_core::Error::from),
        "no listener",
    );
    assert!(
        matches!(&err, Error::Io(e) if e.kind() == io::ErrorKind::ConnectionRefused),
        "{err}"
    );
    // A new listener takes the directory over.
    let mut listener = FifoListener::bind(&dir, &Default::default()).expect("rebind");
    serve_one_good_client(&mut listener, &dir).await;
}

#[tokio::test(flavor = "current_thread")]
async fn spawn_reports_a_child_that_exits_without_connecting() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("endpoint");
    let mut cmd = std::process::Command::new("/bin/sh");
    // Also record the directory's mode and owner as the child finds them.
    let script = r#"printf %s "$IPC_ENDPOINT" > "$OUT"; stat -c '%a %u' "${IPC_ENDPOINT#fifo:}" > "$OUT.mode"; exit 3"#;
    cmd.args(["-c", script]).env("OUT", &out);
    match within(spawn_fifo(cmd, &Default::default())).await {
        Err(SpawnError::ChildExited(status)) => assert_eq!(status.code(), Some(3)),
        Err(other) => panic!("expected ChildExited, got {other:?}"),
        Ok(_) => panic!("the child never connected"),
    }
    let endpoint: Endpoint = fs::read_to_string(&out)
        .expect("endpoint")
        .parse()
        .expect("parse");
    let Endpoint::Fifo(dir) = endpoint else {
        panic!("not a fifo endpoint: {endpoint}");
    };
    assert!(!dir.exists(), "the spawn directory was left behind");
    let mode = fs::read_to_string(tmp.path().join("endpoint.mode")).expect("mode");
    // Our own temp dir tells our effective uid.
    let euid = std::os::unix::fs::MetadataExt::uid(&fs::metadata(tmp.path()).expect("stat"));
    assert_eq!(
        mode.trim(),
        format!("700 {euid}"),
        "the spawn directory is private"
    );
}
