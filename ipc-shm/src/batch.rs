//! [`Batcher`]: how a receiver that keeps up with a sustained stream lets a batch build
//! up before it takes more, so it stops reading the bytes the sender is writing.
//!
//! **Why.** A receiver that is as fast as its sender catches up with it, then takes
//! each frame the moment it is published. Each look at the ring's write position, and
//! each copy of a frame just written, pulls cache lines the sender is about to write
//! again into the receiver's cache (and the CPU's prefetcher may pull the next ones), so
//! the sender's next stores wait for those lines to come back: about one trip between
//! CPUs per frame. A sender whose stores queue up behind that (a `send` through tokio
//! and the `Sink` machinery is a few dozen stores) runs at a fraction of its speed, and
//! the two stay locked in step. Measured on a 2-CPU AMD EPYC VM, `ipc-bench` one-way
//! 64 B, 20 runs each: a median of 12.4 M msg/s unpinned (4 runs at or above 20 M)
//! without batching, 23.0 M (18 runs) with it (docs/BENCHMARKS.md).
//!
//! **What.** Once a receiver has taken [`STREAK`] frames in a row without having to
//! wait for any (it is draining a sustained stream), and has taken everything it knows
//! of, it lets the sender publish [`BATCH`] bytes (a quarter of the ring if that is
//! less) before it takes more: it looks at the write position once per [`LOOK_EVERY`],
//! for at most [`MAX_LINGER`]. Then it drains that batch, far behind the bytes the
//! sender is writing. A linger that ends without the batch (the stream slowed or
//! stopped) ends the streak, so the frames after it are taken as they come.
//!
//! **What it costs.** Only a receive that follows a sustained stream can linger: the
//! first frame after the stream stops may be seen up to [`MAX_LINGER`] (2 µs) late. A
//! round trip never lingers (each of its frames is waited for, which ends the streak),
//! and neither does a stream slower than its receiver.

use std::time::{Duration, Instant};

use crate::ring::Consumer;

/// Receives in a row that found their frame without waiting, after which the receiver
/// counts as draining a sustained stream.
pub(crate) const STREAK: u32 = 16;
/// Bytes a lingering receiver waits for (at most a quarter of the ring).
pub(crate) const BATCH: usize = 4096;
/// Longest a receiver lingers before it takes what there is.
pub(crate) const MAX_LINGER: Duration = Duration::from_micros(2);
/// How often a lingering receiver looks at the write position (each look pulls the
/// line the sender stores it in).
pub(crate) const LOOK_EVERY: Duration = Duration::from_nanos(500);

/// How a linger ended (see [`Batcher::before_look`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Linger {
    /// No linger: not in a sustained stream, or something is already known to be there.
    No,
    /// The batch was published.
    Batch,
    /// [`MAX_LINGER`] passed first; the streak is over.
    TimedOut,
}

/// The batching state of one receiver.
#[derive(Debug)]
pub(crate) struct Batcher {
    /// Receives in a row that found their frame without waiting.
    streak: u32,
    /// Bytes to wait for: [`BATCH`], or a quarter of a smaller ring.
    batch: u64,
}

impl Batcher {
    /// The state of a receiver of a ring of `capacity` bytes.
    pub(crate) fn new(capacity: usize) -> Self {
        Batcher {
            streak: 0,
            batch: BATCH.min(capacity / 4) as u64,
        }
    }

    /// A receive found its frame without waiting.
    #[inline]
    pub(crate) fn took_at_once(&mut self) {
        self.streak = self.streak.saturating_add(1);
    }

    /// A receive had to wait: whatever streak there was is over.
    #[inline]
    pub(crate) fn waited(&mut self) {
        self.streak = 0;
    }

    /// Before a receive looks at `ring`: in a sustained stream, with everything known
    /// taken, let a batch build up first (see the module docs).
    #[inline]
    pub(crate) fn before_look(&mut self, ring: &Consumer) -> Linger {
        if self.streak < STREAK || !ring.known_empty() {
            return Linger::No;
        }
        self.linger(ring)
    }

    #[cold]
    fn linger(&mut self, ring: &Consumer) -> Linger {
        let start = Instant::now();
        let mut next_look = start + LOOK_EVERY;
        loop {
            std::hint::spin_loop();
            let now = Instant::now();
            if now >= next_look {
                if ring.published_ahead() >= self.batch {
                    return Linger::Batch;
                }
                next_look += LOOK_EVERY;
            }
            if now.duration_since(start) >= MAX_LINGER {
                self.streak = 0;
                return Linger::TimedOut;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::Producer;
    use crate::segment::{Ring, Segment};
    use std::sync::Arc;

    /// The two ends of a ring, each in a mapping of its own (as in two processes).
    fn ring(capacity: usize) -> (Producer, Consumer) {
        let (fd, created) = Segment::create(capacity).expect("create");
        let opened = Segment::open(&fd).expect("open");
        (
            Producer::new(Arc::new(created), Ring::FromCreator),
            Consumer::new(Arc::new(opened), Ring::FromCreator),
        )
    }

    fn publish(producer: &mut Producer, bytes: usize) {
        producer.room_for(bytes).expect("room");
        producer.stage(&vec![0u8; bytes]);
        producer.publish();
    }

    #[test]
    fn no_linger_without_a_streak_or_with_bytes_known() {
        let (mut producer, mut consumer) = ring(64 * 1024);
        let mut batcher = Batcher::new(consumer.capacity());
        assert_eq!(batcher.before_look(&consumer), Linger::No, "no streak yet");
        for _ in 0..STREAK {
            batcher.took_at_once();
        }
        publish(&mut producer, 8);
        consumer.available_for(8).expect("positions");
        assert_eq!(
            batcher.before_look(&consumer),
            Linger::No,
            "bytes we know of are there to take"
        );
        batcher.waited();
        consumer.skip(8);
        assert_eq!(
            batcher.before_look(&consumer),
            Linger::No,
            "a wait ends the streak"
        );
    }

    #[test]
    fn a_sustained_stream_lingers_until_a_batch_is_published() {
        let (mut producer, consumer) = ring(64 * 1024);
        let mut batcher = Batcher::new(consumer.capacity());
        for _ in 0..STREAK {
            batcher.took_at_once();
        }
        publish(&mut producer, BATCH);
        assert_eq!(batcher.before_look(&consumer), Linger::Batch);
        assert_eq!(batcher.streak, STREAK, "the stream goes on");
    }

    #[test]
    fn a_linger_without_a_batch_ends_the_streak() {
        let (mut producer, consumer) = ring(64 * 1024);
        let mut batcher = Batcher::new(consumer.capacity());
        for _ in 0..STREAK {
            batcher.took_at_once();
        }
        publish(&mut producer, BATCH - 1);
        assert_eq!(batcher.before_look(&consumer), Linger::TimedOut);
        assert_eq!(
            batcher.before_look(&consumer),
            Linger::No,
            "the next receive takes what comes"
        );
    }

    #[test]
    fn the_batch_is_a_quarter_of_a_small_ring() {
        let (mut producer, consumer) = ring(4096);
        let mut batcher = Batcher::new(consumer.capacity());
        assert_eq!(batcher.batch, 1024);
        for _ in 0..STREAK {
            batcher.took_at_once();
        }
        publish(&mut producer, 1024);
        assert_eq!(batcher.before_look(&consumer), Linger::Batch);
    }
}
