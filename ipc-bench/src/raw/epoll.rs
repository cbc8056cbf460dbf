//! The epoll floor: the raw baselines' fds made non-blocking, each side waiting in
//! `epoll_wait` before it reads — what an async runtime does, with no runtime.
//!
//! Per message per side that is `write` + `epoll_wait` + `read`, where blocking I/O
//! needs `write` + `read`. The read side follows the toolkit's rule (issue 13, item 2):
//! a read that fills less than the buffer drained the fd, so the next read waits in
//! `epoll_wait` first instead of asking the kernel and getting `EAGAIN`. The epoll
//! instance has read interest only, edge-triggered (`EPOLLIN | EPOLLRDHUP | EPOLLET`,
//! as tokio's I/O driver registers a reader). A write that would block (only large
//! frames do) waits in `poll` for `POLLOUT`.

use std::io::{self, IoSlice, Read, Write};
use std::os::fd::AsFd;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

/// A non-blocking reader that waits in `epoll_wait` once it knows it has drained the
/// fd (a short read or `EAGAIN`).
pub(crate) struct EpollRead<T> {
    io: T,
    epoll: Epoll,
    /// The last read left nothing behind: wait before the next one.
    drained: bool,
}

impl<T: Read + AsFd> EpollRead<T> {
    /// Register `io` (already non-blocking) with a new epoll instance, read interest
    /// only.
    pub(crate) fn new(io: T) -> io::Result<EpollRead<T>> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let interest = EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLET;
        epoll.add(io.as_fd(), EpollEvent::new(interest, 0))?;
        // Like a freshly registered tokio reader: not known to be readable, so the
        // first read waits for the event.
        Ok(EpollRead {
            io,
            epoll,
            drained: true,
        })
    }

    fn wait(&self) -> io::Result<()> {
        let mut events = [EpollEvent::empty()];
        loop {
            match self.epoll.wait(&mut events, EpollTimeout::NONE) {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl<T: Read + AsFd> Read for EpollRead<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.drained {
                self.wait()?;
                self.drained = false;
            }
            match self.io.read(buf) {
                Ok(n) => {
                    // A short read on a stream socket or pipe emptied it.
                    self.drained = n < buf.len();
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.drained = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// A non-blocking writer that waits in `poll` for `POLLOUT` when the fd's buffer is
/// full.
pub(crate) struct PollWrite<T>(pub(crate) T);

impl<T: AsFd> PollWrite<T> {
    fn attempt<R>(&mut self, mut op: impl FnMut(&mut T) -> io::Result<R>) -> io::Result<R> {
        loop {
            match op(&mut self.0) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let mut fds = [PollFd::new(self.0.as_fd(), PollFlags::POLLOUT)];
                    match nix::poll::poll(&mut fds, PollTimeout::NONE) {
                        Ok(_) | Err(Errno::EINTR) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                other => return other,
            }
        }
    }
}

impl<T: Write + AsFd> Write for PollWrite<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.attempt(|io| io.write(buf))
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.attempt(|io| io.write_vectored(bufs))
    }
    fn flush(&mut self) -> io::Result<()> {
        self.attempt(|io| io.flush())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn reads_wait_for_the_peer_and_large_writes_wait_for_room() {
        let (a, b) = UnixStream::pair().expect("pair");
        a.set_nonblocking(true).expect("nonblocking");
        b.set_nonblocking(true).expect("nonblocking");
        let big = vec![7u8; 1 << 20];
        let writer = {
            let big = big.clone();
            std::thread::spawn(move || PollWrite(a).write_all(&big).expect("write"))
        };
        let mut reader = EpollRead::new(b).expect("epoll");
        let mut got = Vec::new();
        reader.read_to_end(&mut got).expect("read to the end");
        writer.join().expect("writer");
        assert_eq!(got, big);
    }
}
