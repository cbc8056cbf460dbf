//! The io_uring floor: the blocking baselines' wiring and framing, each side receiving
//! through its own io_uring instead of a blocking `read`.
//!
//! Per message per side: the frame is written with a plain (blocking) `writev`, as the
//! blocking baseline does, then one `io_uring_enter` submits a `Read` SQE for the reply
//! and waits for its completion. That is two system calls per message per side, as
//! blocking I/O needs, where the epoll floor needs three (`write`, `epoll_wait`,
//! `read`). The question it answers (issue 13, item 2): does a completion-based receive
//! path reach the blocking baseline where readiness-based ones (epoll, tokio) do not?
//!
//! The reads land in a buffer the reader owns (128 KiB, reused, like the baseline's
//! `BufReader`), so the framing reads from it exactly as it reads from a `BufReader`:
//! a short read is followed by another `Read` SQE for the rest of the frame.
//!
//! The ring is set up with no flags (the kernel's defaults: a completion's task work
//! interrupts the waiting task). With [`DEFER_ENV`] set to `1` it is set up with
//! `IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN` (kernel 6.1+): the task
//! work then runs only inside the waiting `io_uring_enter`, the setup a
//! latency-minded io_uring runtime would choose; the experiment says whether it helps.
//!
//! With [`SEND_ENV`] set to `1` the frames are written through the ring too: a frame
//! sent is kept until the next read, which submits a `Write` SQE linked
//! (`IOSQE_IO_LINK`) to the `Read` SQE, both in one `io_uring_enter` — one system call
//! per message per side, half of blocking I/O's; what a channel that sends and receives
//! through io_uring could reach. Round trips only: a frame goes out with the next read.

use std::io::{self, BufRead, IoSlice, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex, PoisonError};

use io_uring::{opcode, squeue, types, IoUring};

/// The reader's buffer: as the blocking baseline's `BufReader`.
const BUF: usize = 128 * 1024;

/// Set to `1`: the rings are set up with `SINGLE_ISSUER | DEFER_TASKRUN`.
pub(crate) const DEFER_ENV: &str = "IPC_BENCH_URING_DEFER";

/// Set to `1`: frames are written through the ring, linked to the next read.
pub(crate) const SEND_ENV: &str = "IPC_BENCH_URING_SEND";

/// Whether [`SEND_ENV`] is set to `1`.
pub(crate) fn send_through_ring() -> bool {
    std::env::var_os(SEND_ENV).is_some_and(|v| v == "1")
}

/// The `user_data` of a `Write` completion (reads carry 0).
const WRITE: u64 = 1;

/// Submission queue entries: one read is in flight at a time.
const ENTRIES: u32 = 4;

/// A ring of `entries` entries, or an error saying why io_uring is not available.
fn setup(entries: u32) -> io::Result<IoUring> {
    let mut builder = IoUring::builder();
    if std::env::var_os(DEFER_ENV).is_some_and(|v| v == "1") {
        builder.setup_single_issuer().setup_defer_taskrun();
    }
    builder.build(entries).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "io_uring_setup failed ({e}): the kernel is older than 5.6 (6.1 with \
                 {DEFER_ENV}=1), io_uring is \
                 turned off (/proc/sys/kernel/io_uring_disabled), or a seccomp filter (a \
                 container's) forbids it; the io_uring floor cannot be measured here"
            ),
        )
    })
}

/// Whether this process can use io_uring at all: `Err` says why not (the floors are
/// then skipped, as Node's rows are without Node).
pub(crate) fn probe() -> Result<(), String> {
    setup(ENTRIES).map(drop).map_err(|e| e.to_string())
}

/// A ring, the buffer its reads fill and the bytes its writes send: the only memory
/// the kernel touches.
struct Ring {
    ring: IoUring,
    buf: Box<[u8]>,
    out: Vec<u8>,
}

/// Where frames sent through the ring wait for the next read ([`SEND_ENV`]).
struct Outbox {
    /// The write end (a duplicate: the reader submits the writes).
    fd: OwnedFd,
    /// Bytes written by [`UringWrite`] and not yet submitted.
    pending: Arc<Mutex<Vec<u8>>>,
}

/// A buffered reader whose every read is one `io_uring_enter` (submit a `Read`, wait
/// for it).
pub(crate) struct UringRead<T> {
    io: T,
    /// `None` once a failure left a read in flight: the ring and its buffer were
    /// leaked so the kernel can never write into freed memory.
    ring: Option<Ring>,
    /// With [`SEND_ENV`]: the frames to write before the next read.
    outbox: Option<Outbox>,
    /// The next unread byte of `buf`.
    pos: usize,
    /// How much of `buf` the last read filled.
    filled: usize,
}

impl<T: AsFd> UringRead<T> {
    /// Set up an io_uring for reading `io` (blocking or not: io_uring waits for the
    /// data itself).
    pub(crate) fn new(io: T) -> io::Result<UringRead<T>> {
        Ok(UringRead {
            io,
            ring: Some(Ring {
                ring: setup(ENTRIES)?,
                buf: vec![0; BUF].into_boxed_slice(),
                out: Vec::new(),
            }),
            outbox: None,
            pos: 0,
            filled: 0,
        })
    }

    /// As [`new`](Self::new), and a writer for `write` whose frames go out through
    /// the ring, each linked to the next read ([`SEND_ENV`]).
    pub(crate) fn with_writer(io: T, write: impl AsFd) -> io::Result<(UringRead<T>, UringWrite)> {
        let mut reader = UringRead::new(io)?;
        let pending = Arc::new(Mutex::new(Vec::new()));
        reader.outbox = Some(Outbox {
            fd: write.as_fd().try_clone_to_owned()?,
            pending: Arc::clone(&pending),
        });
        Ok((reader, UringWrite(pending)))
    }

    /// Refill `buf` with one `Read` SQE (after a linked `Write` of the pending frames
    /// with [`SEND_ENV`]), submitted and waited for in one `io_uring_enter`;
    /// resubmitted when interrupted or cancelled by a short write.
    fn refill(&mut self) -> io::Result<()> {
        let fd = types::Fd(self.io.as_fd().as_raw_fd());
        let Some(ring) = self.ring.as_mut() else {
            return Err(io::Error::other(
                "an earlier io_uring failure left this reader unusable",
            ));
        };
        if let Some(outbox) = &self.outbox {
            let mut pending = outbox
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if ring.out.is_empty() {
                std::mem::swap(&mut ring.out, &mut *pending);
            } else {
                ring.out.extend_from_slice(&pending);
                pending.clear();
            }
        }
        loop {
            let mut in_flight = 0;
            if let (Some(outbox), false) = (&self.outbox, ring.out.is_empty()) {
                let len = u32::try_from(ring.out.len()).unwrap_or(u32::MAX);
                let write =
                    opcode::Write::new(types::Fd(outbox.fd.as_raw_fd()), ring.out.as_ptr(), len)
                        .build()
                        .flags(squeue::Flags::IO_LINK)
                        .user_data(WRITE);
                // SAFETY: the entry points into `ring.out`, which is neither touched nor
                // freed until the write completed (below), or is leaked with the ring if
                // this gives up first. The fd is the outbox's own duplicate, open while
                // `self` lives.
                unsafe { ring.ring.submission().push(&write) }
                    .map_err(|_| io::Error::other("the io_uring submission queue is full"))?;
                in_flight += 1;
            }
            let entry = opcode::Read::new(fd, ring.buf.as_mut_ptr(), BUF as u32).build();
            // SAFETY: the entry points into `ring.buf`, which lives as long as the ring:
            // this function does not return until the read completed, and if it gives
            // up with the read possibly still in flight both are leaked (below), so the
            // kernel never writes into freed memory. `fd` stays open while `self.io`
            // lives, which outlives this call.
            unsafe { ring.ring.submission().push(&entry) }
                .map_err(|_| io::Error::other("the io_uring submission queue is full"))?;
            in_flight += 1;
            let mut read = None;
            let mut wrote = None;
            let waited = loop {
                // Every entry completes (a write that fails or is short cancels the
                // linked read, which completes with ECANCELED): wait for all of them
                // in one call.
                match ring.ring.submit_and_wait(in_flight) {
                    Ok(_) => {
                        for cqe in ring.ring.completion() {
                            in_flight -= 1;
                            match cqe.user_data() {
                                WRITE => wrote = Some(cqe.result()),
                                _ => read = Some(cqe.result()),
                            }
                        }
                        if in_flight == 0 {
                            break Ok(());
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(e),
                }
            };
            if let Err(e) = waited {
                // A read or write may still be in flight: never free its memory.
                if let Some(ring) = self.ring.take() {
                    std::mem::forget(ring);
                }
                return Err(io::Error::new(
                    e.kind(),
                    format!("io_uring_enter failed: {e}"),
                ));
            }
            if let Some(wrote) = wrote {
                // A short write breaks the link (the read is cancelled): the rest goes
                // out with the next attempt.
                match usize::try_from(wrote) {
                    Ok(n) => drop(ring.out.drain(..n.min(ring.out.len()))),
                    Err(_) => {
                        let err = io::Error::from_raw_os_error(-wrote);
                        if !retry(&err) {
                            return Err(err);
                        }
                    }
                }
            }
            let Some(result) = read else { continue };
            match usize::try_from(result) {
                Ok(n) => {
                    self.pos = 0;
                    self.filled = n;
                    return Ok(());
                }
                Err(_) => {
                    let err = io::Error::from_raw_os_error(-result);
                    if !retry(&err) && result != -libc::ECANCELED {
                        return Err(err);
                    }
                }
            }
        }
    }
}

/// Whether a failed read or write is retried (interrupted, or would block).
fn retry(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
    )
}

/// The writing half with [`SEND_ENV`]: frames wait here for the reader's next
/// `io_uring_enter`, which writes them before it reads.
pub(crate) struct UringWrite(Arc<Mutex<Vec<u8>>>);

impl Write for UringWrite {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut pending = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        pending.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut pending = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for buf in bufs {
            pending.extend_from_slice(buf);
        }
        Ok(bufs.iter().map(|b| b.len()).sum())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<T: AsFd> Read for UringRead<T> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<T: AsFd> BufRead for UringRead<T> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos >= self.filled {
            self.refill()?;
        }
        match &self.ring {
            Some(ring) => Ok(&ring.buf[self.pos..self.filled]),
            None => Err(io::Error::other(
                "an earlier io_uring failure left this reader unusable",
            )),
        }
    }

    fn consume(&mut self, amount: usize) {
        self.pos = (self.pos + amount).min(self.filled);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_failed_setup_says_why() {
        // The kernel refuses a ring of 0 entries (EINVAL), as it refuses any ring where
        // io_uring is turned off: the error names the call and the likely causes.
        let Err(err) = setup(0) else {
            panic!("the kernel set up a ring of 0 entries");
        };
        let msg = err.to_string();
        assert!(msg.starts_with("io_uring_setup failed"), "{msg}");
        assert!(msg.contains("io_uring_disabled"), "{msg}");
    }

    #[test]
    fn frames_sent_through_the_ring_go_out_with_the_next_read() {
        use crate::raw::wire::{Conn, Framing};
        let (a, b) = UnixStream::pair().expect("pair");
        let conn = |end: UnixStream| -> Option<Conn> {
            match UringRead::with_writer(end.try_clone().expect("dup"), end) {
                Ok((read, write)) => Some(Conn::buffered(
                    Box::new(read),
                    Box::new(write),
                    Framing::Length,
                )),
                // No io_uring here (seccomp, io_uring_disabled): nothing to test.
                Err(e) => {
                    eprintln!("skipped: {e}");
                    None
                }
            }
        };
        let (Some(mut left), Some(mut right)) = (conn(a), conn(b)) else {
            return;
        };
        let echo = std::thread::spawn(move || {
            let mut buf = Vec::new();
            while right.recv(&mut buf).expect("echo recv") {
                right.send(&buf).expect("echo send");
            }
        });
        let mut buf = Vec::new();
        for size in [2, 64, 70_000, 600_000] {
            let msg: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            left.send(&msg).expect("send");
            assert!(left.recv(&mut buf).expect("recv"), "echo of {size} B");
            assert_eq!(buf, msg, "echo of {size} B");
        }
        drop(left);
        echo.join().expect("echo thread");
    }

    #[test]
    fn reads_what_the_peer_wrote_through_the_ring_until_the_end() {
        let (mut a, b) = UnixStream::pair().expect("pair");
        let mut reader = match UringRead::new(b) {
            Ok(r) => r,
            // No io_uring here (seccomp, io_uring_disabled): nothing to test.
            Err(e) => {
                eprintln!("skipped: {e}");
                return;
            }
        };
        let big: Vec<u8> = (0..1_000_000u32).map(|i| i as u8).collect();
        let writer = {
            let big = big.clone();
            std::thread::spawn(move || a.write_all(&big).expect("write"))
        };
        let mut got = Vec::new();
        reader.read_to_end(&mut got).expect("read to the end");
        writer.join().expect("writer");
        assert_eq!(got, big);
    }
}
