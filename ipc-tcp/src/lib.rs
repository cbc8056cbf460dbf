//! # ipc-tcp
//!
//! The TCP transport of the ipc toolkit: [`Channel`](ipc_core::Channel)s over TCP
//! connections, loopback by default. Use it when the peers cannot share a Unix socket
//! (another network namespace or container with a forwarded port, a peer written in a
//! language without Unix-socket support, Windows later) or when a port number is simply
//! the easiest thing to hand over. On one Linux host, `ipc-uds` is faster and checks the
//! peer's uid; this crate checks a token instead.
//!
//! - [`bind`] + [`TcpListener::accept`] and [`connect`]: explicit addresses and tokens.
//! - [`spawn`]: start a child wired to the parent (`127.0.0.1:0`, random token).
//! - [`TcpTransport`]: the same behind [`ipc_core::Transport`], scheme `tcp://HOST:PORT`,
//!   token from [`Options::token`](ipc_core::Options::token) or `IPC_TOKEN`.
//!
//! ```
//! use ipc_core::prelude::*;
//! use ipc_core::Options;
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> ipc_core::Result<()> {
//!     let opts = Options::default().token("s3cret");
//!     let mut listener = ipc_tcp::bind(([127, 0, 0, 1], 0).into(), &opts).await?;
//!     let addr = listener.local_addr();
//!
//!     // The client connects while the listener accepts.
//!     let (server, client) = tokio::join!(listener.accept(), ipc_tcp::connect(addr, &opts));
//!     let (mut server, mut client) = (server?, client?);
//!
//!     client.send("ping".into()).await?;
//!     let ping = server.recv().await?.expect("a frame");
//!     assert_eq!(ping, "ping");
//!     server.send("pong".into()).await?;
//!     assert_eq!(client.recv().await?.as_deref(), Some(&b"pong"[..]));
//!
//!     client.close().await?;
//!     assert_eq!(server.recv().await?, None); // a clean close
//!     Ok(())
//! }
//! ```
//!
//! ## On the wire
//!
//! Every connection starts with a handshake ([`handshake`] has the details), then
//! carries length-prefixed frames ([`ipc_core::frame`]) both ways:
//!
//! ```text
//! client -> server   49 50 43 54 | 01      | len (0..=255) | token (len bytes)
//!                    "IPCT"        version
//! server -> client   49 50 43 54 | 01      | status: 00 OK, 01 bad token, 02 bad version
//! then, both ways    len: u32 BE | payload       (FF FF FF FF = goodbye, clean close)
//! ```
//!
//! A peer whose first bytes are not `IPCT` gets no reply, just a close. A refused
//! client is an `Err` from one [`accept`](TcpListener::accept); the listener keeps
//! serving. Every handshake runs in its own task, bounded by a timeout (5 s by default),
//! so a silent client never blocks another; at most
//! [`DEFAULT_MAX_PENDING_HANDSHAKES`] are in progress at once (configurable), and a new
//! connection at that bound closes the oldest one instead of waiting.
//!
//! ## What the OS guarantees
//!
//! - **Order and integrity**: TCP delivers the bytes of one connection in order, without
//!   loss or duplication, or reports an error; framing on top gives whole frames in
//!   order. A peer that crashes is seen as a reset or an end without goodbye
//!   ([`Error::PeerLost`](ipc_core::Error::PeerLost)), never as a clean close.
//! - **Latency**: `TCP_NODELAY` is set on both ends, so Nagle's algorithm never holds a
//!   small frame back waiting for an ACK. Each `send` is flushed when it returns.
//! - **Backpressure**: the kernel's socket buffers are bounded (on Linux loopback they
//!   grow with `tcp_wmem`/`tcp_rmem`, a few MiB at most); when the reader is slow they
//!   fill and `send` waits. Nothing queues without bound.
//! - **Not atomic**: a frame may arrive in many segments; only the framing makes it
//!   whole. Loopback traffic never leaves the host, but it passes through the full TCP
//!   stack, so it costs more than a Unix socket.
//!
//! ## Streaming many small frames
//!
//! Frames queued with `feed` go out in 64 KiB writes at `flush`, and the receiving side
//! hands out every whole frame of one read at once
//! ([`recv_many`](ipc_core::RecvManyExt::recv_many)), so neither side makes a system
//! call per frame. On loopback the kernel does the receiving side's TCP work inside the
//! sender's write, so the sender is usually the slower end: the receiver catches up,
//! sleeps, and is woken by the next write. With few CPUs the scheduler then sometimes
//! puts both processes on one CPU, where they take turns. On a 2-CPU VM (the toolkit's
//! bench, 64-byte frames) runs streamed at either 5–11 M frames/s or 13–18 M; with the
//! two processes pinned to different CPUs every run gave 12–17 M.
//! [Low-latency mode](ipc_core::spin) (`IPC_LOW_LATENCY`) makes the receiver poll for
//! a while before it sleeps, which kept every run at 12–14 M, at the CPU cost that
//! mode documents.
//!
//! ## Security
//!
//! - **Loopback by default**: [`spawn`] and the example endpoint of [`TcpTransport`]
//!   ([`Transport::example_endpoint`](ipc_core::Transport::example_endpoint)) use
//!   `127.0.0.1`. [`bind`] listens on exactly the address given; `0.0.0.0` or a public
//!   address must be asked for explicitly and logs a warning; without a token the
//!   warning is also printed on stderr, once per listener.
//! - **Token**: any local process, of any user, can connect to a loopback port. The
//!   token is what tells our peer apart: [`spawn`] makes a fresh 256-bit random one per
//!   child, and the listener compares tokens in constant time (fixed-size buffers, so
//!   not even the length leaks through timing). A wrong token gets status `01` and a
//!   close.
//! - **Where the token lives**: a spawned child gets it in its environment
//!   (`IPC_TOKEN`). On Linux, processes of the same user (and root) can read another
//!   process's environment through `/proc/PID/environ`; the token keeps out other users
//!   and other hosts, not a hostile process already running as the same user.
//! - **No encryption**: tokens and frames travel in clear. On loopback only root can
//!   sniff them; across a network anyone on the path can. Use TLS or an SSH tunnel for
//!   that.
//!
//! ## Platform-specific behavior
//!
//! - **Linux**: the reference platform; all of the above holds. `peer_pid` is known only
//!   for a spawned child.
//! - **macOS / BSD**: nothing here is Linux-specific, but only Linux is tested.
//!   `/proc/PID/environ` does not exist there, yet a same-user process can still read
//!   another's environment (`ps eww`), so the token note holds.
//! - **Windows**: not supported: the crate uses Unix file descriptors (`AsFd`) and the
//!   Unix-only spawn helpers of `ipc-core`.
//! - **IPv6**: `tcp://[::1]:PORT` works wherever the host has IPv6 loopback.

#![forbid(unsafe_code)]

mod address;
mod channel;
pub mod handshake;
mod listener;
mod options;
mod pending;
mod spawn;
mod transport;

pub use address::TcpAddress;
pub use channel::{connect, TcpChannel, TcpChannelExt, TcpReceiver, TcpSender};
pub use ipc_core::options::{DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_PENDING_HANDSHAKES};
pub use listener::{bind, TcpListener};
pub use options::{token_from_env, IPC_TOKEN};
pub use spawn::spawn;
pub use transport::TcpTransport;
