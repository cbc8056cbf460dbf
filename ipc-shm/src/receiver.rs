//! [`ShmReceiver`]: the receiving half of a [`ShmChannel`](crate::ShmChannel), a
//! `Stream` of frames taken straight out of its ring.

use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use ipc_core::channel::poll_recv_one;
use ipc_core::frame::{Decoded, FrameCodec, LengthCodec, GOODBYE, LARGE_FRAME};
use ipc_core::{ChannelInfo, Error, RecvError, RecvHalf};
use tokio_util::codec::Decoder;

use crate::batch::Batcher;
use crate::bell::Bell;
use crate::ring::{Consumer, Corrupt};
use crate::sender::PeerClosed;
use crate::wait::Waiter;

/// Bytes of the buffer small frames are cut from (see [`ShmReceiver`]).
const RECV_BUFFER: usize = 64 * 1024;

/// What one look at the ring found.
enum Took {
    /// A whole frame.
    Frame(Bytes),
    /// The peer's goodbye.
    Goodbye,
    /// A frame over the limit, skipped as its bytes arrive.
    Rejected(Error),
    /// Not enough bytes yet: this many are needed before looking again is worth it.
    Short(usize),
}

/// The receiving half of a [`ShmChannel`](crate::ShmChannel): a [`Stream`] of frames.
///
/// A frame that fits in the ring is taken when it is there whole: its length prefix is
/// read (and checked against the frame limit) and its payload copied once, into a
/// `Bytes` of its own (a small frame, under 16 KiB, into a slice of a 64 KiB buffer
/// that the next small frames share, as on a socket's read buffer). A frame larger
/// than the ring is gathered as it arrives, charged to the listener's budget like a
/// partly received frame on a socket. As on a socket, a receive frees the room of
/// what it took at once (a sender may be waiting for it while this side waits for
/// something else): once per receive, once per batch for
/// [`recv_many`](ipc_core::RecvManyExt::recv_many), which takes every whole frame the
/// ring holds, the small ones after the first with one copy, as slices of it.
///
/// An empty ring is looked at again for a short, adaptive while (in place for at most
/// 5 µs per poll, then the task lets the runtime run before it looks again), then the
/// task sleeps until the sender rings. The peer's goodbye ends the stream; a frame over
/// the limit is one `Err` item ([`RecvError::Rejected`]) and the stream goes on; the
/// sender's side gone without a goodbye (dropped, or its process died) is one
/// [`RecvError::PeerLost`] once the ring is drained, then the end. Each receive uses
/// one unit of the tokio task's cooperative budget.
///
/// A receiver that drains a sustained stream (16 receives in a row found their frame
/// without waiting) and has taken all it knew of lets up to 4 KiB build up, for at most
/// 2 µs, before it takes more, so it does not read the cache lines the sender is
/// writing: one-way 64 B throughput nearly doubles (see the `batch` module). The first
/// frame after such a stream stops may therefore arrive up to 2 µs late; a round trip
/// never waits so.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// let (mut a, b) = ipc_shm::pair(&ipc_core::Options::default())?;
/// let (_tx, mut rx): (_, ipc_shm::ShmReceiver) = b.into_split();
/// a.send("hi".into()).await?;
/// assert_eq!(rx.recv().await?.unwrap(), "hi");
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ShmReceiver {
    ring: Consumer,
    bell: Bell,
    waiter: Waiter,
    /// Lets a batch build up while draining a sustained stream.
    batcher: Batcher,
    max_frame: usize,
    /// Decodes a frame larger than the ring from the bytes gathered in `gathered`
    /// (and charges the listener's budget for them).
    codec: LengthCodec,
    gathered: BytesMut,
    /// Small frames are copied here, then cut off as `Bytes` that share it.
    small: BytesMut,
    /// Bytes of a frame larger than the ring still to gather.
    gather_left: usize,
    /// Bytes of a rejected frame still to skip.
    skip_left: u64,
    /// The largest frame cut off `small`: under the frame limit, under
    /// [`LARGE_FRAME`], and with its prefix no larger than the ring.
    small_limit: usize,
    finished: bool,
    /// What followed the frames of a batch (a goodbye, a rejected frame, an error):
    /// the next item, kept for the next call.
    held: Option<Option<Result<Bytes, RecvError>>>,
    peer_closed: PeerClosed,
    info: ChannelInfo,
}

impl ShmReceiver {
    pub(crate) fn new(
        ring: Consumer,
        bell: Bell,
        codec: LengthCodec,
        peer_closed: PeerClosed,
        info: ChannelInfo,
    ) -> Self {
        let max_frame = codec.max_frame();
        let small_limit = max_frame.min(LARGE_FRAME - 1).min(ring.capacity() - 4);
        ShmReceiver {
            batcher: Batcher::new(ring.capacity()),
            ring,
            bell,
            waiter: Waiter::default(),
            max_frame,
            codec,
            gathered: BytesMut::new(),
            small: BytesMut::new(),
            gather_left: 0,
            skip_left: 0,
            small_limit,
            finished: false,
            held: None,
            peer_closed,
            info: info.with_max_frame(max_frame),
        }
    }

    /// The next frame if it is there whole and small (under [`LARGE_FRAME`] and the
    /// frame limit), copied out as a slice of `small`. `Ok(None)`: anything else, with
    /// nothing taken.
    #[inline]
    fn take_small_frame(&mut self) -> Result<Option<Bytes>, Corrupt> {
        if self.skip_left > 0 || self.gather_left > 0 {
            return Ok(None);
        }
        let taken = self
            .ring
            .take_frame_into(self.small_limit, &mut self.small, RECV_BUFFER)?;
        // Cut off one shared buffer: an allocation per `RECV_BUFFER` bytes received,
        // not per frame.
        Ok(taken.map(|len| {
            if len == 0 {
                Bytes::new()
            } else {
                self.small.split().freeze()
            }
        }))
    }

    /// Take the next frame if it is there whole, within the frame limit and the ring.
    /// `Ok(None)`: anything else (not there yet, a goodbye, a frame over the limit or
    /// larger than the ring, one being skipped or gathered), which
    /// [`take`](Self::take) sees to.
    fn take_frame(&mut self) -> Result<Option<Bytes>, Corrupt> {
        if let Some(frame) = self.take_small_frame()? {
            return Ok(Some(frame));
        }
        if self.skip_left > 0 || self.gather_left > 0 || self.ring.available_for(4)? < 4 {
            return Ok(None);
        }
        let len = self.ring.peek_u32() as usize;
        let whole = 4 + len;
        if len > self.max_frame
            || whole > self.ring.capacity()
            || self.ring.available_for(whole)? < whole
        {
            return Ok(None);
        }
        self.ring.skip(4);
        Ok(Some(self.copy_frame(len)))
    }

    /// Copy the payload of `len` bytes that is next in the ring into a `Bytes`.
    #[inline]
    fn copy_frame(&mut self, len: usize) -> Bytes {
        if len == 0 {
            return Bytes::new();
        }
        if len >= LARGE_FRAME {
            // A buffer of its own: one allocation, the exact size.
            let mut frame = BytesMut::with_capacity(len);
            self.ring.take_into(&mut frame, len);
            return frame.freeze();
        }
        // Small frames are cut off one shared buffer: an allocation per
        // `RECV_BUFFER` bytes received, not per frame.
        if self.small.capacity() < len {
            self.small.reserve(RECV_BUFFER.max(len));
        }
        self.ring.take_into(&mut self.small, len);
        self.small.split().freeze()
    }

    /// After the first frame of a batch: every further whole small frame the ring
    /// holds (at most `max`, at most [`RECV_BUFFER`] bytes), copied out with one copy
    /// and handed out as slices of it. Their lengths are read twice, in the ring to
    /// find where the run ends and in our copy to cut it; a peer that changed one in
    /// between (only a broken one can) ends the channel with an error, held for the
    /// next call.
    fn take_run(&mut self, out: &mut Vec<Bytes>, max: usize) {
        if self.skip_left > 0 || self.gather_left > 0 {
            return;
        }
        let available = match self.ring.available_for(usize::MAX) {
            Ok(available) => available,
            Err(e) => return self.finish_with(corrupt(e)),
        };
        let limit = self.max_frame.min(LARGE_FRAME - 1);
        let (mut end, mut n) = (0, 0);
        while n < max && end + 4 <= available && end < RECV_BUFFER {
            let len = self.ring.peek_u32_at(end) as usize;
            if len > limit || available - end - 4 < len {
                break;
            }
            end += 4 + len;
            n += 1;
        }
        if n == 0 {
            return;
        }
        if self.small.capacity() < end {
            self.small.reserve(RECV_BUFFER.max(end));
        }
        self.ring.take_into(&mut self.small, end);
        let run = self.small.split().freeze();
        out.reserve(n);
        let mut at = 0;
        for _ in 0..n {
            let len = match run.get(at..at + 4) {
                Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]) as usize,
                _ => usize::MAX,
            };
            if len > limit || run.len() - at - 4 < len {
                break;
            }
            out.push(run.slice(at + 4..at + 4 + len));
            at += 4 + len;
        }
        if at != run.len() {
            self.finish_with(Error::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                "the peer broke the shared-memory protocol: it changed the length of a \
                 frame it had already published; the channel cannot be trusted any more: \
                 drop it",
            )));
        }
    }

    /// End the stream with `e`, given by the next call.
    #[cold]
    fn finish_with(&mut self, e: Error) {
        self.finished = true;
        self.held = Some(Some(Err(e.into())));
    }

    /// Take the next frame (or goodbye, or rejected frame) if the ring holds it.
    fn take(&mut self) -> Result<Took, Error> {
        if self.skip_left > 0 || self.gather_left > 0 {
            return self.take_slowly();
        }
        let available = self.ring.available_for(4).map_err(corrupt)?;
        if available < 4 {
            return Ok(Took::Short(4));
        }
        let len = self.ring.peek_u32();
        let whole = 4 + len as usize;
        if len as usize <= self.max_frame && whole <= self.ring.capacity() {
            if self.ring.available_for(whole).map_err(corrupt)? < whole {
                return Ok(Took::Short(whole));
            }
            self.ring.skip(4);
            return Ok(Took::Frame(self.copy_frame(len as usize)));
        }
        self.ring.skip(4);
        if len == GOODBYE {
            return Ok(Took::Goodbye);
        }
        if len as usize > self.max_frame {
            self.skip_left = u64::from(len);
            return Ok(Took::Rejected(Error::FrameTooLarge {
                len: u64::from(len),
                max: self.max_frame,
            }));
        }
        // Larger than the ring: gathered as it arrives. The codec sees the prefix
        // first, and charges the budget before any room is made for the frame.
        self.gathered.extend_from_slice(&len.to_be_bytes());
        if let Some(item) = self.codec.decode(&mut self.gathered)? {
            return Ok(self.decoded(item));
        }
        self.gather_left = len as usize;
        self.take_slowly()
    }

    /// Go on skipping a rejected frame, or gathering one larger than the ring.
    #[cold]
    fn take_slowly(&mut self) -> Result<Took, Error> {
        if self.skip_left > 0 {
            let available = self.ring.available_for(usize::MAX).map_err(corrupt)?;
            let n = (available as u64).min(self.skip_left);
            self.ring.skip(n as usize);
            self.skip_left -= n;
            if self.skip_left > 0 {
                return Ok(Took::Short(1));
            }
            return self.take();
        }
        let available = self.ring.available_for(self.gather_left).map_err(corrupt)?;
        let n = available.min(self.gather_left);
        self.ring.take_into(&mut self.gathered, n);
        self.gather_left -= n;
        match self.codec.decode(&mut self.gathered)? {
            Some(item) => {
                self.gather_left = 0;
                Ok(self.decoded(item))
            }
            None if self.gather_left == 0 => Err(Error::Io(io::Error::other(
                "a gathered frame was not decoded whole (a bug in ipc-shm)",
            ))),
            None => {
                // Let the writer go on while we wait for the rest.
                if self.ring.release() {
                    self.bell.ring();
                }
                Ok(Took::Short(1))
            }
        }
    }

    fn decoded(&mut self, item: Decoded) -> Took {
        match item {
            Decoded::Frame(frame) => Took::Frame(frame),
            Decoded::Goodbye => Took::Goodbye,
            Decoded::Rejected(e) => Took::Rejected(e),
        }
    }

    /// A frame is taken: end the wait, if there was one, and count the receive for the
    /// batcher (a receive that waited ends a streak).
    #[inline]
    fn took(&mut self) {
        if self.waiter.done(&self.ring) {
            self.batcher.waited();
        } else {
            self.batcher.took_at_once();
        }
    }

    /// Give the room taken back to the writer; wake it if it sleeps.
    #[inline]
    fn release(&mut self) {
        if self.ring.release() {
            self.bell.ring();
        }
    }

    /// What a look at the ring means as the next item of the stream (`None`: not
    /// there yet, `need` bytes are wanted).
    #[inline]
    fn item(&mut self, took: Result<Took, Error>) -> Result<Option<Bytes>, Option<RecvError>> {
        match took {
            Ok(Took::Frame(frame)) => Ok(Some(frame)),
            Ok(Took::Short(_)) => Ok(None),
            Ok(Took::Goodbye) => {
                self.finished = true;
                self.peer_closed.store(true, Ordering::Release);
                Err(None)
            }
            Ok(Took::Rejected(e)) => Err(Some(e.into())),
            Err(e) => {
                self.finished = true;
                Err(Some(e.into()))
            }
        }
    }

    /// The writer is gone and the ring drained: the end, without a goodbye.
    fn lost(&mut self) -> RecvError {
        self.finished = true;
        self.waiter.gave_up();
        let inside = self.skip_left > 0
            || self.gather_left > 0
            || self.ring.available_for(usize::MAX).unwrap_or(0) > 0;
        RecvError::PeerLost(if inside {
            "the stream ended inside a frame".into()
        } else {
            "the stream ended without a goodbye frame".into()
        })
    }

    /// Wait for the next item.
    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, RecvError>>> {
        let mut wakes = 0;
        loop {
            match self.take_frame() {
                Ok(Some(frame)) => {
                    self.took();
                    return Poll::Ready(Some(Ok(frame)));
                }
                Ok(None) => {}
                Err(e) => {
                    self.finished = true;
                    return Poll::Ready(Some(Err(corrupt(e).into())));
                }
            }
            let took = self.take();
            let need = match &took {
                Ok(Took::Short(need)) => *need,
                _ => 0,
            };
            match self.item(took) {
                Ok(Some(frame)) => {
                    self.took();
                    return Poll::Ready(Some(Ok(frame)));
                }
                Ok(None) => {}
                Err(end) => {
                    self.waiter.done(&self.ring);
                    return Poll::Ready(end.map(Err));
                }
            }
            // Nothing whole yet: give the room taken back before waiting for more.
            self.release();
            if self.bell.is_gone() {
                // Learnt before this look at the ring, which found it short: the end.
                return Poll::Ready(Some(Err(self.lost())));
            }
            ready!(self
                .waiter
                .turn(cx, &mut self.ring, need, &mut self.bell, &mut wakes))
            .map_err(|e| {
                self.finished = true;
                RecvError::from(Error::Io(e))
            })?;
        }
    }
}

/// A corrupt position as the error that ends the channel.
fn corrupt(e: Corrupt) -> Error {
    Error::Io(e.into())
}

impl Stream for ShmReceiver {
    type Item = Result<Bytes, RecvError>;

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, RecvError>>> {
        let this = self.get_mut();
        // Checked before it is taken: `take` would write the (large) empty value back
        // on every receive.
        if this.held.is_some() {
            return Poll::Ready(this.held.take().flatten());
        }
        if this.finished {
            return Poll::Ready(None);
        }
        // One unit of the task's cooperative budget per frame: a receive that is
        // always ready must still let other tasks (a signal handler, ...) run.
        let coop = ready!(tokio::task::coop::poll_proceed(cx));
        // In a sustained stream, let a batch build up first (see `crate::batch`).
        this.batcher.before_look(&this.ring);
        // The usual case, kept short: a whole small frame is there.
        if let Ok(Some(frame)) = this.take_small_frame() {
            coop.made_progress();
            this.took();
            this.release();
            return Poll::Ready(Some(Ok(frame)));
        }
        let item = ready!(this.poll_item(cx));
        coop.made_progress();
        this.release();
        Poll::Ready(item)
    }
}

impl RecvHalf for ShmReceiver {
    fn info(&self) -> ChannelInfo {
        self.info.clone()
    }

    /// The next item as [`poll_next`](Stream::poll_next) gives it, then every whole
    /// frame the ring holds (up to `max`), with the room of them all given back at
    /// once.
    fn poll_recv_many(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut Vec<Bytes>,
        max: usize,
    ) -> Poll<Result<usize, RecvError>> {
        // Nothing to batch: the held item, or the end, as `poll_next` gives it.
        if max == 0 || self.held.is_some() || self.finished {
            return poll_recv_one(self, cx, out, max);
        }
        let coop = ready!(tokio::task::coop::poll_proceed(cx));
        self.batcher.before_look(&self.ring);
        let first = ready!(self.poll_item(cx));
        coop.made_progress();
        let mut n = 0;
        match first {
            None => {}
            Some(Err(e)) => {
                self.release();
                return Poll::Ready(Err(e));
            }
            Some(Ok(frame)) => {
                out.push(frame);
                let before = out.len();
                self.take_run(out, max - 1);
                n = 1 + out.len() - before;
                while n < max && self.held.is_none() {
                    if let Ok(Some(frame)) = self.take_frame() {
                        out.push(frame);
                        n += 1;
                        continue;
                    }
                    let took = self.take();
                    match self.item(took) {
                        Ok(Some(frame)) => {
                            out.push(frame);
                            n += 1;
                        }
                        Ok(None) => break,
                        Err(end) => {
                            // Given by the next call (before the end, if it is one).
                            self.held = Some(end.map(Err));
                            break;
                        }
                    }
                }
            }
        }
        self.release();
        Poll::Ready(Ok(n))
    }
}
