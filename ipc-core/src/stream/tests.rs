//! Tests of the stream halves together.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};

use super::sender::BATCH;
use super::*;
use crate::error::{RecvError, SendError};
use crate::frame::{FrameConfig, LengthCodec, LineCodec, LARGE_FRAME};
use crate::prelude::*;

fn pair<C: FrameCodec>(
    codec: C,
    capacity: usize,
) -> (
    StreamSender<tokio::io::DuplexStream, C>,
    StreamReceiver<tokio::io::DuplexStream, C>,
) {
    let (a, b) = tokio::io::duplex(capacity);
    let info = ChannelInfo::new("duplex");
    (
        StreamSender::new(a, codec.clone(), info.clone()),
        StreamReceiver::new(b, codec, info),
    )
}

fn frame(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| b'a' + ((i + seed as usize) % 26) as u8)
        .collect()
}

async fn send_and_read_back<C: FrameCodec>(codec: C, frames: Vec<Bytes>) -> Vec<Bytes> {
    let (mut tx, mut rx) = pair(codec, 4096);
    let reading = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(f) = rx.recv().await.expect("recv") {
            got.push(f);
        }
        got
    });
    for f in frames {
        tx.send(f).await.expect("send");
    }
    tx.close().await.expect("close");
    reading.await.expect("join")
}

#[tokio::test]
async fn small_and_large_frames_arrive_whole_and_in_order() {
    let sizes = [1, LARGE_FRAME - 1, LARGE_FRAME, 5, 70_000, 3, 200_000, 2];
    let frames: Vec<Bytes> = sizes.iter().map(|&n| frame(n, n as u8)).collect();
    let length = LengthCodec::new(FrameConfig::default());
    assert_eq!(send_and_read_back(length, frames.clone()).await, frames);
    let line = LineCodec::new(FrameConfig::default());
    assert_eq!(send_and_read_back(line, frames.clone()).await, frames);
}

#[tokio::test]
async fn a_large_send_dropped_part_way_is_finished_by_the_next_call() {
    let (mut tx, mut rx) = pair(LengthCodec::new(FrameConfig::default()), 1024);
    let big = frame(100_000, 7);
    {
        let send = tx.send(big.clone());
        tokio::pin!(send);
        // The pipe holds 1 KiB: the first poll writes part of the frame and waits.
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(send.as_mut().poll(&mut cx).is_pending());
    } // dropped with the frame half written
    let reading = tokio::spawn(async move {
        let first = rx.recv().await.expect("recv").expect("frame");
        let second = rx.recv().await.expect("recv").expect("frame");
        let end = rx.recv().await.expect("recv");
        (first, second, end)
    });
    tx.send(Bytes::from_static(b"after")).await.expect("send");
    tx.close().await.expect("close");
    let (first, second, end) = reading.await.expect("join");
    assert_eq!(first, big);
    assert_eq!(second, "after");
    assert_eq!(end, None);
}

/// A writer that takes `left` bytes, then fails every write.
struct FailAfter {
    inner: tokio::io::DuplexStream,
    left: usize,
}

impl AsyncWrite for FailAfter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.left == 0 {
            return Poll::Ready(Err(io::Error::other("the disk is on fire")));
        }
        let n = buf.len().min(self.left);
        let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &buf[..n]))?;
        self.left -= n;
        Poll::Ready(Ok(n))
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::test]
async fn a_write_failing_mid_frame_ends_the_stream_for_the_peer() {
    for (size, left) in [(100, 50), (LARGE_FRAME * 2, LARGE_FRAME)] {
        let (a, b) = tokio::io::duplex(1 << 20);
        let codec = LengthCodec::new(FrameConfig::default());
        let info = ChannelInfo::new("duplex");
        let writer = FailAfter { inner: a, left };
        let mut tx = StreamSender::new(writer, codec.clone(), info.clone());
        let mut rx = StreamReceiver::new(b, codec, info);
        let err = tx.send(frame(size, 1)).await.expect_err("the write fails");
        assert!(err.to_string().contains("on fire"), "{err}");
        // The sender still exists: the peer must not wait for the rest of the frame.
        let end = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
            .await
            .expect("the peer hung on a frame cut by a failed write");
        assert!(matches!(end, Err(RecvError::PeerLost(_))), "{end:?}");
        let again = tx
            .send(frame(3, 0))
            .await
            .expect_err("the stream is broken");
        assert!(again.to_string().contains("on fire"), "{again}");
    }
}

#[tokio::test]
async fn oversize_large_frame_is_refused_before_writing() {
    let codec = LengthCodec::new(FrameConfig::builder().max_frame(LARGE_FRAME).build());
    let (mut tx, mut rx) = pair(codec, 1 << 20);
    let err = tx
        .send(frame(LARGE_FRAME + 1, 0))
        .await
        .expect_err("too big");
    assert!(
        matches!(err, SendError::Rejected(Error::FrameTooLarge { .. })),
        "{err:?}"
    );
    tx.send(Bytes::from_static(b"ok")).await.expect("send");
    assert_eq!(rx.recv().await.expect("recv").as_deref(), Some(&b"ok"[..]));
}

/// A writer that keeps what is written and counts the write calls.
#[derive(Clone, Default)]
struct Recorder {
    wire: Arc<Mutex<(Vec<u8>, usize)>>,
}

impl Recorder {
    fn writes(&self) -> usize {
        self.wire.lock().expect("lock").1
    }
    fn bytes(&self) -> Vec<u8> {
        self.wire.lock().expect("lock").0.clone()
    }
}

impl AsyncWrite for Recorder {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut wire = self.wire.lock().expect("lock");
        wire.0.extend_from_slice(buf);
        wire.1 += 1;
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut wire = self.wire.lock().expect("lock");
        for buf in bufs {
            wire.0.extend_from_slice(buf);
        }
        wire.1 += 1;
        Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum()))
    }
    fn is_write_vectored(&self) -> bool {
        true
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

async fn read_all(wire: Vec<u8>) -> Vec<Bytes> {
    let codec = LengthCodec::new(FrameConfig::default());
    let rx = StreamReceiver::new(io::Cursor::new(wire), codec, ChannelInfo::new("mem"));
    rx.map(|frame| frame.expect("a frame")).collect().await
}

#[tokio::test]
async fn fed_frames_go_out_in_one_write_on_flush() {
    let wire = Recorder::default();
    let codec = LengthCodec::new(FrameConfig::default());
    let mut tx = StreamSender::new(wire.clone(), codec, ChannelInfo::new("mem"));
    let mut frames: Vec<Bytes> = (0..100u8).map(|n| frame(1 + n as usize, n)).collect();
    // Small frames queued, then a large one (kept as it is) and one more small one.
    for f in &frames {
        tx.feed(f.clone()).await.expect("feed");
    }
    assert_eq!(wire.writes(), 0, "feed wrote before the batch was full");
    frames.push(frame(LARGE_FRAME * 4, 9));
    tx.feed(frames[100].clone()).await.expect("feed");
    tx.flush().await.expect("flush");
    assert_eq!(
        wire.writes(),
        1,
        "the queued frames and the large one in one writev"
    );
    frames.push(frame(3, 1));
    tx.send(frames[101].clone()).await.expect("send");
    tx.close().await.expect("close");
    assert_eq!(read_all(wire.bytes()).await, frames);
}

#[tokio::test]
async fn send_many_writes_small_frames_in_one_write_and_large_ones_without_a_copy() {
    let wire = Recorder::default();
    let codec = LengthCodec::new(FrameConfig::default());
    let mut tx = StreamSender::new(wire.clone(), codec, ChannelInfo::new("mem"));
    let small: Vec<Bytes> = (0..500u32).map(|n| frame(64, n as u8)).collect();
    tx.send_many(&small).await.expect("send_many");
    assert_eq!(wire.writes(), 1, "500 frames of 64 B in one write");
    // 64 KiB of small frames fill the batch: one write per batch, not per frame.
    let many: Vec<Bytes> = (0..5000u32).map(|n| frame(64, n as u8)).collect();
    tx.send_many(&many).await.expect("send_many");
    let batches = (5000 * 68usize).div_ceil(BATCH);
    assert!(wire.writes() <= 1 + batches + 1, "{} writes", wire.writes());
    // A large frame between small ones: one writev with the buffer before it.
    let mixed = [frame(10, 1), frame(LARGE_FRAME * 2, 2), frame(10, 3)];
    let before = wire.writes();
    tx.send_many(&mixed).await.expect("send_many");
    assert_eq!(
        wire.writes() - before,
        2,
        "buffer + large frame, then the rest"
    );
    // A frame refused on its own stops the batch; the ones before it are sent.
    let limited = LengthCodec::new(FrameConfig::builder().max_frame(100).build());
    let wire2 = Recorder::default();
    let mut tx2 = StreamSender::new(wire2.clone(), limited, ChannelInfo::new("mem"));
    let batch = [frame(5, 0), frame(101, 0), frame(6, 0)];
    let e = tx2.send_many(&batch).await.expect_err("too large");
    assert!(matches!(e, SendError::Rejected(_)), "{e:?}");
    tx2.close().await.expect("close");
    assert_eq!(read_all(wire2.bytes()).await, [frame(5, 0)]);
    tx.close().await.expect("close");
    let mut all = small.clone();
    all.extend(many);
    all.extend(mixed);
    assert_eq!(read_all(wire.bytes()).await, all);
}

/// A reader that counts how often it is read.
struct CountingReader {
    inner: io::Cursor<Vec<u8>>,
    reads: Arc<Mutex<usize>>,
}

impl AsyncRead for CountingReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        *self.reads.lock().expect("lock") += 1;
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

#[tokio::test]
async fn every_whole_frame_of_one_read_is_decoded_before_reading_again() {
    let mut wire = Vec::new();
    for n in 0..300u32 {
        wire.extend_from_slice(&4u32.to_be_bytes());
        wire.extend_from_slice(&n.to_be_bytes());
    }
    let reads = Arc::new(Mutex::new(0));
    let reader = CountingReader {
        inner: io::Cursor::new(wire),
        reads: reads.clone(),
    };
    let codec = LengthCodec::new(FrameConfig::default());
    let mut rx = StreamReceiver::new(reader, codec, ChannelInfo::new("mem"));
    for n in 0..300u32 {
        let got = rx.recv().await.expect("recv").expect("a frame");
        assert_eq!(got[..], n.to_be_bytes());
    }
    assert_eq!(*reads.lock().expect("lock"), 1, "300 frames from one read");
}

#[tokio::test]
async fn the_stream_goes_on_after_a_rejected_frame_and_ends_after_a_lost_peer() {
    let mut wire = Vec::new();
    wire.extend_from_slice(&100u32.to_be_bytes());
    wire.extend_from_slice(&[0; 100]); // over the limit of 10 bytes
    wire.extend_from_slice(b"\0\0\0\x02ok");
    wire.extend_from_slice(b"\0\0\0\x09cut"); // ends inside a frame
    let codec = LengthCodec::new(FrameConfig::builder().max_frame(10).build());
    let mut rx = StreamReceiver::new(io::Cursor::new(wire), codec, ChannelInfo::new("mem"));
    assert!(matches!(
        rx.next().await,
        Some(Err(RecvError::Rejected(Error::FrameTooLarge {
            len: 100,
            ..
        })))
    ));
    assert_eq!(
        rx.next().await.transpose().expect("ok"),
        Some(Bytes::from("ok"))
    );
    assert!(matches!(rx.next().await, Some(Err(RecvError::PeerLost(_)))));
    assert!(rx.next().await.is_none());
    assert_eq!(rx.recv().await.expect("ended"), None);
}

/// The wire bytes of `frames` with the length codec, then a goodbye when `goodbye`.
fn wire_of(frames: &[Bytes], goodbye: bool) -> Vec<u8> {
    let mut wire = Vec::new();
    for f in frames {
        wire.extend_from_slice(&(f.len() as u32).to_be_bytes());
        wire.extend_from_slice(f);
    }
    if goodbye {
        wire.extend_from_slice(&u32::MAX.to_be_bytes());
    }
    wire
}

/// A reader that hands out its bytes in pieces of the given sizes (in turn), and
/// counts its reads.
struct Chunked {
    wire: Vec<u8>,
    at: usize,
    sizes: Vec<usize>,
    reads: usize,
}

impl Chunked {
    fn new(wire: Vec<u8>, sizes: Vec<usize>) -> Self {
        Chunked {
            wire,
            at: 0,
            sizes,
            reads: 0,
        }
    }
}

impl AsyncRead for Chunked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let size = this.sizes[this.reads % this.sizes.len()];
        this.reads += 1;
        let n = size.min(buf.remaining()).min(this.wire.len() - this.at);
        buf.put_slice(&this.wire[this.at..this.at + n]);
        this.at += n;
        Poll::Ready(Ok(()))
    }
}

fn receiver_of<R: AsyncRead + Send + Unpin + 'static>(
    reader: R,
    max_frame: usize,
) -> StreamReceiver<R, LengthCodec> {
    let codec = LengthCodec::new(FrameConfig::builder().max_frame(max_frame).build());
    StreamReceiver::new(reader, codec, ChannelInfo::new("mem"))
}

#[tokio::test]
async fn recv_many_hands_out_every_whole_frame_of_one_read_in_order() {
    let frames: Vec<Bytes> = (0..300u32)
        .map(|n| frame(1 + n as usize % 50, n as u8))
        .collect();
    let reads = Arc::new(Mutex::new(0));
    let reader = CountingReader {
        inner: io::Cursor::new(wire_of(&frames, true)),
        reads: reads.clone(),
    };
    let mut rx = receiver_of(reader, 1 << 20);
    let mut got = Vec::new();
    assert_eq!(rx.recv_many(&mut got, 1000).await.expect("recv_many"), 300);
    assert_eq!(got, frames);
    assert_eq!(*reads.lock().expect("lock"), 1, "300 frames from one read");
    // The frames share the read buffer: they point into one allocation.
    let span = got[299].as_ptr() as usize - got[0].as_ptr() as usize;
    assert!(span < 64 * 1024, "frames copied out of the read buffer");
    // The goodbye came in the same read: kept for the next call, which ends.
    assert_eq!(rx.recv_many(&mut got, 1000).await.expect("end"), 0);
    assert_eq!(rx.recv_many(&mut got, 1000).await.expect("end"), 0);
    assert_eq!(got.len(), 300);
}

#[tokio::test]
async fn recv_many_takes_at_most_max_and_leaves_the_rest_for_the_next_call() {
    let frames: Vec<Bytes> = (0..25u8).map(|n| frame(10, n)).collect();
    let mut rx = receiver_of(io::Cursor::new(wire_of(&frames, true)), 1 << 20);
    let mut got = Vec::new();
    let mut sizes = Vec::new();
    loop {
        let n = rx.recv_many(&mut got, 10).await.expect("recv_many");
        if n == 0 {
            break;
        }
        sizes.push(n);
    }
    assert_eq!(sizes, [10, 10, 5]);
    assert_eq!(got, frames);
    assert_eq!(rx.recv_many(&mut got, 0).await.expect("max 0"), 0);
}

#[tokio::test]
async fn recv_many_joins_frames_split_across_reads() {
    let frames: Vec<Bytes> = (0..200u32)
        .map(|n| frame([0, 1, 3, 40, 700, 5000][n as usize % 6], n as u8))
        .collect();
    for sizes in [vec![1], vec![7, 3], vec![4096], vec![13, 1000, 2]] {
        let reader = Chunked::new(wire_of(&frames, true), sizes.clone());
        let mut rx = receiver_of(reader, 1 << 20);
        let mut got = Vec::new();
        while rx.recv_many(&mut got, 64).await.expect("recv_many") > 0 {}
        assert_eq!(got, frames, "reads of {sizes:?}");
    }
}

#[tokio::test]
async fn recv_many_gives_a_rejected_frame_after_the_frames_before_it_and_goes_on() {
    let before: Vec<Bytes> = (0..3u8).map(|n| frame(5, n)).collect();
    let after: Vec<Bytes> = (3..6u8).map(|n| frame(5, n)).collect();
    let mut wire = wire_of(&before, false);
    wire.extend_from_slice(&wire_of(&[frame(100, 0)], false)); // over the limit of 10
    wire.extend_from_slice(&wire_of(&after, true));
    let mut rx = receiver_of(io::Cursor::new(wire), 10);
    let mut got = Vec::new();
    assert_eq!(rx.recv_many(&mut got, 100).await.expect("before"), 3);
    assert_eq!(got, before);
    let e = rx
        .recv_many(&mut got, 100)
        .await
        .expect_err("the rejected frame");
    assert!(
        matches!(
            e,
            RecvError::Rejected(Error::FrameTooLarge { len: 100, .. })
        ),
        "{e:?}"
    );
    got.clear();
    assert_eq!(rx.recv_many(&mut got, 100).await.expect("after"), 3);
    assert_eq!(got, after);
    assert_eq!(rx.recv_many(&mut got, 100).await.expect("end"), 0);
}

#[tokio::test]
async fn recv_many_gives_the_frames_before_a_lost_peer_then_the_loss_then_the_end() {
    let frames: Vec<Bytes> = (0..4u8).map(|n| frame(6, n)).collect();
    let mut wire = wire_of(&frames, false);
    wire.extend_from_slice(b"\0\0\0\x09cut"); // the stream ends inside a frame
    let mut rx = receiver_of(io::Cursor::new(wire), 1 << 20);
    let mut got = Vec::new();
    assert_eq!(rx.recv_many(&mut got, 100).await.expect("frames"), 4);
    assert_eq!(got, frames);
    let e = rx.recv_many(&mut got, 100).await.expect_err("lost");
    assert!(matches!(e, RecvError::PeerLost(_)), "{e:?}");
    assert_eq!(rx.recv_many(&mut got, 100).await.expect("end"), 0);
    assert!(rx.next().await.is_none());
}

#[tokio::test]
async fn recv_many_and_recv_see_the_same_items_whatever_they_are_mixed_with() {
    let mut wire = wire_of(&[frame(3, 0), frame(4, 1)], false);
    wire.extend_from_slice(&wire_of(&[frame(50, 2)], false)); // rejected
    wire.extend_from_slice(&wire_of(&[frame(5, 3), frame(6, 4), frame(7, 5)], true));
    let mut one_by_one = receiver_of(io::Cursor::new(wire.clone()), 20);
    let mut items = Vec::new();
    while let Some(item) = one_by_one.next().await {
        items.push(item.map_err(|e| e.to_string()));
    }
    let mut mixed = receiver_of(io::Cursor::new(wire), 20);
    let mut seen = Vec::new();
    for turn in 0.. {
        if turn % 2 == 0 {
            let mut batch = Vec::new();
            match mixed.recv_many(&mut batch, 2).await {
                Ok(0) => break,
                Ok(_) => seen.extend(batch.into_iter().map(Ok)),
                Err(e) => seen.push(Err(e.to_string())),
            }
        } else {
            match mixed.next().await {
                None => break,
                Some(item) => seen.push(item.map_err(|e| e.to_string())),
            }
        }
    }
    assert_eq!(seen, items);
}

#[tokio::test(flavor = "current_thread")]
async fn a_recv_many_loop_that_never_waits_lets_other_tasks_run() {
    let frames: Vec<Bytes> = (0..20_000u32).map(|n| frame(8, n as u8)).collect();
    let mut rx = receiver_of(io::Cursor::new(wire_of(&frames, true)), 1 << 20);
    let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = ran.clone();
    tokio::spawn(async move { flag.store(true, std::sync::atomic::Ordering::SeqCst) });
    let mut got = Vec::new();
    let mut calls_before_the_other_task_ran = None;
    for call in 0usize.. {
        if rx.recv_many(&mut got, 8).await.expect("recv_many") == 0 {
            break;
        }
        if calls_before_the_other_task_ran.is_none()
            && ran.load(std::sync::atomic::Ordering::SeqCst)
        {
            calls_before_the_other_task_ran = Some(call);
        }
    }
    assert_eq!(got.len(), frames.len());
    let calls = calls_before_the_other_task_ran.expect("the other task never ran");
    assert!(calls < 1000, "the other task waited for {calls} calls");
}

/// A frame found when the task's cooperative budget is spent waits in `held` while the
/// task yields, and is the next one delivered: none is lost, none is reordered, and the
/// other task gets its turn.
#[tokio::test(flavor = "current_thread")]
async fn a_recv_loop_that_never_waits_keeps_every_frame_in_order_across_budget_yields() {
    use futures_util::StreamExt;
    let frames: Vec<Bytes> = (0..20_000u32)
        .map(|n| Bytes::from(n.to_be_bytes().to_vec()))
        .collect();
    let mut rx = receiver_of(io::Cursor::new(wire_of(&frames, true)), 1 << 20);
    let turns = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = turns.clone();
    let other = tokio::spawn(async move {
        loop {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::task::yield_now().await;
        }
    });
    let mut got = Vec::new();
    while let Some(item) = rx.next().await {
        got.push(item.expect("a frame"));
    }
    other.abort();
    assert_eq!(
        got, frames,
        "frames lost or reordered across the budget's yields"
    );
    // 20 000 frames at tokio's budget of 128 units per turn: the other task ran many
    // times (at least once per spent budget).
    let turns = turns.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        turns >= 20_000 / 128 / 2,
        "the other task ran only {turns} times"
    );
}

#[tokio::test]
async fn recv_many_through_a_boxed_channel_and_a_boxed_half() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let (ar, aw) = tokio::io::split(a);
    let (br, bw) = tokio::io::split(b);
    let codec = LengthCodec::new(FrameConfig::default());
    let info = ChannelInfo::new("mem");
    let mut left = channel(ar, aw, codec.clone(), info.clone());
    let right: Box<dyn crate::Channel> = Box::new(channel(br, bw, codec, info));
    let frames: Vec<Bytes> = (0..100u8).map(|n| frame(20, n)).collect();
    left.send_many(&frames).await.expect("send_many");
    let mut right = right;
    let mut got = Vec::new();
    let n = right.recv_many(&mut got, 1000).await.expect("recv_many");
    assert!(n > 1, "one frame at a time through Box<dyn Channel>");
    let (_tx, mut rx) = right.split();
    while got.len() < frames.len() {
        assert!(rx.recv_many(&mut got, 1000).await.expect("recv_many") > 0);
    }
    assert_eq!(got, frames);
}
