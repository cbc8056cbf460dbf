//! [`StdioReader`] and [`StdioWriter`]: the byte streams under a
//! [`StdioChannel`](crate::StdioChannel), whichever side and whatever fd 0/1 turned
//! out to be.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::unix::pipe;
use tokio::process::{ChildStdin, ChildStdout};

/// The reading side of a stdio channel: the child's stdout (parent side), or this
/// process's stdin (child side).
///
/// Obtained through [`Duplex::into_split`](ipc_core::Duplex::into_split); it
/// has no public constructor.
pub struct StdioReader {
    inner: Reader,
    /// The fd's status flags before we set `O_NONBLOCK`, put back on drop.
    restore: Option<OFlag>,
}

enum Reader {
    /// A pipe or socket, driven by the reactor.
    Pipe(pipe::Receiver),
    /// The stdout of a child we spawned (a reactor-driven pipe too).
    Child(ChildStdout),
    /// A regular file or a terminal, read on tokio's blocking pool.
    Blocking(tokio::fs::File),
}

/// The writing side of a stdio channel: the child's stdin (parent side), or this
/// process's stdout (child side).
///
/// Shutting it down (what closing the channel, `SinkExt::close`, does after the
/// goodbye line) flushes and then closes our descriptor, so the peer also sees
/// end-of-file. Obtained through
/// [`Duplex::into_split`](ipc_core::Duplex::into_split).
pub struct StdioWriter {
    inner: Option<Writer>,
    restore: Option<OFlag>,
}

enum Writer {
    Pipe(pipe::Sender),
    Child(ChildStdin),
    Blocking(tokio::fs::File),
}

impl std::fmt::Debug for StdioReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.inner {
            Reader::Pipe(_) => "pipe",
            Reader::Child(_) => "child stdout",
            Reader::Blocking(_) => "blocking file",
        };
        f.debug_struct("StdioReader").field("kind", &kind).finish()
    }
}

impl std::fmt::Debug for StdioWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.inner {
            Some(Writer::Pipe(_)) => "pipe",
            Some(Writer::Child(_)) => "child stdin",
            Some(Writer::Blocking(_)) => "blocking file",
            None => "shut down",
        };
        f.debug_struct("StdioWriter").field("kind", &kind).finish()
    }
}

impl StdioReader {
    pub(crate) fn pipe(rx: pipe::Receiver, restore: Option<OFlag>) -> Self {
        StdioReader {
            inner: Reader::Pipe(rx),
            restore,
        }
    }

    pub(crate) fn child(stdout: ChildStdout) -> Self {
        StdioReader {
            inner: Reader::Child(stdout),
            restore: None,
        }
    }

    pub(crate) fn blocking(file: tokio::fs::File) -> Self {
        StdioReader {
            inner: Reader::Blocking(file),
            restore: None,
        }
    }

    /// Whether reads go through the reactor (`true`) or tokio's blocking pool.
    pub fn is_reactor_driven(&self) -> bool {
        !matches!(self.inner, Reader::Blocking(_))
    }
}

impl StdioWriter {
    pub(crate) fn pipe(tx: pipe::Sender, restore: Option<OFlag>) -> Self {
        StdioWriter {
            inner: Some(Writer::Pipe(tx)),
            restore,
        }
    }

    pub(crate) fn child(stdin: ChildStdin) -> Self {
        StdioWriter {
            inner: Some(Writer::Child(stdin)),
            restore: None,
        }
    }

    pub(crate) fn blocking(file: tokio::fs::File) -> Self {
        StdioWriter {
            inner: Some(Writer::Blocking(file)),
            restore: None,
        }
    }

    /// Whether writes go through the reactor (`true`) or tokio's blocking pool
    /// (`false`; also after shutdown).
    pub fn is_reactor_driven(&self) -> bool {
        matches!(self.inner, Some(Writer::Pipe(_) | Writer::Child(_)))
    }

    /// Put the fd's flags back, then close it.
    fn release(&mut self) {
        if let (Some(flags), Some(Writer::Pipe(tx))) = (self.restore.take(), &self.inner) {
            restore_flags(tx.as_fd(), flags);
        }
        self.inner = None;
    }
}

/// Put back the status flags of a descriptor we made non-blocking: the open file
/// description may be shared with other processes (see the crate docs).
fn restore_flags(fd: BorrowedFd<'_>, flags: OFlag) {
    if let Err(e) = fcntl(fd, FcntlArg::F_SETFL(flags)) {
        tracing::debug!("could not restore the flags of a stdio descriptor: {e}");
    }
}

impl Drop for StdioReader {
    fn drop(&mut self) {
        if let (Some(flags), Reader::Pipe(rx)) = (self.restore, &self.inner) {
            restore_flags(rx.as_fd(), flags);
        }
    }
}

impl Drop for StdioWriter {
    fn drop(&mut self) {
        self.release();
    }
}

impl AsyncRead for StdioReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.inner {
            Reader::Pipe(r) => Pin::new(r).poll_read(cx, buf),
            Reader::Child(r) => Pin::new(r).poll_read(cx, buf),
            Reader::Blocking(r) => Pin::new(r).poll_read(cx, buf),
        }
    }
}

fn shut_down() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the stdio writer was shut down")
}

impl AsyncWrite for StdioWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.inner {
            Some(Writer::Pipe(w)) => Pin::new(w).poll_write(cx, buf),
            Some(Writer::Child(w)) => Pin::new(w).poll_write(cx, buf),
            Some(Writer::Blocking(w)) => Pin::new(w).poll_write(cx, buf),
            None => Poll::Ready(Err(shut_down())),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.inner {
            Some(Writer::Pipe(w)) => Pin::new(w).poll_write_vectored(cx, bufs),
            Some(Writer::Child(w)) => Pin::new(w).poll_write_vectored(cx, bufs),
            Some(Writer::Blocking(w)) => Pin::new(w).poll_write_vectored(cx, bufs),
            None => Poll::Ready(Err(shut_down())),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.inner {
            Some(Writer::Pipe(w)) => w.is_write_vectored(),
            Some(Writer::Child(w)) => w.is_write_vectored(),
            Some(Writer::Blocking(w)) => w.is_write_vectored(),
            None => false,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.inner {
            Some(Writer::Pipe(w)) => Pin::new(w).poll_flush(cx),
            Some(Writer::Child(w)) => Pin::new(w).poll_flush(cx),
            Some(Writer::Blocking(w)) => Pin::new(w).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    /// Flush, then close the descriptor: pipes cannot be half-closed, so closing our
    /// end is how the peer sees end-of-file.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        self.release();
        Poll::Ready(Ok(()))
    }
}
