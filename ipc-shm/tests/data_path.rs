//! The frames' own path through the rings (no stream layer): frames of every size
//! around the ring's capacity and its end arrive whole and in order; `recv_many`
//! takes every whole frame there is and keeps what follows them (a goodbye) for the
//! next call; a send cancelled while its frame waits for room is finished by the next
//! one; frames fed but never flushed are never seen; a received frame's room is free
//! at once, as on a socket.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use ipc_core::prelude::*;
use ipc_core::{Options, RecvError, RecvManyExt};

/// The smallest ring: frames larger than it pass in pieces.
const SMALL_RING: usize = 4096;
/// Guard against a hang (the machine is shared).
const GUARD: Duration = Duration::from_secs(30);

/// A frame of `len` bytes whose content tells where it belongs.
fn frame(seq: usize, len: usize) -> Bytes {
    (0..len).map(|i| (seq * 31 + i) as u8).collect()
}

#[tokio::test(flavor = "current_thread")]
async fn frames_of_every_size_around_the_ring_arrive_whole_and_in_order() {
    let (a, mut b) = ipc_shm::pair_with_ring_size(&Options::default(), SMALL_RING).expect("pair");
    let sizes = [
        0, 1, 60, 4091, 4092, 4093, 4095, 4096, 5000, 12_345, 100_000, 3, 2048, 2047, 4092,
    ];
    let frames: Vec<Bytes> = sizes
        .iter()
        .cycle()
        .take(sizes.len() * 7)
        .enumerate()
        .map(|(seq, &len)| frame(seq, len))
        .collect();
    let expected = frames.clone();
    let sender = tokio::spawn(async move {
        let mut a = a;
        for (n, f) in frames.into_iter().enumerate() {
            // Mix single sends with fed batches.
            if n % 3 == 0 {
                a.feed(f).await.expect("feed");
            } else {
                a.send(f).await.expect("send");
            }
        }
        a.close().await.expect("close");
        a
    });
    for (n, want) in expected.iter().enumerate() {
        let got = tokio::time::timeout(GUARD, b.recv())
            .await
            .expect("a frame in time")
            .expect("recv")
            .expect("a frame, not the end");
        assert!(
            got == want,
            "frame {n}: {} bytes, wanted {}",
            got.len(),
            want.len()
        );
    }
    assert_eq!(b.recv().await.expect("the goodbye"), None);
    let _a = sender.await.expect("sender");
}

#[tokio::test(flavor = "current_thread")]
async fn recv_many_takes_every_whole_frame_and_keeps_the_goodbye_for_the_next_call() {
    let (mut a, mut b) = ipc_shm::pair(&Options::default()).expect("pair");
    for n in 0..100 {
        a.feed(frame(n, n)).await.expect("feed");
    }
    a.close().await.expect("close");
    let mut out = Vec::new();
    let got = b.recv_many(&mut out, 1000).await.expect("a batch");
    assert_eq!(got, 100, "every frame in one batch");
    assert!(out.iter().enumerate().all(|(n, f)| *f == frame(n, n)));
    assert_eq!(b.recv_many(&mut out, 1000).await.expect("the end"), 0);
    assert_eq!(b.recv().await.expect("still the end"), None);
}

#[tokio::test(flavor = "current_thread")]
async fn recv_many_stops_at_max_and_then_gives_the_rest() {
    let (mut a, mut b) = ipc_shm::pair(&Options::default()).expect("pair");
    for n in 0..10 {
        a.feed(frame(n, 8)).await.expect("feed");
    }
    a.flush().await.expect("flush");
    let mut out = Vec::new();
    assert_eq!(b.recv_many(&mut out, 4).await.expect("4"), 4);
    assert_eq!(b.recv_many(&mut out, 100).await.expect("6"), 6);
    assert!(out.iter().enumerate().all(|(n, f)| *f == frame(n, 8)));
    drop(a);
    let end = b.recv_many(&mut out, 100).await;
    assert!(matches!(end, Err(RecvError::PeerLost(_))), "{end:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_send_cancelled_while_its_frame_waits_for_room_is_finished_by_the_next() {
    let (mut a, mut b) =
        ipc_shm::pair_with_ring_size(&Options::default(), SMALL_RING).expect("pair");
    let big = frame(1, 3 * SMALL_RING);
    {
        // Polled once: the frame fills the ring and waits for room; then cancelled.
        let mut send = pin!(a.send(big.clone()));
        let waker = futures_util::task::noop_waker();
        let polled = send.as_mut().poll(&mut Context::from_waker(&waker));
        assert!(
            polled.is_pending(),
            "a frame three rings long cannot be sent at once"
        );
    }
    let sender = tokio::spawn(async move {
        a.send(Bytes::from_static(b"next")).await.expect("send");
        a
    });
    let got = tokio::time::timeout(GUARD, b.recv())
        .await
        .expect("in time")
        .expect("recv")
        .expect("a frame");
    assert!(
        got == big,
        "the cut frame was finished: {} bytes",
        got.len()
    );
    assert_eq!(b.recv().await.expect("recv").as_deref(), Some(&b"next"[..]));
    let _a = sender.await.expect("sender");
}

#[tokio::test(flavor = "current_thread")]
async fn frames_fed_but_never_flushed_are_never_seen() {
    let (mut a, mut b) = ipc_shm::pair(&Options::default()).expect("pair");
    a.send(Bytes::from_static(b"sent")).await.expect("send");
    a.feed(Bytes::from_static(b"only fed")).await.expect("feed");
    drop(a);
    assert_eq!(b.recv().await.expect("recv").as_deref(), Some(&b"sent"[..]));
    let end = b.recv().await;
    assert!(matches!(end, Err(RecvError::PeerLost(_))), "{end:?}");
    let waker = futures_util::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut out = Vec::new();
    assert!(matches!(
        b.poll_recv_many(&mut cx, &mut out, 10),
        Poll::Ready(Ok(0))
    ));
}

#[tokio::test(flavor = "current_thread")]
async fn recv_many_hands_out_small_and_large_frames_alike_in_order() {
    let (mut a, mut b) = ipc_shm::pair(&Options::default()).expect("pair");
    let sizes = [5, 0, 20_000, 7, 16_383, 16_384, 1, 70_000, 2];
    for (seq, &len) in sizes.iter().enumerate() {
        a.feed(frame(seq, len)).await.expect("feed");
    }
    a.close().await.expect("close");
    let mut out = Vec::new();
    while b.recv_many(&mut out, 1000).await.expect("a batch") > 0 {}
    assert_eq!(out.len(), sizes.len());
    for (seq, (got, &len)) in out.iter().zip(&sizes).enumerate() {
        assert!(*got == frame(seq, len), "frame {seq} of {len} bytes");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_loop_of_sends_that_never_waits_lets_other_tasks_run() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let (mut a, _b) = ipc_shm::pair(&Options::default()).expect("pair");
    let ran = Arc::new(AtomicBool::new(false));
    let flag = ran.clone();
    tokio::spawn(async move { flag.store(true, Ordering::SeqCst) });
    // 8000 frames of 8 bytes fill half the ring: no send has to wait for room.
    for _ in 0..8000 {
        if ran.load(Ordering::SeqCst) {
            return;
        }
        a.send(Bytes::from_static(b"tick....")).await.expect("send");
    }
    panic!("8000 sends without letting another task run");
}

/// As on a socket, taking a frame frees its room at once: a send that needs that room,
/// started after the receive, finishes even though the receiver, after that one
/// receive, waits for something else (here: word from the sender that its send is
/// done). A receiver that kept the room until its next receive would deadlock here.
#[tokio::test(flavor = "current_thread")]
async fn a_received_frame_frees_its_room_for_a_later_send_at_once() {
    let (a, mut b) = ipc_shm::pair_with_ring_size(&Options::default(), SMALL_RING).expect("pair");
    let (full_tx, full_rx) = tokio::sync::oneshot::channel();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let (sent_tx, sent_rx) = tokio::sync::oneshot::channel();
    let sender = tokio::spawn(async move {
        let mut a = a;
        // Four frames of 1000 bytes (4 016 with their prefixes) fill the 4 096-byte
        // ring: the fifth needs the room of the first.
        for seq in 0..4 {
            a.send(frame(seq, 1000)).await.expect("send");
        }
        full_tx.send(()).expect("the test waits");
        go_rx.await.expect("the test says go");
        a.send(frame(4, 1000)).await.expect("send");
        sent_tx.send(()).expect("the test waits");
        a
    });
    full_rx.await.expect("the ring filled");
    let first = tokio::time::timeout(GUARD, b.recv())
        .await
        .expect("in time")
        .expect("recv")
        .expect("a frame");
    assert!(first == frame(0, 1000), "the first frame");
    go_tx.send(()).expect("the sender waits");
    tokio::time::timeout(GUARD, sent_rx)
        .await
        .expect("the fifth send finished: the first frame's room was given back")
        .expect("sender");
    for seq in 1..5 {
        let got = b.recv().await.expect("recv").expect("a frame");
        assert!(got == frame(seq, 1000), "frame {seq}");
    }
    let _a = sender.await.expect("sender");
}

/// A receiver that drained a sustained stream lets a batch build up before it takes
/// more (see the receiver's docs): when the stream stops instead, the next frame, sent
/// once the receiver is already waiting, still arrives, after the linger.
#[tokio::test(flavor = "current_thread")]
async fn a_frame_after_a_drained_stream_arrives_after_the_linger() {
    let (a, mut b) = ipc_shm::pair(&Options::default()).expect("pair");
    let (streamed_tx, streamed_rx) = tokio::sync::oneshot::channel();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let sender = tokio::spawn(async move {
        let mut a = a;
        for seq in 0..64 {
            a.send(frame(seq, 60)).await.expect("send");
        }
        streamed_tx.send(()).expect("the test waits");
        go_rx.await.expect("the test says go");
        a.send(frame(64, 60)).await.expect("send");
        a
    });
    // All sent before the receiver looks: each receive finds its frame at once.
    streamed_rx.await.expect("the stream was sent");
    for seq in 0..64 {
        let got = b.recv().await.expect("recv").expect("a frame");
        assert!(got == frame(seq, 60), "frame {seq}");
    }
    // The next receive lingers (nothing comes), then waits; the frame is sent while it
    // waits.
    let mut next = pin!(b.recv());
    assert!(
        std::future::poll_fn(|cx| Poll::Ready(next.as_mut().poll(cx).is_pending())).await,
        "nothing was sent yet"
    );
    go_tx.send(()).expect("the sender waits");
    let got = tokio::time::timeout(GUARD, next)
        .await
        .expect("in time")
        .expect("recv")
        .expect("a frame");
    assert!(got == frame(64, 60), "the frame after the stream");
    let _a = sender.await.expect("sender");
}
