//! [`RingReader`] and [`RingWriter`]: one ring and its doorbell as tokio's `AsyncRead`
//! and `AsyncWrite`, so the toolkit's shared framing ([`StreamSender`] and
//! [`StreamReceiver`] with the length-prefix codec) runs over shared memory unchanged:
//! the same frames, limits, goodbye, batching and cancellation behaviour as on a
//! socket.
//!
//! [`StreamSender`]: ipc_core::stream::StreamSender
//! [`StreamReceiver`]: ipc_core::stream::StreamReceiver

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::bell::Bell;
use crate::ring::{Consumer, Producer, RingEnd};
use crate::spin::{Next, Spin};

/// Most times one poll goes to sleep and is woken at once before it yields to the
/// runtime instead: a peer that keeps ringing cannot hold the runtime's thread. (tokio's
/// cooperative budget, which the doorbell's readiness check consumes, bounds this too;
/// this bound also holds for a task that runs unconstrained.)
const MAX_WAKES_PER_POLL: u32 = 4;

/// A writer looks at its doorbell for the reader's departure on one write in this many
/// (and whenever it has to wait for room). Looking costs a readiness check with tokio's
/// reactor, about as much as the rest of a small write; so a write into a ring whose
/// reader is gone (its process died, say) may succeed up to this many times before one
/// fails, as a write to a TCP peer that is gone may succeed until its reset arrives.
const CHECK_BELL_EVERY: u32 = 16;

/// The receiving side of one shared-memory ring: the reader under a
/// [`ShmReceiver`](crate::ShmReceiver).
///
/// Reading copies bytes out of the ring; an empty ring is looked at again for a short,
/// adaptive while (in place for at most 5 µs per poll, then the task lets the runtime
/// run before it looks again), then the task sleeps until the writer rings. The end of stream comes once the writer's
/// side is gone (closed, dropped, or its process died) and the ring is empty.
///
/// ```no_run
/// # async fn demo(mut rx: ipc_shm::ShmReceiver) {
/// let ring: &mut ipc_shm::RingReader = rx.reader_mut();
/// println!("{ring:?}");
/// # }
/// ```
#[derive(Debug)]
pub struct RingReader {
    ring: Consumer,
    bell: Bell,
    spin: Spin,
    /// Our parked flag is raised (we went to sleep and nobody lowered it yet).
    parked: bool,
}

impl RingReader {
    pub(crate) fn new(ring: Consumer, bell: Bell) -> Self {
        RingReader {
            ring,
            bell,
            spin: Spin::default(),
            parked: false,
        }
    }

    /// Bytes read from the ring so far.
    ///
    /// ```no_run
    /// # fn demo(ring: &ipc_shm::RingReader) {
    /// println!("{} bytes received", ring.position());
    /// # }
    /// ```
    pub fn position(&self) -> u64 {
        self.ring.position()
    }
}

/// One turn of waiting, shared by [`RingReader`] and [`RingWriter`] after a look at
/// `ring` found nothing to do: spin, give the runtime a turn, or raise our parked flag
/// and sleep on `bell` (see the module docs). `Ready(Ok(()))`: look at the ring again;
/// `Pending`: this task is woken when there may be something to do.
fn wait_turn(
    cx: &mut Context<'_>,
    ring: &mut impl RingEnd,
    bell: &mut Bell,
    spin: &mut Spin,
    parked: &mut bool,
    wakes: &mut u32,
) -> Poll<io::Result<()>> {
    match spin.wait(|| ring.changed()) {
        Next::Look => return Poll::Ready(Ok(())),
        Next::Yield => {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Next::Sleep => {}
    }
    if !ring.park()? {
        return Poll::Ready(Ok(()));
    }
    *parked = true;
    std::task::ready!(bell.poll_rung(cx))?;
    *wakes += 1;
    if *wakes >= MAX_WAKES_PER_POLL {
        cx.waker().wake_by_ref();
        return Poll::Pending;
    }
    Poll::Ready(Ok(()))
}

impl AsyncRead for RingReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut wakes = 0;
        loop {
            let popped = this.ring.pop(buf)?;
            if popped.bytes > 0 || buf.remaining() == 0 {
                if popped.wake_writer {
                    this.bell.ring();
                }
                this.spin.done(this.parked);
                if this.parked {
                    this.ring.unpark();
                    this.parked = false;
                }
                return Poll::Ready(Ok(()));
            }
            if this.bell.is_gone() {
                // The writer is gone and the ring is drained (looked at after learning
                // it): the end of the stream.
                this.spin.done(true);
                return Poll::Ready(Ok(()));
            }
            std::task::ready!(wait_turn(
                cx,
                &mut this.ring,
                &mut this.bell,
                &mut this.spin,
                &mut this.parked,
                &mut wakes
            ))?;
        }
    }
}

/// The sending side of one shared-memory ring: the writer under a
/// [`ShmSender`](crate::ShmSender).
///
/// Writing copies bytes into the ring (all slices of a vectored write at once) and
/// rings the reader only if it sleeps. A full ring is looked at again for a short,
/// adaptive while, then the task sleeps until the reader rings. A write fails with
/// `BrokenPipe` once the reader's side is gone (seen on a write that waits, or on one
/// write in 16); shutting down tells the reader so (after it has read everything
/// written).
///
/// ```no_run
/// # fn demo(tx: ipc_shm::ShmSender) {
/// let ring: &ipc_shm::RingWriter = tx.writer();
/// println!("{} bytes sent", ring.position());
/// # }
/// ```
#[derive(Debug)]
pub struct RingWriter {
    ring: Producer,
    bell: Bell,
    spin: Spin,
    parked: bool,
    /// Shut down: nothing more is written.
    shut: bool,
    /// Writes until the doorbell is looked at again (see [`CHECK_BELL_EVERY`]).
    until_check: u32,
}

impl RingWriter {
    pub(crate) fn new(ring: Producer, bell: Bell) -> Self {
        RingWriter {
            ring,
            bell,
            spin: Spin::default(),
            parked: false,
            shut: false,
            until_check: 0,
        }
    }

    /// Bytes written into the ring so far.
    ///
    /// ```no_run
    /// # fn demo(ring: &ipc_shm::RingWriter) {
    /// println!("{} bytes sent", ring.position());
    /// # }
    /// ```
    pub fn position(&self) -> u64 {
        self.ring.position()
    }

    fn poll_push(&mut self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        if self.shut {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "this side of the shared-memory ring was shut down",
            )));
        }
        let mut wakes = 0;
        loop {
            // A reader that went away is seen here, even while the ring has room (on
            // the first write, then one in `CHECK_BELL_EVERY`, and on every wait).
            if self.until_check == 0 {
                self.bell.check(cx)?;
                self.until_check = CHECK_BELL_EVERY;
            }
            self.until_check -= 1;
            if self.bell.is_gone() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the receiving side of the shared-memory ring is gone",
                )));
            }
            let pushed = self.ring.push(bufs)?;
            if pushed.bytes > 0 || bufs.iter().all(|b| b.is_empty()) {
                if pushed.wake_reader {
                    self.bell.ring();
                }
                self.spin.done(self.parked);
                if self.parked {
                    self.ring.unpark();
                    self.parked = false;
                }
                return Poll::Ready(Ok(pushed.bytes));
            }
            // Waiting for room: look at the doorbell on the next turn.
            self.until_check = 0;
            std::task::ready!(wait_turn(
                cx,
                &mut self.ring,
                &mut self.bell,
                &mut self.spin,
                &mut self.parked,
                &mut wakes
            ))?;
        }
    }
}

impl AsyncWrite for RingWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_push(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_push(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Written bytes are published at once: nothing is held back.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.shut {
            this.shut = true;
            this.bell.hang_up();
        }
        Poll::Ready(Ok(()))
    }
}
