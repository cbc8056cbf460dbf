//! Out of file descriptors: the listener neither spins nor dies; it closes the oldest
//! pending handshake to take the new connection.
//!
//! Alone in its own test binary: it lowers this process's limit on open files.

use std::fs::File;
use std::net::SocketAddr;
use std::time::Duration;

use ipc_core::prelude::*;
use ipc_core::Options;
use ipc_tcp::TcpListener;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const GUARD: Duration = Duration::from_secs(10);

fn serve_echo(mut l: TcpListener) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Ok(mut ch) = l.accept().await {
                tokio::spawn(async move {
                    while let Ok(Some(frame)) = ch.recv().await {
                        if ch.send(frame).await.is_err() {
                            break;
                        }
                    }
                });
            }
        }
    })
}

/// The soft limit on open files, and a way to set it.
fn nofile() -> libc::rlimit {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    lim
}

fn set_nofile(lim: libc::rlimit) {
    // SAFETY: setrlimit only reads the struct we pass.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
}

/// Use up every file descriptor this process may open; returns the files holding them.
fn exhaust_fds(original: libc::rlimit) -> Vec<File> {
    let highest = std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .expect("some fd is open");
    set_nofile(libc::rlimit {
        rlim_cur: highest + 1,
        rlim_max: original.rlim_max,
    });
    // Fill the holes below the new limit.
    let mut held = Vec::new();
    while let Ok(f) = File::open("/dev/null") {
        held.push(f);
    }
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_fds_the_oldest_pending_handshake_makes_room() {
    let opts = Options::default().handshake_timeout(Duration::from_secs(60));
    let l = ipc_tcp::bind(SocketAddr::from(([127, 0, 0, 1], 0)), &opts)
        .await
        .expect("bind");
    let addr = l.local_addr();
    let server = serve_echo(l);

    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(TcpStream::connect(addr).await.expect("connect"));
    }
    // A client served after them proves the listener has taken all 20 into handshakes.
    let mut probe = tokio::time::timeout(GUARD, ipc_tcp::connect(addr, &opts))
        .await
        .expect("prompt")
        .expect("connect");
    probe.send("probe".into()).await.expect("send");
    assert!(probe.recv().await.expect("echo").is_some());

    // The good client's socket exists before the table is full; connecting needs no
    // new descriptor on our side, but the listener needs one to accept it.
    let socket = TcpSocket::new_v4().expect("socket");
    let original = nofile();
    let held = exhaust_fds(original);
    assert!(File::open("/dev/null").is_err(), "no descriptor is left");

    let served = tokio::time::timeout(GUARD, async {
        let mut s = socket.connect(addr).await.expect("connect");
        s.write_all(b"IPCT\x01\x00").await.expect("hello");
        let mut reply = [0u8; 6];
        s.read_exact(&mut reply).await.expect("reply");
        assert_eq!(&reply, b"IPCT\x01\x00");
        s.write_all(b"\x00\x00\x00\x02hi").await.expect("frame");
        let mut echo = [0u8; 6];
        s.read_exact(&mut echo).await.expect("echo");
        assert_eq!(&echo, b"\x00\x00\x00\x02hi");
    })
    .await;

    drop(held);
    set_nofile(original);
    served.expect(
        "with no file descriptor left, the listener must close the oldest pending \
         handshake and accept the good client, not wait for the silent ones to time out",
    );
    // The oldest silent client is the one that made room.
    let mut byte = [0u8; 1];
    let end = tokio::time::timeout(GUARD, silent[0].read(&mut byte))
        .await
        .expect("the oldest silent client was closed");
    assert!(matches!(end, Ok(0) | Err(_)), "{end:?}");
    server.abort();
}
