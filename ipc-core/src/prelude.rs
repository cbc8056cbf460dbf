//! The traits a channel user needs in scope: `use ipc_core::prelude::*;`
//! (or `use ipc::prelude::*;` through the facade).
//!
//! - [`SinkExt`] gives `send`, `feed`, `flush`, `close`, `send_all`;
//! - [`StreamExt`] gives `next`, `map`, `filter_map`, `take`, `forward`, ...;
//! - [`ChannelExt`] gives `recv`, `recv_json`;
//! - [`SinkJsonExt`] gives `send_json`;
//! - [`SendManyExt`] gives `send_many`;
//! - [`RecvManyExt`] gives `recv_many`;
//! - [`Channel`] gives `info`, `split`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
//! use ipc_core::prelude::*;
//! # let (a, b) = tokio::io::duplex(1024);
//! # let (ar, aw) = tokio::io::split(a);
//! # let (br, bw) = tokio::io::split(b);
//! # let codec = ipc_core::frame::LengthCodec::new(Default::default());
//! # let info = ipc_core::ChannelInfo::new("mem");
//! # let mut left = ipc_core::stream::channel(ar, aw, codec.clone(), info.clone());
//! # let mut right = ipc_core::stream::channel(br, bw, codec, info);
//! left.send("one".into()).await?;
//! left.close().await?;
//! let all: Vec<_> = right.map(|frame| frame.map(|f| f.len())).collect().await;
//! assert_eq!(all.len(), 1);
//! # Ok(()) }
//! ```

pub use futures_util::{SinkExt, StreamExt};

pub use crate::channel::Channel;
pub use crate::ext::{ChannelExt, RecvManyExt, SendManyExt, SinkJsonExt};
