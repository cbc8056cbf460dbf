//! [`Backend`]: what a transport implements, with its own channel and listener types
//! and native `async fn`s; the toolkit turns every backend into the object-safe
//! [`Transport`] the [`Registry`](crate::Registry) holds.
//!
//! A backend writes its I/O and nothing else: no boxing, no forwarding. Two blanket
//! impls do the rest:
//!
//! - every [`Backend`] is a [`Transport`] (its channels boxed as
//!   `Box<dyn Channel>`, its listener as `Box<dyn Listener>`), so
//!   `registry.register(MyBackend)` works as written;
//! - every [`BackendListener`] is a [`Listener`].
//!
//! A backend that cannot listen writes `type Listener = NoListener<Self::Channel>` and
//! keeps the default [`listen`](Backend::listen), which refuses with
//! [`ListenError::Unsupported`]; one that cannot spawn keeps the default
//! [`spawn`](Backend::spawn). Its [`capabilities`](Backend::capabilities) say so.
//!
//! ```
//! use std::future::Future;
//! use ipc_core::backend::{Backend, NoListener};
//! use ipc_core::{Capabilities, ConnectError, Endpoint, Options, Registry, Transport};
//! # type MyChannel = ipc_core::Joined;
//!
//! /// A transport that can only connect (and, here, never manages to).
//! struct Nowhere;
//!
//! impl Backend for Nowhere {
//!     const NAME: &'static str = "nowhere";
//!     const SCHEMES: &'static [&'static str] = &["nowhere"];
//!     const FORMS: &'static [&'static str] = &["nowhere:NAME"];
//!     type Channel = MyChannel;
//!     type Listener = NoListener<MyChannel>;
//!
//!     fn capabilities(&self) -> Capabilities {
//!         Capabilities::NONE.with_binary_frames(true)
//!     }
//!
//!     fn check_endpoint(&self, endpoint: &Endpoint) -> ipc_core::Result<()> {
//!         match endpoint.address() {
//!             "" => Err(endpoint.invalid(Self::NAME, Self::FORMS, "the name is empty")),
//!             _ => Ok(()),
//!         }
//!     }
//!
//!     async fn connect(&self, endpoint: &Endpoint, _: &Options) -> Result<MyChannel, ConnectError> {
//!         Err(ConnectError::NotListening(std::io::Error::other(format!("{endpoint}: nobody there"))))
//!     }
//! }
//!
//! let mut registry = Registry::new();
//! registry.register(Nowhere);
//! let nowhere = registry.get("nowhere")?;
//! assert!(!nowhere.capabilities().listen);
//! assert!(registry.endpoint("nowhere:x").is_ok());
//! assert!(registry.endpoint("nowhere:").is_err());
//! # Ok::<(), ipc_core::Error>(())
//! ```

use std::future::Future;
use std::marker::PhantomData;
use std::process::Command;

use async_trait::async_trait;

use crate::channel::Channel;
use crate::child::Child;
use crate::endpoint::Endpoint;
use crate::error::{ConnectError, ListenError, Result, SpawnError};
use crate::options::Options;
use crate::transport::{Capabilities, Listener, Transport};

/// One kind of channel, written with its own types: implement this, and the toolkit
/// makes it a [`Transport`] (see the [module docs](self)).
///
/// The `async fn`s may be written as `async fn` in the impl; their futures must be
/// `Send`.
pub trait Backend: Send + Sync + 'static {
    /// Short name used on command lines (`uds`, `tcp`, ...).
    const NAME: &'static str;

    /// Endpoint schemes this backend serves (`["unix", "uds"]`).
    const SCHEMES: &'static [&'static str];

    /// The endpoint forms it accepts, for people and error messages
    /// (`["unix:/PATH", "unix:@NAME", "uds:fd=N"]`).
    const FORMS: &'static [&'static str];

    /// The channel [`connect`](Self::connect), [`spawn`](Self::spawn) and the listener
    /// give.
    type Channel: Channel;

    /// What [`listen`](Self::listen) gives: [`NoListener`] when the backend cannot
    /// listen.
    type Listener: BackendListener<Channel = Self::Channel>;

    /// What this backend can do (binary frames, listen, spawn, fd passing).
    fn capabilities(&self) -> Capabilities;

    /// `Ok` when `endpoint` is one of this backend's, well formed; else an
    /// [`Error::BadEndpoint`](crate::Error::BadEndpoint) saying why and which forms it
    /// takes (see [`Endpoint::invalid`]). Usually: parse it into the backend's typed
    /// address and drop that.
    fn check_endpoint(&self, endpoint: &Endpoint) -> Result<()>;

    /// The endpoint this process's environment gives it, when it was started in a way
    /// only this backend knows (Node's `NODE_CHANNEL_FD`). `None` (the default) for a
    /// backend whose children find `IPC_ENDPOINT`.
    fn endpoint_from_env(&self) -> Option<Endpoint> {
        None
    }

    /// A sensible endpoint to listen on for a quick test (a fresh socket path, port 0).
    /// `None` (the default) if the backend cannot listen.
    fn example_endpoint(&self) -> Option<Endpoint> {
        None
    }

    /// Connect to `endpoint` (including the inherited forms a child finds in its env).
    fn connect(
        &self,
        endpoint: &Endpoint,
        options: &Options,
    ) -> impl Future<Output = Result<Self::Channel, ConnectError>> + Send;

    /// Listen on `endpoint`. The default refuses with [`ListenError::Unsupported`].
    fn listen(
        &self,
        endpoint: &Endpoint,
        options: &Options,
    ) -> impl Future<Output = Result<Self::Listener, ListenError>> + Send {
        let _ = options;
        std::future::ready(Err(ListenError::Unsupported {
            transport: Self::NAME,
            what: format!("listening (on {endpoint})"),
        }))
    }

    /// Start `command` as a child wired to a new channel (see
    /// [`Transport::spawn`]). The default refuses with [`SpawnError::Unsupported`].
    fn spawn(
        &self,
        command: Command,
        options: &Options,
    ) -> impl Future<Output = Result<(Child, Self::Channel), SpawnError>> + Send {
        let _ = (command, options);
        std::future::ready(Err(SpawnError::Unsupported {
            transport: Self::NAME,
            what: "spawning a child".to_string(),
        }))
    }
}

/// Accepts incoming channels of one backend, with its own channel type: every
/// `BackendListener` is a [`Listener`] (the channel boxed).
///
/// An `Err` from [`accept`](Self::accept) concerns one client (see [`Listener`]).
pub trait BackendListener: Send + 'static {
    /// The channel accepted.
    type Channel: Channel;

    /// The next connected, authenticated channel.
    fn accept(&mut self) -> impl Future<Output = Result<Self::Channel>> + Send;

    /// Where clients connect (with the real port when listening on port 0).
    fn endpoint(&self) -> Endpoint;
}

/// The listener of a backend that cannot listen: no value of it exists.
///
/// ```
/// use ipc_core::backend::NoListener;
/// type PipeListener = NoListener<ipc_core::Joined>;
/// ```
pub struct NoListener<C> {
    never: std::convert::Infallible,
    _channel: PhantomData<fn() -> C>,
}

impl<C> std::fmt::Debug for NoListener<C> {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.never {}
    }
}

impl<C: Channel> BackendListener for NoListener<C> {
    type Channel = C;

    fn accept(&mut self) -> impl Future<Output = Result<C>> + Send {
        let never = self.never;
        async move { match never {} }
    }

    fn endpoint(&self) -> Endpoint {
        match self.never {}
    }
}

/// Every listener of a backend is a [`Listener`]: its channels boxed.
#[async_trait]
impl<L: BackendListener> Listener for L {
    async fn accept(&mut self) -> Result<Box<dyn Channel>> {
        Ok(Box::new(BackendListener::accept(self).await?))
    }

    fn endpoint(&self) -> Endpoint {
        BackendListener::endpoint(self)
    }
}

/// Every backend is a [`Transport`]: its channels and listener boxed.
#[async_trait]
impl<B: Backend> Transport for B {
    fn name(&self) -> &'static str {
        B::NAME
    }

    fn capabilities(&self) -> Capabilities {
        Backend::capabilities(self)
    }

    fn schemes(&self) -> &'static [&'static str] {
        B::SCHEMES
    }

    fn forms(&self) -> &'static [&'static str] {
        B::FORMS
    }

    fn check_endpoint(&self, endpoint: &Endpoint) -> Result<()> {
        Backend::check_endpoint(self, endpoint)
    }

    fn endpoint_from_env(&self) -> Option<Endpoint> {
        Backend::endpoint_from_env(self)
    }

    fn example_endpoint(&self) -> Option<Endpoint> {
        Backend::example_endpoint(self)
    }

    async fn listen(
        &self,
        endpoint: &Endpoint,
        options: &Options,
    ) -> Result<Box<dyn Listener>, ListenError> {
        Ok(Box::new(Backend::listen(self, endpoint, options).await?))
    }

    async fn connect(
        &self,
        endpoint: &Endpoint,
        options: &Options,
    ) -> Result<Box<dyn Channel>, ConnectError> {
        Ok(Box::new(Backend::connect(self, endpoint, options).await?))
    }

    async fn spawn(
        &self,
        command: Command,
        options: &Options,
    ) -> Result<(Child, Box<dyn Channel>), SpawnError> {
        let (child, channel) = Backend::spawn(self, command, options).await?;
        Ok((child, Box::new(channel)))
    }
}
