//! [`ShmListener`]: hand out shared-memory channels to clients that connect to a
//! rendezvous socket.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::FutureExt;
use ipc_core::frame::{FrameBudget, FrameConfig, LengthCodec};
use ipc_core::prelude::*;
use ipc_core::{BackendListener, Endpoint, Error, ListenError, Options, Result};
use ipc_uds::{UdsChannel, UdsListener};

use crate::channel::{self, ShmChannel, DEFAULT_RING_SIZE};
use crate::offer::{self, HELLO, RENDEZVOUS_MAX_FRAME};
use crate::ShmAddress;

/// A shared-memory listener: clients connect to its rendezvous socket (`shm:/path`, a
/// Unix socket file: 0600, in a 0700 directory when created), say hello, and each gets
/// a segment of its own, offered over that socket.
///
/// As on a [`UdsListener`], only peers with our effective uid are accepted unless the
/// options allow more ([`Options::allow_uid`], [`Options::allow_any_uid`]); a refused
/// peer is an [`Error::Auth`] from that `accept`. Handshakes run concurrently: a client
/// that connects and says nothing delays no other client (it is dropped after the
/// [handshake timeout](Options::handshake_timeout), 5 s by default).
/// The accepted channels share one budget for half-received frames, as on every
/// listener ([`Options::listener_budget`]).
///
/// ```no_run
/// # async fn demo() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// let endpoint = "shm:/run/user/1000/app.sock".parse()?;
/// let mut listener = ipc_shm::ShmListener::bind(&endpoint, &ipc_core::Options::default())?;
/// loop {
///     let mut ch = listener.accept().await?;
///     tokio::spawn(async move {
///         while let Ok(Some(frame)) = ch.recv().await {
///             if ch.send(frame).await.is_err() {
///                 break;
///             }
///         }
///     });
/// }
/// # }
/// ```
pub struct ShmListener {
    rendezvous: UdsListener,
    endpoint: Endpoint,
    config: FrameConfig,
    /// Shared by the accepted channels: bounds the memory their half-received frames
    /// hold (see [`FrameBudget`]).
    budget: FrameBudget,
    ring_size: usize,
    /// How long a connected client has to say hello before it is dropped.
    hello_timeout: Duration,
    handshakes: FuturesUnordered<BoxFuture<'static, Result<ShmChannel>>>,
    /// Declared last: removed after the socket file is.
    _dir: Option<ExampleDir>,
}

impl std::fmt::Debug for ShmListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmListener")
            .field("endpoint", &self.endpoint)
            .field("ring_size", &self.ring_size)
            .field("handshakes", &self.handshakes.len())
            .finish_non_exhaustive()
    }
}

impl ShmListener {
    /// Listen on `shm:/path`, handing out segments with rings of [`DEFAULT_RING_SIZE`]
    /// bytes; `options` set the frame limit and the listener budget of the channels it
    /// accepts, and the peer uids it accepts besides our own.
    ///
    /// ```no_run
    /// # fn demo() -> ipc_core::Result<()> {
    /// let endpoint = "shm:/tmp/my-app/sock".parse()?;
    /// let listener = ipc_shm::ShmListener::bind(&endpoint, &ipc_core::Options::default())?;
    /// # let _ = listener; Ok(()) }
    /// ```
    pub fn bind(endpoint: &Endpoint, options: &Options) -> Result<ShmListener, ListenError> {
        Self::bind_with_ring_size(endpoint, options, DEFAULT_RING_SIZE)
    }

    /// [`bind`](Self::bind) with rings of `ring_size` bytes (a power of two from 4 KiB
    /// to 1 GiB).
    ///
    /// ```no_run
    /// # fn demo() -> ipc_core::Result<()> {
    /// let endpoint = "shm:/tmp/my-app/sock".parse()?;
    /// let options = ipc_core::Options::default();
    /// let listener = ipc_shm::ShmListener::bind_with_ring_size(&endpoint, &options, 8 << 20)?;
    /// # let _ = listener; Ok(()) }
    /// ```
    pub fn bind_with_ring_size(
        endpoint: &Endpoint,
        options: &Options,
        ring_size: usize,
    ) -> Result<ShmListener, ListenError> {
        let ShmAddress::Path(path) = ShmAddress::try_from(endpoint)? else {
            return Err(endpoint
                .invalid(
                    crate::channel::NAME,
                    &["shm:/PATH"],
                    "a listener needs a rendezvous socket path, not an inherited fd",
                )
                .into());
        };
        if !(crate::segment::MIN_CAPACITY..=crate::segment::MAX_CAPACITY).contains(&ring_size)
            || !ring_size.is_power_of_two()
        {
            return Err(ListenError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("a ring of {ring_size} bytes: use a power of two from 4 KiB to 1 GiB"),
            )));
        }
        // The rendezvous socket carries only tiny frames (never charged to a budget),
        // and refuses the peer uids the options do not allow.
        let rendezvous_options = options.clone().max_frame(RENDEZVOUS_MAX_FRAME);
        let rendezvous = UdsListener::bind(
            &ipc_uds::UdsAddress::Path(path.clone()).into(),
            &rendezvous_options,
        )?;
        let config = options.frame_config();
        Ok(ShmListener {
            rendezvous,
            endpoint: endpoint.clone(),
            budget: FrameBudget::for_listener(&config),
            config,
            ring_size,
            hello_timeout: options.get_handshake_timeout(),
            handshakes: FuturesUnordered::new(),
            _dir: path.parent().and_then(ExampleDir::claim),
        })
    }

    /// The next client that said hello, with its own segment. An `Err` concerns one
    /// client (it did not say hello in time, spoke something else, or is another
    /// user): call `accept` again. Cancel-safe: a dropped `accept` loses no client.
    ///
    /// ```no_run
    /// # async fn demo(mut listener: ipc_shm::ShmListener) -> ipc_core::Result<()> {
    /// use ipc_core::prelude::*;
    /// let mut ch = listener.accept().await?;
    /// ch.send("welcome".into()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn accept(&mut self) -> Result<ShmChannel> {
        loop {
            tokio::select! {
                biased;
                Some(done) = self.handshakes.next(), if !self.handshakes.is_empty() => {
                    return done;
                }
                accepted = self.rendezvous.accept() => {
                    let client = accepted?;
                    let codec = LengthCodec::new(self.config).with_budget(self.budget.clone());
                    let welcome = welcome(client, codec, self.ring_size, self.hello_timeout);
                    self.handshakes.push(welcome.boxed());
                }
            }
        }
    }
}

/// The listener's side of one client's handshake: its hello, then our offer.
async fn welcome(
    mut client: UdsChannel,
    codec: LengthCodec,
    ring_size: usize,
    hello_timeout: Duration,
) -> Result<ShmChannel> {
    let refused = |what: String| {
        Error::Handshake(format!(
            "a client of the shared-memory listener sent {what} instead of the ipc-shm \
             hello; it was dropped"
        ))
    };
    match tokio::time::timeout(hello_timeout, client.recv()).await {
        Ok(Ok(Some(frame))) if frame == HELLO => {}
        Ok(Ok(Some(frame))) => {
            return Err(refused(format!(
                "the frame {:?}",
                String::from_utf8_lossy(&frame[..frame.len().min(32)])
            )))
        }
        Ok(Ok(None)) => return Err(refused("nothing (it closed)".into())),
        Ok(Err(e)) => return Err(refused(format!("a bad frame ({e})"))),
        Err(_) => return Err(refused(format!("nothing within {hello_timeout:?}"))),
    }
    let peer = client.info();
    let (side, offer) = offer::create(ring_size)?;
    offer::send_offer(client, offer).await?;
    channel::from_side_with_codec(side, codec, channel::info(&peer))
}

impl BackendListener for ShmListener {
    type Channel = ShmChannel;

    async fn accept(&mut self) -> Result<ShmChannel> {
        ShmListener::accept(self).await
    }

    fn endpoint(&self) -> Endpoint {
        self.endpoint.clone()
    }
}

/// Directories made by [`example_dir`] that the listener bound in them removes.
static EXAMPLE_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// A fresh private directory for an example endpoint, removed by the listener bound in
/// it (or left, empty, if none is).
pub(crate) fn example_dir() -> std::io::Result<PathBuf> {
    let dir = tempfile::Builder::new()
        .prefix("ipc-shm-")
        .tempdir()?
        .keep();
    if let Ok(mut dirs) = EXAMPLE_DIRS.lock() {
        dirs.push(dir.clone());
    }
    Ok(dir)
}

/// An example directory a listener owns: removed when the listener is dropped.
struct ExampleDir(PathBuf);

impl ExampleDir {
    fn claim(dir: &std::path::Path) -> Option<ExampleDir> {
        let mut dirs = EXAMPLE_DIRS.lock().ok()?;
        let at = dirs.iter().position(|d| d == dir)?;
        Some(ExampleDir(dirs.swap_remove(at)))
    }
}

impl Drop for ExampleDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
