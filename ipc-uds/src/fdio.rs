//! File-descriptor passing (`SCM_RIGHTS`) on a stream socket.
//!
//! A stream socket has no message boundaries, so the hard part is attaching each batch
//! of fds to the right frame. Two facts about Linux's `AF_UNIX` stream sockets make it
//! exact:
//!
//! - A `sendmsg` carrying `SCM_RIGHTS` attaches the fds to the **first** buffer (skb)
//!   it queues, and that buffer starts with the first byte of the call.
//! - A `recvmsg` that consumes any byte of a buffer carrying fds receives those fds and
//!   **returns right after** that buffer (`unix_stream_read_generic`), so the last byte
//!   it returns lies inside that buffer.
//!
//! The sender therefore writes a frame carrying fds (length prefix and payload) starting
//! with one `sendmsg` that holds the control message ([`send_frame_with_fds`]); the
//! receiver reads only with `recvmsg` ([`FdReader`]) and notes, for each batch of fds,
//! the stream offset of the last byte that call returned. The fds belong to the frame
//! containing that byte. A plain `read()` would silently close passed fds, which is why
//! the read half never uses one.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

/// Most fds one frame can carry (Linux's `SCM_MAX_FD`).
pub const MAX_FDS_PER_FRAME: usize = 253;

/// `recvmsg` flags: received fds are close-on-exec from the start.
#[cfg(any(target_os = "linux", target_os = "android"))]
const RECV_FLAGS: libc::c_int = libc::MSG_CMSG_CLOEXEC | libc::MSG_DONTWAIT;
/// `recvmsg` flags (no `MSG_CMSG_CLOEXEC` outside Linux; set afterwards instead).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const RECV_FLAGS: libc::c_int = libc::MSG_DONTWAIT;

/// `sendmsg` flags: a vanished peer is an `EPIPE` error, not a `SIGPIPE`.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn send_flags() -> MsgFlags {
    MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT
}
/// `sendmsg` flags (Rust programs ignore `SIGPIPE` by default where there is no
/// `MSG_NOSIGNAL`).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn send_flags() -> MsgFlags {
    MsgFlags::MSG_DONTWAIT
}

/// Fds received by one `recvmsg`, and the stream offset of the last byte it returned.
#[derive(Debug)]
struct FdBatch {
    last: u64,
    fds: Vec<OwnedFd>,
}

/// The read half of a Unix stream, read with `recvmsg` only, keeping every passed fd
/// with the stream offset it arrived at.
#[derive(Debug)]
pub(crate) struct FdReader {
    /// Registered for readability only: no wake-up each time the peer drains what we
    /// wrote (an `EPOLLOUT` edge per message on a Unix socket).
    fd: AsyncFd<OwnedFd>,
    state: ReadState,
}

/// What [`FdReader`] keeps besides the socket.
#[derive(Debug)]
struct ReadState {
    /// Stream bytes returned so far.
    pos: u64,
    batches: VecDeque<FdBatch>,
    /// Control-message buffer, `u64` words so `cmsghdr`s are aligned.
    cmsg: Vec<u64>,
    /// `recvmsg` calls that found nothing to read (`EAGAIN`): what a reader that knows
    /// when the socket is drained avoids.
    #[cfg(test)]
    would_block: usize,
}

impl FdReader {
    pub(crate) fn new(fd: OwnedFd) -> io::Result<Self> {
        // SAFETY: CMSG_SPACE is pure arithmetic on its argument.
        let space = unsafe { libc::CMSG_SPACE((MAX_FDS_PER_FRAME * size_of::<RawFd>()) as u32) };
        Ok(FdReader {
            fd: register(fd, Interest::READABLE).map_err(|(_, e)| e)?,
            state: ReadState {
                pos: 0,
                batches: VecDeque::new(),
                cmsg: vec![0u64; (space as usize).div_ceil(size_of::<u64>())],
                #[cfg(test)]
                would_block: 0,
            },
        })
    }

    /// Stream bytes returned by this reader so far.
    pub(crate) fn position(&self) -> u64 {
        self.state.pos
    }

    /// Remove the batches that arrived before stream offset `end`: those at or after
    /// `start` are returned (they belong to the frame `start..end`), earlier ones belong
    /// to frames already delivered or skipped and are closed.
    pub(crate) fn take_fds(&mut self, start: u64, end: u64) -> Vec<OwnedFd> {
        let mut out = Vec::new();
        if self.state.batches.is_empty() {
            return out; // the usual case, once per frame: no fds were passed
        }
        let batches = &mut self.state.batches;
        while let Some(batch) = batches.front() {
            if batch.last >= end {
                break;
            }
            if let Some(batch) = batches.pop_front() {
                if batch.last >= start {
                    out.extend(batch.fds);
                }
            }
        }
        out
    }
}

impl ReadState {
    /// One non-blocking `recvmsg` on `fd` into `buf`.
    fn recv_into(&mut self, fd: RawFd, buf: &mut [MaybeUninit<u8>]) -> io::Result<Received> {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: an all-zero msghdr is a valid empty header.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = self.cmsg.as_mut_ptr().cast();
        msg.msg_controllen = (self.cmsg.len() * size_of::<u64>()) as _;
        // SAFETY: `msg` points at `buf` (writable for its length; the kernel writes plain
        // bytes, never reads them) and at our control buffer, both alive for the call.
        let n = unsafe { libc::recvmsg(fd, &mut msg, RECV_FLAGS) };
        if n < 0 {
            let e = io::Error::last_os_error();
            #[cfg(test)]
            if e.kind() == io::ErrorKind::WouldBlock {
                self.would_block += 1;
            }
            return Err(e);
        }
        let n = n as usize;
        // SAFETY: the kernel filled `msg_controllen` bytes of our buffer with cmsgs.
        let fds = unsafe { received_fds(&msg) };
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        for fd in &fds {
            // No MSG_CMSG_CLOEXEC here: set it now (a fork in between could leak it).
            nix::fcntl::fcntl(
                fd,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
            )?;
        }
        if msg.msg_flags & libc::MSG_CTRUNC != 0 {
            tracing::warn!(
                "a peer passed more than {MAX_FDS_PER_FRAME} fds with one message; \
                 the kernel closed the ones that did not fit"
            );
        }
        if !fds.is_empty() {
            if n == 0 {
                tracing::warn!("dropping {} fds that arrived without data", fds.len());
            } else {
                self.batches.push_back(FdBatch {
                    last: self.pos + n as u64 - 1,
                    fds,
                });
            }
        }
        self.pos += n as u64;
        // `recvmsg` on a stream socket returns fewer bytes than asked for when the
        // queue ran dry, or when it stopped at a buffer carrying control data (fds,
        // credentials). Only the first means the socket is drained.
        let no_control = msg.msg_controllen == 0 && msg.msg_flags & libc::MSG_CTRUNC == 0;
        Ok(Received {
            len: n,
            drained: n > 0 && n < buf.len() && no_control,
        })
    }
}

/// What one `recvmsg` returned.
#[derive(Debug, Clone, Copy)]
struct Received {
    /// Bytes read.
    len: usize,
    /// The read was short without stopping at control data: the socket is drained,
    /// and readiness can be cleared without asking the kernel (which would answer
    /// `EAGAIN`).
    drained: bool,
}

/// The fds in the `SCM_RIGHTS` control messages of a received `msghdr`.
///
/// # Safety
/// `msg` must come from a successful `recvmsg`, its control buffer still alive.
unsafe fn received_fds(msg: &libc::msghdr) -> Vec<OwnedFd> {
    let mut out = Vec::new();
    // SAFETY: (whole body) the CMSG_* helpers walk the control buffer the kernel filled,
    // staying inside `msg_controllen`; every fd in an SCM_RIGHTS message is a new open
    // fd installed in this process for us, so owning it is sound.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            let hdr = std::ptr::read_unaligned(cmsg);
            if hdr.cmsg_level == libc::SOL_SOCKET && hdr.cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                let bytes = (hdr.cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
                for i in 0..bytes / size_of::<RawFd>() {
                    let fd = std::ptr::read_unaligned(data.add(i));
                    out.push(OwnedFd::from_raw_fd(fd));
                }
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    out
}

impl AsyncRead for FdReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            let mut guard = ready!(this.fd.poll_read_ready(cx))?;
            // SAFETY: `recv_into` only lets the kernel write bytes into this region, and
            // only the `n` bytes it reports written are marked initialized below.
            let unfilled = unsafe { buf.unfilled_mut() };
            let state = &mut this.state;
            match guard.try_io(|fd| state.recv_into(fd.as_raw_fd(), unfilled)) {
                Ok(Ok(got)) => {
                    // A short read that did not stop at fds drained the socket: the
                    // next poll waits for the reactor instead of a `recvmsg` that
                    // would fail with EAGAIN (what tokio's own sockets do, for the
                    // same reason; the reactor is edge-triggered, so new data sets
                    // readiness again).
                    if got.drained {
                        guard.clear_ready();
                    }
                    // SAFETY: recvmsg wrote `got.len` bytes at the start of `unfilled`.
                    unsafe { buf.assume_init(got.len) };
                    buf.advance(got.len);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

/// The write half of a Unix stream socket, under a [`UdsSender`](crate::UdsSender)
/// (only made by this crate): writes go straight to the socket; only when
/// it is full is the socket registered for writability, until the write succeeds.
/// (A standing `EPOLLOUT` registration would wake this process every time the peer
/// reads, which on one CPU costs a context switch per message.)
///
/// The registration is made on the writer's own fd (a duplicate of the socket taken
/// once, when the channel is built) and undone with [`AsyncFd::into_inner`], which
/// hands the fd back: waiting for room never opens a new fd, so a send works as well
/// at the process's fd limit (`RLIMIT_NOFILE`) as anywhere else.
#[derive(Debug)]
pub struct SockWriter {
    /// The fd number, the same whichever state holds the fd.
    raw: RawFd,
    slot: std::sync::Mutex<WriteFd>,
    /// True while the fd is registered (a cheap check on the fast path).
    waiting: std::sync::atomic::AtomicBool,
}

/// Where the writer's fd is.
#[derive(Debug)]
enum WriteFd {
    /// Not registered: the usual state.
    Idle(OwnedFd),
    /// Registered for writability while a write waits for room.
    Waiting(AsyncFd<OwnedFd>),
    /// Only while moving between the two (never seen outside `slot`'s lock).
    Moving,
}

impl SockWriter {
    pub(crate) fn new(fd: OwnedFd) -> Self {
        SockWriter {
            raw: fd.as_raw_fd(),
            slot: std::sync::Mutex::new(WriteFd::Idle(fd)),
            waiting: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WriteFd> {
        self.slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Wait until the socket is writable (registering it for that while we wait).
    fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut slot = self.lock();
        if let WriteFd::Idle(_) = &*slot {
            let WriteFd::Idle(fd) = std::mem::replace(&mut *slot, WriteFd::Moving) else {
                unreachable!("checked just above");
            };
            match register(fd, Interest::WRITABLE) {
                Ok(registered) => {
                    *slot = WriteFd::Waiting(registered);
                    self.waiting
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                }
                Err((fd, e)) => {
                    *slot = WriteFd::Idle(fd);
                    return Poll::Ready(Err(e));
                }
            }
        }
        if let WriteFd::Waiting(registered) = &*slot {
            let mut guard = ready!(registered.poll_write_ready(cx))?;
            guard.clear_ready();
        }
        Poll::Ready(Ok(()))
    }

    /// Undo the writability registration (no more `EPOLLOUT` wake-ups), keeping the fd.
    fn stop_waiting(&self) {
        let mut slot = self.lock();
        if let WriteFd::Waiting(_) = &*slot {
            let WriteFd::Waiting(registered) = std::mem::replace(&mut *slot, WriteFd::Moving)
            else {
                unreachable!("checked just above");
            };
            *slot = WriteFd::Idle(registered.into_inner());
        }
    }

    /// Run a non-blocking write attempt, waiting for room while it would block.
    pub(crate) fn poll_attempt<T>(
        &self,
        cx: &mut Context<'_>,
        mut attempt: impl FnMut(RawFd) -> io::Result<T>,
    ) -> Poll<io::Result<T>> {
        loop {
            match attempt(self.raw) {
                Ok(v) => {
                    if self
                        .waiting
                        .swap(false, std::sync::atomic::Ordering::Relaxed)
                    {
                        self.stop_waiting();
                    }
                    return Poll::Ready(Ok(v));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(self.poll_writable(cx))?;
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

/// Register an fd we own with the reactor for `interest` only; on failure the fd is
/// handed back with the error.
fn register(fd: OwnedFd, interest: Interest) -> Result<AsyncFd<OwnedFd>, (OwnedFd, io::Error)> {
    // SAFETY: the `OwnedFd` is owned by the `AsyncFd`, so the fd stays open (and is
    // the same file) until the registration is dropped or `into_inner` returns it.
    unsafe { AsyncFd::register_with_interest(fd, interest) }.map_err(|e| e.into_parts())
}

fn send_iov(fd: RawFd, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    sendmsg::<()>(fd, bufs, &[], send_flags(), None).map_err(io::Error::from)
}

impl AsyncWrite for SockWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_attempt(cx, |fd| send_iov(fd, &[IoSlice::new(buf)]))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_attempt(cx, |fd| send_iov(fd, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(
            nix::sys::socket::shutdown(self.raw, nix::sys::socket::Shutdown::Write)
                .map_err(io::Error::from),
        )
    }
}

/// Write one length-prefixed frame (`u32` BE length, then `payload`: the bytes
/// `LengthCodec` produces) whose first `sendmsg` carries `fds` as `SCM_RIGHTS`.
///
/// The caller has flushed everything written before and checked the frame limit. If the
/// future is dropped before it completes, part of the frame may be on the wire.
pub(crate) async fn send_frame_with_fds(
    writer: &SockWriter,
    payload: &[u8],
    fds: &[BorrowedFd<'_>],
) -> io::Result<()> {
    let header = (payload.len() as u32).to_be_bytes();
    let raw: Vec<RawFd> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
    let total = header.len() + payload.len();
    // Nothing is queued when this fails, so the fds did not go either: retried as is.
    let mut sent = std::future::poll_fn(|cx| {
        writer.poll_attempt(cx, |fd| {
            let iov = [IoSlice::new(&header), IoSlice::new(payload)];
            let cmsgs = [ControlMessage::ScmRights(&raw)];
            sendmsg::<()>(fd, &iov, &cmsgs, send_flags(), None).map_err(io::Error::from)
        })
    })
    .await?;
    // The fds went with the first part; the rest is plain stream data.
    while sent < total {
        let n = std::future::poll_fn(|cx| {
            writer.poll_attempt(cx, |fd| {
                let rest = if sent < header.len() {
                    [IoSlice::new(&header[sent..]), IoSlice::new(payload)]
                } else {
                    [
                        IoSlice::new(&payload[sent - header.len()..]),
                        IoSlice::new(&[]),
                    ]
                };
                send_iov(fd, &rest)
            })
        })
        .await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        sent += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    use tokio::io::AsyncReadExt;

    /// Ping-pong shape: each frame is read as soon as it arrives, then the reader is
    /// polled again before the next one is written. A short read (fewer bytes than
    /// asked for, no fds) drained the socket, so that poll must wait for the reactor
    /// instead of asking the kernel again and getting `EAGAIN`.
    #[tokio::test(flavor = "current_thread")]
    async fn a_short_read_clears_readiness_without_another_recvmsg() {
        let (mut peer, ours) = UnixStream::pair().expect("socketpair");
        ours.set_nonblocking(true).expect("non-blocking");
        let mut reader = FdReader::new(ours.into()).expect("register");
        let waker = futures_util::task::noop_waker();
        let mut buf = vec![0u8; 4096];
        for round in 0..100u8 {
            peer.write_all(&[round; 64]).expect("write");
            let n = reader.read(&mut buf).await.expect("read");
            assert_eq!((n, buf[0]), (64, round));
            let next = reader.read(&mut buf);
            tokio::pin!(next);
            let polled = next.poll(&mut Context::from_waker(&waker));
            assert!(polled.is_pending(), "nothing more was written");
        }
        assert_eq!(
            reader.state.would_block, 0,
            "recvmsg was called on a socket that a short read had drained"
        );
    }
}
