//! Child side: [`connect`] to the channel a Node.js parent gave us (`NODE_CHANNEL_FD`).

use std::collections::BTreeSet;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::Mutex;

use ipc_core::env::NODE_CHANNEL_FD;
use ipc_core::frame::FrameConfig;
use ipc_core::{Endpoint, Error, Result};
use tokio::net::UnixStream;

use crate::channel::{NodeChannel, NAME};

/// Set by Node next to `NODE_CHANNEL_FD`: `json` (the default) or `advanced`.
pub const NODE_CHANNEL_SERIALIZATION_MODE: &str = "NODE_CHANNEL_SERIALIZATION_MODE";

/// Inherited fd numbers this process has already taken ownership of.
static TAKEN_FDS: Mutex<BTreeSet<RawFd>> = Mutex::new(BTreeSet::new());

/// What to tell someone whose process was not forked by Node.
const HINT: &str = "was this process started by Node's child_process.fork() (or spawn() \
                    with an 'ipc' stdio entry), or by ipc_node::spawn?";

/// In a process forked by Node: open the channel named by `NODE_CHANNEL_FD`.
///
/// Same as [`connect`] on `node:fd=$NODE_CHANNEL_FD`; `IPC_ENDPOINT` is not looked at
/// (the `ipc` facade's `connect_from_env()` looks at both).
///
/// ```no_run
/// # async fn demo() -> ipc_core::Result<()> {
/// let mut parent = ipc_node::connect_from_env(Default::default()).await?;
/// ipc_node::send_ready(&mut parent).await?; // process.send('ready')
/// # Ok(()) }
/// ```
pub async fn connect_from_env(config: FrameConfig) -> Result<NodeChannel> {
    let fd = std::env::var(NODE_CHANNEL_FD)
        .map_err(|_| Error::NotAChild(format!("{NODE_CHANNEL_FD} is not set: {HINT}")))?;
    let endpoint: Endpoint = format!("node:fd={fd}").parse()?;
    connect(&endpoint, config).await
}

/// Open `node:fd=N`: the channel socket a Node.js parent passed us.
///
/// - The fd is taken at most once per process (a second `connect` is an error, never
///   a second owner), checked to be a Unix stream socket, and made close-on-exec, so
///   processes we start do not inherit it.
/// - `NODE_CHANNEL_SERIALIZATION_MODE` must be `json` or unset. `advanced` (V8
///   serialization, `fork(.., { serialization: 'advanced' })`) is refused with
///   [`Error::Unsupported`] before the fd is taken: fork the binary with the default
///   `serialization: 'json'`.
///
/// Node deletes `NODE_CHANNEL_FD` from its own environment at startup so its children
/// do not believe they have a channel. This function does not (changing the
/// environment of a running multi-threaded process is unsound): start children with
/// [`scrub_env`](crate::scrub_env), or the `ipc` spawn helpers which already do.
///
/// ```no_run
/// # async fn demo() -> ipc_core::Result<()> {
/// use ipc_core::Channel;
/// let mut parent = ipc_node::connect(&"node:fd=3".parse()?, Default::default()).await?;
/// while let Some(msg) = parent.recv().await? {
///     parent.send(msg).await?; // echo: Node's 'message' event gets the same value
/// }
/// # Ok(()) }
/// ```
pub async fn connect(endpoint: &Endpoint, config: FrameConfig) -> Result<NodeChannel> {
    let Endpoint::Node(fd) = endpoint else {
        return Err(Error::BadEndpoint {
            input: endpoint.to_string(),
            reason: "the node transport connects only to node:fd=N (Node's fork channel)".into(),
        });
    };
    check_serialization_mode()?;
    let stream = UnixStream::from_std(take_inherited(*fd)?)?;
    Ok(NodeChannel::new(stream, config))
}

/// Refuse any serialization mode but `json`.
fn check_serialization_mode() -> Result<()> {
    match std::env::var(NODE_CHANNEL_SERIALIZATION_MODE) {
        Err(std::env::VarError::NotPresent) => Ok(()),
        Ok(mode) if mode == "json" || mode.is_empty() => Ok(()),
        Ok(mode) if mode == "advanced" => Err(Error::unsupported(
            NAME,
            format!(
                "{NODE_CHANNEL_SERIALIZATION_MODE}=advanced (V8 structured-clone \
                 serialization); fork this binary with serialization: 'json' (Node's default)"
            ),
        )),
        other => Err(Error::unsupported(
            NAME,
            format!(
                "{NODE_CHANNEL_SERIALIZATION_MODE}={:?}; only 'json' is supported",
                other.unwrap_or_default()
            ),
        )),
    }
}

/// `fstat` an fd we do not own yet.
fn fd_mode(fd: RawFd) -> io::Result<libc::mode_t> {
    let mut stat = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat only writes the stat buffer; an fd that is not open gives EBADF.
    if unsafe { libc::fstat(fd, stat.as_mut_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstat succeeded, so it filled the buffer.
    Ok(unsafe { stat.assume_init() }.st_mode)
}

/// The `SO_TYPE` of a socket we do not own yet.
fn socket_type(fd: RawFd) -> Option<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `value`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(value)
}

/// Take ownership of the inherited socket at `fd` (at most once per process), check
/// it is a stream socket, and make it close-on-exec and non-blocking.
fn take_inherited(fd: RawFd) -> Result<StdUnixStream> {
    let mut taken = TAKEN_FDS.lock().unwrap_or_else(|e| e.into_inner());
    if taken.contains(&fd) {
        return Err(Error::Io(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "node:fd={fd} was already taken by an earlier connect in this process; \
                 Node's channel can be opened only once (keep the first channel)"
            ),
        )));
    }
    let mode = fd_mode(fd).map_err(|e| {
        Error::NotAChild(format!("node:fd={fd}: fd {fd} is not open ({e}): {HINT}"))
    })?;
    if mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(Error::NotAChild(format!(
            "node:fd={fd}: fd {fd} is not a socket (Node's channel is a Unix socket): {HINT}"
        )));
    }
    if socket_type(fd).is_some_and(|t| t != libc::SOCK_STREAM) {
        return Err(Error::NotAChild(format!(
            "node:fd={fd}: fd {fd} is not a stream socket: {HINT}"
        )));
    }
    // SAFETY: the fd is open and this process has not taken it before (checked under
    // the lock); the parent handed it to us to own, as NODE_CHANNEL_FD says.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    taken.insert(fd);
    drop(taken);
    // From here on errors close the fd: it is ours either way.
    nix::fcntl::fcntl(
        &owned,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )?;
    let stream = StdUnixStream::from(owned);
    stream.set_nonblocking(true)?;
    Ok(stream)
}
