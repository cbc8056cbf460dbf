//! The tokio floor: the smallest tokio program doing the blocking baseline's round
//! trip — what any channel built on tokio pays before its own code runs.
//!
//! Each side builds a `current_thread` runtime with every driver enabled (I/O and
//! time: a channel needs timers; [`IO_ONLY_ENV`] set to `1` in the parent's
//! environment, which the child inherits, enables the I/O driver only, to measure the
//! time driver's share) and turns the baseline's ends into tokio's types:
//! `tokio::net::UnixStream`, `tokio::net::TcpStream` (`TCP_NODELAY`, as the baseline),
//! or `tokio::net::unix::pipe` for the pipe pair. The parent `write_all`s one frame (a
//! `u32` big-endian length and the payload, laid out once before the loop), then
//! `read_exact`s the echo's length and payload into a reused buffer; the child reads a
//! frame into a reused buffer and `write_all`s it back as it came. Reads go through a
//! 128 KiB `tokio::io::BufReader` like the blocking baseline's, so a whole frame costs
//! one `read`, and tokio clears readiness after a short read itself (no `EAGAIN` read).
//! No framing library, no allocation per message. Round trips only.
//!
//! `raw-socketpair-tokio-fd` is the same program without `tokio::net::UnixStream`:
//! that type registers the socket for read *and* write readiness, and a Unix socket
//! signals write room (an `EPOLLOUT` edge) each time the peer reads, so each side's
//! `epoll_wait` returns twice per message (4 per round trip where the epoll floor
//! needs 2; `strace -f -c`). The `-fd` floor registers the socket with an `AsyncFd`
//! for read readiness only ([`ReadInterest`]) and writes straight to the non-blocking
//! fd, registering a duplicate for write readiness only while a write would block
//! ([`DirectWrite`]) — as `ipc-uds` does. It is the floor for any channel built on
//! tokio that knows this trick.
//!
//! [`SPIN_ENV`] set to `1` makes every tokio floor's reads spin ([`SpinRead`]) as the
//! toolkit's low-latency mode does: the floor of a spinning tokio channel, to compare
//! with the raw spin floors (`raw-socketpair-spin`, `raw-pipe-spin`) and with
//! `uds-lowlat` / `pipe-lowlat` in one run.

use std::time::Instant;

use std::fs::File;
use std::future::Future;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::pin::Pin;
use std::task::{ready, Context as TaskContext, Poll};

use anyhow::{anyhow, Context, Result};
use tokio::io::unix::AsyncFd;
use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, Interest,
    ReadBuf,
};
use tokio::net::unix::pipe;

use super::Ends;
use crate::roles::Job;
use crate::stats::{self, Measurement};
use crate::workload::{payload, Cell, Workload};

/// Set to `1` to build the tokio floor's runtimes with the I/O driver only.
pub(crate) const IO_ONLY_ENV: &str = "IPC_BENCH_TOKIO_IO_ONLY";

/// Set to `1` to make the tokio floors' reads spin as the toolkit's low-latency mode
/// does, without its bound ([`SpinRead`]): the floor of a tokio channel against the
/// raw spin floors (`raw-*-spin`).
pub(crate) const SPIN_ENV: &str = "IPC_BENCH_TOKIO_SPIN";

/// Read buffer size, as the blocking baseline's (`wire::Conn`).
const READ_BUF: usize = 128 * 1024;

/// The length prefix.
const HEAD: usize = 4;

/// Whether [`SPIN_ENV`] asks for spinning reads.
pub(crate) fn spin() -> bool {
    std::env::var(SPIN_ENV).is_ok_and(|v| v == "1")
}

/// Whether [`IO_ONLY_ENV`] asks for the I/O driver only.
pub(crate) fn io_only() -> bool {
    std::env::var(IO_ONLY_ENV).is_ok_and(|v| v == "1")
}

/// The runtime of either side: `current_thread`, every driver unless [`io_only`].
fn runtime() -> Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    if io_only() {
        builder.enable_io();
    } else {
        builder.enable_all();
    }
    builder
        .build()
        .context("building the tokio floor's runtime")
}

/// How a tokio floor registers its ends with tokio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Registration {
    /// tokio's own types (`tokio::net::UnixStream`, `TcpStream`, `unix::pipe`).
    Net,
    /// An `AsyncFd` with read interest only; writes straight to the fd.
    ReadInterest,
}

/// The ends as tokio types (inside the runtime: registration needs its I/O driver).
enum TokioEnds {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream),
    Pipe(pipe::Receiver, pipe::Sender),
    Fd(ReadInterest<File>, DirectWrite<File>),
}

impl TokioEnds {
    fn new(ends: Ends, registration: Registration) -> Result<TokioEnds> {
        if registration == Registration::ReadInterest {
            // `File`: plain `read`/`write` on any fd (a socket here).
            let (read, write): (OwnedFd, OwnedFd) = match ends {
                Ends::Unix(sock) => (sock.try_clone().context("dup")?.into(), sock.into()),
                Ends::Tcp(stream) => (stream.try_clone().context("dup")?.into(), stream.into()),
                Ends::Files { read, write } => (read.into(), write.into()),
            };
            super::set_nonblocking(&read)?;
            super::set_nonblocking(&write)?;
            return Ok(TokioEnds::Fd(
                ReadInterest::new(File::from(read)).context("registering the read end")?,
                DirectWrite::new(File::from(write)),
            ));
        }
        Ok(match ends {
            Ends::Unix(sock) => {
                sock.set_nonblocking(true).context("set_nonblocking")?;
                TokioEnds::Unix(tokio::net::UnixStream::from_std(sock).context("registering")?)
            }
            Ends::Tcp(stream) => {
                stream.set_nonblocking(true).context("set_nonblocking")?;
                TokioEnds::Tcp(tokio::net::TcpStream::from_std(stream).context("registering")?)
            }
            Ends::Files { read, write } => TokioEnds::Pipe(
                pipe::Receiver::from_file(read).context("registering the read pipe")?,
                pipe::Sender::from_file(write).context("registering the write pipe")?,
            ),
        })
    }
}

/// Call `$body` with `$r` and `$w`, the read and write halves of `$ends` (borrowed
/// halves for sockets: no `Arc`, no lock).
macro_rules! with_halves {
    ($ends:expr, |$r:ident, $w:ident| $body:expr) => {
        match $ends {
            TokioEnds::Unix(mut s) => {
                let ($r, $w) = s.split();
                $body.await
            }
            TokioEnds::Tcp(mut s) => {
                let ($r, $w) = s.split();
                $body.await
            }
            TokioEnds::Pipe($r, $w) => $body.await,
            TokioEnds::Fd($r, $w) => $body.await,
        }
    };
}

/// The parent: time `cell`'s round trips (an echoing child) over `ends`; its reads spin
/// when `spin_reads` (or [`SPIN_ENV`] says so).
pub(crate) fn round_trips(
    ends: Ends,
    registration: Registration,
    spin_reads: bool,
    cell: &Cell,
) -> Result<Measurement> {
    if !matches!(cell.workload, Workload::RoundTrip { .. }) {
        return Err(anyhow!("the tokio floor measures round trips only"));
    }
    runtime()?.block_on(async {
        let ends = TokioEnds::new(ends, registration)?;
        with_halves!(ends, |r, w| async {
            if spin_reads || spin() {
                parent_loop(SpinRead(r), w, cell).await
            } else {
                parent_loop(r, w, cell).await
            }
        })
    })
}

async fn parent_loop<R, W>(read: R, mut write: W, cell: &Cell) -> Result<Measurement>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let msg = payload(cell.size);
    let len = u32::try_from(msg.len()).context("the payload is too large for a u32 length")?;
    let mut frame = Vec::with_capacity(HEAD + msg.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&msg);
    let mut read = BufReader::with_capacity(READ_BUF, read);
    let mut head = [0u8; HEAD];
    let mut echo = vec![0u8; msg.len()];
    let mut h = stats::histogram()?;
    for i in 0..cell.warmup + cell.count {
        let start = Instant::now();
        write.write_all(&frame).await.context("sending")?;
        read.read_exact(&mut head).await.context("receiving")?;
        if u32::from_be_bytes(head) != len {
            return Err(anyhow!("the raw child answered with other bytes"));
        }
        read.read_exact(&mut echo).await.context("receiving")?;
        let took = start.elapsed();
        if i >= cell.warmup {
            stats::record(&mut h, took)?;
        }
    }
    Ok(Measurement::Latency(h))
}

/// The child: echo every frame until the parent closes (`job` must be an echo); its
/// reads spin when `spin_reads` (or [`SPIN_ENV`] says so).
pub(crate) fn serve(
    ends: Ends,
    registration: Registration,
    spin_reads: bool,
    job: &Job,
) -> Result<()> {
    if *job != Job::Echo {
        return Err(anyhow!(
            "the tokio floor measures round trips only: job {job}"
        ));
    }
    runtime()?.block_on(async {
        let ends = TokioEnds::new(ends, registration)?;
        with_halves!(ends, |r, w| async {
            if spin_reads || spin() {
                echo_loop(SpinRead(r), w).await
            } else {
                echo_loop(r, w).await
            }
        })
    })
}

async fn echo_loop<R, W>(read: R, mut write: W) -> Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut read = BufReader::with_capacity(READ_BUF, read);
    let mut frame = Vec::new();
    // A clean end of stream between frames: the parent is done.
    while !read.fill_buf().await.context("receiving")?.is_empty() {
        frame.resize(HEAD, 0);
        read.read_exact(&mut frame).await.context("receiving")?;
        let len = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
        frame.resize(HEAD + len, 0);
        read.read_exact(&mut frame[HEAD..])
            .await
            .context("receiving")?;
        write.write_all(&frame).await.context("echoing")?;
    }
    Ok(())
}

/// A reader that, when nothing is there, lets a peer on this CPU run
/// (`sched_yield`) and has the runtime poll the reactor without sleeping and poll the
/// task again (`tokio::task::yield_now`), as `ipc_core::spin` does per look, but with
/// no bound: it never parks.
struct SpinRead<R>(R);

impl<R: AsyncRead + Unpin> AsyncRead for SpinRead<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.0).poll_read(cx, buf) {
            Poll::Pending => {
                std::thread::yield_now();
                let _ = std::pin::pin!(tokio::task::yield_now()).poll(cx);
                Poll::Pending
            }
            ready => ready,
        }
    }
}

/// Register `io`, an fd we own, with the reactor for `interest` only.
fn register<T: AsRawFd>(io: T, interest: Interest) -> io::Result<AsyncFd<T>> {
    // SAFETY: the `AsyncFd` owns `io`, so the fd stays open, and is the same file,
    // until the registration is dropped.
    unsafe { AsyncFd::register_with_interest(io, interest) }.map_err(|e| e.into_parts().1)
}

/// A non-blocking fd registered with tokio for read readiness only. A read that fills
/// less than the buffer drained the fd, so readiness is cleared without a read that
/// would fail with `EAGAIN` (as tokio's own types do).
struct ReadInterest<T: AsRawFd> {
    io: AsyncFd<T>,
}

impl<T: AsRawFd> ReadInterest<T> {
    fn new(io: T) -> io::Result<ReadInterest<T>> {
        Ok(ReadInterest {
            io: register(io, Interest::READABLE)?,
        })
    }
}

impl<T: AsRawFd> AsyncRead for ReadInterest<T>
where
    for<'a> &'a T: Read,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.io.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            let len = unfilled.len();
            match guard.try_io(|io| io.get_ref().read(unfilled)) {
                Ok(Ok(n)) => {
                    if 0 < n && n < len {
                        guard.clear_ready();
                    }
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                // `EAGAIN`: `try_io` cleared the readiness; wait for the next event.
                Err(_would_block) => {}
            }
        }
    }
}

/// A non-blocking fd written to directly; only while a write would block is a
/// duplicate registered with tokio for write readiness (dropped, so deregistered,
/// once a write succeeds): no `EPOLLOUT` wake-ups otherwise.
struct DirectWrite<T> {
    io: T,
    waiting: Option<AsyncFd<OwnedFd>>,
}

impl<T> DirectWrite<T> {
    fn new(io: T) -> DirectWrite<T> {
        DirectWrite { io, waiting: None }
    }
}

impl<T: AsFd + Unpin> AsyncWrite for DirectWrite<T>
where
    for<'a> &'a T: Write,
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            if let Some(waiting) = &this.waiting {
                let mut guard = ready!(waiting.poll_write_ready(cx))?;
                match (&this.io).write(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        guard.clear_ready();
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    done => {
                        drop(guard);
                        this.waiting = None;
                        return Poll::Ready(done);
                    }
                }
            }
            match (&this.io).write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let dup = this.io.as_fd().try_clone_to_owned()?;
                    this.waiting = Some(register(dup, Interest::WRITABLE)?);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                done => return Poll::Ready(done),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    fn cell(size: usize) -> Cell {
        Cell {
            workload: Workload::RoundTrip { pinned: false },
            size,
            warmup: 2,
            count: 20,
        }
    }

    #[test]
    fn round_trips_against_an_echo_over_a_socketpair_and_a_pipe_pair_either_registration() {
        // 64 B, and a frame larger than a pipe's 64 KiB buffer (partial writes).
        for (size, reg) in [64, 70_000].into_iter().flat_map(|size| {
            [
                (size, Registration::Net),
                (size, Registration::ReadInterest),
            ]
        }) {
            let (ours, theirs) = UnixStream::pair().expect("socketpair");
            let echo =
                std::thread::spawn(move || serve(Ends::Unix(theirs), reg, false, &Job::Echo));
            match round_trips(Ends::Unix(ours), reg, false, &cell(size)).expect("round trips") {
                Measurement::Latency(h) => assert_eq!(h.len(), 20),
                Measurement::Throughput { .. } => panic!("round trips gave a throughput"),
            }
            echo.join().expect("echo thread").expect("echo");

            let (down_r, down_w) = nix::unistd::pipe().expect("pipe");
            let (up_r, up_w) = nix::unistd::pipe().expect("pipe");
            let theirs = Ends::Files {
                read: File::from(down_r),
                write: File::from(up_w),
            };
            let echo = std::thread::spawn(move || serve(theirs, reg, false, &Job::Echo));
            let ours = Ends::Files {
                read: File::from(up_r),
                write: File::from(down_w),
            };
            match round_trips(ours, reg, false, &cell(size)).expect("round trips") {
                Measurement::Latency(h) => assert_eq!(h.len(), 20),
                Measurement::Throughput { .. } => panic!("round trips gave a throughput"),
            }
            echo.join().expect("echo thread").expect("echo");
        }
    }

    #[test]
    fn a_spinning_reader_round_trips() {
        let (ours, theirs) = UnixStream::pair().expect("socketpair");
        let echo = std::thread::spawn(move || {
            serve(Ends::Unix(theirs), Registration::Net, true, &Job::Echo)
        });
        let measured = runtime().expect("runtime").block_on(async {
            let ours = match TokioEnds::new(Ends::Unix(ours), Registration::ReadInterest)? {
                TokioEnds::Fd(r, w) => (r, w),
                _ => unreachable!("read-interest registration gives an fd pair"),
            };
            parent_loop(SpinRead(ours.0), ours.1, &cell(64)).await
        });
        match measured.expect("round trips") {
            Measurement::Latency(h) => assert_eq!(h.len(), 20),
            Measurement::Throughput { .. } => panic!("round trips gave a throughput"),
        }
        echo.join().expect("echo thread").expect("echo");
    }

    #[test]
    fn streaming_is_refused() {
        let (ours, _theirs) = UnixStream::pair().expect("socketpair");
        let streaming = Cell {
            workload: Workload::Stream,
            ..cell(64)
        };
        assert!(round_trips(Ends::Unix(ours), Registration::Net, false, &streaming).is_err());
    }
}
