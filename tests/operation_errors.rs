//! Connect, listen and spawn each fail with their own error type, whose arm says what
//! happened and whose message says what to do (issue 10, item 6).

use std::process::Command;

use ipc::{ConnectError, Endpoint, ListenError, Options, SpawnError};

fn opts() -> Options {
    Options::default()
}

#[tokio::test]
async fn connecting_where_no_server_listens_is_not_listening_naming_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nobody.sock");
    let endpoint: Endpoint = format!("unix:{}", path.display())
        .parse()
        .expect("endpoint");
    let err = ipc::registry()
        .connect(&endpoint, &opts())
        .await
        .err()
        .expect("nothing listens there");
    let msg = err.to_string();
    assert!(matches!(err, ConnectError::NotListening(_)), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("is the server running?"), "{msg}");
}

#[tokio::test]
async fn connecting_to_a_closed_tcp_port_is_not_listening() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    // The listener is dropped: the port is closed now.
    let endpoint: Endpoint = format!("tcp://127.0.0.1:{port}").parse().expect("endpoint");
    let err = ipc::registry()
        .connect(&endpoint, &opts())
        .await
        .err()
        .expect("the port is closed");
    let msg = err.to_string();
    assert!(matches!(err, ConnectError::NotListening(_)), "{msg}");
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    assert!(msg.contains("is the server running?"), "{msg}");
}

#[tokio::test]
async fn an_endpoint_of_another_transport_is_a_bad_endpoint() {
    let uds = ipc::registry().get("uds").expect("uds");
    let endpoint: Endpoint = "tcp://127.0.0.1:1".parse().expect("endpoint");
    let err = uds
        .connect(&endpoint, &opts())
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, ConnectError::BadEndpoint { .. }), "{err}");
    assert!(err.to_string().contains("unix:/PATH"), "{err}");
}

#[tokio::test]
async fn spawning_a_program_that_does_not_exist_is_start_naming_it() {
    for name in ["uds", "tcp", "pipe", "fifo", "stdio", "node", "shm"] {
        let transport = ipc::registry().get(name).expect("transport");
        let cmd = Command::new("./no-such-worker-program");
        let err = transport
            .spawn(cmd, &opts())
            .await
            .err()
            .expect("nothing to start");
        let msg = err.to_string();
        match &err {
            SpawnError::Start { program, .. } => {
                assert_eq!(program, "./no-such-worker-program", "{name}")
            }
            other => panic!("{name}: expected Start, got {other:?}"),
        }
        assert!(
            msg.contains("could not start ./no-such-worker-program"),
            "{name}: {msg}"
        );
        assert!(msg.contains("check the path"), "{name}: {msg}");
        // `?` into the toolkit's Error keeps the message.
        let top = ipc::Error::from(err).to_string();
        assert!(top.contains(&msg), "{name}: {top}");
    }
}

#[tokio::test]
async fn listening_twice_on_one_path_is_in_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let endpoint: Endpoint = format!("unix:{}", dir.path().join("app.sock").display())
        .parse()
        .expect("endpoint");
    let _first = ipc::registry()
        .listen(&endpoint, &opts())
        .await
        .expect("first listener");
    let err = ipc::registry()
        .listen(&endpoint, &opts())
        .await
        .err()
        .expect("the path is taken");
    let msg = err.to_string();
    assert!(matches!(err, ListenError::InUse(_)), "{msg}");
    assert!(msg.contains("app.sock"), "{msg}");
    assert!(
        msg.contains(&format!("pid {}", std::process::id())),
        "{msg}"
    );
}

#[tokio::test]
async fn listening_on_a_transport_that_cannot_is_unsupported() {
    let pipe = ipc::registry().get("pipe").expect("pipe");
    let endpoint: Endpoint = "pipe:fd=3,4".parse().expect("endpoint");
    let err = pipe
        .listen(&endpoint, &opts())
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, ListenError::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("use the fifo transport"), "{err}");
}
