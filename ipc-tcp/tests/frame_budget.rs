//! Memory held by half-sent frames is bounded per listener: clients that each send all
//! but the last byte of a large frame cannot make the server buffer more than the
//! listener's budget; the ones past it are dropped with a clear error, the others are
//! served and lose nothing.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use ipc_core::prelude::*;
use ipc_core::{Error, Options};
use ipc_tcp::{TcpChannelExt, TcpListener};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const GUARD: Duration = Duration::from_secs(20);
const FRAME: usize = 4 << 20;
const BUDGET: usize = 8 << 20;

/// An echo server; every channel that ends with an error reports it (after the channel
/// is dropped, so its connection is closed by then) with the client's address.
fn serve_echo(
    mut l: TcpListener,
) -> (
    mpsc::UnboundedReceiver<(SocketAddr, Error)>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let server = tokio::spawn(async move {
        loop {
            let Ok(mut ch) = l.accept().await else {
                continue;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let peer = ch.peer_addr().expect("the peer's address");
                let error: Error = loop {
                    match ch.recv().await {
                        Ok(Some(frame)) => {
                            if let Err(e) = ch.send(frame).await {
                                break e.into();
                            }
                        }
                        Ok(None) => return,
                        Err(e) => break e.into(),
                    }
                };
                drop(ch);
                let _ = tx.send((peer, error));
            });
        }
    });
    (rx, server)
}

fn payload(seed: u8) -> Vec<u8> {
    (0..FRAME)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

/// A raw client: handshake, then the length prefix of a FRAME-byte frame and all of
/// its payload but the last byte. The write fails when the server drops us first.
async fn half_sender(addr: SocketAddr, seed: u8) -> (TcpStream, std::io::Result<()>) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"IPCT\x01\x00").await.expect("hello");
    let mut reply = [0u8; 6];
    s.read_exact(&mut reply).await.expect("reply");
    assert_eq!(&reply, b"IPCT\x01\x00");
    let mut wire = (FRAME as u32).to_be_bytes().to_vec();
    wire.extend_from_slice(&payload(seed)[..FRAME - 1]);
    let written = s.write_all(&wire).await;
    (s, written)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_frames_past_the_listener_budget_are_dropped_and_the_rest_served() {
    let opts = Options::default().listener_budget(BUDGET);
    let l = ipc_tcp::bind(SocketAddr::from(([127, 0, 0, 1], 0)), &opts)
        .await
        .expect("bind");
    let addr = l.local_addr();
    let budget = l.frame_budget().clone();
    let (mut errors, server) = serve_echo(l);

    // Four clients, each half-way through a 4 MiB frame, against an 8 MiB budget.
    let clients = futures_join_all((0..4u8).map(|seed| half_sender(addr, seed))).await;

    // Two of them do not fit: each is dropped with an error naming the budget.
    let mut dropped = HashSet::new();
    for _ in 0..2 {
        let (peer, error) = tokio::time::timeout(GUARD, errors.recv())
            .await
            .expect("the clients past the budget are dropped")
            .expect("server running");
        let text = error.to_string();
        assert!(matches!(error, Error::BudgetExceeded { .. }), "{error:?}");
        assert!(
            text.contains("budget") && text.contains("listener_budget("),
            "names the budget and how to raise it: {text}"
        );
        dropped.insert(peer);
    }
    assert_eq!(
        budget.in_use(),
        BUDGET,
        "the two kept frames hold the budget"
    );

    // A good client is served meanwhile.
    let mut good = tokio::time::timeout(GUARD, ipc_tcp::connect(addr, &opts))
        .await
        .expect("prompt")
        .expect("connect");
    good.send("small".into()).await.expect("send");
    assert_eq!(
        good.recv().await.expect("echo").as_deref(),
        Some(&b"small"[..])
    );

    // The kept ones finish their frames and get them back whole.
    let mut kept = 0;
    for (seed, (mut s, written)) in clients.into_iter().enumerate() {
        let local = s.local_addr().expect("addr");
        if dropped.contains(&local) {
            // The server closed it: the end (or a reset) shows up; at most a goodbye
            // comes first, never an echo.
            let mut rest = Vec::new();
            let end = tokio::time::timeout(GUARD, s.read_to_end(&mut rest))
                .await
                .expect("closed");
            assert!(
                rest.is_empty() || rest == b"\xff\xff\xff\xff",
                "{end:?} {rest:?}"
            );
            continue;
        }
        written.expect("a kept client's bytes were all taken");
        let expected = payload(seed as u8);
        s.write_all(&expected[FRAME - 1..])
            .await
            .expect("last byte");
        let mut echo = vec![0u8; 4 + FRAME];
        tokio::time::timeout(GUARD, s.read_exact(&mut echo))
            .await
            .expect("the echo comes back")
            .expect("read the echo");
        assert_eq!(&echo[..4], &(FRAME as u32).to_be_bytes());
        assert!(echo[4..] == expected[..], "the frame comes back unchanged");
        kept += 1;
    }
    assert_eq!(kept, 2);
    assert_eq!(budget.in_use(), 0, "finished frames give their budget back");
    server.abort();
}

/// Join futures concurrently (spawned, so they run in parallel).
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(
            tokio::time::timeout(GUARD, h)
                .await
                .expect("in time")
                .expect("task"),
        );
    }
    out
}
