//! [`SignalChannel`] and its halves: frames cut into 8-byte signals, a window of
//! unacknowledged signals, and the peer watched through a pidfd.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ipc_core::adapter::{FrameSink, FrameStream, RecvFrames, SendFrames};
use ipc_core::frame::FrameConfig;
use ipc_core::ConnectError;
use ipc_core::Options;
use ipc_core::SpawnError;
use ipc_core::{ChannelInfo, Child, Duplex, Endpoint, Error, Result, SendHalf};

use crate::link::{Link, NAME};
use crate::mask::{ensure_blocked, transport_sigset, DATA_SIGNAL};
use crate::pidfd::QueueError;
use crate::router::{lock, SlotState};
use crate::wire::{self, Header, CHUNK};

/// A frame on its way out: word 0 is the header, words 1.. the chunks.
struct Outgoing {
    frame: Bytes,
    header: u64,
    next: u64,
    total: u64,
}

impl Outgoing {
    fn frame(frame: Bytes) -> Self {
        Outgoing {
            header: wire::frame_header(frame.len() as u32),
            total: 1 + wire::chunk_count(frame.len() as u64),
            frame,
            next: 0,
        }
    }

    fn goodbye() -> Self {
        Outgoing {
            frame: Bytes::new(),
            header: wire::GOODBYE,
            next: 0,
            total: 1,
        }
    }

    fn word(&self, i: u64) -> u64 {
        if i == 0 {
            self.header
        } else {
            wire::chunk(&self.frame, (i - 1) as usize)
        }
    }
}

/// How long [`connect`] waits for the peer's hello.
///
/// ```
/// assert_eq!(ipc_signal::DEFAULT_CONNECT_TIMEOUT, std::time::Duration::from_secs(5));
/// ```
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

fn peer_lost(pid: u32) -> Error {
    Error::PeerLost(format!(
        "process {pid} exited without closing the signal channel"
    ))
}

fn protocol_error(reason: &str) -> Error {
    Error::Io(io::Error::new(
        io::ErrorKind::InvalidData,
        format!("signal channel protocol violation: {reason}"),
    ))
}

/// How many more data signals we may queue now (0 until the peer greeted us), or why
/// we never may again.
fn credit(link: &Link) -> Result<u64> {
    let st = lock(&link.slot.state);
    if let Some(fault) = &st.fault {
        return Err(protocol_error(fault));
    }
    // The peer's end is gone: `Closed` if it said goodbye first, else `PeerLost`.
    if st.peer_exited || st.peer_gone_at.is_some() {
        return Err(if st.goodbye_routed {
            Error::Closed
        } else if st.peer_exited {
            peer_lost(link.pid)
        } else {
            Error::PeerLost(format!(
                "process {} dropped its signal channel without closing it",
                link.pid
            ))
        });
    }
    let Some(window) = st.peer_window else {
        return Ok(0);
    };
    let in_flight = link
        .sent
        .load(Ordering::Relaxed)
        .saturating_sub(st.peer_acked);
    Ok(u64::from(window).saturating_sub(in_flight))
}

/// The sending half of a [`SignalChannel`]: a `Sink` of frames over a
/// [`SignalOutbox`].
pub type SignalSender = FrameSink<SignalOutbox>;

/// The receiving half of a [`SignalChannel`]: a `Stream` of frames over a
/// [`SignalInbox`].
pub type SignalReceiver = FrameStream<SignalInbox>;

/// The sending side of a signal channel, as `async fn`s (its `Sink` is
/// [`SignalSender`]).
///
/// A frame goes out as a header signal and `ceil(len / 8)` chunk signals; `send` returns
/// once the last one is queued to the peer, waiting while the peer has a full window of
/// signals unacknowledged. If a `send` future is dropped after the frame's header went
/// out, the next `send` or `close` finishes that frame first (the peer never sees half a
/// frame followed by another); dropped before that, the frame is not sent at all.
///
/// `close` is the only clean end (the goodbye; the peer's `recv` gives `Ok(None)`).
/// Dropping the half without `close` is an abort: it sends ABORT, never the goodbye,
/// and tells the peer that no more follows (even while this process keeps the
/// receiving half): the peer's `recv` fails with [`Error::PeerLost`] once it has read
/// what came before, instead of waiting for more (or for the rest of a half-sent frame).
pub struct SignalOutbox {
    link: Arc<Link>,
    out: Option<Outgoing>,
    closed: bool,
    max_frame: usize,
}

impl std::fmt::Debug for SignalOutbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalOutbox")
            .field("frame_in_flight", &self.out.is_some())
            .field("closed", &self.closed)
            .field("max_frame", &self.max_frame)
            .finish_non_exhaustive()
    }
}

impl SendFrames for SignalOutbox {
    async fn send_frame(&mut self, frame: Bytes) -> Result<()> {
        if self.closed {
            return Err(Error::Closed);
        }
        self.discard_unstarted();
        self.flush().await?;
        if frame.len() > self.max_frame {
            return Err(Error::FrameTooLarge {
                len: frame.len() as u64,
                max: self.max_frame,
            });
        }
        self.out = Some(Outgoing::frame(frame));
        self.flush().await
    }

    /// Send the goodbye (after finishing a half-sent frame). Idempotent. If the peer is
    /// already gone there is nobody to tell: that is not an error here (its `recv`
    /// reports it).
    async fn close_sending(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.discard_unstarted();
        let mut result = self.flush().await;
        if result.is_ok() {
            self.out = Some(Outgoing::goodbye());
            result = self.flush().await;
        }
        match result {
            Ok(()) | Err(Error::Closed) | Err(Error::PeerLost(_)) => {
                self.closed = true;
                self.out = None;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn info(&self) -> ChannelInfo {
        self.link.info.clone()
    }
}

impl SignalOutbox {
    /// A frame whose header never went out is forgotten (its `send` was cancelled).
    fn discard_unstarted(&mut self) {
        if self.out.as_ref().is_some_and(|o| o.next == 0) {
            self.out = None;
        }
    }

    /// Queue the rest of `self.out`, within the peer's window.
    async fn flush(&mut self) -> Result<()> {
        let link = &self.link;
        loop {
            let Some(out) = self.out.as_mut() else {
                return Ok(());
            };
            let owed = link.flush_owed();
            let allowed = credit(link)?;
            let mut full = false;
            let mut queued = 0;
            while queued < allowed && out.next < out.total {
                match link.queue(DATA_SIGNAL, out.word(out.next)) {
                    Ok(()) => {
                        out.next += 1;
                        queued += 1;
                    }
                    Err(QueueError::Full) => {
                        full = true;
                        break;
                    }
                    Err(QueueError::NoProcess) => {
                        // Exited and reaped before its pidfd was seen readable.
                        link.sent.fetch_add(queued, Ordering::Relaxed);
                        link.peer_exited();
                        return Err(credit(link).err().unwrap_or_else(|| peer_lost(link.pid)));
                    }
                    Err(QueueError::Other(e)) => {
                        link.sent.fetch_add(queued, Ordering::Relaxed);
                        return Err(Error::Io(e));
                    }
                }
            }
            link.sent.fetch_add(queued, Ordering::Relaxed);
            if out.next == out.total {
                self.out = None;
                return Ok(());
            }
            if queued > 0 && !full {
                continue;
            }
            link.wait(&link.slot.acks_ready, full || owed).await?;
        }
    }
}

impl Drop for SignalOutbox {
    fn drop(&mut self) {
        // Dropped without `close`: an abort, never a goodbye (only `close` says one).
        // ABORT tells the peer how many data signals precede the end, so its `recv`
        // gives `PeerLost` after reading them, even while our receiving half lives on.
        if !self.closed {
            self.link.abort_on_drop();
        }
    }
}

enum RxState {
    Header,
    Body { buf: Vec<u8>, len: usize },
    Skip(u64),
    Finished,
    Failed,
}

/// Turns the peer's data signals back into frames.
struct Decoder {
    state: RxState,
    consumed: u64,
    max_frame: usize,
    pid: u32,
}

impl Decoder {
    /// Consume queued words until a frame, a goodbye or an error is complete.
    fn take(&mut self, st: &mut SlotState) -> Option<Result<Option<Bytes>>> {
        while let Some(word) = st.queue.pop_front() {
            self.consumed += 1;
            match &mut self.state {
                RxState::Header => match wire::parse_header(word) {
                    Header::Frame(len) => {
                        let len = len as usize;
                        if len > self.max_frame {
                            let chunks = wire::chunk_count(len as u64);
                            if chunks > 0 {
                                self.state = RxState::Skip(chunks);
                            }
                            return Some(Err(Error::FrameTooLarge {
                                len: len as u64,
                                max: self.max_frame,
                            }));
                        }
                        if len == 0 {
                            return Some(Ok(Some(Bytes::new())));
                        }
                        self.state = RxState::Body {
                            buf: Vec::with_capacity(len),
                            len,
                        };
                    }
                    Header::Goodbye => {
                        self.state = RxState::Finished;
                        return Some(Ok(None));
                    }
                    Header::Invalid => {
                        self.state = RxState::Failed;
                        return Some(Err(protocol_error(&format!(
                            "process {} sent {word:#018x} where a frame header was expected \
                             (is another program sending signal {DATA_SIGNAL} to this process?)",
                            self.pid
                        ))));
                    }
                },
                RxState::Body { buf, len } => {
                    let n = (*len - buf.len()).min(CHUNK);
                    buf.extend_from_slice(&word.to_be_bytes()[..n]);
                    if buf.len() == *len {
                        let frame = std::mem::take(buf);
                        self.state = RxState::Header;
                        return Some(Ok(Some(Bytes::from(frame))));
                    }
                }
                RxState::Skip(left) => {
                    *left -= 1;
                    if *left == 0 {
                        self.state = RxState::Header;
                    }
                }
                RxState::Finished | RxState::Failed => {
                    st.queue.push_front(word);
                    self.consumed -= 1;
                    return None;
                }
            }
        }
        None
    }

    /// With the queue empty: has the stream ended for good?
    fn ended(&self, st: &SlotState) -> Option<Error> {
        if let Some(fault) = &st.fault {
            return Some(protocol_error(fault));
        }
        if st.peer_exited {
            return Some(peer_lost(self.pid));
        }
        if st.peer_abort_at.is_some_and(|n| st.routed >= n) {
            return Some(Error::PeerLost(format!(
                "process {} dropped its signal channel (or its sending half) without \
                 closing it",
                self.pid
            )));
        }
        if st.peer_gone_at.is_some_and(|n| st.routed >= n) {
            return Some(Error::PeerLost(format!(
                "process {} dropped its signal channel without closing it",
                self.pid
            )));
        }
        None
    }
}

/// The receiving side of a signal channel, as an `async fn` (its `Stream` is
/// [`SignalReceiver`]).
///
/// Cancel-safe: a receive dropped half-way through a frame loses nothing; the next
/// one goes on from there.
pub struct SignalInbox {
    link: Arc<Link>,
    decoder: Decoder,
}

impl std::fmt::Debug for SignalInbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = &self.decoder;
        let state = match &d.state {
            RxState::Header => "waiting for a header",
            RxState::Body { .. } => "inside a frame",
            RxState::Skip(_) => "skipping a rejected frame",
            RxState::Finished => "finished",
            RxState::Failed => "failed",
        };
        f.debug_struct("SignalInbox")
            .field("peer_pid", &d.pid)
            .field("state", &state)
            .field("max_frame", &d.max_frame)
            .finish_non_exhaustive()
    }
}

impl RecvFrames for SignalInbox {
    async fn recv_frame(&mut self) -> Result<Option<Bytes>> {
        loop {
            match self.decoder.state {
                RxState::Finished => return Ok(None),
                RxState::Failed => return Err(Error::Closed),
                _ => {}
            }
            let (step, end) = {
                let mut st = lock(&self.link.slot.state);
                let step = self.decoder.take(&mut st);
                let end = match step {
                    None => self.decoder.ended(&st),
                    Some(_) => None,
                };
                (step, end)
            };
            let owed = self.link.consumed(self.decoder.consumed);
            if let Some(step) = step {
                return step;
            }
            if let Some(e) = end {
                self.decoder.state = RxState::Failed;
                return Err(e);
            }
            self.link.wait(&self.link.slot.data_ready, owed).await?;
        }
    }

    fn info(&self) -> ChannelInfo {
        self.link.info.clone()
    }
}

/// A [`Channel`](ipc_core::Channel) to another process over real-time signals
/// (Linux): the [`Duplex`] of a [`SignalSender`] and a [`SignalReceiver`];
/// [`SignalChannelExt`] adds the peer's pid.
///
/// See the [crate docs](crate) for the wire format, the flow control and what a process
/// must do first (block the transport signals). Obtain one with [`spawn`], [`connect`],
/// [`connect_from_env`] or the [`SignalTransport`](crate::SignalTransport).
///
/// Like any tokio I/O object, the channel (and its halves) is registered with the
/// runtime it was created on, which must keep running while the channel is used.
///
/// ```no_run
/// # async fn demo() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// // In a child started by `ipc_signal::spawn` (or any signal-transport parent):
/// let mut ch = ipc_signal::connect_from_env(&ipc_core::Options::from_env()).await?;
/// while let Some(frame) = ch.recv().await? {
///     ch.send(frame).await?; // echo
/// }
/// Ok(ch.close().await?)
/// # }
/// ```
pub type SignalChannel = Duplex<SignalSender, SignalReceiver>;

/// The halves of a channel over `link`.
fn halves(link: Arc<Link>, config: FrameConfig) -> SignalChannel {
    let pid = link.pid;
    Duplex::new(
        FrameSink::new(SignalOutbox {
            link: link.clone(),
            out: None,
            closed: false,
            max_frame: config.max_frame(),
        }),
        FrameStream::new(SignalInbox {
            decoder: Decoder {
                state: RxState::Header,
                consumed: 0,
                max_frame: config.max_frame(),
                pid,
            },
            link,
        }),
    )
}

/// What a [`SignalChannel`] adds to a [`Channel`](ipc_core::Channel).
///
/// ```no_run
/// # async fn demo() -> ipc_core::Result<()> {
/// use ipc_signal::SignalChannelExt;
/// let ch = ipc_signal::connect(4242, &ipc_core::Options::default()).await?;
/// assert_eq!(ch.peer_pid(), 4242);
/// # Ok(()) }
/// ```
pub trait SignalChannelExt {
    /// The peer's process id.
    fn peer_pid(&self) -> u32;

    /// Signals cannot carry file descriptors: always [`Error::Unsupported`].
    fn send_with_fds(
        &mut self,
        frame: Bytes,
        fds: &[BorrowedFd<'_>],
    ) -> impl std::future::Future<Output = Result<()>> + Send;

    /// Signals cannot carry file descriptors: always [`Error::Unsupported`].
    fn recv_with_fds(
        &mut self,
    ) -> impl std::future::Future<Output = Result<Option<(Bytes, Vec<OwnedFd>)>>> + Send;
}

impl SignalChannelExt for SignalChannel {
    fn peer_pid(&self) -> u32 {
        // Always known: a signal channel is opened to a pid.
        SendHalf::info(self.sender()).peer_pid.unwrap_or_default()
    }

    async fn send_with_fds(&mut self, _frame: Bytes, _fds: &[BorrowedFd<'_>]) -> Result<()> {
        Err(Error::unsupported(NAME, "passing file descriptors"))
    }

    async fn recv_with_fds(&mut self) -> Result<Option<(Bytes, Vec<OwnedFd>)>> {
        Err(Error::unsupported(NAME, "passing file descriptors"))
    }
}

/// Open a channel to process `pid`, which opens one back to us (a child started by
/// [`spawn`] does so through [`connect_from_env`]), waiting up to the
/// [handshake timeout](Options::handshake_timeout) of `options` (default
/// [`DEFAULT_CONNECT_TIMEOUT`], 5 s) for its hello (the sign that its channel to us
/// exists).
///
/// Before the first signal goes out, the target must be safe to signal: it must block
/// (in every thread), catch or ignore both transport signals, as read from
/// `/proc/PID/task/*/status`. Otherwise — an ordinary program, which the signals'
/// default action would kill — `connect` fails with [`Error::Handshake`] and sends
/// nothing. The peer is then addressed through a pidfd only, so a process that later
/// gets its pid is never signalled.
///
/// Fails with [`Error::Handshake`] naming `pid` if the peer does not answer in time
/// (it blocks the signals but has no channel to us), or exits first;
/// [`Error::Unsupported`] unless every thread of this process blocks the transport
/// signals (see [`block_transport_signals`](crate::block_transport_signals)), or if
/// this process already has a channel to `pid`.
///
/// ```no_run
/// # async fn demo() -> ipc_core::Result<()> {
/// use std::time::Duration;
/// use ipc_signal::SignalChannelExt;
/// let opts = ipc_core::Options::default().handshake_timeout(Duration::from_secs(30));
/// let ch = ipc_signal::connect(4242, &opts).await?;
/// assert_eq!(ch.peer_pid(), 4242);
/// # Ok(()) }
/// ```
pub async fn connect(pid: u32, options: &Options) -> Result<SignalChannel, ConnectError> {
    let config = options.frame_config();
    let timeout = options.get_handshake_timeout();
    ensure_blocked()?;
    let link = Link::open(pid, config.max_frame(), true)?;
    let channel = halves(link.clone(), config);
    match tokio::time::timeout(timeout, link.wait_for_hello()).await {
        Ok(Ok(())) => Ok(channel),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(Error::Handshake(format!(
            "process {pid} did not answer within {timeout:?}: it accepts the transport's \
             signals but has not opened a signal channel to this process (pid {}). Start \
             the peer first, have it connect to this pid, or allow more time with \
             Options::handshake_timeout",
            std::process::id()
        ))
        .into()),
    }
}

/// In a child: open the channel to the parent named by `IPC_ENDPOINT`
/// (`signal:pid=N`), with `options` (usually [`Options::from_env`], which has the
/// frame limit from `IPC_MAX_FRAME`).
///
/// ```no_run
/// # async fn demo() -> ipc_core::Result<()> {
/// let ch = ipc_signal::connect_from_env(&ipc_core::Options::from_env()).await?;
/// # let _ = ch; Ok(()) }
/// ```
pub async fn connect_from_env(options: &Options) -> Result<SignalChannel, ConnectError> {
    match ipc_core::env::endpoint_from_env()? {
        Endpoint::Signal { pid } => connect(pid, options).await,
        other => Err(Error::BadEndpoint {
            input: other.to_string(),
            reason: "the signal transport serves signal:pid=N endpoints only".into(),
        }
        .into()),
    }
}

/// Start `command` as a child with a signal channel to it.
///
/// The child gets `IPC_ENDPOINT=signal:pid=<this pid>` and `IPC_MAX_FRAME`, and starts
/// with the transport signals blocked (inherited from this thread's mask, and blocked
/// again just before `exec`), so signals sent to it before it opened its end wait in its
/// queue instead of killing it.
///
/// ```no_run
/// # async fn demo() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// let cmd = std::process::Command::new("/path/to/child");
/// let (mut child, mut ch) = ipc_signal::spawn(cmd, &ipc_core::Options::default()).await?;
/// ch.send("ping".into()).await?;
/// let reply = ch.recv().await?;
/// ch.close().await?;
/// child.wait().await?;
/// # let _ = reply; Ok(()) }
/// ```
pub async fn spawn(
    mut command: Command,
    options: &Options,
) -> Result<(Child, SignalChannel), SpawnError> {
    let config = options.frame_config();
    ensure_blocked()?;
    ipc_core::spawn::set_child_env(
        &mut command,
        &Endpoint::Signal {
            pid: std::process::id(),
        },
        None,
        options,
    );
    let set = transport_sigset();
    // SAFETY: the closure runs in the forked child before exec and only calls
    // pthread_sigmask (async-signal-safe) on a sigset_t copied in before the fork.
    unsafe {
        command.pre_exec(move || {
            let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc));
            }
            Ok(())
        });
    }
    let child = ipc_core::spawn::spawn_child(command)?;
    // Our child: it cannot be reaped (nor its pid reused) before its pidfd is open,
    // and it blocks the signals (set above), so no /proc check is needed.
    let link = Link::open(child.pid(), config.max_frame(), false)?;
    Ok((child, halves(link, config)))
}
