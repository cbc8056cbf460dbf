//! # ipc-pipe
//!
//! Pipes for the ipc toolkit: a [`Channel`](ipc_core::Channel) made of two half-duplex
//! pipes, one for each direction, driven by tokio's reactor
//! ([`tokio::net::unix::pipe`], no blocking threads). Two transports:
//!
//! | transport | how | API | endpoint |
//! |---|---|---|---|
//! | `pipe` | two anonymous pipes, the child inherits its ends as fds 3 and 4 | [`spawn_pipe`], [`connect_inherited`], [`PipeTransport`] | `pipe:fd=3,4` (child side) |
//! | `fifo` | a FIFO pair in a private directory, found by name | [`FifoListener`], [`connect_fifo`], [`spawn_fifo`], [`FifoTransport`] | `fifo:/DIR` |
//! | — | two ends in this process | [`pipe_pair`] | — |
//!
//! Anonymous pipes have no name: only a parent and the child it spawns can use them, so
//! the `pipe` transport cannot listen. A FIFO pair can be opened by any process of the
//! same user that knows the directory, so `fifo` listens and connects, one client at a
//! time.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
//! use ipc_core::prelude::*;
//!
//! let (mut parent, mut child) = ipc_pipe::pipe_pair(&ipc_core::Options::default())?;
//! parent.send("ping".into()).await?;
//! assert_eq!(child.recv().await?.as_deref(), Some(&b"ping"[..]));
//! child.send("pong".into()).await?;
//! assert_eq!(parent.recv().await?.as_deref(), Some(&b"pong"[..]));
//!
//! parent.close().await?;
//! assert_eq!(child.recv().await?, None); // a clean close, not a crash
//! # Ok(()) }
//! ```
//!
//! # Wire format
//!
//! Both transports carry the toolkit's shared length-prefixed frames
//! ([`LengthCodec`](ipc_core::frame::LengthCodec), see `docs/PROTOCOL.md`): a `u32`
//! big-endian length, then the payload; `FF FF FF FF` is the goodbye of a clean close.
//! Each direction is its own pipe, so each pipe carries one frame stream, written by
//! exactly one writer.
//!
//! # Anonymous pipes (`pipe:fd=R,W`)
//!
//! [`spawn_pipe`] makes two `pipe2(O_CLOEXEC)` pairs, places the child's read end at
//! fd 3 and its write end at fd 4 (only those are inherited), sets
//! `IPC_ENDPOINT=pipe:fd=3,4` and `IPC_MAX_FRAME`, spawns, and closes its copies of the
//! child's ends. In the child, [`connect_inherited`] (or `connect_from_env()`) checks
//! with `fstat` that both fds are pipes with the right access mode, makes them
//! close-on-exec and wraps them; each fd can be taken once per process.
//!
//! # FIFO pairs (`fifo:DIR`)
//!
//! Layout of `DIR` (created by [`FifoListener::bind`] with mode 0700; an existing
//! directory must be ours and have no group or other permissions):
//!
//! ```text
//! DIR/            0700, owned by the listener's user
//!   lock          0600 regular file: the listener's pid; clients flock it
//!   c2s           0600 FIFO, client -> server   } the pair waiting for the next client;
//!   s2c           0600 FIFO, server -> client   } each pair serves one connection only
//! ```
//!
//! **Listener.** For each connection it creates a fresh pair: `mkfifo` under temporary
//! names (`c2s.new`, `s2c.new`, mode 0600), opens `c2s.new` `O_RDONLY|O_NONBLOCK` and
//! `s2c.new` `O_WRONLY|O_NONBLOCK` (holding a reader for that instant), then renames
//! them to `c2s` and `s2c`. So whenever a pair is in place, the listener holds the
//! other end of each FIFO, and a client's opens never block. `accept` reads the hello
//! from `c2s`, then puts the next fresh pair in place and returns the channel.
//!
//! **Client** ([`connect_fifo`]), in this order:
//!
//! 1. Check that `DIR` is a directory (not a symlink) owned by our uid, with no group
//!    or other permission bits.
//! 2. `open(DIR/lock, O_RDONLY|O_CLOEXEC)` and `flock(LOCK_EX|LOCK_NB)`; keep it for
//!    the lifetime of the connection. `EWOULDBLOCK` means another client is connected:
//!    [`Error::Unsupported`](ipc_core::Error::Unsupported) ("a FIFO pair serves one
//!    peer at a time"). Read the listener's pid from it.
//! 3. `open(DIR/c2s, O_WRONLY|O_NONBLOCK|O_CLOEXEC)`: `ENXIO` means nobody reads it
//!    (the listener died); `ENOENT` means no free pair (the listener has not accepted
//!    the previous client yet).
//! 4. `open(DIR/s2c, O_RDONLY|O_NONBLOCK|O_CLOEXEC)`.
//! 5. Claim the pair: `rename(c2s, c2s.claimed)`, check that it is the FIFO opened in
//!    step 3 (same `st_dev`/`st_ino`), `unlink(c2s.claimed)`; the same for `s2c`. If a
//!    name turns out not to be ours (the listener replaced the pair in between), give
//!    it back (`link` + `unlink`) and start again from step 3 (three attempts).
//! 6. Write the hello, one frame in one `write` (atomic: under `PIPE_BUF`):
//!    `u32` big-endian length, then `ipc-fifo/1 pid=<decimal pid>` (at most 64 bytes).
//!    `EPIPE` means the listener dropped the pair: start again from step 3.
//! 7. Exchange frames: write `c2s`, read `s2c`.
//!
//! Why it never deadlocks: every open is non-blocking and succeeds at once while the
//! listener lives (it holds the other ends); the only waits are for data, and
//! `connect_fifo` does not wait for `accept` (the hello waits in the pipe). Why it never
//! corrupts a stream: a pair is claimed (its names removed) before any byte is written,
//! and the lock keeps out other clients meanwhile, so each pair has exactly one client
//! ever; bytes left in a finished pair, or written to it later by a stale server
//! channel, cannot reach the next client, which gets a pair of its own.
//!
//! **Crash detection.** The listener holds only the read end of `c2s` and the write end
//! of `s2c`, never the other ends, so no `pidfd` is needed: a client that dies closes
//! the last writer of `c2s`, and the server sees end-of-file without the goodbye
//! ([`Error::PeerLost`](ipc_core::Error::PeerLost)); its writes to `s2c` fail with
//! `EPIPE` (also `PeerLost`; [`Error::Closed`](ipc_core::Error::Closed) when the client
//! said goodbye before it went away). The same holds the other way
//! when the server dies. A client that dies during its hello makes `accept` return an
//! error for it; a client that writes something other than a hello (an HTTP request's
//! `GET ` reads as a 1 195 725 856-byte length) is dropped with
//! [`Error::Handshake`](ipc_core::Error::Handshake). Either way the listener then
//! serves the next client.
//!
//! A raw client in another language follows steps 2 to 7 (step 5 can be skipped by a
//! client that does not care about soundness against the clients after it). With the
//! listener alive, the opens of steps 3 and 4 may also be blocking opens.
//!
//! # What the OS guarantees
//!
//! - **Ordering and reliability**: a pipe delivers bytes in order, without loss or
//!   duplication. A writer that dies closes its end; the reader sees end-of-file after
//!   the last byte written, which without a goodbye frame is reported as `PeerLost`.
//! - **Backpressure**: a pipe holds a bounded amount (64 KiB by default on Linux,
//!   `F_SETPIPE_SZ` can change it, see `pipe(7)`). When it is full, `send` waits until
//!   the reader reads: there is no unbounded queue.
//! - **Atomicity**: only writes of at most `PIPE_BUF` bytes (4096 on Linux) are atomic;
//!   larger ones may interleave with other writers' bytes. Each pipe here has exactly
//!   one writer (the channel's sending half, which is not `Clone`; share it through a
//!   task or a lock), so frames of any size arrive whole.
//! - **SIGPIPE**: writing to a pipe whose reader is gone raises `SIGPIPE`, which kills
//!   a process by default. Rust binaries ignore `SIGPIPE` (the runtime does so before
//!   `main`), so the write fails with `EPIPE` and the channel reports
//!   [`Error::PeerLost`](ipc_core::Error::PeerLost) (or
//!   [`Error::Closed`](ipc_core::Error::Closed) after the peer's goodbye). A host that
//!   is not a Rust binary (a C
//!   program loading this code) or that restores the default must ignore `SIGPIPE`
//!   itself; this crate logs a warning when it finds `SIGPIPE` at its default action.
//!
//! # Platform-specific behavior
//!
//! This crate is built and tested on **Linux**.
//!
//! - **Linux**: everything above. Opening a FIFO non-blocking for writing fails with
//!   `ENXIO` without a reader, which is how a client tells a dead listener. No `pidfd`
//!   (and so no minimum kernel beyond `pipe2`, Linux 2.6.27) is needed.
//! - **macOS and the BSDs**: the code uses only POSIX calls (`pipe` with `O_CLOEXEC`
//!   through `pipe2` where available, `mkfifo`, `flock`, `rename`), but it has never been
//!   compiled or run there. Pipe capacity differs (16 KiB growing to 64 KiB on macOS);
//!   `PIPE_BUF` is 512 bytes on macOS, still far above the 68-byte hello.
//! - **Windows**: anonymous and FIFO pipes are Unix-only. A small `windows` module
//!   (compiled only on Windows) offers named pipes (`\\.\pipe\NAME`) built on tokio's
//!   `named_pipe`, framed the same way; it is not compiled or tested on this project's
//!   Linux CI, and has no endpoint form or registry entry.

#[cfg(unix)]
mod anon;
#[cfg(unix)]
mod channel;
#[cfg(unix)]
mod fifo;
#[cfg(unix)]
mod transport;
#[cfg(windows)]
pub mod windows;

#[cfg(unix)]
pub use anon::{connect_inherited, spawn_pipe, CHILD_READ_FD, CHILD_WRITE_FD};
#[cfg(unix)]
pub use channel::{pipe_pair, PipeChannel, PipeReader, PipeWriter};
#[cfg(unix)]
pub(crate) use fifo::fresh_dir;
#[cfg(unix)]
pub use fifo::{connect_fifo, spawn_fifo, FifoListener, CHILD_CONNECT_TIMEOUT, HANDSHAKE_TIMEOUT};
#[cfg(unix)]
pub use transport::{FifoTransport, PipeTransport};
