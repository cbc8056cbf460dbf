//! [`UdsListener`]: accept channels on a socket path or an abstract name.

use std::io;
use std::os::unix::net::UnixListener as StdUnixListener;

use async_trait::async_trait;
use ipc_core::frame::{FrameBudget, LengthCodec};
use ipc_core::ListenError;
use ipc_core::{Channel, ChannelInfo, Endpoint, Error, Listener, Options, Result};
use tokio::net::UnixListener;

use crate::channel::{peer_cred, UdsChannel, NAME};
use crate::connect::abstract_addr;
use crate::socket_file::{bind_path, SocketFile};

/// Accepts [`UdsChannel`]s on a socket path (`unix:/path`) or a Linux abstract name
/// (`unix:@name`).
///
/// A path listener creates its socket file with mode 0600 (and missing parent
/// directories with mode 0700; an existing directory is used as it is, unless it is
/// group- or world-writable without the sticky bit: then `bind` fails with
/// `PermissionDenied`) without a window in which another user could connect,
/// replaces a stale socket file only when nothing answers on it, never replaces a file
/// that is not a socket, and removes its socket file when dropped (only if the file at
/// the path is still the one it created).
///
/// By default only peers with our effective uid are accepted (checked with
/// `SO_PEERCRED`; more with [`Options::allow_uid`] and [`Options::allow_any_uid`]); a
/// refused peer is an [`Error::Auth`] from that `accept`, and the next `accept` serves
/// the next client.
///
/// ```no_run
/// # async fn demo() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// let endpoint = "unix:/tmp/my-app/app.sock".parse()?;
/// let options = ipc_core::Options::default().allow_uid(33); // www-data may connect too
/// let mut listener = ipc_uds::UdsListener::bind(&endpoint, &options)?;
/// loop {
///     let mut channel = match listener.accept().await {
///         Ok(channel) => channel,
///         Err(e) => { eprintln!("refused a client: {e}"); continue; }
///     };
///     tokio::spawn(async move {
///         while let Ok(Some(frame)) = channel.recv().await {
///             if channel.send(frame).await.is_err() { break; }
///         }
///     });
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct UdsListener {
    listener: UnixListener,
    endpoint: Endpoint,
    options: Options,
    /// Shared by the accepted channels for their partly received frames.
    budget: FrameBudget,
    own_uid: u32,
    /// Removes the socket file on drop (path listeners only).
    _file: Option<SocketFile>,
}

impl UdsListener {
    /// Listen on `endpoint` with `options` (frame limits, the listener budget, the
    /// peer uids accepted besides our own).
    ///
    /// For a path that already exists: a socket nobody answers on is replaced; a socket
    /// a live server answers on gives an [`Error::Io`] of kind `AddrInUse` naming that
    /// server's pid; anything else is left alone and refused. A socket's existing
    /// directory that others could write to (group- or world-writable, no sticky bit)
    /// is refused with an [`Error::Io`] of kind `PermissionDenied`.
    ///
    /// # Panics
    /// Outside a Tokio runtime (like `tokio::net::UnixListener::bind`).
    pub fn bind(endpoint: &Endpoint, options: &Options) -> Result<UdsListener, ListenError> {
        let (listener, file) = match endpoint {
            Endpoint::UnixPath(path) => {
                let (listener, file) = bind_path(path)?;
                (listener, Some(file))
            }
            Endpoint::UnixAbstract(name) => {
                let addr = abstract_addr(name)?;
                let listener = StdUnixListener::bind_addr(&addr).map_err(|e| {
                    let hint = if e.kind() == io::ErrorKind::AddrInUse {
                        "another socket already holds this abstract name; choose another name"
                    } else {
                        "could not bind"
                    };
                    Error::Io(io::Error::new(
                        e.kind(),
                        format!("listen on unix:@{name}: {hint} ({e})"),
                    ))
                })?;
                (listener, None)
            }
            Endpoint::UdsFd(fd) => {
                return Err(Error::BadEndpoint {
                    input: endpoint.to_string(),
                    reason: format!(
                        "fd {fd} names an already connected socket, not a listening one: \
                         listen on unix:/PATH or unix:@NAME"
                    ),
                }
                .into())
            }
            other => {
                return Err(Error::BadEndpoint {
                    input: other.to_string(),
                    reason: "the uds transport listens on unix:/PATH and unix:@NAME".into(),
                }
                .into())
            }
        };
        listener.set_nonblocking(true)?;
        Ok(UdsListener {
            listener: UnixListener::from_std(listener)?,
            endpoint: endpoint.clone(),
            budget: FrameBudget::for_listener(&options.frame_config()),
            options: options.clone(),
            own_uid: nix::unistd::geteuid().as_raw(),
            _file: file,
        })
    }

    /// The next client whose uid is allowed. An error concerns one client (or a
    /// transient OS condition such as running out of fds): call `accept` again.
    pub async fn accept(&mut self) -> Result<UdsChannel> {
        let (stream, _addr) = self.listener.accept().await?;
        let cred = peer_cred(&stream)?;
        if !self.options.allows_uid(cred.uid, self.own_uid) {
            let pid = cred.pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
            return Err(Error::Auth(format!(
                "refused a connection on {} from uid {}{pid}: this listener accepts only \
                 its own uid {}; allow it with Options::default().allow_uid({}) (or \
                 .allow_any_uid()) in the listener's options",
                self.endpoint, cred.uid, self.own_uid, cred.uid
            )));
        }
        let info = ChannelInfo::new(NAME)
            .with_peer_pid(cred.pid)
            .with_peer_uid(Some(cred.uid));
        let codec = LengthCodec::new(self.options.frame_config()).with_budget(self.budget.clone());
        crate::channel::with_codec(stream, codec, info)
    }

    /// The budget the accepted channels share for partly received frames (its size is
    /// [`Options::listener_budget`] of the listener's options).
    ///
    /// ```no_run
    /// # fn demo() -> ipc_core::Result<()> {
    /// let endpoint = "unix:/tmp/my-app/app.sock".parse()?;
    /// let options = ipc_core::Options::default().listener_budget(64 << 20);
    /// let listener = ipc_uds::UdsListener::bind(&endpoint, &options)?;
    /// assert_eq!(listener.frame_budget().limit(), 64 << 20);
    /// # Ok(()) }
    /// ```
    pub fn frame_budget(&self) -> &FrameBudget {
        &self.budget
    }
}

#[async_trait]
impl Listener for UdsListener {
    async fn accept(&mut self) -> Result<Box<dyn Channel>> {
        Ok(Box::new(UdsListener::accept(self).await?))
    }

    fn endpoint(&self) -> Endpoint {
        self.endpoint.clone()
    }
}
