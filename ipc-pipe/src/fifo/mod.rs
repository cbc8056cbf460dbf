//! FIFO pairs in a private directory (`fifo:DIR`): [`FifoListener`], [`connect_fifo`]
//! and [`spawn_fifo`]. The protocol is described in the [crate docs](crate#fifo-pairs-fifodir).

mod client;
mod dir;
mod hello;
mod listener;
mod spawn;

pub use client::connect_fifo;
pub use listener::{FifoListener, HANDSHAKE_TIMEOUT};
pub use spawn::{spawn_fifo, CHILD_CONNECT_TIMEOUT};

pub(crate) use spawn::fresh_dir;
