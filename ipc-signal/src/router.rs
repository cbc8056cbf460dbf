//! The process-wide signalfd and the demultiplexer behind it.
//!
//! Signals from every peer land in one process-wide queue, so there is one signalfd per
//! process. Whichever channel task finds it readable drains it (many `signalfd_siginfo`
//! per `read`) and routes each signal by `ssi_pid` into that peer's [`Slot`], waking the
//! slot's waiters with a [`Notify`] (which works across runtimes). Reading and routing
//! happen under one lock, so each peer's signals stay in the kernel's FIFO order.
//! Signals from a pid with no channel are dropped and counted ([`dropped_signals`]),
//! except a HELLO, which is remembered for a moment: a child may greet its parent before
//! the parent has learned the child's pid.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use ipc_core::{Error, Result};
use tokio::sync::Notify;

use crate::mask::{check_signal_range, transport_sigset, CONTROL_SIGNAL, DATA_SIGNAL};
use crate::wire::{self, parse_control, widen, Control, Header, VERSION};

/// HELLOs from pids without a channel kept for a later `register`.
const EARLY_HELLOS: usize = 64;

/// `signalfd_siginfo` records read per `read` call.
const BATCH: usize = 32;

/// Lock, ignoring poisoning: every critical section leaves the data consistent.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What this process knows about one peer, filled by the router.
pub(crate) struct SlotState {
    /// Data signals from the peer, not yet consumed by `recv`.
    pub(crate) queue: VecDeque<u64>,
    /// Most entries `queue` may hold (our window, plus one spare entry: an older peer
    /// sent a goodbye beyond the window when its sender was dropped).
    limit: usize,
    /// Data signals routed into `queue` so far.
    pub(crate) routed: u64,
    /// The window the peer granted in its HELLO; `None` until it greeted us.
    pub(crate) peer_window: Option<u32>,
    /// Our data signals the peer has consumed.
    pub(crate) peer_acked: u64,
    /// The peer dropped its channel after sending this many data signals.
    pub(crate) peer_gone_at: Option<u64>,
    /// The peer dropped its sending half mid-frame after this many data signals.
    pub(crate) peer_abort_at: Option<u64>,
    /// The peer process exited and every signal it sent has been routed.
    pub(crate) peer_exited: bool,
    /// Chunk signals still due for the frame whose header was routed last: tells
    /// headers from chunks, so the goodbye is noticed as it is routed.
    chunks_due: u64,
    /// The peer's goodbye has been routed to us (it closed cleanly), read or not.
    pub(crate) goodbye_routed: bool,
    /// The peer broke the protocol; the channel is unusable.
    pub(crate) fault: Option<String>,
}

/// One peer's queue and wake-ups.
pub(crate) struct Slot {
    pub(crate) pid: u32,
    pub(crate) state: Mutex<SlotState>,
    /// Woken when data arrives (or the peer's state changes): the receiving side waits here.
    pub(crate) data_ready: Notify,
    /// Woken when the peer acknowledges or greets (or its state changes): the sending side.
    pub(crate) acks_ready: Notify,
}

impl Slot {
    /// Wake both sides.
    pub(crate) fn wake_all(&self) {
        self.data_ready.notify_one();
        self.acks_ready.notify_one();
    }

    fn apply_hello(&self, st: &mut SlotState, word: u64) {
        if let Control::Hello { version, window } = parse_control(word) {
            if version != VERSION {
                st.fault = Some(format!(
                    "process {} speaks signal protocol version {version}, this is version {VERSION}",
                    self.pid
                ));
            } else if window == 0 {
                st.fault = Some(format!(
                    "process {} granted a window of 0 signals",
                    self.pid
                ));
            } else {
                st.peer_window = Some(window);
            }
        }
    }

    /// Take one signal from the peer. False if it was refused (and should be counted).
    fn deliver(&self, signo: libc::c_int, word: u64) -> bool {
        let mut st = lock(&self.state);
        if signo == DATA_SIGNAL {
            if st.queue.len() >= st.limit {
                st.fault = Some(format!(
                    "process {} sent more than the {} unacknowledged signals it was allowed",
                    self.pid, st.limit
                ));
                drop(st);
                self.wake_all();
                return false;
            }
            if st.chunks_due > 0 {
                st.chunks_due -= 1;
            } else {
                match wire::parse_header(word) {
                    Header::Frame(len) => st.chunks_due = wire::chunk_count(u64::from(len)),
                    Header::Goodbye => st.goodbye_routed = true,
                    // The receiving half reports it when it gets there.
                    Header::Invalid => {}
                }
            }
            st.queue.push_back(word);
            st.routed += 1;
            drop(st);
            self.data_ready.notify_one();
            return true;
        }
        match parse_control(word) {
            Control::Hello { .. } => self.apply_hello(&mut st, word),
            Control::Ack(low) => st.peer_acked = widen(st.peer_acked, low),
            Control::Gone(low) => st.peer_gone_at = Some(widen(st.routed, low)),
            Control::Abort(low) => st.peer_abort_at = Some(widen(st.routed, low)),
            Control::Unknown => return false,
        }
        drop(st);
        self.wake_all();
        true
    }
}

#[derive(Default)]
struct Peers {
    slots: HashMap<u32, Arc<Slot>>,
    early_hellos: VecDeque<(u32, u64)>,
}

/// The process-wide signalfd and the per-peer slots.
pub(crate) struct Router {
    fd: OwnedFd,
    /// Held while reading and routing, so a peer's signals keep their order.
    read_lock: Mutex<()>,
    peers: Mutex<Peers>,
    dropped: AtomicU64,
}

static ROUTER: OnceLock<Router> = OnceLock::new();
static ROUTER_INIT: Mutex<()> = Mutex::new(());

/// The router, created with the signalfd on first use.
pub(crate) fn router() -> Result<&'static Router> {
    if let Some(router) = ROUTER.get() {
        return Ok(router);
    }
    let _init = lock(&ROUTER_INIT);
    if let Some(router) = ROUTER.get() {
        return Ok(router);
    }
    let router = Router::new()?;
    Ok(ROUTER.get_or_init(move || router))
}

/// Signals this process received on the transport's signal numbers that belonged to no
/// channel: from a pid without an open channel (a stranger, or a peer whose channel was
/// already dropped), not sent with `sigqueue`, an unknown control word, or beyond a
/// peer's window. They are discarded.
///
/// ```
/// assert_eq!(ipc_signal::dropped_signals(), 0); // no channel, nothing read yet
/// ```
pub fn dropped_signals() -> u64 {
    ROUTER
        .get()
        .map_or(0, |r| r.dropped.load(Ordering::Relaxed))
}

impl Router {
    fn new() -> Result<Router> {
        check_signal_range()?;
        let set = transport_sigset();
        // SAFETY: `set` is an initialised sigset_t; -1 asks for a new signalfd.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return Err(Error::Io(io::Error::new(
                e.kind(),
                format!("could not create the signalfd for the signal transport: {e}"),
            )));
        }
        // SAFETY: signalfd returned a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Router {
            fd,
            read_lock: Mutex::new(()),
            peers: Mutex::new(Peers::default()),
            dropped: AtomicU64::new(0),
        })
    }

    /// A close-on-exec duplicate of the signalfd, for one runtime's reactor.
    pub(crate) fn dup_fd(&self) -> io::Result<OwnedFd> {
        self.fd.as_fd().try_clone_to_owned()
    }

    /// Open the slot for `pid`, granting it `window`. One channel per peer at a time.
    pub(crate) fn register(&self, pid: u32, window: u32) -> Result<Arc<Slot>> {
        let mut peers = lock(&self.peers);
        if peers.slots.contains_key(&pid) {
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!(
                    "this process already has a signal channel to process {pid}; signals \
                     carry no channel id, so there can be only one per peer at a time"
                ),
            )));
        }
        let limit = window as usize + 1;
        let slot = Arc::new(Slot {
            pid,
            state: Mutex::new(SlotState {
                queue: VecDeque::with_capacity(limit),
                limit,
                routed: 0,
                peer_window: None,
                peer_acked: 0,
                peer_gone_at: None,
                peer_abort_at: None,
                peer_exited: false,
                chunks_due: 0,
                goodbye_routed: false,
                fault: None,
            }),
            data_ready: Notify::new(),
            acks_ready: Notify::new(),
        });
        if let Some(i) = peers.early_hellos.iter().position(|(p, _)| *p == pid) {
            if let Some((_, word)) = peers.early_hellos.remove(i) {
                slot.apply_hello(&mut lock(&slot.state), word);
            }
        }
        peers.slots.insert(pid, slot.clone());
        Ok(slot)
    }

    /// Close `slot`: later signals from its pid are dropped.
    pub(crate) fn unregister(&self, slot: &Arc<Slot>) {
        let mut peers = lock(&self.peers);
        if peers
            .slots
            .get(&slot.pid)
            .is_some_and(|s| Arc::ptr_eq(s, slot))
        {
            peers.slots.remove(&slot.pid);
        }
    }

    /// Read and route until the signalfd is empty. Ends with `Err(WouldBlock)` when it
    /// is (which is what clears a reactor's readiness), or another error.
    pub(crate) fn drain(&self) -> io::Result<()> {
        let _reading = lock(&self.read_lock);
        // SAFETY: signalfd_siginfo is plain old data; all zeroes is a valid value.
        let mut buf: [libc::signalfd_siginfo; BATCH] = unsafe { std::mem::zeroed() };
        let record = std::mem::size_of::<libc::signalfd_siginfo>();
        loop {
            // SAFETY: `buf` is writable for its whole size; the kernel writes whole records.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    std::mem::size_of_val(&buf),
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let count = n as usize / record;
            if count == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.route(&buf[..count]);
        }
    }

    fn route(&self, infos: &[libc::signalfd_siginfo]) {
        let mut peers = lock(&self.peers);
        // Counted at once, before later signals of the batch wake anyone.
        let refuse = || {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        };
        for info in infos {
            let signo = info.ssi_signo as libc::c_int;
            if info.ssi_code != libc::SI_QUEUE || (signo != DATA_SIGNAL && signo != CONTROL_SIGNAL)
            {
                refuse();
                continue;
            }
            match peers.slots.get(&info.ssi_pid) {
                Some(slot) => {
                    if !slot.deliver(signo, info.ssi_ptr) {
                        refuse();
                    }
                }
                None if signo == CONTROL_SIGNAL
                    && matches!(parse_control(info.ssi_ptr), Control::Hello { .. }) =>
                {
                    if peers.early_hellos.len() == EARLY_HELLOS {
                        peers.early_hellos.pop_front();
                        refuse();
                    }
                    peers.early_hellos.push_back((info.ssi_pid, info.ssi_ptr));
                }
                None => refuse(),
            }
        }
    }
}
