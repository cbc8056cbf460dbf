//! # ipc-core
//!
//! The transport-independent core of the ipc toolkit: the [`Channel`] trait every
//! backend implements, the one [framing](frame) implementation byte-stream backends
//! share, serde [codecs](codec) and [`TypedChannel`], [request/response](rpc),
//! [`Endpoint`]s, the [`Transport`] trait and its [`Registry`], spawned [`Child`]
//! processes and the [environment contract](mod@env) between parent and child.
//!
//! The core names no backend. Depend on a backend crate (`ipc-uds`, `ipc-tcp`, ...) for
//! one transport, or on the `ipc` facade to choose at run time.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
//! use ipc_core::{Channel, ChannelInfo, frame::{FrameConfig, LengthCodec}, stream::StreamChannel};
//! // Any byte stream becomes a channel; here an in-memory one.
//! let (a, b) = tokio::io::duplex(1024);
//! let codec = LengthCodec::new(FrameConfig::default());
//! let (ar, aw) = tokio::io::split(a);
//! let (br, bw) = tokio::io::split(b);
//! let mut a = StreamChannel::new(ar, aw, codec.clone(), ChannelInfo::new("mem", 8 << 20));
//! let mut b = StreamChannel::new(br, bw, codec, ChannelInfo::new("mem", 8 << 20));
//! a.send("ping".into()).await?;
//! assert_eq!(b.recv().await?.unwrap(), "ping");
//! # Ok(()) }
//! ```

pub mod channel;
pub mod child;
pub mod codec;
pub mod endpoint;
pub mod env;
pub mod error;
pub mod frame;
pub mod inherit;
pub mod rpc;
pub mod spawn;
mod spawner;
pub mod stream;
pub mod transport;
pub mod typed;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use bytes::Bytes;
pub use channel::{Channel, ChannelInfo, Joined, RecvHalf, SendHalf};
pub use child::Child;
pub use endpoint::Endpoint;
pub use env::{role, Role};
pub use error::{Error, Result};
pub use frame::FrameConfig;
pub use nix::sys::signal::Signal;
pub use transport::{Capabilities, Listener, Registry, Transport};
pub use typed::{TypedChannel, TypedReceiver, TypedSender};
