//! The conformance cases. Each is an async function of a [`Subject`]; [`cases()`] lists
//! them by name so a test binary can run every case against every transport.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;

use super::Outcome as Result;
use crate::codec::{Codec, Json, Postcard};
use crate::error::{Error, RecvError, SendError};
use crate::options::Options;
use crate::prelude::*;
use crate::rpc::RpcClient;
use crate::{Endpoint, TypedChannel};

use super::child::{bulk_payload, check_bulk, Note, Role, BULK_COUNT};
use super::{ensure, fail, AllocProbe, Failure, Subject};

/// One named conformance case.
pub struct Case {
    /// Test name (`ping_pong`), used as `transport::name`.
    pub name: &'static str,
    /// The case.
    pub run: for<'a> fn(&'a Subject) -> BoxFuture<'a, Result<()>>,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

macro_rules! case {
    ($name:ident) => {
        Case {
            name: stringify!($name),
            run: |s| Box::pin($name(s)),
        }
    };
}

/// Every case, in a stable order.
pub fn cases() -> &'static [Case] {
    static CASES: &[Case] = &[
        case!(ping_pong),
        case!(ordered_10k_both_ways),
        case!(max_size_frame),
        case!(oversize_send_refused),
        case!(oversize_recv_rejected_without_allocating),
        case!(empty_frame),
        case!(peer_closes_cleanly),
        case!(peer_killed_is_an_error),
        case!(peer_dropped_without_close_is_peer_lost),
        case!(dropped_sender_mid_frame_is_peer_lost),
        case!(always_ready_recv_lets_other_tasks_run),
        case!(blocked_send_peer_killed_is_peer_lost),
        case!(send_after_a_close_is_closed),
        case!(split_halves_concurrently),
        case!(feed_1000_then_flush_in_order),
        case!(stream_items_rejected_then_lost_then_end),
        case!(forward_select_and_stream_adaptors),
        case!(typed_json),
        case!(typed_postcard),
        case!(request_response_100_concurrent),
        case!(spawn_exit_status),
        case!(slow_reader_backpressure),
        case!(listener_two_clients),
        case!(bad_client_refused_listener_serves_next),
    ];
    CASES
}

const SHORT: Duration = Duration::from_secs(20);

async fn within<T>(what: &'static str, fut: impl std::future::Future<Output = T>) -> Result<T> {
    tokio::time::timeout(SHORT, fut).await.map_err(|_| {
        Failure::Ipc(Error::Timeout {
            after: SHORT,
            during: what,
        })
    })
}

async fn expect_frame(ch: &mut dyn Channel, expected: &[u8]) -> Result<()> {
    let got = ch.recv().await?;
    match got {
        Some(frame) if frame[..] == *expected => Ok(()),
        Some(frame) => Err(fail(format!(
            "expected {} bytes {:?}..., got {} bytes {:?}...",
            expected.len(),
            &expected[..expected.len().min(16)],
            frame.len(),
            &frame[..frame.len().min(16)]
        ))),
        None => Err(fail("the peer closed instead of answering")),
    }
}

/// Close our side, expect the child's clean close and a zero exit.
async fn finish(mut child: crate::Child, mut ch: Box<dyn Channel>) -> Result<()> {
    ch.close().await?;
    let last = within("waiting for the child's close", ch.recv()).await??;
    ensure!(last.is_none(), "expected the child to close, got a frame");
    let status = within("waiting for the child to exit", child.wait()).await??;
    ensure!(status.success(), "child exited with {status}");
    Ok(())
}

fn default_config() -> Options {
    Options::default()
}

/// 100 round trips with the echo child.
async fn ping_pong(s: &Subject) -> Result<()> {
    let (child, mut ch) = s.spawn(Role::Echo, 0, &default_config()).await?;
    for i in 0..100 {
        let msg = format!("ping {i}");
        ch.send(Bytes::from(msg.clone())).await?;
        expect_frame(&mut *ch, msg.as_bytes()).await?;
    }
    finish(child, ch).await
}

/// 10 000 messages of mixed sizes each way at the same time, all in order.
async fn ordered_10k_both_ways(s: &Subject) -> Result<()> {
    let (mut child, ch) = s.spawn(Role::Bulk, 0, &default_config()).await?;
    let (max, frames) = (s.bulk_frame, s.frames);
    let (mut tx, mut rx) = ch.split();
    let sender = tokio::spawn(async move {
        for seq in 0..BULK_COUNT {
            tx.send(bulk_payload(frames, seq, max)).await?;
        }
        tx.close().await
    });
    for seq in 0..BULK_COUNT {
        let frame = rx
            .recv()
            .await?
            .ok_or_else(|| fail(format!("child closed after {seq} messages")))?;
        check_bulk(frames, &frame, seq, max)?;
    }
    ensure!(
        rx.recv().await?.is_none(),
        "child sent more than {BULK_COUNT}"
    );
    sender
        .await
        .map_err(|e| fail(format!("sender task: {e}")))??;
    let status = within("child exit", child.wait()).await??;
    ensure!(
        status.success(),
        "child saw a wrong or missing message: {status}"
    );
    Ok(())
}

/// A frame of exactly the limit goes through intact.
async fn max_size_frame(s: &Subject) -> Result<()> {
    let max = s.big_frame;
    let config = Options::default().max_frame(max);
    let (child, mut ch) = s.spawn(Role::Echo, 0, &config).await?;
    ensure!(
        ch.info().max_frame == max,
        "info().max_frame is {}",
        ch.info().max_frame
    );
    let frame = s.frames.payload(7, s.frames.payload_len(max));
    ch.send(frame.clone()).await?;
    expect_frame(&mut *ch, &frame).await?;
    finish(child, ch).await
}

/// Sending more than the limit fails before writing anything; the channel lives on.
async fn oversize_send_refused(s: &Subject) -> Result<()> {
    let max = s.big_frame / 64;
    let config = Options::default().max_frame(max);
    let (child, mut ch) = s.spawn(Role::Echo, 0, &config).await?;
    let over = s.frames.payload(1, s.frames.payload_len(max + 1));
    match ch.send(over).await {
        Err(SendError::Rejected(Error::FrameTooLarge { len, max: m })) => {
            ensure!(
                len == max as u64 + 1 && m == max,
                "wrong numbers: {len} / {m}"
            );
        }
        other => return Err(fail(format!("expected FrameTooLarge, got {other:?}"))),
    }
    ch.send(Bytes::from_static(b"still here")).await?;
    expect_frame(&mut *ch, b"still here").await?;
    finish(child, ch).await
}

/// The child (with a larger limit) sends a frame 96x over our limit: we get
/// `FrameTooLarge` without buffering it, then the next frame.
async fn oversize_recv_rejected_without_allocating(s: &Subject) -> Result<()> {
    let limit = (s.big_frame / 128).max(8);
    let sent = s.big_frame * 3 / 4;
    let config = Options::default().max_frame(limit);
    let payload = s.frames.payload_len(sent) as u64;
    let (child, mut ch) = s.spawn(Role::SendOversize, payload, &config).await?;
    let probe = AllocProbe::start()
        .ok_or_else(|| fail("install testkit::CountingAlloc as the global allocator"))?;
    match ch.recv().await {
        Err(RecvError::Rejected(Error::FrameTooLarge { len, max })) => {
            ensure!(
                len == sent as u64 && max == limit,
                "wrong numbers: {len} / {max}"
            );
        }
        other => return Err(fail(format!("expected FrameTooLarge, got {other:?}"))),
    }
    expect_frame(&mut *ch, b"after").await?;
    let peak = probe.peak();
    ensure!(
        peak < sent / 4,
        "receiving a rejected {sent}-byte frame allocated {peak} bytes"
    );
    ensure!(ch.recv().await?.is_none(), "expected the child's close");
    finish(child, ch).await
}

/// An empty frame is a frame, not a close. (In JSON-frames mode the empty payload is
/// the JSON string `""`: a frame on Node's channel cannot be empty.)
async fn empty_frame(s: &Subject) -> Result<()> {
    let (child, mut ch) = s.spawn(Role::Echo, 0, &default_config()).await?;
    ch.send(Bytes::new()).await?;
    let got = ch.recv().await?;
    ensure!(
        got.as_deref() == Some(&b""[..]),
        "expected an empty frame, got {got:?}"
    );
    ch.send(Bytes::from_static(b"x")).await?;
    expect_frame(&mut *ch, b"x").await?;
    finish(child, ch).await
}

/// The child closes: we get its last frame, then `Ok(None)`, repeatedly.
async fn peer_closes_cleanly(s: &Subject) -> Result<()> {
    let (child, mut ch) = s.spawn(Role::HelloClose, 0, &default_config()).await?;
    expect_frame(&mut *ch, b"hello").await?;
    ensure!(
        ch.recv().await?.is_none(),
        "expected None after the peer closed"
    );
    ensure!(ch.recv().await?.is_none(), "None again on the next recv");
    finish(child, ch).await
}

/// SIGKILL the child mid-conversation: recv gives an error, never a hang or `None`.
async fn peer_killed_is_an_error(s: &Subject) -> Result<()> {
    let (mut child, mut ch) = s.spawn(Role::Hang, 0, &default_config()).await?;
    expect_frame(&mut *ch, b"ready").await?;
    child.kill()?;
    let got = within("recv after the peer was killed", ch.recv()).await?;
    ensure!(got.is_err(), "expected an error after SIGKILL, got {got:?}");
    let status = child.wait().await?;
    ensure!(!status.success(), "killed child reported success");
    Ok(())
}

/// A channel (or its sending half) dropped without `close` is an abort: the peer's
/// `recv` gives `PeerLost`, never the `None` of a clean close, even while the dropping
/// process lives on (so no exit status can tell).
async fn peer_dropped_without_close_is_peer_lost(s: &Subject) -> Result<()> {
    let (mut child, mut ch) = s.spawn(Role::DropChannel, 0, &default_config()).await?;
    expect_frame(&mut *ch, b"hello").await?;
    let got = within("recv after the peer dropped its channel", ch.recv()).await?;
    ensure!(
        matches!(got, Err(RecvError::PeerLost(_))),
        "a channel dropped without close must be PeerLost for its peer, got {got:?}"
    );
    child.kill()?;
    within("child exit", child.wait()).await??;

    let (mut child, mut ch) = s.spawn(Role::DropSender, 0, &default_config()).await?;
    expect_frame(&mut *ch, b"hello").await?;
    let got = within("recv after the peer dropped its sending half", ch.recv()).await?;
    ensure!(
        matches!(got, Err(RecvError::PeerLost(_))),
        "a sending half dropped without close must be PeerLost for its peer, got {got:?}"
    );
    ch.close().await?;
    let status = within("child exit", child.wait()).await??;
    ensure!(status.success(), "child: {status}");
    Ok(())
}

/// Poll `fut` once (with a waker that does nothing): `Some(output)` if it completed.
pub(crate) fn poll_once<F: std::future::Future + ?Sized>(
    fut: std::pin::Pin<&mut F>,
) -> Option<F::Output> {
    let waker = futures_util::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    match fut.poll(&mut cx) {
        std::task::Poll::Ready(out) => Some(out),
        std::task::Poll::Pending => None,
    }
}

/// Send copies of `$frame` on `$tx` until one has to wait for the peer to read (the
/// peer reads nothing): evaluates to that send, part of its frame written. More than
/// `$cap` sends completing is an error (unbounded buffering).
macro_rules! send_until_blocked {
    ($tx:expr, $frame:expr, $cap:expr) => {{
        let mut sent = 0u64;
        loop {
            ensure!(
                sent < $cap,
                "{sent} frames of {} bytes went to a peer that reads nothing without any \
                 send waiting: unbounded buffering",
                $frame.len()
            );
            let mut send = $tx.send($frame.clone());
            let mut done = poll_once(std::pin::Pin::new(&mut send));
            if done.is_none() {
                // A writer the reactor has not yet seen writable waits without
                // writing: give the reactor a turn, then look again.
                tokio::task::yield_now().await;
                done = poll_once(std::pin::Pin::new(&mut send));
            }
            match done {
                None => break send,
                Some(result) => result?,
            }
            sent += 1;
        }
    }};
}

/// Drop the sending half in the middle of a frame (its send cancelled while waiting
/// for room) and keep the receiving half: the child, reading only then, gets every
/// whole frame and then `PeerLost` (the stream ends inside a frame), never a hang.
async fn dropped_sender_mid_frame_is_peer_lost(s: &Subject) -> Result<()> {
    let (mut child, mut ch) = s.spawn(Role::ExpectCut, 0, &default_config()).await?;
    expect_frame(&mut *ch, b"armed").await?;
    let (mut tx, mut rx) = ch.split();
    let frame = s.frames.payload(0, s.frames.payload_len(s.big_frame));
    let cut = send_until_blocked!(tx, frame, 256);
    drop(cut);
    drop(tx);
    child.signal(crate::Signal::SIGUSR1)?;
    let report = within("the child's report on the cut stream", rx.recv())
        .await??
        .ok_or_else(|| fail("the child closed without a report"))?;
    let report = String::from_utf8_lossy(&report).into_owned();
    ensure!(
        report.starts_with("peer lost"),
        "the child, reading a stream whose sender was dropped mid-frame, got: {report}"
    );
    ensure!(
        within("the child's close", rx.recv()).await??.is_none(),
        "expected the child's close"
    );
    let status = within("child exit", child.wait()).await??;
    ensure!(status.success(), "child: {status}");
    Ok(())
}

/// 1000 frames queued with `feed` (no write each), then one `flush`: the echo child
/// sends every one back, in order.
async fn feed_1000_then_flush_in_order(s: &Subject) -> Result<()> {
    const FRAMES: u64 = 1000;
    let (child, ch) = s.spawn(Role::Echo, 0, &default_config()).await?;
    let (max, frames) = (s.bulk_frame, s.frames);
    let (mut tx, mut rx) = ch.split();
    let sending = async move {
        for seq in 0..FRAMES {
            tx.feed(bulk_payload(frames, seq, max)).await?;
        }
        tx.flush().await?;
        Ok::<_, Failure>(tx)
    };
    let receiving = async {
        for seq in 0..FRAMES {
            let frame = rx
                .recv()
                .await?
                .ok_or_else(|| fail(format!("the child closed after {seq} frames")))?;
            check_bulk(frames, &frame, seq, max)?;
        }
        Ok::<_, Failure>(())
    };
    let (sent, received) = within(
        "1000 fed frames and their echoes",
        futures_util::future::join(sending, receiving),
    )
    .await?;
    received?;
    let tx = sent?;
    finish(child, Box::new(crate::Joined::new(tx, rx))).await
}

/// The stream of frames, item by item: a frame over our limit is one `Err` item and
/// the stream goes on; the peer's close ends it. Then a killed peer is one
/// `Err(PeerLost)` item, and the stream ends.
async fn stream_items_rejected_then_lost_then_end(s: &Subject) -> Result<()> {
    let limit = 64;
    let config = Options::default().max_frame(limit);
    let (mut child, mut ch) = s
        .spawn(Role::SendOversize, limit as u64 * 2, &config)
        .await?;
    match within("the oversize item", ch.next()).await? {
        Some(Err(RecvError::Rejected(Error::FrameTooLarge { .. }))) => {}
        other => {
            return Err(fail(format!(
                "expected a FrameTooLarge item, got {other:?}"
            )))
        }
    }
    match within("the item after it", ch.next()).await? {
        Some(Ok(frame)) if frame == "after" => {}
        other => return Err(fail(format!("expected the frame \"after\", got {other:?}"))),
    }
    let end = within("the end of the stream", ch.next()).await?;
    ensure!(
        end.is_none(),
        "expected the end after the child's close, got {end:?}"
    );
    ch.close().await?;
    let status = within("child exit", child.wait()).await??;
    ensure!(status.success(), "child: {status}");

    let (mut child, mut ch) = s.spawn(Role::Hang, 0, &default_config()).await?;
    expect_frame(&mut *ch, b"ready").await?;
    child.kill()?;
    match within("the item after SIGKILL", ch.next()).await? {
        Some(Err(RecvError::PeerLost(_))) => {}
        other => return Err(fail(format!("expected a PeerLost item, got {other:?}"))),
    }
    let end = within("the end after PeerLost", ch.next()).await?;
    ensure!(
        end.is_none(),
        "expected the end after PeerLost, got {end:?}"
    );
    child.wait().await?;
    Ok(())
}

/// What a user does with streams and sinks: `select!` over two channels, `forward`
/// one channel into another, `filter_map` and `take` on a channel.
async fn forward_select_and_stream_adaptors(s: &Subject) -> Result<()> {
    let (child_a, mut a) = s.spawn(Role::Echo, 0, &default_config()).await?;
    let (child_b, mut b) = s.spawn(Role::Echo, 0, &default_config()).await?;

    // select! over both: each answer comes from the channel it was sent on.
    a.send(Bytes::from_static(b"to a")).await?;
    b.send(Bytes::from_static(b"to b")).await?;
    let (mut from_a, mut from_b) = (None, None);
    while from_a.is_none() || from_b.is_none() {
        tokio::select! {
            frame = a.next(), if from_a.is_none() => from_a = Some(frame),
            frame = b.next(), if from_b.is_none() => from_b = Some(frame),
            _ = tokio::time::sleep(SHORT) => return Err(fail("select! over two channels hung")),
        }
    }
    ensure!(
        matches!(&from_a, Some(Some(Ok(f))) if f == "to a")
            && matches!(&from_b, Some(Some(Ok(f))) if f == "to b"),
        "select! gave {from_a:?} and {from_b:?}"
    );

    // a's echoes forwarded into b; b's echoes read through stream adaptors.
    let (mut a_tx, a_rx) = a.split();
    let (b_tx, mut b_rx) = b.split();
    for n in 0..20 {
        a_tx.send(Bytes::from(n.to_string())).await?;
    }
    a_tx.close().await?; // a echoes the 20, then closes: the forward ends
                         // and closes b's sending side: b closes too
                         // (receive and send errors differ: both become the one Error to meet)
    let forward = futures_util::TryStreamExt::err_into::<Error>(a_rx)
        .forward(futures_util::SinkExt::sink_err_into::<Error>(b_tx));
    let read = async {
        let evens: Vec<u32> = b_rx
            .by_ref()
            .filter_map(|frame| {
                let n = frame
                    .ok()
                    .and_then(|f| std::str::from_utf8(&f).ok()?.parse::<u32>().ok());
                std::future::ready(n.filter(|n| n % 2 == 0))
            })
            .take(5)
            .collect()
            .await;
        let mut rest = 0;
        while b_rx.recv().await?.is_some() {
            rest += 1;
        }
        Ok::<_, Failure>((evens, rest))
    };
    let (forwarded, read) = within(
        "forwarding a into b",
        futures_util::future::join(forward, read),
    )
    .await?;
    forwarded?;
    let (evens, rest) = read?;
    ensure!(evens == [0, 2, 4, 6, 8], "filter_map + take gave {evens:?}");
    ensure!(
        rest == 11,
        "after the first nine frames, {rest} more (expected 11)"
    );
    for (what, mut child) in [("a", child_a), ("b", child_b)] {
        let status = within("echo child exit", child.wait()).await??;
        ensure!(status.success(), "echo child {what}: {status}");
    }
    Ok(())
}

/// Frames the parent queues for [`always_ready_recv_lets_other_tasks_run`].
const QUEUED_FRAMES: u64 = 20_000;
/// Most receives in a row the child may make without another task getting to run.
/// (tokio's cooperative budget is 128 operations per task poll.)
const MOST_RECEIVES_WITHOUT_YIELDING: u64 = 200;

/// A receive that is always ready (the peer keeps the channel full) still lets other
/// tasks of the runtime run: the child, on a single-threaded runtime, counts how many
/// frames it receives in a row while a task it spawned waits to run. Without that, a
/// worker never sees its SIGTERM handler while jobs keep coming.
async fn always_ready_recv_lets_other_tasks_run(s: &Subject) -> Result<()> {
    let (mut child, mut ch) = s
        .spawn(Role::YieldCheck, QUEUED_FRAMES, &default_config())
        .await?;
    expect_frame(&mut *ch, b"armed").await?;
    // Fill the channel before the child reads: it is let go once a send has to wait
    // for room (or once all are sent, for a transport that buffers them all).
    let mut released = false;
    for seq in 0..QUEUED_FRAMES {
        let mut send = ch.send(Bytes::from(seq.to_string()));
        if !released {
            if let Some(sent) = poll_once(std::pin::Pin::new(&mut send)) {
                sent?;
                continue;
            }
            child.signal(crate::Signal::SIGUSR1)?;
            released = true;
        }
        within("a send to the reading child", send).await??;
    }
    if !released {
        child.signal(crate::Signal::SIGUSR1)?;
    }
    ch.close().await?;
    let report = within("the child's count", ch.recv())
        .await??
        .ok_or_else(|| fail("the child closed without a count"))?;
    let report = String::from_utf8_lossy(&report).into_owned();
    let numbers: Vec<u64> = report.split(' ').filter_map(|n| n.parse().ok()).collect();
    let [count, longest] = numbers[..] else {
        return Err(fail(format!("the child reported {report:?}")));
    };
    ensure!(
        count == QUEUED_FRAMES,
        "the child received {count} of {QUEUED_FRAMES} frames"
    );
    ensure!(
        longest <= MOST_RECEIVES_WITHOUT_YIELDING,
        "the child received {longest} frames in a row without letting another task run \
         (at most {MOST_RECEIVES_WITHOUT_YIELDING} allowed): recv ignores tokio's \
         cooperative budget"
    );
    ensure!(
        within("the child's close", ch.recv()).await??.is_none(),
        "expected the child's close"
    );
    let status = within("child exit", child.wait()).await??;
    ensure!(status.success(), "child: {status}");
    Ok(())
}

/// A send waiting for room when the peer is SIGKILLed fails with `PeerLost` (the peer
/// never said goodbye), on every transport.
async fn blocked_send_peer_killed_is_peer_lost(s: &Subject) -> Result<()> {
    let (mut child, mut ch) = s.spawn(Role::Stall, 0, &default_config()).await?;
    expect_frame(&mut *ch, b"ready").await?;
    let frame = s.frames.payload(1, s.bulk_frame);
    let cap = ((256usize << 20) / s.bulk_frame.max(1)) as u64;
    let blocked = send_until_blocked!(ch, frame, cap);
    child.kill()?;
    match within("a blocked send after the peer was killed", blocked).await? {
        Err(SendError::PeerLost(_)) => {}
        other => {
            return Err(fail(format!(
                "a send blocked when the peer was SIGKILLed gave {other:?}, expected PeerLost"
            )))
        }
    }
    let status = within("child exit", child.wait()).await??;
    ensure!(!status.success(), "killed child reported success");
    Ok(())
}

/// `send` after our own `close` is `Closed`; so is a send that fails after the peer
/// closed cleanly (we received its goodbye) and went away.
async fn send_after_a_close_is_closed(s: &Subject) -> Result<()> {
    // Our own close.
    let (child, mut ch) = s.spawn(Role::Echo, 0, &default_config()).await?;
    ch.close().await?;
    match ch.send(Bytes::from_static(b"late")).await {
        Err(SendError::Closed) => {}
        other => {
            return Err(fail(format!(
                "send after close gave {other:?}, expected Closed"
            )))
        }
    }
    finish(child, ch).await?;
    // The peer's close: its goodbye is received, then it exits.
    let (mut child, mut ch) = s.spawn(Role::CloseExit, 0, &default_config()).await?;
    ensure!(
        within("the child's goodbye", ch.recv()).await??.is_none(),
        "expected the child's goodbye"
    );
    let status = within("child exit", child.wait()).await??;
    ensure!(status.success(), "child: {status}");
    // A send may still be taken by the OS: a TCP peer's reset comes back after it, and
    // a pipe end can live on for a moment in a child that another thread is spawning
    // (forked, not yet exec'd).
    let outcome = within("a send to a peer that closed and exited to fail", async {
        loop {
            match ch.send("anyone?".into()).await {
                Ok(()) => tokio::time::sleep(Duration::from_millis(1)).await,
                Err(e) => return e,
            }
        }
    })
    .await?;
    ensure!(
        matches!(outcome, SendError::Closed),
        "a send to a peer that said goodbye and exited gave {outcome:?}, expected Closed"
    );
    Ok(())
}

/// A send task and a receive task share one channel through its halves.
async fn split_halves_concurrently(s: &Subject) -> Result<()> {
    let (mut child, ch) = s.spawn(Role::Echo, 0, &default_config()).await?;
    let (mut tx, mut rx) = ch.split();
    let sender = tokio::spawn(async move {
        for i in 0u32..2000 {
            tx.send(Bytes::from(i.to_be_bytes().to_vec())).await?;
        }
        tx.close().await
    });
    for i in 0u32..2000 {
        let frame = rx.recv().await?.ok_or_else(|| fail("closed early"))?;
        ensure!(frame[..] == i.to_be_bytes(), "echo {i} out of order");
    }
    ensure!(rx.recv().await?.is_none(), "expected the child's close");
    sender
        .await
        .map_err(|e| fail(format!("sender task: {e}")))??;
    ensure!(child.wait().await?.success(), "child failed");
    Ok(())
}

async fn typed_round_trip<K: Codec>(s: &Subject, role: Role) -> Result<()> {
    let (child, ch) = s.spawn(role, 0, &default_config()).await?;
    let mut typed: TypedChannel<Note, Note, K> = TypedChannel::new(ch);
    for seq in 0..50 {
        let note = Note::sample(seq);
        typed.send(note.clone()).await?;
        let answer = typed.recv().await?.ok_or_else(|| fail("closed early"))?;
        ensure!(answer == note.clone().answer(), "wrong answer: {answer:?}");
    }
    // A frame that is not a Note: the child reports a decode error and carries on.
    let mut raw = typed.into_inner();
    raw.send(Bytes::from_static(b"\xff\xfe not a note")).await?;
    let mut typed: TypedChannel<Note, Note, K> = TypedChannel::new(raw);
    let answer = typed.recv().await?.ok_or_else(|| fail("closed early"))?;
    ensure!(
        answer.text.contains("decode error"),
        "child did not report: {answer:?}"
    );
    typed.send(Note::sample(99)).await?;
    let answer = typed.recv().await?.ok_or_else(|| fail("closed early"))?;
    ensure!(answer.seq == 100, "channel unusable after a decode error");
    finish(child, typed.into_inner()).await
}

/// Serde values through JSON, both ways, with a child decoding them.
async fn typed_json(s: &Subject) -> Result<()> {
    typed_round_trip::<Json>(s, Role::TypedJson).await
}

/// Serde values through postcard, both ways.
async fn typed_postcard(s: &Subject) -> Result<()> {
    typed_round_trip::<Postcard>(s, Role::TypedPostcard).await
}

/// 100 calls in flight from 4 tasks; a timed-out and a dropped caller hurt nobody.
async fn request_response_100_concurrent(s: &Subject) -> Result<()> {
    let (mut child, ch) = s.spawn(Role::Rpc, 0, &default_config()).await?;
    let client = Arc::new(RpcClient::new(ch));
    let t = Duration::from_secs(30);
    // One call that gets no answer in time times out alone.
    let stuck = client.call(Bytes::from_static(b"hold"), Duration::from_millis(200));
    ensure!(
        matches!(stuck.await, Err(Error::Timeout { .. })),
        "expected a timeout"
    );
    // One caller gives up (its future is dropped) while its call is in flight.
    let dropped = client.call(Bytes::from_static(b"hold"), t);
    let _ = tokio::time::timeout(Duration::from_millis(10), dropped).await;
    let mut tasks = Vec::new();
    for task in 0..4 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let calls = (0..25).map(|i| {
                let client = client.clone();
                async move {
                    let req = format!("task {task} call {i}");
                    let reply = client.call(Bytes::from(req.clone()), t).await?;
                    ensure!(
                        reply == format!("re:{req}").as_bytes(),
                        "misrouted: {reply:?}"
                    );
                    Ok::<_, Failure>(())
                }
            });
            for r in futures_util::future::join_all(calls).await {
                r?;
            }
            Ok::<_, Failure>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|e| fail(format!("task: {e}")))??;
    }
    match client.call(Bytes::from_static(b"fail"), t).await {
        Err(Error::Remote(msg)) => ensure!(msg.contains("asked to fail"), "{msg}"),
        other => return Err(fail(format!("expected a remote error, got {other:?}"))),
    }
    ensure!(
        client.in_flight() == 0,
        "leaked {} pending calls",
        client.in_flight()
    );
    // The held calls' late answers arrive now and are discarded quietly.
    let ok = client.call(Bytes::from_static(b"release"), t).await?;
    ensure!(ok == "ok", "release: {ok:?}");
    let after = client.call(Bytes::from_static(b"after"), t).await?;
    ensure!(after == "re:after", "after late answers: {after:?}");
    client.close().await?;
    let status = within("child exit", child.wait()).await??;
    ensure!(status.success(), "rpc child: {status}");
    Ok(())
}

/// The child exits with the code we ask for, once both sides have closed; the parent
/// sees it.
async fn spawn_exit_status(s: &Subject) -> Result<()> {
    let (mut child, mut ch) = s.spawn(Role::ExitCode, 0, &default_config()).await?;
    ensure!(child.pid() > 0, "no pid");
    ch.send(Bytes::from_static(b"7")).await?;
    ensure!(ch.recv().await?.is_none(), "expected the child's close");
    ch.close().await?;
    let status = within("child exit", child.wait()).await??;
    ensure!(
        status.code() == Some(7),
        "expected exit code 7, got {status}"
    );
    Ok(())
}

/// A child that does not read makes our `send` wait (bounded buffering, no growing
/// memory); once it reads, every frame arrives in order.
///
/// "Waiting" is seen as no send completing for 500 ms while the child is not reading;
/// a busy machine can only make that happen sooner, which the case tolerates.
async fn slow_reader_backpressure(s: &Subject) -> Result<()> {
    use std::sync::atomic::{AtomicU64, Ordering};
    let (size, frames) = (s.bulk_frame, s.frames);
    let cap_frames = ((256usize << 20) / size.max(1)) as u64;
    let (mut child, mut ch) = s.spawn(Role::SlowReader, 0, &default_config()).await?;
    expect_frame(&mut *ch, b"armed").await?;
    let probe = AllocProbe::start();
    let (mut tx, mut rx) = ch.split();
    let progress = Arc::new(tokio::sync::Notify::new());
    let target = Arc::new(AtomicU64::new(u64::MAX));
    let done = Arc::new(AtomicU64::new(0));
    let sender = {
        let (progress, target, done) = (progress.clone(), target.clone(), done.clone());
        tokio::spawn(async move {
            let mut seq = 0u64;
            while seq < target.load(Ordering::SeqCst) {
                ensure!(
                    seq < cap_frames,
                    "sent {seq} frames ({} MiB) to a peer that reads nothing: unbounded buffering",
                    (seq as usize * size) >> 20
                );
                tx.send(frames.payload(seq, size)).await?;
                seq += 1;
                done.store(seq, Ordering::SeqCst);
                progress.notify_one();
            }
            tx.close().await?;
            Ok::<_, Failure>(seq)
        })
    };
    while tokio::time::timeout(Duration::from_millis(500), progress.notified())
        .await
        .is_ok()
    {}
    let completed = done.load(Ordering::SeqCst);
    ensure!(
        !sender.is_finished(),
        "the sender stopped: {:?}",
        sender.await
    );
    if let Some(probe) = probe {
        let peak = probe.peak();
        ensure!(
            peak < 16 * size + (1 << 20),
            "the sender's memory grew to {peak} bytes while blocked after {completed} frames"
        );
    }
    // Let the child read; the blocked send completes, then 100 more.
    target.store(completed + 100, Ordering::SeqCst);
    child.signal(crate::Signal::SIGUSR1)?;
    let total = within("the sender after the reader woke", sender)
        .await?
        .map_err(|e| fail(format!("sender task: {e}")))??;
    let count = within("the child's count", rx.recv())
        .await??
        .ok_or_else(|| fail("the child closed without a count"))?;
    ensure!(
        count == total.to_string().as_bytes(),
        "the child read {:?} frames, we sent {total}",
        String::from_utf8_lossy(&count)
    );
    ensure!(rx.recv().await?.is_none(), "expected the child's close");
    let status = within("child exit", child.wait()).await??;
    ensure!(status.success(), "slow reader child: {status}");
    Ok(())
}

/// Two clients connected to one listener at once, each served.
async fn listener_two_clients(s: &Subject) -> Result<()> {
    let Some(endpoint) = s.transport.example_endpoint() else {
        return expect_listen_unsupported(s).await;
    };
    let mut listener = s.transport.listen(&endpoint, &Options::default()).await?;
    let endpoint = listener.endpoint();
    if s.one_client_at_a_time {
        return one_client_at_a_time(s, listener).await;
    }
    let server = tokio::spawn(async move {
        let mut served = Vec::new();
        for _ in 0..2 {
            let mut ch = listener.accept().await?;
            served.push(tokio::spawn(async move {
                while let Some(frame) = ch.recv().await? {
                    ch.send(frame).await?;
                }
                ch.close().await?;
                Ok::<_, Failure>(())
            }));
        }
        for s in served {
            s.await.map_err(|e| fail(format!("server task: {e}")))??;
        }
        Ok::<_, Failure>(())
    });
    let clients = (0..2).map(|c| {
        let transport = s.transport.clone();
        let endpoint = endpoint.clone();
        async move {
            let mut ch = transport.connect(&endpoint, &Options::default()).await?;
            for i in 0..50 {
                let msg = format!("client {c} message {i}");
                ch.send(Bytes::from(msg.clone())).await?;
                expect_frame(&mut *ch, msg.as_bytes()).await?;
            }
            ch.close().await?;
            ensure!(ch.recv().await?.is_none(), "expected the server's close");
            Ok::<_, Failure>(())
        }
    });
    for r in futures_util::future::join_all(clients).await {
        r?;
    }
    within("server", server)
        .await?
        .map_err(|e| fail(format!("server: {e}")))??;
    Ok(())
}

/// Talk to an echo server: `count` messages, each echoed.
async fn echo_exchange(ch: &mut dyn Channel, who: &str, count: usize) -> Result<()> {
    for i in 0..count {
        let msg = format!("{who} message {i}");
        ch.send(Bytes::from(msg.clone())).await?;
        expect_frame(ch, msg.as_bytes()).await?;
    }
    Ok(())
}

/// For listeners that serve one client at a time: the second client is refused with
/// an error while the first is connected, and served after it leaves.
async fn one_client_at_a_time(s: &Subject, mut listener: Box<dyn crate::Listener>) -> Result<()> {
    let endpoint = listener.endpoint();
    let server = tokio::spawn(async move {
        for _ in 0..2 {
            let mut ch = listener.accept().await?;
            while let Some(frame) = ch.recv().await? {
                ch.send(frame).await?;
            }
            ch.close().await?;
        }
        Ok::<_, Failure>(())
    });
    let mut first = s.transport.connect(&endpoint, &Options::default()).await?;
    echo_exchange(&mut *first, "first", 10).await?;
    match within(
        "a second client while the first is connected",
        s.transport.connect(&endpoint, &Options::default()),
    )
    .await?
    {
        Err(e) => ensure!(!e.to_string().is_empty(), "empty error"),
        Ok(_) => {
            return Err(fail(
                "a second concurrent client was accepted by a one-client listener",
            ))
        }
    }
    echo_exchange(&mut *first, "first again", 5).await?;
    first.close().await?;
    ensure!(first.recv().await?.is_none(), "expected the server's close");
    drop(first);
    let mut second = within(
        "the second client after the first left",
        s.transport.connect(&endpoint, &Options::default()),
    )
    .await??;
    echo_exchange(&mut *second, "second", 10).await?;
    second.close().await?;
    ensure!(
        second.recv().await?.is_none(),
        "expected the server's close"
    );
    within("server", server)
        .await?
        .map_err(|e| fail(format!("server: {e}")))??;
    Ok(())
}

async fn expect_listen_unsupported(s: &Subject) -> Result<()> {
    match s
        .transport
        .listen(&Endpoint::Stdio, &Options::default())
        .await
    {
        Err(crate::ListenError::Unsupported { .. }) => Ok(()),
        Err(crate::ListenError::BadEndpoint { .. }) => Ok(()),
        other => Err(fail(format!(
            "a transport without example_endpoint() must refuse to listen, got {:?}",
            other.map(|_| "a listener")
        ))),
    }
}

/// Open a raw (non-ipc) byte stream to a listener's endpoint, for misbehaving clients.
fn raw_connect(endpoint: &Endpoint) -> Result<Option<Box<dyn RawStream>>> {
    Ok(match endpoint {
        Endpoint::Tcp(addr) => Some(Box::new(std::net::TcpStream::connect(addr)?)),
        Endpoint::UnixPath(path) | Endpoint::ShmPath(path) => {
            Some(Box::new(std::os::unix::net::UnixStream::connect(path)?))
        }
        #[cfg(target_os = "linux")]
        Endpoint::UnixAbstract(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
            Some(Box::new(std::os::unix::net::UnixStream::connect_addr(
                &addr,
            )?))
        }
        Endpoint::Fifo(dir) => Some(Box::new(RawFifoClient::open(dir)?)),
        _ => None,
    })
}

/// A FIFO-pair client with std only, following the opening protocol of `ipc-pipe`:
/// lock `DIR/lock`, open `DIR/c2s` for writing, `DIR/s2c` for reading.
struct RawFifoClient {
    _lock: std::fs::File,
    to_server: std::fs::File,
    from_server: std::fs::File,
}

impl RawFifoClient {
    fn open(dir: &std::path::Path) -> Result<Self> {
        use std::os::fd::AsRawFd;
        let lock = std::fs::File::open(dir.join("lock"))?;
        // SAFETY: flock on an fd we own, for the duration of the call.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        let to_server = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("c2s"))?;
        let from_server = std::fs::File::open(dir.join("s2c"))?;
        Ok(RawFifoClient {
            _lock: lock,
            to_server,
            from_server,
        })
    }
}

impl std::io::Read for RawFifoClient {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.from_server.read(buf)
    }
}

impl std::io::Write for RawFifoClient {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.to_server.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.to_server.flush()
    }
}

trait RawStream: std::io::Read + std::io::Write + Send {}
impl<T: std::io::Read + std::io::Write + Send> RawStream for T {}

/// A client speaking garbage (an HTTP request, i.e. a 1.2 GB length prefix) is refused
/// or dropped; the listener then serves a good client.
async fn bad_client_refused_listener_serves_next(s: &Subject) -> Result<()> {
    let Some(endpoint) = s.transport.example_endpoint() else {
        return expect_listen_unsupported(s).await;
    };
    let mut listener = s.transport.listen(&endpoint, &Options::default()).await?;
    let endpoint = listener.endpoint();
    let (report, mut reports) = tokio::sync::mpsc::channel::<String>(8);
    let server = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Err(e) => {
                    let _ = report.send(format!("refused at accept: {e}")).await;
                }
                Ok(mut ch) => {
                    let report = report.clone();
                    tokio::spawn(async move {
                        loop {
                            match ch.recv().await {
                                Ok(Some(frame)) => {
                                    if ch.send(frame).await.is_err() {
                                        break;
                                    }
                                }
                                Ok(None) => {
                                    let _ = ch.close().await;
                                    break;
                                }
                                Err(e) => {
                                    // Drop the client: it spoke garbage.
                                    let _ = report.send(format!("dropped: {e}")).await;
                                    break;
                                }
                            }
                        }
                    });
                }
            }
        }
    });
    let raw_endpoint = endpoint.clone();
    let garbage = tokio::task::spawn_blocking(move || -> Result<Option<usize>> {
        use std::io::{Read, Write};
        let Some(mut raw) = raw_connect(&raw_endpoint)? else {
            return Ok(None);
        };
        raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")?;
        // The server must drop us: read until EOF or reset (bounded by the case timeout).
        let mut buf = [0u8; 256];
        let mut total = 0;
        loop {
            match raw.read(&mut buf) {
                Ok(0) | Err(_) => return Ok(Some(total)),
                Ok(n) => total += n,
            }
        }
    });
    let garbage = within("the server dropping a garbage client", garbage)
        .await?
        .map_err(|e| fail(format!("raw client: {e}")))??;
    ensure!(garbage.is_some(), "no raw client for endpoint {endpoint}");
    let why = within("the server's report", reports.recv())
        .await?
        .ok_or_else(|| fail("server stopped"))?;
    ensure!(
        why.contains("handshake") || why.contains("exceeds the limit") || why.contains("frame"),
        "unclear reason for dropping the client: {why}"
    );
    let mut good = s.transport.connect(&endpoint, &Options::default()).await?;
    good.send(Bytes::from_static(b"hello")).await?;
    expect_frame(&mut *good, b"hello").await?;
    good.close().await?;
    ensure!(good.recv().await?.is_none(), "expected the server's close");
    server.abort();
    Ok(())
}
