//! # ipc: talk to child processes and other processes, over the transport you choose
//!
//! The facade of the ipc toolkit. It re-exports [`ipc_core`] (the [`Channel`] trait,
//! framing, codecs, endpoints, child processes) and each backend behind a cargo
//! feature, all on by default except `signal`:
//!
//! | feature | module | transport | endpoints |
//! |---|---|---|---|
//! | `uds` | [`uds`] | Unix domain sockets, fd passing | `unix:/path`, `unix:@name`, `uds:fd=3` |
//! | `tcp` | [`tcp`] | TCP loopback with a token handshake | `tcp://127.0.0.1:7000` |
//! | `pipe` | [`pipe`] | anonymous pipe pair (`pipe`) and FIFO pair (`fifo`) | `pipe:fd=3,4`, `fifo:/dir` |
//! | `stdio` | [`stdio`] | JSON lines over the child's stdin/stdout | `stdio:` |
//! | `signal` (opt-in) | `signal` | real-time signals; shutdown and kill helpers | `signal:pid=N` |
//! | `node` | [`node`] | Node.js `fork()` channel, either side | `node:fd=N` (`NODE_CHANNEL_FD`) |
//! | `shm` | [`shm`] | shared-memory rings (Linux), woken and watched over Unix sockets | `shm:fd=3`, `shm:/path` |
//!
//! The feature `cluster` (on by default) adds [`cluster`]: a pm2-style supervisor, a
//! cluster of workers sharing a port, rolling reload and a master/agent/worker
//! messenger.
//!
//! Pick a transport at run time through [`registry()`]; a child finds its channel with
//! [`connect_from_env()`] without knowing which transport the parent chose. Not every
//! transport can do everything (`node` frames must be JSON, anonymous pipes cannot
//! listen): offer only the ones that work for your program with
//! [`Registry::names_with`] and accept a choice with [`Registry::get_with`], which
//! names the alternatives when it refuses (see [`Capabilities`]).
//!
//! Every default transport works in any tokio program, `#[tokio::main]` or
//! `#[tokio::test]`, multi-threaded or not: nothing needs to happen before the runtime
//! starts.
//!
//! ```no_run
//! use ipc::prelude::*;
//! use ipc::Role;
//!
//! #[tokio::main]
//! async fn main() -> ipc::Result<()> {
//!     if ipc::role() == Role::Child {
//!         let mut ch = ipc::connect_from_env().await?;
//!         while let Some(msg) = ch.recv().await? { ch.send(msg).await?; } // echo
//!         return Ok(ch.close().await?);
//!     }
//!     let transport = ipc::registry().get("uds")?; // or "tcp", from --transport
//!     let exe = std::env::current_exe()?;
//!     let cmd = std::process::Command::new(exe);
//!     let (mut child, mut ch) = transport.spawn(cmd, &ipc::Options::default()).await?;
//!     ch.send("ping".into()).await?;
//!     assert_eq!(ch.recv().await?.unwrap(), "ping");
//!     ch.close().await?;
//!     child.wait().await?;
//!     Ok(())
//! }
//! ```
//!
//! ## The signal transport is opt-in
//!
//! The `signal` transport (feature `signal`, module `ipc::signal`) carries frames in
//! real-time signals, which must be blocked in every thread of the process before any
//! thread exists, or an arriving frame kills it. `#[tokio::main]` starts its threads
//! before your code runs, so a program that uses it makes one call first: either
//! `ipc_signal::block_transport_signals()` (as `ipc::signal::block_transport_signals()`)
//! first thing in `main`, before any thread or runtime starts, or run `main`'s future
//! through [`run()`], which does it for you. A program that forgets gets a clear
//! [`Error::Unsupported`] from the signal transport's `spawn`/`connect` saying so, not a
//! killed process; the other transports are unaffected either way.
//!
//! ```toml
//! ipc-kit = { version = "0.1", features = ["signal"] }
//! ```

#![forbid(unsafe_code)]

use std::sync::OnceLock;

pub use ipc_core::prelude;
pub use ipc_core::*;

#[cfg(feature = "cluster")]
pub use ipc_cluster as cluster;
#[cfg(feature = "node")]
pub use ipc_node as node;
#[cfg(feature = "pipe")]
pub use ipc_pipe as pipe;
#[cfg(feature = "shm")]
pub use ipc_shm as shm;
#[cfg(feature = "signal")]
pub use ipc_signal as signal;
#[cfg(feature = "stdio")]
pub use ipc_stdio as stdio;
#[cfg(feature = "tcp")]
pub use ipc_tcp as tcp;
#[cfg(feature = "uds")]
pub use ipc_uds as uds;

/// Every transport this build includes, by name and scheme.
///
/// ```
/// let names = ipc::registry().names();
/// # #[cfg(all(feature = "uds", feature = "tcp"))]
/// assert!(names.contains(&"uds") && names.contains(&"tcp"));
/// ```
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        #[allow(unused_mut)]
        let mut registry = Registry::new();
        #[cfg(feature = "uds")]
        registry.register(uds::UdsTransport);
        #[cfg(feature = "tcp")]
        registry.register(tcp::TcpTransport);
        #[cfg(feature = "pipe")]
        registry
            .register(pipe::PipeTransport)
            .register(pipe::FifoTransport);
        #[cfg(feature = "stdio")]
        registry.register(stdio::StdioTransport);
        #[cfg(feature = "signal")]
        registry.register(signal::SignalTransport);
        #[cfg(feature = "node")]
        registry.register(node::NodeTransport);
        #[cfg(feature = "shm")]
        registry.register(shm::ShmTransport::default());
        note_features_that_are_off(&mut registry);
        registry
    })
}

/// Name the transports whose cargo feature is off, so asking for one says how to get it.
fn note_features_that_are_off(registry: &mut Registry) {
    let _ = &registry;
    #[cfg(not(feature = "uds"))]
    registry.note_not_built("uds", "enable the `uds` feature of ipc-kit");
    #[cfg(not(feature = "tcp"))]
    registry.note_not_built("tcp", "enable the `tcp` feature of ipc-kit");
    #[cfg(not(feature = "pipe"))]
    registry
        .note_not_built("pipe", "enable the `pipe` feature of ipc-kit")
        .note_not_built("fifo", "enable the `pipe` feature of ipc-kit");
    #[cfg(not(feature = "stdio"))]
    registry.note_not_built("stdio", "enable the `stdio` feature of ipc-kit");
    #[cfg(not(feature = "signal"))]
    registry.note_not_built(
        "signal",
        "it is ipc-kit's opt-in feature `signal` (build with `--features signal`)",
    );
    #[cfg(not(feature = "node"))]
    registry.note_not_built("node", "enable the `node` feature of ipc-kit");
    #[cfg(not(feature = "shm"))]
    registry.note_not_built("shm", "enable the `shm` feature of ipc-kit");
}

/// In a child started by a transport's `spawn`: open the channel to the parent named by
/// `IPC_ENDPOINT` (see [`env`](mod@env)), with [`Options::from_env`] (the frame limit
/// the parent chose). For other options, call
/// [`registry()`]`.`[`connect_from_env(&options)`](Registry::connect_from_env).
///
/// ```no_run
/// # async fn demo() -> ipc::Result<()> {
/// use ipc::prelude::*;
/// let mut parent = ipc::connect_from_env().await?;
/// parent.send("ready".into()).await?;
/// # Ok(()) }
/// ```
pub async fn connect_from_env() -> Result<Box<dyn Channel>, ConnectError> {
    registry().connect_from_env(&Options::from_env()).await
}

/// Run `future` to completion on a new single-threaded tokio runtime (all drivers
/// enabled) and return its output: a `main` that works whichever transport is picked at
/// run time, the signal transport included.
///
/// You do not need it for the default transports: `#[tokio::main]` works as well. With
/// the `signal` feature it first blocks the signal transport's real-time signals, which
/// must happen before any thread starts (threads and children inherit the mask), so
/// call it first thing in `main`. If they cannot be blocked it says nothing and goes
/// on: only the signal transport needs them, and it refuses with a clear error when it
/// is used. The runtime is single-threaded: one task per channel end is the common
/// shape, and it avoids cross-thread wake-ups on the hot path.
///
/// # Panics
///
/// If the tokio runtime cannot be built (as `#[tokio::main]` does).
///
/// ```no_run
/// fn main() -> ipc::Result<()> {
///     ipc::run(async {
///         use ipc::prelude::*;
///         let mut ch = ipc::connect_from_env().await?;
///         Ok(ch.send("hello".into()).await?)
///     })
/// }
/// ```
pub fn run<F: std::future::Future>(future: F) -> F::Output {
    // A failure here is reported where it matters: the signal transport checks the mask
    // of every thread when a channel is opened and refuses with an error that says what
    // to call. Programs that never use it must not fail because of it.
    #[cfg(feature = "signal")]
    let _ = signal::block_transport_signals();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("ipc::run: cannot build the tokio runtime: {e}"));
    runtime.block_on(future)
}

/// The README's Rust examples, compiled as doctests so they stay true as written.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
