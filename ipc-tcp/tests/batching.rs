//! Streaming small frames over a real loopback connection: frames queued with `feed`
//! leave in a few large writes, and the receiving side hands out every whole frame of
//! one read at once (`recv_many`), so neither side pays a system call per frame.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use ipc_core::prelude::*;
use ipc_core::Options;

/// Frames sent in the test: 2000 x (4 + 64) bytes is about 136 KB on the wire.
const FRAMES: usize = 2000;

/// The most `recv_many` calls the receiver may need for [`FRAMES`]: a call per frame
/// would be 2000; reads of even a few KiB each stay far below this.
const MOST_CALLS: usize = 100;

#[tokio::test]
async fn fed_frames_arrive_many_per_read() {
    let opts = Options::default();
    let mut listener = ipc_tcp::bind(SocketAddr::from(([127, 0, 0, 1], 0)), &opts)
        .await
        .expect("bind");
    let addr = listener.local_addr();
    let (server, client) = tokio::join!(listener.accept(), ipc_tcp::connect(addr, &opts));
    let (mut server, mut client) = (server.expect("accept"), client.expect("connect"));

    let frames: Vec<Bytes> = (0..FRAMES)
        .map(|n| Bytes::from(format!("{n:064}")))
        .collect();
    let send = async {
        for frame in &frames {
            client.feed(frame.clone()).await.expect("feed");
        }
        client.flush().await.expect("flush");
    };
    let receive = async {
        let mut got = Vec::with_capacity(FRAMES);
        let mut calls = 0;
        while got.len() < FRAMES {
            let n = server.recv_many(&mut got, FRAMES).await.expect("recv_many");
            assert!(n > 0, "the stream ended after {} frames", got.len());
            calls += 1;
        }
        (got, calls)
    };
    let ((), (got, calls)) = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(send, receive)
    })
    .await
    .expect("2000 frames took more than 30 s");

    assert_eq!(got, frames, "frames arrived out of order or changed");
    assert!(
        calls <= MOST_CALLS,
        "{FRAMES} fed frames took {calls} recv_many calls: the receiver hands out \
         fewer frames per read than it should (the most allowed is {MOST_CALLS})"
    );
}
