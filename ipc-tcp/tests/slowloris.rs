//! Slowloris on the handshake: however many clients connect and never finish their
//! hello, a good client is accepted and served at once.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ipc_core::prelude::*;
use ipc_core::Options;
use ipc_tcp::TcpListener;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// Hang guard for setting up the idle clients.
const SETUP: Duration = Duration::from_secs(30);

/// A good client must be served well within this (in practice: milliseconds). Only a
/// guard against being queued behind the stalled handshakes, which took 5 s per batch
/// of 64 before the fix (the handshake timeout); kept well under that but loose enough
/// for a loaded 2-core CI machine, where one run took over 1 s.
const PROMPTLY: Duration = Duration::from_secs(3);

async fn listener(opts: &Options) -> TcpListener {
    ipc_tcp::bind(SocketAddr::from(([127, 0, 0, 1], 0)), opts)
        .await
        .expect("bind")
}

/// Run an echo server on `l` for as long as the test runs: every accepted channel is
/// echoed in its own task; refused clients are skipped.
fn serve_echo(mut l: TcpListener) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match l.accept().await {
                Ok(mut ch) => {
                    tokio::spawn(async move {
                        while let Ok(Some(frame)) = ch.recv().await {
                            if ch.send(frame).await.is_err() {
                                break;
                            }
                        }
                    });
                }
                Err(_) => continue,
            }
        }
    })
}

/// Open `n` connections that send `first` (maybe nothing) and then stall.
async fn stalled_clients(addr: SocketAddr, n: usize, first: &'static [u8]) -> Vec<TcpStream> {
    let mut set = JoinSet::new();
    for _ in 0..n {
        set.spawn(async move {
            let mut s = TcpStream::connect(addr)
                .await
                .expect("connect a stalled client");
            s.write_all(first).await.expect("write the first bytes");
            s
        });
    }
    let mut out = Vec::with_capacity(n);
    tokio::time::timeout(SETUP, async {
        while let Some(s) = set.join_next().await {
            out.push(s.expect("client task"));
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "only {} of {n} idle clients could even connect within {SETUP:?}: the \
             listener stopped taking connections from the kernel",
            out.len()
        )
    });
    out
}

/// Connect a good client (patient on its own side), send a frame, read the echo; panic
/// with how long it took if that was not prompt.
async fn good_client_is_served_promptly(addr: SocketAddr, behind: &str) {
    let start = Instant::now();
    let patient = Options::default().handshake_timeout(Duration::from_secs(60));
    let served = tokio::time::timeout(SETUP, async {
        let mut ch = ipc_tcp::connect(addr, &patient).await?;
        ch.send("hello".into()).await?;
        let echo = ch.recv().await?;
        ch.close().await?;
        Ok::<_, ipc_core::Error>(echo)
    })
    .await;
    let waited = start.elapsed();
    match served {
        Ok(Ok(echo)) => {
            assert_eq!(echo.as_deref(), Some(&b"hello"[..]));
            assert!(
                waited < PROMPTLY,
                "a good client behind {behind} was served only after {waited:?} \
                 (must be served at once, well under {PROMPTLY:?})"
            );
        }
        Ok(Err(e)) => panic!("a good client behind {behind} failed after {waited:?}: {e}"),
        Err(_) => panic!("a good client behind {behind} was not served within {waited:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_silent_clients_do_not_delay_a_good_one() {
    let l = listener(&Default::default()).await;
    let addr = l.local_addr();
    let server = serve_echo(l);
    let silent = stalled_clients(addr, 64, b"").await;
    good_client_is_served_promptly(addr, "64 silent handshakes").await;
    drop(silent);
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_silent_clients_do_not_delay_a_good_one() {
    let l = listener(&Default::default()).await;
    let addr = l.local_addr();
    let server = serve_echo(l);
    let silent = stalled_clients(addr, 2000, b"").await;
    good_client_is_served_promptly(addr, "2000 silent handshakes").await;
    drop(silent);
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_clients_stalled_after_three_bytes_do_not_delay_a_good_one() {
    let l = listener(&Default::default()).await;
    let addr = l.local_addr();
    let server = serve_echo(l);
    let stalled = stalled_clients(addr, 100, b"IPC").await;
    good_client_is_served_promptly(addr, "100 handshakes stalled after 3 bytes").await;
    drop(stalled);
    server.abort();
}

/// True once the server has closed `s` (end of stream or reset), false while it is
/// still open with nothing to read.
fn closed_by_server(s: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match s.try_read(&mut byte) {
        Ok(0) => true,
        Ok(_) => panic!("the server never sends anything before a hello"),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
        Err(_) => true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_full_the_oldest_pending_handshake_is_evicted() {
    let opts = Options::default()
        .handshake_timeout(Duration::from_secs(60))
        .max_pending_handshakes(8);
    let l = listener(&opts).await;
    let addr = l.local_addr();
    let server = serve_echo(l);

    // Sequentially, so the listener takes them in this order.
    let mut first = Vec::new();
    for _ in 0..8 {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"IP").await.expect("write");
        first.push(s);
    }
    // Each newcomer past the bound evicts the oldest pending one: the first client is
    // closed by the server as soon as the ninth is taken.
    let mut ninth = TcpStream::connect(addr).await.expect("connect");
    ninth.write_all(b"IP").await.expect("write");
    let mut byte = [0u8; 1];
    let end = tokio::time::timeout(SETUP, first[0].read(&mut byte))
        .await
        .expect("the oldest pending handshake is closed when a newcomer needs its place");
    assert!(matches!(end, Ok(0) | Err(_)), "{end:?}");

    // The good client evicts the second oldest, and is served.
    good_client_is_served_promptly(addr, "8 stalled handshakes at the bound").await;
    tokio::time::timeout(SETUP, first[1].read(&mut byte))
        .await
        .expect("the second oldest is evicted for the good client")
        .ok();
    // The newest stalled ones are still waiting: the server neither answered nor
    // closed them.
    assert!(!closed_by_server(&first[7]), "the newest are kept");
    assert!(!closed_by_server(&ninth), "the newest are kept");
    server.abort();
}
