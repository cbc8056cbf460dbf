//! # ipc-core
//!
//! The transport-independent core of the ipc toolkit: the [`Channel`] trait and the
//! one generic [`Duplex`] every backend's channel is, the one [framing](frame)
//! implementation byte-stream backends share (with their [`stream`] halves), the
//! [`adapter`] that turns `async fn` halves into streams and sinks, serde [codecs](codec) and [`TypedChannel`], [request/response](rpc),
//! [`Endpoint`]s, the [`Transport`] trait and its [`Registry`], spawned [`Child`]
//! processes and the [environment contract](mod@env) between parent and child.
//!
//! The core names no backend. Depend on a backend crate (`ipc-uds`, `ipc-tcp`, ...) for
//! one transport, or on the `ipc` facade to choose at run time.
//!
//! A channel is a `Stream` of received frames and a `Sink` of frames to send; import
//! the [`prelude`] for `send`, `feed`, `flush`, `close` (`SinkExt`), `next` and the
//! stream adaptors (`StreamExt`), `recv`, `recv_json` ([`ChannelExt`]) and `send_json`
//! ([`SinkJsonExt`]).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
//! use ipc_core::prelude::*;
//! use ipc_core::{ChannelInfo, frame::{FrameConfig, LengthCodec}, stream};
//! // Any byte stream becomes a channel; here an in-memory one.
//! let (a, b) = tokio::io::duplex(1024);
//! let codec = LengthCodec::new(FrameConfig::default());
//! let (ar, aw) = tokio::io::split(a);
//! let (br, bw) = tokio::io::split(b);
//! let mut a = stream::channel(ar, aw, codec.clone(), ChannelInfo::new("mem"));
//! let mut b = stream::channel(br, bw, codec, ChannelInfo::new("mem"));
//! a.send("ping".into()).await?;
//! assert_eq!(b.recv().await?.unwrap(), "ping");
//! # Ok(()) }
//! ```

pub mod adapter;
pub mod backend;
pub mod channel;
pub mod child;
pub mod codec;
pub mod duplex;
pub mod endpoint;
pub mod env;
pub mod error;
pub mod ext;
pub mod frame;
pub mod human;
pub mod inherit;
pub mod options;
pub mod prelude;
pub mod rpc;
pub mod signal;
pub mod spawn;
mod spawner;
pub mod spin;
pub mod stream;
pub mod transport;
pub mod typed;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use backend::{Backend, BackendListener, NoListener};
pub use bytes::Bytes;
pub use channel::{Channel, ChannelInfo, RecvHalf, SendHalf};
pub use child::Child;
pub use duplex::{Duplex, Joined};
pub use endpoint::Endpoint;
pub use env::{role, Role};
pub use error::{ConnectError, Error, ListenError, RecvError, Result, SendError, SpawnError};
pub use ext::{ChannelExt, RecvManyExt, SendManyExt, SinkJsonExt};
pub use frame::FrameConfig;
pub use options::Options;
pub use signal::Signal;
pub use transport::{Capabilities, Listener, Registry, Transport};
pub use typed::{TypedChannel, TypedReceiver, TypedSender};
