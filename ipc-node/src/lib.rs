//! # ipc-node
//!
//! Node.js interop through Node's own `child_process` IPC channel, in both directions:
//! a Rust binary forked by Node talks to `process.send` / `subprocess.on('message')`,
//! and a Rust parent starts `node child.js` whose `process.send` /
//! `process.on('message')` talk to it.
//!
//! | side | API | endpoint |
//! |---|---|---|
//! | Rust child of a Node parent | [`connect_from_env`], [`connect`] | `node:fd=N` from `NODE_CHANNEL_FD=N` |
//! | Rust parent of a Node child | [`spawn`] | sets `NODE_CHANNEL_FD=3` |
//! | chosen at run time | [`NodeTransport`] (`"node"`) | `node:fd=N` |
//! | the channel | [`NodeChannel`] (`Channel`, [`send_json`](ipc_core::SinkJsonExt::send_json), [`recv_json`](ipc_core::ChannelExt::recv_json)) | |
//! | pm2's `wait_ready` | [`send_ready`] | |
//! | framing any byte stream yourself | [`NodeCodec`] | |
//!
//! # Wire format
//!
//! `fork()` gives the child an `AF_UNIX` stream socket, inherited at the fd named by
//! `NODE_CHANNEL_FD`, and names the serialization in `NODE_CHANNEL_SERIALIZATION_MODE`.
//! In `json` mode (Node's default, the one supported here) every message is
//! `JSON.stringify(message) + "\n"`:
//!
//! ```text
//! {"id":1,"op":"add","a":1,"b":2}\n     process.send({id: 1, op: 'add', a: 1, b: 2})
//! "ready"\n                             process.send('ready')
//! {"cmd":"NODE_HANDLE_NACK"}\n          one of Node's internal messages (never a frame)
//! ```
//!
//! A frame of this crate is one such JSON text, without the newline. There is no
//! handshake, no length prefix, no goodbye: Node sends nothing before the first
//! `process.send`, and a channel ends when a side closes its socket. `advanced` mode
//! (V8 serialization, `fork(.., { serialization: 'advanced' })`) is refused with
//! [`Error::Unsupported`](ipc_core::Error::Unsupported) naming the mode; JSON covers
//! everything the examples of Node's docs send, and it is what pm2 uses.
//!
//! # A Rust binary forked by Node
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> ipc_core::Result<()> {
//! use ipc_core::prelude::*;
//! let mut parent = ipc_node::connect_from_env(&ipc_core::Options::default()).await?;
//! ipc_node::send_ready(&mut parent).await?;
//! while let Some(msg) = parent.recv_json::<serde_json::Value>().await? {
//!     parent.send_json(&serde_json::json!({"id": msg["id"], "result": 3})).await?;
//! }
//! Ok(()) // Node called subprocess.disconnect()
//! # }
//! ```
//!
//! From Node, either of:
//!
//! ```js
//! const { fork, spawn } = require('node:child_process');
//! // fork: the "module path" becomes argv[1] of the Rust binary; execArgv: [] keeps
//! // Node's own flags (--inspect, ...) out of its argv.
//! const child = fork('/path/to/rust-bin', ['--flag'], { execPath: '/path/to/rust-bin', execArgv: [] });
//! //   -> argv = ['/path/to/rust-bin', '/path/to/rust-bin', '--flag']
//! // spawn with an 'ipc' stdio entry: argv as given; NODE_CHANNEL_FD is its index.
//! const child2 = spawn('/path/to/rust-bin', ['--flag'], { stdio: ['inherit', 'inherit', 'inherit', 'ipc'] });
//! //   -> argv = ['/path/to/rust-bin', '--flag'], NODE_CHANNEL_FD=3
//! child.on('message', (m) => { if (m === 'ready') child.send({ id: 1, op: 'add', a: 1, b: 2 }); });
//! ```
//!
//! `fork(modulePath, args, { execPath })` runs `execPath ...execArgv modulePath
//! ...args`, so a Rust binary sees the module path as `argv[1]` (checked against Node
//! v20): pass the binary itself (or any placeholder) and skip `argv[1]`, or use
//! `spawn` with `'ipc'` in `stdio`, which also sets `NODE_CHANNEL_FD` (to the index
//! of the `'ipc'` entry) and keeps argv as given. Both are tested. The `ipc` facade's
//! `connect_from_env()` finds the channel too, as `node:fd=N`.
//!
//! # A Node child of a Rust parent
//!
//! ```no_run
//! # async fn demo() -> ipc_core::Result<()> {
//! use ipc_core::prelude::*;
//! let mut command = std::process::Command::new("node");
//! command.arg("child.js"); // process.on('message', (m) => process.send(m))
//! let (mut child, mut channel) = ipc_node::spawn(command, &ipc_core::Options::default()).await?;
//! channel.send_json(&[1, 2, 3]).await?;
//! assert_eq!(channel.recv_json::<Vec<u32>>().await?, Some(vec![1, 2, 3]));
//! channel.close().await?; // the child's 'disconnect' event
//! assert!(child.wait().await?.success());
//! # Ok(()) }
//! ```
//!
//! # Node's internal messages, closing, crashes
//!
//! Objects whose `"cmd"` starts with `NODE_` are Node's own. They never reach the
//! user: a `NODE_HANDLE` (a handle sent with `send(msg, handle)`) is answered
//! `{"cmd":"NODE_HANDLE_NACK"}`, since handles are not taken; every other one
//! (`NODE_HANDLE_ACK`, `NODE_HANDLE_NACK`, `NODE_CLUSTER`, ...) is ignored. Frames we
//! send that Node would take for internal ones are refused. See [`NodeChannel`].
//!
//! `recv` returns `Ok(None)` when the peer disconnected; a Node child we spawned that
//! exits non-zero or is killed gives [`PeerLost`](ipc_core::Error::PeerLost) instead
//! (its exit status is checked at end-of-stream, for up to [`EXIT_GRACE`]). A line
//! that is not JSON gives [`Decode`](ipc_core::Error::Decode) for that line only.
//! `close()` shuts the socket down for writing: Node emits `'disconnect'`. Details in
//! [End of the channel](NodeChannel#end-of-the-channel).
//!
//! # Running under pm2
//!
//! pm2 starts an app in fork mode with an IPC channel, and with `wait_ready: true`
//! waits for the app to `process.send('ready')` before calling it online. A Rust
//! binary does the same with [`send_ready`] (run it with `--interpreter none`).
//!
//! # Platform-specific behavior
//!
//! Unix only (Node's channel on Windows is a named pipe, not supported here). On Linux
//! the peer's pid and uid come from `SO_PEERCRED`, and a spawned child's exit is
//! watched through a pidfd (`pidfd_open`, Linux 5.3+); elsewhere, and on older
//! kernels, the exit status is polled every few milliseconds at end-of-stream.
//!
//! # Limits
//!
//! Lines longer than the frame limit (`Options::max_frame`, 8 MiB by default) are
//! rejected and skipped without being buffered; Node has no limit of its own. Lines are
//! checked with `serde_json`, which cannot represent two things `JSON.parse` accepts:
//! strings holding lone UTF-16 surrogates (`JSON.stringify('\ud800')` writes
//! `"\ud800"`) and numbers beyond the `f64` range. A message that is only such a
//! string or number is a [`Decode`](ipc_core::Error::Decode) error at `recv`; nested
//! in an array or object it is delivered, and decoding it into a
//! `serde_json::Value` (as [`recv_json`](ipc_core::ChannelExt::recv_json) does) gives the
//! `Decode` error. `serde_json` also stops at 128 levels of nesting when building
//! values.

#![deny(missing_docs)]

mod channel;
mod codec;
mod connect;
mod exit;
mod probe;
mod receiver;
mod spawn;
mod transport;

pub use channel::{from_stream, NodeChannel, NodeOutbox, NodeSender};
pub use codec::NodeCodec;
pub use connect::{connect, connect_from_env, NODE_CHANNEL_SERIALIZATION_MODE};
pub use receiver::{NodeInbox, NodeReceiver, EXIT_GRACE};
pub use spawn::{pair, scrub_env, spawn, CHILD_FD};
pub use transport::NodeTransport;

use ipc_core::prelude::*;
use ipc_core::Result;

/// The message pm2 (and many Node supervisors) wait for: the JSON string `"ready"`,
/// what `process.send('ready')` sends.
pub const READY: &str = "\"ready\"";

/// Tell a Node parent this process is ready, as `process.send('ready')` does; pm2's
/// `wait_ready` waits for exactly this message (`msg === 'ready'`).
///
/// Works on any [`Channel`]: a [`NodeChannel`], or the `Box<dyn Channel>` of
/// `connect_from_env()`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// let (mut child, mut parent) = ipc_node::pair(&ipc_core::Options::default())?;
/// ipc_node::send_ready(&mut child).await?;
/// assert_eq!(parent.recv().await?.as_deref(), Some(&b"\"ready\""[..]));
/// # Ok(()) }
/// ```
pub async fn send_ready<C: Channel + ?Sized>(channel: &mut C) -> Result<()> {
    channel
        .send(bytes::Bytes::from_static(READY.as_bytes()))
        .await?;
    Ok(())
}
