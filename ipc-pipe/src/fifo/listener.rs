//! [`FifoListener`]: serves FIFO clients in a private directory, one after another.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use ipc_core::frame::{FrameBudget, FrameConfig, LengthCodec};
use ipc_core::ListenError;
use ipc_core::Options;
use ipc_core::{Channel, ChannelInfo, Endpoint, Error, Listener, Result};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::dir::{
    all_entries, create_pair, create_private_dir, remove_if_exists, PendingPair, FILE_MODE, LOCK,
};
use super::hello;
use crate::channel::{require_runtime, wrap_receiver, PipeChannel, FIFO};

/// How long a client has to finish its hello once its first byte arrived.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves clients of a FIFO directory (`fifo:DIR`), one after another.
///
/// [`bind`](Self::bind) creates `DIR` with mode 0700 (an existing directory is accepted
/// only if it is ours and has no group or other permissions), writes our pid to
/// `DIR/lock` and creates the first FIFO pair `DIR/c2s`, `DIR/s2c` (mode 0600), holding
/// its server ends open. [`accept`](Self::accept) waits for a client's hello on that
/// pair, puts a fresh pair in place for the next client, and returns the channel. The
/// [crate docs](crate#fifo-pairs-fifodir) describe the protocol in full.
///
/// One client at a time: a client holds an exclusive `flock` on `DIR/lock` while it is
/// connected, so a second one gets a clear error, and can connect once the first is
/// gone. Each connection has its own pair of FIFOs (they are unlinked once claimed), so
/// a finished connection can never leak bytes into the next one.
///
/// Dropping the listener removes the FIFO pair, the lock file and, if `bind` created
/// it, the directory. Connections already accepted keep working.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// # let tmp = tempfile::tempdir()?;
/// let dir = tmp.path().join("app"); // bind creates it, 0700
/// let mut listener = ipc_pipe::FifoListener::bind(&dir, &ipc_core::Options::default())?;
/// let mut client = ipc_pipe::connect_fifo(&dir, &ipc_core::Options::default()).await?;
/// let mut server = listener.accept().await?;
/// client.send("hello".into()).await?;
/// assert_eq!(server.recv().await?.as_deref(), Some(&b"hello"[..]));
/// assert_eq!(server.info().peer_pid, Some(std::process::id()));
/// drop(listener);
/// assert!(!dir.exists());
/// # Ok(()) }
/// ```
pub struct FifoListener {
    dir: PathBuf,
    endpoint: String,
    config: FrameConfig,
    /// Shared by the accepted channels for their partly received frames.
    budget: FrameBudget,
    pending: Option<PendingPair>,
    created_dir: bool,
    /// Exclusive `flock` on the directory itself: one listener per directory.
    _owner: Flock<File>,
}

impl std::fmt::Debug for FifoListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FifoListener")
            .field("dir", &self.dir)
            .field("max_frame", &self.config.max_frame())
            .field("pair_ready", &self.pending.is_some())
            .finish()
    }
}

impl FifoListener {
    /// Listen on the FIFO directory `dir` (see the [type docs](Self)).
    ///
    /// Errors: the directory exists but is not a private directory of ours
    /// (`PermissionDenied`), its parent does not exist, or another listener serves it
    /// (`AddrInUse`). Files a dead listener left behind are replaced. Must be called
    /// inside a tokio runtime.
    pub fn bind(dir: impl AsRef<Path>, options: &Options) -> Result<FifoListener, ListenError> {
        let config = options.frame_config();
        require_runtime("ipc_pipe::FifoListener::bind")?;
        let dir = dir.as_ref().to_path_buf();
        let endpoint = Endpoint::Fifo(dir.clone()).to_string();
        let created_dir = create_private_dir(&dir, &endpoint)?;
        let owner = match Flock::lock(File::open(&dir)?, FlockArg::LockExclusiveNonblock) {
            Ok(owner) => owner,
            Err((_, Errno::EWOULDBLOCK)) => {
                return Err(Error::Io(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{endpoint} already has a listener (one listener per directory)"),
                ))
                .into())
            }
            Err((_, e)) => return Err(io::Error::from(e).into()),
        };
        // From here on, dropping `listener` cleans up whatever was made.
        let mut listener = FifoListener {
            dir,
            endpoint,
            budget: FrameBudget::for_listener(&config),
            config,
            pending: None,
            created_dir,
            _owner: owner,
        };
        // Anything a previous listener left is stale: we own the directory now.
        for path in all_entries(&listener.dir) {
            remove_if_exists(&path)?;
        }
        let lock_path = listener.dir.join(LOCK);
        let mut lock = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&lock_path)?;
        fs::set_permissions(&lock_path, fs::Permissions::from_mode(FILE_MODE))?;
        writeln!(lock, "{}", std::process::id())?;
        listener.pending = Some(create_pair(&listener.dir)?);
        tracing::debug!(endpoint = %listener.endpoint, "fifo listener bound");
        Ok(listener)
    }

    /// The budget the accepted channels share for partly received frames (its size is
    /// [`Options::listener_budget`] of the listener's options). Clients come one at
    /// a time, but a channel kept after its client left still holds its share.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
    /// # let tmp = tempfile::tempdir()?;
    /// let opts = ipc_core::Options::default().listener_budget(64 << 20);
    /// let listener = ipc_pipe::FifoListener::bind(tmp.path().join("app"), &opts)?;
    /// assert_eq!(listener.frame_budget().limit(), 64 << 20);
    /// # Ok(()) }
    /// ```
    pub fn frame_budget(&self) -> &FrameBudget {
        &self.budget
    }

    /// The directory served.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The endpoint clients connect to (`fifo:DIR`).
    pub fn endpoint(&self) -> Endpoint {
        Endpoint::Fifo(self.dir.clone())
    }

    /// Wait for the next client and return its channel (`peer_pid` is the pid from its
    /// hello).
    ///
    /// Returns once a client has claimed the waiting FIFO pair and written its hello;
    /// since a client holds `DIR/lock` while connected, that is after the previous
    /// client is gone. A fresh pair is put in place before this returns.
    ///
    /// An `Err` concerns one client, which has been dropped (its FIFOs closed, so it
    /// sees end-of-file); call `accept` again to serve the next:
    /// [`Error::Handshake`] for a client that wrote something other than a hello (an
    /// HTTP request reads as a 1.2 GB length prefix), [`Error::PeerLost`] for one that
    /// went away before finishing its hello, [`Error::Timeout`] for one that started a
    /// hello and stalled for [`HANDSHAKE_TIMEOUT`].
    ///
    /// Cancel safe: a dropped `accept` future loses nothing; the next call resumes.
    pub async fn accept(&mut self) -> Result<PipeChannel> {
        let pending = match &mut self.pending {
            Some(pending) => pending,
            None => self.pending.insert(create_pair(&self.dir)?),
        };
        let outcome = read_hello(pending, &self.endpoint).await;
        // Whatever happened, this pair is done: the client claimed it, or it is dropped
        // with its client. Put a fresh one in place for the next client.
        let pair = self.pending.take();
        let result = match (outcome, pair) {
            (Ok(pid), Some(pair)) => {
                let info = ChannelInfo::new(FIFO).with_peer_pid(Some(pid));
                let codec = LengthCodec::new(self.config).with_budget(self.budget.clone());
                wrap_receiver(pair.rx, pair.tx, codec, info, None)
            }
            (Err(e), pair) => {
                drop(pair); // the client sees end-of-file on s2c, EPIPE on c2s
                tracing::debug!(endpoint = %self.endpoint, error = %e, "fifo client dropped");
                Err(e)
            }
            (Ok(_), None) => Err(Error::Io(io::Error::other(
                "internal error: the FIFO pair vanished during accept",
            ))),
        };
        match create_pair(&self.dir) {
            Ok(pair) => self.pending = Some(pair),
            Err(e) => tracing::warn!(
                endpoint = %self.endpoint,
                error = %e,
                "could not create the next FIFO pair; the next accept tries again"
            ),
        }
        result
    }

    /// True when the waiting pair has bytes (or an end-of-file) to read: a client has
    /// started its hello.
    pub(crate) fn client_waiting(&self) -> bool {
        let Some(pending) = &self.pending else {
            return false;
        };
        if !pending.hello.is_empty() {
            return true;
        }
        let mut fds = [libc::pollfd {
            fd: pending.rx.as_fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: one valid pollfd for an fd we own; a zero timeout never blocks.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 1, 0) };
        n > 0 && fds[0].revents & (libc::POLLIN | libc::POLLHUP) != 0
    }
}

/// Read the hello on a pending pair, keeping partial progress in `pending`.
async fn read_hello(pending: &mut PendingPair, endpoint: &str) -> Result<u32> {
    let mut buf = [0u8; hello::HEAD + hello::MAX];
    loop {
        let have = pending.hello.len();
        let want = if have < hello::HEAD {
            hello::HEAD
        } else {
            let head = [
                pending.hello[0],
                pending.hello[1],
                pending.hello[2],
                pending.hello[3],
            ];
            hello::HEAD + hello::payload_len(head, endpoint)?
        };
        if have == want {
            return hello::parse(&pending.hello[hello::HEAD..], endpoint);
        }
        match pending.deadline {
            None => pending.rx.readable().await?,
            Some(deadline) => tokio::time::timeout_at(deadline, pending.rx.readable())
                .await
                .map_err(|_| Error::Timeout {
                    after: HANDSHAKE_TIMEOUT,
                    during: "reading a fifo client's hello (it stalled mid-hello)",
                })??,
        }
        match pending.rx.try_read(&mut buf[..want - have]) {
            Ok(0) if have == 0 => {
                return Err(Error::PeerLost(format!(
                    "a client opened {endpoint} and went away without a hello"
                )))
            }
            Ok(0) => {
                return Err(Error::PeerLost(format!(
                    "a client of {endpoint} went away in the middle of its hello \
                     ({have} of {want} bytes)"
                )))
            }
            Ok(n) => {
                pending.hello.extend_from_slice(&buf[..n]);
                pending
                    .deadline
                    .get_or_insert_with(|| tokio::time::Instant::now() + HANDSHAKE_TIMEOUT);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e.into()),
        }
    }
}

#[async_trait]
impl Listener for FifoListener {
    async fn accept(&mut self) -> Result<Box<dyn Channel>> {
        Ok(Box::new(FifoListener::accept(self).await?))
    }

    fn endpoint(&self) -> Endpoint {
        FifoListener::endpoint(self)
    }
}

impl Drop for FifoListener {
    fn drop(&mut self) {
        self.pending = None;
        for path in all_entries(&self.dir) {
            if let Err(e) = remove_if_exists(&path) {
                tracing::warn!(path = %path.display(), error = %e, "could not remove");
            }
        }
        if self.created_dir {
            if let Err(e) = fs::remove_dir(&self.dir) {
                tracing::warn!(
                    dir = %self.dir.display(),
                    error = %e,
                    "could not remove the fifo directory"
                );
            }
        }
    }
}
