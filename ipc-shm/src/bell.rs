//! [`Bell`]: one end of the Unix socket pair that goes with each ring. The ring's
//! writer holds one end, its reader the other. A byte on it means "look at the ring
//! again" (sent only to a side that said it was going to sleep); its end of stream
//! means the other side of the ring is gone: closed, dropped, or its process died.
//! The kernel closes a dead process's sockets, so a crash is always seen; no lock in
//! shared memory can be left held.
//!
//! Registering the socket with tokio is this module's one `unsafe` call (tokio asks
//! the caller to promise I/O safety); it touches no shared memory.
//!
//! Waiting is tokio's: the socket is registered with the reactor (readable only), so a
//! sleeping side costs no CPU and no thread.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::task::{ready, Context, Poll};

use nix::errno::Errno;
use nix::sys::socket::{recv, send, shutdown, MsgFlags, Shutdown};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// One end of a ring's doorbell socket.
#[derive(Debug)]
pub(crate) struct Bell {
    fd: AsyncFd<OwnedFd>,
    /// The other end is gone (end of stream or reset seen).
    gone: bool,
}

impl Bell {
    /// Wrap one end of a connected Unix stream socket pair (in a tokio runtime).
    pub(crate) fn new(fd: OwnedFd) -> io::Result<Bell> {
        let flags = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_GETFL)?;
        let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFL(flags))?;
        // SAFETY: the `AsyncFd` owns `fd` (an `OwnedFd`, which always returns the same
        // open descriptor) until it is dropped, and we never swap it out through
        // `get_mut`: the registration's I/O-safety requirement holds.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        Ok(Bell { fd, gone: false })
    }

    /// The other side is gone: nothing more will be written into (or read from) the
    /// ring by it.
    pub(crate) fn is_gone(&self) -> bool {
        self.gone
    }

    /// Wake the other side. Never blocks: if the socket is full, wake-ups are already
    /// pending; if the other side is gone, it is not waiting (and we learn of it from
    /// our own end of stream).
    pub(crate) fn ring(&self) {
        let fd = self.fd.get_ref().as_raw_fd();
        let _ = send(fd, &[1], MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL);
    }

    /// Ready once the other side rang or went away since the last call (the wake-up
    /// bytes are consumed, up to 64 per call: a peer that floods the socket cannot keep
    /// us here); pending, with the task registered for a wake-up, otherwise.
    pub(crate) fn poll_rung(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if self.gone {
                return Poll::Ready(Ok(()));
            }
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            let mut buf = [0u8; 64];
            match guard.try_io(|fd| {
                recv(fd.get_ref().as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT)
                    .map_err(io::Error::from)
            }) {
                Ok(Ok(0)) => self.gone = true,
                Ok(Ok(_)) => return Poll::Ready(Ok(())),
                Ok(Err(e)) if e.raw_os_error() == Some(Errno::ECONNRESET as i32) => {
                    self.gone = true
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                // Nothing there: tokio cleared the readiness; the next turn registers us.
                Err(_would_block) => {}
            }
        }
    }

    /// Look for the other side's departure (or a stray wake-up) without waiting.
    pub(crate) fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        match self.poll_rung(cx) {
            Poll::Ready(result) => result,
            Poll::Pending => Ok(()),
        }
    }

    /// Tell the other side we are gone, now: it sees the end of stream even while this
    /// process keeps other copies of nothing (we never duplicate the fd).
    pub(crate) fn hang_up(&mut self) {
        let _ = shutdown(self.fd.get_ref().as_fd().as_raw_fd(), Shutdown::Both);
        self.gone = true;
    }
}
