//! # ipc-uds
//!
//! Unix domain sockets for the ipc toolkit: a [`Channel`](ipc_core::Channel) over a
//! connected `AF_UNIX` stream socket, with the peer's identity from the kernel and
//! file-descriptor passing.
//!
//! | how | API | endpoint |
//! |---|---|---|
//! | parent spawns a child, socketpair inherited as fd 3 | [`spawn`] | `uds:fd=3` (child side) |
//! | server on a socket file (0600, in a 0700 dir when created; an existing dir others can write is refused unless sticky) | [`UdsListener`], [`connect`] | `unix:/run/app.sock` |
//! | server on a Linux abstract name | [`UdsListener`], [`connect`] | `unix:@app` |
//! | two ends in this process | [`pair`] | — |
//! | chosen at run time | [`UdsTransport`] (`"uds"`) | any of the above |
//!
//! Frames use the toolkit's shared length-prefixed framing
//! ([`LengthCodec`](ipc_core::frame::LengthCodec): `u32` big-endian length, then the
//! payload), so the bytes on the socket are those described in `docs/PROTOCOL.md`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
//! use ipc_core::prelude::*;
//!
//! let (mut parent, mut child) = ipc_uds::pair(&ipc_core::Options::default())?;
//! parent.send("ping".into()).await?;
//! assert_eq!(child.recv().await?.as_deref(), Some(&b"ping"[..]));
//! child.send("pong".into()).await?;
//! assert_eq!(parent.recv().await?.as_deref(), Some(&b"pong"[..]));
//!
//! // The kernel tells who is at the other end (here: this very process).
//! assert_eq!(parent.info().peer_pid, Some(std::process::id()));
//!
//! // Open files travel too.
//! use std::os::fd::AsFd;
//! use ipc_uds::{RecvFds, SendFds};
//! let file = std::fs::File::open("/dev/null")?;
//! parent.send_with_fds("a file".into(), &[file.as_fd()]).await?;
//! let (frame, fds) = child.recv_with_fds().await?.expect("a frame");
//! assert_eq!((frame.as_ref(), fds.len()), (&b"a file"[..], 1));
//!
//! parent.close().await?;
//! assert_eq!(child.recv().await?, None);
//! # Ok(()) }
//! ```
//!
//! # What the OS guarantees
//!
//! - **Ordering and reliability**: a stream socket delivers bytes in order, without loss
//!   or duplication, as long as both ends live. A peer that dies mid-stream is seen as
//!   end-of-stream without the goodbye frame: [`Error::PeerLost`](ipc_core::Error::PeerLost).
//! - **No message boundaries**: one `write` may arrive as several reads and several
//!   writes as one. The length prefix restores frames; nothing relies on write sizes.
//! - **Backpressure**: the kernel buffers a bounded amount per socket (on Linux about
//!   200 KiB by default, `net.core.wmem_default`; see `socket(7)`, `unix(7)`). When it is
//!   full, `send` waits until the peer reads: there is no unbounded queue.
//! - **Peer identity**: the peer's pid and uid come from the kernel, not from the peer,
//!   and are fixed at `connect`/`socketpair` time.
//! - **Fd passing**: `SCM_RIGHTS` gives the receiver new descriptors for the same open
//!   files (at most 253 per frame); see [`SendFds::send_with_fds`].
//!
//! # Platform-specific behavior
//!
//! This crate targets **Linux**; that is where it is built and tested.
//!
//! - **Peer credentials**: Linux reads `SO_PEERCRED` (pid and uid, as of `connect` or
//!   `socketpair`). On macOS and the BSDs the code uses `getpeereid` (uid only, so
//!   `peer_pid` is `None` there except for spawned children; `LOCAL_PEERCRED` and
//!   `LOCAL_PEERPID` are not used). For a socketpair the kernel reports the process that
//!   created it, so [`spawn`] fills `peer_pid` with the child's pid itself, and a child
//!   sees its parent's pid.
//! - **Abstract names** (`unix:@name`) exist on Linux only (elsewhere they give
//!   [`Error::Unsupported`](ipc_core::Error::Unsupported)). They have no file and no
//!   permissions: anyone in the same network namespace can connect to a name or squat
//!   it first, so the listener's peer-uid check is the only guard (and a client that
//!   cares checks `info().peer_uid`). The name vanishes when the last fd of its socket
//!   closes: there is never a stale name to clean up.
//! - **Fd passing**: attributing each batch of fds to its exact frame relies on how
//!   Linux queues `SCM_RIGHTS` on stream sockets (see [`SendFds::send_with_fds`]).
//!   Received fds are close-on-exec atomically on Linux (`MSG_CMSG_CLOEXEC`); elsewhere
//!   the flag is set right after `recvmsg`.
//! - **Stale socket check**: on Linux the probe `connect` is non-blocking (a live server
//!   with a full backlog still counts as live); elsewhere it is a blocking `connect`.
//! - **Untested**: the non-Linux code paths (macOS, the BSDs) are written against their
//!   APIs but have never been compiled or run; Android shares the Linux paths, also
//!   untested.

mod channel;
mod connect;
mod fdio;
mod listener;
mod socket_file;
mod spawn;
mod transport;

pub use channel::{from_stream, pair, RecvFds, SendFds, UdsChannel, UdsReceiver, UdsSender};
pub use connect::connect;
pub use fdio::{SockWriter, MAX_FDS_PER_FRAME};
pub use listener::UdsListener;
pub use spawn::{spawn, CHILD_FD};
pub use transport::UdsTransport;
