//! [`Link`]: what both halves of one channel share — the peer's slot in the router, this
//! runtime's registrations of the signalfd and of the peer's pidfd, and the control
//! signals (hello, acknowledgements) we owe the peer.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipc_core::{ChannelInfo, Error, Result};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::Notify;

use crate::mask::CONTROL_SIGNAL;
use crate::pidfd::{self, QueueError};
use crate::router::{lock, router, Router, Slot};
use crate::{target, wire};

/// The transport's name.
pub(crate) const NAME: &str = "signal";

/// How long to wait before retrying a `sigqueue` that failed with `EAGAIN` (the
/// per-user `RLIMIT_SIGPENDING` is exhausted and no acknowledgement may come to help).
const RETRY: Duration = Duration::from_millis(5);

/// Register `fd` with the current runtime's reactor, for readability.
fn register(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: an OwnedFd is a valid open descriptor that stays open, and keeps returning
    // the same number, for as long as the AsyncFd owns it.
    Ok(unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }?)
}

/// The uid owning `/proc/PID`, i.e. the process's effective uid.
fn process_uid(pid: u32) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}"))
        .ok()
        .map(|m| m.uid())
}

/// Control signals we owe the peer.
struct Owed {
    hello_sent: bool,
    /// Data signals consumed from the peer (set by the receiving half).
    consumed: u64,
    /// The count our last delivered ACK carried.
    acked: u64,
}

/// What both halves of a channel share. Dropping the last half closes the channel's
/// slot and tells the peer (GONE).
pub(crate) struct Link {
    pub(crate) pid: u32,
    pub(crate) slot: Arc<Slot>,
    pub(crate) info: ChannelInfo,
    router: &'static Router,
    sigfd: AsyncFd<OwnedFd>,
    pidfd: AsyncFd<OwnedFd>,
    exit_seen: AtomicBool,
    window: u32,
    ack_every: u64,
    owed: Mutex<Owed>,
    /// Data signals we sent (the sending half counts them; GONE reports them).
    pub(crate) sent: AtomicU64,
}

impl Link {
    /// Register a channel to `pid` in this process and greet the peer. The caller has
    /// checked that the transport signals are blocked. With `check_target`, refuse
    /// first unless the target blocks or handles them too (a child we spawned does:
    /// we set its mask). Needs a tokio runtime.
    pub(crate) fn open(pid: u32, max_frame: usize, check_target: bool) -> Result<Arc<Link>> {
        if pid == 0 || pid > i32::MAX as u32 {
            return Err(Error::BadEndpoint {
                input: format!("signal:pid={pid}"),
                reason: "not a process id".into(),
            });
        }
        if pid == std::process::id() {
            return Err(Error::unsupported(
                NAME,
                "a channel from a process to itself (signals carry no channel id)",
            ));
        }
        let router = router()?;
        // From here on the peer is addressed through its pidfd only, never by number.
        let pidfd = pidfd::open(pid)?;
        if check_target {
            target::ensure_safe(pid, pidfd.as_fd())?;
        } else {
            pidfd::probe(pidfd.as_fd(), pid)?;
        }
        let window = wire::receive_window();
        let slot = router.register(pid, window)?;
        let fds = router
            .dup_fd()
            .and_then(|fd| Ok((register(fd)?, register(pidfd)?)));
        let (sigfd, pidfd) = match fds {
            Ok(fds) => fds,
            Err(e) => {
                router.unregister(&slot);
                return Err(Error::Io(e));
            }
        };
        let info = ChannelInfo::new(NAME)
            .with_max_frame(max_frame)
            .with_peer_pid(Some(pid))
            .with_peer_uid(process_uid(pid));
        let link = Arc::new(Link {
            pid,
            slot,
            info,
            router,
            sigfd,
            pidfd,
            exit_seen: AtomicBool::new(false),
            window,
            ack_every: wire::ack_interval(window),
            owed: Mutex::new(Owed {
                hello_sent: false,
                consumed: 0,
                acked: 0,
            }),
            sent: AtomicU64::new(0),
        });
        link.flush_owed();
        Ok(link)
    }

    /// Queue `signo` carrying `word` to the peer, through its pidfd: a process that got
    /// the peer's pid after it exited is never signalled (`NoProcess` instead).
    pub(crate) fn queue(&self, signo: libc::c_int, word: u64) -> Result<(), QueueError> {
        pidfd::queue(self.pidfd.get_ref().as_fd(), signo, word)
    }

    /// Wait until the peer greets us (its channel to us exists). Fails if it exits
    /// first or breaks the protocol; the caller bounds the wait.
    pub(crate) async fn wait_for_hello(&self) -> Result<()> {
        loop {
            let owed = self.flush_owed();
            {
                let st = lock(&self.slot.state);
                if let Some(fault) = &st.fault {
                    return Err(Error::Handshake(fault.clone()));
                }
                if st.peer_window.is_some() {
                    return Ok(());
                }
                if st.peer_exited {
                    return Err(Error::Handshake(format!(
                        "process {} exited without opening a signal channel to this process",
                        self.pid
                    )));
                }
            }
            self.wait(&self.slot.acks_ready, owed).await?;
        }
    }

    /// Send the control signals we owe (hello, a due ACK). True if one is still owed
    /// because the signal queue limit was reached: the caller retries after [`RETRY`].
    pub(crate) fn flush_owed(&self) -> bool {
        let mut owed = lock(&self.owed);
        if !owed.hello_sent {
            match self.queue(CONTROL_SIGNAL, wire::hello(self.window)) {
                Ok(()) => owed.hello_sent = true,
                Err(QueueError::Full) => return true,
                // A vanished peer is reported by its pidfd.
                Err(_) => owed.hello_sent = true,
            }
        }
        if owed.consumed - owed.acked >= self.ack_every {
            match self.queue(CONTROL_SIGNAL, wire::ack(owed.consumed)) {
                Ok(()) => owed.acked = owed.consumed,
                Err(QueueError::Full) => return true,
                Err(_) => owed.acked = owed.consumed,
            }
        }
        false
    }

    /// The receiving half consumed `consumed` data signals in total: acknowledge them
    /// when an ACK is due. True if one is still owed (see [`flush_owed`](Self::flush_owed)).
    pub(crate) fn consumed(&self, consumed: u64) -> bool {
        lock(&self.owed).consumed = consumed;
        self.flush_owed()
    }

    /// Wait until `notify` fires, the signalfd has something (which we then route), the
    /// peer exits, or — with `retry` — a short retry delay passes. Spurious returns are
    /// fine: callers loop.
    pub(crate) async fn wait(&self, notify: &Notify, retry: bool) -> Result<()> {
        let watch_exit = !self.exit_seen.load(Ordering::Acquire);
        tokio::select! {
            biased;
            _ = notify.notified() => Ok(()),
            ready = self.sigfd.readable() => {
                let mut guard = ready?;
                match guard.try_io(|_| self.router.drain()) {
                    Ok(Err(e)) => Err(Error::Io(e)),
                    // Drained to EAGAIN: readiness is cleared until the next signal.
                    Ok(Ok(())) | Err(_) => Ok(()),
                }
            }
            ready = self.pidfd.readable(), if watch_exit => {
                // The process is gone for good: leave the readiness set.
                ready?.retain_ready();
                self.peer_exited();
                Ok(())
            }
            _ = tokio::time::sleep(RETRY), if retry => Ok(()),
        }
    }

    /// The peer process exited: route everything it sent before dying, then mark it.
    pub(crate) fn peer_exited(&self) {
        self.exit_seen.store(true, Ordering::Release);
        // Every signal the peer queued was in our queue before it exited.
        if let Err(e) = self.router.drain() {
            if e.kind() != io::ErrorKind::WouldBlock {
                tracing::warn!("signal channel to {}: draining the signalfd: {e}", self.pid);
            }
        }
        lock(&self.slot.state).peer_exited = true;
        self.slot.wake_all();
    }

    /// A sending half dropped without `close` (perhaps in the middle of a frame): no
    /// goodbye follows, so tell the peer how many data signals it will get from us
    /// (ABORT), and its `recv` ends with `PeerLost` once it has read them instead of
    /// waiting for more.
    pub(crate) fn abort_on_drop(&self) {
        let _ = self.queue(
            CONTROL_SIGNAL,
            wire::abort(self.sent.load(Ordering::Relaxed)),
        );
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.router.unregister(&self.slot);
        if lock(&self.slot.state).peer_window.is_some() {
            let _ = self.queue(
                CONTROL_SIGNAL,
                wire::gone(self.sent.load(Ordering::Relaxed)),
            );
        }
        // Release what the peer already queued for us (now counted as dropped), and
        // route what other channels are owed.
        let _ = self.router.drain();
    }
}
