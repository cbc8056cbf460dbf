//! Blocking framed I/O with `std` only: the raw baselines' wire.
//!
//! ```text
//! length framing (socketpair, pipe, FIFO, TCP):   | len: u32 BE | payload |
//! line framing (stdin/stdout):                    | payload | \n |
//! ```
//!
//! The fair floor for a framed protocol: each frame is written with **one `writev`**
//! (prefix and payload as two slices, no copy; a partial write is finished with more
//! writes), and read through a 128 KiB `BufReader`, so a frame that arrived whole costs
//! one `read`. No per-frame allocation on either side once the buffers have grown.
//!
//! Batched (`feed`, then `flush`): frames are copied into a 64 KiB buffer, written with
//! one `write` each time it fills, the floor for streaming many small frames.

use std::io::{self, BufRead, BufReader, IoSlice, Read, Write};

/// How frames are delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// A `u32` big-endian length before each payload.
    Length,
    /// A `\n` after each payload (the payload holds none).
    Line,
}

/// Read buffer size: two 64 KiB frames.
const READ_BUF: usize = 128 * 1024;

/// Batched writes go out when this much is buffered.
const WRITE_BATCH: usize = 64 * 1024;

/// A blocking, framed, bidirectional connection.
pub(crate) struct Conn {
    reader: Box<dyn BufRead + Send>,
    writer: Box<dyn Write + Send>,
    framing: Framing,
    /// Frames fed but not yet written.
    batch: Vec<u8>,
}

impl Conn {
    /// Frame `reader` (through a 128 KiB `BufReader`) and `writer`.
    pub(crate) fn new(
        reader: Box<dyn Read + Send>,
        writer: Box<dyn Write + Send>,
        framing: Framing,
    ) -> Conn {
        Conn::buffered(
            Box::new(BufReader::with_capacity(READ_BUF, reader)),
            writer,
            framing,
        )
    }

    /// Frame `reader`, which buffers itself (the io_uring floor's reader), and
    /// `writer`.
    pub(crate) fn buffered(
        reader: Box<dyn BufRead + Send>,
        writer: Box<dyn Write + Send>,
        framing: Framing,
    ) -> Conn {
        Conn {
            reader,
            writer,
            framing,
            batch: Vec::with_capacity(WRITE_BATCH),
        }
    }

    /// Queue one frame; the queue is written when it holds 64 KiB (and by `flush`).
    pub(crate) fn feed(&mut self, payload: &[u8]) -> io::Result<()> {
        match self.framing {
            Framing::Length => {
                let n = u32::try_from(payload.len())
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
                self.batch.extend_from_slice(&n.to_be_bytes());
                self.batch.extend_from_slice(payload);
            }
            Framing::Line => {
                self.batch.extend_from_slice(payload);
                self.batch.push(b'\n');
            }
        }
        if self.batch.len() >= WRITE_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    /// Write every queued frame.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.writer.write_all(&self.batch)?;
        self.batch.clear();
        Ok(())
    }

    /// Write one frame.
    pub(crate) fn send(&mut self, payload: &[u8]) -> io::Result<()> {
        let len;
        let trailer: &[u8] = b"\n";
        let (first, second) = match self.framing {
            Framing::Length => {
                let n = u32::try_from(payload.len())
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
                len = n.to_be_bytes();
                (&len[..], payload)
            }
            Framing::Line => (payload, trailer),
        };
        write_two(&mut self.writer, first, second)
    }

    /// Read one frame into `buf` (replacing its contents). `Ok(false)` at a clean end
    /// of stream between frames.
    pub(crate) fn recv(&mut self, buf: &mut Vec<u8>) -> io::Result<bool> {
        buf.clear();
        match self.framing {
            Framing::Length => {
                if self.reader.fill_buf()?.is_empty() {
                    return Ok(false);
                }
                let mut head = [0u8; 4];
                self.reader.read_exact(&mut head)?;
                buf.resize(u32::from_be_bytes(head) as usize, 0);
                self.reader.read_exact(buf)?;
                Ok(true)
            }
            Framing::Line => {
                let n = self.reader.read_until(b'\n', buf)?;
                if n == 0 {
                    return Ok(false);
                }
                if buf.pop() != Some(b'\n') {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "stream ended inside a line",
                    ));
                }
                Ok(true)
            }
        }
    }
}

/// A non-blocking fd used as a blocking one by spinning: every read or write that
/// would block is retried at once, after a `sched_yield` (so a peer pinned to the same
/// CPU gets to run; with nothing else runnable it returns at once). The raw spin
/// baselines' transport.
pub(crate) struct Spin<T>(pub(crate) T);

fn spin<R>(mut attempt: impl FnMut() -> io::Result<R>) -> io::Result<R> {
    loop {
        match attempt() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
            other => return other,
        }
    }
}

impl<T: Read> Read for Spin<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        spin(|| self.0.read(buf))
    }
}

impl<T: Write> Write for Spin<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        spin(|| self.0.write(buf))
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        spin(|| self.0.write_vectored(bufs))
    }
    fn flush(&mut self) -> io::Result<()> {
        spin(|| self.0.flush())
    }
}

/// Write `a` then `b` with one `writev` when the kernel takes both, finishing a partial
/// write with plain writes.
fn write_two(w: &mut dyn Write, a: &[u8], b: &[u8]) -> io::Result<()> {
    let total = a.len() + b.len();
    let mut done = loop {
        match w.write_vectored(&[IoSlice::new(a), IoSlice::new(b)]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    };
    if done < a.len() {
        w.write_all(&a[done..])?;
        done = a.len();
    }
    if done < total {
        w.write_all(&b[done - a.len()..])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn frames_round_trip_both_framings() {
        for framing in [Framing::Length, Framing::Line] {
            let (a, b) = UnixStream::pair().expect("pair");
            let mut left = Conn::new(
                Box::new(a.try_clone().expect("clone")),
                Box::new(a),
                framing,
            );
            let mut right = Conn::new(
                Box::new(b.try_clone().expect("clone")),
                Box::new(b),
                framing,
            );
            let mut buf = Vec::new();
            for msg in [&b"\"hi\""[..], &[b'x'; 70_000][..]] {
                let writer = {
                    let msg = msg.to_vec();
                    let mut l = std::mem::replace(
                        &mut left,
                        Conn::new(Box::new(io::empty()), Box::new(io::sink()), framing),
                    );
                    std::thread::spawn(move || {
                        l.send(&msg).expect("send");
                        l
                    })
                };
                assert!(right.recv(&mut buf).expect("recv"));
                assert_eq!(buf, msg);
                left = writer.join().expect("join");
            }
            drop(left);
            assert!(!right.recv(&mut buf).expect("eof"));
        }
    }
}
