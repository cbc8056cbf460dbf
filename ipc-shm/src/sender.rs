//! [`ShmSender`]: the sending half of a [`ShmChannel`](crate::ShmChannel), a `Sink` of
//! frames that copies each frame (length prefix, payload) straight into its ring.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures_util::Sink;
use ipc_core::frame::GOODBYE;
use ipc_core::stream::classify_write_error;
use ipc_core::{ChannelInfo, Error, Result, SendError, SendHalf};

use crate::bell::Bell;
use crate::ring::Producer;
use crate::wait::Waiter;

/// A sender looks at its doorbell for the reader's departure on one flush in this many
/// (and whenever it has to wait for room). Looking costs a readiness check with tokio's
/// reactor, about as much as the rest of a small send; so a send into a ring whose
/// reader is gone (its process died, say) may succeed up to this many times before one
/// fails, as a write to a TCP peer that is gone may succeed until its reset arrives.
const CHECK_BELL_EVERY: u32 = 16;

/// Frames queued and flushes made for one unit of the tokio task's cooperative budget
/// (neither is a system call: paying the budget's thread-local look-up for each would
/// cost more than the rest of a small send).
const STEPS_PER_BUDGET_UNIT: u8 = 32;

/// Bytes staged by `feed` after which they are published without waiting for a flush,
/// so the reader works on a long batch while the rest of it is written.
const PUBLISH_EVERY: usize = 32 * 1024;

/// Set by the receiving half when it takes the peer's goodbye, read by the sending
/// half of the same channel to tell a peer that closed from one that was lost.
pub(crate) type PeerClosed = Arc<AtomicBool>;

/// Where a [`ShmSender`] is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Sending frames.
    Open,
    /// `close` began: the goodbye is queued; frames are refused.
    Closing,
    /// Closed, or shut down without a goodbye: frames are refused.
    Closed,
}

/// A frame that did not fit in the ring's room when it was queued: copied in as room
/// appears (`done` bytes of prefix and payload are staged).
#[derive(Debug)]
struct Partial {
    prefix: [u8; 4],
    payload: Bytes,
    done: usize,
}

impl Partial {
    fn len(&self) -> usize {
        4 + self.payload.len()
    }

    /// The next unstaged bytes, at most `room`.
    fn next(&self, room: usize) -> &[u8] {
        let bytes = if self.done < 4 {
            &self.prefix[self.done..]
        } else {
            &self.payload[self.done - 4..]
        };
        &bytes[..bytes.len().min(room)]
    }
}

/// The sending half of a [`ShmChannel`](crate::ShmChannel): a [`Sink`] of frames.
///
/// `feed` (`start_send`) copies the frame, length prefix and payload, straight into
/// the ring's free room, where the receiver cannot see it yet; `flush` publishes
/// everything fed with one atomic store and wakes the receiver if it sleeps. So `send`
/// (`feed` + `flush`) costs one copy of the payload and one store, and a batch of
/// `feed`s one store for all. A frame larger than the room left goes in pieces as the
/// receiver makes room (so a frame larger than the ring passes too), and `feed` waits
/// for that; once 32 KiB are fed, they are published without waiting for a flush.
///
/// The frames, their limit, and what `close`, a drop and a cancelled send do are those
/// of every byte-stream channel of the toolkit: [`close`](futures_util::SinkExt::close)
/// publishes what is fed, then the goodbye, and the peer's `recv` gives `Ok(None)`;
/// dropping the half without `close` is an abort (frames fed but not flushed are never
/// seen; the peer's `recv` gives `PeerLost`); a `send` future dropped while its frame
/// waits for room loses nothing: the next call finishes that frame.
///
/// Every 32nd frame fed or flush counts against the tokio task's cooperative budget
/// (a `send` is both), so a loop of sends that never waits lets other tasks run.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// let (a, mut b) = ipc_shm::pair(&ipc_core::Options::default())?;
/// let (mut tx, _rx): (ipc_shm::ShmSender, _) = a.into_split();
/// tx.send("hi".into()).await?;
/// assert_eq!(b.recv().await?.unwrap(), "hi");
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ShmSender {
    ring: Producer,
    bell: Bell,
    waiter: Waiter,
    max_frame: usize,
    /// A frame being staged in pieces. While it is `Some`, no frame is queued after it.
    partial: Option<Partial>,
    phase: Phase,
    /// A send failed (the ring is corrupt, or the reader is gone): later sends fail the
    /// same way.
    failed: Option<Error>,
    /// Flushes until the doorbell is looked at again (see [`CHECK_BELL_EVERY`]).
    until_check: u32,
    /// Frames fed and flushes made since the cooperative budget was last charged.
    unbudgeted: u8,
    peer_closed: PeerClosed,
    info: ChannelInfo,
}

impl ShmSender {
    pub(crate) fn new(
        ring: Producer,
        bell: Bell,
        max_frame: usize,
        peer_closed: PeerClosed,
        info: ChannelInfo,
    ) -> Self {
        ShmSender {
            ring,
            bell,
            waiter: Waiter::default(),
            max_frame,
            partial: None,
            phase: Phase::Open,
            failed: None,
            until_check: 0,
            unbudgeted: 0,
            peer_closed,
            info: info.with_max_frame(max_frame),
        }
    }

    /// Refuse to send after `close` or after a failed send. Inlined: it runs twice
    /// per frame, and the usual answer is yes.
    #[inline]
    fn check(&self) -> Result<()> {
        if self.phase == Phase::Open && self.failed.is_none() {
            return Ok(());
        }
        self.refusal()
    }

    #[cold]
    fn refusal(&self) -> Result<()> {
        if let Some(e) = &self.failed {
            return Err(e.for_later_sends());
        }
        Err(Error::Closed)
    }

    /// Record that sending failed with `e` and return what it means for the channel:
    /// unless it concerns one frame alone, the ring may hold part of a frame, so the
    /// doorbell is hung up (the reader sees the end there) and later sends fail.
    #[cold]
    fn abandon(&mut self, e: Error) -> Error {
        let e = classify_write_error(e, self.peer_closed.load(Ordering::Acquire));
        if !e.is_fatal() {
            return e;
        }
        self.partial = None;
        self.ring.discard_staged();
        self.bell.hang_up();
        self.failed = Some(e.for_later_sends());
        e
    }

    /// Look at the doorbell for the reader's departure: a `BrokenPipe` error if it is
    /// gone.
    fn check_reader(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        self.bell.check(cx)?;
        self.until_check = CHECK_BELL_EVERY;
        if self.bell.is_gone() {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the receiving side of the shared-memory ring is gone",
            ));
        }
        Ok(())
    }

    /// Publish what is staged; ring the reader if it sleeps.
    #[inline]
    fn publish(&mut self) {
        if self.ring.publish() {
            self.bell.ring();
        }
    }

    /// Stage the rest of the partial frame, publishing and waiting for room as needed.
    fn poll_stage_partial(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut wakes = 0;
        while let Some(partial) = &mut self.partial {
            let left = partial.len() - partial.done;
            let room = self.ring.room_for(left)?;
            if room > 0 {
                let piece = partial.next(room);
                let n = piece.len();
                self.ring.stage(piece);
                partial.done += n;
                if partial.done == partial.len() {
                    self.partial = None;
                }
                self.waiter.done(&self.ring);
                continue;
            }
            // The ring is full: let the reader have what is staged, then wait for room
            // (looking for the reader's departure first).
            self.publish();
            self.check_reader(cx)?;
            ready!(self
                .waiter
                .turn(cx, &mut self.ring, 1, &mut self.bell, &mut wakes))?;
        }
        Poll::Ready(Ok(()))
    }

    /// Publish everything, the partial frame included; look for the reader's departure
    /// on one call in [`CHECK_BELL_EVERY`].
    #[inline]
    fn poll_publish_all(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.partial.is_some() {
            ready!(self.poll_stage_partial(cx))?;
        }
        self.until_check = self.until_check.saturating_sub(1);
        if self.until_check == 0 {
            self.check_reader(cx)?;
        }
        self.publish();
        Poll::Ready(Ok(()))
    }

    /// Queue `frame` (its length prefix `prefix`): staged at once if it fits, else
    /// kept as the partial frame.
    #[inline]
    fn queue(&mut self, prefix: [u8; 4], frame: Bytes) -> Result<()> {
        let whole = 4 + frame.len();
        let room = self
            .ring
            .room_for(whole)
            .map_err(|e| self.abandon(Error::Io(e.into())))?;
        if room >= whole {
            self.ring.stage_frame(prefix, &frame);
        } else {
            self.partial = Some(Partial {
                prefix,
                payload: frame,
                done: 0,
            });
        }
        Ok(())
    }

    #[inline]
    fn sink_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.check()?;
        if self.partial.is_some() || self.ring.unpublished() >= PUBLISH_EVERY {
            ready!(self.poll_publish_all(cx)).map_err(|e| self.abandon(Error::Io(e)))?;
        }
        ready!(self.poll_budget(cx));
        Poll::Ready(Ok(()))
    }

    /// Count one step (a frame fed, a flush) against the task's cooperative budget: a
    /// loop of sends that never waits must yield now and then, but the budget's
    /// thread-local look-up is paid once per [`STEPS_PER_BUDGET_UNIT`] steps.
    #[inline]
    fn poll_budget(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.unbudgeted >= STEPS_PER_BUDGET_UNIT {
            ready!(tokio::task::coop::poll_proceed(cx)).made_progress();
            self.unbudgeted = 0;
        }
        self.unbudgeted += 1;
        Poll::Ready(())
    }

    #[inline]
    fn sink_start(&mut self, frame: Bytes) -> Result<()> {
        self.check()?;
        if self.partial.is_some() {
            return Err(Error::Io(io::Error::other(
                "a frame was queued behind one still being written \
                 (Sink::start_send without poll_ready returning Ready first)",
            )));
        }
        if frame.len() > self.max_frame {
            // Concerns this frame alone: nothing was written.
            return Err(Error::FrameTooLarge {
                len: frame.len() as u64,
                max: self.max_frame,
            });
        }
        self.queue((frame.len() as u32).to_be_bytes(), frame)
    }

    #[inline]
    fn sink_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if self.phase == Phase::Closed {
            return Poll::Ready(Ok(()));
        }
        if let Some(e) = &self.failed {
            return Poll::Ready(Err(e.for_later_sends()));
        }
        ready!(self.poll_budget(cx));
        ready!(self.poll_publish_all(cx)).map_err(|e| self.abandon(Error::Io(e)))?;
        Poll::Ready(Ok(()))
    }

    fn sink_close(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if self.phase == Phase::Open {
            self.check()?;
            if self.partial.is_some() {
                ready!(self.poll_stage_partial(cx)).map_err(|e| self.abandon(Error::Io(e)))?;
            }
            self.queue(GOODBYE.to_be_bytes(), Bytes::new())?;
            self.phase = Phase::Closing;
        }
        if self.phase == Phase::Closing {
            if let Some(e) = &self.failed {
                return Poll::Ready(Err(e.for_later_sends()));
            }
            ready!(self.poll_stage_partial(cx)).map_err(|e| self.abandon(Error::Io(e)))?;
            self.publish();
            self.bell.hang_up();
            self.phase = Phase::Closed;
        }
        Poll::Ready(Ok(()))
    }
}

impl Sink<Bytes> for ShmSender {
    type Error = SendError;

    #[inline]
    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SendError>> {
        self.get_mut().sink_ready(cx).map_err(SendError::from)
    }

    #[inline]
    fn start_send(self: Pin<&mut Self>, frame: Bytes) -> Result<(), SendError> {
        self.get_mut().sink_start(frame).map_err(SendError::from)
    }

    #[inline]
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SendError>> {
        self.get_mut().sink_flush(cx).map_err(SendError::from)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SendError>> {
        self.get_mut().sink_close(cx).map_err(SendError::from)
    }
}

impl SendHalf for ShmSender {
    fn info(&self) -> ChannelInfo {
        self.info.clone()
    }
}

impl Drop for ShmSender {
    fn drop(&mut self) {
        if self.phase == Phase::Closed || self.failed.is_some() {
            return;
        }
        // Dropped without `close`: an abort. No goodbye, nothing staged is published
        // (frames fed but not flushed are never seen), a frame under way stays cut; the
        // doorbell is hung up, so the reader sees the end without a goodbye
        // (`PeerLost`) even if this process keeps the receiving half.
        self.bell.hang_up();
    }
}
