//! # ipc-signal
//!
//! Signals for the ipc toolkit, in both of their roles:
//!
//! - **Process control**, what Node programs use signals for: [`shutdown_signal`] (the
//!   first SIGINT, SIGTERM or SIGQUIT), [`kill`], and a graceful-shutdown helper
//!   ([`GracefulShutdown`], [`run_until_shutdown`]) that stops taking work, lets the
//!   work in flight finish, cleans up and exits with the conventional status.
//! - **A data channel** (Linux, 64-bit): a [`Channel`](ipc_core::Channel) carried by
//!   real-time signals sent with `sigqueue(3)`, 8 payload bytes per signal. Slow — one
//!   system call per 8 bytes, about 2–3 MB/s one way (measured with a debug build on a
//!   2-core VM) — and meant for small frames, but it needs no socket, pipe or file: only
//!   the peer's pid. [`SignalTransport`] (`"signal"`, endpoint `signal:pid=N`), [`spawn`],
//!   [`connect`], [`connect_from_env`].
//!
//! # First thing in `main`: block the transport signals
//!
//! The data channel's signals ([`DATA_SIGNAL`] 37 and [`CONTROL_SIGNAL`] 38) must be
//! blocked in **every** thread, so the kernel queues them for the channel's `signalfd`
//! instead of delivering them — their default action kills the process. A thread
//! inherits its creator's signal mask, so block them in `main` before any thread starts
//! (including the tokio runtime's), with [`block_transport_signals`] or by running the
//! program's future through [`run`]:
//!
//! ```no_run
//! fn main() -> ipc_core::Result<()> {
//!     // Blocks the signals, then builds a multi-threaded runtime and runs the future.
//!     ipc_signal::run(async {
//!         let cmd = std::process::Command::new("/path/to/child");
//!         let (mut child, mut ch) = ipc_signal::spawn(cmd, &ipc_core::Options::default()).await?;
//!         use ipc_core::prelude::*;
//!         ch.send("ping".into()).await?;
//!         let _pong = ch.recv().await?;
//!         ch.close().await?;
//!         child.wait().await?;
//!         Ok(())
//!     })?
//! }
//! ```
//!
//! or, with your own runtime (`#[tokio::main]` builds its runtime before your code runs,
//! too late):
//!
//! ```no_run
//! fn main() -> ipc_core::Result<()> {
//!     ipc_signal::block_transport_signals()?; // before any thread exists
//!     let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
//!     runtime.block_on(async { /* channels work here */ Ok(()) })
//! }
//! ```
//!
//! [`connect`] and [`spawn`] check the mask of every thread (`/proc/self/task/*/status`)
//! and refuse with [`Error::Unsupported`](ipc_core::Error::Unsupported) naming the
//! offending thread, rather than let an arriving frame kill the process: a
//! `#[tokio::main]` program that forgot the call gets that error, not a kill.
//!
//! This one call is why the signal transport is opt-in in the `ipc-kit` facade (feature
//! `signal`, module `ipc::signal`): every other transport works under `#[tokio::main]`
//! as it is. There, `ipc::run` (a single-threaded runtime) makes the call for you.
//!
//! **Children inherit the blocked mask** across `fork` and `exec` (and [`spawn`] blocks
//! the signals again just before `exec`). That is what makes the protocol work with a
//! child that has only just started: signals the parent sends before the child has
//! opened its end wait in the child's queue instead of killing it. A child that is not
//! an ipc program inherits the mask too; it is harmless unless that program expects
//! those two signals.
//!
//! # Wire format
//!
//! Each signal carries one 64-bit word in `sigval.sival_ptr` (`ssi_ptr` at the
//! receiver); "bytes" are the word's big-endian bytes.
//!
//! ```text
//! DATA_SIGNAL (37): per frame, a header, then ceil(len/8) chunks, in order
//!   header   0x5347 "SG" (16 bits) | kind (8) | 0 (8) | len (32)
//!            kind 0x01 = frame of len bytes; 0x02 = goodbye (len 0): closed cleanly
//!   chunk i  payload bytes 8i..8i+7 (the last one zero-padded)
//!
//! CONTROL_SIGNAL (38): kind (8 bits) | value (56 bits)
//!   0x01 HELLO  version 1 (bits 39..32) | window (bits 31..0)   my end exists
//!   0x02 ACK    data signals consumed from you so far (mod 2^56)
//!   0x03 GONE   data signals I sent you in total (mod 2^56)     my end is dropped
//!   0x04 ABORT  data signals I sent you in total (mod 2^56)     my sending half was
//!                                                               dropped mid-frame
//!
//! "hi"    ->  37: 0x5347_0100_0000_0002   37: 0x6869_0000_0000_0000
//! ""      ->  37: 0x5347_0100_0000_0000
//! close   ->  37: 0x5347_0200_0000_0000
//! ```
//!
//! **Order.** Real-time signals of one number from one sender are queued and delivered
//! in FIFO order, and none is lost while queued; frames therefore use one signal number.
//! Between the two numbers there is no order (the kernel hands out the lower number
//! first), so control words never depend on their position among data signals: counts
//! say what they refer to.
//!
//! **Flow control.** Each side opens its end by sending HELLO with its receive window W
//! ([`receive_window`]: at most [`MAX_WINDOW`] = 256, and at most 1/64 of
//! `RLIMIT_SIGPENDING`, the per-*user* limit on queued signals that every channel of
//! the user shares). A side sends no data before the peer's HELLO, and never has more
//! than the peer's W data signals unacknowledged; the receiver sends an ACK each time it
//! has consumed another W/4. So the peer's queue for us never holds more than W signals,
//! and `send` waits when the window is full: no unbounded queue anywhere. If `sigqueue`
//! still fails with `EAGAIN` (other channels of the same user fill the limit), the
//! sender waits for acknowledgements or retries after 5 ms; it does not fail.
//!
//! **Frame limit.** A send over `max_frame` fails with `FrameTooLarge` and sends
//! nothing. A header announcing more than `max_frame` gives `FrameTooLarge` for that
//! frame; its chunks are counted off and discarded as they arrive, never buffered, and
//! the next frame is delivered.
//!
//! **End.** `close` sends the goodbye header; the peer's `recv` then returns `Ok(None)`.
//! Dropping a channel (or its sending half) without closing it is an abort: no goodbye,
//! but ABORT (and GONE when the whole channel goes), even while the receiving half
//! lives on; the peer's `recv` fails with
//! [`Error::PeerLost`](ipc_core::Error::PeerLost) ("dropped ... without closing it")
//! once it has read what came before, instead of waiting for more or for the rest of a
//! half-sent frame. A peer process that dies sends
//! nothing: each channel watches its peer's pidfd, and once the peer has exited and
//! every signal it sent has been read, `recv` returns `PeerLost` and `send` stops
//! waiting. A `send` that fails because the peer's end is gone gives
//! [`Error::Closed`](ipc_core::Error::Closed) if the peer's goodbye had reached us
//! (read or not), `PeerLost` otherwise; a `send` after our own `close` gives `Closed`.
//!
//! # Never signalling a stranger
//!
//! The transport's signals kill a process that does not expect them, so:
//!
//! - **The peer is a pidfd, not a number.** A channel opens the peer's pidfd
//!   (`pidfd_open`) at first contact — [`spawn`] right after starting the child (which
//!   cannot be reaped, so its pid cannot change hands, before that), [`connect`] before
//!   its first signal — and sends every signal through it (`pidfd_send_signal` with the
//!   `siginfo` that `sigqueue(3)` would build). Once the peer has exited and been
//!   reaped, its pid may be given to a new process; the pidfd still refers to the dead
//!   one, so the kernel refuses (`ESRCH`, reported as `PeerLost`) instead of
//!   signalling the newcomer. There is no fallback to `kill`/`sigqueue` by pid: on
//!   kernels without pidfds (before 5.3) the data channel is refused
//!   ([`Error::Unsupported`](ipc_core::Error::Unsupported)).
//! - **`connect` checks the target first.** It reads `/proc/PID/task/*/status` and
//!   refuses with [`Error::Handshake`](ipc_core::Error::Handshake), sending nothing,
//!   unless both signals are blocked in every thread of the target, or caught or
//!   ignored (`SigBlk`, `SigCgt`, `SigIgn`). The read is checked against the pidfd
//!   (still the same process afterwards), so it is not fooled by pid reuse either.
//!   Then it waits for the peer's HELLO, [`DEFAULT_CONNECT_TIMEOUT`] (5 s) or as long as
//!   [`Options::handshake_timeout`](ipc_core::Options::handshake_timeout) says, and fails with `Handshake` naming the pid if
//!   none comes.
//!
//! # One process, many channels
//!
//! Signals from every peer arrive in one process-wide queue. There is one signalfd per
//! process; each channel registers a duplicate of it with its own runtime's reactor, and
//! whichever channel finds it readable reads many `signalfd_siginfo` per `read` and routes
//! each by `ssi_pid` into that peer's queue, waking the peer's waiting task (on any
//! runtime). Reading and routing hold one lock, so each peer's order is kept. A signal
//! from a pid without a channel is dropped and counted ([`dropped_signals`]). Signals
//! carry no channel id, so a process has at most one channel per peer pid at a time.
//!
//! # A child that stops gracefully on SIGTERM
//!
//! ```no_run
//! use std::process::ExitCode;
//! use std::time::Duration;
//! use ipc_core::prelude::*;
//! use ipc_signal::GracefulShutdown;
//!
//! fn main() -> ExitCode {
//!     let shutdown = GracefulShutdown::new().grace_period(Duration::from_secs(1));
//!     let outcome = ipc_signal::run(shutdown.run(
//!         |handle| async move {
//!             let mut parent = ipc_signal::connect_from_env(&ipc_core::Options::from_env()).await?;
//!             loop {
//!                 tokio::select! {
//!                     () = handle.wait() => break,      // SIGTERM: stop taking jobs
//!                     job = parent.recv() => match job? {
//!                         // In flight: finishes (within the grace period) even
//!                         // after SIGTERM.
//!                         Some(job) => drop(handle.spawn(async move { job.len() })),
//!                         None => break,
//!                     },
//!                 }
//!             }
//!             Ok(parent.close().await?)
//!         },
//!         |reason| async move { eprintln!("child: cleaned up after {reason:?}") },
//!     ));
//!     match outcome {
//!         // 0 after a graceful stop, 143 if SIGTERM's grace period ran out.
//!         Ok(outcome) => outcome.exit_code(),
//!         Err(e) => {
//!             eprintln!("child: {e}");
//!             ExitCode::FAILURE
//!         }
//!     }
//! }
//! ```
//!
//! # What the OS guarantees, and what it does not
//!
//! - Queued real-time signals are reliable and ordered per signal number and sender, up
//!   to `RLIMIT_SIGPENDING` per receiving user (`sigqueue` then fails with `EAGAIN`,
//!   which the window avoids and the sender waits out). See `signal(7)`, `sigqueue(3)`.
//! - `ssi_pid` is what the sender says: the kernel fills it in for `kill(2)`, but a
//!   `sigqueue`-style sender (`rt_sigqueueinfo`, `pidfd_send_signal`, as here)
//!   supplies it and the kernel does not check it. Any process allowed to signal us
//!   (the same user, or `CAP_KILL`) can therefore inject words that look like they come
//!   from our peer — the same processes that could `ptrace` us anyway. Signals from
//!   pids without a channel are dropped; the peer's pid is trusted.
//! - Throughput is bounded by one system call per 8 bytes sent.
//!
//! # Platform-specific behavior
//!
//! - **Linux, 64-bit**: the data channel (signalfd, `pidfd_open` and
//!   `pidfd_send_signal` on Linux 5.3+, 8-byte `sival_ptr`, `/proc` for the target
//!   check). Built and tested on Linux.
//! - **Elsewhere**: [`SignalTransport`]'s `connect` and `spawn` return
//!   [`Error::Unsupported`](ipc_core::Error::Unsupported); the process-control helpers
//!   ([`shutdown_signal`], [`kill`], [`GracefulShutdown`]) need only Unix signals but are
//!   untested there.
//! - The runtime running a channel needs tokio's I/O and time drivers (`enable_all`,
//!   as `#[tokio::main]` and [`run`] do).

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
mod channel;
mod control;
mod graceful;
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
mod link;
// Blocking works on any Linux; the rest of it serves the 64-bit data channel.
#[cfg(target_os = "linux")]
#[cfg_attr(not(target_pointer_width = "64"), allow(dead_code))]
mod mask;
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
mod pidfd;
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
mod router;
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
mod target;
mod transport;
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
mod wire;

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
pub use channel::{
    connect, connect_from_env, spawn, SignalChannel, SignalChannelExt, SignalInbox, SignalOutbox,
    SignalReceiver, SignalSender, DEFAULT_CONNECT_TIMEOUT,
};
pub use control::{kill, shutdown_signal, ShutdownSignals};
pub use graceful::{
    run_until_shutdown, GracefulShutdown, Outcome, ShutdownHandle, StopReason, DEFAULT_GRACE,
};
pub use ipc_core::Signal;
#[cfg(target_os = "linux")]
pub use mask::{CONTROL_SIGNAL, DATA_SIGNAL};
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
pub use router::dropped_signals;
pub use transport::SignalTransport;
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
pub use wire::{receive_window, MAX_WINDOW};

use std::future::Future;

/// Block [`DATA_SIGNAL`] and [`CONTROL_SIGNAL`] in the calling thread, so they queue for
/// the data channel's signalfd instead of killing the process.
///
/// Call it first thing in `main`, before any thread or tokio runtime starts: threads
/// inherit the mask of the thread that creates them, and so do child processes. Fails
/// if another thread that does not block them already exists (it was called too late);
/// the calling thread's mask is changed anyway. Idempotent. See the
/// [crate docs](crate#first-thing-in-main-block-the-transport-signals).
///
/// ```
/// ipc_signal::block_transport_signals()?;
/// # Ok::<(), ipc_core::Error>(())
/// ```
pub fn block_transport_signals() -> ipc_core::Result<()> {
    #[cfg(target_os = "linux")]
    {
        mask::block_in_this_thread()?;
        let offenders = mask::unblocked_threads()?;
        if !offenders.is_empty() {
            return Err(ipc_core::Error::unsupported(
                "signal",
                format!(
                    "blocking the transport signals after other threads started: thread(s) \
                     {} do not block them. Call ipc_signal::block_transport_signals() first \
                     thing in main, before any thread or runtime starts",
                    offenders.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Block the transport signals, build a multi-threaded tokio runtime (all drivers
/// enabled) and run `future` on it to completion: a `main` for programs that use the
/// signal transport. Fails only if the signals cannot be blocked or the runtime cannot
/// be built.
///
/// ```no_run
/// fn main() -> ipc_core::Result<()> {
///     ipc_signal::run(async {
///         let ch = ipc_signal::connect_from_env(&ipc_core::Options::from_env()).await?;
///         # let _ = ch;
///         Ok(())
///     })?
/// }
/// ```
pub fn run<F: Future>(future: F) -> ipc_core::Result<F::Output> {
    block_transport_signals()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(future))
}
