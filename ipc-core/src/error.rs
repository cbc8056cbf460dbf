//! The one error type of the toolkit.
//!
//! Every fallible operation returns [`Result<T>`]. Variants are chosen so a caller can
//! `match` on what went wrong at that call, and their messages say what to do next.
//! Errors about one bad frame ([`Error::FrameTooLarge`], [`Error::Decode`],
//! [`Error::Refused`]) leave the channel usable: the next `recv` returns the next frame,
//! the next `send` may send another one.
//!
//! Receiving has its own [`RecvError`] (the error items of every channel's `Stream`):
//! its [`Rejected`](RecvError::Rejected) arm is the one bad frame that was skipped,
//! every other arm ends the stream. Sending has [`SendError`] (the error of every
//! channel's `Sink`), with the same shape. Both convert into [`Error`], so `?` keeps
//! working.

use std::io;
use std::process::ExitStatus;
use std::time::Duration;

/// `Result` with the toolkit's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong in an IPC operation.
///
/// ```
/// use ipc_core::Error;
/// let e = Error::FrameTooLarge { len: 9_000_000, max: 8 << 20 };
/// assert!(e.to_string().contains("9000000"));
/// assert!(!e.is_fatal(), "one oversize frame does not kill the channel");
/// ```
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),

    /// The channel was closed (by this side, or the peer hung up), so it cannot be used.
    #[error("channel closed: it was closed locally or the peer hung up; open a new channel")]
    Closed,

    /// The peer's end went away without closing the channel: it crashed, was killed, or
    /// dropped the channel in the middle of a frame. Frames sent before are all delivered.
    #[error(
        "peer lost: {0} (the peer crashed, was killed, or exited without closing the channel)"
    )]
    PeerLost(String),

    /// A frame was larger than the limit. On receive the frame's bytes were skipped
    /// without being buffered; on send nothing was written. The channel stays usable.
    #[error(
        "frame of {} ({len} bytes) exceeds the limit of {} ({max} bytes); send smaller \
         messages or raise the limit with Options::max_frame(..) on both ends",
        crate::human::bytes(*len),
        crate::human::bytes(*max as u64)
    )]
    FrameTooLarge {
        /// Length announced (receive) or requested (send).
        len: u64,
        /// The configured limit.
        max: usize,
    },

    /// A frame arrived but its content could not be decoded (bad JSON, bad postcard,
    /// a line that is not JSON). The channel stays usable.
    #[error("could not decode {context}: {reason}")]
    Decode {
        /// What was being decoded (a type name, the first bytes of a line, ...).
        context: String,
        /// Why decoding failed.
        reason: String,
    },

    /// This side refused to send a frame because the transport cannot carry it as it is
    /// (a line frame containing `\n`, a Node frame that is not one JSON text, a value
    /// that does not serialize). Nothing was written; the channel stays usable.
    ///
    /// ```
    /// let e = ipc_core::Error::refused("the outgoing line", "it contains '\\n'");
    /// assert!(e.to_string().contains("nothing was sent"));
    /// assert!(!e.is_fatal());
    /// ```
    #[error("refused to send {what}: {reason} (nothing was sent; the channel stays usable)")]
    Refused {
        /// What was refused (the frame's start, a type name, ...).
        what: String,
        /// Why it cannot be sent, and what to send instead.
        reason: String,
    },

    /// The connection did not start with a valid handshake (wrong magic or version, or
    /// the peer is not speaking this protocol).
    #[error("handshake failed: {0}")]
    Handshake(String),

    /// The peer is not allowed: wrong token, or another user id.
    #[error("authentication failed: {0}")]
    Auth(String),

    /// An operation took longer than its deadline.
    #[error("timed out after {} while {during}", crate::human::duration(*after))]
    Timeout {
        /// The deadline that passed.
        after: Duration,
        /// What was being waited for.
        during: &'static str,
    },

    /// The transport cannot do this at all (e.g. fd passing over TCP).
    #[error("the {transport} transport does not support {what}")]
    Unsupported {
        /// Transport name.
        transport: &'static str,
        /// The operation that is not supported.
        what: String,
    },

    /// An endpoint string could not be parsed, or names a transport that is not built in.
    /// The reason says which forms are accepted.
    #[error("bad endpoint {input:?}: {reason}")]
    BadEndpoint {
        /// The string given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },

    /// No registered transport has this name or scheme.
    #[error(
        "unknown transport {name:?}; available: {}{}",
        available.join(", "),
        hint.as_ref().map(|h| format!("; {h}")).unwrap_or_default()
    )]
    UnknownTransport {
        /// The name asked for.
        name: String,
        /// Names that are registered.
        available: Vec<String>,
        /// How to get the transport, when it exists but is not built in (see
        /// [`Registry::note_not_built`](crate::Registry::note_not_built)).
        hint: Option<String>,
    },

    /// The child process exited while the operation needed it.
    #[error("child process exited ({0}) before the operation completed")]
    ChildExited(ExitStatus),

    /// The peer handled a request and reported this failure (see [`crate::rpc`]).
    #[error("the peer reported an error: {0}")]
    Remote(String),

    /// The process environment does not describe a channel (no `IPC_ENDPOINT`).
    #[error("{0}")]
    NotAChild(String),

    /// A channel accepted by a listener began to receive a frame that does not fit in
    /// the listener's budget for partly received frames (see
    /// [`FrameBudget`](crate::frame::FrameBudget)). Nothing of it was buffered; the
    /// channel is finished (drop it); the listener's other channels are unaffected.
    #[error(
        "a frame of {} began to arrive, but the listener's budget for partly received \
         frames is {} and {} of it is held by frames other clients are still sending; \
         this connection was dropped. Raise the budget with \
         Options::listener_budget(..) in the listener's Options, or send smaller frames",
        crate::human::bytes(*len),
        crate::human::bytes(*limit as u64),
        crate::human::bytes(*in_use as u64)
    )]
    BudgetExceeded {
        /// Length of the frame that did not fit.
        len: u64,
        /// The listener's budget.
        limit: usize,
        /// Bytes held by other channels when it did not fit.
        in_use: usize,
    },
}

/// Reads like the message, with every cause the message does not already include:
/// this is what `fn main() -> ipc::Result<()>` prints when it fails, so a person sees
/// `I/O error: connect to /tmp/x.sock: no socket file there: is the server running?`
/// rather than the enum's structure. Match on the variants to tell errors apart.
///
/// ```
/// let e = ipc_core::Error::from(std::io::Error::other("disk on fire"));
/// assert_eq!(format!("{e:?}"), "I/O error: disk on fire");
/// ```
impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write_with_causes(self, f)
    }
}

/// The message of `error`, then each cause the text does not already include: the
/// `Debug` of [`Error`], [`RecvError`] and [`SendError`].
fn write_with_causes(
    error: &dyn std::error::Error,
    f: &mut std::fmt::Formatter<'_>,
) -> std::fmt::Result {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    f.write_str(&text)
}

impl Error {
    /// True when the channel can no longer be used after this error.
    ///
    /// On a channel, match the `Rejected` arm of [`RecvError`] / [`SendError`] instead:
    /// it says the same for receiving and sending.
    ///
    /// Oversize frames, decode errors, refused frames and timeouts are per-message: the channel lives on.
    pub fn is_fatal(&self) -> bool {
        !matches!(
            self,
            Error::FrameTooLarge { .. }
                | Error::Decode { .. }
                | Error::Refused { .. }
                | Error::Timeout { .. }
                | Error::Remote(_)
        )
    }

    /// Shorthand for an [`Error::Decode`].
    pub fn decode(context: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Error::Decode {
            context: context.into(),
            reason: reason.to_string(),
        }
    }

    /// Shorthand for an [`Error::Refused`]: a frame this side will not send.
    pub fn refused(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Error::Refused {
            what: what.into(),
            reason: reason.to_string(),
        }
    }

    /// Shorthand for an [`Error::Unsupported`].
    pub fn unsupported(transport: &'static str, what: impl Into<String>) -> Self {
        Error::Unsupported {
            transport,
            what: what.into(),
        }
    }

    /// The error a sender gives for every later send once a send failed with this one
    /// (a sender that failed may have cut a frame in half, so it sends no more): the
    /// same `Closed` or `PeerLost`, otherwise an I/O error that names this one.
    /// Transports that frame by themselves use it to fail the way the toolkit's stream
    /// sender does.
    ///
    /// ```
    /// use ipc_core::Error;
    /// assert!(matches!(Error::Closed.for_later_sends(), Error::Closed));
    /// let later = Error::Io(std::io::Error::other("broken pipe")).for_later_sends();
    /// assert!(later.to_string().contains("broken pipe"), "{later}");
    /// ```
    pub fn for_later_sends(&self) -> Error {
        match self {
            Error::Closed => Error::Closed,
            Error::PeerLost(why) => Error::PeerLost(why.clone()),
            other => Error::Io(io::Error::other(format!(
                "an earlier send failed ({other}), possibly in the middle of a frame, so \
                 this channel can send no more; open a new channel"
            ))),
        }
    }
}

/// Why receiving failed: the error items of every channel's and receiving half's
/// `Stream` (and of [`recv`](crate::ChannelExt::recv)).
///
/// [`Rejected`](RecvError::Rejected) concerns one frame (too large, or not decodable):
/// the next `recv` returns the next frame. Every other arm means the channel is finished
/// and the stream ends after this item. It converts into [`Error`] with `?`, and the
/// message is the same as the [`Error`]'s.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// use ipc_core::{frame::{FrameConfig, LengthCodec}, stream, ChannelInfo, Error, RecvError};
/// let (a, b) = tokio::io::duplex(1024);
/// let (ar, aw) = tokio::io::split(a);
/// let (br, bw) = tokio::io::split(b);
/// let mut big = stream::channel(ar, aw, LengthCodec::new(FrameConfig::default()), ChannelInfo::new("mem"));
/// let small = LengthCodec::new(FrameConfig::builder().max_frame(4).build());
/// let mut small = stream::channel(br, bw, small, ChannelInfo::new("mem"));
/// big.send("too long".into()).await?;
/// big.send("ok".into()).await?;
/// match small.recv().await {
///     Err(RecvError::Rejected(Error::FrameTooLarge { len: 8, max: 4 })) => {} // skipped
///     other => panic!("{other:?}"),
/// }
/// assert_eq!(small.recv().await?.unwrap(), "ok"); // the channel lives on
/// drop(big);
/// assert!(matches!(small.recv().await, Err(RecvError::PeerLost(_))));
/// # Ok(()) }
/// ```
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// One frame was refused and skipped: [`Error::FrameTooLarge`] (nothing of it was
    /// buffered) or [`Error::Decode`]. The channel stays usable.
    #[error(transparent)]
    Rejected(Error),

    /// The peer went away without closing the channel (see [`Error::PeerLost`]).
    #[error(
        "peer lost: {0} (the peer crashed, was killed, or exited without closing the channel)"
    )]
    PeerLost(String),

    /// This side closed the channel (see [`Error::Closed`]).
    #[error("channel closed: it was closed locally or the peer hung up; open a new channel")]
    Closed,

    /// A listener's budget for partly received frames was exhausted (see
    /// [`Error::BudgetExceeded`]); the channel is finished.
    #[error(transparent)]
    BudgetExceeded(Error),

    /// An operating-system call failed.
    #[error("I/O error: {0}")]
    Io(#[source] io::Error),

    /// Any other failure that ends the channel (a handshake, a timeout of a
    /// transport-level exchange, ...).
    #[error(transparent)]
    Other(Error),
}

impl RecvError {
    /// True for [`Rejected`](RecvError::Rejected): one frame was skipped and the channel
    /// stays usable; false when the channel is finished.
    ///
    /// ```
    /// use ipc_core::{Error, RecvError};
    /// assert!(RecvError::from(Error::decode("a frame", "bad")).is_rejected());
    /// assert!(!RecvError::PeerLost("reset".into()).is_rejected());
    /// ```
    pub fn is_rejected(&self) -> bool {
        matches!(self, RecvError::Rejected(_))
    }
}

/// Reads like the message, as [`Error`]'s `Debug` does.
///
/// ```
/// let e = ipc_core::RecvError::PeerLost("connection reset".into());
/// assert!(format!("{e:?}").starts_with("peer lost: connection reset"));
/// ```
impl std::fmt::Debug for RecvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write_with_causes(self, f)
    }
}

/// Sorts a receive-side [`Error`] into its [`RecvError`] arm.
impl From<Error> for RecvError {
    fn from(e: Error) -> Self {
        match e {
            Error::FrameTooLarge { .. } | Error::Decode { .. } => RecvError::Rejected(e),
            Error::PeerLost(why) => RecvError::PeerLost(why),
            Error::Closed => RecvError::Closed,
            Error::BudgetExceeded { .. } => RecvError::BudgetExceeded(e),
            Error::Io(e) => RecvError::Io(e),
            other => RecvError::Other(other),
        }
    }
}

impl From<io::Error> for RecvError {
    fn from(e: io::Error) -> Self {
        RecvError::Io(e)
    }
}

/// So `?` on a receive works in a function returning [`Result`].
impl From<RecvError> for Error {
    fn from(e: RecvError) -> Self {
        match e {
            RecvError::Rejected(e) | RecvError::BudgetExceeded(e) | RecvError::Other(e) => e,
            RecvError::PeerLost(why) => Error::PeerLost(why),
            RecvError::Closed => Error::Closed,
            RecvError::Io(e) => Error::Io(e),
        }
    }
}

/// Why sending failed: the error of every channel's and sending half's `Sink` (`send`,
/// `feed`, `flush`, `close`).
///
/// [`Rejected`](SendError::Rejected) concerns one frame: it was not sent (nothing was
/// written) and the next `send` may go through. Every other arm means this side can
/// send no more. It converts into [`Error`] with `?`, and the message is the same as
/// the [`Error`]'s.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// use ipc_core::{frame::{FrameConfig, LengthCodec}, stream, ChannelInfo, Error, SendError};
/// let (a, _b) = tokio::io::duplex(1024);
/// let (ar, aw) = tokio::io::split(a);
/// let codec = LengthCodec::new(FrameConfig::builder().max_frame(4).build());
/// let mut ch = stream::channel(ar, aw, codec, ChannelInfo::new("mem"));
/// match ch.send("too long".into()).await {
///     Err(SendError::Rejected(Error::FrameTooLarge { len: 8, max: 4 })) => {} // not sent
///     other => panic!("{other:?}"),
/// }
/// ch.send("ok".into()).await?; // the channel lives on
/// ch.close().await?;
/// assert!(matches!(ch.send("late".into()).await, Err(SendError::Closed)));
/// # Ok(()) }
/// ```
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// This frame was not sent and nothing was written: [`Error::FrameTooLarge`], or
    /// [`Error::Refused`] (the transport cannot carry it as it is). The channel stays
    /// usable.
    #[error(transparent)]
    Rejected(Error),

    /// The peer went away without closing the channel (see [`Error::PeerLost`]).
    #[error(
        "peer lost: {0} (the peer crashed, was killed, or exited without closing the channel)"
    )]
    PeerLost(String),

    /// This side closed the channel, or the peer closed it cleanly (see
    /// [`Error::Closed`]).
    #[error("channel closed: it was closed locally or the peer hung up; open a new channel")]
    Closed,

    /// An operating-system call failed.
    #[error("I/O error: {0}")]
    Io(#[source] io::Error),

    /// Any other failure that ends sending (a timeout of a transport-level exchange,
    /// ...).
    #[error(transparent)]
    Other(Error),
}

impl SendError {
    /// True for [`Rejected`](SendError::Rejected): this frame was not sent and the
    /// channel stays usable; false when this side can send no more.
    ///
    /// ```
    /// use ipc_core::{Error, SendError};
    /// assert!(SendError::from(Error::FrameTooLarge { len: 9, max: 8 }).is_rejected());
    /// assert!(!SendError::Closed.is_rejected());
    /// ```
    pub fn is_rejected(&self) -> bool {
        matches!(self, SendError::Rejected(_))
    }
}

/// Reads like the message, as [`Error`]'s `Debug` does.
///
/// ```
/// assert!(format!("{:?}", ipc_core::SendError::Closed).starts_with("channel closed"));
/// ```
impl std::fmt::Debug for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write_with_causes(self, f)
    }
}

/// Sorts a send-side [`Error`] into its [`SendError`] arm.
impl From<Error> for SendError {
    fn from(e: Error) -> Self {
        match e {
            Error::FrameTooLarge { .. } | Error::Refused { .. } | Error::Decode { .. } => {
                SendError::Rejected(e)
            }
            Error::PeerLost(why) => SendError::PeerLost(why),
            Error::Closed => SendError::Closed,
            Error::Io(e) => SendError::Io(e),
            other => SendError::Other(other),
        }
    }
}

impl From<io::Error> for SendError {
    fn from(e: io::Error) -> Self {
        SendError::Io(e)
    }
}

/// So `?` on a send works in a function returning [`Result`].
impl From<SendError> for Error {
    fn from(e: SendError) -> Self {
        match e {
            SendError::Rejected(e) | SendError::Other(e) => e,
            SendError::PeerLost(why) => Error::PeerLost(why),
            SendError::Closed => Error::Closed,
            SendError::Io(e) => Error::Io(e),
        }
    }
}

/// Why connecting failed: the error of every transport's and backend's `connect`.
///
/// Each arm is something a caller can act on: fix the endpoint, start the server, check
/// the token, wait longer. It converts into [`Error`] with `?`, with the same message.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use ipc_core::{ConnectError, Error};
/// let e = ConnectError::from(Error::Io(std::io::Error::new(
///     std::io::ErrorKind::NotFound,
///     "connect to /tmp/app.sock: no socket file there: is the server running?",
/// )));
/// assert!(matches!(e, ConnectError::NotListening(_)));
/// assert!(e.to_string().contains("is the server running?"));
/// let e: Error = e.into(); // `?` works in a function returning ipc_core::Result
/// # let _ = e; }
/// ```
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The endpoint is malformed, or not one this transport serves (see
    /// [`Error::BadEndpoint`]).
    #[error("bad endpoint {input:?}: {reason}")]
    BadEndpoint {
        /// The endpoint given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },

    /// Nothing is listening there: no socket file, no FIFO directory, or the connection
    /// was refused. The message names the endpoint; start the server first.
    #[error("{0}")]
    NotListening(#[source] io::Error),

    /// The peer does not speak this protocol or version (see [`Error::Handshake`]).
    #[error("handshake failed: {0}")]
    Handshake(String),

    /// The peer refused us: wrong token, or another user id (see [`Error::Auth`]).
    #[error("authentication failed: {0}")]
    Auth(String),

    /// The peer did not answer in time (see [`Options::handshake_timeout`](crate::Options::handshake_timeout)).
    #[error("timed out after {} while {during}", crate::human::duration(*after))]
    Timeout {
        /// The deadline that passed.
        after: Duration,
        /// What was being waited for.
        during: &'static str,
    },

    /// The transport cannot connect like this (see [`Error::Unsupported`]).
    #[error("the {transport} transport does not support {what}")]
    Unsupported {
        /// Transport name.
        transport: &'static str,
        /// What is not supported.
        what: String,
    },

    /// An operating-system call failed.
    #[error("I/O error: {0}")]
    Io(#[source] io::Error),

    /// This process was not spawned as a child: the environment names no channel
    /// (see [`Error::NotAChild`]).
    #[error("{0}")]
    NotAChild(String),

    /// Any other failure.
    #[error(transparent)]
    Other(Error),
}

/// Why listening failed: the error of every transport's and backend's `listen`/`bind`.
///
/// ```
/// use ipc_core::{Error, ListenError};
/// let e = ListenError::from(Error::Io(std::io::Error::new(
///     std::io::ErrorKind::AddrInUse,
///     "listen on /tmp/app.sock: a server (pid 42) is already listening there",
/// )));
/// assert!(matches!(e, ListenError::InUse(_)));
/// ```
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum ListenError {
    /// The endpoint is malformed, or not one this transport listens on (see
    /// [`Error::BadEndpoint`]).
    #[error("bad endpoint {input:?}: {reason}")]
    BadEndpoint {
        /// The endpoint given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A live server already holds the address (socket path, abstract name, port). The
    /// message says which; stop it or choose another address.
    #[error("{0}")]
    InUse(#[source] io::Error),

    /// The transport cannot listen (anonymous pipes, stdio, signal, node: see
    /// [`Capabilities::listen`](crate::Capabilities::listen)).
    #[error("the {transport} transport does not support {what}")]
    Unsupported {
        /// Transport name.
        transport: &'static str,
        /// What is not supported.
        what: String,
    },

    /// An operating-system call failed (a directory others can write, no permission).
    #[error("I/O error: {0}")]
    Io(#[source] io::Error),

    /// Any other failure.
    #[error(transparent)]
    Other(Error),
}

/// Why spawning a child wired to a channel failed: the error of every transport's and
/// backend's `spawn`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use ipc_core::SpawnError;
/// let cmd = std::process::Command::new("./no-such-program");
/// match ipc_core::spawn::spawn_child(cmd) {
///     Err(SpawnError::Start { program, .. }) => assert_eq!(program, "./no-such-program"),
///     other => panic!("{:?}", other.map(|_| ())),
/// }
/// # }
/// ```
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The program could not be started (not found, not executable). The message names
    /// it and what to check.
    #[error("could not start {program}: {source}{}", start_hint(program, source))]
    Start {
        /// The program, as given to the `Command`.
        program: String,
        /// Why `exec` failed.
        source: io::Error,
    },

    /// The child exited before it connected (see [`Error::ChildExited`]).
    #[error("child process exited ({0}) before the operation completed")]
    ChildExited(ExitStatus),

    /// The child connected but its handshake failed (see [`Error::Handshake`]).
    #[error("handshake failed: {0}")]
    Handshake(String),

    /// The child did not connect in time (see
    /// [`Options::handshake_timeout`](crate::Options::handshake_timeout)); it was killed.
    #[error("timed out after {} while {during}", crate::human::duration(*after))]
    Timeout {
        /// The deadline that passed.
        after: Duration,
        /// What was being waited for.
        during: &'static str,
    },

    /// The transport cannot spawn here (see [`Error::Unsupported`]).
    #[error("the {transport} transport does not support {what}")]
    Unsupported {
        /// Transport name.
        transport: &'static str,
        /// What is not supported.
        what: String,
    },

    /// An operating-system call failed (making the socketpair, pipes, ...).
    #[error("I/O error: {0}")]
    Io(#[source] io::Error),

    /// Any other failure.
    #[error(transparent)]
    Other(Error),
}

/// What to check when a program cannot be started.
fn start_hint(program: &str, e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::NotFound if program.contains('/') => {
            " (check the path; a relative one starts from the current directory)"
        }
        io::ErrorKind::NotFound => " (a name without '/' is looked up in PATH)",
        io::ErrorKind::PermissionDenied => " (is the file executable?)",
        _ => "",
    }
}

macro_rules! operation_error_impls {
    ($name:ident) => {
        /// Reads like the message, as [`Error`]'s `Debug` does.
        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write_with_causes(self, f)
            }
        }

        impl From<io::Error> for $name {
            fn from(e: io::Error) -> Self {
                $name::from(Error::Io(e))
            }
        }
    };
}
operation_error_impls!(ConnectError);
operation_error_impls!(ListenError);
operation_error_impls!(SpawnError);

/// Sorts an [`Error`] met while connecting into its [`ConnectError`] arm: an I/O error
/// of kind `NotFound` or `ConnectionRefused` is [`NotListening`](ConnectError::NotListening).
impl From<Error> for ConnectError {
    fn from(e: Error) -> Self {
        match e {
            Error::BadEndpoint { input, reason } => ConnectError::BadEndpoint { input, reason },
            Error::Io(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                ) =>
            {
                ConnectError::NotListening(e)
            }
            Error::Io(e) => ConnectError::Io(e),
            Error::Handshake(why) => ConnectError::Handshake(why),
            Error::Auth(why) => ConnectError::Auth(why),
            Error::Timeout { after, during } => ConnectError::Timeout { after, during },
            Error::Unsupported { transport, what } => ConnectError::Unsupported { transport, what },
            Error::NotAChild(why) => ConnectError::NotAChild(why),
            other => ConnectError::Other(other),
        }
    }
}

/// So `?` on a connect works in a function returning [`Result`].
impl From<ConnectError> for Error {
    fn from(e: ConnectError) -> Self {
        match e {
            ConnectError::BadEndpoint { input, reason } => Error::BadEndpoint { input, reason },
            ConnectError::NotListening(e) | ConnectError::Io(e) => Error::Io(e),
            ConnectError::Handshake(why) => Error::Handshake(why),
            ConnectError::Auth(why) => Error::Auth(why),
            ConnectError::Timeout { after, during } => Error::Timeout { after, during },
            ConnectError::Unsupported { transport, what } => Error::Unsupported { transport, what },
            ConnectError::NotAChild(why) => Error::NotAChild(why),
            ConnectError::Other(e) => e,
        }
    }
}

/// Sorts an [`Error`] met while listening into its [`ListenError`] arm: an I/O error of
/// kind `AddrInUse` is [`InUse`](ListenError::InUse).
impl From<Error> for ListenError {
    fn from(e: Error) -> Self {
        match e {
            Error::BadEndpoint { input, reason } => ListenError::BadEndpoint { input, reason },
            Error::Io(e) if e.kind() == io::ErrorKind::AddrInUse => ListenError::InUse(e),
            Error::Io(e) => ListenError::Io(e),
            Error::Unsupported { transport, what } => ListenError::Unsupported { transport, what },
            other => ListenError::Other(other),
        }
    }
}

/// So `?` on a listen works in a function returning [`Result`].
impl From<ListenError> for Error {
    fn from(e: ListenError) -> Self {
        match e {
            ListenError::BadEndpoint { input, reason } => Error::BadEndpoint { input, reason },
            ListenError::InUse(e) | ListenError::Io(e) => Error::Io(e),
            ListenError::Unsupported { transport, what } => Error::Unsupported { transport, what },
            ListenError::Other(e) => e,
        }
    }
}

/// Sorts an [`Error`] met while spawning into its [`SpawnError`] arm.
impl From<Error> for SpawnError {
    fn from(e: Error) -> Self {
        match e {
            Error::ChildExited(status) => SpawnError::ChildExited(status),
            Error::Handshake(why) => SpawnError::Handshake(why),
            Error::Timeout { after, during } => SpawnError::Timeout { after, during },
            Error::Unsupported { transport, what } => SpawnError::Unsupported { transport, what },
            Error::Io(e) => SpawnError::Io(e),
            other => SpawnError::Other(other),
        }
    }
}

/// A listener a backend's `spawn` makes for its child failed: as a [`SpawnError`].
impl From<ListenError> for SpawnError {
    fn from(e: ListenError) -> Self {
        SpawnError::from(Error::from(e))
    }
}

/// So `?` on a spawn works in a function returning [`Result`]. A
/// [`Start`](SpawnError::Start) becomes an [`Error::Io`] with the same message.
impl From<SpawnError> for Error {
    fn from(e: SpawnError) -> Self {
        match e {
            SpawnError::Start { ref source, .. } => {
                Error::Io(io::Error::new(source.kind(), e.to_string()))
            }
            SpawnError::ChildExited(status) => Error::ChildExited(status),
            SpawnError::Handshake(why) => Error::Handshake(why),
            SpawnError::Timeout { after, during } => Error::Timeout { after, during },
            SpawnError::Unsupported { transport, what } => Error::Unsupported { transport, what },
            SpawnError::Io(e) => Error::Io(e),
            SpawnError::Other(e) => e,
        }
    }
}
