//! The one wait step of both ends of a ring: after a look found nothing to do (no
//! bytes to take, no room to stage), spin, give the runtime a turn, or raise our parked
//! flag and sleep on the doorbell (see [`spin`](crate::spin) and the crate docs).

use std::io;
use std::task::{Context, Poll};

use crate::bell::Bell;
use crate::ring::RingEnd;
use crate::spin::{Next, Spin};

/// Most times one poll goes to sleep and is woken at once before it yields to the
/// runtime instead: a peer that keeps ringing cannot hold the runtime's thread. (tokio's
/// cooperative budget, which the doorbell's readiness check consumes, bounds this too;
/// this bound also holds for a task that runs unconstrained.)
const MAX_WAKES_PER_POLL: u32 = 4;

/// The waiting state of one end of a ring: how it spins, and whether its parked flag
/// is up.
#[derive(Debug, Default)]
pub(crate) struct Waiter {
    spin: Spin,
    /// Our parked flag is raised (we went to sleep and nobody lowered it yet).
    parked: bool,
}

impl Waiter {
    /// One turn of waiting for `need` bytes (of data, or of room) after a look at
    /// `ring` found too few. `Ready(Ok(()))`: look at the ring again; `Pending`: this
    /// task is woken when there may be something to do. `wakes` counts the wake-ups of
    /// this poll (start it at 0 per poll).
    pub(crate) fn turn(
        &mut self,
        cx: &mut Context<'_>,
        ring: &mut impl RingEnd,
        need: usize,
        bell: &mut Bell,
        wakes: &mut u32,
    ) -> Poll<io::Result<()>> {
        match self.spin.wait(|| ring.changed()) {
            Next::Look => return Poll::Ready(Ok(())),
            Next::Yield => {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Next::Sleep => {}
        }
        if !ring.park(need)? {
            return Poll::Ready(Ok(()));
        }
        self.parked = true;
        std::task::ready!(bell.poll_rung(cx))?;
        *wakes += 1;
        if *wakes >= MAX_WAKES_PER_POLL {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    }

    /// The wait (if any) is over: adapt the spin to it and lower our parked flag if it
    /// is still up. `true`: a wait had begun (this side found nothing at least once
    /// since the last `done`).
    #[inline]
    pub(crate) fn done(&mut self, ring: &impl RingEnd) -> bool {
        let waited = self.spin.done(self.parked);
        if self.parked {
            ring.unpark();
            self.parked = false;
        }
        waited
    }

    /// The wait ended because the other side is gone.
    pub(crate) fn gave_up(&mut self) {
        self.spin.done(true);
    }
}
