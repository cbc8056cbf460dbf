//! The child side's handling of the inherited fd, without Node: what `connect` accepts,
//! refuses, and does to the fd. One test function, so no other test in this process
//! takes (and closes) an fd number while it runs.

use std::fs::File;
use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::unix::net::{UnixDatagram, UnixStream};

use ipc_core::prelude::*;
use ipc_core::ConnectError;
use ipc_core::Endpoint;

fn node_fd(fd: i32) -> Endpoint {
    format!("node:fd={fd}").parse().expect("endpoint")
}

fn cloexec(fd: i32) -> bool {
    // SAFETY: F_GETFD only reads the fd's flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    assert!(flags >= 0, "fd {fd} is not open");
    flags & libc::FD_CLOEXEC != 0
}

#[tokio::test]
async fn inherited_fd_is_checked_taken_once_and_made_close_on_exec() {
    let config = &Default::default();

    // Only node:fd=N endpoints.
    let err = ipc_node::connect(&"uds:fd=3".parse().expect("endpoint"), config)
        .await
        .expect_err("not a node endpoint");
    assert!(matches!(err, ConnectError::BadEndpoint { .. }), "{err}");

    // A regular file is refused and left alone.
    let file = tempfile_in_target();
    let err = ipc_node::connect(&node_fd(file.as_raw_fd()), config)
        .await
        .expect_err("a file");
    assert!(
        matches!(&err, ConnectError::NotAChild(m) if m.contains("not a socket")),
        "{err}"
    );
    assert!(
        cloexec(file.as_raw_fd()),
        "std opens files close-on-exec; still open"
    );

    // A datagram socket is refused.
    let (dgram, _other) = UnixDatagram::pair().expect("datagram pair");
    let err = ipc_node::connect(&node_fd(dgram.as_raw_fd()), config)
        .await
        .expect_err("a datagram socket");
    assert!(
        matches!(&err, ConnectError::NotAChild(m) if m.contains("stream")),
        "{err}"
    );

    // A stream socket, as Node passes it (inheritable): taken once, made close-on-exec.
    let (theirs, ours) = UnixStream::pair().expect("stream pair");
    let fd = theirs.into_raw_fd();
    // SAFETY: clearing FD_CLOEXEC on an fd we own, as a fork()ed child would find it.
    assert_eq!(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) }, 0);
    assert!(!cloexec(fd));
    let mut child_side = ipc_node::connect(&node_fd(fd), config)
        .await
        .expect("connect");
    assert!(cloexec(fd), "grandchildren must not inherit the channel");
    let err = ipc_node::connect(&node_fd(fd), config)
        .await
        .expect_err("taken twice");
    assert!(err.to_string().contains("already taken"), "{err}");
    assert_eq!(child_side.info().transport, "node");
    assert_eq!(child_side.info().peer_pid, Some(std::process::id()));

    // The taken fd is a working channel.
    ours.set_nonblocking(true).expect("nonblocking");
    let mut parent_side = ipc_node::from_stream(
        tokio::net::UnixStream::from_std(ours).expect("tokio"),
        config,
    );
    ipc_node::send_ready(&mut child_side).await.expect("ready");
    assert_eq!(
        parent_side
            .recv_json::<String>()
            .await
            .expect("recv")
            .as_deref(),
        Some("ready")
    );
    child_side.close().await.expect("close"); // the only clean end
    assert_eq!(parent_side.recv().await.expect("clean end"), None);
}

/// A scratch file under the target directory (no tempfile dependency needed).
fn tempfile_in_target() -> File {
    let mut path = std::env::current_exe().expect("exe");
    path.set_extension("scratch");
    File::create(&path).expect("create scratch file")
}
