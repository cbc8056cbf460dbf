//! The transport conformance suite, as plain async functions (feature `testkit`).
//!
//! Every case runs a real parent (the test process) against a real child process
//! spawned through the transport under test, so the suite means the same thing for
//! sockets, pipes, stdio, signals and Node's channel. The child is the test binary
//! itself, re-executed: its `main` must call [`child_main`] first. A transport whose
//! frames must be JSON texts runs every case with payloads carried as JSON strings
//! ([`Subject::json_frames`], [`Frames`]).
//!
//! ```no_run
//! // tests/conformance.rs (harness = false)
//! # fn registry() -> ipc_core::Registry { ipc_core::Registry::new() }
//! fn main() {
//!     if let Some(code) = ipc_core::testkit::child_main(&registry()) {
//!         std::process::exit(code);
//!     }
//!     for transport in registry().names() {
//!         let subject = ipc_core::testkit::Subject::new(registry().get(transport).unwrap());
//!         for case in ipc_core::testkit::cases() {
//!             ipc_core::testkit::run_case(case, &subject).unwrap();
//!         }
//!     }
//! }
//! ```
//!
//! Cases wait on messages, never on `sleep`; each is bounded by [`CASE_TIMEOUT`] so a
//! hang is a failure, not a stuck CI.

mod alloc;
mod cases;
mod child;
mod frames;
mod reexec;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

pub use alloc::{AllocProbe, CountingAlloc};
pub use cases::{cases, Case};
pub use child::{child_main, Role};
pub use frames::Frames;
pub use reexec::{built_example, child_command, role, ChildRole, CHILD_TEST};

use crate::error::{Error, Result};
use crate::options::Options;
use crate::{Channel, Child, Transport};

/// Longest a single case may take before it counts as hung.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(90);

/// Env var naming the role a re-executed child plays: a [`Role`] of the conformance
/// cases (see [`child_main`]), or a [`ChildRole`] of any test binary (see [`role`]).
pub const ROLE_VAR: &str = "IPC_TESTKIT_ROLE";
/// Env var carrying a number argument for the child role.
pub const ARG_VAR: &str = "IPC_TESTKIT_ARG";
/// Env var carrying the subject's bulk frame size to the child.
pub const BULK_VAR: &str = "IPC_TESTKIT_BULK";
/// Env var carrying the subject's [`Frames`] mode to the child (`bytes` or `json`).
pub const FRAMES_VAR: &str = "IPC_TESTKIT_FRAMES";

/// A transport under test, and how to scale the cases for it.
#[derive(Clone)]
pub struct Subject {
    /// The transport.
    pub transport: Arc<dyn Transport>,
    /// The program that runs [`child_main`] (by default the current executable).
    pub child_program: PathBuf,
    /// Biggest frame a case sends (default 8 MiB, the default limit). A transport that
    /// moves a few bytes per syscall (signals) sets it lower; the cases state it.
    pub big_frame: usize,
    /// Largest frame in the bulk cases (10 000 messages, backpressure); default 16 KiB.
    pub bulk_frame: usize,
    /// The listener serves one client at a time (a FIFO pair): a second concurrent
    /// client must get a clear error, and be served once the first has left.
    pub one_client_at_a_time: bool,
    /// How payloads travel: as they are, or as JSON strings (a transport whose frames
    /// must be JSON texts, such as `node`); see [`Frames`].
    pub frames: Frames,
}

impl std::fmt::Debug for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subject")
            .field("transport", &self.transport.name())
            .field("child_program", &self.child_program)
            .field("big_frame", &self.big_frame)
            .field("bulk_frame", &self.bulk_frame)
            .field("one_client_at_a_time", &self.one_client_at_a_time)
            .field("frames", &self.frames)
            .finish()
    }
}

impl Subject {
    /// A subject with the default scale, whose child is the current executable; its
    /// payloads travel as JSON strings when the transport's frames must be JSON texts
    /// ([`Capabilities::binary_frames`](crate::transport::Capabilities) is false).
    pub fn new(transport: Arc<dyn Transport>) -> Self {
        let frames = if transport.capabilities().binary_frames {
            Frames::Bytes
        } else {
            Frames::JsonStrings
        };
        Subject {
            transport,
            child_program: reexec::this_executable(),
            big_frame: crate::frame::DEFAULT_MAX_FRAME,
            bulk_frame: 16 * 1024,
            one_client_at_a_time: false,
            frames,
        }
    }

    /// Carry every payload as a JSON string, both ways (see [`Frames::JsonStrings`]),
    /// whatever the transport's capabilities say ([`new`](Self::new) already does so
    /// for a transport whose frames must be JSON texts).
    ///
    /// ```no_run
    /// # let node: std::sync::Arc<dyn ipc_core::Transport> = unimplemented!();
    /// let subject = ipc_core::testkit::Subject::new(node).json_frames();
    /// # let _ = subject;
    /// ```
    pub fn json_frames(mut self) -> Self {
        self.frames = Frames::JsonStrings;
        self
    }

    /// Mark the listener as serving one client at a time (see the field).
    pub fn one_client_at_a_time(mut self) -> Self {
        self.one_client_at_a_time = true;
        self
    }

    /// Scale the frame sizes down (for slow transports); see the field docs.
    pub fn scaled(mut self, big_frame: usize, bulk_frame: usize) -> Self {
        self.big_frame = big_frame;
        self.bulk_frame = bulk_frame;
        self
    }

    /// The command that runs child `role` with argument `arg`.
    pub fn child_command(&self, role: Role, arg: u64) -> Command {
        let mut cmd = reexec::command_for(&self.child_program, role);
        cmd.env(ARG_VAR, arg.to_string())
            .env(BULK_VAR, self.bulk_frame.to_string())
            .env(FRAMES_VAR, self.frames.env_value());
        cmd
    }

    /// Spawn child `role` through the transport with the given frame limit; the channel
    /// carries payloads as [`frames`](Self::frames) says.
    pub async fn spawn(
        &self,
        role: Role,
        arg: u64,
        options: &Options,
    ) -> Result<(Child, Box<dyn Channel>)> {
        let (child, channel) = self
            .transport
            .spawn(self.child_command(role, arg), options)
            .await?;
        Ok((child, self.frames.wrap(channel)))
    }
}

/// Why a conformance case (or its child) failed: an IPC operation failed, or a check
/// of the case did not hold. A failed check is not an [`Error`]: nothing in the
/// toolkit went wrong, the transport behaved differently from what the case expects.
///
/// ```
/// use ipc_core::testkit::Failure;
/// let f = Failure::Check("expected FrameTooLarge, got Ok".into());
/// assert_eq!(f.to_string(), "check failed: expected FrameTooLarge, got Ok");
/// let f = Failure::from(ipc_core::Error::Closed);
/// assert!(matches!(f, Failure::Ipc(ipc_core::Error::Closed)));
/// ```
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    /// An IPC operation the case made failed.
    #[error(transparent)]
    Ipc(#[from] Error),
    /// A check of the case did not hold; the message says what was expected and seen.
    #[error("check failed: {0}")]
    Check(String),
}

/// Reads like the message, as [`Error`]'s `Debug` does, so `run_case(..).unwrap()`
/// shows what failed.
impl std::fmt::Debug for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Ipc(e) => std::fmt::Debug::fmt(e, f),
            Failure::Check(msg) => write!(f, "check failed: {msg}"),
        }
    }
}

impl From<crate::SendError> for Failure {
    fn from(e: crate::SendError) -> Self {
        Failure::Ipc(e.into())
    }
}

impl From<crate::RecvError> for Failure {
    fn from(e: crate::RecvError) -> Self {
        Failure::Ipc(e.into())
    }
}

impl From<crate::ConnectError> for Failure {
    fn from(e: crate::ConnectError) -> Self {
        Failure::Ipc(e.into())
    }
}

impl From<crate::ListenError> for Failure {
    fn from(e: crate::ListenError) -> Self {
        Failure::Ipc(e.into())
    }
}

impl From<crate::SpawnError> for Failure {
    fn from(e: crate::SpawnError) -> Self {
        Failure::Ipc(e.into())
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Ipc(e.into())
    }
}

/// `Result` of a case, a child role or a check in the testkit.
pub type Outcome<T = ()> = std::result::Result<T, Failure>;

/// Run one case on a fresh single-threaded runtime, bounded by [`CASE_TIMEOUT`].
pub fn run_case(case: &Case, subject: &Subject) -> Outcome {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match tokio::time::timeout(CASE_TIMEOUT, (case.run)(subject)).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Ipc(Error::Timeout {
                after: CASE_TIMEOUT,
                during: "running a conformance case (it hung)",
            })),
        }
    })
}

/// Fail a case with a message: a check that did not hold.
pub(crate) fn fail(msg: impl Into<String>) -> Failure {
    Failure::Check(msg.into())
}

/// Check a condition inside a case.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err($crate::testkit::fail(format!($($msg)+)));
        }
    };
}
pub(crate) use ensure;
