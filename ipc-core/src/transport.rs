//! [`Transport`]: how to listen, connect and spawn a child for one kind of channel, and
//! the [`Registry`] that picks a transport by name or endpoint scheme at run time.
//!
//! ```no_run
//! # async fn demo(registry: ipc_core::Registry) -> ipc_core::Result<()> {
//! use ipc_core::prelude::*;
//! use ipc_core::Options;
//! // `--transport uds` or `--transport tcp`: the program does not care which.
//! let transport = registry.get("uds")?;
//! let cmd = std::process::Command::new("/path/to/child");
//! let (mut child, mut channel) = transport.spawn(cmd, &Options::default()).await?;
//! channel.send("hello".into()).await?;
//! let reply = channel.recv().await?;
//! channel.close().await?;
//! let status = child.wait().await?;
//! # let _ = (reply, status); Ok(()) }
//! ```

use std::process::Command;
use std::sync::Arc;

use async_trait::async_trait;

use crate::channel::Channel;
use crate::child::Child;
use crate::endpoint::Endpoint;
use crate::env::endpoint_from_env;
use crate::error::{ConnectError, Error, ListenError, Result, SpawnError};
use crate::options::Options;

/// Accepts incoming channels on an [`Endpoint`].
///
/// `accept` returns the toolkit's [`Error`] (not an error of its own): an `Err` from
/// [`accept`](Listener::accept) concerns one client (a refused handshake,
/// a wrong uid, a client that vanished) or a transient OS condition: log it and call
/// `accept` again; the listener keeps serving.
#[async_trait]
pub trait Listener: Send + 'static {
    /// The next connected, authenticated channel.
    async fn accept(&mut self) -> Result<Box<dyn Channel>>;

    /// Where clients connect (with the real port when listening on port 0).
    fn endpoint(&self) -> Endpoint;
}

/// What a transport can do, so a program offers (and accepts) only the transports that
/// work for it. Ask a transport with [`Transport::capabilities`], the registry with
/// [`Registry::names_with`] / [`Registry::get_with`].
///
/// Build a set with [`Capabilities::NONE`] and the `with_*` methods; as a requirement,
/// every capability set in it must be present.
///
/// ```
/// use ipc_core::transport::Capabilities;
/// let uds = Capabilities::NONE.with_binary_frames(true).with_listen(true).with_spawn(true);
/// let needs = Capabilities::NONE.with_binary_frames(true).with_spawn(true);
/// assert!(uds.covers(needs));
/// let node = Capabilities::NONE.with_spawn(true);
/// assert_eq!(node.lacking(needs), ["binary frames"]);
/// assert_eq!(node.to_string(), "JSON frames only, spawning");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub struct Capabilities {
    /// Frames may hold any bytes. When false, each frame must be exactly one JSON text
    /// (`node`): a binary or plain-text payload is refused by `send`.
    pub binary_frames: bool,
    /// [`Transport::listen`] works: clients can connect to an endpoint by name.
    pub listen: bool,
    /// [`Transport::spawn`] works: a child can be started wired to a new channel.
    pub spawn: bool,
    /// File descriptors can travel with frames (`uds`, through its own channel type).
    pub fd_passing: bool,
}

impl Capabilities {
    /// Nothing at all: the start of a set built with the `with_*` methods.
    pub const NONE: Capabilities = Capabilities {
        binary_frames: false,
        listen: false,
        spawn: false,
        fd_passing: false,
    };

    /// Set [`binary_frames`](Self::binary_frames).
    pub const fn with_binary_frames(mut self, yes: bool) -> Self {
        self.binary_frames = yes;
        self
    }

    /// Set [`listen`](Self::listen).
    pub const fn with_listen(mut self, yes: bool) -> Self {
        self.listen = yes;
        self
    }

    /// Set [`spawn`](Self::spawn).
    pub const fn with_spawn(mut self, yes: bool) -> Self {
        self.spawn = yes;
        self
    }

    /// Set [`fd_passing`](Self::fd_passing).
    pub const fn with_fd_passing(mut self, yes: bool) -> Self {
        self.fd_passing = yes;
        self
    }

    fn named(self) -> [(bool, &'static str); 4] {
        [
            (self.binary_frames, "binary frames"),
            (self.listen, "listening"),
            (self.spawn, "spawning"),
            (self.fd_passing, "fd passing"),
        ]
    }

    /// True when every capability in `needs` is here.
    pub fn covers(self, needs: Capabilities) -> bool {
        self.lacking(needs).is_empty()
    }

    /// The names of the capabilities in `needs` that are not here.
    pub fn lacking(self, needs: Capabilities) -> Vec<&'static str> {
        self.named()
            .iter()
            .zip(needs.named())
            .filter(|((have, _), (need, _))| *need && !*have)
            .map(|((_, name), _)| *name)
            .collect()
    }
}

impl std::fmt::Display for Capabilities {
    /// `binary frames, listening, spawning, fd passing`; `JSON frames only` first when
    /// frames must be JSON.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&str> = self
            .named()
            .iter()
            .filter(|(have, _)| *have)
            .map(|(_, name)| *name)
            .collect();
        if !self.binary_frames {
            names.insert(0, "JSON frames only");
        }
        f.write_str(&names.join(", "))
    }
}

/// One kind of channel: Unix sockets, TCP, pipes, ...
///
/// Every operation takes the [`Options`] to use; a transport ignores the options it
/// has no use for (each setter says which transports use it).
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Short name used on command lines (`uds`, `tcp`, ...).
    fn name(&self) -> &'static str;

    /// What this transport can do (binary frames, listen, spawn, fd passing).
    ///
    /// ```
    /// # fn demo(registry: &ipc_core::Registry) -> ipc_core::Result<()> {
    /// let caps = registry.get("uds")?.capabilities();
    /// println!("uds: {caps}"); // binary frames, listening, spawning, fd passing
    /// # Ok(()) }
    /// ```
    fn capabilities(&self) -> Capabilities;

    /// Endpoint schemes this transport serves (`["unix", "uds"]`).
    fn schemes(&self) -> &'static [&'static str];

    /// A sensible endpoint to listen on for a quick test (a fresh socket path, port 0).
    /// `None` if the transport cannot listen.
    fn example_endpoint(&self) -> Option<Endpoint>;

    /// Listen on `endpoint`.
    async fn listen(
        &self,
        endpoint: &Endpoint,
        options: &Options,
    ) -> Result<Box<dyn Listener>, ListenError>;

    /// Connect to `endpoint` (including the inherited forms a child finds in its env).
    async fn connect(
        &self,
        endpoint: &Endpoint,
        options: &Options,
    ) -> Result<Box<dyn Channel>, ConnectError>;

    /// Start `command` as a child wired to a new channel. The child finds its end
    /// through `IPC_ENDPOINT` (see [`crate::env`]). It runs in a process group of its
    /// own and dies with this process unless [`detached`](crate::spawn::detached) (see
    /// [`crate::spawn`]); a program that cannot be started is named in the error.
    async fn spawn(
        &self,
        command: Command,
        options: &Options,
    ) -> Result<(Child, Box<dyn Channel>), SpawnError>;
}

/// Maps transport names and endpoint schemes to transports.
///
/// The core knows no backend; the `ipc` facade fills a registry with the backends it
/// was built with (`ipc::registry()`).
///
/// ```
/// let registry = ipc_core::Registry::new();
/// let err = registry.get("uds").err().unwrap();
/// assert!(err.to_string().contains("unknown transport"));
/// ```
#[derive(Clone, Default)]
pub struct Registry {
    transports: Vec<Arc<dyn Transport>>,
    /// Transports known by name but not built in, with how to get them.
    not_built: Vec<(&'static str, &'static str)>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Add a transport (a later one with the same name replaces the earlier).
    pub fn register(&mut self, transport: impl Transport) -> &mut Self {
        let name = transport.name();
        self.transports.retain(|t| t.name() != name);
        self.transports.push(Arc::new(transport));
        self
    }

    /// Remember that the transport `name` exists but is not built in, and `how` to get
    /// it: asking for it then says so instead of only "unknown transport". The facade
    /// does this for each backend whose cargo feature is off.
    ///
    /// ```
    /// let mut registry = ipc_core::Registry::new();
    /// registry.note_not_built("signal", "enable the `signal` feature of ipc-kit");
    /// let err = registry.get("signal").err().unwrap().to_string();
    /// assert!(err.contains("not built in") && err.contains("enable the `signal` feature"), "{err}");
    /// ```
    pub fn note_not_built(&mut self, name: &'static str, how: &'static str) -> &mut Self {
        self.not_built.retain(|(known, _)| *known != name);
        self.not_built.push((name, how));
        self
    }

    /// Names of the registered transports, in registration order.
    pub fn names(&self) -> Vec<&'static str> {
        self.transports.iter().map(|t| t.name()).collect()
    }

    /// The transport with this name, or else the first serving this scheme.
    pub fn get(&self, name_or_scheme: &str) -> Result<Arc<dyn Transport>> {
        self.transports
            .iter()
            .find(|t| t.name() == name_or_scheme)
            .or_else(|| {
                self.transports
                    .iter()
                    .find(|t| t.schemes().contains(&name_or_scheme))
            })
            .cloned()
            .ok_or_else(|| Error::UnknownTransport {
                name: name_or_scheme.to_string(),
                available: self.names().iter().map(|s| s.to_string()).collect(),
                hint: self
                    .not_built
                    .iter()
                    .find(|(known, _)| *known == name_or_scheme)
                    .map(|(known, how)| format!("{known} is not built in: {how}")),
            })
    }

    /// Names of the registered transports that have every capability in `needs`, in
    /// registration order: what a program that needs them should offer.
    ///
    /// ```
    /// use ipc_core::transport::Capabilities;
    /// let registry = ipc_core::Registry::new();
    /// let needs = Capabilities::NONE.with_binary_frames(true).with_spawn(true);
    /// assert!(registry.names_with(needs).is_empty());
    /// ```
    pub fn names_with(&self, needs: Capabilities) -> Vec<&'static str> {
        self.transports
            .iter()
            .filter(|t| t.capabilities().covers(needs))
            .map(|t| t.name())
            .collect()
    }

    /// [`get`](Self::get), refusing a transport that lacks anything in `needs` with an
    /// [`Error::Unsupported`] that names the transports that have it all.
    ///
    /// ```no_run
    /// # fn demo(registry: &ipc_core::Registry) -> ipc_core::Result<()> {
    /// use ipc_core::transport::Capabilities;
    /// let needs = Capabilities::NONE.with_binary_frames(true).with_spawn(true);
    /// let err = registry.get_with("node", needs).err().unwrap();
    /// // "the node transport does not support binary frames, which this program
    /// //  needs; transports that do: uds, tcp, pipe, fifo, stdio, signal"
    /// # let _ = err; Ok(()) }
    /// ```
    pub fn get_with(
        &self,
        name_or_scheme: &str,
        needs: Capabilities,
    ) -> Result<Arc<dyn Transport>> {
        let transport = self.get(name_or_scheme)?;
        self.check(transport.as_ref(), needs)?;
        Ok(transport)
    }

    /// `Ok` when `transport` has every capability in `needs`; otherwise the
    /// [`Error::Unsupported`] of [`get_with`](Self::get_with).
    pub fn check(&self, transport: &dyn Transport, needs: Capabilities) -> Result<()> {
        let lacking = transport.capabilities().lacking(needs);
        if lacking.is_empty() {
            return Ok(());
        }
        let able = self.names_with(needs);
        let alternatives = if able.is_empty() {
            "no transport built in has them all".to_string()
        } else {
            format!("transports that do: {}", able.join(", "))
        };
        Err(Error::unsupported(
            transport.name(),
            format!(
                "{}, which this program needs; {alternatives}",
                lacking.join(" or ")
            ),
        ))
    }

    /// The transport that serves this endpoint's scheme.
    pub fn for_endpoint(&self, endpoint: &Endpoint) -> Result<Arc<dyn Transport>> {
        self.transports
            .iter()
            .find(|t| t.schemes().contains(&endpoint.scheme()))
            .cloned()
            .ok_or_else(|| Error::BadEndpoint {
                input: endpoint.to_string(),
                reason: format!(
                    "no transport for scheme {:?} is built in (available: {})",
                    endpoint.scheme(),
                    self.names().join(", ")
                ),
            })
    }

    /// Connect to an endpoint with whichever transport serves it.
    pub async fn connect(
        &self,
        endpoint: &Endpoint,
        options: &Options,
    ) -> Result<Box<dyn Channel>, ConnectError> {
        self.for_endpoint(endpoint)?
            .connect(endpoint, options)
            .await
    }

    /// Listen on an endpoint with whichever transport serves it.
    pub async fn listen(
        &self,
        endpoint: &Endpoint,
        options: &Options,
    ) -> Result<Box<dyn Listener>, ListenError> {
        self.for_endpoint(endpoint)?.listen(endpoint, options).await
    }

    /// In a child: connect to the parent through `IPC_ENDPOINT` with `options`
    /// (usually [`Options::from_env`], which honours the `IPC_MAX_FRAME` the parent
    /// set).
    ///
    /// ```no_run
    /// # async fn demo(registry: &ipc_core::Registry) -> ipc_core::Result<()> {
    /// let channel = registry.connect_from_env(&ipc_core::Options::from_env()).await?;
    /// # let _ = channel; Ok(()) }
    /// ```
    pub async fn connect_from_env(
        &self,
        options: &Options,
    ) -> Result<Box<dyn Channel>, ConnectError> {
        let endpoint = endpoint_from_env()?;
        self.for_endpoint(&endpoint)?
            .connect(&endpoint, options)
            .await
    }
}
