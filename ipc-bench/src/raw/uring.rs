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

use std::io::{self, BufRead, Read};
use std::os::fd::{AsFd, AsRawFd};

use io_uring::{opcode, types, IoUring};

/// The reader's buffer: as the blocking baseline's `BufReader`.
const BUF: usize = 128 * 1024;

/// Set to `1`: the rings are set up with `SINGLE_ISSUER | DEFER_TASKRUN`.
pub(crate) const DEFER_ENV: &str = "IPC_BENCH_URING_DEFER";

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

/// A ring and the buffer its reads fill: the only memory the kernel writes.
struct Ring {
    ring: IoUring,
    buf: Box<[u8]>,
}

/// A buffered reader whose every read is one `io_uring_enter` (submit a `Read`, wait
/// for it).
pub(crate) struct UringRead<T> {
    io: T,
    /// `None` once a failure left a read in flight: the ring and its buffer were
    /// leaked so the kernel can never write into freed memory.
    ring: Option<Ring>,
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
            }),
            pos: 0,
            filled: 0,
        })
    }

    /// Refill `buf` with one `Read` SQE, submitted and waited for in one
    /// `io_uring_enter`; resubmitted when interrupted.
    fn refill(&mut self) -> io::Result<()> {
        let fd = types::Fd(self.io.as_fd().as_raw_fd());
        let Some(ring) = self.ring.as_mut() else {
            return Err(io::Error::other(
                "an earlier io_uring failure left this reader unusable",
            ));
        };
        loop {
            let entry = opcode::Read::new(fd, ring.buf.as_mut_ptr(), BUF as u32).build();
            // SAFETY: the entry points into `ring.buf`, which lives as long as the ring:
            // this function does not return until the read completed, and if it gives
            // up with the read possibly still in flight both are leaked (below), so the
            // kernel never writes into freed memory. `fd` stays open while `self.io`
            // lives, which outlives this call.
            unsafe { ring.ring.submission().push(&entry) }
                .map_err(|_| io::Error::other("the io_uring submission queue is full"))?;
            let waited = loop {
                match ring.ring.submit_and_wait(1) {
                    Ok(_) => {
                        if let Some(cqe) = ring.ring.completion().next() {
                            break Ok(cqe.result());
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(e),
                }
            };
            let result = match waited {
                Ok(result) => result,
                Err(e) => {
                    // The read may still be in flight: never free what it writes into.
                    if let Some(ring) = self.ring.take() {
                        std::mem::forget(ring);
                    }
                    return Err(io::Error::new(
                        e.kind(),
                        format!("io_uring_enter failed: {e}"),
                    ));
                }
            };
            match usize::try_from(result) {
                Ok(n) => {
                    self.pos = 0;
                    self.filled = n;
                    return Ok(());
                }
                Err(_) => {
                    let err = io::Error::from_raw_os_error(-result);
                    if !matches!(
                        err.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                    ) {
                        return Err(err);
                    }
                }
            }
        }
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
