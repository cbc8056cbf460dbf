//! # ipc-shm
//!
//! Shared memory for the ipc toolkit: a [`Channel`](ipc_core::Channel) whose frames
//! travel through two single-producer, single-consumer byte rings in a sealed `memfd`
//! that both processes map, one ring per direction. No system call per message: a
//! sender copies the frame into the ring and publishes it with one atomic store; a
//! receiver that is looking (it spins a short, adaptive, bounded while) takes it from
//! there.
//!
//! | how | API | endpoint |
//! |---|---|---|
//! | parent spawns a child, the segment offered on an inherited socket | [`spawn`] | `shm:fd=3` (child side) |
//! | server on a rendezvous socket; each client gets a segment of its own | [`ShmListener`], [`connect`] | `shm:/run/app.sock` |
//! | two ends in this process | [`pair`] | — |
//! | chosen at run time | [`ShmTransport`] (`"shm"`) | any of the above |
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
//! use ipc_core::prelude::*;
//!
//! let (mut parent, mut child) = ipc_shm::pair(&ipc_core::Options::default())?;
//! parent.send("ping".into()).await?;
//! assert_eq!(child.recv().await?.as_deref(), Some(&b"ping"[..]));
//! child.send("pong".into()).await?;
//! assert_eq!(parent.recv().await?.as_deref(), Some(&b"pong"[..]));
//! parent.close().await?;
//! assert_eq!(child.recv().await?, None);
//! # Ok(()) }
//! ```
//!
//! # How it works
//!
//! - **Segment**: the creator (the parent, or a listener) makes a `memfd` holding a
//!   header and two rings, seals its size, and sends it with two doorbell sockets over
//!   the toolkit's own uds channel (`SCM_RIGHTS`). The opener maps it only after
//!   checking the seals, the size, the magic and the version. The layout is in
//!   `docs/PROTOCOL.md`, precise enough for a C peer. Both sides map it with
//!   `MAP_POPULATE`, so its memory (two rings and 4 KiB: 2 MiB + 4 KiB with the
//!   default ring size) is allocated and mapped when the channel is made, and the first
//!   pass through a ring takes no page fault per 4 KiB (an opener populates rings of
//!   up to 64 MiB; larger ones fill in as they are first used).
//! - **Frames**: the bytes in a ring are the toolkit's length-prefixed frames, as on a
//!   socket, so a frame larger than the ring passes in pieces and the frame limit
//!   ([`Options::max_frame`](ipc_core::Options::max_frame)) is the same as on every
//!   transport. There is no stream layer in between: a [`ShmSender`] copies each frame
//!   straight into the ring and publishes a whole batch with one store; a
//!   [`ShmReceiver`] copies each frame out once, into a `Bytes` of its own, and gives
//!   the room back once per receive (or per batch).
//! - **Waking**: a side with nothing to do spins a bounded, adaptive time (at most
//!   5 µs at a time looking in place, holding the runtime's thread, then letting the
//!   runtime run before it looks again; 50 µs in all at most), then raises a flag in
//!   the segment and sleeps on its doorbell socket, registered with tokio's reactor.
//!   The other side rings (one non-blocking `send` of one byte) only when that flag is
//!   raised. An idle channel costs no CPU; a full ring makes `send` wait the same way.
//!   The sleeper pays for the memory ordering this needs (`membarrier`, where the
//!   kernel has it), so a send or receive needs no fence (see [`MEMBARRIER_ENV`]).
//! - **Batching**: a receiver that keeps pace with a sustained stream would read each
//!   frame the moment it is written, pulling the cache lines the sender writes next
//!   and slowing it to one trip between CPUs per frame. Once it has taken 16 frames in
//!   a row without waiting and caught up, it lets up to 4 KiB build up (for at most
//!   2 µs) before it takes more, and drains the batch far behind the sender. Round
//!   trips never linger; the first frame after a stream stops may be up to 2 µs late.
//! - **A lost peer**: each ring's doorbell is a socket pair whose ends only the ring's
//!   writer and reader hold. A side that closes, drops its half, or dies closes its
//!   end, and the other side sees the end of stream: a receiver drains the ring, then
//!   ends with the goodbye it found (`Ok(None)`) or [`PeerLost`](ipc_core::RecvError::PeerLost);
//!   a sender fails. No lock lives in shared memory, so a dead process holds none.
//! - **A hostile peer**: every position read from shared memory is checked before use
//!   (it must lie within one ring of ours); a bad one is an `InvalidData` error that
//!   ends the channel, never a read or write outside the segment. All access to shared
//!   memory is in one small module, `segment.rs`; the only other `unsafe` call
//!   registers a doorbell socket with tokio.
//!
//! # Platform
//!
//! Linux only (`memfd_create`, file seals).

#![deny(unsafe_code)]

mod address;
mod barrier;
mod batch;
#[allow(unsafe_code)] // registering the doorbell fd with tokio
mod bell;
mod channel;
mod connect;
mod listener;
mod offer;
mod receiver;
mod ring;
#[allow(unsafe_code)] // the audited shared-memory access
mod segment;
mod sender;
mod spawn;
mod spin;
mod transport;
mod wait;

pub use address::ShmAddress;
pub use barrier::MEMBARRIER_ENV;
pub use channel::{pair, pair_with_ring_size, ShmChannel, DEFAULT_RING_SIZE};
pub use connect::connect;
pub use listener::ShmListener;
pub use receiver::ShmReceiver;
pub use sender::ShmSender;
pub use spawn::{spawn, spawn_with_ring_size, CHILD_FD};
pub use transport::ShmTransport;
