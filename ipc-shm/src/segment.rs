//! The shared-memory segment: the only module that touches shared memory, and the only
//! one with `unsafe` code. Everything else goes through its safe methods.
//!
//! A segment is a sealed `memfd` mapped `MAP_SHARED` by both processes:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `ipc-shm\0` |
//! | 8 | 4 | version `1` (native-endian `u32`) |
//! | 12 | 4 | flags, `0` |
//! | 16 | 8 | `capacity`: bytes of each ring's data area (a power of two, 4 KiB..1 GiB) |
//! | 24 | 1000 | zero |
//! | 1024 + 512·r | 512 | control block of ring `r` (below) |
//! | 4096 + capacity·r | capacity | data area of ring `r` |
//!
//! Ring 0 carries bytes from the segment's creator to the process that opened it, ring 1
//! the other way. A control block holds four fields, each on its own 128-byte line:
//! `write` (`u64` at +0, bytes ever written, stored by the writer), `read` (`u64` at
//! +128, bytes ever read, stored by the reader), `reader_parked` (`u32` at +256) and
//! `writer_parked` (`u32` at +384), each parked flag followed by its side's heavy word
//! (`reader_heavy` at +260, `writer_heavy` at +388; see [`crate::barrier`]). Byte `i`
//! of the stream is at data offset `i mod capacity`.
//!
//! What this module guarantees whatever the peer writes into the segment: it never
//! reads or writes outside the mapping, and it never forms a Rust reference to memory
//! the peer may write except as atomics. The header is read once, when the segment is
//! opened, and the segment's size cannot change afterwards (the `memfd` is sealed
//! against shrinking and growing, which [`Segment::open`] checks), so no access can
//! fault.

use std::ffi::c_void;
use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64};

use bytes::BytesMut;
use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};

/// First bytes of every segment.
pub(crate) const MAGIC: [u8; 8] = *b"ipc-shm\0";
/// Layout version this crate writes and accepts.
pub(crate) const VERSION: u32 = 1;
/// Smallest ring capacity.
pub(crate) const MIN_CAPACITY: usize = 4096;
/// Largest ring capacity.
pub(crate) const MAX_CAPACITY: usize = 1 << 30;
/// Largest rings whose pages [`Segment::open`] maps at once (see [`Segment::map`]);
/// larger ones are faulted in as they are first used.
const POPULATE_ON_OPEN_MAX: usize = 64 << 20;
/// Offset of ring 0's control block; ring `r`'s is at `CONTROL_OFFSET + r * CONTROL_SIZE`.
pub(crate) const CONTROL_OFFSET: usize = 1024;
/// Bytes of one ring's control block.
pub(crate) const CONTROL_SIZE: usize = 512;
/// Offset of ring 0's data area; ring `r`'s is at `DATA_OFFSET + r * capacity`.
pub(crate) const DATA_OFFSET: usize = 4096;
/// Offset of `write` in a control block.
pub(crate) const WRITE_AT: usize = 0;
/// Offset of `read` in a control block.
pub(crate) const READ_AT: usize = 128;
/// Offset of `reader_parked` in a control block.
pub(crate) const READER_PARKED_AT: usize = 256;
/// Offset of `writer_parked` in a control block.
pub(crate) const WRITER_PARKED_AT: usize = 384;
/// Offset of `reader_heavy` in a control block (see [`crate::barrier`]).
pub(crate) const READER_HEAVY_AT: usize = 260;
/// Offset of `writer_heavy` in a control block (see [`crate::barrier`]).
pub(crate) const WRITER_HEAVY_AT: usize = 388;

/// The seals a segment must carry before we map one we did not create: its size is
/// fixed for good, so the peer cannot make our accesses fault by truncating it.
const SIZE_SEALS: SealFlag = SealFlag::F_SEAL_SHRINK
    .union(SealFlag::F_SEAL_GROW)
    .union(SealFlag::F_SEAL_SEAL);

/// One of the two rings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ring {
    /// Ring 0: from the creator to the opener.
    FromCreator,
    /// Ring 1: from the opener to the creator.
    FromOpener,
}

impl Ring {
    fn number(self) -> usize {
        match self {
            Ring::FromCreator => 0,
            Ring::FromOpener => 1,
        }
    }
}

/// The `u64` positions of a ring's control block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Position {
    /// Bytes ever written (stored by the writer).
    Write,
    /// Bytes ever read (stored by the reader).
    Read,
}

/// The `u32` flags of a ring's control block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parked {
    /// The reader is asleep (or about to be) and wants a wake-up when bytes arrive.
    Reader,
    /// The writer is asleep (or about to be) and wants a wake-up when room appears.
    Writer,
}

/// Total bytes of a segment whose rings hold `capacity` bytes each.
pub(crate) fn segment_len(capacity: usize) -> usize {
    DATA_OFFSET + 2 * capacity
}

/// Why a segment offered by the peer was refused.
fn refused(why: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the shared-memory segment offered by the peer is unusable: {why}"),
    )
}

/// A mapped segment. It stays mapped until dropped; share it with `Arc`.
#[derive(Debug)]
pub(crate) struct Segment {
    base: NonNull<u8>,
    len: usize,
    capacity: usize,
}

// SAFETY: `Segment` owns a shared mapping and hands out only atomics (which are `Sync`)
// and copies through raw pointers; no state is tied to the creating thread.
unsafe impl Send for Segment {}
// SAFETY: as for `Send`: all shared access goes through atomics or raw-pointer copies,
// whose callers (the rings) guarantee one writer per byte range.
unsafe impl Sync for Segment {}

impl Segment {
    /// Create a fresh segment with two rings of `capacity` bytes (a power of two between
    /// [`MIN_CAPACITY`] and [`MAX_CAPACITY`]): a sealed, zero-filled, close-on-exec
    /// `memfd`, and our mapping of it.
    pub(crate) fn create(capacity: usize) -> io::Result<(OwnedFd, Segment)> {
        if !capacity.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a ring of {capacity} bytes: the capacity must be a power of two from \
                     {MIN_CAPACITY} to {MAX_CAPACITY} bytes"
                ),
            ));
        }
        let len = segment_len(capacity);
        let fd = memfd_create(
            c"ipc-shm",
            MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
        )?;
        nix::unistd::ftruncate(&fd, len as i64)?;
        fcntl(&fd, FcntlArg::F_ADD_SEALS(SIZE_SEALS))?;
        let segment = Segment::map(&fd, len, capacity, true)?;
        // SAFETY: the header (bytes 0..24) lies inside the mapping of `len` > 4096 bytes,
        // and nobody else has the fd yet, so nothing writes it concurrently.
        unsafe {
            let base = segment.base.as_ptr();
            std::ptr::copy_nonoverlapping(MAGIC.as_ptr(), base, MAGIC.len());
            std::ptr::write_unaligned(base.add(8).cast::<u32>(), VERSION);
            std::ptr::write_unaligned(base.add(12).cast::<u32>(), 0);
            std::ptr::write_unaligned(base.add(16).cast::<u64>(), capacity as u64);
        }
        Ok((fd, segment))
    }

    /// Map a segment the peer created, after checking everything our accesses rely on:
    /// the size seals, the file size, the magic, the version and the capacity. The
    /// header is read once, here.
    pub(crate) fn open(fd: &OwnedFd) -> io::Result<Segment> {
        let seals = fcntl(fd, FcntlArg::F_GET_SEALS).map_err(|e| {
            refused(format!(
                "it is not a sealable memfd ({e}); the peer is not an ipc-shm peer"
            ))
        })?;
        let seals = SealFlag::from_bits_truncate(seals);
        if !seals.contains(SIZE_SEALS) {
            return Err(refused(
                "its size is not sealed (F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_SEAL): the peer \
                 could truncate it under us",
            ));
        }
        let size = nix::sys::stat::fstat(fd)?.st_size;
        let size = usize::try_from(size).map_err(|_| refused(format!("size {size}")))?;
        let mut header = [0u8; 24];
        if size < DATA_OFFSET {
            return Err(refused(format!("it has {size} bytes, less than a header")));
        }
        nix::sys::uio::pread(fd, &mut header, 0)?;
        if header[..8] != MAGIC {
            return Err(refused(format!(
                "it starts with {:?}, not the ipc-shm magic",
                String::from_utf8_lossy(&header[..8])
            )));
        }
        let version = u32::from_ne_bytes([header[8], header[9], header[10], header[11]]);
        if version != VERSION {
            return Err(refused(format!(
                "its layout version is {version}; this build speaks version {VERSION}: use \
                 the same ipc-shm version on both sides"
            )));
        }
        let mut raw = [0u8; 8];
        raw.copy_from_slice(&header[16..24]);
        let capacity = u64::from_ne_bytes(raw);
        let capacity = usize::try_from(capacity)
            .ok()
            .filter(|c| c.is_power_of_two() && (MIN_CAPACITY..=MAX_CAPACITY).contains(c))
            .ok_or_else(|| refused(format!("its ring capacity {capacity} is out of range")))?;
        if size != segment_len(capacity) {
            return Err(refused(format!(
                "it has {size} bytes; rings of {capacity} bytes need {}",
                segment_len(capacity)
            )));
        }
        // The creator allocated the pages (it maps with `MAP_POPULATE`): populating
        // our mapping too only fills our page tables. Up to a bound, so that a peer
        // offering huge rings it never allocated cannot make us allocate them at once.
        Segment::map(fd, size, capacity, capacity <= POPULATE_ON_OPEN_MAX)
    }

    /// Map `len` bytes of `fd`; with `populate`, every page is allocated and mapped now
    /// (`MAP_POPULATE`), so the first pass of the write position through a ring takes
    /// no page fault per page (one every 4 KiB in both processes otherwise).
    fn map(fd: &OwnedFd, len: usize, capacity: usize, populate: bool) -> io::Result<Segment> {
        let length = NonZeroUsize::new(len).ok_or_else(|| refused("empty"))?;
        let flags = if populate {
            MapFlags::MAP_SHARED | MapFlags::MAP_POPULATE
        } else {
            MapFlags::MAP_SHARED
        };
        // SAFETY: a fresh shared mapping of a file we hold, at an address the kernel
        // chooses: it aliases no Rust object. Its size is sealed (checked by `open`, set
        // by `create`), so every byte of `len` stays backed for the mapping's life.
        let base = unsafe {
            mmap(
                None,
                length,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                flags,
                fd.as_fd(),
                0,
            )?
        };
        Ok(Segment {
            base: base.cast::<u8>(),
            len,
            capacity,
        })
    }

    /// Bytes in each ring's data area.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    fn control(&self, ring: Ring, offset: usize) -> *mut u8 {
        let at = CONTROL_OFFSET + ring.number() * CONTROL_SIZE + offset;
        debug_assert!(at + 8 <= DATA_OFFSET);
        // SAFETY: `at` < DATA_OFFSET <= len: inside the mapping.
        unsafe { self.base.as_ptr().add(at) }
    }

    /// A position of a ring's control block, as an atomic.
    pub(crate) fn position(&self, ring: Ring, which: Position) -> &AtomicU64 {
        let offset = match which {
            Position::Write => WRITE_AT,
            Position::Read => READ_AT,
        };
        let ptr = self.control(ring, offset).cast::<u64>();
        // SAFETY: 8 bytes inside the mapping (see `control`), 8-aligned (the mapping is
        // page-aligned and every offset is a multiple of 128), valid for the lifetime of
        // `&self`. Both processes only ever access it atomically, so an `AtomicU64`
        // view is sound even though the peer writes it.
        unsafe { AtomicU64::from_ptr(ptr) }
    }

    /// A parked flag of a ring's control block, as an atomic.
    pub(crate) fn parked(&self, ring: Ring, which: Parked) -> &AtomicU32 {
        self.word(
            ring,
            match which {
                Parked::Reader => READER_PARKED_AT,
                Parked::Writer => WRITER_PARKED_AT,
            },
        )
    }

    /// A side's heavy word of a ring's control block (1: that side sleeps with
    /// `membarrier`, see [`crate::barrier`]), as an atomic.
    pub(crate) fn heavy(&self, ring: Ring, which: Parked) -> &AtomicU32 {
        self.word(
            ring,
            match which {
                Parked::Reader => READER_HEAVY_AT,
                Parked::Writer => WRITER_HEAVY_AT,
            },
        )
    }

    /// The `u32` at `offset` (a multiple of 4) of a ring's control block, as an atomic.
    fn word(&self, ring: Ring, offset: usize) -> &AtomicU32 {
        debug_assert_eq!(offset % 4, 0);
        let ptr = self.control(ring, offset).cast::<u32>();
        // SAFETY: as for `position`: 4 bytes inside the mapping, 4-aligned (the mapping
        // is page-aligned, the control blocks start at multiples of 512 and every u32
        // field's offset is a multiple of 4), accessed only atomically by both processes.
        unsafe { AtomicU32::from_ptr(ptr) }
    }

    /// The data area of `ring` as (start, length): `capacity` bytes inside the mapping.
    #[inline]
    fn data(&self, ring: Ring) -> *mut u8 {
        let at = DATA_OFFSET + ring.number() * self.capacity;
        debug_assert!(at + self.capacity <= self.len);
        // SAFETY: `at + capacity <= len` by the layout (`len == segment_len(capacity)`).
        unsafe { self.base.as_ptr().add(at) }
    }

    /// The (at most two) in-bounds pieces of `len` bytes starting at stream position
    /// `at`: `(offset, length)` pairs inside a data area.
    ///
    /// # Panics
    ///
    /// If `len` exceeds the capacity: the rings never ask for that (it would be a bug in
    /// this crate, never something the peer can cause).
    fn pieces(&self, at: u64, len: usize) -> [(usize, usize); 2] {
        assert!(len <= self.capacity, "ring access of {len} bytes");
        let offset = (at & (self.capacity as u64 - 1)) as usize;
        let first = len.min(self.capacity - offset);
        [(offset, first), (0, len - first)]
    }

    /// Copy `len` bytes of `ring`'s stream, from position `at`, to `out`.
    ///
    /// # Safety
    ///
    /// `out` must be valid for writes of `len` bytes and must not lie in the mapping.
    #[inline]
    unsafe fn copy_out_raw(&self, ring: Ring, at: u64, out: *mut u8, len: usize) {
        let data = self.data(ring);
        let offset = (at & (self.capacity as u64 - 1)) as usize;
        if offset + len <= self.capacity {
            // SAFETY: as below, for the one piece that does not wrap (checked above).
            unsafe { std::ptr::copy_nonoverlapping(data.add(offset), out, len) };
            return;
        }
        let mut done = 0;
        for (offset, n) in self.pieces(at, len) {
            // SAFETY: `offset + n <= capacity` (from `pieces`), so the source lies in
            // the data area inside the mapping; the destination is valid for `len`
            // bytes and outside the mapping (the caller's promise), so they cannot
            // overlap. The bytes are copied through raw pointers, never referenced: if
            // a broken peer writes them concurrently we copy garbage, and every
            // decision is made on our copy, not on the shared bytes.
            unsafe { std::ptr::copy_nonoverlapping(data.add(offset), out.add(done), n) };
            done += n;
        }
    }

    /// Copy `dst.len()` bytes of `ring`'s stream, from position `at`, into `dst`.
    ///
    /// # Panics
    ///
    /// If `dst` is longer than the capacity (a bug in this crate, never something the
    /// peer can cause).
    #[inline]
    pub(crate) fn copy_out(&self, ring: Ring, at: u64, dst: &mut [u8]) {
        // SAFETY: `dst` is our own memory, valid for its length, which no mapping
        // overlaps (a `&mut [u8]` is never a view of the shared mapping: this module
        // hands none out).
        unsafe { self.copy_out_raw(ring, at, dst.as_mut_ptr(), dst.len()) }
    }

    /// Append `len` bytes of `ring`'s stream, from position `at`, to `dst`.
    ///
    /// # Panics
    ///
    /// If `len` exceeds the capacity (a bug in this crate, never something the peer can
    /// cause).
    #[inline]
    pub(crate) fn append_out(&self, ring: Ring, at: u64, dst: &mut BytesMut, len: usize) {
        dst.reserve(len);
        let spare = dst.spare_capacity_mut();
        assert!(spare.len() >= len, "reserve left too little room");
        // SAFETY: the spare capacity of `dst` is our own heap memory, valid for writes
        // of `len` bytes (asserted), outside the mapping.
        unsafe { self.copy_out_raw(ring, at, spare.as_mut_ptr().cast::<u8>(), len) };
        // SAFETY: the `len` bytes after the initialised part were just written, and lie
        // within the capacity.
        unsafe { dst.set_len(dst.len() + len) };
    }

    /// Copy `src` into `ring`'s stream at position `at`.
    #[inline]
    pub(crate) fn copy_in(&self, ring: Ring, at: u64, src: &[u8]) {
        let data = self.data(ring);
        let offset = (at & (self.capacity as u64 - 1)) as usize;
        if offset + src.len() <= self.capacity {
            // SAFETY: as below, for the one piece that does not wrap (checked above).
            unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), data.add(offset), src.len()) };
            return;
        }
        let mut done = 0;
        for (offset, len) in self.pieces(at, src.len()) {
            // SAFETY: as in `copy_out_raw`, the destination lies in the data area inside
            // the mapping and cannot overlap `src`. The protocol gives these bytes to us
            // (the ring's only writer) until we publish them; a broken peer touching them
            // only corrupts what it reads.
            unsafe { std::ptr::copy_nonoverlapping(src.as_ptr().add(done), data.add(offset), len) };
            done += len;
        }
    }

    /// Copy a frame (its length prefix, then its payload) into `ring`'s stream at
    /// position `at`: [`copy_in`](Self::copy_in) of the two, in one step when they do
    /// not wrap around the end of the ring (the usual case: one fixed-size store and
    /// one copy).
    #[inline]
    pub(crate) fn copy_in_frame(&self, ring: Ring, at: u64, prefix: [u8; 4], payload: &[u8]) {
        let offset = (at & (self.capacity as u64 - 1)) as usize;
        if offset + 4 + payload.len() > self.capacity {
            self.copy_in(ring, at, &prefix);
            self.copy_in(ring, at + 4, payload);
            return;
        }
        let data = self.data(ring);
        // SAFETY: `offset + 4 + payload.len() <= capacity` (checked above): the
        // destination lies in the data area inside the mapping, and cannot overlap
        // `payload` or `prefix`, our own memory. As in `copy_in`, these bytes are ours
        // until we publish them.
        unsafe {
            let out = data.add(offset);
            std::ptr::write_unaligned(out.cast::<[u8; 4]>(), prefix);
            std::ptr::copy_nonoverlapping(payload.as_ptr(), out.add(4), payload.len());
        }
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, with its length; every borrow of it (the
        // atomics returned by `position`/`parked`) is tied to `&self` and has ended.
        let result = unsafe { munmap(self.base.cast::<c_void>(), self.len) };
        if let Err(e) = result {
            tracing::warn!("munmap of an ipc-shm segment failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;
    use std::sync::atomic::Ordering;

    #[test]
    fn a_created_segment_opens_and_both_mappings_share_bytes() {
        let (fd, a) = Segment::create(4096).expect("create");
        let b = Segment::open(&fd).expect("open");
        assert_eq!(b.capacity(), 4096);
        a.position(Ring::FromOpener, Position::Write)
            .store(77, Ordering::SeqCst);
        assert_eq!(
            b.position(Ring::FromOpener, Position::Write)
                .load(Ordering::SeqCst),
            77
        );
        a.copy_in(Ring::FromCreator, 4090, b"wrapping!");
        let mut got = [0u8; 9];
        b.copy_out(Ring::FromCreator, 4090, &mut got);
        assert_eq!(&got, b"wrapping!");
        let mut appended = BytesMut::from(&b">"[..]);
        b.append_out(Ring::FromCreator, 4090, &mut appended, 9);
        assert_eq!(&appended[..], b">wrapping!");
        a.copy_in_frame(Ring::FromOpener, 4094, *b"\0\0\0\x03", b"abc");
        let mut got = [0u8; 7];
        b.copy_out(Ring::FromOpener, 4094, &mut got);
        assert_eq!(&got, b"\0\0\0\x03abc");
        a.copy_in_frame(Ring::FromOpener, 100, *b"\0\0\0\x03", b"xyz");
        b.copy_out(Ring::FromOpener, 100, &mut got);
        assert_eq!(&got, b"\0\0\0\x03xyz");
        let mut got = [0u8; 9];
        b.copy_out(Ring::FromCreator, 4090, &mut got);
        assert_eq!(&got, b"wrapping!");
    }

    #[test]
    fn bad_capacities_are_refused() {
        for capacity in [0, 100, 4095, 6000, MAX_CAPACITY * 2] {
            assert!(Segment::create(capacity).is_err(), "{capacity}");
        }
    }

    fn memfd_with(len: usize, seal: bool, header: &[u8]) -> OwnedFd {
        let fd = memfd_create(c"test", MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)
            .expect("memfd");
        nix::unistd::ftruncate(&fd, len as i64).expect("ftruncate");
        let file = std::fs::File::from(fd.try_clone().expect("dup"));
        file.write_all_at(header, 0).expect("header");
        if seal {
            fcntl(&fd, FcntlArg::F_ADD_SEALS(SIZE_SEALS)).expect("seal");
        }
        fd
    }

    fn header(magic: &[u8; 8], version: u32, capacity: u64) -> Vec<u8> {
        let mut h = magic.to_vec();
        h.extend_from_slice(&version.to_ne_bytes());
        h.extend_from_slice(&0u32.to_ne_bytes());
        h.extend_from_slice(&capacity.to_ne_bytes());
        h
    }

    #[test]
    fn a_segment_that_is_not_sealed_or_not_ours_is_refused() {
        let good = header(&MAGIC, VERSION, 4096);
        let cases = [
            (memfd_with(segment_len(4096), false, &good), "not sealed"),
            (
                memfd_with(segment_len(4096), true, &header(b"garbage!", 1, 4096)),
                "magic",
            ),
            (
                memfd_with(segment_len(4096), true, &header(&MAGIC, 9, 4096)),
                "version is 9",
            ),
            (
                memfd_with(segment_len(4096), true, &header(&MAGIC, VERSION, 5000)),
                "out of range",
            ),
            (memfd_with(segment_len(8192), true, &good), "need"),
            (memfd_with(100, true, &good), "less than a header"),
        ];
        for (fd, expected) in cases {
            let err = Segment::open(&fd).expect_err(expected).to_string();
            assert!(err.contains(expected), "{expected}: {err}");
        }
        let plain = std::fs::File::open("/proc/self/exe").expect("a regular file");
        let err = Segment::open(&OwnedFd::from(plain)).expect_err("not a memfd");
        assert!(err.to_string().contains("not a sealable memfd"), "{err}");
        let fine = memfd_with(segment_len(4096), true, &good);
        assert!(Segment::open(&fine).is_ok());
    }
}
