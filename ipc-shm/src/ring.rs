//! The single-producer, single-consumer byte rings of a [`Segment`]: a
//! [`Producer`] appends bytes, a [`Consumer`] takes them, each keeping its own position
//! and checking every position the peer stores in shared memory before using it.
//!
//! A ring is a byte stream, not a queue of messages: the toolkit's frames (length
//! prefix, payload; see `docs/PROTOCOL.md`) flow through it as they flow through a
//! socket, so a frame larger than the ring simply passes in pieces and the frame
//! limit is the same as on every transport.
//!
//! # Memory ordering (what a C peer must do too)
//!
//! - The writer copies bytes into the data area, then stores `write` with release
//!   ordering; the reader loads `write` with acquire ordering before copying them out.
//!   Symmetrically, the reader stores `read` with release ordering once it has copied
//!   bytes out, and the writer loads it with acquire ordering before reusing the room.
//! - Parking: a side that finds nothing to do stores 1 into its parked flag, issues a
//!   sequentially consistent fence, and loads the other side's position again; only if
//!   still nothing changed does it sleep. The other side, after storing its position,
//!   issues a sequentially consistent fence and loads the flag; if it is 1 it swaps in
//!   0 and, if the swap returned 1, wakes the sleeper. One of the two fences always
//!   sees the other's store, so a wake-up is never lost.
//! - Where both processes can, the sleeper's fence is `membarrier` and the other
//!   side's only a compiler fence (see [`crate::barrier`]): same guarantee, and the
//!   busy path has no fence.
//!
//! This module has no `unsafe`; all shared-memory access is in [`crate::segment`].

use std::fmt;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::BytesMut;

use crate::barrier::Barrier;
use crate::segment::{Parked, Position, Ring, Segment};

/// The peer stored a position into shared memory that no correct peer can store: a
/// position only moves forward, the reader's never past the writer's, the writer's never
/// more than one ring ahead of the reader's. The ring is unusable from then on (its
/// contents cannot be trusted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Corrupt {
    /// Which position was wrong.
    pub(crate) what: &'static str,
    /// The value the peer stored.
    pub(crate) found: u64,
    /// The lowest value it may have (the last one we saw).
    pub(crate) low: u64,
    /// The highest value it may have.
    pub(crate) high: u64,
}

impl Corrupt {
    /// Check that `found` lies in `low..=high` (positions wrap at 2^64, as they never
    /// do in practice).
    fn check(what: &'static str, found: u64, low: u64, high: u64) -> Result<u64, Corrupt> {
        if found.wrapping_sub(low) <= high.wrapping_sub(low) {
            Ok(found)
        } else {
            Err(Corrupt {
                what,
                found,
                low,
                high,
            })
        }
    }
}

impl fmt::Display for Corrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the peer broke the shared-memory protocol: it stored {} as the ring's {} \
             position, which must lie between {} and {}; the channel cannot be trusted any \
             more: drop it",
            self.found, self.what, self.low, self.high
        )
    }
}

impl std::error::Error for Corrupt {}

impl From<Corrupt> for io::Error {
    fn from(e: Corrupt) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

/// The writing end of one ring.
///
/// Bytes are first **staged**: copied into the ring's free room, invisible to the
/// reader; [`publish`](Producer::publish) then makes everything staged visible with one
/// store. So a batch of frames costs one store, one fence and one look at the reader's
/// parked flag, however many frames it holds.
#[derive(Debug)]
pub(crate) struct Producer {
    segment: Arc<Segment>,
    ring: Ring,
    capacity: u64,
    /// Bytes we have published (ours: never read back from shared memory).
    write: u64,
    /// Bytes we have copied into the ring: `write` plus what is staged.
    staged: u64,
    /// The reader's position as last loaded and checked.
    read_seen: u64,
    /// How we fence around parking (see [`crate::barrier`]).
    barrier: Barrier,
}

impl Producer {
    /// The writing end of `ring` in `segment`, at position 0. Says in the segment
    /// whether we sleep heavily (before we ever sleep).
    pub(crate) fn new(segment: Arc<Segment>, ring: Ring) -> Self {
        let capacity = segment.capacity() as u64;
        let barrier = Barrier::for_this_process();
        segment
            .heavy(ring, Parked::Writer)
            .store(barrier.heavy_word(), Ordering::SeqCst);
        Producer {
            segment,
            ring,
            capacity,
            write: 0,
            staged: 0,
            read_seen: 0,
            barrier,
        }
    }

    /// Load and check the reader's position: never behind what we saw before, never
    /// ahead of what we published.
    fn load_read(&mut self) -> Result<(), Corrupt> {
        let read = self
            .segment
            .position(self.ring, Position::Read)
            .load(Ordering::Acquire);
        self.read_seen = Corrupt::check("read", read, self.read_seen, self.write)?;
        Ok(())
    }

    /// Room for more bytes, as far as we know without looking.
    #[inline]
    fn room(&self) -> usize {
        (self.capacity - self.staged.wrapping_sub(self.read_seen)) as usize
    }

    /// The room there is for staging, looking at the reader's position only when the
    /// one we know leaves less than `wanted` bytes.
    #[inline]
    pub(crate) fn room_for(&mut self, wanted: usize) -> Result<usize, Corrupt> {
        if self.room() < wanted {
            self.load_read()?;
        }
        Ok(self.room())
    }

    /// Copy `bytes` into the ring after what is staged, unpublished.
    ///
    /// # Panics
    ///
    /// If they do not fit in the room [`room_for`](Self::room_for) reported (a bug in
    /// this crate, never something the peer can cause).
    #[inline]
    pub(crate) fn stage(&mut self, bytes: &[u8]) {
        assert!(bytes.len() <= self.room(), "staging past the ring's room");
        self.segment.copy_in(self.ring, self.staged, bytes);
        self.staged += bytes.len() as u64;
    }

    /// Copy a frame's length prefix and payload into the ring after what is staged,
    /// unpublished (one call for the two: see [`stage`](Self::stage)).
    #[inline]
    pub(crate) fn stage_frame(&mut self, prefix: [u8; 4], payload: &[u8]) {
        assert!(
            4 + payload.len() <= self.room(),
            "staging past the ring's room"
        );
        self.segment
            .copy_in_frame(self.ring, self.staged, prefix, payload);
        self.staged += 4 + payload.len() as u64;
    }

    /// Bytes staged but not yet published.
    #[inline]
    pub(crate) fn unpublished(&self) -> usize {
        (self.staged - self.write) as usize
    }

    /// Forget what is staged: it was never published, so the reader never sees it.
    pub(crate) fn discard_staged(&mut self) {
        self.staged = self.write;
    }

    /// Publish everything staged, and tell whether the reader is parked and must be
    /// woken.
    #[inline]
    pub(crate) fn publish(&mut self) -> bool {
        if self.staged == self.write {
            return false;
        }
        self.write = self.staged;
        announce(
            &self.segment,
            self.ring,
            Position::Write,
            self.write,
            Parked::Reader,
            self.barrier,
        )
    }

    /// Get ready to sleep because the ring has less than `need` bytes of room: raise
    /// our parked flag and look again. `Ok(true)`: still too little, sleep until woken.
    /// `Ok(false)`: room appeared (the flag is lowered again).
    pub(crate) fn park(&mut self, need: usize) -> Result<bool, Corrupt> {
        if !raise_flag(&self.segment, self.ring, Parked::Writer, &mut self.barrier) {
            return Ok(false);
        }
        self.load_read()?;
        if self.room() >= need.max(1) {
            self.unpark();
            return Ok(false);
        }
        Ok(true)
    }

    /// Lower our parked flag (after a wait ended without the reader lowering it).
    pub(crate) fn unpark(&self) {
        self.segment
            .parked(self.ring, Parked::Writer)
            .store(0, Ordering::Relaxed);
    }

    /// Bytes published so far.
    #[cfg(test)]
    pub(crate) fn position(&self) -> u64 {
        self.write
    }

    /// The reader's position moved since we last looked (one load, unchecked: the
    /// next [`room_for`](Self::room_for) or [`park`](Self::park) checks it). For
    /// spinning.
    pub(crate) fn changed(&self) -> bool {
        self.segment
            .position(self.ring, Position::Read)
            .load(Ordering::Relaxed)
            != self.read_seen
    }
}

/// The reading end of one ring.
///
/// Bytes are **taken** (copied out, or skipped) one frame at a time; their room goes
/// back to the writer with [`release`](Consumer::release), once per batch: one store,
/// one fence and one look at the writer's parked flag however many frames it held.
#[derive(Debug)]
pub(crate) struct Consumer {
    segment: Arc<Segment>,
    ring: Ring,
    capacity: u64,
    /// Bytes whose room we gave back (ours: never read back from shared memory).
    read: u64,
    /// Bytes we have taken: `read` plus what is not released yet.
    taken: u64,
    /// The writer's position as last loaded and checked.
    write_seen: u64,
    /// How we fence around parking (see [`crate::barrier`]).
    barrier: Barrier,
}

impl Consumer {
    /// The reading end of `ring` in `segment`, at position 0. Says in the segment
    /// whether we sleep heavily (before we ever sleep).
    pub(crate) fn new(segment: Arc<Segment>, ring: Ring) -> Self {
        let capacity = segment.capacity() as u64;
        let barrier = Barrier::for_this_process();
        segment
            .heavy(ring, Parked::Reader)
            .store(barrier.heavy_word(), Ordering::SeqCst);
        Consumer {
            segment,
            ring,
            capacity,
            read: 0,
            taken: 0,
            write_seen: 0,
            barrier,
        }
    }

    /// Load and check the writer's position: never behind what we saw before, at most
    /// one ring ahead of what we released.
    fn load_write(&mut self) -> Result<(), Corrupt> {
        let write = self
            .segment
            .position(self.ring, Position::Write)
            .load(Ordering::Acquire);
        let high = self.read.wrapping_add(self.capacity);
        self.write_seen = Corrupt::check("write", write, self.write_seen, high)?;
        Ok(())
    }

    #[inline]
    fn available(&self) -> usize {
        self.write_seen.wrapping_sub(self.taken) as usize
    }

    /// Bytes ready to be taken, looking at the writer's position only when the one we
    /// know shows fewer than `wanted`.
    #[inline]
    pub(crate) fn available_for(&mut self, wanted: usize) -> Result<usize, Corrupt> {
        if self.available() < wanted {
            self.load_write()?;
        }
        Ok(self.available())
    }

    /// Everything published that we know of is taken: the next receive has to look at
    /// the writer's position.
    #[inline]
    pub(crate) fn known_empty(&self) -> bool {
        self.available() == 0
    }

    /// Bytes the writer has published past what we have taken (one load, unchecked:
    /// the next [`available_for`](Self::available_for) checks the position). For
    /// lingering (see [`crate::batch`]).
    pub(crate) fn published_ahead(&self) -> u64 {
        self.segment
            .position(self.ring, Position::Write)
            .load(Ordering::Relaxed)
            .wrapping_sub(self.taken)
    }

    /// Bytes of the ring: the most that can ever be available at once.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity as usize
    }

    /// The next four bytes, as a big-endian `u32` (a frame's length prefix), without
    /// taking them. A copy: the peer cannot change it under us.
    ///
    /// # Panics
    ///
    /// If fewer than four bytes are available (a bug in this crate).
    #[inline]
    pub(crate) fn peek_u32(&self) -> u32 {
        self.peek_u32_at(0)
    }

    /// The four bytes `ahead` bytes after the next one, as a big-endian `u32` (the
    /// length prefix of a frame further on), without taking anything. A copy: the
    /// peer cannot change it under us.
    ///
    /// # Panics
    ///
    /// If fewer than `ahead + 4` bytes are available (a bug in this crate).
    #[inline]
    pub(crate) fn peek_u32_at(&self, ahead: usize) -> u32 {
        assert!(
            ahead.saturating_add(4) <= self.available(),
            "peek past the published bytes"
        );
        let mut raw = [0u8; 4];
        self.segment
            .copy_out(self.ring, self.taken + ahead as u64, &mut raw);
        u32::from_be_bytes(raw)
    }

    /// The usual receive in one step: if the next frame (length prefix, payload) is
    /// there whole and its payload has at most `limit` bytes, take it, append the
    /// payload to `dst` (first growing `dst` by at least `chunk` bytes if it has too
    /// little room) and give its length. `Ok(None)`: anything else (the frame is not
    /// there whole yet, or it is larger, or it is a goodbye), with nothing taken.
    ///
    /// # Panics
    ///
    /// If `limit + 4` exceeds the capacity (a bug in this crate).
    #[inline]
    pub(crate) fn take_frame_into(
        &mut self,
        limit: usize,
        dst: &mut BytesMut,
        chunk: usize,
    ) -> Result<Option<usize>, Corrupt> {
        assert!(
            limit + 4 <= self.capacity as usize,
            "frame limit past the ring"
        );
        if self.available() < 4 {
            self.load_write()?;
            if self.available() < 4 {
                return Ok(None);
            }
        }
        let mut prefix = [0u8; 4];
        self.segment.copy_out(self.ring, self.taken, &mut prefix);
        let len = u32::from_be_bytes(prefix) as usize;
        if len > limit {
            return Ok(None);
        }
        if self.available() < 4 + len {
            self.load_write()?;
            if self.available() < 4 + len {
                return Ok(None);
            }
        }
        if dst.capacity() - dst.len() < len {
            dst.reserve(chunk.max(len));
        }
        self.segment.append_out(self.ring, self.taken + 4, dst, len);
        self.taken += 4 + len as u64;
        Ok(Some(len))
    }

    /// Take `len` bytes, appended to `dst`.
    ///
    /// # Panics
    ///
    /// If fewer than `len` bytes are available (a bug in this crate).
    #[inline]
    pub(crate) fn take_into(&mut self, dst: &mut BytesMut, len: usize) {
        assert!(len <= self.available(), "take past the published bytes");
        self.segment.append_out(self.ring, self.taken, dst, len);
        self.taken += len as u64;
    }

    /// Take `len` bytes without copying them.
    ///
    /// # Panics
    ///
    /// If fewer than `len` bytes are available (a bug in this crate).
    #[inline]
    pub(crate) fn skip(&mut self, len: usize) {
        assert!(len <= self.available(), "skip past the published bytes");
        self.taken += len as u64;
    }

    /// Give the room of everything taken back to the writer, and tell whether it is
    /// parked and must be woken.
    #[inline]
    pub(crate) fn release(&mut self) -> bool {
        if self.taken == self.read {
            return false;
        }
        self.read = self.taken;
        announce(
            &self.segment,
            self.ring,
            Position::Read,
            self.read,
            Parked::Writer,
            self.barrier,
        )
    }

    /// Lower our parked flag (after a wait ended without the writer lowering it).
    pub(crate) fn unpark(&self) {
        self.segment
            .parked(self.ring, Parked::Reader)
            .store(0, Ordering::Relaxed);
    }

    /// Get ready to sleep because fewer than `need` bytes are available: raise our
    /// parked flag and look again. `Ok(true)`: still too few, sleep until woken.
    /// `Ok(false)`: they arrived (the flag is lowered again).
    pub(crate) fn park(&mut self, need: usize) -> Result<bool, Corrupt> {
        if !raise_flag(&self.segment, self.ring, Parked::Reader, &mut self.barrier) {
            return Ok(false);
        }
        self.load_write()?;
        if self.available() >= need.max(1) {
            self.unpark();
            return Ok(false);
        }
        Ok(true)
    }

    /// Bytes taken so far.
    #[cfg(test)]
    pub(crate) fn position(&self) -> u64 {
        self.taken
    }

    /// The writer's position moved since we last looked (one load, unchecked: the
    /// next [`available_for`](Self::available_for) or [`park`](Self::park) checks
    /// it). For spinning.
    pub(crate) fn changed(&self) -> bool {
        self.segment
            .position(self.ring, Position::Write)
            .load(Ordering::Relaxed)
            != self.write_seen
    }
}

/// Raise our parked flag (`ours`), then issue the barrier the parking protocol needs
/// before we look at the other side's position again (see [`crate::barrier`]): the
/// first half of each type's `park`. `false`: the barrier failed, the flag is lowered
/// again and we must not sleep on this look.
fn raise_flag(segment: &Segment, ring: Ring, ours: Parked, barrier: &mut Barrier) -> bool {
    let flag = segment.parked(ring, ours);
    flag.store(1, Ordering::SeqCst);
    if barrier.before_sleep(segment.heavy(ring, ours)) {
        return true;
    }
    flag.store(0, Ordering::Relaxed);
    false
}

/// Store our new position `value` (`ours`), then, after the fence the parking protocol
/// needs (see the module docs; none but a compiler fence if the other side sleeps
/// heavily, see [`crate::barrier`]), look at the other side's parked flag (`theirs`):
/// if it is raised, lower it and say the other side must be woken (once: the swap
/// makes only one waker win).
#[inline]
fn announce(
    segment: &Segment,
    ring: Ring,
    ours: Position,
    value: u64,
    theirs: Parked,
    barrier: Barrier,
) -> bool {
    segment.position(ring, ours).store(value, Ordering::Release);
    barrier.announce(segment.heavy(ring, theirs).load(Ordering::Relaxed) == 1);
    let flag = segment.parked(ring, theirs);
    flag.load(Ordering::Relaxed) != 0 && flag.swap(0, Ordering::AcqRel) != 0
}

/// What a waiting side of a ring does while it waits: the part of [`Producer`] and
/// [`Consumer`] that [`wait`](crate::wait)'s shared wait step needs.
pub(crate) trait RingEnd {
    /// The other side's position moved since we last looked (see each type's own
    /// `changed`).
    fn changed(&self) -> bool;
    /// Raise our parked flag and look again for `need` bytes (see each type's own
    /// `park`).
    fn park(&mut self, need: usize) -> Result<bool, Corrupt>;
    /// Lower our parked flag (see each type's own `unpark`).
    fn unpark(&self);
}

impl RingEnd for Producer {
    fn changed(&self) -> bool {
        Producer::changed(self)
    }
    fn park(&mut self, need: usize) -> Result<bool, Corrupt> {
        Producer::park(self, need)
    }
    fn unpark(&self) {
        Producer::unpark(self)
    }
}

impl RingEnd for Consumer {
    fn changed(&self) -> bool {
        Consumer::changed(self)
    }
    fn park(&mut self, need: usize) -> Result<bool, Corrupt> {
        Consumer::park(self, need)
    }
    fn unpark(&self) {
        Consumer::unpark(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rings(capacity: usize) -> (Producer, Consumer, Arc<Segment>) {
        let (fd, created) = Segment::create(capacity).expect("create");
        // The other process's view: a second mapping of the same memfd.
        let opened = Arc::new(Segment::open(&fd).expect("open"));
        (
            Producer::new(Arc::new(created), Ring::FromCreator),
            Consumer::new(opened.clone(), Ring::FromCreator),
            opened,
        )
    }

    /// What a push or a pop did: bytes moved, and whether the other side is to be
    /// woken.
    #[derive(Debug)]
    struct Moved {
        bytes: usize,
        wake: bool,
    }

    /// Stage as much of `bytes` as fits, and publish.
    fn try_push(p: &mut Producer, bytes: &[u8]) -> Result<Moved, Corrupt> {
        let n = p.room_for(bytes.len())?.min(bytes.len());
        p.stage(&bytes[..n]);
        Ok(Moved {
            bytes: n,
            wake: p.publish(),
        })
    }

    /// Take as many bytes as are there and fit in `buf`, and release them.
    fn try_pop(c: &mut Consumer, buf: &mut [u8]) -> Result<Moved, Corrupt> {
        let n = c.available_for(buf.len())?.min(buf.len());
        let mut got = BytesMut::new();
        c.take_into(&mut got, n);
        buf[..n].copy_from_slice(&got);
        Ok(Moved {
            bytes: n,
            wake: c.release(),
        })
    }

    fn pop(c: &mut Consumer, buf: &mut [u8]) -> usize {
        try_pop(c, buf).expect("pop").bytes
    }

    fn push_all(p: &mut Producer, bytes: &[u8]) -> usize {
        try_push(p, bytes).expect("push").bytes
    }

    #[test]
    fn bytes_wrap_around_the_end_intact() {
        let (mut p, mut c, _) = rings(4096);
        let mut sent = Vec::new();
        let mut got = Vec::new();
        for round in 0..20u8 {
            let chunk: Vec<u8> = (0..3000).map(|i| (i as u8) ^ round).collect();
            assert_eq!(push_all(&mut p, &chunk), 3000);
            sent.extend_from_slice(&chunk);
            let mut buf = vec![0; 3000];
            assert_eq!(pop(&mut c, &mut buf), 3000);
            got.extend_from_slice(&buf);
        }
        assert_eq!(sent, got);
        assert_eq!(p.position(), 60_000);
        assert_eq!(c.position(), 60_000);
    }

    #[test]
    fn a_full_ring_takes_nothing_more_until_read() {
        let (mut p, mut c, _) = rings(4096);
        assert_eq!(push_all(&mut p, &[1; 5000]), 4096);
        assert_eq!(push_all(&mut p, &[2; 10]), 0);
        let mut buf = [0; 100];
        assert_eq!(pop(&mut c, &mut buf), 100);
        assert_eq!(push_all(&mut p, &[2; 1000]), 100);
    }

    #[test]
    fn staged_bytes_are_unseen_until_published_and_frames_keep_order() {
        let (mut p, mut c, _) = rings(4096);
        p.stage(b"ab");
        p.stage_frame(*b"\0\0\0\x03", b"cde");
        assert_eq!(p.unpublished(), 9);
        assert_eq!(c.available_for(1).expect("look"), 0, "staged: not visible");
        p.publish();
        assert_eq!(p.unpublished(), 0);
        assert_eq!(c.available_for(1).expect("look"), 9);
        c.skip(2);
        assert_eq!(c.peek_u32(), 3);
        let mut buf = [0; 7];
        assert_eq!(pop(&mut c, &mut buf), 7);
        assert_eq!(&buf, b"\0\0\0\x03cde");
        p.stage(b"dropped");
        p.discard_staged();
        assert!(!p.publish(), "nothing staged: nothing to publish");
        assert_eq!(c.available_for(1).expect("look"), 0);
    }

    /// Each end says in the segment, when it is made, whether it sleeps with
    /// `membarrier`: where the kernel offers it (as here, unless the mode is off), both
    /// ends do, so each announces to the other with no fence.
    #[test]
    fn each_end_says_whether_it_sleeps_heavily() {
        let (_p, _c, segment) = rings(4096);
        let ours = Barrier::for_this_process().heavy_word();
        let reader = segment.heavy(Ring::FromCreator, Parked::Reader);
        let writer = segment.heavy(Ring::FromCreator, Parked::Writer);
        assert_eq!(reader.load(Ordering::SeqCst), ours);
        assert_eq!(writer.load(Ordering::SeqCst), ours);
        use rustix::thread::{membarrier_query, MembarrierQuery};
        let offered = membarrier_query().contains(
            MembarrierQuery::GLOBAL_EXPEDITED | MembarrierQuery::REGISTER_GLOBAL_EXPEDITED,
        );
        if offered && std::env::var_os(crate::MEMBARRIER_ENV).is_none() {
            assert_eq!(ours, 1, "membarrier is offered, so the ends sleep heavily");
        }
        // The other ring's words are its own ends' business: untouched here.
        assert_eq!(
            segment
                .heavy(Ring::FromOpener, Parked::Reader)
                .load(Ordering::SeqCst),
            0
        );
    }

    #[test]
    fn a_parked_reader_is_woken_once() {
        let (mut p, mut c, _) = rings(4096);
        assert!(c.park(1).expect("park"), "empty: the reader sleeps");
        let first = try_push(&mut p, b"x").expect("push");
        assert!(first.wake);
        let second = try_push(&mut p, b"y").expect("push");
        assert!(!second.wake, "the flag was taken by the first wake");
        assert!(!c.park(1).expect("park"), "bytes are there: no sleep");
        assert_eq!(pop(&mut c, &mut [0; 4]), 2);
    }

    #[test]
    fn a_parked_writer_is_woken_when_room_appears() {
        let (mut p, mut c, _) = rings(4096);
        push_all(&mut p, &[0; 4096]);
        assert!(p.park(1).expect("park"), "full: the writer sleeps");
        let popped = try_pop(&mut c, &mut [0; 10]).expect("pop");
        assert!(popped.wake);
        assert!(!p.park(1).expect("park"), "room: no sleep");
    }

    #[test]
    fn a_write_position_beyond_the_ring_is_an_error_not_a_read() {
        let (mut p, mut c, peer) = rings(4096);
        push_all(&mut p, b"hello");
        let write = peer.position(Ring::FromCreator, Position::Write);
        for bad in [4097, u64::MAX, u64::MAX - 3, 1 << 40] {
            write.store(bad, Ordering::SeqCst);
            let err = try_pop(&mut c, &mut [0; 16]).expect_err("corrupt");
            assert_eq!(err.what, "write");
            assert_eq!(err.found, bad);
            assert!(io::Error::from(err)
                .to_string()
                .contains("broke the shared-memory protocol"));
        }
        // A consistent value again: reading goes on from our own position.
        write.store(5, Ordering::SeqCst);
        let mut buf = [0; 16];
        assert_eq!(pop(&mut c, &mut buf), 5);
        assert_eq!(&buf[..5], b"hello");
    }

    #[test]
    fn a_read_position_ahead_of_ours_is_an_error_not_a_write() {
        let (mut p, _c, peer) = rings(4096);
        push_all(&mut p, &[7; 4096]);
        let read = peer.position(Ring::FromCreator, Position::Read);
        for bad in [4097, u64::MAX, 1 << 50] {
            read.store(bad, Ordering::SeqCst);
            let err = try_push(&mut p, b"more").expect_err("corrupt");
            assert_eq!(err.what, "read");
            assert!(p.park(1).is_err());
        }
    }

    #[test]
    fn positions_that_move_backwards_are_errors() {
        let (mut p, mut c, peer) = rings(4096);
        push_all(&mut p, &[1; 20]);
        assert_eq!(pop(&mut c, &mut [0; 10]), 10);
        // The writer's position seen so far is 20: 15 would go back.
        peer.position(Ring::FromCreator, Position::Write)
            .store(15, Ordering::SeqCst);
        let err = try_pop(&mut c, &mut [0; 64]).expect_err("backwards");
        assert_eq!((err.what, err.found, err.low), ("write", 15, 20));
        // The reader's position may not pass the writer's (20), even by one.
        peer.position(Ring::FromCreator, Position::Read)
            .store(21, Ordering::SeqCst);
        let err = p.park(1).expect_err("ahead of the writer");
        assert_eq!((err.what, err.high), ("read", 20));
        assert!(
            Corrupt::check("x", 5, u64::MAX - 1, 10).is_ok(),
            "across the wrap"
        );
        assert!(Corrupt::check("x", u64::MAX - 2, u64::MAX - 1, 10).is_err());
    }

    proptest! {
        #[test]
        fn any_interleaving_of_pushes_and_pops_delivers_the_same_bytes(
            ops in proptest::collection::vec((any::<bool>(), 0usize..10_000), 1..200)
        ) {
            let (mut p, mut c, _) = rings(4096);
            let (mut sent, mut got) = (Vec::new(), Vec::new());
            let mut seq = 0u8;
            for (write, len) in ops {
                if write {
                    let chunk: Vec<u8> = (0..len).map(|_| { seq = seq.wrapping_add(1); seq }).collect();
                    let n = push_all(&mut p, &chunk);
                    sent.extend_from_slice(&chunk[..n]);
                    // What did not fit is not sent: the stream stays a prefix.
                    seq = seq.wrapping_sub((len - n) as u8);
                } else {
                    let mut buf = vec![0; len];
                    let n = pop(&mut c, &mut buf);
                    got.extend_from_slice(&buf[..n]);
                }
            }
            let mut rest = vec![0; 8192];
            let n = pop(&mut c, &mut rest);
            got.extend_from_slice(&rest[..n]);
            prop_assert_eq!(sent, got);
        }

        #[test]
        fn garbage_positions_give_errors_or_bounded_reads_never_more(
            steps in proptest::collection::vec((any::<u64>(), any::<u64>(), 0usize..9000), 1..100)
        ) {
            let (mut p, mut c, peer) = rings(4096);
            for (write, read, len) in steps {
                // The hostile peer scribbles over both positions and both flags.
                peer.position(Ring::FromCreator, Position::Write).store(write, Ordering::SeqCst);
                peer.position(Ring::FromCreator, Position::Read).store(read, Ordering::SeqCst);
                peer.parked(Ring::FromCreator, Parked::Reader).store(write as u32, Ordering::SeqCst);
                let mut buf = vec![0; len];
                if let Ok(popped) = try_pop(&mut c, &mut buf) {
                    prop_assert!(popped.bytes <= len.min(4096));
                }
                if let Ok(pushed) = try_push(&mut p, &buf) {
                    prop_assert!(pushed.bytes <= len.min(4096));
                }
                let _ = c.park(1);
                let _ = p.park(1);
            }
        }
    }
}
